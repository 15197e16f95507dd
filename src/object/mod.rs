//! Ranged reads of one stored object on its pre-signed URL.
//!
//! [`ObjectClient::get_range`] turns "bytes `[start, end)` of RTxx" into exactly those
//! bytes (fewer only at the end of the object), whatever the storage does on the way:
//!
//! - `206` with `Content-Range`: the range is checked to start where asked.
//! - `200` (the range ignored): the body is skipped up to `start`, then read to `end`.
//! - `416`: the object is shorter than `start`; the error carries its length.
//! - `403`: the signature expired. The URL is invalidated, `/Media` asked again, and the
//!   request repeated: twice at once, outside the retry budget, then after backoff
//!   delays within it.
//! - `5xx`, `429`, connect errors, timeouts: retried per the [`RetryPolicy`].
//! - A body cut short (a stream error, fewer bytes than promised, a timeout mid-body)
//!   or too slow (less than the policy's minimum rate in a window: it is cut, see
//!   [`crate::rate`]): the read resumes from the byte reached with a new ranged GET,
//!   after a backoff delay. An attempt that moved the read forward at the minimum rate
//!   starts the retry budget again: the budget bounds time without progress, not the
//!   length of a slow download; a dribble is no progress, so it ends with the budget.
//!
//! The work is split three ways: `status` says what an answer means from its status
//! and headers (pure, table-tested); `ObjectClient::get_once` makes one GET and reads
//! the body that answer calls for (data into the buffer, or at most 64 KiB of an
//! error); a `RangeRead` repeats it through [`crate::retry::run`] and owns the URL's
//! lifecycle (resolve, invalidate, refresh from `/Media`).
//!
//! [`ObjectClient::get_suffix`] asks for an object's last bytes without knowing its
//! length (`Range: bytes=-N`), once and without retry: a reader does it alongside its
//! first GET and does without the answer if it is anything but those bytes.
//!
//! The envelope headers (`x-amz-meta-x-amz-key`, …) come with every GET, ranged or not,
//! so the first answer's headers are returned with the data: there is no HEAD (the URL
//! is signed for GET only). Storage GETs do not take the API semaphore: they go to S3,
//! which has no per-account concurrency limit like Twilio's API.
//!
//! [`MemoryStorage`] is the in-memory double of the same trait, for tests.
//!
//! This module must not decrypt, cache data, or show a signed URL's query string.

mod memory;
pub mod status;

pub use memory::{MemoryStorage, StoredObject};
pub use status::{ContentRange, parse_content_range, parse_s3_error};

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use reqwest::header::{
    CONTENT_LENGTH, CONTENT_RANGE, ETAG, HeaderName, IF_MATCH, RANGE, RETRY_AFTER,
};

use crate::bounded::{Bounded, ERROR_BODY_LIMIT};
use crate::rate::{MinRate, RateMeter};
use crate::retry::{self, Backoff, Outcome, Retried, RetryPolicy, parse_retry_after};
use crate::stats::IoStats;
use crate::twilio::{self, Api, MediaRef, TwilioClient, describe_reqwest};
use status::{Asked, Classified, ErrorStatus};

/// How many times one read asks `/Media` again after a 403.
pub const MAX_REFRESHES: u32 = 2;

/// The bytes asked for, and what came with them.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Exactly `[start, min(end, total_len))`.
    pub data: Bytes,
    /// The object's full length, from `Content-Range` (or `Content-Length` of a 200).
    pub total_len: u64,
    /// The first answer's headers, names lower-cased (the envelope is among them).
    pub headers: Vec<(String, String)>,
}

