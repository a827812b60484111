//! `docker cp` as tar archives: a tree of a container (or of the host) packed, and an archive
//! unpacked into one. The base path is resolved once (inside a container: RESOLVE_IN_ROOT);
//! below it every step is relative to a directory fd we hold and refuses symlinks
//! (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW), so a process renaming entries meanwhile can make a copy
//! fail, never reach outside the tree. Symlinks are copied as symlinks, devices archived but
//! never made on the way in, where setuid and setgid bits are dropped (as lonely's setuid guard
//! does for the container itself).

use std::ffi::{CStr, CString, OsStr};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Container(#[from] super::files::FileError),
    #[error("{what} `{path}`: {errno}")]
    Sys {
        what: &'static str,
        path: String,
        errno: Errno,
    },
    #[error("the archive is larger than {0} bytes")]
    TooLarge(u64),
    #[error("archive: {0}")]
    Archive(std::io::Error),
    #[error("archive entry `{0}` leaves the destination (absolute, or `..`)")]
    Outside(String),
    #[error("archive entry `{path}`: {kind} entries are not copied")]
    Unsupported { path: String, kind: String },
}

/// Kernel filesystems a tree may have mounted inside: archived as empty directories.
const VIRTUAL: [i64; 6] = [
    0x9fa0,     // proc
    0x62656572, // sysfs
    0x27e0eb,   // cgroup
    0x63677270, // cgroup2
    0x1cd1,     // devpts
    0x19800202, // mqueue
];

fn sys<'a>(what: &'static str, path: &'a Path) -> impl Fn(Errno) -> CopyError + 'a {
    move |errno| CopyError::Sys {
        what,
        path: path.display().to_string(),
        errno,
    }
}

fn cstr(name: &OsStr) -> CString {
    CString::new(name.as_bytes()).unwrap_or_else(|_| c"\u{fffd}".to_owned())
}

fn owned(fd: libc::c_int) -> Result<OwnedFd, Errno> {
    if fd < 0 {
        Err(Errno::last())
    } else {
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// openat(dir, name) that never follows a symlink at `name`.
fn open_at(dir: RawFd, name: &CStr, flags: libc::c_int, mode: u32) -> Result<OwnedFd, Errno> {
    owned(unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode,
        )
    })
}

fn stat_at(dir: RawFd, name: &CStr) -> Result<libc::stat, Errno> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let flags = libc::AT_SYMLINK_NOFOLLOW
        | if name.is_empty() {
            libc::AT_EMPTY_PATH
        } else {
            0
        };
    Errno::result(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, flags) }).map(|_| st)
}

fn kind(mode: u32) -> u32 {
    mode & libc::S_IFMT
}

/// Packs what `path` names (resolved beneath `root` with `resolve`; AT_FDCWD and 0 for the
/// host) as a tar archive whose top entry is its base name, at most `limit` bytes.
pub fn archive(root: RawFd, path: &str, resolve: u64, limit: u64) -> Result<Vec<u8>, CopyError> {
    let shown = Path::new(path);
    let (parent, name) = split(path);
    let rel = below(&parent, resolve).map_err(sys("open", shown))?;
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    let dir = crate::sys::openat2(root, &rel, flags, resolve)
        .map_err(sys("open", Path::new(&parent)))
        .and_then(|fd| owned(fd).map_err(sys("open", shown)))?;
    let mut builder = tar::Builder::new(Limited {
        out: Vec::new(),
        limit,
    });
    builder.follow_symlinks(false);
    let top = PathBuf::from(&name);
    pack(
        &mut builder,
        dir.as_raw_fd(),
        &cstr(OsStr::new(&name)),
        &top,
        shown,
        None,
    )?;
    let out = builder.into_inner().map_err(|e| limited(e, limit))?;
    Ok(out.out)
}

/// `path` as openat2 takes it: inside a container relative to its root, on the host as it is.
fn below(path: &str, resolve: u64) -> Result<CString, Errno> {
    let rel = if resolve & libc::RESOLVE_IN_ROOT != 0 {
        path.trim_start_matches('/')
    } else {
        path
    };
    CString::new(if rel.is_empty() { "." } else { rel }).map_err(|_| Errno::EINVAL)
}

/// `/a/b/c` → (`/a/b`, `c`); `/` → (`/`, `.`).
fn split(path: &str) -> (String, String) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        _ if trimmed.is_empty() => ("/".into(), ".".into()),
        Some((parent, name)) => (
            if parent.is_empty() {
                "/".into()
            } else {
                parent.into()
            },
            name.into(),
        ),
        None => (".".into(), trimmed.into()),
    }
}

