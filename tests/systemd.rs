//! packaging/twilio-media-fs@.service, tested without a running systemd: the unit says
//! what the issue asks (after the network is online, restart on failure, unmount on
//! stop), `systemd-analyze verify` accepts it, and its own commands — ExecStartPre,
//! ExecStart, ExecStop, with systemd's substitutions done here — mount the emulator's
//! account, report READY=1 on a notify socket like systemd's, clear a mount left by a
//! crash, unmount with exit status 0, and keep exact sizes in the unit's
//! `CacheDirectory=`. packaging/twilio-media-fs-serve.service the same way: verified, and
//! its ExecStart serves the account over HTTP, says READY=1, and stops on SIGTERM.

mod common;

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use clap::Parser;
use common::mount::*;
use common::*;
use twilio_media_fs::cli::{Cli, Command as Sub};
use twilio_media_fs::emulator::{EmulatorCredentials, RunningEmulator, spawn};

const UNIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/twilio-media-fs@.service"
);

const SERVE_UNIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/twilio-media-fs-serve.service"
);

/// The mount unit's `Key=value` lines by section (a key may repeat).
fn unit() -> HashMap<String, Vec<(String, String)>> {
    unit_of(UNIT)
}

/// A unit file's `Key=value` lines by section (a key may repeat).
fn unit_of(path: &str) -> HashMap<String, Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut sections: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let mut current = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_owned();
            continue;
        }
        let (k, v) = line.split_once('=').expect("Key=value");
        sections
            .entry(current.clone())
            .or_default()
            .push((k.to_owned(), v.to_owned()));
    }
    sections
}

fn values(unit: &HashMap<String, Vec<(String, String)>>, section: &str, key: &str) -> Vec<String> {
    unit[section]
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .collect()
}

fn one(unit: &HashMap<String, Vec<(String, String)>>, section: &str, key: &str) -> String {
    let v = values(unit, section, key);
    assert_eq!(v.len(), 1, "{section}.{key}: {v:?}");
    v[0].clone()
}

/// A command line as systemd splits it: `%f` is the mount point, `${VAR}` is replaced
/// inside a word, a whole-word `$VAR` becomes its value's words; a leading `-` (ignore
/// failure) is dropped. The unit uses no quotes, which this checks.
fn exec_line(line: &str, mountpoint: &Path, env: &HashMap<&str, String>) -> (Vec<String>, bool) {
    assert!(
        !line.contains('"') && !line.contains('\''),
        "no quoting: {line}"
    );
    let (line, ignore_failure) = match line.strip_prefix('-') {
        Some(rest) => (rest, true),
        None => (line, false),
    };
    let mut words = Vec::new();
    for word in line.split_whitespace() {
        let word = word.replace("%f", mountpoint.to_str().unwrap());
        if let Some(var) = word.strip_prefix('$').filter(|v| !v.starts_with('{')) {
            words.extend(
                env.get(var)
                    .into_iter()
                    .flat_map(|v| v.split_whitespace().map(str::to_owned)),
            );
            continue;
        }
        let mut w = word.clone();
        for (k, v) in env {
            w = w.replace(&format!("${{{k}}}"), v);
        }
        assert!(!w.contains('$'), "unknown variable in {word}");
        words.push(w);
    }
    (words, ignore_failure)
}

