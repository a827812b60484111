//! The caller's rootfs, opened once by the parent: every component without following a
//! symlink, then checked on the fd. The child enters that fd (fchdir) before it makes its
//! mount namespace, which carries the working directory over to the namespace's copy of the
//! mount, and clones `.`: never the path, so a writer who swaps the rootfs (or a parent of
//! it) after validation changes nothing. (A new namespace may not clone the host's mounts
//! through the fd itself, and an unprivileged parent may not clone them at all.)

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

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
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    let size = std::mem::size_of::<libc::open_how>();
    let fd = unsafe { libc::syscall(libc::SYS_openat2, libc::AT_FDCWD, c.as_ptr(), &how, size) };
    if fd < 0 {
        return Err(fail(Errno::last()));
    }
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // /proc, /sys, /dev or /dev/null as a symlink would redirect a kernel mount: refused on
    // the fd here too (the options' check ran on the path, before this open).
    for entry in [c"proc", c"sys", c"dev", c"dev/null"] {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::fstatat(
                fd.as_raw_fd(),
                entry.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if r == 0 && st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            return Err(RootfsError {
                path: format!("{path}/{}", entry.to_string_lossy()),
                errno: Errno::ELOOP,
            });
        }
    }
    Ok(fd)
}
