//! Twilio's `video_layout`: named regions of the canvas, each a grid of cells that
//! video sources fill over time, and which source shows in which cell when.
//!
//! Pure: parses the JSON Twilio's Compositions API takes, sizes each region's grid and
//! places timed video segments in cells ([`place`]). It knows nothing of ffmpeg,
//! recordings or HTTP.
//!
//! What it follows of Twilio's documented semantics:
//! - a region is `x_pos`, `y_pos`, `z_pos` (drawing order, lowest first), `width`,
//!   `height` (default: the rest of the canvas), `max_columns`, `max_rows`,
//!   `cells_excluded` (row-major cell indices left empty), `reuse`, `video_sources` and
//!   `video_sources_excluded` (track names, SIDs, `*` wildcards);
//! - the grid holds every source of the region, as square as possible within the
//!   limits; with both limits, it is exactly `max_columns` × `max_rows`;
//! - one source is one participant's track: all its files (a reconnect makes several)
//!   share one cell, black before it joins, between its files and after it leaves;
//! - with more sources than cells, `reuse` decides: `none` gives each cell to the first
//!   source to take it for the whole composition; `show_oldest` (Twilio's default)
//!   frees a cell when its source ends, and a source that finds no free cell waits for
//!   one; `show_newest` gives a new source the cell of the one shown longest.
//!
//! Twilio re-tiles its grid as sources come and go; here the grid is fixed for the
//! whole composition, so tiles never move.

use std::collections::BTreeMap;

use serde::Deserialize;
use thiserror::Error;

/// A rectangle of the canvas, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// What a region does when it has more sources than cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Reuse {
    None,
    #[default]
    ShowOldest,
    ShowNewest,
}

/// One region of a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub name: String,
    pub rect: Rect,
    pub z: i64,
    pub max_columns: Option<u32>,
    pub max_rows: Option<u32>,
    pub cells_excluded: Vec<u32>,
    pub reuse: Reuse,
    pub sources: Vec<String>,
    pub excluded: Vec<String>,
}

/// Why a layout is refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LayoutError {
    #[error("--layout is not a JSON object of regions: {0}")]
    Json(String),
    #[error("--layout has no regions")]
    Empty,
    #[error("layout region {0:?} lies outside the {1}x{2} canvas")]
    OutOfCanvas(String, u32, u32),
    #[error("layout region {0:?} has no video_sources: name its tracks or use [\"*\"]")]
    NoSources(String),
    #[error(
        "layout region {0:?}: max_columns must be 1 to {1} and max_rows 1 to {2} \
         (cells of at least 2x2 pixels)"
    )]
    BadLimit(String, u32, u32),
    #[error("layout region {0:?} is smaller than 2x2 pixels")]
    TooSmall(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionJson {
    #[serde(default)]
    x_pos: u32,
    #[serde(default)]
    y_pos: u32,
    #[serde(default)]
    z_pos: i64,
    width: Option<u32>,
    height: Option<u32>,
    max_columns: Option<u32>,
    max_rows: Option<u32>,
    #[serde(default)]
    cells_excluded: Vec<u32>,
    #[serde(default)]
    reuse: Reuse,
    #[serde(default)]
    video_sources: Vec<String>,
    #[serde(default)]
    video_sources_excluded: Vec<String>,
}

/// Parses Twilio's `video_layout` JSON (`{"main": {"video_sources": ["*"], …}, …}`)
/// for a `width`×`height` canvas. Regions come out in drawing order (`z_pos`, then
/// name).
pub fn parse(json: &str, width: u32, height: u32) -> Result<Vec<Region>, LayoutError> {
    let objects: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|e| LayoutError::Json(e.to_string()))?;
    let mut raw: BTreeMap<String, RegionJson> = BTreeMap::new();
    for (name, value) in objects {
        let region = serde_json::from_value(value)
            .map_err(|e| LayoutError::Json(format!("region {name:?}: {e}")))?;
        raw.insert(name, region);
    }
    if raw.is_empty() {
        return Err(LayoutError::Empty);
    }
    let mut regions = Vec::new();
    for (name, r) in raw {
        if r.x_pos >= width || r.y_pos >= height {
            return Err(LayoutError::OutOfCanvas(name, width, height));
        }
        let w = r.width.unwrap_or(width - r.x_pos);
        let h = r.height.unwrap_or(height - r.y_pos);
        if u64::from(r.x_pos) + u64::from(w) > u64::from(width)
            || u64::from(r.y_pos) + u64::from(h) > u64::from(height)
        {
            return Err(LayoutError::OutOfCanvas(name, width, height));
        }
        if w < 2 || h < 2 {
            return Err(LayoutError::TooSmall(name));
        }
        if r.video_sources.is_empty() {
            return Err(LayoutError::NoSources(name));
        }
        let (most_cols, most_rows) = (w / 2, h / 2);
        if r.max_columns.is_some_and(|c| c == 0 || c > most_cols)
            || r.max_rows.is_some_and(|c| c == 0 || c > most_rows)
        {
            return Err(LayoutError::BadLimit(name, most_cols, most_rows));
        }
        regions.push(Region {
            name,
            rect: Rect {
                x: r.x_pos,
                y: r.y_pos,
                width: w,
                height: h,
            },
            z: r.z_pos,
            max_columns: r.max_columns,
            max_rows: r.max_rows,
            cells_excluded: r.cells_excluded,
            reuse: r.reuse,
            sources: r.video_sources,
            excluded: r.video_sources_excluded,
        });
    }
    regions.sort_by(|a, b| a.z.cmp(&b.z).then_with(|| a.name.cmp(&b.name)));
    Ok(regions)
}

