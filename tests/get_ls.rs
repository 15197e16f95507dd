//! `ls` and `get` as a user runs them: the binary, credentials in the environment,
//! against the emulator on 127.0.0.1, with and without faults.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::mount::{emulator_config, keys};
use common::*;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use twilio_media_fs::crypto::seal;
use twilio_media_fs::emulator::{EmulatorConfig, ObjectKind, RunningEmulator, spawn};

/// Runs a command off the async runtime (the emulator serves on it meanwhile).
async fn output(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || run(&mut cmd))
        .await
        .unwrap()
}

async fn ok(cmd: Command) -> String {
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every completed object, downloaded by `get` into `dir`, equals its plaintext.
async fn get_everything(emu: &RunningEmulator, dir: &Path) {
    let objects: Vec<_> = emu
        .emulator
        .objects()
        .into_iter()
        .filter(|o| o.status == "completed")
        .collect();
    assert!(
        objects.len() >= 7,
        "samples + unencrypted: {}",
        objects.len()
    );
    let mut cmd = cli(emu);
    cmd.arg("get")
        .args(objects.iter().map(|o| &o.sid))
        .arg("-k")
        .arg(&keys().pem[0])
        .arg("-o")
        .arg(dir);
    ok(cmd).await;
    for o in &objects {
        let file = dir.join(format!("{}.{}", o.sid, o.extension));
        let want = emu.emulator.plaintext(&o.sid).unwrap();
        assert_eq!(
            sha256_file(&file),
            sha256(&want),
            "{} ({:?}, encrypted: {})",
            o.sid,
            o.kind,
            o.encrypted
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_writes_every_sample_byte_identically() {
    let emu = spawn(emulator_config()).await.unwrap();
    let dir = tempdir();
    get_everything(&emu, dir.path()).await;
    // Nothing temporary left beside the files, and each readable by its owner only.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(!name.contains("partial"), "left behind: {name}");
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
}

/// Issue 16, item 9: SIGTERM (or Ctrl-C) during a download left `.RT….mka.XXXX.partial`
/// (0600) holding the part decrypted so far. Now the file has no name until it is
/// complete (`O_TMPFILE`), or the named fallback is removed on the signal; either way
/// the directory is empty afterwards and `get` dies of the signal it was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_stopped_by_a_signal_leaves_nothing() {
    use std::os::unix::process::ExitStatusExt;
    const MIB: u64 = 1 << 20;
    let emu = spawn(EmulatorConfig {
        synthetic: vec![24 * MIB],
        // The first 2 MiB chunk takes 2 s, the 11 others (in parallel) 2 s more.
        bandwidth: Some(MIB),
        ..emulator_config()
    })
    .await
    .unwrap();
    let big = emu
        .emulator
        .objects()
        .into_iter()
        .find(|o| o.synthetic && o.status == "completed")
        .unwrap();
    for (signal, name) in [
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGHUP, "SIGHUP"),
    ] {
        emu.emulator.reset_stats();
        let dir = tempdir();
        let mut cmd = cli(&emu);
        cmd.args(["get", &big.sid, "-k"])
            .arg(&keys().pem[0])
            .arg("-o")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let child = cmd.spawn().unwrap();
        // Once the first chunk is in, plaintext is being written: stop it then.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while emu.emulator.stats().storage_bytes < 9 * MIB {
            assert!(std::time::Instant::now() < deadline, "no download");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        // SAFETY: a plain kill(2) of our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let killed = std::time::Instant::now();
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        println!(
            "get stopped by {name}: gone {:?} after the signal",
            killed.elapsed()
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: {stderr}");
        assert_eq!(out.status.signal(), Some(signal), "{name}: {stderr}");
        assert!(stderr.contains(&format!("stopped by {name}")), "{stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{name} left {left:?}");
    }

    // Started ignoring SIGHUP (`nohup`), it ignores it: the download completes whole.
    emu.emulator.reset_stats();
    let dir = tempdir();
    let mut cmd = cli(&emu);
    cmd.args(["get", &big.sid, "-k"])
        .arg(&keys().pem[0])
        .arg("-o")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    // SAFETY: signal(2) only, between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    while emu.emulator.stats().storage_bytes < 9 * MIB {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // SAFETY: a plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGHUP) }, 0);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let file = dir.path().join(format!("{}.{}", big.sid, big.extension));
    let want = emu.emulator.plaintext(&big.sid).unwrap();
    assert_eq!(sha256_file(&file), sha256(&want));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_survives_every_fault_at_once() {
    let emu = spawn(EmulatorConfig {
        fail_every: Some(5),
        drop_every: Some(7),
        throttle_every: Some(4),
        ttl: std::time::Duration::from_secs(2),
        synthetic: vec![20 << 20],
        ..emulator_config()
    })
    .await
    .unwrap();
    let dir = tempdir();
    get_everything(&emu, dir.path()).await;
    let stats = emu.emulator.stats();
    assert!(stats.faults_injected > 0, "faults fired: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_to_stdout_and_to_a_file_name() {
    let emu = spawn(emulator_config()).await.unwrap();
    let mp4 = emu
        .emulator
        .objects()
        .into_iter()
        .find(|o| o.extension == "mp4")
        .unwrap();
    let want = emu.emulator.plaintext(&mp4.sid).unwrap();
    let mut cmd = cli(&emu);
    cmd.args(["get", &mp4.sid, "-o", "-", "-k"])
        .arg(&keys().pem[0]);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha256(&out.stdout), sha256(&want));
    let dir = tempdir();
    let file = dir.path().join("talk.mp4");
    let mut cmd = cli(&emu);
    cmd.args(["get", &mp4.sid, "-k"])
        .arg(&keys().pem[0])
        .arg("-o")
        .arg(&file);
    ok(cmd).await;
    assert_eq!(sha256_file(&file), sha256(&want));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_pages_through_every_recording() {
    let emu = spawn(EmulatorConfig {
        extra_recordings: 250,
        ..emulator_config()
    })
    .await
    .unwrap();
    let all = emu.emulator.objects();
    let recordings = all
        .iter()
        .filter(|o| o.kind == ObjectKind::Recording)
        .count();
    let mut cmd = cli(&emu);
    cmd.args(["ls", "--json"]);
    let lines = ok(cmd).await;
    let sids: std::collections::HashSet<String> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["sid"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        lines.lines().count(),
        recordings,
        "each recording exactly once"
    );
    assert_eq!(sids.len(), recordings);
    assert!(recordings > 200, "3 pages of 100");
    // The table names every sample, with its room and codec.
    let mut cmd = cli(&emu);
    cmd.arg("ls");
    let table = ok(cmd).await;
    assert!(table.starts_with("SID"), "{table}");
    for o in all.iter().filter(|o| o.kind == ObjectKind::Recording) {
        assert!(table.contains(&o.sid), "{} missing", o.sid);
    }
    let mut cmd = cli(&emu);
    cmd.arg("ls").arg("compositions");
    let table = ok(cmd).await;
    assert!(table.contains("mp4") && table.contains("webm"), "{table}");
    let mut cmd = cli(&emu);
    cmd.arg("ls").arg("rooms");
    assert!(ok(cmd).await.contains("RM"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_say_20003() {
    let emu = spawn(emulator_config()).await.unwrap();
    let mut cmd = cli(&emu);
    cmd.env("TWILIO_AUTH_TOKEN", "not-the-token").arg("ls");
    let out = output(cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("Twilio rejected the credentials (20003)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("not-the-token"),
        "the secret must not be printed: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_explains_what_cannot_be_had() {
    let emu = spawn(emulator_config()).await.unwrap();
    let processing = emu
        .emulator
        .objects()
        .into_iter()
        .find(|o| o.status == "processing")
        .unwrap();
    let cwd = tempdir();
    let mut cmd = cli(&emu);
    cmd.args(["get", &processing.sid, "-k"])
        .arg(&keys().pem[0])
        .current_dir(cwd.path());
    let out = output(cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&processing.sid) && stderr.contains("processing"),
        "{stderr}"
    );
    // A key that is not the account's: no file, a clear line.
    let other = tempdir();
    let pem = other.path().join("other.pem");
    write_private(
        &pem,
        seal::generate_key(2048)
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap()
            .as_bytes(),
    );
    let sample = emu
        .emulator
        .objects()
        .into_iter()
        .find(|o| o.encrypted && o.extension == "mka")
        .unwrap();
    let mut cmd = cli(&emu);
    cmd.args(["get", &sample.sid, "-k"])
        .arg(&pem)
        .arg("-o")
        .arg(other.path());
    let out = output(cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no private key unwraps") || stderr.contains("padding"),
        "{stderr}"
    );
    assert!(!other.path().join(format!("{}.mka", sample.sid)).exists());
}

/// What openssl encrypts (Twilio's guide, in reverse) the emulator serves as it is, and
/// `get` decrypts to the original: the emulator is not the only writer the client
/// understands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_serves_what_openssl_encrypted() {
    if !require_tool("openssl") {
        return;
    }
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let dir = tempdir();
    let p = |n: &str| dir.path().join(n);
    let s = |n: &str| p(n).to_str().unwrap().to_owned();
    let original = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/audio-opus.mka");
    let cek = pseudo_random(32, 1);
    let iv = pseudo_random(16, 2);
    std::fs::write(p("cek"), &cek).unwrap();
    let openssl = |args: &[&str]| run_ok(Command::new("openssl").args(args));
    openssl(&[
        "pkey",
        "-in",
        keys().pem[0].to_str().unwrap(),
        "-pubout",
        "-out",
        &s("pub.pem"),
    ]);
    openssl(&[
        "enc",
        "-aes-256-cbc",
        "-K",
        &hex(&cek),
        "-iv",
        &hex(&iv),
        "-in",
        original.to_str().unwrap(),
        "-out",
        &s("talk.mka.enc"),
    ]);
    openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        &s("pub.pem"),
        "-pkeyopt",
        "rsa_padding_mode:pkcs1",
        "-in",
        &s("cek"),
        "-out",
        &s("wrapped"),
    ]);
    // No length header: the size comes from the padding.
    let headers = format!(
        "HTTP/1.1 200 OK\r\nx-amz-meta-x-amz-key: {}\r\nx-amz-meta-x-amz-iv: {}\r\n\r\n",
        b64.encode(std::fs::read(p("wrapped")).unwrap()),
        b64.encode(&iv)
    );
    std::fs::write(p("talk.mka.headers"), headers).unwrap();
    let emu = spawn(EmulatorConfig {
        data_dir: Some(dir.path().to_owned()),
        ..emulator_config()
    })
    .await
    .unwrap();
    let served = emu
        .emulator
        .objects()
        .into_iter()
        .find(|o| o.plaintext.is_none() && !o.synthetic && o.status == "completed")
        .expect("the pre-encrypted object is listed");
    let out = dir.path().join("out.mka");
    let mut cmd = cli(&emu);
    cmd.args(["get", &served.sid, "-k"])
        .arg(&keys().pem[0])
        .arg("-o")
        .arg(&out);
    ok(cmd).await;
    assert_eq!(sha256_file(&out), sha256_file(&original));
}
