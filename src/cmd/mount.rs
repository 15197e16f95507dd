//! `mount`: the account as a read-only filesystem, in the background or the foreground.
//!
//! In the background (the default) the command starts itself again with `--foreground`
//! in a new session, with its standard streams on /dev/null, and waits on a pipe until
//! the child says the mount is ready (exit 0) or why it is not (exit 1, the child's
//! message). The foreground process mounts, then waits for SIGINT/SIGTERM (unmount,
//! exit 0) or for the filesystem to be unmounted from outside (`umount`,
//! `fusermount3 -u`: exit 0). Unmounting is lazy (`MNT_DETACH`), which also avoids the
//! hang of fuser issue #407. Under systemd (`Type=notify`, `NOTIFY_SOCKET` set) the
//! foreground process says `READY=1` once mounted.
//!
//! It owns the FUSE session (mount options, readiness, signals, unmounting, the last
//! save of the size cache once unmounted) and turning the `mount` flags into
//! [`MountSettings`]. It must not wire the filesystem itself: [`crate::app::build_fs`]
//! does, for `demo` too.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use fuser::{Config, MountOption, SessionACL};

use super::config::{check_access, fs_settings, load_keys, twilio_client};
use crate::app::{MountSettings, build_fs};
use crate::cli::MountArgs;
use crate::fs::{TwilioFs, fuse::Fuse};

/// The environment variable that carries the readiness pipe to the background child.
const READY_FD_ENV: &str = "TWILIO_MEDIA_FS_READY_FD";

pub fn run(args: MountArgs) -> anyhow::Result<()> {
    check_mountpoint(&args.mountpoint)?;
    if !args.foreground {
        return daemonize();
    }
    let ready = ReadyPipe::from_env();
    let result = foreground(&args, &ready);
    if let Err(e) = &result {
        ready.fail(&format!("{e:#}"));
    }
    result
}

fn foreground(args: &MountArgs, ready: &ReadyPipe) -> anyhow::Result<()> {
    super::malloc::limit_malloc_retention();
    let keys = Arc::new(load_keys(&args.keys)?);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let fs = runtime.block_on(async {
        let twilio = Arc::new(twilio_client(&args.api)?);
        // One request now, so that bad credentials fail the mount, not the first `ls`:
        // one the mount needs anyway, as a restricted API key may read nothing else.
        check_access(&twilio).await?;
        anyhow::Ok(build_fs(&settings(args), twilio, keys))
    })?;
    serve(
        &runtime,
        fs,
        &args.mountpoint,
        &args.fsname,
        args.allow_other,
        || {
            ready.ok();
            notify_systemd(&format!(
                "READY=1\nSTATUS=Mounted on {}",
                args.mountpoint.display()
            ));
        },
    )
}

/// What the flags ask of the filesystem; a flag not given keeps [`MountSettings`]'s
/// default.
pub fn settings(args: &MountArgs) -> MountSettings {
    fs_settings(&args.fs, args.uid, args.gid)
}

/// Tells systemd (a `Type=notify` unit, such as packaging/twilio-media-fs@.service) how
/// the mount is doing, when `NOTIFY_SOCKET` names its socket: `READY=1` once mounted.
/// The sd_notify protocol is one datagram; no library needed.
pub fn notify_systemd(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = (|| -> std::io::Result<()> {
        use std::os::unix::net::{SocketAddr, UnixDatagram};
        let socket = UnixDatagram::unbound()?;
        let bytes = path.as_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name)?
            }
            None => SocketAddr::from_pathname(&path)?,
        };
        socket.send_to_addr(state.as_bytes(), &addr)?;
        Ok(())
    })();
    if let Err(e) = sent {
        tracing::warn!("cannot notify systemd at {}: {e}", path.to_string_lossy());
    }
}

/// Mounts `fs` at `mountpoint`, calls `on_ready`, and serves until a signal or an
/// unmount from outside. Used by `mount` and `demo`.
pub fn serve(
    runtime: &tokio::runtime::Runtime,
    fs: Arc<TwilioFs>,
    mountpoint: &Path,
    fsname: &str,
    allow_other: bool,
    on_ready: impl FnOnce(),
) -> anyhow::Result<()> {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::FSName(fsname.into()),
        // Root mounts with mount(2), where only the kernel's own `subtype=` makes the
        // type read `fuse.twilio-media-fs` (as fstab says, for `mount -a` and `umount
        // -t`); fusermount3 takes fuser's Subtype for everyone else.
        if unsafe { libc::geteuid() } == 0 {
            MountOption::CUSTOM("subtype=twilio-media-fs".into())
        } else {
            MountOption::Subtype("twilio-media-fs".into())
        },
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::DefaultPermissions,
    ];
    if allow_other {
        // SessionACL::All is fuser's `allow_other`.
        config.acl = SessionACL::All;
    }
    // The session keeps `fs` to the end (never dropped: see below); sizes learned since
    // the last save are saved once it is unmounted.
    let sizes = fs.core().sizes().clone();
    let session = fuser::Session::new(Fuse::new(fs, runtime.handle().clone()), mountpoint, &config)
        .with_context(|| format!("cannot mount on {}", mountpoint.display()))?
        .spawn()
        .with_context(|| format!("cannot serve {}", mountpoint.display()))?;
    tracing::info!("mounted on {}", mountpoint.display());
    on_ready();

    let signalled = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = term.recv() => return anyhow::Ok(true),
                _ = int.recv() => return anyhow::Ok(true),
                _ = tick.tick() => if session.guard.is_finished() { return anyhow::Ok(false) },
            }
        }
    })?;
    if signalled {
        tracing::info!("unmounting {}", mountpoint.display());
        notify_systemd("STOPPING=1");
        lazy_unmount(mountpoint);
    }
    // The session thread ends once the kernel lets go of the connection.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !session.guard.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Not dropped: fuser's drop would unmount the path again, and by then the path may
    // hold a new mount (a user who unmounts and mounts again at once).
    std::mem::forget(session);
    sizes.save();
    tracing::info!("unmounted {}", mountpoint.display());
    Ok(())
}

