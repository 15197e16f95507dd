//! The storage side: what S3 does behind the pre-signed URL that `/Media` redirects to.
//!
//! This file owns URL signing and checking, `Range` parsing, the envelope response
//! headers, streaming bodies (paced to `bandwidth`, cut short for `drop_every` and where
//! an object's stored bytes end, paused for `stall_every`) and the storage faults
//! (`fail_every`). It must not buffer whole objects (bodies stream in
//! chunks, synthetic ones are computed chunk by chunk) and must not decide what exists:
//! that is the catalog's.
//!
//! Like S3, a URL is signed for GET only (HEAD gets 403), an expired or tampered URL
//! gets 403 with an XML error, and every GET, ranged or not, carries the
//! `x-amz-meta-x-amz-*` envelope headers. The hostile modes ([`super::hostile`]) may
//! answer instead, drop the envelope or dribble the body.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::catalog::StoredObject;
use super::{Emulator, bump, nth};
use crate::http_range::{self, Wanted};

/// Body chunk size: bounds memory per response (and the work per synthetic chunk).
const CHUNK: u64 = 256 * 1024;

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Emulator {
    /// `HEX` signature of (object, expiry) under the per-process secret.
    pub(crate) fn signature(&self, id: &str, expires: u64) -> String {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(id.as_bytes());
        h.update(b"\n");
        h.update(expires.to_string().as_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A pre-signed storage URL valid for `ttl` (rounded down to whole seconds, so a URL
    /// never lives longer than promised).
    pub(crate) fn presign(&self, base: &str, id: &str, ttl: Duration) -> String {
        let expires = (now_secs() + ttl.as_secs_f64()).floor() as u64;
        let signature = self.signature(id, expires);
        format!("{base}/storage/{id}?Expires={expires}&Signature={signature}")
    }

    /// Checks a storage URL's query: `Err(message)` when it must be refused.
    pub(crate) fn check_signature(
        &self,
        id: &str,
        query: &HashMap<String, String>,
    ) -> Result<(), (&'static str, &'static str)> {
        let (Some(expires), Some(signature)) = (query.get("Expires"), query.get("Signature"))
        else {
            return Err((
                "AccessDenied",
                "Query-string authentication requires the Signature and Expires parameters",
            ));
        };
        let Ok(expires) = expires.parse::<u64>() else {
            return Err((
                "AccessDenied",
                "Invalid date (should be seconds since epoch)",
            ));
        };
        if !constant_time_eq(self.signature(id, expires).as_bytes(), signature.as_bytes()) {
            return Err((
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            ));
        }
        if now_secs() >= expires as f64 {
            return Err(("AccessDenied", "Request has expired"));
        }
        Ok(())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An S3-style XML error.
fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>EMULATOR</RequestId></Error>"
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

/// `HEAD /storage/{id}`: refused, the URL is signed for GET only.
pub async fn head_object(State(emu): State<Arc<Emulator>>) -> Response {
    bump(&emu.counters.storage_requests);
    bump(&emu.counters.access_denied);
    emu.delay().await;
    s3_error(
        StatusCode::FORBIDDEN,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
    )
}

/// `GET /storage/{id}?Expires=…&Signature=…`, with or without `Range`.
pub async fn get_object(
    State(emu): State<Arc<Emulator>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let n = bump(&emu.counters.storage_requests);
    if headers.contains_key(header::AUTHORIZATION) {
        bump(&emu.counters.storage_with_credentials);
    }
    emu.delay().await;
    if let Err((code, message)) = emu.check_signature(&id, &query) {
        bump(&emu.counters.access_denied);
        return s3_error(StatusCode::FORBIDDEN, code, message);
    }
    if let Some(hostile) = emu
        .catalog
        .get(&id)
        .and_then(|m| emu.hostile.storage_answer(m.kind))
    {
        return hostile;
    }
    if nth(emu.config.fail_every, n) {
        bump(&emu.counters.server_errors);
        return s3_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
        );
    }
    let Some(object) = emu.catalog.get(&id).and_then(|m| m.object.clone()) else {
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };
    let total = object.len;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match http_range::wanted(range, total) {
        Wanted::Whole => (StatusCode::OK, 0, total),
        Wanted::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end + 1),
        Wanted::Unsatisfiable => {
            let mut resp = s3_error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "InvalidRange",
                "The requested range is not satisfiable",
            );
            resp.headers_mut()
                .insert(header::CONTENT_RANGE, value(&format!("bytes */{total}")));
            return resp;
        }
    };
    let mut out = HeaderMap::new();
    envelope_headers(&object, emu.hostile.envelope(), &mut out);
    out.insert(header::CONTENT_LENGTH, value(&(end - start).to_string()));
    if status == StatusCode::PARTIAL_CONTENT {
        out.insert(
            header::CONTENT_RANGE,
            value(&format!("bytes {start}-{}/{total}", end - 1)),
        );
    }
    let body_number = bump(&emu.counters.storage_bodies);
    let cut_at = nth(emu.config.drop_every, body_number).then(|| {
        bump(&emu.counters.dropped_bodies);
        start + (end - start) / 2
    });
    // An object shorter than its length: the body ends where the stored bytes do.
    let cut_at = match (cut_at, object.available) {
        (Some(c), Some(a)) => Some(c.min(a.max(start))),
        (c, a) => c.or(a.filter(|&a| a < end).map(|a| a.max(start))),
    };
    let stall_at = nth(emu.config.stall_every, body_number).then(|| {
        bump(&emu.counters.stalled_bodies);
        start + (end - start) / 2
    });
    let kind = emu.catalog.get(&id).map(|m| m.kind);
    let flip_at = kind.and_then(|k| emu.hostile.tampered_at(k, total));
    let body = body_stream(emu.clone(), object, start, end, cut_at, stall_at, flip_at);
    (status, out, body).into_response()
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).expect("ASCII header value")
}

/// The headers every GET carries, ranged or not (the `x-amz-meta-*` envelope only with
/// `envelope`).
fn envelope_headers(object: &StoredObject, envelope: bool, out: &mut HeaderMap) {
    if let Some(env) = object.envelope.as_ref().filter(|_| envelope) {
        for (name, v) in env.headers() {
            // Verbatim headers from a file may hold what HTTP cannot carry: skip those.
            if let (Ok(name), Ok(v)) = (
                header::HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&v),
            ) {
                out.append(name, v);
            }
        }
    }
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(header::ETAG, value(&object.etag));
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(object.content_type),
    );
    out.insert("x-amz-request-id", HeaderValue::from_static("EMULATOR"));
}

