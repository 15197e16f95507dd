//! [`TwilioClient`]: authenticated GETs on the Video API, with paging, retries, error
//! mapping and `/Media` resolution.
//!
//! Every API request goes through [`TwilioClient::get`]: it takes a permit of the
//! concurrency semaphore (Twilio counts concurrent requests per account and answers 429
//! beyond the limit), reads the whole body (at most [`MAX_API_BODY`]), and retries connect errors, timeouts, 5xx and
//! 429 on the shared [`RetryPolicy`] (in [`crate::retry::run`], like storage GETs).
//! Listings follow `meta.next_page_url`, moved onto the configured API origin so the
//! credentials only ever go where `--api-url` points, and stop with an error if a page
//! URL repeats or there are absurdly many pages.
//!
//! Recordings and compositions take one path per operation, keyed by [`MediaKind`]:
//! [`TwilioClient::media_pages`], [`TwilioClient::probe`], [`TwilioClient::resource`],
//! [`TwilioClient::settings`], [`TwilioClient::media_url`]. The typed calls (`recordings`, `composition`, …) are
//! thin wrappers for callers that want the resource's own type or the filters only
//! recordings take; they build their paths from the kind too.
//!
//! A `/Media` answer is read, never followed, and its URL is taken only if
//! [`media_url_allowed`] says so: under an `https` API, `https` URLs only.
//!
//! This module must not follow redirects (the `/Media` redirect is read, not followed,
//! and the same no-redirect client serves the object module), nor put credentials or
//! signed URLs in messages or logs.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::de::StrRead;
use tokio::sync::Semaphore;

use super::credentials::Credentials;
use super::error::{Error, Result, describe_reqwest, redact_url};
use super::kind::{Media, MediaFilter, MediaKind};
use super::media::{MEDIA_TTL, MediaRef, MediaUrl, UrlCache, media_url_allowed, signed_lifetime};
use super::types::{
    Composition, CompositionSettings, PublicKeyCredential, Recording, RecordingSettings, Room,
    StorageSettings, media_redirect_target, parse_page_with, tolerant_json,
};
use crate::bounded::Bounded;
use crate::retry::{self, Backoff, Outcome, Retried, RetryPolicy, parse_retry_after};

/// Twilio's Video API.
pub const DEFAULT_API_URL: &str = "https://video.twilio.com";
/// The environment variable (and `--api-url` flag) that points the client elsewhere,
/// e.g. at the emulator.
pub const API_URL_ENV: &str = "TWILIO_MEDIA_FS_API_URL";
/// Twilio's Accounts API (public key credentials).
pub const DEFAULT_ACCOUNTS_URL: &str = "https://accounts.twilio.com";
/// The environment variable (and `doctor --accounts-url` flag) that points the Accounts
/// API elsewhere.
pub const ACCOUNTS_URL_ENV: &str = "TWILIO_MEDIA_FS_ACCOUNTS_URL";
/// The environment variable (and `--voice-api-url` flag) that points the Voice API
/// (call recordings, `api.twilio.com`) elsewhere.
pub const VOICE_URL_ENV: &str = "TWILIO_MEDIA_FS_VOICE_API_URL";
/// Items per list page: the most the API allows.
pub const PAGE_SIZE: u32 = 100;
/// A listing with more pages than this (a million items) is taken to be a loop.
pub const MAX_PAGES: usize = 10_000;
/// The most of one API answer read into memory: 16 MiB. A page of [`PAGE_SIZE`] items
/// is some 100 KiB; a longer answer (an endless body from a broken or hostile server)
/// fails its request instead of growing the process until allocation fails.
pub const MAX_API_BODY: usize = 16 << 20;

/// How to reach the API.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL, `https://video.twilio.com` unless pointed at an emulator.
    pub api_url: String,
    /// The Accounts API; `None`: beside `api_url` ([`accounts_url_for`]).
    pub accounts_url: Option<String>,
    /// The Voice API of 2010-04-01 (call recordings); `None`: beside `api_url`
    /// ([`voice_url_for`]).
    pub voice_url: Option<String>,
    /// Who we are.
    pub credentials: Credentials,
    /// Most API requests in flight at once.
    pub max_concurrent: usize,
    /// Retries of API requests (and, through [`TwilioClient::retry_policy`], of storage GETs).
    pub retry: RetryPolicy,
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for a whole request, body included.
    pub request_timeout: Duration,
}

