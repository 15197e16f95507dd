//! The filesystem, without FUSE: the directory tree, inodes, attributes, extended
//! attributes, directory handles and file handles, as plain functions returning
//! `Result<_, Error>`, so that tests drive it directly (`tests/fs.rs`, no kernel).
//! [`fuse`] is the thin layer that connects it to the kernel.
//!
//! ```text
//! /recordings/RTxx.mka|mkv      completed recordings
//! /compositions/CJxx.mp4|webm   completed compositions
//! /rooms/RMxx/                  the recordings and compositions of one room
//! /voice/RExx.wav               completed Voice call recordings
//! /calls/CAxx/                  the call recordings of one call
//! ```
//!
//! Rooms and calls are the two [`Group`]s: a directory per room (of the Video kinds'
//! files) or per call (of call recordings'), made from the listings.
//!
//! Directories are listed lazily, on first use (a lookup of the directory, or of a
//! name in it), through the [`Api`], and listed again once older than `refresh`. A
//! listing runs in the background (one per kind at a time, shared by all who wait for
//! it) and has a deadline for all its pages together (`listing_deadline`): past it, or
//! on any failure, the previous listing stays in use. Nothing waits behind a listing
//! it does not need: `getattr` never makes a request, and a lookup of a name of the
//! current listing answers from it at once, however old (stale-while-revalidate). What
//! does wait (a `readdir`, a name not listed, a directory never listed, a room's
//! attributes) answers within the read core's answer bound, EIO past it as a read
//! does ([`Error::TimedOut`]), the listing going on so that a later try succeeds; a
//! directory listed before waits [`REFRESH_GRACE`] at most, then answers from its
//! previous listing. A lookup of a SID not listed fetches that one resource, within
//! bounds: misses are remembered for `refresh` and such fetches are rationed
//! ([`unlisted`]), so made-up names cannot spend the account's API rate.
//!
//! The inode table holds the files of the current listings (and the SIDs looked up
//! since), the directories of their rooms, and the inodes the kernel still holds: each
//! lookup counts one, `forget` takes them back, an open file holds its inode until
//! released. An inode with none of these is dropped, so the table is bounded by the
//! listings plus what the kernel holds, however the listings change. A SID keeps its
//! inode while it is in the table; inode numbers are never reused, so a SID listed
//! again after it was dropped gets a new one. Names come from SIDs and each kind's extensions only ([`MediaKind`],
//! [`crate::names`]). Each open directory handle reads one snapshot of its entries,
//! taken when it is read from the start, so that a listing refreshed between two
//! `readdir` chunks neither skips nor repeats an entry.
//!
//! A file's size is exact once the read core knows it ([`ReadCore::known_size`]: from
//! an open, from an earlier mount's size cache, or sized in the background after a
//! listing with `exact_sizes`); before, it is the listed (stored) size, marked not
//! final, or 0 while none is listed or the listed one is larger than a file can be
//! ([`MAX_FILE_SIZE`]); a later listing that gives a usable size is taken. Times stay the same from one mount to the next, for backup tools that
//! compare them: a file's is its media's date, a directory's the newest date of the
//! files under it ([`UNIX_EPOCH`] while none are; always, for the root, whose entries
//! never change).
//!
//! Reads are one call into the read core: `open` makes a [`Handle`], `read` asks it.
//! This module owns the mapping from inodes and handles to the core's objects and
//! handles, and nothing of the read path itself.
//!
//! Extended attributes (`user.twilio.*`) are the API's own fields: a file's come with
//! its listing ([`Media::xattrs`]) and `encrypted` with its first GET; a room
//! directory's need the room ([`Api::room`]), fetched on the first `getxattr` or
//! `listxattr` of that directory and kept (never by `getattr` or `readdir`). A file is
//! listed in its kind's directory and in its room's: one inode with two links, so `du`
//! counts it once.
//!
//! `/.stats` is what the mount is doing, as JSON ([`Stats`]). It is not listed by
//! `readdir` (so `cp -r`, `rsync` and `find` see media only) but opens by name. Its
//! text is made at `open` and served from the handle, with direct I/O, so every `cat`
//! reads one consistent, current snapshot whatever size `stat` showed.

mod error;
pub mod fuse;
pub mod unlisted;

pub use error::Error;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

use crate::crypto::Verdict;
use crate::names;
use crate::read::{Failure, Handle, ObjectReader, ReadCore, Stats};
use crate::twilio::{Api, Media, MediaFilter, MediaKind, MediaRef};

