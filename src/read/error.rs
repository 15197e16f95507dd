//! Why a read failed, by kind: the one vocabulary of failure that every front-end maps
//! to its own (the mount to errnos, the HTTP gateway to statuses).
//!
//! Storage and API errors are classified here, once, by exhaustive matches: a new
//! variant of [`ObjectError`] or [`twilio::Error`] does not compile until someone says
//! which [`Failure`] it is. The message of the original error is kept whole, so a log
//! line still says exactly what happened.
//!
//! Pure: no I/O, no errnos, no HTTP statuses.

use std::time::Duration;

use crate::crypto::CryptoError;
use crate::object::ObjectError;
use crate::twilio;

/// What a failure from the API or storage means to someone reading a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The recording or composition, or its media, is not there (any more): deleted,
    /// never completed, or a 404 from the API or the storage.
    Gone,
    /// Twilio refuses these credentials: no credentials, 401, or 403 from the API.
    Denied,
    /// Anything else that went wrong on the way: 5xx and 429 past the retry budget,
    /// refused or reset connections, bodies cut short, answers that make no sense.
    Failed,
}

impl Failure {
    /// What an API error means for the thing it was about.
    pub fn of_api(e: &twilio::Error) -> Failure {
        use twilio::Error as E;
        match e {
            E::NoCredentials { .. } | E::Config(_) | E::Unauthorized { .. } => Failure::Denied,
            E::NoMedia { .. } => Failure::Gone,
            E::Api { status, .. } => match status {
                404 | 410 => Failure::Gone,
                401 | 403 => Failure::Denied,
                _ => Failure::Failed,
            },
            E::RetriesExhausted { .. }
            | E::Transport { .. }
            | E::Decode { .. }
            | E::Paging { .. }
            | E::Invalid(_) => Failure::Failed,
        }
    }

    /// What a storage error means. A 403 from the storage itself (not the API) is a URL
    /// that kept being refused after fresh ones were asked for: a storage failure, not
    /// the reader's permission.
    pub fn of_storage(e: &ObjectError) -> Failure {
        match e {
            ObjectError::Twilio(api) => Failure::of_api(api),
            ObjectError::Status { status, .. } => match status {
                404 | 410 => Failure::Gone,
                _ => Failure::Failed,
            },
            ObjectError::RetriesExhausted { .. }
            | ObjectError::OutOfRange { .. }
            | ObjectError::Protocol { .. }
            | ObjectError::Transport { .. } => Failure::Failed,
        }
    }
}

/// Why a read (or an open) failed. Front-ends map each variant to what their clients
/// understand; [`crate::fs`] to an errno. The cause is part of the message (not an error
/// `source`), so that a chain printed whole says it once.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError {
    /// No private key unwraps the content key (or none was given), or the one that does
    /// gives an AES key the object refuses (a wrong key, or a damaged object).
    #[error("{sid}: {cause}")]
    Key { sid: String, cause: CryptoError },
    /// The data does not decrypt: bad padding, a cut-short object, a length mismatch.
    #[error("{sid}: damaged data: {cause}")]
    Damaged { sid: String, cause: CryptoError },
    /// Encrypted in a format this program does not decrypt (S3 Encryption Client v2).
    #[error("{sid}: {cause}")]
    Unsupported { sid: String, cause: CryptoError },
    /// Arrived without its envelope headers, and its bytes do not begin a Matroska or
    /// MP4 file: ciphertext whose headers were lost on the way, or not media at all.
    /// Refused, never served as if it were plaintext ([`super::unencrypted`]).
    #[error(
        "{sid}: damaged data: the object came without its encryption headers \
         (x-amz-meta-x-amz-key, x-amz-meta-x-amz-iv; for a call recording, \
         encryption_details) and is not unencrypted media either (its {stored_len} bytes \
         do not start like Matroska, MP4 or WAV): refusing to serve it"
    )]
    NoEnvelope { sid: String, stored_len: u64 },
    /// Stored unencrypted, and `--require-encrypted` refuses unencrypted media.
    #[error(
        "{sid}: stored unencrypted (no encryption headers, or encryption_details null), \
         and --require-encrypted refuses unencrypted media"
    )]
    NotEncrypted { sid: String },
    /// The media is not there (any more): see [`Failure::Gone`].
    #[error("{sid}: {message}")]
    Gone { sid: String, message: String },
    /// Twilio refuses these credentials: see [`Failure::Denied`].
    #[error("{sid}: {message}")]
    Denied { sid: String, message: String },
    /// The storage or the API could not be read within the retry budget.
    #[error("{sid}: {message}")]
    Storage { sid: String, message: String },
    /// No answer within the read bound (the retry budget, a request timeout and a
    /// second): the read is given up so that no reader hangs.
    #[error(
        "{sid}: no answer from storage within {:.1} s (--retry-budget + --timeout): giving up on this read",
        after.as_secs_f64()
    )]
    TimedOut { sid: String, after: Duration },
}

