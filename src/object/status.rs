//! What a storage answer means, from its status line and headers alone.
//!
//! [`classify`] takes what a ranged GET asked for and what came back (status,
//! `Content-Range`, `Content-Length`) and says what to do with the body: read data from
//! it (and from which byte), or read it as an error to report, to retry, or to answer
//! by asking `/Media` for a new URL. It also checks the answer against the request
//! (a range other than asked, a length that changed between requests) and learns the
//! object's length. [`classify_suffix`] does the same for a request of the object's last
//! bytes (`Range: bytes=-N`). [`parse_content_range`] and [`parse_s3_error`] read the two
//! headers and the body format it relies on.
//!
//! This module must stay pure: no I/O, no clock, no logging. The object client does the
//! requests and reads the bodies; everything here is table-tested.

use reqwest::StatusCode;

use crate::twilio;

/// `bytes first-last/total` (`total` may be `*`), or `bytes */total` of a 416.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    /// The first and last byte sent (inclusive), absent in `bytes */N`.
    pub range: Option<(u64, u64)>,
    /// The full length, unless `*`.
    pub total: Option<u64>,
}

/// Parses a `Content-Range` header value.
pub fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse::<u64>().ok()?),
    };
    let range = match range.trim() {
        "*" => None,
        r => {
            let (a, b) = r.split_once('-')?;
            let (a, b) = (a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?);
            if b < a || total.is_some_and(|t| b >= t) {
                return None;
            }
            Some((a, b))
        }
    };
    if range.is_none() && total.is_none() {
        return None;
    }
    Some(ContentRange { range, total })
}

/// `<Code>` and `<Message>` of an S3 XML error body.
pub fn parse_s3_error(body: &str) -> (Option<String>, Option<String>) {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = body.find(&open)? + open.len();
        let len = body[start..].find(&close)?;
        let text = body[start..start + len].trim();
        (!text.is_empty()).then(|| text.chars().take(200).collect::<String>())
    };
    (tag("Code"), tag("Message"))
}

/// One ranged GET: `Range: bytes={pos}-{last}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Asked<'a> {
    /// The first byte asked for.
    pub pos: u64,
    /// The last byte asked for (inclusive).
    pub last: u64,
    /// The object's length, when an earlier answer said it.
    pub total: Option<u64>,
    /// The `If-Match` sent (the first answer's ETag), on a resumed read.
    pub etag: Option<&'a str>,
}

/// What to do with an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Classified {
    /// The body holds data: skip `skip` bytes of it, keep the rest up to the read's end.
    Data {
        /// Bytes of the body before `pos` (a 200 that ignored the range).
        skip: u64,
        /// How long the body says it is, when it says.
        body_len: Option<u64>,
        /// The object's length as now known.
        total: Option<u64>,
        /// The body is the whole object (a 200): when no length was given, its end is
        /// the object's end.
        whole: bool,
    },
    /// A 416 exactly at the end of the object: nothing to read, like a read at EOF.
    AtEnd {
        /// The object's length (= `pos`).
        total: u64,
    },
    /// The read starts past the end of the object.
    OutOfRange {
        /// The object's length, when known.
        total: Option<u64>,
    },
    /// The answer makes no sense for the request.
    Protocol(String),
    /// An error status: its body (S3's XML) says more.
    Error(ErrorStatus),
}

/// How an error status is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorStatus {
    /// 403: the pre-signed URL expired; ask `/Media` for a new one.
    Expired,
    /// 5xx, 429: try again after a delay.
    Retryable,
    /// Anything else: report it.
    Fatal,
}

/// What an answer with `status`, `content_range` and `content_length` means for the
/// request `asked`.
pub(crate) fn classify(
    asked: &Asked<'_>,
    status: StatusCode,
    content_range: Option<&str>,
    content_length: Option<u64>,
) -> Classified {
    let Asked {
        pos,
        last,
        total: known,
        etag,
    } = *asked;
    let changed = |known: u64, t: u64| {
        Classified::Protocol(format!(
            "the object's length changed from {known} to {t} between requests"
        ))
    };
    let (skip, body_len, total, whole) = match status {
        StatusCode::PARTIAL_CONTENT => {
            let cr = content_range
                .and_then(parse_content_range)
                .and_then(|cr| Some((cr.range?, cr.total)));
            let Some(((first, last_sent), sent_total)) = cr else {
                return Classified::Protocol(format!(
                    "206 with a bad Content-Range {content_range:?}"
                ));
            };
            if first != pos || last_sent > last {
                return Classified::Protocol(format!(
                    "asked for bytes {pos}-{last}, got {first}-{last_sent}"
                ));
            }
            let total = match (sent_total, known) {
                (Some(t), None) => Some(t),
                (Some(t), Some(known)) if t != known => return changed(known, t),
                // Short answer without a total: that must be the end.
                (None, None) if last_sent < last => Some(last_sent + 1),
                _ => known,
            };
            (0, Some(last_sent - first + 1), total, false)
        }
        StatusCode::OK => {
            let total = match (content_length, known) {
                (Some(t), None) => Some(t),
                (Some(t), Some(known)) if t != known => return changed(known, t),
                _ => known,
            };
            (pos, content_length, total, true)
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            let total = content_range
                .and_then(parse_content_range)
                .and_then(|cr| cr.total)
                .or(known);
            return match total {
                // A read that starts exactly at the end (or resumed there).
                Some(total) if total == pos => Classified::AtEnd { total },
                total => Classified::OutOfRange { total },
            };
        }
        StatusCode::PRECONDITION_FAILED if etag.is_some() => {
            return Classified::Protocol(format!(
                "the object changed while being read (ETag no longer {})",
                etag.unwrap_or("")
            ));
        }
        StatusCode::FORBIDDEN => return Classified::Error(ErrorStatus::Expired),
        s if twilio::is_retryable(s) => return Classified::Error(ErrorStatus::Retryable),
        _ => return Classified::Error(ErrorStatus::Fatal),
    };
    if let Some(t) = total
        && pos > t
    {
        // Only a server that ignores ranges gets here (others answer 416).
        return Classified::OutOfRange { total: Some(t) };
    }
    Classified::Data {
        skip,
        body_len,
        total,
        whole,
    }
}

