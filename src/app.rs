//! The app builder: a mount's settings, with their one set of defaults, and [`build`],
//! the one place a filesystem is wired from its parts ([`build_fs`] for Twilio over
//! HTTP; tests hand [`build`] a [`Backend`] of in-memory doubles).
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
//! `cmd::mount`. The one file it reads is the size cache the settings name
//! ([`crate::sizes`]), and only to hand it to the read core.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::crypto::PrivateKeys;
use crate::fs::{FsConfig, TwilioFs};
use crate::object::{ObjectClient, ObjectSource};
use crate::read::{ReadConfig, ReadCore, WindowCache};
use crate::sizes::{self, SizeCache};
use crate::stats::IoStats;
use crate::twilio::{Api, TwilioClient};

/// Plaintext bytes decrypted per window: a read fetches whole windows.
pub const DEFAULT_WINDOW: u64 = 1 << 20;

/// Memory for decrypted windows, shared by all open files (a sixteenth of it bounds the
/// windows prefetched at once).
pub const DEFAULT_CACHE_SIZE: u64 = 512 << 20;

/// How old a directory listing may get before it is listed again.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60);

/// The longest one whole listing (all its pages) may take before it is given up and
/// the previous listing kept: at Twilio's 100 items a page and well under a second a
/// page, time enough for some 100 000 recordings, yet a listing that never ends (pages
/// that trickle in forever) stops.
pub const DEFAULT_LISTING_DEADLINE: Duration = Duration::from_secs(600);

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
    /// Give up a listing (all its pages) that takes longer than this.
    pub listing_deadline: Duration,
    /// Only these rooms' media (RM…) and these calls' recordings (CA…); empty: all.
    pub rooms: Vec<String>,
    /// Only media created at or after this date (RFC 3339).
    pub since: Option<String>,
    /// Where exact sizes are saved for the next mounts ([`crate::sizes`]); `None`:
    /// kept in memory only.
    pub metadata_cache: Option<PathBuf>,
    /// Size files in the background after each listing, so that every size is exact
    /// without opening anything.
    pub exact_sizes: bool,
    /// Refuse to open media stored unencrypted ([`ReadConfig::require_encrypted`]).
    pub require_encrypted: bool,
}

impl Default for MountSettings {
    /// Files owned by whoever runs the mount, the default window, cache and refresh, the
    /// whole account, exact sizes saved where [`sizes::default_dir`] says (per this
    /// process's environment), files sized as they are opened.
    fn default() -> Self {
        Self {
            // SAFETY: getuid and getgid cannot fail and have no preconditions.
            uid: unsafe { libc::getuid() },
            gid: unsafe { libc::getgid() },
            window: DEFAULT_WINDOW,
            cache_size: DEFAULT_CACHE_SIZE,
            refresh: DEFAULT_REFRESH,
            listing_deadline: DEFAULT_LISTING_DEADLINE,
            rooms: Vec::new(),
            since: None,
            metadata_cache: sizes::default_dir(),
            exact_sizes: false,
            require_encrypted: false,
        }
    }
}

/// Where a filesystem's data comes from: the API, the storage, the counters of that
/// storage's fetches, and how long a reader may wait for it.
pub struct Backend {
    pub api: Arc<dyn Api>,
    pub source: Arc<dyn ObjectSource>,
    /// What `.stats` shows of the storage: the object client's own counters.
    pub io: Arc<IoStats>,
    /// Past this, an open or a read fails rather than hang.
    pub answer_within: Duration,
}

impl Backend {
    /// Twilio over HTTP: objects fetched with `twilio`'s connection pool and retry
    /// policy, every open and read answering within its bound
    /// ([`TwilioClient::answer_bound`]).
    pub fn http(twilio: Arc<TwilioClient>) -> Self {
        let objects = ObjectClient::new(twilio.clone());
        Self {
            io: objects.stats(),
            answer_within: twilio.answer_bound(),
            source: Arc::new(objects),
            api: twilio,
        }
    }
}

/// The filesystem for `settings`, over `backend`, decrypting with `keys`. Makes no
/// request: the first listing happens on the first `readdir` or `lookup`. Reads the
/// size cache, when `settings` names one.
pub fn build(settings: &MountSettings, backend: Backend, keys: Arc<PrivateKeys>) -> Arc<TwilioFs> {
    let sizes = match &settings.metadata_cache {
        Some(dir) => SizeCache::open(dir),
        None => SizeCache::in_memory(),
    };
    let core = read_core(
        backend.source,
        backend.io,
        backend.answer_within,
        keys,
        settings.window,
        settings.cache_size,
        settings.require_encrypted,
    )
    .with_sizes(Arc::new(sizes));
    let api = backend.api;
    let config = FsConfig {
        uid: settings.uid,
        gid: settings.gid,
        refresh: settings.refresh,
        listing_deadline: settings.listing_deadline,
        rooms: settings.rooms.clone(),
        since: settings.since.clone(),
        exact_sizes: settings.exact_sizes,
    };
    TwilioFs::new(config, api, Arc::new(core))
}

/// A read core over `source` (whose counters are `io`), answering within `answer_within`,
/// with windows of `window` bytes and `cache_size` bytes of cache: what `mount` reads
/// through ([`build`]) and what `compose` reads through.
pub fn read_core(
    source: Arc<dyn ObjectSource>,
    io: Arc<IoStats>,
    answer_within: Duration,
    keys: Arc<PrivateKeys>,
    window: u64,
    cache_size: u64,
    require_encrypted: bool,
) -> ReadCore {
    let config = ReadConfig {
        window,
        answer_within,
        require_encrypted,
    };
    let cache = Arc::new(WindowCache::new(cache_size as usize));
    ReadCore::new(config, source, keys, cache, io)
}

/// [`build`] over Twilio's HTTP API ([`Backend::http`]): what `mount` and `demo` run.
pub fn build_fs(
    settings: &MountSettings,
    twilio: Arc<TwilioClient>,
    keys: Arc<PrivateKeys>,
) -> Arc<TwilioFs> {
    build(settings, Backend::http(twilio), keys)
}
