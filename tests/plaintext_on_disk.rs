//! No plaintext on disk: the program keeps decrypted bytes in memory only.
//!
//! The mount (in the background, the way users run it) serves every sample to `cp` and
//! `ffprobe`, `get -o -` writes every sample to a pipe, and `compose` rebuilds the
//! meeting room (its ffprobe and ffmpeg reading the tracks over loopback), and `serve`
//! gives every sample to curl, whole and in ranges. All run under
//! `strace -f`, with HOME, the XDG directories, TMPDIR and the working directory set
//! to fresh, empty directories. Then every place the program could have written is
//! searched for any 4 KiB window of any sample's plaintext, at any byte offset (a
//! rolling hash over every file, checked byte for byte on a hit):
//! - the fresh directories, whole;
//! - every file the traced processes opened for writing or created, and every
//!   directory they wrote into or renamed into (from the strace log);
//! - /tmp, /var/tmp and /dev/shm: files changed since the run began. Other test
//!   processes' scratch directories (`/tmp/.tmp*`, tempfile's pattern) are left out
//!   there: this program's temp files would land in its own TMPDIR, and anything it
//!   wrote elsewhere is in the strace list anyway.
//!
//! Controls prove each part can fail: a plaintext slice planted at an odd offset in the
//! fresh cache directory, and one in /tmp, are both found; and `get -o FILE` (plaintext
//! written on purpose) is seen in the strace log and its file is flagged.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::mount::{Mount, blocking, command, mounted, ok, output};
use common::*;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use twilio_media_fs::crypto::seal;
use twilio_media_fs::emulator::meeting::meeting_room_sid;
use twilio_media_fs::emulator::{EmulatorConfig, ObjectInfo, RunningEmulator, spawn};

/// The plaintext window searched for: one page.
const WINDOW: usize = 4096;
/// Polynomial base of the rolling hash (odd, so multiplication mod 2^64 is invertible).
const BASE: u64 = 0x0000_0100_0000_01b3;

/// Every 4 KiB-aligned block of the samples' plaintext, by rolling hash.
struct Scanner {
    samples: Vec<(String, Vec<u8>)>,
    /// hash → (sample index, offset).
    blocks: HashMap<u64, Vec<(usize, usize)>>,
    /// BASE^WINDOW, to drop the byte leaving the window.
    drop: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Hit {
    path: PathBuf,
    offset: usize,
    sample: String,
    sample_offset: usize,
}

fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |h, &b| {
        h.wrapping_mul(BASE).wrapping_add(u64::from(b) + 1)
    })
}

impl Scanner {
    fn new(samples: Vec<(String, Vec<u8>)>) -> Self {
        let mut blocks: HashMap<u64, Vec<(usize, usize)>> = HashMap::new();
        let (mut kept, mut plain) = (0, 0);
        for (i, (_, data)) in samples.iter().enumerate() {
            for (k, block) in data.chunks_exact(WINDOW).enumerate() {
                // A block of few distinct bytes (zero runs, padding) is in countless
                // files: searching for it would prove nothing.
                let distinct = block.iter().collect::<BTreeSet<_>>().len();
                if distinct < 64 {
                    plain += 1;
                    continue;
                }
                kept += 1;
                blocks.entry(hash(block)).or_default().push((i, k * WINDOW));
            }
        }
        assert!(
            kept > 50 && kept > 9 * plain,
            "the samples give enough distinctive blocks: {kept} kept, {plain} skipped"
        );
        eprintln!("searching for {kept} sample blocks ({plain} low-entropy blocks left out)");
        let drop = (0..WINDOW).fold(1u64, |p, _| p.wrapping_mul(BASE));
        Scanner {
            samples,
            blocks,
            drop,
        }
    }

