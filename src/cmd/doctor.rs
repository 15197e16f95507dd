//! `doctor`: checks what a mount needs, one line per check, each OK or what is wrong and
//! how to fix it; exits 1 when a check fails.
//!
//! The checks, in order: the credentials are accepted (one recording listed: the first
//! request of `mount`, `ls` and `get` too); the Recording and Composition settings (is
//! encryption on, with which public key); that public key exists in the account
//! (Accounts API); the private keys given load; they are the pair of the key Twilio
//! encrypts with; one recording's first window decrypts; `/dev/fuse` is there;
//! `fusermount3` is there when not root. A check that needs one that failed is skipped
//! and says so. With `serve`'s flags (`--listen`, `--token-file`, `--htpasswd`,
//! `--tls-cert`), its setup too: credentials, TLS files, each address. Encryption turned off is a warning, not a failure: the mount serves
//! unencrypted media as it is. So is a settings or public-key resource the credentials
//! may not read (a restricted API key, HTTP 403): nothing but `doctor` reads them.
//!
//! Twilio never returns a public key's material (the PublicKey resource has a SID, a
//! name and dates), so the pair is proved where it matters: the content key of the
//! newest encrypted recording (and composition) must unwrap with one of the private
//! keys, checked against the object's last blocks exactly as every read is.
//!
//! Voice call recordings carry their wrapped content key in their resource
//! (`encryption_details`), so their check needs no object: the newest encrypted call
//! recording's key must unwrap with one of the private keys (RSA-OAEP, SHA-256), which
//! refuses a wrong key outright. An account that records no calls, or credentials that
//! may not read them, make it a SKIP or a WARN: the Video checks do not depend on it.
//!
//! [`Check`] and [`Report`] (the lines and the verdict) are pure; [`run`] does the I/O.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::bail;
use rsa::traits::PublicKeyParts;

use super::config::{PROBED, RESTRICTED_FIX, client_config, load_keys, origin, who};
use super::terminal::printable;
use crate::cli::{DoctorArgs, ListenArgs};
use crate::crypto::{CryptoError, PrivateKeys};
use crate::object::{ObjectClient, ObjectSource};
use crate::read::{ObjectReader, ReadError, WindowCache};
use crate::serve::auth::Auth;
use crate::serve::listen::Bind;
use crate::twilio::{
    self, Access, Media, MediaFilter, MediaKind, MediaRef, StorageSettings, TwilioClient,
};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Works, but probably not what was meant.
    Warn,
    Fail,
    /// Not run: it needs a check that failed, or there is nothing to check.
    Skip,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub status: Status,
    pub name: String,
    pub detail: String,
    /// What to do, for a warning or a failure.
    pub fix: Option<String>,
}

impl Check {
    fn new(status: Status, name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            status,
            name: name.into(),
            detail: detail.into(),
            fix: None,
        }
    }

    fn ok(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(Status::Ok, name, detail)
    }

    fn skip(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(Status::Skip, name, detail)
    }

    fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            fix: Some(fix.into()),
            ..Self::new(Status::Fail, name, detail)
        }
    }

    fn warn(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            fix: Some(fix.into()),
            ..Self::new(Status::Warn, name, detail)
        }
    }

    /// `FAIL  name: detail; fix: what to do`, on one line, the network's text in it
    /// escaped ([`printable`]).
    pub fn line(&self) -> String {
        let one_line = |s: &str| printable(&s.split_whitespace().collect::<Vec<_>>().join(" "));
        let mut line = format!(
            "{:<4}  {}: {}",
            self.status,
            one_line(&self.name),
            one_line(&self.detail)
        );
        if let Some(fix) = &self.fix {
            line.push_str("; fix: ");
            line.push_str(&one_line(fix));
        }
        line
    }
}

/// Every check, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count()
    }

    pub fn text(&self) -> String {
        self.checks.iter().map(|c| c.line() + "\n").collect()
    }
}

