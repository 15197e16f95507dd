//! Sizes and times that stay the same from one mount to the next, as backup tools see
//! them through the kernel (issue 12): `rsync -a` of the mount, unmount, mount again
//! over the same size cache, and `rsync -ai --dry-run` has nothing to transfer while
//! the emulator's storage counters show no fetch; and `--exact-sizes`, which sizes
//! every file after a listing without reading it.
//!
//! Besides the emulator's samples (listed with their plaintext size), the account has
//! objects encrypted here without the length header, which the emulator lists with
//! their stored length less one (the most the plaintext can be), as Twilio lists the
//! stored length: their size is wrong until learned. Needs root, /dev/fuse and rsync (CI installs it).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use common::mount::*;
use common::*;
use twilio_media_fs::crypto::seal;
use twilio_media_fs::emulator::{EmulatorConfig, RunningEmulator, spawn};

/// Plaintext sizes of the objects encrypted here: none a multiple of 16 less one, so
/// that the listed size (stored − 1) is never the plaintext's.
const PRE_ENCRYPTED: [usize; 3] = [1_000, 65_539, 300_001];

/// The emulator with its samples and [`PRE_ENCRYPTED`] objects (no length header);
/// the plaintexts of the latter by file name.
async fn emulator(data: &Path) -> (RunningEmulator, BTreeMap<String, Vec<u8>>) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let public = keys().private[0].to_public_key();
    for (i, len) in PRE_ENCRYPTED.into_iter().enumerate() {
        let plain = pseudo_random(len, 40 + i as u64);
        let cek = seal::random_cek(true);
        let iv = [i as u8 + 1; 16];
        let name = format!("pre{i}.mka");
        std::fs::write(
            data.join(format!("{name}.enc")),
            seal::encrypt(&cek, &iv, &plain),
        )
        .unwrap();
        let headers = format!(
            "HTTP/1.1 200 OK\r\nx-amz-meta-x-amz-key: {}\r\nx-amz-meta-x-amz-iv: {}\r\n\r\n",
            b64.encode(seal::wrap_cek(&public, &cek)),
            b64.encode(iv)
        );
        std::fs::write(data.join(format!("{name}.headers")), headers).unwrap();
    }
    let emu = spawn(EmulatorConfig {
        data_dir: Some(data.to_owned()),
        ..emulator_config()
    })
    .await
    .unwrap();
    let mut plains = BTreeMap::new();
    for (i, len) in PRE_ENCRYPTED.into_iter().enumerate() {
        let o = emu
            .emulator
            .objects()
            .into_iter()
            .find(|o| {
                o.size == Some(twilio_media_fs::crypto::window::ciphertext_len(len as u64) - 1)
            })
            .expect("the pre-encrypted object is listed");
        plains.insert(
            format!("{}.{}", o.sid, o.extension),
            pseudo_random(len, 40 + i as u64),
        );
    }
    (emu, plains)
}

/// `rsync ARGS… FROM/ TO/`: its stdout.
async fn rsync(args: &[&str], from: &Path, to: &Path) -> String {
    let mut cmd = command("rsync", args);
    cmd.arg(format!("{}/", from.display()))
        .arg(format!("{}/", to.display()));
    ok(cmd).await
}

/// The mount's `.stats`, as JSON.
async fn stats(m: &Mount) -> serde_json::Value {
    let text = ok(command("cat", &[m.path.join(".stats").to_str().unwrap()])).await;
    serde_json::from_str(&text).unwrap()
}

