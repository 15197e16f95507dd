//! Failure injection over both sides of the read path, for tests: [`FaultyApi`] wraps
//! any [`Api`] (the real client or [`crate::twilio::MemoryApi`]), [`FaultySource`] any
//! [`ObjectSource`] (the real object client or [`crate::object::MemoryStorage`]).
//!
//! A test arms a fault while the code under test runs: fail the next *n* calls (or
//! every call until cleared) with an error it builds, delay every call, (storage side)
//! stall one object's GETs past a byte for ever, as storage that dribbles, or (API
//! side) hand out `/Media` URLs whose signature storage will refuse, as if they had
//! expired.
//! Each wrapper counts the faults it injected, so a test can check that its fault was
//! met and not silently skipped.
//!
//! This module decides nothing about errors: it only passes on, delays or replaces
//! calls. It does no I/O of its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::object::{Fetched, ObjectError, ObjectSource};
use crate::twilio::{self, Api, Media, MediaFilter, MediaKind, MediaRef, MediaUrl, Room};

/// Builds the error a fault answers with, from the SID (or the listing's kind) that was
/// asked for.
type MakeError<E> = Arc<dyn Fn(&str) -> E + Send + Sync>;

/// One armed failure: how many more calls it hits (`None`: all until cleared).
struct Rule<E> {
    left: Option<u32>,
    make: MakeError<E>,
}

/// The faults armed on one side, and what they did.
struct Plan<E> {
    rule: Mutex<Option<Rule<E>>>,
    delay: Mutex<Duration>,
    injected: AtomicU64,
}

impl<E> Default for Plan<E> {
    fn default() -> Self {
        Self {
            rule: Mutex::new(None),
            delay: Mutex::new(Duration::ZERO),
            injected: AtomicU64::new(0),
        }
    }
}

impl<E> Plan<E> {
    fn arm(&self, times: Option<u32>, make: MakeError<E>) {
        *self.rule.lock().expect("fault plan lock") = Some(Rule { left: times, make });
    }

    fn clear(&self) {
        *self.rule.lock().expect("fault plan lock") = None;
        *self.delay.lock().expect("fault plan lock") = Duration::ZERO;
    }

    fn delay(&self) -> Duration {
        *self.delay.lock().expect("fault plan lock")
    }

    /// The error this call answers with, if a rule hits it.
    fn hit(&self, what: &str) -> Option<E> {
        let mut rule = self.rule.lock().expect("fault plan lock");
        let r = rule.as_mut()?;
        match &mut r.left {
            Some(0) => return None,
            Some(n) => *n -= 1,
            None => {}
        }
        self.injected.fetch_add(1, Ordering::SeqCst);
        Some((r.make)(what))
    }

    /// Sleeps for the armed delay, then answers with the armed error or `call`.
    async fn run<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let delay = self.delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match self.hit(what) {
            Some(e) => Err(e),
            None => call.await,
        }
    }
}

/// Which API calls a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiCall {
    /// [`Api::list`].
    List,
    /// [`Api::resource`].
    Resource,
    /// [`Api::room`].
    Room,
    /// [`Api::media_url`].
    MediaUrl,
}

impl ApiCall {
    /// Every call of the [`Api`] that can fail.
    pub const ALL: [ApiCall; 4] = [
        ApiCall::List,
        ApiCall::Resource,
        ApiCall::Room,
        ApiCall::MediaUrl,
    ];
}

/// An [`Api`] with faults on demand.
pub struct FaultyApi {
    inner: Arc<dyn Api>,
    list: Plan<twilio::Error>,
    resource: Plan<twilio::Error>,
    room: Plan<twilio::Error>,
    media_url: Plan<twilio::Error>,
    expire: Mutex<Option<u32>>,
    expired: AtomicU64,
}

impl FaultyApi {
    /// Passes every call on to `inner` until a fault is armed.
    pub fn new(inner: Arc<dyn Api>) -> Self {
        Self {
            inner,
            list: Plan::default(),
            resource: Plan::default(),
            room: Plan::default(),
            media_url: Plan::default(),
            expire: Mutex::new(None),
            expired: AtomicU64::new(0),
        }
    }

    fn plan(&self, call: ApiCall) -> &Plan<twilio::Error> {
        match call {
            ApiCall::List => &self.list,
            ApiCall::Resource => &self.resource,
            ApiCall::Room => &self.room,
            ApiCall::MediaUrl => &self.media_url,
        }
    }

    /// The next `times` calls of `call` (every one, for `None`) fail with `make(sid)`
    /// (for listings, `make(kind)`; for rooms, the room's SID).
    pub fn fail(
        &self,
        call: ApiCall,
        times: Option<u32>,
        make: impl Fn(&str) -> twilio::Error + Send + Sync + 'static,
    ) {
        self.plan(call).arm(times, Arc::new(make));
    }

