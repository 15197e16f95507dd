//! Prism (`@stoplight/prism-cli`) serving one of Twilio's OpenAPI specs, for the contract
//! tests (`tests/contract.rs` for Video, `tests/contract_voice.rs` for Voice): finding the
//! spec and Prism, running it (killed on drop), reading the spec's examples, comparing
//! what the client decoded with them, and a client that fails fast against it.
//!
//! It must not write expected values down: they are read from the spec.

use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use twilio_media_fs::retry::RetryPolicy;
use twilio_media_fs::twilio::{ClientConfig, Credentials, TwilioClient};
use zeroize::Zeroizing;

/// How long Prism may take to load a spec.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

// ---- finding things ----------------------------------------------------------------

pub fn crate_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Twilio's spec `file` in `../shared/twilio-oai/` beside the checkout (as CI lays it),
/// else in `/work/shared/…`.
pub fn spec_path(file: &str) -> Option<PathBuf> {
    [
        crate_root().join("../shared/twilio-oai").join(file),
        Path::new("/work/shared/twilio-oai").join(file),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// `$PRISM`, else the copy `.ci/run` installs, else `prism` on PATH.
pub fn prism_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PRISM").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let local = crate_root().join(".ci/node/node_modules/.bin/prism");
    if local.is_file() {
        return Some(local);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("prism"))
        .find(|p| p.is_file())
}

/// The spec `file` (its path and its JSON) and Prism, or `None` after saying which is
/// missing ([`unavailable`]: the test then returns, or fails in CI).
pub fn prerequisites(file: &str) -> Option<(PathBuf, PathBuf, Value)> {
    let Some(spec_file) = spec_path(file) else {
        unavailable(&format!(
            "the Twilio spec {file} is in neither ../shared/twilio-oai/ nor \
             /work/shared/twilio-oai/"
        ));
        return None;
    };
    let Some(bin) = prism_binary() else {
        unavailable(
            "Prism not found ($PRISM, .ci/node/node_modules/.bin/prism, PATH): \
             npm install --prefix .ci/node @stoplight/prism-cli@5.14",
        );
        return None;
    };
    let spec = serde_json::from_slice(&std::fs::read(&spec_file).expect("read the spec"))
        .expect("the spec is JSON");
    Some((spec_file, bin, spec))
}

/// A missing prerequisite: fails in CI, else says SKIPPED.
pub fn unavailable(what: &str) {
    if super::in_ci() {
        panic!("{what} (CI=true): .ci/run installs Prism, and CI lays shared/ beside the checkout");
    }
    eprintln!("SKIPPED: {what}");
}

// ---- Prism -------------------------------------------------------------------------

/// A running Prism; killed (its whole process group) on drop, panics included.
pub struct Prism {
    child: Child,
    pub url: String,
    log: PathBuf,
}

impl Prism {
    /// Starts `prism mock` on a free 127.0.0.1 port and waits until it listens. Retries
    /// on another port if it exits first (someone took the port in between).
    pub fn start(bin: &Path, spec: &Path, log: PathBuf) -> Prism {
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let out = File::create(&log).expect("prism log");
            let child = Command::new(bin)
                .args(["mock", "-h", "127.0.0.1", "-p", &port.to_string()])
                .arg(spec)
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("prism log"))
                .stderr(out)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let mut prism = Prism {
                child,
                url: format!("http://127.0.0.1:{port}"),
                log: log.clone(),
            };
            match prism.wait_ready(port) {
                Ok(()) => return prism,
                Err(e) => last = e,
            }
        }
        panic!("Prism did not start: {last}");
    }

    fn wait_ready(&mut self, port: u16) -> Result<(), String> {
        let listening = format!("Prism is listening on {}", self.url);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Err(format!("it exited ({status}):\n{}", self.log_tail()));
            }
            if self.log_text().contains(&listening)
                && TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
            {
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                return Err(format!(
                    "not listening after {READY_TIMEOUT:?}:\n{}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    pub fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on the process group this test created for Prism.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- Prism log ({}), last lines:\n{}",
                self.url,
                self.log_tail()
            );
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

// ---- the spec ----------------------------------------------------------------------

/// `paths[path].get.responses.200.content.application/json.examples`.
pub fn examples<'a>(spec: &'a Value, path: &str) -> &'a serde_json::Map<String, Value> {
    spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["examples"]
        .as_object()
        .unwrap_or_else(|| panic!("the spec has no 200 examples for GET {path}"))
}

/// The only example of a single-resource endpoint (`fetch`).
pub fn fetch_example(spec: &Value, path: &str) -> Value {
    let ex = examples(spec, path);
    let value = ex
        .get("fetch")
        .or_else(|| ex.values().next())
        .map(|e| e["value"].clone())
        .unwrap_or_else(|| panic!("GET {path}: no example"));
    assert!(
        value.is_object(),
        "GET {path}: the example is not an object"
    );
    value
}

