//! What a running mount tells about itself: `MOUNTPOINT/.stats` (JSON counters, read
//! with real `cat`, `dd` and `stat`, never writable) and, with `-vv`, one debug line per
//! storage fetch. The counters are checked to move as reads happen: bytes fetched after
//! a first read, cache hits on a re-read once the page cache is dropped, open handles
//! while a file is open, errors after a read no key can decrypt, retries under faults.

mod common;

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use common::mount::*;
use common::*;
use serde_json::Value;
use twilio_media_fs::emulator::{EmulatorConfig, ObjectInfo, RunningEmulator, spawn};

async fn emulator(config: EmulatorConfig) -> RunningEmulator {
    spawn(EmulatorConfig {
        public_keys: keys().private.iter().map(|p| p.to_public_key()).collect(),
        ..config
    })
    .await
    .unwrap()
}

/// `cat MNT/.stats`, parsed.
async fn stats(mnt: &Path) -> Value {
    let text = ok(command("cat", &[mnt.join(".stats").to_str().unwrap()])).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn n(v: &Value, path: &str) -> u64 {
    path.split('.')
        .fold(v, |v, k| &v[k])
        .as_u64()
        .unwrap_or_else(|| panic!("{path} is not a number in {v}"))
}

/// Completed, encrypted with key 1, with media: the files the mount can read.
fn readable(emu: &RunningEmulator) -> Vec<ObjectInfo> {
    emu.emulator
        .objects()
        .into_iter()
        .filter(|o| o.status == "completed" && o.size.is_some() && o.key_index != Some(1))
        .filter(|o| !o.synthetic)
        .collect()
}

/// Drops the file's pages from the page cache, so the next read reaches the mount.
fn drop_page_cache(path: &Path) {
    let f = std::fs::File::open(path).unwrap();
    // SAFETY: a valid descriptor; the advice only evicts clean cached pages.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise");
}

/// Waits (a second at most) for a counter to read `want`.
async fn settles(mnt: &Path, key: &str, want: u64) {
    let mut got = None;
    for _ in 0..50 {
        let v = n(&stats(mnt).await, key);
        if v == want {
            return;
        }
        got = Some(v);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{key} stays {got:?}, expected {want}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_is_json_and_its_counters_move() {
    if !require_tool("dd") {
        return;
    }
    let emu = emulator(EmulatorConfig::default()).await;
    // Small windows: the samples span several, so a first read misses the cache.
    let m = Mount::start(&emu.url, &[&keys().pem[0]], &["--window", "64KiB"]).await;
    let before = stats(&m.path).await;
    for key in [
        "uptime_secs",
        "cache.hits",
        "cache.misses",
        "cache.capacity",
        "bytes_served",
        "bytes_fetched",
        "fetches",
        "retries",
        "fetch_errors",
        "errors",
        "open_handles",
        "in_flight",
    ] {
        n(&before, key);
    }
    assert_eq!(n(&before, "bytes_fetched"), 0, "nothing read yet: {before}");
    assert_eq!(
        n(&before, "cache.capacity"),
        512 << 20,
        "the default --cache-size"
    );

    // Hidden from listings, found by name, read-only, a regular file.
    let listed = ok(command("ls", &["-a", m.path_str()])).await;
    assert!(!listed.contains(".stats"), "{listed}");
    let st = ok(command(
        "stat",
        &["-c", "%F %a", m.path.join(".stats").to_str().unwrap()],
    ))
    .await;
    assert_eq!(st.trim(), "regular file 444");

    // A first read fetches.
    let file = readable(&emu).into_iter().max_by_key(|o| o.size).unwrap();
    let path = m.file(&file);
    let plain = emu.emulator.plaintext(&file.sid).unwrap();
    let copy = std::fs::read(&path).unwrap();
    assert_eq!(sha256(&copy), sha256(&plain));
    let first = stats(&m.path).await;
    assert!(n(&first, "bytes_fetched") >= plain.len() as u64, "{first}");
    assert!(
        n(&first, "fetches") > 0 && n(&first, "cache.misses") > 0,
        "{first}"
    );
    assert!(n(&first, "bytes_served") >= plain.len() as u64, "{first}");
    assert_eq!(n(&first, "errors"), 0, "{first}");

    // A re-read, the page cache dropped, is served from the mount's cache, not fetched
    // again. (A window a handle was served whole is dropped from that cache: the page
    // cache holds it. So part of one window is read, with the kernel's read-ahead off.)
    let part: usize = 16 << 10;
    let at: u64 = 64 << 10; // window 1: not the first, which comes with the open
    let want = plain[at as usize..at as usize + part].to_vec();
    let read_part = move |path: PathBuf| {
        let f = std::fs::File::open(&path).unwrap();
        // SAFETY: a valid descriptor; the advice only turns read-ahead off.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM) };
        assert_eq!(rc, 0, "posix_fadvise");
        let mut buf = vec![0u8; part];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf, at).unwrap();
        buf
    };
    drop_page_cache(&path);
    let p = path.clone();
    assert_eq!(blocking(move || read_part(p)).await, want);
    let first = stats(&m.path).await;
    drop_page_cache(&path);
    let p = path.clone();
    assert_eq!(blocking(move || read_part(p)).await, want);
    let second = stats(&m.path).await;
    assert!(
        n(&second, "cache.hits") > n(&first, "cache.hits"),
        "hits move: {first} then {second}"
    );
    assert_eq!(
        n(&second, "bytes_fetched"),
        n(&first, "bytes_fetched"),
        "nothing fetched again: {first} then {second}"
    );
    assert!(n(&second, "bytes_served") > n(&first, "bytes_served"));

    // An open file is an open handle (FUSE's release follows close shortly).
    let held = std::fs::File::open(&path).unwrap();
    settles(&m.path, "open_handles", 1).await;
    drop(held);
    settles(&m.path, "open_handles", 0).await;

    // Small reads (dd bs=7) get the same whole document as one `cat`.
    let stats_path = m.path.join(".stats");
    let by_7 = ok(command(
        "dd",
        &[
            &format!("if={}", stats_path.display()),
            "bs=7",
            "status=none",
        ],
    ))
    .await;
    let parsed: Value = serde_json::from_str(&by_7).expect("dd bs=7 reads whole JSON");
    assert!(n(&parsed, "bytes_fetched") >= n(&second, "bytes_fetched"));
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_cannot_be_written() {
    let emu = emulator(EmulatorConfig::default()).await;
    let m = Mount::foreground(&emu, &[&keys().pem[0]]).await;
    let stats_path = m.path.join(".stats");
    let err = blocking(move || {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&stats_path)
            .unwrap_err()
    })
    .await;
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    let out = output(command(
        "sh",
        &["-c", &format!("echo x > {}/.stats", m.path_str())],
    ))
    .await;
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("Read-only file system"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_count_reads_no_key_can_decrypt() {
    let emu = emulator(EmulatorConfig::default()).await;
    // Only key 1: the recording for key 2 (a rotated key) cannot be read.
    let m = Mount::foreground(&emu, &[&keys().pem[0]]).await;
    let rotated = emu
        .emulator
        .objects()
        .into_iter()
        .find(|o| o.key_index == Some(1))
        .expect("a recording for the second key");
    let path = m.file(&rotated);
    let err = blocking(move || std::fs::read(path).unwrap_err()).await;
    assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
    let s = stats(&m.path).await;
    assert!(n(&s, "errors") >= 1, "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn vv_logs_one_line_per_fetch_and_retries_are_counted() {
    // Every 3rd storage GET fails: some fetches take two attempts.
    let emu = emulator(EmulatorConfig {
        fail_every: Some(3),
        ..Default::default()
    })
    .await;
    let m = Mount::start(&emu.url, &[&keys().pem[0]], &["-vv"]).await;
    let files = readable(&emu);
    for f in &files {
        let data = std::fs::read(m.file(f)).unwrap();
        assert_eq!(
            sha256(&data),
            sha256(&emu.emulator.plaintext(&f.sid).unwrap())
        );
    }
    let s = stats(&m.path).await;
    assert!(n(&s, "retries") > 0, "{s}");
    assert_eq!(
        n(&s, "fetch_errors"),
        0,
        "every fetch succeeded in the end: {s}"
    );
    let fetches = n(&s, "fetches");

    let log = std::fs::read_to_string(&m.stderr).unwrap();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("storage fetch") && !l.contains("storage fetch failed"))
        .collect();
    assert_eq!(
        lines.len() as u64,
        fetches,
        "one line per fetch, as many as .stats counts"
    );
    for f in &files {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!("sid={}", f.sid)))
            .unwrap_or_else(|| panic!("no fetch line for {}:\n{log}", f.sid));
        assert!(line.contains("DEBUG"), "{line}");
        for field in ["range=", "bytes=", "ms=", "attempts="] {
            assert!(line.contains(field), "{field} missing: {line}");
        }
    }
    assert!(
        lines.iter().any(|l| l.contains("attempts=2")),
        "a retried fetch says so:\n{}",
        lines.join("\n")
    );
}

/// A file read from start to end leaves (almost) nothing in the mount's cache: each
/// window a handle was served whole is in the kernel's page cache, so the mount drops
/// its copy (`cache.released`) instead of holding the whole file until evicted.
#[tokio::test(flavor = "multi_thread")]
async fn windows_read_whole_leave_the_cache() {
    let emu = emulator(EmulatorConfig::default()).await;
    let window: u64 = 32 << 10;
    let m = Mount::start(&emu.url, &[&keys().pem[0]], &["--window", "32KiB"]).await;
    let file = readable(&emu).into_iter().max_by_key(|o| o.size).unwrap();
    let plain = emu.emulator.plaintext(&file.sid).unwrap();
    let windows = (plain.len() as u64).div_ceil(window);
    assert!(windows >= 8, "the largest sample spans {windows} windows");
    let path = m.file(&file);
    let copy = blocking(move || std::fs::read(path).unwrap()).await;
    assert_eq!(sha256(&copy), sha256(&plain));
    let s = stats(&m.path).await;
    assert!(
        n(&s, "cache.released") >= windows - 1,
        "{windows} windows read whole, released: {s}"
    );
    assert!(
        n(&s, "cache.bytes") <= 2 * window,
        "a whole file read, yet the cache holds: {s}"
    );
}

/// A cold open checks the key against the object's last two blocks. Asked for alongside
/// the first window (`Range: bytes=-32`), they cost no round trip of their own: with a
/// delay of `L` before every answer, the first byte of a file listed larger than a window
/// comes about `2L` after the open (`/Media`, then both GETs at once), not `3L`. The
/// debug log shows the suffix GET and no ranged GET of the tail.
#[tokio::test(flavor = "multi_thread")]
async fn a_cold_open_asks_for_the_tail_alongside_the_first_window() {
    const L: std::time::Duration = std::time::Duration::from_millis(700);
    let emu = emulator(EmulatorConfig {
        synthetic: vec![8 << 20],
        latency: L,
        ..Default::default()
    })
    .await;
    let object = (emu.emulator.objects().into_iter())
        .find(|o| o.synthetic)
        .expect("the synthetic recording");
    let m = Mount::start(&emu.url, &[&keys().pem[0]], &["-vv"]).await;
    let path = m.file(&object);
    let listed = path.clone();
    blocking(move || std::fs::metadata(listed).unwrap()).await; // the listing, untimed
    let took = blocking(move || {
        use std::io::Read;
        let started = std::time::Instant::now();
        let mut byte = [0u8; 1];
        let mut file = std::fs::File::open(path).unwrap();
        file.read_exact(&mut byte).unwrap();
        started.elapsed()
    })
    .await;
    eprintln!("first byte after {took:?} (L = {L:?})");
    let log = std::fs::read_to_string(&m.stderr).unwrap();
    let fetches: Vec<&str> = (log.lines())
        .filter(|l| l.contains("storage fetch") && l.contains(&object.sid))
        .collect();
    assert!(
        fetches.iter().any(|l| l.contains("range=\"-32\"")),
        "no suffix GET:\n{}",
        fetches.join("\n")
    );
    let plain = object.size.expect("a size");
    let stored = plain + 16 - plain % 16;
    let tail = format!("range=\"{}-{}\"", stored - 32, stored);
    assert!(
        !fetches.iter().any(|l| l.contains(&tail)),
        "the tail fetched again:\n{}",
        fetches.join("\n")
    );
    assert!(
        took < L * 5 / 2,
        "{took:?}: the tail was waited for in turn"
    );
}
