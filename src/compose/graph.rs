//! The ffmpeg command line of a [`Plan`]: its inputs, the filter graph that lines the
//! tracks up, mixes the audio and tiles the video, and the encoders.
//!
//! Pure: strings only. ffmpeg rebases every input to 0 (no `-copyts`), so every delay
//! is explicit:
//! - audio: `asetpts` puts the track at its start, `aresample=async=1:first_pts=0`
//!   resamples it to 48 kHz (Opus is 48 kHz, PCMU 8 kHz) and fills the silence before
//!   it and in its gaps, then `amix` sums the tracks unscaled;
//! - video: a black canvas of the output's size and rate; each file is moved to its
//!   start (`setpts`), cut to the span its tile shows it (`trim`), scaled to its cell (`scale` works frame by frame, so a
//!   resolution change mid-track is followed: inputs are read with `-reinit_filter 0`
//!   so the graph is never rebuilt), and overlaid on its cell, the canvas passing
//!   through before its first frame and after its last (`eof_action=pass`).

use super::plan::Plan;

/// The output's container and codecs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// H.264 and AAC in MP4.
    Mp4,
    /// VP8 and Opus in WebM.
    Webm,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Mp4 => "mp4",
            Format::Webm => "webm",
        }
    }
}

/// Seconds as ffmpeg reads them.
fn secs(t: f64) -> String {
    format!("{t:.3}")
}

/// The `-filter_complex` graph of `plan`: labels `[vout]` (unless audio only) and
/// `[aout]` (when there is audio).
pub fn filter_graph(plan: &Plan) -> String {
    let mut chains: Vec<String> = Vec::new();
    let dur = secs(plan.duration);
    if !plan.audio_only {
        chains.push(format!(
            "color=c=black:s={}x{}:r={}:d={dur},format=yuv420p[base0]",
            plan.width, plan.height, plan.fps
        ));
        // Each video input once, split into as many copies as it has tiles.
        let mut copies: Vec<Vec<String>> = vec![Vec::new(); plan.inputs.len()];
        for (n, tile) in plan.tiles.iter().enumerate() {
            copies[tile.input].push(format!("tile{n}"));
        }
        for (i, labels) in copies.iter().enumerate() {
            if labels.is_empty() {
                continue;
            }
            let start = secs(plan.inputs[i].start);
            let head = format!("[{i}:v]setpts=PTS-STARTPTS+{start}/TB");
            if labels.len() == 1 {
                chains.push(format!("{head}[{}]", labels[0]));
            } else {
                let outs: String = labels.iter().map(|l| format!("[{l}]")).collect();
                chains.push(format!("{head},split={}{outs}", labels.len()));
            }
        }
        // Tiles begin and end on the canvas's frames, so that `fps` and `tpad` give
        // frames at the canvas's own timestamps (the timeline is in ms; Opus's pre-skip
        // alone puts a track 14 ms off a frame).
        let frame = 1.0 / f64::from(plan.fps);
        let on_frame = |t: f64| (t / frame).round() * frame;
        let mut base = "base0".to_owned();
        for (n, tile) in plan.tiles.iter().enumerate() {
            let c = tile.cell;
            // Each copy keeps only its frames between `from` and one output frame past
            // `to` (`trim`), at the output's rate (`fps`: Twilio's video is of
            // variable rate), scaled to its cell, and is transparent from 0 until
            // `from` (`tpad`): the overlay then always has a frame of it at hand, and
            // draws it from the first frame on. After its last frame the canvas passes
            // through (`eof_action=pass`). (Not the overlay's `enable`: with two inputs
            // its timeline is evaluated at either input's timestamps, which flashes a
            // wrong frame at a handover.) One frame past its end, a tile that takes
            // over the cell, drawn later in the chain and so on top, has its first
            // frame in: the cell never flashes black between two sources.
            chains.push(format!(
                "[tile{n}]trim=start={from}:end={to},setpts=PTS-{from}/TB,fps={fps},\
                 scale={w}:{h}:flags=bilinear,setsar=1,format=yuva420p,\
                 tpad=start_duration={from}:color=black@0[fit{n}]",
                from = secs(on_frame(tile.from)),
                to = secs(on_frame(tile.to) + frame),
                fps = plan.fps,
                w = c.width,
                h = c.height
            ));
            let next = if n + 1 == plan.tiles.len() {
                "vout".to_owned()
            } else {
                format!("base{}", n + 1)
            };
            chains.push(format!(
                "[{base}][fit{n}]overlay=x={x}:y={y}:eof_action=pass[{next}]",
                x = c.x,
                y = c.y,
            ));
            base = next;
        }
        if plan.tiles.is_empty() {
            chains.push("[base0]null[vout]".into());
        }
    }
    if !plan.audio.is_empty() {
        let mut labels = String::new();
        for (n, &i) in plan.audio.iter().enumerate() {
            chains.push(format!(
                "[{i}:a]asetpts=PTS-STARTPTS+{start}/TB,aresample=48000:async=1:first_pts=0,\
                 aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo[mix{n}]",
                start = secs(plan.inputs[i].start)
            ));
            labels.push_str(&format!("[mix{n}]"));
        }
        chains.push(format!(
            "{labels}amix=inputs={}:duration=longest:dropout_transition=0:normalize=0,\
             apad=whole_dur={dur},atrim=end={dur}[aout]",
            plan.audio.len()
        ));
    }
    chains.join(";\n")
}

