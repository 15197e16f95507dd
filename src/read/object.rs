//! The read path of one stored object: plaintext bytes at any offset, from windows.
//!
//! An [`ObjectReader`] serves `[offset, offset + size)` of one recording or composition.
//! Plaintext is cut into windows of `window` bytes (a multiple of 16); window *w* is
//! decrypted from ciphertext `[w·W − 16, (w+1)·W)` — the block before a window is its IV
//! (DESIGN.md §1) — and kept in the shared [`WindowCache`], so that every open handle of
//! every file shares one memory budget and one fetch per window.
//!
//! The first read of an object learns its envelope and length from the first window's
//! GET (the headers come with every ranged GET), fetches the last two blocks when the
//! first window does not reach them, and unwraps the content key checked against them
//! ([`PrivateKeys::unwrap_cek`]): no byte is returned before the key is known to be
//! right. A read returns exactly the bytes asked for, short only at the end of the
//! object: the kernel fills a short FUSE reply with zeroes.
//!
//! An object without envelope headers is served as it is only if it starts like media
//! (Matroska or MP4), with one WARN naming it; otherwise it is refused as damaged
//! ([`super::unencrypted`]). [`ObjectReader::require_encrypted`] is the check of
//! `--require-encrypted`.
//!
//! Read-ahead ([`ObjectReader::prefetch`]) fetches windows in the background within
//! the [`ReadAhead`] all files share: a few slots, each held at most until a deadline.
//!
//! This module knows nothing of FUSE or inodes; it must not block a thread (everything
//! is async) and it never writes plaintext anywhere but the cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::try_join_all;
use tokio::sync::OnceCell;

use super::cache::{WindowCache, WindowKey};
use super::error::ReadError;
use super::unencrypted::looks_like_media;
use crate::crypto::{ContentKey, CryptoError, Envelope, PrivateKeys, window};
use crate::object::{Fetched, ObjectError, ObjectSource};
use crate::twilio::MediaRef;

/// What the first GET taught about an object.
#[derive(Debug, Clone)]
pub struct ObjectMeta {
    /// Stored (ciphertext) length.
    pub stored_len: u64,
    /// Exact plaintext length.
    pub plain_len: u64,
    /// `None` for an object stored unencrypted.
    pub key: Option<ContentKey>,
    /// The private key that unwrapped `key` (its file name), for messages and `doctor`.
    pub key_name: Option<String>,
    pub iv: [u8; 16],
}

/// The read-ahead all files share: how many windows may be prefetched at once, how
/// long each may take, and how many were given up.
#[derive(Debug)]
pub struct ReadAhead {
    slots: Arc<tokio::sync::Semaphore>,
    total: usize,
    within: Duration,
    abandoned: AtomicU64,
}

impl ReadAhead {
    /// `slots` windows prefetched at once at most, each abandoned after `within`.
    pub fn new(slots: usize, within: Duration) -> Self {
        Self {
            slots: Arc::new(tokio::sync::Semaphore::new(slots)),
            total: slots,
            within,
            abandoned: AtomicU64::new(0),
        }
    }

    /// Windows being prefetched now.
    pub fn in_flight(&self) -> u64 {
        self.total.saturating_sub(self.slots.available_permits()) as u64
    }

    /// Prefetches abandoned at their deadline so far.
    pub fn abandoned(&self) -> u64 {
        self.abandoned.load(Ordering::Relaxed)
    }
}

pub struct ObjectReader {
    /// Identifies the object in the shared cache (given by [`super::ReadCore`]).
    id: u64,
    media: MediaRef,
    source: Arc<dyn ObjectSource>,
    keys: Arc<PrivateKeys>,
    cache: Arc<WindowCache>,
    window: u64,
    meta: OnceCell<ObjectMeta>,
}

