//! The part of Twilio's API the read path and the filesystem need, as a trait: listings
//! of media, one resource, and the pre-signed `/Media` URL of a stored object.
//!
//! [`TwilioClient`] is the real implementation; [`super::MemoryApi`] the in-memory
//! double that tests drive directly; [`crate::faults::FaultyApi`] wraps either to inject
//! errors, delays and expired URLs. Everything above this trait (the read core, the
//! filesystem, the HTTP gateway) is written against it, never against HTTP.
//!
//! This module only adapts: it must not cache, retry or interpret errors (the client
//! does that below it; the filesystem and read core decide what an error means to a
//! reader above it).

use futures_util::future::BoxFuture;

use super::client::{CompositionFilter, RecordingFilter, TwilioClient};
use super::error::Result;
use super::kind::{Media, MediaFilter, MediaKind};
use super::media::{MediaRef, MediaUrl};

/// Listings, single resources and `/Media` URLs.
pub trait Api: Send + Sync {
    /// Every item of `kind` that matches `filter`, all pages.
    fn list<'a>(
        &'a self,
        kind: MediaKind,
        filter: &'a MediaFilter,
    ) -> BoxFuture<'a, Result<Vec<Media>>>;

    /// One recording or composition, by SID. A SID that does not exist is an
    /// [`super::Error::Api`] with status 404.
    fn resource<'a>(&'a self, media: &'a MediaRef) -> BoxFuture<'a, Result<Media>>;

    /// The pre-signed storage URL of `media`'s object (cached while fresh). Media that
    /// cannot be had (processing, deleted) is [`super::Error::NoMedia`].
    fn media_url<'a>(&'a self, media: &'a MediaRef) -> BoxFuture<'a, Result<MediaUrl>>;

    /// Forgets `url` for `sid` if it is still the one handed out: storage refused it.
    fn invalidate_url(&self, sid: &str, url: &MediaUrl);
}

impl Api for TwilioClient {
    fn list<'a>(
        &'a self,
        kind: MediaKind,
        filter: &'a MediaFilter,
    ) -> BoxFuture<'a, Result<Vec<Media>>> {
        Box::pin(async move {
            Ok(match kind {
                MediaKind::Recording => {
                    let f = RecordingFilter {
                        status: filter.status.clone(),
                        grouping_sid: filter.room.clone(),
                        date_created_after: filter.date_created_after.clone(),
                        date_created_before: filter.date_created_before.clone(),
                        ..Default::default()
                    };
                    let all = self.recordings(&f).await?;
                    all.into_iter().map(Media::from).collect()
                }
                MediaKind::Composition => {
                    let f = CompositionFilter {
                        status: filter.status.clone(),
                        room_sid: filter.room.clone(),
                        date_created_after: filter.date_created_after.clone(),
                        date_created_before: filter.date_created_before.clone(),
                    };
                    let all = self.compositions(&f).await?;
                    all.into_iter().map(Media::from).collect()
                }
            })
        })
    }

    fn resource<'a>(&'a self, media: &'a MediaRef) -> BoxFuture<'a, Result<Media>> {
        Box::pin(async move {
            Ok(match media.kind {
                MediaKind::Recording => self.recording(&media.sid).await?.into(),
                MediaKind::Composition => self.composition(&media.sid).await?.into(),
            })
        })
    }

    fn media_url<'a>(&'a self, media: &'a MediaRef) -> BoxFuture<'a, Result<MediaUrl>> {
        Box::pin(TwilioClient::media_url(self, media))
    }

    fn invalidate_url(&self, sid: &str, url: &MediaUrl) {
        TwilioClient::invalidate_url(self, sid, url)
    }
}
