//! The part of Twilio's API the read path and the filesystem need, as a trait: listings
//! of media, one resource, one room, and the pre-signed `/Media` URL of a stored object.
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

use super::client::TwilioClient;
use super::error::Result;
use super::kind::{Media, MediaFilter, MediaKind};
use super::media::{MediaRef, MediaUrl};
use super::types::Room;

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

    /// One room (`GET /v1/Rooms/{sid}`), for its directory's attributes. A room that
    /// does not exist is an [`super::Error::Api`] with status 404.
    fn room<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Room>>;

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
        Box::pin(self.media(kind, filter))
    }

    fn resource<'a>(&'a self, media: &'a MediaRef) -> BoxFuture<'a, Result<Media>> {
        Box::pin(TwilioClient::resource(self, media))
    }

    fn room<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Room>> {
        Box::pin(TwilioClient::room(self, sid))
    }

    fn media_url<'a>(&'a self, media: &'a MediaRef) -> BoxFuture<'a, Result<MediaUrl>> {
        Box::pin(TwilioClient::media_url(self, media))
    }

    fn invalidate_url(&self, sid: &str, url: &MediaUrl) {
        TwilioClient::invalidate_url(self, sid, url)
    }
}
