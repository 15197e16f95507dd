//! Where commands write plaintext: standard output, or a file that appears under its
//! final name only once it is complete, so that neither a failure nor an interruption
//! leaves decrypted bytes behind.
//!
//! Where the destination's filesystem allows it (ext4, xfs, btrfs, tmpfs), the file is
//! opened with `O_TMPFILE`: an inode in the destination directory with no name at all
//! until [`Output::commit`] links it in (`linkat` of `/proc/self/fd/N` with
//! `AT_SYMLINK_FOLLOW`, the way `open(2)` documents for unprivileged users). Whatever
//! ends the process before that — an error, SIGTERM, even `kill -9` or a power cut —
//! the kernel frees the inode and nothing is left to find. `linkat` does not replace
//! an existing file, so replacing one links to a temporary name and renames it over
//! the destination: the destination is always either the old file or the whole new
//! one.
//!
//! Elsewhere (`O_TMPFILE` answered EOPNOTSUPP, EISDIR or EINVAL: NFS, FUSE, old
//! kernels), the file is a named temporary `.NAME.XXXXXX.partial`, mode 0600, in the
//! same directory, renamed at the end. Dropping the [`Output`] removes it; `get` drops
//! it on SIGINT, SIGTERM and SIGHUP as well ([`super::get`]). Only `kill -9` (or a
//! crash of the machine) can leave it behind, holding the part decrypted so far.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// How plaintext files are written before they are complete.
pub enum Output {
    Stdout(BufWriter<std::io::Stdout>),
    /// `O_TMPFILE`: no name until [`Output::commit`].
    Unnamed {
        file: BufWriter<File>,
        dest: PathBuf,
    },
    /// The fallback: a named temporary file, removed when dropped.
    Named {
        temp: BufWriter<tempfile::NamedTempFile>,
        dest: PathBuf,
    },
}

/// Bytes buffered before a write.
const BUFFER: usize = 1 << 20;

impl Output {
    /// `-` is standard output; anything else a file made atomically.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        if path.as_os_str() == "-" {
            return Ok(Self::Stdout(BufWriter::with_capacity(
                BUFFER,
                std::io::stdout(),
            )));
        }
        let dir = parent(path);
        match unnamed_in(dir) {
            Ok(file) => Ok(Self::Unnamed {
                file: BufWriter::with_capacity(BUFFER, file),
                dest: path.to_owned(),
            }),
            Err(e) if tmpfile_unsupported(&e) => {
                tracing::debug!(
                    "O_TMPFILE not supported in {} ({e}): writing a named .partial file",
                    dir.display()
                );
                Self::create_named(path)
            }
            Err(e) => Err(e).with_context(|| format!("cannot create a file in {}", dir.display())),
        }
    }

    /// The fallback of [`Self::create`]: a named temporary file beside `path`.
    pub fn create_named(path: &Path) -> anyhow::Result<Self> {
        let dir = parent(path);
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{}.", file_name(path)?))
            .suffix(".partial")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        Ok(Self::Named {
            temp: BufWriter::with_capacity(BUFFER, temp),
            dest: path.to_owned(),
        })
    }

    /// Whether the file being written has no name yet (`O_TMPFILE`).
    pub fn is_unnamed(&self) -> bool {
        matches!(self, Self::Unnamed { .. })
    }

    pub fn write_all(&mut self, data: &[u8]) -> anyhow::Result<()> {
        match self {
            Self::Stdout(w) => w.write_all(data).context("cannot write to standard output"),
            Self::Unnamed { file, dest } => file
                .write_all(data)
                .with_context(|| format!("cannot write {}", dest.display())),
            Self::Named { temp, dest } => temp
                .write_all(data)
                .with_context(|| format!("cannot write {}", dest.display())),
        }
    }

    /// Flushes and syncs, and gives a file its final name. Dropping an `Output` without
    /// calling this leaves nothing: the unnamed file is freed, the named one deleted.
    pub fn commit(self) -> anyhow::Result<()> {
        match self {
            Self::Stdout(mut w) => w.flush().context("cannot write to standard output"),
            Self::Unnamed { file, dest } => {
                let file = file
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .with_context(|| format!("cannot write {}", dest.display()))?;
                file.sync_all()
                    .with_context(|| format!("cannot write {}", dest.display()))?;
                link_in(&file, &dest)
                    .with_context(|| format!("cannot name the finished file {}", dest.display()))
            }
            Self::Named { temp, dest } => {
                let temp = temp
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .with_context(|| format!("cannot write {}", dest.display()))?;
                temp.as_file()
                    .sync_all()
                    .with_context(|| format!("cannot write {}", dest.display()))?;
                temp.persist(&dest).map_err(|e| e.error).with_context(|| {
                    format!("cannot rename the finished file to {}", dest.display())
                })?;
                Ok(())
            }
        }
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn file_name(path: &Path) -> anyhow::Result<String> {
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    Ok(name.to_string_lossy().into_owned())
}

/// An `O_TMPFILE` file in `dir`, mode 0600.
fn unnamed_in(dir: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(dir)
}

/// What `open(O_TMPFILE)` answers where the filesystem (or kernel) lacks it: EOPNOTSUPP
/// from the filesystem, EISDIR from kernels before 3.11, EINVAL from some others.
fn tmpfile_unsupported(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
    )
}

