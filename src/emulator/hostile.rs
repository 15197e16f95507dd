//! Hostile modes (issue 16): the emulator as the broken or malicious server a client
//! must survive, asked for by name (`emulator --hostile MODE[,MODE…]`,
//! [`super::EmulatorConfig::hostile`]).
//!
//! This file decides what a hostile answer is: which requests a mode touches and what
//! they get instead (an endless body, a delay, a changed SID or size, a message full of
//! escapes, another storage host). The routers call it through small hooks and do the
//! rest as usual; with no mode asked for, every hook is a no-op, so the emulator
//! answers exactly as without this file. It must not know how objects are stored or
//! signed (that is `storage` and `catalog`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::Value;

use crate::twilio::MediaKind;

/// One hostile mode. Modes combine; each touches only the requests its doc names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Hostile {
    /// Recordings listing pages (`/v1/Recordings` with a `PageSize` other than 1) answer
    /// 200 with a body that never ends; one-item pages (the mount's start-up probe) and
    /// compositions are answered as usual. Issue 16: endless bodies on the API.
    EndlessApiBody,
    /// Every storage GET answers 403 with a body that never ends. Issue 16: endless
    /// bodies on storage.
    EndlessStorageError,
    /// Every recordings or compositions listing page after the first waits 2 s
    /// before answering (add `--extra-recordings 500` for a listing
    /// of many pages). Issue 16: slow pages.
    SlowPages,
    /// Every storage body comes one byte per 100 ms. Issue 16: dribbling bodies.
    Dribble,
    /// Every listing of recordings or compositions lists other SIDs (characters 3 to 10
    /// of each SID are the listing's number): fresh objects each time, each still
    /// readable by its listed SID. Issue 16: SIDs that change per listing.
    NewSids,
    /// Every listed or fetched recording and composition says its `size` is 2^63 or
    /// u64::MAX (alternately, in catalog order). Issue 16: huge sizes.
    HugeSizes,
    /// Storage omits the `x-amz-meta-*` envelope headers: the ciphertext comes bare.
    /// Issue 16: missing envelopes.
    NoEnvelope,
    /// Terminal escapes (`ESC ]0;…BEL`, `ESC [2J`, a forged line after CR LF) in: the
    /// error message of every recording's resource and `/Media` (400), the error of the
    /// compositions listing (400), S3's `<Code>` and `<Message>` of every composition's
    /// storage GET (400), and the settings' `encryption_key_sid`. Issue 16: control
    /// characters in messages.
    Escapes,
    /// `/Media` redirects to another host: storage listens on 127.0.0.2 (all of
    /// 127.0.0.0/8 is loopback on Linux) instead of the API's address, and `redirect_to`
    /// names it. `/emulator/stats` counts storage requests that carried credentials.
    /// Issue 16: redirects to other hosts.
    OtherHostRedirect,
    /// Every call recording's storage body has one bit flipped at the middle byte of
    /// the object (its AES-256-GCM tag then fails); Video objects are served as they
    /// are. Issue 17: a changed call recording.
    Tampered,
}

/// How long [`Hostile::SlowPages`] holds each page after the first.
pub const SLOW_PAGE: Duration = Duration::from_secs(2);

/// The pace of [`Hostile::Dribble`]: one byte per tick.
pub const DRIBBLE_TICK: Duration = Duration::from_millis(100);

/// The storage address of [`Hostile::OtherHostRedirect`].
pub const OTHER_HOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Text that would retitle a terminal, clear it and forge a line of output
/// ([`Hostile::Escapes`]).
pub const ESCAPES: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\r\nforged: all is well";

/// The query parameter that carries a listing's number from page to page
/// ([`Hostile::NewSids`]).
pub const GENERATION: &str = "Generation";

/// The modes asked for, with the hooks the routers call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Modes(Vec<Hostile>);

impl Modes {
    pub fn new(modes: &[Hostile]) -> Self {
        Self(modes.to_vec())
    }

    pub fn has(&self, mode: Hostile) -> bool {
        self.0.contains(&mode)
    }

