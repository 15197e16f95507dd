//! Least privilege (issue 12): a restricted API key that may read recordings,
//! compositions and rooms only. The emulator's `restricted_key` answers 403 (Twilio code
//! 20403) for the Recording/Composition settings and the Accounts API's public keys;
//! `mount`, `ls` and `get` work with such a key and never ask for those, and `doctor`
//! warns about what it may not read without failing for it.
//!
//! And the words of a command whose first request fails: credentials Twilio rejects
//! (401), a key that may not read recordings (403, from a mock that refuses them), an
//! API nobody listens on. Real mounts of the binary (root and /dev/fuse), always taken
//! down by [`Mount`]'s `Drop`.

mod common;

use std::process::{Command, Output};

use common::mount::*;
use common::*;
use twilio_media_fs::emulator::{EmulatorConfig, EmulatorCredentials, RunningEmulator, spawn};

/// The emulator encrypting for `keys().pem[0]`, its credentials a restricted key.
async fn restricted() -> RunningEmulator {
    spawn(EmulatorConfig {
        restricted_key: true,
        ..emulator_config()
    })
    .await
    .unwrap()
}

/// `cmd` with the emulator's API key and secret (`SK…`), which win over the account SID
/// and auth token that [`cli_at`] sets.
fn with_api_key(mut cmd: Command) -> Command {
    let c = EmulatorCredentials::default();
    cmd.env("TWILIO_API_KEY", &c.api_key)
        .env("TWILIO_API_SECRET", &c.api_secret);
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The 403s the API answered: what the commands asked for and may not read.
fn forbidden(emu: &RunningEmulator) -> u64 {
    emu.emulator.stats().forbidden
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_refuses_a_restricted_key_the_settings_and_public_keys() {
    let emu = restricted().await;
    let c = EmulatorCredentials::default();
    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("{}{path}", emu.url))
            .basic_auth(&c.api_key, Some(&c.api_secret))
            .send()
    };
    for path in [
        "/v1/Recordings",
        "/v1/Compositions",
        "/v1/Rooms?Status=completed",
    ] {
        let resp = get(path).await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    let public_key = "/v1/Credentials/PublicKeys/CR00000000000000000000000000000000";
    for path in [
        "/v1/RecordingSettings/Default",
        "/v1/CompositionSettings/Default",
        "/v1/Credentials/PublicKeys",
        public_key,
    ] {
        let resp = get(path).await.unwrap();
        assert_eq!(resp.status(), 403, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "code": 20403,
                "message": "Forbidden",
                "more_info": "https://www.twilio.com/docs/errors/20403",
                "status": 403,
            }),
            "{path}"
        );
    }
    assert_eq!(forbidden(&emu), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_key_mounts_and_reads_byte_identical() {
    let emu = restricted().await;
    let m = Mount::new();
    let mut cmd = with_api_key(m.mount_cmd(&emu, &[&keys().pem[0]]));
    cmd.arg("--foreground");
    let m = m.spawn(cmd).await;
    for o in emu
        .emulator
        .objects()
        .into_iter()
        .filter(|o| o.status == "completed" && o.encrypted)
        .take(2)
    {
        let file = m.file(&o);
        let got = blocking(move || std::fs::read(file)).await.unwrap();
        let want = emu.emulator.plaintext(&o.sid).unwrap();
        assert_eq!(sha256(&got), sha256(&want), "{}", o.sid);
    }
    assert_eq!(forbidden(&emu), 0, "the mount asked for more than it reads");
    assert!(!m.log().contains("ERROR"), "{}", m.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_and_get_work_with_a_restricted_key() {
    let emu = restricted().await;
    for what in ["recordings", "compositions", "rooms"] {
        let mut cmd = with_api_key(cli(&emu));
        cmd.args(["ls", what]);
        let listing = ok(cmd).await;
        assert!(listing.lines().count() > 1, "ls {what}: {listing}");
    }
    let dir = tempdir();
    let objects: Vec<_> = emu
        .emulator
        .objects()
        .into_iter()
        .filter(|o| o.status == "completed")
        .collect();
    let mut cmd = with_api_key(cli(&emu));
    cmd.arg("get")
        .args(objects.iter().map(|o| &o.sid))
        .arg("-k")
        .arg(&keys().pem[0])
        .arg("-o")
        .arg(dir.path());
    ok(cmd).await;
    for o in &objects {
        let file = dir.path().join(format!("{}.{}", o.sid, o.extension));
        let want = emu.emulator.plaintext(&o.sid).unwrap();
        assert_eq!(sha256_file(&file), sha256(&want), "{}", o.sid);
    }
    assert_eq!(
        forbidden(&emu),
        0,
        "ls or get asked for more than they read"
    );
}

/// `doctor -k KEY` with the emulator's API key, against `api`; its output.
async fn doctor(api: &str, extra: &[&str]) -> Output {
    let mut cmd = with_api_key(cli_at(api));
    cmd.arg("doctor").arg("-k").arg(&keys().pem[0]).args(extra);
    output(cmd).await
}

/// The lines of doctor's report, as (status, name, detail).
fn lines(out: &Output) -> Vec<(String, String, String)> {
    text(&out.stdout)
        .lines()
        .map(|l| {
            let (status, rest) = l.split_once(' ').expect("STATUS name: detail");
            let (name, detail) = rest.trim_start().split_once(": ").expect("name: detail");
            (status.to_owned(), name.to_owned(), detail.to_owned())
        })
        .collect()
}

/// The line whose name starts with `name`, as (status, detail).
fn line(out: &Output, name: &str) -> (String, String) {
    lines(out)
        .into_iter()
        .find(|(_, n, _)| n.starts_with(name))
        .map(|(status, _, detail)| (status, detail))
        .unwrap_or_else(|| panic!("no {name:?} line in:\n{}", text(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_warns_about_the_settings_a_restricted_key_may_not_read() {
    let emu = restricted().await;
    let out = doctor(&emu.url, &[]).await;
    let stdout = text(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "warnings are not failures: {stdout}{}",
        text(&out.stderr)
    );
    let c = EmulatorCredentials::default();
    let (status, detail) = line(&out, "credentials");
    assert_eq!(status, "OK", "{detail}");
    assert!(detail.contains(&c.api_key), "{detail}");
    for name in ["recording settings", "composition settings"] {
        let (status, detail) = line(&out, name);
        assert_eq!(status, "WARN", "{name}: {detail}");
        assert!(
            detail.contains(&format!("this API key ({}) may not read them", c.api_key)),
            "{detail}"
        );
        assert!(detail.contains("HTTP 403 (code 20403)"), "{detail}");
        assert!(detail.contains("; fix: "), "{detail}");
    }
    let (status, detail) = line(&out, "public key");
    assert_eq!(status, "SKIP", "nothing names a key to look up: {detail}");
    assert!(detail.contains("not checked"), "{detail}");
    for name in [
        "key pair (recordings)",
        "key pair (compositions)",
        "decryption",
    ] {
        assert_eq!(line(&out, name).0, "OK", "{name}");
    }
    assert!(!stdout.contains(&c.api_secret), "no secret in the report");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_warns_about_a_public_key_it_may_not_read() {
    // The settings from an emulator that shows them; the public key from one that
    // refuses it (`--accounts-url`).
    let emu = spawn(emulator_config()).await.unwrap();
    let accounts = restricted().await;
    let out = doctor(&emu.url, &["--accounts-url", &accounts.url]).await;
    let stdout = text(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(line(&out, "recording settings").0, "OK");
    let (status, detail) = line(&out, "public key CR");
    assert_eq!(status, "WARN", "{detail}");
    assert!(
        detail.contains("may not read the account's public keys"),
        "{detail}"
    );
    assert!(detail.contains("HTTP 403 (code 20403)"), "{detail}");
    assert_eq!(forbidden(&accounts), 1);
}

/// `mount` in the background of the API at `api` with `cmd`'s environment, which must
/// fail: its stderr. Nothing is left mounted or running.
async fn failed_mount(m: &Mount, cmd: Command) -> String {
    let out = output(cmd).await;
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "mounted: {stderr}");
    assert!(!mounted(&m.path), "{stderr}");
    assert!(serving(&m.path).is_empty(), "{stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_fails_the_mount_saying_the_credentials_were_rejected() {
    let emu = restricted().await;
    let m = Mount::new();
    let mut cmd = with_api_key(m.mount_cmd(&emu, &[&keys().pem[0]]));
    cmd.env("TWILIO_API_SECRET", "not-the-secret");
    let stderr = failed_mount(&m, cmd).await;
    assert!(
        stderr.contains("Twilio rejected the credentials (20003)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&EmulatorCredentials::default().api_key),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-secret"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_nobody_listens_on_cannot_be_reached() {
    let api = "http://127.0.0.1:1";
    let m = Mount::new();
    let mut cmd = m.command(api, &[&keys().pem[0]]);
    cmd.args(["--retry-budget", "1s"]);
    let stderr = failed_mount(&m, cmd).await;
    assert!(
        stderr.contains(&format!("cannot reach the Twilio API at {api}: ")),
        "{stderr}"
    );
    assert!(stderr.contains("Connection refused"), "{stderr}");
}

/// A Twilio API that refuses every request with 403, code 20403: a key without read
/// access to recordings.
async fn refusing_api() -> (String, tokio::task::JoinHandle<()>) {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(|| async {
        let body = serde_json::json!({
            "code": 20403,
            "message": "Forbidden",
            "more_info": "https://www.twilio.com/docs/errors/20403",
            "status": 403,
        });
        (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_may_not_read_recordings_is_told_so() {
    let (api, server) = refusing_api().await;
    let key = EmulatorCredentials::default().api_key;
    let says = format!("this API key ({key}) may not read recordings: ");
    let m = Mount::new();
    let stderr = failed_mount(&m, with_api_key(m.command(&api, &[&keys().pem[0]]))).await;
    assert!(stderr.contains(&says), "{stderr}");
    assert!(stderr.contains("HTTP 403 (code 20403)"), "{stderr}");
    assert!(
        stderr.contains("read access to Video recordings, compositions and rooms"),
        "{stderr}"
    );

    let mut ls = with_api_key(cli_at(&api));
    ls.arg("ls");
    let out = output(ls).await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(&says), "{}", text(&out.stderr));

    let out = doctor(&api, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let (status, detail) = line(&out, "credentials");
    assert_eq!(status, "FAIL", "{detail}");
    assert!(detail.contains(&says), "{detail}");
    server.abort();
}
