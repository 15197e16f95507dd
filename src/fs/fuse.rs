//! `fuser::Filesystem` for [`TwilioFs`]: one short function per operation, nothing else.
//!
//! fuser calls these on its session thread. Anything that may touch the network
//! (lookup, readdir, open, read, getxattr, listxattr: a room directory's attributes
//! need the room) moves its reply into a tokio task and returns at once, so one slow
//! fetch never stalls other readers; each answers within the mount's answer bound
//! (see [`super`]). `forget` (and `batch_forget`, through it) hands the kernel's lookup
//! counts to the inode table, which drops what neither a listing nor the kernel holds. Files never change, so
//! attributes and entries are cached long (once the size is exact) and files open with
//! `FOPEN_KEEP_CACHE`: the kernel page cache serves repeated reads (a call recording
//! only once its GCM tag verified; before, each open drops its cached pages, so that a
//! reader going in order meets the tag's check at its end). The mount is
//! read-only (`MountOption::RO`): the kernel itself answers EROFS to every write,
//! create, rename and delete. `.stats` opens with `FOPEN_DIRECT_IO` instead: never cached.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyXattr, Request,
};
use tokio::runtime::Handle;

use super::{Attr, Error, Kind, TwilioFs};

/// Attributes whose size is final: files never change.
const LONG_TTL: Duration = Duration::from_secs(3600);
/// A file's size before its headers are read comes from the listing, which may be
/// wrong or null (0): the kernel must ask again every time. A cached size too small
/// would cut reads short: the kernel serves EOF at its cached size without asking, and
/// `cp` made an empty copy of a file listed with `size: null`.
const SHORT_TTL: Duration = Duration::ZERO;

/// The kernel's read-ahead stays at what it offers (128 KiB): INIT can only lower it,
/// so reads arrive as 128–256 KiB requests and the mount's prefetcher does the deep
/// read-ahead. Raising the kernel's own through sysfs `read_ahead_kb` was measured on
/// an idle machine: 512 KiB and 1 MiB no faster for `cp`, 4 MiB slower (0.58–0.61× of
/// the guide's pipe), and `ffmpeg -ss` fetched 2.0% of a file instead of 1.7%.
pub struct Fuse {
    fs: Arc<TwilioFs>,
    runtime: Handle,
}

impl Fuse {
    pub fn new(fs: Arc<TwilioFs>, runtime: Handle) -> Self {
        Self { fs, runtime }
    }

    fn attr(&self, a: &Attr) -> FileAttr {
        file_attr(a, self.fs.config().uid, self.fs.config().gid)
    }

    /// A `Send` closure that builds `FileAttr`s, for tasks.
    fn attr_maker(&self) -> impl Fn(&Attr) -> FileAttr + Send + 'static {
        let (uid, gid) = (self.fs.config().uid, self.fs.config().gid);
        move |a: &Attr| file_attr(a, uid, gid)
    }
}

fn file_attr(a: &Attr, uid: u32, gid: u32) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.mtime,
        crtime: a.mtime,
        kind: kind(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid,
        gid,
        rdev: 0,
        flags: 0,
        blksize: 1 << 20,
    }
}

fn kind(k: Kind) -> FileType {
    match k {
        Kind::Dir => FileType::Directory,
        Kind::File => FileType::RegularFile,
    }
}

fn ttl(a: &Attr) -> Duration {
    if a.exact { LONG_TTL } else { SHORT_TTL }
}

fn errno(e: &Error) -> Errno {
    Errno::from_i32(e.errno())
}

impl Filesystem for Fuse {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(name) = name.to_str().map(str::to_owned) else {
            return reply.error(Errno::ENOENT);
        };
        let (fs, this) = (self.fs.clone(), self.attr_maker());
        self.runtime.spawn(async move {
            match fs.lookup(parent.0, &name).await {
                Ok(a) => reply.entry(&ttl(&a), &this(&a), Generation(0)),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    // `batch_forget` keeps fuser's default, which calls this for each inode: fuser
    // 0.18 does not export the type of its argument.
    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        // No network: answers from what listings and opens already learned.
        match self.fs.getattr(ino.0) {
            Ok(a) => reply.attr(&ttl(&a), &self.attr(&a)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.0 & libc::O_ACCMODE != libc::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        let fs = self.fs.clone();
        self.runtime.spawn(async move {
            match fs.open(ino.0).await {
                Ok(o) if o.direct_io => reply.opened(FileHandle(o.fh), FopenFlags::FOPEN_DIRECT_IO),
                Ok(o) if o.keep_cache => {
                    reply.opened(FileHandle(o.fh), FopenFlags::FOPEN_KEEP_CACHE)
                }
                // Without KEEP_CACHE the kernel drops the file's cached pages at open.
                Ok(o) => reply.opened(FileHandle(o.fh), FopenFlags::empty()),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let fs = self.fs.clone();
        let _runtime = self.runtime.enter();
        let mut read = Box::pin(async move { fs.read(ino.0, fh.0, offset, size).await });
        // Most reads of a stream find their windows decrypted already: answer those
        // here, without a hand-off to another thread. Only reads that must wait for
        // storage become tasks (the same future, polled on from where it stopped).
        let answer = |result: Result<bytes::Bytes, Error>, reply: ReplyData| match result {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno(&e)),
        };
        match futures_util::FutureExt::now_or_never(&mut read) {
            Some(result) => answer(result, reply),
            None => {
                self.runtime.spawn(async move { answer(read.await, reply) });
            }
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.fs.release(fh.0);
        reply.ok();
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.fs.opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let fs = self.fs.clone();
        self.runtime.spawn(async move {
            let entries = match fs.readdir(ino.0, fh.0, offset).await {
                Ok(e) => e,
                Err(e) => return reply.error(errno(&e)),
            };
            for (i, e) in entries.iter().enumerate().skip(offset as usize) {
                if reply.add(INodeNo(e.ino), (i + 1) as u64, kind(e.kind), &e.name) {
                    break;
                }
            }
            reply.ok();
        });
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(0, 0, 0, 0, 0, 1 << 20, 255, 1 << 20);
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let Some(name) = name.to_str().map(str::to_owned) else {
            return reply.error(Errno::ENODATA);
        };
        let fs = self.fs.clone();
        self.runtime.spawn(async move {
            match fs.getxattr(ino.0, &name).await {
                Ok(value) => xattr_reply(reply, &value, size),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let fs = self.fs.clone();
        self.runtime.spawn(async move {
            match fs.listxattr(ino.0).await {
                Ok(names) => xattr_reply(reply, &names, size),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn access(&self, _req: &Request, _ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        if mask.contains(AccessFlags::W_OK) {
            reply.error(Errno::EROFS)
        } else {
            reply.ok()
        }
    }
}

/// getxattr/listxattr: size 0 asks for the length; too small a buffer is ERANGE.
fn xattr_reply(reply: ReplyXattr, value: &[u8], size: u32) {
    if size == 0 {
        reply.size(value.len() as u32);
    } else if (size as usize) < value.len() {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(value);
    }
}