#[test]
fn the_unit_waits_for_the_network_restarts_and_unmounts() {
    let u = unit();
    assert_eq!(one(&u, "Unit", "After"), "network-online.target");
    assert_eq!(one(&u, "Unit", "Wants"), "network-online.target");
    assert_eq!(one(&u, "Service", "Restart"), "on-failure");
    assert_eq!(one(&u, "Service", "Type"), "notify");
    assert!(one(&u, "Service", "ExecStop").contains("umount"));
    let creds = values(&u, "Service", "LoadCredential");
    assert!(
        creds
            .iter()
            .any(|c| c.starts_with("credentials:/etc/twilio-media-fs/")),
        "{creds:?}"
    );
    assert_eq!(one(&u, "Install", "WantedBy"), "multi-user.target");
    // Exact sizes survive a restart: systemd makes the directory, root's only.
    assert_eq!(one(&u, "Service", "CacheDirectory"), "twilio-media-fs");
    assert_eq!(one(&u, "Service", "CacheDirectoryMode"), "0700");
    // No setting that would hide the mount in a namespace of the service's own.
    for key in [
        "PrivateTmp",
        "ProtectSystem",
        "ProtectHome",
        "PrivateMounts",
        "TemporaryFileSystem",
    ] {
        assert!(
            values(&u, "Service", key).is_empty(),
            "{key} would hide the mount"
        );
    }
}

#[test]
fn exec_start_is_a_foreground_mount_the_parser_accepts() {
    let u = unit();
    let env = HashMap::from([
        ("CREDENTIALS_DIRECTORY", "/run/credentials/x".to_owned()),
        ("MOUNT_FLAGS", "--allow-other --cache-size 1GiB".to_owned()),
    ]);
    let (words, _) = exec_line(
        &one(&u, "Service", "ExecStart"),
        Path::new("/mnt/twilio"),
        &env,
    );
    assert_eq!(
        words[0], "/usr/bin/twilio-media-fs",
        "where the package installs it"
    );
    let cli = Cli::try_parse_from(&words).unwrap_or_else(|e| panic!("{words:?}: {e}"));
    let Sub::Mount(m) = cli.command else {
        panic!("not a mount: {words:?}")
    };
    assert_eq!(m.mountpoint, Path::new("/mnt/twilio"));
    assert!(m.foreground, "systemd supervises the process itself");
    assert!(m.allow_other);
    assert_eq!(m.fs.cache_size, 1 << 30);
    assert_eq!(m.keys.paths, [Path::new("/run/credentials/x/key.pem")]);
    assert_eq!(
        m.api.credentials.as_deref(),
        Some(Path::new("/run/credentials/x/credentials"))
    );
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    if !require_tool("systemd-analyze") {
        return;
    }
    verify(
        UNIT,
        "twilio-media-fs@.service",
        "twilio-media-fs@mnt-twilio.service",
    );
}

#[test]
fn systemd_analyze_verify_accepts_the_serve_unit() {
    if !require_tool("systemd-analyze") {
        return;
    }
    verify(
        SERVE_UNIT,
        "twilio-media-fs-serve.service",
        "twilio-media-fs-serve.service",
    );
}

/// `systemd-analyze verify` of the unit file `path`, installed as `file` and verified
/// as `name`.
fn verify(path: &str, file: &str, name: &str) {
    // A template is verified as an instance, in a scratch root: this machine's own
    // units (for the targets it names), the unit, this build at /usr/bin (the binary
    // must exist), umount and fusermount3 at /bin.
    let root = tempdir();
    let units = root.path().join("etc/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    let system = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .find(|d| Path::new(d).join("multi-user.target").exists())
        .expect("systemd's units");
    std::fs::create_dir_all(root.path().join("usr/lib/systemd")).unwrap();
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(system)
            .arg(root.path().join("usr/lib/systemd/system")),
    );
    std::fs::copy(path, units.join(file)).unwrap();
    std::fs::create_dir_all(root.path().join("usr/bin")).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_twilio-media-fs"),
        root.path().join("usr/bin/twilio-media-fs"),
    )
    .unwrap();
    for tool in ["umount", "fusermount3"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        let path = String::from_utf8(found.stdout).unwrap();
        let path = Path::new(path.trim());
        let dest = root.path().join("bin").join(path.file_name().unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(path, dest).unwrap();
    }
    let out = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.path().display()))
        .arg("--man=no")
        .arg("--generators=no")
        .arg(name));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Only lines about this unit matter (the scratch root has no other units).
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("twilio-media-fs"))
        .collect();
    assert!(out.status.success() && ours.is_empty(), "{stderr}");
}

