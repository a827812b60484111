//! Extracting one layer (a tar stream) into a directory of its own, to be stacked later
//! as an overlayfs lower directory.
//!
//! The tar is hostile until proven otherwise. Every path is resolved from an fd of the
//! layer's root, one component at a time with `O_NOFOLLOW`: an entry that would go through
//! a symlink is refused, whatever the symlink points to, so nothing can be written outside
//! the layer. Entries with `..` or an absolute path are refused; hardlinks may only point
//! to files of the same layer; device nodes are skipped; setuid/setgid bits (unless the
//! load asks to keep them) and all xattrs but `user.*` are dropped (and counted in the notes).
//!
//! Whiteouts become what overlayfs reads in a lower directory: `.wh.NAME` a 0:0 character
//! device NAME, `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its directory (and
//! `user.overlay.opaque=y` for mounts with `userxattr`, the only one set without root).

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fstatat, futimens, mkdirat, mknodat, utimensat, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::EntryType;

use super::ImageError;

const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";
const PATH_MAX: usize = 4096;

/// Up to a few examples of something that happened many times.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sampled {
    pub count: u64,
    pub examples: Vec<String>,
}

impl Sampled {
    fn add(&mut self, what: &str) {
        self.count += 1;
        if self.examples.len() < 3 {
            self.examples.push(what.to_owned());
        }
    }

    fn describe(&self, what: &str) -> Option<String> {
        (self.count > 0).then(|| {
            let more = if self.count > self.examples.len() as u64 {
                ", ..."
            } else {
                ""
            };
            format!("{what} {} ({}{more})", self.count, self.examples.join(", "))
        })
    }
}

/// What extraction changed on the way, for the caller to report.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Notes {
    /// Character and block devices, not created (a container gets its /dev from the runtime).
    pub devices: Sampled,
    /// Files whose setuid/setgid bits were cleared (or kept, when the load keeps them).
    pub setid: Sampled,
    /// The bits were kept (`keep_setuid`), not cleared.
    pub setid_kept: bool,
    /// Extended attributes dropped (file capabilities, SELinux labels, trusted.*).
    pub xattrs: Sampled,
    /// Entries kept with the extracting user's ownership (not root: no chown).
    pub unowned: u64,
    /// Bytes of the uncompressed tar stream read by the extraction.
    pub bytes: u64,
}

impl Notes {
    pub fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = [
            self.devices.describe("device nodes skipped:"),
            if self.setid_kept {
                self.setid
                    .describe("setuid/setgid bits kept (keepSetuid) on")
            } else {
                self.setid
                    .describe("setuid/setgid bits cleared on")
                    .map(|n| format!("{n}: keep them with keepSetuid (lonely load --keep-setuid)"))
            },
            self.xattrs.describe("extended attributes dropped:"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if self.unowned > 0 {
            out.push(format!(
                "not root: {} entries keep this user's ownership instead of the archive's",
                self.unowned
            ));
        }
        out
    }
}

/// Metadata applied to a directory once everything inside it exists.
#[derive(Clone, Copy)]
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: TimeSpec,
}

struct Extractor<'a> {
    root: OwnedFd,
    blob: &'a str,
    chown: bool,
    /// Setuid/setgid bits are written as the tar has them (still counted in the notes).
    keep_setuid: bool,
    /// The parent directory of the last entry (entries come grouped by directory).
    cached: Option<(Vec<Vec<u8>>, OwnedFd)>,
    dirs: HashMap<Vec<Vec<u8>>, Meta>,
    notes: Notes,
    guard: Rc<Guard>,
}

