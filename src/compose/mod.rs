//! `compose`: a room's composition rebuilt from its encrypted per-track recordings, on
//! this machine, with ffmpeg. Twilio cannot compose encrypted recordings.
//!
//! ```text
//! room's recordings (API) ─► ReadCore::open each (a wrong key fails here)
//!   ─► Inputs: each track at http://127.0.0.1:PORT/TOKEN/N, decrypted on read
//!   ─► ffprobe each URL: container start time and end ─► plan::plan ─► graph
//!   ─► ffmpeg reads the URLs, writes a temporary file beside the output
//!   ─► renamed to the output once ffmpeg succeeded
//! ```
//!
//! No decrypted track is ever written to disk: ffmpeg reads the tracks over loopback
//! HTTP from the read core's bounded cache. The pure parts are [`layout`] (Twilio's
//! `video_layout`), [`plan`] (the timeline) and [`graph`] (the ffmpeg command line);
//! this file runs the processes and owns the output file's life.

pub mod graph;
mod inputs;
pub mod layout;
pub mod plan;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

pub use graph::Format;
use inputs::Inputs;
use plan::{Kind, Options, Plan, Track};

use crate::read::ReadCore;
use crate::twilio::{MediaKind, MediaRef, Recording, TwilioClient};

/// Recordings opened and probed at once.
const AT_ONCE: usize = 4;

/// What to compose and where.
pub struct Request {
    pub room: String,
    pub options: Options,
    pub format: Format,
    /// The final file; `None` with `plan_only`.
    pub output: Option<PathBuf>,
    /// Print the plan and the ffmpeg command line; run nothing.
    pub plan_only: bool,
}

/// What a finished composition took.
pub struct Summary {
    pub plan: Plan,
    pub wall: Duration,
}

/// Called with the seconds of output written so far, then the total.
pub type Progress = Box<dyn Fn(f64, f64) + Send + Sync>;

/// Composes `request.room` through `core`. Writes nothing under the output's name
/// unless ffmpeg succeeded.
pub async fn compose(
    twilio: &TwilioClient,
    core: &Arc<ReadCore>,
    request: &Request,
    progress: Progress,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let recordings = room_recordings(twilio, &request.room).await?;

    // Open each: learns the envelope, checks the key.
    let handles: Vec<Arc<crate::read::Handle>> = stream::iter(recordings.iter())
        .map(|r| async move {
            core.open(&MediaRef::new(MediaKind::Recording, &r.sid))
                .await
                .map(Arc::new)
                .with_context(|| format!("cannot read recording {}", r.sid))
        })
        .buffered(AT_ONCE)
        .try_collect()
        .await?;
    let inputs = Inputs::start(handles)
        .await
        .context("cannot listen on 127.0.0.1 for ffmpeg")?;

    let tracks: Vec<Track> = stream::iter(recordings.iter().enumerate())
        .map(|(n, r)| {
            let url = inputs.url(n);
            async move { probe(r, &url).await }
        })
        .buffered(AT_ONCE)
        .try_collect()
        .await
        .map_err(|e| with_failures(e, &inputs))?;
    let plan = plan::plan(&tracks, &request.options)?;
    tracing::info!(
        "{}: {} tracks, {:.3} s of output",
        request.room,
        plan.inputs.len(),
        plan.duration
    );

    let urls: Vec<String> = plan
        .inputs
        .iter()
        .map(|i| {
            let n = tracks
                .iter()
                .position(|t| t.sid == i.track.sid)
                .expect("planned tracks are probed tracks");
            inputs.url(n)
        })
        .collect();

    if request.plan_only {
        let names: Vec<String> = plan
            .inputs
            .iter()
            .map(|i| {
                let ext = match i.track.kind {
                    Kind::Audio => "mka",
                    Kind::Video => "mkv",
                };
                format!("recordings/{}.{ext}", i.track.sid)
            })
            .collect();
        let out = request.output.as_ref().map_or(
            format!("{}.{}", request.room, request.format.extension()),
            |p| p.display().to_string(),
        );
        let args = graph::ffmpeg_args(&plan, &names, request.format, &out, false);
        println!("{}", plan.describe());
        println!(
            "# ffmpeg over a mount's files (twilio-media-fs mount): run it in the mount's directory"
        );
        println!("{}", graph::shell_line("ffmpeg", &args));
        return Ok(Summary {
            plan,
            wall: started.elapsed(),
        });
    }

    let output = request.output.as_deref().context("no output file")?;
    let temp = temporary_beside(output)?;
    let target = format!("file:{}", temp.path().display());
    let args = graph::ffmpeg_args(&plan, &urls, request.format, &target, true);
    // What ffmpeg says names recordings, not the loopback URLs.
    let names: Vec<(String, String)> = urls
        .iter()
        .zip(&plan.inputs)
        .map(|(url, input)| (url.clone(), format!("recording {}", input.track.sid)))
        .collect();
    run_ffmpeg(&args, plan.duration, &progress, &names)
        .await
        .map_err(|e| with_failures(e, &inputs))?;
    let failures = inputs.failures();
    if let Some(first) = failures.first() {
        bail!("cannot read {first}");
    }
    temp.persist(output).with_context(|| {
        format!(
            "cannot rename the finished composition to {}",
            output.display()
        )
    })?;
    Ok(Summary {
        plan,
        wall: started.elapsed(),
    })
}

