//! Which media to fetch, the pre-signed URL `/Media` gives for it, and the cache of those
//! URLs.
//!
//! `/Media` answers a 302 whose body is `{"redirect_to": "<pre-signed URL>"}`, valid for
//! the `Ttl` asked (at most an hour). A URL is reused until [`EXPIRY_MARGIN`] before it
//! expires, or until the storage says 403 and the caller [`invalidates`] it. Concurrent
//! callers for one SID share one `/Media` request: each SID has an async lock, held only
//! while that SID is being resolved; the map itself is behind a `std::sync::Mutex` that is
//! never held across an `.await`.
//!
//! [`media_url_allowed`] is the rule for which URLs are fetched at all (an `https` API
//! hands out `https` URLs only; any host).
//!
//! A [`MediaUrl`] never shows its query string (the signature) in `Debug` or `Display`.
//!
//! [`invalidates`]: super::TwilioClient::invalidate

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::error::redact_url;
use super::kind::MediaKind;
use super::types::EncryptionDetails;

/// The `Ttl` asked of `/Media`: the longest Twilio allows.
pub const MEDIA_TTL: Duration = Duration::from_secs(3600);

/// A URL is not handed out when it has less than this left to live: a read that starts
/// on it must have time to finish (and retry) before the signature expires. URLs that
/// live only a few minutes (an emulator's, a short `Ttl`) keep a quarter of their
/// lifetime as margin instead, so that they are still reused.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// One stored object, named by its resource.
/// One stored object, named by its resource. Its identity is its kind and SID (equality
/// and hashing look at nothing else); a call recording also carries how it was
/// encrypted, because that is said by its resource, not by the stored object.
#[derive(Debug, Clone)]
pub struct MediaRef {
    /// Recording, composition or call recording.
    pub kind: MediaKind,
    /// Its SID.
    pub sid: String,
    /// A call recording's `encryption_details`; `None` for one stored unencrypted, and
    /// for the Video kinds (their objects' headers say it).
    pub encryption: Option<Arc<EncryptionDetails>>,
}

impl PartialEq for MediaRef {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.sid == other.sid
    }
}

impl Eq for MediaRef {}

impl std::hash::Hash for MediaRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.sid.hash(state);
    }
}

impl MediaRef {
    /// The media of `sid`, of `kind`, with nothing said about its encryption.
    pub fn new(kind: MediaKind, sid: impl Into<String>) -> Self {
        Self {
            kind,
            sid: sid.into(),
            encryption: None,
        }
    }

    /// A recording's media.
    pub fn recording(sid: impl Into<String>) -> Self {
        Self::new(MediaKind::Recording, sid)
    }

    /// A composition's media.
    pub fn composition(sid: impl Into<String>) -> Self {
        Self::new(MediaKind::Composition, sid)
    }

    /// A call recording's media, encrypted as `encryption` says (`None`: stored as is).
    pub fn voice(sid: impl Into<String>, encryption: Option<EncryptionDetails>) -> Self {
        Self {
            kind: MediaKind::Voice,
            sid: sid.into(),
            encryption: encryption.map(Arc::new),
        }
    }

    /// `/v1/Recordings/{sid}/Media`, `/v1/Compositions/{sid}/Media`, or a call
    /// recording's `/2010-04-01/Accounts/{account}/Recordings/{sid}.wav`.
    pub fn media_path(&self, account: &str) -> String {
        self.kind.media_path(account, &self.sid)
    }
}

/// A pre-signed storage URL and when it stops working.
#[derive(Clone, PartialEq, Eq)]
pub struct MediaUrl {
    url: reqwest::Url,
    expires_at: Instant,
    fresh_until: Instant,
}

impl MediaUrl {
    /// Wraps a URL valid until `expires_at`.
    pub fn new(url: reqwest::Url, expires_at: Instant) -> Self {
        let lifetime = expires_at.saturating_duration_since(Instant::now());
        let margin = EXPIRY_MARGIN.min(lifetime / 4);
        Self {
            url,
            expires_at,
            fresh_until: expires_at - margin,
        }
    }

    /// The full URL, signature included: for the request only, never for messages.
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// The URL without its query string, for messages.
    pub fn redacted(&self) -> String {
        redact_url(self.url.as_str())
    }