/// The example of a list endpoint with the most items: `(name, items)`.
pub fn richest_list_example(spec: &Value, path: &str, key: &str) -> (String, Vec<Value>) {
    examples(spec, path)
        .iter()
        .map(|(name, e)| (name.clone(), list_items(&e["value"], path, key)))
        .max_by_key(|(_, items)| items.len())
        .unwrap_or_else(|| panic!("GET {path}: no example"))
}

pub fn list_items(page: &Value, path: &str, key: &str) -> Vec<Value> {
    page[key]
        .as_array()
        .unwrap_or_else(|| panic!("GET {path}: an example has no \"{key}\" array"))
        .clone()
}

/// The value of query parameter `name` in the spec's example `example` of GET `path`
/// (the first element when the parameter is an array).
pub fn param_example(spec: &Value, path: &str, example: &str, name: &str) -> Option<String> {
    let params = spec["paths"][path]["get"]["parameters"].as_array()?;
    let param = params.iter().find(|p| p["name"] == name)?;
    let value = &param["examples"][example]["value"];
    let value = value.as_array().and_then(|a| a.first()).unwrap_or(value);
    value.as_str().map(str::to_string)
}

/// Every field of `decoded` equals the example's (a field the example lacks must be
/// `null`); fields the client does not model are not looked at.
pub fn compare(what: &str, decoded: &Value, example: &Value) -> Result<(), String> {
    match decoded {
        Value::Object(fields) => {
            if !example.is_object() {
                return Err(format!("{what}: decoded {decoded}, the spec has {example}"));
            }
            for (k, v) in fields {
                compare(
                    &format!("{what}.{k}"),
                    v,
                    example.get(k).unwrap_or(&Value::Null),
                )?;
            }
            Ok(())
        }
        _ if decoded == example => Ok(()),
        _ => Err(format!("{what}: decoded {decoded}, the spec has {example}")),
    }
}

pub fn to_json(v: &impl Serialize) -> Value {
    serde_json::to_value(v).expect("serialize")
}

/// `decoded` matches `example`, which has every one of `fields` (not null).
pub fn assert_decoded(what: &str, decoded: &impl Serialize, example: &Value, fields: &[&str]) {
    for f in fields {
        assert!(
            !example[*f].is_null(),
            "{what}: the spec's example has no {f:?}, which this check relies on"
        );
    }
    if let Err(e) = compare(what, &to_json(decoded), example) {
        panic!("{e}");
    }
}

/// The decoded items equal `items`, one by one.
pub fn assert_items<T: Serialize>(what: &str, decoded: &[T], items: &[Value], fields: &[&str]) {
    assert_eq!(
        decoded.len(),
        items.len(),
        "{what}: {} items decoded, the spec's example has {}",
        decoded.len(),
        items.len()
    );
    for (i, (d, e)) in decoded.iter().zip(items).enumerate() {
        assert_decoded(&format!("{what}[{i}]"), d, e, fields);
    }
}

/// The decoded items equal those of one of the endpoint's examples (Prism serves one of
/// them; which one is its business).
pub fn assert_items_of_some_example<T: Serialize>(
    spec: &Value,
    what: &str,
    path: &str,
    key: &str,
    decoded: &[T],
) {
    let decoded: Vec<Value> = decoded.iter().map(to_json).collect();
    let mut why = Vec::new();
    for (name, e) in examples(spec, path) {
        let items = list_items(&e["value"], path, key);
        let verdict = if items.len() == decoded.len() {
            decoded
                .iter()
                .zip(&items)
                .enumerate()
                .try_for_each(|(i, (d, e))| compare(&format!("{what}[{i}]"), d, e))
        } else {
            Err(format!("{} items, not {}", items.len(), decoded.len()))
        };
        match verdict {
            Ok(()) => return,
            Err(e) => why.push(format!("{name}: {e}")),
        }
    }
    panic!(
        "{what}: the listing matches none of the spec's examples:\n{}",
        why.join("\n")
    );
}

// ---- the client --------------------------------------------------------------------

pub fn client(url: &str, account_sid: &str) -> TwilioClient {
    let credentials = Credentials::auth_token(
        account_sid,
        Zeroizing::new("contract-test-auth-token".to_string()),
    );
    TwilioClient::new(ClientConfig {
        api_url: url.to_string(),
        // Prism answers at once or not at all: fail fast, with the first error.
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        request_timeout: Duration::from_secs(20),
        ..ClientConfig::new(credentials)
    })
    .expect("client")
}
