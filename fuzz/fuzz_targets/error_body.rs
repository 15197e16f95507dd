//! The error-body path: a storage or API error answer, in chunks of any size, to the
//! one line a user sees. [`Bounded`] collects it (the storage's first
//! [`ERROR_BODY_LIMIT`] bytes; an API answer whole or refused past its limit), S3's
//! `<Code>`/`<Message>` or Twilio's JSON `message` are taken from it, and the error's
//! message is printed through [`printable`].
//!
//! Properties checked, for every input:
//! - nothing panics, whatever the chunks (empty, split inside UTF-8 or inside a tag);
//! - no more than the limit is held, and a body is cut exactly when more came;
//! - an API answer past its limit is refused, never held;
//! - what S3 said is at most 200 characters per field, and the message names the
//!   status;
//! - the printed line holds no control or bidi character: nothing a terminal acts on,
//!   no line the server forged.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use twilio_media_fs::bounded::{Bounded, ERROR_BODY_LIMIT};
use twilio_media_fs::cmd::terminal::printable;
use twilio_media_fs::object::ObjectError;
use twilio_media_fs::object::status::parse_s3_error;
use twilio_media_fs::twilio::api_error;

#[derive(Arbitrary, Debug)]
struct Answer {
    status: u16,
    /// The chunks as they came; `repeat` sends the last one again that many times
    /// (so that small inputs reach the storage limit).
    chunks: Vec<Vec<u8>>,
    repeat: u16,
    /// The API limit, small so that it is reached.
    api_limit: u16,
}

fn assert_printable(line: &str) {
    let shown = printable(line);
    assert!(
        !shown.chars().any(|c| c.is_control()
            || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
        "{shown:?}"
    );
}

fuzz_target!(|a: Answer| {
    let status = 100 + a.status % 500;
    let last = a.chunks.last().cloned().unwrap_or_default();
    let chunks = || {
        a.chunks
            .iter()
            .map(Vec::as_slice)
            .chain(std::iter::repeat_n(last.as_slice(), a.repeat as usize))
    };
    let total: usize = chunks().map(<[u8]>::len).sum();

    // The storage: its first ERROR_BODY_LIMIT bytes.
    let mut storage = Bounded::new(ERROR_BODY_LIMIT);
    let mut fed = 0;
    for c in chunks() {
        fed += c.len();
        if !storage.push(c) {
            break;
        }
    }
    assert_eq!(storage.over(), fed > ERROR_BODY_LIMIT);
    let text = storage.text();
    assert!(storage.into_bytes().len() == total.min(ERROR_BODY_LIMIT));
    let (code, message) = parse_s3_error(&text);
    for field in [&code, &message].into_iter().flatten() {
        assert!(
            !field.is_empty() && field.chars().count() <= 200,
            "{field:?}"
        );
    }
    let e = ObjectError::Status {
        sid: "RT00000000000000000000000000000001".into(),
        status,
        code,
        message,
        url: "https://storage.example/o".into(),
    };
    let line = e.to_string();
    assert!(line.contains(&format!("HTTP {status}")), "{line}");
    assert_printable(&line);

    // The API: whole, or refused past its limit.
    let limit = a.api_limit as usize;
    let mut api = Bounded::new(limit);
    for c in chunks() {
        api.push(c);
        if api.over() {
            break;
        }
    }
    assert_eq!(api.over(), total > limit);
    if !api.over() {
        let body = api.into_bytes();
        assert_eq!(body.len(), total);
        if let Ok(status) = reqwest::StatusCode::from_u16(status) {
            let e = api_error("/v1/Recordings", status, &body);
            let line = e.to_string();
            assert!(!line.is_empty());
            assert_printable(&line);
        }
    }
});
