//! `serve` with real clients: curl for every header case, ffprobe and ffmpeg reading
//! and seeking over http://, the faults of the storage, credentials, TLS and the
//! limits. The server is the binary, against the emulator on 127.0.0.1; every byte a
//! client receives is compared with the plaintext.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::mount::{emulator_config, keys};
use common::serve::Served;
use common::*;
use twilio_media_fs::emulator::{EmulatorConfig, ObjectInfo, RunningEmulator, spawn};
use twilio_media_fs::twilio::MediaKind;

/// `curl -sS ARGS…` (bounded in time), its output.
fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "60"])
        .args(args)
        .output()
        .expect("curl")
}

/// The body of a GET that must answer `status`.
fn get(url: &str, extra: &[&str], status: u16) -> Vec<u8> {
    let dir = tempdir();
    let body = dir.path().join("body");
    let mut args = vec!["-o", body.to_str().unwrap(), "-w", "%{http_code}"];
    args.extend_from_slice(extra);
    args.push(url);
    let out = curl(&args);
    let code = String::from_utf8_lossy(&out.stdout).to_string();
    let got = std::fs::read(&body).unwrap_or_default();
    assert_eq!(
        code,
        status.to_string(),
        "GET {url} {extra:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&got[..got.len().min(500)])
    );
    got
}

