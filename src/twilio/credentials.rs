//! Twilio credentials: where they come from, and keeping them secret.
//!
//! Precedence, first match wins: `TWILIO_API_KEY` + `TWILIO_API_SECRET` (Twilio's
//! recommended API key, with `TWILIO_ACCOUNT_SID` alongside when set); then
//! `TWILIO_ACCOUNT_SID` + `TWILIO_AUTH_TOKEN`; then the config file
//! `$XDG_CONFIG_HOME/twilio-media-fs/config.toml` (or `~/.config/…`) with the keys
//! `api_key`, `api_secret`, `account_sid`, `auth_token`. A file that group or others can
//! read gets a warning. Credentials never come from the command line (`ps` shows it).
//!
//! This module must not log or print a secret: secrets live in [`Zeroizing`] strings
//! and `Debug` shows `***` for them. The environment lookup is a parameter
//! ([`Credentials::from_lookup`]) so the precedence is tested without touching the
//! process environment.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroizing;

use super::error::{Error, Result};

/// The environment variables Twilio's own tools use.
pub const ENV_ACCOUNT_SID: &str = "TWILIO_ACCOUNT_SID";
/// API key SID (`SK…`).
pub const ENV_API_KEY: &str = "TWILIO_API_KEY";
/// API key secret.
pub const ENV_API_SECRET: &str = "TWILIO_API_SECRET";
/// Account auth token.
pub const ENV_AUTH_TOKEN: &str = "TWILIO_AUTH_TOKEN";

/// Which kind of secret authenticates the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// API key SID (`SK…`) and its secret.
    ApiKey,
    /// Account SID (`AC…`) and auth token.
    AuthToken,
}

/// Where the credentials were found (for `doctor`-style messages; never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Environment variables.
    Environment,
    /// A config file.
    File(PathBuf),
    /// Built by the program (tests, emulator).
    Explicit,
}

/// HTTP Basic credentials for the Twilio API.
#[derive(Clone)]
pub struct Credentials {
    account_sid: Option<String>,
    username: String,
    secret: Zeroizing<String>,
    kind: AuthKind,
    source: CredentialSource,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("account_sid", &self.account_sid)
            .field("username", &self.username)
            .field("secret", &"***")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

/// The credential keys of the config file; other keys (for other parts of the
/// program) are ignored here.
#[derive(Deserialize, Default)]
struct FileConfig {
    account_sid: Option<String>,
    auth_token: Option<String>,
    api_key: Option<String>,
    api_secret: Option<String>,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Environment => f.write_str("the environment"),
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Explicit => f.write_str("the program"),
        }
    }
}

impl Credentials {
    /// An API key and its secret.
    pub fn api_key(
        account_sid: Option<String>,
        key_sid: impl Into<String>,
        secret: Zeroizing<String>,
    ) -> Self {
        Self {
            account_sid,
            username: key_sid.into(),
            secret,
            kind: AuthKind::ApiKey,
            source: CredentialSource::Explicit,
        }
    }

    /// An account SID and its auth token.
    pub fn auth_token(account_sid: impl Into<String>, token: Zeroizing<String>) -> Self {
        let sid = account_sid.into();
        Self {
            account_sid: Some(sid.clone()),
            username: sid,
            secret: token,
            kind: AuthKind::AuthToken,
            source: CredentialSource::Explicit,
        }
    }

