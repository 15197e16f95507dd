//! Directory listings of `serve`, for people (HTML) and programs (JSON), and the player
//! page of one file.
//!
//! Pure: rendering only, from a [`Listing`] the server gathered. The HTML is one
//! self-contained page (inline CSS, no script, nothing fetched from anywhere but this
//! server), with a `<video>`/`<audio>` player for what browsers play and a `vlc` line
//! for everything. Every text from the API is escaped.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::headers::Player;
use crate::human;

/// One directory's page.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    /// The directory's path, ending with `/`.
    pub path: String,
    /// The directory's own fields from the API (a room's: `unique_name`, `status`, …).
    pub attributes: BTreeMap<String, String>,
    pub entries: Vec<Item>,
}

/// One entry of a listing.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub name: String,
    /// Absolute path on this server (percent-encoding is never needed: names are SIDs).
    pub href: String,
    /// `directory`, `recording`, `composition` or `call recording`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Bytes; exact once the file was opened (or sized), else the stored size.
    pub size: Option<u64>,
    pub size_exact: bool,
    /// The API's `date_created` (RFC 3339), else the entry's time as an HTTP date.
    pub date: Option<String>,
    pub codec: Option<String>,
    /// Seconds.
    pub duration: Option<u64>,
    pub content_type: Option<&'static str>,
    /// How a browser plays it.
    pub player: Option<Player>,
    /// All the API's fields of the entry (`user.twilio.*` of the mount).
    pub attributes: BTreeMap<String, String>,
}

/// The listing as JSON.
pub fn json(listing: &Listing) -> String {
    serde_json::to_string_pretty(listing).expect("a listing serializes")
}

/// The listing as an HTML page. `origin` (`http://host:port`) makes the `vlc` lines.
/// A room's page (`/rooms/RM…/`) embeds a player for each file a browser plays.
pub fn html(listing: &Listing, origin: &str) -> String {
    let title = format!("twilio-media-fs: {}", listing.path);
    let mut page = head(&title);
    let _ = writeln!(page, "<h1>{}</h1>", breadcrumbs(&listing.path));
    if !listing.attributes.is_empty() {
        page.push_str("<dl>");
        for (k, v) in &listing.attributes {
            let _ = write!(page, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
        }
        page.push_str("</dl>\n");
    }
    let room = listing.path.starts_with("/rooms/") && listing.path.len() > "/rooms/".len();
    if room {
        let playable: Vec<&Item> = listing
            .entries
            .iter()
            .filter(|i| matches!(i.player, Some(Player::Video | Player::Audio)))
            .collect();
        if !playable.is_empty() {
            page.push_str("<section class=players>\n");
            for item in playable {
                let _ = write!(page, "<figure><figcaption>{}</figcaption>", esc(&item.name));
                player_tag(&mut page, item, false);
                page.push_str("</figure>\n");
            }
            page.push_str("</section>\n");
        }
    }
    if listing.entries.iter().any(|i| matroska(&i.name)) {
        page.push_str(MATROSKA_NOTE);
    }
    page.push_str(
        "<table>\n<thead><tr><th>name</th><th>type</th><th>codec</th><th>duration</th>\
         <th>size</th><th>date</th><th></th></tr></thead>\n<tbody>\n",
    );
    if listing.path != "/" {
        page.push_str("<tr><td><a href=\"../\">../</a></td><td colspan=6></td></tr>\n");
    }
    for item in &listing.entries {
        let slash = if item.kind == "directory" { "/" } else { "" };
        let size = match (item.size, item.size_exact) {
            (Some(n), true) => human::size(n),
            (Some(n), false) => format!("≈{}", human::size(n)),
            (None, _) => String::new(),
        };
        let _ = write!(
            page,
            "<tr><td><a href=\"{href}\">{name}{slash}</a></td><td>{kind}</td><td>{codec}</td>\
             <td>{duration}</td><td class=n>{size}</td><td>{date}</td><td>",
            href = esc(&item.href),
            name = esc(&item.name),
            kind = esc(item.kind),
            codec = esc(item.codec.as_deref().unwrap_or("")),
            duration = item.duration.map(human::clock).unwrap_or_default(),
            date = esc(item.date.as_deref().unwrap_or("")),
        );
        if item.kind != "directory" {
            if matches!(item.player, Some(Player::Video | Player::Audio)) {
                let _ = write!(page, "<a href=\"{}?play\">play</a> ", esc(&item.href));
            }
            let _ = write!(page, "<code>{}</code>", esc(&vlc_line(origin, &item.href)));
        }
        page.push_str("</td></tr>\n");
    }
    page.push_str("</tbody></table>\n");
    let _ = write!(
        page,
        "<p class=foot>{} entries · <a href=\"?format=json\">JSON</a></p>\n</body></html>\n",
        listing.entries.len()
    );
    page
}

/// The page of one file with its player (or, when browsers do not play it, the `vlc`
/// line only).
pub fn player_page(item: &Item, origin: &str) -> String {
    let mut page = head(&format!("twilio-media-fs: {}", item.href));
    let _ = writeln!(page, "<h1>{}</h1>", breadcrumbs(&item.href));
    if matches!(item.player, Some(Player::Video | Player::Audio)) {
        player_tag(&mut page, item, true);
        if matroska(&item.name) {
            page.push_str(MATROSKA_NOTE);
        }
    } else {
        page.push_str(
            "<p>Browsers do not play this file (its container or codec); open it in VLC:</p>",
        );
    }
    let _ = write!(
        page,
        "<p><code>{}</code> · <a href=\"{}\" download>download</a></p>\n<dl>",
        esc(&vlc_line(origin, &item.href)),
        esc(&item.href)
    );
    for (k, v) in &item.attributes {
        let _ = write!(page, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
    }
    page.push_str("</dl>\n</body></html>\n");
    page
}

const MATROSKA_NOTE: &str = "<p class=foot>Matroska (.mka, .mkv) plays in Chromium, Chrome \
    and Edge; in Firefox or Safari, use the <code>vlc</code> line.</p>\n";

fn matroska(name: &str) -> bool {
    name.ends_with(".mka") || name.ends_with(".mkv")
}

fn player_tag(page: &mut String, item: &Item, autoplay: bool) {
    let tag = if item.player == Some(Player::Audio) {
        "audio"
    } else {
        "video"
    };
    let _ = write!(
        page,
        "<{tag} controls preload=\"{}\"{} src=\"{}\"></{tag}>",
        if autoplay { "auto" } else { "none" },
        if autoplay { " autoplay" } else { "" },
        esc(&item.href),
    );
}

fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width\"><title>{}</title>\n<style>\
         body{{font:15px system-ui,sans-serif;margin:1.5em;color:#222}}\
         table{{border-collapse:collapse}}td,th{{padding:.25em .8em;text-align:left;\
         border-bottom:1px solid #ddd;white-space:nowrap}}td.n{{text-align:right}}\
         code{{font-size:12px;color:#555}}video{{max-width:640px;background:#000}}\
         figure{{display:inline-block;margin:0 1em 1em 0}}dt{{font-weight:600;float:left;\
         clear:left;width:11em}}dd{{margin-left:12em}}.foot{{color:#777}}\
         </style></head><body>\n",
        esc(title)
    )
}

