//! The sockets of `serve`: TCP addresses and Unix sockets, TLS (rustls; TCP only), and the limits
//! that keep clients from holding the server: a maximum of connections at once, a
//! deadline for each request's headers (which also closes idle keep-alive
//! connections), a bound on their size, and a deadline for a client that stops taking
//! the bytes sent to it.
//!
//! HTTP itself is hyper's (HTTP/1.1); what each request gets is the router's
//! ([`super::router`]). This module knows nothing of files or credentials.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;

/// Bytes of a request's head (request line and headers) accepted; more is refused
/// with 431 by hyper.
pub const MAX_HEAD: usize = 16 << 10;

/// Where to listen: `ADDR:PORT`, or `unix:/path/to.sock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl FromStr for Bind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(format!(
                    "{text}: a Unix socket needs an absolute path (unix:/run/x.sock)"
                ));
            }
            return Ok(Bind::Unix(path.into()));
        }
        text.parse().map(Bind::Tcp).map_err(|_| {
            format!(
                "{text}: not ADDR:PORT (127.0.0.1:8080, [::1]:8080, 0.0.0.0:8080) or unix:/PATH"
            )
        })
    }
}

impl Bind {
    /// Whether only this machine can connect: a loopback address or a Unix socket.
    pub fn is_local(&self) -> bool {
        match self {
            Bind::Tcp(a) => a.ip().is_loopback(),
            Bind::Unix(_) => true,
        }
    }
}

impl std::fmt::Display for Bind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bind::Tcp(a) => write!(f, "{a}"),
            Bind::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// How much the server gives one client.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// A request's head must arrive within this, counted from when the server starts
    /// waiting for it: a slow sender (slowloris) and an idle keep-alive connection are
    /// closed after it. Also bounds a TLS handshake.
    pub header_timeout: Duration,
    /// A client that takes none of the bytes sent to it for this long is disconnected,
    /// so that it holds no open file, cache window or storage fetch any longer.
    pub send_timeout: Duration,
}

/// A bound socket.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds `bind`. A Unix socket's file is made owner-only (0600); a stale socket
    /// file left there is replaced, anything else is refused.
    pub async fn bind(bind: &Bind) -> io::Result<Listener> {
        match bind {
            Bind::Tcp(addr) => Ok(Listener::Tcp(TcpListener::bind(addr).await?)),
            Bind::Unix(path) => {
                use std::os::unix::fs::{FileTypeExt, PermissionsExt};
                if let Ok(meta) = std::fs::symlink_metadata(path) {
                    if !meta.file_type().is_socket() {
                        return Err(io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            format!("{} exists and is not a socket", path.display()),
                        ));
                    }
                    if std::os::unix::net::UnixStream::connect(path).is_ok() {
                        return Err(io::Error::new(
                            io::ErrorKind::AddrInUse,
                            format!("{}: another server is listening there", path.display()),
                        ));
                    }
                    std::fs::remove_file(path)?;
                }
                // Created 0600 from the start (no moment when others could connect).
                // SAFETY: umask only swaps the process's file-creation mask.
                let old = unsafe { libc::umask(0o177) };
                let bound = UnixListener::bind(path);
                // SAFETY: as above; restores the mask.
                unsafe { libc::umask(old) };
                let listener = bound?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
                Ok(Listener::Unix(listener, path.clone()))
            }
        }
    }

    /// Where clients reach it: `http://127.0.0.1:8080/`, or `unix:/path`.
    pub fn url(&self, tls: bool) -> String {
        let scheme = if tls { "https" } else { "http" };
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("{scheme}://{a}/"),
                Err(_) => format!("{scheme}://?/"),
            },
            Listener::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }
}

