//! The catalog: every recording, composition and room the emulator knows, their SIDs,
//! their stored (encrypted) objects and their JSON as Twilio's API shows it.
//!
//! This file owns what exists and how it is encrypted; it is built once by
//! [`Catalog::build`] and is immutable afterwards. It must not know about HTTP (the
//! handlers in `api` and `storage` take what they need from here) and must never hold a
//! private key.
//!
//! # SIDs
//! Deterministic: a two-letter prefix and the first 32 hex digits of SHA-256 of a
//! name (`sid("RT", "sample:audio-opus")`), so tests and docs can name them and every run
//! serves the same SIDs. See [`sid`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use rand::RngExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::meeting::{MEETING, MEETING_ROOM};
use super::synthetic::Synthetic;
use super::wav::{self, Tone};
use super::{EmulatorConfig, ObjectInfo};
use crate::crypto::window::decrypt_window;
use crate::crypto::{ContentKey, GcmEnvelope, seal};
use crate::twilio::MediaKind;

/// `prefix` + 32 lowercase hex digits derived from `name`.
pub fn sid(prefix: &str, name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

/// The SID of the public key credential of `public_keys[index]`.
pub fn public_key_sid(index: usize) -> String {
    match index {
        0 => sid("CR", "encryption-key"),
        i => sid("CR", &format!("encryption-key-{i}")),
    }
}

/// Seconds since the epoch of 2026-11-01T10:00:00Z, the first media's creation time.
const BASE_TIME: i64 = 1_793_527_200;

/// The civil date of `days` since the epoch: (year, month 1-12, day 1-31).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// An RFC 3339 UTC timestamp (`2026-11-01T10:00:00Z`) for `secs` since the epoch.
pub fn datetime(secs: i64) -> String {
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// An RFC 2822 timestamp as the 2010-04-01 API writes them
/// (`Fri, 20 Nov 2026 10:00:00 +0000`) for `secs` since the epoch.
pub fn rfc2822(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let rem = secs.rem_euclid(86_400);
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The bytes behind a storage URL.
pub enum Content {
    Stored(Bytes),
    Synthetic(Box<Synthetic>),
    /// A call recording, made and sealed on first use.
    Voice(Box<VoiceObject>),
}

/// What the storage serves for one object: the bytes as stored and the envelope headers.
pub struct StoredObject {
    pub content: Content,
    /// Length as stored (ciphertext length for encrypted objects).
    pub len: u64,
    pub envelope: Option<EnvelopeHeaders>,
    pub content_type: &'static str,
    pub etag: String,
    /// The bytes really stored, when fewer than `len`: an object shorter than its
    /// Content-Length. Every body stops there and the connection closes.
    pub available: Option<u64>,
    /// For [`Catalog::plaintext`] on synthetic objects (tests only).
    cek: Option<ContentKey>,
    iv: [u8; 16],
}

impl StoredObject {
    /// Stored bytes `[offset, offset + len)`.
    pub fn read(&self, offset: u64, len: usize) -> Bytes {
        match &self.content {
            Content::Stored(b) => b.slice(offset as usize..offset as usize + len),
            Content::Synthetic(s) => Bytes::from(s.read(offset, len)),
            Content::Voice(v) => v.stored().slice(offset as usize..offset as usize + len),
        }
    }
}

/// The `x-amz-meta-*` headers of an encrypted object.
pub enum EnvelopeHeaders {
    /// Made here, for an object encrypted here.
    Made {
        key_b64: String,
        iv_b64: String,
        /// `None`: the unencrypted-content-length header is left out.
        plaintext_len: Option<u64>,
    },
    /// Read from a `NAME.headers` file: served as they are, right or wrong, so that
    /// tests can give the client any envelope (a missing key, a short IV, v2 names…).
    Verbatim(Vec<(String, String)>),
}

impl EnvelopeHeaders {
    /// The headers to send, names lower-case.
    pub fn headers(&self) -> Vec<(String, String)> {
        match self {
            EnvelopeHeaders::Made {
                key_b64,
                iv_b64,
                plaintext_len,
            } => {
                let mut h = vec![
                    ("x-amz-meta-x-amz-key".into(), key_b64.clone()),
                    ("x-amz-meta-x-amz-iv".into(), iv_b64.clone()),
                ];
                if let Some(len) = plaintext_len {
                    h.push((
                        "x-amz-meta-x-amz-unencrypted-content-length".into(),
                        len.to_string(),
                    ));
                }
                h.push(("x-amz-meta-x-amz-matdesc".into(), "{}".into()));
                h
            }
            EnvelopeHeaders::Verbatim(h) => h.clone(),
        }
    }

    /// Whether the plaintext length header is among them (with a number or not).
    pub fn has_length(&self) -> bool {
        self.headers()
            .iter()
            .any(|(k, _)| k == "x-amz-meta-x-amz-unencrypted-content-length")
    }
}

/// Where a call recording's WAV comes from.
pub enum WavSource {
    /// Made here ([`Tone::wav`]): nothing is held until it is asked for.
    Tone(Tone),
    /// A `*.wav` file of the data directory.
    File(Bytes),
}

impl WavSource {
    /// The WAV file's length in bytes.
    #[allow(clippy::len_without_is_empty)] // never empty: a WAV has a header
    pub fn len(&self) -> u64 {
        match self {
            WavSource::Tone(t) => t.len(),
            WavSource::File(b) => b.len() as u64,
        }
    }

    /// The WAV file.
    pub fn bytes(&self) -> Bytes {
        match self {
            WavSource::Tone(t) => Bytes::from(t.wav()),
            WavSource::File(b) => b.clone(),
        }
    }
}

/// A call recording's stored object: its WAV, sealed with AES-256-GCM for a public key
/// (or stored as it is). The content key, IV and wrapped key are made with the catalog
/// (the resource's `encryption_details` need them); the WAV and its sealing on first
/// read, so that a 10-minute recording costs nothing until its media is fetched.
pub struct VoiceObject {
    pub source: WavSource,
    /// The content key and the envelope; `None`: stored unencrypted.
    seal: Option<(ContentKey, GcmEnvelope)>,
    stored: OnceLock<Bytes>,
}

impl VoiceObject {
    /// `source`, to be sealed for `public` (whose credential is `key_sid`), or stored as
    /// it is.
    fn new(source: WavSource, public: Option<(&rsa::PublicKey, String)>) -> Self {
        let seal = public.map(|(public, key_sid)| {
            let key = seal::random_cek(true);
            let envelope = GcmEnvelope {
                public_key_sid: Some(key_sid),
                wrapped_key: seal::wrap_cek_oaep(public, &key),
                iv: rand::rng().random(),
            };
            (key, envelope)
        });
        Self {
            source,
            seal,
            stored: OnceLock::new(),
        }
    }

    /// Whether it is stored encrypted.
    pub fn encrypted(&self) -> bool {
        self.seal.is_some()
    }

    /// The stored length: the WAV, and the 16-byte GCM tag when encrypted.
    pub fn stored_len(&self) -> u64 {
        self.source.len() + if self.encrypted() { 16 } else { 0 }
    }

    /// The bytes storage serves (ciphertext ‖ tag, or the WAV), made once.
    pub fn stored(&self) -> &Bytes {
        self.stored.get_or_init(|| {
            let plain = self.source.bytes();
            match &self.seal {
                None => plain,
                Some((key, envelope)) => {
                    Bytes::from(seal::seal_gcm_with(key, &envelope.iv, &plain))
                }
            }
        })
    }

    /// The envelope (`encryption_details`); `None` when stored unencrypted.
    pub fn envelope(&self) -> Option<&GcmEnvelope> {
        self.seal.as_ref().map(|(_, e)| e)
    }
}

/// What a call recording says beyond a Video recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// `CA…`: two recordings may share one call.
    pub call_sid: String,
    /// `CF…`, for a conference recording.
    pub conference_sid: Option<String>,
    /// 1 or 2.
    pub channels: u16,
    /// `RecordVerb`, `DialVerb`, `StartConferenceRecordingAPI`, …
    pub source: &'static str,
    /// Its `encryption_details` use the spec's names (`encryption_public_key_sid`,
    /// `encryption_cek`, `encryption_iv`) instead of the docs' (`public_key_sid`,
    /// `encrypted_cek`, `iv`).
    pub spec_spelling: bool,
}

/// The built-in call recordings: (name, call, conference, channels, seconds, source,
/// encrypted, spec spelling). Calls `a` has two recordings.
#[allow(clippy::type_complexity)]
const CALL_RECORDINGS: [(&str, &str, Option<&str>, u16, u32, &str, bool, bool); 5] = [
    ("voice:mono", "a", None, 1, 5, "RecordVerb", true, false),
    ("voice:dual", "a", None, 2, 8, "DialVerb", true, false),
    (
        "voice:unencrypted",
        "b",
        None,
        1,
        3,
        "OutboundAPI",
        false,
        false,
    ),
    (
        "voice:conference",
        "c",
        Some("standup"),
        1,
        4,
        "StartConferenceRecordingAPI",
        true,
        true,
    ),
    (
        "voice:long",
        "d",
        None,
        2,
        600,
        "StartCallRecordingAPI",
        true,
        false,
    ),
];

/// The SID of call `name` of [`CALL_RECORDINGS`].
pub fn call_sid(name: &str) -> String {
    sid("CA", &format!("call:{name}"))
}

/// The SID of conference `name` of [`CALL_RECORDINGS`].
pub fn conference_sid(name: &str) -> String {
    sid("CF", &format!("conference:{name}"))
}

pub struct Room {
    pub sid: String,
    pub unique_name: String,
    created: i64,
}

impl Room {
    pub fn date_created(&self) -> String {
        datetime(self.created)
    }
}

/// A recording or a composition.
pub struct Media {
    pub sid: String,
    pub kind: MediaKind,
    pub status: &'static str,
    pub ext: &'static str,
    pub codec: &'static str,
    pub media_type: &'static str,
    pub room: usize,
    pub participant_sid: String,
    pub source_sid: String,
    pub track_name: String,
    created: i64,
    pub duration: u64,
    /// The recording's `offset` (ms): the media server's, the same for a room's tracks
    /// of one segment. 0 for the samples that are not of the meeting room.
    pub offset: u64,
    /// Plaintext length when there is media.
    pub size: Option<u64>,
    pub object: Option<Arc<StoredObject>>,
    plaintext: Option<Bytes>,
    key_index: Option<usize>,
    /// Call recordings only.
    pub call: Option<CallInfo>,
}

impl Media {
    pub fn date_created(&self) -> String {
        datetime(self.created)
    }

    /// Its call recording object, for [`MediaKind::Voice`].
    pub fn voice_object(&self) -> Option<&VoiceObject> {
        match &self.object.as_deref()?.content {
            Content::Voice(v) => Some(v),
            _ => None,
        }
    }
}

/// Everything the emulator serves; immutable once built.
pub struct Catalog {
    pub account_sid: String,
    /// The public key the settings name: `public_key_sids[0]`.
    pub encryption_key_sid: String,
    /// One `CR…` per configured public key, in order (the Accounts API's PublicKeys).
    pub public_key_sids: Vec<String>,
    /// What the Recording and Composition settings say.
    pub encryption_enabled: bool,
    pub rooms: Vec<Room>,
    pub media: Vec<Media>,
    by_sid: HashMap<String, usize>,
}

/// How one embedded sample is served.
struct Sample {
    name: &'static str,
    bytes: &'static [u8],
    ext: &'static str,
    codec: &'static str,
    media_type: &'static str,
    room: usize,
    participant: &'static str,
    /// AES-256 content key (else AES-128).
    aes256: bool,
    /// Send x-amz-meta-x-amz-unencrypted-content-length.
    length_header: bool,
}

const fn sample(
    name: &'static str,
    bytes: &'static [u8],
    ext: &'static str,
    codec: &'static str,
    media_type: &'static str,
    room: usize,
    participant: &'static str,
) -> Sample {
    Sample {
        name,
        bytes,
        ext,
        codec,
        media_type,
        room,
        participant,
        aes256: true,
        length_header: true,
    }
}

const AUDIO_OPUS: &[u8] = include_bytes!("../../samples/audio-opus.mka");

/// The files of the meeting room ([`MEETING`]), by name.
const MEETING_FILES: [(&str, &[u8]); 9] = [
    (
        "alice-audio.mka",
        include_bytes!("../../samples/meeting/alice-audio.mka"),
    ),
    (
        "alice-video.mkv",
        include_bytes!("../../samples/meeting/alice-video.mkv"),
    ),
    (
        "bob-audio.mka",
        include_bytes!("../../samples/meeting/bob-audio.mka"),
    ),
    (
        "bob-video.mkv",
        include_bytes!("../../samples/meeting/bob-video.mkv"),
    ),
    (
        "bob-audio-2.mka",
        include_bytes!("../../samples/meeting/bob-audio-2.mka"),
    ),
    (
        "bob-video-2.mkv",
        include_bytes!("../../samples/meeting/bob-video-2.mkv"),
    ),
    (
        "carol-audio.mka",
        include_bytes!("../../samples/meeting/carol-audio.mka"),
    ),
    (
        "carol-video.mkv",
        include_bytes!("../../samples/meeting/carol-video.mkv"),
    ),
    (
        "dave-audio.mka",
        include_bytes!("../../samples/meeting/dave-audio.mka"),
    ),
];

/// The meeting room's recordings, from [`MEETING`] and [`MEETING_FILES`], encrypted
/// like the other samples. Each is created when its track starts.
fn add_meeting(b: &mut Builder<'_>) {
    let room = b
        .rooms
        .iter()
        .position(|r| r.unique_name == MEETING_ROOM)
        .expect("the meeting room is built in");
    let room_created = b.rooms[room].created;
    for t in MEETING {
        let (_, bytes) = MEETING_FILES
            .iter()
            .find(|(name, _)| *name == t.file)
            .expect("every file of MEETING is embedded");
        let plain = Bytes::from_static(bytes);
        let name = format!("meeting:{}", t.stem());
        let object = b.store(&name, t.container(), plain.clone(), encrypted(0));
        let len = plain.len() as u64;
        b.recording(
            &name,
            "completed",
            (t.container(), t.codec, t.kind),
            room,
            t.participant,
            t.duration(),
            Some((object, Some(plain), Some(0), len)),
        );
        let m = b.media.last_mut().expect("just pushed");
        m.participant_sid = t.participant_sid();
        m.track_name = t.track_name.into();
        m.offset = t.offset_ms;
        m.created = room_created + t.start.floor() as i64;
    }
}

/// The recordings made from the embedded samples (rooms 0 and 1).
fn samples() -> Vec<Sample> {
    vec![
        sample("audio-opus", AUDIO_OPUS, "mka", "OPUS", "audio", 0, "alice"),
        sample(
            "video-vp8",
            include_bytes!("../../samples/video-vp8.mkv"),
            "mkv",
            "VP8",
            "video",
            0,
            "alice",
        ),
        Sample {
            length_header: false,
            ..sample(
                "audio-pcmu",
                include_bytes!("../../samples/audio-pcmu.mka"),
                "mka",
                "PCMU",
                "audio",
                1,
                "bob",
            )
        },
        Sample {
            aes256: false,
            ..sample(
                "video-h264",
                include_bytes!("../../samples/video-h264.mkv"),
                "mkv",
                "H264",
                "video",
                1,
                "bob",
            )
        },
    ]
}

/// The compositions made from the embedded samples: (name, bytes, format, room).
fn composition_samples() -> [(&'static str, &'static [u8], &'static str, usize); 2] {
    [
        (
            "composition-mp4",
            include_bytes!("../../samples/composition.mp4"),
            "mp4",
            0,
        ),
        (
            "composition-webm",
            include_bytes!("../../samples/composition.webm"),
            "webm",
            1,
        ),
    ]
}

fn content_type(ext: &str) -> &'static str {
    match ext {
        "mka" => "audio/x-matroska",
        "mkv" => "video/x-matroska",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "wav" => "audio/x-wav",
        _ => "application/octet-stream",
    }
}

/// How an object is stored.
enum Sealing {
    Plain,
    Encrypted {
        key_index: usize,
        aes256: bool,
        length_header: bool,
    },
}

/// A recording's media: the stored object, its plaintext (stored objects only), the
/// index of the key that wraps its CEK, and its plaintext length.
type Served = (Arc<StoredObject>, Option<Bytes>, Option<usize>, u64);

struct Builder<'a> {
    config: &'a EmulatorConfig,
    media: Vec<Media>,
    rooms: Vec<Room>,
}

impl Builder<'_> {
    /// Encrypts `plain` as Twilio would and stores it.
    fn store(&self, id: &str, ext: &str, plain: Bytes, sealing: Sealing) -> Arc<StoredObject> {
        let etag = format!("\"{}\"", &sid("", &format!("etag:{id}")));
        match sealing {
            Sealing::Plain => Arc::new(StoredObject {
                len: plain.len() as u64,
                content: Content::Stored(plain),
                envelope: None,
                content_type: content_type(ext),
                etag,
                available: None,
                cek: None,
                iv: [0; 16],
            }),
            Sealing::Encrypted {
                key_index,
                aes256,
                length_header,
            } => {
                let cek = seal::random_cek(aes256);
                let iv: [u8; 16] = rand::rng().random();
                let cipher = seal::encrypt(&cek, &iv, &plain);
                let envelope = EnvelopeHeaders::Made {
                    key_b64: STANDARD
                        .encode(seal::wrap_cek(&self.config.public_keys[key_index], &cek)),
                    iv_b64: STANDARD.encode(iv),
                    plaintext_len: length_header.then_some(plain.len() as u64),
                };
                Arc::new(StoredObject {
                    len: cipher.len() as u64,
                    content: Content::Stored(Bytes::from(cipher)),
                    envelope: Some(envelope),
                    content_type: content_type(ext),
                    etag,
                    available: None,
                    cek: None,
                    iv,
                })
            }
        }
    }

    /// A synthetic encrypted object of `size` plaintext bytes.
    fn synthetic(&self, id: &str, size: u64) -> Arc<StoredObject> {
        let cek = seal::random_cek(true);
        let iv: [u8; 16] = rand::rng().random();
        let synth = Synthetic::new(size, &cek, &iv);
        let envelope = EnvelopeHeaders::Made {
            key_b64: STANDARD.encode(seal::wrap_cek(&self.config.public_keys[0], &cek)),
            iv_b64: STANDARD.encode(iv),
            plaintext_len: Some(size),
        };
        Arc::new(StoredObject {
            len: synth.cipher_len(),
            content: Content::Synthetic(Box::new(synth)),
            envelope: Some(envelope),
            content_type: content_type("mka"),
            etag: format!("\"{}\"", &sid("", &format!("etag:{id}"))),
            available: None,
            cek: Some(cek),
            iv,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn recording(
        &mut self,
        name: &str,
        status: &'static str,
        (ext, codec, media_type): (&'static str, &'static str, &'static str),
        room: usize,
        participant: &str,
        duration: u64,
        object: Option<Served>,
    ) -> &Media {
        self.push(Media {
            sid: sid(MediaKind::Recording.sid_prefix(), name),
            kind: MediaKind::Recording,
            status,
            ext,
            codec,
            media_type,
            room,
            participant_sid: sid("PA", &format!("participant:{participant}")),
            source_sid: sid("MT", &format!("track:{name}")),
            track_name: format!("{participant}-{media_type}"),
            created: 0,
            offset: 0,
            duration,
            size: object.as_ref().map(|o| o.3),
            plaintext: object.as_ref().and_then(|o| o.1.clone()),
            key_index: object.as_ref().and_then(|o| o.2),
            object: object.map(|o| o.0),
            call: None,
        })
    }

    fn composition(
        &mut self,
        name: &str,
        ext: &'static str,
        room: usize,
        object: Arc<StoredObject>,
        plain: Bytes,
    ) {
        self.push(Media {
            sid: sid(MediaKind::Composition.sid_prefix(), name),
            kind: MediaKind::Composition,
            status: "completed",
            ext,
            codec: "",
            media_type: "video",
            room,
            participant_sid: String::new(),
            source_sid: String::new(),
            track_name: String::new(),
            created: 0,
            offset: 0,
            duration: 10,
            size: Some(plain.len() as u64),
            plaintext: Some(plain),
            key_index: Some(0),
            object: Some(object),
            call: None,
        });
    }

    /// A call recording of `source`, sealed for `public_keys[key_index]` (or not).
    fn call_recording(
        &mut self,
        name: &str,
        call: CallInfo,
        source: WavSource,
        key_index: Option<usize>,
    ) {
        let size = source.len();
        // 16-bit samples at 8 kHz on every channel.
        let duration = size.saturating_sub(wav::HEADER_LEN)
            / (u64::from(wav::SAMPLE_RATE) * 2 * u64::from(call.channels.max(1)));
        let plaintext = match &source {
            WavSource::File(b) => Some(b.clone()),
            WavSource::Tone(_) => None,
        };
        let public = key_index.map(|i| (&self.config.public_keys[i], public_key_sid(i)));
        let voice = VoiceObject::new(source, public);
        let object = Arc::new(StoredObject {
            len: voice.stored_len(),
            content: Content::Voice(Box::new(voice)),
            envelope: None,
            content_type: content_type("wav"),
            etag: format!("\"{}\"", &sid("", &format!("etag:{name}"))),
            available: None,
            cek: None,
            iv: [0; 16],
        });
        let calls = self.media.iter().filter(|m| m.call.is_some()).count() as i64;
        self.push(Media {
            sid: sid(MediaKind::Voice.sid_prefix(), name),
            kind: MediaKind::Voice,
            status: "completed",
            ext: "wav",
            codec: "PCM",
            media_type: "audio",
            room: 0,
            participant_sid: String::new(),
            source_sid: String::new(),
            track_name: String::new(),
            created: 0,
            offset: 0,
            duration,
            size: Some(size),
            object: Some(object),
            plaintext,
            key_index,
            call: Some(call),
        });
        // One a day from 2026-11-02 11:00, so that `DateCreated>`/`<` (days) select.
        let media = self.media.last_mut().expect("just pushed");
        media.created = BASE_TIME + 86_400 * (calls + 1) + 3600;
    }

    fn push(&mut self, mut media: Media) -> &Media {
        // One minute apart, in catalog order.
        media.created = BASE_TIME + 60 * self.media.len() as i64;
        self.media.push(media);
        self.media.last().expect("just pushed")
    }
}

fn encrypted(key_index: usize) -> Sealing {
    Sealing::Encrypted {
        key_index,
        aes256: true,
        length_header: true,
    }
}

impl Catalog {
    /// Encrypts the samples and `data_dir` files and lists the synthetic objects.
    pub fn build(config: &EmulatorConfig) -> anyhow::Result<Self> {
        // The meeting room comes after the first three, so that their indices and SIDs
        // stay; rooms of the data directory after it.
        let rooms = [
            "emulator-room-a",
            "emulator-room-b",
            "emulator-load",
            MEETING_ROOM,
        ]
        .iter()
        .enumerate()
        .map(|(i, name)| Room {
            sid: sid("RM", &format!("room:{name}")),
            unique_name: (*name).into(),
            created: BASE_TIME - 3600 + 600 * i as i64,
        })
        .collect();
        let mut b = Builder {
            config,
            media: Vec::new(),
            rooms,
        };
        for s in samples() {
            let plain = Bytes::from_static(s.bytes);
            let sealing = Sealing::Encrypted {
                key_index: 0,
                aes256: s.aes256,
                length_header: s.length_header,
            };
            let object = b.store(s.name, s.ext, plain.clone(), sealing);
            let len = plain.len() as u64;
            b.recording(
                &format!("sample:{}", s.name),
                "completed",
                (s.ext, s.codec, s.media_type),
                s.room,
                s.participant,
                10,
                Some((object, Some(plain), Some(0), len)),
            );
        }
        for (name, bytes, ext, room) in composition_samples() {
            let plain = Bytes::from_static(bytes);
            let object = b.store(name, ext, plain.clone(), encrypted(0));
            b.composition(&format!("sample:{name}"), ext, room, object, plain);
        }
        // Real-world variants.
        let opus = Bytes::from_static(AUDIO_OPUS);
        let len = opus.len() as u64;
        let object = b.store("unencrypted", "mka", opus.clone(), Sealing::Plain);
        b.recording(
            "variant:unencrypted",
            "completed",
            ("mka", "OPUS", "audio"),
            0,
            "carol",
            10,
            Some((object, Some(opus.clone()), None, len)),
        );
        if config.public_keys.len() > 1 {
            let object = b.store("rotated-key", "mka", opus.clone(), encrypted(1));
            b.recording(
                "variant:rotated-key",
                "completed",
                ("mka", "OPUS", "audio"),
                0,
                "dave",
                10,
                Some((object, Some(opus), Some(1), len)),
            );
        }
        for status in ["processing", "deleted"] {
            b.recording(
                &format!("variant:{status}"),
                status,
                ("mka", "OPUS", "audio"),
                1,
                "erin",
                0,
                None,
            );
        }
        for (i, (name, call, conference, channels, seconds, source, sealed, spec)) in
            CALL_RECORDINGS.into_iter().enumerate()
        {
            let info = CallInfo {
                call_sid: call_sid(call),
                conference_sid: conference.map(conference_sid),
                channels,
                source,
                spec_spelling: spec,
            };
            let tone = Tone::new(channels, seconds, i as u32);
            b.call_recording(name, info, WavSource::Tone(tone), sealed.then_some(0));
        }
        for i in 0..config.extra_call_recordings {
            let info = CallInfo {
                call_sid: call_sid(&format!("extra:{}", i / 2)),
                conference_sid: None,
                channels: 1,
                source: "RecordVerb",
                spec_spelling: false,
            };
            // Header only: a listing of hundreds stays cheap.
            let tone = WavSource::Tone(Tone::new(1, 0, i as u32));
            b.call_recording(&format!("voice:extra:{i}"), info, tone, Some(0));
        }
        if let Some(dir) = &config.data_dir {
            add_data_dir(&mut b, dir)?;
        }
        for (i, &size) in config.synthetic.iter().enumerate() {
            let name = format!("synthetic:{i}:{size}");
            let object = b.synthetic(&name, size);
            b.recording(
                &name,
                "completed",
                ("mka", "OPUS", "audio"),
                2,
                "synthetic",
                size / 3000,
                Some((object, None, Some(0), size)),
            );
        }
        for i in 0..config.extra_recordings {
            let name = format!("extra:{i}");
            // Tiny, of varied lengths (any value mod 16).
            let size = 32 + (i * 37) % 500;
            let object = b.synthetic(&name, size);
            b.recording(
                &name,
                "completed",
                ("mka", "OPUS", "audio"),
                2,
                "load",
                1,
                Some((object, None, Some(0), size)),
            );
        }
        // Last, so that the media before keep their positions and creation times.
        add_meeting(&mut b);
        let by_sid = b
            .media
            .iter()
            .enumerate()
            .map(|(i, m)| (m.sid.clone(), i))
            .collect();
        Ok(Self {
            account_sid: config.credentials.account_sid.clone(),
            encryption_key_sid: public_key_sid(0),
            public_key_sids: (0..config.public_keys.len()).map(public_key_sid).collect(),
            encryption_enabled: config.encryption_enabled,
            rooms: b.rooms,
            media: b.media,
            by_sid,
        })
    }

    /// The recording or composition with this SID.
    pub fn get(&self, sid: &str) -> Option<&Media> {
        self.index(sid).map(|i| &self.media[i])
    }

    /// Its position in [`Catalog::media`].
    pub fn index(&self, sid: &str) -> Option<usize> {
        self.by_sid.get(sid).copied()
    }

    pub fn room(&self, sid: &str) -> Option<(usize, &Room)> {
        self.rooms.iter().enumerate().find(|(_, r)| r.sid == sid)
    }

    pub fn object_infos(&self) -> Vec<ObjectInfo> {
        self.media
            .iter()
            .map(|m| ObjectInfo {
                sid: m.sid.clone(),
                kind: m.kind,
                extension: m.ext.into(),
                status: m.status.into(),
                room_sid: match &m.call {
                    Some(call) => call.call_sid.clone(),
                    None => self.rooms[m.room].sid.clone(),
                },
                size: m.size,
                plaintext: m.plaintext.clone(),
                synthetic: matches!(
                    m.object.as_deref().map(|o| &o.content),
                    Some(Content::Synthetic(_))
                ),
                encrypted: m.object.as_ref().is_some_and(|o| o.envelope.is_some())
                    || (m.key_index.is_some() && m.call.is_some()),
                key_index: m.key_index,
                length_header: m
                    .object
                    .as_ref()
                    .and_then(|o| o.envelope.as_ref())
                    .is_some_and(EnvelopeHeaders::has_length),
            })
            .collect()
    }

    /// The plaintext of an object; synthetic ones are decrypted whole.
    pub fn plaintext(&self, sid: &str) -> Option<Vec<u8>> {
        let media = self.get(sid)?;
        if let Some(p) = &media.plaintext {
            return Some(p.to_vec());
        }
        if let Some(voice) = media.voice_object() {
            return Some(voice.source.bytes().to_vec());
        }
        let object = media.object.as_ref()?;
        let cek = object.cek.as_ref()?;
        let mut buf = object.read(0, object.len as usize).to_vec();
        let n = decrypt_window(cek, &object.iv, &mut buf, true).ok()?;
        buf.truncate(n);
        Some(buf)
    }

    /// The JSON of a recording or composition, as its own resource.
    pub fn resource_json(&self, base: &str, m: &Media) -> Value {
        match m.kind {
            MediaKind::Recording => self.recording_json(base, m),
            MediaKind::Voice => self.call_recording_json(base, m),
            MediaKind::Composition => self.composition_json(base, m),
        }
    }

    /// The JSON of a recording (`video.v1.recording`).
    fn recording_json(&self, base: &str, m: &Media) -> Value {
        json!({
            "account_sid": self.account_sid,
            "status": m.status,
            "date_created": m.date_created(),
            "sid": m.sid,
            "source_sid": m.source_sid,
            "size": m.size,
            "url": format!("{base}{}", m.kind.resource_path("", &m.sid)),
            "type": m.media_type,
            "duration": m.duration,
            "container_format": m.ext,
            "codec": m.codec,
            "grouping_sids": {
                "room_sid": self.rooms[m.room].sid,
                "participant_sid": m.participant_sid,
            },
            "track_name": m.track_name,
            "offset": m.offset,
            "media_external_location": null,
            "status_callback": null,
            "status_callback_method": "POST",
            "links": { "media": format!("{base}{}", m.kind.media_path("", &m.sid)) },
        })
    }

    /// The JSON of a call recording (`api.v2010.account.recording`): RFC 2822 dates,
    /// `duration` a string, `uri` a path, `encryption_details` in the docs' or the spec's
    /// names (see [`CallInfo::spec_spelling`]) or `null`. Seals the object if it is not
    /// yet (its content key and IV are made then).
    pub fn call_recording_json(&self, base: &str, m: &Media) -> Value {
        let call = m.call.as_ref().expect("a call recording has its call");
        let account = &self.account_sid;
        let uri = MediaKind::Voice.resource_path(account, &m.sid);
        let under = format!("/2010-04-01/Accounts/{account}/Recordings/{}", m.sid);
        let encryption = m.voice_object().and_then(VoiceObject::envelope).map(|e| {
            let key_sid = e.public_key_sid.clone();
            let cek = STANDARD.encode(&e.wrapped_key);
            let iv = STANDARD.encode(e.iv);
            if call.spec_spelling {
                json!({
                    "encryption_public_key_sid": key_sid,
                    "encryption_cek": cek,
                    "encryption_iv": iv,
                })
            } else {
                json!({ "public_key_sid": key_sid, "encrypted_cek": cek, "iv": iv })
            }
        });
        json!({
            "account_sid": account,
            "api_version": "2010-04-01",
            "call_sid": call.call_sid,
            "conference_sid": call.conference_sid,
            "channels": call.channels,
            "date_created": rfc2822(m.created),
            "date_updated": rfc2822(m.created + m.duration as i64 + 2),
            "start_time": rfc2822(m.created),
            "duration": m.duration.to_string(),
            "sid": m.sid,
            "price": "-0.00250",
            "price_unit": "USD",
            "status": m.status,
            "source": call.source,
            "error_code": null,
            "uri": uri,
            "encryption_details": encryption,
            "subresource_uris": {
                "add_on_results": format!("{under}/AddOnResults.json"),
                "transcriptions": format!("{under}/Transcriptions.json"),
            },
            "media_url": format!("{base}{under}"),
        })
    }

    /// The JSON of a recording seen from its room (`video.v1.room.room_recording`).
    pub fn room_recording_json(&self, base: &str, m: &Media) -> Value {
        let room = &self.rooms[m.room].sid;
        let url = format!("{base}/v1/Rooms/{room}/Recordings/{}", m.sid);
        json!({
            "account_sid": self.account_sid,
            "status": m.status,
            "date_created": m.date_created(),
            "sid": m.sid,
            "source_sid": m.source_sid,
            "size": m.size,
            "url": url,
            "type": m.media_type,
            "duration": m.duration,
            "container_format": m.ext,
            "codec": m.codec,
            "grouping_sids": {
                "room_sid": room,
                "participant_sid": m.participant_sid,
            },
            "track_name": m.track_name,
            "offset": m.offset,
            "media_external_location": null,
            "room_sid": room,
            "links": { "media": format!("{url}/Media") },
        })
    }

    /// The JSON of a composition (`video.v1.composition`).
    fn composition_json(&self, base: &str, m: &Media) -> Value {
        let completed = (m.status == "completed").then(|| datetime(m.created + 120));
        json!({
            "account_sid": self.account_sid,
            "status": m.status,
            "date_created": m.date_created(),
            "date_completed": completed,
            "date_deleted": null,
            "sid": m.sid,
            "room_sid": self.rooms[m.room].sid,
            "audio_sources": ["*"],
            "audio_sources_excluded": [],
            "video_layout": { "grid": { "video_sources": ["*"] } },
            "resolution": "640x360",
            "trim": true,
            "format": m.ext,
            "bitrate": 300,
            "size": m.size,
            "duration": m.duration,
            "media_external_location": null,
            "status_callback": null,
            "status_callback_method": "POST",
            "url": format!("{base}{}", m.kind.resource_path("", &m.sid)),
            "links": { "media": format!("{base}{}", m.kind.media_path("", &m.sid)) },
        })
    }

    /// The JSON of a room (`video.v1.room`).
    pub fn room_json(&self, base: &str, r: &Room) -> Value {
        let url = format!("{base}/v1/Rooms/{}", r.sid);
        json!({
            "sid": r.sid,
            "status": "completed",
            "date_created": datetime(r.created),
            "date_updated": datetime(r.created + 7200),
            "account_sid": self.account_sid,
            "enable_turn": true,
            "unique_name": r.unique_name,
            "status_callback": null,
            "status_callback_method": "POST",
            "end_time": datetime(r.created + 7200),
            "duration": 7200,
            "type": "group",
            "max_participants": 50,
            "max_participant_duration": 14400,
            "max_concurrent_published_tracks": 170,
            "record_participants_on_connect": true,
            "video_codecs": ["VP8", "H264"],
            "media_region": "us1",
            "audio_only": false,
            "empty_room_timeout": 5,
            "unused_room_timeout": 5,
            "large_room": false,
            "url": url,
            "links": {
                "participants": format!("{url}/Participants"),
                "recordings": format!("{url}/Recordings"),
                "recording_rules": format!("{url}/RecordingRules"),
                "transcriptions": format!("{url}/Transcriptions"),
            },
        })
    }

    /// A public key credential as the Accounts API shows it
    /// (`accounts.v1.credential.credential_public_key`: no key material), if `sid` is one.
    pub fn public_key_json(&self, base: &str, sid: &str) -> Option<Value> {
        let index = self.public_key_sids.iter().position(|s| s == sid)?;
        let created = datetime(BASE_TIME - 86_400 * (30 + index as i64));
        Some(json!({
            "sid": sid,
            "account_sid": self.account_sid,
            "friendly_name": format!("twilio-media-fs emulator key #{index}"),
            "date_created": created,
            "date_updated": created,
            "url": format!("{base}/v1/Credentials/PublicKeys/{sid}"),
        }))
    }

    /// The JSON of `/v1/RecordingSettings/Default` or `/v1/CompositionSettings/Default`.
    pub fn settings_json(&self, base: &str, kind: MediaKind) -> Value {
        json!({
            "account_sid": self.account_sid,
            "friendly_name": "twilio-media-fs emulator",
            "aws_credentials_sid": null,
            "aws_s3_url": null,
            "aws_storage_enabled": false,
            "encryption_key_sid": self.encryption_key_sid,
            "encryption_enabled": self.encryption_enabled,
            "url": format!("{base}{}", kind.settings_path().unwrap_or_default()),
        })
    }
}

/// Serves an object encrypted by someone else (openssl, in the tests) as it is:
/// `NAME.EXT.enc` is the ciphertext, `NAME.EXT.headers` the response headers as
/// `curl -D` saves them. Its `x-amz-meta-*` headers are served verbatim, whatever they
/// say (the emulator does not check them, nor know the plaintext), and a
/// `Content-Length` larger than the file makes an object shorter than its length:
/// every body is cut where the file ends.
fn add_pre_encrypted(b: &mut Builder<'_>, path: &Path, stem: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let Some(ext) = stem
        .rsplit_once('.')
        .and_then(|(_, e)| crate::names::extension(e))
    else {
        return Ok(());
    };
    let headers_path = path.with_file_name(format!("{stem}.headers"));
    let text = std::fs::read_to_string(&headers_path)
        .with_context(|| format!("{}: cannot read", headers_path.display()))?;
    let pairs = crate::crypto::parse_saved_headers(&text);
    let header = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    // S3 user metadata as it comes (`x-amz-meta-…`), and the envelope's names written
    // without that prefix, given it.
    const BARE: [&str; 8] = [
        "x-amz-key",
        "x-amz-iv",
        "x-amz-unencrypted-content-length",
        "x-amz-matdesc",
        "x-amz-key-v2",
        "x-amz-cek-alg",
        "x-amz-wrap-alg",
        "x-amz-tag-len",
    ];
    let meta: Vec<(String, String)> = pairs
        .iter()
        .filter_map(|(k, v)| {
            let k = k.to_ascii_lowercase();
            let name = if k.starts_with("x-amz-meta-") {
                k
            } else if BARE.contains(&k.as_str()) {
                format!("x-amz-meta-{k}")
            } else {
                return None;
            };
            Some((name, v.trim().to_owned()))
        })
        .collect();
    let cipher = Bytes::from(
        std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?,
    );
    let name = format!("data:{stem}.enc");
    let stored = cipher.len() as u64;
    let claimed = header("content-length").and_then(|v| v.parse::<u64>().ok());
    let len = claimed.filter(|&c| c > stored).unwrap_or(stored);
    let plaintext_len = meta
        .iter()
        .find(|(k, _)| k == "x-amz-meta-x-amz-unencrypted-content-length")
        .and_then(|(_, v)| v.parse::<u64>().ok());
    let object = Arc::new(StoredObject {
        len,
        content: Content::Stored(cipher),
        envelope: (!meta.is_empty()).then_some(EnvelopeHeaders::Verbatim(meta)),
        content_type: content_type(ext),
        etag: format!("\"{}\"", &sid("", &format!("etag:{name}"))),
        available: (len > stored).then_some(stored),
        cek: None,
        iv: [0; 16],
    });
    let size = plaintext_len.unwrap_or(len.saturating_sub(1));
    let served = Some((object, None, Some(0), size));
    if MediaKind::of_extension(ext) == Some(MediaKind::Recording) {
        b.recording(&name, "completed", track_of(ext), 2, "data", 0, served);
    }
    Ok(())
}

/// The container, codec and track type of a recording made from a file: `.mka` holds
/// an Opus track, `.mkv` a VP8 one.
fn track_of(ext: &'static str) -> (&'static str, &'static str, &'static str) {
    if ext == "mka" {
        (ext, "OPUS", "audio")
    } else {
        (ext, "VP8", "video")
    }
}

/// Adds every `*.mka`/`*.mkv` (recording), `*.mp4`/`*.webm` (composition) and `*.wav`
/// (call recording) in `dir`, encrypting each, and every pre-encrypted `*.mka.enc`/`*.mkv.enc` with its headers.
/// Then each subdirectory becomes a room ([`add_data_room`]).
fn add_data_dir(b: &mut Builder<'_>, dir: &Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let mut all: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list the --data directory", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    all.sort();
    let (rooms, paths): (Vec<_>, Vec<_>) = all.into_iter().partition(|p| p.is_dir());
    let paths: Vec<_> = paths.into_iter().filter(|p| p.is_file()).collect();
    for path in paths {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(stem) = file_name.strip_suffix(".enc") {
            add_pre_encrypted(b, &path, stem)?;
            continue;
        }
        let ext = path.extension().and_then(|e| e.to_str());
        if ext.is_some_and(|e| e.eq_ignore_ascii_case("wav")) {
            add_wav(b, &path, &file_name)?;
            continue;
        }
        let Some(ext) = ext.and_then(crate::names::extension) else {
            continue;
        };
        let Some(kind) = MediaKind::of_extension(ext) else {
            continue;
        };
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let plain = Bytes::from(
            std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?,
        );
        let name = format!("data:{file}");
        let object = b.store(&name, ext, plain.clone(), encrypted(0));
        let len = plain.len() as u64;
        match kind {
            MediaKind::Recording => {
                b.recording(
                    &name,
                    "completed",
                    track_of(ext),
                    2,
                    "data",
                    0,
                    Some((object, Some(plain), Some(0), len)),
                );
            }
            MediaKind::Composition => b.composition(&name, ext, 2, object, plain),
            // `.wav` files are taken above.
            MediaKind::Voice => {}
        }
    }
    for room in rooms {
        add_data_room(b, &room)?;
    }
    Ok(())
}

/// The `offset` (ms) of every recording of a room of the data directory: one
/// media-server segment, as Twilio would give them.
pub const DATA_ROOM_OFFSET_MS: u64 = crate::emulator::meeting::MEETING_OFFSET_MS;

/// `<participant>-<audio|video>[-<n>]`: (participant, audio|video); `None` otherwise.
fn track_of_name(stem: &str) -> Option<(&str, &'static str)> {
    let stem = match stem.rsplit_once('-') {
        Some((rest, n)) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => rest,
        _ => stem,
    };
    let (participant, kind) = stem.rsplit_once('-')?;
    let kind = ["audio", "video"].into_iter().find(|&k| k == kind)?;
    (!participant.is_empty()).then_some((participant, kind))
}

/// A subdirectory `<dir>/<room>/` of the data directory: the room `<room>` (its SID
/// `sid("RM", "room:<room>")`), and each `<participant>-<audio|video>[-<n>].mka|mkv`
/// in it a recording of that participant, track `<participant>-<audio|video>`, its
/// codec read from the file's CodecID, its offset [`DATA_ROOM_OFFSET_MS`], created
/// when its first block starts (the container's start time: whatever the file says).
/// Other files are left out.
fn add_data_room(b: &mut Builder<'_>, dir: &Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
        return Ok(());
    };
    if name.starts_with('.') {
        return Ok(());
    }
    let room_sid = sid("RM", &format!("room:{name}"));
    anyhow::ensure!(
        b.rooms.iter().all(|r| r.sid != room_sid),
        "{}: the emulator already has a room named {name}",
        dir.display()
    );
    let created = BASE_TIME - 3600 + 600 * b.rooms.len() as i64;
    let room = b.rooms.len();
    b.rooms.push(Room {
        sid: room_sid,
        unique_name: name.clone(),
        created,
    });
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list the room directory", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    for path in paths {
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension()
                .and_then(|e| e.to_str())
                .and_then(|e| ["mka", "mkv"].into_iter().find(|&k| k == e)),
        ) else {
            continue;
        };
        let Some((participant, kind)) = track_of_name(stem) else {
            continue;
        };
        let plain = Bytes::from(
            std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?,
        );
        let probe = super::matroska::probe(&plain)
            .with_context(|| format!("{}: not a Matroska file", path.display()))?;
        let (codec, media_type) = probe.twilio_codec().with_context(|| {
            format!(
                "{}: codec {} is none of OPUS, PCMU, VP8, H264",
                path.display(),
                probe.codec_id
            )
        })?;
        anyhow::ensure!(
            media_type == kind,
            "{}: named {kind} but holds {media_type} ({codec})",
            path.display()
        );
        let file = format!("data:{name}/{stem}.{ext}");
        let object = b.store(&file, ext, plain.clone(), encrypted(0));
        let len = plain.len() as u64;
        b.recording(
            &file,
            "completed",
            (ext, codec, media_type),
            room,
            participant,
            probe.duration_secs(),
            Some((object, Some(plain), Some(0), len)),
        );
        let m = b.media.last_mut().expect("just pushed");
        m.participant_sid = room_participant_sid(&name, participant);
        m.track_name = format!("{participant}-{kind}");
        m.offset = DATA_ROOM_OFFSET_MS;
        // Whole seconds, to the nearest: an Opus file starts a few ms early (pre-skip).
        m.created = created + probe.start().max(0.0).round() as i64;
    }
    Ok(())
}

/// The SID of participant `name` of room `room` (a participant SID is a room's).
pub fn room_participant_sid(room: &str, name: &str) -> String {
    sid("PA", &format!("participant:{room}:{name}"))
}

/// A `*.wav` file of the data directory becomes an encrypted call recording of a call
/// of its own; its channel count is read from its header (1 if it has none).
fn add_wav(b: &mut Builder<'_>, path: &Path, file_name: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let channels = match bytes.get(..24) {
        Some(h) if &h[..4] == b"RIFF" && &h[8..12] == b"WAVE" => {
            u16::from_le_bytes([h[22], h[23]]).clamp(1, 2)
        }
        _ => 1,
    };
    let name = format!("data:{file_name}");
    let info = CallInfo {
        call_sid: call_sid(&name),
        conference_sid: None,
        channels,
        source: "RecordVerb",
        spec_spelling: false,
    };
    b.call_recording(&name, info, WavSource::File(Bytes::from(bytes)), Some(0));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_deterministic_and_well_formed() {
        let a = sid("RT", "sample:audio-opus");
        assert_eq!(a, sid("RT", "sample:audio-opus"));
        assert_eq!(a.len(), 34);
        assert!(
            a[2..]
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, sid("RT", "sample:audio-pcmu"));
    }

    #[test]
    fn rfc2822_dates_parse_back() {
        for secs in [0, BASE_TIME, BASE_TIME + 86_400 * 19, 951_782_400 + 3661] {
            let text = rfc2822(secs);
            let parsed = crate::twilio::parse_rfc2822(&text).unwrap();
            let back = parsed.duration_since(std::time::UNIX_EPOCH).unwrap();
            assert_eq!(back.as_secs() as i64, secs, "{text}");
        }
        assert_eq!(
            rfc2822(BASE_TIME + 86_400 * 19),
            "Fri, 20 Nov 2026 10:00:00 +0000"
        );
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
    }

    /// The call recordings: what each is, made lazily (the catalog builds at once), and
    /// their plaintext is the WAV the storage seals.
    #[test]
    fn call_recordings() {
        let key = seal::test_key(1);
        let config = EmulatorConfig {
            public_keys: vec![key.to_public_key()],
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let cat = Catalog::build(&config).unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let calls: Vec<&Media> = cat.media.iter().filter(|m| m.call.is_some()).collect();
        assert_eq!(calls.len(), CALL_RECORDINGS.len());
        assert!(
            calls
                .iter()
                .all(|m| m.voice_object().unwrap().stored.get().is_none())
        );
        let by = |name: &str| cat.get(&sid("RE", name)).unwrap();
        let long = by("voice:long");
        assert_eq!(long.duration, 600);
        assert_eq!(long.size, Some(44 + 2 * 8000 * 2 * 600));
        assert_eq!(long.object.as_ref().unwrap().len, long.size.unwrap() + 16);
        let (mono, dual) = (by("voice:mono"), by("voice:dual"));
        assert_eq!(
            mono.call,
            dual.call.clone().map(|c| CallInfo {
                channels: 1,
                source: "RecordVerb",
                ..c
            })
        );
        let voice = dual.voice_object().unwrap();
        let (stored, envelope) = (voice.stored(), voice.envelope().unwrap());
        assert_eq!(
            envelope.public_key_sid.as_deref(),
            Some(public_key_sid(0).as_str())
        );
        let mut keys = crate::crypto::PrivateKeys::new();
        keys.add("test", key);
        let (cek, _) = keys.unwrap_oaep(&envelope.wrapped_key).unwrap();
        let plain = cat.plaintext(&dual.sid).unwrap();
        assert_eq!(stored.len(), plain.len() + 16);
        assert_eq!(
            seal::seal_gcm_with(&cek, &envelope.iv, &plain),
            stored.to_vec()
        );
        assert!(
            by("voice:unencrypted")
                .voice_object()
                .unwrap()
                .envelope()
                .is_none()
        );
    }

    /// A `*.wav` of the data directory becomes an encrypted call recording of its own
    /// call, its channels read from its header.
    #[test]
    fn data_dir_wav_files_are_call_recordings() {
        let dir = std::env::temp_dir().join(format!("tmfs-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let wav = Tone::new(2, 1, 5).wav();
        std::fs::write(dir.join("mine.wav"), &wav).unwrap();
        let config = EmulatorConfig {
            public_keys: vec![seal::test_key(1).to_public_key()],
            data_dir: Some(dir.clone()),
            ..Default::default()
        };
        let cat = Catalog::build(&config);
        std::fs::remove_dir_all(&dir).unwrap();
        let cat = cat.unwrap();
        let m = cat.get(&sid("RE", "data:mine.wav")).unwrap();
        let call = m.call.as_ref().unwrap();
        assert_eq!((call.channels, m.duration), (2, 1));
        assert_eq!(call.call_sid, call_sid("data:mine.wav"));
        assert!(m.voice_object().unwrap().encrypted());
        assert_eq!(cat.plaintext(&m.sid).unwrap(), wav);
    }

    #[test]
    fn datetimes() {
        assert_eq!(datetime(0), "1970-01-01T00:00:00Z");
        assert_eq!(datetime(BASE_TIME), "2026-11-01T10:00:00Z");
        assert_eq!(datetime(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(
            datetime(BASE_TIME + 86_400 * 61 + 3661),
            "2027-01-01T11:01:01Z"
        );
    }
}
