//! clone, vfork-style: CLONE_VM|CLONE_VFORK with the namespace flags and a stack of
//! the child's own, as glibc's posix_spawn does. The calling thread sleeps until the
//! child execs or exits, so the child's failure report is ready when clone returns.
//!
//! One case falls back to fork-style (no CLONE_VM): uid/gid ranges for a user namespace,
//! which the parent must write while the child waits. The report then comes down a pipe.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
use nix::sys::wait::waitpid;
use nix::unistd::{pipe2, Pid};

use crate::child::{child_main, ChildContext, Report, NO_FAILURE};
use crate::monitor::Launch;
use crate::planner::Prepared;
use crate::sys::Kernel;
use crate::userns::{self, RangeMaps};

const CHILD_STACK: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("clone: {0}")]
    Clone(Errno),
    #[error("pidfd_open: {0}")]
    PidfdOpen(Errno),
    #[error("pipe2: {0}")]
    Pipe(Errno),
    /// Writing the user namespace's uid/gid maps failed (the helper's message).
    #[error("uid/gid maps: {0}")]
    IdMaps(String),
    /// A plan step or exec failed in the child; the child is already reaped.
    #[error("{stage}{}: {}", path.as_ref().map(|p| format!(" `{p}`")).unwrap_or_default(), errno.desc())]
    Setup {
        stage: String,
        path: Option<String>,
        errno: Errno,
    },
}

pub struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// A detached container's monitor (our child, PID 1's parent): its pidfd.
    pub monitor: Option<OwnedFd>,
}

/// The parent's part of a fork-style spawn: maps to write, and the pipe that releases the child.
pub struct MapsFirst<'a> {
    pub maps: &'a RangeMaps,
    pub release: OwnedFd,
}

/// Runs `prepared` in a new process. `command` names the program for exec errors. With
/// `monitor`, PID 1 is cloned by a stage that then becomes its monitor (monitor.rs).
pub fn spawn(
    prepared: &Prepared,
    command: &str,
    maps_first: Option<MapsFirst>,
    mut monitor: Option<&mut Launch>,
) -> Result<Spawned, SpawnError> {
    let mut stack = vec![0u8; CHILD_STACK];
    // Exec into a running container: a second stack for the process that enters its PID
    // namespace; detached: for PID 1, which the monitor stage clones.
    let joins = prepared.plan.contains(&crate::plan::Op::ForkIntoPidns);
    let mut inner_stack = vec![
        0u8;
        if joins || monitor.is_some() {
            CHILD_STACK
        } else {
            0
        }
    ];
    let mut inner_pid: libc::c_int = -1;
    let mut slots = vec![-1; prepared.slot_count];
    let mut report = Report {
        step: NO_FAILURE,
        errno: 0,
    };
    let report_pipe = match maps_first {
        Some(_) => Some(pipe2(OFlag::O_CLOEXEC).map_err(SpawnError::Pipe)?),
        None => None,
    };
    let ctx = ChildContext {
        plan: &prepared.plan,
        exec: &prepared.exec,
        slots: slots.as_mut_ptr(),
        slot_count: slots.len(),
        report: &mut report,
        report_fd: report_pipe.as_ref().map_or(-1, |(_, w)| w.as_raw_fd()),
        inner_stack: inner_stack.as_mut_ptr(),
        inner_stack_len: inner_stack.len(),
        inner_pid: &mut inner_pid,
    };
    let mut flags = CloneFlags::from_bits_retain(prepared.clone_flags);
    if maps_first.is_some() {
        flags.remove(CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK);
    }

    // A vfork-style child shares our mm: its credential change marks it non-dumpable (no core
    // dumps, no ptrace by our own uid), which is ours to undo once it has exec'd.
    let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE) };
    // Block every signal around clone: no Node handler may run on the child's stack.
    let mut old = SigSet::empty();
    pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old),
    )
    .map_err(SpawnError::Clone)?;
    let cloned = match monitor.as_deref_mut() {
        None => unsafe {
            nix::sched::clone(
                Box::new(|| child_main(&Kernel, &ctx)),
                &mut stack,
                flags,
                Some(libc::SIGCHLD),
            )
        },
        Some(launch) => {
            let (report, pid_out) = (ctx.report, ctx.inner_pid);
            // SAFETY: as for the stack above; the stage never returns (it execs or exits).
            let c_stack =
                unsafe { std::slice::from_raw_parts_mut(ctx.inner_stack, ctx.inner_stack_len) };
            let pid1 = || child_main(&Kernel, &ctx);
            unsafe {
                nix::sched::clone(
                    Box::new(|| {
                        crate::monitor::stage(launch, flags.bits(), c_stack, &pid1, report, pid_out)
                    }),
                    &mut stack,
                    CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK,
                    Some(libc::SIGCHLD),
                )
            }
        }
    };
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None).map_err(SpawnError::Clone)?;
    if dumpable == 1 && unsafe { libc::prctl(libc::PR_GET_DUMPABLE) } != 1 {
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1) };
    }
    let pid = cloned.map_err(SpawnError::Clone)?;

    let report = match (maps_first, report_pipe) {
        (Some(first), Some((read, write))) => {
            drop(write);
            let failed = |e: SpawnError| {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(pid, None);
                e
            };
            userns::write_maps(pid.as_raw(), first.maps)
                .map_err(|m| failed(SpawnError::IdMaps(m)))?;
            nix::unistd::write(&first.release, b"1").map_err(|e| failed(SpawnError::Pipe(e)))?;
            drop(first.release);
            // EOF: the child exec'd (the pipe is CLOEXEC); a record: the step that failed.
            let mut buf = [0u8; std::mem::size_of::<Report>()];
            let n = read_full(&read, &mut buf);
            if n == buf.len() {
                unsafe { std::ptr::read_unaligned(buf.as_ptr().cast::<Report>()) }
            } else {
                Report {
                    step: NO_FAILURE,
                    errno: 0,
                }
            }
        }
        // SAFETY: the child has exec'd or exited (CLONE_VFORK); nobody else writes `report`.
        _ => unsafe { std::ptr::read_volatile(&report) },
    };
    // SAFETY: as `report`: the child has exited, having written its sibling's pid if it made one.
    let inner = unsafe { std::ptr::read_volatile(&inner_pid) };
    if monitor.is_some() {
        return monitored(prepared, command, pid, report, inner);
    }
    let pid = match joins {
        false => pid,
        true => {
            // The helper that entered the container has exited; what runs (or failed) is its sibling.
            let _ = waitpid(pid, None);
            if inner > 0 {
                Pid::from_raw(inner)
            } else if report.step != NO_FAILURE {
                return Err(setup_error(prepared, command, report)); // before the sibling existed
            } else {
                return Err(SpawnError::Setup {
                    stage: "clone into the container".into(),
                    path: None,
                    errno: Errno::ECHILD,
                });
            }
        }
    };
    if report.step != NO_FAILURE {
        // Our own child, already exited: reaping it here leaves no zombie.
        let _ = waitpid(pid, None);
        return Err(setup_error(prepared, command, report));
    }
    pidfd_open(pid).map(|pidfd| Spawned {
        pid: pid.as_raw(),
        pidfd,
        monitor: None,
    })
}

