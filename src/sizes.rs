//! The cache of exact plaintext sizes, in memory and on disk, so that `stat` shows a
//! file's exact size on every mount after the first time it was opened (or sized)
//! anywhere on this machine, without fetching anything.
//!
//! Before an object's headers are read, the only size known is the one the API lists:
//! the stored (ciphertext) length, 1–16 bytes more than the plaintext (DESIGN.md §1).
//! Backup tools that compare size and mtime (rsync, restic, borg, rclone) would see
//! every file change size between one mount and the next. So the read core records,
//! here, every exact size it learns ([`SizeCache::record`]), and the filesystem shows a
//! recorded size as exact ([`SizeCache::lookup`]).
//!
//! One entry is a SID, the object's stored length and its plaintext length: nothing
//! else. No key, IV, header or byte of plaintext is ever held here, so the file helps
//! nobody decrypt anything (DESIGN.md §3). An entry is only believed when the two
//! lengths agree with each other (PKCS#7: `stored − 16 ≤ plain < stored`, stored a
//! multiple of 16; for a call recording, GCM: `plain = stored − 16`; or equal, for an
//! object stored unencrypted) and, for an entry read from disk, when the size the API
//! lists for the SID now is one of the two (or between): a changed object never gets a
//! stale size. The Voice API lists no size: a call recording's entry from disk is
//! believed as it is (a completed call recording never changes).
//!
//! The file, `DIR/sizes`, is text: a header line ([`HEADER`]), then `SID STORED PLAIN`
//! lines ([`parse`], [`render`]: pure, property-tested). It is written whole, to a
//! temporary file (mode 0600, in a directory made 0700) renamed over the old one, under
//! an exclusive `flock` of `DIR/sizes.lock`, merged with what other mounts wrote
//! meanwhile; a save is made at most every [`SAVE_AFTER`] after something new was
//! learned, and once more when the mount ends ([`SizeCache::save`]). A file that is not
//! ours, or damaged, costs one WARN and is ignored; a directory that cannot be written
//! costs one WARN: neither ever fails a mount or a read.
//!
//! Where the file lives ([`default_dir`]): `$CACHE_DIRECTORY` (systemd's
//! `CacheDirectory=`), else `$XDG_CACHE_HOME/twilio-media-fs`, else, for root,
//! `/var/cache/twilio-media-fs` (the unit's directory: a boot-time fstab mount, which
//! has no `HOME`, and the same mount from a root shell share it), else
//! `~/.cache/twilio-media-fs`.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The first line of a sizes file; anything else is not ours (or a format to come).
pub const HEADER: &str = "# twilio-media-fs sizes v1: SID stored-length plaintext-length";

/// The file's name in the cache directory.
pub const FILE_NAME: &str = "sizes";

/// The lock file's name: an exclusive `flock` on it while a mount merges and writes.
const LOCK_NAME: &str = "sizes.lock";

/// How long after learning a new size the file is saved: one write for a burst of
/// opens (an `rsync` of a whole account), not one per file.
pub const SAVE_AFTER: Duration = Duration::from_secs(2);

/// A file larger than this is not read (about two million entries): it is not ours.
const MAX_FILE: u64 = 128 << 20;

/// An object's two lengths, checked to agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Stored (ciphertext) length.
    pub stored: u64,
    /// Exact plaintext length.
    pub plain: u64,
}

impl Size {
    /// The pair, if a plaintext of `plain` bytes can be stored as `stored` bytes: padded
    /// by PKCS#7 (1 to 16 bytes, to a multiple of 16), or stored as it is.
    pub fn new(stored: u64, plain: u64) -> Option<Self> {
        let padded = stored.is_multiple_of(16) && plain < stored && stored - plain <= 16;
        (padded || plain == stored).then_some(Self { stored, plain })
    }