fn limited(e: std::io::Error, limit: u64) -> CopyError {
    if e.kind() == std::io::ErrorKind::FileTooLarge {
        CopyError::TooLarge(limit)
    } else {
        CopyError::Archive(e)
    }
}

/// A Vec that refuses to grow past `limit`.
struct Limited {
    out: Vec<u8>,
    limit: u64,
}

impl Write for Limited {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if (self.out.len() + buf.len()) as u64 > self.limit {
            return Err(std::io::ErrorKind::FileTooLarge.into());
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One entry `name` of `dir`, archived as `at`; directories recursively. `dev`: the parent's device.
fn pack(
    b: &mut tar::Builder<Limited>,
    dir: RawFd,
    name: &CStr,
    at: &Path,
    shown: &Path,
    dev: Option<u64>,
) -> Result<(), CopyError> {
    let st = stat_at(dir, name).map_err(sys("stat", shown))?;
    let mut header = tar::Header::new_gnu();
    header.set_mode(st.st_mode & 0o7777);
    header.set_uid(st.st_uid as u64);
    header.set_gid(st.st_gid as u64);
    header.set_mtime(st.st_mtime.max(0) as u64);
    let limit = b.get_ref().limit;
    let io = |e| limited(e, limit);
    match kind(st.st_mode) {
        libc::S_IFREG => {
            // O_NONBLOCK: a fifo swapped in meanwhile does not hang us; fstat says what we got.
            let fd = open_at(dir, name, libc::O_RDONLY | libc::O_NONBLOCK, 0)
                .map_err(sys("open", shown))?;
            let mut file = std::fs::File::from(fd);
            let now = file.metadata().map_err(CopyError::Archive)?;
            if !now.is_file() {
                return Err(sys("open", shown)(Errno::ESTALE));
            }
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(now.len());
            b.append_data(&mut header, at, (&mut file).take(now.len()))
                .map_err(io)
        }
        libc::S_IFLNK => {
            let target =
                nix::fcntl::readlinkat(unsafe { std::os::fd::BorrowedFd::borrow_raw(dir) }, name)
                    .map_err(sys("readlink", shown))?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            b.append_link(&mut header, at, Path::new(&target))
                .map_err(io)
        }
        libc::S_IFDIR => {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            b.append_data(&mut header, at, std::io::empty())
                .map_err(io)?;
            let fd = open_at(dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .map_err(sys("open", shown))?;
            if is_virtual(&fd, st.st_dev, dev) {
                return Ok(());
            }
            let child_dir = fd.as_raw_fd();
            let listing = nix::dir::Dir::from_fd(fd.try_clone().map_err(CopyError::Archive)?)
                .map_err(sys("opendir", shown))?;
            let mut names: Vec<CString> = Vec::new();
            let mut listing = listing;
            for entry in listing.iter() {
                let entry = entry.map_err(sys("readdir", shown))?;
                let n = entry.file_name();
                if n != c"." && n != c".." {
                    names.push(n.to_owned());
                }
            }
            names.sort();
            for n in names {
                let os = OsStr::from_bytes(n.to_bytes());
                pack(
                    b,
                    child_dir,
                    &n,
                    &at.join(os),
                    &shown.join(os),
                    Some(st.st_dev),
                )?;
            }
            Ok(())
        }
        libc::S_IFIFO => {
            header.set_entry_type(tar::EntryType::Fifo);
            header.set_size(0);
            b.append_data(&mut header, at, std::io::empty()).map_err(io)
        }
        libc::S_IFCHR | libc::S_IFBLK => {
            let char = kind(st.st_mode) == libc::S_IFCHR;
            header.set_entry_type(if char {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            header.set_size(0);
            header
                .set_device_major(libc::major(st.st_rdev))
                .map_err(CopyError::Archive)?;
            header
                .set_device_minor(libc::minor(st.st_rdev))
                .map_err(CopyError::Archive)?;
            b.append_data(&mut header, at, std::io::empty()).map_err(io)
        }
        // A socket has no tar form (GNU tar skips them too).
        _ => Ok(()),
    }
}

/// A kernel filesystem mounted here (another device than its parent's): not descended into.
fn is_virtual(fd: &OwnedFd, dev: u64, parent: Option<u64>) -> bool {
    if parent.is_none_or(|p| p == dev) {
        return false;
    }
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    unsafe { libc::fstatfs(fd.as_raw_fd(), &mut fs) == 0 && VIRTUAL.contains(&(fs.f_type as i64)) }
}

/// Who files unpacked into a tree belong to (the container's root, on the host).
#[derive(Clone, Copy)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Unpacks `archive` into the directory `path` (resolved beneath `root` with `resolve`),
/// every entry owned by `owner`. `rename_top`: the archive's top entry takes this name (docker
/// cp to a path that does not exist yet).
pub fn extract(
    root: RawFd,
    path: &str,
    resolve: u64,
    archive: &[u8],
    owner: Owner,
    rename_top: Option<&str>,
) -> Result<(), CopyError> {
    let shown = Path::new(path);
    let rel = below(path, resolve).map_err(sys("open", shown))?;
    let dest = crate::sys::openat2(
        root,
        &rel,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        resolve,
    )
    .map_err(sys("open", shown))
    .and_then(|fd| owned(fd).map_err(sys("open", shown)))?;
    let mut entries = tar::Archive::new(archive);
    for entry in entries.entries().map_err(CopyError::Archive)? {
        let mut entry = entry.map_err(CopyError::Archive)?;
        let name = entry.path().map_err(CopyError::Archive)?.into_owned();
        let mut parts: Vec<&OsStr> = Vec::new();
        for c in name.components() {
            match c {
                Component::Normal(p) => parts.push(p),
                Component::CurDir => {}
                _ => return Err(CopyError::Outside(name.display().to_string())),
            }
        }
        if let (Some(top), Some(first)) = (rename_top, parts.first_mut()) {
            *first = OsStr::new(top);
        }
        let Some((last, dirs)) = parts.split_last() else {
            continue;
        };
        let at = shown.join(parts.iter().collect::<PathBuf>());
        // Each directory on the way: opened below the one before, never through a symlink.
        let mut held: Option<OwnedFd> = None;
        for d in dirs {
            let parent = held.as_ref().map_or(dest.as_raw_fd(), |f| f.as_raw_fd());
            let d = cstr(d);
            let fd = match open_at(parent, &d, libc::O_RDONLY | libc::O_DIRECTORY, 0) {
                Err(Errno::ENOENT) => {
                    Errno::result(unsafe { libc::mkdirat(parent, d.as_ptr(), 0o755) })
                        .map_err(sys("mkdir", &at))?;
                    open_at(parent, &d, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                }
                other => other,
            }
            .map_err(sys("open", &at))?;
            held = Some(fd);
        }
        let parent = held.as_ref().map_or(dest.as_raw_fd(), |f| f.as_raw_fd());
        let mode = entry.header().mode().map_err(CopyError::Archive)? & 0o1777; // no setuid, no setgid
        unpack(&mut entry, parent, &cstr(last), &at, mode, owner)?;
    }
    Ok(())
}

fn unpack(
    entry: &mut tar::Entry<&[u8]>,
    dir: RawFd,
    name: &CStr,
    at: &Path,
    mode: u32,
    owner: Owner,
) -> Result<(), CopyError> {
    let chown = |fd: RawFd| {
        Errno::result(unsafe { libc::fchown(fd, owner.uid, owner.gid) }).map_err(sys("chown", at))
    };
    // What is in the way and is not a directory goes (a symlink included: it is replaced, not followed).
    let replace = |dir: RawFd| match stat_at(dir, name) {
        Ok(st) if kind(st.st_mode) != libc::S_IFDIR => {
            Errno::result(unsafe { libc::unlinkat(dir, name.as_ptr(), 0) })
                .map(drop)
                .map_err(sys("unlink", at))
        }
        _ => Ok(()),
    };
    match entry.header().entry_type() {
        tar::EntryType::Directory => {
            match Errno::result(unsafe { libc::mkdirat(dir, name.as_ptr(), 0o700) }) {
                Ok(_) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(sys("mkdir", at)(e)),
            }
            let fd = open_at(dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .map_err(sys("open", at))?;
            chown(fd.as_raw_fd())?;
            Errno::result(unsafe { libc::fchmod(fd.as_raw_fd(), mode) })
                .map(drop)
                .map_err(sys("chmod", at))
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            replace(dir)?;
            let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
            let fd = open_at(dir, name, flags, 0o600).map_err(sys("create", at))?;
            chown(fd.as_raw_fd())?;
            let mut file = std::fs::File::from(fd);
            std::io::copy(entry, &mut file).map_err(CopyError::Archive)?;
            Errno::result(unsafe { libc::fchmod(file.as_raw_fd(), mode) })
                .map(drop)
                .map_err(sys("chmod", at))
        }
        tar::EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(CopyError::Archive)?
                .unwrap_or_default()
                .into_owned();
            replace(dir)?;
            let target = cstr(target.as_os_str());
            Errno::result(unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) })
                .map_err(sys("symlink", at))?;
            Errno::result(unsafe {
                libc::fchownat(
                    dir,
                    name.as_ptr(),
                    owner.uid,
                    owner.gid,
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            })
            .map(drop)
            .map_err(sys("chown", at))
        }
        other => Err(CopyError::Unsupported {
            path: at.display().to_string(),
            kind: format!("{other:?}"),
        }),
    }
}

/// The host ids of the container's root (its user namespace's maps; 0 without one).
pub fn container_owner(pid: i32) -> Owner {
    let first = |file: &str| -> u32 {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .ok()
            .and_then(|m| {
                m.lines().find_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (f.first() == Some(&"0"))
                        .then(|| f.get(1)?.parse().ok())
                        .flatten()
                })
            })
            .unwrap_or(0)
    };
    Owner {
        uid: first("uid_map"),
        gid: first("gid_map"),
    }
}

/// `archive` of a path inside the live container whose PID 1 is `pid`.
pub fn archive_from(
    pid: i32,
    start: Option<u64>,
    path: &str,
    limit: u64,
) -> Result<Vec<u8>, CopyError> {
    let root = super::files::container_root(pid, start)?;
    archive(root.as_raw_fd(), path, libc::RESOLVE_IN_ROOT, limit)
}

/// `extract` into a directory inside the live container whose PID 1 is `pid`, owned by its root.
pub fn extract_into(
    pid: i32,
    start: Option<u64>,
    path: &str,
    data: &[u8],
    rename_top: Option<&str>,
) -> Result<(), CopyError> {
    let root = super::files::container_root(pid, start)?;
    extract(
        root.as_raw_fd(),
        path,
        libc::RESOLVE_IN_ROOT,
        data,
        container_owner(pid),
        rename_top,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory (the crate's test helper), removed when dropped.
    struct Dir(std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn tree() -> Dir {
        Dir(crate::cgroups::tests::tempdir())
    }

    #[test]
    fn a_tree_round_trips_with_its_symlinks_and_without_setuid_bits() {
        let src = tree();
        let base = src.0.join("data");
        std::fs::create_dir_all(base.join("sub")).unwrap();
        std::fs::write(base.join("sub/file"), b"hello").unwrap();
        std::fs::write(base.join("suid"), b"x").unwrap();
        std::fs::set_permissions(
            base.join("suid"),
            std::os::unix::fs::PermissionsExt::from_mode(0o4755),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", base.join("link")).unwrap();
        let tar = archive(libc::AT_FDCWD, base.to_str().unwrap(), 0, 1 << 20).unwrap();
        let dst = tree();
        let me = Owner {
            uid: unsafe { libc::getuid() },
            gid: unsafe { libc::getgid() },
        };
        extract(libc::AT_FDCWD, dst.0.to_str().unwrap(), 0, &tar, me, None).unwrap();
        assert_eq!(
            std::fs::read(dst.0.join("data/sub/file")).unwrap(),
            b"hello"
        );
        assert_eq!(
            std::fs::read_link(dst.0.join("data/link")).unwrap(),
            Path::new("/etc/passwd")
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dst.0.join("data/suid"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o7777, 0o755, "setuid dropped");
        extract(
            libc::AT_FDCWD,
            dst.0.to_str().unwrap(),
            0,
            &tar,
            me,
            Some("renamed"),
        )
        .unwrap();
        assert!(dst.0.join("renamed/sub/file").exists());
        assert!(matches!(
            archive(libc::AT_FDCWD, base.to_str().unwrap(), 0, 100),
            Err(CopyError::TooLarge(100))
        ));
    }

    #[test]
    fn an_entry_through_a_planted_symlink_is_refused_and_dotdot_never_leaves() {
        let dst = tree();
        let outside = tree();
        // The destination has `d -> <outside>`: an archive entry `d/x` must not land there.
        std::os::unix::fs::symlink(&outside.0, dst.0.join("d")).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "d/x", &b"x"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let me = Owner {
            uid: unsafe { libc::getuid() },
            gid: unsafe { libc::getgid() },
        };
        let err = extract(libc::AT_FDCWD, dst.0.to_str().unwrap(), 0, &tar, me, None).unwrap_err();
        assert!(
            matches!(
                err,
                CopyError::Sys {
                    errno: Errno::ENOTDIR | Errno::ELOOP,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!outside.0.join("x").exists(), "written through the symlink");
        // `..` in a name is refused before anything is written (tar's builder will not make one; raw bytes do).
        let mut raw = tar.clone();
        raw[..3].copy_from_slice(b"../");
        raw[3] = b'x';
        raw[4] = 0;
        // the header checksum must match for the entry to parse
        let mut header = tar::Header::from_byte_slice(&raw[..512]).clone();
        header.set_cksum();
        raw[..512].copy_from_slice(header.as_bytes());
        let err = extract(libc::AT_FDCWD, dst.0.to_str().unwrap(), 0, &raw, me, None).unwrap_err();
        assert!(matches!(err, CopyError::Outside(_)), "{err}");
    }
}