pub fn run(args: DoctorArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(checks(&args));
    print!("{}", report.text());
    match report.failed() {
        0 => Ok(()),
        n => bail!(
            "{n} of {} checks failed: see the FAIL lines above",
            report.checks.len()
        ),
    }
}

/// Where Twilio's console keeps the settings doctor talks about.
const SETTINGS_FIX: &str = "Twilio Console > Video > Manage > Recording Settings (and \
    Composition Settings): turn on encryption with your public key";

/// For settings a restricted API key may not read.
const SETTINGS_READ_FIX: &str = "none needed for mount, ls and get, which do not read \
    the settings; for doctor to check encryption, give the key read access to the Video \
    Recording and Composition Settings too";

/// For a public key a restricted API key may not read.
const PUBLIC_KEY_READ_FIX: &str = "none needed for mount, ls and get, which do not read \
    it; for doctor to check it, give the key read access to the account's public key \
    credentials (Accounts API) too";

async fn checks(args: &DoctorArgs) -> Report {
    let mut r = Report::default();
    let api = api_checks(args, &mut r).await;
    let keys = key_check(args, &mut r);
    match (&api, &keys) {
        (Some(api), Some(keys)) => {
            media_checks(api, keys.clone(), &mut r).await;
            r.checks.push(voice_check(api, keys).await);
        }
        _ => {
            let why = if api.is_none() {
                "needs working credentials"
            } else {
                "needs a private key that loads"
            };
            r.checks.push(Check::skip("key pair", why));
            r.checks.push(Check::skip("decryption", why));
            r.checks.push(Check::skip(VOICE_CHECK, why));
        }
    }
    r.checks.push(fuse_device(Path::new("/dev/fuse")));
    r.checks.push(fusermount(
        unsafe { libc::geteuid() } == 0,
        std::env::var_os("PATH"),
    ));
    r.checks.push(ffmpeg(std::env::var_os("PATH")));
    if args.serve.given() {
        serve_checks(&args.serve, &mut r);
    }
    r
}

/// `serve`'s setup, when any of its flags is given: the credentials load, the TLS files
/// fit, and each address can be listened on (and, beyond loopback, has credentials and
/// preferably TLS).
fn serve_checks(args: &ListenArgs, r: &mut Report) {
    const CREDS: &str = "serve credentials";
    let auth = match super::serve::load_auth(args) {
        Ok(auth) => {
            let detail = match auth.describe().as_str() {
                "none" => "none: loopback addresses and Unix sockets only".to_owned(),
                d => d.to_owned(),
            };
            r.checks.push(Check::ok(CREDS, detail));
            Some(auth)
        }
        Err(e) => {
            r.checks.push(Check::fail(
                CREDS,
                format!("{e:#}"),
                "fix the file (a token of 32+ characters; htpasswd -B entries)",
            ));
            None
        }
    };
    const TLS: &str = "serve TLS";
    let tls = match super::serve::load_tls(args) {
        Ok(Some(_)) => {
            r.checks
                .push(Check::ok(TLS, "the certificate and key load and fit"));
            true
        }
        Ok(None) => false,
        Err(e) => {
            r.checks.push(Check::fail(
                TLS,
                format!("{e:#}"),
                "give a PEM certificate chain and its own private key",
            ));
            false
        }
    };
    for bind in args.addresses() {
        r.checks.push(listen_check(&bind, auth.as_ref(), tls));
    }
}

