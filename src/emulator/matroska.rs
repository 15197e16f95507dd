//! What the emulator reads of a Matroska file to list it as a recording: the codec of
//! its first track (from its `CodecID`) and the span of its blocks.
//!
//! This file owns a minimal EBML walk over a file held in memory: the Segment's Info
//! (`TimestampScale`), Tracks (the first `TrackEntry`'s `CodecID`, `CodecPrivate`) and
//! every Cluster's block timestamps. It reads no media and trusts nothing: a malformed
//! file gives `None` or stops the walk where it breaks. It does not use the Segment's
//! `Duration`: ffmpeg writes it as the END time of a file whose start is not 0.

/// What [`probe`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The first track's `CodecID` (`A_OPUS`, `V_VP8`, …).
    pub codec_id: String,
    /// The first track's `CodecPrivate` (for `A_MS/ACM`: a WAVEFORMATEX).
    pub codec_private: Vec<u8>,
    /// The earliest and the latest block timestamp, in seconds; `None` without blocks.
    pub span: Option<(f64, f64)>,
}

impl Probe {
    /// The codec and the track type as Twilio's API writes them (`OPUS`/`audio`,
    /// `PCMU`/`audio`, `VP8`/`video`, `H264`/`video`); `None` for any other codec.
    pub fn twilio_codec(&self) -> Option<(&'static str, &'static str)> {
        match self.codec_id.as_str() {
            "A_OPUS" => Some(("OPUS", "audio")),
            "V_VP8" => Some(("VP8", "video")),
            "V_MPEG4/ISO/AVC" => Some(("H264", "video")),
            // WAVEFORMATEX: wFormatTag 7 is G.711 mu-law.
            "A_MS/ACM" if self.codec_private.get(..2) == Some(&[7, 0]) => Some(("PCMU", "audio")),
            _ => None,
        }
    }

    /// The whole seconds between the first and the last block (Twilio's `duration`).
    pub fn duration_secs(&self) -> u64 {
        self.span
            .map_or(0, |(a, b)| (b - a).max(0.0).round() as u64)
    }

    /// The first block's time (the container's start time), seconds.
    pub fn start(&self) -> f64 {
        self.span.map_or(0.0, |(a, _)| a)
    }
}

const EBML: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const CODEC_ID: u32 = 0x86;
const CODEC_PRIVATE: u32 = 0x63A2;
const CLUSTER: u32 = 0x1F43_B675;
const TIMESTAMP: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;
const BLOCK_GROUP: u32 = 0xA0;
const BLOCK: u32 = 0xA1;

/// An element: its ID, where its body starts, and where it ends (the end of `data`
/// when its size is unknown or overruns).
struct Element {
    id: u32,
    body: usize,
    end: usize,
    /// Its size was unknown (a live-written Cluster or Segment).
    unknown: bool,
}

/// A variable-length integer at `pos`: (value without its marker, its length).
fn vint(data: &[u8], pos: usize) -> Option<(u64, usize)> {
    let first = *data.get(pos)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let bytes = data.get(pos..pos + len)?;
    let mut value = u64::from(first) & (0xFF >> len);
    for &b in &bytes[1..] {
        value = value << 8 | u64::from(b);
    }
    Some((value, len))
}

/// The element at `pos`, bounded by `limit`.
fn element(data: &[u8], pos: usize, limit: usize) -> Option<Element> {
    let first = *data.get(pos)?;
    let id_len = first.leading_zeros() as usize + 1;
    if id_len > 4 {
        return None;
    }
    let id = data
        .get(pos..pos + id_len)?
        .iter()
        .fold(0u32, |a, &b| a << 8 | u32::from(b));
    let (size, size_len) = vint(data, pos + id_len)?;
    let body = pos + id_len + size_len;
    let unknown = size == (1u64 << (7 * size_len)) - 1;
    let end = if unknown {
        limit
    } else {
        usize::try_from(size)
            .ok()
            .and_then(|s| body.checked_add(s))
            .map_or(limit, |e| e.min(limit))
    };
    (body <= limit).then_some(Element {
        id,
        body,
        end,
        unknown,
    })
}

/// The children of `[start, end)`, in order; stops at the first malformed one.
fn children(data: &[u8], start: usize, end: usize) -> impl Iterator<Item = Element> + '_ {
    let mut pos = start;
    std::iter::from_fn(move || {
        if pos >= end {
            return None;
        }
        let e = element(data, pos, end)?;
        pos = e.end;
        Some(e)
    })
}

fn uint(bytes: &[u8]) -> u64 {
    bytes.iter().take(8).fold(0, |a, &b| a << 8 | u64::from(b))
}

/// A block's timestamp relative to its cluster (after the track number).
fn block_time(data: &[u8], body: usize) -> Option<i64> {
    let (_, track_len) = vint(data, body)?;
    let at = body + track_len;
    let b = data.get(at..at + 2)?;
    Some(i64::from(i16::from_be_bytes([b[0], b[1]])))
}

