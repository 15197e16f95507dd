//! The API's resources as serde types, and the small parsers their fields need.
//!
//! Deserialisation is lenient on purpose: only `sid` is required, every other field is
//! an `Option`, unknown fields are ignored, and numbers are accepted as JSON numbers or
//! numeric strings. A field Twilio adds, drops or retypes tomorrow must not make a whole
//! listing fail. Enumerations (`status`, `codec`, `container_format`) stay strings and
//! are compared case-insensitively: the spec says `OPUS`, the examples say `opus`.
//!
//! Dates stay as the API's strings (RFC 3339 per the spec); [`parse_date`] turns one into
//! a [`SystemTime`]. This module does no I/O.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// The `meta` object of a list page.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PageMeta {
    /// The next page, absolute; `null` on the last page.
    pub next_page_url: Option<String>,
    /// The page index.
    pub page: Option<u64>,
    /// Items per page.
    pub page_size: Option<u64>,
    /// The key of the item array.
    pub key: Option<String>,
}

fn eq_opt(v: &Option<String>, name: &str) -> bool {
    v.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(name))
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        U(u64),
        I(i64),
        F(f64),
        S(String),
    }
    Ok(match Option::<Num>::deserialize(d)? {
        None => None,
        Some(Num::U(n)) => Some(n),
        Some(Num::I(n)) => u64::try_from(n).ok(),
        Some(Num::F(f)) if f >= 0.0 && f.is_finite() => Some(f as u64),
        Some(Num::F(_)) => None,
        Some(Num::S(s)) => s.trim().parse().ok(),
    })
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
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) && &tz[3..4] == ":" => {
            let h: i64 = tz[1..3].parse().ok()?;
            let m: i64 = tz[4..6].parse().ok()?;
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
}