/// Whether `serve` could listen on `bind` now, and safely.
fn listen_check(bind: &Bind, auth: Option<&Auth>, tls: bool) -> Check {
    let name = format!("serve on {bind}");
    let Some(auth) = auth else {
        return Check::skip(name, "needs credentials that load");
    };
    if !bind.is_local() && !auth.required() {
        return Check::fail(
            name,
            "other machines can reach it, and no credentials are set",
            "give --token-file (or TWILIO_MEDIA_FS_SERVE_TOKEN) or --htpasswd, or listen on 127.0.0.1",
        );
    }
    if let Err(e) = can_listen(bind) {
        let fix = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "another program uses it (serve already running?): pick another port"
            }
            std::io::ErrorKind::PermissionDenied => {
                "ports below 1024 need root or CAP_NET_BIND_SERVICE: pick a port above 1024"
            }
            _ => "pick an address of this machine",
        };
        return Check::fail(name, format!("cannot listen: {e}"), fix);
    }
    if !bind.is_local() && !tls {
        return Check::warn(
            name,
            "credentials and media would cross the network unencrypted",
            "add --tls-cert and --tls-key, or put a TLS proxy in front (packaging/serve/nginx.conf)",
        );
    }
    let who = if auth.required() {
        "clients must authenticate"
    } else {
        "local only: no credentials needed"
    };
    Check::ok(name, format!("free to listen on; {who}"))
}

/// Binds and lets go of a TCP address; for a Unix socket, checks its directory exists
/// and that nothing but a socket is at its path.
fn can_listen(bind: &Bind) -> std::io::Result<()> {
    match bind {
        Bind::Tcp(addr) => std::net::TcpListener::bind(addr).map(drop),
        Bind::Unix(path) => {
            use std::os::unix::fs::FileTypeExt;
            let dir = path.parent().unwrap_or(Path::new("/"));
            if !dir.is_dir() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{} is not a directory", dir.display()),
                ));
            }
            match std::fs::symlink_metadata(path) {
                Ok(m) if !m.file_type().is_socket() => Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                )),
                _ => Ok(()),
            }
        }
    }
}

/// The client, and the public key SIDs the settings name.
struct Api {
    twilio: Arc<TwilioClient>,
    key_sids: Vec<String>,
}

async fn api_checks(args: &DoctorArgs, r: &mut Report) -> Option<Api> {
    const CREDS: &str = "credentials";
    let client = client_config(&args.api).and_then(|mut config| {
        config.accounts_url = args.accounts_url.clone();
        Ok(TwilioClient::new(config)?)
    });
    let twilio = match client {
        Ok(c) => Arc::new(c),
        Err(e) => {
            r.checks.push(Check::fail(
                CREDS,
                format!("{e:#}"),
                "set TWILIO_API_KEY and TWILIO_API_SECRET (or TWILIO_ACCOUNT_SID and \
                 TWILIO_AUTH_TOKEN), or give --credentials FILE",
            ));
            skip_api(r);
            return None;
        }
    };
    let creds = twilio.credentials();
    // The first request of mount, ls and get: what a restricted key may read.
    if let Err(e) = twilio.probe(PROBED).await {
        let (detail, fix) = match e.access() {
            Access::Rejected => (
                e.to_string(),
                "use an API key and secret (or the account SID and auth token) of this \
                 account: Twilio Console > Account > API keys & tokens",
            ),
            Access::Forbidden => (
                format!("{} may not read {}: {e}", who(creds), PROBED.plural()),
                RESTRICTED_FIX,
            ),
            Access::Unreachable | Access::Other => (
                e.to_string(),
                "check the network, and --api-url / TWILIO_MEDIA_FS_API_URL",
            ),
        };
        r.checks.push(Check::fail(CREDS, detail, fix));
        skip_api(r);
        return None;
    }
    let kind = match creds.kind() {
        twilio::AuthKind::ApiKey => "API key",
        twilio::AuthKind::AuthToken => "auth token of",
    };
    r.checks.push(Check::ok(
        CREDS,
        format!(
            "accepted by {} ({kind} {}, from {})",
            origin(twilio.api_url()),
            creds.username(),
            creds.source()
        ),
    ));
    let mut key_sids = Vec::new();
    let mut unread = false;
    for kind in MediaKind::VIDEO {
        let name = format!("{} settings", kind.noun());
        match twilio.settings(kind).await {
            Ok(s) => r.checks.push(settings_check(&name, &s, &mut key_sids)),
            Err(e) if e.access() == Access::Forbidden => {
                unread = true;
                r.checks.push(Check::warn(
                    name,
                    format!("not checked: {} may not read them: {e}", who(creds)),
                    SETTINGS_READ_FIX,
                ));
            }
            Err(e) => r.checks.push(Check::fail(
                name,
                e.to_string(),
                "check that the credentials may read the Video settings",
            )),
        }
    }
    if key_sids.is_empty() {
        let why = if unread {
            "not checked: no settings these credentials may read name one"
        } else {
            "the settings name no public key"
        };
        r.checks.push(Check::skip("public key", why));
    }
    for sid in &key_sids {
        let name = format!("public key {sid}");
        match twilio.public_key(sid).await {
            Ok(k) => r.checks.push(Check::ok(
                name,
                format!(
                    "{:?} is in the account ({})",
                    k.friendly_name.unwrap_or_default(),
                    origin(twilio.accounts_url())
                ),
            )),
            Err(twilio::Error::Api { status: 404, .. }) => r.checks.push(Check::fail(
                name,
                "the settings name it, but the account has no public key with that SID",
                format!(
                    "upload your public key (Twilio Console > Account > Credentials > Public \
                     keys) and select it in the settings ({SETTINGS_FIX})"
                ),
            )),
            Err(e) if e.access() == Access::Forbidden => r.checks.push(Check::warn(
                name,
                format!(
                    "not checked: {} may not read the account's public keys: {e}",
                    who(creds)
                ),
                PUBLIC_KEY_READ_FIX,
            )),
            Err(e) => r.checks.push(Check::fail(
                name,
                e.to_string(),
                "check that the credentials may read the account's credentials \
                 (--accounts-url / TWILIO_MEDIA_FS_ACCOUNTS_URL if not Twilio's)",
            )),
        }
    }
    Some(Api { twilio, key_sids })
}

