//! The room's tracks as HTTP resources on 127.0.0.1, for the ffprobe and ffmpeg that
//! `compose` runs: decrypted on the fly by the read core, never written anywhere.
//!
//! One listener on an ephemeral loopback port, one URL per track
//! (`http://127.0.0.1:PORT/TOKEN/N`), with `Range` support so that ffmpeg can seek (the
//! Matroska cues, the end of a file). Other users of the machine can reach the port,
//! and can read the URLs on ffmpeg's command line (`ps`): so each connection must come
//! from a socket of this process's own user (its owner in `/proc/net/tcp`,
//! [`peer_uid`]), and the 128 random bits of the path keep other programs of that
//! user from stumbling on it. A read that fails (a damaged
//! object, storage past its retry budget) breaks the response off, so ffmpeg sees an
//! error rather than a short file, and is recorded with its SID ([`Inputs::failures`])
//! for the error message. This module owns the listener only: no ffmpeg, no plan.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rand::RngExt;

use crate::http_body;
use crate::http_range::{self, Wanted};
use crate::read::Handle;

struct Shared {
    token: String,
    /// The listener's address: a connection's peer socket has it as its remote end.
    addr: SocketAddr,
    handles: Vec<Arc<Handle>>,
    failures: Mutex<Vec<String>>,
}

/// The running listener; stops when dropped.
pub struct Inputs {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Inputs {
    /// Serves `handles` on 127.0.0.1 (an ephemeral port), `handles[n]` at [`Self::url`]`(n)`.
    pub async fn start(handles: Vec<Arc<Handle>>) -> std::io::Result<Self> {
        let token: String = {
            let mut rng = rand::rng();
            (0..16)
                .map(|_| format!("{:02x}", rng.random::<u8>()))
                .collect()
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            token,
            addr,
            handles,
            failures: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .route("/{token}/{n}", get(serve_track))
            .with_state(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            let serving = axum::serve(listener, service).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serving.await {
                tracing::warn!("the tracks' loopback listener stopped: {e}");
            }
        });
        Ok(Self {
            addr,
            shared,
            stop: Some(stop),
        })
    }

    /// Where track `n` is read.
    pub fn url(&self, n: usize) -> String {
        format!("http://{}/{}/{n}", self.addr, self.shared.token)
    }

    /// The reads that failed, each naming its SID, in the order they failed.
    pub fn failures(&self) -> Vec<String> {
        self.shared.failures.lock().expect("failures lock").clone()
    }
}

impl Drop for Inputs {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

async fn serve_track(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((token, n)): Path<(String, usize)>,
    headers: HeaderMap,
) -> Response {
    // SAFETY: geteuid cannot fail and has no preconditions.
    let me = unsafe { libc::geteuid() };
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    if peer_uid(&table, peer, shared.addr) != Some(me) {
        tracing::warn!("refused a connection from {peer}: not a process of this user");
        return StatusCode::FORBIDDEN.into_response();
    }
    if !same(&token, &shared.token) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Some(handle) = shared.handles.get(n).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let len = handle.len();
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match http_range::wanted(range, len) {
        Wanted::Whole => (StatusCode::OK, 0, len),
        Wanted::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end + 1),
        Wanted::Unsatisfiable => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{len}"))],
            )
                .into_response();
        }
    };
    let sid = handle.object().sid().to_owned();
    let reader = handle.clone();
    let body = http_body::chunks(
        start,
        end,
        move |at, n| {
            let handle = reader.clone();
            async move { handle.read(at, n).await }
        },
        move |failure| {
            let line = if failure.starts_with(&sid) {
                failure.to_owned()
            } else {
                format!("{sid}: {failure}")
            };
            shared.failures.lock().expect("failures lock").push(line);
        },
    );
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::ACCEPT_RANGES, "bytes".parse().expect("header"));
    h.insert(header::CONTENT_LENGTH, (end - start).into());
    if status == StatusCode::PARTIAL_CONTENT {
        let value = format!("bytes {start}-{}/{len}", end - 1);
        h.insert(header::CONTENT_RANGE, value.parse().expect("header"));
    }
    response
}

/// The owner of the TCP socket `client` connected to `server`, from `table` (the text
/// of `/proc/net/tcp`: IPv4 sockets, addresses as little-endian hex `0100007F:1F90`).
pub fn peer_uid(table: &str, client: SocketAddr, server: SocketAddr) -> Option<u32> {
    let hex = |a: SocketAddr| -> Option<String> {
        let SocketAddr::V4(a) = a else { return None };
        let ip = u32::from_le_bytes(a.ip().octets());
        Some(format!("{ip:08X}:{:04X}", a.port()))
    };
    let (local, remote) = (hex(client)?, hex(server)?);
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&local.as_str()) && fields.get(2) == Some(&remote.as_str()))
            .then(|| fields.get(7)?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn the_peer_is_found_by_both_ends() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:A1B2 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n\
   1: 0100007F:C350 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000  1000        0 2 1\n\
   2: 0100007F:A1B2 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1\n";
        let server: SocketAddr = (Ipv4Addr::LOCALHOST, 0xA1B2).into();
        let client: SocketAddr = (Ipv4Addr::LOCALHOST, 0xC350).into();
        assert_eq!(peer_uid(table, client, server), Some(1000));
        assert_eq!(peer_uid(table, server, client), Some(0));
        let other: SocketAddr = (Ipv4Addr::LOCALHOST, 0xC351).into();
        assert_eq!(peer_uid(table, other, server), None);
        assert_eq!(peer_uid("", client, server), None);
    }

    /// `curl`'s status code for `url`, run as `uid` when given (setpriv, as root).
    fn status_as(uid: Option<u32>, url: &str) -> String {
        let mut cmd = match uid {
            Some(uid) => {
                let mut c = std::process::Command::new("setpriv");
                c.args([
                    &format!("--reuid={uid}"),
                    &format!("--regid={uid}"),
                    "--clear-groups",
                    "curl",
                ]);
                c
            }
            None => std::process::Command::new("curl"),
        };
        let out = cmd
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", url])
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn another_user_is_refused_even_with_the_url() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            assert!(
                std::env::var("CI").is_err(),
                "CI runs as root: this test must run there"
            );
            eprintln!("SKIPPED: needs root to run curl as another user");
            return;
        }
        let inputs = Inputs::start(Vec::new()).await.unwrap();
        let url = inputs.url(0);
        let (own, nobody) = tokio::task::spawn_blocking(move || {
            (status_as(None, &url), status_as(Some(65534), &url))
        })
        .await
        .unwrap();
        // This user gets as far as the (missing) track; nobody is refused at the door.
        assert_eq!(own, "404");
        assert_eq!(nobody, "403");
    }

    #[tokio::test]
    async fn a_connection_of_this_user_is_let_in() {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let server = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(server).await.unwrap();
        let _accepted = listener.accept().await.unwrap();
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let me = unsafe { libc::geteuid() };
        assert_eq!(
            peer_uid(&table, client.local_addr().unwrap(), server),
            Some(me)
        );
    }
}