impl ClientConfig {
    /// The defaults: Twilio's URL, 8 concurrent requests, the default retry policy,
    /// 10 s to connect, 30 s per request.
    pub fn new(credentials: Credentials) -> Self {
        Self {
            api_url: DEFAULT_API_URL.to_string(),
            accounts_url: None,
            voice_url: None,
            credentials,
            max_concurrent: 8,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }

    /// The defaults, with credentials from the environment or config file
    /// ([`Credentials::from_env`]) and the API URL from `TWILIO_MEDIA_FS_API_URL` when set.
    pub fn from_env() -> Result<Self> {
        let mut config = Self::new(Credentials::from_env()?);
        if let Ok(url) = std::env::var(API_URL_ENV)
            && !url.trim().is_empty()
        {
            config.api_url = url.trim().to_string();
        }
        if let Ok(url) = std::env::var(VOICE_URL_ENV)
            && !url.trim().is_empty()
        {
            config.voice_url = Some(url.trim().to_string());
        }
        Ok(config)
    }
}

/// Where the Accounts API is, given the Video API's URL: Twilio's hosts pair up
/// (`video.twilio.com` with `accounts.twilio.com`, `video.dublin.ie1.twilio.com` with
/// `accounts.dublin.ie1.twilio.com`); any other host (an emulator, a proxy) is taken to
/// serve both.
pub fn accounts_url_for(api_url: &str) -> String {
    let Ok(mut url) = Url::parse(api_url.trim()) else {
        return api_url.to_owned();
    };
    let accounts_host = url
        .host_str()
        .and_then(|h| h.strip_prefix("video."))
        .map(|rest| format!("accounts.{rest}"));
    if let Some(host) = accounts_host
        && url.set_host(Some(&host)).is_ok()
    {
        url.set_path("");
        return url.as_str().trim_end_matches('/').to_owned();
    }
    api_url.trim().trim_end_matches('/').to_owned()
}

/// Where the Voice API (2010-04-01, call recordings) is, given the Video API's URL:
/// Twilio's `video.X.twilio.com` pairs with `api.X.twilio.com` (`api.twilio.com`); any
/// other URL (an emulator, a proxy) is taken to serve both, path prefix included.
pub fn voice_url_for(api_url: &str) -> String {
    let Ok(mut url) = Url::parse(api_url.trim()) else {
        return api_url.to_owned();
    };
    // Only Twilio's own hosts pair up: the credentials never go to a host derived from
    // someone else's (a proxy's `video.corp` is not evidence of an `api.corp`).
    let voice_host = url
        .host_str()
        .filter(|h| h.ends_with(".twilio.com"))
        .and_then(|h| h.strip_prefix("video."))
        .map(|rest| format!("api.{rest}"));
    if let Some(host) = voice_host
        && url.set_host(Some(&host)).is_ok()
    {
        url.set_path("");
        return url.as_str().trim_end_matches('/').to_owned();
    }
    api_url.trim().trim_end_matches('/').to_owned()
}

/// Filters of `GET /v1/Recordings`, those of [`MediaFilter`] and the two only
/// recordings take. Dates are RFC 3339 strings.
#[derive(Debug, Clone, Default)]
pub struct RecordingFilter {
    /// `processing`, `completed`, `deleted`.
    pub status: Option<String>,
    /// A room or participant SID (`GroupingSid`).
    pub grouping_sid: Option<String>,
    /// A track SID (`SourceSid`).
    pub source_sid: Option<String>,
    /// `audio` or `video`.
    pub media_type: Option<String>,
    /// `DateCreatedAfter`.
    pub date_created_after: Option<String>,
    /// `DateCreatedBefore`.
    pub date_created_before: Option<String>,
}

impl RecordingFilter {
    /// The query: [`MediaKind::query`], then `SourceSid` and `MediaType`.
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = MediaKind::Recording.query(&MediaFilter {
            status: self.status.clone(),
            room: self.grouping_sid.clone(),
            date_created_after: self.date_created_after.clone(),
            date_created_before: self.date_created_before.clone(),
        });
        push(&mut q, "SourceSid", &self.source_sid);
        push(&mut q, "MediaType", &self.media_type);
        q
    }
}

/// Filters of `GET /v1/Compositions`.
#[derive(Debug, Clone, Default)]
pub struct CompositionFilter {
    /// `enqueued`, `processing`, `completed`, `deleted`, `failed`.
    pub status: Option<String>,
    /// `RoomSid`.
    pub room_sid: Option<String>,
    /// `DateCreatedAfter`.
    pub date_created_after: Option<String>,
    /// `DateCreatedBefore`.
    pub date_created_before: Option<String>,
}

impl From<&CompositionFilter> for MediaFilter {
    fn from(f: &CompositionFilter) -> Self {
        MediaFilter {
            status: f.status.clone(),
            room: f.room_sid.clone(),
            date_created_after: f.date_created_after.clone(),
            date_created_before: f.date_created_before.clone(),
        }
    }
}

/// Filters of `GET /v1/Rooms`. Twilio lists only `in-progress` rooms unless a status is
/// given: ask for `completed` to see past rooms.
#[derive(Debug, Clone, Default)]
pub struct RoomFilter {
    /// `in-progress`, `completed`, `failed`.
    pub status: Option<String>,
    /// `UniqueName`.
    pub unique_name: Option<String>,
    /// `DateCreatedAfter`.
    pub date_created_after: Option<String>,
    /// `DateCreatedBefore`.
    pub date_created_before: Option<String>,
}

