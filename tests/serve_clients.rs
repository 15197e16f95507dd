//! `serve` with the clients people point at it: Chromium on a room's page, and VLC on a
//! file's URL. Each must really decode the media through the server: a browser's
//! player advances, seeks and stays free of errors; VLC's decoded output is compared
//! with what ffmpeg decodes from the plaintext.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::chromium::Chromium;
use common::mount::{emulator_config, keys};
use common::serve::Served;
use common::*;
use serde_json::Value;
use twilio_media_fs::emulator::{ObjectInfo, ObjectKind, spawn};

/// Runs `cmd` with its output in files (no pipe to fill), killing it after `limit`.
fn run_within(cmd: &mut Command, limit: Duration) -> Output {
    let dir = tempdir();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} still running after {limit:?}; killed. stderr:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    }
}

/// The completed objects of the emulator's catalog.
fn completed(objects: &[ObjectInfo]) -> Vec<&ObjectInfo> {
    objects.iter().filter(|o| o.status == "completed").collect()
}

/// Where a room's page links a file of the room.
fn room_href(o: &ObjectInfo) -> String {
    format!("/rooms/{}/{}.{}", o.room_sid, o.sid, o.extension)
}

/// `x` as a JavaScript string literal.
fn js(x: &str) -> String {
    Value::String(x.to_owned()).to_string()
}

/// The repository's root (where `docs/` is).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_plays_a_composition_from_the_room_page() {
    if !require_tool("chromium") || !require_tool("curl") {
        return;
    }
    let emu = spawn(emulator_config()).await.unwrap();
    let objects = emu.emulator.objects();
    let url = emu.url.clone();
    // Everything below blocks (the browser, curl): off the runtime that serves the
    // emulator.
    tokio::task::spawn_blocking(move || browser_plays(&url, &objects))
        .await
        .unwrap();
}

