//! AES-256-GCM of Twilio's encrypted Voice call recordings ("Call Recording Encryption").
//!
//! A recording is stored as `ciphertext ‖ tag`: AES-256-GCM with a random 32-byte
//! content key per recording, a 12-byte IV, no associated data and a 16-byte tag. The
//! content key comes wrapped with RSAES-OAEP (SHA-256, MGF1-SHA-256,
//! [`super::PrivateKeys::unwrap_oaep`]); the key and the IV are base64 strings of the
//! Recording's `encryption_details` ([`GcmEnvelope`]).
//!
//! This module owns the random access to such an object and the check of its tag:
//! - GCM encrypts with CTR from counter block `IV ‖ be32(2)`, so plaintext byte `p` is
//!   ciphertext byte `p` and any 16-byte-aligned window decrypts on its own
//!   ([`apply_ctr`]);
//! - the tag is `GHASH_H(ciphertext ‖ lengths) XOR E_K(IV ‖ be32(1))` with
//!   `H = E_K(0^128)`. GHASH is linear, so [`TagCheck`] hashes each window's ciphertext
//!   on its own as it passes, in any order, and folds the digests in order with one
//!   field multiplication each; once every window and the tag are known it gives the
//!   [`Verdict`];
//! - [`GcmStream`] decrypts a whole object read front to back, holding back the last 16
//!   bytes (the tag) and checking it at the end.
//!
//! The read path uses `ctr` and `ghash` only; `aes-gcm` seals in [`super::seal`] and
//! serves as the reference in the tests. Like the rest of [`super`], no I/O and no
//! logging here. Window plaintext is released before the tag of the object is known
//! (random access cannot wait for the whole object): callers report the verdict.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use aes::Aes256;
use cipher::{BlockCipherEncrypt, KeyInit, KeyIvInit, StreamCipher, StreamCipherSeek};
use ghash::GHash;
use ghash::universal_hash::UniversalHash;
use zeroize::Zeroizing;

use super::envelope::decode_b64;
use super::{ContentKey, CryptoError};

/// The GCM tag at the end of every stored object, in bytes.
pub const TAG_LEN: u64 = 16;
/// The IV (nonce) length Twilio uses, in bytes.
pub const IV_LEN: usize = 12;
/// GCM's limit on one plaintext: counter blocks 2 ..= 2^32 - 1, so 2^32 - 2 blocks.
pub const MAX_PLAINTEXT: u64 = ((1 << 32) - 2) * 16;

type Ctr = ctr::Ctr32BE<Aes256>;
type Block16 = [u8; 16];

/// What decrypts one recording: the wrapped content key and the IV, from the Recording's
/// `encryption_details`. Nothing here is secret (the key is wrapped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcmEnvelope {
    /// The SID of the public key the content key was wrapped for, when Twilio gives it.
    pub public_key_sid: Option<String>,
    /// The content key, RSAES-OAEP-wrapped.
    pub wrapped_key: Vec<u8>,
    pub iv: [u8; IV_LEN],
}

impl GcmEnvelope {
    /// From a Recording's `encryption_details` strings: base64 CEK and base64 IV (12 bytes).
    pub fn from_base64(
        public_key_sid: Option<&str>,
        encrypted_cek: &str,
        iv: &str,
    ) -> Result<Self, CryptoError> {
        let wrapped_key = decode_b64("encryption_details.encrypted_cek", encrypted_cek)?;
        let iv_bytes = decode_b64("encryption_details.iv", iv)?;
        let iv = iv_bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::GcmIvLength {
                len: iv_bytes.len(),
            })?;
        Ok(Self {
            public_key_sid: public_key_sid.map(str::to_owned),
            wrapped_key,
            iv,
        })
    }
}

/// The plaintext length of a stored object of `stored_len` bytes (`stored_len − 16`);
/// an error when it is too short to hold the tag.
pub fn plaintext_len(stored_len: u64) -> Result<u64, CryptoError> {
    stored_len
        .checked_sub(TAG_LEN)
        .ok_or(CryptoError::GcmTooShort(stored_len))
}

fn aes256_key(key: &ContentKey) -> Result<&[u8; 32], CryptoError> {
    match key {
        ContentKey::Aes256(k) => Ok(k),
        other => Err(CryptoError::GcmKeyLength(other.as_bytes().len())),
    }
}

