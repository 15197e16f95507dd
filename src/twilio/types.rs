//! The API's resources as serde types, and the small parsers their fields need.
//!
//! Deserialisation is lenient on purpose: only `sid` is required, every other field is
//! an `Option`, unknown fields are ignored, and numbers are accepted as JSON numbers or
//! numeric strings. A field Twilio adds, drops or retypes tomorrow must not make a whole
//! listing fail. Enumerations (`status`, `codec`, `container_format`) stay strings and
//! are compared case-insensitively: the spec says `OPUS`, the examples say `opus`.
//!
//! Dates stay as the API's strings (RFC 3339 per the spec); [`parse_date`] turns one into
//! a [`SystemTime`]. Whole response bodies are parsed here too ([`parse_page`],
//! [`media_redirect_target`]), so that everything the network sends is read by pure
//! functions that the fuzz targets (`fuzz/`) call directly. This module does no I/O.
//!
//! The mount's `user.twilio.*` extended attributes are fields of these resources under
//! their API names, those with a value only ([`xattr_fields`]): a room's here
//! ([`Room::xattrs`]), a recording's or composition's with its kind
//! ([`super::Media::xattrs`]).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// `grouping_sids` of a recording.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct GroupingSids {
    /// The room (`RM…`).
    #[serde(default)]
    pub room_sid: Option<String>,
    /// The participant (`PA…`).
    #[serde(default)]
    pub participant_sid: Option<String>,
}

/// A track recording (`video.v1.recording`, and `video.v1.room.room_recording`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Recording {
    /// `RT…`.
    pub sid: String,
    /// `processing`, `completed`, `deleted`, `failed`.
    pub status: Option<String>,
    /// `mka` or `mkv`.
    pub container_format: Option<String>,
    /// `VP8`, `H264`, `OPUS`, `PCMU` in any case.
    pub codec: Option<String>,
    /// `audio`, `video`, `data`.
    pub r#type: Option<String>,
    /// Bytes, as stored (ciphertext when encrypted).
    #[serde(deserialize_with = "lenient_u64")]
    pub size: Option<u64>,
    /// Seconds.
    #[serde(deserialize_with = "lenient_u64")]
    pub duration: Option<u64>,
    /// RFC 3339.
    pub date_created: Option<String>,
    /// Room and participant.
    pub grouping_sids: Option<GroupingSids>,
    /// The track's name.
    pub track_name: Option<String>,
    /// Offset in milliseconds from the room's start.
    #[serde(deserialize_with = "lenient_u64")]
    pub offset: Option<u64>,
    /// The track (`MT…`).
    pub source_sid: Option<String>,
    /// The room, in room-recording listings.
    pub room_sid: Option<String>,
    /// Where the media is when the account stores it in its own S3 bucket.
    pub media_external_location: Option<String>,
    /// The account (`AC…`).
    pub account_sid: Option<String>,
    /// The resource's own URL.
    pub url: Option<String>,
    /// `media` and friends.
    pub links: Option<HashMap<String, String>>,
}

impl Recording {
    /// Whether the codec is `name`, ignoring case.
    pub fn codec_is(&self, name: &str) -> bool {
        self.codec
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case(name))
    }

    /// Whether the status is `name`, ignoring case.
    pub fn status_is(&self, name: &str) -> bool {
        eq_opt(&self.status, name)
    }

    /// The file extension: `container_format` in lower case (`mka`, `mkv`).
    pub fn extension(&self) -> Option<String> {
        self.container_format
            .as_deref()
            .map(str::to_ascii_lowercase)
    }

    /// The room, from `grouping_sids` or `room_sid`.
    pub fn room(&self) -> Option<&str> {
        self.grouping_sids
            .as_ref()
            .and_then(|g| g.room_sid.as_deref())
            .or(self.room_sid.as_deref())
    }

    /// `date_created` as a time.
    pub fn created(&self) -> Option<SystemTime> {
        self.date_created.as_deref().and_then(parse_date)
    }
}

