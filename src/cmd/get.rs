//! `get`: download and decrypt whole recordings and compositions by SID.
//!
//! Each object is read through an [`ObjectReader`] (the mount's read path) whose
//! window is one chunk of [`CHUNK`] bytes, several ranged GETs in flight at once (one S3
//! connection is slow; parallel ranges are how clients go faster), and written in order
//! through [`Output`], so memory stays at about `parallel × CHUNK` and a failure leaves
//! no file under the final name.
//!
//! A Voice call recording (`RE…`) is read the same way, its envelope from its resource;
//! the file is named only once the GCM tag over all of it verified (every chunk went
//! through the read path's tag check), so a tampered recording leaves no file.
//!
//! An object stored unencrypted is written as it is (the read path logs one WARN naming
//! it); with `--require-encrypted` it is refused before the output file exists, so a
//! refusal leaves no file. An object without its envelope that is not media is refused
//! by the read path either way ([`crate::read::unencrypted`]).
//!
//! Each chunk (the first one with the envelope too) has a deadline ([`chunk_deadline`]):
//! the time a read of the mount may wait (the retry budget, one request timeout and a
//! second), plus the chunk's bytes at the minimum rate. A chunk not read by then fails
//! the `get`, naming the deadline: the minimum rate cuts a dribbling body and ends its
//! retries within the budget, and the deadline bounds whatever else the storage does
//! (bodies just fast enough that break off again and again). With the defaults that is
//! 61 s + 64 s for a 2 MiB chunk.
//!
//! SIGINT, SIGTERM and SIGHUP stop the downloads where they are: the futures are
//! dropped, and with them the unfinished [`Output`] (an `O_TMPFILE` inode with no
//! name, or the named `.partial` fallback, deleted); then the process dies of the same
//! signal. Files finished before stay.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{StreamExt, TryStreamExt, stream};

use super::config::{access_error, load_keys, twilio_client};
use super::output::Output;
use crate::cli::GetArgs;
use crate::crypto::{CryptoError, PrivateKeys, Verdict};
use crate::object::ObjectClient;
use crate::rate::MinRate;
use crate::read::{ObjectReader, ReadError, WindowCache};
use crate::twilio::{MediaRef, TwilioClient};

/// Ciphertext bytes per ranged GET. An S3 connection moves about 64 MiB/s after a first
/// byte of 20 ms or more: 32 GETs of 2 MiB at once (64 MiB in memory) fill the link from
/// the first round trip; 8 of 8 MiB (the same memory) took 0.9 s for a 256 MiB object
/// where 32 of 2 MiB take about 0.5 s (nginx storage, S3-like: bench/run.sh).
pub const CHUNK: u64 = 2 << 20;