fn browser_plays(api_url: &str, objects: &[ObjectInfo]) {
    let done = completed(objects);
    // The room of the MP4 composition: H.264/AAC video beside Opus audio tracks.
    let composition = *done
        .iter()
        .find(|o| o.kind == ObjectKind::Composition && o.extension == "mp4")
        .expect("the emulator has an MP4 composition");
    let room = &composition.room_sid;
    let in_room: Vec<&ObjectInfo> = done
        .iter()
        .copied()
        .filter(|o| &o.room_sid == room)
        .collect();
    let audio = *in_room
        .iter()
        .find(|o| o.extension == "mka" && o.encrypted)
        .expect("an encrypted .mka in the composition's room");

    let served = Served::start(api_url, &keys().pem[0], &[]);
    let started = Instant::now();
    let mut browser = Chromium::start().expect("start chromium");
    // Tall enough for the room's fields, the players and the first rows of the table.
    browser.set_viewport(1200, 900).unwrap();
    let page = served.at(&format!("/rooms/{room}/"));
    browser.navigate(&page).unwrap();

    // The page lists exactly the room's files (and links its parent).
    let hrefs =
        browser.eval("[...document.querySelectorAll('table a')].map(a => a.getAttribute('href'))");
    let hrefs: Vec<&str> = hrefs
        .as_array()
        .expect("an array of links")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut files: Vec<&str> = hrefs
        .iter()
        .copied()
        .filter(|h| !h.ends_with('/') && !h.contains('?'))
        .collect();
    files.sort_unstable();
    let mut want: Vec<String> = in_room.iter().map(|o| room_href(o)).collect();
    want.sort_unstable();
    assert_eq!(files, want, "the room's files on {page}");
    assert!(hrefs.contains(&"../"), "a link up: {hrefs:?}");

    // The composition's player: play, advance, seek.
    let video = format!(
        "[...document.querySelectorAll('video')].find(v => v.getAttribute('src') === {})",
        js(&room_href(composition))
    );
    let srcs = browser
        .eval("[...document.querySelectorAll('video,audio')].map(m => m.getAttribute('src'))");
    assert_eq!(
        browser.eval(&format!("!!{video}")),
        Value::Bool(true),
        "no <video> plays {} on {page}; players: {srcs}",
        room_href(composition)
    );
    browser
        .try_eval(&format!("{video}.play().then(() => true)"))
        .unwrap_or_else(|e| panic!("play() {}: {e}", room_href(composition)));
    let state = format!(
        "(() => {{ const v = {video}; return {{t: v.currentTime, ready: v.readyState, \
         error: v.error && v.error.message, seekable: v.seekable.length ? v.seekable.end(0) : null, \
         width: v.videoWidth, duration: v.duration}}; }})()"
    );
    if let Err(e) = browser.wait_for(&format!("{video}.currentTime > 2"), Duration::from_secs(30)) {
        panic!(
            "the composition does not play: {e}; {}\nserve log:\n{}",
            browser.eval(&state),
            served.log()
        );
    }
    let s = browser.eval(&state);
    assert!(s["error"].is_null(), "{s}");
    assert!(s["width"].as_u64() > Some(0), "no picture: {s}");
    assert!(
        s["seekable"].as_f64().is_some_and(|end| end > 5.0),
        "not seekable to its end (Range): {s}"
    );
    browser.eval(&format!("{video}.currentTime = 7"));
    std::thread::sleep(Duration::from_millis(1500));
    let s = browser.eval(&state);
    assert!(
        s["t"].as_f64().is_some_and(|t| t >= 6.5),
        "the seek to 7 s did not stick: {s}"
    );
    assert!(
        s["ready"].as_u64() >= Some(2),
        "no frame after the seek: {s}"
    );
    assert!(s["error"].is_null(), "{s}");
    eprintln!("video after the seek: {s}");
    // Paused on a frame for the screenshot.
    browser.eval(&format!("{video}.pause(); true"));

    // An Opus track in its <audio>.
    let audio_el = format!(
        "[...document.querySelectorAll('audio')].find(a => a.getAttribute('src') === {})",
        js(&room_href(audio))
    );
    assert_eq!(
        browser.eval(&format!("!!{audio_el}")),
        Value::Bool(true),
        "no <audio> plays {}; players: {srcs}",
        room_href(audio)
    );
    browser
        .try_eval(&format!("{audio_el}.play().then(() => true)"))
        .unwrap_or_else(|e| panic!("play() {}: {e}", room_href(audio)));
    if let Err(e) = browser.wait_for(
        &format!("{audio_el}.currentTime > 1"),
        Duration::from_secs(30),
    ) {
        panic!(
            "the audio track does not play: {e}; error: {}",
            browser.eval(&format!("{audio_el}.error && {audio_el}.error.message"))
        );
    }
    assert_eq!(
        browser.eval(&format!("{audio_el}.error")),
        Value::Null,
        "{}",
        room_href(audio)
    );

    // The page as people see it: the composition paused on a frame, the audio playing.
    browser.eval(&format!(
        "{video}.scrollIntoView({{block: 'nearest'}}); true"
    ));
    browser
        .wait_for(&format!("{video}.readyState >= 2"), Duration::from_secs(10))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let update = std::env::var("UPDATE_SCREENSHOT").is_ok_and(|v| v == "1");
    let scratch = tempdir();
    let shot = if update {
        let docs = repo_root().join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        docs.join("serve-room.png")
    } else {
        scratch.path().join("serve-room.png")
    };
    browser.screenshot(&shot).unwrap();
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.len() > 10_000 && png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{}: not a PNG of a page ({} bytes)",
        shot.display(),
        png.len()
    );
    eprintln!(
        "screenshot: {} ({} bytes); browser part took {:?}",
        shot.display(),
        png.len(),
        started.elapsed()
    );
    drop(browser);
    let stats = served.stats();
    assert_eq!(stats["errors"], 0, "{stats}");
}

/// VLC as `nobody` (it refuses root), writing into `out` (owned by nobody).
fn vlc(out: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["env", "-i", "PATH=/usr/bin:/bin"])
        .arg(format!("HOME={}", out.display()))
        .args([
            "cvlc",
            "-I",
            "dummy",
            "--play-and-exit",
            "--no-video-title-show",
            "--no-interact",
        ]);
    cmd
}