    /// From the process environment, else the default config file.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From the environment as `lookup` sees it, else the default config file (found
    /// through `XDG_CONFIG_HOME` / `HOME` of the same lookup).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let account = get(ENV_ACCOUNT_SID);
        match (get(ENV_API_KEY), get(ENV_API_SECRET)) {
            (Some(key), Some(secret)) => {
                let mut c = Self::api_key(account, key, Zeroizing::new(secret));
                c.source = CredentialSource::Environment;
                return Ok(c);
            }
            (Some(_), None) => {
                return Err(Error::Config(format!(
                    "{ENV_API_KEY} is set but {ENV_API_SECRET} is not"
                )));
            }
            (None, Some(_)) => {
                return Err(Error::Config(format!(
                    "{ENV_API_SECRET} is set but {ENV_API_KEY} is not"
                )));
            }
            (None, None) => {}
        }
        if let Some(token) = get(ENV_AUTH_TOKEN) {
            let Some(sid) = account else {
                return Err(Error::Config(format!(
                    "{ENV_AUTH_TOKEN} is set but {ENV_ACCOUNT_SID} is not"
                )));
            };
            let mut c = Self::auth_token(sid, Zeroizing::new(token));
            c.source = CredentialSource::Environment;
            return Ok(c);
        }
        let path = default_config_path(&lookup);
        match path {
            Some(path) if path.exists() => Self::from_file(&path),
            other => Err(Error::NoCredentials {
                config_path: other
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "~/.config/twilio-media-fs/config.toml".into()),
            }),
        }
    }

    /// From a TOML file with the keys `api_key`, `api_secret`, `account_sid`,
    /// `auth_token` (an API key wins when both pairs are there). Warns when group or
    /// others may read it.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?,
        );
        warn_if_readable_by_others(path);
        let file: FileConfig = toml::from_str(&text).map_err(|e| {
            // toml's message quotes the offending line, which may hold a secret: keep
            // only its first line (the position and the kind of error).
            let msg = e.message().lines().next().unwrap_or("").to_string();
            Error::Config(format!("{} is not valid: {msg}", path.display()))
        })?;
        let FileConfig {
            account_sid,
            auth_token,
            api_key,
            api_secret,
        } = file;
        let auth_token = auth_token.map(Zeroizing::new);
        let api_secret = api_secret.map(Zeroizing::new);
        let mut creds = match (api_key, api_secret, account_sid, auth_token) {
            (Some(key), Some(secret), sid, _) => Self::api_key(sid, key, secret),
            (Some(_), None, ..) | (None, Some(_), ..) => {
                return Err(Error::Config(format!(
                    "{}: api_key and api_secret go together",
                    path.display()
                )));
            }
            (None, None, Some(sid), Some(token)) => Self::auth_token(sid, token),
            _ => {
                return Err(Error::Config(format!(
                    "{}: set api_key and api_secret (with account_sid), or account_sid and \
                     auth_token",
                    path.display()
                )));
            }
        };
        creds.source = CredentialSource::File(path.to_path_buf());
        Ok(creds)
    }

    /// The Basic-auth user name: the API key SID or the account SID.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The secret, for the `Authorization` header only.
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }

    /// The account SID, when known.
    pub fn account_sid(&self) -> Option<&str> {
        self.account_sid.as_deref()
    }

    /// API key or auth token.
    pub fn kind(&self) -> AuthKind {
        self.kind
    }

    /// Where they came from.
    pub fn source(&self) -> &CredentialSource {
        &self.source
    }
}