impl ObjectReader {
    /// `window` is rounded up to a multiple of 16.
    pub fn new(
        id: u64,
        media: MediaRef,
        source: Arc<dyn ObjectSource>,
        keys: Arc<PrivateKeys>,
        cache: Arc<WindowCache>,
        window: u64,
    ) -> Self {
        Self {
            id,
            media,
            source,
            keys,
            cache,
            window: window.max(window::BLOCK).div_ceil(window::BLOCK) * window::BLOCK,
            meta: OnceCell::new(),
        }
    }

    pub fn sid(&self) -> &str {
        &self.media.sid
    }

    /// The object's metadata if a read already learned it.
    pub fn known_meta(&self) -> Option<&ObjectMeta> {
        self.meta.get()
    }

    /// Plaintext bytes per window.
    pub fn window(&self) -> u64 {
        self.window
    }

    /// The object's metadata, fetching the first window if nobody has yet.
    pub async fn meta(&self) -> Result<&ObjectMeta, ReadError> {
        self.meta.get_or_try_init(|| self.learn()).await
    }

    /// Plaintext `[offset, offset + size)`, shorter only at the end of the object.
    pub async fn read(&self, offset: u64, size: u64) -> Result<Bytes, ReadError> {
        let meta = self.meta().await?;
        let end = offset.saturating_add(size).min(meta.plain_len);
        if offset >= end {
            return Ok(Bytes::new());
        }
        let first = offset / self.window;
        let last = (end - 1) / self.window;
        let windows = try_join_all((first..=last).map(|w| self.window_data(meta, w))).await?;
        if windows.len() == 1 {
            let base = first * self.window;
            return Ok(windows[0].slice((offset - base) as usize..(end - base) as usize));
        }
        let mut out = BytesMut::with_capacity((end - offset) as usize);
        for (i, data) in windows.iter().enumerate() {
            let base = (first + i as u64) * self.window;
            let from = offset.saturating_sub(base) as usize;
            let to = ((end - base) as usize).min(data.len());
            out.extend_from_slice(&data[from..to]);
        }
        Ok(out.freeze())
    }

    /// Drops these windows from the cache: whoever read them has them now.
    pub fn release(&self, windows: &[u64]) {
        for &index in windows {
            self.cache.release(&WindowKey {
                object: self.id,
                index,
            });
        }
    }

    /// Fetches the windows covering plaintext `[start, end)` in the background, skipping
    /// those cached or being fetched. Each window takes a slot of `ahead` (shared by
    /// all files) for as long as it is in flight; with none left, prefetching stops
    /// there, so read-ahead never queues up unbounded work or memory. A window not
    /// fetched within `ahead`'s deadline is abandoned (its requests dropped) and its
    /// slot freed, so that storage that dribbles cannot hold the read-ahead of every
    /// other file. A failure is not reported here: the reader meets it, with its errno,
    /// when it gets there.
    pub fn prefetch(self: &Arc<Self>, start: u64, end: u64, ahead: &Arc<ReadAhead>) {
        let Some(meta) = self.meta.get() else { return };
        let end = end.min(meta.plain_len);
        if start >= end {
            return;
        }
        for w in start / self.window..=(end - 1) / self.window {
            let key = WindowKey {
                object: self.id,
                index: w,
            };
            if self.cache.contains_or_in_flight(&key) {
                continue;
            }
            let Ok(permit) = ahead.slots.clone().try_acquire_owned() else {
                break;
            };
            let (this, ahead) = (self.clone(), ahead.clone());
            tokio::spawn(async move {
                if let Some(meta) = this.meta.get() {
                    let fetch = this.window_data(meta, w);
                    if tokio::time::timeout(ahead.within, fetch).await.is_err() {
                        ahead.abandoned.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(
                            "{}: read-ahead of window {w} abandoned after {:?}",
                            this.sid(),
                            ahead.within
                        );
                    }
                }
                drop(permit);
            });
        }
    }

    /// Window `w`'s plaintext, from the cache or fetched and decrypted once.
    async fn window_data(&self, meta: &ObjectMeta, w: u64) -> Result<Bytes, ReadError> {
        let key = WindowKey {
            object: self.id,
            index: w,
        };
        self.cache
            .get_or_fetch(key, || self.fetch_window(meta, w))
            .await
    }

