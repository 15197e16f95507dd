//! Video recordings, compositions and Voice call recordings as one media kind: everything
//! that differs between them lives here, once.
//!
//! [`MediaKind`] names the kind and answers every "which one?" question: the SID prefix
//! (`RT`, `CJ`, `RE`), the API collection (`/v1/Recordings`, `/v1/Compositions`,
//! `/2010-04-01/Accounts/{AccountSid}/Recordings.json`) and settings, the key of a
//! listing page, the directory of the mount (`recordings/`, `compositions/`, `voice/`),
//! the file extensions, the filter names the API takes, and which resource type a body
//! is read as ([`MediaKind::decode`]). [`Media`] is one resource of any kind,
//! kept whole (so `ls --json` prints what the API sent) with the accessors every
//! front-end needs: its file name, size, room, dates and extended attributes.
//!
//! Pure: no I/O. Callers branch on a [`MediaKind`] through its methods, never on a
//! string such as `"recording"`.

use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize};

use super::types::{Composition, Recording, VoiceRecording, xattr_fields};
use crate::names;

/// Recording, composition or Voice call recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaKind {
    /// A track recording: `RT…`, `/v1/Recordings`, `.mka` or `.mkv`.
    Recording,
    /// A room composition: `CJ…`, `/v1/Compositions`, `.mp4` or `.webm`.
    Composition,
    /// A Voice call recording: `RE…`, `/2010-04-01/Accounts/{AccountSid}/Recordings.json`
    /// on the Voice API's host (`api.twilio.com`), `.wav`.
    Voice,
}

impl MediaKind {
    /// The Video kinds, recordings first (the order of listings and room directories).
    pub const VIDEO: [MediaKind; 2] = [MediaKind::Recording, MediaKind::Composition];

    /// Every kind: the Video kinds, then Voice.
    pub const ALL: [MediaKind; 3] = [
        MediaKind::Recording,
        MediaKind::Composition,
        MediaKind::Voice,
    ];

    /// The kind a SID names by its prefix.
    pub fn of_sid(sid: &str) -> Option<MediaKind> {
        Self::ALL
            .into_iter()
            .find(|k| sid.starts_with(k.sid_prefix()))
    }