    /// [`Self::new`] for the object of `sid`: a call recording's (`RE…`) is GCM's, the
    /// plaintext and its 16-byte tag, or stored as it is.
    pub fn of(sid: &str, stored: u64, plain: u64) -> Option<Self> {
        if is_call_sid(sid) {
            return (plain.checked_add(16) == Some(stored) || plain == stored)
                .then_some(Self { stored, plain });
        }
        Self::new(stored, plain)
    }
}

/// Why a sizes file was not used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a twilio-media-fs sizes file (its first line is not {HEADER:?})")]
pub struct NotOurs;

/// What a sizes file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub entries: BTreeMap<String, Size>,
    /// Lines that were not a valid entry (damage): skipped.
    pub skipped: usize,
}

/// Reads a sizes file's text: the [`HEADER`], then one `SID STORED PLAIN` per line.
/// A line that is not a recording or composition SID with two lengths that agree
/// ([`Size::new`]) is skipped and counted; the last line for a SID wins.
pub fn parse(text: &str) -> Result<Parsed, NotOurs> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(NotOurs);
    }
    let mut out = Parsed::default();
    for line in lines.filter(|l| !l.is_empty()) {
        match parse_line(line) {
            Some((sid, size)) => {
                out.entries.insert(sid.to_owned(), size);
            }
            None => out.skipped += 1,
        }
    }
    Ok(out)
}

fn parse_line(line: &str) -> Option<(&str, Size)> {
    let mut fields = line.split(' ');
    let (sid, stored, plain) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() || !is_media_sid(sid) {
        return None;
    }
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    Some((sid, Size::of(sid, number(stored)?, number(plain)?)?))
}

/// A recording's, composition's or call recording's SID: the only keys a sizes file has.
fn is_media_sid(sid: &str) -> bool {
    crate::names::is_sid(sid) && ["RT", "CJ", "RE"].iter().any(|p| sid.starts_with(p))
}

/// A call recording's SID: its API lists no size.
fn is_call_sid(sid: &str) -> bool {
    sid.starts_with("RE")
}

/// The text of a sizes file holding `entries` (which [`parse`] reads back).
pub fn render<'a>(entries: impl IntoIterator<Item = (&'a str, Size)>) -> String {
    let mut text = format!("{HEADER}\n");
    for (sid, size) in entries {
        text.push_str(&format!("{sid} {} {}\n", size.stored, size.plain));
    }
    text
}

/// Where the sizes file lives by default (see the module docs), from this process's
/// environment and user; `None` when there is no such place (not root, no `HOME`).
pub fn default_dir() -> Option<PathBuf> {
    // SAFETY: geteuid cannot fail and has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    default_dir_from(|name| std::env::var_os(name), root)
}

/// [`default_dir`] for the environment `env` gives.
pub fn default_dir_from(
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
    root: bool,
) -> Option<PathBuf> {
    // Set, and absolute (the XDG rule: a relative path is ignored).
    let var = |name: &str| env(name).map(PathBuf::from).filter(|p| p.is_absolute());
    // systemd may name several directories, colon-separated: the first is ours.
    let systemd = env("CACHE_DIRECTORY").and_then(|v| {
        let first = v.to_str()?.split(':').next()?.to_owned();
        Some(PathBuf::from(first)).filter(|p| p.is_absolute())
    });
    systemd
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("twilio-media-fs")))
        .or_else(|| root.then(|| PathBuf::from("/var/cache/twilio-media-fs")))
        .or_else(|| var("HOME").map(|h| h.join(".cache/twilio-media-fs")))
}

/// A size the cache knows, and whether this process learned it (from the storage) or
/// read it from disk (believed only while the listing agrees).
#[derive(Debug, Clone, Copy)]
struct Known {
    size: Size,
    learned_here: bool,
}

#[derive(Default)]
struct Table {
    entries: HashMap<String, Known>,
    /// Something was learned since the last save.
    unsaved: bool,
}

