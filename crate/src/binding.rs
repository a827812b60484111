//! The #[napi] surface: converts types and errors, nothing else.

use std::os::fd::{AsRawFd, IntoRawFd};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use crate::cgroups::{self, Stats};
use crate::reaper::{self, Exit};
use crate::spawn::{spawn, MapsFirst, SpawnError};
use crate::{nspool, plan, spec, stdio, terminal, userns};

#[napi(object)]
pub struct SetupFailure {
    pub stage: String,
    pub path: Option<String>,
    pub errno: i32,
    /// The errno's name: ENOENT, EACCES...
    pub code: String,
    pub message: String,
}

#[napi(object)]
pub struct Started {
    pub pid: i32,
    /// Parent ends of the pipes (or the pty master), to wrap in Node streams.
    pub stdin: Option<i32>,
    pub stdout: Option<i32>,
    pub stderr: Option<i32>,
    /// Set when a setup step or exec failed: the container never ran and was reaped.
    pub failure: Option<SetupFailure>,
}

/// A cgroup's accounting (fields the host does not provide are absent).
#[napi(object)]
pub struct CgroupStats {
    pub memory_bytes: Option<f64>,
    pub memory_peak_bytes: Option<f64>,
    pub cpu_usage_us: Option<f64>,
    pub pids: Option<f64>,
    pub pids_peak: Option<f64>,
    pub oom_kills: f64,
}

impl From<Stats> for CgroupStats {
    fn from(s: Stats) -> Self {
        let f = |v: Option<u64>| v.map(|n| n as f64);
        CgroupStats {
            memory_bytes: f(s.memory_bytes),
            memory_peak_bytes: f(s.memory_peak_bytes),
            cpu_usage_us: f(s.cpu_usage_us),
            pids: f(s.pids),
            pids_peak: f(s.pids_peak),
            oom_kills: s.oom_kills as f64,
        }
    }
}

#[napi(object)]
pub struct ExitInfo {
    pub pid: i32,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub user_cpu_us: f64,
    pub system_cpu_us: f64,
    pub cgroup: Option<CgroupStats>,
    pub oom_killed: bool,
}

impl From<Exit> for ExitInfo {
    fn from(e: Exit) -> Self {
        ExitInfo {
            pid: e.pid,
            exit_code: e.code,
            signal: e.signal,
            user_cpu_us: e.user_us as f64,
            system_cpu_us: e.system_us as f64,
            cgroup: e.cgroup.map(Into::into),
            oom_killed: e.oom_killed,
        }
    }
}

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::new(Status::InvalidArg, e.to_string())
}