    /// `RT`, `CJ` or `RE`.
    pub fn sid_prefix(self) -> &'static str {
        match self {
            MediaKind::Recording => "RT",
            MediaKind::Composition => "CJ",
            MediaKind::Voice => "RE",
        }
    }

    /// Whether this kind's API is the Video API (`video.twilio.com`), not the Voice
    /// API of 2010-04-01 (`api.twilio.com`).
    pub fn is_video(self) -> bool {
        self != MediaKind::Voice
    }

    /// `recording`, `composition` or `call recording`, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            MediaKind::Recording => "recording",
            MediaKind::Composition => "composition",
            MediaKind::Voice => "call recording",
        }
    }

    /// `recordings`, `compositions` or `voice`: the mount's directory and `ls`'s
    /// argument.
    pub fn plural(self) -> &'static str {
        match self {
            MediaKind::Recording => "recordings",
            MediaKind::Composition => "compositions",
            MediaKind::Voice => "voice",
        }
    }

    /// The key that holds the items of a listing page.
    pub fn list_key(self) -> &'static str {
        match self {
            MediaKind::Recording | MediaKind::Voice => "recordings",
            MediaKind::Composition => "compositions",
        }
    }

    /// `Recordings` or `Compositions`: the API's collection.
    pub fn collection(self) -> &'static str {
        match self {
            MediaKind::Recording | MediaKind::Voice => "Recordings",
            MediaKind::Composition => "Compositions",
        }
    }

    /// `/v1/Recordings`, `/v1/Compositions`, or
    /// `/2010-04-01/Accounts/{account}/Recordings.json` (the only path that needs the
    /// account).
    pub fn list_path(self, account: &str) -> String {
        match self {
            MediaKind::Voice => format!("/2010-04-01/Accounts/{account}/Recordings.json"),
            _ => format!("/v1/{}", self.collection()),
        }
    }

    /// `/v1/Recordings/{sid}`, or `/2010-04-01/Accounts/{account}/Recordings/{sid}.json`.
    pub fn resource_path(self, account: &str, sid: &str) -> String {
        match self {
            MediaKind::Voice => format!("/2010-04-01/Accounts/{account}/Recordings/{sid}.json"),
            _ => format!("/v1/{}/{sid}", self.collection()),
        }
    }

    /// `/v1/Recordings/{sid}/Media`, or `/2010-04-01/Accounts/{account}/Recordings/{sid}.wav`
    /// (the WAV file or a redirect to it; `.mp3` is refused for encrypted recordings).
    pub fn media_path(self, account: &str, sid: &str) -> String {
        match self {
            MediaKind::Voice => format!("/2010-04-01/Accounts/{account}/Recordings/{sid}.wav"),
            _ => format!("/v1/{}/{sid}/Media", self.collection()),
        }
    }

    /// `/v1/RecordingSettings/Default` or `/v1/CompositionSettings/Default`: is this
    /// kind's media encrypted, with which key. Voice has no such resource: each
    /// recording says it in its `encryption_details`.
    pub fn settings_path(self) -> Option<&'static str> {
        match self {
            MediaKind::Recording => Some("/v1/RecordingSettings/Default"),
            MediaKind::Composition => Some("/v1/CompositionSettings/Default"),
            MediaKind::Voice => None,
        }
    }

    /// The containers Twilio writes for this kind, as file extensions.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            MediaKind::Recording => &["mka", "mkv"],
            MediaKind::Composition => &["mp4", "webm"],
            MediaKind::Voice => &["wav"],
        }
    }

    /// The kind whose container `ext` is (lower case, as [`names::extension`] gives it).
    pub fn of_extension(ext: &str) -> Option<MediaKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.extensions().contains(&ext))
    }

    /// The filter that selects one room's media: `GroupingSid` for recordings (a room
    /// or a participant), `RoomSid` for compositions; for Voice, one call's: `CallSid`.
    pub fn room_filter(self) -> &'static str {
        match self {
            MediaKind::Recording => "GroupingSid",
            MediaKind::Composition => "RoomSid",
            MediaKind::Voice => "CallSid",
        }
    }

    /// Every filter the API's listing of this kind takes, in the order Twilio repeats
    /// them in its paging URLs. [`Self::query`] sends a subset of them.
    pub fn list_filters(self) -> &'static [&'static str] {
        match self {
            MediaKind::Recording => &[
                "Status",
                "SourceSid",
                "GroupingSid",
                "MediaType",
                "DateCreatedAfter",
                "DateCreatedBefore",
            ],
            MediaKind::Composition => {
                &["Status", "DateCreatedAfter", "DateCreatedBefore", "RoomSid"]
            }
            MediaKind::Voice => &[
                "DateCreated",
                "DateCreated<",
                "DateCreated>",
                "CallSid",
                "ConferenceSid",
                "IncludeSoftDeleted",
            ],
        }
    }

    /// One resource of this kind, read from `d` (a listing's entry, a fetched body).
    pub fn decode<'de, D: Deserializer<'de>>(self, d: D) -> Result<Media, D::Error> {
        Ok(match self {
            MediaKind::Recording => Media::Recording(Recording::deserialize(d)?),
            MediaKind::Composition => Media::Composition(Composition::deserialize(d)?),
            MediaKind::Voice => Media::Voice(VoiceRecording::deserialize(d)?),
        })
    }

    /// The API's query for `filter`, without paging. The Voice API takes days
    /// (`DateCreated>=YYYY-MM-DD`, inclusive) and no status: its dates are the filter's
    /// first ten characters, and its status is not sent.
    pub fn query(self, filter: &MediaFilter) -> Vec<(&'static str, String)> {
        if self == MediaKind::Voice {
            let day = |d: &Option<String>| d.as_ref().map(|d| d.chars().take(10).collect());
            let mut q = Vec::new();
            for (name, v) in [
                ("CallSid", filter.room.clone()),
                ("DateCreated>", day(&filter.date_created_after)),
                ("DateCreated<", day(&filter.date_created_before)),
            ] {
                if let Some(v) = v {
                    q.push((name, v));
                }
            }
            return q;
        }
        let mut q = Vec::new();
        let mut push = |name: &'static str, v: &Option<String>| {
            if let Some(v) = v {
                q.push((name, v.clone()));
            }
        };
        push("Status", &filter.status);
        push(self.room_filter(), &filter.room);
        push("DateCreatedAfter", &filter.date_created_after);
        push("DateCreatedBefore", &filter.date_created_before);
        q
    }
}

