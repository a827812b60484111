//! Containers this process did not start (detached ones, made by another process): a pid is
//! theirs only while its start time is the one their state recorded, and a pidfd opened then
//! stays theirs (no pid-reuse race after that).

use std::os::fd::{FromRawFd, OwnedFd};

/// /proc/<pid>/stat's start time (field 22, in clock ticks since boot); None once it is gone.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let state = rest.split(' ').next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    rest.split(' ').nth(19)?.parse().ok()
}

/// A pidfd of `pid` if it is still the process that started at `start`.
pub fn pidfd(pid: i32, start: u64) -> Option<OwnedFd> {
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // Checked after the open: if it is still that process now, the pidfd is its.
    (start_time(pid) == Some(start)).then_some(fd)
}

/// Sends `sig` to `pid` if it is still the process that started at `start`.
pub fn signal(pid: i32, start: u64, sig: i32) -> bool {
    let Some(fd) = pidfd(pid, start) else {
        return false;
    };
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            sig,
            0usize,
            0u32,
        )
    };
    ret == 0
}

/// `/proc/PID/root` opened O_PATH: the magic link into its mount namespace's root (or its
/// chroot), the one link followed on purpose. Callers check afterwards that `pid` is still theirs.
pub fn open_proc_root(pid: i32) -> Result<OwnedFd, nix::errno::Errno> {
    let path = std::ffi::CString::new(format!("/proc/{pid}/root")).expect("no NUL in a path");
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(nix::errno::Errno::last());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// PID 1's root directory, checked after the open to still belong to the process `pidfd`
/// refers to: a pid reused since then would have an exited pidfd.
pub fn open_root(
    pid: i32,
    pidfd: &impl std::os::fd::AsRawFd,
) -> Result<OwnedFd, crate::spec::SpecError> {
    let fd = open_proc_root(pid).map_err(|_| crate::spec::SpecError::NotRunning)?;
    let mut poll = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // Readable: the process has exited, and the root opened may be a newer process's.
    match unsafe { libc::poll(&mut poll, 1, 0) } {
        0 => Ok(fd),
        _ => Err(crate::spec::SpecError::NotRunning),
    }
}
