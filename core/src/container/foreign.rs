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