fn push(q: &mut Vec<(&'static str, String)>, name: &'static str, v: &Option<String>) {
    if let Some(v) = v {
        q.push((name, v.clone()));
    }
}

/// A complete answer: status, headers, body.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// How long API retries go on before a warning says so.
const STILL_RETRYING_AFTER: Duration = Duration::from_secs(3);

/// The Twilio Video REST client. Cheap to share behind an `Arc`.
pub struct TwilioClient {
    base: Url,
    accounts: Url,
    voice: Url,
    http: reqwest::Client,
    credentials: Credentials,
    permits: Semaphore,
    retry: RetryPolicy,
    request_timeout: Duration,
    urls: UrlCache,
}

impl std::fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioClient")
            .field("base", &self.base.as_str())
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl TwilioClient {
    /// Builds the client (one connection pool, no redirects followed).
    pub fn new(config: ClientConfig) -> Result<Self> {
        let parse = |url: &str, what: &str| {
            Url::parse(url.trim_end_matches('/'))
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "the {what} URL {} is not an http(s) URL",
                        redact_url(url)
                    ))
                })
        };
        let base = parse(&config.api_url, "API")?;
        let accounts = match &config.accounts_url {
            Some(url) => parse(url, "Accounts API")?,
            None => parse(&accounts_url_for(&config.api_url), "Accounts API")?,
        };
        let voice = match &config.voice_url {
            Some(url) => parse(url, "Voice API")?,
            None => parse(&voice_url_for(&config.api_url), "Voice API")?,
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("twilio-media-fs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Error::Invalid(format!(
                    "cannot build the HTTP client: {}",
                    describe_reqwest(&e)
                ))
            })?;
        Ok(Self {
            base,
            accounts,
            voice,
            http,
            credentials: config.credentials,
            permits: Semaphore::new(config.max_concurrent.max(1)),
            retry: config.retry,
            request_timeout: config.request_timeout,
            urls: UrlCache::default(),
        })
    }

    /// The shared HTTP client (keep-alive pool, no redirects), for storage GETs.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The retry policy, for storage GETs too.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// The longest a read that goes through this client should wait for an answer: the
    /// retry budget, plus one request timeout (the last attempt starts before the budget
    /// ends), plus a second for the rest. The mount fails a read with EIO past it.
    pub fn answer_bound(&self) -> Duration {
        self.retry.total_budget + self.request_timeout + Duration::from_secs(1)
    }

    /// The API base URL.
    pub fn api_url(&self) -> &Url {
        &self.base
    }

    /// The credentials in use (secrets redacted in `Debug`).
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    // ---- listings ------------------------------------------------------------------

    /// All recordings or compositions matching `filter`.
    pub async fn media(&self, kind: MediaKind, filter: &MediaFilter) -> Result<Vec<Media>> {
        self.media_pages(kind, filter)?.collect_all().await
    }

    /// Recordings, compositions or call recordings one page at a time.
    pub fn media_pages(&self, kind: MediaKind, filter: &MediaFilter) -> Result<Pager<'_, Media>> {
        Ok(self.pager_on(
            self.base_for(kind),
            &kind.list_path(self.account_for(kind)?),
            kind.query(filter),
            kind.list_key(),
            Box::new(move |entry| kind.decode(entry)),
        ))
    }

    /// The Voice API's URL (`api.twilio.com`, or `--voice-api-url`).
    pub fn voice_url(&self) -> &Url {
        &self.voice
    }

    /// Where `kind`'s API is: the Video API, or the Voice API.
    fn base_for(&self, kind: MediaKind) -> &Url {
        if kind.is_video() {
            &self.base
        } else {
            &self.voice
        }
    }

    /// The account SID that `kind`'s paths need: none for the Video kinds; the Voice API
    /// names the account in every path.
    fn account_for(&self, kind: MediaKind) -> Result<&str> {
        if kind.is_video() {
            return Ok("");
        }
        self.credentials.account_sid().ok_or_else(|| {
            Error::Config(
                "call recordings are listed under the account: set TWILIO_ACCOUNT_SID \
                 (or account_sid in the config file) beside the API key"
                    .into(),
            )
        })
    }

    /// Asks for one page of one recording or composition (`PageSize=1`): the cheapest
    /// request that proves these credentials may read `kind`. What a command that reads
    /// media asks first, so that it needs no permission beyond the resources it reads (a
    /// restricted API key may have no other). Only the answer's status counts: a page
    /// that does not parse is the listing's trouble, met and reported where it is
    /// listed (a mount's directory answers EIO), not a reason to refuse the credentials.
    pub async fn probe(&self, kind: MediaKind) -> Result<()> {
        let path = kind.list_path(self.account_for(kind)?);
        let url = endpoint_on(self.base_for(kind), &path, &[("PageSize", "1".to_owned())]);
        self.get_ok(&url, &path).await.map(drop)
    }

    /// All recordings matching `filter`, typed (with the filters only recordings take).
    pub async fn recordings(&self, filter: &RecordingFilter) -> Result<Vec<Recording>> {
        self.recording_pages(filter)?.collect_all().await
    }

    /// [`Self::recordings`] one page at a time.
    pub fn recording_pages(&self, filter: &RecordingFilter) -> Result<Pager<'_, Recording>> {
        let kind = MediaKind::Recording;
        Ok(self.typed_pager(&kind.list_path(""), filter.query(), kind.plural()))
    }

    /// All compositions matching `filter`, typed.
    pub async fn compositions(&self, filter: &CompositionFilter) -> Result<Vec<Composition>> {
        let kind = MediaKind::Composition;
        let query = kind.query(&filter.into());
        self.typed_pager(&kind.list_path(""), query, kind.plural())
            .collect_all()
            .await
    }

    /// All rooms matching `filter`.
    pub async fn rooms(&self, filter: &RoomFilter) -> Result<Vec<Room>> {
        self.room_pages(filter)?.collect_all().await
    }

    /// Rooms one page at a time.
    pub fn room_pages(&self, filter: &RoomFilter) -> Result<Pager<'_, Room>> {
        let mut q = Vec::new();
        push(&mut q, "Status", &filter.status);
        push(&mut q, "UniqueName", &filter.unique_name);
        push(&mut q, "DateCreatedAfter", &filter.date_created_after);
        push(&mut q, "DateCreatedBefore", &filter.date_created_before);
        Ok(self.typed_pager("/v1/Rooms", q, "rooms"))
    }

    /// All recordings of one room (`/v1/Rooms/{sid}/Recordings`).
    pub async fn room_recordings(&self, room_sid: &str) -> Result<Vec<Recording>> {
        self.room_recording_pages(room_sid)?.collect_all().await
    }

    /// A room's recordings one page at a time.
    pub fn room_recording_pages(&self, room_sid: &str) -> Result<Pager<'_, Recording>> {
        validate_sid(room_sid)?;
        Ok(self.typed_pager(
            &format!("/v1/Rooms/{room_sid}/Recordings"),
            Vec::new(),
            "recordings",
        ))
    }

    /// A listing of `T`s under `key` at `path`.
    fn typed_pager<T: DeserializeOwned + 'static>(
        &self,
        path: &str,
        query: Vec<(&'static str, String)>,
        key: &'static str,
    ) -> Pager<'_, T> {
        self.pager(path, query, key, Box::new(serde_json::from_value::<T>))
    }

    fn pager<T>(
        &self,
        path: &str,
        query: Vec<(&'static str, String)>,
        key: &'static str,
        decode: DecodeEntry<T>,
    ) -> Pager<'_, T> {
        self.pager_on(&self.base, path, query, key, decode)
    }

    /// A listing at `path` of the API at `base`.
    fn pager_on<'a, T>(
        &'a self,
        base: &'a Url,
        path: &str,
        mut query: Vec<(&'static str, String)>,
        key: &'static str,
        decode: DecodeEntry<T>,
    ) -> Pager<'a, T> {
        query.push(("PageSize", PAGE_SIZE.to_string()));
        let url = endpoint_on(base, path, &query);
        Pager {
            client: self,
            base,
            what: path.to_string(),
            key,
            decode,
            guard: PageGuard::new(url.as_str(), MAX_PAGES),
            next: Some(url),
        }
    }

    // ---- single resources ----------------------------------------------------------

    /// One recording or composition.
    pub async fn resource(&self, media: &MediaRef) -> Result<Media> {
        validate_sid(&media.sid)?;
        let path = media
            .kind
            .resource_path(self.account_for(media.kind)?, &media.sid);
        let url = endpoint_on(self.base_for(media.kind), &path, &[]);
        let answer = self.get_ok(&url, &path).await?;
        decode_with(&path, &answer.body, |body| media.kind.decode(body))
    }

    /// One recording, typed.
    pub async fn recording(&self, sid: &str) -> Result<Recording> {
        validate_sid(sid)?;
        self.get_json(&MediaKind::Recording.resource_path("", sid))
            .await
    }

    /// One composition, typed.
    pub async fn composition(&self, sid: &str) -> Result<Composition> {
        validate_sid(sid)?;
        self.get_json(&MediaKind::Composition.resource_path("", sid))
            .await
    }

    /// One room.
    pub async fn room(&self, sid: &str) -> Result<Room> {
        validate_sid(sid)?;
        self.get_json(&format!("/v1/Rooms/{sid}")).await
    }

    /// `RecordingSettings/Default` or `CompositionSettings/Default`: is encryption on,
    /// with which key.
    pub async fn settings(&self, kind: MediaKind) -> Result<StorageSettings> {
        let path = kind.settings_path().ok_or_else(|| {
            Error::Invalid(format!(
                "{} have no storage settings: each says its own encryption",
                kind.plural()
            ))
        })?;
        self.get_json(path).await
    }

    /// `RecordingSettings/Default`.
    pub async fn recording_settings(&self) -> Result<RecordingSettings> {
        self.settings(MediaKind::Recording).await
    }

    /// `CompositionSettings/Default`.
    pub async fn composition_settings(&self) -> Result<CompositionSettings> {
        self.settings(MediaKind::Composition).await
    }

    /// The public key credential `sid` (`CR…`), from the Accounts API: its name and
    /// dates (Twilio does not return the key itself).
    pub async fn public_key(&self, sid: &str) -> Result<PublicKeyCredential> {
        validate_sid(sid)?;
        let what = format!("/v1/Credentials/PublicKeys/{sid}");
        let mut url = self.accounts.clone();
        let prefix = self.accounts.path().trim_end_matches('/');
        url.set_path(&format!("{prefix}{what}"));
        let answer = self.get_ok(&url, &what).await?;
        decode(&what, &answer.body)
    }

    /// The Accounts API base URL.
    pub fn accounts_url(&self) -> &Url {
        &self.accounts
    }

    // ---- /Media --------------------------------------------------------------------

    /// The pre-signed storage URL of `media`, from the cache while it has more than a
    /// minute to live, else from `/Media?Ttl=3600`. Concurrent callers for one SID share
    /// one request.
    pub async fn media_url(&self, media: &MediaRef) -> Result<MediaUrl> {
        validate_sid(&media.sid)?;
        if let Some(url) = self.urls.fresh(&media.sid) {
            return Ok(url);
        }
        let lock = self.urls.resolving_lock(&media.sid);
        let _resolving = lock.lock().await;
        if let Some(url) = self.urls.fresh(&media.sid) {
            return Ok(url);
        }
        let url = self.resolve_media(media).await?;
        self.urls.store(&media.sid, url.clone());
        Ok(url)
    }

    /// Forgets the cached URL of `sid` (after a 403 from storage: it expired).
    pub fn invalidate(&self, sid: &str) {
        self.urls.invalidate(sid, None);
    }

    /// Forgets the cached URL of `sid` only if it is still `url`: many readers that hit
    /// the same expired URL cause one new `/Media` request, not one each.
    pub fn invalidate_url(&self, sid: &str, url: &MediaUrl) {
        self.urls.invalidate(sid, Some(url));
    }

    async fn resolve_media(&self, media: &MediaRef) -> Result<MediaUrl> {
        let what = media.media_path(self.account_for(media.kind)?);
        let query = match media.kind {
            MediaKind::Voice => Vec::new(),
            _ => vec![("Ttl", MEDIA_TTL.as_secs().to_string())],
        };
        let url = endpoint_on(self.base_for(media.kind), &what, &query);
        let asked_at = Instant::now();
        let answer = self.get(&url, &what).await?;
        let status = answer.status;
        if status == StatusCode::NOT_FOUND {
            let state = self.media_state(media).await;
            return Err(Error::NoMedia {
                sid: media.sid.clone(),
                state,
            });
        }
        if !(status.is_success() || status.is_redirection()) {
            return Err(api_error_for(
                &what,
                status,
                &answer.body,
                Some(&self.credentials),
            ));
        }
        let location = answer.headers.get(LOCATION).and_then(|v| v.to_str().ok());
        let target = media_target(&url, &what, status, &answer.body, location)?;
        tracing::debug!(sid = %media.sid, url = %redact_url(target.as_str()), "resolved media");
        let lifetime =
            signed_lifetime(&target, SystemTime::now()).map_or(MEDIA_TTL, |l| l.min(MEDIA_TTL));
        Ok(MediaUrl::new(target, asked_at + lifetime))
    }

    /// `status processing` (or whatever it is), when the resource says; else a guess.
    async fn media_state(&self, media: &MediaRef) -> String {
        let resource = self.resource(media).await.ok();
        match resource.as_ref().and_then(Media::status) {
            Some(s) => format!("status {s}"),
            None => "not completed, or deleted".to_string(),
        }
    }

    // ---- plumbing ------------------------------------------------------------------

    /// `base + path?query`, keeping any path prefix of the base URL.
    fn endpoint(&self, path: &str, query: &[(&str, String)]) -> Url {
        endpoint_on(&self.base, path, query)
    }

    /// Where a listing's next page is (`next_page_url`, or the Voice API's relative
    /// `next_page_uri`), moved onto the origin of `base`.
    fn next_url(&self, base: &Url, next: &str, what: &str) -> Result<Url> {
        let mut url = base.join(next).map_err(|e| Error::Paging {
            what: what.to_string(),
            detail: format!("next_page_url is not a URL ({e})"),
        })?;
        if url.origin() != base.origin() {
            // Twilio's pages name https://video.twilio.com; behind --api-url (an emulator,
            // a proxy) follow the path on the configured origin, and never send the
            // credentials to a host nobody configured.
            let _ = url.set_scheme(base.scheme());
            let _ = url.set_host(base.host_str());
            let _ = url.set_port(base.port());
        }
        Ok(url)
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = self.endpoint(path, &[]);
        let answer = self.get_ok(&url, path).await?;
        decode(path, &answer.body)
    }

    /// [`Self::get`], with error statuses turned into errors.
    async fn get_ok(&self, url: &Url, what: &str) -> Result<Answer> {
        let answer = self.get(url, what).await?;
        if answer.status.is_success() {
            Ok(answer)
        } else {
            Err(api_error_for(
                what,
                answer.status,
                &answer.body,
                Some(&self.credentials),
            ))
        }
    }

    /// One authenticated GET with retries. Returns whatever non-retryable answer came.
    async fn get(&self, url: &Url, what: &str) -> Result<Answer> {
        let mut get = ApiGet {
            client: self,
            url,
            what,
            warned: false,
        };
        retry::run(self.retry, &mut get).await
    }

    /// One attempt.
    async fn get_once(&self, url: &Url) -> std::result::Result<Answer, NoAnswer> {
        // The permit covers the body read: Twilio counts a request until it is answered.
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let response = self
            .http
            .get(url.clone())
            .basic_auth(self.credentials.username(), Some(self.credentials.secret()))
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| NoAnswer::Transport {
                detail: describe_reqwest(&e),
                retry: !e.is_builder(),
            })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = bounded_body(response, MAX_API_BODY).await?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// Why one GET brought no answer to use.
