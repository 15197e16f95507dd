//! The fuzz targets of `fuzz/` (cargo-fuzz, libFuzzer), each run for a bounded time:
//! `envelope` (header parsing), `window` (window decryption against whole-object
//! decryption), `gcm` (AES-GCM windows and tag checks against streaming), `api_json` (the API's response bodies), `listing` (list pages with
//! sizes, dates and names at their extremes) and `error_body` (error answers, in any
//! chunks, to the line a user sees). A crash, a failed property
//! or a leak fails the test, which prints the input that caused it (libFuzzer's
//! artifact) so it can become a regression test.
//!
//! Needs cargo-fuzz (`cargo install cargo-fuzz --locked`; `.ci/run` installs it) and runs
//! on stable Rust with `RUSTC_BOOTSTRAP=1` (libFuzzer's instrumentation flags are
//! nightly-only). Without cargo-fuzz the test is skipped, except with `CI=true`.
//! `TWILIO_MEDIA_FS_FUZZ_SECONDS` sets the time per target (default 20).
//! New inputs go to a scratch corpus; `fuzz/seeds/TARGET` seeds it and is not changed.
//!
//! The build here is the quick one ([`FLAGS`]): no AddressSanitizer (the targets and
//! nearly all they reach are safe Rust, where overflow checks and debug assertions,
//! both on, catch what ASan would not) and 16 codegen units. Measured on this 2-core
//! machine under load, a clean build took 4m34s (5m18s CPU) this way against 6m03s
//! (7m32s CPU) with ASan. Longer runs by hand use cargo-fuzz's default, ASan.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;

fn seconds() -> u64 {
    std::env::var("TWILIO_MEDIA_FS_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// cargo-fuzz options of both the build and the runs (they must match, or `run`
/// rebuilds): debug assertions, no sanitizer, 16 codegen units, optimised.
const FLAGS: [&str; 6] = ["-a", "-s", "none", "--codegen-units", "16", "--release"];

fn cargo_fuzz() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.arg("fuzz")
        .current_dir(repo())
        .env("RUSTC_BOOTSTRAP", "1")
        // The outer `cargo test` must not steer the inner build.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    cmd
}

/// Builds every target once (the tests of this file share it); `false` when
/// cargo-fuzz is missing outside CI.
fn built() -> bool {
    static BUILT: OnceLock<bool> = OnceLock::new();
    *BUILT.get_or_init(|| {
        if !require_tool("cargo-fuzz") {
            return false;
        }
        let out = run(cargo_fuzz().arg("build").args(FLAGS));
        assert!(
            out.status.success(),
            "cargo fuzz build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        true
    })
}

fn fuzz(target: &str) {
    if !built() {
        return;
    }
    let scratch = tempdir();
    let corpus = scratch.path().join("corpus");
    let artifacts = scratch.path().join("artifacts");
    std::fs::create_dir(&corpus).unwrap();
    std::fs::create_dir(&artifacts).unwrap();
    let seeds: PathBuf = repo().join("fuzz/seeds").join(target);
    let mut cmd = cargo_fuzz();
    cmd.arg("run")
        .args(FLAGS)
        .arg(target)
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={}", seconds()))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048");
    let out = run(&mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let crashes: Vec<String> = std::fs::read_dir(&artifacts)
        .unwrap()
        .flatten()
        .map(|e| {
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            format!("{}: {}", e.file_name().to_string_lossy(), hex(&bytes))
        })
        .collect();
    let tail: String = {
        let lines: Vec<&str> = stderr.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    };
    assert!(
        out.status.success() && crashes.is_empty(),
        "fuzz target {target} failed ({}); inputs (hex): {crashes:#?}\n{tail}",
        out.status
    );
    // It really ran: libFuzzer's final stats count the executions.
    let execs: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no execution count from libFuzzer:\n{tail}"));
    assert!(execs > 1000, "{target}: only {execs} executions");
    eprintln!("{target}: {execs} executions in {} s", seconds());
}

#[test]
fn fuzz_envelope() {
    fuzz("envelope");
}

#[test]
fn fuzz_window() {
    fuzz("window");
}

#[test]
fn fuzz_gcm() {
    fuzz("gcm");
}

#[test]
fn fuzz_api_json() {
    fuzz("api_json");
}

#[test]
fn fuzz_listing() {
    fuzz("listing");
}

#[test]
fn fuzz_error_body() {
    fuzz("error_body");
}