impl std::fmt::Display for MediaKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.noun())
    }
}

/// What a listing of either kind can be narrowed by. Dates are RFC 3339 strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaFilter {
    /// `completed`, `processing`, …
    pub status: Option<String>,
    /// A room SID (for recordings, a participant SID also works).
    pub room: Option<String>,
    /// `DateCreatedAfter`.
    pub date_created_after: Option<String>,
    /// `DateCreatedBefore`.
    pub date_created_before: Option<String>,
}

/// One recording, composition or call recording, as the API described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Media {
    /// A recording resource.
    Recording(Recording),
    /// A composition resource.
    Composition(Composition),
    /// A Voice call recording resource.
    Voice(VoiceRecording),
}

impl From<VoiceRecording> for Media {
    fn from(r: VoiceRecording) -> Self {
        Media::Voice(r)
    }
}

impl From<Recording> for Media {
    fn from(r: Recording) -> Self {
        Media::Recording(r)
    }
}

impl From<Composition> for Media {
    fn from(c: Composition) -> Self {
        Media::Composition(c)
    }
}

impl Media {
    /// Recording or composition.
    pub fn kind(&self) -> MediaKind {
        match self {
            Media::Recording(_) => MediaKind::Recording,
            Media::Composition(_) => MediaKind::Composition,
            Media::Voice(_) => MediaKind::Voice,
        }
    }

    /// Its SID, as sent (check it with [`names::is_sid`] before using it in a path).
    pub fn sid(&self) -> &str {
        match self {
            Media::Recording(r) => &r.sid,
            Media::Composition(c) => &c.sid,
            Media::Voice(r) => &r.sid,
        }
    }

    /// Which stored object holds its media (with, for a call recording, how it was
    /// encrypted).
    pub fn media_ref(&self) -> super::MediaRef {
        match self {
            Media::Voice(r) => super::MediaRef::voice(&r.sid, r.encryption().cloned()),
            _ => super::MediaRef::new(self.kind(), self.sid()),
        }
    }

    /// `completed`, `processing`, …
    pub fn status(&self) -> Option<&str> {
        match self {
            Media::Recording(r) => r.status.as_deref(),
            Media::Composition(c) => c.status.as_deref(),
            Media::Voice(r) => r.status.as_deref(),
        }
    }

    /// Whether the status is `name`, ignoring case.
    pub fn status_is(&self, name: &str) -> bool {
        self.status().is_some_and(|s| s.eq_ignore_ascii_case(name))
    }

    /// The container as the API names it: `container_format` (`mka`, `mkv`) or
    /// `format` (`mp4`, `webm`), in any case; `wav` for a call recording (the only
    /// format an encrypted one is served in).
    pub fn format(&self) -> Option<&str> {
        match self {
            Media::Recording(r) => r.container_format.as_deref(),
            Media::Composition(c) => c.format.as_deref(),
            Media::Voice(_) => Some("wav"),
        }
    }

    /// `SID.ext`, when the SID is a SID and the format one of this kind's containers;
    /// `None` for anything that cannot make a safe name.
    pub fn file_name(&self) -> Option<String> {
        let ext = names::extension(self.format()?)?;
        if !self.kind().extensions().contains(&ext) || !names::is_sid(self.sid()) {
            return None;
        }
        names::media_file_name(self.sid(), ext)
    }

    /// Stored bytes, as listed (ciphertext when encrypted; may be missing; the Voice
    /// API lists none).
    pub fn size(&self) -> Option<u64> {
        match self {
            Media::Recording(r) => r.size,
            Media::Composition(c) => c.size,
            Media::Voice(_) => None,
        }
    }

