//! Reading a small file of an image (its /etc/passwd, /etc/group) from the host, as the image
//! would see it: the topmost layer that has it, resolved inside that layer (RESOLVE_IN_ROOT,
//! so a symlink cannot reach the host's files), a regular file only, opened non-blocking (a
//! FIFO cannot stall Node) and read up to a cap (a huge or endless file cannot exhaust it).

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use crate::sys::openat2;

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("the image's /{path} is not a regular file")]
    NotRegular { path: String },
    #[error("the image's /{path} is larger than {max} bytes")]
    TooLarge { path: String, max: u64 },
    #[error("reading the image's /{path}: {errno}")]
    Read { path: String, errno: Errno },
}

/// The content of `rel` (e.g. "etc/passwd") in the topmost of `layers` (top last) that has it.
pub fn read_in_layers(
    layers: &[String],
    rel: &str,
    max: u64,
) -> Result<Option<Vec<u8>>, LookupError> {
    let read_error = |errno| LookupError::Read {
        path: rel.into(),
        errno,
    };
    let io_error = |e: std::io::Error| read_error(Errno::from_raw(e.raw_os_error().unwrap_or(0)));
    let path = CString::new(rel).map_err(|_| read_error(Errno::EINVAL))?;
    for layer in layers.iter().rev() {
        let Ok(dir) = std::fs::File::open(layer) else {
            continue;
        };
        let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
        let fd = match openat2(
            dir.as_raw_fd(),
            &path,
            flags,
            libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_XDEV,
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ENOTDIR) => continue,
            Err(errno) => return Err(read_error(errno)),
        };
        let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        if !file.metadata().map_err(io_error)?.is_file() {
            return Err(LookupError::NotRegular { path: rel.into() });
        }
        let mut out = Vec::new();
        file.take(max + 1).read_to_end(&mut out).map_err(io_error)?;
        if out.len() as u64 > max {
            return Err(LookupError::TooLarge {
                path: rel.into(),
                max,
            });
        }
        return Ok(Some(out));
    }
    Ok(None)
}