/// Extracts the tar stream `reader` into the empty directory `dir`. `blob` names the layer
/// in errors. Stops at the tar's end-of-archive marker: the caller drains the rest.
/// `keep_setuid` keeps the files' setuid/setgid bits (else cleared).
pub fn extract<R: Read>(
    reader: R,
    dir: &Path,
    blob: &str,
    keep_setuid: bool,
) -> Result<Notes, ImageError> {
    let root = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| ImageError::Open {
        path: dir.to_owned(),
        source: io::Error::from(errno),
    })?;
    let chown = nix::unistd::geteuid().is_root();
    let guard = Rc::new(Guard::default());
    let mut x = Extractor {
        root,
        blob,
        chown,
        keep_setuid,
        cached: None,
        dirs: HashMap::new(),
        notes: Notes {
            setid_kept: keep_setuid,
            ..Notes::default()
        },
        guard: guard.clone(),
    };
    let mut archive = tar::Archive::new(CountingReader {
        inner: reader,
        bytes: 0,
        guard: guard.clone(),
    });
    let malformed = |e: io::Error| ImageError::Layer {
        blob: blob.to_owned(),
        why: format!("malformed or truncated tar: {e}"),
    };
    for entry in archive.entries().map_err(malformed)? {
        let mut entry = entry.map_err(malformed)?;
        guard.meta.set(0);
        x.entry(&mut entry)?;
    }
    x.notes.bytes = archive.into_inner().bytes;
    x.finish()?;
    Ok(x.notes)
}

/// Most bytes the tar parser may read between two entries outside of file bodies: headers,
/// padding, PAX and GNU long-name records (which it holds in memory whole), and data of
/// entries that have none (a directory "with" 8 GiB). Real archives need a few KiB.
pub const HEADER_LIMIT: u64 = 16 << 20;

/// Shared between the reader under the tar parser and the extractor above it.
#[derive(Default)]
struct Guard {
    /// Set while a file's body is copied: those bytes go to disk, not to memory.
    in_body: Cell<bool>,
    /// Bytes read outside bodies since the last entry.
    meta: Cell<u64>,
}

/// Counts the tar stream and refuses one whose headers grow past `HEADER_LIMIT`: the tar
/// parser reads a PAX or long-name record into memory whole, and a few compressed bytes
/// can claim gigabytes of it.
struct CountingReader<R> {
    inner: R,
    bytes: u64,
    guard: Rc<Guard>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.guard.in_body.get() {
            let meta = self.guard.meta.get();
            if meta >= HEADER_LIMIT {
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("more than {HEADER_LIMIT} bytes of headers (PAX, long names) or of data of entries that have none, between two entries")));
            }
            let room = buf.len().min((HEADER_LIMIT - meta) as usize);
            let n = self.inner.read(&mut buf[..room])?;
            self.guard.meta.set(meta + n as u64);
            self.bytes += n as u64;
            return Ok(n);
        }
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

fn show(comps: &[Vec<u8>]) -> String {
    String::from_utf8_lossy(&comps.join(&b'/')).into_owned()
}

/// Splits a tar path into components, refusing what could leave the layer.
fn components(raw: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    if raw.starts_with(b"/") {
        return Err("absolute path (entries must be relative to the layer's root)");
    }
    if raw.len() > PATH_MAX {
        // Also bounds the depth of the tree, and so the recursion of `remove_tree_at`.
        return Err("path longer than 4096 bytes (PATH_MAX)");
    }
    let mut out = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("path contains `..`"),
            p => out.push(p.to_vec()),
        }
    }
    Ok(out)
}

fn pax_time(value: &[u8]) -> Option<TimeSpec> {
    let text = std::str::from_utf8(value).ok()?;
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos: i64 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    Some(if secs < 0 && nanos > 0 {
        TimeSpec::new(secs - 1, 1_000_000_000 - nanos)
    } else {
        TimeSpec::new(secs, nanos)
    })
}

fn set_xattr(fd: BorrowedFd, name: &str, value: &[u8]) -> Result<(), Errno> {
    let name = CString::new(name).map_err(|_| Errno::EINVAL)?;
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(rc).map(drop)
}

