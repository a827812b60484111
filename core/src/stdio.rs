//! The container's fds 0-2: pipes, a pty, /dev/null, or fds the caller passes.
//! Every fd made here is CLOEXEC, so concurrent spawns elsewhere in Node never inherit it.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::socket::{
    recvmsg, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use nix::unistd::pipe2;
use serde::Deserialize;

#[derive(Debug, Deserialize, Clone, Copy, PartialEq)]
#[serde(untagged)]
pub enum Stdio {
    Named(Named),
    Fd(i32),
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Named {
    Pipe,
    Inherit,
    Ignore,
}

#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("pipe2: {0}")]
    Pipe(Errno),
    #[error("console socket: {0}")]
    Pty(Errno),
    #[error("open `/dev/null`: {0}")]
    DevNull(std::io::Error),
    #[error("stdio fd {0} is a directory: a container could leave its root through it")]
    Directory(i32),
    #[error("stdio fd {fd}: {errno}")]
    BadFd { fd: i32, errno: Errno },
}

/// Both ends: what the child dup2s onto 0-2, and what the parent keeps.
#[derive(Default)]
pub struct Wired {
    /// Kept open until clone returns, then closed in the parent.
    pub child: [Option<OwnedFd>; 3],
    pub parent: [Option<OwnedFd>; 3],
    /// With a tty: the child opens the pty in the container's own devpts (so the terminal
    /// has a name there) and sends the master over this socketpair (child end, parent end).
    pub console: Option<(OwnedFd, OwnedFd)>,
}

impl Wired {
    /// The fd the child dup2s onto 0, 1, 2. Inherit is dup2(i, i): that clears FD_CLOEXEC,
    /// which a Node process may carry on its own stdio.
    pub fn child_fds(&self) -> [i32; 3] {
        [0, 1, 2].map(|i| {
            self.child[i as usize]
                .as_ref()
                .map_or(i, |fd| fd.as_raw_fd())
        })
    }
}

/// The pty master the child sent (tty mode), as two fds: Node reads one and writes the other.
pub fn receive_console(wired: &mut Wired) -> Result<(), StdioError> {
    let Some((_, parent)) = &wired.console else {
        return Ok(());
    };
    let mut space = nix::cmsg_space!(std::os::fd::RawFd);
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let msg = recvmsg::<()>(
        parent.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(StdioError::Pty)?;
    let master = msg
        .cmsgs()
        .map_err(StdioError::Pty)?
        .find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .ok_or(StdioError::Pty(Errno::EBADMSG))?;
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    wired.parent[0] = Some(dup_high(master.as_raw_fd())?);
    wired.parent[1] = Some(master);
    Ok(())
}

/// Moves a caller's fd above 2 (CLOEXEC) so dup2 onto 0-2 in any order cannot clobber it.
fn dup_high(fd: i32) -> Result<OwnedFd, StdioError> {
    let fd_ref = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    fcntl(fd_ref, FcntlArg::F_DUPFD_CLOEXEC(3))
        .map(|n| unsafe { OwnedFd::from_raw_fd(n) })
        .map_err(|errno| StdioError::BadFd { fd, errno })
}

/// A directory as stdio would be a way out of the root (fchdir, /proc/self/fd: CVE-2024-21626).
/// An inherited fd that is not open is fine (the container gets it closed, as Node would).
fn refuse_directory(fd: i32) -> Result<(), StdioError> {
    match nix::sys::stat::fstat(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => Err(StdioError::Directory(fd)),
        Ok(_) => Ok(()),
        Err(Errno::EBADF) if fd <= 2 => Ok(()),
        Err(errno) => Err(StdioError::BadFd { fd, errno }),
    }
}

/// `own_null`: the `ignore` streams the child opens from its own /dev (spec.null_stdio).
pub fn wire(stdio: &[Stdio; 3], tty: bool, own_null: [bool; 3]) -> Result<Wired, StdioError> {
    let mut w = Wired::default();
    if tty {
        let (child, parent) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(StdioError::Pty)?;
        w.console = Some((child, parent));
        return Ok(w);
    }
    for (i, s) in stdio.iter().enumerate() {
        match s {
            // Ours as inherited (a shell's `0</dir`): a directory leads out of the root the same way.
            Stdio::Named(Named::Inherit) => refuse_directory(i as i32)?,
            Stdio::Named(Named::Ignore) if own_null[i] => {}
            Stdio::Named(Named::Ignore) => {
                let null = OpenOptions::new()
                    .read(i == 0)
                    .write(i != 0)
                    .open("/dev/null")
                    .map_err(StdioError::DevNull)?;
                w.child[i] = Some(dup_high(null.as_raw_fd())?);
            }
            Stdio::Named(Named::Pipe) => {
                let (read, write) = pipe2(OFlag::O_CLOEXEC).map_err(StdioError::Pipe)?;
                let (child, parent) = if i == 0 { (read, write) } else { (write, read) };
                w.child[i] = Some(child);
                w.parent[i] = Some(parent);
            }
            Stdio::Fd(fd) => {
                refuse_directory(*fd)?;
                w.child[i] = Some(dup_high(*fd)?)
            }
        }
    }
    Ok(w)
}