    /// Every window of `data` that equals a sample block.
    fn hits(&self, path: &Path, data: &[u8]) -> Vec<Hit> {
        let mut hits = Vec::new();
        if data.len() < WINDOW {
            return hits;
        }
        let mut h = hash(&data[..WINDOW]);
        for start in 0..=data.len() - WINDOW {
            if start > 0 {
                let out = u64::from(data[start - 1]) + 1;
                let inn = u64::from(data[start + WINDOW - 1]) + 1;
                h = h
                    .wrapping_mul(BASE)
                    .wrapping_add(inn)
                    .wrapping_sub(out.wrapping_mul(self.drop));
            }
            if let Some(places) = self.blocks.get(&h) {
                for &(i, off) in places {
                    let (name, sample) = &self.samples[i];
                    if data[start..start + WINDOW] == sample[off..off + WINDOW] {
                        hits.push(Hit {
                            path: path.to_owned(),
                            offset: start,
                            sample: name.clone(),
                            sample_offset: off,
                        });
                    }
                }
            }
        }
        hits
    }

    fn scan_files(&self, files: &BTreeSet<PathBuf>) -> Vec<Hit> {
        let mut hits = Vec::new();
        for f in files {
            // Files can vanish or be unreadable (sockets, other users' files): only what
            // can be read can hold plaintext for a reader.
            let Ok(meta) = std::fs::symlink_metadata(f) else {
                continue;
            };
            if !meta.is_file() || meta.len() < WINDOW as u64 {
                continue;
            }
            if meta.len() > 1 << 30 {
                eprintln!("note: not scanning {} ({} bytes)", f.display(), meta.len());
                continue;
            }
            if let Ok(data) = std::fs::read(f) {
                hits.extend(self.hits(f, &data));
            }
        }
        hits
    }
}

/// Regular files under `root` (not following symlinks, not crossing into other file
/// systems such as FUSE mounts), changed at or after `since` when given, skipping `skip`;
/// only those directly in `root` unless `recursive`.
fn walk(
    root: &Path,
    recursive: bool,
    since: Option<SystemTime>,
    skip: &dyn Fn(&Path) -> bool,
) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let Ok(top) = std::fs::symlink_metadata(root) else {
        return out;
    };
    let dev = top.dev();
    let since = since.map(|t| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64);
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if skip(&p) {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.dev() != dev {
                continue;
            }
            if meta.is_dir() {
                if recursive {
                    stack.push(p);
                }
            } else if meta.is_file() && since.is_none_or(|s| meta.mtime() >= s || meta.ctime() >= s)
            {
                out.insert(p);
            }
        }
    }
    out
}

/// What an `strace -f -y` log says was written: files opened for writing or created,
/// and the directories written or renamed into.
#[derive(Debug, Default)]
struct Written {
    files: BTreeSet<PathBuf>,
    dirs: BTreeSet<PathBuf>,
}

/// Paths on pseudo file systems: not disk.
fn pseudo(p: &Path) -> bool {
    let s = p.to_string_lossy();
    (s.starts_with("/dev/") && !s.starts_with("/dev/shm/"))
        || s.starts_with("/proc/")
        || s.starts_with("/sys/")
        || s.contains(":[")
        || s.starts_with("anon_inode:")
}

/// The `<…>` path decorations (`-y`) and the quoted strings of one strace line.
fn decorations(line: &str) -> (Vec<String>, Vec<String>) {
    let (mut fds, mut quoted) = (Vec::new(), Vec::new());
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                quoted.push(line[i + 1..j.min(b.len())].to_string());
                i = j + 1;
            }
            b'<' => {
                let j = line[i..].find('>').map_or(b.len(), |k| i + k);
                fds.push(line[i + 1..j].to_string());
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    (fds, quoted)
}