/// Twilio's default layout: one grid over the whole canvas of `sources` minus
/// `excluded`.
pub fn default_layout(width: u32, height: u32, sources: &[String], excluded: &[String]) -> Region {
    Region {
        name: "grid".into(),
        rect: Rect {
            x: 0,
            y: 0,
            width,
            height,
        },
        z: 0,
        max_columns: None,
        max_rows: None,
        cells_excluded: Vec::new(),
        reuse: Reuse::ShowOldest,
        sources: sources.to_vec(),
        excluded: excluded.to_vec(),
    }
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters.
pub fn glob(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Whether any of `names` (a track's name and SIDs) is selected by `include` and none
/// by `exclude`.
pub fn selected(names: &[&str], include: &[String], exclude: &[String]) -> bool {
    let hit = |patterns: &[String]| patterns.iter().any(|p| names.iter().any(|n| glob(p, n)));
    hit(include) && !hit(exclude)
}

impl Region {
    /// Columns and rows of the grid for `sources` sources: the most square grid that
    /// has a cell for each once `cells_excluded` are left out (exactly `max_columns` ×
    /// `max_rows` when both are given).
    pub fn grid(&self, sources: usize) -> (u32, u32) {
        if let (Some(c), Some(r)) = (self.max_columns, self.max_rows) {
            return (c, r);
        }
        let n = (sources as u64).max(1);
        let mut excluded: Vec<u64> = self.cells_excluded.iter().map(|&i| u64::from(i)).collect();
        excluded.sort_unstable();
        excluded.dedup();
        let mut wanted = n;
        loop {
            let square = (1u64..).find(|c| c * c >= wanted).expect("a square fits");
            let (cols, rows) = match (self.max_columns, self.max_rows) {
                (Some(c), _) => {
                    let cols = square.min(u64::from(c));
                    (cols, wanted.div_ceil(cols))
                }
                (_, Some(r)) => {
                    let rows = square.min(u64::from(r));
                    (wanted.div_ceil(rows), rows)
                }
                _ => (square, wanted.div_ceil(square)),
            };
            let gone = excluded.iter().filter(|&&i| i < cols * rows).count() as u64;
            // Ends: by `n + excluded` cells, at most all excluded ones are in the grid.
            if cols * rows - gone >= n || wanted >= n + excluded.len() as u64 {
                let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
                return (clamp(cols), clamp(rows));
            }
            wanted += 1;
        }
    }

    /// The cells for `sources` sources, row-major, excluded cells left out. Cell
    /// sizes are even (what 4:2:0 video needs) and the cells tile the region.
    pub fn cells(&self, sources: usize) -> Vec<Rect> {
        let (cols, rows) = self.grid(sources);
        let (cols, rows) = (u64::from(cols), u64::from(rows));
        let Rect {
            x,
            y,
            width,
            height,
        } = self.rect;
        let (width, height) = (u64::from(width), u64::from(height));
        let mut cells = Vec::new();
        for row in 0..rows {
            for col in 0..cols {
                let index = row * cols + col;
                if self.cells_excluded.iter().any(|&e| u64::from(e) == index) {
                    continue;
                }
                let x0 = even(width * col / cols);
                let x1 = even(width * (col + 1) / cols);
                let y0 = even(height * row / rows);
                let y1 = even(height * (row + 1) / rows);
                if x1 > x0 && y1 > y0 {
                    // Within the region, which lies within the canvas: fits in u32.
                    cells.push(Rect {
                        x: x + x0 as u32,
                        y: y + y0 as u32,
                        width: (x1 - x0) as u32,
                        height: (y1 - y0) as u32,
                    });
                }
            }
        }
        cells
    }
}

fn even(n: u64) -> u64 {
    n & !1
}

/// One file of video on the output's timeline: `source` is its participant's track
/// (all files of one source share a cell), `start`..`end` in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub source: usize,
    pub start: f64,
    pub end: f64,
}

/// Segment `segment` shows in cell `cell` from `from` to `to` (seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub segment: usize,
    pub cell: usize,
    pub from: f64,
    pub to: f64,
}

/// Places `segments` in `cells` cells by `reuse`. With at least as many cells as
/// sources, each source keeps one cell (in the order sources first start) for the whole
/// composition, whatever `reuse` says. Placements never overlap in a cell.
pub fn place(segments: &[Segment], cells: usize, reuse: Reuse) -> Vec<Placement> {
    if cells == 0 {
        return Vec::new();
    }
    // Sources in the order they first start.
    let mut first: BTreeMap<usize, f64> = BTreeMap::new();
    for s in segments {
        let e = first.entry(s.source).or_insert(s.start);
        *e = e.min(s.start);
    }
    let mut order: Vec<usize> = first.keys().copied().collect();
    order.sort_by(|a, b| first[a].total_cmp(&first[b]).then(a.cmp(b)));
    if order.len() <= cells || reuse == Reuse::None {
        let cell_of: BTreeMap<usize, usize> = order
            .iter()
            .take(cells)
            .enumerate()
            .map(|(c, &s)| (s, c))
            .collect();
        return segments
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                cell_of.get(&s.source).map(|&cell| Placement {
                    segment: i,
                    cell,
                    from: s.start,
                    to: s.end,
                })
            })
            .collect();
    }
    simulate(segments, cells, reuse)
}

