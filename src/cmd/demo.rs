//! `demo`: the whole thing with no Twilio account. Starts the emulator in this process
//! with a fresh key pair and its sample media (Video, and Voice call recordings), mounts
//! it, says what to try, and unmounts on Ctrl-C. The throwaway private key is also
//! written, mode 0600, to a temporary directory removed on exit, so that the `compose`
//! line it prints runs as printed.
//!
//! The filesystem is the one `mount` builds ([`crate::app::build_fs`]), with `mount`'s
//! defaults; only the account (the emulator) and the key (a fresh one) differ. It must
//! not wire a filesystem of its own.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use zeroize::Zeroizing;

use crate::app::{MountSettings, build_fs};
use crate::cli::DemoArgs;
use crate::crypto::{PrivateKeys, seal};
use crate::emulator::meeting::meeting_room_sid;
use crate::emulator::{EmulatorConfig, EmulatorCredentials, spawn};
use crate::twilio::{ClientConfig, Credentials, TwilioClient};

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let mountpoint = args
        .mountpoint
        .unwrap_or_else(|| PathBuf::from("twilio-demo"));
    let created = !mountpoint.exists();
    if created {
        std::fs::create_dir_all(&mountpoint)
            .with_context(|| format!("cannot create {}", mountpoint.display()))?;
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    eprintln!("generating a 2048-bit RSA key pair for the demo account…");
    let private = seal::generate_key(2048);
    let emulator = runtime.block_on(spawn(EmulatorConfig {
        public_keys: vec![private.to_public_key()],
        ..Default::default()
    }))?;
    // For the printed `compose` line: the demo's own throwaway key, gone on exit.
    let key_dir = tempfile::Builder::new()
        .prefix("twilio-media-fs-demo.")
        .tempdir()
        .context("cannot create a temporary directory for the demo's key")?;
    let key_path = key_dir.path().join("demo-key.pem");
    {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let pem = private
            .to_pkcs8_pem(LineEnding::LF)
            .context("cannot encode the demo key")?;
        super::emulator::write_private(&key_path, &pem)?;
    }
    let mut keys = PrivateKeys::new();
    keys.add("demo key", private);
    let creds = EmulatorCredentials::default();
    let mut config = ClientConfig::new(Credentials::auth_token(
        creds.account_sid.clone(),
        Zeroizing::new(creds.auth_token.clone()),
    ));
    config.api_url = emulator.url.clone();
    let twilio = Arc::new(TwilioClient::new(config)?);
    // What `mount` with no flags builds.
    let fs = build_fs(&MountSettings::default(), twilio, Arc::new(keys));
    let shown = mountpoint.display().to_string();
    let sample = emulator
        .emulator
        .objects()
        .into_iter()
        .find(|o| o.extension == "mp4")
        .map(|o| format!("compositions/{}.mp4", o.sid))
        .unwrap_or_else(|| "compositions/CJ….mp4".into());
    // A dual-channel encrypted call recording, for the Voice lines.
    let call = emulator
        .emulator
        .call_recordings()
        .into_iter()
        .find(|o| o.encrypted)
        .map(|o| format!("voice/{}.wav", o.sid))
        .unwrap_or_else(|| "voice/RE….wav".into());
    let result = super::mount::serve(&runtime, fs, &mountpoint, "twilio-media-fs", false, || {
        println!(
            "\nA demo Twilio account (emulator at {url}) is mounted on {shown}.\n\
             Its media is encrypted exactly as Twilio stores it and decrypted as you read.\n\n\
             Try, in another terminal:\n  \
             ls -l {shown}/recordings {shown}/compositions {shown}/rooms/*\n  \
             ffprobe {shown}/{sample}\n  \
             ls -l {shown}/voice        # call recordings (AES-256-GCM: cp checks the tag)\n  \
             ffprobe {shown}/{call}\n  \
             getfattr -d {shown}/{sample}\n  \
             cp {shown}/{sample} . && sha256sum {sample_name}\n  \
             cat {shown}/.stats\n  \
             TWILIO_MEDIA_FS_API_URL={url} TWILIO_ACCOUNT_SID={account} TWILIO_AUTH_TOKEN={token} \\\n    \
             twilio-media-fs compose {meeting} -k {key} -o meeting.mp4   # a room, composed\n\n\
             Press Ctrl-C to unmount.",
            url = emulator.url,
            meeting = meeting_room_sid(),
            account = creds.account_sid,
            token = creds.auth_token,
            key = key_path.display(),
            sample_name = sample.rsplit('/').next().unwrap_or_default(),
        );
    });
    if created {
        let _ = std::fs::remove_dir(&mountpoint);
    }
    result
}
