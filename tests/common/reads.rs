//! Timed random reads of files on a mount, each compared with the plaintext: the
//! reader threads of the fault tests and the soak. Before each read the file's pages
//! are dropped from the kernel's cache (`POSIX_FADV_DONTNEED`), so that reads reach
//! the filesystem instead of the page cache.

use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What the timed reader saw.
#[derive(Debug, Default)]
pub struct ReadReport {
    pub reads: u64,
    pub bytes: u64,
    pub max: Duration,
    /// Every read's time, in order.
    pub latencies: Vec<Duration>,
    /// Errors and wrong bytes, described.
    pub failures: Vec<String>,
}

/// A thread doing timed `pread`s at random offsets and lengths over `files` until
/// stopped, each compared with the plaintext; before each read, the file's pages are
/// dropped from the kernel's cache (`POSIX_FADV_DONTNEED`) so that the read reaches
/// the filesystem.
pub struct TimedReader {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<ReadReport>,
}

impl TimedReader {
    pub fn start(files: Vec<(PathBuf, Vec<u8>)>, seed: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let (flag, count) = (stop.clone(), done.clone());
        let thread = std::thread::spawn(move || read_until(&files, seed, &flag, &count));
        Self { stop, done, thread }
    }

    /// Reads finished so far.
    pub fn reads(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Asks the thread to stop after its current read.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Stops the thread and waits for its report.
    pub fn finish(self) -> ReadReport {
        self.stop();
        self.thread.join().expect("the reader thread")
    }
}

/// xorshift: fixed seeds, so failures reproduce.
pub fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = 0x2545_F491_4F6C_DD1D_u64 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Reads `files` at random until `stop`; the report of it.
pub fn read_until(
    files: &[(PathBuf, Vec<u8>)],
    seed: u64,
    stop: &AtomicBool,
    done: &AtomicU64,
) -> ReadReport {
    let mut report = ReadReport::default();
    let mut next = rng(seed);
    let mut handles: Vec<Option<std::fs::File>> = files.iter().map(|_| None).collect();
    while !stop.load(Ordering::Relaxed) {
        let f = (next() % files.len() as u64) as usize;
        let (path, want) = &files[f];
        let started = Instant::now();
        if handles[f].is_none() {
            // Opening is timed like a read: it fetches the envelope.
            match std::fs::File::open(path) {
                Ok(h) => handles[f] = Some(h),
                Err(e) => {
                    report.failures.push(format!("open {path:?}: {e}"));
                    continue;
                }
            }
            report.max = report.max.max(started.elapsed());
        }
        let handle = handles[f].as_ref().unwrap();
        let len = want.len() as u64;
        let offset = next() % (len + 1);
        let size = 1 + next() % (128 << 10);
        // SAFETY: posix_fadvise on an open descriptor only drops clean cached pages.
        unsafe { libc::posix_fadvise(handle.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        let mut buf = vec![0u8; size as usize];
        let started = Instant::now();
        let got = handle.read_at(&mut buf, offset);
        let took = started.elapsed();
        report.max = report.max.max(took);
        report.latencies.push(took);
        report.reads += 1;
        done.fetch_add(1, Ordering::Relaxed);
        match got {
            Ok(n) => {
                report.bytes += n as u64;
                let from = offset as usize;
                let to = (offset + n as u64) as usize;
                // A short read is allowed (the caller reads on), a wrong byte never.
                if to > want.len() || buf[..n] != want[from..to] || (n == 0 && offset < len) {
                    report
                        .failures
                        .push(format!("{path:?} @{offset}+{size}: wrong bytes ({n} read)"));
                }
            }
            Err(e) => report
                .failures
                .push(format!("{path:?} @{offset}+{size}: {e} after {took:?}")),
        }
    }
    report
}
