//! [`MemoryStorage`]: stored objects held in memory, behind [`ObjectSource`], for tests
//! of the read core and of every front-end above it.
//!
//! An object is stored with its response headers, the way Twilio's storage keeps it:
//! [`MemoryStorage::put_sealed`] encrypts a plaintext exactly as Twilio does (AES-CBC
//! under a fresh content key wrapped for an RSA public key, with the envelope headers),
//! [`MemoryStorage::put`] stores any bytes and headers (unencrypted objects, damaged
//! ones, v2 envelopes). Ranges are served exactly, like a storage that honours `Range`.
//! A missing object answers a 404 like S3's `NoSuchKey`. Every GET is counted (suffix
//! GETs too), with the bytes it returned. No network, no clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use bytes::Bytes;
use futures_util::future::BoxFuture;

use super::{Fetched, ObjectError, ObjectSource};
use crate::crypto::seal;
use crate::twilio::MediaRef;

/// One stored object.
#[derive(Debug, Clone)]
pub struct StoredObject {
    /// The bytes as stored (ciphertext when encrypted).
    pub data: Bytes,
    /// Response headers, names in lower case (the envelope is among them).
    pub headers: Vec<(String, String)>,
}

/// Objects in memory, by SID.
#[derive(Default)]
pub struct MemoryStorage {
    objects: Mutex<HashMap<String, StoredObject>>,
    gets: AtomicU64,
    bytes: AtomicU64,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `data` with these headers under `sid`, replacing what was there.
    pub fn put(&self, sid: &str, data: impl Into<Bytes>, headers: Vec<(String, String)>) {
        let object = StoredObject {
            data: data.into(),
            headers,
        };
        let mut objects = self.objects.lock().expect("memory storage lock");
        objects.insert(sid.to_owned(), object);
    }

    /// Encrypts `plain` as Twilio stores it, for the holder of `private`'s public half:
    /// a fresh AES-256 content key wrapped with RSA PKCS#1 v1.5, a random IV, and the
    /// `x-amz-meta-*` envelope headers (`unencrypted-content-length` only when
    /// `length_header`, since it is optional). Returns the stored length.
    pub fn put_sealed(
        &self,
        sid: &str,
        plain: &[u8],
        private: &rsa::PrivateKey,
        length_header: bool,
    ) -> u64 {
        let b64 = base64::engine::general_purpose::STANDARD;
        let cek = seal::random_cek(true);
        let iv: [u8; 16] = rand::random();
        let mut headers = vec![
            (
                "x-amz-meta-x-amz-key".into(),
                b64.encode(seal::wrap_cek(&private.to_public_key(), &cek)),
            ),
            ("x-amz-meta-x-amz-iv".into(), b64.encode(iv)),
            ("x-amz-meta-x-amz-matdesc".into(), "{}".into()),
        ];
        if length_header {
            headers.push((
                "x-amz-meta-x-amz-unencrypted-content-length".into(),
                plain.len().to_string(),
            ));
        }
        let data = seal::encrypt(&cek, &iv, plain);
        let len = data.len() as u64;
        self.put(sid, data, headers);
        len
    }

    /// Removes `sid` (its GETs then answer 404).
    pub fn remove(&self, sid: &str) {
        self.objects
            .lock()
            .expect("memory storage lock")
            .remove(sid);
    }

    /// What is stored under `sid`.
    pub fn object(&self, sid: &str) -> Option<StoredObject> {
        let objects = self.objects.lock().expect("memory storage lock");
        objects.get(sid).cloned()
    }

    /// Ranged GETs answered so far (errors included).
    pub fn gets(&self) -> u64 {
        self.gets.load(Ordering::SeqCst)
    }

    /// Bytes returned by those GETs.
    pub fn bytes_served(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }
}

impl ObjectSource for MemoryStorage {
    fn get_range(
        &self,
        media: &MediaRef,
        start: u64,
        end: u64,
    ) -> BoxFuture<'_, Result<Fetched, ObjectError>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let answer = match self.object(&media.sid) {
            None => Err(ObjectError::Status {
                sid: media.sid.clone(),
                status: 404,
                code: Some("NoSuchKey".into()),
                message: Some("The specified key does not exist.".into()),
                url: format!("memory://objects/{}", media.sid),
            }),
            Some(o) => {
                let total = o.data.len() as u64;
                if start > total {
                    Err(ObjectError::OutOfRange {
                        sid: media.sid.clone(),
                        start,
                        total: Some(total),
                    })
                } else {
                    let (s, e) = (start as usize, end.clamp(start, total) as usize);
                    self.bytes.fetch_add((e - s) as u64, Ordering::SeqCst);
                    Ok(Fetched {
                        data: o.data.slice(s..e),
                        total_len: total,
                        headers: o.headers,
                    })
                }
            }
        };
        Box::pin(async move { answer })
    }

    fn get_suffix(&self, media: &MediaRef, len: u64) -> BoxFuture<'_, Option<Fetched>> {
        let answer = self.object(&media.sid).and_then(|o| {
            let total = o.data.len() as u64;
            (total > 0 && len > 0).then(|| {
                let start = total.saturating_sub(len) as usize;
                Fetched {
                    data: o.data.slice(start..),
                    total_len: total,
                    headers: o.headers,
                }
            })
        });
        self.gets.fetch_add(1, Ordering::SeqCst);
        if let Some(f) = &answer {
            self.bytes.fetch_add(f.data.len() as u64, Ordering::SeqCst);
        }
        Box::pin(async move { answer })
    }
}