    /// When the signature expires (as `/Media` was told).
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// Whether it still has more than its margin ([`EXPIRY_MARGIN`], or a quarter of a
    /// short lifetime) to live at `now`.
    pub fn fresh_at(&self, now: Instant) -> bool {
        now < self.fresh_until
    }
}

/// Whether a pre-signed URL that `/Media` handed out (its `redirect_to`, or `Location`)
/// may be fetched, given the API's base URL: `Err` says why not, in words for a message.
///
/// - Only `http` and `https` URLs with a host are fetched (`file:`, `ftp:`, `data:`, …
///   never).
/// - Under an `https` API (Twilio's, always) only an `https` URL is: the object, and the
///   signature in its query string, must not cross the network in the clear, and a
///   plain-`http` answer is what a proxy or a hostile server downgrading the media would
///   send. An `http` API (the emulator, a test proxy on 127.0.0.1) may hand out either.
/// - The host is not checked: Twilio's media is served from storage hosts that are not
///   the API's (S3 and its regional names), so another host is the normal case. No
///   credential is ever sent with the storage GET, wherever it goes.
pub fn media_url_allowed(api: &reqwest::Url, target: &reqwest::Url) -> Result<(), String> {
    let shown = || redact_url(target.as_str());
    match target.scheme() {
        "https" => {}
        "http" if api.scheme() == "https" => {
            return Err(format!(
                "refusing the http:// media URL {} under the https API {}: pre-signed media \
                 URLs must be https",
                shown(),
                redact_url(api.as_str())
            ));
        }
        "http" => {}
        other => {
            return Err(format!(
                "refusing the media URL {}: scheme {other:?} (only http and https are fetched)",
                shown()
            ));
        }
    }
    if target.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "refusing the media URL {}: it names no host",
            shown()
        ));
    }
    Ok(())
}

/// How long a pre-signed URL says it is valid: `X-Amz-Expires` (SigV4, seconds from
/// signing, which was just now) or `Expires` (SigV2, Unix time). `None` when it says
/// nothing; then the `Ttl` asked of `/Media` is all there is to go by.
pub fn signed_lifetime(url: &reqwest::Url, now: SystemTime) -> Option<Duration> {
    let mut lifetime = None;
    for (k, v) in url.query_pairs() {
        if k.eq_ignore_ascii_case("x-amz-expires") {
            lifetime = v.trim().parse::<u64>().ok().map(Duration::from_secs);
        } else if k == "Expires" && lifetime.is_none() {
            let at = v.trim().parse::<u64>().ok()?;
            let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
            lifetime = Some(Duration::from_secs(at.saturating_sub(now)));
        }
    }
    lifetime
}

impl fmt::Debug for MediaUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaUrl")
            .field("url", &self.redacted())
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl fmt::Display for MediaUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[derive(Default)]
struct Slot {
    url: Option<MediaUrl>,
    resolving: Arc<tokio::sync::Mutex<()>>,
}

/// Cached `/Media` answers, by SID.
#[derive(Default)]
pub(crate) struct UrlCache {
    // std Mutex: never held across an .await (see the module doc).
    slots: Mutex<HashMap<String, Slot>>,
}

impl UrlCache {
    pub(crate) fn fresh(&self, sid: &str) -> Option<MediaUrl> {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .get(sid)
            .and_then(|s| s.url.clone())
            .filter(|u| u.fresh_at(Instant::now()))
    }

    /// The lock to hold while resolving `sid`.
    pub(crate) fn resolving_lock(&self, sid: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(sid.to_string()).or_default().resolving.clone()
    }