/// Why a range could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// Resolving the storage URL failed.
    #[error(transparent)]
    Twilio(#[from] twilio::Error),

    /// The storage answered an error status (with S3's `<Code>` when the body had one).
    #[error("storage answered HTTP {status} for {sid} ({url}){}{}",
        code.as_ref().map(|c| format!(": {c}")).unwrap_or_default(),
        message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status {
        /// The recording or composition.
        sid: String,
        /// The HTTP status.
        status: u16,
        /// S3's error code (`AccessDenied`, `NoSuchKey`, …).
        code: Option<String>,
        /// S3's message.
        message: Option<String>,
        /// The URL without its query string.
        url: String,
    },

    /// Every attempt failed with a retryable error.
    #[error("giving up reading {sid} after {attempts} attempts in {:.1} s: {last}", elapsed.as_secs_f64())]
    RetriesExhausted {
        /// The recording or composition.
        sid: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last failure.
        last: String,
    },

    /// The range starts at or past the end of the object (HTTP 416).
    #[error("{sid} is only {} bytes long: cannot read from byte {start}",
        total.map(|t| t.to_string()).unwrap_or_else(|| "a few".into()))]
    OutOfRange {
        /// The recording or composition.
        sid: String,
        /// Where the read was to start.
        start: u64,
        /// The object's length, when the storage said it.
        total: Option<u64>,
    },

    /// The storage's answer made no sense (a range other than asked, no length).
    #[error("bad answer from storage for {sid}: {detail}")]
    Protocol {
        /// The recording or composition.
        sid: String,
        /// What was wrong.
        detail: String,
    },

    /// A request that could not be made at all.
    #[error("request for {sid} failed: {detail}")]
    Transport {
        /// The recording or composition.
        sid: String,
        /// The error chain (no URL).
        detail: String,
    },
}

/// Something that serves byte ranges of stored objects: the real [`ObjectClient`], or a
/// test double.
pub trait ObjectSource: Send + Sync {
    /// Bytes `[start, end)` of `media` (fewer only at the end of the object).
    fn get_range(
        &self,
        media: &MediaRef,
        start: u64,
        end: u64,
    ) -> BoxFuture<'_, Result<Fetched, ObjectError>>;

    /// [`Self::get_range`], with `work` done on the bytes in place ([`Fetched::data`]
    /// holds the result). The HTTP client does it piece by piece as the body arrives;
    /// this default, once at the end.
    fn get_range_in_place<'a>(
        &'a self,
        media: &'a MediaRef,
        start: u64,
        end: u64,
        work: &'a mut dyn InPlace,
    ) -> BoxFuture<'a, Result<Fetched, ObjectError>> {
        Box::pin(async move {
            let mut fetched = self.get_range(media, start, end).await?;
            let mut buf = (fetched.data.try_into_mut()).unwrap_or_else(|b| BytesMut::from(&b[..]));
            work.advance(&mut buf, 0);
            fetched.data = buf.freeze();
            Ok(fetched)
        })
    }

    /// The last `len` bytes of `media` and its length ([`Fetched::total_len`]), in one
    /// request that is not retried (`Range: bytes=-len`). A reader asks for them
    /// alongside its first GET, before it knows the object's length, and reads them the
    /// usual way once it does if this gives `None`: this source cannot, or it failed
    /// (the reason is logged at DEBUG).
    fn get_suffix(&self, media: &MediaRef, len: u64) -> BoxFuture<'_, Option<Fetched>> {
        let _ = (media, len);
        Box::pin(std::future::ready(None))
    }
}

/// Work done on a body's bytes in place (decryption) while they arrive, so that each
/// piece is worked on while it is still in the CPU's cache, not in a second pass over
/// the whole buffer once it is complete. The object layer only calls it, in order.
pub trait InPlace: Send {
    /// `buf` holds every byte received so far, of which the first `done` were worked on
    /// already. Works on what it can of the rest and returns the new `done`.
    fn advance(&mut self, buf: &mut [u8], done: usize) -> usize;
}

/// Ranged GETs on the pre-signed URLs an [`Api`] hands out (a [`TwilioClient`], or one
/// wrapped to inject faults), over one connection pool.
#[derive(Clone)]
pub struct ObjectClient {
    urls: Arc<dyn Api>,
    http: reqwest::Client,
    retry: RetryPolicy,
    stats: Arc<IoStats>,
}

impl std::fmt::Debug for ObjectClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectClient")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// What one attempt ended with.
enum Step {
    /// The read is complete.
    Done,
    /// Retry (after a backoff) because of this.
    Retry(String, Option<Duration>),
    /// The URL expired: ask `/Media` again.
    Refresh(String),
}

/// Why a [`RangeRead`] waits before another attempt: it decides the debug line and,
/// once the budget is spent, the error.
enum RetryCause {
    /// The GET failed, or its body broke off at `pos`.
    Failed { cause: String, pos: u64 },
    /// The storage refused even the URLs `/Media` gave anew (`url`, redacted).
    Refused { cause: String, url: String },
}

