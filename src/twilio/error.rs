//! Errors of the Twilio client, what they say about access ([`Access`]: rejected,
//! forbidden, unreachable), and the redaction that keeps secrets out of them.
//!
//! Every message here may end up in a terminal or a log: none may carry credentials or
//! the query string of a pre-signed storage URL (it holds the signature, which is as
//! good as a password for an hour). [`redact_url`] is the one place that strips them.

use std::time::Duration;

/// What went wrong talking to Twilio.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No credentials in the environment or the config file.
    #[error(
        "no Twilio credentials found: set TWILIO_API_KEY and TWILIO_API_SECRET (with \
         TWILIO_ACCOUNT_SID), or TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, or write them \
         to {config_path} (keys api_key, api_secret, account_sid, auth_token)"
    )]
    NoCredentials {
        /// The config file that was looked for.
        config_path: String,
    },

    /// Credentials half given, or a config file that cannot be used.
    #[error("bad Twilio credentials configuration: {0}")]
    Config(String),

    /// HTTP 401: the account SID / API key / secret are wrong.
    #[error(
        "Twilio rejected the credentials ({code}): check TWILIO_ACCOUNT_SID / TWILIO_API_KEY / \
         TWILIO_API_SECRET (or TWILIO_AUTH_TOKEN); these came from {source_name} (user {username}){detail}"
    )]
    Unauthorized {
        /// Twilio's error code, 20003 unless the body said otherwise.
        code: u64,
        /// Where the credentials came from (the environment, a file).
        source_name: String,
        /// The Basic-auth user (an `SK…` or `AC…` SID, not a secret).
        username: String,
        /// `: "message"` from the body, or empty.
        detail: String,
    },

    /// `/Media` answered 404: the recording or composition has no media (yet, or any more).
    #[error("{sid} has no media available ({state})")]
    NoMedia {
        /// The recording or composition.
        sid: String,
        /// `status processing`, or `not completed, or deleted` when unknown.
        state: String,
    },

    /// Any other error answer of the API, with Twilio's JSON error body when there was one.
    #[error("Twilio API error on {what}: HTTP {status}{}: {message}{}",
        code.map(|c| format!(" (code {c})")).unwrap_or_default(),
        more_info.as_ref().map(|m| format!(" (see {m})")).unwrap_or_default())]
    Api {
        /// What was being requested (a path, never a signed URL).
        what: String,
        /// The HTTP status.
        status: u16,
        /// Twilio's error code (`20404`, `20429`, …).
        code: Option<u64>,
        /// Twilio's message, or the start of the body.
        message: String,
        /// Twilio's documentation link for the code.
        more_info: Option<String>,
    },

    /// Every attempt failed with a retryable error.
    #[error("giving up on {what} after {attempts} attempts in {:.1} s: {last}", elapsed.as_secs_f64())]
    RetriesExhausted {
        /// What was being requested.
        what: String,
        /// How many attempts were made.
        attempts: u32,
        /// How long it took.
        elapsed: Duration,
        /// The last failure.
        last: String,
    },

    /// The connection failed and could not be retried.
    #[error("request to {what} failed: {detail}")]
    Transport {
        /// What was being requested (redacted).
        what: String,
        /// The error chain (without URLs).
        detail: String,
    },

    /// The answer did not parse as the expected JSON.
    #[error("unexpected answer from {what}: {detail}")]
    Decode {
        /// What was being requested.
        what: String,
        /// Why it did not parse.
        detail: String,
    },

    /// Listing went wrong: a page URL repeated, or too many pages.
    #[error("listing {what}: {detail}")]
    Paging {
        /// What was being listed.
        what: String,
        /// What went wrong.
        detail: String,
    },

    /// A bad argument: a malformed SID or API URL.
    #[error("{0}")]
    Invalid(String),
}

/// Which way a request failed, as far as access goes: the words a command's first
/// request (and `doctor`) use to say what is wrong with the credentials, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A 401: Twilio rejected the credentials (wrong SID, key or secret).
    Rejected,
    /// A 403: Twilio knows the credentials, but they may not read this resource (a
    /// restricted API key without that permission).
    Forbidden,
    /// No usable answer: the connection failed, or only 5xx and 429 came back within
    /// the retry budget.
    Unreachable,
    /// Anything else: a 404, an answer that does not parse, a bad argument, missing
    /// credentials (their own message says so).
    Other,
}

