//! Window decryption throughput beside `openssl speed`, in one run.
//!
//! `cargo bench --bench decrypt` prints, for 64 KiB, 1 MiB and 8 MiB windows, the median
//! rate of `crypto::window::decrypt_window` (AES-256-CBC, in place, as the read path does
//! it) beside `openssl speed -evp aes-256-cbc -decrypt`; then the rate of AES-256-GCM as
//! the read path does it for call recordings, `TagCheck::record` (GHASH of the window's
//! ciphertext) and `gcm::apply_ctr` (in place), beside `openssl speed -evp aes-256-gcm`.
//! Each with openssl's rate for the same block size on the same machine and the ratio.
//! Medians of several samples, because shared machines are noisy; compare ratios, not
//! absolute rates.

use std::process::Command;
use std::time::{Duration, Instant};

use twilio_media_fs::crypto::gcm::{TagCheck, apply_ctr};
use twilio_media_fs::crypto::window::decrypt_window;
use twilio_media_fs::crypto::{ContentKey, Verdict};

const SIZES: [(usize, &str); 3] = [(64 << 10, "64 KiB"), (1 << 20, "1 MiB"), (8 << 20, "8 MiB")];
const SAMPLES: usize = 11;
/// Bytes decrypted per sample: enough for a stable rate, short enough to keep the run brief.
const PER_SAMPLE: usize = 256 << 20;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

/// Median MB/s (10^6 bytes per second, as openssl reports) of decrypting `size`-byte windows.
fn ours(size: usize) -> f64 {
    let key = ContentKey::Aes256([0x42; 32]);
    let iv = [7u8; 16];
    let mut buf: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let rounds = (PER_SAMPLE / size).max(1);
    // Warm up (page faults, CPU frequency).
    for _ in 0..rounds.min(16) {
        decrypt_window(&key, &iv, &mut buf, false).unwrap();
    }
    let rates = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..rounds {
                decrypt_window(&key, &iv, std::hint::black_box(&mut buf), false).unwrap();
            }
            (rounds * size) as f64 / t.elapsed().as_secs_f64() / 1e6
        })
        .collect();
    median(rates)
}

/// Median MB/s of checking and decrypting `size`-byte GCM windows: each window recorded
/// in a TagCheck (its ciphertext hashed), then decrypted in place at its offset.
fn ours_gcm(size: usize) -> f64 {
    let key = ContentKey::Aes256([0x42; 32]);
    let iv = [7u8; 12];
    let mut buf: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let rounds = (PER_SAMPLE / size).max(1);
    let sample = |buf: &mut Vec<u8>| {
        // A fresh check per sample: recording a window twice skips the hash.
        let tc = TagCheck::new(&key, &iv, (rounds * size) as u64, size as u64);
        for w in 0..rounds {
            tc.record(w as u64, std::hint::black_box(&buf[..]));
            apply_ctr(
                &key,
                &iv,
                (w * size) as u64,
                std::hint::black_box(&mut buf[..]),
            )
            .unwrap();
        }
        tc.set_tag([0; 16]);
        assert_eq!(tc.verdict(), Verdict::Failed, "every window was folded");
    };
    sample(&mut buf);
    let rates = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            sample(&mut buf);
            (rounds * size) as f64 / t.elapsed().as_secs_f64() / 1e6
        })
        .collect();
    median(rates)
}

/// openssl's rate in MB/s for `cipher` (`aes-256-cbc`, `aes-256-gcm`) and `size`-byte
/// blocks, median of three 1-second runs; `decrypt` adds `-decrypt`.
fn openssl(cipher: &str, decrypt: bool, size: usize) -> Option<f64> {
    let rates: Vec<f64> = (0..3)
        .filter_map(|_| {
            let out = Command::new("openssl")
                .args(["speed", "-evp", cipher])
                .args(decrypt.then_some("-decrypt"))
                .args(["-seconds", "1", "-bytes"])
                .arg(size.to_string())
                .output()
                .ok()?;
            let text = String::from_utf8_lossy(&out.stdout);
            // The last line: "AES-256-CBC   1234567.89k" (thousands of bytes per second).
            let line = text
                .lines()
                .rev()
                .find(|l| l.to_ascii_lowercase().starts_with(cipher))?;
            let k: f64 = line
                .split_whitespace()
                .last()?
                .trim_end_matches('k')
                .parse()
                .ok()?;
            Some(k * 1000.0 / 1e6)
        })
        .collect();
    (!rates.is_empty()).then(|| median(rates))
}

fn table(title: &str, ours: fn(usize) -> f64, cipher: &str, decrypt: bool) {
    println!("{title} (median of {SAMPLES} samples)");
    println!(
        "{:>8}  {:>12}  {:>12}  {:>7}",
        "window", "ours MB/s", "openssl MB/s", "ratio"
    );
    for (size, label) in SIZES {
        let o = ours(size);
        match openssl(cipher, decrypt, size) {
            Some(s) => println!("{label:>8}  {o:>12.0}  {s:>12.0}  {:>6.0}%", 100.0 * o / s),
            None => println!("{label:>8}  {o:>12.0}  {:>12}  {:>7}", "n/a", "n/a"),
        }
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would pass nothing useful.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let started = Instant::now();
    table(
        "window decryption, AES-256-CBC, in place",
        ours,
        "aes-256-cbc",
        true,
    );
    println!();
    table(
        "window check and decryption, AES-256-GCM (TagCheck::record + apply_ctr)",
        ours_gcm,
        "aes-256-gcm",
        false,
    );
    println!("(took {:.0?})", started.elapsed().max(Duration::ZERO));
}