/// One `get_range` as [`retry::run`] repeats it: each attempt resolves the URL (from
/// the cache, mostly) and makes one GET from where the last one stopped.
struct RangeRead<'a, 'w> {
    client: &'a ObjectClient,
    media: &'a MediaRef,
    p: Progress<'w>,
    /// How many times `/Media` was asked again after a 403.
    refreshes: u32,
    /// GETs made.
    attempts: u32,
}

impl Retried for RangeRead<'_, '_> {
    type Output = ();
    type Error = ObjectError;
    type Why = RetryCause;

    async fn attempt(&mut self) -> Outcome<(), ObjectError, RetryCause> {
        let (client, media) = (self.client, self.media);
        let url = match client.urls.media_url(media).await {
            Ok(url) => url,
            Err(e) => return Outcome::Fail(e.into()),
        };
        self.attempts += 1;
        let attempt_from = self.p.pos();
        let began = Instant::now();
        match client.get_once(media, url.url(), &mut self.p).await {
            Ok(Step::Done) => Outcome::Done(()),
            Err(e) => Outcome::Fail(e),
            Ok(Step::Retry(cause, retry_after)) => Outcome::Retry {
                why: RetryCause::Failed {
                    cause,
                    pos: self.p.pos(),
                },
                retry_after,
                // A body cut, stalled or too slow after some bytes: progress only if
                // they came at the minimum rate.
                progressed: client
                    .retry
                    .min_rate
                    .is_progress(self.p.pos() - attempt_from, began.elapsed()),
            },
            Ok(Step::Refresh(cause)) => {
                self.refreshes += 1;
                client.urls.invalidate_url(&media.sid, &url);
                if self.refreshes <= MAX_REFRESHES {
                    tracing::debug!(sid = %media.sid, %cause, "storage refused the URL: resolving again");
                    return Outcome::Again;
                }
                // Refused again and again: URLs that expire faster than a read goes
                // (short lifetimes, slow or stalled bodies), or a storage that refuses
                // for now. Keep asking for new URLs, on the retry budget.
                Outcome::Retry {
                    why: RetryCause::Refused {
                        cause,
                        url: url.redacted(),
                    },
                    retry_after: None,
                    progressed: false,
                }
            }
        }
    }

    fn retrying(&mut self, why: &RetryCause, delay: Duration, _: &Backoff) {
        let sid = &self.media.sid;
        match why {
            RetryCause::Failed { cause, pos } => {
                tracing::debug!(sid = %sid, pos = *pos, %cause, ?delay, "retrying storage GET");
            }
            RetryCause::Refused { cause, .. } => {
                tracing::debug!(sid = %sid, %cause, ?delay, "storage refused new URLs: retrying");
            }
        }
    }

    fn exhausted(&mut self, why: RetryCause, backoff: &Backoff) -> ObjectError {
        let sid = self.media.sid.clone();
        match why {
            RetryCause::Failed { cause, .. } => ObjectError::RetriesExhausted {
                sid,
                attempts: backoff.failures(),
                elapsed: backoff.elapsed(),
                last: cause,
            },
            RetryCause::Refused { cause, url } => ObjectError::Status {
                sid,
                status: 403,
                code: None,
                message: Some(format!(
                    "still refused after asking /Media for a new URL {} times in {:.1} s: {cause}",
                    self.refreshes,
                    backoff.elapsed().as_secs_f64()
                )),
                url,
            },
        }
    }
}

/// The state of one `get_range` across attempts.
struct Progress<'w> {
    start: u64,
    end: u64,
    buf: BytesMut,
    /// Done on `buf` as it grows, and how far it got.
    work: Option<&'w mut dyn InPlace>,
    worked: usize,
    total: Option<u64>,
    headers: Option<Vec<(String, String)>>,
    /// The first answer's ETag: resumed requests ask `If-Match` so that a resumed read
    /// never splices two versions of an object.
    etag: Option<String>,
}