/// A composition (`video.v1.composition`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Composition {
    /// `CJ…`.
    pub sid: String,
    /// `enqueued`, `processing`, `completed`, `deleted`, `failed`.
    pub status: Option<String>,
    /// `mp4` or `webm`.
    pub format: Option<String>,
    /// Bytes, as stored.
    #[serde(deserialize_with = "lenient_u64")]
    pub size: Option<u64>,
    /// Seconds.
    #[serde(deserialize_with = "lenient_u64")]
    pub duration: Option<u64>,
    /// The room (`RM…`).
    pub room_sid: Option<String>,
    /// `1280x720`.
    pub resolution: Option<String>,
    /// Bits per second.
    #[serde(deserialize_with = "lenient_u64")]
    pub bitrate: Option<u64>,
    /// RFC 3339.
    pub date_created: Option<String>,
    /// RFC 3339.
    pub date_completed: Option<String>,
    /// RFC 3339.
    pub date_deleted: Option<String>,
    /// Where the media is when the account stores it in its own S3 bucket.
    pub media_external_location: Option<String>,
    /// The account (`AC…`).
    pub account_sid: Option<String>,
    /// The resource's own URL.
    pub url: Option<String>,
    /// `media` and friends.
    pub links: Option<HashMap<String, String>>,
}

impl Composition {
    /// Whether the status is `name`, ignoring case.
    pub fn status_is(&self, name: &str) -> bool {
        eq_opt(&self.status, name)
    }

    /// The file extension: `format` in lower case (`mp4`, `webm`).
    pub fn extension(&self) -> Option<String> {
        self.format.as_deref().map(str::to_ascii_lowercase)
    }

    /// `date_completed` as a time.
    pub fn completed(&self) -> Option<SystemTime> {
        self.date_completed.as_deref().and_then(parse_date)
    }

    /// `date_created` as a time.
    pub fn created(&self) -> Option<SystemTime> {
        self.date_created.as_deref().and_then(parse_date)
    }
}

/// `encryption_details` of a Voice recording: how its media was encrypted. Twilio's
/// docs and decryption samples name the fields `public_key_sid`, `encrypted_cek`, `iv`;
/// the spec's examples `encryption_public_key_sid`, `encryption_cek`, `encryption_iv`:
/// both are read. Kept as the API's strings (base64); [`crate::crypto::GcmEnvelope`]
/// decodes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct EncryptionDetails {
    /// The public key the content key was wrapped with (`CR…`).
    #[serde(
        alias = "encryption_public_key_sid",
        deserialize_with = "lenient_string"
    )]
    pub public_key_sid: Option<String>,
    /// The content key, RSA-OAEP-wrapped, base64.
    #[serde(alias = "encryption_cek", deserialize_with = "lenient_string")]
    pub encrypted_cek: Option<String>,
    /// The 12-byte GCM IV, base64.
    #[serde(alias = "encryption_iv", deserialize_with = "lenient_string")]
    pub iv: Option<String>,
}

/// A Voice call recording (`api.v2010.account.recording`, under
/// `/2010-04-01/Accounts/{AccountSid}/Recordings.json`). Dates are RFC 2822
/// ([`parse_rfc2822`]); `duration` is a string of seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct VoiceRecording {
    /// `RE…`.
    pub sid: String,
    /// `in-progress`, `paused`, `stopped`, `processing`, `completed`, `absent`, `deleted`.
    pub status: Option<String>,
    /// The call (`CA…`), the parent leg.
    pub call_sid: Option<String>,
    /// The conference (`CF…`), for a conference recording.
    pub conference_sid: Option<String>,
    /// 1 or 2.
    #[serde(deserialize_with = "lenient_u64")]
    pub channels: Option<u64>,
    /// `DialVerb`, `Conference`, `OutboundAPI`, `Trunking`, `RecordVerb`, `StartCallRecordingAPI`, `StartConferenceRecordingAPI`.
    pub source: Option<String>,
    /// Seconds, sent as a string.
    #[serde(deserialize_with = "lenient_u64")]
    pub duration: Option<u64>,
    /// RFC 2822.
    pub date_created: Option<String>,
    /// RFC 2822.
    pub date_updated: Option<String>,
    /// RFC 2822.
    pub start_time: Option<String>,
    /// `null` when the recording is not encrypted.
    pub encryption_details: Option<EncryptionDetails>,
    /// The account (`AC…`).
    pub account_sid: Option<String>,
    /// The resource's path, relative to the API host.
    pub uri: Option<String>,
    /// The media's URL, as Twilio gives it.
    pub media_url: Option<String>,
}

