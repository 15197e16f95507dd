//! Issue 17: Voice call recordings end to end, with real clients. The emulator serves
//! them as Twilio does (the 2010-04-01 API, `encryption_details`, a 302 to storage,
//! AES-256-GCM with the tag appended, the content key RSA-OAEP-wrapped for the
//! account's key); the mount, `get`, `ls` and `doctor` read them; `cp`, `ffprobe` and
//! `ffmpeg` read the mount. Every file is compared with the emulator's plaintext.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::mount::{Mount, command, emulator_config, keys, ok, output};
use common::*;
use twilio_media_fs::emulator::{EmulatorConfig, ObjectInfo, RunningEmulator, spawn};

async fn emulator(config: EmulatorConfig) -> RunningEmulator {
    spawn(config).await.unwrap()
}

/// The completed call recordings, with their plaintext.
fn call_recordings(emu: &RunningEmulator) -> Vec<(ObjectInfo, Vec<u8>)> {
    let all: Vec<_> = (emu.emulator.call_recordings().into_iter())
        .filter(|o| o.status == "completed")
        .map(|o| {
            let plain = emu.emulator.plaintext(&o.sid).expect("plaintext").to_vec();
            (o, plain)
        })
        .collect();
    assert!(all.len() >= 4, "the emulator serves several: {}", all.len());
    all
}

/// `get SID -k KEY.pem -o TO` against `emu`.
fn get(emu: &RunningEmulator, sid: &str, key: &Path, to: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = cli(emu);
    cmd.args(["get", sid, "-k"]).arg(key).arg("-o").arg(to);
    cmd
}

fn wav(m: &Mount, o: &ObjectInfo) -> std::path::PathBuf {
    m.path.join("voice").join(format!("{}.wav", o.sid))
}

/// The mount's `.stats`, as JSON.
async fn stats(m: &Mount) -> serde_json::Value {
    let text = ok(command("cat", &[m.path.join(".stats").to_str().unwrap()])).await;
    serde_json::from_str(&text).unwrap()
}

fn fetched(s: &serde_json::Value) -> u64 {
    s["bytes_fetched"]
        .as_u64()
        .unwrap_or_else(|| panic!("no bytes_fetched in {s}"))
}

