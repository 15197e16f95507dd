//! The Twilio REST side: `/v1/...` handlers, Basic auth, throttling, paging, errors.
//!
//! This file owns the HTTP shape of the API as Twilio's OpenAPI specs describe it
//! (`twilio_video_v1.json`, and `twilio_accounts_v1.json` for the public keys): list
//! bodies with `meta` and absolute `next_page_url`, filters, 404/401/403/429 errors as
//! Twilio's JSON, and `/Media` answering 302 with `{"redirect_to": …}`. It must not
//! touch object bytes (that is `storage`) nor decide what exists (that is `catalog`).
//!
//! Recordings and compositions are served by one handler per operation (listing, one
//! resource, `/Media`, settings), routed once per [`MediaKind`] by [`media_routes`]:
//! paths, listing keys and the filters each kind takes come from the kind. A room's
//! recordings (`/v1/Rooms/{RM}/Recordings`) keep handlers of their own. With a
//! restricted key (`restricted_key`), the settings and the public keys answer 403.
//! The hostile modes ([`super::hostile`]) may answer a listing, a resource or `/Media`
//! instead, delay a page, or change what a resource or the settings say.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::catalog::{Catalog, Media};
use super::hostile;
use super::{Emulator, bump, nth};
use crate::twilio::MediaKind;

type Params = Query<HashMap<String, String>>;

/// Twilio's JSON error body.
pub fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, Json(body)).into_response()
}

pub(crate) fn not_found_error(what: &str) -> Response {
    twilio_error(
        StatusCode::NOT_FOUND,
        20404,
        &format!("The requested resource {what} was not found"),
    )
}

/// A restricted API key's answer to what it may not read ([`super::EmulatorConfig::restricted_key`]):
/// 403 with Twilio's code 20403. `None` when the key is not restricted.
fn forbidden(emu: &Emulator) -> Option<Response> {
    if !emu.config.restricted_key {
        return None;
    }
    bump(&emu.counters.forbidden);
    Some(twilio_error(StatusCode::FORBIDDEN, 20403, "Forbidden"))
}

/// Unknown `/v1` paths.
pub async fn not_found(req: Request) -> Response {
    not_found_error(req.uri().path())
}

/// Every `/v1` request: counted, delayed, authenticated, then maybe throttled.
pub async fn guard(State(emu): State<Arc<Emulator>>, req: Request, next: Next) -> Response {
    let n = bump(&emu.counters.api_requests);
    emu.delay().await;
    if !authorized(&emu, req.headers()) {
        bump(&emu.counters.unauthorized);
        let mut resp = twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"Twilio API\""),
        );
        return resp;
    }
    if nth(emu.config.throttle_every, n) {
        bump(&emu.counters.throttled);
        let mut resp = twilio_error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return resp;
    }
    next.run(req).await
}

fn authorized(emu: &Emulator, headers: &HeaderMap) -> bool {
    let Some(encoded) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(pair) = String::from_utf8(decoded) else {
        return false;
    };
    let Some((user, pass)) = pair.split_once(':') else {
        return false;
    };
    let c = &emu.config.credentials;
    (user == c.account_sid && pass == c.auth_token) || (user == c.api_key && pass == c.api_secret)
}

