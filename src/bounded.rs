//! How much of a server's answer is held in memory: a body collected up to a limit,
//! chunk by chunk, whatever the server sends. The storage's error bodies keep their
//! first bytes ([`ERROR_BODY_LIMIT`]); an API answer is whole or refused
//! ([`crate::twilio::MAX_API_BODY`]).
//!
//! Pure: callers stream the chunks in; nothing here does I/O.

/// The most of a storage error body read (an S3 `<Error>` is well under 1 KiB).
pub const ERROR_BODY_LIMIT: usize = 64 << 10;

/// A body collected up to `limit` bytes.
#[derive(Debug)]
pub struct Bounded {
    limit: usize,
    body: Vec<u8>,
    over: bool,
}

impl Bounded {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            body: Vec::new(),
            over: false,
        }
    }

    /// Takes what of `chunk` fits; `false` once the limit is reached, when reading on
    /// is pointless.
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        let room = self.limit - self.body.len();
        if chunk.len() > room {
            self.over = true;
        }
        self.body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        self.body.len() < self.limit
    }

    /// More came than the limit (what is held was cut).
    pub fn over(&self) -> bool {
        self.over
    }

    /// What was held: at most the limit.
    pub fn into_bytes(self) -> Vec<u8> {
        self.body
    }

    /// What was held, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_held_up_to_the_limit_whatever_its_chunks() {
        let mut b = Bounded::new(10);
        assert!(b.push(b"abcd"));
        assert!(!b.over());
        assert!(!b.push(b"efghijkl"));
        assert!(b.over());
        assert!(!b.push(b"more"));
        assert_eq!(b.text(), "abcdefghij");
        let mut exact = Bounded::new(4);
        assert!(!exact.push(b"abcd"), "full: reading on is pointless");
        assert!(!exact.over(), "but nothing was cut");
        assert_eq!(exact.into_bytes(), b"abcd");
        let mut empty = Bounded::new(0);
        assert!(!empty.push(b""));
        assert!(!empty.over());
        assert!(!empty.push(b"x"));
        assert!(empty.over());
    }
}
