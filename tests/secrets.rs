//! Secrets never leak: the API secret and auth token, the private key and the content
//! keys it unwraps appear in no argv, no log line (even at `-vvv`, where every crate
//! logs at trace level) and no error message; and the mount is private to its owner
//! unless `--allow-other`.
//!
//! Each scan looks for every form a secret could take in text: the value itself, the
//! HTTP Basic `Authorization` value (base64 of `user:secret`), each line of the key's
//! PEM, the CEKs in raw bytes, hex, base64 and Rust's `Debug` of a byte array, and any
//! storage URL signature (`Signature=`). [`scan_finds_every_form`] proves the scanner
//! sees each form, so a silent scan means something.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::mount::{Mount, blocking, command, emulator_config, keys, output, serving, wait_until};
use common::*;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use twilio_media_fs::crypto::{ContentKey, PrivateKeys, seal};
use twilio_media_fs::emulator::{EmulatorCredentials, ObjectInfo, RunningEmulator, spawn};

async fn emulator() -> RunningEmulator {
    spawn(emulator_config()).await.unwrap()
}

fn media(emu: &RunningEmulator) -> Vec<ObjectInfo> {
    emu.emulator
        .objects()
        .into_iter()
        .filter(|o| o.status == "completed" && !o.synthetic)
        .collect()
}

/// The content key of every encrypted object, unwrapped here from the envelope the
/// storage serves (as the program does), so the scan knows what to look for.
async fn ceks(emu: &RunningEmulator) -> Vec<ContentKey> {
    let c = EmulatorCredentials::default();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut private = PrivateKeys::new();
    private.add("account", keys().private[0].clone());
    let mut out = Vec::new();
    for o in media(emu).iter().filter(|o| o.encrypted) {
        let kind = o.kind.collection();
        let answer: serde_json::Value = http
            .get(format!("{}/v1/{kind}/{}/Media", emu.url, o.sid))
            .basic_auth(&c.account_sid, Some(&c.auth_token))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = answer["redirect_to"].as_str().expect("redirect_to");
        let object = http
            .get(url)
            .header("Range", "bytes=0-15")
            .send()
            .await
            .unwrap();
        let wrapped = object
            .headers()
            .get("x-amz-meta-x-amz-key")
            .expect("key header")
            .to_str()
            .unwrap();
        let wrapped = B64.decode(wrapped).unwrap();
        let (cek, _) = private.unwrap_cek(&wrapped, |_| Ok(())).unwrap();
        out.push(cek);
    }
    assert!(out.len() >= 5, "the samples are encrypted: {}", out.len());
    out
}

/// Everything that must never be shown, as (what it is, bytes to look for).
fn needles(ceks: &[ContentKey], extra_secrets: &[&str]) -> Vec<(String, Vec<u8>)> {
    let c = EmulatorCredentials::default();
    let mut n: Vec<(String, Vec<u8>)> = Vec::new();
    for (what, secret) in [("auth token", &c.auth_token), ("API secret", &c.api_secret)] {
        n.push((what.into(), secret.as_bytes().to_vec()));
    }
    for s in extra_secrets {
        n.push((format!("secret {s:?}"), s.as_bytes().to_vec()));
    }
    for (user, secret) in [(&c.account_sid, &c.auth_token), (&c.api_key, &c.api_secret)] {
        let basic = B64.encode(format!("{user}:{secret}"));
        n.push(("an Authorization header".into(), basic.into_bytes()));
    }
    for line in keys().text(0).lines().filter(|l| !l.starts_with("-----")) {
        n.push((
            "a line of the private key PEM".into(),
            line.as_bytes().to_vec(),
        ));
    }
    for (i, cek) in ceks.iter().enumerate() {
        let raw = cek.as_bytes();
        n.push((format!("CEK {i} (raw)"), raw.to_vec()));
        n.push((format!("CEK {i} (hex)"), hex(raw).into_bytes()));
        n.push((
            format!("CEK {i} (HEX)"),
            hex(raw).to_uppercase().into_bytes(),
        ));
        n.push((format!("CEK {i} (base64)"), B64.encode(raw).into_bytes()));
        let debug = format!("{:?}", &raw[..8]);
        n.push((
            format!("CEK {i} (Debug)"),
            debug.trim_end_matches(']').as_bytes().to_vec(),
        ));
    }
    n.push(("a storage URL signature".into(), b"Signature=".to_vec()));
    n
}