/// Reads the codec and the block span of a Matroska (or WebM) file; `None` if it is
/// not one or has no track.
pub fn probe(data: &[u8]) -> Option<Probe> {
    let header = element(data, 0, data.len())?;
    if header.id != EBML {
        return None;
    }
    let segment = children(data, header.end, data.len()).find(|e| e.id == SEGMENT)?;
    let mut scale: u64 = 1_000_000;
    let mut track: Option<(String, Vec<u8>)> = None;
    let (mut first, mut last): (Option<i64>, Option<i64>) = (None, None);
    let mut pos = segment.body;
    while pos < segment.end {
        let Some(e) = element(data, pos, segment.end) else {
            break;
        };
        match e.id {
            INFO => {
                if let Some(s) = children(data, e.body, e.end).find(|c| c.id == TIMESTAMP_SCALE) {
                    scale = uint(&data[s.body..s.end]).max(1);
                }
            }
            TRACKS if track.is_none() => {
                if let Some(entry) = children(data, e.body, e.end).find(|c| c.id == TRACK_ENTRY) {
                    let mut id = String::new();
                    let mut private = Vec::new();
                    for c in children(data, entry.body, entry.end) {
                        match c.id {
                            CODEC_ID => {
                                id = String::from_utf8_lossy(&data[c.body..c.end])
                                    .trim_end_matches('\0')
                                    .to_owned();
                            }
                            CODEC_PRIVATE => private = data[c.body..c.end].to_vec(),
                            _ => {}
                        }
                    }
                    track = Some((id, private));
                }
            }
            CLUSTER => {
                // A Cluster of unknown size ends where the next one begins.
                let mut cluster_time = 0i64;
                let mut end = e.body;
                for c in children(data, e.body, e.end) {
                    if e.unknown && c.id == CLUSTER {
                        break;
                    }
                    end = c.end;
                    let rel = match c.id {
                        TIMESTAMP => {
                            cluster_time = uint(&data[c.body..c.end]) as i64;
                            None
                        }
                        SIMPLE_BLOCK => block_time(data, c.body),
                        BLOCK_GROUP => children(data, c.body, c.end)
                            .find(|b| b.id == BLOCK)
                            .and_then(|b| block_time(data, b.body)),
                        _ => None,
                    };
                    if let Some(rel) = rel {
                        let t = cluster_time + rel;
                        first = Some(first.map_or(t, |f| f.min(t)));
                        last = Some(last.map_or(t, |l| l.max(t)));
                    }
                }
                if e.unknown {
                    pos = end.max(e.body + 1);
                    continue;
                }
            }
            _ => {}
        }
        if e.unknown && e.id != CLUSTER {
            // An element of unknown size other than a Cluster: nothing to skip by.
            break;
        }
        pos = e.end;
    }
    let (codec_id, codec_private) = track?;
    let secs = |t: i64| t as f64 * scale as f64 / 1e9;
    Some(Probe {
        codec_id,
        codec_private,
        span: first.zip(last).map(|(a, b)| (secs(a), secs(b))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPUS: &[u8] = include_bytes!("../../samples/meeting/bob-audio-2.mka");
    const PCMU: &[u8] = include_bytes!("../../samples/meeting/dave-audio.mka");
    const VP8: &[u8] = include_bytes!("../../samples/meeting/carol-video.mkv");
    const H264: &[u8] = include_bytes!("../../samples/video-h264.mkv");

    #[test]
    fn codecs_and_spans_of_the_samples() {
        let p = probe(OPUS).unwrap();
        assert_eq!(p.twilio_codec(), Some(("OPUS", "audio")));
        // 2.0 s, less the encoder's pre-skip; 7 s long.
        assert!((p.start() - 2.0).abs() < 0.02, "{p:?}");
        assert_eq!(p.duration_secs(), 7);
        let p = probe(PCMU).unwrap();
        assert_eq!(p.twilio_codec(), Some(("PCMU", "audio")));
        assert_eq!((p.start(), p.duration_secs()), (6.0, 6));
        let p = probe(VP8).unwrap();
        assert_eq!(p.twilio_codec(), Some(("VP8", "video")));
        assert_eq!((p.start(), p.duration_secs()), (5.0, 9));
        let p = probe(H264).unwrap();
        assert_eq!(p.twilio_codec(), Some(("H264", "video")));
        assert_eq!(p.duration_secs(), 10);
    }

    #[test]
    fn not_matroska_or_cut_short() {
        assert_eq!(probe(b""), None);
        assert_eq!(probe(b"RIFF\0\0\0\0WAVE"), None);
        // Cut anywhere: never a panic.
        for cut in (0..OPUS.len()).step_by(97) {
            let _ = probe(&OPUS[..cut]);
        }
        // Cut after the tracks: the codec without every block.
        let p = probe(&OPUS[..OPUS.len() / 2]).unwrap();
        assert_eq!(p.codec_id, "A_OPUS");
    }
}
