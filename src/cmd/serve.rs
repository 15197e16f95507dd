//! `serve`: the account over HTTP, in the foreground until SIGINT/SIGTERM.
//!
//! It owns turning the `serve` flags into a running server: credentials (a token file or
//! `TWILIO_MEDIA_FS_SERVE_TOKEN`, an htpasswd file), TLS files, the refusal to listen
//! beyond loopback without credentials, binding, the `listening on URL` lines, systemd
//! readiness, signals and the last save of the size cache. The filesystem is wired by
//! [`crate::app::build_fs`], as for `mount`; HTTP is [`crate::serve`]'s.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroizing;

use super::config::{check_access, fs_settings, load_keys, twilio_client};
use super::malloc::limit_malloc_retention;
use super::mount::notify_systemd;
use crate::app::build_fs;
use crate::cli::{ListenArgs, ServeArgs};
use crate::serve::auth::Auth;
use crate::serve::listen::{self, Bind, Limits, Listener};

/// The environment variable that may hold the bearer token.
pub const TOKEN_ENV: &str = "TWILIO_MEDIA_FS_SERVE_TOKEN";

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    limit_malloc_retention();
    let auth = load_auth(&args.listen)?;
    let binds = args.listen.addresses();
    refuse_open_without_auth(&binds, &auth)?;
    let tls = load_tls(&args.listen)?;
    let open_files = listen::raise_open_files();
    // Each connection is a descriptor, and each may use a storage connection too.
    if u64::from(args.max_connections) * 2 + 64 > open_files {
        bail!(
            "--max-connections {} needs some {} open files, and this process may open {}: \
             lower --max-connections, or raise the limit (ulimit -n, LimitNOFILE=)",
            args.max_connections,
            u64::from(args.max_connections) * 2 + 64,
            open_files
        );
    }
    let keys = Arc::new(load_keys(&args.keys)?);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let twilio = Arc::new(twilio_client(&args.api)?);
        // One request now, so that bad credentials fail the start, not the first GET.
        check_access(&twilio).await?;
        let fs = build_fs(&fs_settings(&args.fs, None, None), twilio, keys);
        let mut listeners = Vec::new();
        for bind in &binds {
            let l = Listener::bind(bind)
                .await
                .with_context(|| format!("cannot listen on {bind}"))?;
            listeners.push(l);
        }
        let mut out = std::io::stdout().lock();
        for l in &listeners {
            writeln!(out, "listening on {}", l.url(tls.is_some()))?;
        }
        out.flush()?;
        drop(out);
        let sockets: Vec<_> = binds
            .iter()
            .filter_map(|b| match b {
                Bind::Unix(p) => Some(p.clone()),
                Bind::Tcp(_) => None,
            })
            .collect();
        let limits = Limits {
            max_connections: args.max_connections as usize,
            header_timeout: args.header_timeout,
            send_timeout: args.send_timeout,
        };
        let sizes = fs.core().sizes().clone();
        let app = crate::serve::router(fs, auth, tls.is_some());
        notify_systemd("READY=1\nSTATUS=Serving");
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        tokio::select! {
            _ = listen::run(listeners, app, tls, limits) => {}
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        notify_systemd("STOPPING=1");
        for path in &sockets {
            listen::remove_socket(path);
        }
        sizes.save();
        anyhow::Ok(())
    })?;
    // Responses still streaming are cut off with the runtime.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}

/// Refuses an address other machines can reach when no credentials are set.
pub fn refuse_open_without_auth(binds: &[Bind], auth: &Auth) -> anyhow::Result<()> {
    if !auth.required()
        && let Some(open) = binds.iter().find(|b| !b.is_local())
    {
        bail!(
            "--listen {open} can be reached from other machines, and no credentials are \
             set: give a bearer token (--token-file FILE, or {TOKEN_ENV}) or users \
             (--htpasswd FILE), or listen on 127.0.0.1"
        );
    }
    Ok(())
}

/// The TLS acceptor of --tls-cert and --tls-key, if given.
pub fn load_tls(args: &ListenArgs) -> anyhow::Result<Option<TlsAcceptor>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let cert_pem = std::fs::read(cert)
        .with_context(|| format!("cannot read --tls-cert {}", cert.display()))?;
    let key_pem = Zeroizing::new(
        std::fs::read(key).with_context(|| format!("cannot read --tls-key {}", key.display()))?,
    );
    Ok(Some(
        listen::tls_config(&cert_pem, &key_pem).map_err(anyhow::Error::msg)?,
    ))
}

/// The credentials the flags and the environment give: a token from --token-file or
/// the environment (the file wins), users from --htpasswd.
pub fn load_auth(args: &ListenArgs) -> anyhow::Result<Auth> {
    let token = match &args.token_file {
        Some(path) => {
            let text = Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read --token-file {}", path.display()))?,
            );
            let first = text.lines().next().unwrap_or("").to_owned();
            Some(Zeroizing::new(first))
        }
        None => std::env::var(TOKEN_ENV).ok().map(Zeroizing::new),
    };
    let htpasswd = match &args.htpasswd {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --htpasswd {}", path.display()))?,
        ),
        None => None,
    };
    let what = match (&args.token_file, &args.htpasswd) {
        (Some(t), _) => format!("--token-file {}", t.display()),
        (None, Some(h)) => format!("--htpasswd {}", h.display()),
        (None, None) => TOKEN_ENV.to_owned(),
    };
    Auth::new(token, htpasswd.as_deref()).with_context(|| format!("bad credentials in {what}"))
}