impl VoiceRecording {
    /// Whether its status is `completed` (in any case).
    pub fn status_is_completed(&self) -> bool {
        eq_opt(&self.status, "completed")
    }

    /// `date_created` as a time.
    pub fn created(&self) -> Option<SystemTime> {
        self.date_created.as_deref().and_then(parse_rfc2822)
    }

    /// The encryption details, when they say anything: `null`, `{}` or all-null fields
    /// mean the recording is stored unencrypted.
    pub fn encryption(&self) -> Option<&EncryptionDetails> {
        self.encryption_details
            .as_ref()
            .filter(|e| e.encrypted_cek.is_some() || e.iv.is_some())
    }
}

/// A room (`video.v1.room`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Room {
    /// `RM…`.
    pub sid: String,
    /// The name given at creation.
    pub unique_name: Option<String>,
    /// `in-progress`, `completed`, `failed`.
    pub status: Option<String>,
    /// RFC 3339.
    pub date_created: Option<String>,
    /// RFC 3339.
    pub date_updated: Option<String>,
    /// RFC 3339.
    pub end_time: Option<String>,
    /// Seconds.
    #[serde(deserialize_with = "lenient_u64")]
    pub duration: Option<u64>,
    /// `group`, `go`, `peer-to-peer`, `group-small`.
    pub r#type: Option<String>,
    /// The resource's own URL.
    pub url: Option<String>,
    /// `recordings`, `participants`, …
    pub links: Option<HashMap<String, String>>,
}

impl Room {
    /// `date_created` as a time.
    pub fn created(&self) -> Option<SystemTime> {
        self.date_created.as_deref().and_then(parse_date)
    }

    /// The `user.twilio.*` extended attributes of its directory, in order, under the
    /// API's names; a field missing or empty is left out ([`xattr_fields`]).
    pub fn xattrs(&self) -> Vec<(&'static str, String)> {
        xattr_fields([
            ("sid", Some(self.sid.clone())),
            ("unique_name", self.unique_name.clone()),
            ("status", self.status.clone()),
            ("type", self.r#type.clone()),
            ("date_created", self.date_created.clone()),
            ("duration", self.duration.map(|d| d.to_string())),
        ])
    }
}

/// Extended attributes from the API's fields: those with a value, in the order given.
/// A field missing or empty is no attribute at all.
pub fn xattr_fields<const N: usize>(
    fields: [(&'static str, Option<String>); N],
) -> Vec<(&'static str, String)> {
    fields
        .into_iter()
        .filter_map(|(name, v)| v.filter(|v| !v.is_empty()).map(|v| (name, v)))
        .collect()
}

/// `RecordingSettings/Default` and `CompositionSettings/Default`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct StorageSettings {
    /// Whether media is encrypted with the account's public key.
    pub encryption_enabled: Option<bool>,
    /// The public key (`CR…`).
    pub encryption_key_sid: Option<String>,
    /// Whether media goes to the customer's own S3 bucket.
    pub aws_storage_enabled: Option<bool>,
    /// That bucket.
    pub aws_s3_url: Option<String>,
    /// The AWS credentials (`CR…`).
    pub aws_credentials_sid: Option<String>,
    /// A label.
    pub friendly_name: Option<String>,
    /// The account.
    pub account_sid: Option<String>,
}

/// A public key credential of the Accounts API (`accounts.v1.credential.credential_public_key`,
/// `GET https://accounts.twilio.com/v1/Credentials/PublicKeys/{CR…}`). Twilio returns no
/// key material: only what names and dates the key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct PublicKeyCredential {
    /// `CR…`.
    pub sid: String,
    /// The account (`AC…`).
    pub account_sid: Option<String>,
    /// The label given when it was uploaded.
    pub friendly_name: Option<String>,
    pub date_created: Option<String>,
    pub date_updated: Option<String>,
    /// The resource's own URL.
    pub url: Option<String>,
}

/// `RecordingSettings/Default`.
pub type RecordingSettings = StorageSettings;
/// `CompositionSettings/Default`.
pub type CompositionSettings = StorageSettings;

/// The `meta` object of a list page. Only `next_page_url` matters, and must be a
/// string or null; the rest is informative and any odd value (a negative or absurd page,
/// a page size in words) reads as absent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PageMeta {
    /// The next page, absolute; `null` on the last page.
    pub next_page_url: Option<String>,
    /// The page index.
    #[serde(deserialize_with = "lenient_u64")]
    pub page: Option<u64>,
    /// Items per page.
    #[serde(deserialize_with = "lenient_u64")]
    pub page_size: Option<u64>,
    /// The key of the item array.
    #[serde(deserialize_with = "lenient_string")]
    pub key: Option<String>,
}

