//! `decrypt-file`: decrypt a whole downloaded object in constant memory.
//!
//! Reads ciphertext in 1 MiB chunks, decrypts as it goes ([`StreamDecryptor`]; for a
//! Voice call recording, [`GcmStream`]), and writes through [`Output`], so a failure
//! (wrong key, bad padding, a length that does not match, a GCM tag that fails) leaves
//! no file under the output name. A call recording's envelope is `--cek` and `--iv`, or
//! `--recording` (its resource's JSON); its tag is checked before the file is named.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};

use super::config::load_keys;
use super::output::Output;
use crate::cli::DecryptFileArgs;
use crate::crypto::gcm::GcmEnvelope;
use crate::crypto::{
    CryptoError, Envelope, GcmStream, StreamDecryptor, parse_saved_headers, window,
};
use crate::twilio::{EncryptionDetails, VoiceRecording};

const CHUNK: usize = 1 << 20;

pub fn run(args: DecryptFileArgs) -> anyhow::Result<()> {
    if let Some(envelope) = voice_envelope(&args)? {
        return run_gcm(&args, envelope);
    }
    let mut envelope = read_envelope(&args)?;
    if args.length.is_some() {
        envelope.plaintext_len = args.length;
    }
    let keys = load_keys(&args.keys)?;
    let (mut input, size, tail) = open_input(&args.input, &envelope.iv)?;
    if let Some(size) = size {
        check_size(size, envelope.plaintext_len)?;
    }
    // With the file's last blocks at hand, a candidate key is checked before any output
    // exists; from a pipe, the padding check at the end does it.
    let verify = |cek: &_| match (&tail, size) {
        (Some((prev, last)), Some(size)) => {
            window::check_tail(cek, prev, last, size, envelope.plaintext_len).map(|_| ())
        }
        _ => Ok(()),
    };
    let (cek, key_name) = keys.unwrap_cek(&envelope.wrapped_key, verify)?;
    tracing::info!(
        "content key ({}) unwrapped with {key_name}",
        cek.algorithm()
    );
    let mut output = Output::create(&args.output)?;
    let progress = progress_bar(size);

    let mut decryptor = StreamDecryptor::new(cek, envelope.iv);
    let mut written = pump(&mut input, &args.input, &mut output, &progress, |c, p| {
        decryptor.update(c, p)
    })?;
    let mut plain = Vec::with_capacity(32);
    decryptor.finish(&mut plain)?;
    output.write_all(&plain)?;
    written += plain.len() as u64;
    if let Some(expected) = envelope.plaintext_len
        && expected != written
    {
        return Err(CryptoError::LengthMismatch {
            header: expected,
            actual: written,
        }
        .into());
    }
    output.commit()?;
    progress.finish_and_clear();
    tracing::info!("wrote {written} bytes to {}", args.output.display());
    Ok(())
}

/// A call recording's envelope, from `--cek`/`--iv` or `--recording`; `None` when
/// neither is given (the Video envelope then).
fn voice_envelope(args: &DecryptFileArgs) -> anyhow::Result<Option<GcmEnvelope>> {
    if let (Some(cek), Some(iv)) = (&args.cek, &args.iv) {
        return Ok(Some(GcmEnvelope::from_base64(None, cek, iv)?));
    }
    let Some(path) = &args.recording else {
        return Ok(None);
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let details = recording_details(&text).with_context(|| format!("in {}", path.display()))?;
    let (Some(cek), Some(iv)) = (&details.encrypted_cek, &details.iv) else {
        bail!(
            "{}: the recording's encryption_details are null or empty: it is not encrypted \
             and needs no decryption",
            path.display()
        );
    };
    Ok(Some(GcmEnvelope::from_base64(
        details.public_key_sid.as_deref(),
        cek,
        iv,
    )?))
}

/// `encryption_details` from a Recording resource's JSON, or the object itself.
fn recording_details(text: &str) -> anyhow::Result<EncryptionDetails> {
    let value: serde_json::Value = serde_json::from_str(text).context("not JSON")?;
    if value.get("sid").is_some() || value.get("encryption_details").is_some() {
        let r: VoiceRecording =
            serde_json::from_value(value).context("not a Recording resource")?;
        return Ok(r.encryption_details.unwrap_or_default());
    }
    serde_json::from_value(value).context("not encryption_details")
}

/// [`run`] for a call recording: OAEP unwraps the content key, [`GcmStream`] decrypts,
/// and the output is named only once the tag over the whole file verified.
fn run_gcm(args: &DecryptFileArgs, envelope: GcmEnvelope) -> anyhow::Result<()> {
    let keys = load_keys(&args.keys)?;
    let (cek, key_name) = keys.unwrap_oaep(&envelope.wrapped_key)?;
    tracing::info!("call recording key (AES-256-GCM) unwrapped with {key_name}");
    let (mut input, size) = open_plain_input(&args.input)?;
    if let Some(size) = size
        && size < crate::crypto::gcm::TAG_LEN
    {
        return Err(CryptoError::GcmTooShort(size).into());
    }
    let mut output = Output::create(&args.output)?;
    let progress = progress_bar(size);
    let mut decryptor = GcmStream::new(cek, envelope.iv)?;
    pump(&mut input, &args.input, &mut output, &progress, |c, p| {
        decryptor.update(c, p)
    })?;
    let mut plain = Vec::with_capacity(32);
    let written = decryptor.finish(&mut plain)?;
    output.write_all(&plain)?;
    output.commit()?;
    progress.finish_and_clear();
    tracing::info!(
        "the tag verified; wrote {written} bytes to {}",
        args.output.display()
    );
    Ok(())
}

/// Reads `input` (named `name`) to its end, [`CHUNK`] bytes at a time, each decrypted by
/// `update` into `output`; returns the plaintext bytes written. What the decryptor
/// holds back (the last block, the tag) is the caller's to finish.
fn pump<E: Into<anyhow::Error>>(
    input: &mut dyn Read,
    name: &Path,
    output: &mut Output,
    progress: &ProgressBar,
    mut update: impl FnMut(&[u8], &mut Vec<u8>) -> Result<(), E>,
) -> anyhow::Result<u64> {
    let mut chunk = vec![0u8; CHUNK];
    let mut plain = Vec::with_capacity(CHUNK + 32);
    let mut written = 0u64;
    loop {
        let n = read_full(input, &mut chunk)
            .with_context(|| format!("cannot read {}", name.display()))?;
        if n == 0 {
            return Ok(written);
        }
        update(&chunk[..n], &mut plain).map_err(Into::into)?;
        output.write_all(&plain)?;
        written += plain.len() as u64;
        plain.clear();
        progress.inc(n as u64);
    }
}

/// The opened input and its size when it is a regular file.
fn open_plain_input(path: &Path) -> anyhow::Result<(Box<dyn Read>, Option<u64>)> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(std::io::stdin().lock()), None));
    }
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?;
    let size = meta.is_file().then_some(meta.len());
    Ok((Box::new(file), size))
}

