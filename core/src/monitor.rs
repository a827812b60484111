//! A detached container's monitor (init/monitor.c): what it is handed, and the stage that
//! becomes it. Node clones that stage vfork-style; it clones PID 1 (vfork-style too, so PID 1's
//! report is in when that returns), then puts the monitor's fds in their places and execs it:
//! the monitor is then PID 1's parent, and nothing of Node's but those fds crosses over.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::socket::{
    sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};
use nix::sys::stat::Mode;

use crate::child::Report;
use crate::programs::MONITOR;

/// The monitor's fds from 3 on (init/monitor.c): status, log, attach socket, sync, stdin, stdout,
/// stderr, a created PID 1's hold pipe, and the lock of an image container's writable layer.
pub const SLOTS: usize = 9;
/// Where the monitor's memfd waits for execveat (closed on exec).
const PROGRAM_SLOT: RawFd = 3 + SLOTS as RawFd;
/// The step number of a report that the monitor stage itself failed (not a plan step).
pub const MONITOR_STEP: u32 = u32::MAX - 1;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("open `{path}`: {errno}")]
    Open { path: String, errno: Errno },
    #[error("bind `{path}`: {error}")]
    Bind { path: String, error: std::io::Error },
    #[error("socketpair: {0}")]
    Sync(Errno),
    #[error("memfd of lonely-monitor: {0}")]
    Program(Errno),
}

/// What the stage needs, made before clone (the stage allocates nothing).
pub struct Launch {
    /// status, log, listener, the monitor's end of the sync: owned until spawn returns.
    owned: [OwnedFd; 4],
    /// stdin, stdout, stderr parent ends (-1 if absent): the caller owns them.
    pub stdio: [RawFd; 3],
    /// The write end of a created PID 1's hold pipe (-1: it runs at once).
    pub hold: RawFd,
    /// The flock of its writable layer (-1: none): held by the monitor for as long as the
    /// container lives, so no sweep of another process takes a live container's layer.
    pub layer_lock: RawFd,
    /// Our end of the sync: the pty master goes down it, and its close releases the monitor.
    pub sync: OwnedFd,
    program: RawFd,
    null: OwnedFd,
    /// argv[1], PID 1's pid: written by the stage (digits, then NUL).
    pid_text: [u8; 24],
    mode: CString,
    held: CString,
}

