//! The envelope: what the object's response headers say about how it was encrypted.
//!
//! S3 Encryption Client v1 metadata, as Twilio writes it (header names in any case, with
//! or without the `x-amz-meta-` prefix that S3 adds to user metadata):
//! `x-amz-key` (base64 RSA-wrapped content key), `x-amz-iv` (base64, 16 bytes),
//! `x-amz-unencrypted-content-length` (optional), `x-amz-matdesc` (JSON, sometimes
//! JSON inside a JSON string). v2 metadata (`x-amz-key-v2`, `x-amz-cek-alg`, …) is
//! recognised and refused: it is not AES-CBC, and decrypting it as such gives garbage.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::CryptoError;

const KEY: &str = "x-amz-key";
const IV: &str = "x-amz-iv";
const LENGTH: &str = "x-amz-unencrypted-content-length";
const MATDESC: &str = "x-amz-matdesc";
const V2_MARKERS: [&str; 4] = [
    "x-amz-key-v2",
    "x-amz-cek-alg",
    "x-amz-wrap-alg",
    "x-amz-tag-len",
];

/// How one object was encrypted: enough, with a private key, to decrypt it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The content key, encrypted with the account's RSA public key (PKCS#1 v1.5).
    pub wrapped_key: Vec<u8>,
    /// The IV of the first block.
    pub iv: [u8; 16],
    /// The plaintext length, when the headers say it.
    pub plaintext_len: Option<u64>,
    /// The material description, parsed (`{}` when absent or unreadable).
    pub matdesc: serde_json::Value,
}

impl Envelope {
    /// Reads the envelope from response headers. `Ok(None)` means the object carries no
    /// encryption metadata at all: it is stored as is.
    pub fn from_headers<'a, I>(headers: I) -> Result<Option<Self>, CryptoError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut key = None;
        let mut iv = None;
        let mut length = None;
        let mut matdesc = None;
        let mut v2 = Vec::new();
        for (name, value) in headers {
            let lower = name.trim().to_ascii_lowercase();
            let bare = lower.strip_prefix("x-amz-meta-").unwrap_or(&lower);
            let value = value.trim();
            match bare {
                KEY => key = Some(value),
                IV => iv = Some(value),
                LENGTH => length = Some(value),
                MATDESC => matdesc = Some(value),
                // The wrapped key is long and says nothing: its name is enough.
                "x-amz-key-v2" => v2.push("x-amz-key-v2".to_owned()),
                b if V2_MARKERS.contains(&b) => {
                    let shown: String = value.chars().take(40).collect();
                    v2.push(format!("{b}: {shown}"));
                }
                _ => {}
            }
        }
        if !v2.is_empty() {
            return Err(CryptoError::UnsupportedV2 {
                detail: v2.join(", "),
            });
        }
        if key.is_none() && iv.is_none() {
            return Ok(None);
        }
        let key = key.ok_or(CryptoError::MissingHeader(
            "the x-amz-meta-x-amz-key header",
        ))?;
        let iv = iv.ok_or(CryptoError::MissingHeader("the x-amz-meta-x-amz-iv header"))?;
        let mut env = Self::from_parts(key, iv, None)?;
        env.plaintext_len = length.map(|v| parse_length(LENGTH, v)).transpose()?;
        env.matdesc = parse_matdesc(matdesc.unwrap_or("{}"));
        Ok(Some(env))
    }

    /// Builds an envelope from the two header values given by hand (`--key-header`,
    /// `--iv`) and an optional length.
    pub fn from_parts(
        key_b64: &str,
        iv_b64: &str,
        plaintext_len: Option<u64>,
    ) -> Result<Self, CryptoError> {
        let wrapped_key = decode_b64("the key header (x-amz-key)", key_b64)?;
        if wrapped_key.is_empty() {
            return Err(CryptoError::MissingHeader(
                "the x-amz-meta-x-amz-key header (it is empty)",
            ));
        }
        let iv_bytes = decode_b64("the IV header (x-amz-iv)", iv_b64)?;
        let iv = <[u8; 16]>::try_from(iv_bytes.as_slice()).map_err(|_| CryptoError::IvLength {
            header: "x-amz-iv".into(),
            len: iv_bytes.len(),
        })?;
        Ok(Self {
            wrapped_key,
            iv,
            plaintext_len,
            matdesc: serde_json::json!({}),
        })
    }
}

pub(super) fn decode_b64(header: &str, value: &str) -> Result<Vec<u8>, CryptoError> {
    // Tolerate the line breaks and spaces that copying a header by hand can add.
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(compact).map_err(|e| CryptoError::Base64 {
        header: header.into(),
        detail: e.to_string(),
    })
}

fn parse_length(header: &str, value: &str) -> Result<u64, CryptoError> {
    value.parse().map_err(|_| CryptoError::BadLength {
        header: header.into(),
        value: value.into(),
    })
}