impl Progress<'_> {
    fn pos(&self) -> u64 {
        self.start + self.buf.len() as u64
    }

    /// Where this read stops: `end`, or the end of the object if sooner.
    fn stop(&self) -> u64 {
        self.total.map_or(self.end, |t| self.end.min(t))
    }

    fn done(&self) -> bool {
        self.total.is_some() && self.pos() >= self.stop()
    }

    /// The next GET: from `pos()` to the end of the read.
    fn asked(&self) -> Asked<'_> {
        let pos = self.pos();
        // Ask for at least one byte: `end == start` still wants the length and headers.
        let last = self.end.max(pos + 1) - 1;
        let last = self.total.map_or(last, |t| last.min(t.saturating_sub(1)));
        Asked {
            pos,
            last,
            total: self.total,
            etag: self.etag.as_deref(),
        }
    }

    /// Reads a data body: skips `skip` bytes, keeps what falls in `[pos(), stop())`,
    /// and stops there. Returns how many bytes arrived (skipped ones included), or why
    /// the body broke off: an error, or less than `rate` in one of its windows (the
    /// body is then cut, and what arrived kept).
    async fn read_body(
        &mut self,
        response: reqwest::Response,
        skip: u64,
        rate: MinRate,
    ) -> Result<u64, String> {
        let stop = self.stop();
        let mut skip = skip;
        let mut received: u64 = 0;
        let mut stream = response.bytes_stream();
        let mut meter = RateMeter::new(rate, Instant::now());
        loop {
            let next = match meter.deadline() {
                Some(at) => tokio::time::timeout_at(at.into(), stream.next()).await,
                None => Ok(stream.next().await),
            };
            let slow = |meter: &mut RateMeter, pos: u64| {
                meter
                    .check(Instant::now())
                    .map_err(|too_slow| format!("body {too_slow} at byte {pos}"))
            };
            let chunk = match next {
                // The window ended with nothing more: check it.
                Err(_) => {
                    slow(&mut meter, self.pos())?;
                    continue;
                }
                Ok(None) => break,
                Ok(Some(chunk)) => chunk,
            };
            let mut chunk = chunk.map_err(|e| {
                format!(
                    "body cut short at byte {}: {}",
                    self.pos(),
                    describe_reqwest(&e)
                )
            })?;
            received += chunk.len() as u64;
            meter.add(chunk.len() as u64);
            if skip > 0 {
                let n = skip.min(chunk.len() as u64);
                let _ = chunk.split_to(n as usize);
                skip -= n;
            }
            let want = stop.saturating_sub(self.pos());
            let take = want.min(chunk.len() as u64) as usize;
            self.buf.extend_from_slice(&chunk[..take]);
            if let Some(work) = self.work.as_deref_mut() {
                self.worked = work.advance(&mut self.buf, self.worked);
            }
            if self.pos() >= stop {
                break;
            }
            slow(&mut meter, self.pos())?;
        }
        Ok(received)
    }
}

/// The start of an error body, as text: at most [`ERROR_BODY_LIMIT`] bytes are read.
/// A body that breaks off counts as empty, as `Response::text` had it.
async fn error_body(response: reqwest::Response) -> String {
    let mut body = Bounded::new(ERROR_BODY_LIMIT);
    let mut stream = response.bytes_stream();
    loop {
        match stream.next().await {
            Some(Ok(chunk)) if body.push(&chunk) => {}
            Some(Ok(_)) | None => break,
            Some(Err(_)) => return String::new(),
        }
    }
    body.text()
}

