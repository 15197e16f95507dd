//! AES-CBC random access: decrypting any block-aligned window of an object.
//!
//! Plaintext block i is `AES-Decrypt(C_i) XOR C_(i-1)`, with `C_(-1)` the IV from the
//! headers. So plaintext blocks [k, m) need only ciphertext blocks [k-1, m): the block
//! before the window is its IV. Only the window that ends at the end of the object holds
//! the PKCS#7 padding, and only there is it checked and stripped.
//!
//! The arithmetic here is in bytes: [`fetch_range`] says which ciphertext bytes serve a
//! plaintext range, [`decrypt_window`] turns them into plaintext.

use super::{ContentKey, CryptoError};

/// The AES block size, in bytes.
pub const BLOCK: u64 = 16;

/// The ciphertext length of a plaintext of `plain_len` bytes: PKCS#7 always adds
/// 1..=16 bytes, so an empty plaintext is one block.
pub fn ciphertext_len(plain_len: u64) -> u64 {
    plain_len + BLOCK - plain_len % BLOCK
}

/// The largest plaintext length a ciphertext of `cipher_len` bytes can hold (one byte
/// of padding); the exact length needs the last block.
pub fn max_plaintext_len(cipher_len: u64) -> u64 {
    cipher_len.saturating_sub(1)
}

/// Which ciphertext bytes to fetch to serve plaintext bytes `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchRange {
    /// First ciphertext byte to fetch: one block before `block_start`, or 0.
    pub fetch_start: u64,
    /// One past the last ciphertext byte to fetch (block-aligned).
    pub fetch_end: u64,
    /// First plaintext byte the decrypted window starts at (block-aligned, ≤ start).
    pub block_start: u64,
    /// Whether the first fetched block is the IV (false at offset 0: the header IV is).
    pub leading_iv_block: bool,
    /// Whether the window ends at the end of the object and so holds the padding.
    pub is_last: bool,
}

/// Ciphertext to fetch for plaintext `[start, end)` of an object whose ciphertext is
/// `cipher_len` bytes (a multiple of 16). `end` is clamped to the object.
///
/// A `cipher_len` that is not whole blocks is not AES-CBC and callers refuse it first
/// ([`CryptoError::CiphertextLength`]); should one not, the range stays within the
/// whole blocks (found by the `window` fuzz target: `cipher_len` 20 and `start` 16 used
/// to underflow).
pub fn fetch_range(start: u64, end: u64, cipher_len: u64) -> FetchRange {
    let cipher_len = cipher_len / BLOCK * BLOCK;
    let block_start = (start / BLOCK * BLOCK).min(cipher_len.saturating_sub(BLOCK));
    let block_end = end.div_ceil(BLOCK).saturating_mul(BLOCK).min(cipher_len);
    // The padding shares the last block, so a window that reaches into the last block
    // must include it whole; it then holds the padding and is checked.
    let block_end = block_end.max(block_start + BLOCK).min(cipher_len);
    let leading_iv_block = block_start > 0;
    FetchRange {
        fetch_start: if leading_iv_block {
            block_start - BLOCK
        } else {
            0
        },
        fetch_end: block_end,
        block_start,
        leading_iv_block,
        is_last: block_end == cipher_len,
    }
}

/// Decrypts whole blocks in place. `prev` is the ciphertext block before `buf` (the
/// header IV at offset 0). `buf.len()` must be a multiple of 16.
pub fn decrypt_blocks(
    key: &ContentKey,
    prev: &[u8; 16],
    buf: &mut [u8],
) -> Result<(), CryptoError> {
    if !(buf.len() as u64).is_multiple_of(BLOCK) {
        return Err(CryptoError::CiphertextLength(buf.len() as u64));
    }
    // Optimised even in debug builds: see crates/cbc-blocks.
    let done = match key {
        ContentKey::Aes128(k) => cbc_blocks::decrypt_aes128(k, prev, buf),
        ContentKey::Aes256(k) => cbc_blocks::decrypt_aes256(k, prev, buf),
    };
    done.map_err(|_| CryptoError::CiphertextLength(buf.len() as u64))
}

