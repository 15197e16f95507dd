//! The Twilio client and the object client against a tiny axum mock on 127.0.0.1:0.
//!
//! Each test starts its own server: Twilio's API routes (`/v1/...`) and a storage route
//! (`/s3/{sid}`) whose behaviour depends on the SID (`RTranged`, `RTignore`, `RTcut`,
//! `RTexpired`, ...). Retry delays are milliseconds so the whole file runs in a second
//! or two.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;
use twilio_media_fs::object::{ObjectClient, ObjectError, ObjectSource};
use twilio_media_fs::retry::RetryPolicy;
use twilio_media_fs::twilio::{
    ClientConfig, Credentials, Error, MediaRef, RecordingFilter, RoomFilter, TwilioClient,
};
use zeroize::Zeroizing;

const SECRET: &str = "s3cr3t-value";
const OBJECT_LEN: usize = 100_000;

fn object() -> Vec<u8> {
    (0..OBJECT_LEN).map(|i| (i * 7 % 251) as u8).collect()
}

#[derive(Default)]
struct Mock {
    hits: std::sync::Mutex<HashMap<String, usize>>,
    media_generation: AtomicUsize,
}

impl Mock {
    /// Counts a hit on `name` and returns how many there were, this one included.
    fn hit(&self, name: &str) -> usize {
        let mut hits = self.hits.lock().unwrap();
        let n = hits.entry(name.to_string()).or_default();
        *n += 1;
        *n
    }

    fn hits(&self, name: &str) -> usize {
        self.hits.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

type S = State<Arc<Mock>>;

fn authorized(headers: &HeaderMap) -> bool {
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("SK1:{SECRET}"))
    );
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(want.as_str())
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        axum::Json(
            json!({"status": status.as_u16(), "code": code, "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}")}),
        ),
    )
        .into_response()
}