/// Creates and starts a container from a JSON ContainerSpec. `onExit` is called once,
/// on the JS thread, when the container has been reaped.
#[napi]
pub fn spawn_container(
    spec_json: String,
    on_exit: ThreadsafeFunction<ExitInfo, (), ExitInfo, Status, false>,
) -> Result<Started> {
    let spec = spec::parse(&spec_json).map_err(invalid)?;
    // First, before any cgroup or pipe exists: the one open of the rootfs every step uses.
    let rootfs = match spec.rootfs.as_deref().map(crate::rootfs::open).transpose() {
        Ok(fd) => fd,
        Err(e) => {
            return Ok(not_started(
                e.to_string(),
                "open rootfs".into(),
                Some(e.path),
                e.errno,
            ))
        }
    };
    let mut wired = match stdio::wire(&spec.stdio, spec.tty, spec.null_stdio()) {
        Ok(w) => w,
        // A pipe or socketpair this process could not make: a setup failure (EMFILE says why).
        Err(e @ (stdio::StdioError::Pipe(errno) | stdio::StdioError::Pty(errno))) => {
            let stage = match e {
                stdio::StdioError::Pipe(_) => "pipe2",
                _ => "console socket",
            };
            return Ok(not_started(e.to_string(), stage.into(), None, errno));
        }
        // The caller's fds: lib/container.ts names the option.
        Err(e) => return Err(Error::from_reason(e.to_string())),
    };
    // Before anything runs: a limit the host cannot enforce is an error, never ignored.
    let mut cgroup = match &spec.limits {
        Some(limits) => Some(
            cgroups::create(limits).map_err(|e| Error::new(Status::InvalidArg, e.to_string()))?,
        ),
        None => None,
    };
    // The pool's namespaces belong to the initial user namespace: a new one cannot join them.
    let pooled = |wanted: bool, kind| {
        (wanted && !spec.namespaces.user)
            .then(|| nspool::take(kind))
            .flatten()
    };
    let netns = pooled(spec.namespaces.net, nspool::Kind::Net);
    let ipcns = pooled(spec.namespaces.ipc, nspool::Kind::Ipc);
    // uid/gid ranges: the parent writes the maps while the child waits on this pipe.
    let maps_pipe = match (&spec.id_maps, spec.namespaces.user) {
        (Some(_), true) => Some(
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| Error::from_reason(format!("pipe2: {e}")))?,
        ),
        _ => None,
    };
    let handles = spec::Handles {
        stdio: wired.child_fds(),
        maps_sync: maps_pipe.as_ref().map(|(read, _)| read.as_raw_fd()),
        netns: netns.as_ref().map(|fd| fd.as_raw_fd()),
        ipcns: ipcns.as_ref().map(|fd| fd.as_raw_fd()),
        cgroup_procs: cgroup.as_ref().map(|c| c.join_fds()).unwrap_or_default(),
        console: wired.console.as_ref().map(|(child, _)| child.as_raw_fd()),
        rootfs: rootfs.as_ref().map(|fd| fd.as_raw_fd()),
        parent_pidfd: own_pidfd(),
    };
    let prepared = match spec.prepare(&handles) {
        Ok(p) => p,
        Err(e) => {
            if let Some(cg) = cgroup.as_mut() {
                let _ = cg.remove();
            }
            return Err(invalid(e));
        }
    };
    let (maps_read, maps_first) = match (maps_pipe, &spec.id_maps) {
        (Some((read, release)), Some(maps)) => (Some(read), Some(MapsFirst { maps, release })),
        _ => (None, None),
    };
    let spawned = spawn(&prepared, &spec.argv[0], maps_first);
    // The child has joined them: a namespace lives as long as its container, never longer.
    drop((std::mem::take(&mut wired.child), netns, ipcns, maps_read));
    if let (Ok(s), Err(e)) = (&spawned, stdio::receive_console(&mut wired)) {
        // It runs but its terminal never arrived: end it rather than leave it unwatched.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(s.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(s.pid), None);
        if let Some(cg) = cgroup.as_mut() {
            let _ = cg.remove();
        }
        return Err(Error::from_reason(e.to_string()));
    }
    let [stdin, stdout, stderr] = wired.parent;
    if spawned.is_err() {
        if let Some(cg) = cgroup.as_mut() {
            let _ = cg.remove();
        }
    }
    match spawned {
        Ok(s) => {
            // Not for an image: its overlay goes before the result lets the caller remove its upper dir.
            let held = reaper::Held {
                mount_ns: (spec.namespaces.mount && spec.image.is_none())
                    .then(|| namespace_of(s.pid, "mnt"))
                    .flatten(),
            };
            reaper::watch(
                s.pid,
                s.pidfd,
                cgroup,
                held,
                Box::new(move |exit| {
                    on_exit.call(exit.into(), ThreadsafeFunctionCallMode::NonBlocking);
                }),
            )
            .map_err(|e| Error::from_reason(format!("epoll_ctl: {e}")))?;
            let raw = |fd: Option<std::os::fd::OwnedFd>| fd.map(|f| f.into_raw_fd());
            Ok(Started {
                pid: s.pid,
                stdin: raw(stdin),
                stdout: raw(stdout),
                stderr: raw(stderr),
                failure: None,
            })
        }
        Err(SpawnError::Setup { stage, path, errno }) => {
            let message = SpawnError::Setup {
                stage: stage.clone(),
                path: path.clone(),
                errno,
            }
            .to_string();
            Ok(not_started(message, stage, path, errno))
        }
        Err(SpawnError::Clone(errno))
            if spec.namespaces.user
                && matches!(
                    errno,
                    nix::errno::Errno::EPERM
                        | nix::errno::Errno::ENOSPC
                        | nix::errno::Errno::EACCES
                ) =>
        {
            Err(Error::from_reason(userns::explain(errno)))
        }
        Err(e) => Err(Error::from_reason(e.to_string())),
    }
}