fn parse_strace(log: &str) -> Written {
    let mut w = Written::default();
    for line in log.lines() {
        // "PID syscall(args) = result"
        let call = line
            .split_once(' ')
            .map_or(line, |(_, rest)| rest)
            .trim_start();
        let name = call.split('(').next().unwrap_or_default();
        let Some((_, result)) = call.rsplit_once(") = ") else {
            continue;
        };
        if result.starts_with('-') {
            continue; // failed: nothing written
        }
        let (fds, quoted) = decorations(call);
        match name {
            "open" | "openat" | "creat" => {
                let writes = name == "creat"
                    || ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"]
                        .iter()
                        .any(|f| call.contains(f));
                // With -y the returned descriptor carries the opened path: `= 3</a/b>`.
                let opened = decorations(result).0;
                if writes && let Some(p) = opened.first() {
                    let p = PathBuf::from(p);
                    if !pseudo(&p) {
                        if let Some(parent) = p.parent() {
                            w.dirs.insert(parent.to_owned());
                        }
                        w.files.insert(p);
                    }
                }
            }
            "rename" | "renameat" | "renameat2" | "link" | "linkat" | "symlink" | "symlinkat"
            | "mkdir" | "mkdirat" | "truncate" => {
                for d in fds {
                    w.dirs.insert(PathBuf::from(d));
                }
                for q in quoted {
                    let p = PathBuf::from(q);
                    if p.is_absolute() {
                        if let Some(parent) = p.parent() {
                            w.dirs.insert(parent.to_owned());
                        }
                        w.files.insert(p);
                    }
                }
            }
            _ => {}
        }
    }
    w.dirs.retain(|d| !pseudo(&d.join("x")));
    w
}

/// `cmd` run under `strace -f -y`, logging to `log`: same arguments, environment and
/// working directory.
/// The stdout of a command that must succeed, as bytes.
async fn ok_bytes(cmd: Command) -> Vec<u8> {
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn traced(log: &Path, cmd: &Command) -> Command {
    let mut t = Command::new("strace");
    t.args(["-f", "-y", "-qq", "-s", "512", "-e"])
        .arg(
            "trace=open,openat,creat,rename,renameat,renameat2,link,linkat,symlink,\
             symlinkat,mkdir,mkdirat,truncate",
        )
        .arg("-o")
        .arg(log)
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => t.env(k, v),
            None => t.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        t.current_dir(dir);
    }
    t
}

/// The fresh places a run may write to, and the environment that points there.
struct Fresh {
    root: tempfile::TempDir,
}

