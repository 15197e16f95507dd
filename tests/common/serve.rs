//! `twilio-media-fs serve` as a child process: started on a free loopback port, ready
//! once it prints `listening on URL`, killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{cli_at, tempdir};

pub struct Served {
    /// `http://127.0.0.1:PORT` (no trailing slash), or `https://…` with TLS.
    pub url: String,
    pub child: Child,
    /// Where its stderr (the log) goes.
    pub stderr: PathBuf,
    /// Its scratch directory (size cache, sockets, files a test puts there).
    pub dir: tempfile::TempDir,
}

impl Served {
    /// `serve -k KEY --listen 127.0.0.1:0` against the API at `api_url`, with the
    /// emulator's credentials in the environment and a size cache of its own.
    pub fn command(api_url: &str, key: &Path) -> (Command, tempfile::TempDir) {
        let dir = tempdir();
        let mut cmd = cli_at(api_url);
        cmd.env("XDG_CACHE_HOME", dir.path().join("cache"))
            .env_remove("CACHE_DIRECTORY")
            .env_remove("TWILIO_MEDIA_FS_SERVE_TOKEN")
            .arg("serve")
            .arg("-k")
            .arg(key);
        (cmd, dir)
    }

    /// Starts `serve` with `extra` flags (a `--listen` among them replaces the default
    /// free loopback port).
    pub fn start(api_url: &str, key: &Path, extra: &[&str]) -> Served {
        let (mut cmd, dir) = Self::command(api_url, key);
        if !extra.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.args(extra);
        Self::spawn(cmd, dir)
    }

    /// Starts `cmd` (from [`Self::command`]); waits for its first `listening on` line.
    pub fn spawn(mut cmd: Command, dir: tempfile::TempDir) -> Served {
        let stderr = dir.path().join("stderr");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let mut child = cmd.spawn().expect("start serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "serve did not say where it listens:\n{}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
        };
        let url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .trim_end_matches('/')
            .to_owned();
        Served {
            url,
            child,
            stderr,
            dir,
        }
    }

    /// `self.url` + `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// `/.stats` as JSON.
    pub fn stats(&self) -> serde_json::Value {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", &self.at("/.stats")])
            .output()
            .expect("curl");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "/.stats is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

/// The URL of the first `listening on URL` line a `serve` prints (blocking until it does).
pub fn listening_url(stdout: std::process::ChildStdout) -> String {
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    line.trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("not a `listening on` line: {line:?}"))
        .to_owned()
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
