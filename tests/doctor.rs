//! `twilio-media-fs doctor` against the emulator: every check OK on a good setup, and
//! each classic mistake caught on its own line with a fix and exit status 1: a private
//! key that is not the pair of the account's public key, wrong credentials, encryption
//! turned off (a warning). What the lines must name (SIDs, key files) comes from the
//! emulator's API, not from constants.

mod common;

use std::path::Path;
use std::process::Output;

use common::mount::{blocking, emulator_config, keys};
use common::*;
use twilio_media_fs::emulator::{EmulatorConfig, EmulatorCredentials, RunningEmulator, spawn};

/// The emulator encrypting for key pair 1 (`keys().pem[0]`).
async fn emulator(encryption_enabled: bool) -> RunningEmulator {
    spawn(EmulatorConfig {
        encryption_enabled,
        ..emulator_config()
    })
    .await
    .unwrap()
}

async fn doctor(mut cmd: std::process::Command, keys: &[&Path]) -> Output {
    cmd.arg("doctor");
    for k in keys {
        cmd.arg("-k").arg(k);
    }
    blocking(move || run(&mut cmd)).await
}

/// The lines of stdout, as (status, name, rest).
fn lines(out: &Output) -> Vec<(String, String, String)> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| {
            let (status, rest) = l.split_once(' ').expect("STATUS name: detail");
            let (name, detail) = rest.trim_start().split_once(": ").expect("name: detail");
            (status.to_owned(), name.to_owned(), detail.to_owned())
        })
        .collect()
}

