//! Contract check: the Twilio client against Twilio's own OpenAPI spec of the Video API,
//! served by the Prism mock server (`@stoplight/prism-cli`) on 127.0.0.1.
//!
//! Prism validates every request against the spec (path SID patterns, query enums and
//! bounds such as `PageSize <= 100`, Basic auth) and answers with the spec's examples, so
//! this checks both directions: what the client sends is allowed, and what the spec says
//! Twilio answers decodes into the client's types with the same values. Expected values
//! are read from the spec here, never written down.
//!
//! Two Prism instances run side by side:
//! - `plain` serves the spec file untouched. Lists answer with their first example (an
//!   empty page); single resources and settings with their only example.
//! - `results` serves a copy in which each list endpoint keeps only its example with the
//!   most items, so the listings decode real items (no `Prefer` header, which the client
//!   does not send; no `--dynamic`). Its list calls also use the filters the client offers,
//!   with the values of the spec's own parameter examples, for Prism to validate.
//!
//! Prism comes from `$PRISM`, else `.ci/node/node_modules/.bin/prism` (which `.ci/run`
//! installs), else `prism` on PATH. Without it (or the spec) the test is skipped, except
//! with `CI=true`, where it fails.

mod common;

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
use twilio_media_fs::twilio::{
    ClientConfig, CompositionFilter, Credentials, MediaFilter, MediaKind, MediaRef,
    RecordingFilter, RoomFilter, TwilioClient,
};
use zeroize::Zeroizing;

const SPEC_FILE: &str = "twilio_video_v1.json";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

const RECORDINGS: &str = "/v1/Recordings";
const RECORDING: &str = "/v1/Recordings/{Sid}";
const COMPOSITIONS: &str = "/v1/Compositions";
const COMPOSITION: &str = "/v1/Compositions/{Sid}";
const ROOMS: &str = "/v1/Rooms";
const ROOM: &str = "/v1/Rooms/{Sid}";
const ROOM_RECORDINGS: &str = "/v1/Rooms/{RoomSid}/Recordings";
const RECORDING_SETTINGS: &str = "/v1/RecordingSettings/Default";
const COMPOSITION_SETTINGS: &str = "/v1/CompositionSettings/Default";

/// The list endpoints and the key of their item array.
const LISTS: [(&str, &str); 4] = [
    (RECORDINGS, "recordings"),
    (COMPOSITIONS, "compositions"),
    (ROOMS, "rooms"),
    (ROOM_RECORDINGS, "recordings"),
];

/// Fields the filesystem relies on: the spec's examples must have them (else comparing
/// with the examples would prove little about them).
const RECORDING_FIELDS: &[&str] = &[
    "sid",
    "status",
    "container_format",
    "codec",
    "type",
    "size",
    "duration",
    "date_created",
    "grouping_sids",
];
const COMPOSITION_FIELDS: &[&str] = &[
    "sid",
    "status",
    "format",
    "size",
    "duration",
    "date_created",
    "room_sid",
];
const ROOM_FIELDS: &[&str] = &["sid", "status", "date_created"];
const SETTINGS_FIELDS: &[&str] = &["encryption_enabled", "encryption_key_sid"];

// ---- finding things ----------------------------------------------------------------

