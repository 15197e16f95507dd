//! The filesystem driven directly, with no kernel and no `/dev/fuse`: [`TwilioFs`] as
//! `mount` builds it ([`app::build`]), over an in-memory account ([`MemoryApi`]) and in-memory storage
//! ([`MemoryStorage`]), with failures injected on either side ([`FaultyApi`],
//! [`FaultySource`]). What the kernel would ask (lookup, getattr, opendir and readdir in
//! chunks, open, read, getxattr, listxattr) is called as plain async functions, and
//! every errno a reader can see is checked here.
//!
//! `runs_without_dev_fuse` runs this whole file again in a mount namespace where
//! `/dev/fuse` is `/dev/null`, to prove none of it needs FUSE.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use twilio_media_fs::app::{self, Backend, MountSettings};
use twilio_media_fs::crypto::PrivateKeys;
use twilio_media_fs::crypto::window::ciphertext_len;
use twilio_media_fs::faults::{ApiCall, FaultyApi, FaultySource};
use twilio_media_fs::fs::{self, Error, Kind, TwilioFs};
use twilio_media_fs::object::{Fetched, MemoryStorage, ObjectError, ObjectSource};
use twilio_media_fs::read::{self, ReadError};
use twilio_media_fs::twilio::{self, Composition, GroupingSids, MemoryApi, Recording};

/// Plaintext bytes per window: small, so that files of a few KiB span many windows.
const WINDOW: u64 = 1024;
const ROOM_A: &str = "RMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const ROOM_B: &str = "RMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// An account in memory and the filesystem over it.
struct Account {
    api: Arc<MemoryApi>,
    faulty_api: Arc<FaultyApi>,
    storage: Arc<MemoryStorage>,
    faulty: Arc<FaultySource>,
    fs: Arc<TwilioFs>,
    key: rsa::PrivateKey,
}

#[derive(Clone)]
struct Options {
    refresh: Duration,
    answer_within: Duration,
    /// The longest a whole listing may take.
    listing_deadline: Duration,
    since: Option<String>,
    /// The size cache's directory (none: in memory only).
    metadata_cache: Option<PathBuf>,
    exact_sizes: bool,
    require_encrypted: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            refresh: Duration::from_secs(3600),
            answer_within: Duration::from_secs(10),
            listing_deadline: Duration::from_secs(60),
            since: None,
            metadata_cache: None,
            exact_sizes: false,
            require_encrypted: false,
        }
    }
}

fn account(o: Options) -> Account {
    let key = common::mount::keys().private[0].clone();
    let api = Arc::new(MemoryApi::new());
    let faulty_api = Arc::new(FaultyApi::new(api.clone()));
    let storage = Arc::new(MemoryStorage::new());
    let faulty = Arc::new(FaultySource::new(storage.clone()));
    let fs = filesystem(&o, faulty_api.clone(), faulty.clone());
    Account {
        api,
        faulty_api,
        storage,
        faulty,
        fs,
        key,
    }
}

/// The filesystem `mount` would build with options `o`, over this API and storage.
fn filesystem(
    o: &Options,
    api: Arc<dyn twilio::Api>,
    source: Arc<dyn ObjectSource>,
) -> Arc<TwilioFs> {
    let mut keys = PrivateKeys::new();
    keys.add("account.pem", common::mount::keys().private[0].clone());
    let settings = MountSettings {
        uid: 0,
        gid: 0,
        window: WINDOW,
        cache_size: 64 * WINDOW,
        refresh: o.refresh,
        listing_deadline: o.listing_deadline,
        rooms: Vec::new(),
        since: o.since.clone(),
        metadata_cache: o.metadata_cache.clone(),
        exact_sizes: o.exact_sizes,
        require_encrypted: o.require_encrypted,
    };
    let backend = Backend {
        api,
        source,
        io: Arc::default(),
        answer_within: o.answer_within,
    };
    app::build(&settings, backend, Arc::new(keys))
}

fn plaintext(n: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64 * 31 + n * 7 + i as u64 / 251) as u8)
        .collect()
}

/// [`plaintext`] that starts like a Matroska file (its EBML magic): what an object
/// stored unencrypted must look like to be served ([`read::unencrypted`]).
fn matroska(n: u64, len: usize) -> Vec<u8> {
    let mut v = plaintext(n, len);
    v[..4].copy_from_slice(&read::unencrypted::EBML_MAGIC);
    v
}

fn rt(n: u64) -> String {
    format!("RT{n:032x}")
}

fn cj(n: u64) -> String {
    format!("CJ{n:032x}")
}

impl Account {
    /// Another filesystem over the same account and storage, as a new mount would be.
    fn remount(&self, o: &Options) -> Arc<TwilioFs> {
        filesystem(o, self.faulty_api.clone(), self.faulty.clone())
    }

    /// A completed recording of `len` plaintext bytes in `room`, sealed for the
    /// account's key; returns its plaintext.
    fn recording(&self, n: u64, room: &str, len: usize) -> Vec<u8> {
        let plain = plaintext(n, len);
        let stored = self
            .storage
            .put_sealed(&rt(n), &plain, &self.key, n.is_multiple_of(2));
        self.api.put(Recording {
            sid: rt(n),
            status: Some("completed".into()),
            container_format: Some(if n.is_multiple_of(3) { "mkv" } else { "mka" }.into()),
            codec: Some(if n.is_multiple_of(3) { "VP8" } else { "opus" }.into()),
            r#type: Some(
                if n.is_multiple_of(3) {
                    "video"
                } else {
                    "audio"
                }
                .into(),
            ),
            size: Some(stored),
            duration: Some(n),
            date_created: Some(format!("2026-11-{:02}T10:00:00Z", 1 + n % 28)),
            grouping_sids: Some(GroupingSids {
                room_sid: Some(room.into()),
                participant_sid: Some(format!("PA{n:032x}")),
            }),
            track_name: Some(format!("track-{n}")),
            offset: Some(1000 * n),
            source_sid: Some(format!("MT{n:032x}")),
            ..Default::default()
        });
        plain
    }

    fn composition(&self, n: u64, room: &str, len: usize) -> Vec<u8> {
        let plain = plaintext(100 + n, len);
        let stored = self.storage.put_sealed(&cj(n), &plain, &self.key, true);
        self.api.put(Composition {
            sid: cj(n),
            status: Some("completed".into()),
            format: Some("mp4".into()),
            size: Some(stored),
            duration: Some(60),
            room_sid: Some(room.into()),
            resolution: Some("1280x720".into()),
            bitrate: Some(300),
            date_created: Some("2026-11-20T10:00:00Z".into()),
            date_completed: Some("2026-11-20T11:00:00Z".into()),
            ..Default::default()
        });
        plain
    }

    /// The names in directory `ino`, read in chunks of `chunk` entries as the kernel
    /// does, `.` and `..` left out.
    async fn ls(&self, ino: u64) -> Result<Vec<String>, Error> {
        ls_in(&self.fs, ino).await
    }

    /// Recording `n`'s file name.
    fn fs_name(&self, n: u64) -> String {
        let ext = if n.is_multiple_of(3) { "mkv" } else { "mka" };
        format!("{}.{ext}", rt(n))
    }

    async fn lookup(&self, parent: u64, name: &str) -> Result<fs::Attr, Error> {
        self.fs.lookup(parent, name).await
    }

    /// The whole file at `path` (`recordings/RT….mka`), read in `chunk`-byte reads.
    async fn read_all(&self, ino: u64, chunk: u32) -> Result<Vec<u8>, Error> {
        read_all_in(&self.fs, ino, chunk).await
    }
}

/// [`Account::ls`] in filesystem `fs`.
async fn ls_in(fs: &TwilioFs, ino: u64) -> Result<Vec<String>, Error> {
    let fh = fs.opendir(ino)?;
    let mut names = Vec::new();
    let mut offset = 0;
    loop {
        let entries = fs.readdir(ino, fh, offset).await?;
        let chunk: Vec<_> = entries.iter().skip(offset as usize).take(3).collect();
        if chunk.is_empty() {
            break;
        }
        offset += chunk.len() as u64;
        names.extend(chunk.into_iter().map(|e| e.name.clone()));
    }
    fs.releasedir(fh);
    Ok(names
        .into_iter()
        .filter(|n| n != "." && n != "..")
        .collect())
}

/// [`Account::read_all`] in filesystem `fs`.
async fn read_all_in(fs: &TwilioFs, ino: u64, chunk: u32) -> Result<Vec<u8>, Error> {
    let fh = fs.open(ino).await?.fh;
    let mut out = Vec::new();
    loop {
        let got = fs.read(ino, fh, out.len() as u64, chunk).await?;
        if got.is_empty() {
            break;
        }
        out.extend_from_slice(&got);
    }
    fs.release(fh);
    Ok(out)
}

fn re(n: u64) -> String {
    format!("RE{n:032x}")
}

fn ca(n: u64) -> String {
    format!("CA{n:032x}")
}

impl Account {
    /// A completed call recording `n` of `len` plaintext bytes in call `call`, sealed
    /// as Twilio seals them (AES-256-GCM for the account's key) or, if not `encrypted`,
    /// stored as a WAV; returns its plaintext.
    fn call_recording(&self, n: u64, call: &str, len: usize, encrypted: bool) -> Vec<u8> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut plain = plaintext(200 + n, len);
        let details = if encrypted {
            let (stored, env) = twilio_media_fs::crypto::seal::seal_gcm(
                &self.key.to_public_key(),
                Some("CR00000000000000000000000000000001"),
                &plain,
            );
            self.storage.put(&re(n), stored, Vec::new());
            Some(twilio::EncryptionDetails {
                public_key_sid: env.public_key_sid,
                encrypted_cek: Some(b64.encode(&env.wrapped_key)),
                iv: Some(b64.encode(env.iv)),
            })
        } else {
            plain[..4].copy_from_slice(b"RIFF");
            plain[8..12].copy_from_slice(b"WAVE");
            self.storage.put(&re(n), plain.clone(), Vec::new());
            None
        };
        self.api.put(twilio::VoiceRecording {
            sid: re(n),
            status: Some("completed".into()),
            call_sid: Some(call.into()),
            channels: Some(1 + n % 2),
            source: Some("DialVerb".into()),
            duration: Some(n),
            date_created: Some(format!("Fri, {:02} Nov 2026 10:00:00 +0000", 1 + n % 28)),
            start_time: Some(format!("Fri, {:02} Nov 2026 09:59:58 +0000", 1 + n % 28)),
            encryption_details: details,
            ..Default::default()
        });
        plain
    }
}

