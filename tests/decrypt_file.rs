//! `decrypt-file` against `openssl`, the oracle Twilio's own guide uses: objects made
//! with `openssl enc`, content keys wrapped with `openssl pkeyutl`, keys written by
//! `openssl genrsa`/`genpkey`/`pkcs8`, must decrypt to the very same bytes.

use std::os::unix::fs::PermissionsExt;
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine;
use common::*;
use twilio_media_fs::crypto::{Envelope, PassphraseSource, PrivateKeys, window};

const PASSPHRASE: &str = "correct horse battery staple";

/// Keys made once by openssl: PKCS#1, PKCS#8, encrypted PKCS#8, and an unrelated key.
struct Keys {
    _dir: tempfile::TempDir,
    pkcs1: PathBuf,
    pkcs8: PathBuf,
    pkcs8_encrypted: PathBuf,
    other: PathBuf,
}

impl Keys {
    fn public_of(&self, key: &Path) -> PathBuf {
        key.with_extension("pub")
    }
}

fn openssl(args: &[&str]) -> Vec<u8> {
    run_ok(Command::new("openssl").args(args))
}

fn keys() -> Option<&'static Keys> {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    if !require_tool("openssl") {
        return None;
    }
    Some(KEYS.get_or_init(|| {
        let dir = tempdir();
        let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
        openssl(&["genrsa", "-traditional", "-out", &p("pkcs1.pem"), "2048"]);
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            &p("pkcs8.pem"),
        ]);
        openssl(&[
            "pkcs8",
            "-topk8",
            "-in",
            &p("pkcs8.pem"),
            "-out",
            &p("pkcs8e.pem"),
            "-v2",
            "aes-256-cbc",
            "-passout",
            &format!("pass:{PASSPHRASE}"),
        ]);
        openssl(&["genrsa", "-out", &p("other.pem"), "2048"]);
        for k in ["pkcs1", "pkcs8", "other"] {
            openssl(&[
                "pkey",
                "-in",
                &p(&format!("{k}.pem")),
                "-pubout",
                "-out",
                &p(&format!("{k}.pub")),
            ]);
        }
        // Private keys must be readable by their owner only, whatever this openssl does.
        for k in ["pkcs1", "pkcs8", "pkcs8e", "other"] {
            let path = p(&format!("{k}.pem"));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        // The encrypted key is the PKCS#8 key under a passphrase: same public half.
        std::fs::copy(p("pkcs8.pub"), p("pkcs8e.pub")).unwrap();
        let pem = std::fs::read_to_string(p("pkcs1.pem")).unwrap();
        assert!(
            pem.contains("BEGIN RSA PRIVATE KEY"),
            "genrsa -traditional writes PKCS#1"
        );
        assert!(
            std::fs::read_to_string(p("pkcs8e.pem"))
                .unwrap()
                .contains("BEGIN ENCRYPTED PRIVATE KEY")
        );
        Keys {
            pkcs1: p("pkcs1.pem").into(),
            pkcs8: p("pkcs8.pem").into(),
            pkcs8_encrypted: p("pkcs8e.pem").into(),
            other: p("other.pem").into(),
            _dir: dir,
        }
    }))
}

/// An object encrypted by openssl the way Twilio stores it.
struct Sealed {
    dir: tempfile::TempDir,
    plain: PathBuf,
    enc: PathBuf,
    key_b64: String,
    iv_b64: String,
    len: u64,
}

