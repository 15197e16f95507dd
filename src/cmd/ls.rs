//! `ls`: list recordings, compositions or rooms as a table, or as JSON lines.
//!
//! Recordings and compositions are one listing over [`MediaKind`]; the kinds differ
//! only in two of its columns ([`media_header`]). `--json` prints each resource as the
//! API sent it.
//!
//! `--encryption` adds a last column, ENCRYPTED (an `"encrypted"` field in JSON), from
//! the first 16 bytes of each completed object and their headers, judged as the read
//! core judges them ([`encryption_cell`]). The table without it is unchanged, so that
//! scripts that read its columns keep working.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use futures_util::{StreamExt, stream};
use serde::Serialize;

use super::config::{access_error, twilio_client};
use super::terminal::printable;
use crate::cli::{ListWhat, LsArgs};
use crate::crypto::{CryptoError, Envelope};
use crate::object::{Fetched, ObjectClient};
use crate::read::unencrypted::looks_like_media;
use crate::twilio::{Media, MediaFilter, MediaKind, RoomFilter, TwilioClient};

pub fn run(args: LsArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let twilio = Arc::new(twilio_client(&args.api)?);
        let mut out = std::io::stdout().lock();
        match args.what {
            ListWhat::Recordings => media(&twilio, MediaKind::Recording, &args, &mut out).await,
            ListWhat::Compositions => media(&twilio, MediaKind::Composition, &args, &mut out).await,
            ListWhat::Rooms => rooms(&twilio, &args, &mut out).await,
            ListWhat::Voice => media(&twilio, MediaKind::Voice, &args, &mut out).await,
        }
    })
}

/// `--room` values, or one pass with no room filter.
fn rooms_or_all(args: &LsArgs) -> Vec<Option<String>> {
    if args.rooms.is_empty() {
        vec![None]
    } else {
        args.rooms.iter().cloned().map(Some).collect()
    }
}

async fn media(
    twilio: &Arc<TwilioClient>,
    kind: MediaKind,
    args: &LsArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut header = media_header(kind).to_vec();
    if args.encryption {
        header.push("ENCRYPTED");
    }
    let mut table = Table::new(&header);
    let objects = args.encryption.then(|| ObjectClient::new(twilio.clone()));
    for room in rooms_or_all(args) {
        let filter = MediaFilter {
            status: args.status.clone(),
            room,
            ..Default::default()
        };
        let listed = twilio.media(kind, &filter).await;
        let listed = listed.map_err(|e| access_error(twilio, e, kind.plural()))?;
        let cells: Vec<Option<&str>> = match &objects {
            Some(objects) => {
                let cells = stream::iter(&listed)
                    .map(|m| encryption_of(objects, m))
                    .buffered(ENCRYPTION_AT_ONCE);
                cells.map(Some).collect().await
            }
            None => vec![None; listed.len()],
        };
        for (m, cell) in listed.iter().zip(cells) {
            if args.json {
                match cell {
                    Some(cell) => {
                        let mut value = serde_json::to_value(m)?;
                        if let Some(fields) = value.as_object_mut() {
                            fields.insert("encrypted".into(), cell.into());
                        }
                        json_line(out, &value)?;
                    }
                    None => json_line(out, m)?,
                }
                continue;
            }
            let mut row = media_row(m);
            row.extend(cell.map(str::to_owned));
            table.row(row);
        }
    }
    table.print(out, args.json)
}

/// Objects whose encryption `--encryption` checks at once.
const ENCRYPTION_AT_ONCE: usize = 8;

/// The ENCRYPTED cell of `m`: `-` unless completed, else its first 16 bytes judged
/// ([`encryption_cell`]).
async fn encryption_of(objects: &ObjectClient, m: &Media) -> &'static str {
    if !m.status_is("completed") {
        return "-";
    }
    // A call recording says it in its resource; one said not to be must be a WAV.
    if m.says_encrypted() == Some(true) {
        return "yes";
    }
    let got = objects.get_range(&m.media_ref(), 0, 16).await;
    if let Err(e) = &got {
        tracing::warn!("{}: cannot tell whether it is encrypted: {e}", m.sid());
    }
    encryption_cell(got.as_ref().ok())
}