/// Issue 17: call recordings in `voice/` and `calls/CA…/`, read as their plaintext at
/// any offset, sized exactly without a key, with their fields as attributes; the same
/// inode in both directories.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_recordings_in_voice_and_in_their_call() {
    let a = account(Options::default());
    a.recording(1, ROOM_A, 100);
    let one = a.call_recording(1, &ca(1), 5000, true);
    let two = a.call_recording(2, &ca(1), 3000, true);
    let plain = a.call_recording(3, &ca(2), 2000, false);
    assert_eq!(
        a.ls(fs::ROOT).await.unwrap(),
        ["recordings", "compositions", "rooms", "voice", "calls"]
    );
    assert_eq!(
        a.ls(fs::VOICE).await.unwrap(),
        [1, 2, 3].map(|n| format!("{}.wav", re(n)))
    );
    assert_eq!(a.ls(fs::CALLS).await.unwrap(), [ca(1), ca(2)]);
    assert_eq!(
        a.ls(fs::ROOMS).await.unwrap(),
        [ROOM_A],
        "calls are no rooms"
    );
    let call = a.lookup(fs::CALLS, &ca(1)).await.unwrap();
    assert_eq!(
        a.ls(call.ino).await.unwrap(),
        [format!("{}.wav", re(1)), format!("{}.wav", re(2))]
    );
    assert_eq!(
        errno(a.lookup(fs::ROOMS, &ca(1)).await),
        libc::ENOENT,
        "a call is not under rooms/"
    );

    // Sized in the background with one 16-byte GET each: the Voice API lists no size.
    let mut inos = Vec::new();
    for n in [1, 2, 3] {
        inos.push(
            a.lookup(fs::VOICE, &format!("{}.wav", re(n)))
                .await
                .unwrap()
                .ino,
        );
    }
    until("call recordings sized", || {
        inos.iter().all(|&ino| a.fs.getattr(ino).unwrap().exact)
    })
    .await;
    assert_eq!(a.storage.bytes_served(), 3 * 16, "one block each");
    let attr = a.fs.getattr(inos[0]).unwrap();
    assert_eq!((attr.size, attr.exact, attr.nlink), (5000, true, 2));
    let in_call = a.lookup(call.ino, &format!("{}.wav", re(1))).await.unwrap();
    assert_eq!(in_call.ino, attr.ino);

    for (n, want) in [(1, &one), (2, &two), (3, &plain)] {
        let attr = a
            .lookup(fs::VOICE, &format!("{}.wav", re(n)))
            .await
            .unwrap();
        for chunk in [1000, 4096, 7] {
            assert_eq!(
                &a.read_all(attr.ino, chunk).await.unwrap(),
                want,
                "{n}/{chunk}"
            );
        }
    }
    assert_eq!(xattr(&a, attr.ino, "call_sid").await.unwrap(), ca(1));
    assert_eq!(xattr(&a, attr.ino, "channels").await.unwrap(), "2");
    assert_eq!(xattr(&a, attr.ino, "source").await.unwrap(), "DialVerb");
    assert_eq!(xattr(&a, attr.ino, "encrypted").await.unwrap(), "true");
    assert_eq!(
        xattr(&a, attr.ino, "public_key_sid").await.unwrap(),
        "CR00000000000000000000000000000001"
    );
    assert_eq!(
        errno(xattr(&a, attr.ino, "conference_sid").await),
        libc::ENODATA
    );
    let names = xattr_names(&a, attr.ino).await;
    assert_eq!(
        names.matches("user.twilio.encrypted\0").count(),
        1,
        "{names}"
    );
    let unencrypted = a
        .lookup(fs::VOICE, &format!("{}.wav", re(3)))
        .await
        .unwrap();
    assert_eq!(
        xattr(&a, unencrypted.ino, "encrypted").await.unwrap(),
        "false"
    );
}

/// Issue 17: one changed byte of a call recording fails a whole read (EIO at its end);
/// a wrong key fails the open with EACCES.
#[tokio::test]
async fn a_tampered_call_recording_fails_a_whole_read_and_a_wrong_key_eacces() {
    let a = account(Options::default());
    a.call_recording(1, &ca(1), 5000, true);
    let mut stored = a.storage.object(&re(1)).unwrap().data.to_vec();
    stored[1234] ^= 1;
    a.storage.put(&re(1), stored, Vec::new());
    let attr = a
        .lookup(fs::VOICE, &format!("{}.wav", re(1)))
        .await
        .unwrap();
    assert_eq!(errno(a.read_all(attr.ino, 4096).await), libc::EIO);

    let b = account(Options::default());
    let other = seal_other_key(&b);
    let attr = b
        .lookup(fs::VOICE, &format!("{}.wav", re(other)))
        .await
        .unwrap();
    assert_eq!(errno(b.fs.open(attr.ino).await), libc::EACCES);
}

/// A call recording sealed for a key the mount does not have; returns its number.
fn seal_other_key(a: &Account) -> u64 {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let other = twilio_media_fs::crypto::seal::generate_key(1024);
    let (stored, env) =
        twilio_media_fs::crypto::seal::seal_gcm(&other.to_public_key(), None, &[7u8; 100]);
    a.storage.put(&re(9), stored, Vec::new());
    a.api.put(twilio::VoiceRecording {
        sid: re(9),
        status: Some("completed".into()),
        call_sid: Some(ca(9)),
        encryption_details: Some(twilio::EncryptionDetails {
            public_key_sid: None,
            encrypted_cek: Some(b64.encode(&env.wrapped_key)),
            iv: Some(b64.encode(env.iv)),
        }),
        ..Default::default()
    });
    9
}

/// Builds the error a storage (or API) fault answers with.
type StorageFault = fn(&str) -> ObjectError;
type ApiFault = fn(&str) -> twilio::Error;

fn errno<T: std::fmt::Debug>(r: Result<T, Error>) -> i32 {
    r.expect_err("an error").errno()
}

#[tokio::test]
async fn the_tree_its_names_and_sizes() {
    let a = account(Options::default());
    let plain = a.recording(1, ROOM_A, 5000);
    a.recording(3, ROOM_B, 100);
    let comp = a.composition(1, ROOM_A, 3000);
    // One that is not completed and one whose format cannot make a name: not shown.
    a.api.put(Recording {
        sid: rt(7),
        status: Some("processing".into()),
        container_format: Some("mka".into()),
        ..Default::default()
    });
    a.api.put(Recording {
        sid: rt(8),
        status: Some("completed".into()),
        container_format: Some("mp4/../x".into()),
        ..Default::default()
    });

    assert_eq!(
        a.ls(fs::ROOT).await.unwrap(),
        ["recordings", "compositions", "rooms", "voice", "calls"]
    );
    assert_eq!(
        a.ls(fs::RECORDINGS).await.unwrap(),
        [format!("{}.mka", rt(1)), format!("{}.mkv", rt(3))]
    );
    assert_eq!(
        a.ls(fs::COMPOSITIONS).await.unwrap(),
        [format!("{}.mp4", cj(1))]
    );
    assert_eq!(a.ls(fs::ROOMS).await.unwrap(), [ROOM_A, ROOM_B]);
    let room = a.lookup(fs::ROOMS, ROOM_A).await.unwrap();
    assert_eq!(room.kind, Kind::Dir);
    assert_eq!(
        a.ls(room.ino).await.unwrap(),
        [format!("{}.mka", rt(1)), format!("{}.mp4", cj(1))]
    );

    // Before an open, the listed (stored) size, not final; after, the exact plaintext size.
    let attr = a
        .lookup(fs::RECORDINGS, &format!("{}.mka", rt(1)))
        .await
        .unwrap();
    assert_eq!(
        (attr.kind, attr.perm, attr.exact),
        (Kind::File, 0o444, false)
    );
    assert_eq!(attr.size, 5008, "ciphertext: 5000 + 8 bytes of padding");
    let created = std::time::UNIX_EPOCH + Duration::from_secs(1_793_613_600); // 2026-11-02T10:00Z
    assert_eq!(attr.mtime, created);
    let opened = a.fs.open(attr.ino).await.unwrap();
    assert!(!opened.direct_io);
    let attr = a.fs.getattr(attr.ino).unwrap();
    assert_eq!((attr.size, attr.exact), (plain.len() as u64, true));
    a.fs.release(opened.fh);
    // The same file in its room directory is the same inode.
    let in_room = a.lookup(room.ino, &format!("{}.mka", rt(1))).await.unwrap();
    assert_eq!(in_room.ino, attr.ino);
    // A composition's time is its completion.
    let c = a
        .lookup(fs::COMPOSITIONS, &format!("{}.mp4", cj(1)))
        .await
        .unwrap();
    assert_eq!(a.read_all(c.ino, 4096).await.unwrap(), comp);
    let dirs = a.fs.getattr(fs::RECORDINGS).unwrap();
    assert_eq!((dirs.kind, dirs.perm), (Kind::Dir, 0o555));
}

#[tokio::test]
async fn getattr_and_known_lookups_make_no_request() {
    let a = account(Options::default());
    for n in 1..=20 {
        a.recording(n, ROOM_A, 100);
    }
    let names = a.ls(fs::RECORDINGS).await.unwrap();
    let calls = a.api.calls();
    let gets = a.storage.gets();
    for name in &names {
        let attr = a.lookup(fs::RECORDINGS, name).await.unwrap();
        a.fs.getattr(attr.ino).unwrap();
    }
    assert_eq!(a.api.calls(), calls, "no API call per file");
    assert_eq!(a.storage.gets(), gets, "no storage GET per file");
}

