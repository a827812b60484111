//! lonely's freestanding programs (init/): lonely-init, the PID 1 of `init: true`, and
//! lonely-monitor, the parent of a detached container's PID 1. Their bytes are in the addon, and
//! each process holds one sealed memfd of each that children exec with execveat. A container
//! sees `/memfd:lonely-init` as its PID 1's exe, and cannot write to it (F_SEAL_WRITE): never a
//! binary of the host's (the CVE-2019-5736 class).

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

use nix::errno::Errno;

pub struct Program {
    /// Its argv[0] (what `ps` shows) and its memfd's name.
    pub name: &'static str,
    bytes: &'static [u8],
    fd: OnceLock<Result<OwnedFd, Errno>>,
}

pub static INIT: Program = Program {
    name: "lonely-init",
    bytes: include_bytes!(concat!(env!("OUT_DIR"), "/lonely-init")),
    fd: OnceLock::new(),
};

pub static MONITOR: Program = Program {
    name: "lonely-monitor",
    bytes: include_bytes!(concat!(env!("OUT_DIR"), "/lonely-monitor")),
    fd: OnceLock::new(),
};

impl Program {
    /// The sealed memfd of the program (made once per process).
    pub fn memfd(&self) -> Result<i32, Errno> {
        self.fd
            .get_or_init(|| self.sealed())
            .as_ref()
            .map(|fd| fd.as_raw_fd())
            .map_err(|e| *e)
    }

    fn sealed(&self) -> Result<OwnedFd, Errno> {
        let io = |e: std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
        let name = std::ffi::CString::new(self.name).map_err(|_| Errno::EINVAL)?;
        let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
        let fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
        if fd < 0 {
            return Err(Errno::last());
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        std::fs::File::from(fd.try_clone().map_err(io)?)
            .write_all(self.bytes)
            .map_err(io)?;
        let seals =
            libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(Errno::last());
        }
        Ok(fd)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_programs_are_sealed_static_elfs() {
        for program in [&super::INIT, &super::MONITOR] {
            assert_eq!(&program.bytes[..4], b"\x7fELF", "{}", program.name);
            let fd = program.memfd().unwrap();
            let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
            assert_ne!(seals & libc::F_SEAL_WRITE, 0);
            let written = unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) };
            assert_eq!(written, -1, "sealed: not writable");
        }
    }
}