/// Extended attributes, `user.twilio.` left off the names.
pub type Xattrs = Arc<[(&'static str, String)]>;

pub const ROOT: u64 = 1;
pub const RECORDINGS: u64 = 2;
pub const COMPOSITIONS: u64 = 3;
pub const ROOMS: u64 = 4;
/// `/.stats`.
pub const STATS: u64 = 5;
pub const VOICE: u64 = 6;
pub const CALLS: u64 = 7;
/// Its name in the root directory.
pub const STATS_NAME: &str = ".stats";
const FIRST_DYNAMIC: u64 = 16;
/// The longest a `readdir` (or a lookup of a name not listed) waits for the refresh of
/// a listing made before, before it answers from that listing (or, for a name, fetches
/// its SID): long enough for a page or two of an API answering as usual, so that an
/// `ls` after the refresh interval shows what is new; short enough that a slow API is
/// not felt. Never more than half the answer bound.
pub const REFRESH_GRACE: Duration = Duration::from_secs(1);
/// The largest size a file can show: the kernel's (`loff_t`, `MAX_LFS_FILESIZE`). FUSE
/// answers every `stat` of a larger size with EIO, so a larger size, listed or
/// learned, shows as 0 (not final) instead.
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// What the mount shows.
#[derive(Debug, Clone)]
pub struct FsConfig {
    pub uid: u32,
    pub gid: u32,
    /// Relist a directory when its listing is older than this.
    pub refresh: Duration,
    /// The longest one whole listing (all its pages) may take.
    pub listing_deadline: Duration,
    /// Only these rooms (empty: all).
    pub rooms: Vec<String>,
    /// Only media created at or after this date (RFC 3339).
    pub since: Option<String>,
    /// After each listing, size the files whose exact size is not known yet, in the
    /// background ([`ReadCore::size_all`]).
    pub exact_sizes: bool,
}

pub type Result<T> = std::result::Result<T, Error>;

/// What `open` gave: the handle, and whether reads must bypass the page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    pub fh: u64,
    /// `.stats`: its content changes, so the kernel must not cache it (nor trust its size).
    pub direct_io: bool,
    /// Whether the kernel may keep the pages it cached at earlier opens. Not for a call
    /// recording whose tag has not verified: pages of its end read before (a seek, a
    /// `tail`) were served unauthenticated, and a reader going in order must meet the
    /// tag's check at the end, not those pages.
    pub keep_cache: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// Attributes of one inode, before FUSE dresses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub kind: Kind,
    pub size: u64,
    pub mtime: SystemTime,
    /// 0o555 for directories, 0o444 for files.
    pub perm: u16,
    /// Directories 2; a file 2 when it is in its room's directory too, else 1.
    pub nlink: u32,
    /// Whether `size` and `mtime` are final: a file whose exact size is known, a
    /// directory listed (or the root).
    pub exact: bool,
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub ino: u64,
    pub kind: Kind,
    pub name: String,
}

/// A recording or composition as a file.
pub struct MediaFile {
    pub ino: u64,
    pub name: String,
    pub kind: MediaKind,
    pub room: Option<String>,
    /// The size the API lists (the stored length), if it lists one no larger than
    /// [`MAX_FILE_SIZE`].
    listed_size: Option<u64>,
    mtime: SystemTime,
    xattrs: Xattrs,
    object: Arc<ObjectReader>,
}

enum Node {
    Dir(Dir),
    File(Arc<MediaFile>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Dir {
    Root,
    /// `recordings/`, `compositions/` or `voice/`.
    Media(MediaKind),
    /// `rooms/` or `calls/`.
    Groups(Group),
    /// `rooms/RM…/` or `calls/CA…/`.
    Group(Group, String),
}

/// How files are gathered in directories beside their kind's: by room (`rooms/RM…/`,
/// recordings and compositions) or by call (`calls/CA…/`, call recordings). A file's
/// group is [`Media::room`]: a room SID, or a call SID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    Rooms,
    Calls,
}

impl Group {
    /// The kinds whose files it gathers.
    fn kinds(self) -> &'static [MediaKind] {
        match self {
            Group::Rooms => &MediaKind::VIDEO,
            Group::Calls => &[MediaKind::Voice],
        }
    }

    /// The SID prefix of its directories: a room's (`RM`) or a call's (`CA`). A file
    /// whose room or call is not such a SID is in no directory of the group.
    fn prefix(self) -> &'static str {
        match self {
            Group::Rooms => "RM",
            Group::Calls => "CA",
        }
    }

    /// The group a kind's files are gathered in.
    fn of(kind: MediaKind) -> Group {
        if kind.is_video() {
            Group::Rooms
        } else {
            Group::Calls
        }
    }
}

/// One kind's listing: its files in the API's order, and when it was made.
#[derive(Default)]
struct Listed {
    files: Vec<u64>,
    at: Option<Instant>,
}

/// The newest time of the files under each directory, from the listings: the
/// directories' mtimes ([`State::reindex`]).
#[derive(Default)]
struct Newest {
    kinds: HashMap<MediaKind, SystemTime>,
    groups: HashMap<Group, SystemTime>,
    /// Room or call SID → the newest of its files.
    rooms: HashMap<String, SystemTime>,
}

/// What holds a dynamic inode besides the listings: the kernel's lookups not forgotten
/// yet, and the files open through it.
#[derive(Default, Debug, Clone, Copy)]
struct Held {
    lookups: u64,
    opens: u64,
}

/// A listing being made in the background, shared by all who wait for it.
type Refresh = Shared<BoxFuture<'static, Result<()>>>;

#[derive(Default)]
struct State {
    nodes: HashMap<u64, Arc<Node>>,
    /// SID → inode, for files; room SID → inode, for room directories.
    by_sid: HashMap<String, u64>,
    listed: HashMap<MediaKind, Listed>,
    /// The files of the current listings, all kinds ([`State::reindex`]).
    current: HashSet<u64>,
    /// Dynamic inodes the kernel holds (looked up, not forgotten) or that are open; an
    /// inode with neither is absent.
    held: HashMap<u64, Held>,
    /// Room SID → its directory's attributes, fetched once on first use; concurrent
    /// first askers share one fetch, and a failed one is tried again next time.
    room_xattrs: HashMap<String, Arc<tokio::sync::OnceCell<Xattrs>>>,
    newest: Newest,
    next_ino: u64,
}

pub struct TwilioFs {
    config: FsConfig,
    api: Arc<dyn Api>,
    core: Arc<ReadCore>,
    /// Itself, for the listings it runs in the background.
    me: Weak<TwilioFs>,
    state: Mutex<State>,
    /// The listing of each kind being made now, if one is: concurrent `ls` and lookups
    /// share it instead of listing twice. Locked before `state` when both are.
    refreshing: Mutex<HashMap<MediaKind, Refresh>>,
    /// Open files: handle → its inode and the core's handle.
    handles: Mutex<HashMap<u64, (u64, Arc<Handle>)>>,
    /// Open directories and the snapshot of entries each reads (empty until read).
    dirs: Mutex<HashMap<u64, Arc<[Entry]>>>,
    /// Open `.stats` handles and the snapshot each serves.
    stats_handles: Mutex<HashMap<u64, Bytes>>,
    next_handle: AtomicU64,
    /// What lookups of unlisted SIDs may still fetch ([`unlisted`]).
    unlisted: Mutex<unlisted::Unlisted>,
}