/// Which needles occur in `hay`.
fn leaks(hay: &[u8], needles: &[(String, Vec<u8>)]) -> Vec<String> {
    needles
        .iter()
        .filter(|(_, n)| hay.windows(n.len()).any(|w| w == &n[..]))
        .map(|(what, _)| what.clone())
        .collect()
}

fn assert_no_leak(context: &str, hay: &[u8], needles: &[(String, Vec<u8>)]) {
    let found = leaks(hay, needles);
    assert!(
        found.is_empty(),
        "{context} shows {found:?}:\n{}",
        String::from_utf8_lossy(hay)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_finds_every_form() {
    let emu = emulator().await;
    let ceks = ceks(&emu).await;
    let needles = needles(&ceks, &[]);
    // Each needle planted alone in some log-like text is found, and found alone.
    for (what, n) in &needles {
        let mut hay = b"2026-01-01T00:00:00Z DEBUG request done ".to_vec();
        hay.extend_from_slice(n);
        hay.extend_from_slice(b" status=200\n");
        let found = leaks(&hay, &needles);
        assert!(found.contains(what), "{what} not found");
    }
    assert!(leaks(b"nothing secret here\n", &needles).is_empty());
}

/// Reads every file of the mount to the end, the way `cp` does.
async fn read_all(m: &Mount, objects: &[ObjectInfo]) {
    for o in objects {
        let path = m.file(o);
        let data = blocking(move || std::fs::read(path)).await.unwrap();
        assert_eq!(data.len() as u64, o.size.unwrap(), "{}", o.sid);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_and_get_at_trace_level_log_no_secret() {
    let emu = emulator().await;
    let objects = media(&emu);
    let needles = needles(&ceks(&emu).await, &[]);

    // mount --foreground -vvv, every file read through it, then `getfattr`.
    let m = Mount::new();
    let mut cmd = m.mount_cmd(&emu, &[&keys().pem[0]]);
    cmd.args(["--foreground", "-vvv"]);
    let m = m.spawn(cmd).await;
    read_all(&m, &objects).await;
    if require_tool("getfattr") {
        let f = m.file(&objects[0]);
        output(command("getfattr", &["-d", f.to_str().unwrap()])).await;
    }
    // SIGTERM: it unmounts and exits, logging to the end.
    let mut m = m;
    let mut child = m.child.take().unwrap();
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = blocking(move || child.wait().unwrap()).await;
    assert!(status.success(), "{status}");
    let log = std::fs::read(&m.stderr).unwrap();
    drop(m);
    assert!(
        String::from_utf8_lossy(&log).contains("TRACE"),
        "-vvv logs at trace level: {}",
        String::from_utf8_lossy(&log)
    );
    assert_no_leak("mount --foreground -vvv", &log, &needles);

    // get -vvv of every object to standard output (the auth token), one with an API key
    // instead; `ls -vvv` with each.
    let c = EmulatorCredentials::default();
    for (i, o) in objects.iter().enumerate() {
        for api_key in [false, true] {
            if api_key && i > 0 {
                continue;
            }
            let mut cmd = cli(&emu);
            if api_key {
                cmd.env("TWILIO_API_KEY", &c.api_key)
                    .env("TWILIO_API_SECRET", &c.api_secret);
            }
            cmd.args(["-vvv", "get", &o.sid, "-o", "-", "-k"]);
            cmd.arg(&keys().pem[0]);
            let out = output(cmd).await;
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.stdout, emu.emulator.plaintext(&o.sid).unwrap());
            assert!(String::from_utf8_lossy(&out.stderr).contains("TRACE"));
            assert_no_leak("get -vvv", &out.stderr, &needles);
            if i == 0 {
                let mut cmd = cli(&emu);
                if api_key {
                    cmd.env("TWILIO_API_KEY", &c.api_key)
                        .env("TWILIO_API_SECRET", &c.api_secret);
                }
                cmd.args(["-vvv", "ls"]);
                let out = output(cmd).await;
                assert!(out.status.success());
                assert_no_leak("ls -vvv", &out.stderr, &needles);
                assert_no_leak("ls -vvv (stdout)", &out.stdout, &needles);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_do_not_repeat_secrets() {
    let emu = emulator().await;
    let c = EmulatorCredentials::default();
    let wrong_token = "wrong-token-3f9c2a7d51e04b6b";
    let wrong_secret = "wrong-secret-8e1d4c0b9a2f7765";
    let wrong_pass = "wrong-passphrase-5b7e21c9";
    let needles = needles(&[], &[wrong_token, wrong_secret, wrong_pass]);
    let sample = media(&emu).into_iter().find(|o| o.encrypted).unwrap();

    // Wrong auth token, wrong API secret: for ls, get and mount (background and -vvv).
    for (what, env) in [
        ("auth token", [("TWILIO_AUTH_TOKEN", wrong_token)].to_vec()),
        (
            "API secret",
            [
                ("TWILIO_API_KEY", c.api_key.as_str()),
                ("TWILIO_API_SECRET", wrong_secret),
            ]
            .to_vec(),
        ),
    ] {
        let m = Mount::new();
        let runs: Vec<(&str, Command)> = vec![
            ("ls", {
                let mut cmd = cli(&emu);
                cmd.args(["-vvv", "ls"]);
                cmd
            }),
            ("get", {
                let mut cmd = cli(&emu);
                cmd.args(["-vvv", "get", &sample.sid, "-o", "-", "-k"])
                    .arg(&keys().pem[0]);
                cmd
            }),
            ("mount", m.mount_cmd(&emu, &[&keys().pem[0]])),
            ("mount --foreground -vvv", {
                let mut cmd = m.mount_cmd(&emu, &[&keys().pem[0]]);
                cmd.args(["--foreground", "-vvv"]);
                cmd
            }),
        ];
        for (name, mut cmd) in runs {
            for (k, v) in &env {
                cmd.env(k, v);
            }
            let out = output(cmd).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "{name} with a wrong {what}: {stderr}"
            );
            assert!(
                stderr.contains("401") || stderr.to_lowercase().contains("auth"),
                "{name}: says why: {stderr}"
            );
            assert_no_leak(
                &format!("{name} with a wrong {what}"),
                &out.stderr,
                &needles,
            );
        }
    }

    // The same secret from a config file (readable by others: a warning, no secret).
    let home = tempdir();
    let conf = home.path().join("twilio-media-fs");
    std::fs::create_dir(&conf).unwrap();
    std::fs::write(
        conf.join("config.toml"),
        format!(
            "account_sid = \"{}\"\nauth_token = \"{wrong_token}\"\n",
            c.account_sid
        ),
    )
    .unwrap();
    let mut cmd = cli(&emu);
    cmd.env_remove("TWILIO_ACCOUNT_SID")
        .env_remove("TWILIO_AUTH_TOKEN")
        .env("XDG_CONFIG_HOME", home.path())
        .args(["-vvv", "ls"]);
    let out = output(cmd).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chmod 600"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_leak(
        "ls with a wrong token from config.toml",
        &out.stderr,
        &needles,
    );

    // Key files that are not what they should be: the messages never quote them.
    let dir = tempdir();
    let key_needles = needles_of_pem(&keys().text(0));
    let damaged = dir.path().join("damaged.pem");
    let mut text = keys().text(0);
    text.insert_str(text.len() / 2, "!!");
    write_private(&damaged, text.as_bytes());
    let truncated = dir.path().join("truncated.pem");
    write_private(&truncated, &keys().text(0).as_bytes()[..800]);
    let public = dir.path().join("public.pem");
    {
        use rsa::pkcs8::EncodePublicKey;
        let p = keys().private[0]
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        write_private(&public, p.as_bytes());
    }
    let encrypted = dir.path().join("encrypted.pem");
    if require_tool("openssl") {
        let plain = dir.path().join("plain.pem");
        write_private(&plain, keys().text(0).as_bytes());
        run_ok(Command::new("openssl").args([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:right-passphrase",
            "-in",
            plain.to_str().unwrap(),
            "-out",
            encrypted.to_str().unwrap(),
        ]));
        std::fs::set_permissions(&encrypted, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let other = dir.path().join("other.pem");
    write_private(
        &other,
        seal::generate_key(2048)
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap()
            .as_bytes(),
    );
    let open = dir.path().join("open.pem");
    std::fs::write(&open, keys().text(0)).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    for (what, path, passphrase) in [
        ("a damaged PEM", &damaged, None),
        ("a truncated PEM", &truncated, None),
        ("a public key", &public, None),
        (
            "an encrypted key, wrong passphrase",
            &encrypted,
            Some(wrong_pass),
        ),
        ("an encrypted key, no passphrase", &encrypted, None),
        ("another account's key", &other, None),
        ("a key others can read", &open, None),
    ] {
        let mut cmd = cli(&emu);
        cmd.args(["-vvv", "get", &sample.sid, "-o", "-", "-k"])
            .arg(path);
        match passphrase {
            Some(p) => cmd.env("TWILIO_MEDIA_FS_KEY_PASSPHRASE", p),
            None => cmd.env_remove("TWILIO_MEDIA_FS_KEY_PASSPHRASE"),
        };
        let out = output(cmd).await;
        assert!(!out.status.success(), "{what}");
        assert!(out.stdout.is_empty(), "{what}: no plaintext");
        assert_no_leak(what, &out.stderr, &needles);
        assert_no_leak(what, &out.stderr, &key_needles);
    }
}

/// Each line of a PEM's base64 body.
fn needles_of_pem(pem: &str) -> Vec<(String, Vec<u8>)> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(|l| ("a line of a key file".to_string(), l.as_bytes().to_vec()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_mount_has_no_secret_in_argv_and_keeps_its_environment_private() {
    if !require_tool("setpriv") {
        return;
    }
    let emu = emulator().await;
    let needles = needles(&ceks(&emu).await, &[]);
    let m = Mount::new();
    let out = output(m.mount_cmd(&emu, &[&keys().pem[0]])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = m.path.clone();
    let pids = blocking(move || {
        let mut pids = Vec::new();
        wait_until("the background server", || {
            pids = serving(&path);
            !pids.is_empty()
        });
        pids
    })
    .await;
    assert_eq!(pids.len(), 1, "one background server: {pids:?}");
    let pid = pids[0];
    let proc = Path::new("/proc").join(pid.to_string());
    let cmdline = std::fs::read(proc.join("cmdline")).unwrap();
    assert!(
        cmdline.split(|&b| b == 0).any(|a| a == b"--foreground"),
        "the re-executed server: {}",
        String::from_utf8_lossy(&cmdline)
    );
    assert_no_leak("the server's argv", &cmdline, &needles);
    // Credentials are in its environment (where the user put them): readable by its
    // owner and root only. Another user can read its argv but not its environment.
    let environ = std::fs::read(proc.join("environ")).unwrap();
    assert!(
        leaks(&environ, &needles).iter().any(|w| w == "auth token"),
        "the test's premise: the token is in the server's environment"
    );
    let as_nobody = |file: &str| {
        let mut cmd = command(
            "setpriv",
            &[
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "cat",
                proc.join(file).to_str().unwrap(),
            ],
        );
        cmd.stderr(std::process::Stdio::piped());
        cmd
    };
    let out = output(as_nobody("cmdline")).await;
    assert!(out.status.success(), "argv is public on Linux");
    assert_no_leak("the server's argv, as another user", &out.stdout, &needles);
    let out = output(as_nobody("environ")).await;
    assert!(
        !out.status.success() && out.stdout.is_empty(),
        "another user read the server's environment"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mount_is_private_unless_allow_other() {
    if !require_tool("setpriv") {
        return;
    }
    let emu = emulator().await;
    let sample = media(&emu).into_iter().next().unwrap();
    for allow_other in [false, true] {
        let m = Mount::new();
        // The directories above the mount point are open to all, so only the mount's
        // own access rule decides.
        let parent = m.path.parent().unwrap().to_owned();
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut cmd = m.mount_cmd(&emu, &[&keys().pem[0]]);
        cmd.arg("--foreground");
        if allow_other {
            cmd.arg("--allow-other");
        }
        let m = m.spawn(cmd).await;
        let file = m.file(&sample);
        let out = output(command(
            "setpriv",
            &[
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "cat",
                file.to_str().unwrap(),
            ],
        ))
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if allow_other {
            assert!(out.status.success(), "--allow-other: {stderr}");
            assert_eq!(out.stdout, emu.emulator.plaintext(&sample.sid).unwrap());
        } else {
            assert!(
                !out.status.success(),
                "read by another user without --allow-other"
            );
            assert!(out.stdout.is_empty());
            assert!(stderr.contains("Permission denied"), "{stderr}");
        }
        // The owner reads it either way.
        let own = std::fs::read(&file).unwrap();
        assert_eq!(own, emu.emulator.plaintext(&sample.sid).unwrap());
    }
}

/// The process makes itself non-dumpable with no core size: a process of the same user
/// cannot read its environment (where the credentials are) or memory, and a crash
/// writes no core file. The control is an ordinary process of that user, whose
/// environment the same reader can read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_user_processes_cannot_read_the_environment_and_no_core_dumps() {
    if !require_tool("setpriv") {
        return;
    }
    // Everything runs as `nobody`: a key nobody owns, in a directory nobody can enter.
    let dir = tempdir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let pem = dir.path().join("nobody.pem");
    write_private(&pem, keys().text(0).as_bytes());
    std::os::unix::fs::chown(&pem, Some(65534), Some(65534)).unwrap();
    let as_nobody = |program: &str| {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", program])
            .env("TWILIO_AUTH_TOKEN", "token-in-the-environment")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd
    };
    // `decrypt-file -` loads the key, unwraps the content key, then waits on its
    // standard input: by then it holds everything worth stealing.
    let wrapped = seal::wrap_cek(
        &keys().private[0].to_public_key(),
        &ContentKey::Aes256([5; 32]),
    );
    let mut ours = as_nobody(env!("CARGO_BIN_EXE_twilio-media-fs"));
    ours.args(["decrypt-file", "-", "-k"]).arg(&pem).args([
        "--key-header",
        &B64.encode(wrapped),
        "--iv",
        "AAECAwQFBgcICQoLDA0ODw==",
        "-o",
        "-",
    ]);
    let mut ours = ours.spawn().unwrap();
    let mut control = as_nobody("cat").spawn().unwrap();
    let read_environ = |pid: u32| {
        let path = format!("/proc/{pid}/environ");
        run(Command::new("setpriv").args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "cat",
            &path,
        ]))
    };
    // Both blocked in read(0, …) on their standard input (x86-64: syscall 0, fd 0x0).
    let (ours_pid, control_pid) = (ours.id(), control.id());
    blocking(move || {
        wait_until("both to wait on standard input", || {
            let reading = |pid: u32| {
                std::fs::read_to_string(format!("/proc/{pid}/syscall"))
                    .is_ok_and(|s| s.starts_with("0 0x0 "))
            };
            reading(ours_pid) && reading(control_pid)
        })
    })
    .await;
    assert!(
        std::fs::read_link(format!("/proc/{ours_pid}/exe"))
            .unwrap()
            .ends_with("twilio-media-fs")
    );
    let theirs = read_environ(control.id());
    assert!(
        String::from_utf8_lossy(&theirs.stdout).contains("token-in-the-environment"),
        "control: nobody reads its own cat's environment"
    );
    let mine = read_environ(ours.id());
    assert!(
        !mine.status.success() && mine.stdout.is_empty(),
        "nobody read {} bytes of the environment of its own twilio-media-fs",
        mine.stdout.len()
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", ours.id())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(
        core.split_whitespace().nth(4),
        Some("0"),
        "core size limit: {core}"
    );
    for child in [&mut ours, &mut control] {
        let _ = child.kill();
        let _ = child.wait();
    }
}
