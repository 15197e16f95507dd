//! AES-CBC over whole blocks, in place, with no padding: decryption and encryption for
//! AES-128 and AES-256 keys, chaining from the block before (the IV of the first).
//!
//! Why a crate of its own: the `cbc` code is generic, so it is compiled in the crate that
//! names the cipher. In twilio-media-fs itself that means without optimisation in debug
//! builds, where every test runs: about 10 MB/s instead of GB/s. Here, these four
//! non-generic functions are that instantiation, and the workspace's profile compiles
//! this crate optimised in every build (`[profile.dev.package.cbc-blocks]`). Padding,
//! lengths and errors are the caller's (`twilio_media_fs::crypto::window`); this crate
//! only asserts whole blocks.

use aes::{Aes128, Aes256};
use cipher::block_padding::NoPadding;
use cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};

/// The AES block: 16 bytes.
pub const BLOCK: usize = 16;

/// `buf` is not a whole number of blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotWholeBlocks(pub usize);

fn whole(buf: &[u8]) -> Result<(), NotWholeBlocks> {
    if buf.len().is_multiple_of(BLOCK) {
        Ok(())
    } else {
        Err(NotWholeBlocks(buf.len()))
    }
}

/// Decrypts `buf` in place with AES-128-CBC, `prev` the ciphertext block before it.
pub fn decrypt_aes128(key: &[u8; 16], prev: &[u8; 16], buf: &mut [u8]) -> Result<(), NotWholeBlocks> {
    whole(buf)?;
    cbc::Decryptor::<Aes128>::new(key.into(), prev.into())
        .decrypt_padded::<NoPadding>(buf)
        .map(|_| ())
        .map_err(|_| NotWholeBlocks(buf.len()))
}

/// Decrypts `buf` in place with AES-256-CBC, `prev` the ciphertext block before it.
pub fn decrypt_aes256(key: &[u8; 32], prev: &[u8; 16], buf: &mut [u8]) -> Result<(), NotWholeBlocks> {
    whole(buf)?;
    cbc::Decryptor::<Aes256>::new(key.into(), prev.into())
        .decrypt_padded::<NoPadding>(buf)
        .map(|_| ())
        .map_err(|_| NotWholeBlocks(buf.len()))
}

/// Encrypts `buf` in place with AES-128-CBC, chaining from `prev`.
pub fn encrypt_aes128(key: &[u8; 16], prev: &[u8; 16], buf: &mut [u8]) -> Result<(), NotWholeBlocks> {
    whole(buf)?;
    let len = buf.len();
    cbc::Encryptor::<Aes128>::new(key.into(), prev.into())
        .encrypt_padded::<NoPadding>(buf, len)
        .map(|_| ())
        .map_err(|_| NotWholeBlocks(len))
}

/// Encrypts `buf` in place with AES-256-CBC, chaining from `prev`.
pub fn encrypt_aes256(key: &[u8; 32], prev: &[u8; 16], buf: &mut [u8]) -> Result<(), NotWholeBlocks> {
    whole(buf)?;
    let len = buf.len();
    cbc::Encryptor::<Aes256>::new(key.into(), prev.into())
        .encrypt_padded::<NoPadding>(buf, len)
        .map(|_| ())
        .map_err(|_| NotWholeBlocks(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_chains() {
        let (k1, k2, iv) = ([7u8; 16], [9u8; 32], [3u8; 16]);
        let plain: Vec<u8> = (0..64u8).collect();
        let mut a = plain.clone();
        encrypt_aes128(&k1, &iv, &mut a).unwrap();
        assert_ne!(a, plain);
        // The second half decrypts alone with the block before it as its IV.
        let mut tail = a[32..].to_vec();
        let prev: [u8; 16] = a[16..32].try_into().unwrap();
        decrypt_aes128(&k1, &prev, &mut tail).unwrap();
        assert_eq!(tail, plain[32..]);
        decrypt_aes128(&k1, &iv, &mut a).unwrap();
        assert_eq!(a, plain);
        let mut b = plain.clone();
        encrypt_aes256(&k2, &iv, &mut b).unwrap();
        decrypt_aes256(&k2, &iv, &mut b).unwrap();
        assert_eq!(b, plain);
        assert_eq!(decrypt_aes128(&k1, &iv, &mut [0u8; 15]), Err(NotWholeBlocks(15)));
    }
}