fn crate_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/twilio-oai/` beside the checkout (as CI lays it), else `/work/shared/…`.
fn spec_path() -> Option<PathBuf> {
    [
        crate_root().join("../shared/twilio-oai").join(SPEC_FILE),
        Path::new("/work/shared/twilio-oai").join(SPEC_FILE),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// `$PRISM`, else the copy `.ci/run` installs, else `prism` on PATH.
fn prism_binary() -> Option<PathBuf> {
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

/// A missing prerequisite: fails in CI, else says SKIPPED.
fn unavailable(what: &str) {
    if common::in_ci() {
        panic!("{what} (CI=true): .ci/run installs Prism, and CI lays shared/ beside the checkout");
    }
    eprintln!("SKIPPED: {what}");
}

// ---- Prism -------------------------------------------------------------------------

/// A running Prism; killed (its whole process group) on drop, panics included.
struct Prism {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Prism {
    /// Starts `prism mock` on a free 127.0.0.1 port and waits until it listens. Retries
    /// on another port if it exits first (someone took the port in between).
    fn start(bin: &Path, spec: &Path, log: PathBuf) -> Prism {
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

    fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    fn log_tail(&self) -> String {
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

// ---- the spec ----------------------------------------------------------------------

/// `paths[path].get.responses.200.content.application/json.examples`.
fn examples<'a>(spec: &'a Value, path: &str) -> &'a serde_json::Map<String, Value> {
    spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["examples"]
        .as_object()
        .unwrap_or_else(|| panic!("the spec has no 200 examples for GET {path}"))
}

/// The only example of a single-resource endpoint (`fetch`).
fn fetch_example(spec: &Value, path: &str) -> Value {
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
fn richest_list_example(spec: &Value, path: &str, key: &str) -> (String, Vec<Value>) {
    examples(spec, path)
        .iter()
        .map(|(name, e)| (name.clone(), list_items(&e["value"], path, key)))
        .max_by_key(|(_, items)| items.len())
        .unwrap_or_else(|| panic!("GET {path}: no example"))
}

fn list_items(page: &Value, path: &str, key: &str) -> Vec<Value> {
    page[key]
        .as_array()
        .unwrap_or_else(|| panic!("GET {path}: an example has no \"{key}\" array"))
        .clone()
}

/// A copy of the spec in which each list endpoint keeps only its richest example.
fn results_spec(spec: &Value) -> Value {
    let mut out = spec.clone();
    for (path, key) in LISTS {
        let (name, _) = richest_list_example(spec, path, key);
        let ex = out["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
            ["examples"]
            .as_object_mut()
            .expect("examples");
        ex.retain(|n, _| *n == name);
    }
    out
}

/// The value of query parameter `name` in the spec's example `example` of GET `path`
/// (the first element when the parameter is an array).
fn param_example(spec: &Value, path: &str, example: &str, name: &str) -> Option<String> {
    let params = spec["paths"][path]["get"]["parameters"].as_array()?;
    let param = params.iter().find(|p| p["name"] == name)?;
    let value = &param["examples"][example]["value"];
    let value = value.as_array().and_then(|a| a.first()).unwrap_or(value);
    value.as_str().map(str::to_string)
}

/// Every field of `decoded` equals the example's (a field the example lacks must be
/// `null`); fields the client does not model are not looked at.
fn compare(what: &str, decoded: &Value, example: &Value) -> Result<(), String> {
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

fn to_json(v: &impl Serialize) -> Value {
    serde_json::to_value(v).expect("serialize")
}

/// `decoded` matches `example`, which has every one of `fields` (not null).
fn assert_decoded(what: &str, decoded: &impl Serialize, example: &Value, fields: &[&str]) {
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
fn assert_items<T: Serialize>(what: &str, decoded: &[T], items: &[Value], fields: &[&str]) {
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
fn assert_items_of_some_example<T: Serialize>(
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

fn client(url: &str, account_sid: &str) -> TwilioClient {
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

#[tokio::test]
async fn client_matches_twilio_openapi_spec() {
    let started = Instant::now();
    let Some(spec_file) = spec_path() else {
        unavailable(&format!(
            "the Twilio spec {SPEC_FILE} is in neither ../shared/twilio-oai/ nor \
             /work/shared/twilio-oai/"
        ));
        return;
    };
    let Some(bin) = prism_binary() else {
        unavailable(
            "Prism not found ($PRISM, .ci/node/node_modules/.bin/prism, PATH): \
             npm install --prefix .ci/node @stoplight/prism-cli@5.14",
        );
        return;
    };
    let spec: Value =
        serde_json::from_slice(&std::fs::read(&spec_file).expect("read the spec")).expect("JSON");

    let dir = common::tempdir();
    let derived = dir.path().join("twilio_video_v1.results.json");
    std::fs::write(&derived, serde_json::to_vec(&results_spec(&spec)).unwrap()).unwrap();
    // Both start at once (Prism takes a second or two to load the spec).
    let (plain, results) = std::thread::scope(|s| {
        let a = s.spawn(|| Prism::start(&bin, &spec_file, dir.path().join("plain.log")));
        let b = s.spawn(|| Prism::start(&bin, &derived, dir.path().join("results.log")));
        (a.join(), b.join())
    });
    let (plain, results) = match (plain, results) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => std::panic::resume_unwind(e),
    };
    eprintln!("Prism up in {:.1} s", started.elapsed().as_secs_f64());

    let recording = fetch_example(&spec, RECORDING);
    let composition = fetch_example(&spec, COMPOSITION);
    let room = fetch_example(&spec, ROOM);
    let str_of = |v: &Value, f: &str| -> String {
        v[f].as_str()
            .unwrap_or_else(|| panic!("example without {f}"))
            .to_string()
    };
    let account_sid = str_of(&recording, "account_sid");
    let room_sid = str_of(&room, "sid");

    // ---- the spec as published: single resources, settings, default (empty) lists ----
    let c = client(&plain.url, &account_sid);

    let r = c
        .recording(&str_of(&recording, "sid"))
        .await
        .expect("fetch Recording");
    assert_decoded("Recording", &r, &recording, RECORDING_FIELDS);
    assert!(r.created().is_some(), "date_created {:?}", r.date_created);
    assert_eq!(
        r.room(),
        recording["grouping_sids"]["room_sid"].as_str(),
        "Recording.room()"
    );
    assert_eq!(
        r.extension(),
        recording["container_format"]
            .as_str()
            .map(str::to_ascii_lowercase)
    );

    let cj = c
        .composition(&str_of(&composition, "sid"))
        .await
        .expect("fetch Composition");
    assert_decoded("Composition", &cj, &composition, COMPOSITION_FIELDS);
    assert!(cj.created().is_some(), "date_created {:?}", cj.date_created);
    assert_eq!(
        cj.completed().is_some(),
        composition["date_completed"].is_string()
    );
    assert_eq!(
        cj.extension(),
        composition["format"].as_str().map(str::to_ascii_lowercase)
    );

    let rm = c.room(&room_sid).await.expect("fetch Room");
    assert_decoded("Room", &rm, &room, ROOM_FIELDS);
    assert!(rm.created().is_some(), "date_created {:?}", rm.date_created);

    let settings = c.recording_settings().await.expect("RecordingSettings");
    let expected = fetch_example(&spec, RECORDING_SETTINGS);
    assert_decoded("RecordingSettings", &settings, &expected, SETTINGS_FIELDS);
    let settings = c.composition_settings().await.expect("CompositionSettings");
    let expected = fetch_example(&spec, COMPOSITION_SETTINGS);
    assert_decoded("CompositionSettings", &settings, &expected, SETTINGS_FIELDS);

    let list = c
        .recordings(&RecordingFilter::default())
        .await
        .expect("list Recordings");
    assert_items_of_some_example(&spec, "Recordings", RECORDINGS, "recordings", &list);
    let list = c
        .compositions(&CompositionFilter::default())
        .await
        .expect("list Compositions");
    assert_items_of_some_example(&spec, "Compositions", COMPOSITIONS, "compositions", &list);
    // The path the filesystem takes, one per kind, reads what the typed calls read.
    for (kind, path, example, fields) in [
        (
            MediaKind::Recording,
            RECORDINGS,
            &recording,
            RECORDING_FIELDS,
        ),
        (
            MediaKind::Composition,
            COMPOSITIONS,
            &composition,
            COMPOSITION_FIELDS,
        ),
    ] {
        let list = c
            .media(kind, &MediaFilter::default())
            .await
            .expect("list media");
        assert_items_of_some_example(&spec, kind.collection(), path, kind.plural(), &list);
        let media = MediaRef::new(kind, str_of(example, "sid"));
        let m = c.resource(&media).await.expect("fetch media");
        assert_eq!(m.kind(), kind);
        assert_decoded(kind.noun(), &m, example, fields);
    }
    let list = c.rooms(&RoomFilter::default()).await.expect("list Rooms");
    assert_items_of_some_example(&spec, "Rooms", ROOMS, "rooms", &list);
    let list = c
        .room_recordings(&room_sid)
        .await
        .expect("list a Room's Recordings");
    assert_items_of_some_example(
        &spec,
        "Room Recordings",
        ROOM_RECORDINGS,
        "recordings",
        &list,
    );

    // ---- lists with items, through the client's filters ----
    let c = client(&results.url, &account_sid);

    let (name, items) = richest_list_example(&spec, RECORDINGS, "recordings");
    assert!(
        !items.is_empty(),
        "the spec has no Recordings list example with items"
    );
    let p = |param: &str| param_example(&spec, RECORDINGS, &name, param);
    let filter = RecordingFilter {
        status: p("Status"),
        grouping_sid: p("GroupingSid"),
        source_sid: p("SourceSid"),
        media_type: p("MediaType"),
        date_created_after: p("DateCreatedAfter"),
        date_created_before: p("DateCreatedBefore"),
    };
    let list = c.recordings(&filter).await.expect("list Recordings");
    assert_items("Recordings", &list, &items, RECORDING_FIELDS);
    for (r, e) in list.iter().zip(&items) {
        assert_eq!(r.room(), e["grouping_sids"]["room_sid"].as_str());
        assert!(r.created().is_some(), "date_created {:?}", r.date_created);
    }

    let (name, items) = richest_list_example(&spec, COMPOSITIONS, "compositions");
    assert!(
        !items.is_empty(),
        "the spec has no Compositions list example with items"
    );
    let p = |param: &str| param_example(&spec, COMPOSITIONS, &name, param);
    let filter = CompositionFilter {
        status: p("Status"),
        room_sid: p("RoomSid"),
        date_created_after: p("DateCreatedAfter"),
        date_created_before: p("DateCreatedBefore"),
    };
    let list = c.compositions(&filter).await.expect("list Compositions");
    assert_items("Compositions", &list, &items, COMPOSITION_FIELDS);

    let (name, items) = richest_list_example(&spec, ROOMS, "rooms");
    assert!(
        !items.is_empty(),
        "the spec has no Rooms list example with items"
    );
    let p = |param: &str| param_example(&spec, ROOMS, &name, param);
    let filter = RoomFilter {
        status: p("Status"),
        unique_name: p("UniqueName"),
        date_created_after: p("DateCreatedAfter"),
        date_created_before: p("DateCreatedBefore"),
    };
    let list = c.rooms(&filter).await.expect("list Rooms");
    assert_items("Rooms", &list, &items, ROOM_FIELDS);

    let (_, items) = richest_list_example(&spec, ROOM_RECORDINGS, "recordings");
    assert!(
        !items.is_empty(),
        "the spec has no Room Recordings list example with items"
    );
    let list = c
        .room_recordings(&room_sid)
        .await
        .expect("list a Room's Recordings");
    assert_items("Room Recordings", &list, &items, RECORDING_FIELDS);
    for (r, e) in list.iter().zip(&items) {
        assert_eq!(r.room(), e["grouping_sids"]["room_sid"].as_str());
    }

    drop((plain, results));
    eprintln!(
        "contract check done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