/// Checks the PKCS#7 padding at the end of decrypted `plain` and returns the length
/// without it. All pad bytes must be equal and between 1 and 16.
pub fn unpadded_len(plain: &[u8]) -> Result<usize, CryptoError> {
    let Some(&pad) = plain.last() else {
        return Err(CryptoError::BadPadding);
    };
    let n = pad as usize;
    if n == 0 || n > BLOCK as usize || n > plain.len() {
        return Err(CryptoError::BadPadding);
    }
    // Constant pattern check over the last block; no early exit on the first mismatch.
    let bad = plain[plain.len() - n..]
        .iter()
        .fold(0u8, |acc, &b| acc | (b ^ pad));
    if bad != 0 {
        return Err(CryptoError::BadPadding);
    }
    Ok(plain.len() - n)
}

/// Decrypts one window in place and returns how many plaintext bytes it holds.
///
/// `buf` holds ciphertext blocks `[16k, 16m)` and `prev` is block `k-1` (or the header
/// IV when k = 0). When `is_last` (16m is the end of the object), the padding is checked
/// and excluded from the returned length; otherwise all of `buf` is plaintext.
pub fn decrypt_window(
    key: &ContentKey,
    prev: &[u8; 16],
    buf: &mut [u8],
    is_last: bool,
) -> Result<usize, CryptoError> {
    decrypt_blocks(key, prev, buf)?;
    if is_last {
        unpadded_len(buf)
    } else {
        Ok(buf.len())
    }
}

/// The exact plaintext length of an object from its last two ciphertext blocks (or the
/// header IV and the only block when the object is one block long), for when
/// `x-amz-unencrypted-content-length` is missing.
pub fn plaintext_len_from_tail(
    key: &ContentKey,
    prev: &[u8; 16],
    last: &[u8; 16],
    cipher_len: u64,
) -> Result<u64, CryptoError> {
    if cipher_len == 0 || !cipher_len.is_multiple_of(BLOCK) {
        return Err(CryptoError::CiphertextLength(cipher_len));
    }
    let mut block = *last;
    let n = decrypt_window(key, prev, &mut block, true)?;
    Ok(cipher_len - BLOCK + n as u64)
}

