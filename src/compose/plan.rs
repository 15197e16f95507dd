//! The plan of a composition: which of a room's tracks go in, where each lies on the
//! output's timeline, which cell shows each video file when, and how long the output
//! is.
//!
//! Pure: it takes what the API and ffprobe said of each track ([`Track`]) and the
//! user's options ([`Options`]) and decides; running ffmpeg is [`super::graph`]'s and
//! the caller's business.
//!
//! # The timeline
//! A track starts at `offset + 1000 × start_time` ms, where `offset` is its Recording's
//! `offset` (one per room, or per media-server segment of a room) and `start_time` is
//! its Matroska container's start. The room's own start is the smallest `offset` of its
//! recordings: time 0 here. Without trimming the output runs from the room's start to
//! the last track's end; with trimming (Twilio's default) every span in which no
//! selected track has media is cut out, at the start, between tracks and at the end.
//! `date_created` and `duration` (whole seconds) are never used for timing.

use std::collections::BTreeMap;

use thiserror::Error;

use super::layout::{self, Placement, Rect, Region, Segment};

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Audio,
    Video,
}

/// One recording of the room, as the API and ffprobe describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// `RT…`.
    pub sid: String,
    pub kind: Kind,
    pub codec: String,
    pub track_name: String,
    /// `PA…`.
    pub participant: String,
    /// `MT…`.
    pub source_sid: String,
    /// The Recording's `offset`, ms.
    pub offset_ms: u64,
    /// The container's start time, seconds (ffprobe's `format.start_time`).
    pub start_time: f64,
    /// The container's duration, seconds.
    pub duration: f64,
}

impl Track {
    /// The names patterns select it by: its track name and its SIDs.
    fn names(&self) -> [&str; 4] {
        [
            &self.track_name,
            &self.sid,
            &self.source_sid,
            &self.participant,
        ]
    }
}

/// What the user asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub trim: bool,
    pub audio_only: bool,
    pub audio_sources: Vec<String>,
    pub audio_excluded: Vec<String>,
    pub video_sources: Vec<String>,
    pub video_excluded: Vec<String>,
    /// Twilio's `video_layout`; `None`: one grid of every video source.
    pub layout: Option<Vec<Region>>,
}

impl Default for Options {
    /// Twilio's defaults: 640x480, trimmed, every source in one grid.
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            fps: 25,
            trim: true,
            audio_only: false,
            audio_sources: vec!["*".into()],
            audio_excluded: Vec::new(),
            video_sources: vec!["*".into()],
            video_excluded: Vec::new(),
            layout: None,
        }
    }
}

/// A track that goes in, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub track: Track,
    /// On the room's timeline, seconds from the room's start.
    pub room_start: f64,
    pub room_end: f64,
    /// On the output's timeline.
    pub start: f64,
    pub end: f64,
}

/// A video input shown in a cell from `from` to `to` (output seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// Index into [`Plan::inputs`].
    pub input: usize,
    pub region: String,
    /// The region's `z_pos`: tiles are drawn in this order.
    pub z: i64,
    pub cell: Rect,
    pub from: f64,
    pub to: f64,
}

/// Everything ffmpeg must be told.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Seconds of output.
    pub duration: f64,
    /// The tracks used, audio and video, in the order they start.
    pub inputs: Vec<Input>,
    /// Indices into `inputs` of the audio mixed.
    pub audio: Vec<usize>,
    /// Video tiles, in drawing order; empty for audio only.
    pub tiles: Vec<Tile>,
    pub audio_only: bool,
    /// Spans of the room's timeline cut out by trimming (seconds).
    pub cut: Vec<(f64, f64)>,
}