/// Parses the material description, unwrapping one level of JSON-in-a-string.
fn parse_matdesc(raw: &str) -> serde_json::Value {
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::String(inner)) => {
            serde_json::from_str(&inner).unwrap_or(serde_json::Value::String(inner))
        }
        Ok(v) => v,
        Err(_) => serde_json::Value::String(raw.to_owned()),
    }
}

/// Parses response headers as `curl -D FILE` or `wget -S` saved them. With redirects
/// there are several responses: the last one (the object's) is returned.
pub fn parse_saved_headers(text: &str) -> Vec<(String, String)> {
    let mut blocks: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("HTTP/") {
            blocks.push(Vec::new());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let is_token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if is_token {
            let block = blocks.last_mut().expect("never empty");
            block.push((name.to_owned(), value.trim().to_owned()));
        }
    }
    blocks
        .into_iter()
        .rev()
        .find(|b| !b.is_empty())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Result<Option<Envelope>, CryptoError> {
        Envelope::from_headers(pairs.iter().copied())
    }

    const K: &str = "AAECAwQFBgcICQoLDA0ODw==";
    const IV16: &str = "AAECAwQFBgcICQoLDA0ODw==";

    #[test]
    fn any_case_and_prefix() {
        let e = headers(&[
            ("X-Amz-Meta-X-Amz-Key", K),
            ("x-amz-meta-x-amz-iv", IV16),
            ("X-AMZ-META-X-AMZ-UNENCRYPTED-CONTENT-LENGTH", "1234"),
            ("x-amz-meta-x-amz-matdesc", "{}"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            e.iv,
            *b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
        );
        assert_eq!(e.plaintext_len, Some(1234));
        let e = headers(&[("x-amz-key", K), ("x-amz-iv", IV16)])
            .unwrap()
            .unwrap();
        assert_eq!(e.plaintext_len, None);
    }

    #[test]
    fn no_metadata_means_unencrypted() {
        assert_eq!(headers(&[("content-type", "video/mp4")]).unwrap(), None);
    }

    #[test]
    fn double_encoded_matdesc() {
        let e = headers(&[
            ("x-amz-key", K),
            ("x-amz-iv", IV16),
            ("x-amz-matdesc", r#""{\"a\":\"b\"}""#),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(e.matdesc, serde_json::json!({"a": "b"}));
        let e = headers(&[
            ("x-amz-key", K),
            ("x-amz-iv", IV16),
            ("x-amz-matdesc", "not json"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(e.matdesc, serde_json::json!("not json"));
    }

    #[test]
    fn errors_are_distinct() {
        assert!(matches!(
            headers(&[("x-amz-key", "!!!"), ("x-amz-iv", IV16)]),
            Err(CryptoError::Base64 { .. })
        ));
        assert!(matches!(
            headers(&[("x-amz-key", K), ("x-amz-iv", "AAEC")]),
            Err(CryptoError::IvLength { len: 3, .. })
        ));
        assert!(matches!(
            headers(&[("x-amz-iv", IV16)]),
            Err(CryptoError::MissingHeader(_))
        ));
        assert!(matches!(
            headers(&[("x-amz-key", K)]),
            Err(CryptoError::MissingHeader(_))
        ));
        assert!(matches!(
            headers(&[
                ("x-amz-key", K),
                ("x-amz-iv", IV16),
                ("x-amz-unencrypted-content-length", "-1")
            ]),
            Err(CryptoError::BadLength { .. })
        ));
        let v2 = headers(&[
            ("x-amz-meta-x-amz-key-v2", K),
            ("x-amz-meta-x-amz-iv", IV16),
            ("x-amz-meta-x-amz-cek-alg", "AES/GCM/NoPadding"),
        ]);
        match v2 {
            Err(CryptoError::UnsupportedV2 { detail }) => {
                assert!(detail.contains("AES/GCM"), "{detail}");
                // The header names it, without its (long, useless) value.
                assert!(
                    detail.contains("x-amz-key-v2") && !detail.contains(K),
                    "{detail}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn curl_dump_with_redirect_takes_the_last_response() {
        let text = "HTTP/1.1 302 Found\r\nLocation: https://s3/x\r\nx-amz-meta-x-amz-key: WRONG\r\n\r\n\
                    HTTP/1.1 200 OK\r\nContent-Length: 32\r\nx-amz-meta-x-amz-key: right\r\n\r\n";
        let h = parse_saved_headers(text);
        assert!(h.contains(&("x-amz-meta-x-amz-key".into(), "right".into())));
        assert!(!h.iter().any(|(_, v)| v == "WRONG"));
    }

    #[test]
    fn wget_dump() {
        let text = "--2024-01-01--  https://example/x\nResolving example... 1.2.3.4\n\
                    HTTP request sent, awaiting response... \n  HTTP/1.1 200 OK\n  x-amz-meta-x-amz-iv: abc\n\
                    Length: 32\nSaving to: 'x'\n";
        let h = parse_saved_headers(text);
        assert!(h.contains(&("x-amz-meta-x-amz-iv".into(), "abc".into())));
    }
}