/// Exact plaintext sizes by SID: what this process learned and what earlier mounts
/// saved. Shared by the read core (which records) and the filesystem (which looks up).
pub struct SizeCache {
    /// `DIR/sizes`, or `None` for a cache kept in memory only.
    dir: Option<PathBuf>,
    table: Mutex<Table>,
    /// One save at a time in this process (other processes: the lock file).
    saving: Mutex<()>,
    /// A save is scheduled ([`SAVE_AFTER`]) and has not started yet.
    scheduled: AtomicBool,
    /// Saving failed once and said so: later failures are DEBUG.
    warned: AtomicBool,
}

impl SizeCache {
    /// A cache in memory only (`--no-metadata-cache`): sizes learned are shown as exact
    /// for the life of the mount, and never written.
    pub fn in_memory() -> Self {
        Self::new(None)
    }

    fn new(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            table: Mutex::default(),
            saving: Mutex::default(),
            scheduled: AtomicBool::new(false),
            warned: AtomicBool::new(false),
        }
    }

    /// The cache kept in `dir`, loaded from `dir/sizes` if it exists. Never fails: a
    /// file that cannot be read or is not ours is one WARN, and the cache starts empty
    /// (it is replaced at the next save).
    pub fn open(dir: &Path) -> Self {
        let cache = Self::new(Some(dir.to_owned()));
        if let Some(parsed) = cache.read_file() {
            let mut table = cache.table.lock().expect("sizes lock");
            for (sid, size) in parsed.entries {
                let learned_here = false;
                table.entries.insert(sid, Known { size, learned_here });
            }
            tracing::debug!(
                "{} exact sizes from {}",
                table.entries.len(),
                dir.join(FILE_NAME).display()
            );
        }
        cache
    }

    /// The directory the cache is saved in, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// How many sizes are known.
    pub fn len(&self) -> usize {
        self.table.lock().expect("sizes lock").entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The exact plaintext size of `sid`, when known and, for a size read from disk,
    /// when the API's `listed` size for it is between the entry's plaintext and stored
    /// lengths, both included (Twilio lists the stored length; a listing may also give
    /// the plaintext's, or guess it from the stored length). A size this process
    /// learned is believed whatever is listed.
    pub fn lookup(&self, sid: &str, listed: Option<u64>) -> Option<u64> {
        let table = self.table.lock().expect("sizes lock");
        let known = table.entries.get(sid)?;
        let agrees = listed.is_some_and(|l| (known.size.plain..=known.size.stored).contains(&l));
        let unlisted = is_call_sid(sid) && listed.is_none();
        (known.learned_here || agrees || unlisted).then_some(known.size.plain)
    }

    /// Records what the storage just said of `sid`. Lengths that do not agree
    /// ([`Size::new`]) are not recorded. When the cache has a directory and this is
    /// news, a save is scheduled [`SAVE_AFTER`] from now (on the tokio runtime, if
    /// this runs on one; otherwise at the next [`Self::save`]).
    pub fn record(self: &Arc<Self>, sid: &str, stored: u64, plain: u64) {
        let Some(size) = Size::of(sid, stored, plain) else {
            return;
        };
        if !is_media_sid(sid) {
            return;
        }
        {
            let mut table = self.table.lock().expect("sizes lock");
            let known = Known {
                size,
                learned_here: true,
            };
            match table.entries.insert(sid.to_owned(), known) {
                // Known already (from disk: now confirmed, and saved as it is).
                Some(old) if old.size == size => return,
                Some(old) => tracing::warn!(
                    "{sid}: the size cache said {} bytes ({} stored), the storage says {plain} \
                     ({stored} stored): corrected",
                    old.size.plain,
                    old.size.stored
                ),
                None => {}
            }
            table.unsaved = true;
        }
        self.schedule_save();
    }

    fn schedule_save(self: &Arc<Self>) {
        if self.dir.is_none() || self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.scheduled.store(false, Ordering::Release);
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            tokio::time::sleep(SAVE_AFTER).await;
            let _ = tokio::task::spawn_blocking(move || this.save()).await;
        });
    }

    /// Writes what is new to disk, merged with what other mounts saved meanwhile
    /// (theirs are kept, ours win where both know a SID). Blocking file I/O: call it
    /// off the async runtime's threads, or at the end. Nothing to do when nothing is
    /// new; a failure is logged (one WARN per process), never returned.
    pub fn save(&self) {
        let Some(dir) = &self.dir else { return };
        let _one = self.saving.lock().expect("saving lock");
        self.scheduled.store(false, Ordering::Release);
        let ours: Vec<(String, Size)> = {
            let mut table = self.table.lock().expect("sizes lock");
            if !table.unsaved {
                return;
            }
            table.unsaved = false;
            table
                .entries
                .iter()
                .filter(|(_, k)| k.learned_here)
                .map(|(sid, k)| (sid.clone(), k.size))
                .collect()
        };
        match self.merge_and_write(dir, ours) {
            Ok(theirs) => {
                let mut table = self.table.lock().expect("sizes lock");
                for (sid, size) in theirs {
                    let learned_here = false;
                    table
                        .entries
                        .entry(sid)
                        .or_insert(Known { size, learned_here });
                }
            }
            Err(e) => {
                // Try again at the next save.
                self.table.lock().expect("sizes lock").unsaved = true;
                let what = format!(
                    "cannot save exact sizes in {}: {e} (sizes will be approximate \
                     until files are opened again on the next mount; --metadata-cache DIR \
                     picks another directory, --no-metadata-cache turns this off)",
                    dir.display()
                );
                if self.warned.swap(true, Ordering::Relaxed) {
                    tracing::debug!("{what}");
                } else {
                    tracing::warn!("{what}");
                }
            }
        }
    }

    /// Under the lock: reads the file, adds `ours` to it, writes it back atomically.
    /// Returns what the file had that we did not.
    fn merge_and_write(
        &self,
        dir: &Path,
        ours: Vec<(String, Size)>,
    ) -> std::io::Result<BTreeMap<String, Size>> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(dir.join(LOCK_NAME))?;
        // Without locks (some network filesystems) the write is still whole, only a
        // merge with a mount saving at the same instant may be lost.
        let _locked = match Flock::exclusive(&lock) {
            Err(e) if [libc::ENOLCK, libc::EOPNOTSUPP].contains(&e.raw_os_error().unwrap_or(0)) => {
                None
            }
            locked => Some(locked?),
        };
        let mut all = self.read_file().map(|p| p.entries).unwrap_or_default();
        let mut theirs = all.clone();
        for (sid, size) in ours {
            theirs.remove(&sid);
            all.insert(sid, size);
        }
        let text = render(all.iter().map(|(sid, size)| (sid.as_str(), *size)));
        write_atomically(dir, FILE_NAME, text.as_bytes())?;
        Ok(theirs)
    }

    /// `dir/sizes` parsed, or `None` (missing: quietly; unreadable or not ours: one
    /// WARN).
    fn read_file(&self) -> Option<Parsed> {
        let path = self.dir.as_ref()?.join(FILE_NAME);
        let text = match read_limited(&path) {
            Ok(Some(text)) => text,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(
                    "ignoring the size cache {}: {e} (it is rewritten at the next save)",
                    path.display()
                );
                return None;
            }
        };
        match parse(&text) {
            Ok(parsed) => {
                if parsed.skipped > 0 {
                    tracing::warn!(
                        "the size cache {} has {} damaged lines: ignored",
                        path.display(),
                        parsed.skipped
                    );
                }
                Some(parsed)
            }
            Err(e) => {
                tracing::warn!(
                    "ignoring {}: {e}; it is replaced at the next save",
                    path.display()
                );
                None
            }
        }
    }
}

