//! The one error type of [`crate::crypto`]: each variant is a distinct cause with a
//! message that says what it means for the user and, where there is one, what to do.

/// Why decryption, key loading or envelope parsing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error(
        "{name}: not a PEM private key ({detail}); expected `BEGIN RSA PRIVATE KEY`, \
         `BEGIN PRIVATE KEY` or `BEGIN ENCRYPTED PRIVATE KEY`"
    )]
    KeyFormat { name: String, detail: String },

    #[error(
        "{name}: this is a public key; give the private key whose public half is registered \
         with Twilio"
    )]
    PublicKeyGiven { name: String },

    #[error(
        "{name}: the private key is encrypted; set TWILIO_MEDIA_FS_KEY_PASSPHRASE or run \
         on a terminal to be asked for the passphrase"
    )]
    PassphraseRequired { name: String },

    #[error("{name}: wrong passphrase for the encrypted private key ({detail})")]
    WrongPassphrase { name: String, detail: String },

    #[error(
        "no private key unwraps this object's content key; tried {tried}. They are not the \
         pair of the public key the media was encrypted with (check `encryption_key_sid` in \
         the Recording settings and pass the matching private key with -k), or its key \
         header is damaged"
    )]
    WrongKey { tried: String },

    #[error(
        "the content key unwrapped with {key} fails the check of the object's last block \
         ({cause}): {key} is not the pair of the public key the media was encrypted with \
         (implicit rejection makes a wrong key give a random AES key), or the object is \
         damaged"
    )]
    KeyCheck {
        key: String,
        cause: Box<CryptoError>,
    },

    #[error("no private key given: pass the account's RSA private key with -k KEY.pem")]
    NoKeys,

    #[error(
        "the unwrapped content key is {0} bytes; expected 16 (AES-128) or 32 (AES-256): \
         wrong private key or a damaged key header"
    )]
    CekLength(usize),

    #[error("{header} is not valid base64 ({detail})")]
    Base64 { header: String, detail: String },

    #[error("the IV in {header} is {len} bytes; AES-CBC needs exactly 16")]
    IvLength { header: String, len: usize },

    #[error("missing {0}: the object's envelope is incomplete")]
    MissingHeader(&'static str),

    #[error("{header} is not a byte count: {value:?}")]
    BadLength { header: String, value: String },

    #[error(
        "this object uses the S3 Encryption Client v2 format ({detail}); only the v1 \
         AES-CBC envelope that Twilio writes can be decrypted"
    )]
    UnsupportedV2 { detail: String },

    #[error(
        "the ciphertext is {0} bytes, not a multiple of 16: the object is cut short or \
         is not AES-CBC"
    )]
    CiphertextLength(u64),

    #[error("bad PKCS#7 padding in the last block: wrong content key or damaged data")]
    BadPadding,

    #[error(
        "the headers give a plaintext length of {header} bytes but the ciphertext holds \
         {actual}: damaged data or a wrong length header"
    )]
    LengthMismatch { header: u64, actual: u64 },

    #[error("window [{start}, {end}) is not block-aligned ciphertext of a {total}-byte object")]
    BadWindow { start: u64, end: u64, total: u64 },

    #[error(
        "the GCM tag does not match: the recording was changed or damaged after it was \
         encrypted, or the key/IV do not belong to it; discard any plaintext already \
         written from it"
    )]
    TagMismatch,

    #[error(
        "the IV in encryption_details is {len} bytes; AES-GCM recordings use exactly 12: \
         the Recording's encryption_details are damaged"
    )]
    GcmIvLength { len: usize },

    #[error(
        "the stored recording is {0} bytes, shorter than the 16-byte GCM tag it must end \
         with: it is cut short or is not an encrypted recording"
    )]
    GcmTooShort(u64),

    #[error(
        "the content key is {0} bytes; encrypted recordings use AES-256-GCM with a 32-byte \
         key: wrong private key or damaged encryption_details"
    )]
    GcmKeyLength(usize),

    #[error(
        "{len} bytes at plaintext offset {offset} are not a 16-byte-aligned range within \
         AES-GCM's limit of 2^32 - 2 blocks: a bug in the caller or a damaged length"
    )]
    GcmRange { offset: u64, len: u64 },
}