/// The counter block `IV ‖ be32(n)`.
fn counter_block(iv: &[u8; IV_LEN], n: u32) -> Block16 {
    let mut b = [0; 16];
    b[..IV_LEN].copy_from_slice(iv);
    b[IV_LEN..].copy_from_slice(&n.to_be_bytes());
    b
}

/// The keystream from plaintext offset 0 (counter block `IV ‖ 2`).
fn keystream(key: &[u8; 32], iv: &[u8; IV_LEN]) -> Ctr {
    Ctr::new(key.into(), (&counter_block(iv, 2)).into())
}

/// `H = E_K(0^128)`, the GHASH key, and `E_K(J0)`, the tag mask.
fn subkeys(key: &[u8; 32], iv: &[u8; IV_LEN]) -> (Zeroizing<Block16>, Zeroizing<Block16>) {
    let aes = Aes256::new(key.into());
    let mut h = Zeroizing::new([0u8; 16]);
    aes.encrypt_block((&mut *h).into());
    let mut mask = Zeroizing::new(counter_block(iv, 1));
    aes.encrypt_block((&mut *mask).into());
    (h, mask)
}

/// The last GHASH block: the bit lengths of the associated data (none) and ciphertext.
fn length_block(plain_len: u64) -> Block16 {
    let mut b = [0; 16];
    b[8..].copy_from_slice(&plain_len.wrapping_mul(8).to_be_bytes());
    b
}

fn xor(a: &Block16, b: &Block16) -> Block16 {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// Equality without an early exit on the first differing byte.
fn ct_eq(a: &Block16, b: &Block16) -> bool {
    std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// `x · k` in GHASH's field, with `k` given as a GHASH keyed by it.
fn mul(k: &GHash, x: &Block16) -> Block16 {
    let mut g = k.clone();
    g.update(&[(*x).into()]);
    g.finalize().into()
}

/// `H^n` (n ≥ 1), by square and multiply.
fn power(h: &Block16, n: u64) -> Zeroizing<Block16> {
    debug_assert!(n >= 1);
    let mut acc: Option<Zeroizing<Block16>> = None;
    for bit in (0..64 - n.leading_zeros()).rev() {
        acc = Some(match acc {
            None => Zeroizing::new(*h),
            Some(a) => {
                let sq = Zeroizing::new(mul(&GHash::new(&(*a).into()), &a));
                if n >> bit & 1 == 1 {
                    Zeroizing::new(mul(&GHash::new(&(*h).into()), &sq))
                } else {
                    sq
                }
            }
        });
    }
    acc.expect("n >= 1")
}

fn check_range(offset: u64, len: u64) -> Result<(), CryptoError> {
    let fits = offset
        .checked_add(len)
        .is_some_and(|end| end <= MAX_PLAINTEXT);
    if !offset.is_multiple_of(16) || !fits {
        return Err(CryptoError::GcmRange { offset, len });
    }
    Ok(())
}

/// XORs the keystream into `buf` in place (decrypts or encrypts), `buf` being the bytes
/// at plaintext offset `offset`, which must be a multiple of 16. The ciphertext of
/// plaintext bytes `[a, b)` is stored bytes `[a, b)`: the object has no header.
pub fn apply_ctr(
    key: &ContentKey,
    iv: &[u8; IV_LEN],
    offset: u64,
    buf: &mut [u8],
) -> Result<(), CryptoError> {
    let key = aes256_key(key)?;
    check_range(offset, buf.len() as u64)?;
    let mut ctr = keystream(key, iv);
    ctr.try_seek(offset).map_err(|_| CryptoError::GcmRange {
        offset,
        len: buf.len() as u64,
    })?;
    ctr.apply_keystream(buf);
    Ok(())
}

/// Whether an object's tag matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not every window, or not the tag, has been seen yet.
    Unknown,
    Verified,
    Failed,
}

struct TagState {
    /// The next window to fold into `acc`.
    next: u64,
    /// GHASH over the ciphertext of windows `[0, next)`, from the zero state.
    acc: Block16,
    /// GHASH digests (from the zero state) of windows recorded ahead of `next`.
    pending: BTreeMap<u64, Block16>,
    /// The digest of every window recorded so far: a window recorded again (fetched
    /// again after it left a cache) must hash the same, or the object changed.
    seen: HashMap<u64, Block16>,
    tag: Option<Block16>,
    /// Final once not `Unknown`.
    verdict: Verdict,
}

/// The tag of one object checked as its windows pass, in any order. `Send + Sync`: the
/// windows are hashed outside the internal lock, which is held only to fold 16-byte
/// digests (one field multiplication per window).
///
/// Memory: a 16-byte digest per window recorded (kept, to check a window fetched again
/// against it), and a copy of it while it waits for a missing window before it.
pub struct TagCheck {
    /// GHASH keyed with `H`: the per-window digests and the final block.
    ghash: GHash,
    /// Multiplications by `H^m`, m the blocks of a full window and of the last window.
    full_power: GHash,
    last_power: GHash,
    mask: Zeroizing<Block16>,
    plain_len: u64,
    window: u64,
    windows: u64,
    state: Mutex<TagState>,
}

impl std::fmt::Debug for TagCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TagCheck")
            .field("plain_len", &self.plain_len)
            .field("window", &self.window)
            .field("verdict", &self.verdict())
            .finish_non_exhaustive()
    }
}