impl Sealed {
    fn new(plain: &[u8], cek_len: usize, public: &Path, seed: u64) -> Self {
        let dir = tempdir();
        let path = |n: &str| dir.path().join(n);
        std::fs::write(path("plain"), plain).unwrap();
        let cek = pseudo_random(cek_len, seed ^ 0xC0FFEE);
        let iv = pseudo_random(16, seed ^ 0x1F);
        std::fs::write(path("cek"), &cek).unwrap();
        let cipher = if cek_len == 16 {
            "-aes-128-cbc"
        } else {
            "-aes-256-cbc"
        };
        let s = |p: PathBuf| p.to_str().unwrap().to_owned();
        openssl(&[
            "enc",
            cipher,
            "-K",
            &hex(&cek),
            "-iv",
            &hex(&iv),
            "-in",
            &s(path("plain")),
            "-out",
            &s(path("enc")),
        ]);
        openssl(&[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            public.to_str().unwrap(),
            "-pkeyopt",
            "rsa_padding_mode:pkcs1",
            "-in",
            &s(path("cek")),
            "-out",
            &s(path("wrapped")),
        ]);
        let b64 = base64::engine::general_purpose::STANDARD;
        let key_b64 = b64.encode(std::fs::read(path("wrapped")).unwrap());
        Self {
            plain: path("plain"),
            enc: path("enc"),
            key_b64,
            iv_b64: b64.encode(&iv),
            len: plain.len() as u64,
            dir,
        }
    }

    /// Headers as `curl -D` saves them after the /Media redirect.
    fn headers_file(&self, with_length: bool) -> PathBuf {
        let mut text = String::from(
            "HTTP/1.1 302 Found\r\nLocation: https://bucket.example/RT?X-Amz-Signature=x\r\n\r\nHTTP/1.1 200 OK\r\n",
        );
        text += &format!(
            "X-Amz-Meta-X-Amz-Key: {}\r\nx-amz-meta-x-amz-iv: {}\r\n",
            self.key_b64, self.iv_b64
        );
        if with_length {
            text += &format!(
                "x-amz-meta-x-amz-unencrypted-content-length: {}\r\n",
                self.len
            );
        }
        text += "x-amz-meta-x-amz-matdesc: {}\r\nContent-Type: audio/x-matroska\r\n\r\n";
        let p = self.dir.path().join("headers.txt");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out.mka")
    }
}

fn decrypt_cmd(sealed: &Sealed, key: &Path) -> Command {
    let mut cmd = bin();
    cmd.arg("decrypt-file")
        .arg(&sealed.enc)
        .arg("-k")
        .arg(key)
        .arg("-o")
        .arg(sealed.out())
        .env("TWILIO_MEDIA_FS_KEY_PASSPHRASE", PASSPHRASE);
    cmd
}

const MIB: usize = 1 << 20;
const SIZES: [usize; 10] = [0, 1, 15, 16, 17, 4095, 4096, MIB - 1, MIB, MIB + 1];

/// Every size × every key format × both AES key sizes, through both ways of giving the
/// envelope, byte-identical to the original.
#[test]
fn openssl_objects_decrypt_byte_identically() {
    let Some(keys) = keys() else { return };
    let formats = [&keys.pkcs1, &keys.pkcs8, &keys.pkcs8_encrypted];
    let mut case = 0u64;
    for &size in &SIZES {
        for (i, key) in formats.iter().enumerate() {
            case += 1;
            let cek_len = if (case + i as u64).is_multiple_of(2) {
                32
            } else {
                16
            };
            let plain = pseudo_random(size, case);
            let sealed = Sealed::new(&plain, cek_len, &keys.public_of(key), case);
            let mut cmd = decrypt_cmd(&sealed, key);
            if case.is_multiple_of(3) {
                cmd.args(["--key-header", &sealed.key_b64, "--iv", &sealed.iv_b64]);
            } else {
                cmd.arg("--headers").arg(sealed.headers_file(case % 3 == 1));
            }
            run_ok(&mut cmd);
            assert_eq!(
                sha256_file(&sealed.out()),
                sha256_file(&sealed.plain),
                "size {size}, key {}, AES-{}",
                key.display(),
                cek_len * 8
            );
        }
    }
}

/// A 64 MiB object, streamed through standard input to standard output.
#[test]
fn large_object_through_pipes() {
    let Some(keys) = keys() else { return };
    let plain = pseudo_random(64 * MIB + 5, 64);
    let sealed = Sealed::new(&plain, 32, &keys.public_of(&keys.pkcs8), 64);
    let input = std::fs::File::open(&sealed.enc).unwrap();
    let out = run_ok(
        bin()
            .args(["decrypt-file", "-", "-o", "-", "-k"])
            .arg(&keys.pkcs8)
            .arg("--headers")
            .arg(sealed.headers_file(true))
            .stdin(input),
    );
    assert_eq!(out.len(), plain.len());
    assert_eq!(sha256(&out), sha256(&plain));
}

