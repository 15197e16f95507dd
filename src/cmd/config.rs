//! The flag groups that several subcommands share, turned into what the library takes:
//! private keys loaded from `-k` files, a Twilio client configured from the API and
//! retry flags; and the words for what goes wrong reaching the API with them.
//!
//! This is where reading key files and credentials happens for the commands
//! ([`crate::keyfile`], [`crate::twilio::Credentials`]); [`crate::cli`] only declares the
//! flags. It knows nothing of any one subcommand.
//!
//! A command that reads media needs read access to what it reads and nothing more (an
//! operator may give it a restricted API key: recordings, compositions and rooms): its
//! first request is one it needs anyway ([`check_access`]), and an API error says
//! whether the credentials were rejected (401), may not read that resource (403), or the
//! API could not be reached ([`access_error`]).

use crate::app::MountSettings;
use crate::cli::{ApiArgs, FsArgs, KeyArgs};
use crate::crypto::PrivateKeys;
use crate::keyfile;
use crate::twilio::{self, Access, AuthKind, ClientConfig, Credentials, MediaKind, TwilioClient};

/// Loads every `-k` key file, in order, refusing ones that others can read unless
/// `--insecure-key-permissions`.
pub fn load_keys(args: &KeyArgs) -> anyhow::Result<PrivateKeys> {
    keyfile::load(
        &args.paths,
        keyfile::KeyPermissions::from_flag(args.insecure_permissions),
    )
}

/// What the filesystem flags (shared by `mount` and `serve`) ask for; a flag not given
/// keeps [`MountSettings`]'s default. `uid` and `gid` only show in a mount.
pub fn fs_settings(args: &FsArgs, uid: Option<u32>, gid: Option<u32>) -> MountSettings {
    let defaults = MountSettings::default();
    MountSettings {
        uid: uid.unwrap_or(defaults.uid),
        gid: gid.unwrap_or(defaults.gid),
        window: args.window,
        cache_size: args.cache_size,
        refresh: args.refresh,
        listing_deadline: args.listing_deadline,
        rooms: args.rooms.clone(),
        since: args.since.clone(),
        metadata_cache: match (args.no_metadata_cache, &args.metadata_cache) {
            (true, _) => None,
            (false, Some(dir)) => Some(dir.clone()),
            (false, None) => defaults.metadata_cache,
        },
        exact_sizes: args.exact_sizes,
        require_encrypted: args.require_encrypted,
    }
}

/// A client with the credentials from `--credentials`, else the environment or the
/// config file.
pub fn twilio_client(api: &ApiArgs) -> anyhow::Result<TwilioClient> {
    Ok(TwilioClient::new(client_config(api)?)?)
}

/// The configuration [`twilio_client`] builds its client from.
pub fn client_config(api: &ApiArgs) -> anyhow::Result<ClientConfig> {
    let credentials = match &api.credentials {
        Some(path) => Credentials::from_file(path)?,
        None => Credentials::from_env()?,
    };
    let mut config = ClientConfig::new(credentials);
    config.api_url = api.api_url.clone();
    config.voice_url = api.voice_api_url.clone();
    config.request_timeout = api.retry.timeout;
    config.connect_timeout = config.connect_timeout.min(api.retry.timeout);
    config.retry.total_budget = api.retry.retry_budget;
    config.retry.min_rate.bytes_per_sec = api.retry.min_rate;
    Ok(config)
}

/// The media a command's first request reads: one recording, if there is any.
pub const PROBED: MediaKind = MediaKind::Recording;

/// One request that a command reading media needs anyway: one recording, if any
/// ([`TwilioClient::probe`]). Credentials that do not work fail here, before anything
/// else, with [`access_error`]'s words.
pub async fn check_access(twilio: &TwilioClient) -> anyhow::Result<()> {
    let what = PROBED.plural();
    twilio.probe(PROBED).await.map_err(|e| match e.access() {
        Access::Other => anyhow::Error::new(e).context(format!(
            "cannot list {what} at {}",
            origin(twilio.api_url())
        )),
        _ => access_error(twilio, e, what),
    })
}

/// `e`, met reading `what` (`recordings`, `rooms`, …), in words that say what failed:
/// Twilio rejected the credentials (a 401, whose message says so and what to check),
/// they may not read `what` (a 403: a restricted API key without that permission), or
/// the API cannot be reached. Any other error is left as it is.
pub fn access_error(twilio: &TwilioClient, e: twilio::Error, what: &str) -> anyhow::Error {
    match e.access() {
        Access::Rejected | Access::Other => e.into(),
        Access::Forbidden => anyhow::anyhow!(
            "{} may not read {what}: {e}; {RESTRICTED_FIX}",
            who(twilio.credentials())
        ),
        Access::Unreachable => anyhow::Error::new(e).context(format!(
            "cannot reach the Twilio API at {}",
            origin(twilio.api_url())
        )),
    }
}

/// What a restricted API key needs for `mount`, `ls` and `get`.
pub const RESTRICTED_FIX: &str = "a restricted API key needs read access to Video \
    recordings, compositions and rooms (Twilio Console > Account > API keys & tokens)";

/// Whom a 403 is about: `this API key (SK…)`, or `these credentials (account AC…)`.
pub fn who(credentials: &Credentials) -> String {
    match credentials.kind() {
        AuthKind::ApiKey => format!("this API key ({})", credentials.username()),
        AuthKind::AuthToken => format!("these credentials (account {})", credentials.username()),
    }
}

/// `scheme://host[:port]` of `url`, as messages name an API.
pub fn origin(url: &reqwest::Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown
}