    /// Seconds.
    pub fn duration(&self) -> Option<u64> {
        match self {
            Media::Recording(r) => r.duration,
            Media::Composition(c) => c.duration,
            Media::Voice(r) => r.duration,
        }
    }

    /// The room it belongs to, as sent (unchecked); for a call recording, its call.
    pub fn room(&self) -> Option<&str> {
        match self {
            Media::Recording(r) => r.room(),
            Media::Composition(c) => c.room_sid.as_deref(),
            Media::Voice(r) => r.call_sid.as_deref(),
        }
    }

    /// `date_created`, as sent.
    pub fn date_created(&self) -> Option<&str> {
        match self {
            Media::Recording(r) => r.date_created.as_deref(),
            Media::Composition(c) => c.date_created.as_deref(),
            Media::Voice(r) => r.date_created.as_deref(),
        }
    }

    /// Whether the resource says its media is encrypted: only a call recording does
    /// (`encryption_details`); a Video object says it in its storage headers.
    pub fn says_encrypted(&self) -> Option<bool> {
        match self {
            Media::Voice(r) => Some(r.encryption().is_some()),
            _ => None,
        }
    }

    /// When its media was finished: a recording's creation, a composition's completion
    /// (or creation, when not given).
    pub fn modified(&self) -> Option<SystemTime> {
        match self {
            Media::Recording(r) => r.created(),
            Media::Composition(c) => c.completed().or_else(|| c.created()),
            Media::Voice(r) => r.created(),
        }
    }