/// `vlc` transcoding `url` into `dst`: audio to 16-bit PCM, video (if any) to small
/// MPEG-4 Part 2 frames, so that every frame is decoded by VLC.
///
/// A run keeps one kind of stream (`Only`): VLC's AVI muxer cannot add a stream once it
/// has begun, and after `--start-time` it sometimes began with the video alone and
/// dropped the audio ("cannot add a new stream … try increasing sout-mux-caching"),
/// about 1 run in 50 even with 5 s of mux caching.
fn vlc_transcode(out: &Path, url: &str, dst: &Path, only: Only, extra: &[&str]) -> VlcOutput {
    let mut cmd = vlc(out);
    let mux = match only {
        Only::Audio => {
            cmd.arg("--no-sout-video");
            "wav"
        }
        Only::Video => {
            cmd.arg("--no-sout-audio");
            "avi"
        }
    };
    cmd.args(extra).arg("--sout").arg(format!(
        "#transcode{{vcodec=mp4v,scale=0.25,acodec=s16l}}:std{{access=file,mux={mux},dst={}}}",
        dst.display()
    ));
    cmd.arg(url);
    let started = Instant::now();
    let output = run_within(&mut cmd, Duration::from_secs(30));
    eprintln!("vlc {url} {extra:?}: {:?}", started.elapsed());
    let written = VlcOutput {
        file: dst.to_owned(),
        log: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    if !output.status.success() || !dst.exists() {
        written.fail(&format!(
            "vlc {url} ({}) wrote no {}",
            output.status,
            dst.display()
        ));
    }
    written
}

/// The one kind of stream a `vlc_transcode` run keeps.
#[derive(Clone, Copy)]
enum Only {
    Audio,
    Video,
}

/// A file VLC wrote, and what it said meanwhile.
struct VlcOutput {
    file: PathBuf,
    log: String,
}

impl VlcOutput {
    fn pcm(&self, rate: u32) -> Vec<i16> {
        pcm(&self.file, rate).unwrap_or_else(|e| self.fail(&e))
    }

    fn video_frames(&self) -> u64 {
        video_frames(&self.file).unwrap_or_else(|e| self.fail(&e))
    }

    /// Panics with `what`, the end of VLC's log (without its chroma converter's
    /// repeated complaints) and the streams ffprobe sees in the file.
    fn fail(&self, what: &str) -> ! {
        let lines: Vec<&str> = self
            .log
            .lines()
            .filter(|l| !l.contains("Too high level of recursion"))
            .collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        let streams = run_within(
            Command::new("ffprobe")
                .args(["-v", "error", "-show_entries", "stream=index,codec_name"])
                .args(["-show_entries", "format=duration,size", "-of", "compact"])
                .arg(&self.file),
            Duration::from_secs(30),
        );
        panic!(
            "{what}\n--- VLC's log (end) ---\n{tail}\n--- ffprobe {} ---\n{}{}",
            self.file.display(),
            String::from_utf8_lossy(&streams.stdout),
            String::from_utf8_lossy(&streams.stderr)
        )
    }
}

/// The audio of `file` decoded by ffmpeg: mono 16-bit samples at `rate`.
fn pcm(file: &Path, rate: u32) -> Result<Vec<i16>, String> {
    let out = run_within(
        Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-i"])
            .arg(file)
            .args(["-vn", "-ac", "1", "-ar", &rate.to_string()])
            .args(["-f", "s16le", "-"]),
        Duration::from_secs(30),
    );
    if !out.status.success() {
        return Err(format!(
            "ffmpeg cannot decode the audio of {} ({}): {}",
            file.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect())
}

/// The number of video frames ffprobe decodes from `file`.
fn video_frames(file: &Path) -> Result<u64, String> {
    let out = run_within(
        Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
            .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
            .arg(file),
        Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().map_err(|_| {
        format!(
            "{}: no video frame count ({}): {text:?} {}",
            file.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn bytes_served(served: &Served) -> u64 {
    served.stats()["bytes_served"]
        .as_u64()
        .expect("bytes_served in /.stats")
}

#[tokio::test(flavor = "multi_thread")]
async fn vlc_plays_over_http_as_a_non_root_user() {
    for tool in ["cvlc", "setpriv", "ffmpeg", "ffprobe", "curl"] {
        if !require_tool(tool) {
            return;
        }
    }
    let emu = spawn(emulator_config()).await.unwrap();
    let objects = emu.emulator.objects();
    let done = completed(&objects);
    let composition = (*done
        .iter()
        .find(|o| o.kind == ObjectKind::Composition && o.extension == "mp4")
        .expect("an MP4 composition"))
    .clone();
    // PCMU: a decoder with one right answer, so VLC's samples must equal ffmpeg's.
    let sample = std::fs::read(repo_root().join("samples/audio-pcmu.mka")).unwrap();
    let pcmu = (*done
        .iter()
        .find(|o| o.encrypted && emu.emulator.plaintext(&o.sid).as_deref() == Some(&sample[..]))
        .expect("samples/audio-pcmu.mka, encrypted"))
    .clone();
    let plain = tempdir();
    let mut files = Vec::new();
    for o in [&composition, &pcmu] {
        let path = plain.path().join(format!("{}.{}", o.sid, o.extension));
        std::fs::write(&path, emu.emulator.plaintext(&o.sid).unwrap()).unwrap();
        files.push(path);
    }
    let url = emu.url.clone();
    tokio::task::spawn_blocking(move || vlc_plays(&url, &composition, &pcmu, &files))
        .await
        .unwrap();
}

fn vlc_plays(api_url: &str, composition: &ObjectInfo, pcmu: &ObjectInfo, plain: &[PathBuf]) {
    let served = Served::start(api_url, &keys().pem[0], &[]);
    // VLC's directory: nobody's, inside a directory nobody may only traverse.
    let scratch = tempdir();
    let out = scratch.path().join("vlc");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::chown(&out, Some(65534), Some(65534)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o711)).unwrap();

    // The audio track, bit for bit: VLC's samples are ffmpeg's (VLC may stop short of
    // the last packet: at most 50 ms).
    let url = served.at(&format!("/recordings/{}.{}", pcmu.sid, pcmu.extension));
    let before = bytes_served(&served);
    let wav = out.join("track.wav");
    let got = vlc_transcode(&out, &url, &wav, Only::Audio, &[]).pcm(8000);
    let want = pcm(&plain[1], 8000).unwrap();
    assert!(
        !got.is_empty() && want.starts_with(&got) && want.len() - got.len() <= 400,
        "VLC decoded {} samples of {url}, ffmpeg {} from the plaintext; equal prefix: {}",
        got.len(),
        want.len(),
        got.iter().zip(&want).take_while(|(a, b)| a == b).count()
    );
    let size = pcmu.size.unwrap();
    let grew = bytes_served(&served) - before;
    assert!(grew >= size, "served {grew} bytes for a {size}-byte file");

    // The composition: every video frame and the audio, decoded.
    let url = served.at(&format!(
        "/compositions/{}.{}",
        composition.sid, composition.extension
    ));
    let want_frames = video_frames(&plain[0]).unwrap();
    let want_secs = pcm(&plain[0], 48_000).unwrap().len() as f64 / 48_000.0;
    let before = bytes_served(&served);
    let frames = vlc_transcode(&out, &url, &out.join("video.avi"), Only::Video, &[]).video_frames();
    let audio = vlc_transcode(&out, &url, &out.join("audio.wav"), Only::Audio, &[]);
    let secs = audio.pcm(48_000).len() as f64 / 48_000.0;
    eprintln!("composition: {frames}/{want_frames} frames, {secs:.3}/{want_secs:.3} s of audio");
    assert!(
        frames + 5 >= want_frames && frames <= want_frames,
        "VLC decoded {frames} frames of {url}; ffprobe {want_frames} from the plaintext"
    );
    assert!(
        (secs - want_secs).abs() <= 0.2,
        "VLC decoded {secs:.3} s of audio from {url}; ffmpeg {want_secs:.3} s"
    );
    let size = composition.size.unwrap();
    let grew = bytes_served(&served) - before;
    assert!(grew >= size, "served {grew} bytes for a {size}-byte file");

    // Started 5 s in: the rest only. (VLC 3.0.24's audio runs 0.16-0.18 s longer than
    // the rest; its video, within a frame.)
    let start = ["--start-time", "5"];
    let fps = want_frames as f64 / want_secs;
    let rest = vlc_transcode(&out, &url, &out.join("video-5s.avi"), Only::Video, &start);
    let video_secs = rest.video_frames() as f64 / fps;
    let rest = vlc_transcode(&out, &url, &out.join("audio-5s.wav"), Only::Audio, &start);
    let audio_secs = rest.pcm(48_000).len() as f64 / 48_000.0;
    eprintln!("from 5 s: {video_secs:.3} s of video, {audio_secs:.3} s of audio");
    for (what, secs) in [("video", video_secs), ("audio", audio_secs)] {
        assert!(
            (secs - (want_secs - 5.0)).abs() <= 0.3,
            "{what} from 5 s in: {secs:.3} s, not {:.3}",
            want_secs - 5.0
        );
    }
    let stats = served.stats();
    assert_eq!(stats["errors"], 0, "{stats}");
}
