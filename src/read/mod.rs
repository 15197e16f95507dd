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
//! [`ReadCore`] owns what all readers share: one [`ObjectReader`] per SID while anyone
//! holds it (so a file open in the mount and streamed over HTTP is fetched and
//! decrypted once, and a SID nobody knows any more costs nothing), the
//! byte-bounded [`WindowCache`], the global budget of windows being prefetched
//! ([`ReadAhead`]), the answer bound (of reads, and of each window prefetched), and
//! the counters behind `.stats` ([`Stats`]). A [`Handle`] is one open
//! file: its own read-ahead state and what it has been served.
//!
//! Every exact size the core learns (an open, a metadata look-up, sizing in the
//! background) is recorded in one place, [`ReadCore::learned`], into the
//! [`SizeCache`], which front-ends ask through [`ReadCore::known_size`] before a file
//! was ever opened. [`ReadCore::size_all`] sizes files in the background, at most
//! [`SIZING_AT_ONCE`] at a time, for `--exact-sizes`.
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
pub mod unencrypted;

pub use cache::{CacheStats, WindowCache, WindowKey};
pub use error::{Failure, ReadError};
pub use handle::Handle;
pub use object::{ObjectMeta, ObjectReader, ReadAhead};
pub use prefetch::Prefetcher;
pub use served::Served;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;

use crate::crypto::PrivateKeys;
use crate::object::ObjectSource;
use crate::sizes::SizeCache;
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
    /// retries are spent anyway, but it holds whatever the storage does. It is also the
    /// deadline of a window being prefetched: one that no reader would wait for is
    /// abandoned, and its slot of the read-ahead goes to other files.
    pub answer_within: Duration,
    /// Refuse to open objects stored unencrypted ([`ReadError::NotEncrypted`]):
    /// `--require-encrypted`.
    pub require_encrypted: bool,
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
    /// Windows being prefetched now (at most the read-ahead's slots).
    pub prefetching: u64,
    /// Prefetches abandoned at their deadline (the answer bound).
    pub prefetches_abandoned: u64,
}

/// What every reader shares. Cheap to share behind an `Arc`.
pub struct ReadCore {
    config: ReadConfig,
    source: Arc<dyn ObjectSource>,
    keys: Arc<PrivateKeys>,
    cache: Arc<WindowCache>,
    /// One reader per SID while anything holds it (a file of the mount, a handle, a
    /// sizing task): all who read a SID share one, and it goes with its last holder, so
    /// that SIDs gone from the listings do not stay here ([`Self::object`]).
    objects: Mutex<Readers>,
    next_object: AtomicU64,
    /// Windows being prefetched at once, across all files (see [`prefetch_slots`]),
    /// each within the answer bound.
    read_ahead: Arc<ReadAhead>,
    /// Read-ahead per handle: at most 32 MiB (as many windows as are prefetched at once
    /// with the default cache), and a quarter of the cache.
    max_ahead: u64,
    started: SystemTime,
    io: Arc<IoStats>,
    bytes_served: AtomicU64,
    errors: AtomicU64,
    open_handles: AtomicU64,
    /// Exact sizes learned here or by earlier mounts.
    sizes: Arc<SizeCache>,
    /// Objects being sized in the background at most [`SIZING_AT_ONCE`] at a time, and
    /// the SIDs queued or in progress (each is sized once, however often listed).
    sizing: Arc<tokio::sync::Semaphore>,
    sizing_now: Mutex<HashSet<String>>,
}

/// The readers of [`ReadCore::object`]: weak, so that a reader goes with its last
/// holder; dead entries are pruned once the map reaches `prune_at` entries.
#[derive(Default)]
struct Readers {
    by_media: HashMap<MediaRef, Weak<ObjectReader>>,
    prune_at: usize,
}

/// The fewest entries [`Readers`] prunes at: pruning a small map is not worth a scan.
const MIN_PRUNE: usize = 1024;