fn read_envelope(args: &DecryptFileArgs) -> anyhow::Result<Envelope> {
    if let Some(path) = &args.headers {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let headers = parse_saved_headers(&text);
        let envelope =
            Envelope::from_headers(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .with_context(|| format!("in the headers saved in {}", path.display()))?;
        match envelope {
            Some(e) => Ok(e),
            None => bail!(
                "{} holds no x-amz-meta-x-amz-key / x-amz-meta-x-amz-iv headers: save the \
                 headers of the storage response (curl -D FILE on the redirected URL), or \
                 the object is not encrypted and needs no decryption",
                path.display()
            ),
        }
    } else {
        let (key, iv) = (args.key_header.as_deref(), args.iv.as_deref());
        let (Some(key), Some(iv)) = (key, iv) else {
            bail!(
                "give either --headers FILE or both --key-header and --iv (a call recording: \
                 --cek and --iv, or --recording FILE)"
            );
        };
        Ok(Envelope::from_parts(key, iv, None)?)
    }
}

type Tail = ([u8; 16], [u8; 16]);

/// The opened input, its size when it is a regular file, and its last two blocks.
type Input = (Box<dyn Read>, Option<u64>, Option<Tail>);

/// Opens the input; for a regular file also returns its size and its last block with
/// the one before it (the header IV when the object is one block long).
fn open_input(path: &Path, iv: &[u8; 16]) -> anyhow::Result<Input> {
    use std::os::unix::fs::FileExt;
    if path.as_os_str() == "-" {
        return Ok((Box::new(std::io::stdin().lock()), None, None));
    }
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?;
    if !meta.is_file() {
        return Ok((Box::new(file), None, None));
    }
    let size = meta.len();
    let mut tail = None;
    if size >= 16 && size.is_multiple_of(16) {
        let mut buf = [0u8; 32];
        let (start, at) = if size == 16 {
            (16, size - 16)
        } else {
            (0, size - 32)
        };
        file.read_exact_at(&mut buf[start..], at)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if size == 16 {
            buf[..16].copy_from_slice(iv);
        }
        let prev = buf[..16].try_into().expect("16 bytes");
        let last = buf[16..].try_into().expect("16 bytes");
        tail = Some((prev, last));
    }
    Ok((Box::new(file), Some(size), tail))
}

/// Fails before any output is created when the file cannot be a whole object.
fn check_size(size: u64, plaintext_len: Option<u64>) -> anyhow::Result<()> {
    if size == 0 || !size.is_multiple_of(window::BLOCK) {
        return Err(CryptoError::CiphertextLength(size).into());
    }
    if let Some(len) = plaintext_len
        && window::ciphertext_len(len) != size
    {
        return Err(CryptoError::LengthMismatch {
            header: len,
            actual: size,
        })
        .context("the file is not the whole object, or belongs to other headers");
    }
    Ok(())
}

/// Reads until `buf` is full or the input ends.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A progress bar on stderr when it is a terminal (indicatif hides it otherwise).
pub fn progress_bar(total: Option<u64>) -> ProgressBar {
    match total {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {bytes} {bytes_per_sec}")
                .expect("valid template"),
        ),
    }
}