/// `http://HOST` from the request, for absolute URLs.
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// `http://HOST:STORAGE_PORT`: the storage listener, on the host the client used for
/// the API (so that an emulator listening on all addresses hands out URLs that work).
pub(crate) fn storage_base(emu: &Emulator, headers: &HeaderMap) -> String {
    if let Some(url) = &emu.config.storage_url {
        return url.clone();
    }
    let Some(port) = emu.storage_port.get() else {
        return base_url(headers); // no storage listener: the API's router serves storage
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
        .map(|a| a.host().to_owned())
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    let host = emu.hostile.storage_host(host);
    if host.contains(':') && !host.starts_with('[') {
        format!("http://[{host}]:{port}")
    } else {
        format!("http://{host}:{port}")
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
pub(crate) fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One page of a list, Twilio style: `{key: [...], meta: {...}}`.
///
/// Pages are `Page` (0-based) of `PageSize`; `PageToken` (`PT` + offset), when given,
/// says where the page starts, as Twilio's tokens do.
fn page(
    base: &str,
    path: &str,
    key: &str,
    items: Vec<Value>,
    filters: &[(&str, &String)],
    q: &HashMap<String, String>,
) -> Response {
    page_with(base, path, key, items, |v| v, filters, q)
}

/// [`page`] of `items` that `to_json` turns into JSON, for the page's items only.
fn page_with<T>(
    base: &str,
    path: &str,
    key: &str,
    items: Vec<T>,
    to_json: impl Fn(T) -> Value,
    filters: &[(&str, &String)],
    q: &HashMap<String, String>,
) -> Response {
    let mut query = String::new();
    for (name, value) in filters {
        query.push_str(&format!("{name}={}&", encode(value)));
    }
    let paging = match Paging::new(q, 50, 100, format!("{base}{path}?{query}")) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    let total = items.len();
    let slice = paging.slice(items, to_json);
    let mut body = json!({
        "meta": {
            "page": paging.number,
            "page_size": paging.size,
            "first_page_url": paging.url(0, None),
            "previous_page_url": paging.previous(),
            "url": paging.this(),
            "next_page_url": paging.next(total),
            "key": key,
        },
    });
    body[key] = Value::Array(slice);
    Json(body).into_response()
}

/// One page of a listing, as both of Twilio's APIs page it: `PageSize` items (1 to
/// `max`; `default` when absent), page `Page` (0-based), starting where `PageToken`
/// (`PT` + offset) says, else at `Page × PageSize`. Its URLs are `prefix` (the list's
/// URL and its filters, ending in `?` or `&`) and the paging parameters.
pub(super) struct Paging {
    pub size: usize,
    pub number: usize,
    pub offset: usize,
    /// The request gave a `PageToken`: this page's own URL repeats it.
    token: bool,
    prefix: String,
}

impl Paging {
    /// The page `q` asks for; a `PageSize` out of range is refused as Twilio does (20001).
    pub fn new(
        q: &HashMap<String, String>,
        default: usize,
        max: usize,
        prefix: String,
    ) -> Result<Self, Box<Response>> {
        let size = match q.get("PageSize").map(|s| s.parse::<usize>()) {
            None => default,
            Some(Ok(n)) if (1..=max).contains(&n) => n,
            Some(_) => {
                return Err(Box::new(twilio_error(
                    StatusCode::BAD_REQUEST,
                    20001,
                    &format!("PageSize must be between 1 and {max}"),
                )));
            }
        };
        let number = q
            .get("Page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(0);
        let offset = q
            .get("PageToken")
            .and_then(|t| t.strip_prefix("PT"))
            .and_then(|t| t.parse::<usize>().ok())
            .unwrap_or(number * size);
        Ok(Self {
            size,
            number,
            offset,
            token: q.contains_key("PageToken"),
            prefix,
        })
    }

    /// The URL of page `page`, with a token for `offset` when given.
    pub fn url(&self, page: usize, offset: Option<usize>) -> String {
        let token = offset
            .map(|o| format!("&PageToken=PT{o}"))
            .unwrap_or_default();
        format!("{}PageSize={}&Page={page}{token}", self.prefix, self.size)
    }

    /// This page's own URL.
    pub fn this(&self) -> String {
        self.url(self.number, self.token.then_some(self.offset))
    }

    /// The next page's URL, unless this one reaches the end of `total` items.
    pub fn next(&self, total: usize) -> Option<String> {
        (self.offset + self.size < total)
            .then(|| self.url(self.number + 1, Some(self.offset + self.size)))
    }

    /// The previous page's URL, unless this is the first.
    pub fn previous(&self) -> Option<String> {
        (self.number > 0)
            .then(|| self.url(self.number - 1, Some(self.offset.saturating_sub(self.size))))
    }

    /// This page's items, as JSON.
    pub fn slice<T>(&self, items: Vec<T>, to_json: impl Fn(T) -> Value) -> Vec<Value> {
        items
            .into_iter()
            .skip(self.offset)
            .take(self.size)
            .map(to_json)
            .collect()
    }
}

/// The filters a list request used, in a fixed order, for the paging URLs.
pub(crate) fn filters<'a>(
    q: &'a HashMap<String, String>,
    names: &[&'a str],
) -> Vec<(&'a str, &'a String)> {
    names
        .iter()
        .filter_map(|&n| q.get(n).map(|v| (n, v)))
        .collect()
}

/// `YYYY-MM-DD` of when `m` was created.
fn day(m: &Media) -> String {
    m.date_created()[..10].to_owned()
}

/// The day a Voice date filter names: its first ten characters (`2026-11-02`, also of
/// `2026-11-02T00:00:00Z`).
fn day_of(value: &str) -> &str {
    value.get(..10).unwrap_or(value)
}

/// Whether `m` passes the listing filter `name=value`. Dates compare as RFC 3339
/// strings (`2026-11-01T10:00:00Z`), which sort as times; the Voice API's as days.
pub(crate) fn passes(cat: &Catalog, m: &Media, name: &str, value: &str) -> bool {
    match name {
        "Status" => m.status.eq_ignore_ascii_case(value),
        "MediaType" => m.media_type.eq_ignore_ascii_case(value),
        // A room, or one of its participants.
        "GroupingSid" => value == cat.rooms[m.room].sid || value == m.participant_sid,
        "RoomSid" => value == cat.rooms[m.room].sid,
        "SourceSid" => value == m.source_sid,
        "DateCreatedAfter" => m.date_created().as_str() >= value,
        "DateCreatedBefore" => m.date_created().as_str() <= value,
        // The Voice API's: a call, a conference, and days (inclusive at both ends).
        "CallSid" => m.call.as_ref().is_some_and(|c| c.call_sid == value),
        "ConferenceSid" => m
            .call
            .as_ref()
            .is_some_and(|c| c.conference_sid.as_deref() == Some(value)),
        "DateCreated" => day(m) == day_of(value),
        "DateCreated>" => day(m).as_str() >= day_of(value),
        "DateCreated<" => day(m).as_str() <= day_of(value),
        _ => true,
    }
}

/// Whether `m` passes every filter of `names` that the query gives; the query's other
/// parameters are ignored, as Twilio ignores filters a listing does not take.
pub(crate) fn passes_all(
    cat: &Catalog,
    m: &Media,
    names: &[&str],
    q: &HashMap<String, String>,
) -> bool {
    names
        .iter()
        .all(|&name| q.get(name).is_none_or(|v| passes(cat, m, name, v)))
}

/// The routes of one media kind: its listing, one resource, its `/Media` and its
/// settings, each answered by the handler below with `kind` as its first argument.
pub fn media_routes(kind: MediaKind) -> Router<Arc<Emulator>> {
    type Emu = State<Arc<Emulator>>;
    Router::new()
        .route(
            &kind.list_path("{account}"),
            get(move |emu: Emu, headers: HeaderMap, q: Params| list_media(kind, emu, headers, q)),
        )
        .route(
            &kind.resource_path("{account}", "{sid}"),
            get(move |emu: Emu, headers: HeaderMap, sid: Path<String>| {
                get_media(kind, emu, headers, sid)
            }),
        )
        .route(
            &kind.media_path("{account}", "{sid}"),
            get(
                move |emu: Emu, headers: HeaderMap, sid: Path<String>, q: Params| {
                    media(kind, emu, headers, sid, q)
                },
            ),
        )
        .route(
            kind.settings_path().unwrap_or("/v1/Settings/None"),
            get(move |emu: Emu, headers: HeaderMap| settings(kind, emu, headers)),
        )
}

/// `GET /v1/Recordings`, `GET /v1/Compositions`.
pub async fn list_media(
    kind: MediaKind,
    State(emu): State<Arc<Emulator>>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    if let Some(hostile) = emu.hostile.list_page(kind, &q) {
        return hostile;
    }
    emu.hostile.page_delay(&q).await;
    let base = base_url(&headers);
    let cat = &emu.catalog;
    let names = kind.list_filters();
    let items = cat
        .media
        .iter()
        .enumerate()
        .filter(|(_, m)| m.kind == kind && passes_all(cat, m, names, &q))
        .collect();
    // With `new-sids`, the listing's number, carried from page to page.
    let generation = emu.hostile.generation(&q, || bump(&emu.listings));
    let carried = generation.map(|g| g.to_string());
    let mut f = filters(&q, names);
    if let Some(g) = &carried {
        f.push((hostile::GENERATION, g));
    }
    // JSON for the page's items only: a listing of 10 000 is 100 pages.
    let json = |(i, m): (usize, &Media)| {
        let mut json = cat.resource_json(&base, m);
        emu.hostile.resource(&mut json, i, generation);
        json
    };
    page_with(
        &base,
        &kind.list_path(""),
        kind.list_key(),
        items,
        json,
        &f,
        &q,
    )
}

/// The catalog index of `sid` (or, with [`hostile::Hostile::NewSids`], of the object a listing
/// gave that SID to).
pub(crate) fn find(emu: &Emulator, sid: &str, kind: MediaKind) -> Option<usize> {
    let cat = &emu.catalog;
    cat.index(sid)
        .or_else(|| {
            cat.media
                .iter()
                .position(|m| emu.hostile.same_object(sid, &m.sid))
        })
        .filter(|&i| cat.media[i].kind == kind)
}

/// `GET /v1/Recordings/{RT}`, `GET /v1/Compositions/{CJ}`.
pub async fn get_media(
    kind: MediaKind,
    State(emu): State<Arc<Emulator>>,
    headers: HeaderMap,
    Path(sid): Path<String>,
) -> Response {
    if let Some(hostile) = emu.hostile.resource_error(kind) {
        return hostile;
    }
    match find(&emu, &sid, kind) {
        Some(i) => {
            let cat = &emu.catalog;
            let mut json = cat.resource_json(&base_url(&headers), &cat.media[i]);
            emu.hostile.resource(&mut json, i, None);
            // Under the SID it was asked by (another one with `new-sids`).
            json["sid"] = Value::String(sid);
            Json(json).into_response()
        }
        None => not_found_error(&format!("/{}/{sid}", kind.collection())),
    }
}

/// `/Media`: 302 to a pre-signed storage URL, with `{"redirect_to": URL}` as the body.
pub(crate) fn media_redirect(
    emu: &Emulator,
    headers: &HeaderMap,
    sid: &str,
    kind: MediaKind,
    q: &HashMap<String, String>,
) -> Response {
    bump(&emu.counters.media_requests);
    if let Some(hostile) = emu.hostile.resource_error(kind) {
        return hostile;
    }
    let media = find(emu, sid, kind).map(|i| &emu.catalog.media[i]);
    let Some(media) = media.filter(|m| m.status == "completed" && m.object.is_some()) else {
        return not_found_error(&format!("{sid}/Media"));
    };
    let ttl = match q.get("Ttl").map(|t| t.parse::<u64>()) {
        None => emu.config.ttl,
        Some(Ok(t)) if (1..=3600).contains(&t) => emu.config.ttl.min(Duration::from_secs(t)),
        Some(_) => {
            return twilio_error(
                StatusCode::BAD_REQUEST,
                20001,
                "Ttl must be between 1 and 3600 seconds",
            );
        }
    };
    let url = emu.presign(&storage_base(emu, headers), &media.sid, ttl);
    let mut resp = (StatusCode::FOUND, Json(json!({ "redirect_to": url }))).into_response();
    resp.headers_mut().insert(
        header::LOCATION,
        header::HeaderValue::from_str(&url).expect("ASCII URL"),
    );
    resp
}

/// `GET /v1/Recordings/{RT}/Media`, `GET /v1/Compositions/{CJ}/Media`.
pub async fn media(
    kind: MediaKind,
    State(emu): State<Arc<Emulator>>,
    headers: HeaderMap,
    Path(sid): Path<String>,
    Query(q): Params,
) -> Response {
    media_redirect(&emu, &headers, &sid, kind, &q)
}

/// `GET /v1/RecordingSettings/Default`, `GET /v1/CompositionSettings/Default`.
pub async fn settings(
    kind: MediaKind,
    State(emu): State<Arc<Emulator>>,
    headers: HeaderMap,
) -> Response {
    if let Some(denied) = forbidden(&emu) {
        return denied;
    }
    let mut json = emu.catalog.settings_json(&base_url(&headers), kind);
    emu.hostile.settings(&mut json);
    Json(json).into_response()
}

pub async fn list_rooms(
    State(emu): State<Arc<Emulator>>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let base = base_url(&headers);
    let cat = &emu.catalog;
    // The spec's default is `in-progress`; every room here is `completed`.
    let status = q.get("Status").map_or("in-progress", String::as_str);
    let items = cat
        .rooms
        .iter()
        .filter(|_| status.eq_ignore_ascii_case("completed"))
        .filter(|r| q.get("UniqueName").is_none_or(|n| *n == r.unique_name))
        .filter(|r| {
            let created = r.date_created();
            q.get("DateCreatedAfter")
                .is_none_or(|d| created.as_str() >= d.as_str())
                && q.get("DateCreatedBefore")
                    .is_none_or(|d| created.as_str() <= d.as_str())
        })
        .map(|r| cat.room_json(&base, r))
        .collect();
    let f = filters(
        &q,
        &[
            "Status",
            "UniqueName",
            "DateCreatedAfter",
            "DateCreatedBefore",
        ],
    );
    page(&base, "/v1/Rooms", "rooms", items, &f, &q)
}

pub async fn get_room(
    State(emu): State<Arc<Emulator>>,
    headers: HeaderMap,
    Path(room): Path<String>,
) -> Response {
    // Twilio also accepts a room's unique name here.
    let found = emu
        .catalog
        .rooms
        .iter()
        .find(|r| r.sid == room || r.unique_name == room);
    match found {
        Some(r) => Json(emu.catalog.room_json(&base_url(&headers), r)).into_response(),
        None => not_found_error(&format!("/Rooms/{room}")),
    }
}

/// The filters a room's recordings take, in the order of their paging URLs.
const ROOM_RECORDING_FILTERS: [&str; 4] = [
    "Status",
    "SourceSid",
    "DateCreatedAfter",
    "DateCreatedBefore",
];

pub async fn list_room_recordings(
    State(emu): State<Arc<Emulator>>,
    headers: HeaderMap,
    Path(room): Path<String>,
    Query(q): Params,
) -> Response {
    let base = base_url(&headers);
    let cat = &emu.catalog;
    let Some((index, room)) = cat.room(&room) else {
        return not_found_error(&format!("/Rooms/{room}"));
    };
    let items = cat
        .media
        .iter()
        .filter(|m| m.kind == MediaKind::Recording && m.room == index)
        .filter(|m| passes_all(cat, m, &ROOM_RECORDING_FILTERS, &q))
        .map(|m| cat.room_recording_json(&base, m))
        .collect();
    let f = filters(&q, &ROOM_RECORDING_FILTERS);
    let path = format!("/v1/Rooms/{}/Recordings", room.sid);
    page(&base, &path, "recordings", items, &f, &q)
}

/// The recording `sid` if it belongs to room `room`.
fn room_recording<'a>(emu: &'a Emulator, room: &str, sid: &str) -> Option<&'a Media> {
    let (index, _) = emu.catalog.room(room)?;
    let i = find(emu, sid, MediaKind::Recording)?;
    let m = &emu.catalog.media[i];
    (m.room == index).then_some(m)
}

pub async fn get_room_recording(
    State(emu): State<Arc<Emulator>>,
    headers: HeaderMap,
    Path((room, sid)): Path<(String, String)>,
) -> Response {
    match room_recording(&emu, &room, &sid) {
        Some(m) => Json(emu.catalog.room_recording_json(&base_url(&headers), m)).into_response(),
        None => not_found_error(&format!("/Rooms/{room}/Recordings/{sid}")),
    }
}

pub async fn room_recording_media(
    State(emu): State<Arc<Emulator>>,
    headers: HeaderMap,
    Path((room, sid)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    if room_recording(&emu, &room, &sid).is_none() {
        bump(&emu.counters.media_requests);
        return not_found_error(&format!("/Rooms/{room}/Recordings/{sid}/Media"));
    }
    media_redirect(&emu, &headers, &sid, MediaKind::Recording, &q)
}

/// `GET /v1/Credentials/PublicKeys` (the Accounts API): one credential per public key.
pub async fn list_public_keys(
    State(emu): State<Arc<Emulator>>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    if let Some(denied) = forbidden(&emu) {
        return denied;
    }
    let base = base_url(&headers);
    let cat = &emu.catalog;
    let items = cat
        .public_key_sids
        .iter()
        .filter_map(|sid| cat.public_key_json(&base, sid))
        .collect();
    page(
        &base,
        "/v1/Credentials/PublicKeys",
        "credentials",
        items,
        &[],
        &q,
    )
}

/// `GET /v1/Credentials/PublicKeys/{CR}` (the Accounts API).
pub async fn get_public_key(
    State(emu): State<Arc<Emulator>>,
    headers: HeaderMap,
    Path(sid): Path<String>,
) -> Response {
    if let Some(denied) = forbidden(&emu) {
        return denied;
    }
    match emu.catalog.public_key_json(&base_url(&headers), &sid) {
        Some(json) => Json(json).into_response(),
        None => not_found_error(&format!("/Credentials/PublicKeys/{sid}")),
    }
}

/// `GET /emulator/stats` (no auth).
pub async fn stats(State(emu): State<Arc<Emulator>>) -> Response {
    Json(emu.stats()).into_response()
}

/// `POST /emulator/stats/reset` (no auth).
pub async fn reset_stats(State(emu): State<Arc<Emulator>>) -> Response {
    emu.reset_stats();
    Json(emu.stats()).into_response()
}

/// `POST /emulator/storage/outage?secs=N` (no auth): storage refuses connections (and
/// resets the open ones) for N seconds; without `secs`, until `?secs=0` ends it.
pub async fn storage_outage(State(emu): State<Arc<Emulator>>, Query(q): Params) -> Response {
    match q.get("secs").map(|s| s.parse::<f64>()) {
        None => emu.set_storage_down(true),
        Some(Ok(0.0)) => emu.set_storage_down(false),
        Some(Ok(secs)) if secs > 0.0 && secs.is_finite() => {
            emu.storage_outage(Duration::from_secs_f64(secs))
        }
        Some(_) => {
            return twilio_error(
                StatusCode::BAD_REQUEST,
                20001,
                "secs must be a number of seconds (0 ends the outage)",
            );
        }
    }
    Json(json!({ "storage_down": emu.storage_down() })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `--storage-url`: `/Media` sends clients to another server (nginx in bench/run.sh),
    /// with the path and signature the emulator's own storage would take.
    #[test]
    fn media_redirects_to_the_storage_url_when_given() {
        let key = crate::crypto::seal::test_key(1).to_public_key();
        let emu = Emulator::new(super::super::EmulatorConfig {
            public_keys: vec![key],
            storage_url: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        })
        .unwrap();
        let rec = (emu.catalog.media.iter())
            .find(|m| {
                m.kind == MediaKind::Recording && m.status == "completed" && m.object.is_some()
            })
            .unwrap();
        let resp = media_redirect(&emu, &HeaderMap::new(), &rec.sid, rec.kind, &HashMap::new());
        assert_eq!(resp.status(), StatusCode::FOUND);
        let to = resp.headers()[header::LOCATION].to_str().unwrap();
        let prefix = format!("http://127.0.0.1:9/storage/{}?", rec.sid);
        let signed = to.strip_prefix(&prefix).unwrap_or_else(|| panic!("{to}"));
        let q: HashMap<String, String> = (signed.split('&'))
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(emu.check_signature(&rec.sid, &q), Ok(()));
    }

    /// Both kinds go through one listing: each still takes its own filters only.
    #[test]
    fn each_kind_takes_its_own_filters() {
        let key = crate::crypto::seal::test_key(1).to_public_key();
        let emu = Emulator::new(super::super::EmulatorConfig {
            public_keys: vec![key],
            ..Default::default()
        })
        .unwrap();
        let cat = &emu.catalog;
        let listed = |kind: MediaKind, q: &HashMap<String, String>| {
            cat.media
                .iter()
                .filter(|m| m.kind == kind && passes_all(cat, m, kind.list_filters(), q))
                .count()
        };
        let all = |kind| listed(kind, &HashMap::new());
        let comp = cat
            .media
            .iter()
            .find(|m| m.kind == MediaKind::Composition)
            .unwrap();
        let room = cat.rooms[comp.room].sid.as_str();
        let in_room = |kind| {
            cat.media
                .iter()
                .filter(|m| m.kind == kind && m.room == comp.room)
                .count()
        };
        let rec = MediaKind::Recording;
        let cj = MediaKind::Composition;
        assert_eq!(listed(cj, &query(&[("RoomSid", room)])), in_room(cj));
        assert_eq!(listed(rec, &query(&[("GroupingSid", room)])), in_room(rec));
        // A filter the kind does not take is ignored.
        assert_eq!(listed(rec, &query(&[("RoomSid", room)])), all(rec));
        assert_eq!(
            listed(cj, &query(&[("GroupingSid", room), ("MediaType", "audio")])),
            all(cj)
        );
        // A recording's participant groups it too; statuses compare in any case.
        let first = cat.media.iter().find(|m| m.kind == rec).unwrap();
        let by_participant = query(&[("GroupingSid", &first.participant_sid)]);
        assert!(passes_all(cat, first, rec.list_filters(), &by_participant));
        let processing = query(&[("Status", "PROCESSING")]);
        assert_eq!(listed(rec, &processing), 1);
        assert_eq!(listed(cj, &processing), 0);
        // Dates bound both ends, inclusively.
        let created = first.date_created();
        let on = query(&[
            ("DateCreatedAfter", &created),
            ("DateCreatedBefore", &created),
        ]);
        assert!(passes_all(cat, first, rec.list_filters(), &on));
    }
}