impl Error {
    /// What this error says about access ([`Access`]).
    pub fn access(&self) -> Access {
        match self {
            Error::Unauthorized { .. } => Access::Rejected,
            Error::Api { status: 403, .. } => Access::Forbidden,
            Error::RetriesExhausted { .. } | Error::Transport { .. } => Access::Unreachable,
            Error::NoCredentials { .. }
            | Error::Config(_)
            | Error::NoMedia { .. }
            | Error::Api { .. }
            | Error::Decode { .. }
            | Error::Paging { .. }
            | Error::Invalid(_) => Access::Other,
        }
    }
}

/// The result type of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A URL fit for messages and logs: no userinfo, no query string, no fragment.
///
/// `https://bucket.s3.amazonaws.com/a/b.mka?X-Amz-Signature=…` becomes
/// `https://bucket.s3.amazonaws.com/a/b.mka?…`.
pub fn redact_url(url: &str) -> String {
    let (base, had_query) = match url.find(['?', '#']) {
        Some(i) => (&url[..i], true),
        None => (url, false),
    };
    // Drop `user:pass@` from the authority.
    let base = match base.find("://") {
        Some(i) => {
            let rest = &base[i + 3..];
            let auth_end = rest.find('/').unwrap_or(rest.len());
            match rest[..auth_end].rfind('@') {
                Some(at) => format!("{}{}", &base[..i + 3], &rest[at + 1..]),
                None => base.to_string(),
            }
        }
        None => base.to_string(),
    };
    if had_query {
        format!("{base}?…")
    } else {
        base
    }
}

/// The chain of a reqwest error, without the URL reqwest puts in its message.
pub fn describe_reqwest(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else if err.is_body() {
        "body read failed"
    } else if err.is_decode() {
        "cannot decode body"
    } else {
        "request failed"
    };
    let mut out = kind.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&redact_url(&text));
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_query_and_userinfo() {
        assert_eq!(
            redact_url(
                "https://b.s3.amazonaws.com/x/RT1.mka?X-Amz-Signature=abc&X-Amz-Credential=k"
            ),
            "https://b.s3.amazonaws.com/x/RT1.mka?…"
        );
        assert_eq!(
            redact_url("https://SK1:secret@video.twilio.com/v1/Recordings"),
            "https://video.twilio.com/v1/Recordings"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:9/a#frag"),
            "http://127.0.0.1:9/a?…"
        );
        assert_eq!(redact_url("/v1/Rooms"), "/v1/Rooms");
    }

    #[test]
    fn access_by_status_and_kind() {
        let api = |status| Error::Api {
            what: "/v1/Recordings".into(),
            status,
            code: None,
            message: "x".into(),
            more_info: None,
        };
        assert_eq!(api(403).access(), Access::Forbidden);
        assert_eq!(api(404).access(), Access::Other);
        assert_eq!(
            api(500).access(),
            Access::Other,
            "a 5xx retried away is exhausted"
        );
        let rejected = Error::Unauthorized {
            code: 20003,
            source_name: "the environment".into(),
            username: "SK1".into(),
            detail: String::new(),
        };
        assert_eq!(rejected.access(), Access::Rejected);
        let refused = Error::Transport {
            what: "/v1/Recordings".into(),
            detail: "cannot connect".into(),
        };
        assert_eq!(refused.access(), Access::Unreachable);
        let exhausted = Error::RetriesExhausted {
            what: "/v1/Recordings".into(),
            attempts: 3,
            elapsed: Duration::from_secs(1),
            last: "cannot connect".into(),
        };
        assert_eq!(exhausted.access(), Access::Unreachable);
    }

    #[test]
    fn messages() {
        let e = Error::Unauthorized {
            code: 20003,
            source_name: "the environment".into(),
            username: "SK1".into(),
            detail: String::new(),
        };
        assert!(e.to_string().starts_with(
            "Twilio rejected the credentials (20003): check TWILIO_ACCOUNT_SID / TWILIO_API_KEY"
        ));
        let e = Error::Api {
            what: "/v1/Rooms".into(),
            status: 400,
            code: Some(20001),
            message: "Invalid".into(),
            more_info: Some("https://www.twilio.com/docs/errors/20001".into()),
        };
        assert_eq!(
            e.to_string(),
            "Twilio API error on /v1/Rooms: HTTP 400 (code 20001): Invalid \
             (see https://www.twilio.com/docs/errors/20001)"
        );
    }
}
