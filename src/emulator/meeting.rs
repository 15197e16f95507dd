//! The "meeting" room: the ground truth of the emulator's realistic group room, as a
//! pure table that the catalog serves from and that tests (of `compose`, of the
//! samples) compare against.
//!
//! This file owns what each participant published, when, with which Recording `offset`
//! and Matroska start time, and how to recognise it (a sine tone, a solid colour). It
//! holds no media and knows nothing of HTTP or encryption: the catalog embeds the files
//! (`samples/meeting/`, made by `samples/make-meeting.sh`: change both together) and
//! serves them as the room [`MEETING_ROOM`].
//!
//! # Timeline
//! Times are seconds on the room's timeline (0 = the room's first media). As Twilio
//! writes them, a recording's Matroska start time is its start on the room timeline
//! minus `(offset - room offset) / 1000`: bob reconnects and his second pair of files
//! comes from another media-server segment (offset + 8000 ms, start time 2.0 s, so on
//! the room timeline 10.0 s). ffprobe reports an Opus file's start about 14 ms early
//! (the encoder's pre-skip) and, for every file, `format=duration` as the END time
//! (the Matroska Duration ffmpeg writes includes the start): the length is
//! [`MeetingTrack::end`] − [`MeetingTrack::start`].

use super::catalog::sid;

/// The room's `unique_name`.
pub const MEETING_ROOM: &str = "emulator-meeting";

/// The room's media-server offset in milliseconds: the `offset` of every recording of
/// its first segment (bob's reconnection adds 8000).
pub const MEETING_OFFSET_MS: u64 = 17_482_913;

/// The meeting room's SID.
pub fn meeting_room_sid() -> String {
    sid("RM", &format!("room:{MEETING_ROOM}"))
}

/// One recording (one track file) of the meeting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeetingTrack {
    /// `alice`, `bob`, …: one participant SID each.
    pub participant: &'static str,
    /// The recording's `track_name` (`alice-audio`): a reconnection keeps it.
    pub track_name: &'static str,
    /// `audio` or `video`.
    pub kind: &'static str,
    /// As the API writes it: `OPUS`, `PCMU`, `VP8`.
    pub codec: &'static str,
    /// The file under `samples/meeting/`; its stem names the recording's SID
    /// ([`MeetingTrack::sid`]).
    pub file: &'static str,
    /// The sine tone of an audio track.
    pub tone_hz: Option<u32>,
    /// The solid colour (RGB) of a video track.
    pub colour: Option<[u8; 3]>,
    /// Start on the room timeline, seconds.
    pub start: f64,
    /// End on the room timeline, seconds.
    pub end: f64,
    /// The Recording's `offset` (ms).
    pub offset_ms: u64,
    /// The file's Matroska start time (`ffprobe -show_entries format=start_time`), seconds.
    pub start_time: f64,
}

impl MeetingTrack {
    /// The recording's SID: `sid("RT", "meeting:<file stem>")`.
    pub fn sid(&self) -> String {
        sid("RT", &format!("meeting:{}", self.stem()))
    }

    /// The file name without its extension (`bob-audio-2`).
    pub fn stem(&self) -> &'static str {
        self.file.rsplit_once('.').map_or(self.file, |(s, _)| s)
    }

    /// `mka` or `mkv`.
    pub fn container(&self) -> &'static str {
        self.file.rsplit_once('.').map_or("", |(_, e)| e)
    }

    /// The participant's SID (`PA…`), the same for all their recordings.
    pub fn participant_sid(&self) -> String {
        participant_sid(self.participant)
    }

    /// The recording's `duration`: whole seconds.
    pub fn duration(&self) -> u64 {
        (self.end - self.start).round() as u64
    }
}

/// The SID of meeting participant `name`.
pub fn participant_sid(name: &str) -> String {
    super::catalog::room_participant_sid(MEETING_ROOM, name)
}