fn skip_api(r: &mut Report) {
    for name in ["recording settings", "composition settings", "public key"] {
        r.checks
            .push(Check::skip(name, "needs working credentials"));
    }
}

/// `encryption_enabled` and `encryption_key_sid` of one settings resource.
fn settings_check(name: &str, s: &StorageSettings, key_sids: &mut Vec<String>) -> Check {
    let key = s.encryption_key_sid.as_deref().filter(|k| !k.is_empty());
    if let Some(k) = key
        && !key_sids.iter().any(|x| x == k)
    {
        key_sids.push(k.to_owned());
    }
    match (s.encryption_enabled, key) {
        (Some(true), Some(k)) => Check::ok(name, format!("encryption on, with public key {k}")),
        (Some(true), None) => Check::fail(
            name,
            "encryption on, but no public key named (encryption_key_sid is empty)",
            SETTINGS_FIX,
        ),
        _ => Check::warn(
            name,
            "encryption is off: new media is stored unencrypted (it mounts as it is; older \
             encrypted media still needs its key)",
            SETTINGS_FIX,
        ),
    }
}

fn key_check(args: &DoctorArgs, r: &mut Report) -> Option<Arc<PrivateKeys>> {
    const NAME: &str = "private keys";
    if args.keys.paths.is_empty() {
        r.checks.push(Check::fail(
            NAME,
            "none given",
            "pass -k KEY.pem: the private key made with the public key the settings name",
        ));
        return None;
    }
    match load_keys(&args.keys) {
        Ok(keys) => {
            let list: Vec<String> = keys
                .public_keys()
                .map(|(name, public)| format!("{name} (RSA {} bits)", public.size() * 8))
                .collect();
            r.checks.push(Check::ok(NAME, list.join(", ")));
            Some(Arc::new(keys))
        }
        Err(e) => {
            r.checks.push(Check::fail(
                NAME,
                format!("{e:#}"),
                "give PEM private keys (PKCS#1 or PKCS#8) readable by you only (chmod 600)",
            ));
            None
        }
    }
}

/// How many of the newest completed recordings (and compositions) are tried, in turn,
/// for one stored encrypted: media from before encryption was turned on is not.
const CANDIDATES: usize = 5;

/// Bytes decrypted from the chosen recording: enough to prove it, cheap to fetch.
const WINDOW: u64 = 64 << 10;

