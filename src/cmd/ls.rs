//! `ls`: list recordings, compositions or rooms as a table, or as JSON lines.

use std::io::Write;

use anyhow::Context;
use serde::Serialize;

use super::config::twilio_client;
use crate::cli::{ListWhat, LsArgs};
use crate::twilio::{CompositionFilter, RecordingFilter, RoomFilter, TwilioClient};

pub fn run(args: LsArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let twilio = twilio_client(&args.api)?;
        let mut out = std::io::stdout().lock();
        match args.what {
            ListWhat::Recordings => recordings(&twilio, &args, &mut out).await,
            ListWhat::Compositions => compositions(&twilio, &args, &mut out).await,
            ListWhat::Rooms => rooms(&twilio, &args, &mut out).await,
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

async fn recordings(
    twilio: &TwilioClient,
    args: &LsArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut table = Table::new(&[
        "SID", "ROOM", "TYPE", "CODEC", "DURATION", "SIZE", "STATUS", "CREATED",
    ]);
    for room in rooms_or_all(args) {
        let filter = RecordingFilter {
            status: args.status.clone(),
            grouping_sid: room,
            ..Default::default()
        };
        for r in twilio.recordings(&filter).await? {
            if args.json {
                json_line(out, &r)?;
                continue;
            }
            table.row(vec![
                r.sid.clone(),
                r.room().unwrap_or("-").to_owned(),
                r.r#type.clone().unwrap_or_default(),
                r.codec.clone().unwrap_or_default(),
                duration(r.duration),
                size(r.size),
                r.status.clone().unwrap_or_default(),
                r.date_created.clone().unwrap_or_default(),
            ]);
        }
    }
    table.print(out, args.json)
}

async fn compositions(
    twilio: &TwilioClient,
    args: &LsArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut table = Table::new(&[
        "SID",
        "ROOM",
        "FORMAT",
        "RESOLUTION",
        "DURATION",
        "SIZE",
        "STATUS",
        "CREATED",
    ]);
    for room in rooms_or_all(args) {
        let filter = CompositionFilter {
            status: args.status.clone(),
            room_sid: room,
            ..Default::default()
        };
        for c in twilio.compositions(&filter).await? {
            if args.json {
                json_line(out, &c)?;
                continue;
            }
            table.row(vec![
                c.sid.clone(),
                c.room_sid.clone().unwrap_or_else(|| "-".into()),
                c.format.clone().unwrap_or_default(),
                c.resolution.clone().unwrap_or_default(),
                duration(c.duration),
                size(c.size),
                c.status.clone().unwrap_or_default(),
                c.date_created.clone().unwrap_or_default(),
            ]);
        }
    }
    table.print(out, args.json)
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
        .await?
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
    let Some(b) = bytes else { return "-".into() };
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < units.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[unit])
    }
}

/// `text` with its control characters escaped (`\u{1b}`, `\n`), the rest as it is.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
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
    fn control_characters_are_escaped() {
        let mut t = Table::new(&["SID"]);
        t.row(vec!["RT\u{1b}[2J\nRTforged\0é".into()]);
        let mut out = Vec::new();
        t.print(&mut out, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "SID\nRT\\u{1b}[2J\\nRTforged\\u{0}é\n");
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