#[derive(Debug, PartialEq, Eq)]
enum NoAnswer {
    /// The connection or the body failed; `retry`: worth another try.
    Transport { detail: String, retry: bool },
    /// The body is longer than the bound: the server's fault, not the connection's.
    TooLarge(String),
}

/// The whole body of `response`, if it is at most `limit` bytes: a longer one (as its
/// `Content-Length` says, or as it streams in) fails the request, not retried, before
/// more than `limit` bytes are held.
async fn bounded_body(
    response: reqwest::Response,
    limit: usize,
) -> std::result::Result<Bytes, NoAnswer> {
    use futures_util::StreamExt;
    let too_large = || {
        NoAnswer::TooLarge(format!(
            "the answer is larger than {} MiB, the most read of one API answer",
            limit >> 20
        ))
    };
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Bounded::new(limit);
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| NoAnswer::Transport {
            detail: describe_reqwest(&e),
            retry: true,
        })?;
        body.push(&chunk);
        if body.over() {
            return Err(too_large());
        }
    }
    Ok(Bytes::from(body.into_bytes()))
}

/// One API GET as [`retry::run`] repeats it.
struct ApiGet<'a> {
    client: &'a TwilioClient,
    url: &'a Url,
    what: &'a str,
    /// The "still retrying" warning was given.
    warned: bool,
}