    /// A listing page answered instead of the real one.
    pub fn list_page(&self, kind: MediaKind, q: &HashMap<String, String>) -> Option<Response> {
        let probe = q.get("PageSize").is_some_and(|s| s == "1");
        if self.has(Hostile::EndlessApiBody) && kind == MediaKind::Recording && !probe {
            return Some(endless(StatusCode::OK));
        }
        if self.has(Hostile::Escapes) && kind == MediaKind::Composition {
            return Some(api_error());
        }
        None
    }

    /// Waits before a listing page that is not the first.
    pub async fn page_delay(&self, q: &HashMap<String, String>) {
        let later = q.contains_key("PageToken") || q.get("Page").is_some_and(|p| p != "0");
        if self.has(Hostile::SlowPages) && later {
            tokio::time::sleep(SLOW_PAGE).await;
        }
    }

    /// The listing number of this page: the one its URL carries, or a new one from
    /// `next` for a first page. `None` unless [`Hostile::NewSids`].
    pub fn generation(
        &self,
        q: &HashMap<String, String>,
        next: impl FnOnce() -> u64,
    ) -> Option<u64> {
        if !self.has(Hostile::NewSids) {
            return None;
        }
        let carried = q.get(GENERATION).and_then(|g| g.parse().ok());
        Some(carried.unwrap_or_else(next))
    }

    /// Changes one resource's JSON (listed or fetched): its SID for listing
    /// `generation`, its size. `index` is its place in the catalog.
    pub fn resource(&self, json: &mut Value, index: usize, generation: Option<u64>) {
        if let (Some(g), Some(sid)) = (generation, json["sid"].as_str()) {
            json["sid"] = Value::String(fresh_sid(sid, g));
        }
        if self.has(Hostile::HugeSizes) && json.get("size").is_some() {
            let huge = if index.is_multiple_of(2) {
                1u64 << 63
            } else {
                u64::MAX
            };
            json["size"] = Value::from(huge);
        }
    }

    /// Whether `listed` (a SID a listing gave) names the catalog's `sid`.
    pub fn same_object(&self, listed: &str, sid: &str) -> bool {
        self.has(Hostile::NewSids)
            && listed.len() == sid.len()
            && listed.len() > 10
            && listed.is_char_boundary(10)
            && sid.is_char_boundary(10)
            && listed[..2] == sid[..2]
            && listed[10..] == sid[10..]
    }

    /// The answer to a resource or its `/Media`, instead of the real one.
    pub fn resource_error(&self, kind: MediaKind) -> Option<Response> {
        (self.has(Hostile::Escapes) && kind == MediaKind::Recording).then(api_error)
    }

    /// Changes the settings' JSON.
    pub fn settings(&self, json: &mut Value) {
        if self.has(Hostile::Escapes) {
            json["encryption_key_sid"] = Value::String(format!("CR{ESCAPES}"));
        }
    }

    /// The address storage listens on, given the API's.
    pub fn storage_ip(&self, api: IpAddr) -> IpAddr {
        if self.has(Hostile::OtherHostRedirect) {
            IpAddr::V4(OTHER_HOST)
        } else {
            api
        }
    }

    /// The host `/Media` names for storage, given the one the client used for the API.
    pub fn storage_host(&self, host: String) -> String {
        if self.has(Hostile::OtherHostRedirect) {
            OTHER_HOST.to_string()
        } else {
            host
        }
    }

    /// A storage GET answered instead of the object (after its signature is checked).
    pub fn storage_answer(&self, kind: MediaKind) -> Option<Response> {
        if self.has(Hostile::EndlessStorageError) {
            return Some(endless(StatusCode::FORBIDDEN));
        }
        if self.has(Hostile::Escapes) && kind == MediaKind::Composition {
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{ESCAPES}</Code>\
                 <Message>{ESCAPES}</Message><RequestId>EMULATOR</RequestId></Error>"
            );
            return Some((StatusCode::BAD_REQUEST, body).into_response());
        }
        None
    }

    /// Whether storage sends its `x-amz-meta-*` headers.
    pub fn envelope(&self) -> bool {
        !self.has(Hostile::NoEnvelope)
    }

    /// The stored byte flipped in `kind`'s object of `len` bytes, if any
    /// ([`Hostile::Tampered`]).
    pub fn tampered_at(&self, kind: MediaKind, len: u64) -> Option<u64> {
        (self.has(Hostile::Tampered) && kind == MediaKind::Voice && len > 0).then_some(len / 2)
    }

    /// The pace of storage bodies: `Some(tick)` for one byte per tick.
    pub fn dribble(&self) -> Option<Duration> {
        self.has(Hostile::Dribble).then_some(DRIBBLE_TICK)
    }
}

