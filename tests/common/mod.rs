//! Shared test harness: required tools, the built binary, scratch directories, digests;
//! [`mount`] has real FUSE mounts of the binary, [`reads`] timed reads through them,
//! [`prism`] Twilio's specs served by Prism for the contract tests, [`serve`] the HTTP
//! front-end as a child process, [`chromium`] a headless browser driven over DevTools.
#![allow(dead_code)]

pub mod chromium;
pub mod hostile;
pub mod mount;
pub mod prism;
pub mod reads;
pub mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Whether this run is CI (`CI=true`): there, a missing tool fails the test instead of
/// skipping it, so nothing silently stops being tested.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// True when `tool` is on PATH. When it is not: panics in CI, otherwise prints a note
/// and returns false so the test can return early.
pub fn require_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if in_ci() {
            panic!("{tool} is required (CI=true): install it (.ci/run does)");
        }
        eprintln!("SKIPPED: {tool} not found; install it to run this test");
    }
    found
}

/// The `twilio-media-fs` binary built for these tests.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_twilio-media-fs"))
}

/// The binary with an emulator's URL and credentials in its environment (not argv),
/// and nothing else from this machine's Twilio setup.
pub fn cli(emu: &twilio_media_fs::emulator::RunningEmulator) -> Command {
    cli_at(&emu.url)
}

/// [`cli`] for an API at `api_url` (a mock) that takes the emulator's credentials.
pub fn cli_at(api_url: &str) -> Command {
    let c = twilio_media_fs::emulator::EmulatorCredentials::default();
    let mut cmd = bin();
    cmd.env("TWILIO_MEDIA_FS_API_URL", api_url)
        .env("TWILIO_ACCOUNT_SID", &c.account_sid)
        .env("TWILIO_AUTH_TOKEN", &c.auth_token)
        .env_remove("TWILIO_API_KEY")
        .env_remove("TWILIO_API_SECRET")
        .env_remove("RUST_LOG")
        .env("XDG_CONFIG_HOME", "/nonexistent");
    cmd
}

/// Runs a command and returns its output; panics with stderr if it could not start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command that must succeed; returns stdout.
pub fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(data);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_file(path: &Path) -> String {
    sha256(&std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a private key file readable by its owner only (0600), as the program wants.
pub fn write_private(path: &Path, contents: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    f.write_all(contents)
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

pub fn path_in(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}