impl Fresh {
    fn new() -> Self {
        let f = Fresh { root: tempdir() };
        for d in [
            "home",
            "home/.cache",
            "home/.config",
            "home/.local/share",
            "home/.local/state",
            "run",
            "tmp",
            "cwd",
        ] {
            std::fs::create_dir_all(f.root.path().join(d)).unwrap();
        }
        f
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// Points `cmd` at the fresh directories.
    fn apply(&self, cmd: &mut Command) {
        cmd.env("HOME", self.path("home"))
            .env("XDG_CACHE_HOME", self.path("home/.cache"))
            .env("XDG_CONFIG_HOME", self.path("home/.config"))
            .env("XDG_DATA_HOME", self.path("home/.local/share"))
            .env("XDG_STATE_HOME", self.path("home/.local/state"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("TMPDIR", self.path("tmp"))
            .current_dir(self.path("cwd"));
    }
}

/// Everything the scan covers: see the module comment.
fn places(
    fresh: &Fresh,
    written: &Written,
    since: SystemTime,
    exclude: &[&Path],
) -> BTreeSet<PathBuf> {
    let fresh_root = fresh.root.path().to_owned();
    let skip_none = |p: &Path| exclude.iter().any(|e| p.starts_with(e));
    let mut files = walk(&fresh_root, true, None, &skip_none);
    files.extend(written.files.iter().cloned());
    for dir in &written.dirs {
        files.extend(walk(dir, false, Some(since), &skip_none));
    }
    let foreign_scratch = |p: &Path| {
        skip_none(p)
            || p.starts_with(&fresh_root)
            || (p.parent() == Some(Path::new("/tmp"))
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(".tmp")))
    };
    for root in ["/tmp", "/var/tmp", "/dev/shm"] {
        files.extend(walk(Path::new(root), true, Some(since), &foreign_scratch));
    }
    files.retain(|f| !exclude.iter().any(|e| f.starts_with(e)));
    files
}

/// Waits for the traced mount (strace and the server it follows) to end.
async fn wait_for_exit(m: &mut Mount) {
    let mut child = m.child.take().expect("the strace process");
    let status = blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the mount did not end after umount");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await;
    assert!(status.success(), "strace/mount: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_is_ever_written_to_disk() {
    if !require_tool("strace") || !require_tool("ffprobe") {
        return;
    }
    let key_dir = tempdir();
    let private = seal::generate_key(2048);
    let key = key_dir.path().join("account.pem");
    write_private(
        &key,
        private.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    );
    let emu: RunningEmulator = spawn(EmulatorConfig {
        public_keys: vec![private.to_public_key()],
        ..Default::default()
    })
    .await
    .unwrap();
    let objects: Vec<ObjectInfo> = emu
        .emulator
        .objects()
        .into_iter()
        .filter(|o| o.status == "completed" && !o.synthetic)
        .collect();
    let samples: Vec<(String, Vec<u8>)> = objects
        .iter()
        .map(|o| {
            (
                format!("{}.{}", o.sid, o.extension),
                emu.emulator.plaintext(&o.sid).unwrap(),
            )
        })
        .collect();
    let scanner = Scanner::new(samples);
    // mtime has one-second resolution here: start a second early.
    let since = SystemTime::now() - Duration::from_secs(1);
    let fresh = Fresh::new();
    let traces = tempdir();

    // The mount, in the background, under strace.
    let m = Mount::new();
    let mut cmd = m.mount_cmd(&emu, &[&key]);
    fresh.apply(&mut cmd);
    let mount_log = traces.path().join("mount.strace");
    let mut m = m.spawn(traced(&mount_log, &cmd)).await;
    for o in &objects {
        let file = m.file(o);
        let f = file.to_str().unwrap().to_owned();
        let mut cp = command("cp", &[&f, "/dev/null"]);
        fresh.apply(&mut cp);
        ok(cp).await;
        let mut probe = command("ffprobe", &["-v", "error", "-show_format", &f]);
        fresh.apply(&mut probe);
        probe.stdout(Stdio::null());
        ok(probe).await;
        // The bytes did go through: the scan looks for something that was there.
        let data = blocking(move || std::fs::read(file)).await.unwrap();
        assert_eq!(data, emu.emulator.plaintext(&o.sid).unwrap());
    }
    // `get -o -` of every sample, to a pipe, under strace.
    let sids: Vec<&str> = objects.iter().map(|o| o.sid.as_str()).collect();
    let mut get_logs = Vec::new();
    for (i, sid) in sids.iter().enumerate() {
        let log = traces.path().join(format!("get-{i}.strace"));
        let mut get = cli(&emu);
        get.args(["get", sid, "-o", "-", "-k"]).arg(&key);
        fresh.apply(&mut get);
        let out = output(traced(&log, &get)).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.stdout, scanner.samples[i].1,
            "get -o - wrote {sid} to the pipe"
        );
        get_logs.push(log);
    }

    // `compose` of the meeting room under strace, its ffprobe and ffmpeg followed: the
    // output is a new encoding, so no window of any track may be in anything written
    // (the output included).
    let compose_log = traces.path().join("compose.strace");
    let mut compose = cli(&emu);
    compose
        .args(["compose", &meeting_room_sid(), "-o", "meeting.mp4", "-k"])
        .arg(&key);
    fresh.apply(&mut compose);
    let out = output(traced(&compose_log, &compose)).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(fresh.path("cwd/meeting.mp4").is_file());
    let compose_trace = std::fs::read_to_string(&compose_log).unwrap();
    assert!(
        compose_trace.contains(".partial") && compose_trace.contains("libavcodec"),
        "the trace follows ffmpeg (its libavcodec) writing the temporary output"
    );
    get_logs.push(compose_log);

    // `serve` under strace: every sample to curl, whole and a range, then SIGTERM.
    let serve_log = traces.path().join("serve.strace");
    let mut serve = cli(&emu);
    serve
        .args(["serve", "--listen", "127.0.0.1:0", "-k"])
        .arg(&key);
    fresh.apply(&mut serve);
    let mut serve = traced(&serve_log, &serve);
    serve.stdout(Stdio::piped()).stdin(Stdio::null());
    let mut server = serve.spawn().unwrap();
    let stdout = server.stdout.take().unwrap();
    let url = blocking(move || common::serve::listening_url(stdout)).await;
    for (o, (_, plain)) in objects.iter().zip(&scanner.samples) {
        let dir = match o.kind {
            twilio_media_fs::twilio::MediaKind::Composition => "compositions",
            _ => "recordings",
        };
        let file = format!("{url}{dir}/{}.{}", o.sid, o.extension);
        let whole = ok_bytes(command("curl", &["-sSf", "--max-time", "60", &file])).await;
        assert_eq!(&whole, plain, "serve gave {file}");
        ok_bytes(command(
            "curl",
            &["-sSf", "--max-time", "60", "-r", "4097-", &file],
        ))
        .await;
    }
    // SIGTERM to serve itself (strace's child): strace ends with its tracee, and
    // passes on its exit status. (strace itself, signalled, keeps waiting.)
    let children = format!("/proc/{0}/task/{0}/children", server.id());
    let traced_pid: i32 = std::fs::read_to_string(&children)
        .unwrap()
        .split_whitespace()
        .next()
        .expect("strace runs serve")
        .parse()
        .unwrap();
    unsafe { libc::kill(traced_pid, libc::SIGTERM) };
    let status = blocking(move || server.wait().unwrap()).await;
    assert!(status.success(), "serve under strace: {status}");
    let serve_trace = std::fs::read_to_string(&serve_log).unwrap();
    assert!(
        serve_trace.contains("openat"),
        "the trace saw serve start: {serve_trace}"
    );
    get_logs.push(serve_log);

    // Unmount; the server ends, and strace with it.
    ok(command("umount", &[m.path.to_str().unwrap()])).await;
    wait_for_exit(&mut m).await;
    assert!(!mounted(&m.path));

    let mount_trace = std::fs::read_to_string(&mount_log).unwrap();
    assert!(
        mount_trace.contains("</dev/fuse>"),
        "the trace follows the re-executed server to /dev/fuse:\n{mount_trace}"
    );
    let mut written = parse_strace(&mount_trace);
    for log in &get_logs {
        let get_written = parse_strace(&std::fs::read_to_string(log).unwrap());
        written.files.extend(get_written.files);
        written.dirs.extend(get_written.dirs);
    }
    eprintln!("written by the program: {written:?}");
    let exclude = [traces.path(), key_dir.path()];
    let files = places(&fresh, &written, since, &exclude);
    eprintln!("scanned {} files", files.len());
    let hits = scanner.scan_files(&files);
    assert!(hits.is_empty(), "plaintext on disk: {hits:#?}");

    // Control 1: plaintext planted at an odd offset in the fresh cache directory and in
    // /tmp is found by the same scan.
    let (name, sample) = &scanner.samples[0];
    let mut planted = pseudo_random(3, 1);
    planted.extend_from_slice(&sample[WINDOW + 5..WINDOW * 3 + 5]);
    let in_cache = fresh.path("home/.cache/planted.bin");
    std::fs::write(&in_cache, &planted).unwrap();
    let in_tmp = tempfile::Builder::new()
        .prefix("twilio-media-fs-plaintext-control")
        .tempfile_in("/tmp")
        .unwrap();
    std::fs::write(in_tmp.path(), &planted).unwrap();
    let files = places(&fresh, &written, since, &exclude);
    let hits = scanner.scan_files(&files);
    let found: BTreeSet<&Path> = hits.iter().map(|h| h.path.as_path()).collect();
    assert_eq!(
        found,
        BTreeSet::from([in_cache.as_path(), in_tmp.path()]),
        "the planted plaintext of {name}: {hits:#?}"
    );
    std::fs::remove_file(&in_cache).unwrap();
    drop(in_tmp);

    // Control 2: `get -o FILE` writes plaintext on purpose; the strace log shows where,
    // and the scan of what it lists flags it.
    let control_log = traces.path().join("control.strace");
    let target = fresh.path("cwd/on-purpose.mka");
    let mut get = cli(&emu);
    get.args(["get", sids[0], "-o"])
        .arg(&target)
        .arg("-k")
        .arg(&key);
    fresh.apply(&mut get);
    let out = output(traced(&control_log, &get)).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let control = parse_strace(&std::fs::read_to_string(&control_log).unwrap());
    assert!(
        control.dirs.contains(&fresh.path("cwd")),
        "strace shows the write: {control:?}"
    );
    let listed: BTreeSet<PathBuf> = control
        .dirs
        .iter()
        .flat_map(|d| walk(d, false, Some(since), &|_| false))
        .chain(control.files.iter().cloned())
        .collect();
    let hits = scanner.scan_files(&listed);
    assert!(
        hits.iter()
            .any(|h| h.path == target && h.sample == scanner.samples[0].0),
        "the written file is flagged: {hits:#?}"
    );
}

#[test]
fn the_scanner_finds_windows_at_any_offset_and_nothing_else() {
    let a = pseudo_random(5 * WINDOW + 100, 11);
    let s = Scanner::new(vec![
        ("a".into(), a.clone()),
        ("b".into(), pseudo_random(64 * WINDOW, 12)),
    ]);
    for shift in [0usize, 1, 7, 4095] {
        let mut file = pseudo_random(shift, 13);
        file.extend_from_slice(&a[WINDOW..3 * WINDOW]);
        file.extend_from_slice(&pseudo_random(100, 14));
        let hits = s.hits(Path::new("f"), &file);
        assert_eq!(
            hits.iter()
                .map(|h| (h.offset, h.sample_offset))
                .collect::<Vec<_>>(),
            vec![(shift, WINDOW), (shift + WINDOW, 2 * WINDOW)],
            "shift {shift}"
        );
    }
    // Less than one whole aligned block of a sample is not a hit.
    let hits = s.hits(Path::new("f"), &a[WINDOW + 1..3 * WINDOW - 1]);
    assert_eq!(hits.len(), 0);
    assert!(
        s.hits(Path::new("f"), &pseudo_random(1 << 20, 15))
            .is_empty()
    );
}

#[test]
fn strace_lines_are_understood() {
    let log = r#"101 openat(AT_FDCWD</w/cwd>, "out.tmp", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0600) = 3</w/cwd/out.tmp>
101 openat(AT_FDCWD</w/cwd>, "/etc/hosts", O_RDONLY|O_CLOEXEC) = 4</etc/hosts>
101 openat(AT_FDCWD</w/cwd>, "/dev/fuse", O_RDWR|O_CLOEXEC) = 5</dev/fuse>
101 openat(AT_FDCWD</w/cwd>, "/nope", O_WRONLY|O_CREAT, 0644) = -1 EACCES (Permission denied)
102 renameat2(AT_FDCWD</w/cwd>, "out.tmp", 7</w/elsewhere>, "out", RENAME_NOREPLACE) = 0
102 creat("/w/c.bin", 0644) = 6</w/c.bin>
"#;
    let w = parse_strace(log);
    assert_eq!(
        w.files,
        BTreeSet::from([PathBuf::from("/w/cwd/out.tmp"), PathBuf::from("/w/c.bin")])
    );
    assert_eq!(
        w.dirs,
        BTreeSet::from([
            PathBuf::from("/w"),
            PathBuf::from("/w/cwd"),
            PathBuf::from("/w/elsewhere")
        ])
    );
}
