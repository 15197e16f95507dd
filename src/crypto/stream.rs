//! Whole-object decryption in constant memory, for `decrypt-file` and `get`: ciphertext
//! goes in as it arrives, in chunks of any size; plaintext comes out. The last complete
//! block is held back until [`StreamDecryptor::finish`], because only at the end is it
//! known to be the one that holds the padding.

use super::window::{BLOCK, decrypt_blocks, unpadded_len};
use super::{ContentKey, CryptoError};

pub struct StreamDecryptor {
    key: ContentKey,
    /// The ciphertext block before the next one to decrypt (the header IV at first).
    prev: [u8; 16],
    /// Ciphertext received but not yet decrypted: at most one block plus a partial one.
    held: Vec<u8>,
    cipher_seen: u64,
}

impl StreamDecryptor {
    pub fn new(key: ContentKey, iv: [u8; 16]) -> Self {
        Self {
            key,
            prev: iv,
            held: Vec::with_capacity(2 * BLOCK as usize),
            cipher_seen: 0,
        }
    }

    /// Decrypts what can be decrypted of `input` and appends the plaintext to `out`.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.cipher_seen += input.len() as u64;
        self.held.extend_from_slice(input);
        let whole = self.held.len() / BLOCK as usize * BLOCK as usize;
        // Keep the last complete block back unless a partial block follows it.
        let ready = if whole == self.held.len() {
            whole.saturating_sub(BLOCK as usize)
        } else {
            whole
        };
        if ready == 0 {
            return Ok(());
        }
        let start = out.len();
        out.extend_from_slice(&self.held[..ready]);
        let next_prev: [u8; 16] = self.held[ready - 16..ready].try_into().expect("16 bytes");
        decrypt_blocks(&self.key, &self.prev, &mut out[start..])?;
        self.prev = next_prev;
        self.held.drain(..ready);
        Ok(())
    }

    /// Decrypts the held-back last block, checks and strips the padding, and returns the
    /// total ciphertext length seen.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<u64, CryptoError> {
        if self.held.len() != BLOCK as usize {
            return Err(CryptoError::CiphertextLength(self.cipher_seen));
        }
        let mut last: [u8; 16] = self.held[..].try_into().expect("one block");
        decrypt_blocks(&self.key, &self.prev, &mut last)?;
        let n = unpadded_len(&last)?;
        out.extend_from_slice(&last[..n]);
        self.held.clear();
        Ok(self.cipher_seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::seal;
    use proptest::prelude::*;

    proptest! {
        /// Chunked input of any sizes gives the same plaintext as the original.
        #[test]
        fn chunked_stream_roundtrips(
            plain in proptest::collection::vec(any::<u8>(), 0..5000),
            chunks in proptest::collection::vec(1usize..200, 1..50),
            iv in any::<[u8; 16]>(),
        ) {
            let key = ContentKey::Aes256([3; 32]);
            let ct = seal::encrypt(&key, &iv, &plain);
            let mut d = StreamDecryptor::new(key, iv);
            let mut out = Vec::new();
            let mut rest = &ct[..];
            for c in chunks.iter().cycle() {
                if rest.is_empty() { break; }
                let (now, later) = rest.split_at((*c).min(rest.len()));
                d.update(now, &mut out).unwrap();
                rest = later;
            }
            prop_assert_eq!(d.finish(&mut out), Ok(ct.len() as u64));
            prop_assert_eq!(out, plain);
        }
    }

    #[test]
    fn truncated_or_empty_input_is_an_error() {
        let key = ContentKey::Aes128([3; 16]);
        let plain: Vec<u8> = (0..40).collect();
        let ct = seal::encrypt(&key, &[0; 16], &plain);
        for cut in [0, 1, 15, 17, 47] {
            let mut d = StreamDecryptor::new(key.clone(), [0; 16]);
            let mut out = Vec::new();
            d.update(&ct[..cut], &mut out).unwrap();
            assert_eq!(
                d.finish(&mut out),
                Err(CryptoError::CiphertextLength(cut as u64))
            );
        }
        // Cut at a block boundary: the new last block's padding is (almost surely) bad.
        let mut d = StreamDecryptor::new(key, [0; 16]);
        let mut out = Vec::new();
        d.update(&ct[..32], &mut out).unwrap();
        assert_eq!(d.finish(&mut out), Err(CryptoError::BadPadding));
    }
}
