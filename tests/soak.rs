//! The concurrency soak: 32 reader threads at random offsets and lengths over every
//! sample on one real mount, for `SOAK_SECS` seconds (10 by default; CI), while the
//! emulator injects faults (500s, bodies cut short, URLs that expire every 2 s, 429s on
//! the API). Every read is compared with the plaintext: zero mismatches, zero errors,
//! and no read slower than the bound (`--retry-budget` + `--timeout` + 1 s).
//!
//! The long run: `SOAK_SECS=60 cargo test --release --test soak -- --nocapture`.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::mount::*;
use common::reads::*;
use common::*;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use twilio_media_fs::crypto::seal;
use twilio_media_fs::emulator::{EmulatorConfig, spawn};

const READERS: u64 = 32;
const TIMEOUT: Duration = Duration::from_secs(1);
const BUDGET: Duration = Duration::from_secs(8);

/// `SOAK_SECS`, or 10.
fn duration() -> Duration {
    let secs = std::env::var("SOAK_SECS")
        .ok()
        .map(|s| s.parse::<u64>().expect("SOAK_SECS is a number of seconds"))
        .unwrap_or(10);
    Duration::from_secs(secs)
}

fn key() -> &'static (tempfile::TempDir, rsa::PrivateKey) {
    static KEY: OnceLock<(tempfile::TempDir, rsa::PrivateKey)> = OnceLock::new();
    KEY.get_or_init(|| {
        let dir = tempdir();
        let private = seal::generate_key(2048);
        write_private(
            &dir.path().join("key.pem"),
            private.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
        );
        (dir, private)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_readers_with_faults_on() {
    let (dir, private) = key();
    let emu = spawn(EmulatorConfig {
        public_keys: vec![private.to_public_key()],
        fail_every: Some(7),
        drop_every: Some(5),
        ttl: Duration::from_secs(2),
        throttle_every: Some(4),
        ..Default::default()
    })
    .await
    .unwrap();
    let objects: Vec<_> = emu
        .emulator
        .objects()
        .into_iter()
        .filter(|o| o.status == "completed")
        .collect();
    assert!(objects.len() >= 7, "every sample variant");
    let budget = format!("{}ms", BUDGET.as_millis());
    let timeout = format!("{}ms", TIMEOUT.as_millis());
    let flags = [
        "--retry-budget",
        &budget,
        "--timeout",
        &timeout,
        // Small windows in a small cache: reads keep going to the storage.
        "--window",
        "64KiB",
        "--cache-size",
        "256KiB",
    ];
    let mut m = Mount::start(&emu.url, &[&dir.path().join("key.pem")], &flags).await;
    let files: Vec<_> = objects
        .iter()
        .map(|o| (m.file(o), emu.emulator.plaintext(&o.sid).unwrap()))
        .collect();

    let run = duration();
    let started = Instant::now();
    let readers: Vec<TimedReader> = (0..READERS)
        .map(|seed| TimedReader::start(files.clone(), seed + 1))
        .collect();
    tokio::time::sleep(run).await;
    readers.iter().for_each(TimedReader::stop);
    let elapsed = started.elapsed();
    let reports: Vec<ReadReport> =
        blocking(move || readers.into_iter().map(TimedReader::finish).collect()).await;

    let reads: u64 = reports.iter().map(|r| r.reads).sum();
    let bytes: u64 = reports.iter().map(|r| r.bytes).sum();
    let max = reports.iter().map(|r| r.max).max().unwrap_or_default();
    let mut latencies: Vec<Duration> = reports.iter().flat_map(|r| r.latencies.clone()).collect();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    let failures: Vec<&String> = reports.iter().flat_map(|r| &r.failures).collect();
    let stats = emu.emulator.stats();
    println!(
        "soak: {READERS} readers for {elapsed:.1?}: {reads} reads, {bytes} bytes ({:.1} MB/s), \
         latency p50 {:?} p99 {:?} max {max:?} (bound {:?}), {} failures; emulator: {stats:?}",
        bytes as f64 / elapsed.as_secs_f64() / 1e6,
        pct(0.5),
        pct(0.99),
        BUDGET + TIMEOUT + Duration::from_secs(1),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failed or wrong reads: {:#?}\nmount log:\n{}",
        failures.len(),
        &failures[..failures.len().min(10)],
        m.log()
    );
    assert!(
        reports.iter().all(|r| r.reads > 0),
        "every reader read something"
    );
    assert!(
        max < BUDGET + TIMEOUT + Duration::from_secs(1),
        "slowest read {max:?}"
    );
    // The faults fired, all of them, and the reads reached the storage.
    assert!(stats.server_errors > 0, "{stats:?}");
    assert!(stats.dropped_bodies > 0, "{stats:?}");
    assert!(stats.throttled > 0, "{stats:?}");
    assert!(stats.media_requests > objects.len() as u64, "{stats:?}");
    assert!(stats.storage_requests > 100, "{stats:?}");
    assert!(m.alive());
}
