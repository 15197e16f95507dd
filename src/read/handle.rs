//! [`Handle`]: one open file of the read core, and the one place the steps of a read
//! happen in order: prefetch, read, record, release.
//!
//! A handle keeps what is particular to one reader: its [`Prefetcher`] (is it
//! streaming, and how far ahead to fetch), the prefetches it started (cancelled when a
//! seek makes them useless or the file is closed: bytes nobody will read are not
//! fetched), and its [`Served`] (which windows it has had
//! whole, so that the cache can let them go: the front-end's client keeps them now, in
//! the kernel's page cache or the HTTP client's buffer). Everything shared (the object,
//! the cache, the prefetch budget, the counters) stays in the [`ReadCore`].
//!
//! Must not block: the handle's own state is behind a `std::sync::Mutex` held for a
//! few arithmetic steps, never across an `.await`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;

use super::object::{ObjectReader, Prefetch};
use super::prefetch::Prefetcher;
use super::served::Served;
use super::{ReadCore, ReadError};

/// One open file. Dropping it closes it.
pub struct Handle {
    core: Arc<ReadCore>,
    object: Arc<ObjectReader>,
    state: Mutex<State>,
}

struct State {
    prefetch: Prefetcher,
    served: Served,
    /// Prefetches this handle started that may still be running.
    fetching: Vec<Prefetch>,
}

impl Handle {
    /// Made by [`ReadCore::open`], once the object's metadata is known.
    pub(super) fn new(core: Arc<ReadCore>, object: Arc<ObjectReader>) -> Self {
        core.open_handles.fetch_add(1, Ordering::Relaxed);
        let state = State {
            prefetch: Prefetcher::new(object.window(), core.max_ahead),
            served: Served::new(object.window()),
            fetching: Vec::new(),
        };
        Self {
            core,
            object,
            state: Mutex::new(state),
        }
    }

    /// The object read.
    pub fn object(&self) -> &Arc<ObjectReader> {
        &self.object
    }

    /// The exact plaintext length.
    pub fn len(&self) -> u64 {
        self.object.known_meta().map_or(0, |m| m.plain_len)
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Plaintext `[offset, offset + size)`, shorter only at the end of the file:
    /// 1. after a seek, cancels the prefetches that do not serve this read;
    /// 2. starts the read-ahead this handle's pattern calls for;
    /// 3. reads, within the answer bound (a failure is counted and logged once);
    /// 4. records what this handle was served;
    /// 5. drops from the cache the windows this handle now has whole.
    pub async fn read(&self, offset: u64, size: u64) -> Result<Bytes, ReadError> {
        let ahead = {
            let mut state = self.state();
            let ahead = state.prefetch.on_read(offset, size, Instant::now());
            let seeked = state.prefetch.seeked();
            let window = self.object.window();
            let needed = offset / window..=(offset + size.max(1) - 1) / window;
            state.fetching.retain(|p| {
                if p.task.is_finished() {
                    return false;
                }
                let useless = seeked && !needed.contains(&p.window);
                if useless {
                    p.task.abort();
                }
                !useless
            });
            ahead
        };
        if let Some((start, end)) = ahead {
            let started = self.object.prefetch(start, end, &self.core.read_ahead);
            self.state().fetching.extend(started);
        }
        let data = self
            .core
            .bounded(self.object.sid(), self.object.read(offset, size))
            .await
            .inspect_err(|e| self.core.failed(e))?;
        self.core
            .bytes_served
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        if let Some(meta) = self.object.known_meta() {
            let done = self
                .state()
                .served
                .record(offset, data.len() as u64, meta.plain_len);
            self.object.release(&done);
        }
        Ok(data)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("handle lock")
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        for p in &self.state().fetching {
            p.task.abort();
        }
        self.core.open_handles.fetch_sub(1, Ordering::Relaxed);
    }
}
