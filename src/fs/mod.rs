//! The filesystem, without FUSE: the directory tree, inodes, attributes, extended
//! attributes and reads, as plain async functions returning `Result<_, Error>`, so that
//! tests can drive it directly. [`fuse`] is the thin layer that connects it to the kernel.
//!
//! ```text
//! /recordings/RTxx.mka|mkv      completed recordings
//! /compositions/CJxx.mp4|webm   completed compositions
//! /rooms/RMxx/                  the recordings and compositions of one room
//! ```
//!
//! Directories are listed lazily, on first use, and listed again after `refresh`;
//! `getattr` and `readdir` never cause a request per file (sizes come from listings). A
//! lookup of a SID not listed yet fetches that one resource. Names come from SIDs and a
//! fixed set of extensions only ([`crate::names`]). Files are read through one
//! [`ObjectReader`] each, sharing one [`WindowCache`].
//!
//! `/.stats` is what the mount is doing, as JSON ([`MountStats`]): the cache's hits and
//! misses, bytes fetched and served, retries, errors, open files, fetches in flight. It
//! is not listed by `readdir` (so `cp -r`, `rsync` and `find` see media only) but opens
//! by name. Its text is made at `open` and served from the handle, with direct I/O, so
//! every `cat` reads one consistent, current snapshot whatever size `stat` showed.

pub mod fuse;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::cache::WindowCache;
use crate::crypto::PrivateKeys;
use crate::names;
use crate::object::ObjectSource;
use crate::prefetch::Prefetcher;
use crate::reader::{ObjectReader, ReadError};
use crate::served::Served;
use crate::stats::IoStats;
use crate::twilio::{
    self, Composition, CompositionFilter, MediaRef, Recording, RecordingFilter, TwilioClient,
};

pub const ROOT: u64 = 1;
const RECORDINGS: u64 = 2;
const COMPOSITIONS: u64 = 3;
const ROOMS: u64 = 4;
/// `/.stats`.
pub const STATS: u64 = 5;
/// Its name in the root directory.
pub const STATS_NAME: &str = ".stats";
const FIRST_DYNAMIC: u64 = 16;

/// What the mount was asked for.
#[derive(Debug, Clone)]
pub struct FsConfig {
    pub uid: u32,
    pub gid: u32,
    /// Plaintext window size (rounded to a multiple of 16).
    pub window: u64,
    /// Relist a directory when its listing is older than this.
    pub refresh: Duration,
    /// Only these rooms (empty: all).
    pub rooms: Vec<String>,
    /// Only media created at or after this date (RFC 3339).
    pub since: Option<String>,
    /// The longest an open or a read waits for the storage: past it, EIO. The retry
    /// budget plus one request timeout plus a second ([`TwilioClient::answer_bound`]),
    /// so it only cuts reads whose retries are spent anyway, but it holds whatever the
    /// storage does: a reader is never left hanging.
    pub answer_within: Duration,
}

/// Why an operation failed; [`Error::errno`] is the one place errors become errnos.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("no such file or directory")]
    NotFound,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("no such extended attribute")]
    NoXattr,
    #[error("the buffer is too small for the extended attribute")]
    XattrRange,
    #[error("{0}")]
    Api(Arc<twilio::Error>),
    #[error("{0}")]
    Read(#[from] ReadError),
}

impl Error {
    /// The errno for the reader. Exhaustive: a new variant must choose its errno.
    pub fn errno(&self) -> i32 {
        match self {
            Error::NotFound => libc::ENOENT,
            Error::NotDir => libc::ENOTDIR,
            Error::IsDir => libc::EISDIR,
            Error::NoXattr => libc::ENODATA,
            Error::XattrRange => libc::ERANGE,
            Error::Api(e) => match **e {
                twilio::Error::Unauthorized { .. } | twilio::Error::NoCredentials { .. } => {
                    libc::EACCES
                }
                _ => libc::EIO,
            },
            Error::Read(ReadError::Key { .. }) => libc::EACCES,
            Error::Read(ReadError::Damaged { .. } | ReadError::Storage { .. }) => libc::EIO,
            Error::Read(ReadError::Unsupported { .. }) => libc::EOPNOTSUPP,
        }
    }
}