/// ffmpeg's arguments: `urls[i]` is where input `i` of the plan is read, `output`
/// where the result goes (written as `format` whatever its name), with `-progress` on
/// standard output when `progress`.
pub fn ffmpeg_args(
    plan: &Plan,
    urls: &[String],
    format: Format,
    output: &str,
    progress: bool,
) -> Vec<String> {
    let mut args: Vec<String> = ["-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
        .map(String::from)
        .to_vec();
    for (input, url) in plan.inputs.iter().zip(urls) {
        if input.track.kind == super::plan::Kind::Video {
            // A resolution change must reach `scale`, not rebuild the whole graph
            // (which would restart the canvas and the mix).
            args.extend(["-reinit_filter".into(), "0".into()]);
        }
        args.extend(["-i".into(), url.clone()]);
    }
    args.extend(["-filter_complex".into(), filter_graph(plan)]);
    if !plan.audio_only {
        args.extend(["-map".into(), "[vout]".into()]);
    }
    if !plan.audio.is_empty() {
        args.extend(["-map".into(), "[aout]".into()]);
    }
    let codecs: &[&str] = match format {
        Format::Mp4 => &[
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
        ],
        Format::Webm => &[
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-b:v",
            "1M",
            "-c:a",
            "libopus",
            "-b:a",
            "96k",
            "-f",
            "webm",
        ],
    };
    args.extend(codecs.iter().map(|s| s.to_string()));
    args.extend(["-t".into(), secs(plan.duration)]);
    if progress {
        args.extend(["-progress".into(), "pipe:1".into(), "-nostats".into()]);
    }
    args.push(output.to_owned());
    args
}

/// `args` as one line a shell takes back: words quoted where they need it.
pub fn shell_line(program: &str, args: &[String]) -> String {
    let quote = |s: &str| {
        if !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./:=+,@%".contains(&b))
        {
            s.to_owned()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::super::plan::{Kind, Options, Track, plan};
    use super::*;

    fn tracks() -> Vec<Track> {
        let t = |sid: &str, kind, who: &str, start: f64| Track {
            sid: sid.into(),
            kind,
            codec: "X".into(),
            track_name: format!("{who}-{kind:?}"),
            participant: format!("PA{who}"),
            source_sid: String::new(),
            offset_ms: 0,
            start_time: start,
            duration: 5.0,
        };
        vec![
            t("RT1", Kind::Audio, "a", 1.0),
            t("RT2", Kind::Video, "a", 1.0),
            t("RT3", Kind::Video, "b", 3.0),
        ]
    }

    #[test]
    fn the_graph_delays_scales_and_mixes() {
        let p = plan(&tracks(), &Options::default()).unwrap();
        let g = filter_graph(&p);
        assert!(g.contains("color=c=black:s=640x480:r=25:d=7.000"), "{g}");
        assert!(
            g.contains("[1:v]setpts=PTS-STARTPTS+0.000/TB[tile0]"),
            "{g}"
        );
        assert!(
            g.contains("[2:v]setpts=PTS-STARTPTS+2.000/TB[tile1]"),
            "{g}"
        );
        assert!(g.contains("overlay=x=320:y=0:eof_action=pass[vout]"), "{g}");
        assert!(
            g.contains("[0:a]asetpts=PTS-STARTPTS+0.000/TB,aresample=48000:async=1:first_pts=0")
        );
        assert!(g.contains("amix=inputs=1"));
        let args = ffmpeg_args(
            &p,
            &["u0".into(), "u1".into(), "u2".into()],
            Format::Webm,
            "out",
            true,
        );
        let line = args.join(" ");
        assert!(
            line.contains("-i u0 -reinit_filter 0 -i u1 -reinit_filter 0 -i u2"),
            "{line}"
        );
        assert!(line.contains("-map [vout] -map [aout] -c:v libvpx"));
        assert!(line.ends_with("-t 7.000 -progress pipe:1 -nostats out"));
    }

    #[test]
    fn audio_only_has_no_canvas() {
        let p = plan(
            &tracks(),
            &Options {
                audio_only: true,
                ..Options::default()
            },
        )
        .unwrap();
        let g = filter_graph(&p);
        assert!(!g.contains("color="));
        let args = ffmpeg_args(&p, &["u0".into()], Format::Mp4, "out", false).join(" ");
        assert!(!args.contains("[vout]"));
        assert!(!args.contains("reinit_filter"));
    }

    #[test]
    fn shell_lines_quote_what_needs_it() {
        let line = shell_line(
            "ffmpeg",
            &["-i".into(), "a b".into(), "it's".into(), "x=1".into()],
        );
        assert_eq!(line, r"ffmpeg -i 'a b' 'it'\''s' x=1");
    }
}