/// One parsed list page.
#[derive(Debug)]
pub struct ListPage<T> {
    /// The entries that make sense as `T`.
    pub items: Vec<T>,
    /// The entries that do not, as (their `sid` as JSON text, or "no sid"; why): one odd
    /// entry never hides the rest, but the caller says it skipped them.
    pub skipped: Vec<(String, String)>,
    /// `meta.next_page_url` (or the Voice API's `next_page_uri`); `None` on the last
    /// page, or when it is empty.
    pub next: Option<String>,
}

/// One list page: the entries under `key` (`"recordings"`, `"compositions"`, `"rooms"`),
/// each parsed on its own, and the next page's URL. The body goes through
/// [`tolerant_json`] first. `Err` says what is wrong with the page as a whole, for
/// [`super::Error::Decode`].
pub fn parse_page<T: DeserializeOwned>(body: &[u8], key: &str) -> Result<ListPage<T>, String> {
    parse_page_with(body, key, serde_json::from_value::<T>)
}

/// [`parse_page`], with each entry read by `item` (e.g. [`super::MediaKind::decode`],
/// whose type depends on the kind listed).
pub fn parse_page_with<T>(
    body: &[u8],
    key: &str,
    item: impl Fn(serde_json::Value) -> serde_json::Result<T>,
) -> Result<ListPage<T>, String> {
    #[derive(Deserialize)]
    struct Page {
        #[serde(default)]
        meta: PageMeta,
        #[serde(flatten)]
        rest: serde_json::Map<String, serde_json::Value>,
    }
    let mut page: Page = serde_json::from_str(&tolerant_json(body)).map_err(|e| e.to_string())?;
    let entries = match page.rest.remove(key) {
        Some(serde_json::Value::Array(entries)) => entries,
        Some(other) => {
            return Err(format!(
                "\"{key}\" is not an array but {}",
                other.to_string().chars().take(40).collect::<String>()
            ));
        }
        None => return Err(format!("no \"{key}\" array in the page")),
    };
    let mut items = Vec::with_capacity(entries.len());
    let mut skipped = Vec::new();
    for entry in entries {
        let sid = entry.get("sid").cloned();
        match item(entry) {
            Ok(item) => items.push(item),
            Err(e) => {
                // As JSON text: control characters and quotes come out escaped.
                let sid = sid.map_or_else(|| "no sid".to_owned(), |s| s.to_string());
                skipped.push((sid.chars().take(80).collect(), e.to_string()));
            }
        }
    }
    // The Video API says `meta.next_page_url` (absolute); the Voice API of 2010-04-01
    // says `next_page_uri` at the top (a path on its host).
    let next_uri = match page.rest.remove("next_page_uri") {
        Some(serde_json::Value::String(s)) => Some(s),
        _ => None,
    };
    Ok(ListPage {
        items,
        skipped,
        next: (page.meta.next_page_url)
            .or(next_uri)
            .filter(|s| !s.is_empty()),
    })
}

