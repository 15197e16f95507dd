//! [`Handle`]: one open file of the read core, and the one place the steps of a read
//! happen in order: prefetch, read, record, release.
//!
//! A handle keeps what is particular to one reader: its [`Prefetcher`] (is it
//! streaming, and how far ahead to fetch) and its [`Served`] (which windows it has had
//! whole, so that the cache can let them go: the front-end's client keeps them now, in
//! the kernel's page cache or the HTTP client's buffer). Everything shared (the object,
//! the cache, the prefetch budget, the counters) stays in the [`ReadCore`].
//!
//! Must not block: the handle's own state is behind a `std::sync::Mutex` held for a
//! few arithmetic steps, never across an `.await`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::object::ObjectReader;
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
}

impl Handle {
    /// Made by [`ReadCore::open`], once the object's metadata is known.
    pub(super) fn new(core: Arc<ReadCore>, object: Arc<ObjectReader>) -> Self {
        core.open_handles.fetch_add(1, Ordering::Relaxed);
        let state = State {
            prefetch: Prefetcher::new(object.window(), core.max_ahead),
            served: Served::new(object.window()),
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
    /// 1. starts the read-ahead this handle's pattern calls for;
    /// 2. reads, within the answer bound (a failure is counted and logged once);
    /// 3. records what this handle was served;
    /// 4. drops from the cache the windows this handle now has whole.
    pub async fn read(&self, offset: u64, size: u64) -> Result<Bytes, ReadError> {
        let ahead = self.state().prefetch.on_read(offset, size);
        if let Some((start, end)) = ahead {
            self.object.prefetch(start, end, &self.core.read_ahead);
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
        self.core.open_handles.fetch_sub(1, Ordering::Relaxed);
    }
}
