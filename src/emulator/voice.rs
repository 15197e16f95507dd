//! The Voice API of 2010-04-01 (`api.twilio.com`), for call recordings: its listings,
//! one recording, and its media.
//!
//! This file owns the HTTP shape of that API as `twilio_api_v2010.json` describes it:
//! the account in every path (another account's path is 404), 2010-style pages
//! (`recordings`, `page`, `page_size`, `start`, `end`, `uri`, `first_page_uri`,
//! `next_page_uri` and `previous_page_uri` as paths), the `CallSid`, `ConferenceSid`
//! and `DateCreated`/`DateCreated>`/`DateCreated<` (days) filters, and the media:
//! `…/Recordings/{RE}` and `…/Recordings/{RE}.wav` answer 302 to the same pre-signed
//! storage URLs as Video media (so every storage fault and counter applies), `.mp3` of
//! an encrypted recording is Twilio's 400 with code 16109. It must not touch object
//! bytes (that is `storage`) nor decide what exists (that is `catalog`). The routes sit
//! behind [`super::api::guard`] (auth, throttling) like `/v1`. The emulator has no MP3
//! encoder: `.mp3` of an unencrypted recording is a 400 that says so.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::Emulator;
use super::api::{
    Paging, base_url, encode, filters, find, media_redirect, not_found_error, passes, passes_all,
    twilio_error,
};
use super::catalog::{Media, VoiceObject};
use crate::twilio::MediaKind;

type Params = Query<HashMap<String, String>>;
type Emu = State<Arc<Emulator>>;

/// The 2010 API's largest `PageSize`.
pub const MAX_PAGE_SIZE: usize = 1000;
/// Its `PageSize` when none is asked for.
pub const DEFAULT_PAGE_SIZE: usize = 50;

/// The 2010-04-01 routes: the account's recordings, a call's, a conference's, one
/// recording (`{RE}.json`) and its media (`{RE}`, `{RE}.wav`, `{RE}.mp3`).
pub fn routes() -> Router<Arc<Emulator>> {
    const ACCOUNT: &str = "/2010-04-01/Accounts/{account}";
    Router::new()
        .route(
            &format!("{ACCOUNT}/Recordings.json"),
            get(
                |emu: Emu, uri: Uri, h: HeaderMap, Path(account): Path<String>, q: Params| async move {
                    list(emu, uri, &h, &account, None, q)
                },
            ),
        )
        .route(
            &format!("{ACCOUNT}/Calls/{{call}}/Recordings.json"),
            get(
                |emu: Emu, uri: Uri, h: HeaderMap, Path((account, call)): Path<(String, String)>, q: Params| async move {
                    list(emu, uri, &h, &account, Some(("CallSid", call)), q)
                },
            ),
        )
        .route(
            &format!("{ACCOUNT}/Conferences/{{conference}}/Recordings.json"),
            get(
                |emu: Emu,
                 uri: Uri,
                 h: HeaderMap,
                 Path((account, conference)): Path<(String, String)>,
                 q: Params| async move {
                    list(emu, uri, &h, &account, Some(("ConferenceSid", conference)), q)
                },
            ),
        )
        // `{sid}.json` is not a route segment axum takes: the extension is split here.
        .route(&format!("{ACCOUNT}/Recordings/{{file}}"), get(recording))
}

/// Whether `account` is the credentials' account; the API answers 404 for any other.
fn own_account(emu: &Emulator, account: &str) -> bool {
    account == emu.catalog.account_sid
}