impl TwilioFs {
    /// The filesystem; shared, because it runs its listings in the background.
    pub fn new(config: FsConfig, api: Arc<dyn Api>, core: Arc<ReadCore>) -> Arc<Self> {
        let mut state = State {
            next_ino: FIRST_DYNAMIC,
            ..Default::default()
        };
        let dirs = [
            (ROOT, Dir::Root),
            (RECORDINGS, Dir::Media(MediaKind::Recording)),
            (COMPOSITIONS, Dir::Media(MediaKind::Composition)),
            (ROOMS, Dir::Groups(Group::Rooms)),
            (VOICE, Dir::Media(MediaKind::Voice)),
            (CALLS, Dir::Groups(Group::Calls)),
        ];
        for (ino, dir) in dirs {
            state.nodes.insert(ino, Arc::new(Node::Dir(dir)));
        }
        Arc::new_cyclic(|me| Self {
            api,
            core,
            me: me.clone(),
            state: Mutex::new(state),
            refreshing: Mutex::new(HashMap::new()),
            handles: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            stats_handles: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            unlisted: Mutex::new(unlisted::Unlisted::new(config.refresh, Instant::now())),
            config,
        })
    }

    pub fn config(&self) -> &FsConfig {
        &self.config
    }

    /// The read core under this filesystem.
    pub fn core(&self) -> &Arc<ReadCore> {
        &self.core
    }

    /// The counters `.stats` shows, now.
    pub fn stats(&self) -> Stats {
        self.core.stats()
    }

    fn stats_text(&self) -> Bytes {
        let mut text = serde_json::to_string_pretty(&self.stats()).expect("plain counters");
        text.push('\n');
        Bytes::from(text)
    }

    fn stats_attr(&self) -> Attr {
        Attr {
            ino: STATS,
            kind: Kind::File,
            size: self.stats_text().len() as u64,
            mtime: SystemTime::now(),
            perm: 0o444,
            nlink: 1,
            exact: false,
        }
    }

    fn node(&self, ino: u64) -> Result<Arc<Node>> {
        self.state
            .lock()
            .expect("state lock")
            .nodes
            .get(&ino)
            .cloned()
            .ok_or(Error::NotFound)
    }

    fn file(&self, ino: u64) -> Result<Arc<MediaFile>> {
        match &*self.node(ino)? {
            Node::File(f) => Ok(f.clone()),
            Node::Dir(_) => Err(Error::IsDir),
        }
    }

    fn dir(&self, ino: u64) -> Result<Dir> {
        match &*self.node(ino)? {
            Node::Dir(d) => Ok(d.clone()),
            Node::File(_) => Err(Error::NotDir),
        }
    }

    /// Attributes from what listings and opens already learned: never a request.
    pub fn getattr(&self, ino: u64) -> Result<Attr> {
        if ino == STATS {
            return Ok(self.stats_attr());
        }
        Ok(match &*self.node(ino)? {
            Node::Dir(dir) => self.dir_attr(ino, dir),
            Node::File(f) => self.file_attr(f),
        })
    }

    /// A directory's attributes: its mtime the newest of its files' (the same on
    /// every mount), final once the listings it depends on were made.
    fn dir_attr(&self, ino: u64, dir: &Dir) -> Attr {
        let state = self.state.lock().expect("state lock");
        let listed = |kind: &MediaKind| state.listed.get(kind).is_some_and(|l| l.at.is_some());
        let (newest, exact) = match dir {
            Dir::Root => (None, true),
            Dir::Media(kind) => (state.newest.kinds.get(kind).copied(), listed(kind)),
            Dir::Groups(group) => (
                state.newest.groups.get(group).copied(),
                group.kinds().iter().all(listed),
            ),
            Dir::Group(group, room) => (
                state.newest.rooms.get(room).copied(),
                group.kinds().iter().all(listed),
            ),
        };
        Attr {
            ino,
            kind: Kind::Dir,
            size: 0,
            mtime: newest.unwrap_or(UNIX_EPOCH),
            perm: 0o555,
            nlink: 2,
            exact,
        }
    }

    fn file_attr(&self, f: &MediaFile) -> Attr {
        let known = self.core.known_size(&f.object, f.listed_size);
        let (size, exact) = match known.filter(|&s| s <= MAX_FILE_SIZE) {
            Some(size) => (size, true),
            None => (f.listed_size.unwrap_or(0), false),
        };
        Attr {
            ino: f.ino,
            kind: Kind::File,
            size,
            mtime: f.mtime,
            perm: 0o444,
            // Listed in `rooms/RM…/` (`calls/CA…/`) too when it has a room (a call; see
            // `group_members`).
            nlink: if f.room.is_some() { 2 } else { 1 },
            exact,
        }
    }

    /// One name in a directory, within the answer bound ([`Self::answer_within`]).
    /// Files are found by SID in the inode table (no scan of the listing: `ls -l` of
    /// 10 000 files makes 10 000 lookups). A name of the current listing answers from it
    /// at once, however old the listing: a stale one is refreshed in the background
    /// meanwhile (stale-while-revalidate). Only a name not listed, or a directory never
    /// listed, waits for a listing. Each inode found counts one lookup that the kernel
    /// holds until it forgets it ([`Self::forget`]).
    pub async fn lookup(&self, parent: u64, name: &str) -> Result<Attr> {
        let deadline = Instant::now() + self.answer_within();
        let attr = self.find(parent, name, deadline).await?;
        self.hold(attr.ino)?;
        Ok(attr)
    }