/// The response headers of `curl ARGS… URL` (`-D -`, body dropped), lower-cased names.
fn head(url: &str, extra: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["-D", "-", "-o", "/dev/null"];
    args.extend_from_slice(extra);
    args.push(url);
    let out = curl(&args);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn status_line(url: &str, extra: &[&str]) -> String {
    let mut args = vec!["-o", "/dev/null", "-w", "%{http_code}"];
    args.extend_from_slice(extra);
    args.push(url);
    String::from_utf8_lossy(&curl(&args).stdout).to_string()
}

/// The path of an object on the server.
fn path_of(o: &ObjectInfo) -> String {
    let dir = match o.kind {
        MediaKind::Recording => "recordings",
        MediaKind::Composition => "compositions",
        MediaKind::Voice => "voice",
    };
    format!("/{dir}/{}.{}", o.sid, o.extension)
}

/// Every completed recording, composition and call recording, with its plaintext.
fn media(emu: &RunningEmulator) -> Vec<(ObjectInfo, Vec<u8>)> {
    let all: Vec<_> = emu
        .emulator
        .objects()
        .into_iter()
        .chain(emu.emulator.call_recordings())
        .filter(|o| o.status == "completed" && !o.synthetic)
        .map(|o| {
            let plain = emu.emulator.plaintext(&o.sid).expect("plaintext");
            (o, plain)
        })
        .collect();
    assert!(all.len() >= 8, "samples, meeting, calls: {}", all.len());
    all
}

fn is_composition(o: &ObjectInfo) -> bool {
    o.sid.starts_with("CJ")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_file_and_odd_ranges_are_the_plaintext() {
    if !require_tool("curl") {
        return;
    }
    let emu = spawn(emulator_config()).await.unwrap();
    // Small windows: ranges cross many window boundaries.
    let served = Served::start(&emu.url, &keys().pem[0], &["--window", "64KiB"]);
    for (o, plain) in media(&emu) {
        let url = served.at(&path_of(&o));
        let len = plain.len() as u64;
        assert_eq!(sha256(&get(&url, &[], 200)), sha256(&plain), "{url}");
        let h = head(&url, &["-I"]);
        assert_eq!(
            header(&h, "content-length"),
            Some(len.to_string().as_str()),
            "HEAD {url}"
        );
        assert_eq!(header(&h, "accept-ranges"), Some("bytes"));
        let odd = [
            (0, 0),
            (1, 1),
            (7, 12_345),
            (65_535, 65_537),
            (len / 3, len / 3 + 99_999),
        ];
        for (a, b) in odd {
            let (a, b) = (a.min(len - 1), b.min(len - 1));
            let range = format!("{a}-{b}");
            let part = get(&url, &["-r", &range], 206);
            assert_eq!(part, plain[a as usize..=b as usize], "{url} bytes {range}");
        }
        // A suffix range, an open range.
        let tail = get(&url, &["-H", "Range: bytes=-1000"], 206);
        assert_eq!(
            tail,
            plain[plain.len().saturating_sub(1000)..],
            "{url} suffix"
        );
        let from = len / 2 + 3;
        let open = get(&url, &["-r", &format!("{from}-")], 206);
        assert_eq!(open, plain[from as usize..], "{url} open range");
        let h = head(&url, &["-r", &format!("{from}-")]);
        assert_eq!(
            header(&h, "content-range"),
            Some(format!("bytes {from}-{}/{len}", len - 1).as_str())
        );
        // Past the end: 416 with the size.
        let h = head(&url, &["-r", &format!("{len}-")]);
        assert_eq!(
            header(&h, "content-range"),
            Some(format!("bytes */{len}").as_str())
        );
        assert_eq!(status_line(&url, &["-r", &format!("{len}-")]), "416");
    }
    let stats = served.stats();
    assert_eq!(
        stats["open_handles"], 0,
        "every response released its file: {stats}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_validators_and_conditional_requests() {
    if !require_tool("curl") {
        return;
    }
    let emu = spawn(emulator_config()).await.unwrap();
    let served = Served::start(&emu.url, &keys().pem[0], &[]);
    let all = media(&emu);
    for (o, _) in &all {
        let h = head(&served.at(&path_of(o)), &["-I"]);
        let want = match o.extension.as_str() {
            "mka" => "audio/x-matroska",
            "mkv" => "video/x-matroska",
            "mp4" => "video/mp4",
            "webm" => "video/webm",
            "wav" => "audio/wav",
            other => panic!("unexpected extension {other}"),
        };
        assert_eq!(header(&h, "content-type"), Some(want), "{}", o.sid);
        let disposition = format!("inline; filename=\"{}.{}\"", o.sid, o.extension);
        assert_eq!(
            header(&h, "content-disposition"),
            Some(disposition.as_str())
        );
    }
    let (o, plain) = all.iter().find(|(o, _)| is_composition(o)).unwrap();
    let url = served.at(&path_of(o));
    let h = head(&url, &["-I"]);
    let etag = header(&h, "etag").expect("ETag").to_owned();
    let modified = header(&h, "last-modified")
        .expect("Last-Modified")
        .to_owned();
    assert!(etag.starts_with(&format!("\"{}-", o.sid)), "{etag}");

    // 304s: If-None-Match (also weak, also in a list), If-Modified-Since.
    for inm in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"x\", {etag}"),
        "*".into(),
    ] {
        let got = get(&url, &["-H", &format!("If-None-Match: {inm}")], 304);
        assert!(got.is_empty());
    }
    get(&url, &["-H", "If-None-Match: \"other\""], 200);
    get(
        &url,
        &["-H", &format!("If-Modified-Since: {modified}")],
        304,
    );
    get(
        &url,
        &["-H", "If-Modified-Since: Thu, 01 Jan 2015 00:00:00 GMT"],
        200,
    );
    // If-Range: the same tag or date gives the range; another gives the whole file.
    let part = get(
        &url,
        &["-r", "10-19", "-H", &format!("If-Range: {etag}")],
        206,
    );
    assert_eq!(part, plain[10..20]);
    let part = get(
        &url,
        &["-r", "10-19", "-H", &format!("If-Range: {modified}")],
        206,
    );
    assert_eq!(part, plain[10..20]);
    let whole = get(&url, &["-r", "10-19", "-H", "If-Range: \"stale\""], 200);
    assert_eq!(sha256(&whole), sha256(plain));

    // The same validators from another server process (a restart, a replica).
    let again = Served::start(&emu.url, &keys().pem[0], &["--no-metadata-cache"]);
    let h2 = head(&again.at(&path_of(o)), &["-I"]);
    assert_eq!(header(&h2, "etag"), Some(etag.as_str()));
    assert_eq!(header(&h2, "last-modified"), Some(modified.as_str()));

    // Methods other than GET and HEAD.
    assert_eq!(status_line(&url, &["-X", "DELETE"]), "405");
    assert_eq!(status_line(&url, &["-X", "POST", "-d", "x"]), "405");
}

#[tokio::test(flavor = "multi_thread")]
async fn listings_for_people_and_programs() {
    if !require_tool("curl") {
        return;
    }
    let emu = spawn(emulator_config()).await.unwrap();
    let served = Served::start(&emu.url, &keys().pem[0], &[]);
    let root = String::from_utf8(get(&served.at("/"), &[], 200)).unwrap();
    for dir in ["recordings/", "compositions/", "rooms/", "voice/", "calls/"] {
        assert!(
            root.contains(&format!("href=\"/{dir}\"")),
            "{dir} in {root}"
        );
    }
    assert!(!root.contains("<script"), "no script");

    // JSON, by query or by Accept: every completed recording, once, with its fields.
    let by_query: serde_json::Value =
        serde_json::from_slice(&get(&served.at("/recordings/?format=json"), &[], 200)).unwrap();
    let by_accept: serde_json::Value = serde_json::from_slice(&get(
        &served.at("/recordings/"),
        &["-H", "Accept: application/json"],
        200,
    ))
    .unwrap();
    assert_eq!(by_query, by_accept);
    let mut listed: Vec<String> = by_query["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    let mut want: Vec<String> = emu
        .emulator
        .objects()
        .into_iter()
        .filter(|o| o.status == "completed" && o.sid.starts_with("RT"))
        .map(|o| format!("{}.{}", o.sid, o.extension))
        .collect();
    listed.sort();
    want.sort();
    assert_eq!(listed, want);
    let first = &by_query["entries"][0];
    for field in [
        "href",
        "size",
        "codec",
        "duration",
        "date",
        "content_type",
        "player",
    ] {
        assert!(!first[field].is_null(), "{field} in {first}");
    }

    // A room: its files, a player for each, the room's own fields.
    let (comp, _) = media(&emu)
        .into_iter()
        .find(|(o, _)| is_composition(o) && o.extension == "mp4")
        .unwrap();
    let room = format!("/rooms/{}/", comp.room_sid);
    let page = String::from_utf8(get(&served.at(&room), &[], 200)).unwrap();
    let file = format!("{room}{}.mp4", comp.sid);
    assert!(
        page.contains(&format!("<video controls preload=\"none\" src=\"{file}\">")),
        "{page}"
    );
    assert!(
        page.contains(&format!("vlc {}{file}", served.url)),
        "vlc line"
    );
    assert!(page.contains("unique_name"), "the room's fields");
    // Without its slash, a directory redirects to it.
    let h = head(&served.at(&room[..room.len() - 1]), &[]);
    assert_eq!(header(&h, "location"), Some(room.as_str()));
    // One file's player page.
    let player = String::from_utf8(get(&served.at(&format!("{file}?play")), &[], 200)).unwrap();
    assert!(player.contains("autoplay") && player.contains(&format!("src=\"{file}\"")));

    // /.stats: the read core's counters, as the mount's.
    let stats = served.stats();
    assert!(stats["bytes_served"].as_u64().is_some(), "{stats}");
    assert_eq!(get(&served.at("/healthz"), &[], 200), b"ok\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_outside_the_tree_are_refused() {
    if !require_tool("curl") {
        return;
    }
    let emu = spawn(emulator_config()).await.unwrap();
    let served = Served::start(&emu.url, &keys().pem[0], &[]);
    for (path, status) in [
        ("/../etc/passwd", "400"),
        ("/recordings/../../etc/passwd", "400"),
        ("/%2e%2e/etc/passwd", "400"),
        ("/recordings%2F..%2F..%2Fetc%2Fpasswd", "400"),
        ("/recordings/..%5C..%5Cetc", "400"),
        ("/recordings/RT%00.mka", "400"),
        ("/etc/passwd", "404"),
        ("/recordings/RTnot-a-sid.mka", "404"),
        ("/recordings/RT00000000000000000000000000000000.mka", "404"),
    ] {
        assert_eq!(
            status_line(&served.at(path), &["--path-as-is"]),
            status,
            "{path}"
        );
    }
    // Without credentials, a request must name this machine (no DNS rebinding).
    let rebound = status_line(
        &served.at("/recordings/"),
        &["-H", "Host: evil.example:8080"],
    );
    assert_eq!(rebound, "421");
    assert_eq!(
        status_line(&served.at("/"), &["-H", "Host: localhost:1"]),
        "200"
    );
    assert_eq!(
        status_line(&served.at("/"), &["-H", "Host: [::1]:1"]),
        "200"
    );
    // An absolute URL as the request target: its path is what counts.
    let mut s = TcpStream::connect(served.url.trim_start_matches("http://")).unwrap();
    s.write_all(b"GET http://127.0.0.1/../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ffprobe_and_ffmpeg_seek_over_http() {
    if !require_tool("ffprobe") || !require_tool("ffmpeg") {
        return;
    }
    let emu = spawn(emulator_config()).await.unwrap();
    let served = Served::start(&emu.url, &keys().pem[0], &["--window", "64KiB"]);
    let dir = tempdir();
    for (o, plain) in media(&emu)
        .into_iter()
        .filter(|(o, _)| is_composition(o) || o.extension == "mkv")
    {
        let url = served.at(&path_of(&o));
        let local = dir.path().join(format!("{}.{}", o.sid, o.extension));
        std::fs::write(&local, &plain).unwrap();
        let probe = |input: &str| {
            let out = run(Command::new("ffprobe").args([
                "-v",
                "error",
                "-show_entries",
                "format=duration:stream=codec_name,width,height",
                "-of",
                "json",
                input,
            ]));
            assert!(
                out.status.success(),
                "ffprobe {input}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(probe(&url), probe(local.to_str().unwrap()), "{url}");
        // Frames after a seek, decoded: the same as from the plaintext file.
        let frames = |input: &str| {
            let out = run(Command::new("ffmpeg").args([
                "-v", "error", "-ss", "3.5", "-i", input, "-t", "2", "-map", "0:v:0", "-f",
                "framemd5", "-",
            ]));
            assert!(
                out.status.success(),
                "ffmpeg {input}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        let (over_http, from_file) = (frames(&url), frames(local.to_str().unwrap()));
        assert!(
            from_file.lines().any(|l| !l.starts_with('#')),
            "{url}: no frames"
        );
        assert_eq!(over_http, from_file, "{url}: frames after -ss 3.5");
    }
    assert_eq!(served.stats()["open_handles"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_statuses_and_a_failure_mid_body_cuts_the_connection() {
    if !require_tool("curl") {
        return;
    }
    let config = EmulatorConfig {
        synthetic: vec![48 << 20],
        ..emulator_config()
    };
    let emu = spawn(config).await.unwrap();
    let budget = [
        "--retry-budget",
        "1s",
        "--timeout",
        "1s",
        "--window",
        "64KiB",
        "--cache-size",
        "1MiB",
    ];
    // A key that does not fit: 403, naming the SID.
    let wrong = Served::start(&emu.url, &keys().pem[1], &budget);
    let (o, _) = media(&emu).into_iter().find(|(o, _)| o.encrypted).unwrap();
    let body = get(&wrong.at(&path_of(&o)), &[], 403);
    assert!(String::from_utf8_lossy(&body).contains(&o.sid));
    drop(wrong);

    let served = Served::start(&emu.url, &keys().pem[0], &budget);
    let synthetic = emu
        .emulator
        .objects()
        .into_iter()
        .find(|o| o.synthetic)
        .unwrap();
    let url = served.at(&path_of(&synthetic));
    // Storage down before the open: 502 with a one-line reason, not a 200.
    emu.emulator.set_storage_down(true);
    let body = get(&url, &[], 502);
    assert!(String::from_utf8_lossy(&body).contains(&synthetic.sid));
    emu.emulator.set_storage_down(false);

    // Storage down in the middle of a response: the transfer is cut short of its
    // Content-Length (curl: 18, partial file), never a complete-looking file.
    let dir = tempdir();
    let out_path = dir.path().join("partial");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "60", "--limit-rate", "4M", "-o"])
        .arg(&out_path)
        .arg(&url);
    let mut child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    emu.emulator.set_storage_down(true);
    let status = child.wait().unwrap();
    emu.emulator.set_storage_down(false);
    let got = std::fs::metadata(&out_path).map(|m| m.len()).unwrap_or(0);
    assert_eq!(
        status.code(),
        Some(18),
        "curl saw a cut transfer ({got} bytes)"
    );
    assert!(got > 0 && got < 48 << 20, "{got}");
    let want = emu.emulator.plaintext(&synthetic.sid).unwrap();
    let prefix = std::fs::read(&out_path).unwrap();
    assert_eq!(prefix, want[..prefix.len()], "what came is right");
    assert!(
        served.log().contains(&synthetic.sid),
        "the log names it: {}",
        served.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn storage_faults_leave_responses_byte_identical() {
    if !require_tool("curl") {
        return;
    }
    let config = EmulatorConfig {
        fail_every: Some(3),
        drop_every: Some(4),
        // Pre-signed URLs that expire while files are read (the synthetic one is read
        // over 4 s).
        ttl: Duration::from_secs(1),
        synthetic: vec![8 << 20],
        ..emulator_config()
    };
    let emu = spawn(config).await.unwrap();
    let served = Served::start(
        &emu.url,
        &keys().pem[0],
        &[
            "--window",
            "64KiB",
            "--cache-size",
            "512KiB",
            "--retry-budget",
            "20s",
        ],
    );
    for (o, plain) in media(&emu) {
        let url = served.at(&path_of(&o));
        assert_eq!(
            sha256(&get(&url, &["--limit-rate", "2M"], 200)),
            sha256(&plain),
            "{url}"
        );
        let len = plain.len();
        let part = get(&url, &["-r", &format!("{}-{}", len / 4 + 1, len / 2)], 206);
        assert_eq!(part, plain[len / 4 + 1..=len / 2], "{url}");
    }
    let stats = emu.emulator.stats();
    assert!(
        stats.server_errors > 0 && stats.dropped_bodies > 0,
        "the faults fired: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_beyond_loopback() {
    if !require_tool("curl") {
        return;
    }
    let emu = spawn(emulator_config()).await.unwrap();
    // Beyond loopback without credentials: refused at start, saying what to do.
    let (mut cmd, _dir) = Served::command(&emu.url, &keys().pem[0]);
    let out = run(cmd.args(["--listen", "0.0.0.0:0"]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--token-file") && err.contains("--htpasswd"),
        "{err}"
    );
    // A short token is refused too.
    let (mut cmd, _dir) = Served::command(&emu.url, &keys().pem[0]);
    let out = run(cmd
        .env("TWILIO_MEDIA_FS_SERVE_TOKEN", "short")
        .args(["--listen", "0.0.0.0:0"]));
    assert!(!out.status.success());

    // A bearer token from the environment (never argv), on all addresses.
    let token = "f3a1c0ffee0ddba11f3a1c0ffee0ddba11";
    let (mut cmd, dir) = Served::command(&emu.url, &keys().pem[0]);
    cmd.env("TWILIO_MEDIA_FS_SERVE_TOKEN", token)
        .args(["--listen", "0.0.0.0:0", "-vv"]);
    let served = Served::spawn(cmd, dir);
    let port = served.url.rsplit(':').next().unwrap().to_owned();
    let url = format!("http://127.0.0.1:{port}/recordings/");
    let h = head(&url, &[]);
    assert_eq!(
        header(&h, "www-authenticate"),
        Some("Bearer realm=\"twilio-media-fs\"")
    );
    assert_eq!(status_line(&url, &[]), "401");
    assert_eq!(
        status_line(
            &url,
            &[
                "-H",
                "Authorization: Bearer wrong-token-of-the-right-length-x"
            ]
        ),
        "401"
    );
    assert_eq!(
        status_line(&url, &["-H", &format!("Authorization: Bearer {token}")]),
        "200"
    );
    let (o, plain) = media(&emu).into_iter().next().unwrap();
    let file = format!("http://127.0.0.1:{port}{}", path_of(&o));
    let got = get(
        &file,
        &["-H", &format!("Authorization: Bearer {token}")],
        200,
    );
    assert_eq!(sha256(&got), sha256(&plain));
    assert_eq!(
        status_line(&format!("http://127.0.0.1:{port}/healthz"), &[]),
        "200"
    );
    assert!(!served.log().contains(token), "the token is never logged");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", served.child.id())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(token));
    drop(served);

    // Users of an htpasswd file (bcrypt), with basic auth.
    let (mut cmd, dir) = Served::command(&emu.url, &keys().pem[0]);
    let htpasswd = dir.path().join("htpasswd");
    let hash = bcrypt::hash("s3cret pass", 5).unwrap();
    std::fs::write(&htpasswd, format!("alice:{hash}\n")).unwrap();
    cmd.args(["--listen", "0.0.0.0:0", "--htpasswd"])
        .arg(&htpasswd);
    let served = Served::spawn(cmd, dir);
    let port = served.url.rsplit(':').next().unwrap().to_owned();
    let url = format!("http://127.0.0.1:{port}/recordings/");
    assert_eq!(status_line(&url, &[]), "401");
    assert_eq!(status_line(&url, &["-u", "alice:wrong"]), "401");
    assert_eq!(status_line(&url, &["-u", "bob:s3cret pass"]), "401");
    assert_eq!(status_line(&url, &["-u", "alice:s3cret pass"]), "200");
    let userinfo = format!("http://alice:s3cret%20pass@127.0.0.1:{port}{}", path_of(&o));
    assert_eq!(sha256(&get(&userinfo, &[], 200)), sha256(&plain));
    // An MD5 htpasswd entry is refused at start.
    let (mut cmd, dir) = Served::command(&emu.url, &keys().pem[0]);
    let weak = dir.path().join("weak");
    std::fs::write(&weak, "bob:$apr1$x/ZrhZnx$0Jdl.J5q8Dr5yC.Tn9Qv50\n").unwrap();
    let out = run(cmd.arg("--htpasswd").arg(&weak));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bcrypt"));
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_and_a_unix_socket() {
    if !require_tool("curl") || !require_tool("openssl") {
        return;
    }
    let emu = spawn(emulator_config()).await.unwrap();
    let (mut cmd, dir) = Served::command(&emu.url, &keys().pem[0]);
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let socket = dir.path().join("serve.sock");
    cmd.arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .args(["--listen", "127.0.0.1:0", "--listen"])
        .arg(format!("unix:{}", socket.display()));
    let served = Served::spawn(cmd, dir);
    assert!(
        served.url.starts_with("https://127.0.0.1:"),
        "{}",
        served.url
    );
    let (o, plain) = media(&emu)
        .into_iter()
        .find(|(o, _)| is_composition(o))
        .unwrap();
    let url = served.at(&path_of(&o));
    let got = get(&url, &["--cacert", cert.to_str().unwrap()], 200);
    assert_eq!(sha256(&got), sha256(&plain));
    let part = get(
        &url,
        &["--cacert", cert.to_str().unwrap(), "-r", "1001-2002"],
        206,
    );
    assert_eq!(part, plain[1001..=2002]);
    // Plain HTTP to the TLS port gets no answer.
    let plain_http = url.replacen("https://", "http://", 1);
    assert_ne!(status_line(&plain_http, &[]), "200");

    // The Unix socket: only its owner may connect (0600), HTTP over it works.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let got = get(
        &format!("http://localhost{}", path_of(&o)),
        &["--unix-socket", socket.to_str().unwrap(), "-r", "5-9"],
        206,
    );
    assert_eq!(got, plain[5..=9]);
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_greedy_clients_are_cut_off() {
    if !require_tool("curl") {
        return;
    }
    let config = EmulatorConfig {
        synthetic: vec![64 << 20],
        ..emulator_config()
    };
    let emu = spawn(config).await.unwrap();
    let served = Served::start(
        &emu.url,
        &keys().pem[0],
        &[
            "--max-connections",
            "3",
            "--header-timeout",
            "1s",
            "--send-timeout",
            "2s",
        ],
    );
    let addr = served.url.trim_start_matches("http://").to_owned();

    // Headers that never end: the connection is closed after --header-timeout.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    // Over the connection limit: 503 at once.
    let idle: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = TcpStream::connect(&addr).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = String::new();
    let _ = extra.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    drop(idle);
    std::thread::sleep(Duration::from_millis(1500));

    // A header block larger than the limit: 431.
    let big = format!("X-Big: {}", "a".repeat(20_000));
    assert_eq!(status_line(&served.at("/"), &["-H", &big]), "431");

    // A client that stops reading a big file: cut off after --send-timeout, and its file
    // is released.
    let synthetic = emu
        .emulator
        .objects()
        .into_iter()
        .find(|o| o.synthetic)
        .unwrap();
    let mut greedy = TcpStream::connect(&addr).unwrap();
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        path_of(&synthetic)
    );
    greedy.write_all(request.as_bytes()).unwrap();
    let mut first = [0u8; 4096];
    greedy.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"HTTP/1.1 200"));
    assert_eq!(served.stats()["open_handles"], 1);
    wait_for(
        "the stalled client's file to be released",
        Duration::from_secs(15),
        || served.stats()["open_handles"] == 0,
    );
    drop(greedy);
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
