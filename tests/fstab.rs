//! Mounting from /etc/fstab, for real: `mount -T FSTAB MOUNTPOINT`, `mount -a -T FSTAB`
//! and `mount -t fuse.twilio-media-fs …` run util-linux `mount`, which runs fuse3's
//! `mount.fuse3`, which runs `twilio-media-fs SOURCE MOUNTPOINT -o OPTIONS` through
//! `/bin/sh` with the default PATH (mount(8) drops PATH). So the binary under test is
//! linked as /usr/local/sbin/twilio-media-fs for the length of this file's tests, and
//! removed afterwards ([`Helper`]); a file of that name that is not ours stops the tests.
//!
//! Credentials come from the file `credentials=` names: the mount runs with no Twilio
//! variable in its environment and no config file. Every mount is a [`Mount`] guard:
//! unmounted even when a test fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use common::mount::*;
use common::*;
use twilio_media_fs::emulator::{EmulatorCredentials, RunningEmulator, spawn};

/// Where `sh` finds the helper with mount(8)'s empty PATH (dash's default path, first).
const HELPER: &str = "/usr/local/sbin/twilio-media-fs";

/// The binary under test as /usr/local/sbin/twilio-media-fs while held; one test at a
/// time (they share the link).
struct Helper {
    _one: MutexGuard<'static, ()>,
}

impl Helper {
    fn install() -> Option<Helper> {
        static ONE: Mutex<()> = Mutex::new(());
        let one = ONE.lock().unwrap_or_else(|e| e.into_inner());
        if !require_tool("mount.fuse3") {
            return None;
        }
        let ours = Path::new(env!("CARGO_BIN_EXE_twilio-media-fs"));
        match std::fs::read_link(HELPER) {
            Ok(target) if target == ours => {}
            Ok(_) | Err(_) if Path::new(HELPER).symlink_metadata().is_ok() => {
                panic!(
                    "{HELPER} exists and is not this build's binary: remove it to run these tests"
                )
            }
            _ => {
                std::fs::create_dir_all("/usr/local/sbin").unwrap();
                std::os::unix::fs::symlink(ours, HELPER).unwrap();
            }
        }
        Some(Helper { _one: one })
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(HELPER);
    }
}

async fn emulator() -> RunningEmulator {
    spawn(emulator_config()).await.unwrap()
}

/// A credentials file (mode 0600) for the emulator, in `dir`.
fn credentials(dir: &Path) -> PathBuf {
    let c = EmulatorCredentials::default();
    let path = dir.join("credentials");
    write_private(
        &path,
        format!(
            "# the emulator's\naccount_sid = \"{}\"\nauth_token = \"{}\"\n",
            c.account_sid, c.auth_token
        )
        .as_bytes(),
    );
    path
}

/// `mount ARGS` with no Twilio credentials in the environment.
fn mount_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new("mount");
    cmd.args(args)
        .env_remove("TWILIO_ACCOUNT_SID")
        .env_remove("TWILIO_AUTH_TOKEN")
        .env_remove("TWILIO_API_KEY")
        .env_remove("TWILIO_API_SECRET")
        .env_remove("TWILIO_MEDIA_FS_API_URL")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        // Sizes in the build's scratch space, not this machine's /var/cache.
        .env(
            "XDG_CACHE_HOME",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/fstab-cache"),
        );
    cmd
}

async fn mount(args: &[&str]) -> Output {
    output(mount_cmd(args)).await
}

/// The /proc/mounts lines for `path`: (source, type, options).
fn mounts_at(path: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.get(1) == Some(&path.to_str().unwrap()))
                .then(|| (f[0].to_owned(), f[2].to_owned(), f[3].to_owned()))
        })
        .collect()
}

/// Lists recordings through the mount and copies one: the bytes are the plaintext.
async fn reads_right(emu: &RunningEmulator, m: &Mount) {
    let listed = ok(command(
        "ls",
        &[m.path.join("recordings").to_str().unwrap()],
    ))
    .await;
    let recording = emu
        .emulator
        .objects()
        .into_iter()
        .find(|o| o.status == "completed" && o.size.is_some() && o.extension == "mka")
        .unwrap();
    assert!(listed.contains(&recording.sid), "{listed}");
    let out = ok(command(
        "sha256sum",
        &[m.file(&recording).to_str().unwrap()],
    ))
    .await;
    let plain = emu.emulator.plaintext(&recording.sid).unwrap();
    assert_eq!(out.split_whitespace().next(), Some(sha256(&plain).as_str()));
}