    async fn fetch_window(&self, meta: &ObjectMeta, w: u64) -> Result<Bytes, ReadError> {
        let start = w * self.window;
        let end = (start + self.window).min(meta.plain_len);
        let Some(key) = &meta.key else {
            let got = self.get(start, end).await?;
            return self.exact(got, end - start);
        };
        let r = window::fetch_range(start, end, meta.stored_len);
        let mut body = self.get(r.fetch_start, r.fetch_end).await?;
        let prev = if r.leading_iv_block {
            let prev = block(body.get(..16).unwrap_or_default());
            // Reassigning drops the whole buffer's other handle, so that decryption can
            // take the bytes over in place instead of copying them.
            body = body.slice(16.min(body.len())..);
            prev
        } else {
            Some(meta.iv)
        };
        let body = self.exact(body, r.fetch_end - r.block_start)?;
        let prev = prev.ok_or_else(|| self.damaged(CryptoError::CiphertextLength(0)))?;
        let plain = self.decrypt(key, &prev, body, r.is_last)?;
        let want = end - start;
        if plain.len() as u64 != want {
            return Err(self.damaged(CryptoError::LengthMismatch {
                header: meta.plain_len,
                actual: start + plain.len() as u64,
            }));
        }
        Ok(plain)
    }

    /// First contact: envelope, lengths and content key, from the first window's GET
    /// (and the last two blocks when the first window does not reach them). The first
    /// window's plaintext goes into the cache, so the read that asked costs no more.
    async fn learn(&self) -> Result<ObjectMeta, ReadError> {
        let first = self
            .source
            .get_range(&self.media, 0, self.window)
            .await
            .map_err(|e| self.storage(e))?;
        let envelope = self.envelope(&first)?;
        self.learn_from(first, envelope).await
    }

    /// The exact plaintext length and the stored length, with the least fetched: one
    /// ranged GET of the first block, whose headers give the length when the object is
    /// stored unencrypted or has `x-amz-meta-x-amz-unencrypted-content-length` (that
    /// agrees with its stored length); otherwise the object's metadata as an open
    /// learns it (the last two blocks, the content key), which a later open then uses.
    /// For sizing files before they are opened (`--exact-sizes`).
    pub async fn learn_size(&self) -> Result<(u64, u64), ReadError> {
        if let Some(m) = self.meta.get() {
            return Ok((m.stored_len, m.plain_len));
        }
        let first = self
            .source
            .get_range(&self.media, 0, window::BLOCK)
            .await
            .map_err(|e| self.storage(e))?;
        let stored = first.total_len;
        let envelope = self.envelope(&first)?;
        if envelope.is_none() {
            self.plain_media(&first)?;
        }
        let told = match &envelope {
            None => Some(stored),
            Some(env) => env
                .plaintext_len
                .filter(|&p| window::ciphertext_len(p) == stored),
        };
        if let Some(plain) = told {
            return Ok((stored, plain));
        }
        let meta = self
            .meta
            .get_or_try_init(|| self.learn_from(first, envelope))
            .await?;
        Ok((meta.stored_len, meta.plain_len))
    }

    /// The envelope the first GET's headers describe; `None`: stored unencrypted.
    fn envelope(&self, first: &Fetched) -> Result<Option<Envelope>, ReadError> {
        let headers = first.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        Envelope::from_headers(headers).map_err(|e| match e {
            CryptoError::UnsupportedV2 { .. } => ReadError::Unsupported {
                sid: self.sid().to_owned(),
                cause: e,
            },
            other => self.damaged(other),
        })
    }

    /// An object without its envelope must start like media ([`looks_like_media`]):
    /// otherwise it is ciphertext that lost its headers, or not media, and is refused.
    fn plain_media(&self, first: &Fetched) -> Result<(), ReadError> {
        if looks_like_media(&first.data, first.total_len) {
            return Ok(());
        }
        Err(ReadError::NoEnvelope {
            sid: self.sid().to_owned(),
            stored_len: first.total_len,
        })
    }