/// The note on a failed key pair when newer media were inconclusive.
fn also(inconclusive: &[String]) -> String {
    match inconclusive {
        [] => String::new(),
        some => format!(" (nor of the newer {})", some.join("; ")),
    }
}

/// The note on an OK key pair when newer media failed their last-block check.
fn damaged(inconclusive: &[String]) -> String {
    match inconclusive {
        [] => String::new(),
        some => format!(
            "; so these newer ones are damaged: {} (report their SIDs)",
            some.join("; ")
        ),
    }
}

/// The key pair, on the newest encrypted recording and composition, and a decryption.
async fn media_checks(api: &Api, keys: Arc<PrivateKeys>, r: &mut Report) {
    let source: Arc<dyn ObjectSource> = Arc::new(ObjectClient::new(api.twilio.clone()));
    let cache = Arc::new(WindowCache::new(4 << 20));
    let twilio_key = match api.key_sids.as_slice() {
        [] => "the public key Twilio encrypted it with".to_owned(),
        sids => format!("the public key Twilio encrypts with ({})", sids.join(", ")),
    };
    let mut next_id = 0;
    let mut decrypted: Option<(Arc<ObjectReader>, String)> = None;
    for kind in MediaKind::VIDEO {
        let (label, one) = (kind.plural(), kind.noun());
        let name = format!("key pair ({label})");
        let newest = match newest_media(&api.twilio, kind).await {
            Ok(list) if list.is_empty() => {
                r.checks.push(Check::skip(
                    name,
                    format!("no completed {one} to prove it on (make a short test one)"),
                ));
                continue;
            }
            Ok(list) => list,
            Err(e) if e.access() == Access::Forbidden => {
                let whom = who(api.twilio.credentials());
                let detail = format!("{whom} may not read {label}: {e}");
                r.checks.push(Check::fail(name, detail, RESTRICTED_FIX));
                continue;
            }
            Err(e) => {
                r.checks.push(Check::fail(
                    name,
                    format!("cannot list {label}: {e}"),
                    "check that the credentials may read the account's media",
                ));
                continue;
            }
        };
        let mut check = None;
        // Media whose content key unwrapped to an AES key that failed the last-block
        // check: a wrong key does that for about 1 object in 100, a damaged object always.
        // Neither is proven by one object, so the next one decides.
        let mut inconclusive = Vec::new();
        for media in newest.iter().take(CANDIDATES) {
            next_id += 1;
            let reader = Arc::new(ObjectReader::new(
                next_id,
                media.clone(),
                source.clone(),
                keys.clone(),
                cache.clone(),
                WINDOW,
            ));
            let which = match inconclusive.is_empty() {
                true => format!("{}, the newest encrypted {one}", media.sid),
                false => format!("{}, an older encrypted {one}", media.sid),
            };
            check = Some(match reader.meta().await {
                Ok(meta) => match &meta.key_name {
                    Some(key) => {
                        // Decryption is tried on a recording; on a composition only
                        // when no recording proved the pair.
                        if decrypted.is_none() {
                            decrypted = Some((reader.clone(), media.sid.clone()));
                        }
                        Check::ok(
                            &name,
                            format!(
                                "{key} unwraps the content key of {which}{}",
                                damaged(&inconclusive)
                            ),
                        )
                    }
                    None => continue, // stored unencrypted: try an older one
                },
                Err(ReadError::Key {
                    cause: CryptoError::KeyCheck { key, .. },
                    ..
                }) => {
                    inconclusive.push(format!(
                        "{}, whose content key unwrapped with {key} fails its last-block check",
                        media.sid
                    ));
                    continue;
                }
                Err(ReadError::Key { .. }) => Check::fail(
                    &name,
                    format!(
                        "no private key given ({}) unwraps the content key of {which}{}: they \
                         are not the pair of {twilio_key}",
                        keys.names().collect::<Vec<_>>().join(", "),
                        also(&inconclusive),
                    ),
                    "give -k the private key made with that public key; if it is lost, make \
                     a new pair, upload its public half (openssl rsa -in new.pem -pubout) and \
                     select it in the settings: new media will use it",
                ),
                Err(e) => Check::fail(
                    &name,
                    e.to_string(),
                    "check the network; run again, and report the SID if it stays",
                ),
            });
            break;
        }
        let check = check.or_else(|| {
            (!inconclusive.is_empty()).then(|| {
                Check::fail(
                    &name,
                    format!(
                        "the key given does not prove the pair: {}. Either the key is not the \
                         pair of {twilio_key}, or these objects are damaged",
                        inconclusive.join("; ")
                    ),
                    "give -k the private key made with that public key; if you are sure it \
                     is, run again and report the SIDs",
                )
            })
        });
        r.checks.push(check.unwrap_or_else(|| {
            Check::skip(
                name,
                format!(
                    "the {} newest completed {label} are stored unencrypted: nothing to prove",
                    newest.len().min(CANDIDATES)
                ),
            )
        }));
    }
    let Some((reader, sid)) = decrypted else {
        r.checks.push(Check::skip(
            "decryption",
            "needs an encrypted recording or composition whose key pair check passed",
        ));
        return;
    };
    match (reader.meta().await, reader.read(0, WINDOW).await) {
        (Ok(meta), Ok(data)) => r.checks.push(Check::ok(
            "decryption",
            format!(
                "{sid}: first {} bytes decrypted ({}-CBC)",
                data.len(),
                meta.key().map_or("none", |k| k.algorithm())
            ),
        )),
        (_, Err(e)) | (Err(e), _) => r.checks.push(Check::fail(
            "decryption",
            e.to_string(),
            "the object looks damaged: report its SID to Twilio support",
        )),
    }
}

