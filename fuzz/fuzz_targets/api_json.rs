//! The API's response bodies: list pages of recordings, compositions and rooms, single
//! resources, the settings, `/Media` redirects and error bodies, plus the fields the
//! program turns into file names, dates and URL lifetimes.
//!
//! Properties checked, for every input:
//! - nothing panics, whatever the body (garbage, deep nesting, huge numbers, odd types,
//!   non-UTF-8 and multi-byte text where ASCII is expected);
//! - a page that parses yields its items and a non-empty next URL or none;
//! - names built from API data never hold `/`, `..` or NUL;
//! - dates the program accepts round-trip through the emulator's formatter;
//! - a redacted URL keeps no query string and no user:password.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use twilio_media_fs::emulator::catalog::datetime;
use twilio_media_fs::names::media_file_name;
use twilio_media_fs::twilio::{
    Composition, PageGuard, Recording, Room, StorageSettings, api_error, media_redirect_target,
    parse_date, parse_page, redact_url, signed_lifetime, validate_sid,
};

fn check_name(sid: &str, format: Option<&str>) {
    if let Some(name) = media_file_name(sid, format.unwrap_or_default()) {
        assert!(
            !name.contains('/') && !name.contains('\0') && !name.contains(".."),
            "{name:?}"
        );
        assert!(validate_sid(sid).is_ok());
    }
}

fn check_date(s: Option<&str>) {
    let Some(s) = s else { return };
    if let Some(t) = parse_date(s) {
        let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let back = parse_date(&datetime(secs as i64)).expect("our own format parses");
        assert_eq!(
            back.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            secs,
            "{s:?}"
        );
    }
}

/// A redacted URL has at most a `?…` where the query was, and no `user:pass@`.
fn check_redacted(shown: &str) {
    assert!(shown.matches('?').count() <= 1, "{shown:?}");
    assert!(!shown.contains('?') || shown.ends_with("?…"), "{shown:?}");
    if let Some(i) = shown.find("://") {
        let rest = &shown[i + 3..];
        let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
        assert!(!authority.contains('@'), "{shown:?}");
    }
}

fn check_recordings(items: &[Recording]) {
    for r in items {
        check_name(&r.sid, r.container_format.as_deref());
        check_date(r.date_created.as_deref());
        let _ = (
            r.extension(),
            r.room(),
            r.created(),
            r.status_is("completed"),
            r.codec_is("opus"),
        );
    }
}

fn check_compositions(items: &[Composition]) {
    for c in items {
        check_name(&c.sid, c.format.as_deref());
        check_date(c.date_created.as_deref());
        check_date(c.date_completed.as_deref());
        let _ = (
            c.extension(),
            c.completed(),
            c.created(),
            c.status_is("completed"),
        );
    }
}

fn check_page<T: serde::de::DeserializeOwned>(body: &[u8], key: &str) -> Option<Vec<T>> {
    let page = parse_page::<T>(body, key).ok()?;
    for (sid, why) in &page.skipped {
        assert!(sid.chars().count() <= 80 && !why.is_empty());
    }
    if let Some(next) = page.next {
        assert!(!next.is_empty());
        let mut guard = PageGuard::new("https://video.twilio.com/v1/x", 3);
        let _ = guard.admit(&next);
        let _ = guard.admit(&next);
    }
    Some(page.items)
}

fuzz_target!(|data: &[u8]| {
    if let Some(items) = check_page::<Recording>(data, "recordings") {
        check_recordings(&items);
    }
    if let Some(items) = check_page::<Composition>(data, "compositions") {
        check_compositions(&items);
    }
    if let Some(items) = check_page::<Room>(data, "rooms") {
        for r in &items {
            check_date(r.date_created.as_deref());
            let _ = r.created();
        }
    }
    if let Ok(r) = serde_json::from_slice::<Recording>(data) {
        check_recordings(&[r]);
    }
    if let Ok(c) = serde_json::from_slice::<Composition>(data) {
        check_compositions(&[c]);
    }
    let _ = serde_json::from_slice::<StorageSettings>(data);

    let text = String::from_utf8_lossy(data);
    check_date(Some(&text));

    // /Media: the redirect target, its lifetime, and how it is shown.
    let location = text.lines().next();
    if let Some(target) = media_redirect_target(data, location) {
        let base = reqwest::Url::parse("https://video.twilio.com/v1/Recordings/RT1/Media").unwrap();
        if let Ok(url) = base.join(target.trim()) {
            if let Some(life) =
                signed_lifetime(&url, UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            {
                let _ = std::time::Instant::now().checked_add(life.min(Duration::from_secs(3600)));
            }
            let shown = redact_url(url.as_str());
            if let Some(q) = url.query().filter(|q| !q.is_empty()) {
                assert!(!shown.contains(&format!("?{q}")), "query kept: {shown}");
            }
            check_redacted(&shown);
        }
    }
    check_redacted(&redact_url(&text));

    // Error bodies, with the status from the first two bytes.
    let status = u16::from_le_bytes([
        data.first().copied().unwrap_or(0),
        data.get(1).copied().unwrap_or(0),
    ]);
    if let Ok(status) = reqwest::StatusCode::from_u16(100 + status % 500) {
        let e = api_error("/v1/Recordings", status, data);
        assert!(!e.to_string().is_empty());
    }
});