const fn audio(
    participant: &'static str,
    track_name: &'static str,
    codec: &'static str,
    file: &'static str,
    hz: u32,
    (start, end): (f64, f64),
    segment_ms: u64,
) -> MeetingTrack {
    MeetingTrack {
        participant,
        track_name,
        kind: "audio",
        codec,
        file,
        tone_hz: Some(hz),
        colour: None,
        start,
        end,
        offset_ms: MEETING_OFFSET_MS + segment_ms,
        start_time: start - segment_ms as f64 / 1000.0,
    }
}

const fn video(
    participant: &'static str,
    track_name: &'static str,
    file: &'static str,
    colour: [u8; 3],
    (start, end): (f64, f64),
    segment_ms: u64,
) -> MeetingTrack {
    MeetingTrack {
        participant,
        track_name,
        kind: "video",
        codec: "VP8",
        file,
        tone_hz: None,
        colour: Some(colour),
        start,
        end,
        offset_ms: MEETING_OFFSET_MS + segment_ms,
        start_time: start - segment_ms as f64 / 1000.0,
    }
}

/// Carol's video changes resolution at this time on the room timeline: 320x240 before,
/// 640x360 after, in one file. Every other video is 320x240.
pub const CAROL_RESIZE_AT: f64 = 9.0;

/// Every recording of the meeting, in catalog order.
pub const MEETING: &[MeetingTrack] = &[
    audio(
        "alice",
        "alice-audio",
        "OPUS",
        "alice-audio.mka",
        400,
        (2.0, 19.0),
        0,
    ),
    video(
        "alice",
        "alice-video",
        "alice-video.mkv",
        [0xFF, 0, 0],
        (2.0, 19.0),
        0,
    ),
    audio(
        "bob",
        "bob-audio",
        "OPUS",
        "bob-audio.mka",
        700,
        (4.0, 8.0),
        0,
    ),
    video(
        "bob",
        "bob-video",
        "bob-video.mkv",
        [0, 0xFF, 0],
        (4.0, 8.0),
        0,
    ),
    // Bob reconnects: a second media-server segment.
    audio(
        "bob",
        "bob-audio",
        "OPUS",
        "bob-audio-2.mka",
        700,
        (10.0, 17.0),
        8000,
    ),
    video(
        "bob",
        "bob-video",
        "bob-video-2.mkv",
        [0, 0xFF, 0],
        (10.0, 17.0),
        8000,
    ),
    audio(
        "carol",
        "carol-audio",
        "OPUS",
        "carol-audio.mka",
        1100,
        (5.0, 14.0),
        0,
    ),
    // 320x240 until CAROL_RESIZE_AT, then 640x360.
    video(
        "carol",
        "carol-video",
        "carol-video.mkv",
        [0, 0, 0xFF],
        (5.0, 14.0),
        0,
    ),
    audio(
        "dave",
        "dave-audio",
        "PCMU",
        "dave-audio.mka",
        1700,
        (6.0, 12.0),
        0,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_consistent() {
        let mut sids = std::collections::HashSet::new();
        for t in MEETING {
            assert!(sids.insert(t.sid()), "{}", t.file);
            assert!(t.track_name.starts_with(t.participant), "{}", t.file);
            assert!(t.track_name.ends_with(t.kind), "{}", t.file);
            assert_eq!(t.container(), if t.kind == "audio" { "mka" } else { "mkv" });
            assert_eq!(t.tone_hz.is_some(), t.kind == "audio");
            assert_eq!(t.colour.is_some(), t.kind == "video");
            let segment = (t.offset_ms - MEETING_OFFSET_MS) as f64 / 1000.0;
            assert!(
                (t.start_time + segment - t.start).abs() < 1e-9,
                "{}",
                t.file
            );
        }
        let bob: Vec<_> = MEETING.iter().filter(|t| t.participant == "bob").collect();
        assert_eq!(bob.len(), 4);
        assert_eq!(bob[2].start_time, 2.0);
        assert_eq!(bob[2].offset_ms, 17_490_913);
        assert_eq!(MEETING[0].participant_sid(), MEETING[1].participant_sid());
        assert_ne!(MEETING[0].participant_sid(), MEETING[2].participant_sid());
    }
}