/// After the monitor stage: it runs the monitor now (PID 1 is `inner`), or it failed and exited.
fn monitored(
    prepared: &Prepared,
    command: &str,
    stage: Pid,
    report: Report,
    inner: libc::c_int,
) -> Result<Spawned, SpawnError> {
    if report.step != NO_FAILURE {
        let _ = waitpid(stage, None);
        if report.step == crate::monitor::MONITOR_STEP {
            return Err(SpawnError::Setup {
                stage: "exec".into(),
                path: Some(crate::programs::MONITOR.name.into()),
                errno: Errno::from_raw(report.errno),
            });
        }
        return Err(setup_error(prepared, command, report));
    }
    // The monitor reaps nothing until our end of its sync closes: the pid is still PID 1's.
    let monitor = pidfd_open(stage)?;
    let pid1 = Pid::from_raw(inner);
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, inner, 0) };
    if fd < 0 {
        let errno = Errno::last();
        let _ = nix::sys::signal::kill(pid1, nix::sys::signal::Signal::SIGKILL);
        return Err(SpawnError::PidfdOpen(errno));
    }
    Ok(Spawned {
        pid: inner,
        pidfd: unsafe { OwnedFd::from_raw_fd(fd as i32) },
        monitor: Some(monitor),
    })
}

/// The failing step of `report` as the user reads it (past the plan's end: exec itself).
fn setup_error(prepared: &Prepared, command: &str, report: Report) -> SpawnError {
    let errno = Errno::from_raw(report.errno);
    let (stage, path) = match prepared.plan.get(report.step as usize) {
        Some(op) => op.stage(),
        None => ("exec".into(), Some(command.to_owned())),
    };
    SpawnError::Setup { stage, path, errno }
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match nix::unistd::read(fd, &mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    n
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
