//! Who may read through `serve`: nobody needs to prove anything on a loopback-only
//! server; otherwise a bearer token, or a user and password of an htpasswd file
//! (bcrypt entries, as `htpasswd -B` writes them), or either.
//!
//! It owns checking an `Authorization` header and nothing else: where the token and
//! the file come from (a file or the environment, never argv) is `cmd::serve`'s. The
//! token is kept as its SHA-256 only and compared in constant time; passwords exist
//! only as bcrypt hashes. A header that passed bcrypt once is remembered by its
//! SHA-256, so that a player's hundred range requests cost one bcrypt, not a hundred.
//! Nothing here is ever logged.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The shortest bearer token accepted: 128 bits as hex, or a passphrase as long.
pub const MIN_TOKEN_LEN: usize = 32;

/// Headers that passed bcrypt, remembered at most this many (then forgotten all).
const REMEMBERED: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "the bearer token is {0} characters long: use at least {MIN_TOKEN_LEN} \
         (e.g. `openssl rand -hex 32`)"
    )]
    ShortToken(usize),
    #[error(
        "htpasswd line {line}: only bcrypt entries are accepted (user:$2y$…, as \
         `htpasswd -B` writes them); MD5, SHA-1 and crypt hashes are too weak"
    )]
    WeakHash { line: usize },
    #[error("htpasswd line {line}: not `user:hash`")]
    Malformed { line: usize },
    #[error("the htpasswd file has no users")]
    NoUsers,
}

/// The configured credentials.
#[derive(Default)]
pub struct Auth {
    /// SHA-256 of the bearer token.
    token: Option<[u8; 32]>,
    /// User → bcrypt hash.
    users: HashMap<String, String>,
    /// SHA-256 of `Authorization` values that passed bcrypt.
    remembered: Mutex<HashSet<[u8; 32]>>,
}

impl Auth {
    /// No credentials: every request is let through (loopback only; `cmd::serve`
    /// refuses other addresses without credentials).
    pub fn none() -> Self {
        Self::default()
    }