    /// `Err(`[`ReadError::NotEncrypted`]`)` for an object stored unencrypted: what
    /// `--require-encrypted` asks of every open, before any byte is served.
    pub fn require_encrypted(&self, meta: &ObjectMeta) -> Result<(), ReadError> {
        match meta.key {
            Some(_) => Ok(()),
            None => Err(ReadError::NotEncrypted {
                sid: self.sid().to_owned(),
            }),
        }
    }

    /// [`Self::learn`] from the first GET (of one block or more) and its envelope.
    async fn learn_from(
        &self,
        first: Fetched,
        envelope: Option<Envelope>,
    ) -> Result<ObjectMeta, ReadError> {
        let stored_len = first.total_len;
        let Some(envelope) = envelope else {
            self.plain_media(&first)?;
            // Once per object: `learn_from` runs once, inside the `OnceCell`.
            tracing::warn!(
                "{}: stored unencrypted (no encryption headers; {stored_len} bytes that \
                 start like Matroska or MP4), as media stored before encryption was turned \
                 on is: served as it is, unless --require-encrypted refuses it",
                self.sid()
            );
            let meta = ObjectMeta {
                stored_len,
                plain_len: stored_len,
                key: None,
                key_name: None,
                iv: [0; 16],
            };
            self.seed_first_window(&meta, first.data.clone(), None);
            return Ok(meta);
        };
        if stored_len < window::BLOCK || !stored_len.is_multiple_of(window::BLOCK) {
            return Err(self.damaged(CryptoError::CiphertextLength(stored_len)));
        }
        let tail = self.tail(&envelope, &first.data, stored_len).await?;
        let (prev, last) = (tail[0], tail[1]);
        let keys = &self.keys;
        let unwrapped = keys.unwrap_cek(&envelope.wrapped_key, |cek| {
            window::check_tail(cek, &prev, &last, stored_len, envelope.plaintext_len).map(|_| ())
        });
        let (key, key_name) = unwrapped.map_err(|e| match e {
            // A key check that failed is a wrong key far more often than a damaged object
            // (a wrong key gives a well-formed AES key for 1 object in 100; storage damages
            // a tail almost never), so its siblings' errno is the one to give; the message
            // names both causes.
            CryptoError::WrongKey { .. } | CryptoError::KeyCheck { .. } | CryptoError::NoKeys => {
                ReadError::Key {
                    sid: self.sid().to_owned(),
                    cause: e,
                }
            }
            other => self.damaged(other),
        })?;
        let plain_len = window::check_tail(&key, &prev, &last, stored_len, envelope.plaintext_len)
            .map_err(|e| self.damaged(e))?;
        tracing::debug!(
            "{}: {} key unwrapped with {key_name}; {plain_len} bytes of plaintext",
            self.sid(),
            key.algorithm()
        );
        let meta = ObjectMeta {
            stored_len,
            plain_len,
            key: Some(key),
            key_name: Some(key_name.to_string()),
            iv: envelope.iv,
        };
        self.seed_first_window(&meta, first.data, Some(&meta.iv));
        Ok(meta)
    }

    /// The last two ciphertext blocks (the IV and the block, for a one-block object).
    async fn tail(
        &self,
        env: &Envelope,
        first: &Bytes,
        stored_len: u64,
    ) -> Result<[[u8; 16]; 2], ReadError> {
        let bytes: Bytes = if stored_len == window::BLOCK {
            let mut t = env.iv.to_vec();
            t.extend_from_slice(first.get(..16).unwrap_or_default());
            t.into()
        } else if first.len() as u64 >= stored_len {
            first.slice(stored_len as usize - 32..stored_len as usize)
        } else {
            self.get(stored_len - 32, stored_len).await?
        };
        match (
            block(bytes.get(..16).unwrap_or_default()),
            block(bytes.get(16..32).unwrap_or_default()),
        ) {
            (Some(prev), Some(last)) => Ok([prev, last]),
            _ => Err(self.damaged(CryptoError::CiphertextLength(stored_len))),
        }
    }