/// The room's recordings that hold media: audio and video, completed.
async fn room_recordings(twilio: &TwilioClient, room: &str) -> anyhow::Result<Vec<Recording>> {
    let all = twilio
        .room_recordings(room)
        .await
        .with_context(|| format!("cannot list the recordings of room {room}"))?;
    let media: Vec<Recording> = all
        .into_iter()
        .filter(|r| matches!(r.r#type.as_deref(), Some("audio" | "video")))
        .filter(|r| {
            let completed = matches!(r.status.as_deref(), None | Some("completed"));
            if !completed {
                tracing::warn!(
                    "{}: left out: its status is {} (only completed recordings have media)",
                    r.sid,
                    r.status.as_deref().unwrap_or("?")
                );
            }
            completed
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    let media: Vec<Recording> = media
        .into_iter()
        .filter(|r| seen.insert(r.sid.clone()))
        .collect();
    if media.is_empty() {
        bail!(
            "room {room} has no completed audio or video recordings \
             (`twilio-media-fs ls recordings --room {room}` lists them)"
        );
    }
    Ok(media)
}

/// The error, preceded by the first read that failed, which names the SID.
fn with_failures(e: anyhow::Error, inputs: &Inputs) -> anyhow::Error {
    match inputs.failures().first() {
        Some(first) => e.context(format!("cannot read {first}")),
        None => e,
    }
}

/// A private temporary file in `output`'s directory, `.NAME.XXXXXX.partial`, mode 0600,
/// removed when dropped.
fn temporary_beside(output: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = output
        .file_name()
        .with_context(|| format!("{} is not a file name", output.display()))?;
    tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(".partial")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))
}

/// What ffprobe says of a track: where its media starts and ends.
#[derive(serde::Deserialize)]
struct Probed {
    format: Option<ProbedFormat>,
    #[serde(default)]
    packets: Vec<ProbedPacket>,
}

#[derive(serde::Deserialize)]
struct ProbedFormat {
    start_time: Option<String>,
    duration: Option<String>,
}

#[derive(serde::Deserialize)]
struct ProbedPacket {
    pts_time: Option<String>,
    duration_time: Option<String>,
}

/// Runs ffprobe on `url`: the container's start time, and the end of its last packet
/// (read after a seek to the end: Matroska's `Duration` is the last timestamp in some
/// muxers and the length in others, so it is not trusted).
async fn probe(recording: &Recording, url: &str) -> anyhow::Result<Track> {
    let sid = &recording.sid;
    let out = child_process("ffprobe")
        .args([
            "-v",
            "error",
            "-read_intervals",
            "999999999%",
            "-show_entries",
            "format=start_time,duration:packet=pts_time,duration_time",
            "-of",
            "json",
            url,
        ])
        .output()
        .await
        .map_err(missing_tool("ffprobe"))?;
    if !out.status.success() {
        bail!(
            "ffprobe cannot read recording {sid}: {}",
            last_lines(&String::from_utf8_lossy(&out.stderr), 3).replace(url, sid)
        );
    }
    let probed: Probed = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("ffprobe's answer about {sid} is not JSON"))?;
    let number = |s: &Option<String>| s.as_deref().and_then(|s| s.parse::<f64>().ok());
    let format = probed.format.as_ref();
    let start_time = format
        .and_then(|f| number(&f.start_time))
        .with_context(|| format!("ffprobe gives recording {sid} no start time"))?;
    let end = probed
        .packets
        .iter()
        .filter_map(|p| Some(number(&p.pts_time)? + number(&p.duration_time).unwrap_or(0.0)))
        .fold(f64::NEG_INFINITY, f64::max);
    let end = if end.is_finite() {
        end
    } else {
        // No packet after the seek: trust the container's duration as an end time.
        format
            .and_then(|f| number(&f.duration))
            .unwrap_or(start_time)
            .max(start_time)
    };
    let kind = match recording.r#type.as_deref() {
        Some("video") => Kind::Video,
        _ => Kind::Audio,
    };
    let grouping = recording.grouping_sids.as_ref();
    Ok(Track {
        sid: sid.clone(),
        kind,
        codec: recording.codec.clone().unwrap_or_default(),
        track_name: recording.track_name.clone().unwrap_or_default(),
        participant: grouping
            .and_then(|g| g.participant_sid.clone())
            .unwrap_or_default(),
        source_sid: recording.source_sid.clone().unwrap_or_default(),
        offset_ms: recording.offset.unwrap_or(0),
        start_time,
        duration: end - start_time,
    })
}

