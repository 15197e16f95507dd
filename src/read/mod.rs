//! The read core: open a recording or composition by SID and read plaintext at any
//! offset, for every front-end (the FUSE mount, the HTTP gateway, the composer).
//!
//! ```text
//! ReadCore::open(media) ─► Handle ─► Handle::read(offset, size)
//!                                     1. prefetch: the handle's Prefetcher decides the
//!                                        read-ahead, ObjectReader::prefetch starts it
//!                                     2. read:     ObjectReader::read, within the bound
//!                                        ─► WindowCache ─► fetch_window ─► crypto::window
//!                                        ─► ObjectSource (storage)
//!                                     3. record:   the handle's Served counts the bytes
//!                                     4. release:  windows the reader has whole leave the
//!                                        cache
//! ```
//!
//! [`ReadCore`] owns what all readers share: one [`ObjectReader`] per SID (so a file
//! open in the mount and streamed over HTTP is fetched and decrypted once), the
//! byte-bounded [`WindowCache`], the global budget of windows being prefetched, the
//! answer bound, and the counters behind `.stats` ([`Stats`]). A [`Handle`] is one open
//! file: its own read-ahead state and what it has been served.
//!
//! Errors come as [`ReadError`] kinds, never errnos or HTTP statuses: each front-end
//! maps them. This module must not know about FUSE, inodes or HTTP, must not block a
//! thread, and never writes plaintext anywhere but the cache.

pub mod cache;
mod error;
mod handle;
pub mod object;
pub mod prefetch;
pub mod served;

pub use cache::{CacheStats, WindowCache, WindowKey};
pub use error::{Failure, ReadError};
pub use handle::Handle;
pub use object::{ObjectMeta, ObjectReader};
pub use prefetch::Prefetcher;
pub use served::Served;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::crypto::PrivateKeys;
use crate::object::ObjectSource;
use crate::stats::IoStats;
use crate::twilio::MediaRef;

/// How the core reads.
#[derive(Debug, Clone)]
pub struct ReadConfig {
    /// Plaintext window size (rounded up to a multiple of 16).
    pub window: u64,
    /// The longest an open or a read waits for the storage: past it,
    /// [`ReadError::TimedOut`]. The retry budget plus one request timeout plus a second
    /// ([`crate::twilio::TwilioClient::answer_bound`]), so it only cuts reads whose
    /// retries are spent anyway, but it holds whatever the storage does.
    pub answer_within: Duration,
}

/// Counters since the core started: what `.stats` shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub uptime_secs: u64,
    /// The decrypted-window cache: `hits` and `misses` are window lookups by reads and
    /// read-ahead (a file's first window is fetched by `open`, so reading it is a hit);
    /// `shared_fetches` waited for a fetch already in flight.
    pub cache: CacheStats,
    /// Plaintext bytes answered to readers.
    pub bytes_served: u64,
    /// Ciphertext bytes received from storage.
    pub bytes_fetched: u64,
    /// Ranged storage fetches completed.
    pub fetches: u64,
    /// Storage attempts beyond the first (5xx, 429, cut bodies, expired URLs).
    pub retries: u64,
    /// Storage fetches that failed once their retries were spent.
    pub fetch_errors: u64,
    /// Opens and reads answered with an error.
    pub errors: u64,
    /// Media files open now.
    pub open_handles: u64,
    /// Storage fetches in progress now.
    pub in_flight: u64,
}

/// What every reader shares. Cheap to share behind an `Arc`.
pub struct ReadCore {
    config: ReadConfig,
    source: Arc<dyn ObjectSource>,
    keys: Arc<PrivateKeys>,
    cache: Arc<WindowCache>,
    /// One reader per SID, made on first use and kept: objects never change.
    objects: Mutex<HashMap<MediaRef, Arc<ObjectReader>>>,
    next_object: AtomicU64,
    /// Windows being prefetched at once, across all files (see [`prefetch_slots`]).
    prefetch_budget: Arc<tokio::sync::Semaphore>,
    /// Read-ahead per handle: at most 64 MiB, and a quarter of the cache.
    max_ahead: u64,
    started: SystemTime,
    io: Arc<IoStats>,
    bytes_served: AtomicU64,
    errors: AtomicU64,
    open_handles: AtomicU64,
}

