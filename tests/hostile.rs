//! Hostile and broken servers, through the real program: a server in front of the
//! emulator answers some requests itself (the rest it forwards) with bodies that never
//! end, or with messages full of terminal escapes.
//!
//! An endless body: `ls`, `get` and a mount's listing fail that request with a clean
//! error, within their address space (limited here to 1 GiB, so that a read without a
//! bound fails by running out of memory, not the machine), and the mount stays up.
//!
//! Escapes: what the server said reaches stdout and stderr of `ls`, `get`, `doctor`
//! and `mount` escaped: no ESC, no BEL, no CR, and no line that the server forged.

mod common;

use std::time::Instant;

use axum::response::{IntoResponse, Response};
use common::hostile::*;
use common::mount::*;
use common::*;
use twilio_media_fs::emulator::spawn;

// ---- names that do not exist --------------------------------------------------------

/// 200 `stat`s of made-up SIDs through a real mount (any local user can make them with
/// `--allow-other`): at most 20 + 10/s reach the API, each answers at once, and the
/// mount stays small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_names_through_a_mount_cost_a_bounded_number_of_requests() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let emu = spawn(emulator_config()).await.unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let h = hostile(&emu, move |_, path, _| {
        if path.starts_with("/v1/Recordings/RT") {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        None
    })
    .await;
    let mut m = Mount::start(&h.url, &[&keys().pem[0]], &[]).await;
    let dir = m.path.join("recordings");
    let started = Instant::now();
    let slowest = blocking(move || {
        let mut slowest = std::time::Duration::ZERO;
        for i in 0..200u32 {
            let path = dir.join(format!("RT{:032x}.mka", 0xdead_0000u64 + u64::from(i)));
            let t = Instant::now();
            let err = std::fs::metadata(&path).unwrap_err();
            slowest = slowest.max(t.elapsed());
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
        }
        slowest
    })
    .await;
    let took = started.elapsed();
    let requests = asked.load(Ordering::SeqCst);
    let peak = peak_rss_kib(m.child.as_ref().unwrap().id());
    m.unmount().await;
    let allowed = 20 + 10 * (took.as_secs() as usize + 1);
    println!(
        "200 made-up names: {requests} API requests in {:.2} s, slowest stat {slowest:?}, \
         mount peak RSS {:.1} MiB",
        took.as_secs_f64(),
        peak as f64 / 1024.0
    );
    assert!(requests <= allowed, "{requests} requests in {took:?}");
    assert!(requests >= 1, "the first lookups do reach the API");
}

// ---- endless bodies ------------------------------------------------------------------

/// `ls` against a listing that never ends fails it with the bound in its message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_with_an_endless_listing() {
    let emu = spawn(emulator_config()).await.unwrap();
    let h = hostile(&emu, |_, path, _| {
        (path == "/v1/Recordings").then(|| endless(200))
    })
    .await;
    let mut cmd = limited(cli_at(&h.url));
    cmd.args(["ls", "recordings"]);
    let ran = timed(cmd).await;
    let out = &ran.out;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    let err = stderr(out);
    assert!(
        err.contains(
            "unexpected answer from /v1/Recordings: the answer is larger than 16 MiB, \
             the most read of one API answer"
        ),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    println!("ls against an endless listing: {ran}");
}

/// `get` of a recording whose storage answers 403 with a body that never ends: the
/// first 64 KiB are read, and `get` fails on the 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_with_an_endless_storage_error() {
    let emu = spawn(emulator_config()).await.unwrap();
    let sid = a_recording(&emu);
    let h = hostile(&emu, |me, path, _| {
        if path == "/endless" {
            return Some(endless(403));
        }
        path.ends_with("/Media").then(|| {
            let to = format!("{me}/endless");
            (axum::http::StatusCode::FOUND, [("location", to)]).into_response()
        })
    })
    .await;
    let dir = tempdir();
    let dest = dir.path().join("out.mka");
    let mut cmd = limited(cli_at(&h.url));
    cmd.args(["get", "--retry-budget", "2s"])
        .arg(&sid)
        .arg("-k")
        .arg(&keys().pem[0])
        .arg("-o")
        .arg(&dest);
    let ran = timed(cmd).await;
    let out = &ran.out;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    let err = stderr(out);
    assert!(err.contains("403"), "{err}");
    println!("get of an endless storage error: {ran}: {err}");
}