    /// Every call of `call` waits `delay` first.
    pub fn delay(&self, call: ApiCall, delay: Duration) {
        *self.plan(call).delay.lock().expect("fault plan lock") = delay;
    }

    /// The next `times` `/Media` URLs handed out carry a signature storage refuses, as
    /// URLs that expired before they were used.
    pub fn expire_urls(&self, times: u32) {
        *self.expire.lock().expect("fault plan lock") = Some(times);
    }

    /// Disarms every fault.
    pub fn clear(&self) {
        for call in ApiCall::ALL {
            self.plan(call).clear();
        }
        *self.expire.lock().expect("fault plan lock") = None;
    }

    /// Faults injected so far (errors and expired URLs).
    pub fn injected(&self) -> u64 {
        ApiCall::ALL
            .iter()
            .map(|c| self.plan(*c).injected.load(Ordering::SeqCst))
            .sum::<u64>()
            + self.expired.load(Ordering::SeqCst)
    }

    /// `url` with its signature spoiled, when an expiry is armed.
    fn maybe_expire(&self, url: MediaUrl) -> MediaUrl {
        let mut armed = self.expire.lock().expect("fault plan lock");
        match armed.as_mut() {
            Some(n) if *n > 0 => *n -= 1,
            _ => return url,
        }
        self.expired.fetch_add(1, Ordering::SeqCst);
        let mut spoiled = url.url().clone();
        let pairs: Vec<(String, String)> = spoiled
            .query_pairs()
            .map(|(k, v)| {
                let v = if k.to_ascii_lowercase().contains("signature") {
                    format!("expired{v}")
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        spoiled
            .query_pairs_mut()
            .clear()
            .extend_pairs(pairs)
            .append_pair("X-Fault", "expired");
        MediaUrl::new(spoiled, url.expires_at())
    }
}

impl Api for FaultyApi {
    fn list<'a>(
        &'a self,
        kind: MediaKind,
        filter: &'a MediaFilter,
    ) -> BoxFuture<'a, twilio::Result<Vec<Media>>> {
        Box::pin(self.list.run(kind.plural(), self.inner.list(kind, filter)))
    }

    fn resource<'a>(&'a self, media: &'a MediaRef) -> BoxFuture<'a, twilio::Result<Media>> {
        Box::pin(self.resource.run(&media.sid, self.inner.resource(media)))
    }

    fn room<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, twilio::Result<Room>> {
        Box::pin(self.room.run(sid, self.inner.room(sid)))
    }

    fn media_url<'a>(&'a self, media: &'a MediaRef) -> BoxFuture<'a, twilio::Result<MediaUrl>> {
        Box::pin(async move {
            let url = self
                .media_url
                .run(&media.sid, self.inner.media_url(media))
                .await?;
            Ok(self.maybe_expire(url))
        })
    }

    fn invalidate_url(&self, sid: &str, url: &MediaUrl) {
        self.inner.invalidate_url(sid, url)
    }
}

/// An [`ObjectSource`] with faults on demand.
///
/// Only `get_range` is passed on: the in-place and suffix reads keep the trait's
/// defaults (fetch, then work on the bytes; no suffix, so a reader fetches the tail with
/// a range), so that every GET a reader makes meets the armed faults.
pub struct FaultySource {
    inner: Arc<dyn ObjectSource>,
    plan: Plan<ObjectError>,
    /// `(sid, bytes)`: GETs of `sid` that overlap stored `bytes` never answer.
    stalls: Mutex<Vec<(String, std::ops::Range<u64>)>>,
    /// GETs stalled now (a dropped one no longer counts).
    stalled_now: Arc<AtomicU64>,
}

/// Counts one stalled GET for as long as it lives.
struct Stalled(Arc<AtomicU64>);

impl Drop for Stalled {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl FaultySource {
    /// Passes every GET on to `inner` until a fault is armed.
    pub fn new(inner: Arc<dyn ObjectSource>) -> Self {
        Self {
            inner,
            plan: Plan::default(),
            stalls: Mutex::new(Vec::new()),
            stalled_now: Arc::default(),
        }
    }

    /// GETs of `sid` whose range overlaps stored `bytes` never answer, as a storage
    /// that sends their body a byte now and then, for ever: only a caller's deadline
    /// (dropping the call) ends them. Each counts as a fault injected.
    pub fn stall(&self, sid: &str, bytes: std::ops::Range<u64>) {
        let mut stalls = self.stalls.lock().expect("fault plan lock");
        stalls.push((sid.to_owned(), bytes));
    }

    /// GETs stalled now: dropped ones are not counted.
    pub fn stalled_now(&self) -> u64 {
        self.stalled_now.load(Ordering::SeqCst)
    }

    /// Whether a GET of `[start, end)` of `sid` stalls.
    fn stalls(&self, sid: &str, start: u64, end: u64) -> bool {
        let stalls = self.stalls.lock().expect("fault plan lock");
        stalls
            .iter()
            .any(|(s, bytes)| s == sid && start < bytes.end && end > bytes.start)
    }

