//! The flag groups that several subcommands share, turned into what the library takes:
//! private keys loaded from `-k` files, a Twilio client configured from the API and
//! retry flags.
//!
//! This is where reading key files and credentials happens for the commands
//! ([`crate::keyfile`], [`crate::twilio::Credentials`]); [`crate::cli`] only declares the
//! flags. It knows nothing of any one subcommand.

use crate::cli::{ApiArgs, KeyArgs};
use crate::crypto::PrivateKeys;
use crate::keyfile;
use crate::twilio::{ClientConfig, Credentials, TwilioClient};

/// Loads every `-k` key file, in order, refusing ones that others can read unless
/// `--insecure-key-permissions`.
pub fn load_keys(args: &KeyArgs) -> anyhow::Result<PrivateKeys> {
    keyfile::load(
        &args.paths,
        keyfile::KeyPermissions::from_flag(args.insecure_permissions),
    )
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
    config.request_timeout = api.retry.timeout;
    config.connect_timeout = config.connect_timeout.min(api.retry.timeout);
    config.retry.total_budget = api.retry.retry_budget;
    Ok(config)
}