/// A header's value, when it is text.
fn header_text(headers: &reqwest::header::HeaderMap, name: HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl ObjectClient {
    /// Reads through `twilio`'s URLs and connection pool, with its retry policy.
    pub fn new(twilio: Arc<TwilioClient>) -> Self {
        let retry = twilio.retry_policy();
        Self::with_retry(twilio, retry)
    }

    /// The same, with another retry policy.
    pub fn with_retry(twilio: Arc<TwilioClient>, retry: RetryPolicy) -> Self {
        let http = twilio.http().clone();
        Self::with_urls(twilio, http, retry)
    }

    /// Reads on the URLs `urls` hands out (and invalidates), with `http`'s connection
    /// pool (it must not follow redirects) and `retry`.
    pub fn with_urls(urls: Arc<dyn Api>, http: reqwest::Client, retry: RetryPolicy) -> Self {
        Self {
            urls,
            http,
            retry,
            stats: Arc::default(),
        }
    }

    /// The counters of this client's fetches (for a mount's `.stats`).
    pub fn stats(&self) -> Arc<IoStats> {
        self.stats.clone()
    }

    /// Bytes `[start, end)` of `media`: exactly those, or fewer only at the end of the
    /// object. `end <= start` reads nothing but still learns the length and headers.
    /// `start` equal to the length gives no data (end of file); past it,
    /// [`ObjectError::OutOfRange`].
    ///
    /// Each call is counted in [`Self::stats`] and logged on one debug line: SID, range,
    /// bytes, duration, attempts.
    pub async fn get_range(
        &self,
        media: &MediaRef,
        start: u64,
        end: u64,
    ) -> Result<Fetched, ObjectError> {
        self.get_range_with(media, start, end, None).await
    }

    /// [`Self::get_range`], with `work` done on the body as it arrives
    /// ([`ObjectSource::get_range_in_place`]).
    pub async fn get_range_with(
        &self,
        media: &MediaRef,
        start: u64,
        end: u64,
        work: Option<&mut dyn InPlace>,
    ) -> Result<Fetched, ObjectError> {
        let started = std::time::Instant::now();
        let _in_flight = self.stats.begin();
        let mut attempts = 0;
        let result = self.fetch(media, start, end, work, &mut attempts).await;
        let ms = started.elapsed().as_millis() as u64;
        let range = format!("{start}-{}", end.max(start));
        match &result {
            Ok(f) => {
                self.stats.end(attempts, Some(f.data.len() as u64));
                tracing::debug!(sid = %media.sid, range, bytes = f.data.len(), ms, attempts, "storage fetch");
            }
            Err(e) => {
                self.stats.end(attempts, None);
                tracing::debug!(sid = %media.sid, range, ms, attempts, error = %e, "storage fetch failed");
            }
        }
        result
    }

    /// The last `len` bytes of `media` and its length, in one GET of `Range: bytes=-len`
    /// and no retry ([`ObjectSource::get_suffix`]): anything but a `206` of exactly
    /// those bytes is an error, which the caller does without. Counted in
    /// [`Self::stats`] when it succeeds; a failure is a DEBUG line, not a fetch error.
    pub async fn get_suffix(&self, media: &MediaRef, len: u64) -> Result<Fetched, ObjectError> {
        let started = std::time::Instant::now();
        let _in_flight = self.stats.begin();
        let result = self.suffix_once(media, len).await;
        let ms = started.elapsed().as_millis() as u64;
        let range = format!("-{len}");
        match &result {
            Ok(f) => {
                self.stats.end(1, Some(f.data.len() as u64));
                tracing::debug!(sid = %media.sid, range, bytes = f.data.len(), ms, attempts = 1, "storage fetch");
            }
            Err(e) => {
                tracing::debug!(sid = %media.sid, range, ms, error = %e, "storage suffix not used");
            }
        }
        result
    }

    async fn suffix_once(&self, media: &MediaRef, len: u64) -> Result<Fetched, ObjectError> {
        let sid = &media.sid;
        let url = self.urls.media_url(media).await?;
        let transport = |e: reqwest::Error| ObjectError::Transport {
            sid: sid.clone(),
            detail: describe_reqwest(&e),
        };
        let response = (self.http.get(url.url().clone()))
            .header(RANGE, format!("bytes=-{len}"))
            .send()
            .await
            .map_err(transport)?;
        let header = |name| header_text(response.headers(), name);
        let content_length = header(CONTENT_LENGTH).and_then(|v| v.trim().parse::<u64>().ok());
        let (first, total) = status::classify_suffix(
            len,
            response.status(),
            header(CONTENT_RANGE).as_deref(),
            content_length,
        )
        .map_err(|detail| self.protocol(sid, detail))?;
        let headers = lower_headers(response.headers());
        let want = (total - first) as usize;
        let mut data = BytesMut::with_capacity(want);
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(transport)?;
            if data.len() + chunk.len() > want {
                return Err(self.protocol(sid, format!("more than the {want} bytes announced")));
            }
            data.extend_from_slice(&chunk);
        }
        if data.len() != want {
            let got = data.len();
            return Err(self.protocol(sid, format!("{got} of the {want} bytes announced")));
        }
        Ok(Fetched {
            data: data.freeze(),
            total_len: total,
            headers,
        })
    }

    /// [`Self::get_range`] without the counting; `attempts` counts GETs made.
    async fn fetch(
        &self,
        media: &MediaRef,
        start: u64,
        end: u64,
        work: Option<&mut dyn InPlace>,
        attempts: &mut u32,
    ) -> Result<Fetched, ObjectError> {
        let end = end.max(start);
        // Never trust a caller's `end` (it may be u64::MAX) for the allocation size.
        let capacity = (end - start).min(64 << 20) as usize;
        let p = Progress {
            start,
            end,
            buf: BytesMut::with_capacity(capacity),
            work,
            worked: 0,
            total: None,
            headers: None,
            etag: None,
        };
        let mut read = RangeRead {
            client: self,
            media,
            p,
            refreshes: 0,
            attempts: 0,
        };
        let result = retry::run(self.retry, &mut read).await;
        *attempts = read.attempts;
        result?;
        let p = read.p;
        let total_len = p.total.unwrap_or(p.pos());
        Ok(Fetched {
            data: p.buf.freeze(),
            total_len,
            headers: p.headers.unwrap_or_default(),
        })
    }

    /// One GET from `p.pos()`: what its answer means ([`status::classify`]), then its
    /// body, appended to `p.buf`.
    async fn get_once(
        &self,
        media: &MediaRef,
        url: &reqwest::Url,
        p: &mut Progress<'_>,
    ) -> Result<Step, ObjectError> {
        let sid = &media.sid;
        let asked = p.asked();
        let pos = asked.pos;
        let response = match self.send(url, &asked).await {
            Ok(r) => r,
            Err(e) if e.is_builder() => {
                return Err(ObjectError::Transport {
                    sid: sid.clone(),
                    detail: describe_reqwest(&e),
                });
            }
            Err(e) => return Ok(Step::Retry(describe_reqwest(&e), None)),
        };
        let status = response.status();
        let header = |name| header_text(response.headers(), name);
        let content_range = header(CONTENT_RANGE);
        let content_length = header(CONTENT_LENGTH).and_then(|v| v.trim().parse::<u64>().ok());
        let classified = status::classify(&asked, status, content_range.as_deref(), content_length);
        let (skip, body_len, whole) = match classified {
            Classified::Data {
                skip,
                body_len,
                total,
                whole,
            } => {
                p.total = total;
                (skip, body_len, whole)
            }
            Classified::AtEnd { total } => {
                // Empty, like a read at EOF, not an error.
                p.total = Some(total);
                if p.headers.is_none() {
                    p.headers = Some(lower_headers(response.headers()));
                }
                return Ok(Step::Done);
            }
            Classified::OutOfRange { total } => {
                return Err(ObjectError::OutOfRange {
                    sid: sid.clone(),
                    start: pos,
                    total,
                });
            }
            Classified::Protocol(detail) => return Err(self.protocol(sid, detail)),
            Classified::Error(kind) => {
                let retry_after = header(RETRY_AFTER).and_then(|v| parse_retry_after(&v));
                let (code, message) = parse_s3_error(&error_body(response).await);
                return match kind {
                    ErrorStatus::Expired => Ok(Step::Refresh(format!(
                        "HTTP 403{}{}",
                        code.map(|c| format!(": {c}")).unwrap_or_default(),
                        message.map(|m| format!(": {m}")).unwrap_or_default()
                    ))),
                    ErrorStatus::Retryable => Ok(Step::Retry(
                        format!(
                            "HTTP {}{}",
                            status.as_u16(),
                            code.map(|c| format!(" ({c})")).unwrap_or_default()
                        ),
                        retry_after,
                    )),
                    ErrorStatus::Fatal => Err(ObjectError::Status {
                        sid: sid.clone(),
                        status: status.as_u16(),
                        code,
                        message,
                        url: twilio::redact_url(url.as_str()),
                    }),
                };
            }
        };
        if p.headers.is_none() {
            p.etag = header(ETAG).filter(|e| !e.starts_with("W/"));
            p.headers = Some(lower_headers(response.headers()));
        }
        if p.done() {
            return Ok(Step::Done);
        }
        let received = match p.read_body(response, skip, self.retry.min_rate).await {
            Ok(received) => received,
            Err(cause) => return Ok(Step::Retry(cause, None)),
        };
        if p.total.is_none() {
            if whole {
                // A 200 without Content-Length: the body's end is the object's end.
                p.total = Some(received);
            } else {
                return Err(self.protocol(sid, "no object length in the answer".into()));
            }
        }
        if p.pos() >= p.stop() {
            return Ok(Step::Done);
        }
        let promised = body_len.map(|l| format!(" of {l}")).unwrap_or_default();
        Ok(Step::Retry(
            format!("body cut short: {received}{promised} bytes received"),
            None,
        ))
    }

    /// Sends the GET `asked` for: a `Range`, and `If-Match` on a resumed read.
    async fn send(
        &self,
        url: &reqwest::Url,
        asked: &Asked<'_>,
    ) -> reqwest::Result<reqwest::Response> {
        let mut request = self
            .http
            .get(url.clone())
            .header(RANGE, format!("bytes={}-{}", asked.pos, asked.last));
        if let Some(etag) = asked.etag {
            request = request.header(IF_MATCH, etag);
        }
        request.send().await
    }

    fn protocol(&self, sid: &str, detail: String) -> ObjectError {
        ObjectError::Protocol {
            sid: sid.to_string(),
            detail,
        }
    }
}