/// Why an [`ApiGet`] tries again.
struct ApiFailure {
    /// The error or status, as the user would see it.
    cause: String,
    /// A 429: Twilio pacing the account, which is no reason for a warning.
    throttled: bool,
}

impl Retried for ApiGet<'_> {
    type Output = Answer;
    type Error = Error;
    type Why = ApiFailure;

    async fn attempt(&mut self) -> Outcome<Answer, Error, ApiFailure> {
        let what = self.what;
        match self.client.get_once(self.url).await {
            Ok(a) if is_retryable(a.status) => {
                let retry_after = a
                    .headers
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                Outcome::Retry {
                    why: ApiFailure {
                        cause: api_error(what, a.status, &a.body).to_string(),
                        throttled: a.status == StatusCode::TOO_MANY_REQUESTS,
                    },
                    retry_after,
                    progressed: false,
                }
            }
            Ok(a) => {
                tracing::debug!(what, status = a.status.as_u16(), "twilio api");
                Outcome::Done(a)
            }
            Err(NoAnswer::TooLarge(detail)) => Outcome::Fail(Error::Decode {
                what: what.to_string(),
                detail,
            }),
            Err(NoAnswer::Transport {
                detail,
                retry: false,
            }) => Outcome::Fail(Error::Transport {
                what: what.to_string(),
                detail,
            }),
            Err(NoAnswer::Transport {
                detail: cause,
                retry: true,
            }) => Outcome::Retry {
                why: ApiFailure {
                    cause,
                    throttled: false,
                },
                retry_after: None,
                progressed: false,
            },
        }
    }

    fn retrying(&mut self, failure: &ApiFailure, delay: Duration, backoff: &Backoff) {
        let (what, cause) = (self.what, &failure.cause);
        tracing::debug!(what, %cause, ?delay, "retrying");
        // Retries are silent while they are short; a user staring at a command that
        // has not answered for seconds is told why. 429 is Twilio pacing a busy
        // account, not a fault: it stays at debug.
        if !self.warned && !failure.throttled && backoff.elapsed() >= STILL_RETRYING_AFTER {
            self.warned = true;
            tracing::warn!(
                "{what}: {cause}; still retrying, for up to {:.0} s in all (--retry-budget)",
                self.client.retry.total_budget.as_secs_f64()
            );
        }
    }

    fn exhausted(&mut self, failure: ApiFailure, backoff: &Backoff) -> Error {
        Error::RetriesExhausted {
            what: self.what.to_string(),
            attempts: backoff.failures(),
            elapsed: backoff.elapsed(),
            last: failure.cause,
        }
    }
}