/// Where the answer to `Range: bytes=-len` (the last `len` bytes) starts, and the
/// object's length: only a `206` of exactly the last `min(len, length)` bytes will do.
/// Anything else (a 200 of the whole object, an error status, another range) is why
/// not, in words: the caller reads those bytes the usual way instead.
pub(crate) fn classify_suffix(
    len: u64,
    status: StatusCode,
    content_range: Option<&str>,
    content_length: Option<u64>,
) -> Result<(u64, u64), String> {
    if status != StatusCode::PARTIAL_CONTENT {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    let cr = content_range
        .and_then(parse_content_range)
        .and_then(|cr| Some((cr.range?, cr.total?)));
    let Some(((first, last), total)) = cr else {
        return Err(format!("206 with a bad Content-Range {content_range:?}"));
    };
    let sent = last - first + 1;
    if last + 1 != total || sent != len.min(total) {
        return Err(format!(
            "asked for the last {len} bytes, got {first}-{last}/{total}"
        ));
    }
    if content_length.is_some_and(|l| l != sent) {
        return Err(format!(
            "Content-Length {content_length:?} for the {sent} bytes {first}-{last}"
        ));
    }
    Ok((first, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_answers() {
        let ok = |cr: &str, cl| classify_suffix(32, StatusCode::PARTIAL_CONTENT, Some(cr), cl);
        assert_eq!(ok("bytes 968-999/1000", Some(32)), Ok((968, 1000)));
        assert_eq!(ok("bytes 968-999/1000", None), Ok((968, 1000)));
        // An object shorter than the suffix: all of it.
        assert_eq!(ok("bytes 0-15/16", Some(16)), Ok((0, 16)));
        for (cr, cl) in [
            ("bytes 967-999/1000", Some(33)), // one byte too many
            ("bytes 969-999/1000", Some(31)), // too few
            ("bytes 968-998/1000", Some(31)), // not the end
            ("bytes 968-999/*", Some(32)),    // no length
            ("bytes */1000", None),
            ("bytes 968-999/1000", Some(40)), // body length disagrees
            ("bytes 1-15/16", Some(15)),
        ] {
            assert!(ok(cr, cl).is_err(), "{cr} {cl:?}");
        }
        let other = |status: u16| {
            let status = StatusCode::from_u16(status).unwrap();
            classify_suffix(32, status, Some("bytes 968-999/1000"), Some(32))
        };
        for status in [200, 403, 404, 416, 500, 503] {
            assert_eq!(other(status), Err(format!("HTTP {status}")));
        }
        assert!(classify_suffix(32, StatusCode::PARTIAL_CONTENT, None, Some(32)).is_err());
    }

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 0-99/1000"),
            Some(ContentRange {
                range: Some((0, 99)),
                total: Some(1000)
            })
        );
        assert_eq!(
            parse_content_range("bytes 5-5/*"),
            Some(ContentRange {
                range: Some((5, 5)),
                total: None
            })
        );
        assert_eq!(
            parse_content_range("bytes */1234"),
            Some(ContentRange {
                range: None,
                total: Some(1234)
            })
        );
        for bad in [
            "",
            "bytes",
            "bytes */*",
            "bytes 9-5/10",
            "bytes 0-10/10",
            "items 0-1/2",
            "bytes 0-/10",
            "bytes -1-5/10",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn s3_errors() {
        let body = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code>\
                    <Message>Request has expired</Message><RequestId>x</RequestId></Error>";
        assert_eq!(
            parse_s3_error(body),
            (
                Some("AccessDenied".into()),
                Some("Request has expired".into())
            )
        );
        assert_eq!(parse_s3_error("not xml"), (None, None));
    }

    /// A first request for bytes 100-199: no length known yet, no `If-Match`.
    const FIRST: Asked<'static> = Asked {
        pos: 100,
        last: 199,
        total: None,
        etag: None,
    };

    /// A resumed request for bytes 150-199 of a 1000-byte object.
    const RESUMED: Asked<'static> = Asked {
        pos: 150,
        last: 199,
        total: Some(1000),
        etag: Some("\"abc\""),
    };

    fn data(skip: u64, body_len: Option<u64>, total: Option<u64>, whole: bool) -> Classified {
        Classified::Data {
            skip,
            body_len,
            total,
            whole,
        }
    }

    fn protocol(detail: &str) -> Classified {
        Classified::Protocol(detail.to_string())
    }

    /// The request; the status, `Content-Range` and `Content-Length` of the answer; what
    /// it means.
    type Row = (
        Asked<'static>,
        u16,
        Option<&'static str>,
        Option<u64>,
        Classified,
    );

    #[test]
    fn classify_table() {
        use Classified::{AtEnd, Error, OutOfRange};
        use ErrorStatus::{Expired, Fatal, Retryable};
        #[rustfmt::skip]
        let table: Vec<Row> = vec![
            // 206: the range asked, the object's length learnt.
            (FIRST, 206, Some("bytes 100-199/1000"), Some(100), data(0, Some(100), Some(1000), false)),
            (RESUMED, 206, Some("bytes 150-199/1000"), Some(50), data(0, Some(50), Some(1000), false)),
            // A shorter range at the end of the object.
            (FIRST, 206, Some("bytes 100-149/150"), None, data(0, Some(50), Some(150), false)),
            // `*` total: a short answer is the end, a full one says nothing.
            (FIRST, 206, Some("bytes 100-149/*"), None, data(0, Some(50), Some(150), false)),
            (FIRST, 206, Some("bytes 100-199/*"), None, data(0, Some(100), None, false)),
            (RESUMED, 206, Some("bytes 150-199/*"), None, data(0, Some(50), Some(1000), false)),
            // 206 that does not say what it holds, or holds something else.
            (FIRST, 206, None, Some(100), protocol("206 with a bad Content-Range None")),
            (FIRST, 206, Some("bytes */1000"), None,
                protocol("206 with a bad Content-Range Some(\"bytes */1000\")")),
            (FIRST, 206, Some("bytes 0-99/1000"), None, protocol("asked for bytes 100-199, got 0-99")),
            (FIRST, 206, Some("bytes 100-299/1000"), None,
                protocol("asked for bytes 100-199, got 100-299")),
            (RESUMED, 206, Some("bytes 150-199/2000"), None,
                protocol("the object's length changed from 1000 to 2000 between requests")),
            // 200: the range ignored; skip to `pos`.
            (FIRST, 200, None, Some(1000), data(100, Some(1000), Some(1000), true)),
            (FIRST, 200, None, None, data(100, None, None, true)),
            (RESUMED, 200, None, None, data(150, None, Some(1000), true)),
            (RESUMED, 200, None, Some(1000), data(150, Some(1000), Some(1000), true)),
            (RESUMED, 200, None, Some(900),
                protocol("the object's length changed from 1000 to 900 between requests")),
            (FIRST, 200, None, Some(50), OutOfRange { total: Some(50) }),
            (FIRST, 200, None, Some(100), data(100, Some(100), Some(100), true)),
            // 416: past the end, or exactly at it.
            (FIRST, 416, Some("bytes */50"), None, OutOfRange { total: Some(50) }),
            (FIRST, 416, None, None, OutOfRange { total: None }),
            (FIRST, 416, Some("bytes */100"), None, AtEnd { total: 100 }),
            (Asked { pos: 1000, ..RESUMED }, 416, None, None, AtEnd { total: 1000 }),
            (RESUMED, 416, Some("garbage"), None, OutOfRange { total: Some(1000) }),
            // 412: the object changed under a resumed read (If-Match); unasked, an error.
            (RESUMED, 412, None, None,
                protocol("the object changed while being read (ETag no longer \"abc\")")),
            (FIRST, 412, None, None, Error(Fatal)),
            // 403: the URL expired.
            (FIRST, 403, None, None, Error(Expired)),
            (RESUMED, 403, None, None, Error(Expired)),
            // Retryable statuses.
            (FIRST, 429, None, None, Error(Retryable)),
            (FIRST, 500, None, None, Error(Retryable)),
            (FIRST, 503, None, None, Error(Retryable)),
            (RESUMED, 504, Some("bytes 150-199/1000"), None, Error(Retryable)),
            // Everything else is reported.
            (FIRST, 404, None, None, Error(Fatal)),
            (FIRST, 400, None, None, Error(Fatal)),
            (FIRST, 401, None, None, Error(Fatal)),
            (FIRST, 204, None, None, Error(Fatal)),
            (FIRST, 302, None, None, Error(Fatal)),
            (FIRST, 304, None, None, Error(Fatal)),
        ];
        for (asked, status, content_range, content_length, want) in table {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                classify(&asked, status, content_range, content_length),
                want,
                "{status} {content_range:?} {content_length:?} for {asked:?}"
            );
        }
    }
}