async fn recordings(
    State(m): S,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !authorized(&headers) {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    m.hit("recordings");
    assert_eq!(q.get("PageSize").map(String::as_str), Some("100"));
    assert_eq!(q.get("Status").map(String::as_str), Some("completed"));
    let page: usize = q.get("Page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let items: Vec<_> = (0..3)
        .map(|i| {
            json!({"sid": format!("RT{page}{i}"), "status": "completed", "codec": "OPUS",
            "container_format": "mka", "size": 1000 + i, "date_created": "2024-01-02T03:04:05Z",
            "grouping_sids": {"room_sid": "RM1", "participant_sid": "PA1"}, "extra": [1, 2]})
        })
        .collect();
    // Absolute URLs on Twilio's host, as the real API sends: the client must move them
    // onto the configured origin.
    let next = (page < 2).then(|| {
        format!(
            "https://video.twilio.com/v1/Recordings?Status=completed&PageSize=100&Page={}&PageToken=PT{}",
            page + 1,
            page + 1
        )
    });
    axum::Json(
        json!({"recordings": items, "meta": {"page": page, "page_size": 100,
        "key": "recordings", "next_page_url": next}}),
    )
    .into_response()
}

async fn looping_rooms(State(m): S) -> Response {
    m.hit("rooms");
    axum::Json(json!({"rooms": [{"sid": "RM1"}], "meta": {
        "next_page_url": "https://video.twilio.com/v1/Rooms?PageSize=100&Page=1&PageToken=SAME"}}))
    .into_response()
}

async fn flaky_room(State(m): S, Path(sid): Path<String>) -> Response {
    let n = m.hit(&sid);
    match sid.as_str() {
        "RM429" if n == 1 => {
            let mut r = twilio_error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
            r.headers_mut()
                .insert(header::RETRY_AFTER, "1".parse().unwrap());
            r
        }
        "RM500" if n <= 2 => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        "RMslow" if n == 1 => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            axum::Json(json!({"sid": sid})).into_response()
        }
        "RM503" => twilio_error(
            StatusCode::SERVICE_UNAVAILABLE,
            20503,
            "Service unavailable",
        ),
        _ => axum::Json(json!({"sid": sid, "status": "completed", "unique_name": "daily"}))
            .into_response(),
    }
}

async fn recording(State(m): S, Path(sid): Path<String>) -> Response {
    let now = m.hit("in-flight") - m.hits("done");
    {
        let mut hits = m.hits.lock().unwrap();
        let max = hits.entry("max-in-flight".into()).or_default();
        *max = (*max).max(now);
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    m.hit("done");
    match sid.as_str() {
        "RTprocessing" => axum::Json(json!({"sid": sid, "status": "processing"})).into_response(),
        _ => twilio_error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        ),
    }
}

async fn media(
    State(m): S,
    Path(sid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    m.hit("media");
    assert_eq!(q.get("Ttl").map(String::as_str), Some("3600"));
    let generation = m.media_generation.fetch_add(1, Ordering::SeqCst) + 1;
    match sid.as_str() {
        "RTprocessing" | "RTgone" => twilio_error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        ),
        "RTslow" => {
            tokio::time::sleep(Duration::from_millis(100)).await;
            redirect(
                format!("https://bucket.example/RTslow?X-Amz-Signature=gen{generation}"),
                true,
            )
        }
        "RTlocation" => redirect(
            format!("https://bucket.example/loc?X-Amz-Signature=gen{generation}"),
            false,
        ),
        // Relative to the API: lands on this server's /s3 route.
        _ => redirect(format!("/s3/{sid}?X-Amz-Signature=gen{generation}"), true),
    }
}

fn redirect(to: String, body: bool) -> Response {
    let json = if body {
        json!({"redirect_to": to})
    } else {
        json!({})
    };
    let mut r = (StatusCode::FOUND, axum::Json(json)).into_response();
    r.headers_mut()
        .insert(header::LOCATION, to.parse().unwrap());
    r
}

/// `bytes=A-B`, or `bytes=-N` (the last N bytes of `len`; `RTnosuffix` ignores those).
fn parse_range(headers: &HeaderMap, sid: &str, len: usize) -> Option<(usize, usize)> {
    let v = headers.get(header::RANGE)?.to_str().ok()?;
    let (a, b) = v.strip_prefix("bytes=")?.split_once('-')?;
    if a.is_empty() && sid != "RTnosuffix" {
        return Some((len.saturating_sub(b.parse().ok()?), len - 1));
    }
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The storage stand-in. Behaviour by SID: see the module doc.
async fn storage(
    State(m): S,
    Path(sid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let n = m.hit(&format!("s3/{sid}"));
    let data = object();
    let len = data.len();
    let sig = q.get("X-Amz-Signature").cloned().unwrap_or_default();
    if sid == "RTexpired" && sig == "gen1" {
        return (
            StatusCode::FORBIDDEN,
            "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
        )
            .into_response();
    }
    if sid == "RT5xx" && n <= 2 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "<Error><Code>SlowDown</Code></Error>",
        )
            .into_response();
    }
    if sid == "RTnokey" {
        return (
            StatusCode::NOT_FOUND,
            "<Error><Code>NoSuchKey</Code></Error>",
        )
            .into_response();
    }
    let envelope = [
        ("x-amz-meta-x-amz-key", "a2V5"),
        ("x-amz-meta-x-amz-iv", "aXY="),
        ("X-Amz-Meta-X-Amz-Unencrypted-Content-Length", "99990"),
    ];
    if let Some(tag) = headers.get(header::IF_MATCH) {
        let want = if sid == "RTchanged" {
            "\"v2\""
        } else {
            "\"v1\""
        };
        if tag != want {
            return StatusCode::PRECONDITION_FAILED.into_response();
        }
    }
    let mut builder = Response::builder().header(header::ETAG, "\"v1\"");
    for (k, v) in envelope {
        builder = builder.header(k, v);
    }
    let range = parse_range(&headers, &sid, len);
    if sid == "RTignorecut" && n == 1 {
        let stream = futures_util::stream::iter(vec![
            Ok::<Bytes, std::io::Error>(Bytes::from(data[..len / 2].to_vec())),
            Err(std::io::Error::other("cut")),
        ])
        .then(|item| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            item
        });
        return builder
            .status(StatusCode::OK)
            .header(header::CONTENT_LENGTH, len)
            .body(Body::from_stream(stream))
            .unwrap();
    }
    if sid.starts_with("RTignore") || range.is_none() {
        return builder
            .status(StatusCode::OK)
            .header(header::CONTENT_LENGTH, len)
            .body(Body::from(data))
            .unwrap();
    }
    let (a, b) = range.unwrap();
    m.hit(&format!("s3/{sid} from {a}"));
    if a >= len {
        return builder
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(header::CONTENT_RANGE, format!("bytes */{len}"))
            .body(Body::empty())
            .unwrap();
    }
    let b = b.min(len - 1);
    let slice = Bytes::copy_from_slice(&data[a..=b]);
    let builder = builder
        .status(StatusCode::PARTIAL_CONTENT)
        .header(header::CONTENT_RANGE, format!("bytes {a}-{b}/{len}"))
        .header(header::CONTENT_LENGTH, b - a + 1);
    if (sid == "RTcut" && n <= 2) || (sid == "RTchanged" && n == 1) {
        // Promise the whole range, send a third of it, then fail the stream: the
        // connection is cut mid-body.
        let part = slice.slice(..slice.len() / 3);
        // The pause lets the head and the first part reach the client before the cut.
        let stream = futures_util::stream::iter(vec![
            Ok::<Bytes, std::io::Error>(part),
            Err(std::io::Error::other("cut")),
        ])
        .then(|item| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            item
        });
        return builder.body(Body::from_stream(stream)).unwrap();
    }
    builder.body(Body::from(slice)).unwrap()
}