/// A mount whose recordings listing never ends (the start-up probe, one item, is
/// answered): that directory is EIO, the mount stays up and the compositions read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_with_an_endless_listing() {
    let emu = spawn(emulator_config()).await.unwrap();
    let h = hostile(&emu, |_, path, query| {
        (path == "/v1/Recordings"
            && !query.contains("PageSize=1&")
            && !query.ends_with("PageSize=1"))
        .then(|| endless(200))
    })
    .await;
    let m = Mount::new();
    let mut cmd = m.command(&h.url, &[&keys().pem[0]]);
    cmd.args([
        "--foreground",
        "-v",
        "--retry-budget",
        "2s",
        "--timeout",
        "5s",
    ]);
    let mut m = m.spawn(limited(cmd)).await;
    let dir = m.path.join("recordings");
    let started = Instant::now();
    let err =
        blocking(move || std::fs::read_dir(dir).and_then(|d| d.collect::<Result<Vec<_>, _>>()))
            .await
            .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    let peak = peak_rss_kib(m.child.as_ref().unwrap().id());
    println!(
        "a mount's endless listing: EIO in {took:?}, mount peak RSS {:.1} MiB",
        peak as f64 / 1024.0
    );
    let log = m.log();
    assert!(log.contains("larger than 16 MiB"), "{log}");
    let o = emu
        .emulator
        .objects()
        .into_iter()
        .find(|o| o.status == "completed" && o.sid.starts_with("CJ"))
        .unwrap();
    let path = m.file(&o);
    let got = blocking(move || std::fs::read(path)).await.unwrap();
    assert_eq!(
        sha256(&got),
        sha256(&emu.emulator.plaintext(&o.sid).unwrap())
    );
    assert!(m.alive(), "{}", m.log());
}

// ---- escapes -------------------------------------------------------------------------

/// Text that would retitle the terminal, clear it, and forge a line of output.
const NASTY: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\r\nforged: all is well";

/// An API error answer whose message is [`NASTY`].
fn api_error(status: u16) -> Response {
    let body = serde_json::json!({"code": 20001, "message": NASTY, "status": status});
    (
        axum::http::StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `ls`: an API error message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_error_is_escaped() {
    let emu = spawn(emulator_config()).await.unwrap();
    let h = hostile(&emu, |_, path, _| {
        (path == "/v1/Recordings").then(|| api_error(400))
    })
    .await;
    let mut cmd = cli_at(&h.url);
    cmd.args(["ls", "recordings"]);
    let ran = timed(cmd).await;
    println!("ls, an API error full of escapes: {ran}");
    let out = ran.out;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    clean("ls, an API error", &out);
    assert!(stderr(&out).contains("\\u{1b}]0;pwned"), "{}", stderr(&out));
}

/// `get`: an API error message on the resource, and S3's `<Code>` and `<Message>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_errors_are_escaped() {
    let emu = spawn(emulator_config()).await.unwrap();
    let sid = a_recording(&emu);
    let resource = format!("/v1/Recordings/{sid}");
    let h = hostile(&emu, move |_, path, _| {
        (path == resource).then(|| api_error(404))
    })
    .await;
    let mut cmd = cli_at(&h.url);
    cmd.args(["get", &sid, "-o", "-", "-k"]).arg(&keys().pem[0]);
    let ran = timed(cmd).await;
    println!("get, an API error full of escapes: {ran}");
    let out = ran.out;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    clean("get, an API error", &out);
    assert!(stderr(&out).contains("pwned"), "{}", stderr(&out));

    let xml = format!("<Error><Code>{NASTY}</Code><Message>{NASTY}</Message></Error>");
    let h = hostile(&emu, move |me, path, _| {
        if path == "/s3" {
            return Some((axum::http::StatusCode::BAD_REQUEST, xml.clone()).into_response());
        }
        path.ends_with("/Media").then(|| {
            (
                axum::http::StatusCode::FOUND,
                [("location", format!("{me}/s3"))],
            )
                .into_response()
        })
    })
    .await;
    let mut cmd = cli_at(&h.url);
    cmd.args(["get", "--retry-budget", "2s", &sid, "-o", "-", "-k"])
        .arg(&keys().pem[0]);
    let ran = timed(cmd).await;
    println!("get, S3's Code and Message full of escapes: {ran}");
    let out = ran.out;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    clean("get, S3's Code and Message", &out);
    assert!(stderr(&out).contains("pwned"), "{}", stderr(&out));
}

/// `doctor`: a settings value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_lines_are_escaped() {
    let emu = spawn(emulator_config()).await.unwrap();
    let h = hostile(&emu, |_, path, _| {
        path.ends_with("Settings/Default").then(|| {
            let body = serde_json::json!({
                "encryption_enabled": true,
                "encryption_key_sid": format!("CR{NASTY}"),
            });
            ([("content-type", "application/json")], body.to_string()).into_response()
        })
    })
    .await;
    let mut cmd = cli_at(&h.url);
    cmd.arg("doctor").arg("-k").arg(&keys().pem[0]);
    let ran = timed(cmd).await;
    println!("doctor, a settings value full of escapes: {ran}");
    let out = ran.out;
    clean("doctor, a settings value", &out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("pwned"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `mount`: the start-up error of a mount in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_error_is_escaped() {
    let emu = spawn(emulator_config()).await.unwrap();
    let h = hostile(&emu, |_, path, _| {
        (path == "/v1/Recordings").then(|| api_error(400))
    })
    .await;
    let m = Mount::new();
    let ran = timed(m.command(&h.url, &[&keys().pem[0]])).await;
    println!("mount, a start-up error full of escapes: {ran}");
    let out = ran.out;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    clean("mount, a start-up error", &out);
    assert!(stderr(&out).contains("pwned"), "{}", stderr(&out));
    assert!(!mounted(&m.path));
}