    async fn find(&self, parent: u64, name: &str, deadline: Instant) -> Result<Attr> {
        let dir = self.dir(parent)?;
        if dir == Dir::Root && name == STATS_NAME {
            return Ok(self.stats_attr());
        }
        if matches!(dir, Dir::Root | Dir::Groups(_)) {
            let entries = self.entries(&dir, deadline).await?;
            let entry = entries
                .iter()
                .find(|e| e.name == name)
                .ok_or(Error::NotFound)?;
            if dir == Dir::Root {
                // Its mtime is the newest of its files': list them first, for a moment
                // at most. Should a listing fail or be slow, the attributes say they
                // are not final, and the directory's readdir meets the error and says it.
                let kinds = match self.dir(entry.ino)? {
                    Dir::Media(kind) => vec![kind],
                    Dir::Groups(group) => group.kinds().to_vec(),
                    _ => Vec::new(),
                };
                let grace = self.grace_until(deadline);
                for kind in kinds {
                    let _ = self.listed(kind, grace, false).await;
                }
            }
            return self.getattr(entry.ino);
        }
        let (sid, ext) = name.rsplit_once('.').ok_or(Error::NotFound)?;
        let kind = MediaKind::of_sid(sid).ok_or(Error::NotFound)?;
        if !names::is_sid(sid) || !kind.extensions().contains(&ext) {
            return Err(Error::NotFound);
        }
        let ino = match self.current(sid) {
            Some(ino) => {
                self.refresh_if_stale(kind);
                Some(ino)
            }
            None => {
                // Perhaps new since the last listing: the refresh (if one is due) is
                // waited for a moment, then the SID fetched by itself.
                match self.listed(kind, self.grace_until(deadline), true).await {
                    Ok(()) | Err(Error::TimedOut { .. }) => {}
                    Err(e) => return Err(e),
                }
                match (self.current(sid), &dir) {
                    (Some(ino), _) => Some(ino),
                    // Not listed: a SID can be opened by name in a huge account.
                    (None, Dir::Media(k)) if *k == kind => {
                        self.fetch_unlisted(kind, sid, deadline).await?
                    }
                    _ => None,
                }
            }
        };
        let file = self.file(ino.ok_or(Error::NotFound)?)?;
        let in_dir = match &dir {
            Dir::Media(k) => file.kind == *k,
            Dir::Group(group, room) => {
                Group::of(file.kind) == *group && file.room.as_deref() == Some(room.as_str())
            }
            Dir::Root | Dir::Groups(_) => false,
        };
        if file.name != name || !in_dir {
            return Err(Error::NotFound);
        }
        Ok(self.file_attr(&file))
    }

    /// The inode of file `sid` when a current listing has it.
    fn current(&self, sid: &str) -> Option<u64> {
        let state = self.state.lock().expect("state lock");
        let ino = *state.by_sid.get(sid)?;
        state.current.contains(&ino).then_some(ino)
    }

    /// Counts one lookup of `ino` that the kernel now holds; `NotFound` when it was
    /// dropped meanwhile.
    fn hold(&self, ino: u64) -> Result<()> {
        if ino < FIRST_DYNAMIC {
            return Ok(());
        }
        let mut state = self.state.lock().expect("state lock");
        if !state.nodes.contains_key(&ino) {
            return Err(Error::NotFound);
        }
        state.held.entry(ino).or_default().lookups += 1;
        Ok(())
    }

    /// The kernel forgets `n` lookups of `ino` (FUSE `forget`): with none left, and
    /// neither open nor in a current listing, the inode is dropped.
    pub fn forget(&self, ino: u64, n: u64) {
        self.forget_all([(ino, n)]);
    }

    /// [`Self::forget`] of many inodes at once (FUSE `batch_forget`).
    pub fn forget_all(&self, forgets: impl IntoIterator<Item = (u64, u64)>) {
        let mut state = self.state.lock().expect("state lock");
        for (ino, n) in forgets {
            state.unhold(ino, |h| h.lookups = h.lookups.saturating_sub(n));
        }
    }

    /// Inodes in the table now, the fixed ones included: those of the current listings
    /// (and their rooms), plus those the kernel still holds or has open.
    pub fn inodes(&self) -> usize {
        self.state.lock().expect("state lock").nodes.len()
    }

    /// How long an operation that waits for the API may take: the read core's bound.
    fn answer_within(&self) -> Duration {
        self.core.config().answer_within
    }

    /// When a wait for the refresh of a listing made before ends ([`REFRESH_GRACE`]).
    fn grace_until(&self, deadline: Instant) -> Instant {
        let grace = REFRESH_GRACE.min(self.answer_within() / 2);
        deadline.min(Instant::now() + grace)
    }

    /// Opens a directory for reading; its entries are read by [`Self::readdir`].
    pub fn opendir(&self, ino: u64) -> Result<u64> {
        self.dir(ino)?;
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.dirs
            .lock()
            .expect("dirs lock")
            .insert(fh, Arc::from(Vec::new()));
        Ok(fh)
    }

    /// The entries of open directory `fh`, `.` and `..` first: entry `i` is at offset
    /// `i`, and the offset that follows it is `i + 1`. Reading from offset 0 takes a
    /// new snapshot (a fresh `ls`, or `rewinddir`); reading on from a later offset reads
    /// the same snapshot, whatever listings changed since. Within the answer bound: a
    /// directory listed before answers from its previous listing when the refresh
    /// takes longer than [`REFRESH_GRACE`]; one never listed waits for its listing
    /// until the bound, then answers EIO while the listing goes on.
    pub async fn readdir(&self, ino: u64, fh: u64, offset: u64) -> Result<Arc<[Entry]>> {
        let deadline = Instant::now() + self.answer_within();
        let dir = self.dir(ino)?;
        let held = self
            .dirs
            .lock()
            .expect("dirs lock")
            .get(&fh)
            .cloned()
            .ok_or(Error::BadHandle)?;
        if offset > 0 && !held.is_empty() {
            return Ok(held);
        }
        let dots = [(ino, "."), (ROOT, "..")].map(|(ino, name)| Entry {
            ino,
            kind: Kind::Dir,
            name: name.into(),
        });
        let mut all = dots.to_vec();
        all.extend(self.entries(&dir, deadline).await?);
        let snapshot: Arc<[Entry]> = Arc::from(all);
        let mut dirs = self.dirs.lock().expect("dirs lock");
        if let Some(slot) = dirs.get_mut(&fh) {
            *slot = snapshot.clone();
        }
        Ok(snapshot)
    }

    /// Closes directory `fh`.
    pub fn releasedir(&self, fh: u64) {
        self.dirs.lock().expect("dirs lock").remove(&fh);
    }

