//! The inverse of decryption, as Twilio does it: a fresh content key per object, AES-CBC
//! with PKCS#7, the key wrapped with RSA PKCS#1 v1.5; and for encrypted call recordings
//! AES-256-GCM, the key wrapped with RSAES-OAEP (SHA-256). Used by the emulator to store
//! media the way Twilio does and by the tests; the filesystem never encrypts.

use rsa::{Oaep, Pkcs1v15Encrypt, PrivateKey, PublicKey};

use super::ContentKey;
use super::gcm::{GcmEnvelope, IV_LEN};

/// Encrypts `plain` with AES-CBC and PKCS#7 padding (what `openssl enc -aes-256-cbc` does).
pub fn encrypt(key: &ContentKey, iv: &[u8; 16], plain: &[u8]) -> Vec<u8> {
    let pad = 16 - plain.len() % 16;
    let mut out = Vec::with_capacity(plain.len() + pad);
    out.extend_from_slice(plain);
    out.resize(plain.len() + pad, pad as u8);
    encrypt_blocks(key, iv, &mut out);
    out
}

/// Encrypts whole blocks in place, without padding, chaining from `prev` (optimised even
/// in debug builds: see crates/cbc-blocks).
pub fn encrypt_blocks(key: &ContentKey, prev: &[u8; 16], buf: &mut [u8]) {
    let done = match key {
        ContentKey::Aes128(k) => cbc_blocks::encrypt_aes128(k, prev, buf),
        ContentKey::Aes256(k) => cbc_blocks::encrypt_aes256(k, prev, buf),
    };
    done.expect("encrypt_blocks takes whole blocks");
}

/// Wraps a content key for `public` with RSA PKCS#1 v1.5 (random padding each time).
pub fn wrap_cek(public: &PublicKey, cek: &ContentKey) -> Vec<u8> {
    public
        .encrypt(&mut rand::rng(), Pkcs1v15Encrypt, cek.as_bytes())
        .expect("a 16/32-byte key fits in any RSA key of 1024 bits or more")
}

/// Wraps a content key for `public` with RSAES-OAEP, SHA-256 and MGF1-SHA-256 (random
/// padding each time), as Twilio wraps the key of an encrypted call recording.
pub fn wrap_cek_oaep(public: &PublicKey, cek: &ContentKey) -> Vec<u8> {
    public
        .encrypt(
            &mut rand::rng(),
            Oaep::<rsa::sha2::Sha256>::new(),
            cek.as_bytes(),
        )
        .expect("a 32-byte key fits OAEP-SHA-256 in any RSA key of 1024 bits or more")
}

/// Encrypts `plain` with AES-256-GCM under a random 32-byte key and 12-byte IV, no
/// associated data; returns the stored object (ciphertext ‖ tag) and its envelope, the
/// key wrapped for `public`.
pub fn seal_gcm(
    public: &PublicKey,
    public_key_sid: Option<&str>,
    plain: &[u8],
) -> (Vec<u8>, GcmEnvelope) {
    use rand::RngExt;
    let key = random_cek(true);
    let iv: [u8; IV_LEN] = rand::rng().random();
    let stored = seal_gcm_with(&key, &iv, plain);
    let envelope = GcmEnvelope {
        public_key_sid: public_key_sid.map(str::to_owned),
        wrapped_key: wrap_cek_oaep(public, &key),
        iv,
    };
    (stored, envelope)
}

/// [`seal_gcm`] with a given key and IV (deterministic, for tests): ciphertext ‖ tag.
/// Panics on an AES-128 key: recordings are AES-256.
pub fn seal_gcm_with(key: &ContentKey, iv: &[u8; IV_LEN], plain: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::{Aead, KeyInit};
    let ContentKey::Aes256(k) = key else {
        panic!("seal_gcm_with needs an AES-256 key");
    };
    aes_gcm::Aes256Gcm::new(k.into())
        .encrypt(iv.into(), plain)
        .expect("AES-GCM seals any plaintext under 64 GiB")
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