/// Header names lower-cased, values that are not text dropped.
fn lower_headers(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect()
}

impl ObjectSource for ObjectClient {
    fn get_range(
        &self,
        media: &MediaRef,
        start: u64,
        end: u64,
    ) -> BoxFuture<'_, Result<Fetched, ObjectError>> {
        let media = media.clone();
        Box::pin(async move { ObjectClient::get_range(self, &media, start, end).await })
    }

    fn get_range_in_place<'a>(
        &'a self,
        media: &'a MediaRef,
        start: u64,
        end: u64,
        work: &'a mut dyn InPlace,
    ) -> BoxFuture<'a, Result<Fetched, ObjectError>> {
        Box::pin(self.get_range_with(media, start, end, Some(work)))
    }

    fn get_suffix(&self, media: &MediaRef, len: u64) -> BoxFuture<'_, Option<Fetched>> {
        let media = media.clone();
        Box::pin(async move { ObjectClient::get_suffix(self, &media, len).await.ok() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response whose body arrives in these chunks, then breaks off if `cut`.
    fn response(chunks: &[&'static [u8]], cut: bool) -> reqwest::Response {
        let mut items: Vec<std::io::Result<Bytes>> =
            chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        if cut {
            items.push(Err(std::io::Error::other("reset")));
        }
        let body = reqwest::Body::wrap_stream(futures_util::stream::iter(items));
        reqwest::Response::from(axum::http::Response::new(body))
    }

    /// The default minimum rate: the bodies of these tests come at once.
    const RATE: MinRate = MinRate {
        bytes_per_sec: crate::rate::DEFAULT_MIN_RATE,
        window: crate::rate::RATE_WINDOW,
    };

    /// A body at `per_tick` bytes every `tick`, for ever.
    fn dribble(tick: Duration, per_tick: usize) -> reqwest::Response {
        let chunks = futures_util::stream::unfold((), move |()| async move {
            tokio::time::sleep(tick).await;
            Some((
                Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; per_tick])),
                (),
            ))
        });
        let body = reqwest::Body::wrap_stream(chunks);
        reqwest::Response::from(axum::http::Response::new(body))
    }

    /// Issue 16, item 3: a body at 10 B/s is cut at the end of its first window,
    /// keeping what arrived; one at the rate is read whole.
    #[tokio::test]
    async fn a_body_slower_than_the_minimum_rate_is_cut() {
        let rate = MinRate {
            bytes_per_sec: 1000,
            window: Duration::from_millis(300),
        };
        let mut p = progress(0, 1 << 20, Some(1 << 20));
        let started = Instant::now();
        let cause = p
            .read_body(dribble(Duration::from_millis(100), 1), 0, rate)
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(
            cause.starts_with("body slower than the minimum rate of 1000 B/s ("),
            "{cause}"
        );
        assert!(cause.ends_with(&format!("at byte {}", p.pos())), "{cause}");
        assert!((1..=3).contains(&p.buf.len()), "{}", p.buf.len());
        assert!(took < Duration::from_secs(2), "{took:?}");
        // 100 bytes every 10 ms is 10 000 B/s: read to its stop.
        let mut p = progress(0, 5000, Some(5000));
        let got = p
            .read_body(dribble(Duration::from_millis(10), 100), 0, rate)
            .await;
        assert_eq!(got, Ok(5000));
        // A body that sends nothing at all is cut too, without waiting for a byte.
        let mut p = progress(0, 100, Some(100));
        let silent = reqwest::Body::wrap_stream(futures_util::stream::pending::<
            Result<Bytes, std::io::Error>,
        >());
        let silent = reqwest::Response::from(axum::http::Response::new(silent));
        assert!(p.read_body(silent, 0, rate).await.is_err());
    }

    fn progress(start: u64, end: u64, total: Option<u64>) -> Progress<'static> {
        Progress {
            start,
            end,
            buf: BytesMut::new(),
            work: None,
            worked: 0,
            total,
            headers: None,
            etag: None,
        }
    }

    #[tokio::test]
    async fn a_body_is_appended_up_to_the_stop() {
        let mut p = progress(0, 100, Some(6));
        let got = p
            .read_body(response(&[b"abc", b"def"], false), 0, RATE)
            .await;
        assert_eq!(got, Ok(6));
        assert_eq!(&p.buf[..], b"abcdef");
        // The read ends before the body: the rest is not read.
        let mut p = progress(0, 4, None);
        let got = p
            .read_body(response(&[b"abc", b"def", b"ghi"], false), 0, RATE)
            .await;
        assert_eq!(got, Ok(6));
        assert_eq!(&p.buf[..], b"abcd");
    }

    /// A 200 that ignored the range: the body is skipped up to `pos`, across chunks.
    #[tokio::test]
    async fn a_whole_object_body_is_skipped_to_the_start() {
        let mut p = progress(5, 9, None);
        let got = p
            .read_body(response(&[b"012", b"345", b"678", b"9ab"], false), 5, RATE)
            .await;
        assert_eq!(got, Ok(9));
        assert_eq!(&p.buf[..], b"5678");
    }

    #[tokio::test]
    async fn a_body_cut_short_keeps_what_arrived() {
        let mut p = progress(10, 100, Some(100));
        let got = p.read_body(response(&[b"abc"], true), 0, RATE).await;
        let cause = got.unwrap_err();
        assert!(cause.starts_with("body cut short at byte 13: "), "{cause}");
        assert_eq!(&p.buf[..], b"abc");
        // Fewer bytes than promised is no error here: the caller compares.
        let mut p = progress(0, 100, Some(100));
        assert_eq!(p.read_body(response(&[b"ab"], false), 0, RATE).await, Ok(2));
    }

    #[test]
    fn the_next_request_starts_where_the_last_stopped() {
        let mut p = progress(100, 200, None);
        assert_eq!((p.asked().pos, p.asked().last), (100, 199));
        p.buf.extend_from_slice(&[0; 30]);
        p.total = Some(150);
        p.etag = Some("\"e\"".into());
        let asked = p.asked();
        assert_eq!((asked.pos, asked.last, asked.total), (130, 149, Some(150)));
        assert_eq!(asked.etag, Some("\"e\""));
        // An empty read still asks for a byte, to learn the length and headers.
        let p = progress(7, 7, None);
        assert_eq!((p.asked().pos, p.asked().last), (7, 7));
    }

    #[tokio::test]
    async fn error_bodies_are_read_up_to_the_limit() {
        let xml: &'static [u8] = b"<Error><Code>SlowDown</Code></Error>";
        assert_eq!(
            error_body(response(&[xml], false)).await,
            String::from_utf8_lossy(xml)
        );
        static BIG: [u8; 100_000] = [b'x'; 100_000];
        let body = error_body(response(&[&BIG[..40_000], &BIG[40_000..]], false)).await;
        assert_eq!(body.len(), ERROR_BODY_LIMIT);
        // A body that never ends is not read to its end.
        let chunks = futures_util::stream::repeat(Bytes::from_static(&BIG[..1000]));
        let endless = reqwest::Body::wrap_stream(chunks.map(Ok::<_, std::io::Error>));
        let endless = reqwest::Response::from(axum::http::Response::new(endless));
        assert_eq!(error_body(endless).await.len(), ERROR_BODY_LIMIT);
        // Like `Response::text`, a body that breaks off reads as empty.
        assert_eq!(error_body(response(&[xml], true)).await, "");
    }

    #[test]
    fn messages() {
        let e = ObjectError::OutOfRange {
            sid: "RT1".into(),
            start: 2000,
            total: Some(1000),
        };
        assert_eq!(
            e.to_string(),
            "RT1 is only 1000 bytes long: cannot read from byte 2000"
        );
    }
}