async fn emulator() -> RunningEmulator {
    spawn(emulator_config()).await.unwrap()
}

/// What systemd would hand the service: a credentials directory, the instance's
/// environment file's MOUNT_FLAGS, a notify socket, a cache directory.
struct Service {
    dir: tempfile::TempDir,
    /// `$CACHE_DIRECTORY` (`CacheDirectory=`).
    cache: PathBuf,
    env: HashMap<&'static str, String>,
    notify: UnixDatagram,
    notify_path: PathBuf,
}

impl Service {
    fn new(emu: &RunningEmulator) -> Self {
        let dir = tempdir();
        let creds = dir.path().join("credentials.d");
        std::fs::create_dir(&creds).unwrap();
        let c = EmulatorCredentials::default();
        write_private(
            &creds.join("credentials"),
            format!(
                "account_sid = \"{}\"\nauth_token = \"{}\"\n",
                c.account_sid, c.auth_token
            )
            .as_bytes(),
        );
        write_private(
            &creds.join("key.pem"),
            &std::fs::read(&keys().pem[0]).unwrap(),
        );
        let cache = dir.path().join("cache");
        std::fs::create_dir(&cache).unwrap();
        let notify_path = dir.path().join("notify");
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        notify.set_read_timeout(Some(DEADLINE)).unwrap();
        let env = HashMap::from([
            ("CREDENTIALS_DIRECTORY", creds.to_str().unwrap().to_owned()),
            (
                "MOUNT_FLAGS",
                format!("--api-url {} --cache-size 64MiB", emu.url),
            ),
            (
                "SERVE_FLAGS",
                format!("--api-url {} --listen 127.0.0.1:0", emu.url),
            ),
        ]);
        Service {
            dir,
            cache,
            env,
            notify,
            notify_path,
        }
    }

    /// The mount unit's command `key`, ready to run (our build for
    /// /usr/bin/twilio-media-fs).
    fn command(&self, key: &str, mountpoint: &Path) -> (Command, bool) {
        self.command_of(UNIT, key, mountpoint)
    }

