//! Synthetic objects: large encrypted "recordings" that are never stored, only computed.
//!
//! This file owns the arithmetic that makes any byte range of a synthetic object's
//! ciphertext computable in O(range) time and O(range) memory, so that `--synthetic 1GiB`
//! costs nothing until it is read. It must not hold whole objects in memory, and it does
//! no I/O.
//!
//! # How it works
//! The ciphertext is defined first and the plaintext is whatever it decrypts to. Block `i`
//! (all but the last) is a keyed pseudo-random function of `i`: AES-128 of the counter `i`
//! under a per-object key, which AES-NI computes many blocks at a time. Any such sequence
//! is a valid AES-CBC ciphertext body; only the last block matters, because it must
//! decrypt to valid PKCS#7 padding. So the last block is computed once, at creation:
//! `C_last = AES_Enc(CEK, P_last XOR C_prev)`, where `P_last` holds the last
//! `len mod 16` bytes of "data" followed by the pad bytes, and `C_prev` is the block before
//! (or the IV for a one-block object). The plaintext therefore has exactly the requested
//! length, including 0 (one block of pure padding).

use aes::Aes128;
use cipher::array::Array;
use cipher::{BlockCipherEncrypt, KeyInit};
use rand::RngExt;

use crate::crypto::window::ciphertext_len;
use crate::crypto::{BLOCK, ContentKey, seal};

/// A synthetic object's ciphertext, computed on demand.
pub struct Synthetic {
    plain_len: u64,
    cipher_len: u64,
    prf: Aes128,
    last_block: [u8; 16],
}

impl Synthetic {
    /// A synthetic object of `plain_len` plaintext bytes, encrypted (by construction)
    /// under `cek` with first-block IV `iv`.
    pub fn new(plain_len: u64, cek: &ContentKey, iv: &[u8; 16]) -> Self {
        let prf_key: [u8; 16] = rand::rng().random();
        let prf = Aes128::new(&prf_key.into());
        let cipher_len = ciphertext_len(plain_len);
        let blocks = cipher_len / BLOCK;
        let prev = if blocks >= 2 {
            prf_block(&prf, blocks - 2)
        } else {
            *iv
        };
        // The data bytes of the last block are arbitrary: reuse the PRF's block.
        let mut last = prf_block(&prf, blocks - 1);
        let data = (plain_len % BLOCK) as usize;
        let pad = (BLOCK as usize - data) as u8;
        last[data..].fill(pad);
        // CBC-encrypting one block with `prev` as IV is AES_Enc(P_last XOR C_prev).
        seal::encrypt_blocks(cek, &prev, &mut last);
        Self {
            plain_len,
            cipher_len,
            prf,
            last_block: last,
        }
    }

    /// The plaintext length in bytes.
    pub fn plain_len(&self) -> u64 {
        self.plain_len
    }

    /// The ciphertext length in bytes (a multiple of 16, at least 16).
    pub fn cipher_len(&self) -> u64 {
        self.cipher_len
    }

    /// Fills `out` with ciphertext bytes `[offset, offset + out.len())`.
    ///
    /// # Panics
    /// When the range runs past the end of the object.
    pub fn fill(&self, offset: u64, out: &mut [u8]) {
        if out.is_empty() {
            return;
        }
        let end = offset + out.len() as u64;
        assert!(end <= self.cipher_len, "range past the end of the object");
        let first = offset / BLOCK;
        let last = (end - 1) / BLOCK;
        let mut blocks: Vec<Array<u8, _>> = (first..=last)
            .map(|i| Array::from((i as u128).to_le_bytes()))
            .collect();
        self.prf.encrypt_blocks(&mut blocks);
        let final_index = self.cipher_len / BLOCK - 1;
        if last == final_index {
            *blocks.last_mut().expect("at least one block") = Array::from(self.last_block);
        }
        let skip = (offset - first * BLOCK) as usize;
        let mut written = 0;
        for (n, block) in blocks.iter().enumerate() {
            let from = if n == 0 { skip } else { 0 };
            let take = (16 - from).min(out.len() - written);
            out[written..written + take].copy_from_slice(&block[from..from + take]);
            written += take;
        }
    }

    /// Ciphertext bytes `[offset, offset + len)` as a new buffer.
    pub fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        self.fill(offset, &mut out);
        out
    }
}

fn prf_block(prf: &Aes128, i: u64) -> [u8; 16] {
    let mut block = Array::from((i as u128).to_le_bytes());
    prf.encrypt_block(&mut block);
    block.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::window::decrypt_window;

    fn decrypt(s: &Synthetic, cek: &ContentKey, iv: &[u8; 16]) -> Vec<u8> {
        let mut buf = s.read(0, s.cipher_len() as usize);
        let n = decrypt_window(cek, iv, &mut buf, true).expect("valid padding");
        buf.truncate(n);
        buf
    }

    #[test]
    fn decrypts_to_exactly_the_requested_length() {
        for aes256 in [true, false] {
            for len in [0u64, 1, 15, 16, 17, 31, 32, 33, 100_000] {
                let cek = seal::random_cek(aes256);
                let iv = [7u8; 16];
                let s = Synthetic::new(len, &cek, &iv);
                assert_eq!(s.cipher_len(), ciphertext_len(len));
                assert_eq!(decrypt(&s, &cek, &iv).len() as u64, len, "len {len}");
            }
        }
    }

    #[test]
    fn any_slice_equals_the_same_slice_of_the_whole() {
        let cek = seal::random_cek(true);
        let iv = [1u8; 16];
        let s = Synthetic::new(10_007, &cek, &iv);
        let whole = s.read(0, s.cipher_len() as usize);
        let len = whole.len() as u64;
        let cases = [
            (0, 1),
            (0, 16),
            (1, 15),
            (5, 40),
            (15, 2),
            (16, 16),
            (1000, 3333),
            (len - 17, 17),
            (len - 1, 1),
            (len - 40, 40),
            (0, len),
        ];
        for (off, n) in cases {
            assert_eq!(
                s.read(off, n as usize),
                &whole[off as usize..(off + n) as usize],
                "slice {off}+{n}"
            );
        }
    }

    #[test]
    fn streaming_decrypt_matches() {
        let cek = seal::random_cek(true);
        let iv = [9u8; 16];
        let s = Synthetic::new(70_000, &cek, &iv);
        let whole = decrypt(&s, &cek, &iv);
        // Decrypting a middle window with the previous block as IV gives the same bytes.
        let mut window = s.read(16 * 100, 16 * 50);
        let prev: [u8; 16] = s.read(16 * 99, 16).try_into().unwrap();
        decrypt_window(&cek, &prev, &mut window, false).unwrap();
        assert_eq!(window, &whole[1600..1600 + 800]);
    }
}
