//! Envelope decryption of Twilio's stored media (the S3 Encryption Client v1 format).
//!
//! This module owns everything that turns ciphertext bytes into plaintext bytes:
//! private keys parsed from PEM text ([`PrivateKeys`]), the envelope read from response
//! headers ([`Envelope`]), the content key unwrapped with RSA PKCS#1 v1.5 ([`ContentKey`]),
//! AES-CBC decryption of block-aligned windows with PKCS#7 checked only at the end
//! ([`window`]), a streaming decryptor for whole objects ([`StreamDecryptor`]), and the
//! inverse operations the emulator and the tests need ([`seal`]). Encrypted Voice call
//! recordings use another format, AES-256-GCM with an RSAES-OAEP-wrapped key: [`gcm`]
//! has its random access, its tag check and its streaming decryptor.
//!
//! It must stay pure: no files, no network, no logging, no environment. Callers bring
//! bytes and text; that is what lets it be tested exhaustively and fuzzed on its own.

mod envelope;
mod error;
pub mod gcm;
mod keys;
pub mod seal;
mod stream;
pub mod window;

pub use envelope::{Envelope, parse_saved_headers};
pub use error::CryptoError;
pub use gcm::{GcmEnvelope, GcmStream, TagCheck, Verdict};
pub use keys::{ContentKey, PassphraseSource, PrivateKeys};
pub use stream::StreamDecryptor;
pub use window::BLOCK;