#[tokio::test]
async fn lookup_by_name_and_by_unlisted_sid() {
    let a = account(Options {
        since: Some("2026-11-10T00:00:00Z".into()),
        ..Default::default()
    });
    a.recording(20, ROOM_A, 100); // created on the 21st: listed
    let old = a.recording(2, ROOM_A, 700); // created on the 3rd: not listed
    assert_eq!(
        a.ls(fs::RECORDINGS).await.unwrap(),
        [format!("{}.mka", rt(20))]
    );
    let before = a.api.calls().resources;
    // Named by SID, it is fetched as one resource, and reads.
    let attr = a
        .lookup(fs::RECORDINGS, &format!("{}.mka", rt(2)))
        .await
        .unwrap();
    assert_eq!(a.api.calls().resources, before + 1);
    assert_eq!(a.read_all(attr.ino, 100).await.unwrap(), old);
    // Found once, it stays: no second request, and it shows in the directory.
    a.lookup(fs::RECORDINGS, &format!("{}.mka", rt(2)))
        .await
        .unwrap();
    assert_eq!(a.api.calls().resources, before + 1);
    assert!(
        a.ls(fs::RECORDINGS)
            .await
            .unwrap()
            .contains(&format!("{}.mka", rt(2)))
    );

    // Names that cannot be: ENOENT, and no request for them.
    for name in [
        format!("{}.mp4", rt(20)), // a recording is no mp4
        format!("{}.mkv", rt(20)), // its container is mka
        format!("{}.mka", cj(1)),  // a composition in recordings/
        rt(20),                    // no extension
        "RTnothex0000000000000000000000000.mka".into(),
        "..".into(),
        ".stats".into(),
    ] {
        assert_eq!(
            errno(a.lookup(fs::RECORDINGS, &name).await),
            libc::ENOENT,
            "{name}"
        );
    }
    // A SID the account does not have: one request, then ENOENT.
    assert_eq!(
        errno(a.lookup(fs::RECORDINGS, &format!("{}.mka", rt(99))).await),
        libc::ENOENT
    );
    // Not a directory / is a directory.
    assert_eq!(errno(a.lookup(attr.ino, "x").await), libc::ENOTDIR);
    assert_eq!(errno(a.fs.open(fs::RECORDINGS).await), libc::EISDIR);
    assert_eq!(errno(a.fs.getattr(12345)), libc::ENOENT);
}

/// Issue 16, item 8: every made-up name cost an API request, so 200 `stat`s made 200
/// and any local user (with `--allow-other`) could spend the account's rate. Misses
/// are remembered for the refresh interval and fetches of unlisted SIDs rationed.
#[tokio::test]
async fn made_up_sids_cost_a_bounded_number_of_requests() {
    use fs::unlisted::{BURST, PER_SECOND};
    let refresh = Duration::from_millis(400);
    let a = account(Options {
        refresh,
        since: Some("2026-11-10T00:00:00Z".into()),
        ..Default::default()
    });
    a.recording(20, ROOM_A, 100); // created on the 21st: listed
    let listed = format!("{}.mka", rt(20));
    a.ls(fs::RECORDINGS).await.unwrap();
    let before = a.api.calls().resources;
    let started = std::time::Instant::now();
    for n in 1000..1200 {
        let name = format!("{}.mka", rt(n));
        assert_eq!(errno(a.lookup(fs::RECORDINGS, &name).await), libc::ENOENT);
    }
    let secs = started.elapsed().as_secs_f64().ceil() as u64;
    let made = a.api.calls().resources - before;
    let bound = u64::from(BURST) + u64::from(PER_SECOND) * secs;
    assert!(
        made <= bound,
        "{made} requests for 200 made-up SIDs (bound {bound})"
    );
    // A listed name is found with no request, whatever the flood did.
    a.lookup(fs::RECORDINGS, &listed).await.unwrap();
    assert_eq!(a.api.calls().resources - before, made);

    // An unlisted SID (outside --since) that is not there yet: one request, then it is
    // remembered as missing: once it exists, it is found after the refresh interval.
    let late = format!("{}.mka", rt(2));
    tokio::time::sleep(Duration::from_millis(300)).await; // a few tokens back
    let before = a.api.calls().resources;
    assert_eq!(errno(a.lookup(fs::RECORDINGS, &late).await), libc::ENOENT);
    assert_eq!(a.api.calls().resources, before + 1);
    let plain = a.recording(2, ROOM_A, 700); // created on the 3rd: never listed
    assert_eq!(errno(a.lookup(fs::RECORDINGS, &late).await), libc::ENOENT);
    assert_eq!(a.api.calls().resources, before + 1, "a remembered miss");
    tokio::time::sleep(refresh).await;
    let attr = a.lookup(fs::RECORDINGS, &late).await.unwrap();
    assert_eq!(a.api.calls().resources, before + 2);
    assert_eq!(a.read_all(attr.ino, 100).await.unwrap(), plain);
}

/// The kernel reads a directory in chunks; a listing refreshed between two of them
/// must neither skip nor repeat an entry of what the handle started reading.
#[tokio::test]
async fn readdir_in_chunks_with_a_refresh_between_them() {
    let a = account(Options {
        refresh: Duration::ZERO, // every read from the start lists again
        ..Default::default()
    });
    for n in 1..=10 {
        a.recording(n, ROOM_A, 64);
    }
    let fh = a.fs.opendir(fs::RECORDINGS).unwrap();
    let first = a.fs.readdir(fs::RECORDINGS, fh, 0).await.unwrap();
    let snapshot: Vec<String> = first.iter().map(|e| e.name.clone()).collect();
    assert_eq!(snapshot.len(), 12, ". .. and ten files");
    let mut seen: Vec<String> = first.iter().take(5).map(|e| e.name.clone()).collect();

    // Between chunks: three files gone, four new, and a fresh listing made by another
    // reader (a second `ls` reading from the start).
    for n in [2, 3, 4] {
        a.api.remove(&rt(n));
    }
    for n in 11..=14 {
        a.recording(n, ROOM_A, 64);
    }
    let other = a.ls(fs::RECORDINGS).await.unwrap();
    assert_eq!(other.len(), 11, "the other reader sees the new listing");

    let mut offset = 5;
    loop {
        let entries = a.fs.readdir(fs::RECORDINGS, fh, offset).await.unwrap();
        let chunk: Vec<_> = entries.iter().skip(offset as usize).take(2).collect();
        if chunk.is_empty() {
            break;
        }
        offset += chunk.len() as u64;
        seen.extend(chunk.into_iter().map(|e| e.name.clone()));
    }
    assert_eq!(seen, snapshot, "no entry lost or repeated");
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());

    // Reading the same handle from the start again (rewinddir) takes a new snapshot.
    let again = a.fs.readdir(fs::RECORDINGS, fh, 0).await.unwrap();
    assert_eq!(again.len(), 13);
    a.fs.releasedir(fh);
    assert_eq!(
        errno(a.fs.readdir(fs::RECORDINGS, fh, 0).await),
        libc::EBADF
    );
}

/// `listxattr` of `ino` as text, names separated by NULs.
async fn xattr_names(a: &Account, ino: u64) -> String {
    String::from_utf8(a.fs.listxattr(ino).await.unwrap()).unwrap()
}

/// `user.twilio.NAME` of `ino`, as text.
async fn xattr(a: &Account, ino: u64, name: &str) -> Result<String, Error> {
    let v = a.fs.getxattr(ino, &format!("user.twilio.{name}")).await?;
    Ok(String::from_utf8(v).unwrap())
}

/// Issue 12: each kind shows the API's own fields under their names, and a field with
/// no value is no attribute (ENODATA), never an empty one.
#[tokio::test]
async fn every_extended_attribute() {
    let a = account(Options::default());
    a.recording(3, ROOM_A, 100);
    a.composition(1, ROOM_B, 100);
    a.storage.put(&rt(5), matroska(5, 300), Vec::new()); // stored unencrypted
    a.api.put(Recording {
        sid: rt(5),
        status: Some("completed".into()),
        container_format: Some("mka".into()),
        track_name: Some(String::new()),
        codec: Some(String::new()),
        ..Default::default()
    });
    let rec = a
        .lookup(fs::RECORDINGS, &format!("{}.mkv", rt(3)))
        .await
        .unwrap();
    let want = [
        ("sid", rt(3)),
        ("room_sid", ROOM_A.into()),
        ("status", "completed".into()),
        ("type", "video".into()),
        ("container_format", "mkv".into()),
        ("codec", "VP8".into()),
        ("duration", "3".into()),
        ("track_name", "track-3".into()),
        ("offset", "3000".into()),
        ("participant_sid", format!("PA{:032x}", 3)),
        ("source_sid", format!("MT{:032x}", 3)),
        ("date_created", "2026-11-04T10:00:00Z".into()),
        ("encrypted", "true".into()),
    ];
    let listed = |want: &[(&str, String)]| {
        want.iter()
            .map(|(n, _)| format!("user.twilio.{n}\0"))
            .collect::<String>()
    };
    assert_eq!(xattr_names(&a, rec.ino).await, listed(&want));
    for (name, value) in &want {
        assert_eq!(&xattr(&a, rec.ino, name).await.unwrap(), value, "{name}");
    }

    let comp = a
        .lookup(fs::COMPOSITIONS, &format!("{}.mp4", cj(1)))
        .await
        .unwrap();
    let want = [
        ("sid", cj(1)),
        ("room_sid", ROOM_B.into()),
        ("status", "completed".into()),
        ("format", "mp4".into()),
        ("resolution", "1280x720".into()),
        ("bitrate", "300".into()),
        ("duration", "60".into()),
        ("date_created", "2026-11-20T10:00:00Z".into()),
        ("date_completed", "2026-11-20T11:00:00Z".into()),
        ("encrypted", "true".into()),
    ];
    assert_eq!(xattr_names(&a, comp.ino).await, listed(&want));
    for (name, value) in &want {
        assert_eq!(&xattr(&a, comp.ino, name).await.unwrap(), value, "{name}");
    }
    // A composition is not a track: none of a recording's own fields.
    for name in ["type", "codec", "track_name", "container_format", "offset"] {
        assert_eq!(
            errno(xattr(&a, comp.ino, name).await),
            libc::ENODATA,
            "{name}"
        );
    }

    // Fields missing or empty are left out, and answer ENODATA.
    let plain = a
        .lookup(fs::RECORDINGS, &format!("{}.mka", rt(5)))
        .await
        .unwrap();
    assert_eq!(
        xattr_names(&a, plain.ino).await,
        "user.twilio.sid\0user.twilio.status\0user.twilio.container_format\0\
         user.twilio.encrypted\0"
    );
    for name in ["room_sid", "codec", "track_name", "duration", "offset"] {
        assert_eq!(
            errno(xattr(&a, plain.ino, name).await),
            libc::ENODATA,
            "{name}"
        );
    }
    assert_eq!(xattr(&a, plain.ino, "encrypted").await.unwrap(), "false");
    assert_eq!(a.read_all(plain.ino, 77).await.unwrap(), matroska(5, 300));

    // Unknown names, other namespaces, directories but rooms, and .stats have none.
    for (ino, name) in [
        (rec.ino, "user.twilio.nope"),
        (rec.ino, "user.other"),
        (rec.ino, "security.selinux"),
        (fs::RECORDINGS, "user.twilio.sid"),
        (fs::ROOMS, "user.twilio.sid"),
        (fs::ROOT, "user.twilio.sid"),
        (fs::STATS, "user.twilio.sid"),
    ] {
        assert_eq!(
            errno(a.fs.getxattr(ino, name).await),
            libc::ENODATA,
            "{name}"
        );
    }
    for ino in [fs::ROOT, fs::RECORDINGS, fs::ROOMS, fs::STATS] {
        assert!(a.fs.listxattr(ino).await.unwrap().is_empty(), "{ino}");
    }
    assert_eq!(Error::XattrRange.errno(), libc::ERANGE);
}

