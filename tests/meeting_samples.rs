//! The meeting room: its sample files say what `emulator::meeting::MEETING` says (start
//! times and ends, by ffprobe), and the emulator serves the room and its recordings with
//! the table's offsets, track names and participants.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use twilio_media_fs::crypto::seal;
use twilio_media_fs::emulator::meeting::{
    CAROL_RESIZE_AT, MEETING, MEETING_OFFSET_MS, MEETING_ROOM, meeting_room_sid,
};
use twilio_media_fs::emulator::{EmulatorConfig, EmulatorCredentials, RunningEmulator, spawn};

use common::require_tool;

fn sample(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples/meeting")
        .join(file)
}

fn ffprobe(args: &[&str], file: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe {args:?} {file:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The container's start time (`format=start_time`), seconds.
fn start_time(file: &Path) -> f64 {
    let out = ffprobe(
        &["-show_entries", "format=start_time", "-of", "csv=p=0"],
        file,
    );
    out.trim().parse().unwrap()
}

/// Where the media ends: the latest packet's pts + duration, seconds. (ffprobe's
/// `format=duration` is no length here: ffmpeg writes the Matroska Duration as the end
/// time, start included.)
fn end_time(file: &Path) -> f64 {
    let out = ffprobe(
        &[
            "-show_entries",
            "packet=pts_time,duration_time",
            "-of",
            "csv=p=0",
        ],
        file,
    );
    out.lines()
        .filter_map(|l| {
            let mut f = l.split(',');
            let pts: f64 = f.next()?.parse().ok()?;
            let duration: f64 = f.next()?.parse().unwrap_or(0.0);
            Some(pts + duration)
        })
        .fold(f64::MIN, f64::max)
}

#[test]
fn sample_files_match_the_table() {
    if !require_tool("ffprobe") {
        return;
    }
    for t in MEETING {
        let path = sample(t.file);
        let start = start_time(&path);
        assert!(
            (start - t.start_time).abs() <= 0.02,
            "{}: start_time {start}, table {}",
            t.file,
            t.start_time
        );
        // On the room timeline, through the offset, as a compositor places it.
        let segment = (t.offset_ms - MEETING_OFFSET_MS) as f64 / 1000.0;
        let end = end_time(&path) + segment;
        assert!(
            (end - t.end).abs() <= 0.1,
            "{}: ends at {end} on the room timeline, table {}",
            t.file,
            t.end
        );
        let codec = ffprobe(
            &["-show_entries", "stream=codec_name", "-of", "csv=p=0"],
            &path,
        );
        let want = match t.codec {
            "OPUS" => "opus",
            "PCMU" => "pcm_mulaw",
            "VP8" => "vp8",
            other => panic!("{other}"),
        };
        assert_eq!(codec.trim(), want, "{}", t.file);
    }
}

/// Carol's camera changes resolution in the middle of her one file, at a keyframe.
#[test]
fn carol_changes_resolution() {
    if !require_tool("ffprobe") {
        return;
    }
    let carol = MEETING
        .iter()
        .find(|t| t.file == "carol-video.mkv")
        .unwrap();
    let out = ffprobe(
        &[
            "-select_streams",
            "v",
            "-show_entries",
            "frame=pts_time,width,height",
            "-of",
            "csv=p=0",
        ],
        &sample(carol.file),
    );
    let mut sizes: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for line in out.lines().filter(|l| !l.is_empty()) {
        // ffprobe writes a section's fields in its own order: find the time by its dot.
        let f: Vec<&str> = line.split(',').filter(|v| !v.is_empty()).collect();
        let (time, dims): (Vec<&str>, Vec<&str>) = f.iter().partition(|v| v.contains('.'));
        let t: f64 = time[0].parse().unwrap();
        let e = sizes.entry(dims.join("x")).or_insert((f64::MAX, f64::MIN));
        *e = (e.0.min(t), e.1.max(t));
    }
    assert_eq!(
        sizes.keys().collect::<Vec<_>>(),
        ["320x240", "640x360"],
        "{out}"
    );
    assert!((sizes["320x240"].0 - carol.start).abs() < 0.01);
    assert!((sizes["640x360"].0 - CAROL_RESIZE_AT).abs() < 0.01);
    assert!(sizes["320x240"].1 < CAROL_RESIZE_AT);
}

fn config() -> EmulatorConfig {
    EmulatorConfig {
        public_keys: vec![seal::generate_key(1024).to_public_key()],
        ..Default::default()
    }
}

async fn json(emu: &RunningEmulator, path: &str) -> Value {
    let c = EmulatorCredentials::default();
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", emu.url))
        .basic_auth(&c.account_sid, Some(&c.auth_token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK, "{path}");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn the_emulator_serves_the_meeting_room() {
    let emu = spawn(config()).await.unwrap();
    let room = meeting_room_sid();
    let rooms = json(&emu, "/v1/Rooms?Status=completed&PageSize=100").await;
    let listed = rooms["rooms"].as_array().unwrap();
    let r = listed.iter().find(|r| r["sid"] == room.as_str()).unwrap();
    assert_eq!(r["unique_name"], MEETING_ROOM);
    assert_eq!(
        listed.last().unwrap()["sid"],
        room.as_str(),
        "after the others"
    );
    let room_created = r["date_created"].as_str().unwrap().to_owned();

    let body = json(&emu, &format!("/v1/Rooms/{room}/Recordings?PageSize=100")).await;
    let recs = body["recordings"].as_array().unwrap();
    assert_eq!(recs.len(), MEETING.len());
    let mut participants = BTreeMap::new();
    let mut sources = HashSet::new();
    for t in MEETING {
        let r = recs
            .iter()
            .find(|r| r["sid"] == t.sid().as_str())
            .unwrap_or_else(|| panic!("{} is not listed", t.file));
        assert_eq!(r["track_name"], t.track_name, "{}", t.file);
        assert_eq!(r["offset"], t.offset_ms, "{}", t.file);
        assert_eq!(r["type"], t.kind, "{}", t.file);
        assert_eq!(r["codec"], t.codec, "{}", t.file);
        assert_eq!(r["container_format"], t.container(), "{}", t.file);
        assert_eq!(r["duration"], t.duration(), "{}", t.file);
        assert_eq!(r["status"], "completed");
        assert_eq!(r["grouping_sids"]["room_sid"], room.as_str());
        let pa = r["grouping_sids"]["participant_sid"].as_str().unwrap();
        assert!(pa.starts_with("PA"));
        assert_eq!(pa, t.participant_sid());
        // One participant SID per participant, and no two share one.
        assert_eq!(
            participants.entry(t.participant).or_insert(pa.to_owned()),
            pa
        );
        assert!(sources.insert(r["source_sid"].as_str().unwrap().to_owned()));
        // Created when its track started, whole seconds after the room.
        let created = r["date_created"].as_str().unwrap();
        assert_eq!(
            secs(created) - secs(&room_created),
            t.start.floor() as i64,
            "{}",
            t.file
        );
        // The recording resource says the same.
        let own = json(&emu, &format!("/v1/Recordings/{}", t.sid())).await;
        assert_eq!(own["offset"], t.offset_ms);
        assert_eq!(own["track_name"], t.track_name);
        // Served encrypted, and decrypts to the sample.
        let plain = emu.emulator.plaintext(&t.sid()).unwrap();
        assert_eq!(plain, std::fs::read(sample(t.file)).unwrap(), "{}", t.file);
        let info = emu.emulator.objects().into_iter();
        let info = info.into_iter().find(|o| o.sid == t.sid()).unwrap();
        assert!(info.encrypted && info.length_header, "{}", t.file);
    }
    let unique: HashSet<&String> = participants.values().collect();
    assert_eq!(unique.len(), 4);
    // The other rooms' recordings keep offset 0.
    let all = json(&emu, "/v1/Recordings?PageSize=100").await;
    for r in all["recordings"].as_array().unwrap() {
        if r["grouping_sids"]["room_sid"] != room.as_str() {
            assert_eq!(r["offset"], 0, "{}", r["sid"]);
        }
    }
}

/// Seconds of an RFC 3339 UTC timestamp within its day (the meeting is within one day).
fn secs(t: &str) -> i64 {
    let hms: Vec<i64> = t[11..19].split(':').map(|v| v.parse().unwrap()).collect();
    hms[0] * 3600 + hms[1] * 60 + hms[2]
}

/// A subdirectory of `--data-dir` is a room: the meeting's files, and an H.264 camera,
/// served under another name with the codec each file says and one offset.
#[tokio::test]
async fn a_data_dir_subdirectory_is_a_room() {
    let dir = tempfile::tempdir().unwrap();
    let room_dir = dir.path().join("standup");
    std::fs::create_dir(&room_dir).unwrap();
    for t in MEETING {
        std::fs::copy(sample(t.file), room_dir.join(t.file)).unwrap();
    }
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    std::fs::copy(
        samples.join("video-h264.mkv"),
        room_dir.join("erin-video.mkv"),
    )
    .unwrap();
    // Not `<participant>-<audio|video>[-<n>]`, or not Matroska: left out.
    std::fs::copy(samples.join("audio-opus.mka"), room_dir.join("mix.mka")).unwrap();
    std::fs::copy(
        samples.join("audio-opus.mka"),
        room_dir.join("frank-audio-x.mka"),
    )
    .unwrap();
    std::fs::write(room_dir.join("notes.txt"), "ignored").unwrap();
    let emu = spawn(EmulatorConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..config()
    })
    .await
    .unwrap();
    let room = twilio_media_fs::emulator::catalog::sid("RM", "room:standup");
    let got = json(&emu, "/v1/Rooms/standup").await;
    assert_eq!(got["sid"], room.as_str());
    let rooms = json(&emu, "/v1/Rooms?Status=completed").await;
    let names: Vec<&str> = (rooms["rooms"].as_array().unwrap().iter())
        .map(|r| r["unique_name"].as_str().unwrap())
        .collect();
    assert_eq!(names.last(), Some(&"standup"), "after the built-in rooms");
    assert!(names.contains(&MEETING_ROOM));

    let body = json(&emu, &format!("/v1/Rooms/{room}/Recordings?PageSize=100")).await;
    let recs = body["recordings"].as_array().unwrap();
    assert_eq!(recs.len(), MEETING.len() + 1, "{body:#}");
    let room_created = secs(got["date_created"].as_str().unwrap());
    let by_track =
        |name: &str| -> Vec<&Value> { recs.iter().filter(|r| r["track_name"] == name).collect() };
    for t in MEETING {
        let same = by_track(t.track_name);
        let r = same
            .iter()
            .find(|r| r["duration"] == t.duration())
            .unwrap_or_else(|| panic!("{}: {same:?}", t.file));
        assert_eq!(r["codec"], t.codec, "{}", t.file);
        assert_eq!(r["type"], t.kind, "{}", t.file);
        assert_eq!(r["container_format"], t.container());
        assert_eq!(r["offset"], MEETING_OFFSET_MS, "one segment: one offset");
        // Created when the file says it starts (bob's second files: 2 s).
        let created = secs(r["date_created"].as_str().unwrap()) - room_created;
        assert_eq!(created, t.start_time.round() as i64, "{}", t.file);
        // Every file of a participant has their one SID, not the meeting's.
        let pa = r["grouping_sids"]["participant_sid"].as_str().unwrap();
        let prefix = format!("{}-", t.participant);
        for other in recs.iter().filter(|r| {
            r["track_name"]
                .as_str()
                .is_some_and(|n| n.starts_with(&prefix))
        }) {
            assert_eq!(other["grouping_sids"]["participant_sid"], pa);
        }
        assert_ne!(pa, t.participant_sid());
    }
    let erin = by_track("erin-video");
    assert_eq!(erin.len(), 1);
    assert_eq!(
        (&erin[0]["codec"], &erin[0]["duration"]),
        (&Value::from("H264"), &Value::from(10))
    );
    // Decrypts to the file.
    let sid = erin[0]["sid"].as_str().unwrap();
    assert_eq!(
        emu.emulator.plaintext(sid).unwrap(),
        std::fs::read(samples.join("video-h264.mkv")).unwrap()
    );
}

/// A room's file whose name says video but that holds audio is refused, with its name.
#[tokio::test]
async fn a_room_file_named_for_the_wrong_kind_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let room_dir = dir.path().join("mixup");
    std::fs::create_dir(&room_dir).unwrap();
    std::fs::copy(sample("dave-audio.mka"), room_dir.join("dave-video.mkv")).unwrap();
    let err = spawn(EmulatorConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..config()
    })
    .await
    .err()
    .unwrap();
    let text = format!("{err:#}");
    assert!(
        text.contains("dave-video.mkv") && text.contains("PCMU"),
        "{text}"
    );
}