impl Drop for SizeCache {
    fn drop(&mut self) {
        self.save();
    }
}

/// The text of `path`, `None` if it does not exist; an error if it is not a regular
/// file, is larger than [`MAX_FILE`] or is not UTF-8.
fn read_limited(path: &Path) -> std::io::Result<Option<String>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_FILE {
        return Err(std::io::Error::other(format!(
            "{} bytes: larger than a size cache gets",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE).read_to_end(&mut bytes)?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| std::io::Error::other("not text"))
}

/// Writes `dir/name` whole or not at all: a new file (mode 0600, never through a
/// symlink), synced, renamed over the old one.
fn write_atomically(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp); // left by a crashed run of the same pid
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_data()?;
        std::fs::rename(&tmp, dir.join(name))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// An exclusive `flock`, released when dropped (or when the file closes).
struct Flock<'a>(&'a std::fs::File);

impl<'a> Flock<'a> {
    fn exclusive(file: &'a std::fs::File) -> std::io::Result<Self> {
        use std::os::fd::AsRawFd;
        loop {
            // SAFETY: flock on a descriptor this function borrows, open for its life.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Self(file));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl Drop for Flock<'_> {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as above.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use proptest::prelude::*;

    use super::*;

    fn rt(n: u64) -> String {
        format!("RT{n:032x}")
    }

    #[test]
    fn sizes_must_agree() {
        // Padded: 1..=16 bytes, to a multiple of 16.
        assert!(
            Size::new(16, 0).is_some(),
            "an empty plaintext is one block"
        );
        assert!(Size::new(16, 15).is_some());
        assert!(Size::new(5008, 5000).is_some());
        assert!(Size::new(5008, 4992).is_some());
        assert!(Size::new(5008, 4991).is_none(), "17 bytes of padding");
        assert!(Size::new(5008, 5008).is_some(), "stored unencrypted");
        let re = "RE0123456789abcdef0123456789abcdef";
        assert!(
            Size::of(re, 5017, 5001).is_some(),
            "GCM: the tag, no padding"
        );
        assert!(Size::of(re, 5017, 5017).is_some(), "stored unencrypted");
        assert!(Size::of(re, 5017, 5002).is_none());
        assert!(
            Size::of(re, 5008, 5000).is_none(),
            "no PKCS#7 for a call recording"
        );
        assert!(Size::of(re, 15, 0).is_none());
        let rt = "RT0123456789abcdef0123456789abcdef";
        assert!(Size::of(rt, 5017, 5001).is_none(), "no GCM for a recording");
        assert!(Size::new(5007, 5000).is_none(), "not a multiple of 16");
        assert!(Size::new(5000, 5001).is_none());
        assert!(Size::new(0, 0).is_some(), "an empty unencrypted object");
        assert!(Size::new(u64::MAX, 0).is_none());
    }

    #[test]
    fn a_file_reads_back_and_bad_lines_are_skipped() {
        let (a, b) = (rt(1), format!("CJ{:032x}", 2));
        let text = render([
            (a.as_str(), Size::new(5008, 5000).unwrap()),
            (b.as_str(), Size::new(32, 17).unwrap()),
        ]);
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.entries.len(), 2);
        assert_eq!(parsed.entries[&a], Size::new(5008, 5000).unwrap());
        assert_eq!(parsed.skipped, 0);
        let damaged = format!(
            "{text}{a} 5008 4000\nRM{:032x} 16 1\n{a} 16\n{a} 16 1 1\n{a} +16 1\n\n\
             garbage\n{b} 99999999999999999999999 1\n{b} 64 60",
            3
        );
        let parsed = parse(&damaged).unwrap();
        assert_eq!(parsed.skipped, 7, "{damaged}");
        assert_eq!(parsed.entries[&a], Size::new(5008, 5000).unwrap());
        assert_eq!(parsed.entries[&b], Size::new(64, 60).unwrap(), "last wins");
        for foreign in ["", "\n", "{}", "RT… 1 2\n", &text[1..], "\u{feff}# x"] {
            assert_eq!(parse(foreign), Err(NotOurs), "{foreign:?}");
        }
    }

    #[test]
    fn default_dir_order() {
        let env = |pairs: &'static [(&str, &str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let dir = |pairs, root| default_dir_from(env(pairs), root);
        let full = &[
            ("CACHE_DIRECTORY", "/var/cache/twilio-media-fs:/var/cache/x"),
            ("XDG_CACHE_HOME", "/home/u/.xdg"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(dir(full, false), Some("/var/cache/twilio-media-fs".into()));
        assert_eq!(
            dir(&full[1..], false),
            Some("/home/u/.xdg/twilio-media-fs".into())
        );
        assert_eq!(
            dir(&full[2..], false),
            Some("/home/u/.cache/twilio-media-fs".into())
        );
        assert_eq!(
            dir(&[("XDG_CACHE_HOME", "rel"), ("HOME", "/h")], false),
            Some("/h/.cache/twilio-media-fs".into()),
            "a relative XDG_CACHE_HOME is ignored"
        );
        assert_eq!(dir(&[("HOME", "")], false), None);
        assert_eq!(dir(&[], false), None);
        // Root: the system's cache, whether HOME is set (a shell) or not (boot).
        assert_eq!(dir(&[], true), Some("/var/cache/twilio-media-fs".into()));
        assert_eq!(
            dir(&full[2..], true),
            Some("/var/cache/twilio-media-fs".into())
        );
        assert_eq!(
            dir(&full[1..], true),
            Some("/home/u/.xdg/twilio-media-fs".into()),
            "unless XDG_CACHE_HOME says"
        );
    }

    #[test]
    fn learned_sizes_survive_a_new_cache_and_disagreeing_listings_are_not_believed() {
        let dir = tempfile::tempdir().unwrap();
        let cache_dir = dir.path().join("a/b");
        let first = Arc::new(SizeCache::open(&cache_dir));
        first.record(&rt(1), 5008, 5000);
        first.record(&rt(2), 5008, 4000); // do not agree: not recorded
        first.record("RM0123456789abcdef0123456789abcdef", 16, 1); // not media
        assert_eq!(first.lookup(&rt(1), None), Some(5000), "learned here");
        assert_eq!(first.len(), 1);
        first.save();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&cache_dir), 0o700);
        assert_eq!(mode(&cache_dir.join(FILE_NAME)), 0o600);

        let second = SizeCache::open(&cache_dir);
        assert_eq!(
            second.lookup(&rt(1), Some(5008)),
            Some(5000),
            "stored listed"
        );
        assert_eq!(
            second.lookup(&rt(1), Some(5000)),
            Some(5000),
            "plain listed"
        );
        assert_eq!(second.lookup(&rt(1), Some(5007)), Some(5000), "stored - 1");
        assert_eq!(second.lookup(&rt(1), Some(6000)), None, "a changed object");
        assert_eq!(second.lookup(&rt(1), Some(4999)), None, "a changed object");
        assert_eq!(second.lookup(&rt(1), None), None, "nothing listed");
        assert_eq!(second.lookup(&rt(3), Some(5008)), None);
        // Only sizes on disk: the SID and two numbers per line.
        let text = std::fs::read_to_string(cache_dir.join(FILE_NAME)).unwrap();
        assert_eq!(text, format!("{HEADER}\n{} 5008 5000\n", rt(1)));
    }

    #[test]
    fn two_caches_saving_in_turn_keep_both_their_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let a = Arc::new(SizeCache::open(dir.path()));
        let b = Arc::new(SizeCache::open(dir.path()));
        a.record(&rt(1), 32, 20);
        b.record(&rt(2), 48, 40);
        a.save();
        b.save();
        assert_eq!(
            b.lookup(&rt(1), Some(32)),
            Some(20),
            "b read a's at its save"
        );
        a.record(&rt(3), 16, 0);
        a.save();
        let c = SizeCache::open(dir.path());
        for (n, stored, plain) in [(1, 32, 20), (2, 48, 40), (3, 16, 0)] {
            assert_eq!(c.lookup(&rt(n), Some(stored)), Some(plain), "{n}");
        }
    }