/// Issue 12: a room directory shows its room, fetched on the first getxattr or
/// listxattr and kept; getattr, readdir and lookups never fetch it.
#[tokio::test]
async fn room_directories_show_their_room() {
    let a = account(Options::default());
    a.recording(1, ROOM_A, 100);
    a.composition(2, ROOM_B, 100);
    a.api.put_room(twilio::Room {
        sid: ROOM_A.into(),
        unique_name: Some("daily-standup".into()),
        status: Some("completed".into()),
        r#type: Some("group".into()),
        date_created: Some("2026-11-01T09:00:00Z".into()),
        end_time: Some("2026-11-01T11:00:00Z".into()),
        duration: Some(7200),
        ..Default::default()
    });
    // No name, no type: left out.
    a.api.put_room(twilio::Room {
        sid: ROOM_B.into(),
        unique_name: Some(String::new()),
        status: Some("in-progress".into()),
        date_created: Some("2026-11-02T09:00:00Z".into()),
        ..Default::default()
    });
    assert_eq!(a.ls(fs::ROOMS).await.unwrap(), [ROOM_A, ROOM_B]);
    let room_a = a.lookup(fs::ROOMS, ROOM_A).await.unwrap();
    let room_b = a.lookup(fs::ROOMS, ROOM_B).await.unwrap();
    a.ls(room_a.ino).await.unwrap();
    a.fs.getattr(room_a.ino).unwrap();
    // Names of other namespaces (`ls -l` asks for security.selinux and ACLs) neither.
    for name in ["security.selinux", "system.posix_acl_access", "user.other"] {
        assert_eq!(errno(a.fs.getxattr(room_a.ino, name).await), libc::ENODATA);
    }
    assert_eq!(
        a.api.calls().rooms,
        0,
        "no room fetched by ls, stat or lookup"
    );

    let want = [
        ("sid", ROOM_A),
        ("unique_name", "daily-standup"),
        ("status", "completed"),
        ("type", "group"),
        ("date_created", "2026-11-01T09:00:00Z"),
        ("duration", "7200"),
    ];
    assert_eq!(
        xattr_names(&a, room_a.ino).await,
        want.iter()
            .map(|(n, _)| format!("user.twilio.{n}\0"))
            .collect::<String>()
    );
    for (name, value) in want {
        assert_eq!(xattr(&a, room_a.ino, name).await.unwrap(), value, "{name}");
    }
    assert_eq!(
        errno(xattr(&a, room_a.ino, "encrypted").await),
        libc::ENODATA
    );
    assert_eq!(errno(xattr(&a, room_a.ino, "nope").await), libc::ENODATA);
    assert_eq!(a.api.calls().rooms, 1, "fetched once, then kept");

    assert_eq!(
        xattr_names(&a, room_b.ino).await,
        "user.twilio.sid\0user.twilio.status\0user.twilio.date_created\0"
    );
    for name in ["unique_name", "type", "duration"] {
        assert_eq!(
            errno(xattr(&a, room_b.ino, name).await),
            libc::ENODATA,
            "{name}"
        );
    }
    assert_eq!(a.api.calls().rooms, 2);
    assert_eq!(a.fs.getattr(room_a.ino).unwrap().nlink, 2);
}

/// A room fetch that fails answers the errno a failed request always does, and is
/// tried again next time; concurrent first askers share one fetch.
#[tokio::test]
async fn room_fetches_fail_like_other_requests_and_are_shared() {
    let a = account(Options::default());
    a.recording(1, ROOM_A, 100);
    a.recording(2, ROOM_B, 100);
    a.api.put_room(twilio::Room {
        sid: ROOM_A.into(),
        status: Some("completed".into()),
        ..Default::default()
    });
    a.ls(fs::ROOMS).await.unwrap();
    let room_a = a.lookup(fs::ROOMS, ROOM_A).await.unwrap().ino;
    let room_b = a.lookup(fs::ROOMS, ROOM_B).await.unwrap().ino;
    let cases: [(ApiFault, i32); 3] = [
        (|_| api_error(403), libc::EACCES),
        (|_| api_error(404), libc::ENOENT),
        (|_| api_error(503), libc::EIO),
    ];
    for (make, want) in cases {
        a.faulty_api.fail(ApiCall::Room, Some(1), make);
        assert_eq!(errno(a.fs.listxattr(room_a).await), want);
    }
    assert_eq!(a.faulty_api.injected(), 3);
    // Not in the account (as the API would answer for a room it does not know).
    assert_eq!(errno(xattr(&a, room_b, "sid").await), libc::ENOENT);

    a.faulty_api.delay(ApiCall::Room, Duration::from_millis(50));
    let before = a.api.calls().rooms;
    let (one, two) = tokio::join!(xattr(&a, room_a, "status"), a.fs.listxattr(room_a));
    assert_eq!(one.unwrap(), "completed");
    assert_eq!(two.unwrap(), b"user.twilio.sid\0user.twilio.status\0");
    assert_eq!(a.api.calls().rooms, before + 1, "one fetch for both");
}

/// Issue 12: a file listed in `recordings/` and in `rooms/RM…/` is one inode with two
/// links, so `du` counts it once; a file with no room has one.
#[tokio::test]
async fn files_in_a_room_have_two_links() {
    let a = account(Options::default());
    a.recording(1, ROOM_A, 100);
    a.composition(1, ROOM_A, 100);
    a.storage.put(&rt(5), plaintext(5, 300), Vec::new());
    a.api.put(Recording {
        sid: rt(5),
        status: Some("completed".into()),
        container_format: Some("mka".into()),
        ..Default::default()
    });
    let room = a.lookup(fs::ROOMS, ROOM_A).await.unwrap();
    let names = a.ls(room.ino).await.unwrap();
    assert_eq!(names.len(), 2);
    for name in &names {
        let in_room = a.lookup(room.ino, name).await.unwrap();
        let dir = if name.starts_with("RT") {
            fs::RECORDINGS
        } else {
            fs::COMPOSITIONS
        };
        let in_kind = a.lookup(dir, name).await.unwrap();
        assert_eq!(in_room.ino, in_kind.ino, "{name}: one inode");
        assert_eq!(in_room.nlink, 2, "{name}");
        assert_eq!(a.fs.getattr(in_room.ino).unwrap().nlink, 2);
    }
    let alone = a
        .lookup(fs::RECORDINGS, &format!("{}.mka", rt(5)))
        .await
        .unwrap();
    assert_eq!(alone.nlink, 1, "in recordings/ only");
    for ino in [
        fs::ROOT,
        fs::RECORDINGS,
        fs::COMPOSITIONS,
        fs::ROOMS,
        room.ino,
    ] {
        assert_eq!(a.fs.getattr(ino).unwrap().nlink, 2, "directory {ino}");
    }
    assert_eq!(a.fs.getattr(fs::STATS).unwrap().nlink, 1);
}

