//! A listing page built from structured input: sizes, dates and names at their
//! extremes (u64::MAX, 2^63, negative, fractional, huge and numeric-text sizes; dates
//! before 1970, past 9999, with offsets, or garbage; SIDs and formats holding `/`, `..`,
//! NUL, escapes, bidi overrides and multi-byte text), read the way the mount reads it:
//! [`parse_page_with`] and [`MediaKind::decode`], then what the tree takes from each
//! entry (name, size, time, extended attributes).
//!
//! Properties checked, for every input:
//! - nothing panics, and every entry is either an item or a skipped entry with a reason
//!   (one odd entry never hides the rest);
//! - a name is `SID.ext` with a valid SID and one of the kind's extensions: no `/`,
//!   `..`, NUL, control or bidi character, nothing a terminal would act on;
//! - a size is the one listed when it is a whole number (or numeric text) in u64, and
//!   none otherwise; the tree shows it only when at most 2^63 − 1 (`MAX_FILE_SIZE`);
//! - a date the program accepts is the one the emulator's formatter writes for the same
//!   second, when the input was such a second.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use twilio_media_fs::cmd::terminal::printable;
use twilio_media_fs::emulator::catalog::datetime;
use twilio_media_fs::fs::MAX_FILE_SIZE;
use twilio_media_fs::names::is_sid;
use twilio_media_fs::twilio::{MediaKind, parse_page_with};

#[derive(Arbitrary, Debug)]
enum Number {
    U(u64),
    Extreme(u8),
    I(i64),
    F(f64),
    Text(String),
    NumericText(u64, u8),
    Null,
    Absent,
}

