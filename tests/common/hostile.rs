//! Hostile servers for tests: a server in front of the emulator that answers some
//! requests itself (bodies that never end, messages full of escapes, anything a test
//! builds) and forwards the rest; and commands run with a bounded address space, so
//! that an unbounded read fails the test instead of the machine.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use twilio_media_fs::emulator::RunningEmulator;

/// The most address space the program under test may have.
pub const ADDRESS_SPACE: u64 = 1 << 30;

/// What the hostile server answers itself: `Some(response)` for its own URL, a path and
/// a query.
pub type Answer = dyn Fn(&str, &str, &str) -> Option<Response> + Send + Sync;

pub struct Hostile {
    pub url: String,
    pub task: tokio::task::JoinHandle<()>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `answer`'s responses, and forwards everything else to the emulator.
pub async fn hostile(
    emu: &RunningEmulator,
    answer: impl Fn(&str, &str, &str) -> Option<Response> + Send + Sync + 'static,
) -> Hostile {
    use axum::extract::{Request, State};
    type S = Arc<(String, String, reqwest::Client, Box<Answer>)>;
    async fn forward(State(s): State<S>, req: Request) -> Response {
        let (me, upstream, http, answer) = &*s;
        let path = req.uri().path().to_owned();
        if let Some(r) = answer(me, &path, req.uri().query().unwrap_or("")) {
            return r;
        }
        let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let mut up = http.get(format!("{upstream}{pq}"));
        for name in ["authorization", "range"] {
            if let Some(v) = req.headers().get(name) {
                up = up.header(name, v.clone());
            }
        }
        let resp = up.send().await.unwrap();
        let status = resp.status();
        let mut headers = axum::http::HeaderMap::new();
        for name in ["content-type", "location", "retry-after"] {
            if let Some(v) = resp.headers().get(name) {
                headers.insert(name, v.clone());
            }
        }
        (status, headers, resp.bytes().await.unwrap()).into_response()
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state: S = Arc::new((url.clone(), emu.url.clone(), http, Box::new(answer)));
    let app = axum::Router::new().fallback(forward).with_state(state);
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Hostile { url, task }
}

/// A body of `status` that never ends: 64 KiB chunks of spaces, as fast as they go.
pub fn endless(status: u16) -> Response {
    static CHUNK: [u8; 64 << 10] = [b' '; 64 << 10];
    let chunks = futures_util::stream::repeat(Bytes::from_static(&CHUNK))
        .map(Ok::<_, std::convert::Infallible>);
    (
        axum::http::StatusCode::from_u16(status).unwrap(),
        Body::from_stream(chunks),
    )
        .into_response()
}

/// `cmd` with its address space limited to [`ADDRESS_SPACE`].
pub fn limited(mut cmd: Command) -> Command {
    // SAFETY: setrlimit(2) only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: ADDRESS_SPACE,
                rlim_max: ADDRESS_SPACE,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// What a command did: its output, how long it took, and its peak resident memory.
pub struct Ran {
    pub out: Output,
    pub took: Duration,
    /// `ru_maxrss` of the process, from `wait4(2)`: KiB.
    pub peak_kib: u64,
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} in {:.2} s, peak RSS {:.1} MiB",
            self.out.status,
            self.took.as_secs_f64(),
            self.peak_kib as f64 / 1024.0
        )
    }
}

/// Runs `cmd` to its end, and says how long it took and its peak RSS (the figures a
/// hostile mode is judged by).
pub async fn timed(cmd: Command) -> Ran {
    tokio::task::spawn_blocking(move || run_measured(cmd))
        .await
        .unwrap()
}

// Reaped by wait4(2) below, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_measured(mut cmd: Command) -> Ran {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = pipe(Box::new(child.stdout.take().unwrap()));
    let stderr = pipe(Box::new(child.stderr.take().unwrap()));
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    // SAFETY: waits for our own child, whose pid std has not reaped (no wait() on it).
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(
        pid,
        child.id() as i32,
        "{}",
        std::io::Error::last_os_error()
    );
    let out = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    Ran {
        out,
        took: started.elapsed(),
        peak_kib: usage.ru_maxrss as u64,
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A completed recording of the emulator.
pub fn a_recording(emu: &RunningEmulator) -> String {
    emu.emulator
        .objects()
        .into_iter()
        .find(|o| o.status == "completed" && o.sid.starts_with("RT"))
        .unwrap()
        .sid
}

/// The peak resident memory of a running process (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// `out` holds no ESC, BEL or CR, and no line that the server forged (one starting
/// "forged"): what the network said reached the terminal escaped. `what` names the case.
pub fn clean(what: &str, out: &Output) {
    for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let shown = String::from_utf8_lossy(text);
        assert!(
            !text.iter().any(|b| matches!(b, 0x1b | 0x07 | b'\r')),
            "{what}, {name}: {shown:?}"
        );
        assert!(
            !shown.lines().any(|l| l.starts_with("forged")),
            "{what}, {name}: {shown:?}"
        );
    }
}

/// The names of the entries in `dir`.
pub fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}
