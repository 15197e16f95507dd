//! The inverse of decryption, as Twilio does it: a fresh content key per object, AES-CBC
//! with PKCS#7, the key wrapped with RSA PKCS#1 v1.5. Used by the emulator to store
//! media the way Twilio does and by the tests; the filesystem never encrypts.

use aes::{Aes128, Aes256};
use cipher::block_padding::Pkcs7;
use cipher::{BlockModeEncrypt, KeyIvInit};
use rsa::{Pkcs1v15Encrypt, PrivateKey, PublicKey};

use super::ContentKey;

/// Encrypts `plain` with AES-CBC and PKCS#7 padding (what `openssl enc -aes-256-cbc` does).
pub fn encrypt(key: &ContentKey, iv: &[u8; 16], plain: &[u8]) -> Vec<u8> {
    match key {
        ContentKey::Aes128(k) => {
            cbc::Encryptor::<Aes128>::new(k.into(), iv.into()).encrypt_padded_vec::<Pkcs7>(plain)
        }
        ContentKey::Aes256(k) => {
            cbc::Encryptor::<Aes256>::new(k.into(), iv.into()).encrypt_padded_vec::<Pkcs7>(plain)
        }
    }
}

/// Encrypts whole blocks in place, without padding, chaining from `prev`.
pub fn encrypt_blocks(key: &ContentKey, prev: &[u8; 16], buf: &mut [u8]) {
    assert!(
        buf.len().is_multiple_of(16),
        "encrypt_blocks takes whole blocks"
    );
    let len = buf.len();
    let _ = match key {
        ContentKey::Aes128(k) => cbc::Encryptor::<Aes128>::new(k.into(), prev.into())
            .encrypt_padded::<cipher::block_padding::NoPadding>(buf, len)
            .map(|_| ()),
        ContentKey::Aes256(k) => cbc::Encryptor::<Aes256>::new(k.into(), prev.into())
            .encrypt_padded::<cipher::block_padding::NoPadding>(buf, len)
            .map(|_| ()),
    };
}

/// Wraps a content key for `public` with RSA PKCS#1 v1.5 (random padding each time).
pub fn wrap_cek(public: &PublicKey, cek: &ContentKey) -> Vec<u8> {
    public
        .encrypt(&mut rand::rng(), Pkcs1v15Encrypt, cek.as_bytes())
        .expect("a 16/32-byte key fits in any RSA key of 1024 bits or more")
}

/// A fresh random content key.
pub fn random_cek(aes256: bool) -> ContentKey {
    use rand::RngExt;
    let mut rng = rand::rng();
    if aes256 {
        ContentKey::Aes256(rng.random())
    } else {
        ContentKey::Aes128(rng.random())
    }
}

/// A fresh RSA key pair of `bits` bits.
pub fn generate_key(bits: usize) -> PrivateKey {
    PrivateKey::new(&mut rand::rng(), bits).expect("RSA key generation")
}

/// A small RSA key for unit tests, generated once per `n` and reused.
#[cfg(test)]
pub fn test_key(n: usize) -> PrivateKey {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static KEYS: OnceLock<Mutex<HashMap<usize, PrivateKey>>> = OnceLock::new();
    let mut keys = KEYS.get_or_init(Default::default).lock().unwrap();
    keys.entry(n).or_insert_with(|| generate_key(1024)).clone()
}