/// `/rooms/RM1/` as links to `/`, `/rooms/` and itself.
fn breadcrumbs(path: &str) -> String {
    let mut out = String::from("<a href=\"/\">twilio-media-fs</a> /");
    let mut at = String::from("/");
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        at.push_str(part);
        let dir = i + 1 < parts.len() || path.ends_with('/');
        if dir {
            at.push('/');
        }
        let _ = write!(out, " <a href=\"{}\">{}</a>", esc(&at), esc(part));
        if dir {
            out.push_str(" /");
        }
    }
    out
}

/// The command that plays `href` in VLC.
pub fn vlc_line(origin: &str, href: &str) -> String {
    format!("vlc {origin}{href}")
}

/// HTML-escapes text for element content and quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, player: Option<Player>) -> Item {
        Item {
            name: name.into(),
            href: format!("/rooms/RM1/{name}"),
            kind: "recording",
            size: Some(1536),
            size_exact: true,
            date: Some("2026-01-31T10:00:00Z".into()),
            codec: Some("<b>OPUS</b>".into()),
            duration: Some(3725),
            content_type: Some("audio/x-matroska"),
            player,
            attributes: BTreeMap::from([("track_name".into(), "<script>x</script>".into())]),
        }
    }

    #[test]
    fn a_room_page_escapes_and_embeds_players() {
        let listing = Listing {
            path: "/rooms/RM1/".into(),
            attributes: BTreeMap::from([("unique_name".into(), "a&b".into())]),
            entries: vec![item("RT1.mka", Some(Player::Audio)), item("RT2.mka", None)],
        };
        let page = html(&listing, "http://127.0.0.1:8080");
        assert!(page.contains("<audio controls preload=\"none\" src=\"/rooms/RM1/RT1.mka\">"));
        assert!(
            !page.contains("src=\"/rooms/RM1/RT2.mka\""),
            "not playable: no player"
        );
        assert!(page.contains("vlc http://127.0.0.1:8080/rooms/RM1/RT2.mka"));
        assert!(page.contains("a&amp;b"));
        assert!(page.contains("&lt;b&gt;OPUS&lt;/b&gt;"));
        assert!(!page.contains("<b>OPUS"));
        assert!(page.contains("1:02:05"));
        assert!(page.contains("1.5 KiB"));
        assert!(!page.contains("<script"), "no script at all");
        let player = player_page(&listing.entries[0], "http://h");
        assert!(player.contains("autoplay"));
        assert!(player.contains("&lt;script&gt;"));
        let v: serde_json::Value = serde_json::from_str(&json(&listing)).unwrap();
        assert_eq!(v["entries"][0]["type"], "recording");
        assert_eq!(v["entries"][0]["player"], "audio");
        assert_eq!(v["attributes"]["unique_name"], "a&b");
    }

    #[test]
    fn breadcrumbs_link_each_parent() {
        assert_eq!(
            breadcrumbs("/rooms/RM1/"),
            "<a href=\"/\">twilio-media-fs</a> / <a href=\"/rooms/\">rooms</a> / \
             <a href=\"/rooms/RM1/\">RM1</a> /"
        );
        assert!(
            breadcrumbs("/recordings/RT1.mka")
                .ends_with("<a href=\"/recordings/RT1.mka\">RT1.mka</a>")
        );
    }
}