/// 5xx and 429 are worth another try; nothing else is.
pub fn is_retryable(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// Parses a body, after [`tolerant_json`] has mended bytes and escapes that would fail
/// the whole document for one bad string.
fn decode<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T> {
    decode_with(what, body, |json| T::deserialize(json))
}

/// [`decode`], with the body read by `read` (e.g. [`MediaKind::decode`]).
fn decode_with<T>(
    what: &str,
    body: &[u8],
    read: impl FnOnce(&mut serde_json::Deserializer<StrRead<'_>>) -> serde_json::Result<T>,
) -> Result<T> {
    let text = tolerant_json(body);
    let mut json = serde_json::Deserializer::from_str(&text);
    read(&mut json)
        .and_then(|value| json.end().map(|()| value))
        .map_err(|e| Error::Decode {
            what: what.to_string(),
            detail: e.to_string(),
        })
}

/// Twilio's `{status, code, message, more_info}`, or the start of a non-JSON body.
pub fn api_error(what: &str, status: StatusCode, body: &[u8]) -> Error {
    api_error_for(what, status, body, None)
}

/// [`api_error`], naming the credentials (source and user, never the secret) on a 401.
fn api_error_for(
    what: &str,
    status: StatusCode,
    body: &[u8],
    credentials: Option<&Credentials>,
) -> Error {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Body {
        code: Option<u64>,
        message: Option<String>,
        more_info: Option<String>,
    }
    let parsed: Option<Body> = serde_json::from_slice(body).ok();
    if status == StatusCode::UNAUTHORIZED {
        let p = parsed.unwrap_or_default();
        return Error::Unauthorized {
            code: p.code.unwrap_or(20003),
            source_name: credentials.map_or("?".into(), |c| c.source().to_string()),
            username: credentials.map_or("?".into(), |c| c.username().to_string()),
            detail: p
                .message
                .map(|m| format!(": Twilio says {m:?}"))
                .unwrap_or_default(),
        };
    }
    let (code, message, more_info) = match parsed {
        Some(p) if p.code.is_some() || p.message.is_some() => (p.code, p.message, p.more_info),
        _ => (None, None, None),
    };
    let message = message.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text: String = text.trim().chars().take(200).collect();
        if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_string()
        } else {
            text
        }
    });
    Error::Api {
        what: what.to_string(),
        status: status.as_u16(),
        code,
        message,
        more_info,
    }
}

/// SIDs are two letters and 32 hex digits; anything that is not alphanumeric would let a
/// name reshape the request path.
pub fn validate_sid(sid: &str) -> Result<()> {
    if !sid.is_empty() && sid.len() <= 64 && sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(Error::Invalid(format!("{sid:?} is not a Twilio SID")))
    }
}

/// Stops a listing that loops (a `next_page_url` seen before) or never ends.
#[derive(Debug)]
pub struct PageGuard {
    seen: HashSet<String>,
    max_pages: usize,
}

impl PageGuard {
    /// Starts with the first page's URL.
    pub fn new(first: &str, max_pages: usize) -> Self {
        Self {
            seen: HashSet::from([first.to_string()]),
            max_pages,
        }
    }

    /// Pages admitted so far, the first included.
    pub fn pages(&self) -> usize {
        self.seen.len()
    }

    /// Admits the next page, or says why not.
    pub fn admit(&mut self, next: &str) -> std::result::Result<(), String> {
        if self.seen.len() >= self.max_pages {
            return Err(format!(
                "more than {} pages: stopping (a paging loop?)",
                self.max_pages
            ));
        }
        if !self.seen.insert(next.to_string()) {
            return Err(format!(
                "the API sent the page {} twice: stopping a paging loop",
                redact_url(next)
            ));
        }
        Ok(())
    }
}

/// `base + path?query`, keeping any path prefix of the base URL.
fn endpoint_on(base: &Url, path: &str, query: &[(&str, String)]) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}{path}"));
    url.set_query(None);
    if !query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in query {
            pairs.append_pair(k, v);
        }
    }
    url
}

/// Reads one entry of a listing page.
type DecodeEntry<T> = Box<dyn Fn(serde_json::Value) -> serde_json::Result<T> + Send + Sync>;

/// A listing, one page at a time (to show progress while listing thousands).
pub struct Pager<'a, T> {
    client: &'a TwilioClient,
    /// The API the listing is on: its next pages are fetched there.
    base: &'a Url,
    what: String,
    key: &'static str,
    decode: DecodeEntry<T>,
    next: Option<Url>,
    guard: PageGuard,
}

impl<T> Pager<'_, T> {
    /// The next page's items, or `None` after the last page.
    pub async fn next_page(&mut self) -> Result<Option<Vec<T>>> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        let answer = self.client.get_ok(&url, &self.what).await?;
        let page = parse_page_with(&answer.body, self.key, &self.decode).map_err(|detail| {
            Error::Decode {
                what: self.what.clone(),
                detail,
            }
        })?;
        for (sid, why) in &page.skipped {
            tracing::warn!("{}: skipping an entry (sid {sid}): {why}", self.what);
        }
        let items = page.items;
        if let Some(next) = page.next {
            let url = self.client.next_url(self.base, &next, &self.what)?;
            self.guard
                .admit(url.as_str())
                .map_err(|detail| Error::Paging {
                    what: self.what.clone(),
                    detail,
                })?;
            self.next = Some(url);
        }
        Ok(Some(items))
    }

    /// Pages fetched or admitted so far.
    pub fn pages(&self) -> usize {
        self.guard.pages()
    }

    /// Every remaining item.
    pub async fn collect_all(mut self) -> Result<Vec<T>> {
        let mut all = Vec::new();
        while let Some(items) = self.next_page().await? {
            all.extend(items);
        }
        Ok(all)
    }
}

