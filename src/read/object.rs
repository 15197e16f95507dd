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
//! right. When the API's listing says the object is longer than a window
//! ([`ObjectReader::expect_len`]), the last blocks are asked for alongside the first
//! window ([`ObjectSource::get_suffix`]), one round trip instead of two; they are used
//! only if they end the same object (length and ETag), else fetched as before. A read
//! returns exactly the bytes asked for, short only at the end of the object: the kernel
//! fills a short FUSE reply with zeroes.
//!
//! An object without envelope headers is served as it is only if it starts like media
//! (Matroska or MP4), with one WARN naming it; otherwise it is refused as damaged
//! ([`super::unencrypted`]). [`ObjectReader::require_encrypted`] is the check of
//! `--require-encrypted`.
//!
//! A Voice call recording ([`MediaKind::Voice`]) is the second cipher behind the same
//! windows: its envelope comes with its resource ([`MediaRef::encryption`]), not with
//! the object; its content key is unwrapped with RSA-OAEP (which refuses a wrong key
//! outright: no check against the object is needed); window *w* is AES-256-GCM's CTR
//! keystream at its offset ([`gcm::apply_ctr`]), the last window's GET reaches the
//! 16-byte tag at the end of the object. Every window's ciphertext is given to the
//! object's [`TagCheck`] as it is decrypted; a read that reaches the last window gets it
//! only if the tag over the whole object verified, or if some window was never read
//! (random access is served unauthenticated, as CBC always is: SECURITY.md). A tag that
//! fails is [`CryptoError::TagMismatch`] (EIO) for every read of the last window, and one
//! ERROR naming the SID.
//!
//! Read-ahead ([`ObjectReader::prefetch`]) fetches windows in the background within
//! the [`ReadAhead`] all files share: a few slots, each held at most until a deadline.
//!
//! This module knows nothing of FUSE or inodes; it must not block a thread (everything
//! is async) and it never writes plaintext anywhere but the cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::try_join_all;
use tokio::sync::OnceCell;

use super::cache::{WindowCache, WindowKey};
use super::error::ReadError;
use super::unencrypted::looks_like_media;
use crate::crypto::gcm::{self, GcmEnvelope, TagCheck, Verdict};
use crate::crypto::{ContentKey, CryptoError, Envelope, PrivateKeys, window};
use crate::object::{Fetched, ObjectError, ObjectSource};
use crate::twilio::{MediaKind, MediaRef};

/// How long the first read waits for the last blocks it asked for alongside its first
/// window, at least, once that window has come ([`ObjectReader::expect_len`]).
const TAIL_GRACE: Duration = Duration::from_millis(50);

/// The last two ciphertext blocks, which the content key is checked against.
const TAIL_LEN: u64 = 2 * window::BLOCK;

/// What the first GET taught about an object.
#[derive(Debug, Clone)]
pub struct ObjectMeta {
    /// Stored (ciphertext) length.
    pub stored_len: u64,
    /// Exact plaintext length.
    pub plain_len: u64,
    /// How its windows are decrypted.
    pub cipher: Cipher,
    /// The private key that unwrapped the content key (its file name), for messages and
    /// `doctor`.
    pub key_name: Option<String>,
}

/// How an object's bytes turn into plaintext.
#[derive(Debug, Clone)]
pub enum Cipher {
    /// Stored unencrypted: served as it is.
    Plain,
    /// The Video envelope: AES-CBC from the header IV (DESIGN.md §1).
    Cbc { key: ContentKey, iv: [u8; 16] },
    /// A Voice call recording: AES-256-GCM, read as CTR, its tag checked as windows pass.
    Gcm {
        key: ContentKey,
        iv: [u8; gcm::IV_LEN],
        tag: Arc<TagCheck>,
    },
}