/// Names the unnamed `file` `dest`: directly when `dest` does not exist, else under a
/// temporary name renamed over it (`linkat` never replaces).
fn link_in(file: &File, dest: &Path) -> std::io::Result<()> {
    match link(file, dest) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let temp = tempfile::Builder::new()
                .prefix(&format!(
                    ".{}.",
                    dest.file_name().unwrap_or_default().to_string_lossy()
                ))
                .suffix(".partial")
                .make_in(parent(dest), |path| link(file, path))?;
            temp.into_temp_path().persist(dest).map_err(|e| e.error)
        }
        other => other,
    }
}

/// `linkat` of `/proc/self/fd/N` (any user may), or of the descriptor itself with
/// `AT_EMPTY_PATH` when /proc is not mounted (that needs CAP_DAC_READ_SEARCH).
fn link(file: &File, to: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let to = CString::new(to.as_os_str().as_bytes())?;
    let proc = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    // SAFETY: both paths are NUL-terminated strings that outlive the calls.
    let done = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            proc.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if done == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.kind() != std::io::ErrorKind::NotFound || Path::new("/proc/self/fd").exists() {
        return Err(err);
    }
    // SAFETY: as above; the empty path is a valid C string.
    let done = unsafe {
        libc::linkat(
            file.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn unnamed_until_committed_then_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("RT1.mka");
        let mut out = Output::create(&dest).unwrap();
        if !out.is_unnamed() {
            eprintln!("O_TMPFILE not supported here: the named fallback is tested below");
            return;
        }
        out.write_all(b"first").unwrap();
        assert!(names(dir.path()).is_empty(), "no name while it is written");
        out.commit().unwrap();
        assert_eq!(names(dir.path()), ["RT1.mka"]);
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // An existing file is replaced whole, with nothing left beside it.
        let mut again = Output::create(&dest).unwrap();
        again.write_all(b"second").unwrap();
        again.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"second");
        assert_eq!(names(dir.path()), ["RT1.mka"]);
        // Dropped unfinished: nothing.
        let mut dropped = Output::create(&dir.path().join("RT2.mka")).unwrap();
        dropped.write_all(b"part").unwrap();
        drop(dropped);
        assert_eq!(names(dir.path()), ["RT1.mka"]);
    }

    #[test]
    fn the_named_fallback_is_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("RT1.mka");
        let mut out = Output::create_named(&dest).unwrap();
        out.write_all(b"part").unwrap();
        let partial = names(dir.path());
        assert_eq!(partial.len(), 1);
        assert!(partial[0].starts_with(".RT1.mka.") && partial[0].ends_with(".partial"));
        drop(out);
        assert!(names(dir.path()).is_empty());
        let mut out = Output::create_named(&dest).unwrap();
        out.write_all(b"whole").unwrap();
        out.commit().unwrap();
        assert_eq!(names(dir.path()), ["RT1.mka"]);
        assert_eq!(std::fs::read(&dest).unwrap(), b"whole");
    }
}
