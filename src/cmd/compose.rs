//! `compose`: flags become a [`crate::compose::Request`] and a read core; the
//! composition runs with a progress bar on a terminal, and SIGINT, SIGTERM or SIGHUP
//! stop it, ffmpeg and the unfinished output file with it (as `get` does).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};

use super::config::{load_keys, twilio_client};
use crate::app::Backend;
use crate::cli::ComposeArgs;
use crate::compose::{self, Format, Request, layout, plan::Options};

pub fn run(args: ComposeArgs) -> anyhow::Result<()> {
    crate::twilio::validate_sid(&args.room)
        .with_context(|| format!("{:?} is not a room SID (RM…)", args.room))?;
    if !args.room.starts_with("RM") {
        bail!("{} is not a room SID: rooms begin with RM", args.room);
    }
    let request = request(&args)?;
    let keys = Arc::new(load_keys(&args.keys)?);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let interrupted = runtime.block_on(async {
        let interrupt =
            super::get::interruption().context("cannot handle SIGINT, SIGTERM and SIGHUP")?;
        let work = async {
            let twilio = Arc::new(twilio_client(&args.api)?);
            let backend = Backend::http(twilio.clone());
            let core = Arc::new(crate::app::read_core(
                backend.source,
                backend.io,
                backend.answer_within,
                keys.clone(),
                crate::app::DEFAULT_WINDOW,
                args.cache_size,
                args.require_encrypted,
            ));
            let bar = progress_bar(request.plan_only);
            let shown = bar.clone();
            let progress: compose::Progress = Box::new(move |done, total| {
                shown.set_length((total * 1000.0) as u64);
                shown.set_position((done * 1000.0) as u64);
            });
            let summary = compose::compose(&twilio, &core, &request, progress).await;
            bar.finish_and_clear();
            anyhow::Ok(summary?)
        };
        tokio::select! {
            done = work => done.map(Ok),
            signal = interrupt => Ok(Err(signal)),
        }
    })?;
    let summary = match interrupted {
        Ok(summary) => summary,
        Err((signal, name)) => {
            eprintln!("twilio-media-fs: stopped by {name}: no output file was left");
            super::get::die_of(signal);
            bail!("stopped by {name}");
        }
    };
    if !request.plan_only {
        let wall = summary.wall.as_secs_f64();
        let peak = compose::peak_memory()
            .map_or("unknown".into(), |b| format!("{} MiB", b.div_ceil(1 << 20)));
        let (own_cpu, ffmpeg_cpu) = compose::cpu_seconds();
        eprintln!(
            "{}: {:.1} s of media from {} tracks in {wall:.1} s ({:.1}× real time); \
             CPU: ffmpeg and ffprobe {ffmpeg_cpu:.1} s, twilio-media-fs {own_cpu:.1} s; \
             peak memory of twilio-media-fs {peak} (ffmpeg not counted)",
            request
                .output
                .as_deref()
                .unwrap_or(std::path::Path::new(""))
                .display(),
            summary.plan.duration,
            summary.plan.inputs.len(),
            summary.plan.duration / wall.max(1e-3),
        );
    }
    Ok(())
}

/// The request the flags describe.
fn request(args: &ComposeArgs) -> anyhow::Result<Request> {
    let format = match (args.format, &args.output) {
        (Some(f), _) => f,
        (None, Some(path)) if path.extension().is_some_and(|e| e == "webm") => Format::Webm,
        _ => Format::Mp4,
    };
    let (width, height) = args.resolution;
    let layout = match &args.layout {
        None => None,
        Some(text) => {
            let json = match text.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the layout file {path}"))?,
                None => text.clone(),
            };
            Some(layout::parse(&json, width, height)?)
        }
    };
    if args.output.as_deref().is_some_and(|o| o.as_os_str() == "-") {
        bail!(
            "compose writes a file (ffmpeg finishes an MP4 by going back to its start): \
             -o - (standard output) is not supported; give a file name"
        );
    }
    let output = match &args.output {
        Some(path) if path.is_dir() => path.join(format!("{}.{}", args.room, format.extension())),
        Some(path) => path.clone(),
        None => PathBuf::from(format!("{}.{}", args.room, format.extension())),
    };
    // A name that says the other container would mislead every player that opens it.
    let extension = output
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let clash = matches!(
        (format, extension.as_deref()),
        (Format::Mp4, Some("webm" | "mkv" | "mka")) | (Format::Webm, Some("mp4" | "m4a" | "mov"))
    );
    if clash {
        bail!(
            "{} is named as another container than --format {} writes: \
             name it .{} or choose --format",
            output.display(),
            format.extension(),
            format.extension()
        );
    }
    // Before anything is fetched: the file is made there, at the end.
    if !args.plan {
        let dir = match output.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        if !dir.is_dir() {
            bail!(
                "cannot write {}: {} is not a directory",
                output.display(),
                dir.display()
            );
        }
    }
    Ok(Request {
        room: args.room.clone(),
        options: Options {
            width,
            height,
            trim: !args.no_trim,
            audio_only: args.audio_only,
            audio_sources: args.audio_sources.clone(),
            audio_excluded: args.exclude_audio.clone(),
            video_sources: args.video_sources.clone(),
            video_excluded: args.exclude_video.clone(),
            layout,
            ..Options::default()
        },
        format,
        output: Some(output),
        plan_only: args.plan,
    })
}

/// Seconds of output written, on a terminal; hidden otherwise and for `--plan`.
fn progress_bar(hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    ProgressBar::new(0).with_style(
        ProgressStyle::with_template("composing {bar:40} {percent}% eta {eta}")
            .expect("valid template"),
    )
}