/// Why there is nothing to compose.
#[derive(Debug, Error, PartialEq)]
pub enum PlanError {
    #[error("the room has no audio or video recordings")]
    NoTracks,
    #[error(
        "no track matches the sources asked for (tracks: {0}); check --audio-sources, \
         --video-sources, --exclude-audio, --exclude-video and --layout"
    )]
    NothingSelected(String),
    #[error("recording {0}: its timing is not usable: {1}")]
    BadTiming(String, String),
    #[error(
        "layout region {0:?} has video to show and no cell to show it in (all its cells \
         are excluded, or too small): change its cells_excluded or its size"
    )]
    NoCells(String),
}

/// The furthest a track may lie from the room's start: a day (Twilio's rooms last at
/// most 24 hours). Anything further is a broken `offset` or start time, not a room.
const MAX_SPAN_MS: u64 = 24 * 3600 * 1000;

/// Rounds to the millisecond, the precision Twilio's offsets have.
fn ms(t: f64) -> f64 {
    (t * 1000.0).round() / 1000.0
}

/// Plans the composition of `tracks` (one room's recordings) by `options`.
pub fn plan(tracks: &[Track], options: &Options) -> Result<Plan, PlanError> {
    if tracks.is_empty() {
        return Err(PlanError::NoTracks);
    }
    let origin = tracks.iter().map(|t| t.offset_ms).min().unwrap_or(0);
    for t in tracks {
        let bad = |why: String| Err(PlanError::BadTiming(t.sid.clone(), why));
        if t.offset_ms - origin > MAX_SPAN_MS {
            return bad(format!(
                "its offset is {} ms after the room's first ({origin} ms): more than a day",
                t.offset_ms - origin
            ));
        }
        if !(t.start_time.is_finite() && t.duration.is_finite())
            || t.start_time.abs() > MAX_SPAN_MS as f64 / 1000.0
            || !(0.0..=MAX_SPAN_MS as f64 / 1000.0).contains(&t.duration)
        {
            return bad(format!(
                "the container says it starts at {} s and lasts {} s",
                t.start_time, t.duration
            ));
        }
    }
    let placed = |t: &Track| {
        let start = ms((t.offset_ms - origin) as f64 / 1000.0 + t.start_time);
        (start, ms(start + t.duration.max(0.0)))
    };

    // Which tracks go in.
    let audio_wanted = |t: &Track| {
        t.kind == Kind::Audio
            && layout::selected(&t.names(), &options.audio_sources, &options.audio_excluded)
    };
    let default_region;
    let regions: &[Region] = match &options.layout {
        Some(r) => r,
        None => {
            default_region = [layout::default_layout(
                options.width,
                options.height,
                &["*".into()],
                &[],
            )];
            &default_region
        }
    };
    let video_wanted = |t: &Track| {
        t.kind == Kind::Video
            && !options.audio_only
            && layout::selected(&t.names(), &options.video_sources, &options.video_excluded)
            && regions
                .iter()
                .any(|r| layout::selected(&t.names(), &r.sources, &r.excluded))
    };
    let mut chosen: Vec<(&Track, f64, f64)> = tracks
        .iter()
        .filter(|t| audio_wanted(t) || video_wanted(t))
        .map(|t| {
            let (s, e) = placed(t);
            (t, s, e)
        })
        .collect();
    if chosen.is_empty() {
        let mut names: Vec<&str> = tracks.iter().map(|t| t.track_name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        return Err(PlanError::NothingSelected(names.join(", ")));
    }
    chosen.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.sid.cmp(&b.0.sid)));

    // The output's timeline: the room's, minus the spans with no media when trimming.
    let spans = merged(chosen.iter().map(|&(_, s, e)| (s, e)));
    let room_end = spans.last().map_or(0.0, |s| s.1);
    let mut cut = Vec::new();
    if options.trim {
        let mut at = 0.0;
        for &(s, e) in &spans {
            if s > at {
                cut.push((at, s));
            }
            at = e;
        }
    }
    let shift = |t: f64| -> f64 {
        let before: f64 = cut
            .iter()
            .map(|&(a, b)| if b <= t { b - a } else { 0.0 })
            .sum();
        ms(t - before)
    };
    let duration = ms(room_end - cut.iter().map(|(a, b)| b - a).sum::<f64>());

    let inputs: Vec<Input> = chosen
        .iter()
        .map(|&(t, s, e)| {
            // Opus's pre-skip can put a track's first packet a few ms before the room.
            let start = shift(s).max(0.0);
            Input {
                track: t.clone(),
                room_start: s,
                room_end: e,
                start,
                end: ms(start + (e - s)),
            }
        })
        .collect();
    let audio = (0..inputs.len())
        .filter(|&i| audio_wanted(&inputs[i].track))
        .collect();

    // Tiles, region by region in drawing order.
    let mut tiles = Vec::new();
    if !options.audio_only {
        for region in regions {
            let members: Vec<usize> = (0..inputs.len())
                .filter(|&i| {
                    let t = &inputs[i].track;
                    video_wanted(t)
                        && layout::selected(&t.names(), &region.sources, &region.excluded)
                })
                .collect();
            // One source per participant's track: its files share a cell.
            let mut source_of: BTreeMap<(&str, &str), usize> = BTreeMap::new();
            let segments: Vec<Segment> = members
                .iter()
                .map(|&i| {
                    let t = &inputs[i].track;
                    let next = source_of.len();
                    let source = *source_of
                        .entry((t.participant.as_str(), t.track_name.as_str()))
                        .or_insert(next);
                    Segment {
                        source,
                        start: inputs[i].start,
                        end: inputs[i].end,
                    }
                })
                .collect();
            let cells = region.cells(source_of.len());
            if !segments.is_empty() && cells.is_empty() {
                return Err(PlanError::NoCells(region.name.clone()));
            }
            for Placement {
                segment,
                cell,
                from,
                to,
            } in layout::place(&segments, cells.len(), region.reuse)
            {
                tiles.push(Tile {
                    input: members[segment],
                    region: region.name.clone(),
                    z: region.z,
                    cell: cells[cell],
                    from,
                    to,
                });
            }
        }
    }
    Ok(Plan {
        width: options.width,
        height: options.height,
        fps: options.fps,
        duration,
        inputs,
        audio,
        // No video to show (a room of audio tracks): no black picture either.
        audio_only: options.audio_only || tiles.is_empty(),
        tiles,
        cut,
    })
}