    /// The entries of a directory now, `.` and `..` not included; its listings waited
    /// for until `deadline` at most.
    async fn entries(&self, dir: &Dir, deadline: Instant) -> Result<Vec<Entry>> {
        match dir {
            Dir::Root => Ok([
                (RECORDINGS, MediaKind::Recording.plural()),
                (COMPOSITIONS, MediaKind::Composition.plural()),
                (ROOMS, "rooms"),
                (VOICE, MediaKind::Voice.plural()),
                (CALLS, "calls"),
            ]
            .map(|(ino, name)| Entry {
                ino,
                kind: Kind::Dir,
                name: name.into(),
            })
            .to_vec()),
            Dir::Media(kind) => {
                self.listed(*kind, deadline, true).await?;
                let state = self.state.lock().expect("state lock");
                let files = state.listed.get(kind).map(|l| l.files.clone());
                Ok(file_entries(&state, files.unwrap_or_default()))
            }
            Dir::Groups(group) => {
                self.listed_all(*group, deadline).await?;
                let rooms = self.group_members(*group);
                let mut state = self.state.lock().expect("state lock");
                let mut entries: Vec<Entry> = rooms
                    .keys()
                    .map(|room| Entry {
                        ino: state.room_dir(*group, room),
                        kind: Kind::Dir,
                        name: room.clone(),
                    })
                    .collect();
                entries.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(entries)
            }
            Dir::Group(group, room) => {
                self.listed_all(*group, deadline).await?;
                let members = self.group_members(*group).remove(room).unwrap_or_default();
                Ok(file_entries(
                    &self.state.lock().expect("state lock"),
                    members,
                ))
            }
        }
    }

    /// Room (call) SID → the inodes of its files (recordings first, then compositions).
    fn group_members(&self, group: Group) -> HashMap<String, Vec<u64>> {
        let state = self.state.lock().expect("state lock");
        let mut rooms: HashMap<String, Vec<u64>> = HashMap::new();
        for &kind in group.kinds() {
            for ino in state.listed.get(&kind).map_or(&[][..], |l| &l.files) {
                if let Some(Node::File(f)) = state.nodes.get(ino).map(|n| &**n)
                    && let Some(room) = &f.room
                {
                    rooms.entry(room.clone()).or_default().push(*ino);
                }
            }
        }
        rooms
    }

    fn stale(&self, at: Option<Instant>) -> bool {
        at.is_none_or(|t| t.elapsed() >= self.config.refresh)
    }

    /// Whether `kind`'s listing is fresh, and whether one was ever made.
    fn listing_age(&self, kind: MediaKind) -> (bool, bool) {
        let state = self.state.lock().expect("state lock");
        let at = state.listed.get(&kind).and_then(|l| l.at);
        (!self.stale(at), at.is_some())
    }

    /// [`Self::listed`] for every kind of `group`, their refreshes made at the same time.
    async fn listed_all(&self, group: Group, deadline: Instant) -> Result<()> {
        let waits = group
            .kinds()
            .iter()
            .map(|&kind| self.listed(kind, deadline, true));
        for done in futures_util::future::join_all(waits).await {
            done?;
        }
        Ok(())
    }

    /// Waits for `kind`'s listing to be fresh, starting its refresh in the background
    /// when it is stale (one at a time: concurrent callers share it). A directory
    /// listed before waits until [`Self::grace_until`] at most and keeps its previous
    /// listing when the refresh is slower or fails (the refresh says why); one never
    /// listed waits until `deadline`, and then fails with [`Error::TimedOut`] while its
    /// listing goes on. `say`: log a failure with a WARN (else at DEBUG only, for a
    /// caller that does not need the listing, whose failure the directory's own
    /// `readdir` then says).
    async fn listed(&self, kind: MediaKind, deadline: Instant, say: bool) -> Result<()> {
        let (fresh, ever) = self.listing_age(kind);
        if fresh {
            return Ok(());
        }
        let refresh = self.refresh(kind);
        let until = if ever {
            self.grace_until(deadline)
        } else {
            deadline
        };
        let outcome = match tokio::time::timeout_at(until.into(), refresh).await {
            Ok(done) => done,
            Err(_) => Err(Error::TimedOut {
                what: format!("the listing of {}", kind.plural()),
                after: self.answer_within(),
            }),
        };
        match outcome {
            Ok(()) => Ok(()),
            // The previous listing stays in use.
            Err(_) if ever => Ok(()),
            Err(e) => {
                // A listing past its deadline was said by the refresh itself.
                if say && !matches!(e, Error::ListingDeadline { .. }) {
                    tracing::warn!("cannot list {}: {e}", kind.plural());
                } else {
                    tracing::debug!("cannot list {}: {e}", kind.plural());
                }
                Err(e)
            }
        }
    }

    /// Starts the refresh of `kind`'s listing in the background if it is stale and
    /// none is on: a lookup answered from the table keeps the listing current.
    fn refresh_if_stale(&self, kind: MediaKind) {
        if !self.listing_age(kind).0 {
            drop(self.refresh(kind));
        }
    }

    /// The refresh of `kind`'s listing that is on, or a new one, started in the
    /// background: it runs to its end (or its deadline) whoever waits for it.
    fn refresh(&self, kind: MediaKind) -> Refresh {
        let mut refreshing = self.refreshing.lock().expect("refreshing lock");
        if let Some(on) = refreshing.get(&kind)
            && on.peek().is_none()
        {
            return on.clone();
        }
        if self.listing_age(kind).0 {
            // Listed since the caller looked.
            return futures_util::future::ready(Ok(())).boxed().shared();
        }
        let me = self.me.clone();
        let listing = async move {
            match me.upgrade() {
                Some(fs) => fs.relist(kind).await,
                None => Ok(()), // unmounted meanwhile
            }
        }
        .boxed()
        .shared();
        refreshing.insert(kind, listing.clone());
        tokio::spawn(listing.clone());
        listing
    }

