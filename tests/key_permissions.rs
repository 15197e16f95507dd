//! Private key files are treated like ssh treats its keys: a key file that group or
//! others may read or write is refused, with a message that says `chmod 600 FILE` or
//! `--insecure-key-permissions`, by every command that loads keys (`decrypt-file`,
//! `get`, `mount`). Modes 0600 and 0400 are accepted; the flag overrides the check.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::mount::{Mount, mounted, output};
use common::*;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use twilio_media_fs::crypto::{ContentKey, seal};
use twilio_media_fs::emulator::{EmulatorConfig, RunningEmulator, spawn};

/// One key pair and one object encrypted for it, as `decrypt-file` takes them.
struct Fixture {
    _dir: tempfile::TempDir,
    private: rsa::PrivateKey,
    pem: String,
    plain: Vec<u8>,
    enc: PathBuf,
    headers: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempdir();
        let private = seal::generate_key(2048);
        let pem = private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let plain = pseudo_random(10_000, 7);
        let cek = ContentKey::Aes256([3; 32]);
        let iv = [9u8; 16];
        let enc = dir.path().join("object.enc");
        std::fs::write(&enc, seal::encrypt(&cek, &iv, &plain)).unwrap();
        let wrapped = seal::wrap_cek(&private.to_public_key(), &cek);
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let headers = dir.path().join("headers.txt");
        std::fs::write(
            &headers,
            format!(
                "HTTP/1.1 200 OK\r\nx-amz-meta-x-amz-key: {}\r\nx-amz-meta-x-amz-iv: {}\r\n\
                 x-amz-meta-x-amz-unencrypted-content-length: {}\r\n\r\n",
                b64.encode(wrapped),
                b64.encode(iv),
                plain.len()
            ),
        )
        .unwrap();
        Fixture {
            _dir: dir,
            private,
            pem,
            plain,
            enc,
            headers,
        }
    })
}

/// The fixture's private key in a new file with `mode`.
fn key_with_mode(dir: &tempfile::TempDir, mode: u32) -> PathBuf {
    let path = dir.path().join(format!("key-{mode:o}.pem"));
    std::fs::write(&path, &fixture().pem).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        mode
    );
    path
}

fn decrypt(key: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let f = fixture();
    let mut cmd = bin();
    cmd.arg("decrypt-file")
        .arg(&f.enc)
        .arg("-k")
        .arg(key)
        .arg("--headers")
        .arg(&f.headers)
        .arg("-o")
        .arg(out)
        .args(extra);
    run(&mut cmd)
}

/// The refusal: one clear message naming the file, its mode and both ways out.
fn assert_refused(out: &std::process::Output, key: &Path, mode: u32) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "mode {mode:o} accepted: {stderr}");
    assert!(
        stderr.contains(&format!("chmod 600 {}", key.display())),
        "{stderr}"
    );
    assert!(stderr.contains("--insecure-key-permissions"), "{stderr}");
    assert!(stderr.contains(&format!("mode {mode:04o}")), "{stderr}");
    assert!(
        !stderr.contains("BEGIN"),
        "the key's content is not shown: {stderr}"
    );
}

#[test]
fn decrypt_file_refuses_keys_others_can_read_and_accepts_owner_only_keys() {
    let dir = tempdir();
    for mode in [0o644, 0o640, 0o604, 0o660, 0o606] {
        let key = key_with_mode(&dir, mode);
        let out_file = dir.path().join(format!("out-{mode:o}"));
        let out = decrypt(&key, &out_file, &[]);
        assert_refused(&out, &key, mode);
        assert!(!out_file.exists(), "no output file when refused");
    }
    for mode in [0o600, 0o400] {
        let key = key_with_mode(&dir, mode);
        let out_file = dir.path().join(format!("out-{mode:o}"));
        let out = decrypt(&key, &out_file, &[]);
        assert!(
            out.status.success(),
            "mode {mode:o}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(&out_file).unwrap(), fixture().plain);
    }
}

#[test]
fn the_flag_overrides_the_check_with_a_warning() {
    let dir = tempdir();
    let key = key_with_mode(&dir, 0o644);
    let out_file = dir.path().join("out");
    let out = decrypt(&key, &out_file, &["--insecure-key-permissions"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(std::fs::read(&out_file).unwrap(), fixture().plain);
    assert!(
        stderr.contains("accessible by group or others"),
        "a warning: {stderr}"
    );
}

#[test]
fn the_mode_of_a_symlinked_key_is_the_targets() {
    // ssh checks the file it reads: a 0777 symlink to a 0600 key is fine, a 0600-looking
    // path to a 0644 file is not.
    let dir = tempdir();
    let good = key_with_mode(&dir, 0o600);
    let link = dir.path().join("link.pem");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    let out = decrypt(&link, &dir.path().join("a"), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = key_with_mode(&dir, 0o644);
    let link2 = dir.path().join("link2.pem");
    std::os::unix::fs::symlink(&bad, &link2).unwrap();
    let out = decrypt(&link2, &dir.path().join("b"), &[]);
    assert_refused(&out, &link2, 0o644);
}

async fn emulator() -> RunningEmulator {
    spawn(EmulatorConfig {
        public_keys: vec![fixture().private.to_public_key()],
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_refuses_an_open_key_unless_told() {
    let emu = emulator().await;
    let sample = emu
        .emulator
        .objects()
        .into_iter()
        .find(|o| o.encrypted && o.status == "completed" && o.key_index == Some(0))
        .expect("an encrypted sample");
    let dir = tempdir();
    let get = |key: &Path, extra: &[&str]| {
        let mut cmd: Command = cli(&emu);
        cmd.args(["get", &sample.sid, "-o", "-", "-k"])
            .arg(key)
            .args(extra);
        cmd
    };
    let open = key_with_mode(&dir, 0o640);
    let out = output(get(&open, &[])).await;
    assert_refused(&out, &open, 0o640);
    assert!(out.stdout.is_empty(), "no plaintext when refused");
    let out = output(get(&open, &["--insecure-key-permissions"])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, emu.emulator.plaintext(&sample.sid).unwrap());
    let closed = key_with_mode(&dir, 0o400);
    let out = output(get(&closed, &[])).await;
    assert!(out.status.success());
    assert_eq!(out.stdout, emu.emulator.plaintext(&sample.sid).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_refuses_an_open_key_in_the_background_and_the_foreground() {
    let emu = emulator().await;
    let dir = tempdir();
    let open = key_with_mode(&dir, 0o644);
    for foreground in [false, true] {
        let m = Mount::new();
        let mut cmd = m.mount_cmd(&emu, &[&open]);
        if foreground {
            cmd.arg("--foreground");
        }
        let out = output(cmd).await;
        assert_refused(&out, &open, 0o644);
        assert!(!mounted(&m.path), "foreground: {foreground}");
    }
    // With the flag, it mounts (and the guard unmounts).
    let m = Mount::new();
    let mut cmd = m.mount_cmd(&emu, &[&open]);
    cmd.args(["--foreground", "--insecure-key-permissions"]);
    let m = m.spawn(cmd).await;
    assert!(mounted(&m.path));
}