/// Random windows of an openssl-made object, decrypted by the library's window
/// arithmetic, equal the same slices of the plaintext.
#[test]
fn windows_of_openssl_ciphertext() {
    let Some(keys) = keys() else { return };
    let plain = pseudo_random(MIB + 1, 7);
    let sealed = Sealed::new(&plain, 32, &keys.public_of(&keys.pkcs1), 7);
    let ct = std::fs::read(&sealed.enc).unwrap();
    let mut private = PrivateKeys::new();
    let pem = std::fs::read_to_string(&keys.pkcs1).unwrap();
    let mut no_pass: PassphraseSource<'_> = &mut |_| None;
    private.add_pem("pkcs1.pem", &pem, &mut no_pass).unwrap();
    let env = Envelope::from_parts(&sealed.key_b64, &sealed.iv_b64, None).unwrap();
    let (cek, _) = private.unwrap_cek(&env.wrapped_key, |_| Ok(())).unwrap();
    let total = ct.len() as u64;
    let mut rng = 12345u64;
    for _ in 0..200 {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let start = (rng >> 11) % (plain.len() as u64 + 1);
        let len = (rng >> 40) % 300_000;
        let end = (start + len).min(plain.len() as u64);
        let r = window::fetch_range(start, end, total);
        let fetched = &ct[r.fetch_start as usize..r.fetch_end as usize];
        let (prev, body) = if r.leading_iv_block {
            (fetched[..16].try_into().unwrap(), &fetched[16..])
        } else {
            (env.iv, fetched)
        };
        let mut buf = body.to_vec();
        let n = window::decrypt_window(&cek, &prev, &mut buf, r.is_last).unwrap();
        let from = (start - r.block_start) as usize;
        let to = ((end - r.block_start) as usize).min(n);
        assert_eq!(
            &buf[from..to.max(from)],
            &plain[start as usize..end as usize],
            "[{start}, {end})"
        );
    }
}