impl ReadCore {
    /// A core reading `source` with `keys`, keeping windows in `cache`. `io` are the
    /// storage counters `.stats` shows (those of the [`crate::object::ObjectClient`]
    /// that `source` is; any fresh [`IoStats`] for another source).
    pub fn new(
        config: ReadConfig,
        source: Arc<dyn ObjectSource>,
        keys: Arc<PrivateKeys>,
        cache: Arc<WindowCache>,
        io: Arc<IoStats>,
    ) -> Self {
        let capacity = cache.stats().capacity as u64;
        Self {
            prefetch_budget: Arc::new(tokio::sync::Semaphore::new(prefetch_slots(
                capacity,
                config.window,
            ))),
            max_ahead: (64u64 << 20).min(capacity / 4),
            config,
            source,
            keys,
            cache,
            objects: Mutex::new(HashMap::new()),
            next_object: AtomicU64::new(1),
            started: SystemTime::now(),
            io,
            bytes_served: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            open_handles: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &ReadConfig {
        &self.config
    }

    /// The reader of `media`, made on first use. Learns nothing yet: no request.
    pub fn object(&self, media: &MediaRef) -> Arc<ObjectReader> {
        let mut objects = self.objects.lock().expect("objects lock");
        objects
            .entry(media.clone())
            .or_insert_with(|| {
                Arc::new(ObjectReader::new(
                    self.next_object.fetch_add(1, Ordering::Relaxed),
                    media.clone(),
                    self.source.clone(),
                    self.keys.clone(),
                    self.cache.clone(),
                    self.config.window,
                ))
            })
            .clone()
    }

    /// Opens `media` for reading: learns its envelope and exact size (one ranged GET
    /// that also fetches the first window) so that a wrong key fails here, before any
    /// byte is read.
    pub async fn open(self: &Arc<Self>, media: &MediaRef) -> Result<Handle, ReadError> {
        self.open_object(self.object(media)).await
    }

    /// [`Self::open`] for a reader already at hand.
    pub async fn open_object(
        self: &Arc<Self>,
        object: Arc<ObjectReader>,
    ) -> Result<Handle, ReadError> {
        self.bounded(object.sid(), object.meta())
            .await
            .inspect_err(|e| self.failed(e))?;
        Ok(Handle::new(self.clone(), object))
    }

    /// The object's metadata (its first GET when nobody has made it yet), within the
    /// answer bound. Not counted as an error of a reader when it fails.
    pub async fn meta<'a>(&self, object: &'a ObjectReader) -> Result<&'a ObjectMeta, ReadError> {
        self.bounded(object.sid(), object.meta()).await
    }

    /// The counters, now.
    pub fn stats(&self) -> Stats {
        let io = self.io.snapshot();
        Stats {
            uptime_secs: self.started.elapsed().map_or(0, |d| d.as_secs()),
            cache: self.cache.stats(),
            bytes_served: self.bytes_served.load(Ordering::Relaxed),
            bytes_fetched: io.bytes_fetched,
            fetches: io.fetches,
            retries: io.retries,
            fetch_errors: io.fetch_errors,
            errors: self.errors.load(Ordering::Relaxed),
            open_handles: self.open_handles.load(Ordering::Relaxed),
            in_flight: io.in_flight,
        }
    }