/// Where a `/Media` answer points: `redirect_to` from the JSON body, else the
/// `Location` header; `None` when neither is there.
pub fn media_redirect_target(body: &[u8], location: Option<&str>) -> Option<String> {
    #[derive(Deserialize)]
    struct Redirect {
        redirect_to: Option<String>,
    }
    serde_json::from_slice::<Redirect>(body)
        .ok()
        .and_then(|r| r.redirect_to)
        .or_else(|| location.map(str::to_string))
}

fn eq_opt(v: &Option<String>, name: &str) -> bool {
    v.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(name))
}

/// A count from a JSON number or a numeric string; anything else (null, negative, a
/// fraction out of range, an object) reads as absent rather than failing the item.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde_json::Value;
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && *f < u64::MAX as f64)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A string, or absent for anything else.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

/// The API's body as text that JSON can parse, whatever bytes came: invalid UTF-8 turns
/// into U+FFFD, and so does every `\uD800`–`\uDFFF` escape that is not half of a valid
/// surrogate pair. JSON allows such lone surrogates, Rust strings cannot hold them, and
/// serde_json refuses the whole document for one; replaced, they only spoil the field
/// that holds them (a SID that then fails its check, an item skipped), not a listing.
pub fn tolerant_json(body: &[u8]) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let text = String::from_utf8_lossy(body);
    let bytes = text.as_bytes();
    let hex4 = |at: usize| -> Option<u16> {
        let digits = text.get(at..at + 4)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u16::from_str_radix(digits, 16).ok()
    };
    let mut out: Option<String> = None;
    let mut copied = 0; // bytes of `text` already in `out`
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        // An escape: `\uXXXX` (maybe a surrogate), or `\` and one more character.
        if bytes.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        let Some(unit) = hex4(i + 2) else {
            i += 2;
            continue;
        };
        let paired_low = |at: usize| {
            bytes.get(at) == Some(&b'\\')
                && bytes.get(at + 1) == Some(&b'u')
                && hex4(at + 2).is_some_and(|u| (0xDC00..=0xDFFF).contains(&u))
        };
        match unit {
            0xD800..=0xDBFF if paired_low(i + 6) => i += 12,
            0xD800..=0xDFFF => {
                let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                o.push_str(&text[copied..i]);
                o.push_str("\\uFFFD");
                i += 6;
                copied = i;
            }
            _ => i += 6,
        }
    }
    match out {
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
        None => text,
    }
}