/// What the first GET of an object says of its encryption, as the read core judges it
/// ([`crate::read::unencrypted`]): `yes` with an envelope (either format), `no` for
/// unencrypted media, `damaged` for no envelope on bytes that are not media (or an
/// envelope that does not parse), `unknown` when nothing was fetched.
fn encryption_cell(first: Option<&Fetched>) -> &'static str {
    let Some(first) = first else {
        return "unknown";
    };
    let headers = first.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    match Envelope::from_headers(headers) {
        Ok(Some(_)) | Err(CryptoError::UnsupportedV2 { .. }) => "yes",
        Ok(None) if looks_like_media(&first.data, first.total_len) => "no",
        Ok(None) | Err(_) => "damaged",
    }
}

/// The columns of a listing of `kind`: the same six for both, and between ROOM and
/// DURATION the kind's own two (a recording's track type and codec, a composition's
/// format and resolution), in the order [`media_row`] fills them.
fn media_header(kind: MediaKind) -> [&'static str; 8] {
    let room = if kind.is_video() { "ROOM" } else { "CALL" };
    let [a, b] = match kind {
        MediaKind::Recording => ["TYPE", "CODEC"],
        MediaKind::Composition => ["FORMAT", "RESOLUTION"],
        MediaKind::Voice => ["CHANNELS", "SOURCE"],
    };
    ["SID", room, a, b, "DURATION", "SIZE", "STATUS", "CREATED"]
}