/// `GET …/Recordings.json`, `…/Calls/{CA}/Recordings.json`,
/// `…/Conferences/{CF}/Recordings.json`: one 2010-style page.
fn list(
    State(emu): Emu,
    uri: Uri,
    headers: &HeaderMap,
    account: &str,
    parent: Option<(&'static str, String)>,
    Query(q): Params,
) -> Response {
    if !own_account(&emu, account) {
        return not_found_error(uri.path());
    }
    let cat = &emu.catalog;
    let names = MediaKind::Voice.list_filters();
    let items: Vec<&Media> = cat
        .media
        .iter()
        .filter(|m| m.kind == MediaKind::Voice && passes_all(cat, m, names, &q))
        .filter(|m| {
            parent
                .as_ref()
                .is_none_or(|(name, value)| passes(cat, m, name, value))
        })
        .collect();
    let base = base_url(headers);
    page(uri.path(), items, &filters(&q, names), &q, |m| {
        cat.call_recording_json(&base, m)
    })
}

/// A 2010-style page of `items` at `path`: `Page` (0-based) of `PageSize` (at most
/// [`MAX_PAGE_SIZE`]); `PageToken` (`PT` + offset), when given, says where it starts.
/// The paging URIs are paths that repeat the filters.
pub fn page<'a>(
    path: &str,
    items: Vec<&'a Media>,
    filters: &[(&str, &String)],
    q: &HashMap<String, String>,
    to_json: impl Fn(&'a Media) -> Value,
) -> Response {
    let mut query = String::new();
    for (name, value) in filters {
        query.push_str(&format!("{}={}&", encode(name), encode(value)));
    }
    let paging = match Paging::new(
        q,
        DEFAULT_PAGE_SIZE,
        MAX_PAGE_SIZE,
        format!("{path}?{query}"),
    ) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    let total = items.len();
    let slice = paging.slice(items, to_json);
    let (offset, number, size) = (paging.offset, paging.number, paging.size);
    let end = (offset + slice.len()).saturating_sub(1).max(offset);
    axum::Json(json!({
        "recordings": slice,
        "page": number,
        "page_size": size,
        "start": offset,
        "end": end,
        "uri": paging.this(),
        "first_page_uri": paging.url(0, None),
        "next_page_uri": paging.next(total),
        "previous_page_uri": paging.previous(),
    }))
    .into_response()
}

/// `GET …/Recordings/{file}`: `RE….json` is the resource; `RE…` and `RE….wav` its
/// media (302 to storage); `RE….mp3` is refused for an encrypted recording (16109).
async fn recording(
    State(emu): Emu,
    uri: Uri,
    headers: HeaderMap,
    Path((account, file)): Path<(String, String)>,
) -> Response {
    if !own_account(&emu, &account) {
        return not_found_error(uri.path());
    }
    let (sid, ext) = match file.rsplit_once('.') {
        Some((sid, ext)) => (sid, Some(ext)),
        None => (file.as_str(), None),
    };
    let Some(i) = find(&emu, sid, MediaKind::Voice) else {
        return not_found_error(uri.path());
    };
    let media = &emu.catalog.media[i];
    match ext {
        Some("json") => {
            let json = emu.catalog.call_recording_json(&base_url(&headers), media);
            axum::Json(json).into_response()
        }
        None | Some("wav") => {
            media_redirect(&emu, &headers, sid, MediaKind::Voice, &HashMap::new())
        }
        Some("mp3") if media.voice_object().is_some_and(VoiceObject::encrypted) => twilio_error(
            StatusCode::BAD_REQUEST,
            16109,
            "Voice Recording: Cannot fetch .mp3 encrypted recording. Recording cannot be \
             retrieved in .mp3 format when call recording encryption feature is enabled on \
             the account. Please re-request with .wav format.",
        ),
        Some("mp3") => twilio_error(
            StatusCode::BAD_REQUEST,
            20001,
            &format!(
                "The emulator stores call recordings as WAV only and has no MP3 encoder: \
                 ask for {sid}.wav"
            ),
        ),
        Some(_) => not_found_error(uri.path()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::catalog::{call_sid, conference_sid};
    use super::super::{EmulatorConfig, RunningEmulator, spawn};
    use super::*;
    use crate::twilio::parse_rfc2822;

    async fn emulator(extra: u64) -> RunningEmulator {
        let key = crate::crypto::seal::test_key(1).to_public_key();
        spawn(EmulatorConfig {
            public_keys: vec![key],
            extra_call_recordings: extra,
            ..Default::default()
        })
        .await
        .unwrap()
    }

    fn account(emu: &RunningEmulator) -> String {
        emu.emulator.config().credentials.account_sid.clone()
    }

    /// GET `path` (relative to the API) with the account's credentials, no redirects
    /// followed: (status, headers, JSON body or null).
    async fn get(emu: &RunningEmulator, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        let c = &emu.emulator.config().credentials;
        let resp = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{}{path}", emu.url))
            .basic_auth(&c.account_sid, Some(&c.auth_token))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    fn sids(page: &Value) -> Vec<String> {
        page["recordings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["sid"].as_str().unwrap().to_owned())
            .collect()
    }

    fn voice_sids(emu: &RunningEmulator) -> Vec<String> {
        emu.emulator
            .call_recordings()
            .into_iter()
            .map(|o| o.sid)
            .collect()
    }

    #[tokio::test]
    async fn paging_walks_every_page_by_next_page_uri() {
        let emu = emulator(7).await;
        let acc = account(&emu);
        let mut next = Some(format!(
            "/2010-04-01/Accounts/{acc}/Recordings.json?PageSize=3"
        ));
        let mut seen = Vec::new();
        let mut pages = 0;
        while let Some(uri) = next {
            let (status, _, page) = get(&emu, &uri).await;
            assert_eq!(status, 200, "{uri}: {page}");
            assert_eq!(page["page"], pages);
            assert_eq!(page["page_size"], 3);
            assert_eq!(page["start"], seen.len());
            let got = sids(&page);
            assert_eq!(page["end"], seen.len() + got.len() - 1);
            assert_eq!(page["previous_page_uri"].is_null(), pages == 0);
            assert!(page["first_page_uri"].as_str().unwrap().starts_with('/'));
            assert!(page["uri"].as_str().unwrap().starts_with('/'));
            seen.extend(got);
            next = page["next_page_uri"].as_str().map(str::to_owned);
            if let Some(n) = &next {
                assert!(
                    n.starts_with("/2010-04-01/") && n.contains("PageToken="),
                    "{n}"
                );
            }
            pages += 1;
        }
        assert_eq!(seen, voice_sids(&emu));
        assert_eq!(pages, seen.len().div_ceil(3));
        assert_eq!(seen.len(), 5 + 7);
        // The largest page the API allows, and one too large.
        let (status, _, page) = get(
            &emu,
            &format!("/2010-04-01/Accounts/{acc}/Recordings.json?PageSize=1000"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(sids(&page).len(), 12);
        assert!(page["next_page_uri"].is_null());
        let (status, _, body) = get(
            &emu,
            &format!("/2010-04-01/Accounts/{acc}/Recordings.json?PageSize=1001"),
        )
        .await;
        assert_eq!((status, body["code"].as_u64()), (400, Some(20001)));
    }

    #[tokio::test]
    async fn filters_and_the_calls_and_conferences_listings() {
        let emu = emulator(0).await;
        let acc = account(&emu);
        let list = |q: String| {
            let emu = &emu;
            let acc = acc.clone();
            async move {
                let (status, _, page) = get(emu, &format!("/2010-04-01/Accounts/{acc}/{q}")).await;
                assert_eq!(status, 200, "{q}: {page}");
                sids(&page)
            }
        };
        let a = call_sid("a");
        let cf = conference_sid("standup");
        let two = list(format!("Recordings.json?CallSid={a}")).await;
        assert_eq!(two.len(), 2, "call a has two recordings");
        assert_eq!(list(format!("Calls/{a}/Recordings.json")).await, two);
        let conf = list(format!("Recordings.json?ConferenceSid={cf}")).await;
        assert_eq!(conf.len(), 1);
        assert_eq!(
            list(format!("Conferences/{cf}/Recordings.json")).await,
            conf
        );
        assert!(
            list(format!("Calls/{}/Recordings.json", call_sid("none")))
                .await
                .is_empty()
        );
        // Days, inclusive: one recording a day from 2026-11-02.
        let all = voice_sids(&emu);
        assert_eq!(
            list("Recordings.json?DateCreated%3E=2026-11-03".into()).await,
            all[1..]
        );
        assert_eq!(
            list("Recordings.json?DateCreated%3C=2026-11-03".into()).await,
            all[..2]
        );
        assert_eq!(
            list("Recordings.json?DateCreated=2026-11-04".into()).await,
            all[2..3]
        );
        let both = "Recordings.json?DateCreated%3E=2026-11-03&DateCreated%3C=2026-11-04";
        assert_eq!(list(both.into()).await, all[1..3]);
        // The filters are carried from page to page, encoded.
        let (_, _, page) = get(
            &emu,
            &format!(
                "/2010-04-01/Accounts/{acc}/Recordings.json?DateCreated%3E=2026-11-02&PageSize=1"
            ),
        )
        .await;
        let next = page["next_page_uri"].as_str().unwrap();
        assert!(next.contains("DateCreated%3E=2026-11-02&"), "{next}");
    }

    #[tokio::test]
    async fn resources_say_what_twilio_says() {
        let emu = emulator(0).await;
        let acc = account(&emu);
        let mut spec_spelled = 0;
        for sid in voice_sids(&emu) {
            let path = format!("/2010-04-01/Accounts/{acc}/Recordings/{sid}.json");
            let (status, _, r) = get(&emu, &path).await;
            assert_eq!(status, 200, "{r}");
            assert_eq!(r["sid"], sid.as_str());
            assert_eq!(r["uri"], path.as_str());
            assert_eq!(r["api_version"], "2010-04-01");
            assert_eq!(r["status"], "completed");
            assert!(r["duration"].is_string());
            let created = parse_rfc2822(r["date_created"].as_str().unwrap()).unwrap();
            assert!(parse_rfc2822(r["start_time"].as_str().unwrap()).is_some());
            assert!(parse_rfc2822(r["date_updated"].as_str().unwrap()).unwrap() > created);
            let object = emu
                .emulator
                .call_recordings()
                .into_iter()
                .find(|o| o.sid == sid)
                .unwrap();
            let listed_day = &super::super::catalog::datetime(
                created
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64,
            )[..10];
            assert!(listed_day.starts_with("2026-11-"), "{listed_day}");
            let details = &r["encryption_details"];
            if object.encrypted {
                if details.get("encryption_cek").is_some() {
                    spec_spelled += 1;
                    assert!(r["conference_sid"].is_string());
                    assert_eq!(r["source"], "StartConferenceRecordingAPI");
                } else {
                    assert!(details["encrypted_cek"].is_string(), "{details}");
                    assert!(details["iv"].is_string());
                }
            } else {
                assert!(details.is_null());
            }
            let media = r["media_url"].as_str().unwrap();
            assert!(media.ends_with(&format!("/Recordings/{sid}")), "{media}");
        }
        assert_eq!(spec_spelled, 1);
    }

    #[tokio::test]
    async fn media_redirects_to_storage_and_mp3_is_refused_when_encrypted() {
        let emu = emulator(0).await;
        let acc = account(&emu);
        let objects = emu.emulator.call_recordings();
        let encrypted = objects.iter().find(|o| o.encrypted).unwrap();
        let plain = objects.iter().find(|o| !o.encrypted).unwrap();
        let base = format!("/2010-04-01/Accounts/{acc}/Recordings");
        for suffix in ["", ".wav"] {
            let (status, headers, _) = get(&emu, &format!("{base}/{}{suffix}", plain.sid)).await;
            assert_eq!(status, 302);
            let location = headers["location"].to_str().unwrap();
            assert!(location.starts_with(&emu.storage_url), "{location}");
            let body = reqwest::get(location).await.unwrap().bytes().await.unwrap();
            assert_eq!(&body[..4], b"RIFF");
            assert_eq!(&body[8..12], b"WAVE");
            assert_eq!(body.to_vec(), emu.emulator.plaintext(&plain.sid).unwrap());
        }
        let stats = emu.emulator.stats();
        assert_eq!(stats.media_requests, 2);
        assert_eq!(stats.storage_requests, 2);
        assert_eq!(stats.storage_bytes, 2 * plain.size.unwrap());
        let (status, _, body) = get(&emu, &format!("{base}/{}.mp3", encrypted.sid)).await;
        assert_eq!(
            (status, body["code"].as_u64()),
            (400, Some(16109)),
            "{body}"
        );
        assert!(body["message"].as_str().unwrap().contains(".wav"));
        // Unknown SIDs and other accounts: Twilio's 404.
        let unknown = format!("{base}/RE{}.json", "0".repeat(32));
        let (status, _, body) = get(&emu, &unknown).await;
        assert_eq!((status, body["code"].as_u64()), (404, Some(20404)));
        let (status, _, _) = get(&emu, &format!("{base}/RE{}", "0".repeat(32))).await;
        assert_eq!(status, 404);
        let other = format!("/2010-04-01/Accounts/AC{}/Recordings", "1".repeat(32));
        for path in [
            format!("{other}.json"),
            format!("{other}/{}.json", encrypted.sid),
            format!("{other}/{}.wav", encrypted.sid),
        ] {
            let (status, _, body) = get(&emu, &path).await;
            assert_eq!(
                (status, body["code"].as_u64()),
                (404, Some(20404)),
                "{path}"
            );
        }
        // Without credentials: 401, as on /v1.
        let anonymous = reqwest::get(format!("{}{base}.json", emu.url))
            .await
            .unwrap();
        assert_eq!(anonymous.status().as_u16(), 401);
    }
}
