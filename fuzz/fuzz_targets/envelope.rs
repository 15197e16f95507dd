//! Envelope parsing: response headers as `curl -D`/`wget -S` saved them
//! ([`parse_saved_headers`]), header pairs ([`Envelope::from_headers`]), the two values
//! given by hand ([`Envelope::from_parts`]), and the content-key unwrap of whatever
//! wrapped key they carry.
//!
//! Properties checked, for every input:
//! - nothing panics, whatever the bytes (not UTF-8, NUL, huge base64, odd line ends);
//! - saved headers parse to trimmed token names and trimmed values;
//! - an envelope that parses is complete (non-empty key, 16-byte IV) and survives a
//!   round trip: written back as canonical headers, it parses to the same envelope;
//! - `Ok(None)` (stored unencrypted) only when neither the key nor the IV header is there;
//! - unwrapping its key with a private key it was not made for is an error, never a
//!   content key that passes the check (here: none can).
#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use twilio_media_fs::crypto::{CryptoError, Envelope, PrivateKeys, parse_saved_headers, seal};

fn keys() -> &'static PrivateKeys {
    static KEYS: OnceLock<PrivateKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut k = PrivateKeys::new();
        k.add("fuzz.pem", seal::generate_key(1024));
        k
    })
}

fn is_key_or_iv(name: &str) -> bool {
    let lower = name.trim().to_ascii_lowercase();
    let bare = lower.strip_prefix("x-amz-meta-").unwrap_or(&lower);
    bare == "x-amz-key" || bare == "x-amz-iv"
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let pairs = parse_saved_headers(&text);
    for (name, value) in &pairs {
        assert!(!name.is_empty());
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{name:?}"
        );
        assert_eq!(value.trim(), value);
    }
    let parsed = Envelope::from_headers(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    match &parsed {
        Ok(None) => assert!(!pairs.iter().any(|(n, _)| is_key_or_iv(n))),
        Ok(Some(env)) => {
            assert!(!env.wrapped_key.is_empty());
            let key = STANDARD.encode(&env.wrapped_key);
            let iv = STANDARD.encode(env.iv);
            let len = env.plaintext_len.map(|n| n.to_string());
            let mut canonical = vec![
                ("x-amz-meta-x-amz-key", key.as_str()),
                ("x-amz-meta-x-amz-iv", iv.as_str()),
            ];
            if let Some(len) = &len {
                canonical.push(("x-amz-meta-x-amz-unencrypted-content-length", len));
            }
            let again = Envelope::from_headers(canonical).expect("canonical headers parse");
            let again = again.expect("encrypted");
            assert_eq!(again.wrapped_key, env.wrapped_key);
            assert_eq!(again.iv, env.iv);
            assert_eq!(again.plaintext_len, env.plaintext_len);
            let parts = Envelope::from_parts(&key, &iv, env.plaintext_len).expect("from_parts");
            assert_eq!(parts.wrapped_key, env.wrapped_key);

            // Nothing here was wrapped for this key: the check always refuses, so the
            // unwrap must end in an error (and must not panic on any length).
            let unwrapped = keys().unwrap_cek(&env.wrapped_key, |_| Err(CryptoError::BadPadding));
            assert!(unwrapped.is_err());
        }
        Err(e) => {
            // Every refusal has a message.
            assert!(!e.to_string().is_empty());
        }
    }
    // The two values by hand: the input split at its first newline.
    let (a, b) = text.split_once('\n').unwrap_or((&text, ""));
    if let Ok(env) = Envelope::from_parts(a, b, None) {
        assert!(!env.wrapped_key.is_empty());
    }
});
