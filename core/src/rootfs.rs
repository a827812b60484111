//! The caller's rootfs, opened once by the parent: every component without following a
//! symlink. The child enters that fd (fchdir) before it makes its
//! mount namespace, which carries the working directory over to the namespace's copy of the
//! mount, and clones `.`: never the path, so a writer who swaps the rootfs (or a parent of
//! it) after validation changes nothing. (A new namespace may not clone the host's mounts
//! through the fd itself, and an unprivileged parent may not clone them at all.)

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;

use crate::sys::openat2;

/// Why the rootfs could not be opened, with the path the user gave.
#[derive(Debug, thiserror::Error)]
#[error("open rootfs `{path}`: {errno}")]
pub struct RootfsError {
    pub path: String,
    pub errno: Errno,
}

/// openat2(O_PATH|O_DIRECTORY, RESOLVE_NO_SYMLINKS) of the canonical path the options made.
pub fn open(path: &str) -> Result<OwnedFd, RootfsError> {
    let fail = |errno| RootfsError {
        path: path.to_owned(),
        errno,
    };
    let c = CString::new(path).map_err(|_| fail(Errno::EINVAL))?;
    let flags = libc::O_PATH | libc::O_DIRECTORY;
    let fd = openat2(libc::AT_FDCWD, &c, flags, libc::RESOLVE_NO_SYMLINKS).map_err(fail)?;
    // Its /proc, /sys and /dev need no check here: the child attaches them with no symlink
    // followed (a swapped-in link fails setup), and /dev/null is our own /dev's.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