/// `program`, killed with this process: ffprobe and ffmpeg must not outlive a
/// `compose` that was killed (SIGKILL, the OOM killer), let alone finish its file.
fn child_process(program: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: between fork and exec only async-signal-safe calls: prctl, getppid.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then die now.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("compose ended"));
            }
            Ok(())
        });
    }
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    cmd
}

fn missing_tool(name: &'static str) -> impl Fn(std::io::Error) -> anyhow::Error {
    move |e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!(
                "compose needs {name}, which is not on PATH: install ffmpeg \
                 (Debian and Ubuntu: apt-get install ffmpeg)"
            )
        } else {
            anyhow::Error::new(e).context(format!("cannot run {name}"))
        }
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

/// Runs ffmpeg with `args`, reporting `-progress` to `progress`; the error carries the
/// last lines ffmpeg printed, each input's URL replaced by its name in `names`.
async fn run_ffmpeg(
    args: &[String],
    total: f64,
    progress: &Progress,
    names: &[(String, String)],
) -> anyhow::Result<()> {
    let named = |text: &str| {
        names.iter().fold(text.to_owned(), |t, (url, name)| {
            t.replace(url.as_str(), name)
        })
    };
    tracing::debug!("{}", named(&graph::shell_line("ffmpeg", args)));
    let mut child = child_process("ffmpeg")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(missing_tool("ffmpeg"))?;
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(us) = line.strip_prefix("out_time_us=")
            && let Ok(us) = us.trim().parse::<i64>()
        {
            progress((us.max(0) as f64 / 1e6).min(total), total);
        }
    }
    let status = child.wait().await.context("cannot wait for ffmpeg")?;
    let errors = errors.await.unwrap_or_default();
    if !status.success() {
        bail!(
            "ffmpeg failed ({status}): {}",
            named(&last_lines(&errors, 4))
        );
    }
    progress(total, total);
    Ok(())
}

/// CPU seconds (user + system) of this process, and of its children waited for
/// (ffprobe and ffmpeg).
pub fn cpu_seconds() -> (f64, f64) {
    let of = |who| {
        // SAFETY: getrusage fills the zeroed struct it is given; no other memory.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &mut usage) } != 0 {
            return 0.0;
        }
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        secs(usage.ru_utime) + secs(usage.ru_stime)
    };
    (of(libc::RUSAGE_SELF), of(libc::RUSAGE_CHILDREN))
}

/// The peak resident memory of this process (`VmHWM`), bytes.
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