    /// Puts window 0 in the cache from the first GET's bytes, when they cover it whole.
    fn seed_first_window(&self, meta: &ObjectMeta, data: Bytes, iv: Option<&[u8; 16]>) {
        let end = self.window.min(meta.plain_len);
        let plain = match (&meta.key, iv) {
            (None, _) => (data.len() as u64 >= end).then(|| data.slice(..end as usize)),
            (Some(key), Some(iv)) => {
                let r = window::fetch_range(0, end, meta.stored_len);
                (data.len() as u64 >= r.fetch_end)
                    .then(|| {
                        self.decrypt(key, iv, data.slice(..r.fetch_end as usize), r.is_last)
                            .ok()
                    })
                    .flatten()
                    .filter(|p| p.len() as u64 == end)
            }
            (Some(_), None) => None,
        };
        if let Some(plain) = plain {
            let key = WindowKey {
                object: self.id,
                index: 0,
            };
            self.cache.insert(key, plain);
        }
    }

    fn decrypt(
        &self,
        key: &ContentKey,
        prev: &[u8; 16],
        body: Bytes,
        is_last: bool,
    ) -> Result<Bytes, ReadError> {
        // In place when nobody else holds the fetched buffer (the usual case): a window
        // in flight then costs its size once, not twice.
        let mut buf = body
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let n =
            window::decrypt_window(key, prev, &mut buf, is_last).map_err(|e| self.damaged(e))?;
        buf.truncate(n);
        Ok(buf.freeze())
    }

    async fn get(&self, start: u64, end: u64) -> Result<Bytes, ReadError> {
        let got = self.source.get_range(&self.media, start, end).await;
        Ok(got.map_err(|e| self.storage(e))?.data)
    }

    /// The storage must return exactly what was asked (the object's length is known).
    fn exact(&self, data: Bytes, want: u64) -> Result<Bytes, ReadError> {
        if data.len() as u64 == want {
            Ok(data)
        } else {
            Err(self.damaged(CryptoError::CiphertextLength(data.len() as u64)))
        }
    }

    fn damaged(&self, cause: CryptoError) -> ReadError {
        ReadError::Damaged {
            sid: self.sid().to_owned(),
            cause,
        }
    }

    fn storage(&self, e: ObjectError) -> ReadError {
        ReadError::from_storage(self.sid(), e)
    }
}

