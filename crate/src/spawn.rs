//! clone, vfork-style: CLONE_VM|CLONE_VFORK with the namespace flags and a stack of
//! the child's own, as glibc's posix_spawn does. The calling thread sleeps until the
//! child execs or exits, so the child's failure report is ready when clone returns.

use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::child::{child_main, ChildContext, Report, NO_FAILURE};
use crate::spec::Prepared;
use crate::sys::Kernel;

const CHILD_STACK: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("clone: {0}")]
    Clone(Errno),
    #[error("pidfd_open: {0}")]
    PidfdOpen(Errno),
    /// A plan step or exec failed in the child; the child is already reaped.
    #[error("{stage}{}: {}", path.as_ref().map(|p| format!(" `{p}`")).unwrap_or_default(), errno.desc())]
    Setup { stage: String, path: Option<String>, errno: Errno },
}

pub struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

/// Runs `prepared` in a new process. `exec_path` names the command for exec errors.
pub fn spawn(prepared: &Prepared, command: &str) -> Result<Spawned, SpawnError> {
    let mut stack = vec![0u8; CHILD_STACK];
    let mut slots = vec![-1; prepared.slot_count];
    let mut report = Report { step: NO_FAILURE, errno: 0 };
    let ctx = ChildContext {
        plan: &prepared.plan,
        exec: &prepared.exec,
        slots: slots.as_mut_ptr(),
        slot_count: slots.len(),
        report: &mut report,
    };
    let flags = CloneFlags::from_bits_retain(prepared.clone_flags);

    // Block every signal around clone: no Node handler may run on the child's stack.
    let mut old = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), Some(&mut old)).map_err(SpawnError::Clone)?;
    let cloned = unsafe {
        nix::sched::clone(Box::new(|| child_main(&Kernel, &ctx)), &mut stack, flags, Some(libc::SIGCHLD))
    };
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None).map_err(SpawnError::Clone)?;
    let pid = cloned.map_err(SpawnError::Clone)?;

    // SAFETY: the child has exec'd or exited (CLONE_VFORK); nobody else writes `report`.
    let report = unsafe { std::ptr::read_volatile(&report) };
    if report.step != NO_FAILURE {
        // Our own child, already exited: reaping it here leaves no zombie.
        let _ = waitpid(pid, None);
        let step = report.step as usize;
        let errno = Errno::from_raw(report.errno);
        let (stage, path) = match prepared.plan.get(step) {
            Some(op) => op.stage(),
            None => ("exec".into(), Some(command.to_owned())),
        };
        return Err(SpawnError::Setup { stage, path, errno });
    }
    pidfd_open(pid).map(|pidfd| Spawned { pid: pid.as_raw(), pidfd })
}

/// Our unreaped child cannot be recycled, so opening its pidfd after clone is race-free.
fn pidfd_open(pid: Pid) -> Result<OwnedFd, SpawnError> {
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        let errno = Errno::last();
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(pid, None);
        return Err(SpawnError::PidfdOpen(errno));
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