    /// Lists completed media of one kind (per `--room`, since `--since`), all pages
    /// within the listing deadline, then makes it the current listing and drops what
    /// nothing holds any more ([`State::sweep`]). On failure the previous listing stays
    /// in use; a failure that no caller will say (the deadline, or a directory listed
    /// before) is said here.
    async fn relist(&self, kind: MediaKind) -> Result<()> {
        let after = self.config.listing_deadline;
        let listed = tokio::time::timeout(after, self.fetch_listing(kind)).await;
        let found = match listed.unwrap_or(Err(Error::ListingDeadline { after })) {
            Ok(found) => found,
            Err(e) => {
                let ever = self.listing_age(kind).1;
                if ever {
                    tracing::warn!(
                        "cannot list {}: {e}; the previous listing stays in use",
                        kind.plural()
                    );
                } else if matches!(e, Error::ListingDeadline { .. }) {
                    tracing::warn!("cannot list {}: {e}", kind.plural());
                } else {
                    // Said by whoever waits for it (see `listed`).
                    tracing::debug!("cannot list {}: {e}", kind.plural());
                }
                return Err(e);
            }
        };
        let mut state = self.state.lock().expect("state lock");
        let mut inos: Vec<u64> = found
            .iter()
            .filter_map(|m| self.add_media(&mut state, m, true))
            .collect();
        dedup_in_order(&mut inos);
        let to_size = self.unsized_files(&state, &inos);
        let listed = state.listed.entry(kind).or_default();
        listed.files = inos;
        listed.at = Some(Instant::now());
        state.reindex();
        state.sweep();
        drop(state);
        if !to_size.is_empty() {
            self.core.size_all(to_size);
        }
        Ok(())
    }

    /// Every page of `kind`'s listing, for each `--room` of its group.
    async fn fetch_listing(&self, kind: MediaKind) -> Result<Vec<Media>> {
        let mut found = Vec::new();
        for room in self.room_filters(kind) {
            let filter = MediaFilter {
                status: Some("completed".to_owned()),
                room,
                date_created_after: self.config.since.clone(),
                date_created_before: None,
            };
            found.extend(self.api.list(kind, &filter).await?);
        }
        Ok(found)
    }

    /// The file of a SID not listed, fetched as one resource if [`unlisted`] allows
    /// and it answers before `deadline`: `None` when it is not there (now, or
    /// remembered from an earlier fetch) or the fetches of unlisted SIDs are over their
    /// rate.
    async fn fetch_unlisted(
        &self,
        kind: MediaKind,
        sid: &str,
        deadline: Instant,
    ) -> Result<Option<u64>> {
        let verdict = self.unlisted_now().check(sid, Instant::now());
        match verdict {
            unlisted::Verdict::Fetch => {}
            unlisted::Verdict::KnownMissing => return Ok(None),
            unlisted::Verdict::Rationed { first } => {
                let why = format!(
                    "lookups of unlisted SIDs are over {} a second: {sid} answered \
                     ENOENT without a request",
                    unlisted::PER_SECOND
                );
                if first {
                    tracing::warn!("{why} (said once; more at debug)");
                } else {
                    tracing::debug!("{why}");
                }
                return Ok(None);
            }
        }
        let media = MediaRef::new(kind, sid);
        let fetched = tokio::time::timeout_at(deadline.into(), self.api.resource(&media)).await;
        let fetched = fetched.map_err(|_| Error::TimedOut {
            what: sid.to_owned(),
            after: self.answer_within(),
        })?;
        let found = match fetched {
            Ok(found) => {
                let mut state = self.state.lock().expect("state lock");
                self.add_media(&mut state, &found, false)
            }
            Err(e) if Failure::of_api(&e) == Failure::Gone => None,
            Err(e) => return Err(e.into()),
        };
        if found.is_none() {
            self.unlisted_now().missed(sid, Instant::now());
        }
        Ok(found)
    }

