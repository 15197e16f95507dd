//! `compose` against the emulator's meeting room, measured with ffmpeg: each
//! participant's tone must sound exactly while they were in the room and their colour
//! fill their tile exactly then (±100 ms), black otherwise; the output lasts as long as
//! the room (trimmed and not); the reconnecting participant keeps one cell; the
//! participant whose resolution changes stays in their tile. Then the failures: a
//! wrong key, a corrupted track, and what is left on disk (nothing).
//!
//! The expectations come from the emulator's table of the meeting
//! ([`twilio_media_fs::emulator::meeting::MEETING`]), which `tests/meeting_samples.rs`
//! checks against the sample files themselves, and from Twilio's rule for its default
//! grid (cells as square as possible, filled in the order participants first publish
//! video), never from the plan `compose` makes.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::mount::{keys, output};
use common::{cli, require_tool, tempdir};
use twilio_media_fs::emulator::meeting::{MEETING, MeetingTrack, meeting_room_sid};
use twilio_media_fs::emulator::{EmulatorConfig, RunningEmulator, spawn};

/// The largest error allowed on a start or an end, seconds.
const TOLERANCE: f64 = 0.1;

fn config() -> EmulatorConfig {
    common::mount::emulator_config()
}

fn tools() -> bool {
    require_tool("ffmpeg") && require_tool("ffprobe")
}

fn compose(emu: &RunningEmulator, room: &str, extra: &[&str]) -> Command {
    let mut cmd = cli(emu);
    cmd.arg("compose")
        .arg(room)
        .arg("-k")
        .arg(&keys().pem[0])
        .args(extra);
    cmd
}

async fn run_ok(cmd: Command) -> String {
    let out = output(cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "compose failed: {stderr}");
    stderr
}

/// Runs `program args`, returning its standard output.
fn capture(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn duration_of(path: &Path) -> f64 {
    let out = capture(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
            path.to_str().unwrap(),
        ],
    );
    String::from_utf8_lossy(&out).trim().parse().unwrap()
}

fn stream_types(path: &Path) -> Vec<String> {
    let out = capture(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type",
            "-of",
            "csv=p=0",
            path.to_str().unwrap(),
        ],
    );
    String::from_utf8_lossy(&out)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Runs of consecutive `true` slices as (start, end) seconds, runs less than 100 ms
