//! Reading a small file of an image (its /etc/passwd, /etc/group) from the host, as the image
//! would see it: the topmost layer that has it, resolved inside that layer (RESOLVE_IN_ROOT,
//! so a symlink cannot reach the host's files), a regular file only, opened non-blocking (a
//! FIFO cannot stall Node) and read up to a cap (a huge or endless file cannot exhaust it).

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;

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
    let path = CString::new(rel).map_err(|_| LookupError::Read {
        path: rel.into(),
        errno: Errno::EINVAL,
    })?;
    for layer in layers.iter().rev() {
        let Ok(dir) = std::fs::File::open(layer) else {
            continue;
        };
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC) as u64;
        how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_XDEV;
        let size = std::mem::size_of::<libc::open_how>();
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                std::os::fd::AsRawFd::as_raw_fd(&dir),
                path.as_ptr(),
                &how,
                size,
            )
        };
        if fd < 0 {
            match Errno::last() {
                Errno::ENOENT | Errno::ENOTDIR => continue,
                errno => {
                    return Err(LookupError::Read {
                        path: rel.into(),
                        errno,
                    })
                }
            }
        }
        let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        let meta = file.metadata().map_err(|e| LookupError::Read {
            path: rel.into(),
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        })?;
        if !meta.is_file() {
            return Err(LookupError::NotRegular { path: rel.into() });
        }
        let mut out = Vec::new();
        file.take(max + 1)
            .read_to_end(&mut out)
            .map_err(|e| LookupError::Read {
                path: rel.into(),
                errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            })?;
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