impl TagCheck {
    /// `window`: plaintext bytes per window (a nonzero multiple of 16; anything else is
    /// a bug in the caller and panics); window w covers
    /// `[w·window, min((w+1)·window, plain_len))`.
    ///
    /// A key that is not AES-256 or a `plain_len` beyond GCM's limit can never verify:
    /// the verdict is `Failed` from the start.
    pub fn new(key: &ContentKey, iv: &[u8; IV_LEN], plain_len: u64, window: u64) -> Self {
        assert!(
            window > 0 && window.is_multiple_of(16),
            "TagCheck window {window} is not a nonzero multiple of 16"
        );
        let usable = aes256_key(key).ok().filter(|_| plain_len <= MAX_PLAINTEXT);
        let (h, mask) = match usable {
            Some(k) => subkeys(k, iv),
            None => (Zeroizing::new([0; 16]), Zeroizing::new([0; 16])),
        };
        let windows = plain_len.div_ceil(window);
        let full_blocks = window / 16;
        let last_blocks = (plain_len - windows.saturating_sub(1) * window)
            .div_ceil(16)
            .max(1);
        let keyed = |k: &Block16| GHash::new(&(*k).into());
        Self {
            ghash: keyed(&h),
            full_power: keyed(&power(&h, full_blocks)),
            last_power: keyed(&power(&h, last_blocks)),
            mask,
            plain_len,
            window,
            windows,
            state: Mutex::new(TagState {
                next: 0,
                acc: [0; 16],
                pending: BTreeMap::new(),
                seen: HashMap::new(),
                tag: None,
                verdict: if usable.is_some() {
                    Verdict::Unknown
                } else {
                    Verdict::Failed
                },
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TagState> {
        // The state is consistent between statements: a panic elsewhere cannot tear it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The plaintext (= ciphertext) length of window `w`, if there is such a window.
    fn window_len(&self, w: u64) -> Option<u64> {
        (w < self.windows).then(|| (self.plain_len - w * self.window).min(self.window))
    }

    /// Records window `w`'s CIPHERTEXT (call before decrypting in place). A window
    /// recorded again (fetched again: caches drop windows) must be the same ciphertext,
    /// whatever the verdict so far: a different one makes it `Failed` (the object
    /// changed under its readers). A window that does not exist or is not its window's
    /// length makes the verdict `Failed`: the ciphertext does not belong to an object of
    /// this length.
    pub fn record(&self, w: u64, ciphertext: &[u8]) {
        if self.window_len(w) != Some(ciphertext.len() as u64) {
            self.lock().verdict = Verdict::Failed;
            return;
        }
        if self.verdict() == Verdict::Failed {
            return;
        }
        // The expensive part, outside the lock.
        let mut g = self.ghash.clone();
        g.update_padded(ciphertext);
        let digest: Block16 = g.finalize().into();

        let mut st = self.lock();
        if let Some(before) = st.seen.get(&w) {
            if !ct_eq(before, &digest) {
                st.verdict = Verdict::Failed;
            }
            return;
        }
        st.seen.insert(w, digest);
        if st.verdict != Verdict::Unknown || w < st.next {
            return;
        }
        st.pending.entry(w).or_insert(digest);
        loop {
            let next = st.next;
            let Some(d) = st.pending.remove(&next) else {
                break;
            };
            let power = if st.next + 1 == self.windows {
                &self.last_power
            } else {
                &self.full_power
            };
            st.acc = xor(&mul(power, &st.acc), &d);
            st.next += 1;
        }
        self.conclude(&mut st);
    }

    /// The stored tag (the object's last 16 bytes). Setting a different tag later makes
    /// the verdict `Failed` (the object changed under us).
    pub fn set_tag(&self, tag: [u8; 16]) {
        let mut st = self.lock();
        match st.tag {
            None => st.tag = Some(tag),
            Some(t) if t == tag => {}
            Some(_) => st.verdict = Verdict::Failed,
        }
        self.conclude(&mut st);
    }

    /// Decides once every window is folded and the tag is known.
    fn conclude(&self, st: &mut TagState) {
        if st.verdict != Verdict::Unknown || st.next != self.windows {
            return;
        }
        let Some(tag) = st.tag else { return };
        let s = mul(&self.ghash, &xor(&st.acc, &length_block(self.plain_len)));
        let expected = Zeroizing::new(xor(&s, &self.mask));
        st.verdict = if ct_eq(&expected, &tag) {
            Verdict::Verified
        } else {
            Verdict::Failed
        };
        st.pending.clear();
    }

    /// The windows not recorded yet, in order (none once the verdict is known).
    pub fn unseen(&self) -> Vec<u64> {
        let st = self.lock();
        if st.verdict != Verdict::Unknown {
            return Vec::new();
        }
        (st.next..self.windows)
            .filter(|w| !st.pending.contains_key(w))
            .collect()
    }

    /// `Verified` or `Failed` once every window and the tag are known; `Unknown` before
    /// (or `Failed` early, see [`TagCheck::record`]). The comparison is constant-time.
    pub fn verdict(&self) -> Verdict {
        self.lock().verdict
    }
}

/// Whole-object streaming decryption for `get`/`decrypt-file`: stored bytes go in as
/// they arrive, in chunks of any size; plaintext comes out, except the last 16 bytes
/// (the tag), which are held back and checked at [`GcmStream::finish`]. Plaintext is
/// released before the tag is checked: on an error from `finish`, discard it.
pub struct GcmStream {
    ctr: Ctr,
    ghash: GHash,
    mask: Zeroizing<Block16>,
    /// Stored bytes not yet decrypted: fewer than 32 (the tag and a partial block).
    held: Vec<u8>,
    stored_seen: u64,
}

impl std::fmt::Debug for GcmStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcmStream")
            .field("stored_seen", &self.stored_seen)
            .finish_non_exhaustive()
    }
}

impl GcmStream {
    /// An error when the key is not AES-256.
    pub fn new(key: ContentKey, iv: [u8; IV_LEN]) -> Result<Self, CryptoError> {
        let k = aes256_key(&key)?;
        let (h, mask) = subkeys(k, &iv);
        Ok(Self {
            ctr: keystream(k, &iv),
            ghash: GHash::new(&(*h).into()),
            mask,
            held: Vec::with_capacity(2 * TAG_LEN as usize),
            stored_seen: 0,
        })
    }

    /// Decrypts what can be decrypted of `input` and appends the plaintext to `out`.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.stored_seen += input.len() as u64;
        let plain = self.stored_seen.saturating_sub(TAG_LEN);
        if plain > MAX_PLAINTEXT {
            return Err(CryptoError::GcmRange {
                offset: 0,
                len: plain,
            });
        }
        let available = self.held.len() + input.len();
        // Whole blocks, keeping the last 16 bytes back: they may be the tag.
        let ready = available.saturating_sub(TAG_LEN as usize) / 16 * 16;
        if ready == 0 {
            self.held.extend_from_slice(input);
            return Ok(());
        }
        let from_held = ready.min(self.held.len());
        let start = out.len();
        out.extend_from_slice(&self.held[..from_held]);
        out.extend_from_slice(&input[..ready - from_held]);
        self.ghash.update_padded(&out[start..]);
        self.ctr.apply_keystream(&mut out[start..]);
        self.held.drain(..from_held);
        self.held.extend_from_slice(&input[ready - from_held..]);
        Ok(())
    }

    /// Checks the tag; returns the plaintext length. [`CryptoError::TagMismatch`] on a
    /// bad tag (the held-back plaintext is then not appended),
    /// [`CryptoError::GcmTooShort`] when fewer than 16 bytes came in.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<u64, CryptoError> {
        let plain_len = plaintext_len(self.stored_seen)?;
        let rest = self.held.len() - TAG_LEN as usize;
        let tag: Block16 = self.held[rest..].try_into().expect("16 bytes");
        let mut last = Zeroizing::new(self.held[..rest].to_vec());
        self.ghash.update_padded(&last);
        self.ghash.update(&[length_block(plain_len).into()]);
        let s: Block16 = self.ghash.finalize().into();
        if !ct_eq(&xor(&s, &self.mask), &tag) {
            return Err(CryptoError::TagMismatch);
        }
        self.ctr.apply_keystream(&mut last);
        out.extend_from_slice(&last);
        Ok(plain_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::seal;
    use aes_gcm::aead::Aead;
    use proptest::prelude::*;

    const KEY: ContentKey = ContentKey::Aes256([0x5a; 32]);
    const IV: [u8; 12] = [0xc3; 12];

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
            .collect()
    }

    /// The reference: aes-gcm's own decryption (which checks the tag).
    fn reference_open(key: &ContentKey, iv: &[u8; 12], stored: &[u8]) -> Vec<u8> {
        let cipher = aes_gcm::Aes256Gcm::new(key.as_bytes().try_into().unwrap());
        cipher.decrypt(iv.into(), stored).expect("aes-gcm opens it")
    }

    fn tag_of(stored: &[u8]) -> [u8; 16] {
        stored[stored.len() - 16..].try_into().unwrap()
    }

    /// Records every window of `stored` in `order`, and the tag after window `tag_at`.
    fn check(stored: &[u8], window: u64, order: &[u64], tag_at: usize) -> Verdict {
        let plain_len = plaintext_len(stored.len() as u64).unwrap();
        let tc = TagCheck::new(&KEY, &IV, plain_len, window);
        if order.is_empty() || tag_at >= order.len() {
            tc.set_tag(tag_of(stored));
        }
        for (i, &w) in order.iter().enumerate() {
            let a = (w * window) as usize;
            let b = (a + window as usize).min(plain_len as usize);
            tc.record(w, &stored[a..b]);
            if i == tag_at {
                tc.set_tag(tag_of(stored));
            }
        }
        tc.verdict()
    }

    fn in_order(plain_len: u64, window: u64) -> Vec<u64> {
        (0..plain_len.div_ceil(window)).collect()
    }

    /// NIST GCM test case 15 (AES-256, no associated data).
    #[test]
    fn known_answer() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let key =
            ContentKey::from_bytes(&hex(&"feffe9928665731c6d6a8f9467308308".repeat(2))).unwrap();
        let iv: [u8; 12] = hex("cafebabefacedbaddecaf888").try_into().unwrap();
        let plain = hex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
             1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
        );
        let stored = hex(
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
             8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad\
             b094dac5d93471bdec1a502270e3cc6c",
        );
        assert_eq!(seal::seal_gcm_with(&key, &iv, &plain), stored);
        let mut buf = stored[..64].to_vec();
        apply_ctr(&key, &iv, 0, &mut buf).unwrap();
        assert_eq!(buf, plain);
        let tc = TagCheck::new(&key, &iv, 64, 32);
        tc.record(1, &stored[32..64]);
        tc.record(0, &stored[..32]);
        tc.set_tag(tag_of(&stored));
        assert_eq!(tc.verdict(), Verdict::Verified);
        let mut s = GcmStream::new(key, iv).unwrap();
        let mut out = Vec::new();
        s.update(&stored, &mut out).unwrap();
        assert_eq!(s.finish(&mut out), Ok(64));
        assert_eq!(out, plain);
    }