/// apart joined (an Opus encoder lets a pure tone dip for a slice or two: the sample
/// files have such dips themselves).
fn runs(present: &[bool], step: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    let mut start = None;
    for (i, &p) in present.iter().chain([false].iter()).enumerate() {
        match (p, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                let run = (s as f64 * step, i as f64 * step);
                match out.last_mut() {
                    Some(last) if run.0 - last.1 < 0.1 - 1e-9 => last.1 = run.1,
                    _ => out.push(run),
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

const RATE: usize = 16_000;
/// Audio is looked at in slices of this many seconds.
const SLICE: f64 = 0.02;

/// The output's audio, mono, 16 kHz, as decoded by ffmpeg.
fn pcm(path: &Path) -> Vec<f32> {
    let raw = capture(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            path.to_str().unwrap(),
            "-map",
            "0:a",
            "-ac",
            "1",
            "-ar",
            &RATE.to_string(),
            "-f",
            "f32le",
            "-",
        ],
    );
    raw.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The amplitude of `freq` in each slice (Goertzel over a Hann window).
fn tone_levels(pcm: &[f32], freq: f64) -> Vec<f64> {
    let n = (SLICE * RATE as f64) as usize;
    let w = 2.0 * std::f64::consts::PI * freq / RATE as f64;
    pcm.chunks(n)
        .map(|slice| {
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            for (i, &x) in slice.iter().enumerate() {
                let hann = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos();
                let s0 = f64::from(x) * hann + 2.0 * w.cos() * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
            // A sine of amplitude A gives A·n/4 under a Hann window.
            4.0 * power.sqrt() / n as f64
        })
        .collect()
}

/// Video frames as tiny RGB pictures: one pixel per `BLOCK` pixels of the output.
const BLOCK: u32 = 10;
const FPS: f64 = 25.0;

fn frames(path: &Path, width: u32, height: u32) -> Vec<Vec<u8>> {
    let (w, h) = (width / BLOCK, height / BLOCK);
    let raw = capture(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            path.to_str().unwrap(),
            "-map",
            "0:v",
            "-vf",
            &format!("fps={FPS},scale={w}:{h}:flags=area"),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
    );
    raw.chunks_exact((w * h * 3) as usize)
        .map(<[u8]>::to_vec)
        .collect()
}

fn close_to(pixel: &[u8], colour: [u8; 3]) -> bool {
    pixel
        .iter()
        .zip(colour)
        .all(|(&p, c)| (i32::from(p) - i32::from(c)).abs() < 60)
}

/// Where each participant was, on the output's timeline: the spans of their tracks of
/// `kind` shifted by `shift` seconds.
fn expected(kind: &str, shift: f64) -> BTreeMap<&'static str, Vec<(f64, f64)>> {
    let mut out: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for t in MEETING.iter().filter(|t| t.kind == kind) {
        out.entry(t.participant)
            .or_default()
            .push((t.start - shift, t.end - shift));
    }
    for spans in out.values_mut() {
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// The largest distance between matching ends of `got` and `want`; `None` when they do
/// not have the same number of spans.
fn error_of(got: &[(f64, f64)], want: &[(f64, f64)]) -> Option<f64> {
    (got.len() == want.len()).then(|| {
        got.iter()
            .zip(want)
            .map(|(g, w)| (g.0 - w.0).abs().max((g.1 - w.1).abs()))
            .fold(0.0, f64::max)
    })
}

/// Checks the composed `path` against the meeting, its timeline shifted by `shift`
/// seconds; returns the sync error of each participant's audio and video.
fn check_meeting(path: &Path, shift: f64, width: u32, height: u32) -> Vec<String> {
    let mut report = Vec::new();
    let mut failures = Vec::new();

    // Audio: each tone present exactly while its participant was.
    let pcm = pcm(path);
    for (who, want) in expected("audio", shift) {
        let track: &MeetingTrack = MEETING
            .iter()
            .find(|t| t.participant == who && t.kind == "audio")
            .unwrap();
        let levels = tone_levels(&pcm, f64::from(track.tone_hz.unwrap()));
        let peak = levels.iter().copied().fold(0.0, f64::max);
        let present: Vec<bool> = levels.iter().map(|&l| l > peak / 4.0).collect();
        let got = runs(&present, SLICE);
        match error_of(&got, &want) {
            Some(e) if e <= TOLERANCE => report.push(format!("{who} audio: {:.0} ms", e * 1000.0)),
            _ => failures.push(format!("{who}'s tone: heard {got:?}, expected {want:?}")),
        }
    }

    // Video: Twilio's default grid, cells in the order participants first show video.
    let video = expected("video", shift);
    let mut order: Vec<(&str, f64)> = video.iter().map(|(w, s)| (*w, s[0].0)).collect();
    order.sort_by(|a, b| a.1.total_cmp(&b.1));
    let n = order.len() as u32;
    let cols = (1..).find(|c| c * c >= n).unwrap();
    let rows = n.div_ceil(cols);
    let frames = frames(path, width, height);
    let (w, h) = (width / BLOCK, height / BLOCK);
    let centre = |cell: u32| {
        let (col, row) = (cell % cols, cell / cols);
        let x = (2 * col + 1) * w / (2 * cols);
        let y = (2 * row + 1) * h / (2 * rows);
        (y * w + x) as usize * 3
    };
    for (cell, (who, _)) in order.iter().enumerate() {
        let colour = MEETING
            .iter()
            .find(|t| t.participant == *who && t.kind == "video")
            .and_then(|t| t.colour)
            .unwrap();
        let at = centre(cell as u32);
        let shown: Vec<bool> = frames
            .iter()
            .map(|f| close_to(&f[at..at + 3], colour))
            .collect();
        let black: Vec<bool> = frames
            .iter()
            .map(|f| close_to(&f[at..at + 3], [0, 0, 0]))
            .collect();
        let got = runs(&shown, 1.0 / FPS);
        let want = &video[who];
        match error_of(&got, want) {
            Some(e) if e <= TOLERANCE => report.push(format!("{who} video: {:.0} ms", e * 1000.0)),
            _ => failures.push(format!(
                "{who}'s tile {cell}: shown {got:?}, expected {want:?}"
            )),
        }
        // Whenever it is not the participant's colour, the tile is black.
        let other = shown.iter().zip(&black).position(|(&s, &b)| !s && !b);
        if let Some(i) = other {
            failures.push(format!(
                "{who}'s tile {cell} shows neither its colour nor black at {:.2} s: {:?}",
                i as f64 / FPS,
                &frames[i][at..at + 3]
            ));
        }
    }
    // Cells nobody has stay black.
    for cell in n..cols * rows {
        let at = centre(cell);
        if let Some(i) = frames
            .iter()
            .position(|f| !close_to(&f[at..at + 3], [0, 0, 0]))
        {
            failures.push(format!(
                "empty cell {cell} is not black at {:.2} s",
                i as f64 / FPS
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    report
}

fn room_span() -> (f64, f64) {
    let start = MEETING
        .iter()
        .map(|t| t.start)
        .fold(f64::INFINITY, f64::min);
    let end = MEETING.iter().map(|t| t.end).fold(0.0, f64::max);
    (start, end)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_meeting_composes_in_time_and_in_place() {
    if !tools() {
        return;
    }
    let emu = spawn(config()).await.unwrap();
    let dir = tempdir();
    let out = dir.path().join("meeting.mp4");
    let stderr = run_ok(compose(
        &emu,
        &meeting_room_sid(),
        &["-o", out.to_str().unwrap(), "--cache-size", "16MiB"],
    ))
    .await;
    let (start, end) = room_span();
    let duration = duration_of(&out);
    assert!(
        (duration - (end - start)).abs() <= TOLERANCE,
        "trimmed: {duration} s, the media spans {start}-{end} s"
    );
    assert_eq!(stream_types(&out), ["video", "audio"]);
    let report = check_meeting(&out, start, 640, 480);
    eprintln!("sync error, trimmed mp4: {}", report.join(", "));

    // Mode 0600, nothing else left in the directory.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(common::hostile::files_in(dir.path()), ["meeting.mp4"]);

    // The tool's own memory (ffmpeg apart) within the cache and 64 MiB.
    let peak = stderr
        .split("peak memory of twilio-media-fs ")
        .nth(1)
        .and_then(|s| s.split(" MiB").next())
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no peak memory in: {stderr}"));
    assert!(peak <= 16 + 64, "peak memory {peak} MiB");
    emu.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn untrimmed_webm_keeps_the_rooms_timeline() {
    if !tools() {
        return;
    }
    let emu = spawn(config()).await.unwrap();
    let dir = tempdir();
    let out = dir.path().join("meeting.webm");
    run_ok(compose(
        &emu,
        &meeting_room_sid(),
        &[
            "-o",
            out.to_str().unwrap(),
            "--no-trim",
            "--resolution",
            "320x240",
        ],
    ))
    .await;
    let (_, end) = room_span();
    let duration = duration_of(&out);
    assert!(
        (duration - end).abs() <= TOLERANCE,
        "untrimmed: {duration} s, the room's media ends at {end} s"
    );
    let report = check_meeting(&out, 0.0, 320, 240);
    eprintln!("sync error, untrimmed webm: {}", report.join(", "));
    emu.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn audio_only_and_selected_sources() {
    if !tools() {
        return;
    }
    let emu = spawn(config()).await.unwrap();
    let dir = tempdir();
    let out = dir.path().join("voices.mp4");
    run_ok(compose(
        &emu,
        &meeting_room_sid(),
        &[
            "-o",
            out.to_str().unwrap(),
            "--audio-only",
            "--exclude-audio",
            "alice*",
        ],
    ))
    .await;
    assert_eq!(stream_types(&out), ["audio"]);
    let pcm = pcm(&out);
    let level = |who: &str| {
        let hz = MEETING
            .iter()
            .find(|t| t.participant == who && t.kind == "audio")
            .and_then(|t| t.tone_hz)
            .unwrap();
        tone_levels(&pcm, f64::from(hz))
            .into_iter()
            .fold(0.0, f64::max)
    };
    assert!(
        level("alice") < 0.01,
        "alice was excluded: {}",
        level("alice")
    );
    assert!(level("bob") > 0.05, "bob: {}", level("bob"));
    // Trimmed to what is left: bob from 4 s (alice's 2-4 s cut) to alice's... no:
    // alice is out, so the output spans the others' media only.
    let others = MEETING
        .iter()
        .filter(|t| t.kind == "audio" && t.participant != "alice");
    let (s, e) = others.fold((f64::INFINITY, 0.0f64), |(s, e), t| {
        (s.min(t.start), e.max(t.end))
    });
    let gaps: f64 = {
        let mut spans: Vec<(f64, f64)> = MEETING
            .iter()
            .filter(|t| t.kind == "audio" && t.participant != "alice")
            .map(|t| (t.start, t.end))
            .collect();
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut gap = 0.0;
        let mut at = spans[0].1;
        for (a, b) in spans {
            if a > at {
                gap += a - at;
            }
            at = at.max(b);
        }
        gap
    };
    let duration = duration_of(&out);
    assert!(
        (duration - (e - s - gaps)).abs() <= TOLERANCE,
        "{duration} s, expected {}",
        e - s - gaps
    );
    emu.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_prints_the_tracks_and_the_command_and_writes_nothing() {
    if !tools() {
        return;
    }
    let emu = spawn(config()).await.unwrap();
    let dir = tempdir();
    let mut cmd = compose(&emu, &meeting_room_sid(), &["--plan"]);
    cmd.current_dir(dir.path());
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for t in MEETING {
        assert!(
            text.contains(t.track_name),
            "{} not in:\n{text}",
            t.track_name
        );
    }
    assert!(text.contains("\nffmpeg "), "{text}");
    assert!(text.contains("-filter_complex"), "{text}");
    assert!(common::hostile::files_in(dir.path()).is_empty());
    emu.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_fails_before_any_file_exists() {
    if !tools() {
        return;
    }
    let emu = spawn(config()).await.unwrap();
    let dir = tempdir();
    let out = dir.path().join("meeting.mp4");
    let mut cmd = cli(&emu);
    cmd.args([
        "compose",
        &meeting_room_sid(),
        "-o",
        out.to_str().unwrap(),
        "-k",
    ])
    .arg(&keys().pem[1]);
    let ran = output(cmd).await;
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(!ran.status.success());
    assert!(stderr.contains("cannot read recording RT"), "{stderr}");
    assert!(stderr.to_lowercase().contains("key"), "{stderr}");
    assert!(common::hostile::files_in(dir.path()).is_empty());
    emu.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_track_is_named_and_leaves_nothing() {
    if !tools() {
        return;
    }
    // A synthetic recording decrypts to bytes that are no media at all: in the room of
    // its own ("emulator-load").
    let emu = spawn(EmulatorConfig {
        synthetic: vec![100_000],
        ..config()
    })
    .await
    .unwrap();
    let bad = emu
        .emulator
        .objects()
        .into_iter()
        .find(|o| o.synthetic)
        .expect("the synthetic recording");
    let room = bad.room_sid.clone();
    let dir = tempdir();
    let out = dir.path().join("load.mp4");
    let ran = output(compose(&emu, &room, &["-o", out.to_str().unwrap()])).await;
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(!ran.status.success());
    assert!(stderr.contains(&bad.sid), "{stderr}");
    assert!(common::hostile::files_in(dir.path()).is_empty());
    emu.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_room_with_one_track() {
    if !tools() {
        return;
    }
    // One recording, alone in its room: a room of --data-dir.
    let data = tempdir();
    std::fs::create_dir(data.path().join("lone")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/audio-opus.mka"),
        data.path().join("lone/solo-audio.mka"),
    )
    .unwrap();
    let emu = spawn(EmulatorConfig {
        data_dir: Some(data.path().to_owned()),
        ..config()
    })
    .await
    .unwrap();
    let room = twilio_media_fs::emulator::catalog::sid("RM", "room:lone");
    let in_room = emu
        .emulator
        .objects()
        .into_iter()
        .filter(|o| o.room_sid == room)
        .count();
    assert_eq!(in_room, 1, "one track in its room");
    let room = &room;
    let dir = tempdir();
    let out = dir.path().join("lone.mp4");
    run_ok(compose(&emu, room, &["-o", out.to_str().unwrap()])).await;
    let duration = duration_of(&out);
    assert!((duration - 10.0).abs() <= TOLERANCE, "{duration}");
    // samples/audio-opus.mka is a 440 Hz tone.
    let level = tone_levels(&pcm(&out), 440.0)
        .into_iter()
        .fold(0.0, f64::max);
    assert!(level > 0.05, "{level}");
    emu.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_room_with_an_unencrypted_recording() {
    if !tools() {
        return;
    }
    let emu = spawn(config()).await.unwrap();
    let plain = emu
        .emulator
        .objects()
        .into_iter()
        .find(|o| o.sid.starts_with("RT") && !o.encrypted && o.size.is_some())
        .expect("a recording stored unencrypted");
    let dir = tempdir();
    let out = dir.path().join("room.mp4");
    let stderr = run_ok(compose(
        &emu,
        &plain.room_sid,
        &["-o", out.to_str().unwrap()],
    ))
    .await;
    assert!(
        stderr.contains(&plain.sid) && stderr.contains("unencrypted"),
        "{stderr}"
    );
    assert_eq!(stream_types(&out), ["video", "audio"]);
    // And --require-encrypted refuses the room, naming the recording.
    let refused = output(compose(
        &emu,
        &plain.room_sid,
        &[
            "-o",
            out.with_extension("again.mp4").to_str().unwrap(),
            "--require-encrypted",
        ],
    ))
    .await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains(&plain.sid), "{stderr}");
    assert_eq!(common::hostile::files_in(dir.path()), ["room.mp4"]);
    emu.stop().await.unwrap();
}

/// The colour at (x, y) of the output (`BLOCK`-pixel blocks) in each frame.
fn colour_track(frames: &[Vec<u8>], width: u32, x: u32, y: u32) -> Vec<[u8; 3]> {
    let at = ((y / BLOCK) * (width / BLOCK) + x / BLOCK) as usize * 3;
    frames
        .iter()
        .map(|f| [f[at], f[at + 1], f[at + 2]])
        .collect()
}

/// Which of the meeting's colours (or black) each frame shows, as (name, start, end)
/// runs.
fn colour_runs(track: &[[u8; 3]]) -> Vec<(String, f64, f64)> {
    let name = |p: &[u8; 3]| -> String {
        if close_to(p, [0, 0, 0]) {
            return "black".into();
        }
        MEETING
            .iter()
            .find(|t| t.colour.is_some_and(|c| close_to(p, c)))
            .map_or(format!("{p:?}"), |t| t.participant.to_owned())
    };
    let mut out: Vec<(String, f64, f64)> = Vec::new();
    for (i, p) in track.iter().enumerate() {
        let (n, t) = (name(p), i as f64 / FPS);
        match out.last_mut() {
            Some(last) if last.0 == n => last.2 = t + 1.0 / FPS,
            _ => out.push((n, t, t + 1.0 / FPS)),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_twilio_layout_with_reuse() {
    if !tools() {
        return;
    }
    // Alice fills the left half; the others share the one cell on the right, the newest
    // shown (reuse show_newest).
    let layout = r#"{
        "left": {"width": 320, "video_sources": ["alice-video"]},
        "right": {"x_pos": 320, "max_rows": 1, "max_columns": 1, "reuse": "show_newest",
                  "video_sources": ["*"], "video_sources_excluded": ["alice*"]}
    }"#;
    let emu = spawn(config()).await.unwrap();
    let dir = tempdir();
    let out = dir.path().join("layout.mp4");
    run_ok(compose(
        &emu,
        &meeting_room_sid(),
        &["-o", out.to_str().unwrap(), "--layout", layout],
    ))
    .await;
    let frames = frames(&out, 640, 480);
    let (start, _) = room_span();
    let runs_at = |x| colour_runs(&colour_track(&frames, 640, x, 240));
    // Expected, from the table: bob from his start; carol, newer, takes the cell when she
    // starts; bob's second file, newer still, takes it back; carol's end then frees
    // nothing (she was replaced), and bob stays until his end.
    let span = |who: &str, n: usize| {
        let t = MEETING
            .iter()
            .filter(|t| t.participant == who && t.kind == "video")
            .nth(n)
            .unwrap();
        (t.start - start, t.end - start)
    };
    let (bob1, bob2, carol) = (span("bob", 0), span("bob", 1), span("carol", 0));
    let want = [
        ("black", 0.0, bob1.0),
        ("bob", bob1.0, carol.0),
        ("carol", carol.0, bob2.0),
        ("bob", bob2.0, bob2.1),
        ("black", bob2.1, frames.len() as f64 / FPS),
    ];
    let got = runs_at(480);
    let matches = got.len() == want.len()
        && got.iter().zip(&want).all(|(g, w)| {
            g.0 == w.0 && (g.1 - w.1).abs() <= TOLERANCE && (g.2 - w.2).abs() <= TOLERANCE
        });
    assert!(matches, "right cell: {got:?}, expected {want:?}");
    // The left half is alice's alone, for the whole meeting (black at most a frame or
    // two at the ends: the trimmed timeline starts with Opus's pre-skip, 14 ms before
    // her first picture).
    let left = runs_at(160);
    let end = frames.len() as f64 / FPS;
    let alice: Vec<_> = left.iter().filter(|r| r.0 == "alice").collect();
    assert_eq!(alice.len(), 1, "{left:?}");
    assert!(
        alice[0].1 <= TOLERANCE && alice[0].2 >= end - TOLERANCE,
        "{left:?}"
    );
    assert!(
        left.iter().all(|r| r.0 == "alice" || r.0 == "black"),
        "{left:?}"
    );
    emu.stop().await.unwrap();
}

/// A `compose` of the meeting room into `out`, once ffmpeg is writing its temporary
/// file (and compose has not ended).
async fn writing(
    emu: &RunningEmulator,
    out: &Path,
    stderr: std::process::Stdio,
) -> std::process::Child {
    let dir = out.parent().unwrap();
    let mut cmd = compose(emu, &meeting_room_sid(), &["-o", out.to_str().unwrap()]);
    cmd.stdout(std::process::Stdio::null()).stderr(stderr);
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while common::hostile::files_in(dir).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no temporary file appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "compose ended before it was stopped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_compose_leaves_nothing() {
    if !tools() {
        return;
    }
    let emu = spawn(config()).await.unwrap();
    let dir = tempdir();
    let out = dir.path().join("meeting.webm");
    // Once ffmpeg is writing the temporary file, SIGTERM.
    let child = writing(&emu, &out, std::process::Stdio::piped()).await;
    let partial = common::hostile::files_in(dir.path());
    assert!(
        partial[0].starts_with(".meeting.webm.") && partial[0].ends_with(".partial"),
        "{partial:?}"
    );
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = common::mount::blocking(move || child.wait_with_output().unwrap()).await;
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.status.signal(),
        Some(libc::SIGTERM),
        "dies of the signal"
    );
    assert!(
        String::from_utf8_lossy(&status.stderr).contains("stopped by SIGTERM"),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(common::hostile::files_in(dir.path()).is_empty());
    // ffmpeg went with it: no process is still writing into the directory.
    let dir_name = dir.path().to_str().unwrap().to_owned();
    common::mount::wait_until("ffmpeg to end", || {
        !Command::new("pgrep")
            .args(["-f", &dir_name])
            .status()
            .unwrap()
            .success()
    });
    assert!(common::hostile::files_in(dir.path()).is_empty());
    emu.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misleading_name_or_a_missing_directory_is_refused_first() {
    if !tools() {
        return;
    }
    let emu = spawn(config()).await.unwrap();
    let dir = tempdir();
    for (out, extra, says) in [
        ("room.webm", vec!["--format", "mp4"], "name it .mp4"),
        ("room.mp4", vec!["--format", "webm"], "name it .webm"),
        ("missing/room.mp4", vec![], "is not a directory"),
    ] {
        let path = dir.path().join(out);
        let mut args = vec!["-o", path.to_str().unwrap()];
        args.extend(extra);
        let ran = output(compose(&emu, &meeting_room_sid(), &args)).await;
        let stderr = String::from_utf8_lossy(&ran.stderr);
        assert!(!ran.status.success(), "{out}");
        assert!(stderr.contains(says), "{out}: {stderr}");
    }
    assert!(common::hostile::files_in(dir.path()).is_empty());
    // Nothing was fetched: the checks come before the first request.
    assert_eq!(emu.emulator.stats().storage_requests, 0);
    emu.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn ffmpeg_does_not_outlive_a_killed_compose() {
    if !tools() || !require_tool("pgrep") {
        return;
    }
    let emu = spawn(config()).await.unwrap();
    let dir = tempdir();
    let out = dir.path().join("meeting.webm");
    let mut child = writing(&emu, &out, std::process::Stdio::null()).await;
    // SIGKILL: no handler runs; ffmpeg must die with it (PR_SET_PDEATHSIG).
    child.kill().unwrap();
    common::mount::blocking(move || child.wait().unwrap()).await;
    let dir_name = dir.path().to_str().unwrap().to_owned();
    common::mount::wait_until("ffmpeg to die with compose", || {
        !Command::new("pgrep")
            .args(["-f", &dir_name])
            .status()
            .unwrap()
            .success()
    });
    // What kill -9 leaves is the hidden temporary file, never the output's name.
    let left = common::hostile::files_in(dir.path());
    assert!(!out.exists(), "{left:?}");
    assert!(left.iter().all(|f| f.ends_with(".partial")), "{left:?}");
    emu.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_shows_the_progress_bar() {
    if !tools() || !require_tool("script") {
        return;
    }
    let emu = spawn(config()).await.unwrap();
    let dir = tempdir();
    let out = dir.path().join("meeting.mp4");
    // `script` gives compose a pseudo-terminal for its stderr; the environment (the
    // emulator's URL and credentials) goes through as it is.
    let line = format!(
        "{} compose {} -k {} -o {}",
        env!("CARGO_BIN_EXE_twilio-media-fs"),
        meeting_room_sid(),
        keys().pem[0].display(),
        out.display()
    );
    let mut script = Command::new("script");
    script.args(["-qec", &line, "/dev/null"]);
    for (k, v) in cli(&emu).get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    let ran = output(script).await;
    let shown = String::from_utf8_lossy(&ran.stdout);
    assert!(ran.status.success(), "{shown}");
    assert!(shown.contains("composing"), "{shown}");
    assert!(shown.contains('%'), "{shown}");
    assert!(out.is_file());
    emu.stop().await.unwrap();
}
