//! `twilio-media-fs emulator`: turns the flags into an [`EmulatorConfig`], prepares the
//! keys, prints what a user pastes into another shell, and serves until Ctrl-C/SIGTERM.
//!
//! It owns key handling for the command (reading `--public-key` files, generating a pair,
//! writing `--private-key-out` with mode 0600) and the size parser. It must not know how
//! the emulator works inside: everything goes through [`crate::emulator`].

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::{DecodePublicKey, EncodePrivateKey, LineEnding};

use crate::cli::EmulatorArgs;
use crate::crypto::seal;
use crate::emulator::{Emulator, EmulatorConfig, EmulatorCredentials};

fn read_public_key(path: &Path) -> anyhow::Result<rsa::PublicKey> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the public key", path.display()))?;
    rsa::PublicKey::from_public_key_pem(&pem)
        .or_else(|_| rsa::PublicKey::from_pkcs1_pem(&pem))
        .map_err(|e| {
            anyhow::anyhow!(
                "{}: not an RSA public key in PEM (\"BEGIN PUBLIC KEY\" or \"BEGIN RSA PUBLIC KEY\"): {e}",
                path.display()
            )
        })
}

/// Writes `pem` to `path`, readable by its owner only.
pub(super) fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("{}: cannot create the private key file", path.display()))?;
    #[cfg(unix)]
    {
        // An existing file keeps its mode on open: tighten it.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(pem.as_bytes())
        .with_context(|| format!("{}: cannot write the private key", path.display()))
}

/// Turns the flags into a config, generating a key pair when no public key is given.
pub fn config(args: &EmulatorArgs) -> anyhow::Result<EmulatorConfig> {
    let mut public_keys = args
        .public_keys
        .iter()
        .map(|p| read_public_key(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if public_keys.is_empty() {
        let private = seal::generate_key(2048);
        if let Some(out) = &args.private_key_out {
            let pem = private
                .to_pkcs8_pem(LineEnding::LF)
                .context("cannot encode the generated private key")?;
            write_private(out, &pem)?;
            eprintln!("private key written to {} (mode 0600)", out.display());
        } else {
            eprintln!(
                "note: a fresh key pair was generated and its private key is not saved: \
                 pass --private-key-out FILE to decrypt what the emulator serves"
            );
        }
        public_keys.push(private.to_public_key());
    }
    Ok(EmulatorConfig {
        data_dir: args.data.clone(),
        ttl: Duration::from_secs(args.ttl),
        fail_every: args.fail_every,
        drop_every: args.drop_every,
        stall_every: args.stall_every,
        stall: Duration::from_millis(args.stall_ms),
        throttle_every: args.throttle_every,
        latency: Duration::from_millis(args.latency_ms),
        bandwidth: args.bandwidth,
        storage_url: args.storage_url.clone(),
        synthetic: args.synthetic.clone(),
        extra_recordings: args.extra_recordings,
        extra_call_recordings: args.extra_call_recordings,
        public_keys,
        credentials: EmulatorCredentials::default(),
        encryption_enabled: true,
        restricted_key: args.restricted_key,
        hostile: args.hostile.clone(),
    })
}

/// What to paste into another shell, and what is served.
fn banner(url: &str, emulator: &Emulator) -> String {
    let c = &emulator.config().credentials;
    let mut out = format!(
        "twilio-media-fs emulator listening on {url}\n\n\
         export TWILIO_MEDIA_FS_API_URL={url}\n\
         export TWILIO_ACCOUNT_SID={}\n\
         export TWILIO_AUTH_TOKEN={}\n\
         # or: export TWILIO_API_KEY={} TWILIO_API_SECRET={}\n\n",
        c.account_sid, c.auth_token, c.api_key, c.api_secret
    );
    if emulator.config().restricted_key {
        out.push_str(
            "a restricted key: the settings and public keys answer 403 (--restricted-key)\n\n",
        );
    }
    if !emulator.config().hostile.is_empty() {
        let names: Vec<String> = emulator
            .config()
            .hostile
            .iter()
            .filter_map(clap::ValueEnum::to_possible_value)
            .map(|v| v.get_name().to_owned())
            .collect();
        out.push_str(&format!("hostile modes: {}\n\n", names.join(", ")));
    }
    let mut objects = emulator.objects();
    objects.extend(emulator.call_recordings());
    let shown = 20;
    for o in objects.iter().take(shown) {
        let kind = o.kind.noun();
        let size = o.size.map_or("-".to_string(), |s| s.to_string());
        let mut notes = Vec::new();
        if !o.encrypted && o.size.is_some() {
            notes.push("unencrypted".to_string());
        }
        if o.encrypted && !o.length_header && o.kind.is_video() {
            notes.push("no length header".into());
        }
        if let Some(k) = o.key_index.filter(|&k| k > 0) {
            notes.push(format!("key #{k}"));
        }
        if o.synthetic {
            notes.push("synthetic".into());
        }
        out.push_str(&format!(
            "{:<34} {kind:<14} {:<4} {:<10} {size:>12} {}\n",
            o.sid,
            o.extension,
            o.status,
            notes.join(", ")
        ));
    }
    if objects.len() > shown {
        out.push_str(&format!("… and {} more\n", objects.len() - shown));
    }
    out.push_str(&format!(
        "\ncall recordings (the Voice API, same port): \
         {url}/2010-04-01/Accounts/{}/Recordings.json\n",
        c.account_sid
    ));
    if let Some(o) = emulator.call_recordings().iter().find(|o| o.encrypted) {
        out.push_str(&format!(
            "try: twilio-media-fs ls voice; twilio-media-fs get {} -k KEY.pem\n",
            o.sid
        ));
    }
    out
}

pub fn run(args: EmulatorArgs) -> anyhow::Result<()> {
    let config = config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let emulator = Emulator::new(config)?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let url = format!("http://{}", listener.local_addr()?);
        // A reader that stops reading (`emulator | head -1`) must not stop the
        // emulator: println! would panic on the closed pipe.
        let _ = writeln!(std::io::stdout().lock(), "{}", banner(&url, &emulator))
            .and_then(|()| std::io::stdout().flush());
        emulator.serve(listener, shutdown_signal()).await
    })
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    let _ = writeln!(std::io::stderr(), "twilio-media-fs emulator: stopping");
}