async fn start() -> (String, Arc<Mock>) {
    let mock = Arc::new(Mock::default());
    let app = Router::new()
        .route("/v1/Recordings", get(recordings))
        .route("/v1/Recordings/{sid}", get(recording))
        .route("/v1/Recordings/{sid}/Media", get(media))
        .route("/v1/Compositions/{sid}/Media", get(media))
        .route("/v1/Rooms", get(looping_rooms))
        .route("/v1/Rooms/{sid}", get(flaky_room))
        .route("/s3/{sid}", get(storage))
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), mock)
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
        total_budget: Duration::from_secs(5),
        ..RetryPolicy::default()
    }
}

fn client_with(base: &str, secret: &str) -> Arc<TwilioClient> {
    let creds = Credentials::api_key(Some("AC1".into()), "SK1", Zeroizing::new(secret.into()));
    Arc::new(
        TwilioClient::new(ClientConfig {
            api_url: base.to_string(),
            retry: fast_retry(),
            ..ClientConfig::new(creds)
        })
        .unwrap(),
    )
}

fn client(base: &str) -> Arc<TwilioClient> {
    client_with(base, SECRET)
}

#[tokio::test]
async fn lists_three_pages_through_next_page_url() {
    let (base, mock) = start().await;
    let c = client(&base);
    let filter = RecordingFilter {
        status: Some("completed".into()),
        ..Default::default()
    };
    let all = c.recordings(&filter).await.unwrap();
    assert_eq!(all.len(), 9);
    assert_eq!(mock.hits("recordings"), 3);
    assert_eq!(all[0].sid, "RT00");
    assert_eq!(all[8].sid, "RT22");
    assert!(all[0].codec_is("opus"));
    assert_eq!(all[0].room(), Some("RM1"));
    assert!(all[0].created().is_some());

    // Page at a time.
    let mut pager = c.recording_pages(&filter).unwrap();
    let mut sizes = Vec::new();
    while let Some(page) = pager.next_page().await.unwrap() {
        sizes.push(page.len());
    }
    assert_eq!(sizes, [3, 3, 3]);
}

#[tokio::test]
async fn a_repeating_next_page_url_stops_the_listing() {
    let (base, mock) = start().await;
    let err = client(&base)
        .rooms(&RoomFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Paging { .. }), "{err}");
    assert!(err.to_string().contains("twice"), "{err}");
    assert_eq!(mock.hits("rooms"), 2);
}

