//! `get`: download and decrypt whole recordings and compositions by SID.
//!
//! Each object is read through an [`ObjectReader`] (the mount's read path) whose
//! window is one chunk of [`CHUNK`] bytes, several ranged GETs in flight at once (one S3
//! connection is slow; parallel ranges are how clients go faster), and written in order
//! through [`Output`], so memory stays at about `parallel × CHUNK` and a failure leaves
//! no file under the final name.
//!
//! An object stored unencrypted is written as it is (the read path logs one WARN naming
//! it); with `--require-encrypted` it is refused before the output file exists, so a
//! refusal leaves no file. An object without its envelope that is not media is refused
//! by the read path either way ([`crate::read::unencrypted`]).
//!
//! SIGINT, SIGTERM and SIGHUP stop the downloads where they are: the futures are
//! dropped, and with them the unfinished [`Output`] (an `O_TMPFILE` inode with no
//! name, or the named `.partial` fallback, deleted); then the process dies of the same
//! signal. Files finished before stay.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use futures_util::{StreamExt, TryStreamExt, stream};

use super::config::{access_error, load_keys, twilio_client};
use super::output::Output;
use crate::cli::GetArgs;
use crate::crypto::PrivateKeys;
use crate::object::ObjectClient;
use crate::read::{ObjectReader, WindowCache};
use crate::twilio::{MediaRef, TwilioClient};

/// Ciphertext bytes per ranged GET: big enough that a round trip is small beside the
/// transfer, small enough that `parallel` of them stay a few tens of MiB.
pub const CHUNK: u64 = 8 << 20;

pub fn run(args: GetArgs) -> anyhow::Result<()> {
    if args.sids.len() > 1 && args.output.as_deref().is_some_and(|o| o.as_os_str() == "-") {
        bail!("-o - (standard output) takes a single SID");
    }
    let keys = Arc::new(load_keys(&args.keys)?);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let interrupted = runtime.block_on(async {
        // Before any file is made: from here on these signals end the downloads by
        // dropping them, and with them the unfinished file.
        let interrupt = interruption().context("cannot handle SIGINT, SIGTERM and SIGHUP")?;
        let get_all = async {
            let twilio = Arc::new(twilio_client(&args.api)?);
            let objects = Arc::new(ObjectClient::new(twilio.clone()));
            for sid in &args.sids {
                get_one(&twilio, &objects, &keys, sid, &args)
                    .await
                    .with_context(|| format!("cannot get {sid}"))?;
            }
            anyhow::Ok(())
        };
        tokio::select! {
            done = get_all => done.map(|()| None),
            signal = interrupt => Ok(Some(signal)),
        }
    })?;
    match interrupted {
        None => Ok(()),
        Some((signal, name)) => {
            eprintln!("twilio-media-fs: stopped by {name}: nothing unfinished is left on disk");
            die_of(signal);
            bail!("stopped by {name}")
        }
    }
}

/// The signals that stop a `get`, with their names.
const STOPPING: [(libc::c_int, &str); 3] = [
    (libc::SIGINT, "SIGINT"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGHUP, "SIGHUP"),
];

/// Resolves with the first of [`STOPPING`] to arrive; handled from the call on. A
/// signal the process was started ignoring stays ignored: `nohup get …` must survive
/// the hangup, and `get … &` in a script its Ctrl-C.
fn interruption() -> std::io::Result<impl std::future::Future<Output = (libc::c_int, &'static str)>>
{
    use tokio::signal::unix::{SignalKind, signal};
    let mut streams = Vec::new();
    for (number, name) in STOPPING {
        if !ignored(number) {
            streams.push((signal(SignalKind::from_raw(number))?, number, name));
        }
    }
    Ok(async move {
        if streams.is_empty() {
            return std::future::pending().await;
        }
        let waits = streams.iter_mut().map(|(stream, number, name)| {
            Box::pin(async move {
                stream.recv().await;
                (*number, *name)
            })
        });
        futures_util::future::select_all(waits).await.0
    })
}

/// Whether `signal`'s action is to ignore it (inherited from the parent).
fn ignored(signal: libc::c_int) -> bool {
    // SAFETY: a query only (no new action); `old` is a valid, zeroed sigaction.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Ends the process by `signal`, with its default action, so that the parent sees what
/// stopped it (a shell's `$?` is 128 + the signal) once the file is cleaned up.
fn die_of(signal: libc::c_int) {
    // SAFETY: restoring the default action and raising are async-signal-safe calls
    // with no memory arguments.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

async fn get_one(
    twilio: &TwilioClient,
    objects: &Arc<ObjectClient>,
    keys: &Arc<PrivateKeys>,
    sid: &str,
    args: &GetArgs,
) -> anyhow::Result<()> {
    let (media, extension) = describe(twilio, sid).await?;
    let dest = destination(args.output.as_deref(), args.sids.len(), sid, &extension)?;

    // The mount's read path, with windows of one chunk: the first GET brings the
    // envelope and length, the key is checked against the last block, and each chunk
    // is fetched from the block before it and decrypted. The cache holds one chunk: the
    // first, decrypted along with the envelope, so it is not fetched twice.
    let reader = ObjectReader::new(
        0,
        media,
        objects.clone(),
        keys.clone(),
        Arc::new(WindowCache::new(CHUNK as usize)),
        CHUNK,
    );
    let meta = reader.meta().await?;
    if args.require_encrypted {
        // Before the output exists: a refused object leaves no file.
        reader.require_encrypted(meta)?;
    }
    let plain_len = meta.plain_len;
    tracing::info!("{sid}: {plain_len} bytes of plaintext");

    let mut output = Output::create(&dest)?;
    let progress = super::decrypt_file::progress_bar(Some(plain_len));
    progress.set_message(sid.to_owned());
    let reader = &reader;
    let mut chunks = stream::iter(0..plain_len.div_ceil(CHUNK))
        .map(|i| reader.read(i * CHUNK, CHUNK))
        .buffered(args.parallel.max(1));
    let mut written = 0u64;
    while let Some(plain) = chunks.try_next().await? {
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
    let Some(kind) = crate::twilio::MediaKind::of_sid(sid) else {
        bail!("{sid} is neither a recording (RT…) nor a composition (CJ…)");
    };
    let media = MediaRef {
        kind,
        sid: sid.to_owned(),
    };
    let resource = twilio
        .resource(&media)
        .await
        .map_err(|e| access_error(twilio, e, kind.plural()))?;
    if let Some(status) = resource.status()
        && !status.eq_ignore_ascii_case("completed")
    {
        bail!("{sid} is {status}: only completed media can be downloaded");
    }
    let extension = crate::names::extension(resource.format().unwrap_or("bin"))
        .with_context(|| format!("{sid}: unexpected media format"))?;
    Ok((media, extension.to_owned()))
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