fn block(b: &[u8]) -> Option<[u8; 16]> {
    b.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::seal;
    use crate::object::MemoryStorage;

    const SID: &str = "RT00000000000000000000000000000000";

    fn sealed(plain: &[u8], private: &rsa::PrivateKey, length_header: bool) -> MemoryStorage {
        let mem = MemoryStorage::new();
        mem.put_sealed(SID, plain, private, length_header);
        mem
    }

    fn reader(source: Arc<dyn ObjectSource>, keys: PrivateKeys, window: u64) -> ObjectReader {
        ObjectReader::new(
            1,
            MediaRef::recording(SID),
            source,
            Arc::new(keys),
            Arc::new(WindowCache::new(1 << 20)),
            window,
        )
    }

    fn keys_of(k: &rsa::PrivateKey) -> PrivateKeys {
        let mut keys = PrivateKeys::new();
        keys.add("k.pem", k.clone());
        keys
    }

    #[tokio::test]
    async fn reads_anywhere_equal_the_plaintext() {
        let k = seal::test_key(11);
        for len in [0usize, 1, 15, 16, 17, 100, 4096, 10_000] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            for header in [true, false] {
                let r = reader(Arc::new(sealed(&plain, &k, header)), keys_of(&k), 64);
                assert_eq!(r.meta().await.unwrap().plain_len, len as u64);
                for (off, size) in [
                    (0, 1),
                    (0, 64),
                    (5, 100),
                    (63, 2),
                    (len as u64 / 2, 300),
                    (len as u64, 10),
                    (0, 1 << 20),
                ] {
                    let got = r.read(off, size).await.unwrap();
                    let want = &plain[(off as usize).min(len)..((off + size) as usize).min(len)];
                    assert_eq!(&got[..], want, "len {len} header {header} [{off}+{size})");
                }
            }
        }
    }

    #[tokio::test]
    async fn a_window_is_fetched_once_and_the_first_read_costs_one_get() {
        let k = seal::test_key(11);
        let plain = vec![5u8; 1000];
        let mem = Arc::new(sealed(&plain, &k, true));
        let r = reader(mem.clone(), keys_of(&k), 4096);
        r.read(0, 10).await.unwrap();
        r.read(500, 10).await.unwrap();
        assert_eq!(mem.gets(), 1, "envelope, tail and window 0 in one GET");
    }

    #[tokio::test]
    async fn a_released_window_leaves_the_cache_and_is_fetched_again_if_read() {
        let k = seal::test_key(11);
        let plain: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        let mem = Arc::new(sealed(&plain, &k, true));
        let cache = Arc::new(WindowCache::new(1 << 20));
        let media = MediaRef::recording(SID);
        let r = ObjectReader::new(
            1,
            media,
            mem.clone(),
            Arc::new(keys_of(&k)),
            cache.clone(),
            1024,
        );
        assert_eq!(&r.read(0, 3000).await.unwrap()[..], &plain[..3000]);
        let before = cache.stats();
        assert_eq!(before.windows, 3);
        r.release(&[0, 1, 7]); // window 7 is not cached: nothing to do
        let after = cache.stats();
        assert_eq!((after.windows, after.bytes, after.released), (1, 1024, 2));
        let gets = mem.gets();
        assert_eq!(&r.read(100, 100).await.unwrap()[..], &plain[100..200]);
        assert_eq!(mem.gets(), gets + 1, "window 0 fetched again");
    }

    #[tokio::test]
    async fn wrong_key_and_damage_are_distinct_errors() {
        let (right, wrong) = (seal::test_key(11), seal::test_key(12));
        let plain = vec![1u8; 5000];
        let r = reader(
            Arc::new(sealed(&plain, &right, true)),
            keys_of(&wrong),
            1024,
        );
        // No AES key at all, or (1 wrapping in 100) one the last block refuses: both a
        // key that does not fit.
        assert!(matches!(r.read(0, 10).await, Err(ReadError::Key { .. })));
        // The last block's padding changed: the right key's AES key is refused, which
        // from outside is what a wrong key does; refused as a key, both causes named.
        let mem = sealed(&plain, &right, true);
        let stored = mem.object(SID).unwrap();
        let mut data = stored.data.to_vec();
        let n = data.len();
        data[n - 17] ^= 1;
        mem.put(SID, data.clone(), stored.headers.clone());
        let r = reader(Arc::new(mem), keys_of(&right), 1024);
        let e = r.read(0, 10).await.unwrap_err();
        assert!(
            matches!(
                &e,
                ReadError::Key {
                    cause: CryptoError::KeyCheck { .. },
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("or the object is damaged"), "{e}");
        // Cut short of whole blocks: damage, whatever the key.
        let mem = sealed(&plain, &right, true);
        data.truncate(n - 7);
        mem.put(SID, data, stored.headers);
        let r = reader(Arc::new(mem), keys_of(&right), 1024);
        assert!(matches!(
            r.read(0, 10).await,
            Err(ReadError::Damaged { .. })
        ));
    }

    #[tokio::test]
    async fn a_size_costs_one_block_with_the_length_header_and_the_tail_without() {
        let k = seal::test_key(11);
        for len in [0usize, 1, 15, 16, 17, 5000] {
            let plain = vec![3u8; len];
            let stored = window::ciphertext_len(len as u64);
            let mem = Arc::new(sealed(&plain, &k, true));
            let r = reader(mem.clone(), keys_of(&k), 4096);
            assert_eq!(r.learn_size().await.unwrap(), (stored, len as u64));
            assert_eq!(
                (mem.gets(), mem.bytes_served()),
                (1, 16),
                "{len}: one block"
            );
            assert!(r.known_meta().is_none(), "no key unwrapped");

            let mem = Arc::new(sealed(&plain, &k, false));
            let r = reader(mem.clone(), keys_of(&k), 4096);
            assert_eq!(r.learn_size().await.unwrap(), (stored, len as u64));
            let tail = if stored > 16 { 32 } else { 0 };
            assert_eq!(
                (mem.gets(), mem.bytes_served()),
                (1 + (tail > 0) as u64, 16 + tail)
            );
            assert_eq!(
                r.known_meta().unwrap().plain_len,
                len as u64,
                "learned as by open"
            );
            assert_eq!(&r.read(0, 1 << 20).await.unwrap()[..], &plain[..]);
        }
        // Stored unencrypted: its length.
        let mem = Arc::new(MemoryStorage::new());
        mem.put(SID, matroska(3000), Vec::new());
        let r = reader(mem.clone(), PrivateKeys::new(), 1000);
        assert_eq!(r.learn_size().await.unwrap(), (3000, 3000));
        assert_eq!(mem.gets(), 1);
    }

    /// `len` bytes that start like a Matroska file, then a pattern.
    fn matroska(len: usize) -> Vec<u8> {
        let mut v: Vec<u8> = (0..len as u32).map(|i| (i * 7) as u8).collect();
        let magic = crate::read::unencrypted::EBML_MAGIC;
        v[..4.min(len)].copy_from_slice(&magic[..4.min(len)]);
        v
    }

    #[tokio::test]
    async fn unencrypted_objects_are_served_as_they_are() {
        let plain = matroska(3000);
        let mem = MemoryStorage::new();
        let headers = vec![("content-type".into(), "audio/x-matroska".into())];
        mem.put(SID, plain.clone(), headers);
        let r = reader(Arc::new(mem), PrivateKeys::new(), 1000);
        assert_eq!(&r.read(900, 1200).await.unwrap()[..], &plain[900..2100]);
        let meta = r.meta().await.unwrap();
        assert!(meta.key.is_none());
        let refused = r.require_encrypted(meta).unwrap_err();
        assert!(
            matches!(&refused, ReadError::NotEncrypted { sid } if sid == SID),
            "{refused}"
        );
        assert!(
            refused.to_string().contains("--require-encrypted"),
            "{refused}"
        );
    }

    /// Issue 16, item 6: ciphertext whose envelope headers were stripped is refused as
    /// damaged, by an open and by sizing alike, and no byte of it is served; an
    /// encrypted object passes `require_encrypted`.
    #[tokio::test]
    async fn an_object_stripped_of_its_envelope_is_refused_not_served() {
        let k = seal::test_key(11);
        let plain = matroska(5000);
        let sealed = sealed(&plain, &k, true);
        let stored = sealed.object(SID).unwrap();
        let r = reader(Arc::new(sealed), keys_of(&k), 1024);
        let meta = r.meta().await.unwrap();
        assert!(r.require_encrypted(meta).is_ok());

        let mem = Arc::new(MemoryStorage::new());
        let kept: Vec<_> = (stored.headers.iter())
            .filter(|(k, _)| !k.starts_with("x-amz-meta-"))
            .cloned()
            .collect();
        mem.put(SID, stored.data.to_vec(), kept);
        for window in [16, 1024, 1 << 20] {
            let r = reader(mem.clone(), keys_of(&k), window);
            let e = r.read(0, 100).await.unwrap_err();
            assert!(
                matches!(&e, ReadError::NoEnvelope { sid, stored_len } if sid == SID && *stored_len == stored.data.len() as u64),
                "{e}"
            );
            assert!(
                e.to_string().contains("without its encryption headers"),
                "{e}"
            );
            let r = reader(mem.clone(), keys_of(&k), window);
            assert!(matches!(
                r.learn_size().await,
                Err(ReadError::NoEnvelope { .. })
            ));
            assert!(r.known_meta().is_none());
        }
    }
}