fn find<'a>(lines: &'a [(String, String, String)], name: &str) -> &'a (String, String, String) {
    lines
        .iter()
        .find(|(_, n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name:?} line in {lines:#?}"))
}

/// What the emulator's settings name, and its newest completed encrypted recording.
async fn account(emu: &RunningEmulator) -> (String, String) {
    let c = EmulatorCredentials::default();
    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("{}{path}", emu.url))
            .basic_auth(&c.account_sid, Some(&c.auth_token))
            .send()
    };
    let settings: serde_json::Value = get("/v1/RecordingSettings/Default")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list: serde_json::Value = get("/v1/Recordings?Status=completed&PageSize=100")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let encrypted: Vec<String> = emu
        .emulator
        .objects()
        .into_iter()
        .filter(|o| o.encrypted)
        .map(|o| o.sid)
        .collect();
    let newest = list["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| encrypted.iter().any(|e| e == r["sid"].as_str().unwrap()))
        .max_by_key(|r| r["date_created"].as_str().unwrap().to_owned())
        .unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    (
        settings["encryption_key_sid"].as_str().unwrap().to_owned(),
        newest,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_check_is_ok_against_the_emulator() {
    let emu = emulator(true).await;
    let (key_sid, newest) = account(&emu).await;
    let k = &keys().pem[0];
    let out = doctor(cli(&emu), &[k]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = lines(&out);
    let names: Vec<&str> = lines.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "credentials",
            "recording settings",
            "composition settings",
            &format!("public key {key_sid}"),
            "private keys",
            "key pair (recordings)",
            "key pair (compositions)",
            "decryption",
            "key pair (voice)",
            "/dev/fuse",
            "fusermount3",
            "ffmpeg (compose)",
        ],
        "one line per check, in order"
    );
    for (status, name, detail) in &lines {
        assert_eq!(status, "OK", "{name}: {detail}");
    }
    let c = EmulatorCredentials::default();
    assert!(find(&lines, "credentials").2.contains(&c.account_sid));
    assert!(
        find(&lines, "recording settings").2.contains(&key_sid),
        "the settings' key is named"
    );
    let pair = &find(&lines, "key pair (recordings)").2;
    assert!(
        pair.contains(k.to_str().unwrap()) && pair.contains(&newest),
        "names the key file and the newest recording: {pair}"
    );
    let decryption = &find(&lines, "decryption").2;
    assert!(decryption.starts_with(&newest), "{decryption}");
    assert!(decryption.contains("bytes decrypted (AES-"), "{decryption}");
    let voice = &find(&lines, "key pair (voice)").2;
    let calls = emu.emulator.call_recordings();
    assert!(
        voice.contains(k.to_str().unwrap())
            && calls.iter().any(|o| o.encrypted && voice.contains(&o.sid))
            && voice.contains("RSA-OAEP-SHA-256"),
        "names the key file and an encrypted call recording: {voice}"
    );
    assert!(!text.contains(&c.auth_token), "no secret in the report");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_that_is_not_the_pair_fails_with_a_fix() {
    let emu = emulator(true).await;
    let (key_sid, newest) = account(&emu).await;
    let other = &keys().pem[1];
    let out = doctor(cli(&emu), &[other]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert_eq!(out.status.code(), Some(1), "{text}");
    let lines = lines(&out);
    for name in [
        "credentials",
        "recording settings",
        "private keys",
        "/dev/fuse",
    ] {
        assert_eq!(find(&lines, name).0, "OK", "{name}");
    }
    for name in ["key pair (recordings)", "key pair (compositions)"] {
        let (status, _, detail) = find(&lines, name);
        assert_eq!(status, "FAIL", "{detail}");
        assert!(detail.contains(other.to_str().unwrap()), "{detail}");
        assert!(
            detail.contains(&key_sid),
            "names the account's key: {detail}"
        );
        assert!(detail.contains("; fix: "), "{detail}");
    }
    assert!(find(&lines, "key pair (recordings)").2.contains(&newest));
    assert_eq!(find(&lines, "decryption").0, "SKIP");
    let (status, _, detail) = find(&lines, "key pair (voice)");
    assert_eq!(status, "FAIL", "{detail}");
    assert!(
        detail.contains(&key_sid),
        "names the key it was wrapped for: {detail}"
    );
    assert!(
        detail.contains("; fix: ") && detail.contains("Voice"),
        "{detail}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("checks failed"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_fail_the_first_check_clearly() {
    let emu = emulator(true).await;
    let mut cmd = cli(&emu);
    cmd.env("TWILIO_AUTH_TOKEN", "not-the-token");
    let out = doctor(cmd, &[&keys().pem[0]]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert_eq!(out.status.code(), Some(1));
    let lines = lines(&out);
    let (status, name, detail) = &lines[0];
    assert_eq!((status.as_str(), name.as_str()), ("FAIL", "credentials"));
    assert!(
        detail.contains("rejected the credentials (20003)"),
        "{detail}"
    );
    assert!(detail.contains("; fix: "), "{detail}");
    assert!(!text.contains("not-the-token"), "no secret in the report");
    for name in [
        "recording settings",
        "composition settings",
        "public key",
        "key pair",
    ] {
        let (status, _, detail) = find(&lines, name);
        assert_eq!(status, "SKIP", "{name}: {detail}");
        assert!(detail.contains("credentials"), "{detail}");
    }
    // The local checks still run.
    assert_eq!(find(&lines, "private keys").0, "OK");
    assert_eq!(find(&lines, "/dev/fuse").0, "OK");
}

#[tokio::test(flavor = "multi_thread")]
async fn encryption_turned_off_is_reported() {
    let emu = emulator(false).await;
    let out = doctor(cli(&emu), &[&keys().pem[0]]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    let lines = lines(&out);
    for name in ["recording settings", "composition settings"] {
        let (status, _, detail) = find(&lines, name);
        assert_eq!(status, "WARN", "{detail}");
        assert!(detail.contains("encryption is off"), "{detail}");
        assert!(detail.contains("; fix: "), "{detail}");
    }
    // The settings still name a key, which is checked; media encrypted before
    // encryption was turned off still proves the pair: nothing failed.
    let (status, name, _) = lines
        .iter()
        .find(|(_, n, _)| n.starts_with("public key"))
        .unwrap();
    assert_eq!(status, "OK", "{name}");
    assert_eq!(find(&lines, "key pair (recordings)").0, "OK");
    assert!(out.status.success(), "a warning is not a failure: {text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_from_a_file_and_no_key_given() {
    let emu = emulator(true).await;
    let dir = tempdir();
    let creds = dir.path().join("credentials");
    let c = EmulatorCredentials::default();
    write_private(
        &creds,
        format!(
            "api_key = \"{}\"\napi_secret = \"{}\"\n",
            c.api_key, c.api_secret
        )
        .as_bytes(),
    );
    let mut cmd = bin();
    cmd.env("TWILIO_MEDIA_FS_API_URL", &emu.url)
        .env_remove("TWILIO_ACCOUNT_SID")
        .env_remove("TWILIO_AUTH_TOKEN")
        .env_remove("TWILIO_API_KEY")
        .env_remove("TWILIO_API_SECRET")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .arg("doctor")
        .arg("--credentials")
        .arg(&creds);
    let out = blocking(move || run(&mut cmd)).await;
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    let lines = lines(&out);
    let (status, _, detail) = find(&lines, "credentials");
    assert_eq!(status, "OK", "{detail}");
    assert!(
        detail.contains(&c.api_key) && detail.contains(creds.to_str().unwrap()),
        "says which key and file: {detail}"
    );
    let (status, _, detail) = find(&lines, "private keys");
    assert_eq!(status, "FAIL");
    assert!(detail.contains("none given"), "{detail}");
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn serve_setup_is_checked_when_its_flags_are_given() {
    let emu = emulator(true).await;
    let k = &keys().pem[0];
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();
    let doctor_with = |serve_flags: &[&str], token: Option<&str>| {
        let mut cmd = cli(&emu);
        cmd.env_remove("TWILIO_MEDIA_FS_SERVE_TOKEN");
        if let Some(t) = token {
            cmd.env("TWILIO_MEDIA_FS_SERVE_TOKEN", t);
        }
        cmd.arg("doctor").arg("-k").arg(k).args(serve_flags);
        blocking(move || run(&mut cmd))
    };
    let out = doctor_with(
        &[
            "--listen",
            "0.0.0.0:0",
            "--listen",
            &busy,
            "--listen",
            "127.0.0.1:0",
        ],
        None,
    )
    .await;
    assert!(!out.status.success());
    let first = lines(&out);
    assert_eq!(find(&first, "serve credentials").0, "OK");
    let open = find(&first, "serve on 0.0.0.0:0");
    assert_eq!(open.0, "FAIL");
    assert!(open.2.contains("--htpasswd"), "{open:?}");
    let taken = find(&first, &format!("serve on {busy}"));
    assert_eq!(taken.0, "FAIL");
    assert!(taken.2.contains("in use"), "{taken:?}");
    assert_eq!(find(&first, "serve on 127.0.0.1:0").0, "OK");

    // With a token and no TLS beyond loopback: a warning, not a failure.
    let out = doctor_with(
        &["--listen", "0.0.0.0:0"],
        Some("0123456789abcdef0123456789abcdef"),
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let lines = lines(&out);
    assert_eq!(find(&lines, "serve credentials").2, "a bearer token");
    let open = find(&lines, "serve on 0.0.0.0:0");
    assert_eq!(open.0, "WARN", "{open:?}");
    assert!(open.2.contains("--tls-cert"));
    // Without serve's flags, no serve line at all.
    let out = doctor(cli(&emu), &[k]).await;
    assert!(!String::from_utf8_lossy(&out.stdout).contains("serve"));
}