/// Parses an RFC 3339 / ISO 8601 date-time with a time zone (`2015-07-30T20:00:00Z`,
/// `2017-12-31T23:59:59+01:00`, fractions of a second allowed; a space instead of `T`
/// accepted). `None` for anything else or dates before 1970.
pub fn parse_date(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &s[start..i.min(start + 9)];
        nanos = digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32);
    }
    let offset_secs: i64 = match &s[i..] {
        "Z" | "z" => 0,
        // Bytes, not string slices: the API's text may put a multi-byte character here.
        tz if tz.len() == 6
            && matches!(tz.as_bytes()[0], b'+' | b'-')
            && tz.as_bytes()[3] == b':' =>
        {
            let two = |r: std::ops::Range<usize>| -> Option<i64> {
                let t = &tz.as_bytes()[r];
                t.iter()
                    .all(u8::is_ascii_digit)
                    .then(|| i64::from(t[0] - b'0') * 10 + i64::from(t[1] - b'0'))
            };
            let (h, m) = (two(1..3)?, two(4..6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Parses an RFC 2822 date-time, as the 2010-04-01 API sends them:
/// `Fri, 20 Nov 2026 10:00:00 +0000` (the weekday optional and not checked; the zone
/// `+HHMM`/`-HHMM`, `GMT`, `UT` or `Z`). `None` for anything else or dates before 1970.
pub fn parse_rfc2822(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let s = match s.split_once(',') {
        Some((_, rest)) => rest,
        None => s,
    };
    let mut parts = s.split_ascii_whitespace();
    let day: i64 = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let month = MONTHS.iter().position(|m| month.eq_ignore_ascii_case(m))? as i64 + 1;
    let year = parts.next()?;
    if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i64 = year.parse().ok()?;
    let time = parts.next()?;
    let mut hms = time.split(':');
    let mut two = || -> Option<i64> {
        let t = hms.next()?;
        (t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok())?
    };
    let (hour, min) = (two()?, two()?);
    let sec = two().unwrap_or(0);
    let zone = parts.next().unwrap_or("+0000");
    if parts.next().is_some() {
        return None;
    }
    let offset = match zone {
        "GMT" | "UT" | "UTC" | "Z" => 0,
        z if z.len() == 5 && matches!(z.as_bytes()[0], b'+' | b'-') => {
            let digits = &z.as_bytes()[1..];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let n = |i: usize| i64::from(digits[i] - b'0');
            let (h, m) = (n(0) * 10 + n(1), n(2) * 10 + n(3));
            if h > 23 || m > 59 {
                return None;
            }
            let sign = if z.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    if !(1..=days_in_month(year, month)).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn dates() {
        assert_eq!(secs(parse_date("1970-01-01T00:00:00Z").unwrap()), 0);
        assert_eq!(
            secs(parse_date("2015-07-30T20:00:00Z").unwrap()),
            1_438_286_400
        );
        assert_eq!(
            secs(parse_date("2017-12-31T23:59:59Z").unwrap()),
            1_514_764_799
        );
        assert_eq!(
            secs(parse_date("2000-02-29T00:00:00Z").unwrap()),
            951_782_400
        );
        assert_eq!(
            secs(parse_date("2017-12-31T23:59:59+01:00").unwrap()),
            1_514_764_799 - 3600
        );
        assert_eq!(
            secs(parse_date("2017-12-31T23:59:59-00:30").unwrap()),
            1_514_764_799 + 1800
        );
        let t = parse_date("2024-05-01T10:00:00.250Z").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().subsec_millis(), 250);
        assert!(parse_date("2024-05-01 10:00:00Z").is_some());
    }

    #[test]
    fn bad_dates() {
        for s in [
            "",
            "2015-07-30",
            "2015-07-30T20:00:00",
            "2015-02-29T00:00:00Z",
            "2015-13-01T00:00:00Z",
            "2015-07-30T24:00:00Z",
            "2015-07-30T20:00:00.Z",
            "1969-12-31T23:59:59Z",
            "Thu, 30 Jul 2015 20:00:00 +0000",
            "2015-07-30T20:00:00+0100",
            "+015-07-30T20:00:00Z",
        ] {
            assert_eq!(parse_date(s), None, "{s}");
        }
    }

    /// Regression (issue 6): a zone offset holding a multi-byte character sliced a
    /// string inside a character and panicked; signs and digits are now checked as bytes.
    #[test]
    fn zone_offsets_from_the_network_never_panic() {
        for s in [
            "2015-07-30T20:00:00+1\u{e9}:0",
            "2015-07-30T20:00:00+\u{e9}:00",
            "2015-07-30T20:00:00\u{e9}00:0",
            "2015-07-30T20:00:00+01\u{e9}0",
            "2015-07-30T20:00:00++1:00",
            "2015-07-30T20:00:00+-1:00",
            "2015-07-30T20:00:00+01:+1",
            "2015-07-30T20:00:00+24:00",
            "2015-07-30T20:00:00+01:60",
        ] {
            assert_eq!(parse_date(s), None, "{s}");
        }
        assert!(parse_date("2015-07-30T20:00:00+23:59").is_some());
    }

    #[test]
    fn rfc2822_dates() {
        let t = |s| parse_rfc2822(s).map(secs);
        assert_eq!(t("Thu, 30 Jul 2015 20:00:00 +0000"), Some(1_438_286_400));
        assert_eq!(t("30 Jul 2015 20:00:00 +0000"), Some(1_438_286_400));
        assert_eq!(t("Thu, 30 Jul 2015 21:00:00 +0100"), Some(1_438_286_400));
        assert_eq!(t("Thu, 30 Jul 2015 19:30:00 -0030"), Some(1_438_286_400));
        assert_eq!(t("Thu, 30 jul 2015 20:00:00 GMT"), Some(1_438_286_400));
        assert_eq!(t("Thu, 30 Jul 2015 20:00 +0000"), Some(1_438_286_400));
        assert_eq!(t("Tue, 29 Feb 2000 00:00:00 +0000"), Some(951_782_400));
        for bad in [
            "",
            "2015-07-30T20:00:00Z",
            "Thu, 31 Jun 2015 20:00:00 +0000",
            "Thu, 29 Feb 2015 00:00:00 +0000",
            "Thu, 30 Jux 2015 20:00:00 +0000",
            "Thu, 30 Jul 15 20:00:00 +0000",
            "Thu, 30 Jul 2015 24:00:00 +0000",
            "Thu, 30 Jul 2015 20:00:00 +2400",
            "Thu, 30 Jul 2015 20:00:00 +01\u{e9}",
            "Thu, 30 Jul 2015 20:00:00 +0000 extra",
            "Wed, 31 Dec 1969 23:59:59 +0000",
        ] {
            assert_eq!(parse_rfc2822(bad), None, "{bad}");
        }
    }

    #[test]
    fn voice_recordings_read_both_spellings_of_their_encryption() {
        let docs: VoiceRecording = serde_json::from_value(serde_json::json!({
            "sid": "RE1", "duration": "125", "channels": 2, "source": "DialVerb",
            "date_created": "Fri, 20 Nov 2026 10:00:00 +0000",
            "encryption_details": {"public_key_sid": "CR1", "encrypted_cek": "a2V5", "iv": "aXY="}
        }))
        .unwrap();
        let spec: VoiceRecording = serde_json::from_value(serde_json::json!({
            "sid": "RE1", "duration": "125", "channels": "2", "source": "DialVerb",
            "date_created": "Fri, 20 Nov 2026 10:00:00 +0000",
            "encryption_details": {"encryption_public_key_sid": "CR1", "encryption_cek": "a2V5", "encryption_iv": "aXY="}
        }))
        .unwrap();
        assert_eq!(docs, spec);
        assert_eq!(docs.duration, Some(125));
        assert_eq!(docs.channels, Some(2));
        let e = docs.encryption().unwrap();
        assert_eq!(
            (
                e.public_key_sid.as_deref(),
                e.encrypted_cek.as_deref(),
                e.iv.as_deref()
            ),
            (Some("CR1"), Some("a2V5"), Some("aXY="))
        );
        assert!(docs.created().is_some());
        for plain in [
            serde_json::json!({"sid": "RE2", "encryption_details": null}),
            serde_json::json!({"sid": "RE2"}),
            serde_json::json!({"sid": "RE2", "encryption_details": {}}),
            serde_json::json!({"sid": "RE2", "encryption_details": {"iv": null, "public_key_sid": "CR1"}}),
        ] {
            let r: VoiceRecording = serde_json::from_value(plain.clone()).unwrap();
            assert!(r.encryption().is_none(), "{plain}");
        }
    }

    #[test]
    fn lenient_recording() {
        let r: Recording = serde_json::from_value(serde_json::json!({
            "sid": "RT1", "status": "completed", "codec": "OPUS", "size": "123",
            "duration": 10, "offset": null, "container_format": "mka", "type": "audio",
            "grouping_sids": {"room_sid": "RM1", "participant_sid": "PA1"},
            "new_field": {"x": 1}
        }))
        .unwrap();
        assert_eq!(r.size, Some(123));
        assert_eq!(r.offset, None);
        assert!(r.codec_is("opus"));
        assert!(r.status_is("COMPLETED"));
        assert_eq!(r.extension().as_deref(), Some("mka"));
        assert_eq!(r.room(), Some("RM1"));
        let r: Recording = serde_json::from_str(r#"{"sid":"RT2"}"#).unwrap();
        assert_eq!(r.status, None);
    }

    #[test]
    fn odd_numbers_read_as_absent() {
        for size in ["null", "-5", "-1.5", "\"lots\"", "{}", "[]", "true", "1e30"] {
            let r: Recording = serde_json::from_str(&format!(
                r#"{{"sid":"RT1","size":{size},"duration":{size}}}"#
            ))
            .unwrap_or_else(|e| panic!("{size}: {e}"));
            assert_eq!(r.size, None, "{size}");
        }
        // Beyond what a double holds, the number is malformed JSON for serde_json: the
        // document fails to parse (a listing error), it is not misread.
        assert!(serde_json::from_str::<Recording>(r#"{"sid":"RT1","size":1e400}"#).is_err());
        let r: Recording = serde_json::from_str(r#"{"sid":"RT1","size":12.0}"#).unwrap();
        assert_eq!(r.size, Some(12));
        let m: PageMeta = serde_json::from_str(
            r#"{"page":-1,"page_size":"a billion","key":7,"next_page_url":null}"#,
        )
        .unwrap();
        assert_eq!((m.page, m.page_size, m.key), (None, None, None));
    }

    /// A time zone that puts a multi-byte character across the offsets it is cut at.
    #[test]
    fn dates_with_odd_bytes_do_not_panic() {
        for s in [
            "2015-07-30T20:00:00+1é00",
            "2015-07-30T20:00:00+é:00",
            "2015-07-30T20:00:00+01:é",
            "2015-07-30T20:00:00é",
            "2015-07-30T20:00:00.é",
            "2015-07-30T20:0é:00Z",
            "ééééééééééééééééééééé",
        ] {
            assert_eq!(parse_date(s), None, "{s}");
        }
    }

    #[test]
    fn tolerant_json_keeps_what_parses_and_mends_the_rest() {
        let parse = |b: &[u8]| -> serde_json::Value {
            serde_json::from_str(&tolerant_json(b)).unwrap_or_else(|e| {
                panic!("{:?}: {e}", String::from_utf8_lossy(b));
            })
        };
        // Valid JSON, escapes and pairs included, is untouched.
        let valid = br#"{"a":"\ud83d\ude00 \\ud800 \n \u00e9","b":[1,2]}"#;
        assert!(matches!(
            tolerant_json(valid),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(parse(valid)["a"], "\u{1F600} \\ud800 \n é");
        // Lone surrogates, high or low, at the end or not.
        assert_eq!(parse(br#"{"sid":"RT\ud800x"}"#)["sid"], "RT\u{FFFD}x");
        assert_eq!(parse(br#"{"sid":"\udc00"}"#)["sid"], "\u{FFFD}");
        assert_eq!(
            parse(br#"{"sid":"\uD800\uD800"}"#)["sid"],
            "\u{FFFD}\u{FFFD}"
        );
        assert_eq!(parse(br#"{"sid":"\ud800\n"}"#)["sid"], "\u{FFFD}\n");
        // Raw bytes that are not UTF-8.
        assert_eq!(
            parse(b"{\"sid\":\"RT\xff\xfe\"}")["sid"],
            "RT\u{FFFD}\u{FFFD}"
        );
        // Garbage stays garbage (and does not panic).
        for junk in [&b"\\u12"[..], b"\\", b"\"\\ud8", b"\\u\xff\xff\xff\xff"] {
            let _ = tolerant_json(junk);
        }
    }
}