#[tokio::test]
async fn unauthorized_says_which_variables_to_check() {
    let (base, _mock) = start().await;
    let err = client_with(&base, "wrong")
        .recordings(&RecordingFilter::default())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "Twilio rejected the credentials (20003): check TWILIO_ACCOUNT_SID / TWILIO_API_KEY"
        ),
        "{msg}"
    );
    assert!(msg.contains("(user SK1)"), "{msg}");
    assert!(!msg.contains("wrong") && !msg.contains(SECRET), "{msg}");
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let (base, mock) = start().await;
    let t = Instant::now();
    let room = client(&base).room("RM429").await.unwrap();
    assert_eq!(room.unique_name.as_deref(), Some("daily"));
    assert_eq!(mock.hits("RM429"), 2);
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
}

#[tokio::test]
async fn retries_5xx_then_succeeds_or_gives_up() {
    let (base, mock) = start().await;
    let c = client(&base);
    c.room("RM500").await.unwrap();
    assert_eq!(mock.hits("RM500"), 3);

    let err = c.room("RM503").await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::RetriesExhausted { attempts: 4, .. }),
        "{msg}"
    );
    assert!(msg.contains("after 4 attempts"), "{msg}");
    assert!(msg.contains("Service unavailable"), "{msg}");
    assert_eq!(mock.hits("RM503"), 4);
}

#[tokio::test]
async fn media_redirect_is_read_not_followed_and_cached() {
    let (base, mock) = start().await;
    let c = client(&base);
    let media = MediaRef::recording("RTslow");
    // Concurrent callers share one /Media request.
    let (a, b, d) = tokio::join!(
        c.media_url(&media),
        c.media_url(&media),
        c.media_url(&media)
    );
    let (a, b, d) = (a.unwrap(), b.unwrap(), d.unwrap());
    assert_eq!(mock.hits("media"), 1);
    assert_eq!(
        a.url().as_str(),
        "https://bucket.example/RTslow?X-Amz-Signature=gen1"
    );
    assert_eq!(a, b);
    assert_eq!(a, d);
    assert!(!format!("{a} {a:?}").contains("gen1"));
    // Cached, until invalidated.
    c.media_url(&media).await.unwrap();
    assert_eq!(mock.hits("media"), 1);
    c.invalidate("RTslow");
    let again = c.media_url(&media).await.unwrap();
    assert_eq!(mock.hits("media"), 2);
    assert!(again.url().as_str().ends_with("gen2"));

    // Only a Location header.
    let loc = c
        .media_url(&MediaRef::composition("RTlocation"))
        .await
        .unwrap();
    assert!(
        loc.url()
            .as_str()
            .starts_with("https://bucket.example/loc?")
    );
}

