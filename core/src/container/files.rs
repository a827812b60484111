//! A running container's files from the host, as `docker cp` reaches them: every path is
//! resolved inside the container's root (its mount namespace, through /proc/<pid>/root) with
//! openat2(RESOLVE_IN_ROOT), so a symlink the container planted cannot lead to a host file.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;

use crate::reaper;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("container not running")]
    NotRunning,
    #[error("open `{path}` in the container: {errno}")]
    Open { path: String, errno: Errno },
    #[error("`{path}` in the container is not a regular file")]
    NotAFile { path: String },
    #[error("`{path}` in the container is larger than {limit} bytes")]
    TooLarge { path: String, limit: u64 },
    #[error("{what} `{path}` in the container: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
}

/// The root of the live container whose PID 1 is `pid` (`start`: its start time, for one
/// another process started), as an O_PATH fd: every lookup below it stays inside.
pub(super) fn container_root(pid: i32, start: Option<u64>) -> Result<OwnedFd, FileError> {
    let root = super::foreign::open_proc_root(pid).map_err(|errno| FileError::Open {
        path: "/".into(),
        errno,
    })?;
    // Opened first, checked after: a pid is not reused before the reaper reaps it, so if the
    // container still lives now, the root we hold is its own.
    let live = match start {
        None => reaper::is_live(pid),
        Some(start) => super::foreign::start_time(pid) == Some(start),
    };
    if !live {
        return Err(FileError::NotRunning);
    }
    Ok(root)
}

/// `path` (absolute inside the container) opened with `flags` beneath the root of the live
/// container whose PID 1 is `pid`.
fn open_in(
    pid: i32,
    start: Option<u64>,
    path: &str,
    flags: libc::c_int,
    mode: u32,
) -> Result<std::fs::File, FileError> {
    let failed = |errno| FileError::Open {
        path: path.into(),
        errno,
    };
    let root = container_root(pid, start)?;
    let rel =
        std::ffi::CString::new(path.trim_start_matches('/')).map_err(|_| failed(Errno::EINVAL))?;
    let how_flags = flags | libc::O_NOCTTY | libc::O_NONBLOCK;
    let fd = crate::sys::openat2_mode(
        std::os::fd::AsRawFd::as_raw_fd(&root),
        &rel,
        how_flags,
        mode,
        libc::RESOLVE_IN_ROOT,
    )
    .map_err(failed)?;
    Ok(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// The content of a regular file of the container, at most `limit` bytes.
pub fn read(pid: i32, start: Option<u64>, path: &str, limit: u64) -> Result<Vec<u8>, FileError> {
    let file = open_in(pid, start, path, libc::O_RDONLY, 0)?;
    let io = |what, source| FileError::Io {
        what,
        path: path.into(),
        source,
    };
    let meta = file.metadata().map_err(|e| io("stat", e))?;
    if !meta.is_file() {
        return Err(FileError::NotAFile { path: path.into() });
    }
    let mut out = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| io("read", e))?;
    if out.len() as u64 > limit {
        return Err(FileError::TooLarge {
            path: path.into(),
            limit,
        });
    }
    Ok(out)
}

/// Writes `data` to a file of the container (created with `mode`, or truncated; never through
/// a symlink at its last component).
pub fn write(
    pid: i32,
    start: Option<u64>,
    path: &str,
    data: &[u8],
    mode: u32,
) -> Result<(), FileError> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NOFOLLOW;
    let mut file = open_in(pid, start, path, flags, mode)?;
    let io = |what, source| FileError::Io {
        what,
        path: path.into(),
        source,
    };
    if !file.metadata().map_err(|e| io("stat", e))?.is_file() {
        return Err(FileError::NotAFile { path: path.into() });
    }
    file.write_all(data).map_err(|e| io("write", e))
}