/// Where a `/Media` answer (to `asked`, on the configured API) points: `redirect_to`,
/// else `Location`, resolved against `asked`, and fetched only if
/// [`media_url_allowed`] lets it (an `https` API hands out `https` URLs only). Pure: the
/// rule is tested here with an `https` API that no test can run.
fn media_target(
    asked: &Url,
    what: &str,
    status: StatusCode,
    body: &[u8],
    location: Option<&str>,
) -> Result<Url> {
    let decode = |detail: String| Error::Decode {
        what: what.to_owned(),
        detail,
    };
    let target = media_redirect_target(body, location)
        .ok_or_else(|| decode(format!("HTTP {status} without redirect_to or Location")))?;
    let target = asked.join(target.trim()).map_err(|e| {
        decode(format!(
            "redirect_to is not a URL ({e}): {}",
            redact_url(&target)
        ))
    })?;
    media_url_allowed(asked, &target).map_err(decode)?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streamed(
        chunks: impl futures_util::Stream<Item = Bytes> + Send + 'static,
    ) -> reqwest::Response {
        use futures_util::StreamExt;
        let body = reqwest::Body::wrap_stream(chunks.map(Ok::<_, std::io::Error>));
        reqwest::Response::from(axum::http::Response::new(body))
    }

    #[tokio::test]
    async fn api_answers_are_read_up_to_the_bound() {
        static KIB: [u8; 1024] = [b' '; 1024];
        let chunks = || futures_util::stream::repeat(Bytes::from_static(&KIB));
        use futures_util::StreamExt;
        // Exactly the bound is read.
        let body = bounded_body(streamed(chunks().take(2048)), 2 << 20).await;
        assert_eq!(body.unwrap().len(), 2 << 20);
        // One byte more fails, and so does a body that never ends.
        let over = chunks()
            .take(2048)
            .chain(futures_util::stream::iter([Bytes::from_static(b"x")]));
        assert_eq!(
            bounded_body(streamed(over), 2 << 20).await.unwrap_err(),
            NoAnswer::TooLarge(
                "the answer is larger than 2 MiB, the most read of one API answer".into()
            )
        );
        assert!(bounded_body(streamed(chunks()), 2 << 20).await.is_err());
    }

    #[test]
    fn page_guard_stops_loops_and_floods() {
        let mut g = PageGuard::new("u0", 4);
        assert!(g.admit("u1").is_ok());
        assert!(g.admit("u0").unwrap_err().contains("twice"));
        assert!(g.admit("u2").is_ok());
        assert!(g.admit("u3").is_ok());
        assert!(g.admit("u4").unwrap_err().contains("more than 4 pages"));
    }

    #[test]
    fn sids() {
        assert!(validate_sid("RT0123456789abcdef0123456789abcdef").is_ok());
        assert!(validate_sid("../x").is_err());
        assert!(validate_sid("").is_err());
        assert!(validate_sid("RT1?x=1").is_err());
    }

    fn client(api: &str) -> TwilioClient {
        let creds = Credentials::api_key(None, "SK1", zeroize::Zeroizing::new("s".into()));
        TwilioClient::new(ClientConfig {
            api_url: api.into(),
            ..ClientConfig::new(creds)
        })
        .unwrap()
    }

    #[test]
    fn the_accounts_api_sits_beside_the_video_api() {
        assert_eq!(
            accounts_url_for("https://video.twilio.com"),
            "https://accounts.twilio.com"
        );
        assert_eq!(
            accounts_url_for("https://video.dublin.ie1.twilio.com/"),
            "https://accounts.dublin.ie1.twilio.com"
        );
        // An emulator or proxy serves both.
        assert_eq!(
            accounts_url_for("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            accounts_url_for("http://proxy.local/twilio"),
            "http://proxy.local/twilio"
        );
        assert_eq!(
            client("https://video.twilio.com").accounts_url().as_str(),
            "https://accounts.twilio.com/"
        );
        // The Voice API: api.X beside Twilio's video.X only.
        for (video, voice) in [
            ("https://video.twilio.com", "https://api.twilio.com"),
            (
                "https://video.dublin.ie1.twilio.com/",
                "https://api.dublin.ie1.twilio.com",
            ),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
            ("http://proxy.local/twilio", "http://proxy.local/twilio"),
            (
                "https://video.corp.example/x",
                "https://video.corp.example/x",
            ),
            (
                "https://video.twilio.com.evil.example",
                "https://video.twilio.com.evil.example",
            ),
        ] {
            assert_eq!(voice_url_for(video), voice, "{video}");
        }
        assert_eq!(
            client("https://video.twilio.com").voice_url().as_str(),
            "https://api.twilio.com/"
        );
        let creds = Credentials::api_key(None, "SK1", zeroize::Zeroizing::new("s".into()));
        let c = TwilioClient::new(ClientConfig {
            accounts_url: Some("http://127.0.0.1:9/acc".into()),
            ..ClientConfig::new(creds)
        })
        .unwrap();
        assert_eq!(c.accounts_url().as_str(), "http://127.0.0.1:9/acc");
    }

    #[test]
    fn next_page_urls_stay_on_the_configured_origin() {
        let c = client("http://127.0.0.1:8080");
        let u = c
            .next_url(
                &c.base,
                "https://video.twilio.com/v1/Recordings?PageSize=100&Page=1&PageToken=PA",
                "x",
            )
            .unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:8080/v1/Recordings?PageSize=100&Page=1&PageToken=PA"
        );
        let u = c.next_url(&c.base, "/v1/Rooms?Page=2", "x").unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:8080/v1/Rooms?Page=2");
        // The Voice API's next_page_uri is a path on its host.
        let u = c
            .next_url(
                c.voice_url(),
                "/2010-04-01/Accounts/AC1/Recordings.json?Page=1",
                "x",
            )
            .unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:8080/2010-04-01/Accounts/AC1/Recordings.json?Page=1"
        );
        let c = client("https://video.twilio.com/");
        let e = c.endpoint("/v1/Recordings", &[("Status", "completed".into())]);
        assert_eq!(
            e.as_str(),
            "https://video.twilio.com/v1/Recordings?Status=completed"
        );
        let c = client("http://127.0.0.1:1/prefix/");
        assert_eq!(
            c.endpoint("/v1/Rooms", &[]).as_str(),
            "http://127.0.0.1:1/prefix/v1/Rooms"
        );
        assert!(
            TwilioClient::new(ClientConfig {
                api_url: "ftp://x".into(),
                ..ClientConfig::new(Credentials::api_key(None, "SK", Default::default()))
            })
            .is_err()
        );
    }

    #[test]
    fn one_listing_per_kind_with_the_kind_s_path_key_and_filters() {
        let c = client("http://127.0.0.1:1");
        let f = MediaFilter {
            status: Some("completed".into()),
            room: Some("RM1".into()),
            ..Default::default()
        };
        let p = c.media_pages(MediaKind::Composition, &f).unwrap();
        assert_eq!(
            p.next.as_ref().unwrap().as_str(),
            "http://127.0.0.1:1/v1/Compositions?Status=completed&RoomSid=RM1&PageSize=100"
        );
        assert_eq!(
            (p.what.as_str(), p.key),
            ("/v1/Compositions", "compositions")
        );
        let p = c.media_pages(MediaKind::Recording, &f).unwrap();
        assert_eq!(
            p.next.as_ref().unwrap().as_str(),
            "http://127.0.0.1:1/v1/Recordings?Status=completed&GroupingSid=RM1&PageSize=100"
        );
        assert_eq!(p.key, "recordings");
        // The typed recording filter adds the two filters only recordings take.
        let typed = RecordingFilter {
            grouping_sid: Some("RM1".into()),
            media_type: Some("audio".into()),
            ..Default::default()
        };
        assert_eq!(
            typed.query(),
            vec![("GroupingSid", "RM1".into()), ("MediaType", "audio".into())]
        );
    }

    #[test]
    fn a_resource_decodes_as_its_kind_and_whole() {
        let body = br#"{"sid": "CJ1", "format": "webm", "status": "completed"}"#;
        let m = decode_with("/x", body, |d| MediaKind::Composition.decode(d)).unwrap();
        assert_eq!(m.kind(), MediaKind::Composition);
        assert_eq!(m.status(), Some("completed"));
        // Trailing bytes fail the body, as they do for every typed resource.
        let e = decode_with("/x", b"{\"sid\": \"CJ1\"} x", |d| {
            MediaKind::Composition.decode(d)
        })
        .unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e}");
        assert!(decode::<Composition>("/x", b"{\"sid\": \"CJ1\"} x").is_err());
    }

    /// Issue 16, item 6: a `/Media` answer under an https API that points at http (in
    /// `redirect_to` or `Location`, absolute or scheme-relative) is refused; https on
    /// another host is the normal case and is taken.
    #[test]
    fn media_targets_under_an_https_api() {
        let api = Url::parse("https://video.twilio.com/v1/Recordings/RT1/Media?Ttl=3600").unwrap();
        let found = StatusCode::FOUND;
        let target = |body: &str, location: Option<&str>| {
            media_target(
                &api,
                "/v1/Recordings/RT1/Media",
                found,
                body.as_bytes(),
                location,
            )
        };
        let ok = target(
            r#"{"redirect_to": "https://s3.example.com/b/o?X-Amz-Signature=s"}"#,
            None,
        );
        assert_eq!(ok.unwrap().host_str(), Some("s3.example.com"));
        assert!(target("{}", Some("https://127.0.0.2:9/o")).is_ok());
        assert!(
            target("{}", Some("//s3.example.com/o")).is_ok(),
            "scheme-relative: https"
        );
        for (body, location) in [
            (
                r#"{"redirect_to": "http://s3.example.com/b/o?X-Amz-Signature=s"}"#,
                None,
            ),
            (
                r#"{"redirect_to": "http://127.0.0.2:9/o"}"#,
                Some("https://s3.example.com/o"),
            ),
            ("not json", Some("http://s3.example.com/o")),
            (r#"{"redirect_to": "ftp://s3.example.com/o"}"#, None),
            (r#"{"redirect_to": "file:///etc/passwd"}"#, None),
        ] {
            let e = target(body, location).unwrap_err();
            assert!(matches!(e, Error::Decode { .. }), "{e}");
            let text = e.to_string();
            assert!(text.contains("refusing the"), "{text}");
            assert!(!text.contains("Signature=s"), "{text}");
        }
        // An http API (the emulator) may hand out http.
        let http = Url::parse("http://127.0.0.1:8080/v1/Recordings/RT1/Media").unwrap();
        let got = media_target(
            &http,
            "m",
            found,
            br#"{"redirect_to": "http://127.0.0.2:9/o"}"#,
            None,
        );
        assert_eq!(got.unwrap().as_str(), "http://127.0.0.2:9/o");
    }

    #[test]
    fn error_bodies() {
        let e = api_error(
            "/v1/Recordings",
            StatusCode::UNAUTHORIZED,
            br#"{"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}"#,
        );
        assert!(
            e.to_string()
                .starts_with("Twilio rejected the credentials (20003)")
        );
        let e = api_error("/v1/Rooms", StatusCode::BAD_GATEWAY, b"<html>oops</html>");
        assert_eq!(
            e.to_string(),
            "Twilio API error on /v1/Rooms: HTTP 502: <html>oops</html>"
        );
        let e = api_error("/v1/Rooms", StatusCode::SERVICE_UNAVAILABLE, b"");
        assert!(e.to_string().ends_with("Service Unavailable"));
    }
}