impl From<twilio::Error> for Error {
    fn from(e: twilio::Error) -> Self {
        Error::Api(Arc::new(e))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// What `open` gave: the handle, and whether reads must bypass the page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    pub fh: u64,
    /// `.stats`: its content changes, so the kernel must not cache it (nor trust its size).
    pub direct_io: bool,
}

/// The content of `/.stats`: counters since the mount started.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MountStats {
    pub uptime_secs: u64,
    /// The decrypted-window cache: `hits` and `misses` are window lookups by reads and
    /// read-ahead (a file's first window is fetched by `open`, so reading it is a hit);
    /// `shared_fetches` waited for a fetch already in flight.
    pub cache: crate::cache::CacheStats,
    /// Plaintext bytes answered to readers.
    pub bytes_served: u64,
    /// Ciphertext bytes received from storage.
    pub bytes_fetched: u64,
    /// Ranged storage fetches completed.
    pub fetches: u64,
    /// Storage attempts beyond the first (5xx, 429, cut bodies, expired URLs).
    pub retries: u64,
    /// Storage fetches that failed once their retries were spent.
    pub fetch_errors: u64,
    /// Opens and reads answered with an error (EIO, EACCES).
    pub errors: u64,
    /// Media files open now.
    pub open_handles: u64,
    /// Storage fetches in progress now.
    pub in_flight: u64,
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
    /// Whether `size` is final (a file whose headers have been read, or a directory).
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
    is_recording: bool,
    pub room: Option<String>,
    listed_size: u64,
    mtime: SystemTime,
    xattrs: Vec<(&'static str, String)>,
    reader: Arc<ObjectReader>,
}

enum Node {
    Dir(Dir),
    File(Arc<MediaFile>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Dir {
    Root,
    Recordings,
    Compositions,
    Rooms,
    Room(String),
}

/// The two listings the tree is built from.
#[derive(Debug, Clone, Copy)]
enum Listing {
    Recordings,
    Compositions,
}

#[derive(Default)]
struct State {
    nodes: HashMap<u64, Arc<Node>>,
    /// SID → inode, for files; room SID → inode, for room directories.
    by_sid: HashMap<String, u64>,
    recordings: Vec<u64>,
    compositions: Vec<u64>,
    recordings_listed: Option<Instant>,
    compositions_listed: Option<Instant>,
    next_ino: u64,
}

pub struct TwilioFs {
    config: FsConfig,
    twilio: Arc<TwilioClient>,
    source: Arc<dyn ObjectSource>,
    keys: Arc<PrivateKeys>,
    cache: Arc<WindowCache>,
    state: Mutex<State>,
    /// One listing at a time: concurrent `ls` share it instead of listing twice.
    listing: tokio::sync::Mutex<()>,
    /// Open file handles: their read-ahead and what they have been served.
    handles: Mutex<HashMap<u64, Handle>>,
    next_handle: std::sync::atomic::AtomicU64,
    /// Windows being prefetched at once, across all files (see [`prefetch_slots`]).
    prefetch_budget: Arc<tokio::sync::Semaphore>,
    started: SystemTime,
    /// Storage fetch counters, shared with the object client.
    io: Arc<IoStats>,
    /// Open `.stats` handles and the snapshot each serves.
    stats_handles: Mutex<HashMap<u64, Bytes>>,
    bytes_served: AtomicU64,
    errors: AtomicU64,
}

/// What the filesystem keeps per open file handle.
struct Handle {
    prefetch: Prefetcher,
    served: Served,
}

impl TwilioFs {
    pub fn new(
        config: FsConfig,
        twilio: Arc<TwilioClient>,
        source: Arc<dyn ObjectSource>,
        keys: Arc<PrivateKeys>,
        cache: Arc<WindowCache>,
    ) -> Self {
        let mut state = State {
            next_ino: FIRST_DYNAMIC,
            ..Default::default()
        };
        for (ino, dir) in [
            (ROOT, Dir::Root),
            (RECORDINGS, Dir::Recordings),
            (COMPOSITIONS, Dir::Compositions),
            (ROOMS, Dir::Rooms),
        ] {
            state.nodes.insert(ino, Arc::new(Node::Dir(dir)));
        }
        Self {
            prefetch_budget: Arc::new(tokio::sync::Semaphore::new(prefetch_slots(
                cache.stats().capacity as u64,
                config.window,
            ))),
            config,
            twilio,
            source,
            keys,
            cache,
            state: Mutex::new(state),
            listing: tokio::sync::Mutex::new(()),
            handles: Mutex::new(HashMap::new()),
            next_handle: std::sync::atomic::AtomicU64::new(1),
            started: SystemTime::now(),
            io: Arc::default(),
            stats_handles: Mutex::new(HashMap::new()),
            bytes_served: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// Shows these storage counters in `.stats` (those of the [`crate::object::ObjectClient`]
    /// that `source` is).
    pub fn with_io_stats(mut self, io: Arc<IoStats>) -> Self {
        self.io = io;
        self
    }

    /// The counters `.stats` shows, now.
    pub fn stats(&self) -> MountStats {
        let io = self.io.snapshot();
        MountStats {
            uptime_secs: self.started.elapsed().map_or(0, |d| d.as_secs()),
            cache: self.cache.stats(),
            bytes_served: self.bytes_served.load(Ordering::Relaxed),
            bytes_fetched: io.bytes_fetched,
            fetches: io.fetches,
            retries: io.retries,
            fetch_errors: io.fetch_errors,
            errors: self.errors.load(Ordering::Relaxed),
            open_handles: self.handles.lock().expect("handles lock").len() as u64,
            in_flight: io.in_flight,
        }
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
            exact: false,
        }
    }

    pub fn config(&self) -> &FsConfig {
        &self.config
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

    pub async fn getattr(&self, ino: u64) -> Result<Attr> {
        if ino == STATS {
            return Ok(self.stats_attr());
        }
        Ok(match &*self.node(ino)? {
            Node::Dir(_) => self.dir_attr(ino),
            Node::File(f) => file_attr(f),
        })
    }

    fn dir_attr(&self, ino: u64) -> Attr {
        Attr {
            ino,
            kind: Kind::Dir,
            size: 0,
            mtime: self.started,
            perm: 0o555,
            exact: true,
        }
    }

    /// One name in a directory. Files are found by SID in the inode table (no scan of
    /// the listing: `ls -l` of 10 000 files makes 10 000 lookups).
    pub async fn lookup(&self, parent: u64, name: &str) -> Result<Attr> {
        let dir = match &*self.node(parent)? {
            Node::Dir(d) => d.clone(),
            Node::File(_) => return Err(Error::NotDir),
        };
        if dir == Dir::Root && name == STATS_NAME {
            return Ok(self.stats_attr());
        }
        if matches!(dir, Dir::Root | Dir::Rooms) {
            let entries = self.readdir(parent).await?;
            let entry = entries
                .iter()
                .find(|e| e.name == name)
                .ok_or(Error::NotFound)?;
            return self.getattr(entry.ino).await;
        }
        let (sid, ext) = name.rsplit_once('.').ok_or(Error::NotFound)?;
        if !names::is_sid(sid) || names::extension(ext) != Some(ext) {
            return Err(Error::NotFound);
        }
        let is_recording = sid.starts_with("RT");
        if is_recording {
            self.list(Listing::Recordings).await?;
        } else {
            self.list(Listing::Compositions).await?;
        }
        let known = self
            .state
            .lock()
            .expect("state lock")
            .by_sid
            .get(sid)
            .copied();
        let ino = match (known, &dir) {
            (Some(ino), _) => Some(ino),
            // Not listed (yet): a SID can be opened by name in a huge account.
            (None, Dir::Recordings) if is_recording => {
                let r = self.twilio.recording(sid).await.map_err(not_found_or)?;
                self.add_recording(&r, false)
            }
            (None, Dir::Compositions) if sid.starts_with("CJ") => {
                let c = self.twilio.composition(sid).await.map_err(not_found_or)?;
                self.add_composition(&c, false)
            }
            _ => None,
        };
        let file = self.file(ino.ok_or(Error::NotFound)?)?;
        let in_dir = match &dir {
            Dir::Recordings => file.is_recording,
            Dir::Compositions => !file.is_recording,
            Dir::Room(room) => file.room.as_deref() == Some(room.as_str()),
            Dir::Root | Dir::Rooms => false,
        };
        if file.name != name || !in_dir {
            return Err(Error::NotFound);
        }
        Ok(file_attr(&file))
    }

    /// The entries of a directory, `.` and `..` not included.
    pub async fn readdir(&self, ino: u64) -> Result<Vec<Entry>> {
        let dir = match &*self.node(ino)? {
            Node::Dir(d) => d.clone(),
            Node::File(_) => return Err(Error::NotDir),
        };
        match dir {
            Dir::Root => Ok(vec![
                Entry {
                    ino: RECORDINGS,
                    kind: Kind::Dir,
                    name: "recordings".into(),
                },
                Entry {
                    ino: COMPOSITIONS,
                    kind: Kind::Dir,
                    name: "compositions".into(),
                },
                Entry {
                    ino: ROOMS,
                    kind: Kind::Dir,
                    name: "rooms".into(),
                },
            ]),
            Dir::Recordings => {
                self.list(Listing::Recordings).await?;
                Ok(self.file_entries(|s| s.recordings.clone()))
            }
            Dir::Compositions => {
                self.list(Listing::Compositions).await?;
                Ok(self.file_entries(|s| s.compositions.clone()))
            }
            Dir::Rooms => {
                self.list(Listing::Recordings).await?;
                self.list(Listing::Compositions).await?;
                let rooms = self.room_members();
                let mut state = self.state.lock().expect("state lock");
                let mut entries: Vec<Entry> = rooms
                    .keys()
                    .map(|room| {
                        let ino = match state.by_sid.get(room) {
                            Some(&ino) => ino,
                            None => {
                                let ino = state.alloc();
                                state.by_sid.insert(room.clone(), ino);
                                state
                                    .nodes
                                    .insert(ino, Arc::new(Node::Dir(Dir::Room(room.clone()))));
                                ino
                            }
                        };
                        Entry {
                            ino,
                            kind: Kind::Dir,
                            name: room.clone(),
                        }
                    })
                    .collect();
                entries.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(entries)
            }
            Dir::Room(room) => {
                self.list(Listing::Recordings).await?;
                self.list(Listing::Compositions).await?;
                let members = self.room_members().remove(&room).unwrap_or_default();
                Ok(self.file_entries(|_| members))
            }
        }
    }

    /// Room SID → the inodes of its files (recordings first, then compositions).
    fn room_members(&self) -> HashMap<String, Vec<u64>> {
        let state = self.state.lock().expect("state lock");
        let mut rooms: HashMap<String, Vec<u64>> = HashMap::new();
        for ino in state.recordings.iter().chain(&state.compositions) {
            if let Some(Node::File(f)) = state.nodes.get(ino).map(|n| &**n)
                && let Some(room) = &f.room
            {
                rooms.entry(room.clone()).or_default().push(*ino);
            }
        }
        rooms
    }

    fn file_entries(&self, pick: impl FnOnce(&State) -> Vec<u64>) -> Vec<Entry> {
        let state = self.state.lock().expect("state lock");
        pick(&state)
            .into_iter()
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

    fn stale(&self, listed: Option<Instant>) -> bool {
        listed.is_none_or(|t| t.elapsed() >= self.config.refresh)
    }

    /// Lists completed recordings or compositions (per `--room`, since `--since`)
    /// unless the last listing is fresh.
    async fn list(&self, which: Listing) -> Result<()> {
        let fresh = || !self.stale(*self.state.lock().expect("state lock").listing(which).1);
        if fresh() {
            return Ok(());
        }
        let _one = self.listing.lock().await;
        if fresh() {
            return Ok(()); // listed while we waited
        }
        let mut inos = Vec::new();
        for room in self.room_filters() {
            let status = Some("completed".to_owned());
            let since = self.config.since.clone();
            match which {
                Listing::Recordings => {
                    let filter = RecordingFilter {
                        status,
                        grouping_sid: room,
                        date_created_after: since,
                        ..Default::default()
                    };
                    let listed = self.twilio.recordings(&filter).await;
                    let listed =
                        listed.inspect_err(|e| tracing::warn!("cannot list recordings: {e}"))?;
                    for r in listed {
                        inos.extend(self.add_recording(&r, true));
                    }
                }
                Listing::Compositions => {
                    let filter = CompositionFilter {
                        status,
                        room_sid: room,
                        date_created_after: since,
                        ..Default::default()
                    };
                    let listed = self.twilio.compositions(&filter).await;
                    let listed =
                        listed.inspect_err(|e| tracing::warn!("cannot list compositions: {e}"))?;
                    for c in listed {
                        inos.extend(self.add_composition(&c, true));
                    }
                }
            }
        }
        dedup_in_order(&mut inos);
        let mut state = self.state.lock().expect("state lock");
        let (list, listed) = state.listing(which);
        *list = inos;
        *listed = Some(Instant::now());
        Ok(())
    }

    fn room_filters(&self) -> Vec<Option<String>> {
        if self.config.rooms.is_empty() {
            vec![None]
        } else {
            self.config.rooms.iter().cloned().map(Some).collect()
        }
    }

    /// Adds (or finds) the file of a completed recording; `None` when it is not
    /// completed or its SID or format cannot make a safe name.
    fn add_recording(&self, r: &Recording, from_listing: bool) -> Option<u64> {
        if !r.status_is("completed") {
            return None;
        }
        let format = r.container_format.as_deref().unwrap_or_default();
        let Some(name) = names::media_file_name(&r.sid, format) else {
            tracing::warn!(
                "skipping recording {:?}: not a valid SID and format ({format:?})",
                r.sid
            );
            return None;
        };
        let xattrs = vec![
            ("sid", r.sid.clone()),
            ("room_sid", r.room().unwrap_or_default().to_owned()),
            ("status", r.status.clone().unwrap_or_default()),
            ("type", r.r#type.clone().unwrap_or_default()),
            ("codec", r.codec.clone().unwrap_or_default()),
            (
                "duration",
                r.duration.map(|d| d.to_string()).unwrap_or_default(),
            ),
            ("track_name", r.track_name.clone().unwrap_or_default()),
            ("date_created", r.date_created.clone().unwrap_or_default()),
        ];
        let mtime = r.created().unwrap_or(UNIX_EPOCH);
        let ino = self.add_file(
            MediaRef::recording(&r.sid),
            name,
            r.room(),
            r.size,
            mtime,
            xattrs,
        );
        if !from_listing {
            let mut state = self.state.lock().expect("state lock");
            if !state.recordings.contains(&ino) {
                state.recordings.push(ino);
            }
        }
        Some(ino)
    }

    fn add_composition(&self, c: &Composition, from_listing: bool) -> Option<u64> {
        if !c.status_is("completed") {
            return None;
        }
        let format = c.format.as_deref().unwrap_or_default();
        let Some(name) = names::media_file_name(&c.sid, format) else {
            tracing::warn!(
                "skipping composition {:?}: not a valid SID and format ({format:?})",
                c.sid
            );
            return None;
        };
        let xattrs = vec![
            ("sid", c.sid.clone()),
            ("room_sid", c.room_sid.clone().unwrap_or_default()),
            ("status", c.status.clone().unwrap_or_default()),
            ("type", "composition".to_owned()),
            ("codec", c.format.clone().unwrap_or_default()),
            (
                "duration",
                c.duration.map(|d| d.to_string()).unwrap_or_default(),
            ),
            ("track_name", String::new()),
            ("date_created", c.date_created.clone().unwrap_or_default()),
        ];
        let mtime = c.completed().or_else(|| c.created()).unwrap_or(UNIX_EPOCH);
        let room = c.room_sid.as_deref().filter(|r| names::is_sid(r));
        let ino = self.add_file(
            MediaRef::composition(&c.sid),
            name,
            room,
            c.size,
            mtime,
            xattrs,
        );
        if !from_listing {
            let mut state = self.state.lock().expect("state lock");
            if !state.compositions.contains(&ino) {
                state.compositions.push(ino);
            }
        }
        Some(ino)
    }

    fn add_file(
        &self,
        media: MediaRef,
        name: String,
        room: Option<&str>,
        size: Option<u64>,
        mtime: SystemTime,
        xattrs: Vec<(&'static str, String)>,
    ) -> u64 {
        let mut state = self.state.lock().expect("state lock");
        if let Some(&ino) = state.by_sid.get(&media.sid) {
            return ino; // files never change: the first description stays
        }
        let ino = state.alloc();
        let reader = Arc::new(ObjectReader::new(
            ino,
            media.clone(),
            self.source.clone(),
            self.keys.clone(),
            self.cache.clone(),
            self.config.window,
        ));
        let file = MediaFile {
            ino,
            name,
            is_recording: media.kind == twilio::MediaKind::Recording,
            room: room.filter(|r| names::is_sid(r)).map(str::to_owned),
            listed_size: size.unwrap_or(0),
            mtime,
            xattrs,
            reader,
        };
        state.by_sid.insert(media.sid.clone(), ino);
        state
            .nodes
            .insert(ino, Arc::new(Node::File(Arc::new(file))));
        ino
    }

    /// Opening learns the object's headers (one ranged GET that also fetches the first
    /// window), so that the size is exact from then on and a wrong key fails the open.
    /// Returns the new handle.
    pub async fn open(&self, ino: u64) -> Result<Opened> {
        let fh = self
            .next_handle
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if ino == STATS {
            let text = self.stats_text();
            self.stats_handles
                .lock()
                .expect("stats lock")
                .insert(fh, text);
            return Ok(Opened {
                fh,
                direct_io: true,
            });
        }
        let file = self.file(ino)?;
        self.bounded(file.reader.sid(), file.reader.meta())
            .await
            .inspect_err(|e| {
                self.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("{e}")
            })?;
        // Read-ahead per handle: at most 64 MiB, and a quarter of the cache.
        let max_ahead = (64u64 << 20).min(self.cache.stats().capacity as u64 / 4);
        let handle = Handle {
            prefetch: Prefetcher::new(self.config.window, max_ahead),
            served: Served::new(file.reader.window()),
        };
        self.handles
            .lock()
            .expect("handles lock")
            .insert(fh, handle);
        Ok(Opened {
            fh,
            direct_io: false,
        })
    }

    /// Reads through handle `fh`, starting the read-ahead its pattern calls for, and
    /// drops from the cache the windows this handle now has whole (the kernel's page
    /// cache keeps what it was served: see [`crate::served`]).
    pub async fn read(&self, ino: u64, fh: u64, offset: u64, size: u32) -> Result<Bytes> {
        if ino == STATS {
            let handles = self.stats_handles.lock().expect("stats lock");
            let text = handles.get(&fh).ok_or(Error::NotFound)?;
            let start = (offset as usize).min(text.len());
            let end = start.saturating_add(size as usize).min(text.len());
            return Ok(text.slice(start..end));
        }
        let file = self.file(ino)?;
        let ahead = self
            .handles
            .lock()
            .expect("handles lock")
            .get_mut(&fh)
            .and_then(|h| h.prefetch.on_read(offset, size as u64));
        if let Some((start, end)) = ahead {
            file.reader.prefetch(start, end, &self.prefetch_budget);
        }
        let read = file.reader.read(offset, size as u64);
        let data = self
            .bounded(file.reader.sid(), read)
            .await
            .inspect_err(|e| {
                self.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("{e}")
            })?;
        self.bytes_served
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        if let Some(meta) = file.reader.known_meta() {
            let done = self
                .handles
                .lock()
                .expect("handles lock")
                .get_mut(&fh)
                .map(|h| h.served.record(offset, data.len() as u64, meta.plain_len))
                .unwrap_or_default();
            file.reader.release(&done);
        }
        Ok(data)
    }

    /// `fut` if it answers within [`FsConfig::answer_within`], else a storage error
    /// (EIO). Dropping `fut` cancels its requests; a window that other readers share
    /// is fetched again by the next one who asks.
    async fn bounded<T>(
        &self,
        sid: &str,
        fut: impl std::future::Future<Output = std::result::Result<T, ReadError>>,
    ) -> std::result::Result<T, ReadError> {
        let bound = self.config.answer_within;
        tokio::time::timeout(bound, fut)
            .await
            .unwrap_or_else(|_| {
                Err(ReadError::Storage {
                    sid: sid.to_owned(),
                    message: format!(
                        "no answer from storage within {:.1} s (--retry-budget + --timeout): giving up on this read",
                        bound.as_secs_f64()
                    ),
                })
            })
    }

    pub fn release(&self, fh: u64) {
        self.handles.lock().expect("handles lock").remove(&fh);
        self.stats_handles.lock().expect("stats lock").remove(&fh);
    }

    /// `user.twilio.*` attribute names, NUL-terminated, as `listxattr` returns them.
    pub fn listxattr(&self, ino: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        if ino == STATS {
            return Ok(out);
        }
        if let Node::File(f) = &*self.node(ino)? {
            for name in f.xattrs.iter().map(|(n, _)| *n).chain(["encrypted"]) {
                out.extend_from_slice(format!("user.twilio.{name}\0").as_bytes());
            }
        }
        Ok(out)
    }

    /// One attribute's value. `encrypted` needs the object's headers: it costs the
    /// first window's GET when the file has not been read yet.
    pub async fn getxattr(&self, ino: u64, name: &str) -> Result<Vec<u8>> {
        if ino == STATS {
            return Err(Error::NoXattr);
        }
        let file = match &*self.node(ino)? {
            Node::File(f) => f.clone(),
            Node::Dir(_) => return Err(Error::NoXattr),
        };
        let key = name.strip_prefix("user.twilio.").ok_or(Error::NoXattr)?;
        if key == "encrypted" {
            let meta = self.bounded(file.reader.sid(), file.reader.meta()).await?;
            return Ok(if meta.key.is_some() {
                b"true".to_vec()
            } else {
                b"false".to_vec()
            });
        }
        file.xattrs
            .iter()
            .find(|(n, _)| *n == key)
            .map(|(_, v)| v.as_bytes().to_vec())
            .ok_or(Error::NoXattr)
    }
}

impl State {
    /// A listing's files and when it was made.
    fn listing(&mut self, which: Listing) -> (&mut Vec<u64>, &mut Option<Instant>) {
        match which {
            Listing::Recordings => (&mut self.recordings, &mut self.recordings_listed),
            Listing::Compositions => (&mut self.compositions, &mut self.compositions_listed),
        }
    }

    fn alloc(&mut self) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        ino
    }
}

/// How many windows may be prefetched at once across all files: a sixteenth of what the
/// cache holds, between 2 and 32 (32 with the default 512 MiB and 1 MiB windows). Each
/// one in flight is outside the cache's budget, so this is what keeps the process
/// within `--cache-size` plus a few tens of MiB. Against S3-like storage (20 ms before
/// each answer, 64 MiB/s per connection) a 1 MiB GET takes about 36 ms, so each slot
/// brings about 29 MB/s: `cp` went from 253–260 MB/s with 16 slots to 274–372 with 32.
fn prefetch_slots(cache_bytes: u64, window: u64) -> usize {
    (cache_bytes / window.max(1) / 16).clamp(2, 32) as usize
}

fn file_attr(f: &MediaFile) -> Attr {
    let (size, exact) = match f.reader.known_meta() {
        Some(m) => (m.plain_len, true),
        None => (f.listed_size, false),
    };
    Attr {
        ino: f.ino,
        kind: Kind::File,
        size,
        mtime: f.mtime,
        perm: 0o444,
        exact,
    }
}

/// A 404 for a single resource means "no such file" here, not an I/O error.
fn not_found_or(e: twilio::Error) -> Error {
    match &e {
        twilio::Error::Api { status: 404, .. } => Error::NotFound,
        _ => e.into(),
    }
}

fn dedup_in_order(v: &mut Vec<u64>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(*x));
}