pub fn run(args: GetArgs) -> anyhow::Result<()> {
    if args.sids.len() > 1 && args.output.as_deref().is_some_and(|o| o.as_os_str() == "-") {
        bail!("-o - (standard output) takes a single SID");
    }
    // Chunks are buffers of one size that come and go, like the mount's windows: reused
    // from the heap, not mapped afresh (page faults were 8% of `get`'s CPU time).
    super::malloc::limit_malloc_retention();
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
pub(super) fn interruption()
-> std::io::Result<impl std::future::Future<Output = (libc::c_int, &'static str)>> {
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
pub(super) fn die_of(signal: libc::c_int) {
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
    let (media, extension, listed) = describe(twilio, sid).await?;
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
    if let Some(len) = listed {
        reader.expect_len(len); // the key's check then costs no round trip of its own
    }
    let (bound, rate) = (twilio.answer_bound(), twilio.retry_policy().min_rate);
    let first = chunk_deadline(bound, rate, CHUNK);
    let meta = match tokio::time::timeout(first, reader.meta()).await {
        Ok(meta) => meta?,
        Err(_) => bail!(too_late(0, CHUNK, first, bound, rate)),
    };
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
    let read = |i: u64| {
        let (start, len) = (i * CHUNK, CHUNK.min(plain_len - i * CHUNK));
        read_chunk(
            reader,
            start,
            len,
            chunk_deadline(bound, rate, len),
            bound,
            rate,
        )
    };
    // The last chunk is read once all others are: a call recording's end then comes
    // only after its tag verified, even to standard output.
    let count = plain_len.div_ceil(CHUNK);
    let mut chunks = stream::iter(0..count.saturating_sub(1))
        .map(read)
        .buffered(args.parallel.max(1))
        .chain(stream::iter(count.checked_sub(1)).then(read))
        .boxed();
    let mut written = 0u64;
    while let Some(plain) = chunks.try_next().await? {
        output.write_all(&plain)?;
        written += plain.len() as u64;
        progress.inc(plain.len() as u64);
    }
    if written != plain_len {
        bail!("{sid}: wrote {written} bytes, expected {plain_len}");
    }
    // A call recording is named only once the tag over all of it verified.
    match reader.tag_verdict() {
        None | Some(Verdict::Verified) => {}
        Some(Verdict::Failed) => bail!(ReadError::Damaged {
            sid: sid.to_owned(),
            cause: CryptoError::TagMismatch,
        }),
        Some(Verdict::Unknown) => {
            bail!("{sid}: the GCM tag could not be checked (a part was not read): not saved")
        }
    }
    output.commit()?;
    progress.finish_and_clear();
    if dest.as_os_str() != "-" {
        eprintln!("{sid} → {} ({plain_len} bytes)", dest.display());
    }
    Ok(())
}

/// How long a chunk of `len` bytes may take: `bound` (what a read of the mount may
/// wait: the retry budget, one request timeout and a second), plus `len` at the
/// minimum rate.
pub fn chunk_deadline(bound: Duration, rate: MinRate, len: u64) -> Duration {
    bound.saturating_add(rate.time_for(len))
}

/// Plaintext `[start, start + len)` of `reader`, or an error naming the deadline once
/// `within` has passed.
async fn read_chunk(
    reader: &ObjectReader,
    start: u64,
    len: u64,
    within: Duration,
    bound: Duration,
    rate: MinRate,
) -> anyhow::Result<bytes::Bytes> {
    match tokio::time::timeout(within, reader.read(start, len)).await {
        Ok(read) => Ok(read?),
        Err(_) => bail!(too_late(start, len, within, bound, rate)),
    }
}

/// What a chunk that missed its deadline says.
fn too_late(start: u64, len: u64, within: Duration, bound: Duration, rate: MinRate) -> String {
    format!(
        "bytes {start}-{} not read within {:.1} s (the answer bound of {:.1} s, plus {len} \
         bytes at the minimum rate of {rate}): the storage is too slow",
        start + len,
        within.as_secs_f64(),
        bound.as_secs_f64()
    )
}

/// The media reference, file extension and listed size of a SID, from its resource.
async fn describe(
    twilio: &TwilioClient,
    sid: &str,
) -> anyhow::Result<(MediaRef, String, Option<u64>)> {
    let Some(kind) = crate::twilio::MediaKind::of_sid(sid) else {
        bail!("{sid} is neither a recording (RT…), a composition (CJ…) nor a call recording (RE…)");
    };
    let media = MediaRef::new(kind, sid);
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
    // A call recording's resource says how it was encrypted.
    Ok((resource.media_ref(), extension.to_owned(), resource.size()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::seal;
    use crate::faults::FaultySource;
    use crate::object::MemoryStorage;

    const SID: &str = "RT0123456789abcdef0123456789abcdef";

    #[test]
    fn the_deadline_is_the_answer_bound_plus_the_chunk_at_the_minimum_rate() {
        let bound = Duration::from_secs(61);
        let d = chunk_deadline(bound, MinRate::default(), CHUNK);
        assert_eq!(d, Duration::from_secs(61 + 64)); // 2 MiB at 32 KiB/s
        assert_eq!(
            chunk_deadline(bound, MinRate::default(), 32 << 10),
            Duration::from_secs(62)
        );
        assert_eq!(chunk_deadline(bound, MinRate::off(), CHUNK), Duration::MAX);
    }

    /// Issue 16, item 3: a chunk whose storage never finishes fails at its deadline,
    /// with a message naming it.
    #[tokio::test]
    async fn a_chunk_that_never_comes_fails_at_its_deadline() {
        let key = seal::test_key(11);
        let plain = vec![9u8; 4096];
        let storage = Arc::new(MemoryStorage::new());
        storage.put_sealed(SID, &plain, &key, true);
        let faulty = Arc::new(FaultySource::new(storage));
        faulty.stall(SID, 1024..2048);
        let mut keys = PrivateKeys::new();
        keys.add("k.pem", key);
        let reader = ObjectReader::new(
            0,
            MediaRef::recording(SID),
            faulty.clone(),
            Arc::new(keys),
            Arc::new(WindowCache::new(1 << 20)),
            1024,
        );
        let within = Duration::from_millis(200);
        let rate = MinRate::default();
        let got = read_chunk(&reader, 0, 1024, within, within, rate).await;
        assert_eq!(&got.unwrap()[..], &plain[..1024]);
        let started = std::time::Instant::now();
        let e = read_chunk(&reader, 1024, 1024, within, within, rate)
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            e.to_string(),
            "bytes 1024-2048 not read within 0.2 s (the answer bound of 0.2 s, plus 1024 \
             bytes at the minimum rate of 32 KiB/s): the storage is too slow"
        );
        assert_eq!(faulty.stalled_now(), 0, "its GET was dropped");
    }
}
