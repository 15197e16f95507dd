//! The plaintext window cache: a byte-bounded LRU of decrypted windows, in memory only,
//! shared by every open file, with in-flight sharing so that two readers of one window
//! cause one fetch.
//!
//! It owns memory accounting and nothing else: it does not know how a window is fetched
//! or decrypted (the caller passes that as a future) and it never writes to disk.
//!
//! A `std::sync::Mutex` guards the map: no `.await` happens while it is held, and the
//! critical sections are a few pointer updates.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use lru::LruCache;
use tokio::sync::OnceCell;

/// Which window: an object and the window's index in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowKey {
    pub object: u64,
    pub index: u64,
}

/// Counters a user can read (`.stats`), all since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Readers that found the window already being fetched and waited for it.
    pub shared_fetches: u64,
    pub evictions: u64,
    /// Windows dropped because the kernel's page cache holds all of them (see
    /// [`super::served`]).
    pub released: u64,
    pub bytes: usize,
    pub capacity: usize,
    pub windows: usize,
}

pub struct WindowCache<K = WindowKey> {
    inner: Mutex<Inner<K>>,
}

struct Inner<K> {
    lru: LruCache<K, Bytes>,
    bytes: usize,
    capacity: usize,
    in_flight: HashMap<K, Arc<OnceCell<Bytes>>>,
    stats: CacheStats,
}

impl<K: Hash + Eq + Copy> WindowCache<K> {
    /// A cache holding at most `capacity` bytes of plaintext.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
                capacity,
                in_flight: HashMap::new(),
                stats: CacheStats::default(),
            }),
        }
    }

    /// The window if cached (and marks it recently used).
    pub fn get(&self, key: &K) -> Option<Bytes> {
        let mut inner = self.inner.lock().expect("cache lock");
        let hit = inner.lru.get(key).cloned();
        if hit.is_some() {
            inner.stats.hits += 1;
        }
        hit
    }

    /// Whether the window is cached or being fetched (a prefetcher skips those).
    pub fn contains_or_in_flight(&self, key: &K) -> bool {
        let inner = self.inner.lock().expect("cache lock");
        inner.lru.contains(key) || inner.in_flight.contains_key(key)
    }

    /// The window from the cache, or from `fetch`, run once however many callers ask
    /// for the same window at the same time. A failed fetch is not cached: the callers
    /// waiting on it each try again in turn, so one error is not handed to everybody.
    pub async fn get_or_fetch<F, Fut, E>(&self, key: K, fetch: F) -> Result<Bytes, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
    {
        let (cell, owner) = {
            let mut inner = self.inner.lock().expect("cache lock");
            if let Some(hit) = inner.lru.get(&key).cloned() {
                inner.stats.hits += 1;
                return Ok(hit);
            }
            match inner.in_flight.get(&key).cloned() {
                Some(cell) => {
                    inner.stats.shared_fetches += 1;
                    (cell, false)
                }
                None => {
                    inner.stats.misses += 1;
                    let cell = Arc::new(OnceCell::new());
                    inner.in_flight.insert(key, cell.clone());
                    (cell, true)
                }
            }
        };
        // The caller that began the fetch, dropped before the window came (a prefetch
        // cancelled by a seek or abandoned at its deadline): the window is no longer in
        // flight, unless another caller takes the fetch over.
        let guard = owner.then(|| Abandoned {
            cache: self,
            key,
            cell: &cell,
        });
        let result = cell.get_or_try_init(fetch).await.cloned();
        std::mem::forget(guard);
        self.settle(key, &cell, &result);
        result
    }

    /// Registers `key` as in flight for a caller that will fetch it ([`Claim::fetch`]),
    /// unless it is cached or in flight already. Readers that ask for it meanwhile wait
    /// for that fetch (or make it themselves, if it has not begun yet) instead of
    /// starting another; a prefetcher that claims before it spawns its task therefore
    /// never starts the same window twice.
    pub fn claim(self: &Arc<Self>, key: K) -> Option<Claim<K>> {
        let mut inner = self.inner.lock().expect("cache lock");
        if inner.lru.contains(&key) || inner.in_flight.contains_key(&key) {
            return None;
        }
        inner.stats.misses += 1;
        let cell = Arc::new(OnceCell::new());
        inner.in_flight.insert(key, cell.clone());
        Some(Claim {
            cache: self.clone(),
            key,
            cell,
        })
    }

    /// After a fetch of `key` through `cell` ended: the first caller to get here moves
    /// the window from in-flight to the LRU.
    fn settle<E>(&self, key: K, cell: &Arc<OnceCell<Bytes>>, result: &Result<Bytes, E>) {
        let mut inner = self.inner.lock().expect("cache lock");
        match inner.in_flight.get(&key) {
            Some(c) if Arc::ptr_eq(c, cell) => {
                inner.in_flight.remove(&key);
                if let Ok(data) = result {
                    inner.insert(key, data.clone());
                }
            }
            // Another fetch of it is under way: that one will put it there.
            Some(_) => {}
            // The fetch that began it was cancelled and this caller finished it.
            None => {
                if let Ok(data) = result
                    && !inner.lru.contains(&key)
                {
                    inner.insert(key, data.clone());
                }
            }
        }
    }

    /// The fetch that began `key` was dropped unfinished: out of in-flight, unless a
    /// reader completed it meanwhile.
    fn abandon(&self, key: K, cell: &Arc<OnceCell<Bytes>>) {
        let mut inner = self.inner.lock().expect("cache lock");
        if (inner.in_flight.get(&key)).is_some_and(|c| Arc::ptr_eq(c, cell) && !c.initialized()) {
            inner.in_flight.remove(&key);
        }
    }

    /// Puts a window that is already at hand (decrypted along with something else).
    pub fn insert(&self, key: K, data: Bytes) {
        self.inner.lock().expect("cache lock").insert(key, data);
    }

    /// Drops a window that nobody needs any more (a handle was served all of it).
    pub fn release(&self, key: &K) {
        let mut inner = self.inner.lock().expect("cache lock");
        if let Some(data) = inner.lru.pop(key) {
            inner.bytes -= data.len();
            inner.stats.released += 1;
        }
    }

    pub fn stats(&self) -> CacheStats {
        let inner = self.inner.lock().expect("cache lock");
        CacheStats {
            bytes: inner.bytes,
            capacity: inner.capacity,
            windows: inner.lru.len(),
            ..inner.stats
        }
    }
}

