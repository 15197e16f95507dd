//! The `Range` header of HTTP requests (RFC 9110 §14): which bytes of a file of known
//! length a request asks for.
//!
//! Pure: parses a header value against a length. Only single ranges are served (a
//! multi-range request is answered with the whole file, which RFC 9110 allows). Every
//! server of the project uses this one function: `compose`'s loopback inputs and the
//! emulator's storage (as S3 answers).

/// What a request's `Range` header means for a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// The whole file: no header, or one this server ignores (several ranges, another
    /// unit, a malformed value).
    Whole,
    /// Bytes `[start, end]`, inclusive, within the file.
    Part { start: u64, end: u64 },
    /// A range that lies wholly past the end: 416.
    Unsatisfiable,
}

/// Parses `header` (the `Range` value, if any) for a file of `len` bytes.
pub fn wanted(header: Option<&str>, len: u64) -> Wanted {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // bytes=-N: the last N bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                Wanted::Unsatisfiable
            } else {
                Wanted::Part {
                    start: len.saturating_sub(n),
                    end: len - 1,
                }
            }
        }
        (false, Some(start), end) if last.trim().is_empty() || end.is_some() => {
            if start >= len {
                return Wanted::Unsatisfiable;
            }
            match end {
                Some(end) if end < start => Wanted::Whole,
                Some(end) => Wanted::Part {
                    start,
                    end: end.min(len - 1),
                },
                None => Wanted::Part {
                    start,
                    end: len - 1,
                },
            }
        }
        _ => Wanted::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges() {
        let w = |h: &str| wanted(Some(h), 100);
        assert_eq!(wanted(None, 100), Wanted::Whole);
        assert_eq!(w("bytes=0-9"), Wanted::Part { start: 0, end: 9 });
        assert_eq!(w("bytes=90-"), Wanted::Part { start: 90, end: 99 });
        assert_eq!(w("bytes=90-1000"), Wanted::Part { start: 90, end: 99 });
        assert_eq!(w("bytes=-10"), Wanted::Part { start: 90, end: 99 });
        assert_eq!(w("bytes=-1000"), Wanted::Part { start: 0, end: 99 });
        assert_eq!(w("bytes=100-"), Wanted::Unsatisfiable);
        assert_eq!(w("bytes=100-200"), Wanted::Unsatisfiable);
        assert_eq!(w("bytes=-0"), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=0-"), 0), Wanted::Unsatisfiable);
        assert_eq!(w("bytes=5-4"), Wanted::Whole);
        assert_eq!(w("bytes=0-1,5-6"), Wanted::Whole);
        assert_eq!(w("items=0-1"), Wanted::Whole);
        assert_eq!(w("bytes=a-b"), Wanted::Whole);
        assert_eq!(w("bytes=-"), Wanted::Whole);
        assert_eq!(w("bytes=+1-2"), Wanted::Whole);
        assert_eq!(w("bytes=99999999999999999999999-"), Wanted::Whole);
    }

    proptest! {
        #[test]
        fn parts_lie_in_the_file(h in "bytes=[0-9]{0,4}-[0-9]{0,4}", len in 0u64..5000) {
            if let Wanted::Part { start, end } = wanted(Some(&h), len) {
                prop_assert!(start <= end && end < len);
            }
        }
    }
}