/// Runs a failing decrypt and checks: non-zero exit, a one-line error naming the cause,
/// no panic, and no file under the output name.
/// Fails with one line holding one of `expect`, and leaves nothing behind.
fn assert_fails(mut cmd: Command, sealed: &Sealed, expect: &[&str]) {
    let out = run(&mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should fail: {stderr}");
    assert!(
        expect.iter().any(|e| stderr.contains(e)),
        "expected one of {expect:?} in: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        !sealed.out().exists(),
        "a failure must not leave {}",
        sealed.out().display()
    );
    let leftovers: Vec<_> = std::fs::read_dir(sealed.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn bad_input_gives_one_clear_line_and_no_output() {
    let Some(keys) = keys() else { return };
    let plain = pseudo_random(100_000, 99);
    let sealed = Sealed::new(&plain, 32, &keys.public_of(&keys.pkcs1), 99);

    // Wrong private key.
    let mut cmd = decrypt_cmd(&sealed, &keys.other);
    cmd.arg("--headers").arg(sealed.headers_file(true));
    // A wrong key that happens to give a well-formed AES key (1 wrapping in 100) is
    // refused by the last block instead.
    assert_fails(cmd, &sealed, &["no private key unwraps", "is not the pair"]);

    // Damaged last block: bad padding.
    let mut ct = std::fs::read(&sealed.enc).unwrap();
    let n = ct.len();
    ct[n - 20] ^= 0x55; // the block before the last: the last plaintext block changes
    let damaged = sealed.dir.path().join("damaged");
    std::fs::write(&damaged, &ct).unwrap();
    let mut cmd = bin();
    cmd.arg("decrypt-file")
        .arg(&damaged)
        .arg("-k")
        .arg(&keys.pkcs1)
        .arg("--headers");
    cmd.arg(sealed.headers_file(false))
        .arg("-o")
        .arg(sealed.out());
    assert_fails(cmd, &sealed, &["padding"]);

    // Not a multiple of 16 bytes.
    let short = sealed.dir.path().join("short");
    std::fs::write(&short, &std::fs::read(&sealed.enc).unwrap()[..1000 - 3]).unwrap();
    let mut cmd = bin();
    cmd.arg("decrypt-file")
        .arg(&short)
        .arg("-k")
        .arg(&keys.pkcs1);
    cmd.args([
        "--key-header",
        &sealed.key_b64,
        "--iv",
        &sealed.iv_b64,
        "-o",
    ])
    .arg(sealed.out());
    assert_fails(cmd, &sealed, &["not a multiple of 16"]);

    // Cut at a block boundary from a pipe: the padding check at the end catches it,
    // after output began, and still no file appears under the final name.
    let cut = sealed.dir.path().join("cut");
    std::fs::write(&cut, &std::fs::read(&sealed.enc).unwrap()[..4096]).unwrap();
    let mut cmd = bin();
    cmd.args(["decrypt-file", "-", "-k"]).arg(&keys.pkcs1);
    cmd.args([
        "--key-header",
        &sealed.key_b64,
        "--iv",
        &sealed.iv_b64,
        "-o",
    ])
    .arg(sealed.out());
    cmd.stdin(std::fs::File::open(&cut).unwrap());
    assert_fails(cmd, &sealed, &["padding"]);

    // A length header that does not match the file.
    let mut cmd = decrypt_cmd(&sealed, &keys.pkcs1);
    cmd.args([
        "--key-header",
        &sealed.key_b64,
        "--iv",
        &sealed.iv_b64,
        "--length",
        "12345",
    ]);
    assert_fails(cmd, &sealed, &["plaintext length of 12345"]);

    // IV of the wrong length, bad base64.
    let mut cmd = decrypt_cmd(&sealed, &keys.pkcs1);
    cmd.args(["--key-header", &sealed.key_b64, "--iv", "AAECAwQFBgc="]);
    assert_fails(cmd, &sealed, &["needs exactly 16"]);
    let mut cmd = decrypt_cmd(&sealed, &keys.pkcs1);
    cmd.args(["--key-header", "not*base64", "--iv", &sealed.iv_b64]);
    assert_fails(cmd, &sealed, &["not valid base64"]);

    // Encrypted key without a passphrase (no terminal): say how to give one.
    let mut cmd = decrypt_cmd(&sealed, &keys.pkcs8_encrypted);
    cmd.env_remove("TWILIO_MEDIA_FS_KEY_PASSPHRASE");
    cmd.args(["--key-header", &sealed.key_b64, "--iv", &sealed.iv_b64]);
    assert_fails(cmd, &sealed, &["TWILIO_MEDIA_FS_KEY_PASSPHRASE"]);

    // Wrong passphrase.
    let mut cmd = decrypt_cmd(&sealed, &keys.pkcs8_encrypted);
    cmd.env("TWILIO_MEDIA_FS_KEY_PASSPHRASE", "wrong");
    cmd.args(["--key-header", &sealed.key_b64, "--iv", &sealed.iv_b64]);
    assert_fails(cmd, &sealed, &["wrong passphrase"]);

    // S3 Encryption Client v2 headers are refused, never decrypted as CBC.
    let v2 = sealed.dir.path().join("v2.txt");
    std::fs::write(
        &v2,
        format!(
            "HTTP/1.1 200 OK\nx-amz-meta-x-amz-key-v2: {}\nx-amz-meta-x-amz-iv: {}\n\
             x-amz-meta-x-amz-cek-alg: AES/GCM/NoPadding\nx-amz-meta-x-amz-wrap-alg: RSA-OAEP-SHA1\n",
            sealed.key_b64, sealed.iv_b64
        ),
    )
    .unwrap();
    let mut cmd = decrypt_cmd(&sealed, &keys.pkcs1);
    cmd.arg("--headers").arg(&v2);
    assert_fails(cmd, &sealed, &["S3 Encryption Client v2"]);

    // Several keys: the right one is found whatever its place.
    let mut cmd = decrypt_cmd(&sealed, &keys.other);
    cmd.arg("-k")
        .arg(&keys.pkcs1)
        .arg("--headers")
        .arg(sealed.headers_file(true));
    run_ok(&mut cmd);
    assert_eq!(sha256_file(&sealed.out()), sha256(&plain));
}