    /// The command `key` of the unit file `path`, ready to run.
    fn command_of(&self, path: &str, key: &str, mountpoint: &Path) -> (Command, bool) {
        let line = one(&unit_of(path), "Service", key);
        let (mut words, ignore) = exec_line(&line, mountpoint, &self.env);
        if words[0] == "/usr/bin/twilio-media-fs" {
            words[0] = env!("CARGO_BIN_EXE_twilio-media-fs").to_owned();
        }
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..])
            .env_remove("TWILIO_ACCOUNT_SID")
            .env_remove("TWILIO_AUTH_TOKEN")
            .env_remove("TWILIO_API_KEY")
            .env_remove("TWILIO_API_SECRET")
            .env_remove("TWILIO_MEDIA_FS_API_URL")
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .env_remove("XDG_CACHE_HOME")
            .env("CACHE_DIRECTORY", &self.cache)
            .env("NOTIFY_SOCKET", &self.notify_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("journal")).unwrap());
        (cmd, ignore)
    }

    /// ExecStart, until it says READY=1.
    async fn start(&self, m: &mut Mount) {
        let (mut cmd, _) = self.command("ExecStart", &m.path);
        m.child = Some(cmd.spawn().unwrap());
        self.ready().await;
    }

    /// Waits for READY=1 on the notify socket.
    async fn ready(&self) {
        let notify = self.notify.try_clone().unwrap();
        let message = blocking(move || {
            let mut buf = [0u8; 512];
            let n = notify.recv(&mut buf).expect("READY=1 within the deadline");
            String::from_utf8_lossy(&buf[..n]).into_owned()
        })
        .await;
        assert!(
            message.lines().any(|l| l == "READY=1"),
            "{message}; journal: {}",
            self.journal()
        );
    }

    fn journal(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("journal")).unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_units_commands_mount_recover_from_a_crash_and_unmount() {
    let emu = emulator().await;
    let svc = Service::new(&emu);
    let mut m = Mount::new();

    // ExecStartPre on a clean mount point fails, and the unit ignores that (`-`).
    let (mut pre, ignored) = svc.command("ExecStartPre", &m.path);
    assert!(ignored, "ExecStartPre must not fail the start");
    output(pre).await;

    // Ready only once mounted: right after READY=1 the account is there.
    svc.start(&mut m).await;
    assert!(m.path.join("recordings").is_dir());
    assert!(mounted(&m.path));

    // A crash leaves "Transport endpoint is not connected"; ExecStartPre clears it, so
    // Restart=on-failure can start again.
    let mut child = m.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let err = std::fs::read_dir(&m.path).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTCONN), "{err}");
    (pre, _) = svc.command("ExecStartPre", &m.path);
    let out = output(pre).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!mounted(&m.path));
    svc.start(&mut m).await;
    let listed = ok(command(
        "ls",
        &[m.path.join("compositions").to_str().unwrap()],
    ))
    .await;
    let first = listed.lines().next().expect("a composition");
    ok(command(
        "sha256sum",
        &[m.path.join("compositions").join(first).to_str().unwrap()],
    ))
    .await;

    // ExecStop unmounts; the service then exits 0 (not a failure to restart).
    let (stop, _) = svc.command("ExecStop", &m.path);
    let out = output(stop).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut child = m.child.take().unwrap();
    let status = blocking(move || {
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still running after ExecStop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await;
    assert!(status.success(), "{status}; journal: {}", svc.journal());
    assert!(!mounted(&m.path));
    // The size of the file read is kept for the next start.
    let sid = first.split('.').next().unwrap();
    let sizes = std::fs::read_to_string(svc.cache.join("sizes")).unwrap_or_default();
    assert!(
        sizes.lines().any(|l| l.starts_with(sid)),
        "{sid} in {sizes:?}; journal: {}",
        svc.journal()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_serve_units_command_serves_says_ready_and_stops_on_sigterm() {
    let unit = unit_of(SERVE_UNIT);
    assert_eq!(one(&unit, "Service", "Type"), "notify");
    assert_eq!(
        one(&unit, "Service", "DynamicUser"),
        "yes",
        "no privilege needed"
    );
    assert_eq!(
        one(&unit, "Service", "PrivateDevices"),
        "yes",
        "no /dev/fuse needed"
    );
    assert_eq!(one(&unit, "Install", "WantedBy"), "multi-user.target");
    let emu = emulator().await;
    let svc = Service::new(&emu);
    let (mut cmd, _) = svc.command_of(SERVE_UNIT, "ExecStart", Path::new("/unused"));
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    svc.ready().await;
    let stdout = child.stdout.take().unwrap();
    let url = blocking(move || common::serve::listening_url(stdout)).await;
    let o = emu
        .emulator
        .objects()
        .into_iter()
        .find(|o| o.sid.starts_with("CJ") && o.status == "completed")
        .unwrap();
    let file = format!("{url}compositions/{}.{}", o.sid, o.extension);
    let got =
        blocking(move || run_ok(Command::new("curl").args(["-sSf", "--max-time", "30", &file])))
            .await;
    assert_eq!(
        sha256(&got),
        sha256(&emu.emulator.plaintext(&o.sid).unwrap())
    );
    // SIGTERM: it stops, exit status 0, and keeps the sizes it learned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = blocking(move || child.wait().unwrap()).await;
    assert!(status.success(), "{status}; journal: {}", svc.journal());
    let sizes = std::fs::read_to_string(svc.cache.join("sizes")).unwrap_or_default();
    assert!(sizes.lines().any(|l| l.starts_with(&o.sid)), "{sizes:?}");
}
