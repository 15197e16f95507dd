//! The Twilio Video REST client: credentials, typed resources, listings with paging,
//! `/Media` resolution to pre-signed storage URLs, retries and error mapping.
//!
//! This module owns everything that talks to `video.twilio.com` (or whatever `--api-url`
//! names), and to `accounts.twilio.com` for the public keys `doctor` checks: [`Credentials`] (environment, then config file), [`TwilioClient`] (one
//! keep-alive pool shared with [`crate::object`], a semaphore on concurrent API requests,
//! retries per [`crate::retry::RetryPolicy`]), the serde [`types`], and the cache of
//! pre-signed URLs by SID ([`MediaUrl`]). [`Api`] is the part of it the read core and
//! the filesystem use, as a trait, with [`MemoryApi`] as its in-memory double;
//! [`MediaKind`] and [`Media`] hold every difference between recordings and
//! compositions, once.
//!
//! It must not read the stored objects themselves (that is [`crate::object`]), decrypt
//! anything, or let a secret reach a message or a log: credentials stay in zeroizing
//! strings with redacting `Debug`, and URLs are shown through [`redact_url`].

mod api;
mod client;
mod credentials;
mod error;
mod kind;
mod media;
mod memory;
pub mod types;

pub use api::Api;
pub use client::{
    ACCOUNTS_URL_ENV, API_URL_ENV, ClientConfig, CompositionFilter, DEFAULT_ACCOUNTS_URL,
    DEFAULT_API_URL, MAX_PAGES, PAGE_SIZE, PageGuard, Pager, RecordingFilter, RoomFilter,
    TwilioClient, accounts_url_for, api_error, is_retryable, validate_sid,
};
pub use credentials::{
    AuthKind, CredentialSource, Credentials, default_config_path, permission_warning,
};
pub use error::{Access, Error, Result, describe_reqwest, redact_url};
pub use kind::{Media, MediaFilter, MediaKind};
pub use media::{EXPIRY_MARGIN, MEDIA_TTL, MediaRef, MediaUrl, media_url_allowed, signed_lifetime};
pub use memory::{ApiCalls, MemoryApi};
pub use types::{
    Composition, CompositionSettings, EncryptionDetails, GroupingSids, PublicKeyCredential,
    Recording, RecordingSettings, Room, StorageSettings, VoiceRecording, media_redirect_target,
    parse_date, parse_page, parse_page_with, parse_rfc2822,
};
