//! `get`: download and decrypt whole recordings and compositions by SID.
//!
//! Each object is read as ciphertext chunks of [`CHUNK`] bytes, several ranged GETs in
//! flight at once (one S3 connection is slow; parallel ranges are how clients go
//! faster), decrypted chunk by chunk (the block before a chunk is its IV) and written in
//! order through [`Output`], so memory stays at about `parallel × CHUNK` and a failure
//! leaves no file under the final name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};

use super::output::Output;
use crate::cli::GetArgs;
use crate::crypto::{ContentKey, Envelope, PrivateKeys, window};
use crate::keyfile;
use crate::object::ObjectClient;
use crate::twilio::{MediaRef, TwilioClient};

/// Ciphertext bytes per ranged GET: big enough that a round trip is small beside the
/// transfer, small enough that `parallel` of them stay a few tens of MiB.
pub const CHUNK: u64 = 8 << 20;

pub fn run(args: GetArgs) -> anyhow::Result<()> {
    if args.sids.len() > 1 && args.output.as_deref().is_some_and(|o| o.as_os_str() == "-") {
        bail!("-o - (standard output) takes a single SID");
    }
    let keys = keyfile::load(&args.keys)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let twilio = Arc::new(args.api.client()?);
        let objects = ObjectClient::new(twilio.clone());
        for sid in &args.sids {
            get_one(&twilio, &objects, &keys, sid, &args)
                .await
                .with_context(|| format!("cannot get {sid}"))?;
        }
        Ok(())
    })
}