/// `$XDG_CONFIG_HOME/twilio-media-fs/config.toml`, else `$HOME/.config/…`.
pub fn default_config_path(lookup: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = lookup("XDG_CONFIG_HOME")
        .filter(|v| Path::new(v).is_absolute())
        .map(PathBuf::from)
        .or_else(|| {
            lookup("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| Path::new(&h).join(".config"))
        })?;
    Some(base.join("twilio-media-fs").join("config.toml"))
}

/// The warning for a file with these permission bits, if it deserves one.
pub fn permission_warning(path: &Path, mode: u32) -> Option<String> {
    (mode & 0o044 != 0).then(|| {
        format!(
            "{} holds Twilio credentials and is readable by group or others (mode {:03o}): \
             run chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        )
    })
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && let Some(msg) = permission_warning(path, meta.permissions().mode())
        {
            tracing::warn!("{msg}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn api_key_wins_over_auth_token() {
        let c = Credentials::from_lookup(env(&[
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN", "tok"),
            ("TWILIO_API_KEY", "SK1"),
            ("TWILIO_API_SECRET", "sec"),
        ]))
        .unwrap();
        assert_eq!(c.kind(), AuthKind::ApiKey);
        assert_eq!(c.username(), "SK1");
        assert_eq!(c.secret(), "sec");
        assert_eq!(c.account_sid(), Some("AC1"));
        assert_eq!(c.source(), &CredentialSource::Environment);
    }

    #[test]
    fn auth_token_pair() {
        let c = Credentials::from_lookup(env(&[
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN", "tok"),
        ]))
        .unwrap();
        assert_eq!(c.kind(), AuthKind::AuthToken);
        assert_eq!(c.username(), "AC1");
        assert_eq!(c.secret(), "tok");
    }

    #[test]
    fn half_pairs_are_errors() {
        let e = Credentials::from_lookup(env(&[("TWILIO_API_KEY", "SK1")])).unwrap_err();
        assert!(e.to_string().contains("TWILIO_API_SECRET is not"));
        let e = Credentials::from_lookup(env(&[("TWILIO_AUTH_TOKEN", "t")])).unwrap_err();
        assert!(e.to_string().contains("TWILIO_ACCOUNT_SID is not"));
    }

    #[test]
    fn none_found_names_the_variables() {
        let dir = tempfile::tempdir().unwrap();
        let xdg = dir.path().to_str().unwrap().to_string();
        let e = Credentials::from_lookup(env(&[("XDG_CONFIG_HOME", &xdg)])).unwrap_err();
        let msg = e.to_string();
        for v in [
            "TWILIO_API_KEY",
            "TWILIO_API_SECRET",
            "TWILIO_ACCOUNT_SID",
            "TWILIO_AUTH_TOKEN",
        ] {
            assert!(msg.contains(v), "{msg}");
        }
        assert!(msg.contains(&xdg), "{msg}");
    }

    #[test]
    fn config_file_under_xdg_and_home() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("twilio-media-fs");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(
            conf.join("config.toml"),
            "account_sid = \"AC9\"\nauth_token = \"t9\"\n",
        )
        .unwrap();
        let xdg = dir.path().to_str().unwrap().to_string();
        let c = Credentials::from_lookup(env(&[("XDG_CONFIG_HOME", &xdg)])).unwrap();
        assert_eq!(c.username(), "AC9");
        assert!(matches!(c.source(), CredentialSource::File(_)));

        let home = tempfile::tempdir().unwrap();
        let conf = home.path().join(".config/twilio-media-fs");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(
            conf.join("config.toml"),
            "account_sid = \"AC9\"\nauth_token = \"t9\"\napi_key = \"SK9\"\napi_secret = \"s9\"\n",
        )
        .unwrap();
        let h = home.path().to_str().unwrap().to_string();
        let c = Credentials::from_lookup(env(&[("HOME", &h)])).unwrap();
        assert_eq!(c.username(), "SK9");
        assert_eq!(c.account_sid(), Some("AC9"));
        // The environment still wins over the file.
        let c = Credentials::from_lookup(env(&[
            ("HOME", &h),
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN", "tok"),
        ]))
        .unwrap();
        assert_eq!(c.username(), "AC1");
    }

    #[test]
    fn bad_file_does_not_echo_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "api_secret = \"hunter2\"\napi_key = SK1\n").unwrap();
        let e = Credentials::from_file(&p).unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        std::fs::write(&p, "api_secret = \"hunter2\"\n").unwrap();
        let e = Credentials::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("go together"), "{e}");
    }

    #[test]
    fn permission_warning_bits() {
        let p = Path::new("/x/config.toml");
        assert_eq!(permission_warning(p, 0o100600), None);
        assert_eq!(permission_warning(p, 0o100400), None);
        assert!(
            permission_warning(p, 0o100640)
                .unwrap()
                .contains("mode 640")
        );
        assert!(permission_warning(p, 0o100604).is_some());
    }

    #[test]
    fn debug_redacts() {
        let c = Credentials::api_key(None, "SK1", Zeroizing::new("topsecret".into()));
        let d = format!("{c:?}");
        assert!(!d.contains("topsecret"), "{d}");
        assert!(d.contains("SK1"));
    }
}