#[tokio::test]
async fn stats_opens_by_name_and_counts_what_happens() {
    let a = account(Options::default());
    let plain = a.recording(1, ROOM_A, 10 * WINDOW as usize);
    assert!(!a.ls(fs::ROOT).await.unwrap().contains(&".stats".to_owned()));
    let stats = a.lookup(fs::ROOT, ".stats").await.unwrap();
    assert_eq!((stats.ino, stats.exact), (fs::STATS, false));
    let read_stats = || async {
        let o = a.fs.open(fs::STATS).await.unwrap();
        assert!(o.direct_io);
        let text = a.fs.read(fs::STATS, o.fh, 0, 1 << 16).await.unwrap();
        a.fs.release(o.fh);
        serde_json::from_slice::<serde_json::Value>(&text).unwrap()
    };
    let before = read_stats().await;
    assert_eq!(before["bytes_served"], 0);
    assert_eq!(before["open_handles"], 0);
    let f = a
        .lookup(fs::RECORDINGS, &format!("{}.mka", rt(1)))
        .await
        .unwrap();
    let fh = a.fs.open(f.ino).await.unwrap().fh;
    assert_eq!(read_stats().await["open_handles"], 1);
    let mut got = Vec::new();
    while got.len() < plain.len() {
        got.extend_from_slice(&a.fs.read(f.ino, fh, got.len() as u64, 700).await.unwrap());
    }
    assert_eq!(got, plain);
    a.fs.release(fh);
    let after = read_stats().await;
    assert_eq!(after["bytes_served"], plain.len() as u64);
    assert_eq!(after["open_handles"], 0);
    assert_eq!(after["errors"], 0);
    assert!(after["cache"]["misses"].as_u64().unwrap() >= 1);
    // Read whole by one handle, every window left the cache.
    assert_eq!(after["cache"]["released"], 10);
    assert_eq!(after["cache"]["windows"], 0);
    // A read at an offset of the snapshot, and past its end.
    let o = a.fs.open(fs::STATS).await.unwrap();
    let whole = a.fs.read(fs::STATS, o.fh, 0, 1 << 16).await.unwrap();
    let tail = a.fs.read(fs::STATS, o.fh, 10, 5).await.unwrap();
    assert_eq!(&tail[..], &whole[10..15]);
    assert!(
        a.fs.read(fs::STATS, o.fh, 1 << 20, 5)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn reads_at_odd_offsets_equal_the_plaintext() {
    let a = account(Options::default());
    let lens = [
        0usize,
        1,
        15,
        16,
        17,
        1023,
        1024,
        1025,
        3 * 1024 + 5,
        20_000,
    ];
    let mut files = Vec::new();
    for (i, len) in lens.into_iter().enumerate() {
        let n = i as u64 + 1;
        let plain = a.recording(n, ROOM_A, len);
        let name = format!(
            "{}.{}",
            rt(n),
            if n.is_multiple_of(3) { "mkv" } else { "mka" }
        );
        files.push((plain, name));
    }
    for (plain, name) in &files {
        let ino = a.lookup(fs::RECORDINGS, name).await.unwrap().ino;
        let fh = a.fs.open(ino).await.unwrap().fh;
        let len = plain.len() as u64;
        let offsets = [
            0,
            1,
            13,
            15,
            16,
            17,
            1000,
            1023,
            1024,
            1025,
            2047,
            len / 2,
            len,
            len + 1,
        ];
        for off in offsets {
            for size in [1u32, 7, 16, 100, 1024, 1025, 4096, 131_072] {
                let got = a.fs.read(ino, fh, off, size).await.unwrap();
                let from = (off as usize).min(plain.len());
                let to = (off as usize + size as usize).min(plain.len());
                assert_eq!(&got[..], &plain[from..to], "{name} [{off} + {size})");
            }
        }
        a.fs.release(fh);
        // Whole, as cp reads it, and in odd chunks.
        assert_eq!(&a.read_all(ino, 131_072).await.unwrap(), plain, "{name}");
        assert_eq!(&a.read_all(ino, 333).await.unwrap(), plain, "{name}");
    }
}

#[tokio::test]
async fn concurrent_readers_of_one_file_get_the_same_bytes() {
    let a = Arc::new(account(Options::default()));
    let plain = Arc::new(a.recording(1, ROOM_A, 50_000));
    let ino = a
        .lookup(fs::RECORDINGS, &format!("{}.mka", rt(1)))
        .await
        .unwrap()
        .ino;
    let mut tasks = Vec::new();
    for r in 0..8u64 {
        let (a, plain) = (a.clone(), plain.clone());
        tasks.push(tokio::spawn(async move {
            let fh = a.fs.open(ino).await.unwrap().fh;
            let mut x = r + 1;
            for _ in 0..50 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let off = (x >> 33) % 50_000;
                let got = a.fs.read(ino, fh, off, 3000).await.unwrap();
                let to = (off as usize + 3000).min(50_000);
                assert_eq!(&got[..], &plain[off as usize..to]);
            }
            a.fs.release(fh);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(a.fs.stats().errors, 0);
}

/// Every error kind a reader can meet, and its errno.
#[tokio::test]
async fn the_errno_of_every_error_kind() {
    let a = account(Options {
        answer_within: Duration::from_millis(500),
        ..Default::default()
    });
    let size = 4 * WINDOW as usize;
    let name = |n| format!("{}.mka", rt(n));

    // A key that does not fit: sealed for another account.
    let other = &common::mount::keys().private[1];
    a.recording(1, ROOM_A, size);
    a.storage
        .put_sealed(&rt(1), &plaintext(1, size), other, false);
    // Damaged: cut to a length that is not whole AES blocks.
    a.recording(2, ROOM_A, size);
    let stored = a.storage.object(&rt(2)).unwrap();
    let mut data = stored.data.to_vec();
    data.truncate(data.len() - 7);
    a.storage.put(&rt(2), data, stored.headers);
    // The last block's padding changed: from outside, the key's AES key is refused,
    // which a wrong key does as well as damage does; refused as a key that does not fit.
    a.recording(8, ROOM_A, size);
    let stored = a.storage.object(&rt(8)).unwrap();
    let mut data = stored.data.to_vec();
    let n = data.len();
    data[n - 17] ^= 1;
    a.storage.put(&rt(8), data, stored.headers);
    // The S3 Encryption Client v2 format.
    a.recording(4, ROOM_A, size);
    a.storage.put(
        &rt(4),
        vec![0u8; 64],
        vec![
            ("x-amz-meta-x-amz-key-v2".into(), "AAAA".into()),
            ("x-amz-meta-x-amz-iv".into(), "AAAAAAAAAAAAAAAA".into()),
            (
                "x-amz-meta-x-amz-cek-alg".into(),
                "AES/GCM/NoPadding".into(),
            ),
            ("x-amz-meta-x-amz-wrap-alg".into(), "kms".into()),
        ],
    );
    // Deleted while mounted: listed, then gone from storage.
    a.recording(5, ROOM_A, size);
    a.ls(fs::RECORDINGS).await.unwrap();
    a.storage.remove(&rt(5));

    let open = |n| {
        let a = &a;
        async move {
            let ino = a.lookup(fs::RECORDINGS, &name(n)).await.unwrap().ino;
            a.fs.open(ino).await
        }
    };
    assert_eq!(errno(open(1).await), libc::EACCES, "key that does not fit");
    assert_eq!(errno(open(2).await), libc::EIO, "damaged");
    assert_eq!(errno(open(8).await), libc::EACCES, "last block refused");
    assert_eq!(errno(open(4).await), libc::EOPNOTSUPP, "v2");
    assert_eq!(errno(open(5).await), libc::ENOENT, "deleted while mounted");

    // Failures met by a read after a good open (window 0 came with the open).
    let plain = a.recording(7, ROOM_A, size);
    let ino = a.lookup(fs::RECORDINGS, &name(7)).await.unwrap().ino;
    let read_with = |make: StorageFault| {
        let a = &a;
        async move {
            let fh = a.fs.open(ino).await.unwrap().fh;
            a.faulty.fail(Some(1), make);
            let r = a.fs.read(ino, fh, 2 * WINDOW + 3, 100).await;
            a.faulty.clear();
            a.fs.release(fh);
            r
        }
    };
    let cases: [(StorageFault, i32, &str); 9] = [
        (
            |sid| {
                ObjectError::Twilio(twilio::Error::NoMedia {
                    sid: sid.into(),
                    state: "not completed, or deleted".into(),
                })
            },
            libc::ENOENT,
            "/Media says the media is gone",
        ),
        (
            |_| ObjectError::Twilio(api_error(404)),
            libc::ENOENT,
            "API 404",
        ),
        (
            |_| ObjectError::Twilio(api_error(401)),
            libc::EACCES,
            "API 401",
        ),
        (
            |_| ObjectError::Twilio(api_error(403)),
            libc::EACCES,
            "API 403",
        ),
        (
            |_| {
                ObjectError::Twilio(twilio::Error::Unauthorized {
                    code: 20003,
                    source_name: "the environment".into(),
                    username: "SK1".into(),
                    detail: String::new(),
                })
            },
            libc::EACCES,
            "credentials revoked",
        ),
        (
            |sid| ObjectError::Status {
                sid: sid.into(),
                status: 404,
                code: Some("NoSuchKey".into()),
                message: None,
                url: "memory://x".into(),
            },
            libc::ENOENT,
            "storage 404",
        ),
        (
            |sid| ObjectError::Status {
                sid: sid.into(),
                status: 403,
                code: Some("AccessDenied".into()),
                message: None,
                url: "memory://x".into(),
            },
            libc::EIO,
            "storage keeps refusing fresh URLs",
        ),
        (
            |sid| ObjectError::RetriesExhausted {
                sid: sid.into(),
                attempts: 9,
                elapsed: Duration::from_secs(30),
                last: "HTTP 503".into(),
            },
            libc::EIO,
            "storage failing past the budget",
        ),
        (
            |_| ObjectError::Twilio(api_error(500)),
            libc::EIO,
            "API failing past the budget",
        ),
    ];
    for (make, want, what) in cases {
        assert_eq!(errno(read_with(make).await), want, "{what}");
    }
    // No answer within the bound: EIO, and the same file reads once storage answers.
    let fh = a.fs.open(ino).await.unwrap().fh;
    a.faulty.delay(Duration::from_secs(5));
    let started = std::time::Instant::now();
    let err = a.fs.read(ino, fh, 3 * WINDOW, 10).await.unwrap_err();
    assert!(
        matches!(err, Error::Read(ReadError::TimedOut { .. })),
        "{err:?}"
    );
    assert_eq!(err.errno(), libc::EIO);
    assert!(started.elapsed() < Duration::from_secs(3));
    a.faulty.clear();
    assert_eq!(
        &a.fs.read(ino, fh, 3 * WINDOW, 10).await.unwrap()[..],
        &plain[3 * WINDOW as usize..][..10]
    );
    a.fs.release(fh);

    // Listings: the API's answer decides a directory's errno.
    let fresh = account(Options::default());
    fresh.recording(1, ROOM_A, 10);
    let listing: [(ApiFault, i32); 4] = [
        (|_| api_error(401), libc::EACCES),
        (|_| api_error(403), libc::EACCES),
        (|_| api_error(404), libc::ENOENT),
        (|_| api_error(503), libc::EIO),
    ];
    for (make, want) in listing {
        fresh.faulty_api.fail(ApiCall::List, Some(1), make);
        assert_eq!(errno(fresh.ls(fs::RECORDINGS).await), want);
    }
    assert_eq!(
        fresh.ls(fs::RECORDINGS).await.unwrap().len(),
        1,
        "then it lists"
    );
    // A lookup of an unlisted SID whose resource fails.
    fresh
        .faulty_api
        .fail(ApiCall::Resource, Some(1), |_| api_error(403));
    assert_eq!(
        errno(fresh.lookup(fs::RECORDINGS, &name(9)).await),
        libc::EACCES
    );
    // A handle that is not open.
    assert_eq!(
        errno(fresh.fs.read(fs::STATS, 999, 0, 10).await),
        libc::EBADF
    );
    let f = fresh.lookup(fs::RECORDINGS, &name(1)).await.unwrap();
    assert_eq!(errno(fresh.fs.read(f.ino, 999, 0, 10).await), libc::EBADF);
    assert!(
        a.fs.stats().errors >= 13,
        "every failed open and read is counted"
    );
}

/// Issue 12: a size learned by one mount (by an open, or a metadata look-up such as
/// `getxattr`) is exact on the next mount over the same cache directory before any
/// open, with no request; one the listing no longer agrees with, or a mount without the
/// cache, shows the listed size again.
#[tokio::test]
async fn exact_sizes_survive_a_remount_with_no_request() {
    let dir = common::tempdir();
    let o = Options {
        metadata_cache: Some(dir.path().join("cache")),
        ..Default::default()
    };
    let a = account(o.clone());
    let plains: Vec<Vec<u8>> = (1..=4u64)
        .map(|n| a.recording(n, ROOM_A, 1000 * n as usize + 3))
        .collect();
    let comp = a.composition(1, ROOM_A, 3000);
    let name = |n: u64| {
        format!(
            "{}.{}",
            rt(n),
            if n.is_multiple_of(3) { "mkv" } else { "mka" }
        )
    };
    let comp_name = format!("{}.mp4", cj(1));
    a.ls(fs::RECORDINGS).await.unwrap();
    let r1 = a.lookup(fs::RECORDINGS, &name(1)).await.unwrap();
    assert_eq!(a.read_all(r1.ino, 4096).await.unwrap(), plains[0]);
    let r2 = a.lookup(fs::RECORDINGS, &name(2)).await.unwrap();
    a.fs.getxattr(r2.ino, "user.twilio.encrypted")
        .await
        .unwrap();
    let c = a.lookup(fs::COMPOSITIONS, &comp_name).await.unwrap();
    assert_eq!(a.read_all(c.ino, 4096).await.unwrap(), comp);
    a.fs.core().sizes().save(); // as the end of a mount does

    let remounted = |o: &Options| {
        let (fs, comp_name) = (a.remount(o), comp_name.clone());
        async move {
            let mut sizes = Vec::new();
            for n in 1..=4 {
                let attr = fs.lookup(fs::RECORDINGS, &name(n)).await.unwrap();
                sizes.push((attr.size, attr.exact));
            }
            let attr = fs.lookup(fs::COMPOSITIONS, &comp_name).await.unwrap();
            sizes.push((attr.size, attr.exact));
            sizes
        }
    };
    let plain = |p: &Vec<u8>| (p.len() as u64, true);
    let listed = |p: &Vec<u8>| (ciphertext_len(p.len() as u64), false);
    let gets = a.storage.gets();
    assert_eq!(
        remounted(&o).await,
        [
            plain(&plains[0]),
            plain(&plains[1]),
            listed(&plains[2]),
            listed(&plains[3]),
            plain(&comp)
        ]
    );
    assert_eq!(a.storage.gets(), gets, "no GET before an open");
    // The file holds SIDs and lengths, nothing else.
    let text = std::fs::read_to_string(dir.path().join("cache/sizes")).unwrap();
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines.contains(&format!("{} 1008 1003", rt(1)).as_str()),
        "{text}"
    );

    // Recording 1 changed (its listed size with it): its old size is not believed.
    let plains_1 = a.recording(1, ROOM_A, 5000);
    let now = remounted(&o).await;
    assert_eq!((now[0], now[1]), (listed(&plains_1), plain(&plains[1])));
    // Without the cache: listed sizes until opened.
    let without = remounted(&Options::default()).await;
    assert_eq!(
        (without[1], without[4]),
        (listed(&plains[1]), listed(&comp))
    );
    assert_eq!(a.storage.gets(), gets, "still no GET");
}

/// Waits until `done`, for at most 10 s.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Storage that counts the GETs in flight at once, and holds each until the test lets
/// it through.
struct Gate {
    inner: Arc<dyn ObjectSource>,
    open: tokio::sync::Semaphore,
    now: AtomicUsize,
    most: AtomicUsize,
}

impl ObjectSource for Gate {
    fn get_range(
        &self,
        media: &twilio::MediaRef,
        start: u64,
        end: u64,
    ) -> futures_util::future::BoxFuture<'_, Result<Fetched, ObjectError>> {
        let media = media.clone();
        Box::pin(async move {
            let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(n, Ordering::SeqCst);
            drop(self.open.acquire().await.unwrap());
            let got = self.inner.get_range(&media, start, end).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
            got
        })
    }
}

/// Issue 12: with `exact_sizes`, a listing returns at once and its files are sized in
/// the background, a few at a time: one GET of one block for an object with the length
/// header, the first and last blocks for one without; once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_sizes_are_learned_in_the_background_a_few_at_a_time() {
    let a = account(Options::default());
    let plains: Vec<Vec<u8>> = (1..=12u64)
        .map(|n| a.recording(n, ROOM_A, 100 * n as usize + n as usize))
        .collect();
    let gate = Arc::new(Gate {
        inner: a.storage.clone(),
        open: tokio::sync::Semaphore::new(0),
        now: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
    });
    let o = Options {
        exact_sizes: true,
        refresh: Duration::ZERO, // every readdir and lookup lists again
        ..Default::default()
    };
    let fs = filesystem(&o, a.faulty_api.clone(), gate.clone());
    let names = tokio::time::timeout(Duration::from_secs(5), ls_in(&fs, fs::RECORDINGS))
        .await
        .expect("the listing does not wait for sizing")
        .unwrap();
    assert_eq!(names.len(), 12);
    let mut inos = Vec::new();
    for name in &names {
        inos.push(fs.lookup(fs::RECORDINGS, name).await.unwrap().ino);
    }
    until("4 sizings waiting", || gate.now.load(Ordering::SeqCst) == 4).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(gate.now.load(Ordering::SeqCst), 4, "no more than 4 at once");
    gate.open.add_permits(1000);
    until("every size exact", || {
        inos.iter().all(|&ino| fs.getattr(ino).unwrap().exact)
    })
    .await;
    for ((ino, name), plain) in inos.iter().zip(&names).zip(&plains) {
        assert_eq!(fs.getattr(*ino).unwrap().size, plain.len() as u64, "{name}");
    }
    assert_eq!(gate.most.load(Ordering::SeqCst), 4);
    // Even n have the length header: one GET; odd ones two (first and last blocks).
    assert_eq!(a.storage.gets(), 6 + 6 * 2);
    assert_eq!(a.storage.bytes_served(), 6 * 16 + 6 * (16 + 32));
    // Listed again: nothing more to size.
    let gets = a.storage.gets();
    ls_in(&fs, fs::RECORDINGS).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(a.storage.gets(), gets);
}

/// Issue 16: a listed size of 2^63 or more (which FUSE answers with EIO for every
/// `stat`) shows as 0, not final, until the size is learned; a later listing with a
/// usable size is taken, and an open makes it exact.
#[tokio::test]
async fn absurd_listed_sizes_show_as_0_until_a_listing_corrects_them() {
    let o = Options {
        refresh: Duration::ZERO, // every readdir and lookup lists again
        ..Default::default()
    };
    let a = account(o);
    let plain = a.recording(1, ROOM_A, 5000);
    let name = format!("{}.mka", rt(1));
    let listed = |size: u64| Recording {
        sid: rt(1),
        status: Some("completed".into()),
        container_format: Some("mka".into()),
        size: Some(size),
        ..Default::default()
    };
    for absurd in [1 << 63, u64::MAX] {
        a.api.put(listed(absurd));
        let fs = a.remount(&Options::default());
        ls_in(&fs, fs::RECORDINGS).await.unwrap();
        let attr = fs.lookup(fs::RECORDINGS, &name).await.unwrap();
        assert_eq!((attr.size, attr.exact), (0, false), "{absurd}");
        assert_eq!(fs.getattr(attr.ino).unwrap().size, 0);
    }
    a.api.put(listed(1 << 63));
    let attr = a.lookup(fs::RECORDINGS, &name).await.unwrap();
    assert_eq!((attr.size, attr.exact), (0, false));
    // Corrected: the next listing's size is shown.
    a.api.put(listed(5008));
    a.ls(fs::RECORDINGS).await.unwrap();
    let attr = a.lookup(fs::RECORDINGS, &name).await.unwrap();
    assert_eq!((attr.size, attr.exact), (5008, false));
    assert_eq!(a.fs.getattr(attr.ino).unwrap().size, 5008);
    // A usable size is not replaced by a later absurd one, and an open makes it exact.
    a.api.put(listed(1 << 63));
    a.ls(fs::RECORDINGS).await.unwrap();
    assert_eq!(a.fs.getattr(attr.ino).unwrap().size, 5008);
    assert_eq!(a.read_all(attr.ino, 4096).await.unwrap(), plain);
    let attr = a.fs.getattr(attr.ino).unwrap();
    assert_eq!((attr.size, attr.exact), (plain.len() as u64, true));
}

/// Issue 12: a directory's mtime is the newest time of the files under it (the root's
/// the epoch: its entries never change), the same on every mount whatever is read
/// first, so that backup tools see no change from one mount to the next.
#[tokio::test]
async fn directory_times_are_their_newest_files_on_every_mount() {
    let a = account(Options::default());
    a.recording(3, ROOM_A, 100); // 2026-11-04T10:00Z
    a.recording(9, ROOM_B, 100); // 2026-11-10T10:00Z
    a.composition(1, ROOM_A, 100); // completed 2026-11-20T11:00Z
    let nov = |day: u64, hour: u64| {
        UNIX_EPOCH + Duration::from_secs(1_793_613_600 + (day - 2) * 86_400 + (hour - 10) * 3600)
    };
    let want: Vec<(u64, &str, SystemTime)> = vec![
        (fs::ROOT, "recordings", nov(10, 10)),
        (fs::ROOT, "compositions", nov(20, 11)),
        (fs::ROOT, "rooms", nov(20, 11)),
        (fs::ROOMS, ROOM_A, nov(20, 11)),
        (fs::ROOMS, ROOM_B, nov(10, 10)),
    ];
    // Before anything is listed: not final.
    let before = a.fs.getattr(fs::RECORDINGS).unwrap();
    assert_eq!((before.mtime, before.exact), (UNIX_EPOCH, false));
    for order in [false, true] {
        let fs = a.remount(&Options::default());
        let mut lookups = want.clone();
        if order {
            lookups.reverse();
        }
        for (parent, name, time) in lookups {
            let attr = fs.lookup(parent, name).await.unwrap();
            assert_eq!((attr.mtime, attr.exact), (time, true), "{name}");
            assert_eq!(fs.getattr(attr.ino).unwrap().mtime, time, "{name}");
        }
        let root = fs.getattr(fs::ROOT).unwrap();
        assert_eq!((root.mtime, root.exact), (UNIX_EPOCH, true));
    }
    // An empty account's directories: the epoch, final once listed.
    let empty = account(Options::default());
    let attr = empty.lookup(fs::ROOT, "compositions").await.unwrap();
    assert_eq!((attr.mtime, attr.exact), (UNIX_EPOCH, true));
    // A listing that fails does not fail the directory's lookup: its time is not final
    // (the kernel asks again), and its readdir meets the error.
    let fs = a.remount(&Options::default());
    a.faulty_api
        .fail(ApiCall::List, Some(1), |_| api_error(500));
    let attr = fs.lookup(fs::ROOT, "recordings").await.unwrap();
    assert_eq!((attr.mtime, attr.exact), (UNIX_EPOCH, false));
    let attr = fs.lookup(fs::ROOT, "recordings").await.unwrap();
    assert_eq!(
        (attr.mtime, attr.exact),
        (nov(10, 10), true),
        "listed the next time"
    );
}

/// `fut`'s output and how long it took; panics naming `what` if it takes over `limit`.
async fn answered<T>(
    what: &str,
    limit: Duration,
    fut: impl std::future::Future<Output = T>,
) -> (T, Duration) {
    let started = std::time::Instant::now();
    let out = tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {limit:?}"));
    (out, started.elapsed())
}

/// Issue 16, item 2: while a listing was slow, every lookup waited behind it (`stat`
/// of a file already read sat in state D for 11 minutes). Names already listed answer
/// from the table at once while the listing refreshes in the background; what has to
/// wait for a listing (a name not listed, a directory never listed) answers within the
/// answer bound, and the listing goes on so that a later try succeeds.
#[tokio::test]
async fn known_names_answer_while_a_listing_is_slow() {
    let refresh = Duration::from_millis(200);
    let answer_within = Duration::from_millis(600);
    let a = account(Options {
        refresh,
        answer_within,
        listing_deadline: Duration::from_millis(1500),
        ..Default::default()
    });
    for n in 1..=3 {
        a.recording(n, ROOM_A, 100);
    }
    let names: Vec<String> = (1..=3).map(|n| a.fs_name(n)).collect();
    assert_eq!(a.ls(fs::RECORDINGS).await.unwrap(), names);
    tokio::time::sleep(refresh).await; // the listing is stale now
    a.faulty_api.delay(ApiCall::List, Duration::from_secs(30));
    a.recording(4, ROOM_A, 100); // not listed yet

    // Known names: from the table, at once, however often.
    let quick = Duration::from_millis(100);
    for _ in 0..20 {
        for name in &names {
            let (attr, _) = answered(name, quick, a.lookup(fs::RECORDINGS, name)).await;
            a.fs.getattr(attr.unwrap().ino).unwrap();
        }
    }
    // `ls` of a directory listed before: its previous listing, within the bound.
    let bound = answer_within + Duration::from_millis(300);
    let (listed, took) = answered("ls recordings", bound, a.ls(fs::RECORDINGS)).await;
    assert_eq!(listed.unwrap(), names, "the previous listing");
    println!("ls during a slow refresh: {took:?}");
    // A name not listed yet: fetched by SID, within the bound.
    let new = a.fs_name(4);
    let (found, took) = answered("a new name", bound, a.lookup(fs::RECORDINGS, &new)).await;
    found.unwrap();
    println!("lookup of a new name during a slow refresh: {took:?}");
    // A directory never listed: EIO within the bound, its listing going on.
    let slow_started = std::time::Instant::now(); // the last listing started
    let (never, took) = answered("ls compositions", bound, a.ls(fs::COMPOSITIONS)).await;
    assert_eq!(errno(never), libc::EIO);
    println!("ls of a directory never listed, its listing slow: {took:?}");
    let (attr, _) = answered(
        "stat compositions",
        bound,
        a.lookup(fs::ROOT, "compositions"),
    )
    .await;
    assert!(!attr.unwrap().exact, "not listed yet");

    // Past the listing deadline the slow listings are given up; the next ones list.
    a.faulty_api.clear();
    a.composition(1, ROOM_A, 100);
    let past = Duration::from_millis(1600).saturating_sub(slow_started.elapsed());
    tokio::time::sleep(past).await;
    let (listed, _) = answered("ls recordings", bound, a.ls(fs::RECORDINGS)).await;
    assert_eq!(listed.unwrap().len(), 4, "listed again");
    let (listed, _) = answered("ls compositions", bound, a.ls(fs::COMPOSITIONS)).await;
    assert_eq!(listed.unwrap().len(), 1, "listed at last");
}

/// Issue 16, item 2: a whole listing (all its pages) has a deadline. Past it the
/// listing fails with a message naming the deadline, and a directory listed before
/// keeps its previous listing.
#[tokio::test]
async fn a_listing_past_its_deadline_fails_and_the_previous_one_stays() {
    let refresh = Duration::from_millis(100);
    let a = account(Options {
        refresh,
        answer_within: Duration::from_secs(5),
        listing_deadline: Duration::from_millis(300),
        ..Default::default()
    });
    a.faulty_api.delay(ApiCall::List, Duration::from_secs(30));
    let limit = Duration::from_secs(2);
    let (never, took) = answered("ls", limit, a.ls(fs::COMPOSITIONS)).await;
    let e = never.unwrap_err();
    assert_eq!(e.errno(), libc::EIO);
    assert!(
        e.to_string().contains("300ms") && e.to_string().contains("--listing-deadline"),
        "{e}"
    );
    println!("a listing past its deadline failed in {took:?}: {e}");

    a.faulty_api.clear();
    a.composition(1, ROOM_A, 100);
    assert_eq!(a.ls(fs::COMPOSITIONS).await.unwrap().len(), 1);
    tokio::time::sleep(refresh).await;
    a.faulty_api.delay(ApiCall::List, Duration::from_secs(30));
    a.composition(2, ROOM_A, 100);
    let (listed, _) = answered("ls", limit, a.ls(fs::COMPOSITIONS)).await;
    assert_eq!(
        listed.unwrap(),
        vec![format!("{}.mp4", cj(1))],
        "the previous listing"
    );
    let (found, _) = answered(
        "lookup",
        limit,
        a.lookup(fs::COMPOSITIONS, &format!("{}.mp4", cj(1))),
    )
    .await;
    found.unwrap();
}

/// Issue 16, item 4: the inode table only grew: with listings that change (20 000 new
/// SIDs per refresh) memory went from 167 to 527 MB and stayed there. An inode is
/// dropped once it is gone from the current listings and the kernel holds it no more
/// (forgotten, not open): the table holds the current listings and what the kernel
/// holds. A SID keeps its inode while it is known.
#[tokio::test]
async fn the_inode_table_holds_the_listings_and_what_the_kernel_holds() {
    const FIXED: usize = 6; // /, recordings/, compositions/, rooms/, voice/, calls/
    const PER_ROUND: u64 = 50;
    let a = account(Options {
        refresh: Duration::ZERO, // every `ls` lists again
        ..Default::default()
    });
    let room = |r: u64| format!("RM{r:032x}");
    let round = |r: u64| (r * 1000 + 10)..(r * 1000 + 10 + PER_ROUND);
    a.recording(1, ROOM_A, 100); // listed throughout
    for n in round(0) {
        a.recording(n, &room(0), 64);
    }
    assert_eq!(
        a.ls(fs::RECORDINGS).await.unwrap().len(),
        1 + PER_ROUND as usize
    );
    assert_eq!(
        a.ls(fs::ROOMS).await.unwrap(),
        vec![room(0), ROOM_A.to_owned()]
    );
    let steady = a.lookup(fs::RECORDINGS, &a.fs_name(1)).await.unwrap().ino;
    // What the kernel keeps: a file looked up, a file open (its lookup forgotten), a
    // room directory looked up.
    let held = a.lookup(fs::RECORDINGS, &a.fs_name(10)).await.unwrap().ino;
    let opened = a.lookup(fs::RECORDINGS, &a.fs_name(11)).await.unwrap().ino;
    let fh = a.fs.open(opened).await.unwrap().fh;
    a.fs.forget(opened, 1);
    let room0 = a.lookup(fs::ROOMS, &room(0)).await.unwrap().ino;
    let kept = 3;

    for r in 1..=5 {
        for n in round(r - 1) {
            a.api.remove(&rt(n));
        }
        for n in round(r) {
            a.recording(n, &room(r), 64);
        }
        assert_eq!(
            a.ls(fs::RECORDINGS).await.unwrap().len(),
            1 + PER_ROUND as usize
        );
        assert_eq!(a.ls(fs::ROOMS).await.unwrap().len(), 2);
        let bound = FIXED + 1 + PER_ROUND as usize + 2 + kept;
        assert_eq!(
            a.fs.inodes(),
            bound,
            "round {r}: listings and what the kernel holds"
        );
        let again = a.lookup(fs::RECORDINGS, &a.fs_name(1)).await.unwrap().ino;
        assert_eq!(again, steady, "a SID keeps its inode while it is known");
        a.fs.forget(steady, 1);
    }
    // Gone from the listing, the file the kernel holds still answers getattr; a lookup
    // of its name (the kernel revalidating) says it is gone.
    a.fs.getattr(held).unwrap();
    assert_eq!(
        errno(a.lookup(fs::RECORDINGS, &a.fs_name(10)).await),
        libc::ENOENT
    );
    a.fs.forget(held, 1);
    assert_eq!(
        errno(a.fs.getattr(held)),
        libc::ENOENT,
        "dropped once forgotten"
    );
    // The open file reads on until released.
    let first = a.fs.read(opened, fh, 0, 64).await.unwrap();
    assert_eq!(&first[..], &plaintext(11, 64)[..]);
    a.fs.getattr(opened).unwrap();
    a.fs.release(fh);
    assert_eq!(
        errno(a.fs.getattr(opened)),
        libc::ENOENT,
        "dropped once closed"
    );
    a.fs.getattr(room0).unwrap();
    a.fs.forget(room0, 7); // more than it had: nothing left, nothing wraps
    assert_eq!(errno(a.fs.getattr(room0)), libc::ENOENT);
    a.fs.forget(fs::ROOT, 1); // fixed inodes stay
    a.fs.forget(1 << 40, 1); // unknown ones are ignored
    a.fs.getattr(fs::ROOT).unwrap();
    assert_eq!(a.fs.inodes(), FIXED + 1 + PER_ROUND as usize + 2);
    // A SID listed again after it was dropped is a new inode, and a working one.
    let back = round(0).start;
    a.recording(back, &room(0), 64);
    a.ls(fs::RECORDINGS).await.unwrap();
    let ino = a
        .lookup(fs::RECORDINGS, &a.fs_name(back))
        .await
        .unwrap()
        .ino;
    assert_eq!(a.read_all(ino, 64).await.unwrap(), plaintext(back, 64));
}

fn api_error(status: u16) -> twilio::Error {
    twilio::Error::Api {
        what: "/v1/Recordings".into(),
        status,
        code: None,
        message: "x".into(),
        more_info: None,
    }
}

/// Runs every other test of this file again where `/dev/fuse` is `/dev/null` (a
/// private mount namespace): none of them may need FUSE.
#[test]
fn runs_without_dev_fuse() {
    if std::env::var_os("TMFS_NO_FUSE_CHILD").is_some() {
        // In the namespace: prove /dev/fuse is not a FUSE device here.
        let fuse = std::fs::metadata("/dev/fuse").unwrap();
        let null = std::fs::metadata("/dev/null").unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fuse.rdev(), null.rdev(), "/dev/fuse is /dev/null here");
        return;
    }
    let root = unsafe { libc::geteuid() } == 0;
    if !root || !common::require_tool("unshare") {
        assert!(
            !common::in_ci(),
            "CI runs as root: this check must run there"
        );
        eprintln!("SKIPPED: needs root and unshare to hide /dev/fuse");
        return;
    }
    let me = std::env::current_exe().unwrap();
    let hide_and_run = format!(
        "set -e; mount --bind /dev/null /dev/fuse; \"{}\" --exact runs_without_dev_fuse; exec \"{}\" --skip runs_without_dev_fuse",
        me.display(),
        me.display()
    );
    let out = std::process::Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &hide_and_run,
        ])
        .env("TMFS_NO_FUSE_CHILD", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the tests failed without /dev/fuse:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("test result: ok"), "{text}");
    assert!(
        text.contains("the_errno_of_every_error_kind ... ok"),
        "the other tests ran: {text}"
    );
}

