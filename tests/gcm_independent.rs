//! The AES-256-GCM of encrypted call recordings checked against implementations that
//! share no code with ours: Python's `cryptography` (OpenSSL underneath, through its own
//! bindings) seals and opens objects and wraps and unwraps content keys with
//! RSAES-OAEP-SHA-256, and `openssl enc -aes-256-ctr` decrypts the ciphertext as the
//! bare CTR stream GCM is built on (counter block `IV ‖ 00000002`).
//!
//! Needs python3 with the `cryptography` package and openssl; without them the tests are
//! skipped, except with `CI=true` (`.ci/run` installs them).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use rand::RngExt;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use twilio_media_fs::crypto::gcm::{self, GcmStream, TagCheck, Verdict, apply_ctr};
use twilio_media_fs::crypto::{ContentKey, PrivateKeys, seal};

/// python3 with `cryptography`, or a skip (a failure under CI).
fn python() -> bool {
    if !require_tool("python3") {
        return false;
    }
    let ok = Command::new("python3")
        .args(["-c", "import cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if in_ci() {
            panic!("python3's cryptography is required (CI=true): install python3-cryptography");
        }
        eprintln!("SKIPPED: python3 cannot import cryptography; install python3-cryptography");
    }
    ok
}

/// Runs a Python script with `args`; returns its stdout.
fn py(script: &str, args: &[&str]) -> Vec<u8> {
    run_ok(Command::new("python3").arg("-c").arg(script).args(args))
}

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn write(path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

const PY_SEAL: &str = "
import sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key, iv, src, dst = bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2]), sys.argv[3], sys.argv[4]
open(dst, 'wb').write(AESGCM(key).encrypt(iv, open(src, 'rb').read(), None))
";

const PY_OPEN: &str = "
import sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key, iv, src, dst = bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2]), sys.argv[3], sys.argv[4]
open(dst, 'wb').write(AESGCM(key).decrypt(iv, open(src, 'rb').read(), None))
";

/// Decrypts `stored` window by window (in `order`), recording each window's ciphertext
/// in a TagCheck first, as the read path does; returns the plaintext and the verdict.
fn by_windows(
    key: &ContentKey,
    iv: &[u8; 12],
    stored: &[u8],
    window: u64,
    reverse: bool,
) -> (Vec<u8>, Verdict) {
    let plain_len = gcm::plaintext_len(stored.len() as u64).unwrap();
    let tc = TagCheck::new(key, iv, plain_len, window);
    let mut plain = vec![0; plain_len as usize];
    let mut order: Vec<u64> = (0..plain_len.div_ceil(window)).collect();
    if reverse {
        order.reverse();
    }
    for w in order {
        let a = (w * window) as usize;
        let b = (a + window as usize).min(plain_len as usize);
        let mut buf = stored[a..b].to_vec();
        tc.record(w, &buf);
        apply_ctr(key, iv, a as u64, &mut buf).unwrap();
        plain[a..b].copy_from_slice(&buf);
    }
    tc.set_tag(stored[plain_len as usize..].try_into().unwrap());
    (plain, tc.verdict())
}

#[test]
fn python_sealed_objects_decrypt_window_by_window() {
    if !python() {
        return;
    }
    let dir = tempdir();
    let mut rng = rand::rng();
    for len in [200_000 + 7, 204_800, 1, 0] {
        let key_bytes: [u8; 32] = rng.random();
        let iv: [u8; 12] = rng.random();
        let key = ContentKey::Aes256(key_bytes);
        let plain = pseudo_random(len, len as u64 + 11);
        let (src, dst) = (path_in(&dir, "plain"), path_in(&dir, "stored"));
        write(&src, &plain);
        py(
            PY_SEAL,
            &[
                &hex(&key_bytes),
                &hex(&iv),
                src.to_str().unwrap(),
                dst.to_str().unwrap(),
            ],
        );
        let stored = std::fs::read(&dst).unwrap();
        assert_eq!(stored.len(), len + 16);
        for (window, reverse) in [(4096, false), (48, true), (65_536, true)] {
            let (got, verdict) = by_windows(&key, &iv, &stored, window, reverse);
            assert!(got == plain, "len {len} window {window}: plaintext differs");
            assert_eq!(verdict, Verdict::Verified, "len {len} window {window}");
        }
        // Whole, streamed in uneven chunks.
        let mut s = GcmStream::new(key.clone(), iv).unwrap();
        let mut out = Vec::new();
        let mut rest = &stored[..];
        for n in [1usize, 15, 4097, 3, 65_536].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*n).min(rest.len());
            s.update(&rest[..n], &mut out).unwrap();
            rest = &rest[n..];
        }
        assert_eq!(s.finish(&mut out), Ok(len as u64));
        assert!(out == plain, "len {len}: streamed plaintext differs");
        // Python's object with one byte changed fails everywhere.
        if len > 0 {
            let mut bad = stored.clone();
            bad[len / 3] ^= 4;
            assert_eq!(by_windows(&key, &iv, &bad, 4096, false).1, Verdict::Failed);
            let mut s = GcmStream::new(key.clone(), iv).unwrap();
            let mut out = Vec::new();
            s.update(&bad, &mut out).unwrap();
            assert!(s.finish(&mut out).is_err());
        }
    }
}

