//! Process hardening done once at start, before any key, credential or plaintext is in
//! memory: no core dumps, and no other process of the same user reading this one's
//! memory or environment.
//!
//! A core dump would write the private keys, content keys, credentials and cached
//! plaintext to disk (systemd-coredump keeps them under /var/lib/systemd/coredump), so
//! the core size limit is set to 0. `PR_SET_DUMPABLE 0` (what ssh-agent and gpg-agent
//! do) also makes `/proc/PID/{mem,environ,maps}` owned by root and forbids `ptrace`
//! from processes of the same user that are not privileged. Root can still read them.
//!
//! This module must not fail the program: hardening that the kernel refuses is logged
//! at debug level and skipped.

/// Applies the hardening to this process (inherited by the threads it starts; a
/// re-executed child applies it again itself).
pub fn harden_process() {
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads a valid rlimit; prctl takes plain integers.
    unsafe {
        if libc::setrlimit(libc::RLIMIT_CORE, &no_core) != 0 {
            tracing::debug!(
                "setrlimit(RLIMIT_CORE, 0): {}",
                std::io::Error::last_os_error()
            );
        }
        if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
            tracing::debug!(
                "prctl(PR_SET_DUMPABLE, 0): {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_core_dumps_after_hardening() {
        // Runs in a child process: the hardening is per process and irreversible.
        if std::env::var_os("HARDEN_CHILD").is_none() {
            let exe = std::env::current_exe().unwrap();
            let out = std::process::Command::new(exe)
                .args([
                    "--exact",
                    "harden::tests::no_core_dumps_after_hardening",
                    "--nocapture",
                ])
                .env("HARDEN_CHILD", "1")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
            return;
        }
        super::harden_process();
        let mut r = libc::rlimit {
            rlim_cur: 1,
            rlim_max: 1,
        };
        // SAFETY: getrlimit writes into a valid rlimit; prctl takes plain integers.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_CORE, &mut r), 0);
            assert_eq!(libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
        }
        assert_eq!((r.rlim_cur, r.rlim_max), (0, 0));
    }
}