/// `sid` as listing `generation` lists it: characters 3 to 10 are the generation.
pub fn fresh_sid(sid: &str, generation: u64) -> String {
    if sid.len() <= 10 || !sid.is_char_boundary(2) || !sid.is_char_boundary(10) {
        return sid.to_owned();
    }
    format!(
        "{}{:08x}{}",
        &sid[..2],
        generation & 0xffff_ffff,
        &sid[10..]
    )
}

/// Twilio's JSON error (400, code 20001) with [`ESCAPES`] as its message.
fn api_error() -> Response {
    super::api::twilio_error(StatusCode::BAD_REQUEST, 20001, ESCAPES)
}

/// A body of `status` that never ends: 64 KiB chunks of spaces, as fast as they go.
fn endless(status: StatusCode) -> Response {
    static CHUNK: [u8; 64 << 10] = [b' '; 64 << 10];
    let chunks = futures_util::stream::repeat(Bytes::from_static(&CHUNK))
        .map(Ok::<_, std::convert::Infallible>);
    (status, Body::from_stream(chunks)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn names_are_kebab_case() {
        let names: Vec<String> = Hostile::value_variants()
            .iter()
            .map(|m| m.to_possible_value().unwrap().get_name().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "endless-api-body",
                "endless-storage-error",
                "slow-pages",
                "dribble",
                "new-sids",
                "huge-sizes",
                "no-envelope",
                "escapes",
                "other-host-redirect",
                "tampered",
            ]
        );
        assert_eq!(Hostile::from_str("dribble", false), Ok(Hostile::Dribble));
        assert!(Hostile::from_str("nope", false).is_err());
    }

    #[test]
    fn no_mode_changes_nothing() {
        let none = Modes::default();
        let q = HashMap::from([("Page".to_owned(), "3".to_owned())]);
        assert!(none.list_page(MediaKind::Recording, &q).is_none());
        assert!(none.list_page(MediaKind::Composition, &q).is_none());
        assert_eq!(none.generation(&q, || 7), None);
        let mut json = serde_json::json!({"sid": "RT0123456789abcdef", "size": 5});
        let before = json.clone();
        none.resource(&mut json, 0, None);
        none.settings(&mut json);
        assert_eq!(json, before);
        assert!(none.resource_error(MediaKind::Recording).is_none());
        assert!(none.storage_answer(MediaKind::Composition).is_none());
        assert!(none.envelope());
        assert_eq!(none.dribble(), None);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(none.storage_ip(ip), ip);
        assert_eq!(none.storage_host("h".into()), "h");
        assert!(!none.same_object("RT0000000089abcdef", "RT0123456789abcdef"));
    }

    #[test]
    fn new_sids_are_fresh_per_listing_and_map_back() {
        let modes = Modes::new(&[Hostile::NewSids]);
        let sid = "RT0123456789abcdef0123456789abcdef";
        let (a, b) = (fresh_sid(sid, 1), fresh_sid(sid, 2));
        assert_ne!(a, b);
        assert_eq!(a.len(), sid.len());
        assert_eq!(&a[..10], "RT00000001");
        assert!(modes.same_object(&a, sid) && modes.same_object(&b, sid));
        assert!(!modes.same_object(&a, "RT0123456789abcdef0123456789abcdee"));
        let first = HashMap::new();
        assert_eq!(modes.generation(&first, || 9), Some(9));
        let later = HashMap::from([(GENERATION.to_owned(), "4".to_owned())]);
        assert_eq!(modes.generation(&later, || 9), Some(4));
    }

    #[test]
    fn huge_sizes_alternate() {
        let modes = Modes::new(&[Hostile::HugeSizes]);
        let mut even = serde_json::json!({"sid": "RTx", "size": 5});
        let mut odd = even.clone();
        modes.resource(&mut even, 0, None);
        modes.resource(&mut odd, 1, None);
        assert_eq!(even["size"], Value::from(1u64 << 63));
        assert_eq!(odd["size"], Value::from(u64::MAX));
        assert_eq!(even["sid"], "RTx");
    }
}
