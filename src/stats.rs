//! Counters of storage fetches, read by a mount's `.stats` file.
//!
//! [`IoStats`] is shared between the object client that counts (every ranged fetch: its
//! bytes, its extra attempts, its failure) and the filesystem that shows them. Plain
//! relaxed atomics: each counter is exact on its own, and a snapshot is a set of
//! independent readings, not one instant (good enough to watch a mount work).
//!
//! This module does no I/O and knows nothing of HTTP or FUSE.

use std::sync::atomic::{AtomicU64, Ordering};

/// Storage fetches since start.
#[derive(Debug, Default)]
pub struct IoStats {
    fetches: AtomicU64,
    bytes_fetched: AtomicU64,
    retries: AtomicU64,
    fetch_errors: AtomicU64,
    in_flight: AtomicU64,
}

/// A reading of [`IoStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct IoSnapshot {
    /// Ranged fetches completed (each may have taken several attempts).
    pub fetches: u64,
    /// Bytes received from storage by completed fetches.
    pub bytes_fetched: u64,
    /// Attempts beyond the first: 5xx, 429, cut bodies resumed, expired URLs renewed.
    pub retries: u64,
    /// Fetches that failed once their retry budget was spent.
    pub fetch_errors: u64,
    /// Fetches in progress now.
    pub in_flight: u64,
}

/// Marks one fetch in flight until dropped.
pub struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl IoStats {
    /// A fetch starts: counted in flight until the guard is dropped.
    pub fn begin(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// A fetch ended after `attempts` attempts (at least 1), with `bytes` on success.
    pub fn end(&self, attempts: u32, bytes: Option<u64>) {
        self.retries
            .fetch_add(u64::from(attempts.saturating_sub(1)), Ordering::Relaxed);
        match bytes {
            Some(n) => {
                self.fetches.fetch_add(1, Ordering::Relaxed);
                self.bytes_fetched.fetch_add(n, Ordering::Relaxed);
            }
            None => {
                self.fetch_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn snapshot(&self) -> IoSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        IoSnapshot {
            fetches: get(&self.fetches),
            bytes_fetched: get(&self.bytes_fetched),
            retries: get(&self.retries),
            fetch_errors: get(&self.fetch_errors),
            in_flight: get(&self.in_flight),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_fetches_retries_errors_and_in_flight() {
        let s = IoStats::default();
        let a = s.begin();
        let b = s.begin();
        assert_eq!(s.snapshot().in_flight, 2);
        s.end(1, Some(100));
        drop(a);
        s.end(3, None);
        drop(b);
        assert_eq!(
            s.snapshot(),
            IoSnapshot {
                fetches: 1,
                bytes_fetched: 100,
                retries: 2,
                fetch_errors: 1,
                in_flight: 0,
            }
        );
    }
}