    fn unlisted_now(&self) -> std::sync::MutexGuard<'_, unlisted::Unlisted> {
        self.unlisted.lock().expect("unlisted lock")
    }

    /// The objects of `inos` whose exact size is not known yet and is to be learned in
    /// the background: with `exact_sizes`, every kind's; call recordings' always: the
    /// Voice API lists no size, so without this one 16-byte
    /// GET each (the stored length less the tag) `ls -l` would show them all as 0.
    fn unsized_files(&self, state: &State, inos: &[u64]) -> Vec<Arc<ObjectReader>> {
        inos.iter()
            .filter_map(|ino| match state.nodes.get(ino).map(|n| &**n) {
                Some(Node::File(f))
                    if (self.config.exact_sizes || !f.kind.is_video())
                        && self.core.known_size(&f.object, f.listed_size).is_none() =>
                {
                    Some(f.object.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// The listings to make of `kind`: all of it without `--room`; else one per room
    /// of its group: rooms and participants (`RM…`, `PA…`) for the Video kinds, calls
    /// (`CA…`) for call recordings. None: the mount shows none of that kind.
    fn room_filters(&self, kind: MediaKind) -> Vec<Option<String>> {
        if self.config.rooms.is_empty() {
            return vec![None];
        }
        let calls = |r: &&String| r.starts_with("CA");
        (self.config.rooms.iter())
            .filter(|r| calls(r) != kind.is_video())
            .cloned()
            .map(Some)
            .collect()
    }

    /// Adds (or finds) the file of a completed recording or composition; `None` when
    /// it is not completed or its SID or format cannot make a safe name. A file found
    /// by a lookup (not by a listing) joins its kind's listing until the next one.
    fn add_media(&self, state: &mut State, m: &Media, from_listing: bool) -> Option<u64> {
        if !m.status_is("completed") {
            return None;
        }
        let kind = m.kind();
        let Some(name) = m.file_name() else {
            tracing::warn!(
                "skipping {kind} {:?}: not a valid SID and format ({:?})",
                m.sid(),
                m.format().unwrap_or_default()
            );
            return None;
        };
        let listed_size = m.size().filter(|&s| s <= MAX_FILE_SIZE);
        let ino = match state.by_sid.get(m.sid()) {
            // Files never change: the first description stays, but for a size it
            // lacked (none listed, or an absurd one), which a later listing may give.
            Some(&ino) => {
                if let Some(Node::File(f)) = state.nodes.get(&ino).map(|n| &**n)
                    && f.listed_size.is_none()
                    && let Some(len) = listed_size
                {
                    f.object.expect_len(len);
                    let file = MediaFile {
                        ino,
                        name: f.name.clone(),
                        kind: f.kind,
                        room: f.room.clone(),
                        listed_size,
                        mtime: f.mtime,
                        xattrs: f.xattrs.clone(),
                        object: f.object.clone(),
                    };
                    state
                        .nodes
                        .insert(ino, Arc::new(Node::File(Arc::new(file))));
                }
                ino
            }
            None => {
                let ino = state.alloc();
                let object = self.core.object(&m.media_ref());
                if let Some(len) = listed_size {
                    object.expect_len(len);
                }
                let file = MediaFile {
                    ino,
                    name,
                    kind,
                    room: (m.room())
                        .filter(|r| names::is_sid(r) && r.starts_with(Group::of(kind).prefix()))
                        .map(str::to_owned),
                    listed_size,
                    mtime: m.modified().unwrap_or(UNIX_EPOCH),
                    xattrs: Arc::from(m.xattrs()),
                    object,
                };
                state.by_sid.insert(m.sid().to_owned(), ino);
                let node = Arc::new(Node::File(Arc::new(file)));
                state.nodes.insert(ino, node);
                ino
            }
        };
        if !from_listing {
            let files = &mut state.listed.entry(kind).or_default().files;
            if !files.contains(&ino) {
                files.push(ino);
                state.reindex();
            }
        }
        Some(ino)
    }

    /// Opens a file: the core learns the object's headers (one ranged GET that also
    /// fetches the first window), so the size is exact from then on and a wrong key
    /// fails the open. Returns the new handle.
    pub async fn open(&self, ino: u64) -> Result<Opened> {
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        if ino == STATS {
            let text = self.stats_text();
            self.stats_handles
                .lock()
                .expect("stats lock")
                .insert(fh, text);
            return Ok(Opened {
                fh,
                direct_io: true,
                keep_cache: false,
            });
        }
        let file = self.file(ino)?;
        let handle = self.core.open_object(file.object.clone()).await?;
        {
            let mut state = self.state.lock().expect("state lock");
            if !state.nodes.contains_key(&ino) {
                return Err(Error::NotFound); // dropped while it opened
            }
            state.held.entry(ino).or_default().opens += 1;
        }
        let mut handles = self.handles.lock().expect("handles lock");
        handles.insert(fh, (ino, Arc::new(handle)));
        let verdict = file.object.tag_verdict();
        Ok(Opened {
            fh,
            direct_io: false,
            keep_cache: verdict.is_none_or(|v| v == Verdict::Verified),
        })
    }

    /// Reads through handle `fh`: one call into the read core ([`Handle::read`]).
    pub async fn read(&self, ino: u64, fh: u64, offset: u64, size: u32) -> Result<Bytes> {
        if ino == STATS {
            let handles = self.stats_handles.lock().expect("stats lock");
            let text = handles.get(&fh).ok_or(Error::BadHandle)?;
            let start = (offset as usize).min(text.len());
            let end = start.saturating_add(size as usize).min(text.len());
            return Ok(text.slice(start..end));
        }
        let handle = self.handles.lock().expect("handles lock").get(&fh).cloned();
        let (_, handle) = handle.ok_or(Error::BadHandle)?;
        Ok(handle.read(offset, u64::from(size)).await?)
    }

    /// Closes file `fh`. A file gone from the listings and forgotten by the kernel is
    /// dropped with its last handle.
    pub fn release(&self, fh: u64) {
        let closed = self.handles.lock().expect("handles lock").remove(&fh);
        if let Some((ino, _)) = closed {
            let mut state = self.state.lock().expect("state lock");
            state.unhold(ino, |h| h.opens = h.opens.saturating_sub(1));
        }
        self.stats_handles.lock().expect("stats lock").remove(&fh);
    }

    /// The API's fields of `ino`: a file's from its listing (never a request), a room
    /// directory's from the room (fetched the first time, then kept); other
    /// directories and `.stats` have none. What `getxattr` answers, all at once, without
    /// `encrypted` (which needs the object's headers).
    pub async fn attributes(&self, ino: u64) -> Result<Xattrs> {
        if ino == STATS {
            return Ok(Arc::from(Vec::new()));
        }
        match &*self.node(ino)? {
            Node::File(f) => Ok(f.xattrs.clone()),
            Node::Dir(Dir::Group(Group::Rooms, room)) => self.room_xattrs(room).await,
            Node::Dir(_) => Ok(Arc::from(Vec::new())),
        }
    }

    /// `user.twilio.*` attribute names, NUL-terminated, as `listxattr` returns them:
    /// those with a value, and a file's `encrypted`. A room directory's fetch the room
    /// the first time.
    pub async fn listxattr(&self, ino: u64) -> Result<Vec<u8>> {
        if ino == STATS {
            return Ok(Vec::new());
        }
        let node = self.node(ino)?;
        let (attrs, more): (Xattrs, &[&str]) = match &*node {
            Node::File(f) => (f.xattrs.clone(), &["encrypted"]),
            Node::Dir(Dir::Group(Group::Rooms, room)) => (self.room_xattrs(room).await?, &[]),
            Node::Dir(_) => return Ok(Vec::new()),
        };
        Ok(xattr_names(
            attrs.iter().map(|(n, _)| *n).chain(more.iter().copied()),
        ))
    }

    /// One attribute's value. `encrypted` needs the object's headers: it costs the
    /// first window's GET when the file has not been read yet. A room directory's
    /// fetch the room the first time; names outside `user.twilio.` never do.
    pub async fn getxattr(&self, ino: u64, name: &str) -> Result<Vec<u8>> {
        if ino == STATS {
            return Err(Error::NoXattr);
        }
        let node = self.node(ino)?;
        let key = name.strip_prefix("user.twilio.").ok_or(Error::NoXattr)?;
        let attrs = match &*node {
            Node::File(f) if key == "encrypted" => {
                let meta = self.core.meta(&f.object).await?;
                let encrypted = if meta.key().is_some() {
                    "true"
                } else {
                    "false"
                };
                return Ok(encrypted.as_bytes().to_vec());
            }
            Node::File(f) => f.xattrs.clone(),
            Node::Dir(Dir::Group(Group::Rooms, room)) => self.room_xattrs(room).await?,
            Node::Dir(_) => return Err(Error::NoXattr),
        };
        attrs
            .iter()
            .find(|(n, _)| *n == key)
            .map(|(_, v)| v.as_bytes().to_vec())
            .ok_or(Error::NoXattr)
    }

    /// The attributes of room `room`'s directory: one [`Api::room`] the first time,
    /// within the answer bound, kept from then on (like a file's, they are not
    /// refreshed) while the directory is in the table.
    async fn room_xattrs(&self, room: &str) -> Result<Xattrs> {
        let cell = {
            let mut state = self.state.lock().expect("state lock");
            state
                .room_xattrs
                .entry(room.to_owned())
                .or_default()
                .clone()
        };
        let fetch = cell.get_or_try_init(|| async {
            let found = self.api.room(room).await;
            let found = found.inspect_err(|e| tracing::warn!("cannot fetch room {room}: {e}"))?;
            Ok::<_, Error>(Xattrs::from(found.xattrs()))
        });
        // Past the bound the fetch is dropped; the next asker fetches again.
        let after = self.answer_within();
        let attrs = tokio::time::timeout(after, fetch).await.map_err(|_| {
            let what = format!("room {room}");
            tracing::warn!("cannot fetch room {room}: no answer within {after:?}");
            Error::TimedOut { what, after }
        })??;
        Ok(attrs.clone())
    }
}

impl State {
    fn alloc(&mut self) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        ino
    }

    /// Recomputes from the listings the directories' mtimes ([`Newest`]) and the set
    /// of current files: after each listing, so `getattr` of a directory and a lookup
    /// cost a look-up, not a scan.
    fn reindex(&mut self) {
        let mut newest = Newest::default();
        let mut current = HashSet::new();
        for (kind, listed) in &self.listed {
            current.extend(listed.files.iter().copied());
            for ino in &listed.files {
                let Some(Node::File(f)) = self.nodes.get(ino).map(|n| &**n) else {
                    continue;
                };
                let later = |t: &mut SystemTime| *t = (*t).max(f.mtime);
                later(newest.kinds.entry(*kind).or_insert(f.mtime));
                later((newest.groups).entry(Group::of(*kind)).or_insert(f.mtime));
                if let Some(room) = &f.room {
                    later(newest.rooms.entry(room.clone()).or_insert(f.mtime));
                }
            }
        }
        self.newest = newest;
        self.current = current;
    }

    /// Whether inode `ino` stays in the table: a fixed one, one the kernel holds or has
    /// open, a file of a current listing, the directory of a room with a file listed.
    fn keeps(&self, ino: u64, node: &Node) -> bool {
        ino < FIRST_DYNAMIC
            || self.held.contains_key(&ino)
            || match node {
                Node::File(_) => self.current.contains(&ino),
                Node::Dir(Dir::Group(_, room)) => self.newest.rooms.contains_key(room),
                Node::Dir(_) => true,
            }
    }

    /// Drops every inode that nothing keeps ([`Self::keeps`]), after a listing. The
    /// table then holds the current listings, the directories of their rooms, and what
    /// the kernel holds; a SID dropped gets a new inode should it be listed again.
    fn sweep(&mut self) {
        let gone: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(ino, node)| !self.keeps(**ino, node))
            .map(|(ino, _)| *ino)
            .collect();
        for ino in gone {
            self.drop_node(ino);
        }
    }

    /// Applies `change` to what holds `ino`; with nothing left, `ino` is dropped unless
    /// a current listing has it.
    fn unhold(&mut self, ino: u64, change: impl FnOnce(&mut Held)) {
        let Some(held) = self.held.get_mut(&ino) else {
            return; // a fixed inode, or one not held
        };
        change(held);
        if held.lookups == 0 && held.opens == 0 {
            self.held.remove(&ino);
            if let Some(node) = self.nodes.get(&ino).cloned()
                && !self.keeps(ino, &node)
            {
                self.drop_node(ino);
            }
        }
    }

    /// Removes inode `ino`, its SID's entry and, for a room, the room's attributes.
    fn drop_node(&mut self, ino: u64) {
        let Some(node) = self.nodes.remove(&ino) else {
            return;
        };
        let sid = match &*node {
            Node::File(f) => f.object.sid().to_owned(),
            Node::Dir(Dir::Group(_, room)) => {
                self.room_xattrs.remove(room);
                room.clone()
            }
            Node::Dir(_) => return,
        };
        if self.by_sid.get(&sid) == Some(&ino) {
            self.by_sid.remove(&sid);
        }
    }

    /// The inode of room (call) `room`'s directory, made on first use.
    fn room_dir(&mut self, group: Group, room: &str) -> u64 {
        if let Some(&ino) = self.by_sid.get(room) {
            return ino;
        }
        let ino = self.alloc();
        self.by_sid.insert(room.to_owned(), ino);
        let node = Arc::new(Node::Dir(Dir::Group(group, room.to_owned())));
        self.nodes.insert(ino, node);
        ino
    }
}

fn file_entries(state: &State, inos: Vec<u64>) -> Vec<Entry> {
    inos.into_iter()
        .filter_map(|ino| match state.nodes.get(&ino).map(|n| &**n) {
            Some(Node::File(f)) => Some(Entry {
                ino,
                kind: Kind::File,
                name: f.name.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// `user.twilio.NAME\0` for each name.
fn xattr_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::new();
    for name in names {
        out.extend_from_slice(format!("user.twilio.{name}\0").as_bytes());
    }
    out
}

fn dedup_in_order(v: &mut Vec<u64>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(*x));
}
