//! The one place a filesystem error becomes an HTTP status, as [`crate::fs::Error::errno`]
//! is for the mount: the same failures, said in HTTP.
//!
//! Exhaustive down to the kinds of [`ReadError`] and [`Failure`]: a new variant does not
//! compile until someone picks its status. Pure: no I/O.

use axum::http::StatusCode;

use crate::fs::Error;
use crate::read::{Failure, ReadError};

/// The status for `e`. A key that does not fit, or unencrypted media refused by
/// `--require-encrypted`, is 403 (the mount's EACCES); what is gone is 404; storage or
/// the API failing past the retry budget, or sending what does not decrypt, is 502 (the
/// gateway's upstream failed); no answer within the answer bound is 504.
pub fn of(e: &Error) -> StatusCode {
    match e {
        Error::NotFound | Error::NotDir | Error::IsDir => StatusCode::NOT_FOUND,
        Error::NoXattr | Error::XattrRange | Error::BadHandle => StatusCode::INTERNAL_SERVER_ERROR,
        Error::Api(e) => of_failure(Failure::of_api(e)),
        Error::Read(e) => of_read(e),
        Error::TimedOut { .. } | Error::ListingDeadline { .. } => StatusCode::GATEWAY_TIMEOUT,
    }
}

fn of_read(e: &ReadError) -> StatusCode {
    match e {
        ReadError::Key { .. } | ReadError::NotEncrypted { .. } => StatusCode::FORBIDDEN,
        ReadError::Damaged { .. } | ReadError::NoEnvelope { .. } => StatusCode::BAD_GATEWAY,
        ReadError::Unsupported { .. } => StatusCode::NOT_IMPLEMENTED,
        ReadError::Gone { .. } => of_failure(Failure::Gone),
        ReadError::Denied { .. } => of_failure(Failure::Denied),
        ReadError::Storage { .. } => of_failure(Failure::Failed),
        ReadError::TimedOut { .. } => StatusCode::GATEWAY_TIMEOUT,
    }
}

/// Twilio refusing the gateway's own credentials is the gateway's upstream failing
/// (502), not the client's lack of permission: the client cannot fix it.
fn of_failure(f: Failure) -> StatusCode {
    match f {
        Failure::Gone => StatusCode::NOT_FOUND,
        Failure::Denied | Failure::Failed => StatusCode::BAD_GATEWAY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn statuses() {
        assert_eq!(of(&Error::NotFound), StatusCode::NOT_FOUND);
        let timed_out = Error::TimedOut {
            what: "x".into(),
            after: Duration::from_secs(1),
        };
        assert_eq!(of(&timed_out), StatusCode::GATEWAY_TIMEOUT);
        let gone = Error::Read(ReadError::Gone {
            sid: "RT1".into(),
            message: "404".into(),
        });
        assert_eq!(of(&gone), StatusCode::NOT_FOUND);
    }
}
