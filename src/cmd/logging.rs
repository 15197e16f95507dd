//! Logging to stderr: [`init_logging`] sets up tracing (warnings by default, more with
//! `-v`, `RUST_LOG` wins) and hands it what crates log through `log`, fuser among them.
//!
//! One fuser error is not one: "Failed to send FUSE reply: No such file or directory"
//! is the kernel saying it no longer waits for that reply. It has abandoned the request:
//! after SIGTERM the mount is detached, and when a reader that was mid-file closes its
//! last file there, the kernel ends its side of the connection with requests still on
//! their way (that file's RELEASE, read-ahead). Their replies have nowhere to go, and
//! nobody is left without an answer. [`LogBridge`] logs that one at debug; every other
//! fuser error (another errno, another message) stays an error.

/// Sets up logging to stderr: warnings by default, more with -v, RUST_LOG wins.
pub fn init_logging(verbose: u8) {
    use tracing_log::AsLog;
    // fuser warns about its own unmount after ours (MNT_DETACH) already happened.
    let default = match verbose {
        0 => "warn,fuser=error",
        1 => "info,fuser=error",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only on a terminal: a log file gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_target(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("logging is set up once");
    // What tracing-subscriber's `init` does for `log`, through the bridge; after the
    // subscriber, whose filter sets the most verbose level worth formatting.
    let max = tracing::level_filters::LevelFilter::current().as_log();
    if log::set_boxed_logger(Box::new(LogBridge::default())).is_ok() {
        log::set_max_level(max);
    }
}

/// `log` records to tracing, as `tracing_log::LogTracer` passes them, but for
/// [`abandoned_reply`]s, passed at debug.
#[derive(Default)]
pub struct LogBridge(tracing_log::LogTracer);

impl log::Log for LogBridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if abandoned_reply(record) {
            self.0.log(
                &log::Record::builder()
                    .args(*record.args())
                    .level(log::Level::Debug)
                    .target(record.target())
                    .module_path(record.module_path())
                    .file(record.file())
                    .line(record.line())
                    .build(),
            );
        } else {
            self.0.log(record);
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}

/// fuser's error for a reply the kernel refused with ENOENT: it no longer knows the
/// request (fuser 0.18, `reply.rs`: `error!("Failed to send FUSE reply: {err}")`).
pub fn abandoned_reply(record: &log::Record<'_>) -> bool {
    if record.level() != log::Level::Error || record.target() != "fuser::reply" {
        return false;
    }
    let enoent = std::io::Error::from_raw_os_error(libc::ENOENT);
    record.args().to_string() == format!("Failed to send FUSE reply: {enoent}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether fuser's record, with `err` as the reply's error, is taken for an
    /// abandoned reply.
    fn abandoned(target: &str, level: log::Level, err: std::io::Error) -> bool {
        abandoned_reply(
            &log::Record::builder()
                .args(format_args!("Failed to send FUSE reply: {err}"))
                .level(level)
                .target(target)
                .build(),
        )
    }

    /// What a subscriber writes, kept for the test to read.
    #[derive(Clone, Default)]
    struct Written(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Written {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl tracing_subscriber::fmt::MakeWriter<'_> for Written {
        type Writer = Written;

        fn make_writer(&self) -> Written {
            self.clone()
        }
    }

    #[test]
    fn the_bridge_logs_an_abandoned_reply_at_debug_and_other_errors_as_errors() {
        use log::Log;
        let written = Written::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(written.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        let bridge = LogBridge::default();
        let os = std::io::Error::from_raw_os_error;
        tracing::subscriber::with_default(subscriber, || {
            for err in [os(libc::ENOENT), os(libc::ENODEV)] {
                bridge.log(
                    &log::Record::builder()
                        .args(format_args!("Failed to send FUSE reply: {err}"))
                        .level(log::Level::Error)
                        .target("fuser::reply")
                        .build(),
                );
            }
        });
        let text = String::from_utf8(written.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("DEBUG"), "{text}");
        assert!(lines[0].contains("No such file or directory"), "{text}");
        assert!(lines[1].contains("ERROR"), "{text}");
        assert!(lines[1].contains("No such device"), "{text}");
    }

    #[test]
    fn only_enoent_replies_are_abandoned() {
        let os = std::io::Error::from_raw_os_error;
        assert!(abandoned(
            "fuser::reply",
            log::Level::Error,
            os(libc::ENOENT)
        ));
        // The connection gone, a malformed reply: still errors.
        assert!(!abandoned(
            "fuser::reply",
            log::Level::Error,
            os(libc::ENODEV)
        ));
        assert!(!abandoned(
            "fuser::reply",
            log::Level::Error,
            os(libc::EINVAL)
        ));
        // Someone else's message, or fuser's at another level.
        assert!(!abandoned(
            "other::crate",
            log::Level::Error,
            os(libc::ENOENT)
        ));
        assert!(!abandoned(
            "fuser::reply",
            log::Level::Warn,
            os(libc::ENOENT)
        ));
        let other = log::Record::builder()
            .args(format_args!(
                "Reply not sent for operation 7, replying with I/O error"
            ))
            .level(log::Level::Error)
            .target("fuser::reply")
            .build();
        assert!(!abandoned_reply(&other));
    }
}