const VOICE_CHECK: &str = "key pair (voice)";

/// The key pair on the newest encrypted call recording: its content key, in its
/// resource, must unwrap with a private key given (RSA-OAEP-SHA-256).
async fn voice_check(api: &Api, keys: &PrivateKeys) -> Check {
    let filter = MediaFilter::default();
    let page = match api.twilio.media_pages(MediaKind::Voice, &filter) {
        Ok(mut pages) => pages.next_page().await.map(Option::unwrap_or_default),
        Err(e) => Err(e),
    };
    let mut page = match page {
        Ok(page) => page,
        Err(twilio::Error::Config(why)) => {
            return Check::skip(VOICE_CHECK, format!("cannot list call recordings: {why}"));
        }
        Err(e) if e.access() == Access::Forbidden => {
            let whom = who(api.twilio.credentials());
            return Check::warn(
                VOICE_CHECK,
                format!("{whom} may not read call recordings: {e}"),
                "none needed for Video; to read call recordings, give the key read access \
                 to Voice recordings",
            );
        }
        Err(e) => {
            return Check::fail(
                VOICE_CHECK,
                format!("cannot list call recordings: {e}"),
                "check the network and --voice-api-url; run again",
            );
        }
    };
    page.sort_by_key(|m| std::cmp::Reverse(m.modified()));
    let newest = page.iter().find_map(|m| match m {
        Media::Voice(r) if r.status_is_completed() => r.encryption().map(|e| (r, e)),
        _ => None,
    });
    let Some((recording, details)) = newest else {
        return Check::skip(
            VOICE_CHECK,
            format!(
                "none of the {} newest call recordings is encrypted: nothing to prove",
                page.len()
            ),
        );
    };
    let sid = &recording.sid;
    let envelope = crate::crypto::GcmEnvelope::from_base64(
        details.public_key_sid.as_deref(),
        details.encrypted_cek.as_deref().unwrap_or_default(),
        details.iv.as_deref().unwrap_or_default(),
    );
    let envelope = match envelope {
        Ok(e) => e,
        Err(e) => {
            return Check::fail(
                VOICE_CHECK,
                format!("{sid}: its encryption_details do not parse: {e}"),
                "report the SID to Twilio support",
            );
        }
    };
    let public = details
        .public_key_sid
        .as_deref()
        .map_or(String::new(), |k| format!(" ({k})"));
    match keys.unwrap_oaep(&envelope.wrapped_key) {
        Ok((_, key)) => Check::ok(
            VOICE_CHECK,
            format!(
                "{key} unwraps the content key of {sid}, the newest encrypted call recording \
                 (RSA-OAEP-SHA-256)"
            ),
        ),
        Err(e) => Check::fail(
            VOICE_CHECK,
            format!(
                "{sid}, the newest encrypted call recording: {e}; its key was wrapped for the \
                 public key{public}"
            ),
            "give -k the private key whose public half is set in Twilio Console > Voice > \
             Settings > Voice Recording Encryption",
        ),
    }
}

