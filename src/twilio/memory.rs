//! [`MemoryApi`]: an in-memory account for tests of everything above the [`Api`] trait.
//!
//! It holds recordings, compositions and rooms that a test adds, changes and removes while
//! the code under test runs, answers listings with the API's filters (status, room,
//! creation date), and hands out `/Media` URLs of the form
//! `memory://objects/SID?generation=N` that an in-memory storage such as
//! [`crate::object::MemoryStorage`] ignores. It counts every call, so that a test can
//! prove what made no request. No network, no clock, no retries.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use super::api::Api;
use super::error::{Error, Result};
use super::kind::{Media, MediaFilter, MediaKind};
use super::media::{MediaRef, MediaUrl};
use super::types::Room;

/// Calls made to a [`MemoryApi`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiCalls {
    /// [`Api::list`] calls.
    pub lists: u64,
    /// [`Api::resource`] calls.
    pub resources: u64,
    /// [`Api::room`] calls.
    pub rooms: u64,
    /// [`Api::media_url`] calls.
    pub media_urls: u64,
}

/// An account held in memory.
#[derive(Default)]
pub struct MemoryApi {
    media: Mutex<Vec<Media>>,
    rooms: Mutex<Vec<Room>>,
    lists: AtomicU64,
    resources: AtomicU64,
    room_calls: AtomicU64,
    media_urls: AtomicU64,
    generation: AtomicU64,
}

impl MemoryApi {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a recording or composition, or replaces the one with its SID.
    pub fn put(&self, media: impl Into<Media>) {
        let media = media.into();
        let mut all = self.media.lock().expect("memory api lock");
        match all.iter_mut().find(|m| m.sid() == media.sid()) {
            Some(slot) => *slot = media,
            None => all.push(media),
        }
    }

    /// Adds a room, or replaces the one with its SID.
    pub fn put_room(&self, room: Room) {
        let mut all = self.rooms.lock().expect("memory api lock");
        match all.iter_mut().find(|r| r.sid == room.sid) {
            Some(slot) => *slot = room,
            None => all.push(room),
        }
    }

    /// Removes the resource `sid`, media or room (as if deleted); whether it was there.
    pub fn remove(&self, sid: &str) -> bool {
        let mut all = self.media.lock().expect("memory api lock");
        let before = all.len();
        all.retain(|m| m.sid() != sid);
        let mut rooms = self.rooms.lock().expect("memory api lock");
        let rooms_before = rooms.len();
        rooms.retain(|r| r.sid != sid);
        all.len() != before || rooms.len() != rooms_before
    }

    /// The calls made so far.
    pub fn calls(&self) -> ApiCalls {
        ApiCalls {
            lists: self.lists.load(Ordering::SeqCst),
            resources: self.resources.load(Ordering::SeqCst),
            rooms: self.room_calls.load(Ordering::SeqCst),
            media_urls: self.media_urls.load(Ordering::SeqCst),
        }
    }

    fn find(&self, media: &MediaRef) -> Option<Media> {
        let all = self.media.lock().expect("memory api lock");
        all.iter()
            .find(|m| m.kind() == media.kind && m.sid() == media.sid)
            .cloned()
    }
}

/// Whether `m` passes `filter` as Twilio's listing would filter it.
fn matches(m: &Media, filter: &MediaFilter) -> bool {
    let status = filter.status.as_deref().is_none_or(|s| m.status_is(s));
    let room = filter.room.as_deref().is_none_or(|r| m.room() == Some(r));
    let created = m.date_created().unwrap_or_default();
    let (after, before) = if m.kind().is_video() {
        // RFC 3339 in UTC compares as text.
        let after = filter
            .date_created_after
            .as_deref()
            .is_none_or(|a| created >= a);
        let before = filter
            .date_created_before
            .as_deref()
            .is_none_or(|b| created < b);
        (after, before)
    } else {
        // RFC 2822: compared as times.
        let t = m.modified();
        let at = |d: &str| super::parse_date(d);
        let after = (filter.date_created_after.as_deref()).is_none_or(|a| t >= at(a));
        let before = (filter.date_created_before.as_deref()).is_none_or(|b| t < at(b));
        (after, before)
    };
    status && room && after && before
}

fn not_found(what: String) -> Error {
    Error::Api {
        what,
        status: 404,
        code: Some(20404),
        message: "The requested resource was not found".into(),
        more_info: None,
    }
}