/// `stat -c %s`, once it is the exact size (sized in the background after the listing).
async fn exact_size(path: &Path, want: u64) -> u64 {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let out = ok(command("stat", &["-c", "%s", path.to_str().unwrap()])).await;
        let size: u64 = out.trim().parse().unwrap();
        if size == want || Instant::now() > until {
            return size;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `voice/RE….wav` and `calls/CA…/RE….wav` of every call recording: its exact size, and
/// `cp` gives its plaintext byte for byte (the tag verified on the way: `cp` reads in
/// order); the unencrypted one is served as it is; the two recordings of one call share
/// its directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_recordings_on_the_mount_are_their_plaintext() {
    let emu = emulator(emulator_config()).await;
    let recordings = call_recordings(&emu);
    let mut m = Mount::foreground(&emu, &[&keys().pem[0]]).await;
    let scratch = tempdir();
    let mut listed: Vec<String> = std::fs::read_dir(m.path.join("voice"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    listed.sort();
    let mut want: Vec<String> = recordings
        .iter()
        .map(|(o, _)| format!("{}.wav", o.sid))
        .collect();
    want.sort();
    assert_eq!(listed, want);
    let mut unencrypted = 0;
    for (o, plain) in &recordings {
        let path = wav(&m, o);
        assert_eq!(
            exact_size(&path, plain.len() as u64).await,
            plain.len() as u64,
            "{}: ls -l shows the plaintext size",
            o.sid
        );
        let copy = scratch.path().join(format!("{}.wav", o.sid));
        ok(command(
            "cp",
            &[path.to_str().unwrap(), copy.to_str().unwrap()],
        ))
        .await;
        assert_eq!(sha256_file(&copy), sha256(plain), "{}", o.sid);
        std::fs::remove_file(&copy).unwrap();
        let in_call = m
            .path
            .join("calls")
            .join(&o.room_sid)
            .join(format!("{}.wav", o.sid));
        assert_eq!(
            std::fs::metadata(&in_call).unwrap().len(),
            plain.len() as u64
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(&in_call).unwrap().ino(),
            std::fs::metadata(&path).unwrap().ino(),
            "one inode in voice/ and calls/"
        );
        if !o.encrypted {
            unencrypted += 1;
            assert!(plain.starts_with(b"RIFF"), "{}", o.sid);
        }
    }
    assert_eq!(unencrypted, 1, "the emulator serves one unencrypted");
    let mut calls = std::collections::BTreeMap::<&str, usize>::new();
    for (o, _) in &recordings {
        *calls.entry(&o.room_sid).or_default() += 1;
    }
    let (call, &n) = calls.iter().max_by_key(|(_, n)| **n).unwrap();
    assert!(n >= 2, "a call with two recordings");
    let in_dir = std::fs::read_dir(m.path.join("calls").join(call))
        .unwrap()
        .count();
    assert_eq!(in_dir, n, "{call}");
    m.unmount().await;
}

/// The 2-channel recording is 2 channels to ffprobe; the 10-minute one is probed for
/// a few bytes, and `ffmpeg -ss` on the mount decodes what it decodes from the
/// plaintext.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_and_ffmpeg_seek_in_call_recordings() {
    if !require_tool("ffprobe") || !require_tool("ffmpeg") {
        return;
    }
    let emu = emulator(emulator_config()).await;
    let recordings = call_recordings(&emu);
    let mut m = Mount::foreground(&emu, &[&keys().pem[0]]).await;
    let probe = |path: &Path| {
        command(
            "ffprobe",
            &[
                "-v",
                "error",
                "-show_entries",
                "stream=channels,sample_rate,codec_name:format=duration",
                "-of",
                "default=nw=1",
                path.to_str().unwrap(),
            ],
        )
    };

    let (long, plain) = recordings.iter().max_by_key(|(_, p)| p.len()).unwrap();
    let path = wav(&m, long);
    let before = fetched(&stats(&m).await);
    let out = ok(probe(&path)).await;
    let probed = fetched(&stats(&m).await) - before;
    let duration: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("duration="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(duration >= 600.0, "{out}");
    eprintln!(
        "ffprobe of {} ({} bytes, {duration:.0} s): {probed} bytes fetched ({:.2}%)",
        long.sid,
        plain.len(),
        100.0 * probed as f64 / plain.len() as f64
    );
    // The open's first window and at most one window of read-ahead (and the 16-byte
    // sizing GETs of the listing), however long the file.
    let window = twilio_media_fs::app::DEFAULT_WINDOW;
    assert!(
        probed <= 2 * window + 1024,
        "ffprobe fetched {probed} of {} bytes",
        plain.len()
    );

    let mut two_channels = 0;
    for (o, _) in &recordings {
        let out = ok(probe(&wav(&m, o))).await;
        assert!(out.contains("codec_name=pcm_s16le"), "{}: {out}", o.sid);
        assert!(out.contains("sample_rate=8000"), "{}: {out}", o.sid);
        if out.contains("channels=2") {
            two_channels += 1;
        }
    }
    assert!(two_channels >= 1, "a 2-channel recording");

    // ffmpeg -ss 300 -t 5 on the mount and on the plaintext (through a pipe: no
    // plaintext file is written).
    let before = fetched(&stats(&m).await);
    let md5 = |input: &str| {
        let mut cmd = command(
            "ffmpeg",
            &[
                "-v", "error", "-ss", "300", "-i", input, "-t", "5", "-f", "md5", "-",
            ],
        );
        cmd.stdin(std::process::Stdio::piped());
        cmd
    };
    let on_mount = ok(md5(path.to_str().unwrap())).await;
    let seeked = fetched(&stats(&m).await) - before;
    let mut from_plain = md5("pipe:0");
    let mut child = from_plain
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feed = plain.clone();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&feed);
    });
    let got = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(got.status.success());
    assert_eq!(on_mount, String::from_utf8(got.stdout).unwrap());
    assert!(on_mount.starts_with("MD5="), "{on_mount}");
    eprintln!(
        "ffmpeg -ss 300 -t 5 of {}: {seeked} bytes fetched ({:.2}% of the file)",
        long.sid,
        100.0 * seeked as f64 / plain.len() as f64
    );
    assert!(
        seeked * 4 < plain.len() as u64,
        "a seek fetches a part, not the file: {seeked}"
    );
    m.unmount().await;
}

