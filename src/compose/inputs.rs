//! The room's tracks as HTTP resources on 127.0.0.1, for the ffprobe and ffmpeg that
//! `compose` runs: decrypted on the fly by the read core, never written anywhere.
//!
//! One listener on an ephemeral loopback port, one URL per track
//! (`http://127.0.0.1:PORT/TOKEN/N`), with `Range` support so that ffmpeg can seek (the
//! Matroska cues, the end of a file). The token is 128 random bits: other users of the
//! machine can reach the port but cannot guess a URL. A read that fails (a damaged
//! object, storage past its retry budget) breaks the response off, so ffmpeg sees an
//! error rather than a short file, and is recorded with its SID ([`Inputs::failures`])
//! for the error message. This module owns the listener only: no ffmpeg, no plan.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::stream;
use rand::RngExt;

use crate::http_range::{self, Wanted};
use crate::read::Handle;

/// Plaintext bytes read from the core per step of a response.
const STEP: u64 = 256 << 10;

struct Shared {
    token: String,
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
        let shared = Arc::new(Shared {
            token,
            handles,
            failures: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let router = Router::new()
            .route("/{token}/{n}", get(serve_track))
            .with_state(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let serving = axum::serve(listener, router).with_graceful_shutdown(async {
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
    Path((token, n)): Path<(String, usize)>,
    headers: HeaderMap,
) -> Response {
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
    let body = stream::try_unfold(start, move |at| {
        let handle = handle.clone();
        let shared = shared.clone();
        async move {
            if at >= end {
                return Ok(None);
            }
            match handle.read(at, STEP.min(end - at)).await {
                Ok(data) if !data.is_empty() => {
                    let next = at + data.len() as u64;
                    Ok(Some((data, next)))
                }
                Ok(_) => Err(std::io::Error::other(format!(
                    "{}: the object ended at {at} of {len} bytes",
                    handle.object().sid()
                ))),
                Err(e) => {
                    shared
                        .failures
                        .lock()
                        .expect("failures lock")
                        .push(e.to_string());
                    Err(std::io::Error::other(e.to_string()))
                }
            }
        }
    });
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