async fn get_one(
    twilio: &TwilioClient,
    objects: &ObjectClient,
    keys: &PrivateKeys,
    sid: &str,
    args: &GetArgs,
) -> anyhow::Result<()> {
    let (media, extension) = describe(twilio, sid).await?;
    let dest = destination(args.output.as_deref(), args.sids.len(), sid, &extension)?;

    // The first chunk brings the envelope and the object's length with it.
    let first = objects.get_range(&media, 0, CHUNK).await?;
    let total = first.total_len;
    let envelope =
        Envelope::from_headers(first.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .with_context(|| format!("{sid}: the storage headers"))?;
    let (cek, plain_len) = match &envelope {
        None => (None, total),
        Some(env) => {
            let (cek, len) = unwrap(objects, &media, keys, env, &first.data, total).await?;
            (Some(cek), len)
        }
    };
    tracing::info!("{sid}: {total} bytes stored, {plain_len} bytes of plaintext");

    let mut output = Output::create(&dest)?;
    let progress = super::decrypt_file::progress_bar(Some(plain_len));
    progress.set_message(sid.to_owned());
    let iv = envelope.as_ref().map(|e| e.iv).unwrap_or_default();
    let first_data = first.data;
    let chunks = (0..total.div_ceil(CHUNK)).map(|i| (i * CHUNK, ((i + 1) * CHUNK).min(total)));
    let mut plaintexts = stream::iter(chunks)
        .map(|(start, end)| {
            let first_data = first_data.clone();
            let media = &media;
            let cek = cek.as_ref();
            async move {
                // Chunk 0 came with the first request; the others fetch one block more
                // in front, the IV of their first block.
                let data = if start == 0 {
                    first_data.slice(..end as usize)
                } else {
                    let from = if cek.is_some() {
                        start - window::BLOCK
                    } else {
                        start
                    };
                    objects.get_range(media, from, end).await?.data
                };
                plaintext_of(cek, &iv, data, start, end, total)
            }
        })
        .buffered(args.parallel.max(1));
    let mut written = 0u64;
    while let Some(plain) = plaintexts.try_next().await? {
        output.write_all(&plain)?;
        written += plain.len() as u64;
        progress.inc(plain.len() as u64);
    }
    if written != plain_len {
        bail!("{sid}: wrote {written} bytes, expected {plain_len}");
    }
    output.commit()?;
    progress.finish_and_clear();
    if dest.as_os_str() != "-" {
        eprintln!("{sid} → {} ({plain_len} bytes)", dest.display());
    }
    Ok(())
}

/// The media reference and file extension of a SID, from its resource.
async fn describe(twilio: &TwilioClient, sid: &str) -> anyhow::Result<(MediaRef, String)> {
    let (status, extension, media) = if sid.starts_with("RT") {
        let r = twilio.recording(sid).await?;
        (r.status, r.container_format, MediaRef::recording(sid))
    } else if sid.starts_with("CJ") {
        let c = twilio.composition(sid).await?;
        (c.status, c.format, MediaRef::composition(sid))
    } else {
        bail!("{sid} is neither a recording (RT…) nor a composition (CJ…)");
    };
    if let Some(status) = status.as_deref()
        && !status.eq_ignore_ascii_case("completed")
    {
        bail!("{sid} is {status}: only completed media can be downloaded");
    }
    let extension = crate::names::extension(extension.as_deref().unwrap_or("bin"))
        .with_context(|| format!("{sid}: unexpected media format"))?;
    Ok((media, extension.to_owned()))
}

/// Unwraps the content key, checked against the object's last block, and returns the
/// exact plaintext length.
async fn unwrap(
    objects: &ObjectClient,
    media: &MediaRef,
    keys: &PrivateKeys,
    env: &Envelope,
    first: &Bytes,
    total: u64,
) -> anyhow::Result<(ContentKey, u64)> {
    if total < window::BLOCK || !total.is_multiple_of(window::BLOCK) {
        return Err(crate::crypto::CryptoError::CiphertextLength(total).into());
    }
    // The last two blocks (or the IV and the only block).
    let tail: Bytes = if total == window::BLOCK {
        let mut t = env.iv.to_vec();
        t.extend_from_slice(&first[..16]);
        t.into()
    } else if first.len() as u64 == total {
        first.slice(total as usize - 32..)
    } else {
        objects.get_range(media, total - 32, total).await?.data
    };
    let prev: [u8; 16] = tail[..16].try_into().context("short tail")?;
    let last: [u8; 16] = tail[16..32].try_into().context("short tail")?;
    let (cek, key_name) = keys.unwrap_cek(&env.wrapped_key, |cek| {
        window::check_tail(cek, &prev, &last, total, env.plaintext_len).map(|_| ())
    })?;
    let plain_len = window::check_tail(&cek, &prev, &last, total, env.plaintext_len)?;
    tracing::info!(
        "{}: content key ({}) unwrapped with {key_name}",
        media.sid,
        cek.algorithm()
    );
    Ok((cek, plain_len))
}

/// Decrypts one chunk: `data` is ciphertext [start − 16, end) (or [0, end) with the
/// header IV), or the plaintext itself for an unencrypted object.
fn plaintext_of(
    cek: Option<&ContentKey>,
    iv: &[u8; 16],
    data: Bytes,
    start: u64,
    end: u64,
    total: u64,
) -> anyhow::Result<Bytes> {
    let Some(cek) = cek else { return Ok(data) };
    let (prev, body) = if start == 0 {
        (*iv, &data[..])
    } else {
        let prev: [u8; 16] = data[..16].try_into().context("short chunk")?;
        (prev, &data[16..])
    };
    if body.len() as u64 != end - start {
        bail!("storage returned {} bytes for [{start}, {end})", body.len());
    }
    let mut buf = body.to_vec();
    let n = window::decrypt_window(cek, &prev, &mut buf, end == total)?;
    buf.truncate(n);
    Ok(buf.into())
}

/// Where one object goes: `-o FILE`, `-o DIR/SID.ext` (a directory, or several SIDs),
/// or `./SID.ext`.
fn destination(
    output: Option<&Path>,
    count: usize,
    sid: &str,
    extension: &str,
) -> anyhow::Result<PathBuf> {
    let name = format!("{sid}.{extension}");
    match output {
        None => Ok(PathBuf::from(name)),
        Some(o) if o.as_os_str() == "-" => Ok(o.to_owned()),
        Some(o) if o.is_dir() => Ok(o.join(name)),
        Some(o) if count > 1 => bail!(
            "{} is not a directory (needed for several SIDs)",
            o.display()
        ),
        Some(o) => Ok(o.to_owned()),
    }
}