    #[test]
    fn concurrent_savers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let path = dir.path().to_owned();
                std::thread::spawn(move || {
                    let cache = Arc::new(SizeCache::open(&path));
                    for i in 0..25 {
                        cache.record(&rt(t * 100 + i), 1024, 1010);
                        cache.save();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(SizeCache::open(dir.path()).len(), 100);
    }

    #[test]
    fn a_foreign_or_damaged_file_is_ignored_then_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, b"\x00\xff not ours").unwrap();
        let cache = Arc::new(SizeCache::open(dir.path()));
        assert!(cache.is_empty());
        cache.record(&rt(1), 32, 31);
        cache.save();
        assert_eq!(SizeCache::open(dir.path()).len(), 1);
        // A symlink is not followed, a directory is not a file: both ignored.
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
        assert!(SizeCache::open(dir.path()).is_empty());
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(SizeCache::open(dir.path()).is_empty());
    }

    #[test]
    fn an_unwritable_directory_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let cache = Arc::new(SizeCache::open(&file.join("sub")));
        cache.record(&rt(1), 32, 31);
        cache.save(); // warns
        assert_eq!(cache.lookup(&rt(1), None), Some(31));
    }

    #[test]
    fn in_memory_writes_nothing() {
        let cache = Arc::new(SizeCache::in_memory());
        cache.record(&rt(1), 32, 31);
        cache.save();
        assert_eq!(cache.dir(), None);
        assert_eq!(cache.lookup(&rt(1), Some(999)), Some(31));
    }

    fn entry() -> impl Strategy<Value = (String, Size)> {
        (any::<u128>(), prop::bool::ANY, 0u64..1 << 40, 1u64..=16).prop_map(
            |(id, composition, plain, pad)| {
                let sid = format!("{}{id:032x}", if composition { "CJ" } else { "RT" });
                let stored = if pad == 16 && plain % 16 != 0 {
                    plain // stored unencrypted
                } else {
                    crate::crypto::window::ciphertext_len(plain)
                };
                (sid, Size::new(stored, plain).unwrap())
            },
        )
    }

    proptest! {
        /// What is rendered parses back to the same entries, nothing skipped.
        #[test]
        fn render_then_parse_is_identity(entries in prop::collection::btree_map(
            any::<u128>().prop_map(|n| format!("RT{n:032x}")),
            entry().prop_map(|(_, s)| s),
            0..50,
        )) {
            let text = render(entries.iter().map(|(k, v)| (k.as_str(), *v)));
            let parsed = parse(&text).unwrap();
            prop_assert_eq!(parsed.skipped, 0);
            prop_assert_eq!(parsed.entries, entries);
        }

        /// Any bytes after the header: no panic, and every entry kept is consistent.
        #[test]
        fn damage_never_yields_an_inconsistent_size(
            good in prop::collection::vec(entry(), 0..10),
            noise in prop::collection::vec(any::<u8>(), 0..300),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut text = render(good.iter().map(|(k, v)| (k.as_str(), *v))).into_bytes();
            let at = cut.index(text.len() + 1);
            text.splice(at.max(HEADER.len() + 1)..at.max(HEADER.len() + 1), noise);
            if let Ok(text) = String::from_utf8(text)
                && let Ok(parsed) = parse(&text)
            {
                for (sid, size) in parsed.entries {
                    prop_assert!(is_media_sid(&sid));
                    prop_assert_eq!(Size::new(size.stored, size.plain), Some(size));
                }
            }
        }

        /// The lengths that agree are exactly those a PKCS#7 encryption (or none) gives.
        #[test]
        fn agreement_is_pkcs7(stored in 0u64..10_000, plain in 0u64..10_000) {
            let agrees = Size::new(stored, plain).is_some();
            let padded = crate::crypto::window::ciphertext_len(plain) == stored;
            prop_assert_eq!(agrees, padded || stored == plain);
        }
    }
}