    /// The `user.twilio.*` extended attributes of its file, in order: the API's own
    /// fields under the API's names, each kind its own. A recording's room is its
    /// `grouping_sids.room_sid` (or `room_sid`), its participant
    /// `grouping_sids.participant_sid`. A field missing or empty is left out,
    /// so a reader asking for it gets ENODATA rather than an empty string.
    pub fn xattrs(&self) -> Vec<(&'static str, String)> {
        let text = |v: Option<&str>| v.map(str::to_owned);
        let number = |v: Option<u64>| v.map(|n| n.to_string());
        let sid = ("sid", Some(self.sid().to_owned()));
        let room = ("room_sid", text(self.room()));
        let status = ("status", text(self.status()));
        let duration = ("duration", number(self.duration()));
        let created = ("date_created", text(self.date_created()));
        match self {
            Media::Recording(r) => xattr_fields([
                sid,
                room,
                status,
                ("type", r.r#type.clone()),
                ("container_format", r.container_format.clone()),
                ("codec", r.codec.clone()),
                duration,
                ("track_name", r.track_name.clone()),
                ("offset", number(r.offset)),
                (
                    "participant_sid",
                    r.grouping_sids
                        .as_ref()
                        .and_then(|g| g.participant_sid.clone()),
                ),
                ("source_sid", r.source_sid.clone()),
                created,
            ]),
            Media::Composition(c) => xattr_fields([
                sid,
                room,
                status,
                ("format", c.format.clone()),
                ("resolution", c.resolution.clone()),
                ("bitrate", number(c.bitrate)),
                duration,
                created,
                ("date_completed", c.date_completed.clone()),
            ]),
            Media::Voice(r) => {
                let encryption = r.encryption();
                xattr_fields([
                    sid,
                    ("call_sid", r.call_sid.clone()),
                    ("conference_sid", r.conference_sid.clone()),
                    status,
                    ("channels", number(r.channels)),
                    ("source", r.source.clone()),
                    duration,
                    ("start_time", r.start_time.clone()),
                    created,
                    // `encrypted` is the mount's own, from the object (as for Video).
                    (
                        "public_key_sid",
                        encryption.and_then(|e| e.public_key_sid.clone()),
                    ),
                ])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RT: &str = "RT0123456789abcdef0123456789abcdef";
    const CJ: &str = "CJ0123456789abcdef0123456789abcdef";
    const RE: &str = "RE0123456789abcdef0123456789abcdef";
    const AC: &str = "AC0123456789abcdef0123456789abcdef";

    #[test]
    fn kinds_from_sids_and_their_paths() {
        assert_eq!(MediaKind::of_sid(RT), Some(MediaKind::Recording));
        assert_eq!(MediaKind::of_sid(CJ), Some(MediaKind::Composition));
        assert_eq!(MediaKind::of_sid("RM0123"), None);
        assert_eq!(MediaKind::of_sid(RE), Some(MediaKind::Voice));
        assert_eq!(
            MediaKind::Recording.media_path(AC, RT),
            format!("/v1/Recordings/{RT}/Media")
        );
        assert_eq!(
            MediaKind::Composition.resource_path(AC, CJ),
            format!("/v1/Compositions/{CJ}")
        );
        assert_eq!(MediaKind::Composition.list_path(AC), "/v1/Compositions");
        assert_eq!(
            MediaKind::Voice.list_path(AC),
            format!("/2010-04-01/Accounts/{AC}/Recordings.json")
        );
        assert_eq!(
            MediaKind::Voice.resource_path(AC, RE),
            format!("/2010-04-01/Accounts/{AC}/Recordings/{RE}.json")
        );
        assert_eq!(
            MediaKind::Voice.media_path(AC, RE),
            format!("/2010-04-01/Accounts/{AC}/Recordings/{RE}.wav")
        );
        for k in MediaKind::ALL {
            assert!(
                k.extensions()
                    .iter()
                    .all(|e| names::extension(e) == Some(*e))
            );
        }
    }

    #[test]
    fn kinds_from_containers_and_their_settings() {
        assert_eq!(MediaKind::of_extension("mkv"), Some(MediaKind::Recording));
        assert_eq!(
            MediaKind::of_extension("webm"),
            Some(MediaKind::Composition)
        );
        assert_eq!(MediaKind::of_extension("MKA"), None, "lower case only");
        assert_eq!(MediaKind::of_extension("bin"), None);
        assert_eq!(MediaKind::of_extension("wav"), Some(MediaKind::Voice));
        assert_eq!(
            MediaKind::Recording.settings_path(),
            Some("/v1/RecordingSettings/Default")
        );
        assert_eq!(
            MediaKind::Composition.settings_path(),
            Some("/v1/CompositionSettings/Default")
        );
        assert_eq!(MediaKind::Voice.settings_path(), None);
    }

    #[test]
    fn a_listing_takes_every_filter_its_query_sends() {
        let f = MediaFilter {
            status: Some("completed".into()),
            room: Some("RM1".into()),
            date_created_after: Some("2026-11-01T00:00:00Z".into()),
            date_created_before: Some("2026-11-02T00:00:00Z".into()),
        };
        for k in MediaKind::ALL {
            let q = k.query(&f);
            assert_eq!(q.len(), if k.is_video() { 4 } else { 3 }, "{k}");
            for (name, _) in q {
                assert!(k.list_filters().contains(&name), "{k}: {name}");
            }
        }
        assert!(
            !MediaKind::Composition
                .list_filters()
                .contains(&"GroupingSid")
        );
        assert!(!MediaKind::Recording.list_filters().contains(&"RoomSid"));
        assert_eq!(
            MediaKind::Voice.query(&f),
            [
                ("CallSid", "RM1".to_owned()),
                ("DateCreated>", "2026-11-01".to_owned()),
                ("DateCreated<", "2026-11-02".to_owned())
            ]
        );
    }

    #[test]
    fn decodes_as_the_kind_says() {
        let body = format!(r#"{{"sid": "{CJ}", "format": "mp4", "room_sid": "RM1", "size": "7"}}"#);
        let c = MediaKind::Composition
            .decode(&mut serde_json::Deserializer::from_str(&body))
            .unwrap();
        assert_eq!(c.kind(), MediaKind::Composition);
        assert_eq!((c.sid(), c.format(), c.size()), (CJ, Some("mp4"), Some(7)));
        // Listing entries, each read on its own: one odd entry is skipped, not fatal.
        let page = format!(
            r#"{{"recordings": [{{"sid": "{RT}", "container_format": "mka"}}, {{"sid": ["x"]}}],
                "meta": {{"next_page_url": null}}}}"#
        );
        let kind = MediaKind::Recording;
        let page = super::super::types::parse_page_with(page.as_bytes(), kind.plural(), |v| {
            kind.decode(v)
        })
        .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].kind(), MediaKind::Recording);
        assert_eq!(page.items[0].file_name(), Some(format!("{RT}.mka")));
        assert_eq!(page.skipped.len(), 1);
    }

    #[test]
    fn filters_name_the_room_as_each_kind_does() {
        let f = MediaFilter {
            status: Some("completed".into()),
            room: Some("RM1".into()),
            ..Default::default()
        };
        assert_eq!(
            MediaKind::Recording.query(&f),
            vec![
                ("Status", "completed".into()),
                ("GroupingSid", "RM1".into())
            ]
        );
        assert_eq!(
            MediaKind::Composition.query(&f),
            vec![("Status", "completed".into()), ("RoomSid", "RM1".into())]
        );
    }

    #[test]
    fn names_only_from_a_sid_and_a_container_of_its_kind() {
        let r = Media::from(Recording {
            sid: RT.into(),
            container_format: Some("MKA".into()),
            ..Default::default()
        });
        assert_eq!(r.file_name(), Some(format!("{RT}.mka")));
        let wrong = Media::from(Recording {
            sid: RT.into(),
            container_format: Some("mp4".into()),
            ..Default::default()
        });
        assert_eq!(wrong.file_name(), None, "a recording is never an mp4");
        let c = Media::from(Composition {
            sid: CJ.into(),
            format: Some("webm".into()),
            room_sid: Some("RM1".into()),
            ..Default::default()
        });
        assert_eq!(c.file_name(), Some(format!("{CJ}.webm")));
        assert_eq!(c.kind(), MediaKind::Composition);
        assert_eq!(c.room(), Some("RM1"));
        assert_eq!(
            c.xattrs(),
            [
                ("sid", CJ.to_owned()),
                ("room_sid", "RM1".into()),
                ("format", "webm".into()),
            ],
            "no status, duration or date: left out, not empty"
        );
    }

    #[test]
    fn each_kind_shows_its_own_fields() {
        let r = Media::from(Recording {
            sid: RT.into(),
            status: Some("completed".into()),
            r#type: Some("audio".into()),
            container_format: Some("mka".into()),
            codec: Some("opus".into()),
            duration: Some(12),
            track_name: Some(String::new()),
            offset: Some(0),
            grouping_sids: Some(super::super::types::GroupingSids {
                room_sid: Some("RM1".into()),
                participant_sid: Some("PA1".into()),
            }),
            source_sid: Some("MT1".into()),
            date_created: Some("2026-11-01T00:00:00Z".into()),
            ..Default::default()
        });
        let names = |m: &Media| m.xattrs().into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(
            names(&r),
            [
                "sid",
                "room_sid",
                "status",
                "type",
                "container_format",
                "codec",
                "duration",
                "offset",
                "participant_sid",
                "source_sid",
                "date_created"
            ],
            "an empty track name is left out; an offset of 0 is a value"
        );
        assert!(r.xattrs().contains(&("offset", "0".into())));
        let c = Media::from(Composition {
            sid: CJ.into(),
            status: Some("completed".into()),
            format: Some("mp4".into()),
            resolution: Some("1280x720".into()),
            bitrate: Some(300),
            duration: Some(60),
            room_sid: Some("RM1".into()),
            date_created: Some("2026-11-01T00:00:00Z".into()),
            date_completed: Some("2026-11-01T00:02:00Z".into()),
            ..Default::default()
        });
        assert_eq!(
            names(&c),
            [
                "sid",
                "room_sid",
                "status",
                "format",
                "resolution",
                "bitrate",
                "duration",
                "date_created",
                "date_completed"
            ]
        );
    }

    #[test]
    fn serialises_as_the_resource_itself() {
        let c = Composition {
            sid: CJ.into(),
            format: Some("mp4".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(Media::from(c.clone())).unwrap(),
            serde_json::to_value(c).unwrap()
        );
    }
}
