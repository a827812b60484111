//! The mount points lonely makes in a caller's rootfs (a target the rootfs lacks), removed
//! once the container is gone (on any path): a rootfs is the caller's own directory, and it comes back as
//! it was given. Both the check and the removal resolve inside the root (RESOLVE_IN_ROOT), as
//! the child does, so a link the container left cannot lead them out of it.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use crate::plan::{InRoot, Op, ROOT};
use crate::sys::openat2;

/// What the plan will make in the rootfs, in the order it makes it: (path in the root, a directory).
pub struct Made {
    root: OwnedFd,
    paths: Vec<(CString, bool)>,
}

/// The plan's mount points the rootfs lacks now; None when it has them all.
pub fn missing(root: BorrowedFd, plan: &[Op]) -> Option<Made> {
    let mut paths: Vec<(CString, bool)> = Vec::new();
    let mut note = |target: &InRoot, dir: bool| {
        let known = paths.iter().any(|(p, _)| *p == target.path);
        if target.base == ROOT && !target.path.is_empty() && !known && !exists(root, &target.path) {
            paths.push((target.path.clone(), dir));
        }
    };
    for op in plan {
        match op {
            Op::EnsureDir { components } => components.iter().for_each(|c| note(c, true)),
            Op::EnsureFile { target } => note(target, false),
            _ => {}
        }
    }
    if paths.is_empty() {
        return None;
    }
    let root = root.try_clone_to_owned().ok()?;
    Some(Made { root, paths })
}

fn exists(root: BorrowedFd, path: &CString) -> bool {
    match openat2(root.as_raw_fd(), path, libc::O_PATH, libc::RESOLVE_IN_ROOT) {
        Ok(fd) => {
            unsafe { libc::close(fd) };
            true
        }
        // Anything but "not there" is left alone: only what was missing is ever removed.
        Err(e) => e != Errno::ENOENT,
    }
}

/// Dropped once the container is gone (its exit, or a failed start): removes them, deepest
/// first, a directory only if empty, a file only if empty and regular (what the container put
/// there stays).
impl Drop for Made {
    fn drop(&mut self) {
        for (path, dir) in self.paths.iter().rev() {
            let bytes = path.as_bytes();
            let (parent, name) = match bytes.iter().rposition(|b| *b == b'/') {
                Some(i) => (&bytes[..i], &bytes[i + 1..]),
                None => (&b"."[..], bytes),
            };
            let (Ok(parent), Ok(name)) = (CString::new(parent), CString::new(name)) else {
                continue;
            };
            let flags = libc::O_PATH | libc::O_DIRECTORY;
            let Ok(fd) = openat2(self.root.as_raw_fd(), &parent, flags, libc::RESOLVE_IN_ROOT)
            else {
                continue;
            };
            let at = unsafe { OwnedFd::from_raw_fd(fd) };
            if *dir {
                unsafe { libc::unlinkat(at.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) };
            } else if empty_file(&at, &name) {
                unsafe { libc::unlinkat(at.as_raw_fd(), name.as_ptr(), 0) };
            }
        }
    }
}

fn empty_file(dir: &OwnedFd, name: &CString) -> bool {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let flags = libc::AT_SYMLINK_NOFOLLOW;
    let ok = unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, flags) } == 0;
    ok && st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_size == 0
}