/// `stat -c %s` of `path`.
async fn size_of(path: PathBuf) -> u64 {
    let out = ok(command("stat", &["-c", "%s", path.to_str().unwrap()])).await;
    out.trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsync_again_after_a_remount_transfers_and_fetches_nothing() {
    if !require_tool("rsync") {
        return;
    }
    let scratch = tempdir();
    let (data, backup, cache) = (
        scratch.path().join("data"),
        scratch.path().join("backup"),
        scratch.path().join("cache"),
    );
    std::fs::create_dir(&data).unwrap();
    let (emu, plains) = emulator(&data).await;
    let cache_flag = ["--metadata-cache", cache.to_str().unwrap()];
    let key = &keys().pem[0];

    // First mount: a full copy, with the plaintext.
    let mut m = Mount::start(&emu.url, &[key], &cache_flag).await;
    for (name, plain) in &plains {
        let listed = size_of(m.path.join("recordings").join(name)).await;
        assert_ne!(
            listed,
            plain.len() as u64,
            "{name}: listed with its stored size"
        );
    }
    rsync(&["-a"], &m.path, &backup).await;
    for (name, plain) in &plains {
        let copied = std::fs::read(backup.join("recordings").join(name)).unwrap();
        assert_eq!(sha256(&copied), sha256(plain), "{name}");
    }
    m.unmount().await;
    let saved = std::fs::read_to_string(cache.join("sizes")).unwrap();
    assert!(saved.lines().count() > plains.len(), "{saved}");

    // Second mount, same cache: nothing to transfer, nothing fetched.
    emu.emulator.reset_stats();
    let m = Mount::start(&emu.url, &[key], &cache_flag).await;
    let changes = rsync(&["-ai", "--dry-run"], &m.path, &backup).await;
    assert_eq!(changes, "", "rsync -ai --dry-run after a remount");
    let storage = emu.emulator.stats();
    assert_eq!(
        (
            storage.storage_requests,
            storage.storage_bytes,
            storage.media_requests
        ),
        (0, 0, 0),
        "no fetch: {storage:?}"
    );
    let s = stats(&m).await;
    assert_eq!(
        (s["fetches"].as_u64(), s["bytes_fetched"].as_u64()),
        (Some(0), Some(0))
    );
    drop(m);

    // Control: without the cache, the files never opened on this mount have their
    // listed size, and rsync would copy them again.
    let m = Mount::start(&emu.url, &[key], &["--no-metadata-cache"]).await;
    let changes = rsync(&["-ai", "--dry-run"], &m.path, &backup).await;
    for name in plains.keys() {
        let path = format!(" recordings/{name}");
        assert!(
            changes
                .lines()
                .any(|l| l.starts_with(">f.s") && l.ends_with(&path)),
            "{name} not listed as changed in size:\n{changes}"
        );
    }
    assert!(
        !changes.lines().any(|l| l.starts_with(".d")),
        "directory times are stable without the cache too:\n{changes}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_sizes_sizes_every_file_without_reading_it() {
    let scratch = tempdir();
    let data = scratch.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let (emu, plains) = emulator(&data).await;
    let key = &keys().pem[0];
    let m = Mount::start(&emu.url, &[key], &["--exact-sizes", "--no-metadata-cache"]).await;
    let recordings = m.path.join("recordings");
    let listed = ok(command("ls", &[recordings.to_str().unwrap()])).await;
    let files = listed.lines().count() as u64;
    let deadline = Instant::now() + DEADLINE;
    for (name, plain) in &plains {
        loop {
            let size = size_of(recordings.join(name)).await;
            if size == plain.len() as u64 {
                break;
            }
            assert!(Instant::now() < deadline, "{name} still {size} bytes");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Every file sized (one fetch at least each), nothing in flight.
    loop {
        let s = stats(&m).await;
        let (fetches, in_flight) = (s["fetches"].as_u64(), s["in_flight"].as_u64());
        if fetches.unwrap() >= files && in_flight == Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "not all sized: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let storage = emu.emulator.stats();
    // At most the first block of every file, and the last two blocks of those without
    // the length header: no file is read.
    assert!(
        storage.storage_bytes <= files * (16 + 32),
        "{files} files sized with {} bytes fetched",
        storage.storage_bytes
    );
    let s = stats(&m).await;
    assert_eq!(
        s["bytes_fetched"].as_u64(),
        Some(storage.storage_bytes),
        "{s}"
    );
}