#[test]
fn openssl_ctr_decrypts_like_apply_ctr() {
    if !require_tool("openssl") {
        return;
    }
    let dir = tempdir();
    let mut rng = rand::rng();
    let key_bytes: [u8; 32] = rng.random();
    let iv: [u8; 12] = rng.random();
    let key = ContentKey::Aes256(key_bytes);
    let plain = pseudo_random(200_003, 5);
    let stored = seal::seal_gcm_with(&key, &iv, &plain);
    let ct = &stored[..plain.len()];
    let (src, dst) = (path_in(&dir, "ct"), path_in(&dir, "pt"));
    write(&src, ct);
    run_ok(
        Command::new("openssl")
            .args(["enc", "-d", "-aes-256-ctr", "-K", &hex(&key_bytes), "-iv"])
            .arg(format!("{}00000002", hex(&iv)))
            .arg("-in")
            .arg(&src)
            .arg("-out")
            .arg(&dst),
    );
    let theirs = std::fs::read(&dst).unwrap();
    let mut ours = ct.to_vec();
    apply_ctr(&key, &iv, 0, &mut ours).unwrap();
    assert!(
        theirs == ours,
        "openssl's CTR stream differs from apply_ctr"
    );
    assert!(ours == plain);
}

#[test]
fn python_opens_what_we_seal() {
    if !python() {
        return;
    }
    let dir = tempdir();
    let mut rng = rand::rng();
    for len in [0usize, 1, 17, 200_000 + 9] {
        let key_bytes: [u8; 32] = rng.random();
        let iv: [u8; 12] = rng.random();
        let plain = pseudo_random(len, 99);
        let stored = seal::seal_gcm_with(&ContentKey::Aes256(key_bytes), &iv, &plain);
        let (src, dst) = (path_in(&dir, "stored"), path_in(&dir, "opened"));
        write(&src, &stored);
        py(
            PY_OPEN,
            &[
                &hex(&key_bytes),
                &hex(&iv),
                src.to_str().unwrap(),
                dst.to_str().unwrap(),
            ],
        );
        assert!(std::fs::read(&dst).unwrap() == plain, "len {len}");
    }
}

/// RSAES-OAEP with SHA-256 and MGF1-SHA-256, both ways: Python wraps for our private key,
/// and unwraps what `wrap_cek_oaep` and `seal_gcm` wrapped.
#[test]
fn oaep_wrapping_agrees_with_python() {
    if !python() {
        return;
    }
    let dir = tempdir();
    let private = seal::generate_key(2048);
    let public = private.to_public_key();
    let public_pem = path_in(&dir, "public.pem");
    let private_pem = path_in(&dir, "private.pem");
    write(
        &public_pem,
        public.to_public_key_pem(LineEnding::LF).unwrap().as_bytes(),
    );
    write_private(
        &private_pem,
        private.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    );
    let mut keys = PrivateKeys::new();
    keys.add("private.pem", private);

    let oaep =
        "padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)";
    let wrap = format!(
        "import sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
k = serialization.load_pem_public_key(open(sys.argv[1], 'rb').read())
print(k.encrypt(bytes.fromhex(sys.argv[2]), {oaep}).hex())"
    );
    let cek: [u8; 32] = rand::rng().random();
    let wrapped = py(&wrap, &[public_pem.to_str().unwrap(), &hex(&cek)]);
    let wrapped = unhex(&String::from_utf8(wrapped).unwrap());
    let (got, name) = keys.unwrap_oaep(&wrapped).unwrap();
    assert_eq!(got, ContentKey::Aes256(cek));
    assert_eq!(name, "private.pem");

    let unwrap = format!(
        "import sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
k = serialization.load_pem_private_key(open(sys.argv[1], 'rb').read(), None)
print(k.decrypt(bytes.fromhex(sys.argv[2]), {oaep}).hex())"
    );
    let ours = seal::wrap_cek_oaep(&public, &ContentKey::Aes256(cek));
    let theirs = py(&unwrap, &[private_pem.to_str().unwrap(), &hex(&ours)]);
    assert_eq!(unhex(&String::from_utf8(theirs).unwrap()), cek);

    // A whole sealed recording: Python unwraps the key and opens the object.
    let plain = pseudo_random(70_001, 3);
    let (stored, envelope) = seal::seal_gcm(&public, Some("CRkey"), &plain);
    assert_eq!(envelope.public_key_sid.as_deref(), Some("CRkey"));
    let theirs = py(
        &unwrap,
        &[private_pem.to_str().unwrap(), &hex(&envelope.wrapped_key)],
    );
    let key = unhex(&String::from_utf8(theirs).unwrap());
    let (src, dst) = (path_in(&dir, "stored"), path_in(&dir, "opened"));
    write(&src, &stored);
    py(
        PY_OPEN,
        &[
            &hex(&key),
            &hex(&envelope.iv),
            src.to_str().unwrap(),
            dst.to_str().unwrap(),
        ],
    );
    assert!(std::fs::read(&dst).unwrap() == plain);
    // And we open it too, from the envelope alone.
    let (key, _) = keys.unwrap_oaep(&envelope.wrapped_key).unwrap();
    let (got, verdict) = by_windows(&key, &envelope.iv, &stored, 4096, true);
    assert!(got == plain);
    assert_eq!(verdict, Verdict::Verified);
}