/// Objects sized at once in the background (`--exact-sizes`): each costs a request or
/// two of a few bytes, so a few at a time list a big account in seconds while leaving
/// the connection pool and the API's concurrency limit to readers.
pub const SIZING_AT_ONCE: usize = 4;

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
            read_ahead: Arc::new(ReadAhead::new(
                prefetch_slots(capacity, config.window),
                config.answer_within,
            )),
            max_ahead: (32u64 << 20).min(capacity / 4),
            config,
            source,
            keys,
            cache,
            objects: Mutex::new(Readers::default()),
            next_object: AtomicU64::new(1),
            started: SystemTime::now(),
            io,
            bytes_served: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            open_handles: AtomicU64::new(0),
            sizes: Arc::new(SizeCache::in_memory()),
            sizing: Arc::new(tokio::sync::Semaphore::new(SIZING_AT_ONCE)),
            sizing_now: Mutex::new(HashSet::new()),
        }
    }

    /// This core recording the sizes it learns in `sizes` (by default, a cache in
    /// memory only).
    pub fn with_sizes(mut self, sizes: Arc<SizeCache>) -> Self {
        self.sizes = sizes;
        self
    }

    pub fn config(&self) -> &ReadConfig {
        &self.config
    }

    /// The exact sizes known.
    pub fn sizes(&self) -> &Arc<SizeCache> {
        &self.sizes
    }

    /// The exact plaintext size of `object` with no request: from its metadata if it
    /// was learned, else from the [`SizeCache`] (believed from disk while the API's
    /// `listed` size agrees with it).
    pub fn known_size(&self, object: &ObjectReader, listed: Option<u64>) -> Option<u64> {
        match object.known_meta() {
            Some(meta) => Some(meta.plain_len),
            None => self.sizes.lookup(object.sid(), listed),
        }
    }

    /// The reader of `media`: the one someone holds already, else a new one. Learns
    /// nothing yet: no request. Readers nobody holds any more are pruned from the map as
    /// it grows (each time it doubles), so it holds at most twice the readers alive.
    pub fn object(&self, media: &MediaRef) -> Arc<ObjectReader> {
        let mut readers = self.objects.lock().expect("objects lock");
        if let Some(reader) = readers.by_media.get(media).and_then(Weak::upgrade) {
            return reader;
        }
        let reader = Arc::new(ObjectReader::new(
            self.next_object.fetch_add(1, Ordering::Relaxed),
            media.clone(),
            self.source.clone(),
            self.keys.clone(),
            self.cache.clone(),
            self.config.window,
        ));
        readers
            .by_media
            .insert(media.clone(), Arc::downgrade(&reader));
        if readers.by_media.len() >= readers.prune_at {
            readers.by_media.retain(|_, r| r.strong_count() > 0);
            readers.prune_at = (2 * readers.by_media.len()).max(MIN_PRUNE);
        }
        reader
    }

    /// Opens `media` for reading: learns its envelope and exact size (one ranged GET
    /// that also fetches the first window) so that a wrong key fails here, before any
    /// byte is read. With [`ReadConfig::require_encrypted`], an object stored
    /// unencrypted fails here too.
    pub async fn open(self: &Arc<Self>, media: &MediaRef) -> Result<Handle, ReadError> {
        self.open_object(self.object(media)).await
    }

    /// [`Self::open`] for a reader already at hand.
    pub async fn open_object(
        self: &Arc<Self>,
        object: Arc<ObjectReader>,
    ) -> Result<Handle, ReadError> {
        let meta = self
            .bounded(object.sid(), object.meta())
            .await
            .inspect_err(|e| self.failed(e))?;
        self.learned(&object, meta.stored_len, meta.plain_len);
        if self.config.require_encrypted {
            object
                .require_encrypted(meta)
                .inspect_err(|e| self.failed(e))?;
        }
        Ok(Handle::new(self.clone(), object))
    }

    /// The object's metadata (its first GET when nobody has made it yet), within the
    /// answer bound. Not counted as an error of a reader when it fails.
    pub async fn meta<'a>(&self, object: &'a ObjectReader) -> Result<&'a ObjectMeta, ReadError> {
        let meta = self.bounded(object.sid(), object.meta()).await?;
        self.learned(object, meta.stored_len, meta.plain_len);
        Ok(meta)
    }

    /// The exact plaintext size of `object`, fetching as little as can tell it
    /// ([`ObjectReader::learn_size`]), within the answer bound. Not counted as an
    /// error of a reader when it fails.
    pub async fn size(&self, object: &ObjectReader) -> Result<u64, ReadError> {
        if let Some(meta) = object.known_meta() {
            return Ok(meta.plain_len);
        }
        let (stored, plain) = self.bounded(object.sid(), object.learn_size()).await?;
        self.learned(object, stored, plain);
        Ok(plain)
    }

    /// Sizes `objects` ([`Self::size`]) in the background, at most [`SIZING_AT_ONCE`]
    /// at a time across all calls, skipping those being sized already; returns at once.
    /// A failure is logged at DEBUG only: the file keeps its listed size, and an open
    /// meets the error (and says it) if it lasts.
    pub fn size_all(self: &Arc<Self>, objects: Vec<Arc<ObjectReader>>) {
        let objects: Vec<_> = {
            let mut now = self.sizing_now.lock().expect("sizing lock");
            objects
                .into_iter()
                .filter(|o| now.insert(o.sid().to_owned()))
                .collect()
        };
        if objects.is_empty() {
            return;
        }
        tracing::debug!("sizing {} files in the background", objects.len());
        let this = self.clone();
        tokio::spawn(async move {
            // At most SIZING_AT_ONCE futures alive per call, and permits across calls.
            let each = |object: Arc<ObjectReader>| {
                let this = &this;
                async move {
                    if let Ok(_permit) = this.sizing.acquire().await
                        && let Err(e) = this.size(&object).await
                    {
                        tracing::debug!("cannot size {}: {e}", object.sid());
                    }
                    let mut now = this.sizing_now.lock().expect("sizing lock");
                    now.remove(object.sid());
                }
            };
            futures_util::stream::iter(objects)
                .for_each_concurrent(SIZING_AT_ONCE, each)
                .await;
        });
    }

    /// Where every exact size the core learns goes: the [`SizeCache`].
    fn learned(&self, object: &ObjectReader, stored: u64, plain: u64) {
        self.sizes.record(object.sid(), stored, plain);
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
            prefetching: self.read_ahead.in_flight(),
            prefetches_abandoned: self.read_ahead.abandoned(),
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

    fn core(storage: Arc<dyn ObjectSource>, key: &rsa::PrivateKey) -> Arc<ReadCore> {
        let mut keys = PrivateKeys::new();
        keys.add("k.pem", key.clone());
        Arc::new(ReadCore::new(
            ReadConfig {
                window: 4096,
                answer_within: Duration::from_secs(5),
                require_encrypted: false,
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

    /// Waits up to `secs` for no window to be prefetched; false if some still are.
    async fn prefetches_end(core: &ReadCore, secs: u64) -> bool {
        let until = std::time::Instant::now() + Duration::from_secs(secs);
        while core.stats().prefetching > 0 {
            if std::time::Instant::now() > until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_seek_cancels_the_read_ahead_it_made_useless_and_a_close_the_rest() {
        let key = seal::test_key(11);
        let plain: Vec<u8> = (0..8_000_000u32).map(|i| (i % 251) as u8).collect();
        let storage = Arc::new(MemoryStorage::new());
        storage.put_sealed(SID, &plain, &key, true);
        let faulty = Arc::new(crate::faults::FaultySource::new(storage.clone()));
        let core = core(faulty.clone(), &key);
        let media = MediaRef::recording(SID);
        for close in [false, true] {
            let h = core.open(&media).await.unwrap();
            let at = if close { 1_000_000 } else { 0 };
            // A stream (after a seek, the second time): read-ahead follows it.
            h.read(at, 4096).await.unwrap();
            let mut off = at + 4096;
            while off < at + (160 << 10) {
                assert_eq!(
                    h.read(off, 4096).await.unwrap(),
                    &plain[off as usize..][..4096]
                );
                off += 4096;
            }
            assert!(prefetches_end(&core, 5).await);
            // Storage stops answering past the next two windows: the read-ahead that this
            // read starts hangs there.
            faulty.stall(SID, off + 8192..7_000_000);
            h.read(off, 4096).await.unwrap();
            assert!(core.stats().prefetching > 0, "no read-ahead to cancel");
            let until = std::time::Instant::now() + Duration::from_secs(2);
            while faulty.stalled_now() == 0 && std::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert!(faulty.stalled_now() > 0, "no read-ahead stalled");
            if close {
                drop(h);
            } else {
                // A far seek: what was being fetched ahead of `off` is of no use now.
                let far = 7_500_000; // beyond prefetch::TOLERANCE
                assert_eq!(
                    h.read(far, 4096).await.unwrap(),
                    &plain[far as usize..][..4096]
                );
            }
            assert!(
                prefetches_end(&core, 2).await,
                "{} windows still being prefetched (close: {close})",
                core.stats().prefetching
            );
            assert_eq!(faulty.stalled_now(), 0, "their requests were dropped");
            faulty.clear();
        }
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