fn options(emu: &RunningEmulator, dir: &Path, extra: &str) -> String {
    format!(
        "ro,_netdev,nofail,allow_other,key={},credentials={},api_url={},x-systemd.mount-timeout=30{extra}",
        keys().pem[0].display(),
        credentials(dir).display(),
        emu.url
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_fstab_line_mounts_with_mount_and_mount_a() {
    let Some(_helper) = Helper::install() else {
        return;
    };
    let emu = emulator().await;
    let m = Mount::new();
    let dir = tempdir();
    let fstab = dir.path().join("fstab");
    std::fs::write(
        &fstab,
        format!(
            "# an account, read-only\nmyaccount {} fuse.twilio-media-fs {} 0 0\n",
            m.path_str(),
            options(&emu, dir.path(), ",cache_size=64MiB")
        ),
    )
    .unwrap();
    let fstab = fstab.to_str().unwrap().to_owned();

    let out = mount(&["-T", &fstab, m.path_str()]).await;
    assert!(
        out.status.success(),
        "mount: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at = mounts_at(&m.path);
    assert_eq!(at.len(), 1, "{at:?}");
    let (source, fstype, opts) = &at[0];
    assert_eq!(source, "myaccount", "the fstab source shows as the mount's");
    assert_eq!(fstype, "fuse.twilio-media-fs");
    assert!(opts.split(',').any(|o| o == "ro"), "{opts}");
    assert!(opts.contains("allow_other"), "{opts}");
    reads_right(&emu, &m).await;
    let stats = ok(command("cat", &[m.path.join(".stats").to_str().unwrap()])).await;
    assert!(
        stats.contains(&format!("\"capacity\": {}", 64 << 20)),
        "cache_size=: {stats}"
    );

    // mount -a knows it is mounted already: nothing stacks on top.
    let out = mount(&["-a", "-T", &fstab]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mounts_at(&m.path).len(), 1);

    // umount ends it, and mount -a mounts it again.
    let out = output(command("umount", &[m.path_str()])).await;
    assert!(out.status.success());
    let p = m.path.clone();
    blocking(move || wait_until("the server to exit", || serving(&p).is_empty())).await;
    assert!(mounts_at(&m.path).is_empty());
    let out = mount(&["-a", "-T", &fstab]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mounts_at(&m.path).len(), 1);
    reads_right(&emu, &m).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mount_t_fuse_twilio_media_fs_on_the_command_line() {
    let Some(_helper) = Helper::install() else {
        return;
    };
    let emu = emulator().await;
    let m = Mount::new();
    let dir = tempdir();
    let opts = options(&emu, dir.path(), "");
    let out = mount(&[
        "-t",
        "fuse.twilio-media-fs",
        "twilio-media-fs",
        m.path_str(),
        "-o",
        &opts,
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mounts_at(&m.path)[0].0, "twilio-media-fs");
    reads_right(&emu, &m).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_fstab_options_fail_the_mount_with_the_reason() {
    let Some(_helper) = Helper::install() else {
        return;
    };
    let emu = emulator().await;
    let dir = tempdir();
    let good = options(&emu, dir.path(), "");
    for (opts, says) in [
        // mount passes rw when ro is not there: the mount is read-only.
        (good.replacen("ro,", "", 1), "read-only: write `ro`"),
        (
            format!("{good},bogus=1"),
            "unknown mount option \"bogus=1\"",
        ),
        (
            format!("{good},cache_size=lots"),
            "mount option cache_size=lots",
        ),
        // A credentials file that does not exist.
        (
            good.replace(
                &format!("credentials={}", dir.path().join("credentials").display()),
                "credentials=/nonexistent/credentials",
            ),
            "cannot read /nonexistent/credentials",
        ),
    ] {
        let m = Mount::new();
        let fstab = dir.path().join("fstab");
        std::fs::write(
            &fstab,
            format!("src {} fuse.twilio-media-fs {opts} 0 0\n", m.path_str()),
        )
        .unwrap();
        let out = mount(&["-T", fstab.to_str().unwrap(), m.path_str()]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{opts} mounted");
        assert!(stderr.contains(says), "{opts}: {stderr}");
        assert!(mounts_at(&m.path).is_empty(), "{opts}");
    }
}