    pub(crate) fn store(&self, sid: &str, url: MediaUrl) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        // Forget stale entries now and then so the map does not grow without bound.
        if slots.len() > 4096 {
            slots.retain(|_, s| {
                Arc::strong_count(&s.resolving) > 1
                    || s.url.as_ref().is_some_and(|u| u.fresh_at(now))
            });
        }
        slots.entry(sid.to_string()).or_default().url = Some(url);
    }

    pub(crate) fn invalidate(&self, sid: &str, only: Option<&MediaUrl>) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get_mut(sid)
            && (only.is_none() || slot.url.as_ref() == only)
        {
            slot.url = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_freshness_and_invalidation() {
        let cache = UrlCache::default();
        let now = Instant::now();
        let u = reqwest::Url::parse("https://b.example/o?X-Amz-Signature=s").unwrap();
        let short = MediaUrl::new(u.clone(), now + Duration::from_secs(20));
        assert!(short.fresh_at(now + Duration::from_secs(14)));
        assert!(
            !short.fresh_at(now + Duration::from_secs(16)),
            "a quarter as margin"
        );
        let long = MediaUrl::new(u.clone(), now + Duration::from_secs(3600));
        assert!(long.fresh_at(now + Duration::from_secs(3530)));
        assert!(
            !long.fresh_at(now + Duration::from_secs(3545)),
            "60 s as margin"
        );
        cache.store("RT1", MediaUrl::new(u.clone(), now));
        assert_eq!(cache.fresh("RT1"), None, "expired: not fresh");
        let good = MediaUrl::new(u.clone(), now + Duration::from_secs(3600));
        cache.store("RT1", good.clone());
        assert_eq!(cache.fresh("RT1"), Some(good.clone()));
        let other = MediaUrl::new(u, now + Duration::from_secs(7200));
        cache.invalidate("RT1", Some(&other));
        assert!(
            cache.fresh("RT1").is_some(),
            "a different URL does not invalidate"
        );
        cache.invalidate("RT1", Some(&good));
        assert_eq!(cache.fresh("RT1"), None);
        assert!(!format!("{good:?} {good}").contains("Signature"));
    }

    /// Issue 16, item 6: under an https API only https media URLs are fetched; every
    /// pair of API scheme and URL scheme, and URLs with no host.
    #[test]
    fn media_urls_by_scheme() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        let cases = [
            (
                "https://video.twilio.com",
                "https://s3.amazonaws.com/b/o?X-Amz-Signature=s",
                true,
            ),
            ("https://video.twilio.com", "https://127.0.0.2:9/o", true),
            (
                "https://video.twilio.com",
                "http://s3.amazonaws.com/b/o?X-Amz-Signature=s",
                false,
            ),
            ("https://video.twilio.com", "http://127.0.0.1:8080/o", false),
            (
                "https://video.twilio.com",
                "HTTP://s3.amazonaws.com/o",
                false,
            ),
            (
                "https://video.twilio.com",
                "ftp://s3.amazonaws.com/o",
                false,
            ),
            ("https://video.twilio.com", "file:///etc/passwd", false),
            ("https://video.twilio.com", "data:text/plain,abc", false),
            ("http://127.0.0.1:8080", "http://127.0.0.2:9/o", true),
            ("http://127.0.0.1:8080", "https://s3.amazonaws.com/o", true),
            ("http://127.0.0.1:8080", "ftp://127.0.0.1/o", false),
            ("http://127.0.0.1:8080", "file:///etc/passwd", false),
            ("http://127.0.0.1:8080", "unix:/run/x.sock", false),
        ];
        for (api, target, ok) in cases {
            let got = media_url_allowed(&url(api), &url(target));
            assert_eq!(got.is_ok(), ok, "{api} -> {target}: {got:?}");
            if let Err(why) = got {
                assert!(
                    !why.contains("Signature=s"),
                    "no signature in messages: {why}"
                );
                assert!(why.starts_with("refusing the"), "{why}");
            }
        }
        let e =
            media_url_allowed(&url("https://video.twilio.com"), &url("http://h/o")).unwrap_err();
        assert!(e.contains("must be https"), "{e}");
    }

    #[test]
    fn lifetimes_from_the_signature() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        assert_eq!(
            signed_lifetime(
                &url("https://b/o?X-Amz-Date=20240101T000000Z&X-Amz-Expires=600&X-Amz-Signature=x"),
                now
            ),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            signed_lifetime(
                &url("https://b/o?AWSAccessKeyId=A&Expires=1000300&Signature=x"),
                now
            ),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            signed_lifetime(&url("https://b/o?Expires=999000"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(signed_lifetime(&url("https://b/o"), now), None);
    }
}