/// Checks a candidate content key against the object's last block, and the length the
/// headers give when they give one, returning the exact plaintext length. A wrong key
/// passes by chance about once in 256 without a length header, far less with one.
pub fn check_tail(
    key: &ContentKey,
    prev: &[u8; 16],
    last: &[u8; 16],
    cipher_len: u64,
    header_len: Option<u64>,
) -> Result<u64, CryptoError> {
    let actual = plaintext_len_from_tail(key, prev, last, cipher_len)?;
    match header_len {
        Some(header) if header != actual => Err(CryptoError::LengthMismatch { header, actual }),
        _ => Ok(actual),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::seal;
    use proptest::prelude::*;

    fn key_for(seed: u8, aes256: bool) -> ContentKey {
        if aes256 {
            ContentKey::Aes256([seed; 32])
        } else {
            ContentKey::Aes128([seed; 16])
        }
    }

    /// Reference: decrypt the whole object, check and strip the padding.
    fn whole(key: &ContentKey, iv: &[u8; 16], ct: &[u8]) -> Vec<u8> {
        let mut buf = ct.to_vec();
        let n = decrypt_window(key, iv, &mut buf, true).unwrap();
        buf.truncate(n);
        buf
    }

    /// Serve plaintext [start, end) the way a reader does: fetch_range, decrypt, trim.
    fn via_window(key: &ContentKey, iv: &[u8; 16], ct: &[u8], start: u64, end: u64) -> Vec<u8> {
        let r = fetch_range(start, end, ct.len() as u64);
        let fetched = &ct[r.fetch_start as usize..r.fetch_end as usize];
        let (prev, body) = if r.leading_iv_block {
            (
                <[u8; 16]>::try_from(&fetched[..16]).unwrap(),
                &fetched[16..],
            )
        } else {
            (*iv, fetched)
        };
        let mut buf = body.to_vec();
        let n = decrypt_window(key, &prev, &mut buf, r.is_last).unwrap();
        buf.truncate(n);
        let from = (start - r.block_start) as usize;
        let to = ((end - r.block_start) as usize).min(buf.len());
        buf.get(from..to).map(<[u8]>::to_vec).unwrap_or_default()
    }

    #[test]
    fn ciphertext_length_always_adds_padding() {
        assert_eq!(ciphertext_len(0), 16);
        assert_eq!(ciphertext_len(1), 16);
        assert_eq!(ciphertext_len(15), 16);
        assert_eq!(ciphertext_len(16), 32);
        assert_eq!(ciphertext_len(17), 32);
    }

    #[test]
    fn fetch_range_examples() {
        // Start of the object: no leading block, the header IV is used.
        let r = fetch_range(0, 10, 64);
        assert_eq!((r.fetch_start, r.fetch_end, r.block_start), (0, 16, 0));
        assert!(!r.leading_iv_block && !r.is_last);
        // Mid-object: one block before the window.
        let r = fetch_range(20, 40, 64);
        assert_eq!((r.fetch_start, r.fetch_end, r.block_start), (0, 48, 16));
        assert!(r.leading_iv_block);
        // Reaching the end holds the padding.
        let r = fetch_range(50, 1000, 64);
        assert_eq!((r.fetch_start, r.fetch_end, r.block_start), (32, 64, 48));
        assert!(r.is_last);
    }

    /// Regression (fuzz target `window`): lengths that are not whole blocks made the
    /// range arithmetic underflow (a panic in debug builds, a wrapped huge offset in
    /// release). The range stays within the whole blocks, whatever the input.
    #[test]
    fn fetch_range_is_total() {
        let r = fetch_range(16, 17, 20);
        assert_eq!((r.fetch_start, r.fetch_end, r.block_start), (0, 16, 0));
        for cipher_len in (0..80).chain([u64::MAX - 1, u64::MAX]) {
            let starts = [
                0,
                1,
                15,
                16,
                17,
                31,
                32,
                48,
                64,
                79,
                u64::MAX - 16,
                u64::MAX,
            ];
            for start in starts {
                let ends = [
                    start,
                    start.saturating_add(1),
                    start.saturating_add(40),
                    u64::MAX,
                ];
                for end in ends {
                    let r = fetch_range(start, end, cipher_len);
                    let whole = cipher_len / 16 * 16;
                    assert!(r.fetch_start <= r.block_start, "{cipher_len} {start} {end}");
                    assert!(r.fetch_end <= whole, "{cipher_len} {start} {end}");
                    assert_eq!(r.block_start % 16, 0);
                    assert_eq!(r.fetch_end % 16, 0);
                }
            }
        }
    }

    #[test]
    fn distinct_errors() {
        let key = key_for(1, true);
        let iv = [0; 16];
        let mut odd = vec![0; 17];
        assert_eq!(
            decrypt_window(&key, &iv, &mut odd, true),
            Err(CryptoError::CiphertextLength(17))
        );
        // A wrong key decrypts the last block to noise, which is not valid padding.
        let ct = seal::encrypt(&key, &iv, b"hello world");
        let wrong = key_for(2, true);
        let mut buf = ct.clone();
        assert_eq!(
            decrypt_window(&wrong, &iv, &mut buf, true),
            Err(CryptoError::BadPadding)
        );
        assert_eq!(unpadded_len(&[]), Err(CryptoError::BadPadding));
        assert_eq!(unpadded_len(&[0; 16]), Err(CryptoError::BadPadding));
        assert_eq!(unpadded_len(&[17; 16]), Err(CryptoError::BadPadding));
        let mut p = [4u8; 16];
        p[13] = 3;
        assert_eq!(unpadded_len(&p), Err(CryptoError::BadPadding));
        assert_eq!(unpadded_len(&[16; 16]), Ok(0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Any window equals the same slice of a whole-object decrypt, for every length
        /// residue mod 16, both AES key sizes, and windows anywhere (including past EOF).
        #[test]
        fn any_window_equals_the_whole_decrypt(
            plain in proptest::collection::vec(any::<u8>(), 0..=70_000),
            aes256 in any::<bool>(),
            seed in any::<u8>(),
            iv in any::<[u8; 16]>(),
            a in any::<u64>(),
            len in 0u64..100_000,
        ) {
            let key = key_for(seed, aes256);
            let ct = seal::encrypt(&key, &iv, &plain);
            prop_assert_eq!(ct.len() as u64, ciphertext_len(plain.len() as u64));
            prop_assert_eq!(&whole(&key, &iv, &ct), &plain);
            let total = plain.len() as u64;
            let start = if total == 0 { 0 } else { a % (total + 1) };
            let end = start.saturating_add(len);
            let got = via_window(&key, &iv, &ct, start, end);
            let want = &plain[start as usize..end.min(total) as usize];
            prop_assert_eq!(&got[..], want);
            // The exact length from the tail, as when the length header is missing.
            let n = ct.len();
            let prev: [u8; 16] = if n == 16 { iv } else { ct[n - 32..n - 16].try_into().unwrap() };
            let last: [u8; 16] = ct[n - 16..].try_into().unwrap();
            prop_assert_eq!(plaintext_len_from_tail(&key, &prev, &last, n as u64), Ok(total));
        }
    }
}