fn open_dir_at(dir: BorrowedFd, name: &[u8]) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Removes `name` in `dir` and, if it is a directory, everything below it, never following
/// a symlink. Directories it may not enter are made accessible first (not root).
pub fn remove_tree_at(dir: BorrowedFd, name: &[u8]) -> nix::Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) | Err(Errno::EPERM) => {}
        Err(e) => return Err(e),
    }
    let fd = match open_dir_at(dir, name) {
        Ok(fd) => fd,
        Err(Errno::EACCES) => {
            nix::sys::stat::fchmodat(
                dir,
                name,
                Mode::from_bits_truncate(0o700),
                nix::sys::stat::FchmodatFlags::NoFollowSymlink,
            )?;
            open_dir_at(dir, name)?
        }
        Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => {
            return unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
        }
        Err(e) => return Err(e),
    };
    let _ = fchmod(&fd, Mode::from_bits_truncate(0o700));
    let mut children = Vec::new();
    {
        let listing = nix::dir::Dir::from_fd(
            fd.try_clone()
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?,
        )?;
        let mut listing = listing;
        for entry in listing.iter() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                children.push(name.to_vec());
            }
        }
    }
    for child in children {
        remove_tree_at(fd.as_fd(), &child)?;
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)
}

/// `remove_tree_at` for a path: its parent is opened normally, the rest without following links.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let parent = nix::fcntl::open(
        parent,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    remove_tree_at(parent.as_fd(), std::os::unix::ffi::OsStrExt::as_bytes(name))
        .map_err(io::Error::from)
}

