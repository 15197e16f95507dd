//! Real FUSE mounts of the binary for tests: [`Mount`] starts `mount` against an API
//! (the emulator, or a mock), and its `Drop` always takes the mount down (`umount -l`,
//! then the serving process is killed), even when a test panics. Also the account's two
//! test key pairs ([`keys`], written mode 0600) and the small async helpers such tests
//! need to run blocking work beside an in-process server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use twilio_media_fs::crypto::seal;
use twilio_media_fs::emulator::{EmulatorConfig, ObjectInfo, RunningEmulator};

use super::{cli_at, run, tempdir, write_private};

/// How long a mount may take to become ready, or to go away.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Runs blocking work (file system calls, subprocesses) off the async runtime, so the
/// in-process emulator keeps serving the mount meanwhile.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

pub async fn output(mut cmd: Command) -> std::process::Output {
    blocking(move || run(&mut cmd)).await
}

/// Runs a command that must succeed; its stdout.
pub async fn ok(cmd: Command) -> String {
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn command(program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd
}

/// Whether the FUSE filesystem is mounted at `path`, per /proc/mounts.
pub fn mounted(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let path = path.to_str().unwrap();
    mounts.lines().any(|l| l.split(' ').nth(1) == Some(path))
}

/// Processes (not zombies) whose command line names `path`: the background server.
pub fn serving(path: &Path) -> Vec<i32> {
    let me = std::process::id() as i32;
    let needle = path.as_os_str().as_encoded_bytes();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if !cmdline.split(|&b| b == 0).any(|arg| arg == needle) {
            continue;
        }
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true);
        if !zombie {
            pids.push(pid);
        }
    }
    pids
}

pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two account key pairs (the second one is the "rotated" key), private halves in PEMs.
pub struct Keys {
    _dir: tempfile::TempDir,
    pub private: [rsa::PrivateKey; 2],
    pub pem: [PathBuf; 2],
}

impl Keys {
    /// The PEM text of key `i`.
    pub fn text(&self, i: usize) -> String {
        std::fs::read_to_string(&self.pem[i]).unwrap()
    }
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempdir();
        let private = [seal::generate_key(2048), seal::generate_key(2048)];
        let pem = [dir.path().join("k1.pem"), dir.path().join("k2.pem")];
        for (key, path) in private.iter().zip(&pem) {
            write_private(path, key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes());
        }
        Keys {
            _dir: dir,
            private,
            pem,
        }
    })
}

/// An emulator configuration whose objects are encrypted for `keys()`'s first key.
pub fn emulator_config() -> EmulatorConfig {
    EmulatorConfig {
        public_keys: vec![keys().private[0].to_public_key()],
        ..Default::default()
    }
}

/// One mount of the binary. Dropping it always unmounts (`umount -l`) and kills the
/// process serving it, whatever state the test left it in.
pub struct Mount {
    pub path: PathBuf,
    /// Where a `--foreground` mount's stderr goes (its log).
    pub stderr: PathBuf,
    /// `--foreground`: the server is our child.
    pub child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Mount {
    pub fn new() -> Self {
        let dir = tempdir();
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        Mount {
            stderr: dir.path().join("stderr"),
            path,
            child: None,
            _dir: dir,
        }
    }

    /// `mount PATH -k KEY…` against the API at `api_url`, its size cache in this
    /// mount's own scratch directory (no test sees another's sizes, nor this machine's).
    pub fn command(&self, api_url: &str, keys: &[&Path]) -> Command {
        let mut cmd = cli_at(api_url);
        cmd.env("XDG_CACHE_HOME", self._dir.path().join("cache"))
            .env_remove("CACHE_DIRECTORY");
        cmd.arg("mount").arg(&self.path);
        for k in keys {
            cmd.arg("-k").arg(k);
        }
        cmd
    }

    /// `mount PATH -k KEY…` against the emulator.
    pub fn mount_cmd(&self, emu: &RunningEmulator, keys: &[&Path]) -> Command {
        self.command(&emu.url, keys)
    }

    /// `mount --foreground` of the emulator, ready once `MNT/recordings` exists.
    pub async fn foreground(emu: &RunningEmulator, keys: &[&Path]) -> Self {
        Self::start(&emu.url, keys, &[]).await
    }

    /// `mount --foreground EXTRA…` against the API at `api_url`, its stderr in
    /// [`Self::stderr`]; ready once `MNT/recordings` exists.
    pub async fn start(api_url: &str, keys: &[&Path], extra: &[&str]) -> Self {
        let m = Mount::new();
        let mut cmd = m.command(api_url, keys);
        cmd.arg("--foreground").args(extra);
        m.spawn(cmd).await
    }

    /// Starts `cmd`, a server of this mount point that stays attached (usually
    /// [`Self::mount_cmd`] with `--foreground` and more, or a wrapper such as `strace`
    /// around it), its stderr in [`Self::stderr`]; ready once `MNT/recordings` exists.
    /// Panics if it ends first.
    pub async fn spawn(mut self, mut cmd: Command) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&self.stderr).unwrap());
        let child = cmd.spawn().expect("start the mount");
        let (path, stderr) = (self.path.clone(), self.stderr.clone());
        let child = blocking(move || {
            let mut child = child;
            wait_until("the mount", || {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!(
                        "mount ended before ready ({status}): {}",
                        std::fs::read_to_string(&stderr).unwrap_or_default()
                    );
                }
                path.join("recordings").is_dir()
            });
            child
        })
        .await;
        self.child = Some(child);
        self
    }

    /// `mount` in the background: returns when the command does (it says ready).
    pub async fn background(emu: &RunningEmulator, keys: &[&Path]) -> (Self, std::process::Output) {
        let m = Mount::new();
        let out = output(m.mount_cmd(emu, keys)).await;
        (m, out)
    }

    /// Where an object's file is, under `recordings/` or `compositions/`.
    pub fn file(&self, o: &ObjectInfo) -> PathBuf {
        let dir = o.kind.plural();
        self.path
            .join(dir)
            .join(format!("{}.{}", o.sid, o.extension))
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// What a `--foreground` mount logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// `umount`, then waits for the `--foreground` server to exit by itself (as it does
    /// after an unmount, once it has saved its size cache); panics if it fails or
    /// takes longer than [`DEADLINE`].
    pub async fn unmount(&mut self) {
        ok(command("umount", &[self.path_str()])).await;
        let mut child = self.child.take().expect("a --foreground mount");
        let status = blocking(move || {
            let deadline = Instant::now() + DEADLINE;
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    return status;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("the mount did not end after umount");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .await;
        assert!(
            status.success(),
            "mount exited with {status}: {}",
            self.log()
        );
    }

    /// Whether it is still mounted and its process still running.
    pub fn alive(&mut self) -> bool {
        let running = match &mut self.child {
            Some(child) => child.try_wait().unwrap().is_none(),
            None => !serving(&self.path).is_empty(),
        };
        running && mounted(&self.path)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .stderr(Stdio::null())
            .status();
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in serving(&self.path) {
            // SAFETY: plain kill(2) of the background server of this mount point.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}