/// The completed recordings or compositions of the listing's first page, newest first
/// (Twilio lists newest first; sorted again all the same).
async fn newest_media(twilio: &TwilioClient, kind: MediaKind) -> twilio::Result<Vec<MediaRef>> {
    let filter = MediaFilter {
        status: Some("completed".into()),
        ..Default::default()
    };
    let mut page = twilio
        .media_pages(kind, &filter)?
        .next_page()
        .await?
        .unwrap_or_default();
    page.sort_by(|a, b| b.date_created().cmp(&a.date_created()));
    Ok(page.iter().map(Media::media_ref).collect())
}

/// `/dev/fuse` is there, as a character device.
pub fn fuse_device(path: &Path) -> Check {
    use std::os::unix::fs::FileTypeExt;
    let name = path.display().to_string();
    match std::fs::metadata(path) {
        Ok(m) if m.file_type().is_char_device() => Check::ok(name, "present"),
        Ok(_) => Check::fail(
            name,
            "present but not a character device",
            "remove it and load the module: modprobe fuse",
        ),
        Err(e) => Check::fail(
            name,
            format!("missing ({e})"),
            "load the module (modprobe fuse); in a container, start it with --device /dev/fuse \
             --cap-add SYS_ADMIN",
        ),
    }
}

/// `fusermount3` is on `path` (not needed by root, who mounts directly).
pub fn fusermount(root: bool, path: Option<std::ffi::OsString>) -> Check {
    const NAME: &str = "fusermount3";
    if root {
        return Check::ok(NAME, "not needed (running as root)");
    }
    let found = path
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(NAME))
        .find(|p| p.is_file());
    match found {
        Some(p) => Check::ok(NAME, format!("{}", p.display())),
        None => Check::fail(
            NAME,
            "not found on PATH: a user cannot mount without it",
            "apt-get install fuse3 (or dnf install fuse3)",
        ),
    }
}

/// The encoders `compose` uses: mp4 (H.264, AAC) and webm (VP8, Opus).
const COMPOSE_ENCODERS: [&str; 4] = ["libx264", "aac", "libvpx", "libopus"];

