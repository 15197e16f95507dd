//! Headless Chromium driven over the DevTools protocol, for integration tests.
//!
//! Dependencies: `serde_json`, `base64`, and `tungstenite` (sync, no TLS):
//! `tungstenite = { version = "0.30", default-features = false, features = ["handshake"] }`
//!
//! The binary is `$CHROMIUM` if set, else `chromium` from `PATH`. Every wait has a deadline,
//! so a misbehaving browser fails the test instead of hanging it. Drop closes the browser
//! (DevTools `Browser.close`, then SIGKILL) and removes its temporary profile.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// Start-up (spawn to connected page) and default per-command deadline.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
pub const VIEWPORT: (u32, u32) = (1200, 800);

/// Flags after the binary; `--user-data-dir` and the initial URL are appended.
pub const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox", // tests run as root in CI
    "--disable-gpu",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
    "--autoplay-policy=no-user-gesture-required",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--password-store=basic",
    "--use-mock-keychain",
    "--window-size=1200,800",
];

fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

pub struct Chromium {
    ws: WebSocket<TcpStream>,
    /// Owns the process and the temporary directory (`profile/` = user-data-dir,
    /// `chromium.log` = stderr); dropped after `Chromium::drop` has asked the browser to close.
    guard: Guard,
    next_id: u64,
    /// Events read while waiting for a command's response; consumed by `wait_event`.
    events: VecDeque<Value>,
}

impl Chromium {
    pub fn start() -> io::Result<Chromium> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "chromium-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        let profile = dir.join("profile");
        fs::create_dir_all(&profile)?;
        let log = fs::File::create(dir.join("chromium.log"))?;
        let bin = std::env::var_os("CHROMIUM").unwrap_or_else(|| "chromium".into());
        let child = Command::new(&bin)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(io::Error::new(e.kind(), format!("spawning {bin:?}: {e}")));
            }
        };
        // From here on, Drop of the guard kills the child and removes the directory.
        let mut guard = Guard {
            child: Some(child),
            dir: dir.clone(),
        };
        match connect(guard.child.as_mut().unwrap(), &profile) {
            Ok(ws) => {
                let mut c = Chromium {
                    ws,
                    guard,
                    next_id: 0,
                    events: VecDeque::new(),
                };
                c.call("Page.enable", json!({}))?;
                c.set_viewport(VIEWPORT.0, VIEWPORT.1)?;
                Ok(c)
            }
            Err(e) => {
                let log = fs::read_to_string(dir.join("chromium.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                Err(err(format!(
                    "starting chromium: {e}\n--- chromium stderr ---\n{}",
                    tail.join("\n")
                )))
            }
        }
    }

    /// The browser's process id.
    pub fn pid(&self) -> u32 {
        self.guard.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a DevTools command to the page and returns its `result`.
    pub fn call(&mut self, method: &str, params: Value) -> io::Result<Value> {
        self.call_timeout(method, params, COMMAND_TIMEOUT)
    }

    pub fn call_timeout(
        &mut self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> io::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws
            .send(Message::text(msg))
            .map_err(|e| err(format!("{method}: send: {e}")))?;
        let deadline = Instant::now() + timeout;
        loop {
            let v = self
                .read_message(deadline)
                .map_err(|e| err(format!("{method}: {e}")))?;
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(e) = v.get("error") {
                    return Err(err(format!("{method}: {e}")));
                }
                return Ok(v.get("result").cloned().unwrap_or(Value::Null));
            }
            if v.get("method").is_some() {
                if self.events.len() >= 10_000 {
                    self.events.pop_front();
                }
                self.events.push_back(v);
            }
            // Anything else is a late response to a command that timed out: dropped.
        }
    }

    /// Waits for the event `method` (e.g. "Page.loadEventFired"), including ones already
    /// received; returns its `params`.
    pub fn wait_event(&mut self, method: &str, timeout: Duration) -> io::Result<Value> {
        if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
            return Ok(self.events.remove(i).unwrap()["params"].take());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let mut v = self
                .read_message(deadline)
                .map_err(|e| err(format!("waiting for {method}: {e}")))?;
            if v["method"] == method {
                return Ok(v["params"].take());
            }
            if v.get("method").is_some() {
                self.events.push_back(v);
            }
        }
    }

    fn read_message(&mut self, deadline: Instant) -> io::Result<Value> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
            }
            self.ws
                .get_mut()
                .set_read_timeout(Some(left.min(Duration::from_secs(1))))?;
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    return serde_json::from_str(t.as_str())
                        .map_err(|e| err(format!("bad JSON: {e}")));
                }
                Ok(Message::Close(_)) => return Err(err("DevTools connection closed")),
                Ok(_) => {} // ping/pong/binary
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    // Partial frames stay buffered in tungstenite; check the browser is alive.
                    if let Some(Ok(Some(st))) = self.guard.child.as_mut().map(Child::try_wait) {
                        return Err(err(format!("chromium exited: {st}")));
                    }
                }
                Err(e) => return Err(err(format!("DevTools read: {e}"))),
            }
        }
    }

    pub fn set_viewport(&mut self, width: u32, height: u32) -> io::Result<()> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )?;
        Ok(())
    }

    /// Navigates and waits for the load event (30 s).
    pub fn navigate(&mut self, url: &str) -> io::Result<()> {
        self.events.retain(|e| e["method"] != "Page.loadEventFired");
        let r = self.call("Page.navigate", json!({"url": url}))?;
        if let Some(e) = r.get("errorText").and_then(Value::as_str) {
            return Err(err(format!("navigate {url}: {e}")));
        }
        if r.get("loaderId").is_none() {
            return Ok(()); // same-document navigation (fragment): no load event
        }
        self.wait_event("Page.loadEventFired", COMMAND_TIMEOUT)
            .map_err(|e| err(format!("navigate {url}: {e}")))?;
        Ok(())
    }

    /// Evaluates `js` in the page, awaiting a returned promise; returns the value as JSON
    /// (`undefined` → null; NaN/Infinity/-0/bigint → their string). Exceptions and promise
    /// rejections become `Err` with the exception text.
    pub fn try_eval(&mut self, js: &str) -> io::Result<Value> {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": js, "returnByValue": true, "awaitPromise": true, "userGesture": true}),
        )?;
        if let Some(ex) = r.get("exceptionDetails") {
            let text = ex["exception"]["description"]
                .as_str()
                .or(ex["exception"]["value"].as_str())
                .or(ex["text"].as_str())
                .unwrap_or("exception");
            return Err(err(format!("JS exception in `{js}`: {text}")));
        }
        let res = &r["result"];
        if let Some(u) = res.get("unserializableValue") {
            return Ok(u.clone());
        }
        Ok(res.get("value").cloned().unwrap_or(Value::Null))
    }

    /// `try_eval` that panics on error.
    #[track_caller]
    pub fn eval(&mut self, js: &str) -> Value {
        match self.try_eval(js) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    /// Evaluates `js` every 100 ms until it returns something truthy; returns that value.
    pub fn wait_for(&mut self, js: &str, timeout: Duration) -> io::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.try_eval(js)?;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("`{js}` still falsy after {timeout:?} (last: {v})"),
                ));
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG of the viewport.
    pub fn screenshot(&mut self, path: &Path) -> io::Result<()> {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}))?;
        let data = r["data"]
            .as_str()
            .ok_or_else(|| err("captureScreenshot: no data"))?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| err(format!("captureScreenshot: base64: {e}")))?;
        fs::write(path, png)
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // Graceful first (lets the browser stop its helper processes); the guard then
        // SIGKILLs whatever is left and removes the directory.
        self.next_id += 1;
        let msg = json!({"id": self.next_id, "method": "Browser.close"}).to_string();
        let _ = self.ws.send(Message::text(msg));
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Some(Ok(None)) = self.guard.child.as_mut().map(Child::try_wait) {
            if Instant::now() >= deadline {
                break;
            }
            sleep(Duration::from_millis(50));
        }
    }
}

