//! The container's pseudo-terminal as seen from its master: window size, and what the
//! reader on the other side has left unread (to deliver a stdin EOF at the right moment).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::termios::{tcgetattr, LocalFlags, SpecialCharacterIndices};

/// What the program on the terminal's side reads next, as its line discipline sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputState {
    /// ICANON: input is read by lines, and the VEOF character ends one with EOF.
    pub canonical: bool,
    /// The terminal's VEOF character (^D unless the program changed it).
    pub eof_char: u8,
    /// Bytes written to the terminal and not yet read by the program.
    pub unread: u32,
}

/// Sets the window size (TIOCSWINSZ on the master is the slave's size).
pub fn set_window_size(master: BorrowedFd, rows: u16, cols: u16) -> Result<(), Errno> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) }).map(drop)
}

/// Reads the slave's termios (TCGETS on a pty master answers for the slave) and its unread
/// input, which only the slave side can tell: TIOCGPTPEER opens it for the one FIONREAD.
pub fn input_state(master: BorrowedFd) -> Result<InputState, Errno> {
    let termios = tcgetattr(master)?;
    let flags = libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC;
    // O_NOCTTY: opening the slave must never make it Node's controlling terminal.
    let slave =
        Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) })?;
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    let mut unread: libc::c_int = 0;
    Errno::result(unsafe { libc::ioctl(slave.as_raw_fd(), libc::FIONREAD, &mut unread) })?;
    Ok(InputState {
        canonical: termios.local_flags.contains(LocalFlags::ICANON),
        eof_char: termios.control_chars[SpecialCharacterIndices::VEOF as usize],
        unread: unread.max(0) as u32,
    })
}