    /// apply_ctr at every window, and from every block edge, equals aes-gcm's decryption.
    #[test]
    fn apply_ctr_at_every_edge_equals_aes_gcm() {
        for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 1000, 70_000] {
            let plain = data(len, len as u8);
            let stored = seal::seal_gcm_with(&KEY, &IV, &plain);
            assert_eq!(stored.len(), len + 16);
            assert_eq!(reference_open(&KEY, &IV, &stored), plain);
            for window in [16usize, 32, 4096] {
                for a in (0..len).step_by(window) {
                    let b = (a + window).min(len);
                    let mut buf = stored[a..b].to_vec();
                    apply_ctr(&KEY, &IV, a as u64, &mut buf).unwrap();
                    assert_eq!(buf, plain[a..b], "len {len} window {window} at {a}");
                }
            }
            for a in (0..len).step_by(16) {
                for n in [1, 15, 16, 17, 33] {
                    let b = (a + n).min(len);
                    let mut buf = stored[a..b].to_vec();
                    apply_ctr(&KEY, &IV, a as u64, &mut buf).unwrap();
                    assert_eq!(buf, plain[a..b], "len {len} at {a}+{n}");
                }
            }
        }
    }

    #[test]
    fn apply_ctr_refuses_what_is_not_gcm() {
        let mut buf = [0u8; 32];
        for offset in [1, 15, 17, 4097] {
            assert_eq!(
                apply_ctr(&KEY, &IV, offset, &mut buf),
                Err(CryptoError::GcmRange { offset, len: 32 })
            );
        }
        assert_eq!(
            apply_ctr(&KEY, &IV, MAX_PLAINTEXT - 16, &mut buf),
            Err(CryptoError::GcmRange {
                offset: MAX_PLAINTEXT - 16,
                len: 32
            })
        );
        assert_eq!(apply_ctr(&KEY, &IV, MAX_PLAINTEXT - 32, &mut buf), Ok(()));
        assert_eq!(
            apply_ctr(&ContentKey::Aes128([1; 16]), &IV, 0, &mut buf),
            Err(CryptoError::GcmKeyLength(16))
        );
        assert!(matches!(
            GcmStream::new(ContentKey::Aes128([1; 16]), IV),
            Err(CryptoError::GcmKeyLength(16))
        ));
        let tc = TagCheck::new(&ContentKey::Aes128([1; 16]), &IV, 0, 16);
        tc.set_tag([0; 16]);
        assert_eq!(tc.verdict(), Verdict::Failed);
    }

    #[test]
    fn plaintext_len_strips_the_tag() {
        assert_eq!(plaintext_len(16), Ok(0));
        assert_eq!(plaintext_len(1016), Ok(1000));
        for n in [0, 1, 15] {
            assert_eq!(plaintext_len(n), Err(CryptoError::GcmTooShort(n)));
        }
    }

    #[test]
    fn envelope_from_base64() {
        use base64::Engine;
        use base64::engine::general_purpose::STANDARD;
        let e = GcmEnvelope::from_base64(
            Some("CRxx"),
            &STANDARD.encode([1, 2, 3]),
            &STANDARD.encode(IV),
        )
        .unwrap();
        assert_eq!(
            e,
            GcmEnvelope {
                public_key_sid: Some("CRxx".into()),
                wrapped_key: vec![1, 2, 3],
                iv: IV
            }
        );
        let e = GcmEnvelope::from_base64(None, "AQID", &STANDARD.encode([0u8; 16])).unwrap_err();
        assert_eq!(e, CryptoError::GcmIvLength { len: 16 });
        let e = GcmEnvelope::from_base64(None, "not base64!", &STANDARD.encode(IV)).unwrap_err();
        assert!(
            matches!(&e, CryptoError::Base64 { header, .. } if header.contains("encrypted_cek")),
            "{e}"
        );
        let e = GcmEnvelope::from_base64(None, "AQID", "%%").unwrap_err();
        assert!(
            matches!(&e, CryptoError::Base64 { header, .. } if header.ends_with(".iv")),
            "{e}"
        );
    }

    #[test]
    fn tag_check_in_order_and_damaged() {
        for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 1000, 70_000] {
            let stored = seal::seal_gcm_with(&KEY, &IV, &data(len, 7));
            for window in [16u64, 32, 48, 4096] {
                let order = in_order(len as u64, window);
                assert_eq!(check(&stored, window, &order, 0), Verdict::Verified);
                assert_eq!(
                    check(&stored, window, &order, usize::MAX),
                    Verdict::Verified
                );
                // One flipped byte anywhere: ciphertext or tag.
                for at in [0, len / 2, len.saturating_sub(1), len, len + 15] {
                    let mut bad = stored.clone();
                    bad[at] ^= 0x80;
                    assert_eq!(
                        check(&bad, window, &order, 0),
                        Verdict::Failed,
                        "len {len} window {window} flipped {at}"
                    );
                }
            }
        }
    }

    #[test]
    fn tag_check_is_unknown_until_everything_is_seen() {
        let stored = seal::seal_gcm_with(&KEY, &IV, &data(1000, 1));
        let tc = TagCheck::new(&KEY, &IV, 1000, 256);
        assert_eq!(tc.verdict(), Verdict::Unknown);
        tc.set_tag(tag_of(&stored));
        for w in [3, 0, 2] {
            let a = w as usize * 256;
            tc.record(w, &stored[a..(a + 256).min(1000)]);
            assert_eq!(tc.verdict(), Verdict::Unknown, "window 1 is missing");
        }
        tc.record(1, &stored[256..512]);
        assert_eq!(tc.verdict(), Verdict::Verified);
        // The windows without the tag.
        let tc = TagCheck::new(&KEY, &IV, 1000, 256);
        for w in 0..4 {
            let a = w as usize * 256;
            tc.record(w, &stored[a..(a + 256).min(1000)]);
        }
        assert_eq!(tc.verdict(), Verdict::Unknown, "no tag yet");
        tc.set_tag(tag_of(&stored));
        assert_eq!(tc.verdict(), Verdict::Verified);
        // Recording again, or the same tag again, changes nothing.
        tc.record(2, &stored[512..768]);
        tc.set_tag(tag_of(&stored));
        assert_eq!(tc.verdict(), Verdict::Verified);
    }

    #[test]
    fn a_window_recorded_again_must_be_the_same() {
        let plain = data(5000, 1);
        let stored = seal::seal_gcm_with(&KEY, &IV, &plain);
        let tc = TagCheck::new(&KEY, &IV, 5000, 1024);
        for w in 0..5u64 {
            let a = (w * 1024) as usize;
            tc.record(w, &stored[a..(a + 1024).min(5000)]);
        }
        tc.set_tag(stored[5000..].try_into().unwrap());
        assert_eq!(tc.verdict(), Verdict::Verified);
        tc.record(2, &stored[2048..3072]);
        assert_eq!(tc.verdict(), Verdict::Verified, "the same again: harmless");
        let mut changed = stored[2048..3072].to_vec();
        changed[7] ^= 1;
        tc.record(2, &changed);
        assert_eq!(tc.verdict(), Verdict::Failed, "fetched again, changed");
    }

    #[test]
    fn tag_check_refuses_windows_that_do_not_fit() {
        let stored = seal::seal_gcm_with(&KEY, &IV, &data(100, 1));
        for (w, len) in [(0u64, 31usize), (3, 5), (3, 16), (4, 4), (u64::MAX, 1)] {
            let tc = TagCheck::new(&KEY, &IV, 100, 32);
            tc.record(w, &stored[..len]);
            assert_eq!(tc.verdict(), Verdict::Failed, "window {w} of {len} bytes");
        }
        // A second, different tag: the object changed.
        let tc = TagCheck::new(&KEY, &IV, 100, 32);
        tc.set_tag(tag_of(&stored));
        tc.set_tag([0; 16]);
        assert_eq!(tc.verdict(), Verdict::Failed);
        // A wrong IV or key fails the tag.
        for (key, iv) in [(KEY, [0; 12]), (ContentKey::Aes256([1; 32]), IV)] {
            let tc = TagCheck::new(&key, &iv, 100, 32);
            for w in 0..4 {
                let a = w as usize * 32;
                tc.record(w, &stored[a..(a + 32).min(100)]);
            }
            tc.set_tag(tag_of(&stored));
            assert_eq!(tc.verdict(), Verdict::Failed);
        }
    }

    #[test]
    fn tag_check_is_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<TagCheck>();
        let len = 70_000;
        let stored = seal::seal_gcm_with(&KEY, &IV, &data(len, 9));
        let tc = TagCheck::new(&KEY, &IV, len as u64, 64);
        let windows = (len as u64).div_ceil(64);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (tc, stored) = (&tc, &stored);
                s.spawn(move || {
                    for w in (0..windows).rev().filter(|w| w % 4 == t) {
                        let a = w as usize * 64;
                        tc.record(w, &stored[a..(a + 64).min(len)]);
                    }
                });
            }
        });
        tc.set_tag(tag_of(&stored));
        assert_eq!(tc.verdict(), Verdict::Verified);
    }

    #[test]
    fn stream_refuses_damage_and_short_input() {
        let plain = data(1000, 3);
        let stored = seal::seal_gcm_with(&KEY, &IV, &plain);
        for at in [0, 999, 1000, 1015] {
            let mut bad = stored.clone();
            bad[at] ^= 1;
            let mut s = GcmStream::new(KEY, IV).unwrap();
            let mut out = Vec::new();
            s.update(&bad, &mut out).unwrap();
            assert_eq!(s.finish(&mut out), Err(CryptoError::TagMismatch), "{at}");
        }
        for n in [0, 1, 15] {
            let mut s = GcmStream::new(KEY, IV).unwrap();
            let mut out = Vec::new();
            s.update(&stored[..n], &mut out).unwrap();
            assert_eq!(s.finish(&mut out), Err(CryptoError::GcmTooShort(n as u64)));
        }
        // Cut short at any length: the held-back bytes are not the tag.
        for n in [16, 17, 500, 1015] {
            let mut s = GcmStream::new(KEY, IV).unwrap();
            let mut out = Vec::new();
            s.update(&stored[..n], &mut out).unwrap();
            assert_eq!(s.finish(&mut out), Err(CryptoError::TagMismatch), "{n}");
        }
    }

    fn shuffled(n: u64, seed: u64) -> Vec<u64> {
        let mut v: Vec<u64> = (0..n).collect();
        let mut x = seed | 1;
        for i in (1..v.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.swap(i, (x % (i as u64 + 1)) as usize);
        }
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Windows recorded in any order, some twice, verify; any one flipped byte fails;
        /// and every window decrypts to the plaintext.
        #[test]
        fn tag_check_in_any_order(
            plain in proptest::collection::vec(any::<u8>(), 0..6000),
            blocks in 1u64..40,
            seed in any::<u64>(),
            tag_at in any::<usize>(),
            flip in any::<usize>(),
        ) {
            let window = blocks * 16;
            let stored = seal::seal_gcm_with(&KEY, &IV, &plain);
            let len = plain.len() as u64;
            let mut order = shuffled(len.div_ceil(window), seed);
            let tag_at = if order.is_empty() { 0 } else { tag_at % (order.len() + 1) };
            if let Some(&w) = order.get(seed as usize % order.len().max(1)) {
                order.push(w);
            }
            prop_assert_eq!(check(&stored, window, &order, tag_at), Verdict::Verified);
            let mut bad = stored.clone();
            let at = flip % bad.len();
            bad[at] ^= 1 << (seed % 8);
            prop_assert_eq!(check(&bad, window, &order, tag_at), Verdict::Failed);
            for &w in &order {
                let a = (w * window) as usize;
                let b = (a + window as usize).min(plain.len());
                let mut buf = stored[a..b].to_vec();
                apply_ctr(&KEY, &IV, a as u64, &mut buf).unwrap();
                prop_assert_eq!(&buf[..], &plain[a..b]);
            }
        }

        /// Any 16-aligned offset and length decrypts like the whole object.
        #[test]
        fn apply_ctr_anywhere(
            plain in proptest::collection::vec(any::<u8>(), 1..5000),
            start in any::<usize>(),
            n in 0usize..3000,
        ) {
            let stored = seal::seal_gcm_with(&KEY, &IV, &plain);
            let a = start % plain.len() / 16 * 16;
            let b = (a + n).min(plain.len());
            let mut buf = stored[a..b].to_vec();
            apply_ctr(&KEY, &IV, a as u64, &mut buf).unwrap();
            prop_assert_eq!(&buf[..], &plain[a..b]);
        }

        /// Chunks of any sizes (1 byte included) give the plaintext and check the tag.
        #[test]
        fn stream_in_any_chunks(
            plain in proptest::collection::vec(any::<u8>(), 0..5000),
            chunks in proptest::collection::vec(1usize..100, 1..20),
            one_byte in any::<bool>(),
        ) {
            let stored = seal::seal_gcm_with(&KEY, &IV, &plain);
            let mut s = GcmStream::new(KEY, IV).unwrap();
            let mut out = Vec::new();
            let mut rest = &stored[..];
            let mut sizes = chunks.iter().cycle();
            while !rest.is_empty() {
                let n = if one_byte { 1 } else { (*sizes.next().unwrap()).min(rest.len()) };
                s.update(&rest[..n], &mut out).unwrap();
                let consumed = stored.len() - rest.len() + n;
                prop_assert!(out.len() <= consumed.saturating_sub(16), "the tag is held back");
                rest = &rest[n..];
            }
            prop_assert_eq!(s.finish(&mut out), Ok(plain.len() as u64));
            prop_assert_eq!(out, plain);
        }
    }
}
