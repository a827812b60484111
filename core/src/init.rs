//! lonely-init (crate/init/init.c), the PID 1 of `init: true`: its bytes are in the addon, and
//! each process holds one sealed memfd of them that children exec with execveat. A container
//! sees `/memfd:lonely-init` as its PID 1's exe, and cannot write to it (F_SEAL_WRITE): never a
//! binary of the host's (the CVE-2019-5736 class).

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

use nix::errno::Errno;

static PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/lonely-init"));

/// The argv[0] the init gets (what `ps` shows inside).
pub const NAME: &str = "lonely-init";

/// The sealed memfd of the init (made once per process).
pub fn memfd() -> Result<i32, Errno> {
    static FD: OnceLock<Result<OwnedFd, Errno>> = OnceLock::new();
    FD.get_or_init(|| {
        let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
        let fd = unsafe { libc::memfd_create(c"lonely-init".as_ptr(), flags) };
        if fd < 0 {
            return Err(Errno::last());
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut file = std::fs::File::from(
            fd.try_clone()
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?,
        );
        file.write_all(PROGRAM)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        let seals =
            libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(Errno::last());
        }
        Ok(fd)
    })
    .as_ref()
    .map(|fd| fd.as_raw_fd())
    .map_err(|e| *e)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_init_is_a_sealed_static_elf() {
        assert_eq!(&super::PROGRAM[..4], b"\x7fELF");
        let fd = super::memfd().unwrap();
        let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
        assert_ne!(seals & libc::F_SEAL_WRITE, 0);
        let written = unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) };
        assert_eq!(written, -1, "sealed: not writable");
    }
}