/// The same filesystem over the real HTTP client and object client against the
/// emulator, with the API wrapped: `/Media` URLs expired on demand are refused by the
/// emulator's storage and renewed, and the bytes stay the plaintext; credentials that
/// stop working while a file is read make the read EACCES.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_urls_and_revoked_credentials_over_real_storage() {
    use twilio_media_fs::emulator::{self, EmulatorCredentials};
    use twilio_media_fs::object::ObjectClient;
    use twilio_media_fs::twilio::{ClientConfig, Credentials, TwilioClient};

    let emu = emulator::spawn(common::mount::emulator_config())
        .await
        .unwrap();
    let creds = EmulatorCredentials::default();
    let mut config = ClientConfig::new(Credentials::auth_token(
        creds.account_sid.clone(),
        zeroize::Zeroizing::new(creds.auth_token.clone()),
    ));
    config.api_url = emu.url.clone();
    let twilio = Arc::new(TwilioClient::new(config).unwrap());
    let api = Arc::new(FaultyApi::new(twilio.clone()));
    let objects =
        ObjectClient::with_urls(api.clone(), twilio.http().clone(), twilio.retry_policy());
    let io = objects.stats();
    let backend = Backend {
        api: api.clone(),
        source: Arc::new(objects),
        io,
        answer_within: twilio.answer_bound(),
    };
    let mut keys = PrivateKeys::new();
    keys.add("k1.pem", common::mount::keys().private[0].clone());
    let settings = MountSettings {
        uid: 0,
        gid: 0,
        ..MountSettings::default()
    };
    let fs = app::build(&settings, backend, Arc::new(keys));

    let sample = emu
        .emulator
        .objects()
        .into_iter()
        .find(|o| o.status == "completed" && o.encrypted && o.extension == "mp4")
        .expect("an encrypted composition among the samples");
    let plain = emu.emulator.plaintext(&sample.sid).unwrap();
    let name = format!("{}.mp4", sample.sid);
    let ino = fs.lookup(fs::COMPOSITIONS, &name).await.unwrap().ino;

    // Every URL handed out for the next three /Media calls is refused by storage.
    let denied_before = emu.emulator.stats().access_denied;
    api.expire_urls(2);
    let fh = fs.open(ino).await.unwrap().fh;
    let mut got = Vec::new();
    loop {
        let chunk = fs.read(ino, fh, got.len() as u64, 131_072).await.unwrap();
        if chunk.is_empty() {
            break;
        }
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, plain, "byte-identical through refused URLs");
    assert_eq!(api.injected(), 2, "both spoiled URLs were handed out");
    assert!(
        emu.emulator.stats().access_denied >= denied_before + 2,
        "storage refused them"
    );
    assert!(
        fs.stats().retries >= 2,
        "and the object client renewed them"
    );

    // Credentials revoked mid-read: /Media answers 401, the read is EACCES.
    api.fail(ApiCall::MediaUrl, None, |_| twilio::Error::Unauthorized {
        code: 20003,
        source_name: "the environment".into(),
        username: "AC1".into(),
        detail: String::new(),
    });
    // A fresh object whose URL is not cached yet.
    let other = emu
        .emulator
        .objects()
        .into_iter()
        .find(|o| {
            o.status == "completed" && o.encrypted && o.sid != sample.sid && o.extension == "mka"
        })
        .expect("an encrypted recording among the samples");
    let ino = fs
        .lookup(fs::RECORDINGS, &format!("{}.mka", other.sid))
        .await
        .unwrap()
        .ino;
    assert_eq!(errno(fs.open(ino).await), libc::EACCES);
    api.clear();
    fs.release(fh);
    let fh = fs.open(ino).await.unwrap().fh;
    let head = fs.read(ino, fh, 0, 100).await.unwrap();
    let want = emu.emulator.plaintext(&other.sid).unwrap();
    assert_eq!(&head[..], &want[..100.min(want.len())]);
}