/// Whether this process may dump core and be traced by its own uid (PR_GET_DUMPABLE): a
/// vfork-style child shares its mm, and its credential change must not leave it unset.
#[napi]
pub fn process_dumpable() -> bool {
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE) == 1 }
}

/// A pidfd of this process, opened once: children poll it to learn that it died.
fn own_pidfd() -> Option<i32> {
    static PIDFD: std::sync::OnceLock<Option<std::os::fd::OwnedFd>> = std::sync::OnceLock::new();
    PIDFD
        .get_or_init(|| {
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
            // CLOEXEC by default (pidfd_open): no program of ours inherits it.
            (fd >= 0).then(|| unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) })
        })
        .as_ref()
        .map(|fd| fd.as_raw_fd())
}

/// The result of a container that never ran: its failing stage, path and errno.
fn not_started(
    message: String,
    stage: String,
    path: Option<String>,
    errno: nix::errno::Errno,
) -> Started {
    let code = format!("{errno:?}");
    // The step is not the cause: it is the first one that needed an fd.
    let message = match errno {
        nix::errno::Errno::EMFILE => format!(
            "{message}: this Node process has run out of file descriptors (close some, or raise `ulimit -n`)"
        ),
        _ => message,
    };
    Started {
        pid: 0,
        stdin: None,
        stdout: None,
        stderr: None,
        failure: Some(SetupFailure {
            message: format!("{message} ({code})"),
            stage,
            path,
            errno: errno as i32,
            code,
        }),
    }
}

/// Sends `signal` to the container's PID 1 through its pidfd. False once it has been reaped.
#[napi]
pub fn kill_container(pid: i32, signal: i32) -> Result<bool> {
    reaper::signal(pid, signal).map_err(|e| Error::from_reason(format!("pidfd_send_signal: {e}")))
}

/// Live accounting of a running container's cgroup; null without limits or once it ended.
#[napi]
pub fn container_stats(pid: i32) -> Option<CgroupStats> {
    reaper::stats(pid).map(Into::into)
}

/// The host's cgroup mode: "unified", "legacy", "hybrid", or an error message.
#[napi]
pub fn cgroup_mode() -> String {
    match cgroups::detect() {
        Ok(h) => match h.mode {
            cgroups::Mode::Unified { .. } => "unified".into(),
            cgroups::Mode::Legacy { .. } => "legacy".into(),
            cgroups::Mode::Hybrid { .. } => "hybrid".into(),
        },
        Err(e) => e.to_string(),
    }
}

/// Containers started and not yet reaped.
#[napi]
pub fn live_containers() -> u32 {
    reaper::live_count() as u32
}

/// The setup plan for a spec, one step per line, without running anything.
#[napi]
pub fn describe_plan(spec_json: String) -> Result<String> {
    let spec = spec::parse(&spec_json).map_err(invalid)?;
    let handles = spec::Handles {
        stdio: [0, 1, 2],
        ..Default::default()
    };
    let prepared = spec.prepare(&handles).map_err(invalid)?;
    Ok(plan::describe(&prepared.plan))
}

/// Sets a pty's window size (the CLI forwards its terminal's size).
#[napi]
pub fn set_window_size(fd: i32, rows: u32, cols: u32) -> Result<()> {
    let master = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    terminal::set_window_size(master, rows as u16, cols as u16)
        .map_err(|e| Error::from_reason(format!("ioctl TIOCSWINSZ: {e}")))
}

#[napi(object)]
pub struct TerminalInput {
    pub canonical: bool,
    pub eof_char: u32,
    pub unread: u32,
}

/// The pty's line mode and unread input; None once the container's side is gone.
#[napi]
pub fn terminal_input(fd: i32) -> Option<TerminalInput> {
    let master = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let s = terminal::input_state(master).ok()?;
    Some(TerminalInput {
        canonical: s.canonical,
        eof_char: s.eof_char as u32,
        unread: s.unread,
    })
}

/// An fd of a running child's namespace (`/proc/<pid>/ns/<kind>`); None once it has exited.
fn namespace_of(pid: i32, kind: &str) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let path = std::ffi::CString::new(format!("/proc/{pid}/ns/{kind}")).ok()?;
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}