impl Launch {
    /// Opens `dir`'s status and log files and binds its attach socket.
    pub fn new(dir: &str, tty: bool, held: bool) -> Result<Launch, MonitorError> {
        let open_err = |name: &str| {
            let path = format!("{dir}/{name}");
            move |errno| MonitorError::Open { path, errno }
        };
        let dirfd = nix::fcntl::open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(open_err(""))?;
        let file = |name: &str, flags: OFlag| {
            openat(
                &dirfd,
                name,
                flags | OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(open_err(name))
        };
        let status = file("status", OFlag::O_TRUNC)?;
        let log = file("log", OFlag::O_APPEND)?;
        // Through the directory's fd: a socket path has at most 107 bytes, a state dir has no limit.
        let at = format!("/proc/self/fd/{}/attach", dirfd.as_raw_fd());
        let listener = UnixListener::bind(&at).map_err(|error| MonitorError::Bind {
            path: format!("{dir}/attach"),
            error,
        })?;
        let (theirs, ours) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(MonitorError::Sync)?;
        let null = nix::fcntl::open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(open_err("/dev/null"))?;
        Ok(Launch {
            owned: [status, log, OwnedFd::from(listener), theirs],
            stdio: [-1; 3],
            hold: -1,
            layer_lock: -1,
            sync: ours,
            program: MONITOR.memfd().map_err(MonitorError::Program)?,
            null,
            pid_text: [0; 24],
            mode: CString::from(if tty { c"tty" } else { c"pipes" }),
            held: CString::from(if held { c"held" } else { c"running" }),
        })
    }

    /// Sends the pty master (with a tty), then closes our ends: the monitor starts watching.
    pub fn release(self, master: Option<&OwnedFd>) -> Result<(), Errno> {
        if let Some(master) = master {
            let fds = [master.as_raw_fd()];
            let cmsg = [ControlMessage::ScmRights(&fds)];
            let iov = [std::io::IoSlice::new(b"m")];
            sendmsg::<()>(self.sync.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)?;
        }
        Ok(())
    }
}

/// Runs in the vfork-style clone of Node: clones PID 1 with `flags` running `pid1` on `stack`,
/// records its pid, then execs the monitor. Never returns. Follows the rule of the child.
///
/// # Safety
/// `report` and `pid_out` point into the suspended parent's memory; `stack` is PID 1's.
pub unsafe fn stage(
    launch: &mut Launch,
    flags: libc::c_int,
    stack: &mut [u8],
    pid1: &dyn Fn() -> libc::c_int,
    report: *mut Report,
    pid_out: *mut libc::c_int,
) -> ! {
    extern "C" fn trampoline(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the `&&dyn Fn` below, alive while we are suspended (CLONE_VFORK).
        let f = unsafe { &*(arg as *const &dyn Fn() -> libc::c_int) };
        f()
    }
    let fail = |errno: i32, code| -> ! {
        unsafe {
            std::ptr::write_volatile(
                report,
                Report {
                    step: MONITOR_STEP,
                    errno,
                },
            );
            libc::_exit(code)
        }
    };
    let top = unsafe { stack.as_mut_ptr().add(stack.len()) };
    let top = (top as usize & !15) as *mut libc::c_void;
    let arg = &pid1 as *const &dyn Fn() -> libc::c_int as *mut libc::c_void;
    let pid = unsafe { libc::clone(trampoline, top, flags | libc::SIGCHLD, arg) };
    if pid < 0 {
        fail(Errno::last_raw(), 125)
    }
    unsafe { std::ptr::write_volatile(pid_out, pid) };
    if unsafe { std::ptr::read_volatile(report) }.step != crate::child::NO_FAILURE {
        // PID 1's setup failed and it exited: reaped here, and no monitor for it.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        unsafe { libc::_exit(125) }
    }
    let killed = |errno: i32| -> ! {
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        fail(errno, 126)
    };
    write_decimal(&mut launch.pid_text, pid);
    // Its own session: a terminal's ^C to the creator's process group does not reach it.
    unsafe { libc::setsid() };
    // Every fd first above the slots, then into them: no dup2 clobbers a source not yet moved.
    let sources = [
        launch.owned[0].as_raw_fd(),
        launch.owned[1].as_raw_fd(),
        launch.owned[2].as_raw_fd(),
        launch.owned[3].as_raw_fd(),
        launch.stdio[0],
        launch.stdio[1],
        launch.stdio[2],
        launch.hold,
        launch.layer_lock,
        launch.program,
        launch.null.as_raw_fd(),
    ];
    let mut moved = [-1; SLOTS + 2];
    for (i, &fd) in sources.iter().enumerate() {
        if fd >= 0 {
            moved[i] = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 32) };
            if moved[i] < 0 {
                killed(Errno::last_raw())
            }
        }
    }
    for (slot, &fd) in moved[..SLOTS].iter().enumerate() {
        if fd >= 0 && unsafe { libc::dup2(fd, 3 + slot as i32) } < 0 {
            killed(Errno::last_raw())
        }
    }
    let null = moved[SLOTS + 1];
    for to in 0..3 {
        unsafe { libc::dup2(null, to) };
    }
    if unsafe { libc::dup3(moved[SLOTS], PROGRAM_SLOT, libc::O_CLOEXEC) } < 0 {
        killed(Errno::last_raw())
    }
    // Nothing else of Node's: the slots left empty (no stdin...) are closed too.
    for (slot, &fd) in moved[..SLOTS].iter().enumerate() {
        if fd < 0 {
            unsafe { libc::close(3 + slot as i32) };
        }
    }
    unsafe { libc::syscall(libc::SYS_close_range, PROGRAM_SLOT + 1, u32::MAX, 0) };
    let argv = [
        c"lonely-monitor".as_ptr(),
        launch.pid_text.as_ptr().cast(),
        launch.mode.as_ptr(),
        launch.held.as_ptr(),
        std::ptr::null(),
    ];
    let envp = [std::ptr::null::<libc::c_char>()];
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            PROGRAM_SLOT,
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    killed(Errno::last_raw())
}

/// `n` in decimal, NUL-terminated, without allocating.
fn write_decimal(buf: &mut [u8; 24], n: i32) {
    let mut digits = [0u8; 12];
    let (mut v, mut len) = (n.unsigned_abs(), 0);
    loop {
        digits[len] = b'0' + (v % 10) as u8;
        len += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[i] = digits[len - 1 - i];
    }
    buf[len] = 0;
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimal() {
        let mut buf = [9u8; 24];
        super::write_decimal(&mut buf, 4_194_304);
        assert_eq!(&buf[..8], b"4194304\0");
        super::write_decimal(&mut buf, 7);
        assert_eq!(&buf[..2], b"7\0");
    }
}