/// Issue 16, item 6: a file stored unencrypted (it starts like Matroska) is served as it
/// is and says `encrypted` = `false`; under `--require-encrypted` its open is refused
/// with EACCES, its attribute still answers, and an encrypted file still opens.
#[tokio::test]
async fn require_encrypted_refuses_unencrypted_files_with_eacces() {
    for require in [false, true] {
        let a = account(Options {
            require_encrypted: require,
            ..Default::default()
        });
        let sealed = a.recording(1, ROOM_A, 3000);
        a.storage.put(&rt(5), matroska(5, 3000), Vec::new());
        a.api.put(Recording {
            sid: rt(5),
            status: Some("completed".into()),
            container_format: Some("mka".into()),
            ..Default::default()
        });
        let plain = a
            .lookup(fs::RECORDINGS, &format!("{}.mka", rt(5)))
            .await
            .unwrap();
        let enc = a
            .lookup(fs::RECORDINGS, &format!("{}.mka", rt(1)))
            .await
            .unwrap();
        assert_eq!(xattr(&a, plain.ino, "encrypted").await.unwrap(), "false");
        assert_eq!(xattr(&a, enc.ino, "encrypted").await.unwrap(), "true");
        assert_eq!(a.read_all(enc.ino, 1000).await.unwrap(), sealed);
        let read = a.read_all(plain.ino, 1000).await;
        if require {
            assert_eq!(errno(read), libc::EACCES);
            assert_eq!(a.fs.stats().errors, 1, "the refusal is counted");
        } else {
            assert_eq!(read.unwrap(), matroska(5, 3000));
        }
    }
}