impl Extractor<'_> {
    fn refuse(&self, entry: &str, why: impl Into<String>) -> ImageError {
        ImageError::Entry {
            blob: self.blob.to_owned(),
            entry: entry.to_owned(),
            why: why.into(),
        }
    }

    fn failed(&self, entry: &str, step: &'static str, errno: Errno) -> ImageError {
        ImageError::Extract {
            blob: self.blob.to_owned(),
            entry: entry.to_owned(),
            step,
            errno,
        }
    }

    /// The directory `comps` inside the layer, created (0755, like docker) where missing.
    /// A component that exists and is not a directory (a symlink above all) is refused.
    fn parent(&mut self, comps: &[Vec<u8>], entry: &str) -> Result<OwnedFd, ImageError> {
        if let Some((path, _)) = &self.cached {
            if path.as_slice() == comps {
                return Ok(self.cached.take().unwrap().1);
            }
        }
        let mut fd = self.root.try_clone().map_err(|e| {
            self.failed(
                entry,
                "dup",
                Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            )
        })?;
        for (i, comp) in comps.iter().enumerate() {
            let next = match open_dir_at(fd.as_fd(), comp) {
                Ok(next) => next,
                Err(Errno::ENOENT) => {
                    mkdirat(fd.as_fd(), comp.as_slice(), Mode::from_bits_truncate(0o755))
                        .map_err(|e| self.failed(entry, "mkdirat", e))?;
                    let next = open_dir_at(fd.as_fd(), comp)
                        .map_err(|e| self.failed(entry, "openat", e))?;
                    fchmod(&next, Mode::from_bits_truncate(0o755))
                        .map_err(|e| self.failed(entry, "fchmod", e))?;
                    next
                }
                Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                    let what =
                        match fstatat(fd.as_fd(), comp.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => "a symlink",
                            _ => "not a directory",
                        };
                    return Err(self.refuse(entry, format!("its parent `{}` is {what} in this layer; entries are never written through one", show(&comps[..=i]))));
                }
                Err(e) => return Err(self.failed(entry, "openat", e)),
            };
            fd = next;
        }
        Ok(fd)
    }

    /// Makes room for a new `name` in `dir`: removes what is there, unless both are directories.
    fn clear(
        &mut self,
        dir: BorrowedFd,
        name: &[u8],
        keep_dir: bool,
        entry: &str,
    ) -> Result<bool, ImageError> {
        match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(self.failed(entry, "fstatat", e)),
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                if keep_dir {
                    return Ok(true);
                }
                remove_tree_at(dir, name).map_err(|e| self.failed(entry, "remove", e))?;
                Ok(false)
            }
            Ok(_) => {
                unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
                    .map_err(|e| self.failed(entry, "unlinkat", e))?;
                Ok(false)
            }
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ImageError> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let header = entry.header();
        let mut kind = header.entry_type();
        if kind == EntryType::Regular && raw.ends_with(b"/") {
            kind = EntryType::Directory; // pre-POSIX tar
        }
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        // An empty numeric field reads as 0, as Go's archive/tar does; garbage is refused.
        let old = header.as_old();
        let field = |value: io::Result<u64>, raw: &[u8], what: &str| match value {
            Ok(v) => Ok(v),
            Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
            Err(_) => Err(self.refuse(&shown, format!("unreadable {what} in its header"))),
        };
        let mut meta = Meta {
            mode: field(header.mode().map(u64::from), &old.mode, "mode")? as u32 & 0o7777,
            uid: field(header.uid(), &old.uid, "uid")?,
            gid: field(header.gid(), &old.gid, "gid")?,
            mtime: TimeSpec::new(
                field(header.mtime(), &old.mtime, "mtime")?.min(i64::MAX as u64) as i64,
                0,
            ),
        };
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let (device_major, device_minor) = (
            header.device_major().ok().flatten(),
            header.device_minor().ok().flatten(),
        );
        let mut xattrs = Vec::new();
        if let Some(pax) = entry
            .pax_extensions()
            .map_err(|e| self.refuse(&shown, format!("malformed PAX header: {e}")))?
        {
            for ext in pax {
                let ext =
                    ext.map_err(|e| self.refuse(&shown, format!("malformed PAX header: {e}")))?;
                let key = ext.key_bytes();
                if key == b"mtime" {
                    if let Some(t) = pax_time(ext.value_bytes()) {
                        meta.mtime = t;
                    }
                } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    xattrs.push((
                        String::from_utf8_lossy(name).into_owned(),
                        ext.value_bytes().to_vec(),
                    ));
                }
            }
        }

        let comps = components(&raw).map_err(|why| self.refuse(&shown, why))?;
        let Some((name, parents)) = comps.split_last() else {
            // `./`: the layer's root directory itself.
            if kind != EntryType::Directory {
                return Err(
                    self.refuse(&shown, "names the layer's root, which must be a directory")
                );
            }
            self.dirs.insert(Vec::new(), meta);
            return Ok(());
        };
        if let Some(p) = parents.iter().find(|p| p.starts_with(WHITEOUT)) {
            return Err(self.refuse(
                &shown,
                format!(
                    "the whiteout `{}` is used as a directory",
                    String::from_utf8_lossy(p)
                ),
            ));
        }

        if name.starts_with(WHITEOUT) {
            return self.whiteout(name, parents, &shown);
        }

        let dir = self.parent(parents, &shown)?;
        let result = match kind {
            EntryType::Directory => {
                let existed = self.clear(dir.as_fd(), name, true, &shown)?;
                if !existed {
                    mkdirat(
                        dir.as_fd(),
                        name.as_slice(),
                        Mode::from_bits_truncate(0o700),
                    )
                    .map_err(|e| self.failed(&shown, "mkdirat", e))?;
                }
                self.dirs.insert(comps.clone(), meta);
                Ok(())
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.file(dir.as_fd(), name, entry, meta, &xattrs, &shown)
            }
            EntryType::Symlink => {
                let target = link
                    .filter(|l| !l.is_empty())
                    .ok_or_else(|| self.refuse(&shown, "symlink without a target"))?;
                self.clear(dir.as_fd(), name, false, &shown)?;
                // Stored as is: it is resolved inside the container, against the container's root.
                symlinkat(target.as_slice(), dir.as_fd(), name.as_slice())
                    .map_err(|e| self.failed(&shown, "symlinkat", e))?;
                self.own_at(&shown, dir.as_fd(), name, &meta)?;
                self.stamp_at(&shown, dir.as_fd(), name, &meta)
            }
            EntryType::Link => {
                let target =
                    link.ok_or_else(|| self.refuse(&shown, "hardlink without a target"))?;
                let tshown = String::from_utf8_lossy(&target).into_owned();
                let tcomps = components(&target).map_err(|why| {
                    self.refuse(&shown, format!("hardlink target `{tshown}`: {why}"))
                })?;
                let Some((tname, tparents)) = tcomps.split_last() else {
                    return Err(self.refuse(&shown, "hardlink to the layer's root"));
                };
                if tcomps == comps {
                    return Ok(()); // a link to itself: the file is already there
                }
                // Resolve the source first: it must exist in this layer, reached without symlinks.
                self.cached = Some((parents.to_vec(), dir));
                let src = self.parent(tparents, &shown)?;
                let dir = self.parent(parents, &shown)?;
                match fstatat(src.as_fd(), tname.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                        return Err(
                            self.refuse(&shown, format!("hardlink to the directory `{tshown}`"))
                        )
                    }
                    Ok(_) => {}
                    Err(Errno::ENOENT) => {
                        return Err(self.refuse(
                            &shown,
                            format!("hardlink target `{tshown}` is not in this layer"),
                        ))
                    }
                    Err(e) => return Err(self.failed(&shown, "fstatat", e)),
                }
                self.clear(dir.as_fd(), name, false, &shown)?;
                linkat(
                    src.as_fd(),
                    tname.as_slice(),
                    dir.as_fd(),
                    name.as_slice(),
                    AtFlags::empty(),
                )
                .map_err(|e| self.failed(&shown, "linkat", e))?;
                self.cached = Some((parents.to_vec(), dir));
                return Ok(());
            }
            EntryType::Fifo => {
                self.clear(dir.as_fd(), name, false, &shown)?;
                let mode = self.strip_setid(meta.mode, &shown);
                mknodat(
                    dir.as_fd(),
                    name.as_slice(),
                    SFlag::S_IFIFO,
                    Mode::from_bits_truncate(0o600),
                    0,
                )
                .map_err(|e| self.failed(&shown, "mknodat", e))?;
                self.own_at(&shown, dir.as_fd(), name, &meta)?;
                nix::sys::stat::fchmodat(
                    dir.as_fd(),
                    name.as_slice(),
                    Mode::from_bits_truncate(mode),
                    nix::sys::stat::FchmodatFlags::NoFollowSymlink,
                )
                .map_err(|e| self.failed(&shown, "fchmodat", e))?;
                self.stamp_at(&shown, dir.as_fd(), name, &meta)
            }
            EntryType::Char | EntryType::Block => {
                let what = if kind == EntryType::Char { 'c' } else { 'b' };
                self.notes.devices.add(&format!(
                    "{shown} ({what} {}:{})",
                    device_major.unwrap_or(0),
                    device_minor.unwrap_or(0)
                ));
                Ok(())
            }
            other => Err(self.refuse(&shown, format!("unsupported entry type {other:?}"))),
        };
        self.cached = Some((parents.to_vec(), dir));
        result
    }

    fn strip_setid(&mut self, mode: u32, entry: &str) -> u32 {
        if mode & 0o6000 != 0 {
            self.notes.setid.add(entry);
        }
        if self.keep_setuid {
            mode
        } else {
            mode & !0o6000
        }
    }

    /// chown as root; without root, ownership stays the extracting user's (counted).
    /// Gives the entry `name` (a symlink or a fifo: never followed) its owner from the tar.
    fn own_at(
        &mut self,
        entry: &str,
        dir: BorrowedFd,
        name: &[u8],
        meta: &Meta,
    ) -> Result<(), ImageError> {
        self.own(entry, || {
            fchownat(
                dir,
                name,
                Some(Uid::from_raw(meta.uid as u32)),
                Some(Gid::from_raw(meta.gid as u32)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
        })
    }

    /// Gives the entry `name` (a symlink or a fifo: never followed) its mtime from the tar.
    fn stamp_at(
        &self,
        entry: &str,
        dir: BorrowedFd,
        name: &[u8],
        meta: &Meta,
    ) -> Result<(), ImageError> {
        utimensat(
            dir,
            name,
            &meta.mtime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| self.failed(entry, "utimensat", e))
    }

    fn own(&mut self, entry: &str, f: impl FnOnce() -> nix::Result<()>) -> Result<(), ImageError> {
        if self.chown {
            f().map_err(|e| self.failed(entry, "chown", e))
        } else {
            self.notes.unowned += 1;
            Ok(())
        }
    }

    fn file<R: Read>(
        &mut self,
        dir: BorrowedFd,
        name: &[u8],
        entry: &mut tar::Entry<'_, R>,
        meta: Meta,
        xattrs: &[(String, Vec<u8>)],
        shown: &str,
    ) -> Result<(), ImageError> {
        self.clear(dir, name, false, shown)?;
        let fd = openat(
            dir,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| self.failed(shown, "openat", e))?;
        let mut file =
            unsafe { std::fs::File::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(fd)) };
        let size = entry.size();
        self.guard.in_body.set(true);
        let copied = copy_data(entry, &mut file);
        self.guard.in_body.set(false);
        let copied = copied.map_err(|(side, e)| ImageError::Layer {
            blob: self.blob.to_owned(),
            why: match side {
                Side::Read => format!("tar entry `{shown}`: reading its data: {e}"),
                Side::Write => format!("tar entry `{shown}`: writing it into the store: {e}"),
            },
        })?;
        if copied != size {
            return Err(ImageError::Layer {
                blob: self.blob.to_owned(),
                why: format!("tar entry `{shown}` is truncated: {copied} of {size} bytes"),
            });
        }
        let mode = self.strip_setid(meta.mode, shown);
        self.own(shown, || {
            fchown(
                &file,
                Some(Uid::from_raw(meta.uid as u32)),
                Some(Gid::from_raw(meta.gid as u32)),
            )
        })?;
        fchmod(&file, Mode::from_bits_truncate(mode))
            .map_err(|e| self.failed(shown, "fchmod", e))?;
        for (key, value) in xattrs {
            // user.* only: trusted.overlay.* would steer overlayfs, security.capability would
            // hand out file capabilities as setuid does, security.selinux labels are the host's.
            if key.starts_with("user.") && !key.starts_with("user.overlay.") {
                set_xattr(file.as_fd(), key, value)
                    .map_err(|e| self.failed(shown, "fsetxattr", e))?;
            } else {
                self.notes.xattrs.add(&format!("{key} on {shown}"));
            }
        }
        futimens(&file, &meta.mtime, &meta.mtime).map_err(|e| self.failed(shown, "futimens", e))?;
        Ok(())
    }

    fn whiteout(
        &mut self,
        name: &[u8],
        parents: &[Vec<u8>],
        shown: &str,
    ) -> Result<(), ImageError> {
        let dir = self.parent(parents, shown)?;
        if name == OPAQUE {
            let mut set = false;
            if self.chown {
                set_xattr(dir.as_fd(), "trusted.overlay.opaque", b"y")
                    .map_err(|e| self.failed(shown, "setxattr trusted.overlay.opaque", e))?;
                set = true;
            }
            match set_xattr(dir.as_fd(), "user.overlay.opaque", b"y") {
                Ok(()) => {}
                Err(Errno::ENOTSUP | Errno::EPERM) if set => {}
                Err(e) => return Err(self.failed(shown, "setxattr user.overlay.opaque", e)),
            }
        } else if name.starts_with(b".wh..wh.") {
            // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): nothing to apply.
        } else {
            let target = &name[WHITEOUT.len()..];
            if target.is_empty() || target == b"." || target == b".." {
                return Err(self.refuse(shown, "whiteout of an invalid name"));
            }
            self.clear(dir.as_fd(), target, false, shown)?;
            mknodat(dir.as_fd(), target, SFlag::S_IFCHR, Mode::empty(), 0)
                .map_err(|e| self.failed(shown, "mknodat (whiteout)", e))?;
        }
        self.cached = Some((parents.to_vec(), dir));
        Ok(())
    }

    /// Directories get their mode, owner and mtime last: creating their entries changed them.
    fn finish(&mut self) -> Result<(), ImageError> {
        self.cached = None;
        let mut dirs: Vec<_> = self.dirs.drain().collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.0.len()));
        if !dirs.iter().any(|(p, _)| p.is_empty()) {
            fchmod(&self.root, Mode::from_bits_truncate(0o755))
                .map_err(|e| self.failed(".", "fchmod", e))?;
        }
        for (comps, meta) in dirs {
            let shown = if comps.is_empty() {
                ".".to_owned()
            } else {
                show(&comps)
            };
            let fd = if comps.is_empty() {
                self.root.try_clone().map_err(|e| {
                    self.failed(
                        &shown,
                        "dup",
                        Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                    )
                })?
            } else {
                let (name, parents) = comps.split_last().unwrap();
                let Ok(parent) = self.walk_existing(parents) else {
                    continue;
                };
                match open_dir_at(parent.as_fd(), name) {
                    Ok(fd) => fd,
                    Err(_) => continue, // replaced by a later entry
                }
            };
            // Setuid means nothing on a directory; setgid (group inheritance) is kept.
            let mode = meta.mode & !0o4000;
            self.own(&shown, || {
                fchown(
                    &fd,
                    Some(Uid::from_raw(meta.uid as u32)),
                    Some(Gid::from_raw(meta.gid as u32)),
                )
            })?;
            fchmod(&fd, Mode::from_bits_truncate(mode))
                .map_err(|e| self.failed(&shown, "fchmod", e))?;
            futimens(&fd, &meta.mtime, &meta.mtime)
                .map_err(|e| self.failed(&shown, "futimens", e))?;
        }
        Ok(())
    }

    fn walk_existing(&self, comps: &[Vec<u8>]) -> nix::Result<OwnedFd> {
        let mut fd = self.root.try_clone().map_err(|_| Errno::EMFILE)?;
        for comp in comps {
            fd = open_dir_at(fd.as_fd(), comp)?;
        }
        Ok(fd)
    }
}