/// Kills the browser and removes its directory.
struct Guard {
    child: Option<Child>,
    dir: PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Helpers may still be writing for a moment after the browser dies.
        for _ in 0..20 {
            if fs::remove_dir_all(&self.dir).is_ok() || !self.dir.exists() {
                break;
            }
            sleep(Duration::from_millis(100));
        }
    }
}

/// Waits for DevToolsActivePort, finds the page target and opens its websocket.
fn connect(child: &mut Child, profile: &Path) -> io::Result<WebSocket<TcpStream>> {
    let deadline = Instant::now() + START_TIMEOUT;
    let port_file = profile.join("DevToolsActivePort");
    let port: u16 = loop {
        if let Some(st) = child.try_wait()? {
            return Err(err(format!("chromium exited at start: {st}")));
        }
        // The file is written as "PORT\n/devtools/browser/ID"; wait for both lines.
        if let Ok(s) = fs::read_to_string(&port_file) {
            let mut lines = s.lines();
            if let (Some(p), Some(_)) = (lines.next(), lines.next())
                && let Ok(p) = p.trim().parse()
            {
                break p;
            }
        }
        if Instant::now() >= deadline {
            return Err(err(format!(
                "no {} after {START_TIMEOUT:?}",
                port_file.display()
            )));
        }
        sleep(Duration::from_millis(50));
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let ws_url = loop {
        let list = http_get_json(addr, "/json/list")?;
        let page = list.as_array().and_then(|a| {
            a.iter()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        });
        if let Some(u) = page {
            break u.to_string();
        }
        if Instant::now() >= deadline {
            return Err(err(format!("no page target in /json/list: {list}")));
        }
        sleep(Duration::from_millis(100));
    };
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    stream.set_nodelay(true)?;
    let (ws, _) = tungstenite::client(ws_url.as_str(), stream)
        .map_err(|e| err(format!("websocket handshake with {ws_url}: {e}")))?;
    Ok(ws)
}

/// Minimal HTTP/1.1 GET returning the JSON body (DevTools' own HTTP endpoint only).
fn http_get_json(addr: SocketAddr, path: &str) -> io::Result<Value> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        // Stop at Content-Length in case the server keeps the connection open.
        if let Some(h) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..h]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if let Some(len) = len
                && buf.len() >= h + 4 + len
            {
                return parse_body(&buf[h + 4..h + 4 + len], path);
            }
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            let h = buf
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .ok_or_else(|| err(format!("GET {path}: truncated response")))?;
            return parse_body(&buf[h + 4..], path);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn parse_body(body: &[u8], path: &str) -> io::Result<Value> {
    serde_json::from_slice(body).map_err(|e| err(format!("GET {path}: bad JSON: {e}")))
}