/// A key that is not the account's: opening a call recording is EACCES; `get` says so
/// and writes nothing. `--require-encrypted` refuses the unencrypted one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_eacces_and_require_encrypted_refuses_unencrypted_ones() {
    let emu = emulator(emulator_config()).await;
    let recordings = call_recordings(&emu);
    let encrypted = recordings.iter().find(|(o, _)| o.encrypted).unwrap();
    let plain = recordings.iter().find(|(o, _)| !o.encrypted).unwrap();

    let mut m = Mount::foreground(&emu, &[&keys().pem[1]]).await;
    let err = std::fs::read(wav(&m, &encrypted.0)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
    m.unmount().await;

    let mut m = Mount::start(&emu.url, &[&keys().pem[0]], &["--require-encrypted"]).await;
    let err = std::fs::read(wav(&m, &plain.0)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
    assert_eq!(std::fs::read(wav(&m, &encrypted.0)).unwrap(), encrypted.1);
    m.unmount().await;

    let dir = tempdir();
    let out = output(get(&emu, &encrypted.0.sid, &keys().pem[1], dir.path())).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("no private key unwraps"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file");
}

/// `get RE…` writes each call recording's plaintext (to a file and to stdout), and `ls
/// voice` lists them all with their calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_ls_voice() {
    let emu = emulator(emulator_config()).await;
    let recordings = call_recordings(&emu);
    let dir = tempdir();
    for (o, plain) in &recordings {
        ok(get(&emu, &o.sid, &keys().pem[0], dir.path())).await;
        let file = dir.path().join(format!("{}.wav", o.sid));
        assert_eq!(sha256_file(&file), sha256(plain), "{}", o.sid);
    }
    let (o, plain) = &recordings[0];
    let out = output(get(&emu, &o.sid, &keys().pem[0], "-")).await;
    assert!(out.status.success());
    assert_eq!(sha256(&out.stdout), sha256(plain));

    let mut cmd = cli(&emu);
    cmd.args(["ls", "voice"]);
    let table = ok(cmd).await;
    assert!(table.starts_with("SID"), "{table}");
    assert!(table.lines().next().unwrap().contains("CALL"), "{table}");
    for (o, _) in &recordings {
        let row = table.lines().find(|l| l.starts_with(&o.sid));
        let row = row.unwrap_or_else(|| panic!("{} not in {table}", o.sid));
        assert!(row.contains(&o.room_sid), "{row}");
    }
    let mut cmd = cli(&emu);
    cmd.args(["ls", "voice", "--encryption", "--json"]);
    let json = ok(cmd).await;
    for (o, _) in &recordings {
        let line = json.lines().find(|l| l.contains(&o.sid)).unwrap();
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let want = if o.encrypted { "yes" } else { "no" };
        assert_eq!(v["encrypted"], want, "{line}");
    }
}

/// A changed call recording (`emulator --hostile tampered`: one bit flipped in the
/// middle of every stored call recording): `cp` of the mount fails with EIO and the
/// mount logs one ERROR naming the SID; `get` exits 1 with no file; nothing succeeds
/// silently. The Video files of the same account still read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_call_recording_fails_cp_and_get() {
    use twilio_media_fs::emulator::hostile::Hostile;
    let emu = emulator(EmulatorConfig {
        hostile: vec![Hostile::Tampered],
        ..emulator_config()
    })
    .await;
    let recordings = call_recordings(&emu);
    // The 10-minute one: its middle is far from its end.
    let (o, plain) = recordings
        .iter()
        .filter(|(o, _)| o.encrypted)
        .max_by_key(|(_, p)| p.len())
        .unwrap();
    let mut m = Mount::foreground(&emu, &[&keys().pem[0]]).await;
    let scratch = tempdir();
    let copy = scratch.path().join("copy.wav");
    let cp = output(command(
        "cp",
        &[wav(&m, o).to_str().unwrap(), copy.to_str().unwrap()],
    ))
    .await;
    let stderr = String::from_utf8_lossy(&cp.stderr);
    assert!(!cp.status.success(), "cp of a changed recording succeeded");
    assert!(stderr.contains("Input/output error"), "{stderr}");
    // The changed window alone reads (random access is unauthenticated), one byte off.
    // The stored byte flipped is the middle of the stored object (the plaintext and
    // its 16-byte tag); CTR changes the same byte of plaintext.
    let mid = (plain.len() + 16) / 2;
    assert!(plain.len() > 8 << 20, "{}", plain.len());
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::open(wav(&m, o)).unwrap();
        let mut buf = vec![0u8; 16];
        f.read_exact_at(&mut buf, mid as u64).unwrap();
        assert_eq!(buf[0], plain[mid] ^ 1);
        assert_eq!(&buf[1..], &plain[mid + 1..mid + 16]);
    }
    m.unmount().await;
    let log = m.log();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "one ERROR: {log}");
    assert!(
        errors[0].contains(&o.sid) && errors[0].contains("GCM tag"),
        "{log}"
    );

    let video = emu.emulator.objects();
    let video = video
        .iter()
        .find(|v| v.status == "completed" && v.encrypted)
        .unwrap();
    let mut m = Mount::foreground(&emu, &[&keys().pem[0]]).await;
    let read = std::fs::read(m.file(video)).unwrap();
    assert_eq!(read, emu.emulator.plaintext(&video.sid).unwrap().to_vec());
    m.unmount().await;

    let dir = tempdir();
    let out = output(get(&emu, &o.sid, &keys().pem[0], dir.path())).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "get of a changed recording succeeded"
    );
    assert!(stderr.contains("GCM tag does not match"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file");
    let out = output(get(&emu, &o.sid, &keys().pem[0], "-")).await;
    assert!(!out.status.success());
    assert!(
        out.stdout.len() < plain.len(),
        "stdout never gets the end of a changed recording"
    );
}

/// The end of a changed call recording read first (`tail -c`: served unauthenticated,
/// and cached by the kernel), then the whole file with `cp`: the cached end must not
/// spare `cp` the tag's check. Each open of a call recording not verified yet drops
/// its cached pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_end_does_not_hide_a_changed_call_recording() {
    use twilio_media_fs::emulator::hostile::Hostile;
    let emu = emulator(EmulatorConfig {
        hostile: vec![Hostile::Tampered],
        ..emulator_config()
    })
    .await;
    let recordings = call_recordings(&emu);
    let (o, plain) = recordings
        .iter()
        .filter(|(o, _)| o.encrypted)
        .max_by_key(|(_, p)| p.len())
        .unwrap();
    let mut m = Mount::foreground(&emu, &[&keys().pem[0]]).await;
    let path = wav(&m, o);
    // More than the last window: the daemon is then not asked for any of it again
    // if the kernel keeps those pages.
    let n = 3 * twilio_media_fs::app::DEFAULT_WINDOW as usize;
    let tail = output(command(
        "tail",
        &["-c", &n.to_string(), path.to_str().unwrap()],
    ))
    .await;
    assert!(tail.status.success());
    assert!(
        tail.stdout == plain[plain.len() - n..],
        "the end alone is served"
    );
    let scratch = tempdir();
    let copy = scratch.path().join("copy.wav");
    let cp = output(command(
        "cp",
        &[path.to_str().unwrap(), copy.to_str().unwrap()],
    ))
    .await;
    assert!(
        !cp.status.success(),
        "cp of a changed recording succeeded from the page cache"
    );
    m.unmount().await;
}