struct BodyState {
    emu: Arc<Emulator>,
    object: Arc<StoredObject>,
    pos: u64,
    end: u64,
    cut_at: Option<u64>,
    stall_at: Option<u64>,
    chunk: u64,
    started: Instant,
    sent: u64,
    done: bool,
}

/// Streams stored bytes `[start, end)` in chunks, paced to the bandwidth cap; with
/// `cut_at`, ends with an error there, which makes hyper close the connection before
/// the promised Content-Length; with `stall_at`, sends nothing for `config.stall` there;
/// with `flip_at`, the stored byte there goes out with its lowest bit flipped.
fn body_stream(
    emu: Arc<Emulator>,
    object: Arc<StoredObject>,
    start: u64,
    end: u64,
    cut_at: Option<u64>,
    stall_at: Option<u64>,
    flip_at: Option<u64>,
) -> Body {
    // Small chunks under a bandwidth cap keep the pacing smooth (about 20 per second).
    let dribble = emu.hostile.dribble();
    let chunk = match emu.config.bandwidth {
        _ if dribble.is_some() => 1,
        Some(bw) if bw > 0 => (bw / 20).clamp(1024, CHUNK),
        _ => CHUNK,
    };
    let state = BodyState {
        emu,
        object,
        pos: start,
        end,
        cut_at,
        stall_at,
        chunk,
        started: Instant::now(),
        sent: 0,
        done: false,
    };
    let stream = futures_util::stream::unfold(state, move |mut s| async move {
        if s.done {
            return None;
        }
        let limit = s.cut_at.map_or(s.end, |c| c.min(s.end));
        if s.pos >= limit {
            s.done = true;
            if s.cut_at.is_some() {
                // Pending for a moment lets hyper flush what was sent (headers and the
                // first half) before the error tears the connection down.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let err = std::io::Error::other("emulated connection drop");
                return Some((Err(err), s));
            }
            return None;
        }
        let mut n = s.chunk.min(limit - s.pos);
        if let Some(stall) = s.stall_at {
            if s.pos >= stall {
                s.stall_at = None;
                // Pending for a moment first lets hyper flush what was sent.
                tokio::time::sleep(s.emu.config.stall).await;
            } else {
                n = n.min(stall - s.pos);
            }
        }
        if let Some(tick) = s.emu.hostile.dribble() {
            tokio::time::sleep(tick).await;
        }
        let mut bytes = s.object.read(s.pos, n as usize);
        if let Some(at) = flip_at.filter(|&at| (s.pos..s.pos + n).contains(&at)) {
            let mut changed = bytes.to_vec();
            changed[(at - s.pos) as usize] ^= 1;
            bytes = changed.into();
        }
        s.pos += n;
        s.sent += n;
        if let Some(bw) = s.emu.config.bandwidth.filter(|&bw| bw > 0) {
            let due = s.started + Duration::from_secs_f64(s.sent as f64 / bw as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        s.emu
            .counters
            .storage_bytes
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        Some((Ok::<_, std::io::Error>(bytes), s))
    });
    Body::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emulator() -> Arc<Emulator> {
        let key = crate::crypto::seal::test_key(1).to_public_key();
        Emulator::new(super::super::EmulatorConfig {
            public_keys: vec![key],
            ..Default::default()
        })
        .unwrap()
    }

    fn query(url: &str) -> HashMap<String, String> {
        let q = url.split_once('?').unwrap().1;
        q.split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    #[test]
    fn signatures_and_expiry() {
        let emu = emulator();
        let url = emu.presign("http://x", "RTabc", Duration::from_secs(60));
        let q = query(&url);
        assert_eq!(emu.check_signature("RTabc", &q), Ok(()));
        // Another object, a changed expiry, a changed signature: refused.
        assert!(emu.check_signature("RTabd", &q).is_err());
        let mut later = q.clone();
        let exp: u64 = later["Expires"].parse().unwrap();
        later.insert("Expires".into(), (exp + 1000).to_string());
        assert_eq!(
            emu.check_signature("RTabc", &later).unwrap_err().0,
            "SignatureDoesNotMatch"
        );
        let mut bad = q.clone();
        bad.insert("Signature".into(), "00".repeat(32));
        assert!(emu.check_signature("RTabc", &bad).is_err());
        // Expired but correctly signed.
        let past = 1_000_000u64;
        let mut old = HashMap::new();
        old.insert("Expires".to_string(), past.to_string());
        old.insert("Signature".to_string(), emu.signature("RTabc", past));
        assert_eq!(
            emu.check_signature("RTabc", &old),
            Err(("AccessDenied", "Request has expired"))
        );
        assert!(emu.check_signature("RTabc", &HashMap::new()).is_err());
    }
}