/// Which end of a copy failed: a full store (ENOSPC) is not a broken archive.
enum Side {
    Read,
    Write,
}

/// io::copy, but says which side failed.
fn copy_data(from: &mut impl Read, to: &mut impl Write) -> Result<u64, (Side, io::Error)> {
    let mut buf = [0u8; 32 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err((Side::Read, e)),
        };
        to.write_all(&buf[..n]).map_err(|e| (Side::Write, e))?;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_layer_components_refuse_escapes() {
        assert_eq!(
            components(b"./a//b/").unwrap(),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
        assert!(components(b"./").unwrap().is_empty());
        assert!(components(b"../x").is_err());
        assert!(components(b"a/../../x").is_err());
        assert!(components(b"/etc/passwd").is_err());
        assert!(components("a/".repeat(2048).as_bytes()).is_ok());
        assert!(components("a/".repeat(2049).as_bytes()).is_err());
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("lonely-layer-{name}-{}", std::process::id()));
        let _ = remove_tree(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn append(
        b: &mut tar::Builder<Vec<u8>>,
        path: &str,
        kind: EntryType,
        data: &[u8],
        link: Option<&str>,
    ) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(data.len() as u64);
        h.set_mtime(1_000_000_000);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        b.append_data(&mut h, path, data).unwrap();
    }

    #[test]
    fn images_layer_whiteouts_become_overlay_markers() {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let dir = scratch("whiteouts");
        let mut b = tar::Builder::new(Vec::new());
        append(&mut b, "etc/.wh.gone", EntryType::Regular, b"", None);
        append(&mut b, "opq/.wh..wh..opq", EntryType::Regular, b"", None);
        append(&mut b, "opq/", EntryType::Directory, b"", None);
        append(&mut b, "opq/new", EntryType::Regular, b"x", None);
        append(&mut b, "etc/hard", EntryType::Link, b"", Some("opq/new"));
        let tar = b.into_inner().unwrap();
        extract(&tar[..], &dir, "t", false).unwrap();
        let gone = std::fs::symlink_metadata(dir.join("etc/gone")).unwrap();
        assert!(gone.file_type().is_char_device());
        assert_eq!(gone.rdev(), 0);
        assert!(!dir.join("etc/.wh.gone").exists() && !dir.join("opq/.wh..wh..opq").exists());
        let xattr = if nix::unistd::geteuid().is_root() {
            "trusted.overlay.opaque"
        } else {
            "user.overlay.opaque"
        };
        let name = std::ffi::CString::new(xattr).unwrap();
        let path =
            std::ffi::CString::new(dir.join("opq").into_os_string().into_encoded_bytes()).unwrap();
        let mut value = [0u8; 4];
        let n = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                name.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        assert_eq!(n, 1, "{xattr} on opq/");
        assert_eq!(value[0], b'y');
        assert_eq!(
            std::fs::metadata(dir.join("etc/hard")).unwrap().ino(),
            std::fs::metadata(dir.join("opq/new")).unwrap().ino()
        );
        remove_tree(&dir).unwrap();
    }

    #[test]
    fn images_layer_never_writes_through_a_symlink() {
        let dir = scratch("symlink");
        let outside = scratch("symlink-outside");
        let mut b = tar::Builder::new(Vec::new());
        append(
            &mut b,
            "l",
            EntryType::Symlink,
            b"",
            Some(outside.to_str().unwrap()),
        );
        append(&mut b, "l/evil", EntryType::Regular, b"pwned", None);
        let tar = b.into_inner().unwrap();
        let e = extract(&tar[..], &dir, "t", false).unwrap_err().to_string();
        assert!(
            e.contains("tar entry `l/evil`: its parent `l` is a symlink"),
            "{e}"
        );
        assert!(!outside.join("evil").exists());
        remove_tree(&dir).unwrap();
        remove_tree(&outside).unwrap();
    }

    #[test]
    fn images_layer_setuid_bits_cleared_unless_kept() {
        use std::os::unix::fs::PermissionsExt;
        let mut b = tar::Builder::new(Vec::new());
        for (name, mode) in [("suid", 0o4755), ("sgid", 0o2711), ("plain", 0o755)] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(EntryType::Regular);
            h.set_mode(mode);
            h.set_size(1);
            b.append_data(&mut h, name, &b"x"[..]).unwrap();
        }
        let tar = b.into_inner().unwrap();
        for keep in [false, true] {
            let dir = scratch(&format!("setuid-{keep}"));
            let notes = extract(&tar[..], &dir, "t", keep).unwrap();
            let mode =
                |n: &str| std::fs::metadata(dir.join(n)).unwrap().permissions().mode() & 0o7777;
            let (suid, sgid) = if keep {
                (0o4755, 0o2711)
            } else {
                (0o755, 0o711)
            };
            assert_eq!(
                (mode("suid"), mode("sgid"), mode("plain")),
                (suid, sgid, 0o755)
            );
            let described = notes.describe().join("\n");
            let expected = if keep {
                "setuid/setgid bits kept (keepSetuid) on 2 (suid, sgid)"
            } else {
                "setuid/setgid bits cleared on 2 (suid, sgid): keep them with keepSetuid (lonely load --keep-setuid)"
            };
            assert!(described.contains(expected), "{described}");
            remove_tree(&dir).unwrap();
        }
    }

    #[test]
    fn images_layer_pax_time() {
        assert_eq!(
            pax_time(b"1700000000.5"),
            Some(TimeSpec::new(1_700_000_000, 500_000_000))
        );
        assert_eq!(pax_time(b"12"), Some(TimeSpec::new(12, 0)));
        assert_eq!(pax_time(b"x"), None);
    }
}