impl Api for MemoryApi {
    fn list<'a>(
        &'a self,
        kind: MediaKind,
        filter: &'a MediaFilter,
    ) -> BoxFuture<'a, Result<Vec<Media>>> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        let all = self.media.lock().expect("memory api lock");
        let found: Vec<Media> = all
            .iter()
            .filter(|m| m.kind() == kind && matches(m, filter))
            .cloned()
            .collect();
        Box::pin(async move { Ok(found) })
    }

    fn resource<'a>(&'a self, media: &'a MediaRef) -> BoxFuture<'a, Result<Media>> {
        self.resources.fetch_add(1, Ordering::SeqCst);
        let found = self
            .find(media)
            .ok_or_else(|| not_found(media.kind.resource_path("", &media.sid)));
        Box::pin(async move { found })
    }

    fn room<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Room>> {
        self.room_calls.fetch_add(1, Ordering::SeqCst);
        let all = self.rooms.lock().expect("memory api lock");
        let found = all
            .iter()
            .find(|r| r.sid == sid)
            .cloned()
            .ok_or_else(|| not_found(format!("/v1/Rooms/{sid}")));
        Box::pin(async move { found })
    }

    fn media_url<'a>(&'a self, media: &'a MediaRef) -> BoxFuture<'a, Result<MediaUrl>> {
        self.media_urls.fetch_add(1, Ordering::SeqCst);
        let answer = match self.find(media) {
            Some(m) if m.status_is("completed") => {
                let n = self.generation.fetch_add(1, Ordering::SeqCst);
                let url = format!("memory://objects/{}?generation={n}", media.sid);
                let url = reqwest::Url::parse(&url).map_err(|e| Error::Invalid(e.to_string()));
                url.map(|u| MediaUrl::new(u, Instant::now() + Duration::from_secs(3600)))
            }
            found => Err(Error::NoMedia {
                sid: media.sid.clone(),
                state: found
                    .and_then(|m| m.status().map(|s| format!("status {s}")))
                    .unwrap_or_else(|| "not completed, or deleted".into()),
            }),
        };
        Box::pin(async move { answer })
    }

    fn invalidate_url(&self, _sid: &str, _url: &MediaUrl) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twilio::{Composition, Recording};

    fn rec(n: u8, room: &str, status: &str, created: &str) -> Recording {
        Recording {
            sid: format!("RT{:032x}", n),
            status: Some(status.into()),
            container_format: Some("mka".into()),
            room_sid: Some(room.into()),
            date_created: Some(created.into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn lists_filter_like_the_api_and_count_calls() {
        let api = MemoryApi::new();
        api.put(rec(1, "RM1", "completed", "2026-01-01T00:00:00Z"));
        api.put(rec(2, "RM2", "completed", "2026-02-01T00:00:00Z"));
        api.put(rec(3, "RM1", "processing", "2026-03-01T00:00:00Z"));
        api.put(Composition {
            sid: format!("CJ{:032x}", 1),
            status: Some("completed".into()),
            ..Default::default()
        });
        let sids = |v: Vec<Media>| {
            v.iter()
                .map(|m| m.sid()[30..].to_owned())
                .collect::<Vec<_>>()
        };
        let all = MediaFilter::default();
        assert_eq!(
            sids(api.list(MediaKind::Recording, &all).await.unwrap()).len(),
            3
        );
        let f = MediaFilter {
            status: Some("completed".into()),
            room: Some("RM1".into()),
            ..Default::default()
        };
        assert_eq!(
            sids(api.list(MediaKind::Recording, &f).await.unwrap()),
            ["0001"]
        );
        let f = MediaFilter {
            date_created_after: Some("2026-01-15T00:00:00Z".into()),
            ..Default::default()
        };
        assert_eq!(
            sids(api.list(MediaKind::Recording, &f).await.unwrap()),
            ["0002", "0003"]
        );
        assert_eq!(
            api.list(MediaKind::Composition, &all).await.unwrap().len(),
            1
        );
        assert!(api.remove(&format!("RT{:032x}", 2)));
        assert_eq!(api.list(MediaKind::Recording, &all).await.unwrap().len(), 2);
        assert_eq!(api.calls().lists, 5);
    }

    #[tokio::test]
    async fn resources_and_media_urls_of_what_is_there() {
        let api = MemoryApi::new();
        api.put(rec(1, "RM1", "completed", "2026-01-01T00:00:00Z"));
        api.put(rec(2, "RM1", "processing", "2026-01-01T00:00:00Z"));
        let one = MediaRef::recording(format!("RT{:032x}", 1));
        assert_eq!(api.resource(&one).await.unwrap().sid(), one.sid);
        assert!(
            api.media_url(&one)
                .await
                .unwrap()
                .url()
                .as_str()
                .starts_with("memory://")
        );
        let processing = MediaRef::recording(format!("RT{:032x}", 2));
        assert!(matches!(
            api.media_url(&processing).await,
            Err(Error::NoMedia { state, .. }) if state == "status processing"
        ));
        let gone = MediaRef::recording(format!("RT{:032x}", 9));
        assert!(matches!(
            api.resource(&gone).await,
            Err(Error::Api { status: 404, .. })
        ));
        assert!(matches!(
            api.media_url(&gone).await,
            Err(Error::NoMedia { .. })
        ));
    }

    #[tokio::test]
    async fn rooms_by_sid_counted() {
        let api = MemoryApi::new();
        api.put_room(Room {
            sid: "RM1".into(),
            unique_name: Some("daily".into()),
            ..Default::default()
        });
        assert_eq!(
            api.room("RM1").await.unwrap().unique_name.as_deref(),
            Some("daily")
        );
        assert!(matches!(
            api.room("RM2").await,
            Err(Error::Api { status: 404, .. })
        ));
        assert!(api.remove("RM1"));
        assert!(api.room("RM1").await.is_err());
        assert_eq!(api.calls().rooms, 3);
        assert_eq!(api.calls().resources, 0);
    }
}