/// `umount2(MNT_DETACH)`: detaches now, completes when the last user lets go.
pub fn lazy_unmount(mountpoint: &Path) {
    let Ok(path) = CString::new(mountpoint.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: a valid NUL-terminated path; the call has no other preconditions.
    let rc = unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
    if rc != 0 {
        tracing::debug!(
            "umount2 {}: {}",
            mountpoint.display(),
            std::io::Error::last_os_error()
        );
    }
}

fn check_mountpoint(path: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).with_context(|| {
        format!(
            "cannot use {} as the mount point (create the directory first, or unmount a \
             stale mount there with `umount -l`)",
            path.display()
        )
    })?;
    if !meta.is_dir() {
        bail!("{} is not a directory", path.display());
    }
    Ok(())
}

/// Starts this program again with `--foreground`, detached, and waits until it says
/// whether the mount is ready.
fn daemonize() -> anyhow::Result<()> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot create a pipe");
    }
    // SAFETY: pipe2 just returned these two descriptors, owned by nobody else.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let write_fd = fds[1];
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    // The same command line as this one (the fstab form already rewritten to `mount`).
    let args = crate::cmd::argv::effective_args(std::env::args_os())?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args.into_iter().skip(1))
        .arg("--foreground")
        .env(READY_FD_ENV, write_fd.to_string())
        // Readiness is this process's to tell; the child must not speak for a unit.
        .env_remove("NOTIFY_SOCKET")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            // Keep the write end open across exec in the child only.
            let flags = libc::fcntl(write_fd, libc::F_GETFD);
            libc::fcntl(write_fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("cannot start the background process")?;
    drop(write_end);
    let mut message = String::new();
    std::fs::File::from(read_end)
        .read_to_string(&mut message)
        .context("cannot hear from the background process")?;
    match message.strip_prefix("ok") {
        Some(_) => Ok(()),
        None => {
            let _ = child.wait();
            let why = message
                .trim()
                .strip_prefix("error: ")
                .unwrap_or(message.trim());
            if why.is_empty() {
                bail!(
                    "the background process ended before mounting (run with --foreground to see why)"
                );
            }
            bail!("{why}")
        }
    }
}

/// The child's end of the readiness pipe (absent in a plain `--foreground` run).
struct ReadyPipe(Option<std::sync::Mutex<std::fs::File>>);

impl ReadyPipe {
    fn from_env() -> Self {
        let fd = std::env::var(READY_FD_ENV)
            .ok()
            .and_then(|v| v.parse::<RawFd>().ok());
        // SAFETY: the parent passed this descriptor for us alone.
        Self(fd.map(|fd| std::sync::Mutex::new(unsafe { std::fs::File::from_raw_fd(fd) })))
    }

    fn ok(&self) {
        self.say("ok\n");
    }

    fn fail(&self, why: &str) {
        self.say(&format!("error: {why}\n"));
    }

    fn say(&self, text: &str) {
        if let Some(f) = &self.0 {
            let mut f = f.lock().expect("ready pipe");
            let _ = f.write_all(text.as_bytes());
            // Closing tells the parent the message is complete: replacing our copy
            // with /dev/null closes the pipe's write end.
            let null = std::fs::File::open("/dev/null");
            if let Ok(null) = null {
                *f = null;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn mount_args(args: &[&str]) -> MountArgs {
        let argv = ["twilio-media-fs", "mount", "/mnt"].iter().chain(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Mount(m) => m,
            other => panic!("not a mount: {other:?}"),
        }
    }

    #[test]
    fn no_flags_are_the_library_defaults() {
        assert_eq!(settings(&mount_args(&[])), MountSettings::default());
    }

    #[test]
    fn each_flag_sets_its_setting() {
        let room = "RM0123456789abcdef0123456789abcdef";
        let args = mount_args(&[
            "--uid",
            "7",
            "--gid",
            "8",
            "--window",
            "64KiB",
            "--cache-size",
            "1GiB",
            "--refresh",
            "5m",
            "--listing-deadline",
            "90s",
            "--room",
            room,
            "--since",
            "2026-01-31",
            "--metadata-cache",
            "/var/cache/sizes",
            "--exact-sizes",
        ]);
        assert_eq!(
            settings(&args),
            MountSettings {
                uid: 7,
                gid: 8,
                window: 64 << 10,
                cache_size: 1 << 30,
                refresh: Duration::from_secs(300),
                listing_deadline: Duration::from_secs(90),
                rooms: vec![room.to_owned()],
                since: Some("2026-01-31T00:00:00Z".to_owned()),
                metadata_cache: Some("/var/cache/sizes".into()),
                exact_sizes: true,
                require_encrypted: false,
            }
        );
    }

    #[test]
    fn no_metadata_cache_turns_the_default_off() {
        assert_eq!(
            settings(&mount_args(&["--no-metadata-cache"])).metadata_cache,
            None
        );
        let both = ["twilio-media-fs", "mount", "/m", "--no-metadata-cache"];
        let both = both.iter().chain(&["--metadata-cache", "/d"]);
        assert!(Cli::try_parse_from(both).is_err(), "they conflict");
    }
}