impl Number {
    /// The JSON value, and the size the parser must give for it.
    fn value(&self) -> (Option<Value>, Option<u64>) {
        const EXTREMES: [u64; 6] = [0, 1, i64::MAX as u64, 1 << 63, u64::MAX - 1, u64::MAX];
        match self {
            Number::U(n) => (Some(json!(n)), Some(*n)),
            Number::Extreme(i) => {
                let n = EXTREMES[*i as usize % EXTREMES.len()];
                (Some(json!(n)), Some(n))
            }
            Number::I(n) => (Some(json!(n)), u64::try_from(*n).ok()),
            // A fraction: lenient (truncated when in range), so only "no panic" here.
            Number::F(f) => (serde_json::Number::from_f64(*f).map(Value::Number), None),
            Number::Text(s) => (Some(json!(s)), s.trim().parse().ok()),
            Number::NumericText(n, pad) => {
                let s = format!(
                    "{}{n}{}",
                    " ".repeat(*pad as usize % 3),
                    " ".repeat(*pad as usize / 86)
                );
                (Some(json!(s)), Some(*n))
            }
            Number::Null => (Some(Value::Null), None),
            Number::Absent => (None, None),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Date {
    /// Seconds since 1970, in the emulator's (Twilio's) format.
    Secs(i64),
    Text(String),
    Null,
    Absent,
}

impl Date {
    fn value(&self) -> (Option<Value>, Option<i64>) {
        match self {
            // datetime() covers years 0..=9999; outside, only "no panic".
            Date::Secs(s) => {
                let s = s % 400_000_000_000;
                (Some(json!(datetime(s))), Some(s))
            }
            Date::Text(t) => (Some(json!(t)), None),
            Date::Null => (Some(Value::Null), None),
            Date::Absent => (None, None),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Text {
    /// A well-formed SID of the kind (prefix from the kind), from 128 bits.
    Sid(u128),
    /// One of the formats the program knows, in some case.
    Known(u8, bool),
    Any(String),
    Null,
}

impl Text {
    fn value(&self, prefix: &str) -> Value {
        const FORMATS: [&str; 5] = ["mka", "mkv", "mp4", "webm", "MP4"];
        match self {
            Text::Sid(n) => json!(format!("{prefix}{n:032x}")),
            Text::Known(i, upper) => {
                let f = FORMATS[*i as usize % FORMATS.len()];
                json!(if *upper {
                    f.to_uppercase()
                } else {
                    f.to_owned()
                })
            }
            Text::Any(s) => json!(s),
            Text::Null => Value::Null,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Entry {
    sid: Text,
    format: Text,
    status: Text,
    size: Number,
    duration: Number,
    created: Date,
    completed: Date,
    room: Text,
}

#[derive(Arbitrary, Debug)]
struct Listing {
    composition: bool,
    entries: Vec<Entry>,
    next: Option<String>,
}

fuzz_target!(|l: Listing| {
    let kind = if l.composition {
        MediaKind::Composition
    } else {
        MediaKind::Recording
    };
    let prefix = kind.sid_prefix();
    let mut expected = Vec::new();
    let entries: Vec<Value> = l
        .entries
        .iter()
        .map(|e| {
            let mut o = serde_json::Map::new();
            o.insert("sid".into(), e.sid.value(prefix));
            let format_key = if l.composition {
                "format"
            } else {
                "container_format"
            };
            o.insert(format_key.into(), e.format.value(prefix));
            o.insert("status".into(), e.status.value(prefix));
            o.insert("room_sid".into(), e.room.value("RM"));
            let (size, want_size) = e.size.value();
            if let Some(v) = size {
                o.insert("size".into(), v);
            }
            if let (Some(v), _) = e.duration.value() {
                o.insert("duration".into(), v);
            }
            let (created, want_secs) = e.created.value();
            if let Some(v) = created {
                o.insert("date_created".into(), v);
            }
            if let (Some(v), _) = e.completed.value() {
                o.insert("date_completed".into(), v);
            }
            expected.push((want_size, want_secs, matches!(e.completed, Date::Absent)));
            Value::Object(o)
        })
        .collect();
    let mut page = serde_json::Map::new();
    page.insert(kind.plural().into(), Value::Array(entries));
    page.insert(
        "meta".into(),
        json!({ "next_page_url": l.next, "page": 0, "page_size": 50, "key": kind.plural() }),
    );
    let body = serde_json::to_vec(&page).unwrap();
    let parsed = parse_page_with(&body, kind.plural(), |v| kind.decode(v))
        .expect("a page with an array of entries always parses");
    assert_eq!(
        parsed.items.len() + parsed.skipped.len(),
        l.entries.len(),
        "every entry is an item or skipped"
    );
    for (sid, why) in &parsed.skipped {
        assert!(!why.is_empty() && sid.chars().count() <= 80);
    }
    if parsed.skipped.is_empty() {
        for (m, (want_size, want_secs, no_completion)) in parsed.items.iter().zip(&expected) {
            if let Some(n) = want_size {
                assert_eq!(m.size(), Some(*n), "size of {}", m.sid());
            }
            let shown = m.size().filter(|&s| s <= MAX_FILE_SIZE);
            assert!(shown.is_none_or(|s| s < 1 << 63));
            // A composition's time is its completion when given; a recording's, its
            // creation.
            if let (Some(secs), true) = (want_secs, *no_completion || !l.composition) {
                if (0..253_402_300_800).contains(secs) {
                    let t = m.modified().expect("the program's own date format parses");
                    assert_eq!(t, UNIX_EPOCH + Duration::from_secs(*secs as u64));
                }
            }
        }
    }
    for m in &parsed.items {
        if let Some(name) = m.file_name() {
            let (sid, ext) = name.rsplit_once('.').expect("SID.ext");
            assert!(is_sid(sid) && sid.starts_with(prefix), "{name:?}");
            assert!(kind.extensions().contains(&ext), "{name:?}");
            assert_eq!(
                printable(&name),
                name,
                "nothing a terminal acts on: {name:?}"
            );
            assert!(!name.contains('/') && !name.contains('\0') && !name.contains(".."));
        }
        let _ = (
            m.modified(),
            m.duration(),
            m.room(),
            m.status_is("completed"),
        );
        for (key, value) in m.xattrs() {
            assert!(!key.is_empty() && !value.is_empty(), "{key}");
        }
    }
});