    /// `fut` if it answers within [`ReadConfig::answer_within`], else
    /// [`ReadError::TimedOut`]. Dropping `fut` cancels its requests; a window that other
    /// readers share is fetched again by the next one who asks.
    async fn bounded<T>(
        &self,
        sid: &str,
        fut: impl Future<Output = Result<T, ReadError>>,
    ) -> Result<T, ReadError> {
        let after = self.config.answer_within;
        tokio::time::timeout(after, fut).await.unwrap_or_else(|_| {
            Err(ReadError::TimedOut {
                sid: sid.to_owned(),
                after,
            })
        })
    }

    /// Counts and logs a failed open or read: one WARN naming the SID and the cause.
    fn failed(&self, e: &ReadError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("{e}");
    }
}

/// How many windows may be prefetched at once across all files: a sixteenth of what the
/// cache holds, between 2 and 32 (32 with the default 512 MiB and 1 MiB windows). Each
/// one in flight is outside the cache's budget, so this is what keeps the process
/// within `--cache-size` plus a few tens of MiB. Against S3-like storage (20 ms before
/// each answer, 64 MiB/s per connection) a 1 MiB GET takes about 36 ms, so each slot
/// brings about 29 MB/s: `cp` went from 253–260 MB/s with 16 slots to 274–372 with 32.
fn prefetch_slots(cache_bytes: u64, window: u64) -> usize {
    (cache_bytes / window.max(1) / 16).clamp(2, 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::seal;
    use crate::object::MemoryStorage;

    const SID: &str = "RT0123456789abcdef0123456789abcdef";

    fn core(storage: Arc<MemoryStorage>, key: &rsa::PrivateKey) -> Arc<ReadCore> {
        let mut keys = PrivateKeys::new();
        keys.add("k.pem", key.clone());
        Arc::new(ReadCore::new(
            ReadConfig {
                window: 4096,
                answer_within: Duration::from_secs(5),
            },
            storage,
            Arc::new(keys),
            Arc::new(WindowCache::new(1 << 20)),
            Arc::default(),
        ))
    }

    #[test]
    fn prefetch_slots_scale_with_the_cache() {
        assert_eq!(prefetch_slots(512 << 20, 1 << 20), 32);
        assert_eq!(prefetch_slots(64 << 20, 1 << 20), 4);
        assert_eq!(prefetch_slots(1 << 20, 1 << 20), 2);
    }

    #[tokio::test]
    async fn two_handles_of_one_sid_share_one_reader_and_its_windows() {
        let key = seal::test_key(11);
        let plain: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let storage = Arc::new(MemoryStorage::new());
        storage.put_sealed(SID, &plain, &key, true);
        let core = core(storage.clone(), &key);
        let media = MediaRef::recording(SID);
        let a = core.open(&media).await.unwrap();
        let b = core.open(&media).await.unwrap();
        assert!(Arc::ptr_eq(a.object(), b.object()));
        assert_eq!(core.stats().open_handles, 2);
        assert_eq!(
            &a.read(10_000, 5000).await.unwrap()[..],
            &plain[10_000..15_000]
        );
        let gets = storage.gets();
        assert_eq!(
            &b.read(10_000, 5000).await.unwrap()[..],
            &plain[10_000..15_000]
        );
        assert_eq!(storage.gets(), gets, "the second reader hits the cache");
        assert_eq!(b.len(), plain.len() as u64);
        drop(a);
        assert_eq!(core.stats().open_handles, 1);
        let s = core.stats();
        assert_eq!(s.bytes_served, 10_000);
        assert_eq!(s.errors, 0);
    }

    #[tokio::test]
    async fn a_failed_open_is_counted_and_a_gone_object_is_gone() {
        let key = seal::test_key(11);
        let core = core(Arc::new(MemoryStorage::new()), &key);
        let err = core.open(&MediaRef::recording(SID)).await.err().unwrap();
        assert!(matches!(err, ReadError::Gone { .. }), "{err:?}");
        assert_eq!(core.stats().errors, 1);
        assert_eq!(core.stats().open_handles, 0);
    }
}
