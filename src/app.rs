//! The app builder: a mount's settings, with their one set of defaults, and [`build_fs`],
//! the one place a filesystem is wired from its parts.
//!
//! `mount` and `demo` both build their filesystem here, and integration tests can too,
//! so the three cannot drift apart: the same object client, window cache, read deadline
//! and `.stats` counters, from the same defaults. The `mount` flags' defaults are made
//! from the constants below (see `crate::cli`), so `--help` always tells what a mount
//! without flags does.
//!
//! A plain library module: it must not see clap or any flag (the `cmd` layer turns flags
//! into [`MountSettings`]), must not load keys or credentials (it is handed a client and
//! keys), and does not mount: the FUSE session, its mount options and signals belong to
//! `cmd::mount`.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::WindowCache;
use crate::crypto::PrivateKeys;
use crate::fs::{FsConfig, TwilioFs};
use crate::object::ObjectClient;
use crate::twilio::TwilioClient;

/// Plaintext bytes decrypted per window: a read fetches whole windows.
pub const DEFAULT_WINDOW: u64 = 1 << 20;

/// Memory for decrypted windows, shared by all open files (a sixteenth of it bounds the
/// windows prefetched at once).
pub const DEFAULT_CACHE_SIZE: u64 = 512 << 20;

/// How old a directory listing may get before it is listed again.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60);

/// What a mount shows and how it reads: everything of the filesystem that a user
/// chooses, none of how it is mounted (mount point, mount options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSettings {
    /// Owner shown for files and directories.
    pub uid: u32,
    /// Group shown for files and directories.
    pub gid: u32,
    /// Plaintext bytes per window, a multiple of 16.
    pub window: u64,
    /// Bytes of decrypted windows kept in memory, shared by all open files.
    pub cache_size: u64,
    /// List directories again after this long.
    pub refresh: Duration,
    /// Only these rooms' media (RM…); empty: all.
    pub rooms: Vec<String>,
    /// Only media created at or after this date (RFC 3339).
    pub since: Option<String>,
}

impl Default for MountSettings {
    /// Files owned by whoever runs the mount, the default window, cache and refresh, the
    /// whole account.
    fn default() -> Self {
        Self {
            // SAFETY: getuid and getgid cannot fail and have no preconditions.
            uid: unsafe { libc::getuid() },
            gid: unsafe { libc::getgid() },
            window: DEFAULT_WINDOW,
            cache_size: DEFAULT_CACHE_SIZE,
            refresh: DEFAULT_REFRESH,
            rooms: Vec::new(),
            since: None,
        }
    }
}

/// The filesystem for `settings`, reading the account through `twilio` and decrypting
/// with `keys`: its objects are fetched with `twilio`'s retry policy, every open and read
/// answers within `twilio`'s bound ([`TwilioClient::answer_bound`]), and `.stats` counts
/// the storage fetches. Makes no request: the first listing happens on the first
/// `readdir` or `lookup`.
pub fn build_fs(
    settings: &MountSettings,
    twilio: Arc<TwilioClient>,
    keys: Arc<PrivateKeys>,
) -> Arc<TwilioFs> {
    let objects = ObjectClient::new(twilio.clone());
    let io_stats = objects.stats();
    let config = FsConfig {
        uid: settings.uid,
        gid: settings.gid,
        window: settings.window,
        refresh: settings.refresh,
        rooms: settings.rooms.clone(),
        since: settings.since.clone(),
        answer_within: twilio.answer_bound(),
    };
    let cache = Arc::new(WindowCache::new(settings.cache_size as usize));
    Arc::new(TwilioFs::new(config, twilio, Arc::new(objects), keys, cache).with_io_stats(io_stats))
}