    /// The next `times` GETs (every one, for `None`) fail with `make(sid)`.
    pub fn fail(
        &self,
        times: Option<u32>,
        make: impl Fn(&str) -> ObjectError + Send + Sync + 'static,
    ) {
        self.plan.arm(times, Arc::new(make));
    }

    /// Every GET waits `delay` first.
    pub fn delay(&self, delay: Duration) {
        *self.plan.delay.lock().expect("fault plan lock") = delay;
    }

    /// Disarms every fault (GETs stalled already stay stalled).
    pub fn clear(&self) {
        self.plan.clear();
        self.stalls.lock().expect("fault plan lock").clear();
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.plan.injected.load(Ordering::SeqCst)
    }
}

impl ObjectSource for FaultySource {
    fn get_range(
        &self,
        media: &MediaRef,
        start: u64,
        end: u64,
    ) -> BoxFuture<'_, Result<Fetched, ObjectError>> {
        let media = media.clone();
        Box::pin(async move {
            if self.stalls(&media.sid, start, end) {
                self.plan.injected.fetch_add(1, Ordering::SeqCst);
                self.stalled_now.fetch_add(1, Ordering::SeqCst);
                let _stalled = Stalled(self.stalled_now.clone());
                return std::future::pending().await;
            }
            let call = self.inner.get_range(&media, start, end);
            self.plan.run(&media.sid, call).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::MemoryStorage;
    use crate::twilio::{MemoryApi, Recording};

    const SID: &str = "RT0123456789abcdef0123456789abcdef";

    fn transport(sid: &str) -> ObjectError {
        ObjectError::Transport {
            sid: sid.into(),
            detail: "connection reset".into(),
        }
    }

    #[tokio::test]
    async fn storage_faults_hit_as_many_calls_as_armed() {
        let mem = Arc::new(MemoryStorage::new());
        mem.put(SID, vec![1u8; 100], Vec::new());
        let f = FaultySource::new(mem);
        let media = MediaRef::recording(SID);
        f.fail(Some(2), transport);
        assert!(f.get_range(&media, 0, 10).await.is_err());
        assert!(f.get_range(&media, 0, 10).await.is_err());
        assert_eq!(f.get_range(&media, 0, 10).await.unwrap().data.len(), 10);
        assert_eq!(f.injected(), 2);
        f.fail(None, transport);
        for _ in 0..5 {
            assert!(f.get_range(&media, 0, 10).await.is_err());
        }
        f.clear();
        assert!(f.get_range(&media, 0, 10).await.is_ok());
        assert_eq!(f.injected(), 7);
    }

    #[tokio::test]
    async fn a_stalled_get_answers_only_if_it_ends_before_the_stall() {
        let mem = Arc::new(MemoryStorage::new());
        mem.put(SID, vec![1u8; 100], Vec::new());
        let f = FaultySource::new(mem);
        let media = MediaRef::recording(SID);
        f.stall(SID, 50..90);
        assert_eq!(f.get_range(&media, 0, 50).await.unwrap().data.len(), 50);
        let stalled = tokio::time::timeout(Duration::from_millis(50), async {
            let call = f.get_range(&media, 40, 60);
            tokio::task::yield_now().await;
            call.await
        });
        assert!(stalled.await.is_err(), "it never answers");
        assert_eq!(
            (f.stalled_now(), f.injected()),
            (0, 1),
            "dropped: not stalled"
        );
        assert_eq!(f.get_range(&media, 90, 100).await.unwrap().data.len(), 10);
        f.clear();
        assert_eq!(f.get_range(&media, 40, 60).await.unwrap().data.len(), 20);
    }

    #[tokio::test]
    async fn delays_and_expired_urls() {
        let api = Arc::new(MemoryApi::new());
        api.put(Recording {
            sid: SID.into(),
            status: Some("completed".into()),
            ..Default::default()
        });
        let f = FaultyApi::new(api);
        let media = MediaRef::recording(SID);
        f.delay(ApiCall::MediaUrl, Duration::from_millis(200));
        let started = std::time::Instant::now();
        let good = f.media_url(&media).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200));
        f.expire_urls(1);
        let spoiled = f.media_url(&media).await.unwrap();
        assert!(spoiled.url().as_str().contains("X-Fault=expired"));
        assert!(!good.url().as_str().contains("X-Fault"));
        let again = f.media_url(&media).await.unwrap();
        assert!(!again.url().as_str().contains("X-Fault"));
        f.fail(ApiCall::List, Some(1), |_| {
            twilio::Error::Invalid("down".into())
        });
        let all = MediaFilter::default();
        assert!(f.list(MediaKind::Recording, &all).await.is_err());
        assert_eq!(f.list(MediaKind::Recording, &all).await.unwrap().len(), 1);
        assert_eq!(f.injected(), 2);
    }
}