/// The TLS configuration of a certificate chain and its key (PEM files' text).
pub fn tls_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the certificate file: {e}"))?;
    if certs.is_empty() {
        return Err("the certificate file holds no certificate (PEM)".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("the key file: {e} (a PEM private key: PKCS#8, PKCS#1 or SEC1)"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Raises the soft limit of open files to the hard limit (each connection is one, and
/// storage connections more) and returns it.
pub fn raise_open_files() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write a valid rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    limit.rlim_cur
}

/// Serves `app` on every listener until the future is dropped.
pub async fn run(listeners: Vec<Listener>, app: Router, tls: Option<TlsAcceptor>, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        // TLS is for the network: a Unix socket is local, and speaks plain HTTP.
        let tls = match listener {
            Listener::Tcp(_) => tls.clone(),
            Listener::Unix(..) => None,
        };
        let (app, slots) = (app.clone(), slots.clone());
        tasks.spawn(accept(listener, app, tls, slots, limits));
    }
    while tasks.join_next().await.is_some() {}
}

async fn accept(
    listener: Listener,
    app: Router,
    tls: Option<TlsAcceptor>,
    slots: Arc<Semaphore>,
    limits: Limits,
) {
    loop {
        let accepted = match &listener {
            Listener::Tcp(l) => l.accept().await.map(|(s, _)| {
                let _ = s.set_nodelay(true);
                Conn::Tcp(s)
            }),
            Listener::Unix(l, _) => l.accept().await.map(|(s, _)| Conn::Unix(s)),
        };
        let conn = match accepted {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(conn, tls.is_some()));
            continue;
        };
        let (app, tls) = (app.clone(), tls.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match conn {
                Conn::Tcp(s) => connection(s, app, tls, limits).await,
                Conn::Unix(s) => connection(s, app, tls, limits).await,
            }
        });
    }
}

enum Conn {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

/// Over the connection limit: 503 (over plain HTTP) and close.
async fn refuse(conn: Conn, tls: bool) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
        Content-Type: text/plain\r\nContent-Length: 31\r\nConnection: close\r\n\r\n\
        too many connections: try again";
    tracing::warn!("refused a connection: --max-connections reached");
    if tls {
        return; // dropped: a TLS client cannot read a plain answer
    }
    let write = async {
        match conn {
            Conn::Tcp(mut s) => {
                let _ = s.write_all(BUSY).await;
                let _ = s.shutdown().await;
            }
            Conn::Unix(mut s) => {
                let _ = s.write_all(BUSY).await;
                let _ = s.shutdown().await;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

async fn connection<IO>(io: IO, app: Router, tls: Option<TlsAcceptor>, limits: Limits)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = SendDeadline::new(io, limits.send_timeout);
    match tls {
        None => http(io, app, limits).await,
        Some(tls) => match tokio::time::timeout(limits.header_timeout, tls.accept(io)).await {
            Ok(Ok(io)) => http(io, app, limits).await,
            Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
            Err(_) => tracing::debug!("TLS handshake timed out"),
        },
    }
}

async fn http<IO>(io: IO, app: Router, limits: Limits)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(app);
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD.max(8192))
        .serve_connection(TokioIo::new(io), service)
        .await;
    if let Err(e) = served {
        // Clients that go away mid-response are routine for players (every seek).
        tracing::debug!("connection ended: {e}");
    }
}

/// A socket whose writes fail once none of them made progress for `limit`: a client
/// that stopped reading is cut off instead of holding the server's resources.
struct SendDeadline<T> {
    io: T,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> SendDeadline<T> {
    fn new(io: T, limit: Duration) -> Self {
        Self {
            io,
            limit,
            stalled: None,
        }
    }

    /// After a write poll: progress disarms the deadline, a wait arms it (once) and
    /// fails when it passes.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let limit = self.limit;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + limit)));
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took no data for the --send-timeout",
            )));
        }
        Poll::Pending
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SendDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SendDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Removes a Unix socket's file (when the server stops).
pub fn remove_socket(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds() {
        assert_eq!(
            "127.0.0.1:8080".parse(),
            Ok(Bind::Tcp("127.0.0.1:8080".parse().unwrap()))
        );
        assert_eq!(
            "unix:/run/x.sock".parse(),
            Ok(Bind::Unix("/run/x.sock".into()))
        );
        assert!("unix:x.sock".parse::<Bind>().is_err());
        assert!("localhost:80".parse::<Bind>().is_err());
        assert!("127.0.0.1:1".parse::<Bind>().unwrap().is_local());
        assert!("[::1]:1".parse::<Bind>().unwrap().is_local());
        assert!(!"0.0.0.0:1".parse::<Bind>().unwrap().is_local());
        assert!(!"192.168.1.2:1".parse::<Bind>().unwrap().is_local());
        assert!("unix:/x".parse::<Bind>().unwrap().is_local());
    }
}