/// Cells shared over time: events in time order, ends before starts at the same
/// instant.
fn simulate(segments: &[Segment], cells: usize, reuse: Reuse) -> Vec<Placement> {
    #[derive(Clone, Copy)]
    struct Shown {
        segment: usize,
        since: f64,
    }
    let mut events: Vec<(f64, bool, usize)> = Vec::new(); // (time, is_start, segment)
    for (i, s) in segments.iter().enumerate() {
        if s.end > s.start {
            events.push((s.start, true, i));
            events.push((s.end, false, i));
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut shown: Vec<Option<Shown>> = vec![None; cells];
    let mut waiting: Vec<usize> = Vec::new(); // segments started and not shown, by start
    let mut out = Vec::new();
    let close = |out: &mut Vec<Placement>, cell: usize, s: Shown, to: f64| {
        if to > s.since {
            out.push(Placement {
                segment: s.segment,
                cell,
                from: s.since,
                to,
            });
        }
    };
    for (t, is_start, seg) in events {
        if is_start {
            if let Some(cell) = shown.iter().position(Option::is_none) {
                shown[cell] = Some(Shown {
                    segment: seg,
                    since: t,
                });
            } else if reuse == Reuse::ShowNewest {
                // Replace the one shown longest; it waits for a free cell.
                let (cell, old) = shown
                    .iter()
                    .enumerate()
                    .filter_map(|(c, s)| s.map(|s| (c, s)))
                    .min_by(|a, b| a.1.since.total_cmp(&b.1.since))
                    .expect("every cell is taken");
                close(&mut out, cell, old, t);
                waiting.push(old.segment);
                shown[cell] = Some(Shown {
                    segment: seg,
                    since: t,
                });
            } else {
                waiting.push(seg);
            }
        } else if let Some(cell) = shown
            .iter()
            .position(|s| s.is_some_and(|s| s.segment == seg))
        {
            close(&mut out, cell, shown[cell].expect("shown"), t);
            shown[cell] = None;
            // The cell goes to a waiting segment: the oldest (show_oldest) or the
            // newest (show_newest).
            let next = match reuse {
                Reuse::ShowNewest => waiting.pop(),
                _ => (!waiting.is_empty()).then(|| waiting.remove(0)),
            };
            if let Some(next) = next {
                shown[cell] = Some(Shown {
                    segment: next,
                    since: t,
                });
            }
        } else {
            waiting.retain(|&w| w != seg);
        }
    }
    out.sort_by(|a, b| a.from.total_cmp(&b.from).then(a.cell.cmp(&b.cell)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("*", "alice-video"));
        assert!(glob("alice*", "alice-video"));
        assert!(glob("*-video", "alice-video"));
        assert!(glob("a*e-v*o", "alice-video"));
        assert!(!glob("alice", "alice-video"));
        assert!(!glob("*-audio", "alice-video"));
        assert!(glob("**a", "a"));
        assert!(!glob("", "a"));
        assert!(glob("a*a*a", "aaa"));
        assert!(!glob("a*a*a", "aa"));
    }

    #[test]
    fn selection_by_name_or_sid() {
        let names = ["alice-video", "RT1", "MT1"];
        assert!(selected(&names, &["*".into()], &[]));
        assert!(!selected(&names, &["*".into()], &["alice*".into()]));
        assert!(selected(&names, &["RT1".into()], &[]));
        assert!(!selected(&names, &["bob*".into()], &[]));
    }

    #[test]
    fn parses_twilio_layouts() {
        let json = r#"{
            "main": {"z_pos": 1, "x_pos": 10, "y_pos": 0, "width": 320, "height": 240,
                     "max_rows": 1, "max_columns": 1, "video_sources": ["screen"]},
            "row": {"x_pos": 0, "y_pos": 240, "max_rows": 1, "reuse": "show_newest",
                    "video_sources": ["*"], "video_sources_excluded": ["screen"],
                    "cells_excluded": [1]}
        }"#;
        let r = parse(json, 640, 480).unwrap();
        assert_eq!(r[0].name, "row");
        assert_eq!(
            r[0].rect,
            Rect {
                x: 0,
                y: 240,
                width: 640,
                height: 240
            }
        );
        assert_eq!(r[0].reuse, Reuse::ShowNewest);
        assert_eq!(r[1].name, "main");
        assert_eq!(r[1].grid(5), (1, 1));
        assert_eq!(r[0].grid(3), (4, 1));
    }

    #[test]
    fn refuses_bad_layouts() {
        assert!(matches!(parse("[]", 640, 480), Err(LayoutError::Json(_))));
        assert_eq!(parse("{}", 640, 480), Err(LayoutError::Empty));
        assert!(matches!(
            parse(r#"{"a": {"x_pos": 700, "video_sources": ["*"]}}"#, 640, 480),
            Err(LayoutError::OutOfCanvas(..))
        ));
        assert!(matches!(
            parse(r#"{"a": {"width": 700, "video_sources": ["*"]}}"#, 640, 480),
            Err(LayoutError::OutOfCanvas(..))
        ));
        assert!(matches!(
            parse(r#"{"a": {}}"#, 640, 480),
            Err(LayoutError::NoSources(_))
        ));
        assert!(matches!(
            parse(r#"{"a": {"bogus": 1, "video_sources": ["*"]}}"#, 640, 480),
            Err(LayoutError::Json(_))
        ));
        // No overflow: a width that wraps around u32.
        assert!(matches!(
            parse(
                r#"{"a": {"x_pos": 2, "width": 4294967294, "video_sources": ["*"]}}"#,
                640,
                480
            ),
            Err(LayoutError::OutOfCanvas(..))
        ));
        assert!(matches!(
            parse(r#"{"a": {"width": 1, "video_sources": ["*"]}}"#, 640, 480),
            Err(LayoutError::TooSmall(_))
        ));
        for limits in [
            r#""max_columns": 0"#,
            r#""max_rows": 241"#,
            r#""max_columns": 100000, "max_rows": 100000"#,
        ] {
            let json = format!(r#"{{"a": {{{limits}, "video_sources": ["*"]}}}}"#);
            assert!(
                matches!(parse(&json, 640, 480), Err(LayoutError::BadLimit(..))),
                "{json}"
            );
        }
    }

    #[test]
    fn grids_are_as_square_as_possible() {
        let g = default_layout(640, 480, &["*".into()], &[]);
        assert_eq!(g.grid(1), (1, 1));
        assert_eq!(g.grid(2), (2, 1));
        assert_eq!(g.grid(3), (2, 2));
        assert_eq!(g.grid(4), (2, 2));
        assert_eq!(g.grid(5), (3, 2));
        assert_eq!(g.grid(9), (3, 3));
        assert_eq!(g.grid(10), (4, 3));
        let cells = g.cells(3);
        assert_eq!(cells.len(), 4);
        assert_eq!(
            cells[3],
            Rect {
                x: 320,
                y: 240,
                width: 320,
                height: 240
            }
        );
    }

    #[test]
    fn excluded_cells_make_room_for_every_source() {
        let mut g = default_layout(640, 480, &["*".into()], &[]);
        g.cells_excluded = vec![0, 0, 50];
        // One source: cell 0 is out, cell 50 is not in a small grid anyway.
        assert_eq!(g.grid(1), (2, 1));
        assert_eq!(g.cells(1).len(), 1);
        g.cells_excluded = vec![1, 2];
        assert_eq!(g.cells(2).len(), 2);
        for n in 1..20 {
            assert!(g.cells(n).len() >= n, "{n}");
        }
    }

    fn seg(source: usize, start: f64, end: f64) -> Segment {
        Segment { source, start, end }
    }

    #[test]
    fn a_reconnect_keeps_its_cell() {
        let segs = [
            seg(0, 2.0, 19.0),
            seg(1, 4.0, 8.0),
            seg(2, 5.0, 14.0),
            seg(1, 10.0, 17.0),
        ];
        let p = place(&segs, 4, Reuse::ShowOldest);
        assert_eq!(p.len(), 4);
        assert_eq!(p[1].cell, p[3].cell);
        assert_eq!((p[3].from, p[3].to), (10.0, 17.0));
        assert_eq!(p[2].cell, 2);
    }

    #[test]
    fn reuse_with_too_few_cells() {
        let segs = [seg(0, 0.0, 10.0), seg(1, 2.0, 5.0), seg(2, 3.0, 8.0)];
        // none: the third source never shows.
        let none = place(&segs, 2, Reuse::None);
        assert_eq!(none.len(), 2);
        assert!(none.iter().all(|p| p.segment != 2));
        // show_oldest: the third waits for the second's cell.
        let oldest = place(&segs, 2, Reuse::ShowOldest);
        let third = oldest.iter().find(|p| p.segment == 2).unwrap();
        assert_eq!((third.from, third.to), (5.0, 8.0));
        // show_newest: the third replaces the first (shown longest) at 3 s.
        let newest = place(&segs, 2, Reuse::ShowNewest);
        let first: Vec<_> = newest.iter().filter(|p| p.segment == 0).collect();
        assert_eq!((first[0].from, first[0].to), (0.0, 3.0));
        // ... and the first comes back when the second ends.
        assert_eq!((first[1].from, first[1].to), (5.0, 10.0));
    }

    proptest! {
        #[test]
        fn placements_never_overlap(
            raw in proptest::collection::vec((0usize..6, 0u32..100, 1u32..50), 0..12),
            cells in 1usize..5,
            reuse in prop_oneof![Just(Reuse::None), Just(Reuse::ShowOldest), Just(Reuse::ShowNewest)],
        ) {
            // A source's files never overlap in time (one publication at a time).
            let mut segs: Vec<Segment> = Vec::new();
            for &(s, a, l) in &raw {
                let new = seg(s, f64::from(a), f64::from(a + l));
                if !segs.iter().any(|o| o.source == s && o.start < new.end && new.start < o.end) {
                    segs.push(new);
                }
            }
            let p = place(&segs, cells, reuse);
            for a in &p {
                prop_assert!(a.cell < cells);
                prop_assert!(a.from < a.to);
                let s = segs[a.segment];
                prop_assert!(a.from >= s.start && a.to <= s.end);
            }
            for (i, a) in p.iter().enumerate() {
                for b in &p[i + 1..] {
                    if a.cell == b.cell {
                        prop_assert!(a.to <= b.from || b.to <= a.from, "{a:?} {b:?}");
                    }
                }
            }
            let sources: std::collections::BTreeSet<usize> = segs.iter().map(|s| s.source).collect();
            if sources.len() <= cells {
                // Everything shows, each source in one cell.
                prop_assert_eq!(p.len(), segs.len());
                for a in &p {
                    for b in &p {
                        if segs[a.segment].source == segs[b.segment].source {
                            prop_assert_eq!(a.cell, b.cell);
                        }
                    }
                }
            }
        }
    }
}
