//! `cargo audit` over Cargo.lock (and fuzz/Cargo.lock) against the RustSec advisory
//! database, offline: a dependency with a known advisory fails the test, warnings
//! (unmaintained, unsound, yanked) included. The advisories that cannot be fixed are
//! ignored in `.cargo/audit.toml`, and each must be explained in SECURITY.md.
//!
//! The database is `TWILIO_MEDIA_FS_ADVISORY_DB`, else `../shared/advisory-db` beside the
//! repository (no GitHub access here, so it is never fetched). Needs cargo-audit
//! (`cargo install cargo-audit --locked`; `.ci/run` installs it). Without it, or without
//! the database, the test is skipped, except with `CI=true`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The advisory database, or `None` (after failing in CI) when there is none.
fn database() -> Option<PathBuf> {
    let db = std::env::var_os("TWILIO_MEDIA_FS_ADVISORY_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/advisory-db"));
    if db.join("crates").is_dir() {
        return Some(db);
    }
    if in_ci() {
        panic!(
            "no advisory database at {} (CI=true): set TWILIO_MEDIA_FS_ADVISORY_DB",
            db.display()
        );
    }
    eprintln!("SKIPPED: no advisory database at {}", db.display());
    None
}

fn audit(db: &Path, cwd: &Path, lockfile: &Path) -> (bool, String) {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.arg("audit")
        .arg("--db")
        .arg(db)
        .args(["--no-fetch", "--stale", "--deny", "warnings", "--file"])
        .arg(lockfile)
        .current_dir(cwd);
    let out = run(&mut cmd);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn no_dependency_has_an_unignored_advisory() {
    if !require_tool("cargo-audit") {
        return;
    }
    let Some(db) = database() else { return };
    for lock in ["Cargo.lock", "fuzz/Cargo.lock"] {
        let (ok, text) = audit(&db, repo(), &repo().join(lock));
        eprintln!("cargo audit {lock}:\n{text}");
        assert!(ok, "cargo audit {lock} found advisories:\n{text}");
        assert!(
            text.contains("Scanning"),
            "cargo audit scanned {lock}:\n{text}"
        );
    }
}

/// The check can fail: a lock file with a crate version that has a known advisory is
/// refused with the same database and options.
#[test]
fn a_known_advisory_fails_the_audit() {
    if !require_tool("cargo-audit") {
        return;
    }
    let Some(db) = database() else { return };
    let dir = tempdir();
    let lock = dir.path().join("Cargo.lock");
    std::fs::write(
        &lock,
        "version = 3\n\n[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\n\
         source = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
    )
    .unwrap();
    let (ok, text) = audit(&db, dir.path(), &lock);
    assert!(!ok, "smallvec 1.6.0 passed:\n{text}");
    assert!(text.contains("RUSTSEC-2021-0003"), "{text}");
}

/// Every ignored advisory is explained in SECURITY.md, and the ignore list is read from
/// the configuration cargo audit uses.
#[test]
fn every_ignored_advisory_is_documented() {
    let config: toml::Value =
        toml::from_str(&std::fs::read_to_string(repo().join(".cargo/audit.toml")).unwrap())
            .unwrap();
    let ignored: Vec<&str> = config["advisories"]["ignore"]
        .as_array()
        .expect("advisories.ignore")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(ignored.contains(&"RUSTSEC-2023-0071"), "{ignored:?}");
    let security = std::fs::read_to_string(repo().join("SECURITY.md")).unwrap();
    for id in ignored {
        assert!(
            security.contains(id),
            "{id} is ignored in .cargo/audit.toml but not explained in SECURITY.md"
        );
    }
}