/// One row of a listing, under [`media_header`] of its kind.
fn media_row(m: &Media) -> Vec<String> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let [a, b] = match m {
        Media::Recording(r) => [text(&r.r#type), text(&r.codec)],
        Media::Composition(c) => [text(&c.format), text(&c.resolution)],
        Media::Voice(r) => [
            r.channels.map(|c| c.to_string()).unwrap_or_default(),
            text(&r.source),
        ],
    };
    vec![
        m.sid().to_owned(),
        m.room().unwrap_or("-").to_owned(),
        a,
        b,
        duration(m.duration()),
        size(m.size()),
        m.status().unwrap_or_default().to_owned(),
        m.date_created().unwrap_or_default().to_owned(),
    ]
}

async fn rooms(twilio: &TwilioClient, args: &LsArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let mut table = Table::new(&["SID", "NAME", "STATUS", "CREATED", "ENDED"]);
    // The API lists only in-progress rooms unless told otherwise; recordings live in
    // completed ones.
    let filter = RoomFilter {
        status: Some(args.status.clone().unwrap_or_else(|| "completed".into())),
        ..Default::default()
    };
    let wanted = |sid: &str| args.rooms.is_empty() || args.rooms.iter().any(|r| r == sid);
    for room in twilio
        .rooms(&filter)
        .await
        .map_err(|e| access_error(twilio, e, "rooms"))?
        .into_iter()
        .filter(|r| wanted(&r.sid))
    {
        if args.json {
            json_line(out, &room)?;
            continue;
        }
        table.row(vec![
            room.sid.clone(),
            room.unique_name.clone().unwrap_or_default(),
            room.status.clone().unwrap_or_default(),
            room.date_created.clone().unwrap_or_default(),
            room.end_time.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    table.print(out, args.json)
}

fn json_line(out: &mut impl Write, value: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// `m:ss` or `h:mm:ss`.
fn duration(seconds: Option<u64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s >= 3600 => format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60),
        Some(s) => format!("{}:{:02}", s / 60, s % 60),
    }
}

/// Bytes in binary units, one decimal.
fn size(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "-".into(), crate::human::size)
}

/// Left-aligned columns sized to their widest cell.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row. Cells hold the API's text: control characters (a newline that would
    /// forge a row, an escape sequence that would drive the terminal) are shown escaped.
    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.iter().map(|c| printable(c)).collect());
    }

    fn print(&self, out: &mut impl Write, json: bool) -> anyhow::Result<()> {
        if json {
            return Ok(());
        }
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            writeln!(out, "{}", line.join("  ").trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(duration(Some(65)), "1:05");
        assert_eq!(duration(Some(3725)), "1:02:05");
        assert_eq!(duration(None), "-");
        assert_eq!(size(Some(512)), "512 B");
        assert_eq!(size(Some(1536)), "1.5 KiB");
        assert_eq!(size(Some(3 << 30)), "3.0 GiB");
    }

    #[test]
    fn each_kind_shows_its_own_two_columns() {
        use crate::twilio::{Composition, GroupingSids, Recording};
        assert_eq!(
            media_header(MediaKind::Recording),
            [
                "SID", "ROOM", "TYPE", "CODEC", "DURATION", "SIZE", "STATUS", "CREATED"
            ]
        );
        assert_eq!(
            media_header(MediaKind::Composition),
            [
                "SID",
                "ROOM",
                "FORMAT",
                "RESOLUTION",
                "DURATION",
                "SIZE",
                "STATUS",
                "CREATED"
            ]
        );
        let r = Media::from(Recording {
            sid: "RT1".into(),
            r#type: Some("audio".into()),
            codec: Some("OPUS".into()),
            grouping_sids: Some(GroupingSids {
                room_sid: Some("RM1".into()),
                participant_sid: None,
            }),
            duration: Some(65),
            size: Some(1536),
            status: Some("completed".into()),
            date_created: Some("2026-11-01T10:00:00Z".into()),
            ..Default::default()
        });
        assert_eq!(
            media_row(&r),
            [
                "RT1",
                "RM1",
                "audio",
                "OPUS",
                "1:05",
                "1.5 KiB",
                "completed",
                "2026-11-01T10:00:00Z"
            ]
        );
        let c = Media::from(Composition {
            sid: "CJ1".into(),
            format: Some("mp4".into()),
            resolution: Some("640x360".into()),
            ..Default::default()
        });
        assert_eq!(
            media_row(&c),
            ["CJ1", "-", "mp4", "640x360", "-", "-", "", ""]
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut t = Table::new(&["SID"]);
        t.row(vec!["RT\u{1b}[2J\nRTforged\0é".into()]);
        let mut out = Vec::new();
        t.print(&mut out, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "SID\nRT\\u{1b}[2J\\nRTforged\\u{0}é\n");
    }

    /// Issue 16, item 6: the ENCRYPTED column judges as the read core does.
    #[test]
    fn encryption_cells() {
        let fetched = |headers: &[(&str, &str)], data: &[u8]| Fetched {
            data: bytes::Bytes::copy_from_slice(data),
            total_len: 1000,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let iv = "AAAAAAAAAAAAAAAAAAAAAA==";
        let envelope = [
            ("x-amz-meta-x-amz-key", "a2V5"),
            ("x-amz-meta-x-amz-iv", iv),
        ];
        let ebml = [
            0x1A, 0x45, 0xDF, 0xA3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ];
        let random = [
            0x9C, 0x01, 0x77, 0xE3, 0x55, 0x10, 0xAB, 0xCD, 0, 1, 2, 3, 4, 5, 6, 7,
        ];
        assert_eq!(encryption_cell(Some(&fetched(&envelope, &random))), "yes");
        assert_eq!(encryption_cell(Some(&fetched(&[], &ebml))), "no");
        assert_eq!(encryption_cell(Some(&fetched(&[], &random))), "damaged");
        let broken = [("x-amz-meta-x-amz-key", "a2V5")];
        assert_eq!(encryption_cell(Some(&fetched(&broken, &random))), "damaged");
        assert_eq!(encryption_cell(None), "unknown");
    }

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["A", "BB"]);
        t.row(vec!["xxx".into(), "y".into()]);
        let mut out = Vec::new();
        t.print(&mut out, false).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "A    BB\nxxx  y\n");
    }
}