impl ObjectMeta {
    /// The content key; `None` for an object stored unencrypted.
    pub fn key(&self) -> Option<&ContentKey> {
        match &self.cipher {
            Cipher::Plain => None,
            Cipher::Cbc { key, .. } | Cipher::Gcm { key, .. } => Some(key),
        }
    }
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

/// One window being prefetched: cancelling it drops its request (and frees its slot).
#[derive(Debug)]
pub struct Prefetch {
    pub window: u64,
    pub task: tokio::task::AbortHandle,
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
    /// The length the API lists (0: not known), for [`Self::expect_len`].
    listed_len: AtomicU64,
    /// Whether the failed GCM tag has been logged (once per object).
    tag_reported: AtomicBool,
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
            listed_len: AtomicU64::new(0),
            tag_reported: AtomicBool::new(false),
        }
    }

    /// The object's length as the API lists it (stored or plaintext: they differ by at
    /// most a block). When it is more than a window, the first read asks for the last
    /// blocks alongside the first window instead of after it.
    pub fn expect_len(&self, listed: u64) {
        self.listed_len.store(listed, Ordering::Relaxed);
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
        if last == meta.plain_len.saturating_sub(1) / self.window {
            self.settle_tag(meta).await;
            self.check_tag(meta)?;
        }
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
    pub fn prefetch(
        self: &Arc<Self>,
        start: u64,
        end: u64,
        ahead: &Arc<ReadAhead>,
    ) -> Vec<Prefetch> {
        let mut started = Vec::new();
        let Some(meta) = self.meta.get() else {
            return started;
        };
        let end = end.min(meta.plain_len);
        if start >= end {
            return started;
        }
        for w in start / self.window..=(end - 1) / self.window {
            let key = WindowKey {
                object: self.id,
                index: w,
            };
            let Ok(permit) = ahead.slots.clone().try_acquire_owned() else {
                break;
            };
            // Claimed now, not when the task first runs: the next read's prefetch, a few
            // microseconds later, must see it in flight and not spend a slot on it again.
            // Cached or in flight already: nothing to do (the slot goes back).
            let Some(claim) = self.cache.claim(key) else {
                continue;
            };
            let (this, ahead) = (self.clone(), ahead.clone());
            let task = tokio::spawn(async move {
                if let Some(meta) = this.meta.get() {
                    let fetch = claim.fetch(|| this.fetch_window(meta, w));
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
            started.push(Prefetch {
                window: w,
                task: task.abort_handle(),
            });
        }
        started
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
        let (key, iv) = match &meta.cipher {
            Cipher::Plain => {
                let got = self.get(start, end).await?;
                return self.exact(got, end - start);
            }
            Cipher::Gcm { .. } => {
                let fetch_end = gcm_fetch_end(meta, end);
                let got = self.get(start, fetch_end).await?;
                let got = self.exact(got, fetch_end - start)?;
                return self.decrypt_gcm(meta, w, got);
            }
            Cipher::Cbc { key, iv } => (key, iv),
        };
        let r = window::fetch_range(start, end, meta.stored_len);
        // Decrypted piece by piece as the body arrives (the block before the window, or
        // the header IV at the start of the object, is the IV).
        let mut work = CbcInPlace {
            key,
            prev: (!r.leading_iv_block).then_some(*iv),
            error: None,
        };
        let got = self
            .source
            .get_range_in_place(&self.media, r.fetch_start, r.fetch_end, &mut work)
            .await
            .map_err(|e| self.storage(e))?;
        let mut body = got.data;
        if r.leading_iv_block {
            body = body.slice(16.min(body.len())..);
        }
        let body = self.exact(body, r.fetch_end - r.block_start)?;
        if let Some(e) = work.error {
            return Err(self.damaged(e));
        }
        let len = if r.is_last {
            window::unpadded_len(&body).map_err(|e| self.damaged(e))?
        } else {
            body.len()
        };
        let want = end - start;
        if len as u64 != want {
            return Err(self.damaged(CryptoError::LengthMismatch {
                header: meta.plain_len,
                actual: start + len as u64,
            }));
        }
        Ok(body.slice(..len))
    }

    /// First contact: envelope, lengths and content key, from the first window's GET
    /// (and the last two blocks when the first window does not reach them). The first
    /// window's plaintext goes into the cache, so the read that asked costs no more.
    async fn learn(&self) -> Result<ObjectMeta, ReadError> {
        let first = self.source.get_range(&self.media, 0, self.window);
        // A call recording's envelope is its resource: it needs no tail.
        let speculate = self.media.kind != MediaKind::Voice
            && self.listed_len.load(Ordering::Relaxed) > self.window;
        let (first, tail) = if speculate {
            alongside(first, self.source.get_suffix(&self.media, TAIL_LEN)).await
        } else {
            (first.await, None)
        };
        let first = first.map_err(|e| self.storage(e))?;
        if self.media.kind == MediaKind::Voice {
            return self.learn_voice(first);
        }
        let envelope = self.envelope(&first)?;
        self.learn_from(first, envelope, tail).await
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
        if self.media.kind == MediaKind::Voice {
            // The tag's 16 bytes are all the length hides: no key is needed.
            return match self.media.encryption {
                Some(_) => Ok((
                    stored,
                    gcm::plaintext_len(stored).map_err(|e| self.damaged(e))?,
                )),
                None => {
                    self.plain_media(&first)?;
                    Ok((stored, stored))
                }
            };
        }
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
            .get_or_try_init(|| self.learn_from(first, envelope, None))
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
        match meta.cipher {
            Cipher::Cbc { .. } | Cipher::Gcm { .. } => Ok(()),
            Cipher::Plain => Err(ReadError::NotEncrypted {
                sid: self.sid().to_owned(),
            }),
        }
    }

    /// [`Self::learn`] from the first GET (of one block or more) and its envelope, with
    /// the object's last bytes if they were asked for alongside.
    async fn learn_from(
        &self,
        first: Fetched,
        envelope: Option<Envelope>,
        tail: Option<Fetched>,
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
                cipher: Cipher::Plain,
                key_name: None,
            };
            self.seed_first_window(&meta, first.data.clone());
            return Ok(meta);
        };
        if stored_len < window::BLOCK || !stored_len.is_multiple_of(window::BLOCK) {
            return Err(self.damaged(CryptoError::CiphertextLength(stored_len)));
        }
        let tail = self.tail(&envelope, &first, stored_len, tail).await?;
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
            cipher: Cipher::Cbc {
                key,
                iv: envelope.iv,
            },
            key_name: Some(key_name.to_string()),
        };
        self.seed_first_window(&meta, first.data);
        Ok(meta)
    }

    /// [`Self::learn`] for a call recording: its envelope is its resource's
    /// `encryption_details` (none: stored as it is, and then it must start like media);
    /// its length is the stored length less the tag; its content key is OAEP-wrapped.
    fn learn_voice(&self, first: Fetched) -> Result<ObjectMeta, ReadError> {
        let stored_len = first.total_len;
        let Some(details) = &self.media.encryption else {
            self.plain_media(&first)?;
            tracing::debug!("{}: stored unencrypted ({stored_len} bytes)", self.sid());
            let meta = ObjectMeta {
                stored_len,
                plain_len: stored_len,
                cipher: Cipher::Plain,
                key_name: None,
            };
            self.seed_first_window(&meta, first.data);
            return Ok(meta);
        };
        let missing = |field| self.damaged(CryptoError::MissingHeader(field));
        let envelope = GcmEnvelope::from_base64(
            details.public_key_sid.as_deref(),
            (details.encrypted_cek.as_deref())
                .ok_or_else(|| missing("encryption_details.encrypted_cek"))?,
            (details.iv.as_deref()).ok_or_else(|| missing("encryption_details.iv"))?,
        )
        .map_err(|e| self.damaged(e))?;
        let plain_len = gcm::plaintext_len(stored_len).map_err(|e| self.damaged(e))?;
        let (key, key_name) =
            self.keys
                .unwrap_oaep(&envelope.wrapped_key)
                .map_err(|e| match e {
                    CryptoError::WrongKey { .. } | CryptoError::NoKeys => ReadError::Key {
                        sid: self.sid().to_owned(),
                        cause: e,
                    },
                    other => self.damaged(other),
                })?;
        tracing::debug!(
            "{}: AES-256-GCM key unwrapped with {key_name}; {plain_len} bytes of plaintext",
            self.sid()
        );
        let tag = Arc::new(TagCheck::new(&key, &envelope.iv, plain_len, self.window));
        let meta = ObjectMeta {
            stored_len,
            plain_len,
            cipher: Cipher::Gcm {
                key,
                iv: envelope.iv,
                tag,
            },
            key_name: Some(key_name.to_string()),
        };
        self.seed_first_window(&meta, first.data);
        Ok(meta)
    }

    /// A call recording's tag check so far (`None` for other objects, or before the
    /// first read): what `get` asks once it has read every window, before it names the
    /// file.
    pub fn tag_verdict(&self) -> Option<Verdict> {
        match &self.meta.get()?.cipher {
            Cipher::Gcm { tag, .. } => Some(tag.verdict()),
            _ => None,
        }
    }

    /// Before a read that reaches the end of a call recording is answered: the windows
    /// not given to the tag check yet that are being fetched now (the kernel's
    /// read-ahead and this core's keep several reads in flight, so a reader going in
    /// order can reach the end before the windows just before it are decrypted) are
    /// waited for, so that such a reader always meets the tag's verdict. Windows nobody
    /// asked for are not fetched: a read that jumped to the end stays unauthenticated.
    async fn settle_tag(&self, meta: &ObjectMeta) {
        let Cipher::Gcm { tag, .. } = &meta.cipher else {
            return;
        };
        let in_flight: Vec<u64> = (tag.unseen().into_iter())
            .filter(|&index| {
                self.cache.contains_or_in_flight(&WindowKey {
                    object: self.id,
                    index,
                })
            })
            .collect();
        // Their errors are their readers' to meet; here only their digests matter.
        let _ =
            futures_util::future::join_all(in_flight.iter().map(|&w| self.window_data(meta, w)))
                .await;
    }

    /// A read that reaches the last window of a call recording: refused if the tag over
    /// the whole object failed (logged once), served if it verified or is not known yet
    /// (a window was never read: random access, unauthenticated as CBC is).
    fn check_tag(&self, meta: &ObjectMeta) -> Result<(), ReadError> {
        let Cipher::Gcm { tag, .. } = &meta.cipher else {
            return Ok(());
        };
        match tag.verdict() {
            Verdict::Failed => {
                let e = self.damaged(CryptoError::TagMismatch);
                if !self.tag_reported.swap(true, Ordering::Relaxed) {
                    tracing::error!("{e}; its end is not served");
                }
                Err(e)
            }
            Verdict::Verified => Ok(()),
            Verdict::Unknown => {
                tracing::debug!(
                    "{}: end read before every window was: served without the tag's check",
                    self.sid()
                );
                Ok(())
            }
        }
    }

    /// The last two ciphertext blocks (the IV and the block, for a one-block object):
    /// from the first GET when it reached them, from `asked` (the object's last bytes,
    /// asked for alongside it) when that ends the same object, else fetched now.
    async fn tail(
        &self,
        env: &Envelope,
        first: &Fetched,
        stored_len: u64,
        asked: Option<Fetched>,
    ) -> Result<[[u8; 16]; 2], ReadError> {
        let bytes: Bytes = if stored_len == window::BLOCK {
            let mut t = env.iv.to_vec();
            t.extend_from_slice(first.data.get(..16).unwrap_or_default());
            t.into()
        } else if first.data.len() as u64 >= stored_len {
            first
                .data
                .slice((stored_len - TAIL_LEN) as usize..stored_len as usize)
        } else if let Some(t) = asked.filter(|t| {
            t.total_len == stored_len
                && t.data.len() as u64 == TAIL_LEN
                && same_version(&first.headers, &t.headers)
        }) {
            t.data
        } else {
            self.get(stored_len - TAIL_LEN, stored_len).await?
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
    fn seed_first_window(&self, meta: &ObjectMeta, data: Bytes) {
        let end = self.window.min(meta.plain_len);
        let plain = match &meta.cipher {
            Cipher::Plain => (data.len() as u64 >= end).then(|| data.slice(..end as usize)),
            Cipher::Cbc { key, iv } => {
                let r = window::fetch_range(0, end, meta.stored_len);
                (data.len() as u64 >= r.fetch_end)
                    .then(|| {
                        self.decrypt(key, iv, data.slice(..r.fetch_end as usize), r.is_last)
                            .ok()
                    })
                    .flatten()
                    .filter(|p| p.len() as u64 == end)
            }
            Cipher::Gcm { .. } => {
                let fetch_end = gcm_fetch_end(meta, end);
                (data.len() as u64 >= fetch_end)
                    .then(|| {
                        self.decrypt_gcm(meta, 0, data.slice(..fetch_end as usize))
                            .ok()
                    })
                    .flatten()
            }
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

    /// Window `w` of a call recording from its ciphertext (and, for the last window, the
    /// tag after it): the ciphertext goes to the tag check, then is decrypted in place.
    fn decrypt_gcm(&self, meta: &ObjectMeta, w: u64, body: Bytes) -> Result<Bytes, ReadError> {
        let Cipher::Gcm { key, iv, tag } = &meta.cipher else {
            return Err(self.damaged(CryptoError::CiphertextLength(0)));
        };
        let start = w * self.window;
        let end = (start + self.window).min(meta.plain_len);
        let mut buf = body
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let want = (end - start) as usize;
        if buf.len() > want {
            let stored_tag = buf.split_off(want);
            if let Ok(t) = <[u8; 16]>::try_from(&stored_tag[..]) {
                tag.set_tag(t);
            }
        }
        // An empty recording has no window: only its tag.
        if meta.plain_len > 0 {
            tag.record(w, &buf);
        }
        gcm::apply_ctr(key, iv, start, &mut buf).map_err(|e| self.damaged(e))?;
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

/// AES-CBC decryption of a window's ciphertext in place, block by block as it arrives.
struct CbcInPlace<'k> {
    key: &'k ContentKey,
    /// The ciphertext block before the next one to decrypt; `None`: the body's first
    /// 16 bytes are it (and are left as they are).
    prev: Option<[u8; 16]>,
    error: Option<CryptoError>,
}

impl crate::object::InPlace for CbcInPlace<'_> {
    fn advance(&mut self, buf: &mut [u8], done: usize) -> usize {
        let (prev, from) = match self.prev {
            Some(prev) => (prev, done),
            None => match block(buf.get(..16).unwrap_or_default()) {
                Some(first) => (first, 16),
                None => return done,
            },
        };
        let to = from + (buf.len() - from) / 16 * 16;
        if to == from {
            self.prev = Some(prev);
            return from;
        }
        let next = block(&buf[to - 16..to]);
        if let Err(e) = window::decrypt_blocks(self.key, &prev, &mut buf[from..to]) {
            self.error.get_or_insert(e);
        }
        self.prev = next;
        to
    }
}

/// `first`'s answer, and `tail`'s if it came by then or within as long again as
/// `first` took (at least [`TAIL_GRACE`]): a tail later than that is dropped (its
/// request with it) and fetched the usual way.
async fn alongside<F, T>(first: F, tail: T) -> (F::Output, Option<Fetched>)
where
    F: Future,
    T: Future<Output = Option<Fetched>>,
{
    let started = tokio::time::Instant::now();
    let (mut first, mut tail) = (std::pin::pin!(first), std::pin::pin!(tail));
    let mut got_tail = None;
    let first = loop {
        tokio::select! {
            f = &mut first => break f,
            t = &mut tail, if got_tail.is_none() => got_tail = Some(t),
        }
    };
    let tail = match got_tail {
        Some(t) => t,
        None => {
            let grace = started.elapsed().max(TAIL_GRACE);
            tokio::time::timeout(grace, tail).await.ok().flatten()
        }
    };
    (first, tail)
}

/// Whether two answers come from one version of an object: their ETags are equal, or
/// one of them has none (their lengths are compared by the caller).
fn same_version(a: &[(String, String)], b: &[(String, String)]) -> bool {
    let etag = |h: &[(String, String)]| {
        h.iter()
            .find(|(k, _)| k == "etag")
            .map(|(_, v)| v.trim().to_owned())
    };
    match (etag(a), etag(b)) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

fn block(b: &[u8]) -> Option<[u8; 16]> {
    b.try_into().ok()
}

/// Where a call recording's window ending at plaintext byte `end` is fetched to: the
/// last window takes the tag after it too.
fn gcm_fetch_end(meta: &ObjectMeta, end: u64) -> u64 {
    if end == meta.plain_len {
        meta.stored_len
    } else {
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decryption as a body arrives, in pieces of any size, equals decrypting it whole,
    /// with the IV given or taken from the body's first block.
    #[test]
    fn decrypting_as_the_body_arrives_equals_decrypting_it_whole() {
        use crate::object::InPlace;
        let key = ContentKey::Aes256([9; 32]);
        let iv = [3u8; 16];
        let cipher: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8).collect();
        for leading in [false, true] {
            let mut whole = cipher.clone();
            let (prev, from) = if leading {
                (block(&cipher[..16]).unwrap(), 16)
            } else {
                (iv, 0)
            };
            window::decrypt_blocks(&key, &prev, &mut whole[from..]).unwrap();
            for piece in [1, 7, 15, 16, 17, 100, 1000, 4096] {
                let mut work = CbcInPlace {
                    key: &key,
                    prev: (!leading).then_some(iv),
                    error: None,
                };
                let (mut buf, mut done) = (Vec::new(), 0);
                for chunk in cipher.chunks(piece) {
                    buf.extend_from_slice(chunk);
                    done = work.advance(&mut buf, done);
                }
                assert_eq!(done, cipher.len(), "pieces of {piece}");
                assert!(work.error.is_none());
                assert_eq!(buf, whole, "pieces of {piece}, IV in the body: {leading}");
            }
        }
    }
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

    /// Storage whose first window is answered only once the object's last bytes were
    /// asked for (or after `FIRST_WAITS` at most), and whose answers to those can be
    /// made to end another object: a length or an ETag of their own.
    struct TailFirst {
        inner: Arc<MemoryStorage>,
        asked: tokio::sync::Notify,
        suffixes: AtomicU64,
        ranges: std::sync::Mutex<Vec<(u64, u64)>>,
        tail: Tail,
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Tail {
        Right,
        OtherLength,
        OtherEtag,
        Never,
    }

    const FIRST_WAITS: Duration = Duration::from_secs(2);

    impl TailFirst {
        fn new(inner: Arc<MemoryStorage>, tail: Tail) -> Self {
            let etag = ("etag".to_string(), "\"v1\"".to_string());
            let mut o = inner.object(SID).unwrap();
            o.headers.push(etag);
            inner.put(SID, o.data, o.headers);
            Self {
                inner,
                asked: tokio::sync::Notify::new(),
                suffixes: AtomicU64::new(0),
                ranges: std::sync::Mutex::new(Vec::new()),
                tail,
            }
        }
    }

    impl ObjectSource for TailFirst {
        fn get_range(
            &self,
            media: &MediaRef,
            start: u64,
            end: u64,
        ) -> futures_util::future::BoxFuture<'_, Result<Fetched, ObjectError>> {
            self.ranges.lock().unwrap().push((start, end));
            let media = media.clone();
            Box::pin(async move {
                if start == 0 {
                    let _ = tokio::time::timeout(FIRST_WAITS, self.asked.notified()).await;
                }
                self.inner.get_range(&media, start, end).await
            })
        }

        fn get_suffix(
            &self,
            media: &MediaRef,
            len: u64,
        ) -> futures_util::future::BoxFuture<'_, Option<Fetched>> {
            self.suffixes.fetch_add(1, Ordering::SeqCst);
            self.asked.notify_one();
            let media = media.clone();
            Box::pin(async move {
                let mut t = self.inner.get_suffix(&media, len).await?;
                match self.tail {
                    Tail::Right => {}
                    Tail::OtherLength => t.total_len += 16,
                    Tail::OtherEtag => {
                        t.data = Bytes::from(vec![0u8; t.data.len()]);
                        for (k, v) in &mut t.headers {
                            if k == "etag" {
                                *v = "\"v2\"".into();
                            }
                        }
                    }
                    Tail::Never => std::future::pending::<()>().await,
                }
                Some(t)
            })
        }
    }

    /// The key is checked against the last two blocks. With a listed length beyond the
    /// first window, they are asked for alongside it: storage that answers the first
    /// window only once they were asked for would hold a reader that asks in turn for
    /// `FIRST_WAITS`.
    #[tokio::test]
    async fn with_a_listed_length_the_tail_is_asked_for_alongside_the_first_window() {
        let k = seal::test_key(11);
        let plain: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for header in [true, false] {
            let mem = Arc::new(sealed(&plain, &k, header));
            let stored = mem.object(SID).unwrap().data.len() as u64;
            let storage = Arc::new(TailFirst::new(mem.clone(), Tail::Right));
            let r = reader(storage.clone(), keys_of(&k), 1024);
            r.expect_len(plain.len() as u64);
            let started = std::time::Instant::now();
            assert_eq!(&r.read(0, 100).await.unwrap()[..], &plain[..100]);
            assert!(
                started.elapsed() < FIRST_WAITS / 2,
                "{:?}",
                started.elapsed()
            );
            assert_eq!(storage.suffixes.load(Ordering::SeqCst), 1);
            assert_eq!(
                *storage.ranges.lock().unwrap(),
                [(0, 1024)],
                "no tail GET after"
            );
            assert_eq!((mem.gets(), mem.bytes_served()), (2, 1024 + 32));
            assert_eq!(r.meta().await.unwrap().stored_len, stored);
            assert_eq!(&r.read(9_990, 100).await.unwrap()[..], &plain[9_990..]);
        }
    }

    /// Last bytes that end another object (another length, another ETag), or that do not
    /// come, are not used: the tail is fetched once the length is known, as without them.
    #[tokio::test]
    async fn a_tail_asked_for_alongside_is_used_only_if_it_ends_the_same_object() {
        let k = seal::test_key(11);
        let plain: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for tail in [Tail::OtherLength, Tail::OtherEtag, Tail::Never] {
            let mem = Arc::new(sealed(&plain, &k, false));
            let stored = mem.object(SID).unwrap().data.len() as u64;
            let storage = Arc::new(TailFirst::new(mem.clone(), tail));
            let r = reader(storage.clone(), keys_of(&k), 1024);
            r.expect_len(plain.len() as u64);
            let started = std::time::Instant::now();
            assert_eq!(&r.read(0, 100).await.unwrap()[..], &plain[..100]);
            assert_eq!(r.meta().await.unwrap().plain_len, plain.len() as u64);
            assert!(
                started.elapsed() < FIRST_WAITS / 2,
                "{:?}",
                started.elapsed()
            );
            assert_eq!(
                *storage.ranges.lock().unwrap(),
                [(0, 1024), (stored - 32, stored)],
                "the tail fetched after the first window"
            );
        }
    }

    /// Without a listed length, or with one that fits the first window, no tail is asked
    /// for alongside: the first window may hold the whole object.
    #[tokio::test]
    async fn a_small_or_unlisted_object_asks_for_no_tail_alongside() {
        let k = seal::test_key(11);
        let plain = vec![5u8; 1000];
        for listed in [None, Some(1000), Some(1024)] {
            let mem = Arc::new(sealed(&plain, &k, false));
            let r = reader(mem.clone(), keys_of(&k), 1024);
            if let Some(len) = listed {
                r.expect_len(len);
            }
            assert_eq!(&r.read(0, 2000).await.unwrap()[..], &plain[..]);
            assert_eq!(mem.gets(), 1, "listed {listed:?}");
        }
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
        assert!(meta.key().is_none());
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

    const RE: &str = "RE00000000000000000000000000000000";

    /// A call recording sealed as Twilio does (AES-256-GCM, tag appended, key
    /// OAEP-wrapped), in storage, and the reference that carries its envelope.
    fn voice(plain: &[u8], k: &rsa::PrivateKey) -> (Arc<MemoryStorage>, MediaRef) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let (stored, env) = seal::seal_gcm(&k.to_public_key(), Some("CR1"), plain);
        let mem = Arc::new(MemoryStorage::new());
        mem.put(RE, stored, Vec::new());
        let details = crate::twilio::EncryptionDetails {
            public_key_sid: env.public_key_sid.clone(),
            encrypted_cek: Some(b64.encode(&env.wrapped_key)),
            iv: Some(b64.encode(env.iv)),
        };
        (mem, MediaRef::voice(RE, Some(details)))
    }

    fn voice_reader(
        source: Arc<dyn ObjectSource>,
        media: MediaRef,
        keys: PrivateKeys,
        window: u64,
    ) -> ObjectReader {
        ObjectReader::new(
            2,
            media,
            source,
            Arc::new(keys),
            Arc::new(WindowCache::new(1 << 20)),
            window,
        )
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// Issue 17: every window and block edge of a call recording reads as its plaintext.
    #[tokio::test]
    async fn call_recordings_read_anywhere_equal_the_plaintext() {
        let k = seal::test_key(11);
        for len in [0usize, 1, 15, 16, 17, 63, 64, 65, 100, 4096, 10_000] {
            let plain = pattern(len);
            let (mem, media) = voice(&plain, &k);
            for window in [16, 64, 4096] {
                let r = voice_reader(mem.clone(), media.clone(), keys_of(&k), window);
                let meta = r.meta().await.unwrap();
                assert_eq!(
                    (meta.plain_len, meta.stored_len),
                    (len as u64, len as u64 + 16)
                );
                assert!(matches!(meta.cipher, Cipher::Gcm { .. }));
                if len == 0 {
                    // No window: the first GET brought the tag, and it verified.
                    assert_eq!(r.tag_verdict(), Some(Verdict::Verified));
                }
                let l = len as u64;
                let edges = [
                    0,
                    1,
                    15,
                    16,
                    17,
                    window - 1,
                    window,
                    window + 1,
                    l / 2,
                    l.saturating_sub(1),
                    l,
                ];
                for &off in &edges {
                    for size in [1, 15, 16, 17, window, 3 * window + 5, 1 << 20] {
                        let got = r.read(off, size).await.unwrap();
                        let want =
                            &plain[(off as usize).min(len)..((off + size) as usize).min(len)];
                        assert_eq!(&got[..], want, "len {len} window {window} [{off}+{size})");
                    }
                }
            }
        }
    }

    /// Issue 17: a reader that reads a call recording in order gets its end only after
    /// the tag over the whole object verified; one changed byte anywhere fails the end
    /// with damage (EIO), also for a reader that read the end first, unauthenticated.
    #[tokio::test]
    async fn a_tampered_call_recording_fails_its_end_once_every_window_was_read() {
        let k = seal::test_key(11);
        let plain = pattern(10_000);
        let (mem, media) = voice(&plain, &k);
        let r = voice_reader(mem.clone(), media.clone(), keys_of(&k), 1024);
        let mut all = Vec::new();
        for off in (0..10_000).step_by(1000) {
            all.extend_from_slice(&r.read(off, 1000).await.unwrap());
        }
        assert_eq!(all, plain);
        match &r.meta().await.unwrap().cipher {
            Cipher::Gcm { tag, .. } => assert_eq!(tag.verdict(), Verdict::Verified),
            other => panic!("{other:?}"),
        }

        let stored = mem.object(RE).unwrap().data.to_vec();
        for flip in [0usize, 1500, 9_999, 10_000, 10_015] {
            let mut bad = stored.clone();
            bad[flip] ^= 0x20;
            let mem = Arc::new(MemoryStorage::new());
            mem.put(RE, bad, Vec::new());
            let r = voice_reader(mem, media.clone(), keys_of(&k), 1024);
            // The end first: some window not read yet, so served unauthenticated
            // (unless the flipped byte is in it: CTR changes that byte only).
            let end = r.read(9_000, 1_000).await.unwrap();
            assert_eq!(end.len(), 1_000);
            let mut failed = None;
            for off in (0..10_000).step_by(1000) {
                if let Err(e) = r.read(off, 1000).await {
                    failed = Some((off, e));
                    break;
                }
            }
            let (off, e) = failed.unwrap_or_else(|| panic!("byte {flip} flipped: read whole"));
            assert_eq!(off, 9_000, "only the end is refused");
            assert!(
                matches!(
                    &e,
                    ReadError::Damaged {
                        cause: CryptoError::TagMismatch,
                        ..
                    }
                ),
                "{e}"
            );
            assert!(r.read(9_999, 1).await.is_err(), "and stays refused");
            assert!(
                r.read(9_216, 10).await.is_err(),
                "so does any read of the last window, not only of the end"
            );
            assert_eq!(r.read(0, 10).await.unwrap().len(), 10);
        }
    }

    #[tokio::test]
    async fn a_call_recording_with_the_wrong_key_or_a_bad_envelope_is_refused() {
        let (right, wrong) = (seal::test_key(11), seal::test_key(12));
        let plain = pattern(5000);
        let (mem, media) = voice(&plain, &right);
        let r = voice_reader(mem.clone(), media.clone(), keys_of(&wrong), 1024);
        let e = r.read(0, 10).await.unwrap_err();
        assert!(matches!(&e, ReadError::Key { .. }), "{e}");
        let r = voice_reader(mem.clone(), media.clone(), PrivateKeys::new(), 1024);
        assert!(matches!(r.read(0, 10).await, Err(ReadError::Key { .. })));

        let mut details = (**media.encryption.as_ref().unwrap()).clone();
        details.iv = Some("AAAA".into()); // 3 bytes, not 12
        let bad_iv = MediaRef::voice(RE, Some(details.clone()));
        let r = voice_reader(mem.clone(), bad_iv, keys_of(&right), 1024);
        assert!(matches!(
            r.read(0, 10).await,
            Err(ReadError::Damaged { .. })
        ));
        details.iv = None;
        let no_iv = MediaRef::voice(RE, Some(details));
        let r = voice_reader(mem.clone(), no_iv, keys_of(&right), 1024);
        let e = r.read(0, 10).await.unwrap_err();
        assert!(e.to_string().contains("encryption_details.iv"), "{e}");

        // Shorter than a tag.
        let short = Arc::new(MemoryStorage::new());
        short.put(RE, vec![1u8; 10], Vec::new());
        let r = voice_reader(short, media, keys_of(&right), 1024);
        assert!(matches!(
            r.read(0, 10).await,
            Err(ReadError::Damaged { .. })
        ));
    }

    #[tokio::test]
    async fn a_call_recording_stored_unencrypted_is_served_if_it_is_a_wav() {
        let mut wav = pattern(3000);
        wav[..4].copy_from_slice(b"RIFF");
        wav[8..12].copy_from_slice(b"WAVE");
        let mem = Arc::new(MemoryStorage::new());
        mem.put(RE, wav.clone(), Vec::new());
        let media = MediaRef::voice(RE, None);
        let r = voice_reader(mem.clone(), media.clone(), PrivateKeys::new(), 1000);
        assert_eq!(r.learn_size().await.unwrap(), (3000, 3000));
        assert_eq!(&r.read(900, 1200).await.unwrap()[..], &wav[900..2100]);
        let meta = r.meta().await.unwrap();
        assert!(matches!(meta.cipher, Cipher::Plain));
        assert!(matches!(
            r.require_encrypted(meta),
            Err(ReadError::NotEncrypted { .. })
        ));

        // Ciphertext said to be unencrypted (a resource that lost its envelope): refused.
        let k = seal::test_key(11);
        let (sealed, _) = voice(&wav, &k);
        let r = voice_reader(sealed, media, keys_of(&k), 1000);
        assert!(matches!(
            r.read(0, 10).await,
            Err(ReadError::NoEnvelope { .. })
        ));
    }

    #[tokio::test]
    async fn a_call_recording_is_sized_with_one_block_and_no_key() {
        let k = seal::test_key(11);
        let (mem, media) = voice(&pattern(5000), &k);
        let r = voice_reader(mem.clone(), media, PrivateKeys::new(), 4096);
        assert_eq!(r.learn_size().await.unwrap(), (5016, 5000));
        assert_eq!((mem.gets(), mem.bytes_served()), (1, 16));
    }

    /// Storage that answers GETs starting at `slow_from` late: a window in flight.
    struct SlowAt {
        inner: Arc<MemoryStorage>,
        slow_from: u64,
    }

    impl ObjectSource for SlowAt {
        fn get_range(
            &self,
            media: &MediaRef,
            start: u64,
            end: u64,
        ) -> futures_util::future::BoxFuture<'_, Result<Fetched, ObjectError>> {
            let media = media.clone();
            Box::pin(async move {
                if start == self.slow_from {
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                }
                self.inner.get_range(&media, start, end).await
            })
        }
    }

    /// A reader going in order whose read of the window before the last is still in
    /// flight when it (or the read-ahead) reads the end: the end waits for that window,
    /// so the tag's verdict is met, and a change in that window fails the end.
    #[tokio::test]
    async fn the_end_of_a_call_recording_waits_for_the_windows_in_flight_before_it() {
        let k = seal::test_key(11);
        let plain = pattern(8 * 1024);
        let (mem, media) = voice(&plain, &k);
        let mut stored = mem.object(RE).unwrap().data.to_vec();
        stored[6 * 1024 + 5] ^= 4; // in window 6 of 8
        let bad = Arc::new(MemoryStorage::new());
        bad.put(RE, stored, Vec::new());
        let slow = Arc::new(SlowAt {
            inner: bad,
            slow_from: 6 * 1024,
        });
        let r = Arc::new(voice_reader(slow, media, keys_of(&k), 1024));
        for off in (0..6 * 1024).step_by(1024) {
            r.read(off, 1024).await.unwrap();
        }
        let r6 = r.clone();
        let window6 = tokio::spawn(async move { r6.read(6 * 1024, 1024).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let end = r.read(7 * 1024, 1024).await;
        assert!(
            matches!(
                &end,
                Err(ReadError::Damaged {
                    cause: CryptoError::TagMismatch,
                    ..
                })
            ),
            "{end:?}"
        );
        assert_eq!(
            window6.await.unwrap().unwrap().len(),
            1024,
            "served, as CTR is"
        );
    }
}