/// ffmpeg and ffprobe, which `compose` runs: on PATH, with its encoders. A warning,
/// not a failure, when missing: only `compose` needs them.
pub fn ffmpeg(path: Option<std::ffi::OsString>) -> Check {
    const NAME: &str = "ffmpeg (compose)";
    const FIX: &str = "apt-get install ffmpeg (or dnf install ffmpeg): only compose needs it";
    let find = |tool: &str| {
        path.iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join(tool))
            .find(|p| p.is_file())
    };
    let (Some(ffmpeg), Some(_)) = (find("ffmpeg"), find("ffprobe")) else {
        return Check::warn(NAME, "ffmpeg or ffprobe is not on PATH", FIX);
    };
    let encoders = std::process::Command::new(&ffmpeg)
        .args(["-hide_banner", "-encoders"])
        .stdin(std::process::Stdio::null())
        .output();
    let listed = match encoders {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => return Check::warn(NAME, format!("{} does not run", ffmpeg.display()), FIX),
    };
    let missing: Vec<&str> = COMPOSE_ENCODERS
        .into_iter()
        .filter(|e| !listed.split_whitespace().any(|w| w == *e))
        .collect();
    // amix's `normalize` (ffmpeg 4.4 and later): the mix must not scale voices down.
    let amix = std::process::Command::new(&ffmpeg)
        .args(["-hide_banner", "-h", "filter=amix"])
        .stdin(std::process::Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("normalize"));
    if !amix {
        return Check::warn(
            NAME,
            format!(
                "{}: its amix filter has no normalize option (ffmpeg before 4.4)",
                ffmpeg.display()
            ),
            "install ffmpeg 4.4 or later (Debian 12 has 5.1)",
        );
    }
    if missing.is_empty() {
        Check::ok(
            NAME,
            format!("{}, with {}", ffmpeg.display(), COMPOSE_ENCODERS.join(", ")),
        )
    } else {
        Check::warn(
            NAME,
            format!("{} has no {} encoder", ffmpeg.display(), missing.join(", ")),
            "install a full ffmpeg build (Debian's ffmpeg package has them all)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_ok_or_the_fix_on_one_line() {
        assert_eq!(
            Check::ok("x", "fine").line(),
            "OK    x: fine",
            "status, padded, then name: detail"
        );
        let c = Check::fail("key pair", "no key\n  unwraps it", "give -k\n  the key");
        assert_eq!(
            c.line(),
            "FAIL  key pair: no key unwraps it; fix: give -k the key"
        );
        assert!(
            Check::warn("s", "off", "turn it on")
                .line()
                .starts_with("WARN  s: off; fix: ")
        );
        assert_eq!(Check::skip("d", "needs x").line(), "SKIP  d: needs x");
    }

    #[test]
    fn only_failures_fail_the_report() {
        let mut r = Report {
            checks: vec![
                Check::ok("a", "."),
                Check::warn("b", ".", "."),
                Check::skip("c", "."),
            ],
        };
        assert_eq!(r.failed(), 0);
        r.checks.push(Check::fail("d", ".", "."));
        assert_eq!(r.failed(), 1);
        assert_eq!(r.text().lines().count(), 4);
    }

    #[test]
    fn settings_on_off_and_without_a_key() {
        let mut sids = Vec::new();
        let on = StorageSettings {
            encryption_enabled: Some(true),
            encryption_key_sid: Some("CR1".into()),
            ..Default::default()
        };
        assert_eq!(settings_check("r", &on, &mut sids).status, Status::Ok);
        assert_eq!(settings_check("c", &on, &mut sids).status, Status::Ok);
        assert_eq!(sids, ["CR1"], "one key named twice is checked once");
        let off = StorageSettings {
            encryption_enabled: Some(false),
            ..Default::default()
        };
        let c = settings_check("r", &off, &mut sids);
        assert_eq!(c.status, Status::Warn);
        assert!(c.line().contains("encryption is off"), "{}", c.line());
        let no_key = StorageSettings {
            encryption_enabled: Some(true),
            encryption_key_sid: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(settings_check("r", &no_key, &mut sids).status, Status::Fail);
    }

    #[test]
    fn fuse_device_and_fusermount() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(fuse_device(&dir.path().join("fuse")).status, Status::Fail);
        std::fs::write(dir.path().join("file"), b"").unwrap();
        assert_eq!(fuse_device(&dir.path().join("file")).status, Status::Fail);
        assert_eq!(fuse_device(Path::new("/dev/null")).status, Status::Ok);

        assert_eq!(fusermount(true, None).status, Status::Ok);
        assert_eq!(fusermount(false, None).status, Status::Fail);
        assert_eq!(ffmpeg(None).status, Status::Warn);
        assert_eq!(ffmpeg(Some("/nonexistent".into())).status, Status::Warn);
        let empty = Some(dir.path().as_os_str().to_owned());
        assert_eq!(fusermount(false, empty.clone()).status, Status::Fail);
        std::fs::write(dir.path().join("fusermount3"), b"").unwrap();
        let c = fusermount(false, empty);
        assert_eq!(c.status, Status::Ok);
        assert!(c.detail.contains("fusermount3"));
    }
}