/// The union of `spans`, sorted and merged.
fn merged(spans: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, f64)> = spans.filter(|(s, e)| e > s).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

impl Plan {
    /// A human-readable table of the plan, for `--plan`.
    pub fn describe(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "output: {}x{} at {} fps, {:.3} s{}",
            self.width,
            self.height,
            self.fps,
            self.duration,
            if self.audio_only { ", audio only" } else { "" }
        );
        for (a, b) in &self.cut {
            let _ = writeln!(out, "cut: {a:.3}-{b:.3} s of the room (no media)");
        }
        let _ = writeln!(
            out,
            "{:<4} {:<34} {:<5} {:<5} {:<20} {:>16} {:>16}",
            "in", "recording", "type", "codec", "track", "room (s)", "output (s)"
        );
        let mut rows = String::new();
        for (i, input) in self.inputs.iter().enumerate() {
            let t = &input.track;
            let _ = writeln!(
                rows,
                "{:<4} {:<34} {:<5} {:<5} {:<20} {:>7.3}-{:<8.3} {:>7.3}-{:<8.3}",
                i,
                t.sid,
                match t.kind {
                    Kind::Audio => "audio",
                    Kind::Video => "video",
                },
                t.codec,
                t.track_name,
                input.room_start,
                input.room_end,
                input.start,
                input.end
            );
        }
        for row in rows.lines() {
            let _ = writeln!(out, "{}", row.trim_end());
        }
        for tile in &self.tiles {
            let c = tile.cell;
            let _ = writeln!(
                out,
                "tile: in {} in region {:?} at {}x{}+{}+{} from {:.3} to {:.3} s",
                tile.input, tile.region, c.width, c.height, c.x, c.y, tile.from, tile.to
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(sid: &str, kind: Kind, who: &str, offset_ms: u64, start: f64, dur: f64) -> Track {
        let k = match kind {
            Kind::Audio => "audio",
            Kind::Video => "video",
        };
        Track {
            sid: sid.into(),
            kind,
            codec: "X".into(),
            track_name: format!("{who}-{k}"),
            participant: format!("PA{who}"),
            source_sid: format!("MT{sid}"),
            offset_ms,
            start_time: start,
            duration: dur,
        }
    }

    /// The emulator's meeting: alice 2-19, bob 4-8 and 10-17 (second segment), carol
    /// 5-14, dave audio 6-12.
    fn meeting() -> Vec<Track> {
        vec![
            track("RTa1", Kind::Audio, "alice", 1000, 2.0, 17.0),
            track("RTa2", Kind::Video, "alice", 1000, 2.0, 17.0),
            track("RTb1", Kind::Audio, "bob", 1000, 4.0, 4.0),
            track("RTb2", Kind::Video, "bob", 1000, 4.0, 4.0),
            track("RTb3", Kind::Audio, "bob", 9000, 2.0, 7.0),
            track("RTb4", Kind::Video, "bob", 9000, 2.0, 7.0),
            track("RTc1", Kind::Audio, "carol", 1000, 5.0, 9.0),
            track("RTc2", Kind::Video, "carol", 1000, 5.0, 9.0),
            track("RTd1", Kind::Audio, "dave", 1000, 6.0, 6.0),
        ]
    }

    #[test]
    fn offsets_and_start_times_line_up() {
        let p = plan(
            &meeting(),
            &Options {
                trim: false,
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(p.duration, 19.0);
        let bob2 = p.inputs.iter().find(|i| i.track.sid == "RTb3").unwrap();
        assert_eq!((bob2.room_start, bob2.room_end), (10.0, 17.0));
        assert_eq!((bob2.start, bob2.end), (10.0, 17.0));
        assert!(p.cut.is_empty());
        assert_eq!(p.audio.len(), 5);
        assert_eq!(p.tiles.len(), 4);
    }

    #[test]
    fn trimming_cuts_the_silence_before_and_between() {
        let p = plan(&meeting(), &Options::default()).unwrap();
        assert_eq!(p.cut, vec![(0.0, 2.0)]);
        assert_eq!(p.duration, 17.0);
        let carol = p.inputs.iter().find(|i| i.track.sid == "RTc2").unwrap();
        assert_eq!((carol.start, carol.end), (3.0, 12.0));

        // A gap in the middle: only bob, 4-8 and 10-17.
        let only_bob = Options {
            audio_sources: vec!["bob*".into()],
            video_sources: vec!["bob*".into()],
            ..Options::default()
        };
        let p = plan(&meeting(), &only_bob).unwrap();
        assert_eq!(p.cut, vec![(0.0, 4.0), (8.0, 10.0)]);
        assert_eq!(p.duration, 11.0);
        let second = p.inputs.iter().find(|i| i.track.sid == "RTb4").unwrap();
        assert_eq!((second.start, second.end), (4.0, 11.0));
    }

    #[test]
    fn the_default_grid_gives_each_participant_one_cell() {
        let p = plan(&meeting(), &Options::default()).unwrap();
        let cell_of = |sid: &str| {
            let i = p.inputs.iter().position(|i| i.track.sid == sid).unwrap();
            p.tiles.iter().find(|t| t.input == i).unwrap().cell
        };
        assert_eq!(cell_of("RTb2"), cell_of("RTb4"));
        assert_ne!(cell_of("RTa2"), cell_of("RTb2"));
        assert_ne!(cell_of("RTc2"), cell_of("RTb2"));
        // Three video sources: a 2x2 grid of 320x240.
        assert_eq!(cell_of("RTa2").width, 320);
    }

    #[test]
    fn audio_only_and_exclusions() {
        let p = plan(
            &meeting(),
            &Options {
                audio_only: true,
                audio_excluded: vec!["dave*".into()],
                ..Options::default()
            },
        )
        .unwrap();
        assert!(p.tiles.is_empty());
        assert_eq!(p.audio.len(), 4);
        assert!(p.inputs.iter().all(|i| i.track.kind == Kind::Audio));
        assert!(matches!(
            plan(
                &meeting(),
                &Options {
                    audio_sources: vec!["nobody".into()],
                    video_sources: vec!["nobody".into()],
                    ..Options::default()
                }
            ),
            Err(PlanError::NothingSelected(_))
        ));
        assert_eq!(plan(&[], &Options::default()), Err(PlanError::NoTracks));
        // Only audio tracks: no picture at all.
        let voices: Vec<Track> = meeting()
            .into_iter()
            .filter(|t| t.kind == Kind::Audio)
            .collect();
        assert!(plan(&voices, &Options::default()).unwrap().audio_only);
    }

    #[test]
    fn broken_timings_are_refused_naming_the_recording() {
        let mut far = meeting();
        far[3].offset_ms += 2 * MAX_SPAN_MS;
        assert!(matches!(
            plan(&far, &Options::default()),
            Err(PlanError::BadTiming(sid, _)) if sid == "RTb2"
        ));
        for bad in [f64::NAN, f64::INFINITY, -1.0] {
            let mut t = meeting();
            t[0].duration = bad;
            assert!(matches!(
                plan(&t, &Options::default()),
                Err(PlanError::BadTiming(sid, _)) if sid == "RTa1"
            ));
        }
        let mut t = meeting();
        t[1].start_time = f64::NAN;
        assert!(plan(&t, &Options::default()).is_err());
    }

    #[test]
    fn a_region_without_cells_is_refused() {
        let layout = layout::parse(
            r#"{"a": {"max_columns": 2, "max_rows": 1, "cells_excluded": [0, 1],
                      "video_sources": ["*"]}}"#,
            640,
            480,
        )
        .unwrap();
        assert_eq!(
            plan(
                &meeting(),
                &Options {
                    layout: Some(layout),
                    ..Options::default()
                }
            ),
            Err(PlanError::NoCells("a".into()))
        );
    }

    #[test]
    fn a_layout_places_sources_in_its_regions() {
        let layout = layout::parse(
            r#"{"big": {"z_pos": 0, "video_sources": ["alice-video"]},
                "pip": {"z_pos": 1, "x_pos": 480, "y_pos": 360, "width": 160, "height": 120,
                        "max_rows": 1, "max_columns": 1, "video_sources": ["*"],
                        "video_sources_excluded": ["alice*"]}}"#,
            640,
            480,
        )
        .unwrap();
        let p = plan(
            &meeting(),
            &Options {
                layout: Some(layout),
                ..Options::default()
            },
        )
        .unwrap();
        let big: Vec<_> = p.tiles.iter().filter(|t| t.region == "big").collect();
        assert_eq!(big.len(), 1);
        assert_eq!(big[0].cell.width, 640);
        let pip: Vec<_> = p.tiles.iter().filter(|t| t.region == "pip").collect();
        // One cell, show_oldest: bob 4-8 (trimmed: 2-6), carol from 3 waits until
        // 6, then bob's second file waits for carol to end.
        assert!(pip.iter().all(|t| t.cell.width == 160 && t.cell.x == 480));
        for (i, a) in pip.iter().enumerate() {
            for b in &pip[i + 1..] {
                assert!(a.to <= b.from || b.to <= a.from);
            }
        }
        assert!(p.tiles.first().unwrap().region == "big");
    }
}