#[cfg(test)]
mod tests {
    use crate::cli::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("12345"), Ok(12345));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("64mib"), Ok(64 << 20));
        assert_eq!(parse_size("64 MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2K"), Ok(2048));
        assert_eq!(parse_size("3MB"), Ok(3_000_000));
        assert_eq!(parse_size("7B"), Ok(7));
        assert!(parse_size("").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("1.5GiB").is_err());
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("16777216TiB").is_err());
    }
}

#[cfg(test)]
mod cli_tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> crate::cli::EmulatorArgs {
        let cli = Cli::try_parse_from([&["twilio-media-fs", "emulator"], args].concat()).unwrap();
        match cli.command {
            Command::Emulator(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_become_a_config() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("emu.pem");
        let args = parse(&[
            "--listen",
            "127.0.0.1:9",
            "--synthetic",
            "1GiB",
            "--synthetic",
            "17",
            "--bandwidth",
            "8MiB",
            "--latency-ms",
            "5",
            "--fail-every",
            "3",
            "--stall-every",
            "4",
            "--stall-ms",
            "1500",
            "--restricted-key",
            "--private-key-out",
            out.to_str().unwrap(),
        ]);
        let config = super::config(&args).unwrap();
        assert_eq!(config.synthetic, [1 << 30, 17]);
        assert_eq!(config.bandwidth, Some(8 << 20));
        assert_eq!(config.fail_every, Some(3));
        assert_eq!(config.stall_every, Some(4));
        assert_eq!(config.stall, std::time::Duration::from_millis(1500));
        assert_eq!(config.latency, std::time::Duration::from_millis(5));
        assert_eq!(config.ttl, std::time::Duration::from_secs(3600));
        assert_eq!(config.public_keys.len(), 1);
        assert!(config.restricted_key);
        assert!(!parse(&[]).restricted_key, "a full key unless asked");
        let pem = std::fs::read_to_string(&out).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&out).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The written key is the pair of the public key the emulator encrypts for.
        let mut keys = crate::crypto::PrivateKeys::new();
        keys.add_pem("emu.pem", &pem, &mut |_| None).unwrap();
        let (_, public) = keys.public_keys().next().unwrap();
        assert!(public == config.public_keys[0]);
    }

    #[test]
    fn hostile_modes_are_comma_separated_or_repeated() {
        use crate::emulator::hostile::Hostile;
        let args = parse(&[
            "--hostile",
            "dribble,new-sids",
            "--hostile",
            "other-host-redirect",
        ]);
        let config = super::config(&args).unwrap();
        assert_eq!(
            config.hostile,
            [
                Hostile::Dribble,
                Hostile::NewSids,
                Hostile::OtherHostRedirect
            ]
        );
        assert!(parse(&[]).hostile.is_empty(), "no mode unless asked");
        let argv = ["twilio-media-fs", "emulator", "--hostile", "dribble,nope"];
        assert!(Cli::try_parse_from(argv).is_err());
    }

    #[test]
    fn bad_flags_are_refused_while_parsing() {
        let bad: [&[&str]; 5] = [
            &["--synthetic", "1.5GiB"],
            &["--fail-every", "0"],
            &["--stall-every", "0"],
            &["--public-key", "a.pem", "--private-key-out", "b.pem"],
            &["--listen", "localhost"],
        ];
        for args in bad {
            let argv = [&["twilio-media-fs", "emulator"], args].concat();
            assert!(Cli::try_parse_from(argv).is_err(), "{args:?}");
        }
    }
}