impl ReadError {
    /// A storage error while reading `sid`, by what it means.
    pub fn from_storage(sid: &str, e: ObjectError) -> Self {
        let (sid, message) = (sid.to_owned(), e.to_string());
        match Failure::of_storage(&e) {
            Failure::Gone => ReadError::Gone { sid, message },
            Failure::Denied => ReadError::Denied { sid, message },
            Failure::Failed => ReadError::Storage { sid, message },
        }
    }

    /// The recording or composition the error is about.
    pub fn sid(&self) -> &str {
        match self {
            ReadError::Key { sid, .. }
            | ReadError::Damaged { sid, .. }
            | ReadError::Unsupported { sid, .. }
            | ReadError::NoEnvelope { sid, .. }
            | ReadError::NotEncrypted { sid }
            | ReadError::Gone { sid, .. }
            | ReadError::Denied { sid, .. }
            | ReadError::Storage { sid, .. }
            | ReadError::TimedOut { sid, .. } => sid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> twilio::Error {
        twilio::Error::Api {
            what: "/v1/Recordings/RT1/Media".into(),
            status,
            code: None,
            message: "x".into(),
            more_info: None,
        }
    }

    fn storage(status: u16) -> ObjectError {
        ObjectError::Status {
            sid: "RT1".into(),
            status,
            code: None,
            message: None,
            url: "http://127.0.0.1/o".into(),
        }
    }

    #[test]
    fn api_errors_by_meaning() {
        let cases = [
            (api(404), Failure::Gone),
            (api(410), Failure::Gone),
            (api(401), Failure::Denied),
            (api(403), Failure::Denied),
            (api(400), Failure::Failed),
            (api(500), Failure::Failed),
            (
                twilio::Error::NoMedia {
                    sid: "RT1".into(),
                    state: "status deleted".into(),
                },
                Failure::Gone,
            ),
            (
                twilio::Error::Unauthorized {
                    code: 20003,
                    source_name: "env".into(),
                    username: "SK1".into(),
                    detail: String::new(),
                },
                Failure::Denied,
            ),
            (
                twilio::Error::NoCredentials {
                    config_path: "x".into(),
                },
                Failure::Denied,
            ),
            (
                twilio::Error::Transport {
                    what: "x".into(),
                    detail: "refused".into(),
                },
                Failure::Failed,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(Failure::of_api(&e), want, "{e}");
        }
    }

    #[test]
    fn storage_errors_by_meaning_keep_their_message() {
        assert_eq!(Failure::of_storage(&storage(404)), Failure::Gone);
        assert_eq!(Failure::of_storage(&storage(403)), Failure::Failed);
        assert_eq!(Failure::of_storage(&storage(500)), Failure::Failed);
        assert_eq!(
            Failure::of_storage(&ObjectError::Twilio(api(403))),
            Failure::Denied
        );
        let e = ReadError::from_storage("RT1", ObjectError::Twilio(api(404)));
        assert!(matches!(e, ReadError::Gone { .. }));
        assert_eq!(e.sid(), "RT1");
        assert!(e.to_string().contains("HTTP 404"), "{e}");
        let e = ReadError::TimedOut {
            sid: "RT1".into(),
            after: Duration::from_millis(2500),
        };
        assert_eq!(
            e.to_string(),
            "RT1: no answer from storage within 2.5 s (--retry-budget + --timeout): giving up on this read"
        );
    }
}