#[tokio::test]
async fn media_404_says_why() {
    let (base, _mock) = start().await;
    let c = client(&base);
    let err = c
        .media_url(&MediaRef::recording("RTprocessing"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "RTprocessing has no media available (status processing)"
    );
    let err = c
        .media_url(&MediaRef::recording("RTgone"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "RTgone has no media available (not completed, or deleted)"
    );
}

async fn read(
    base: &str,
    sid: &str,
    start: u64,
    end: u64,
) -> Result<twilio_media_fs::object::Fetched, ObjectError> {
    let objects = ObjectClient::new(client(base));
    objects
        .get_range(&MediaRef::recording(sid), start, end)
        .await
}

#[tokio::test]
async fn ranged_get_206() {
    let (base, mock) = start().await;
    let f = read(&base, "RTranged", 1000, 5000).await.unwrap();
    assert_eq!(&f.data[..], &object()[1000..5000]);
    assert_eq!(f.total_len, OBJECT_LEN as u64);
    let h: HashMap<_, _> = f.headers.into_iter().collect();
    assert_eq!(
        h.get("x-amz-meta-x-amz-key").map(String::as_str),
        Some("a2V5")
    );
    assert_eq!(
        h.get("x-amz-meta-x-amz-unencrypted-content-length")
            .map(String::as_str),
        Some("99990")
    );
    assert_eq!(mock.hits("s3/RTranged"), 1);

    // Past the end: only what there is.
    let f = read(&base, "RTranged", 99_000, 200_000).await.unwrap();
    assert_eq!(&f.data[..], &object()[99_000..]);
    // Empty range: no data, but the length and headers.
    let f = read(&base, "RTranged", 10, 10).await.unwrap();
    assert!(f.data.is_empty());
    assert_eq!(f.total_len, OBJECT_LEN as u64);
    assert!(!f.headers.is_empty());
}

/// The last bytes of an object, in one GET whose answer must be exactly them: anything
/// else is an error at once, with no retry, no new URL and no body read, since the reader
/// that asks for them fetches them the usual way instead.
#[tokio::test]
async fn the_last_bytes_come_in_one_get_or_not_at_all() {
    let (base, mock) = start().await;
    let objects = ObjectClient::new(client(&base));
    let suffix = |sid: &'static str, len| {
        let objects = objects.clone();
        async move { objects.get_suffix(&MediaRef::recording(sid), len).await }
    };
    // RTexpired first: only the first URL /Media gives is refused.
    for (sid, why) in [
        ("RTexpired", "HTTP 403"),
        ("RTnosuffix", "HTTP 200"),
        ("RTignore", "HTTP 200"),
        ("RT5xx", "HTTP 503"),
        ("RTnokey", "HTTP 404"),
        ("RTcut", "request for RTcut failed"),
    ] {
        let e = suffix(sid, 32).await.unwrap_err().to_string();
        assert!(e.contains(why), "{sid}: {e}");
        assert!(!e.contains("X-Amz-Signature"), "{e}");
        assert_eq!(mock.hits(&format!("s3/{sid}")), 1, "{sid}: one GET");
    }
    assert_eq!(mock.hits("media"), 6, "one /Media per SID, none again");

    let f = suffix("RTranged", 32).await.unwrap();
    assert_eq!(&f.data[..], &object()[OBJECT_LEN - 32..]);
    assert_eq!(f.total_len, OBJECT_LEN as u64);
    let h: HashMap<_, _> = f.headers.into_iter().collect();
    assert_eq!(h.get("etag").map(String::as_str), Some("\"v1\""));
    assert_eq!(
        h.get("x-amz-meta-x-amz-iv").map(String::as_str),
        Some("aXY=")
    );
    // More than the object: all of it.
    let f = suffix("RTranged", 1 << 20).await.unwrap();
    assert_eq!(&f.data[..], &object()[..]);
    assert_eq!(mock.hits("s3/RTranged"), 2);
    let stats = objects.stats().snapshot();
    assert_eq!(
        (stats.fetches, stats.fetch_errors),
        (2, 0),
        "failures are not fetches"
    );
}

#[tokio::test]
async fn range_ignored_200_skips_to_start() {
    let (base, _mock) = start().await;
    let f = read(&base, "RTignore", 12_345, 23_456).await.unwrap();
    assert_eq!(&f.data[..], &object()[12_345..23_456]);
    assert_eq!(f.total_len, OBJECT_LEN as u64);

    // Cut at half the object, the range ignored again on the resume: skip, then read on.
    let (base, mock) = start().await;
    let f = read(&base, "RTignorecut", 40_000, 70_000).await.unwrap();
    assert_eq!(&f.data[..], &object()[40_000..70_000]);
    assert_eq!(mock.hits("s3/RTignorecut"), 2);
}

#[tokio::test]
async fn range_not_satisfiable_416() {
    let (base, _mock) = start().await;
    let err = read(&base, "RTranged", 200_000, 200_100).await.unwrap_err();
    assert!(
        matches!(
            err,
            ObjectError::OutOfRange {
                total: Some(100_000),
                start: 200_000,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("only 100000 bytes long"), "{err}");

    // Exactly at the end: end of file, not an error.
    let f = read(&base, "RTranged", 100_000, 100_100).await.unwrap();
    assert!(f.data.is_empty());
    assert_eq!(f.total_len, 100_000);
    // A server that ignores ranges: the same answers.
    let err = read(&base, "RTignore", 200_000, 200_100).await.unwrap_err();
    assert!(matches!(err, ObjectError::OutOfRange { .. }), "{err}");
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = client(&base).room("RM1").await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::RetriesExhausted { attempts: 4, .. }),
        "{msg}"
    );
    assert!(msg.contains("cannot connect"), "{msg}");
}

#[test]
fn futures_are_send() {
    fn send<T: Send>(_: T) {}
    let creds = Credentials::api_key(None, "SK1", Zeroizing::new(SECRET.into()));
    let c = TwilioClient::new(ClientConfig::new(creds)).unwrap();
    let filter = RecordingFilter::default();
    let mut pager = c.recording_pages(&filter).unwrap();
    send(pager.next_page());
    send(c.recordings(&filter));
    send(c.media_url(&MediaRef::recording("RT1")));
    let objects = ObjectClient::new(Arc::new(c));
    send(objects.get_range(&MediaRef::recording("RT1"), 0, 1));
}

#[tokio::test]
async fn expired_url_403_is_resolved_again() {
    let (base, mock) = start().await;
    let f = read(&base, "RTexpired", 0, 4096).await.unwrap();
    assert_eq!(&f.data[..], &object()[..4096]);
    assert_eq!(mock.hits("media"), 2);
    assert_eq!(mock.hits("s3/RTexpired"), 2);
}

#[tokio::test]
async fn storage_5xx_retried_and_404_reported() {
    let (base, mock) = start().await;
    let f = read(&base, "RT5xx", 0, 10).await.unwrap();
    assert_eq!(&f.data[..], &object()[..10]);
    assert_eq!(mock.hits("s3/RT5xx"), 3);
    let err = read(&base, "RTnokey", 0, 10).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("HTTP 404") && msg.contains("NoSuchKey"),
        "{msg}"
    );
    assert!(!msg.contains("X-Amz-Signature"), "{msg}");
}