/// Issue 16, item 6: ciphertext served without its envelope headers is EIO to open and
/// to the `encrypted` attribute, with or without `--require-encrypted`: never served
/// as if it were plaintext.
#[tokio::test]
async fn a_file_stripped_of_its_envelope_is_eio_not_ciphertext() {
    for require in [false, true] {
        let a = account(Options {
            require_encrypted: require,
            ..Default::default()
        });
        a.recording(1, ROOM_A, 5000);
        let stored = a.storage.object(&rt(1)).unwrap();
        let kept: Vec<_> = (stored.headers.iter())
            .filter(|(k, _)| !k.starts_with("x-amz-meta-"))
            .cloned()
            .collect();
        a.storage.put(&rt(1), stored.data.to_vec(), kept);
        let f = a
            .lookup(fs::RECORDINGS, &format!("{}.mka", rt(1)))
            .await
            .unwrap();
        assert_eq!(errno(a.read_all(f.ino, 1000).await), libc::EIO);
        assert_eq!(errno(xattr(&a, f.ino, "encrypted").await), libc::EIO);
        let e = a.fs.open(f.ino).await.unwrap_err();
        assert!(e.to_string().contains(&rt(1)), "{e}");
        assert!(
            e.to_string().contains("without its encryption headers"),
            "{e}"
        );
    }
}

/// What `.stats` says now.
async fn stats_of(fs: &TwilioFs) -> serde_json::Value {
    let o = fs.open(fs::STATS).await.unwrap();
    let text = fs.read(fs::STATS, o.fh, 0, 1 << 16).await.unwrap();
    fs.release(o.fh);
    serde_json::from_slice(&text).unwrap()
}

/// Issue 16, item 3: storage that dribbles one file's body (its GETs past the first
/// window never end) held the read-ahead's slots for ever, starving every other file's
/// read-ahead. Each prefetch now ends at its deadline (the answer bound): the stalled
/// GETs are dropped, the slots come back, and another file's read-ahead runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_ahead_of_a_dribbling_file_ends_by_its_deadline_and_frees_its_slots() {
    let within = Duration::from_millis(500);
    let a = account(Options {
        answer_within: within,
        ..Options::default()
    });
    let len = 40 * WINDOW as usize;
    a.recording(1, ROOM_A, len);
    let fast = a.recording(2, ROOM_A, len);
    // What an open reads (the first window, the last two blocks) comes; the rest never.
    let stored = ciphertext_len(len as u64);
    a.faulty.stall(&rt(1), WINDOW..stored - 32);
    let slow = a
        .lookup(fs::RECORDINGS, &format!("{}.mka", rt(1)))
        .await
        .unwrap();
    let fh = a.fs.open(slow.ino).await.unwrap().fh;
    // 8 windows read from the start: 4 more prefetched, as many as the slots
    // (64 windows of cache / 16).
    let started = std::time::Instant::now();
    let err = a.fs.read(slow.ino, fh, 0, 8 * WINDOW as u32).await;
    assert_eq!(errno(err), libc::EIO);
    let s = stats_of(&a.fs).await;
    assert!(s["prefetching"].as_u64().unwrap() <= 4, "{s}");
    until("the dribbling prefetches to end", || {
        a.faulty.stalled_now() == 0
    })
    .await;
    let ended = started.elapsed();
    assert!(ended < within + Duration::from_secs(1), "{ended:?}");
    let s = stats_of(&a.fs).await;
    assert_eq!(s["prefetching"], 0, "{s}");
    assert!(s["prefetches_abandoned"].as_u64().unwrap() >= 4, "{s}");
    assert!(a.faulty.injected() >= 4 + 7, "{}", a.faulty.injected());

    // The other file's read-ahead runs: 8 windows read, the next 4 fetched meanwhile,
    // and reading them fetches none of them (each is a hit, or joins its fetch).
    let f = a
        .lookup(fs::RECORDINGS, &format!("{}.mka", rt(2)))
        .await
        .unwrap();
    let fh2 = a.fs.open(f.ino).await.unwrap().fh;
    let opened = a.storage.gets();
    let got = a.fs.read(f.ino, fh2, 0, 8 * WINDOW as u32).await.unwrap();
    assert_eq!(&got[..], &fast[..8 * WINDOW as usize]);
    until("the other file's read-ahead", || {
        a.storage.gets() >= opened + 7 + 4
    })
    .await;
    let found = |s: serde_json::Value| {
        s["cache"]["hits"].as_u64().unwrap() + s["cache"]["shared_fetches"].as_u64().unwrap()
    };
    let before = found(stats_of(&a.fs).await);
    let got = a.fs.read(f.ino, fh2, 8 * WINDOW, 4 * WINDOW as u32).await;
    assert_eq!(
        &got.unwrap()[..],
        &fast[8 * WINDOW as usize..12 * WINDOW as usize]
    );
    let after = found(stats_of(&a.fs).await);
    assert_eq!(after - before, 4, "read ahead: found, not fetched");
    a.fs.release(fh);
    a.fs.release(fh2);
    println!("the dribbling prefetches ended {ended:?} after the read began");
}
