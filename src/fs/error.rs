//! Why a filesystem operation failed, and the one place errors become errnos.
//!
//! Every match here is exhaustive, down to the kinds of [`ReadError`] and the
//! [`Failure`] of an API error: a new variant anywhere below does not compile until
//! someone picks its errno. Pure: no I/O.

use std::sync::Arc;
use std::time::Duration;

use crate::read::{Failure, ReadError};
use crate::twilio;

/// Why an operation failed; [`Error::errno`] says what the reader sees.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("no such file or directory")]
    NotFound,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("no such extended attribute")]
    NoXattr,
    #[error("the buffer is too small for the extended attribute")]
    XattrRange,
    /// A file or directory handle that is not open (the kernel never sends one).
    #[error("no such open handle")]
    BadHandle,
    /// A listing or a resource lookup failed.
    #[error("{0}")]
    Api(Arc<twilio::Error>),
    /// Opening or reading a file failed.
    #[error("{0}")]
    Read(#[from] ReadError),
    /// A lookup, readdir or getxattr that had to wait for the API (a listing not made
    /// yet, a resource, a room) had no answer within the answer bound. What it waited
    /// for goes on in the background where it can (a listing does), so that asking
    /// again later succeeds.
    #[error(
        "no answer from the API within {:.1} s (--retry-budget + --timeout + 1 s) for {what}: \
         giving up on this request (try again later)",
        after.as_secs_f64()
    )]
    TimedOut { what: String, after: Duration },
    /// A whole listing (all its pages) took longer than the listing deadline.
    #[error(
        "the listing took longer than {}, the --listing-deadline: given up",
        as_flag(*after)
    )]
    ListingDeadline { after: Duration },
}

impl From<twilio::Error> for Error {
    fn from(e: twilio::Error) -> Self {
        Error::Api(Arc::new(e))
    }
}

impl Error {
    /// The errno for the reader.
    pub fn errno(&self) -> i32 {
        match self {
            Error::NotFound => libc::ENOENT,
            Error::NotDir => libc::ENOTDIR,
            Error::IsDir => libc::EISDIR,
            Error::NoXattr => libc::ENODATA,
            Error::XattrRange => libc::ERANGE,
            Error::BadHandle => libc::EBADF,
            Error::Api(e) => failure_errno(Failure::of_api(e)),
            Error::Read(e) => read_errno(e),
            // As a read that times out: EIO, which tools report plainly.
            Error::TimedOut { .. } | Error::ListingDeadline { .. } => libc::EIO,
        }
    }
}

/// A read's errno: a key that does not fit is a permission matter (EACCES), data that
/// does not decrypt is an I/O error, a format not supported is EOPNOTSUPP. An object
/// without its envelope that is not media is damaged data (EIO); unencrypted media
/// refused by `--require-encrypted` is a policy refusal, like a key that does not fit
/// (EACCES): the data is fine, this mount may not serve it.
fn read_errno(e: &ReadError) -> i32 {
    match e {
        ReadError::Key { .. } => libc::EACCES,
        ReadError::Damaged { .. } => libc::EIO,
        ReadError::Unsupported { .. } => libc::EOPNOTSUPP,
        ReadError::NoEnvelope { .. } => libc::EIO,
        ReadError::NotEncrypted { .. } => libc::EACCES,
        ReadError::Gone { .. } => failure_errno(Failure::Gone),
        ReadError::Denied { .. } => failure_errno(Failure::Denied),
        ReadError::Storage { .. } => failure_errno(Failure::Failed),
        // Players and `cp` report EIO plainly; ETIMEDOUT reads as a network error.
        ReadError::TimedOut { .. } => libc::EIO,
    }
}

/// `d` as a duration flag says it: `600s`, `1500ms`.
fn as_flag(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn failure_errno(f: Failure) -> i32 {
    match f {
        Failure::Gone => libc::ENOENT,
        Failure::Denied => libc::EACCES,
        Failure::Failed => libc::EIO,
    }
}