#[tokio::test]
async fn body_cut_short_resumes_with_exact_bytes() {
    let (base, mock) = start().await;
    // Through the trait, as later code will use it.
    let source: Arc<dyn ObjectSource> = Arc::new(ObjectClient::new(client(&base)));
    let f = source
        .get_range(&MediaRef::recording("RTcut"), 777, 90_001)
        .await
        .unwrap();
    assert_eq!(f.data.len(), 90_001 - 777);
    assert_eq!(&f.data[..], &object()[777..90_001]);
    assert_eq!(mock.hits("s3/RTcut"), 3, "two cut bodies, then the rest");
    // Each resume starts where the previous body stopped (a third of what was asked).
    let first = 777 + (90_001 - 777) / 3;
    let second = first + (90_001 - first) / 3;
    assert_eq!(mock.hits("s3/RTcut from 777"), 1);
    assert_eq!(mock.hits(&format!("s3/RTcut from {first}")), 1);
    assert_eq!(mock.hits(&format!("s3/RTcut from {second}")), 1);
}

#[tokio::test]
async fn timeouts_are_retried() {
    let (base, mock) = start().await;
    let creds = Credentials::api_key(None, "SK1", Zeroizing::new(SECRET.into()));
    let c = TwilioClient::new(ClientConfig {
        api_url: base,
        retry: fast_retry(),
        request_timeout: Duration::from_millis(300),
        ..ClientConfig::new(creds)
    })
    .unwrap();
    let t = Instant::now();
    c.room("RMslow").await.unwrap();
    assert_eq!(mock.hits("RMslow"), 2);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[tokio::test]
async fn api_requests_are_limited_by_the_semaphore() {
    let (base, mock) = start().await;
    let creds = Credentials::api_key(None, "SK1", Zeroizing::new(SECRET.into()));
    let c = TwilioClient::new(ClientConfig {
        api_url: base,
        retry: fast_retry(),
        max_concurrent: 2,
        ..ClientConfig::new(creds)
    })
    .unwrap();
    let sids: Vec<String> = (0..8).map(|i| format!("RTprocessing{i}")).collect();
    let all = futures_util::future::join_all(sids.iter().map(|s| c.recording(s))).await;
    assert_eq!(all.len(), 8);
    assert_eq!(mock.hits("in-flight"), 8);
    assert_eq!(mock.hits("max-in-flight"), 2);
}

#[tokio::test]
async fn a_resumed_read_refuses_a_changed_object() {
    let (base, mock) = start().await;
    let result = read(&base, "RTchanged", 0, 30_000).await;
    assert_eq!(mock.hits("s3/RTchanged"), 2);
    let err = result.map(|f| f.data.len()).unwrap_err();
    assert!(
        err.to_string().contains("changed while being read"),
        "{err}"
    );
}