    /// A bearer token and/or the text of an htpasswd file.
    pub fn new(
        token: Option<Zeroizing<String>>,
        htpasswd: Option<&str>,
    ) -> Result<Self, AuthError> {
        let token = match token {
            Some(t) => {
                let t = t.trim();
                if t.chars().count() < MIN_TOKEN_LEN {
                    return Err(AuthError::ShortToken(t.chars().count()));
                }
                Some(digest(t.as_bytes()))
            }
            None => None,
        };
        let mut users = HashMap::new();
        if let Some(text) = htpasswd {
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (user, hash) = line
                    .split_once(':')
                    .ok_or(AuthError::Malformed { line: i + 1 })?;
                if user.is_empty() {
                    return Err(AuthError::Malformed { line: i + 1 });
                }
                if !["$2y$", "$2b$", "$2a$"].iter().any(|p| hash.starts_with(p))
                    || hash.parse::<bcrypt::HashParts>().is_err()
                {
                    return Err(AuthError::WeakHash { line: i + 1 });
                }
                users.insert(user.to_owned(), hash.to_owned());
            }
            if users.is_empty() {
                return Err(AuthError::NoUsers);
            }
        }
        Ok(Self {
            token,
            users,
            remembered: Mutex::default(),
        })
    }

    /// Whether any credential is required.
    pub fn required(&self) -> bool {
        self.token.is_some() || !self.users.is_empty()
    }

    /// What is configured, for `doctor`: "a bearer token", "2 users (htpasswd)", both,
    /// or "none".
    pub fn describe(&self) -> String {
        let users = match self.users.len() {
            0 => None,
            1 => Some("1 user (htpasswd)".to_owned()),
            n => Some(format!("{n} users (htpasswd)")),
        };
        match (self.token.is_some(), users) {
            (true, Some(u)) => format!("a bearer token and {u}"),
            (true, None) => "a bearer token".to_owned(),
            (false, Some(u)) => u,
            (false, None) => "none".to_owned(),
        }
    }

    /// The `WWW-Authenticate` challenge of a 401.
    pub fn challenge(&self) -> &'static str {
        if self.users.is_empty() {
            "Bearer realm=\"twilio-media-fs\""
        } else {
            "Basic realm=\"twilio-media-fs\", charset=\"UTF-8\""
        }
    }

    /// Whether a request with this `Authorization` header value may read, when that is
    /// cheap to tell: `None` when it takes a bcrypt (basic auth not seen before), which
    /// [`Self::allows`] does; the server runs that off its async workers, a few at once.
    pub fn quick(&self, authorization: Option<&[u8]>) -> Option<bool> {
        if !self.required() {
            return Some(true);
        }
        let Some(value) = authorization.and_then(|v| std::str::from_utf8(v).ok()) else {
            return Some(false);
        };
        let (scheme, _) = value.trim().split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("basic")
            && !self.users.is_empty()
            && !self
                .remembered
                .lock()
                .expect("auth lock")
                .contains(&digest(value.as_bytes()))
        {
            return None;
        }
        Some(self.allows(authorization))
    }

    /// Whether a request with this `Authorization` header value may read. A basic-auth
    /// value not seen before costs a bcrypt (tens of milliseconds): see [`Self::quick`].
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        if !self.required() {
            return true;
        }
        let Some(value) = authorization else {
            return false;
        };
        let Ok(value) = std::str::from_utf8(value) else {
            return false;
        };
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return self
                .token
                .is_some_and(|t| bool::from(t.ct_eq(&digest(rest.as_bytes()))));
        }
        if !scheme.eq_ignore_ascii_case("basic") || self.users.is_empty() {
            return false;
        }
        let key = digest(value.as_bytes());
        if self.remembered.lock().expect("auth lock").contains(&key) {
            return true;
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
            return false;
        };
        let decoded = Zeroizing::new(decoded);
        let Ok(pair) = std::str::from_utf8(&decoded) else {
            return false;
        };
        let Some((user, password)) = pair.split_once(':') else {
            return false;
        };
        // An unknown user is checked against some user's hash and refused after, so
        // that a wrong user name costs what a wrong password does.
        let known = self.users.get(user);
        let hash = known.or_else(|| self.users.values().next());
        let verified = hash.is_some_and(|h| bcrypt::verify(password, h).unwrap_or(false));
        let ok = verified && known.is_some();
        if ok {
            let mut remembered = self.remembered.lock().expect("auth lock");
            if remembered.len() >= REMEMBERED {
                remembered.clear();
            }
            remembered.insert(key);
        }
        ok
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn basic(user: &str, password: &str) -> Vec<u8> {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {b}").into_bytes()
    }

    #[test]
    fn nothing_configured_lets_all_through() {
        let a = Auth::none();
        assert!(!a.required());
        assert!(a.allows(None));
    }

    #[test]
    fn bearer() {
        let a = Auth::new(Some(Zeroizing::new(format!("{TOKEN}\n"))), None).unwrap();
        assert!(a.required());
        assert!(a.allows(Some(format!("Bearer {TOKEN}").as_bytes())));
        assert!(a.allows(Some(format!("bearer  {TOKEN} ").as_bytes())));
        assert!(!a.allows(Some(format!("Bearer {TOKEN}x").as_bytes())));
        assert!(!a.allows(Some(b"Bearer ")));
        assert!(!a.allows(None));
        assert!(
            !a.allows(Some(&basic("u", TOKEN))),
            "no users: basic never passes"
        );
        assert!(matches!(
            Auth::new(Some(Zeroizing::new("short".into())), None),
            Err(AuthError::ShortToken(5))
        ));
    }

    #[test]
    fn htpasswd() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let text = format!("# comment\n\nalice:{hash}\n");
        let a = Auth::new(None, Some(&text)).unwrap();
        assert_eq!(
            a.quick(Some(&basic("alice", "secret"))),
            None,
            "needs a bcrypt"
        );
        assert!(a.allows(Some(&basic("alice", "secret"))));
        assert_eq!(
            a.quick(Some(&basic("alice", "secret"))),
            Some(true),
            "remembered"
        );
        assert_eq!(a.quick(None), Some(false));
        assert!(!a.allows(Some(&basic("alice", "Secret"))));
        assert!(!a.allows(Some(&basic("bob", "secret"))));
        assert!(!a.allows(Some(b"Basic !!!")));
        assert!(!a.allows(Some(format!("Bearer {TOKEN}").as_bytes())));
        assert!(a.challenge().starts_with("Basic"));
        // htpasswd's MD5 (-m) and SHA-1 (-s) entries are refused.
        let md5 = "bob:$apr1$x/ZrhZnx$0Jdl.J5q8Dr5yC.Tn9Qv50\n";
        assert!(matches!(
            Auth::new(None, Some(md5)),
            Err(AuthError::WeakHash { line: 1 })
        ));
        let sha = "bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n";
        assert!(matches!(
            Auth::new(None, Some(sha)),
            Err(AuthError::WeakHash { line: 1 })
        ));
        assert!(matches!(
            Auth::new(None, Some("nocolon\n")),
            Err(AuthError::Malformed { line: 1 })
        ));
        assert!(matches!(
            Auth::new(None, Some("# none\n")),
            Err(AuthError::NoUsers)
        ));
    }
}