/// Takes a window out of in-flight when the fetch that began it is dropped unfinished
/// and nobody has completed it.
struct Abandoned<'a, K: Hash + Eq + Copy> {
    cache: &'a WindowCache<K>,
    key: K,
    cell: &'a Arc<OnceCell<Bytes>>,
}

impl<K: Hash + Eq + Copy> Drop for Abandoned<'_, K> {
    fn drop(&mut self) {
        self.cache.abandon(self.key, self.cell);
    }
}

/// A window registered as in flight by [`WindowCache::claim`], to be fetched with
/// [`Claim::fetch`]. Dropped unfetched (a cancelled prefetch), it is in flight no more.
pub struct Claim<K: Hash + Eq + Copy = WindowKey> {
    cache: Arc<WindowCache<K>>,
    key: K,
    cell: Arc<OnceCell<Bytes>>,
}

impl<K: Hash + Eq + Copy> Claim<K> {
    /// Fetches the claimed window (or waits for the reader who began it first) and puts
    /// it in the cache.
    pub async fn fetch<F, Fut, E>(self, fetch: F) -> Result<Bytes, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
    {
        let result = self.cell.get_or_try_init(fetch).await.cloned();
        self.cache.settle(self.key, &self.cell, &result);
        result
    }
}

impl<K: Hash + Eq + Copy> Drop for Claim<K> {
    fn drop(&mut self) {
        self.cache.abandon(self.key, &self.cell);
    }
}

impl<K: Hash + Eq + Copy> Inner<K> {
    fn insert(&mut self, key: K, data: Bytes) {
        if data.len() > self.capacity {
            return; // larger than the whole budget: serve it, don't keep it
        }
        if let Some(old) = self.lru.put(key, data.clone()) {
            self.bytes -= old.len();
        }
        self.bytes += data.len();
        while self.bytes > self.capacity {
            let Some((_, evicted)) = self.lru.pop_lru() else {
                break;
            };
            self.bytes -= evicted.len();
            self.stats.evictions += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn key(index: u64) -> WindowKey {
        WindowKey { object: 1, index }
    }

    #[tokio::test]
    async fn stays_within_its_byte_budget_evicting_least_recently_used() {
        let cache = WindowCache::new(300);
        for i in 0..3 {
            let got: Result<_, ()> = cache
                .get_or_fetch(key(i), || async { Ok(Bytes::from(vec![i as u8; 100])) })
                .await;
            assert_eq!(got.unwrap().len(), 100);
        }
        assert_eq!(cache.stats().bytes, 300);
        assert!(cache.get(&key(0)).is_some()); // 0 is now most recent
        let _: Result<_, ()> = cache
            .get_or_fetch(key(3), || async { Ok(Bytes::from(vec![3; 100])) })
            .await;
        let s = cache.stats();
        assert_eq!((s.bytes, s.windows, s.evictions), (300, 3, 1));
        assert!(cache.get(&key(1)).is_none(), "1 was least recently used");
        assert!(cache.get(&key(0)).is_some());
        // Larger than the budget: returned, not kept.
        let big: Result<_, ()> = cache
            .get_or_fetch(key(9), || async { Ok(Bytes::from(vec![0; 301])) })
            .await;
        assert_eq!(big.unwrap().len(), 301);
        assert!(cache.stats().bytes <= 300);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_readers_of_one_window_share_one_fetch() {
        let cache = Arc::new(WindowCache::new(1 << 20));
        let fetches = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (cache, fetches) = (cache.clone(), fetches.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_fetch(key(7), || async {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok::<_, ()>(Bytes::from_static(b"window"))
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), Bytes::from_static(b"window"));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        let s = cache.stats();
        assert_eq!(s.misses, 1);
        assert_eq!(s.shared_fetches + s.hits, 15);
    }

    #[tokio::test]
    async fn a_failed_fetch_is_not_cached() {
        let cache = WindowCache::new(1000);
        let r: Result<Bytes, &str> = cache
            .get_or_fetch(key(1), || async { Err("storage down") })
            .await;
        assert_eq!(r, Err("storage down"));
        assert_eq!(cache.stats().windows, 0);
        let r: Result<Bytes, &str> = cache
            .get_or_fetch(key(1), || async { Ok(Bytes::from_static(b"ok")) })
            .await;
        assert_eq!(r.unwrap(), Bytes::from_static(b"ok"));
    }
}
