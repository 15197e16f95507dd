//! What a request for a file gets, from its headers: the conditional requests of RFC
//! 9110 §13 (`If-None-Match`, `If-Modified-Since`, `If-Range`) and `Range`, and the
//! headers that describe a file (`ETag`, `Last-Modified`, `Content-Type`,
//! `Content-Disposition`).
//!
//! Pure: strings and numbers in, decisions out; no I/O, no HTTP types. A file never
//! changes (a SID's media is written once), so its validators are simple: the `ETag`
//! is the SID and the exact size, the same on every server and after every restart,
//! and `Last-Modified` is the media's `date_created`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::http_range::{self, Wanted};

/// The request headers that decide the answer, as their values.
#[derive(Debug, Clone, Copy, Default)]
pub struct Conditions<'a> {
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub range: Option<&'a str>,
    pub if_range: Option<&'a str>,
}

/// What to send for a GET or HEAD of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 304: the client's copy is current.
    NotModified,
    /// 200 with the whole file.
    Whole,
    /// 206 with bytes `[start, end]`, inclusive.
    Part { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */LEN`.
    Unsatisfiable,
}

/// A file's strong validator: its SID and exact size, quoted. Stable across restarts
/// and replicas.
pub fn etag(sid: &str, len: u64) -> String {
    format!("\"{sid}-{len:x}\"")
}

/// `t` as an HTTP date (IMF-fixdate), whole seconds.
pub fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// What to answer a GET or HEAD of a file of `len` bytes whose validators are `etag` and
/// `modified`, given the request's `conditions`.
pub fn answer(c: Conditions<'_>, etag: &str, modified: SystemTime, len: u64) -> Answer {
    // §13.2.2: If-None-Match first; If-Modified-Since only without it.
    if let Some(inm) = c.if_none_match {
        if matches_any(inm, etag, false) {
            return Answer::NotModified;
        }
    } else if let Some(since) = c.if_modified_since.and_then(parse_date)
        && whole_seconds(modified) <= since
    {
        return Answer::NotModified;
    }
    if c.range.is_none() {
        return Answer::Whole;
    }
    if let Some(if_range) = c.if_range
        && !if_range_holds(if_range, etag, modified)
    {
        return Answer::Whole;
    }
    match http_range::wanted(c.range, len) {
        Wanted::Whole => Answer::Whole,
        Wanted::Part { start, end } => Answer::Part { start, end },
        Wanted::Unsatisfiable => Answer::Unsatisfiable,
    }
}

/// `If-Range` (§13.1.5): a strong entity tag equal to ours, or exactly our date.
fn if_range_holds(value: &str, etag: &str, modified: SystemTime) -> bool {
    let v = value.trim();
    if v.starts_with('"') || v.starts_with("W/") {
        return !v.starts_with("W/") && v == etag;
    }
    parse_date(v).is_some_and(|d| d == whole_seconds(modified))
}

/// Whether a list of entity tags (`If-None-Match`) names ours: `*`, or the same tag,
/// compared weakly (§8.8.3.2: `W/"x"` matches `"x"`) unless `strong`.
fn matches_any(list: &str, etag: &str, strong: bool) -> bool {
    if list.trim() == "*" {
        return true;
    }
    list.split(',')
        .map(str::trim)
        .any(|tag| match tag.strip_prefix("W/") {
            Some(weak) => !strong && weak == etag,
            None => tag == etag,
        })
}

fn parse_date(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text.trim()).ok()
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// How a browser can play a file, if at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Player {
    Video,
    Audio,
    /// Not in a browser: offer VLC.
    None,
}

/// A file's media type, by its extension (the tree names files by kind and container).
pub fn content_type(name: &str) -> &'static str {
    match extension(name) {
        "mka" => "audio/x-matroska",
        "mkv" => "video/x-matroska",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "wav" => "audio/wav",
        _ => "application/octet-stream",
    }
}

/// How browsers play a file with this name. Chromium (and Chrome, Edge) play every
/// container and codec Twilio records: MP4 (H.264/AAC), WebM, WAV, and Matroska with
/// VP8, H.264, Opus or PCMU, whatever the `Content-Type`; Firefox and Safari play no
/// Matroska, for which the pages give a `vlc` line.
pub fn player(name: &str) -> Player {
    match extension(name) {
        "mp4" | "webm" | "mkv" => Player::Video,
        "wav" | "mka" => Player::Audio,
        _ => Player::None,
    }
}

/// `Content-Disposition` for a file: shown inline (players, the browser's own viewer),
/// saved under its own name. Names are SIDs and extensions, plain ASCII; anything else
/// is left out of the quoted name.
pub fn disposition(name: &str) -> String {
    let safe: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    format!("inline; filename=\"{safe}\"")
}

fn extension(name: &str) -> &str {
    name.rsplit_once('.').map_or("", |(_, ext)| ext)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: &str = "\"RT1-64\"";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn ask(c: Conditions<'_>) -> Answer {
        answer(c, TAG, at(1_700_000_000) + Duration::from_millis(700), 100)
    }

    #[test]
    fn etags_are_stable_and_distinct() {
        assert_eq!(etag("RT1", 100), TAG);
        assert_ne!(etag("RT1", 101), etag("RT1", 100));
        assert_ne!(etag("RT2", 100), etag("RT1", 100));
    }

    #[test]
    fn unconditional() {
        assert_eq!(ask(Conditions::default()), Answer::Whole);
        let range = |r| Conditions {
            range: Some(r),
            ..Default::default()
        };
        assert_eq!(
            ask(range("bytes=10-19")),
            Answer::Part { start: 10, end: 19 }
        );
        assert_eq!(ask(range("bytes=-5")), Answer::Part { start: 95, end: 99 });
        assert_eq!(ask(range("bytes=90-")), Answer::Part { start: 90, end: 99 });
        assert_eq!(ask(range("bytes=100-")), Answer::Unsatisfiable);
    }

    #[test]
    fn if_none_match() {
        let inm = |v| Conditions {
            if_none_match: Some(v),
            ..Default::default()
        };
        assert_eq!(ask(inm(TAG)), Answer::NotModified);
        assert_eq!(ask(inm("W/\"RT1-64\"")), Answer::NotModified);
        assert_eq!(ask(inm("\"x\", \"RT1-64\"")), Answer::NotModified);
        assert_eq!(ask(inm("*")), Answer::NotModified);
        assert_eq!(ask(inm("\"RT1-65\"")), Answer::Whole);
        // It wins over If-Modified-Since, which alone would say 304.
        let both = Conditions {
            if_none_match: Some("\"other\""),
            if_modified_since: Some("Tue, 14 Nov 2023 22:13:20 GMT"),
            ..Default::default()
        };
        assert_eq!(ask(both), Answer::Whole);
    }

    #[test]
    fn if_modified_since() {
        let ims = |v| Conditions {
            if_modified_since: Some(v),
            ..Default::default()
        };
        // 1_700_000_000 is Tue, 14 Nov 2023 22:13:20 GMT; the file's .7 s is dropped.
        assert_eq!(
            ask(ims("Tue, 14 Nov 2023 22:13:20 GMT")),
            Answer::NotModified
        );
        assert_eq!(
            ask(ims("Wed, 15 Nov 2023 00:00:00 GMT")),
            Answer::NotModified
        );
        assert_eq!(ask(ims("Tue, 14 Nov 2023 22:13:19 GMT")), Answer::Whole);
        assert_eq!(ask(ims("not a date")), Answer::Whole);
    }

    #[test]
    fn if_range() {
        let ir = |v| Conditions {
            range: Some("bytes=10-19"),
            if_range: Some(v),
            ..Default::default()
        };
        let part = Answer::Part { start: 10, end: 19 };
        assert_eq!(ask(ir(TAG)), part);
        assert_eq!(ask(ir("\"RT1-65\"")), Answer::Whole);
        assert_eq!(
            ask(ir("W/\"RT1-64\"")),
            Answer::Whole,
            "weak tags never hold"
        );
        assert_eq!(ask(ir("Tue, 14 Nov 2023 22:13:20 GMT")), part);
        assert_eq!(ask(ir("Tue, 14 Nov 2023 22:13:21 GMT")), Answer::Whole);
    }

    #[test]
    fn types_and_players() {
        assert_eq!(content_type("RT1.mka"), "audio/x-matroska");
        assert_eq!(content_type("RT1.mkv"), "video/x-matroska");
        assert_eq!(content_type("CJ1.mp4"), "video/mp4");
        assert_eq!(content_type("CJ1.webm"), "video/webm");
        assert_eq!(content_type("RE1.wav"), "audio/wav");
        assert_eq!(player("CJ1.mp4"), Player::Video);
        assert_eq!(player("RT1.mka"), Player::Audio);
        assert_eq!(player("RT1.mkv"), Player::Video);
        assert_eq!(player("RE1.wav"), Player::Audio);
        assert_eq!(player("x.bin"), Player::None);
        assert_eq!(disposition("RT1.mka"), "inline; filename=\"RT1.mka\"");
        assert_eq!(disposition("a\"b\r\n.mka"), "inline; filename=\"ab.mka\"");
    }
}
