//! From a spec to a watched process, as one transaction: the rootfs, stdio, cgroup, pooled
//! namespaces, the plan, clone, the console, the reaper. Whatever step fails, `Undo` removes
//! what the earlier ones made (the cgroup; a child that already runs is killed and reaped).

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;

use crate::cgroups::{self, Cgroup, CgroupError};
use crate::nspool;
use crate::reaper::{self, OnExit};
use crate::rootfs::{self, RootfsError};
use crate::spawn::{spawn, MapsFirst, SpawnError};
use crate::spec::{ContainerSpec, Handles, SpecError};
use crate::stdio::{self, StdioError};

/// A started container: its host pid and the parent ends of its stdio (or the pty master).
pub struct Running {
    pub pid: i32,
    pub stdio: [Option<OwnedFd>; 3],
    /// Detached: PID 1's start time, read before its monitor could reap it (its identity).
    pub start_time: Option<u64>,
    /// With `unreaped`: the container's cgroup directories, one per hierarchy (a watched
    /// container's are reaper::cgroup_dirs; an exec'd process has none of its own).
    pub cgroups: Vec<std::path::PathBuf>,
}

/// One variant per step that can fail, in the order they run.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    OpenRootfs(#[from] RootfsError),
    #[error(transparent)]
    Stdio(StdioError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("pipe2: {0}")]
    MapsPipe(Errno),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// clone refused the user namespace: why, as far as this host tells.
    #[error("{}", crate::userns::explain(*.0))]
    UserNamespace(Errno),
    /// The terminal the child should have sent never arrived (the child was killed).
    #[error(transparent)]
    Console(StdioError),
    #[error("epoll_ctl: {0}")]
    Watch(Errno),
    #[error("memfd of lonely-init: {0}")]
    Init(Errno),
    /// A namespace to join (`linux.namespaces[].path`) could not be opened.
    #[error("open namespace `{path}`: {errno}")]
    JoinPath { path: String, errno: Errno },
    #[error(transparent)]
    Monitor(#[from] crate::monitor::MonitorError),
    #[error("hand the terminal to lonely-monitor: {0}")]
    MonitorRelease(Errno),
    /// The caller's exit callback could not be made (the addon's threadsafe function).
    #[error("exit callback: {0}")]
    Callback(String),
}

/// What a failed start must not leave behind.
#[derive(Default)]
struct Undo {
    cgroup: Option<Box<dyn Cgroup>>,
    child: Option<i32>,
    /// A detached container's monitor (our child): it ends with PID 1, and is reaped here.
    monitor: Option<OwnedFd>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(pid) = self.child {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        if let Some(monitor) = self.monitor.take() {
            // Killed, not waited for: it may still wait for its sync, which closes after us.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            const P_PIDFD: libc::idtype_t = 3;
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    monitor.as_raw_fd(),
                    libc::SIGKILL,
                    0usize,
                    0u32,
                );
                libc::waitid(
                    P_PIDFD,
                    monitor.as_raw_fd() as libc::id_t,
                    &mut info,
                    libc::WEXITED,
                );
            }
        }
        if let Some(cg) = self.cgroup.as_mut() {
            let _ = cg.remove();
        }
    }
}

/// Starts `spec`; `on_exit` is called once, on the reaper thread, when it has been reaped.
pub fn start(spec: &ContainerSpec, on_exit: OnExit) -> Result<Running, StartError> {
    if let Some(pid) = spec.join {
        return exec(spec, pid, on_exit);
    }
    // First, before any cgroup or pipe exists: the one open of the rootfs every step uses.
    let rootfs = spec.rootfs.as_deref().map(rootfs::open).transpose()?;
    let mut wired =
        stdio::wire(&spec.stdio, spec.tty, spec.null_stdio()).map_err(StartError::Stdio)?;
    // Detached without a state directory: no monitor (an OCI engine's shim is the subreaper).
    let mut launch = match (spec.detached, &spec.state_dir) {
        (_, None) | (false, _) => None,
        // The maps are written by the parent once it knows PID 1, which the monitor stage clones.
        (true, Some(_)) if spec.id_maps.is_some() && spec.namespaces.user => {
            return Err(SpecError::DetachedIdRanges.into())
        }
        (true, Some(dir)) => Some(crate::monitor::Launch::new(dir, spec.tty, spec.held)?),
    };
    // A created PID 1 waits on this pipe; its monitor holds the other end. Without a monitor
    // the caller's `hold_fd` (lonely-runtime's exec fifo) is waited on instead.
    let hold = match (spec.held, launch.as_mut()) {
        (true, Some(launch)) => {
            let (read, write) =
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(StartError::MapsPipe)?;
            launch.hold = write.as_raw_fd();
            Some((read, write))
        }
        _ => None,
    };
    if spec.held && hold.is_none() && spec.hold_fd.is_none() {
        return Err(SpecError::HeldWithoutHold.into());
    }
    if let Some(launch) = launch.as_mut() {
        launch.stdio = wired
            .parent
            .each_ref()
            .map(|fd| fd.as_ref().map_or(-1, |f| f.as_raw_fd()));
        launch.layer_lock = spec.layer_lock.unwrap_or(-1);
    }
    let mut undo = Undo::default();
    // Before anything runs: a limit the host cannot enforce is an error, never ignored.
    undo.cgroup = spec
        .limits
        .as_ref()
        .map(|l| cgroups::create(l, spec.detached))
        .transpose()?;
    // The pool's namespaces belong to the initial user namespace: a new one cannot join them.
    let pooled = |wanted: bool, kind| {
        (wanted && !spec.namespaces.user)
            .then(|| nspool::take(kind))
            .flatten()
    };
    let joined = |path: &Option<String>| -> Result<Option<OwnedFd>, StartError> {
        path.as_ref()
            .map(|p| {
                nix::fcntl::open(
                    p.as_str(),
                    nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(|errno| StartError::JoinPath {
                    path: p.clone(),
                    errno,
                })
            })
            .transpose()
    };
    let netns = match joined(&spec.join_paths.net)? {
        Some(fd) => Some(fd),
        None => pooled(spec.namespaces.net, nspool::Kind::Net),
    };
    let ipcns = match joined(&spec.join_paths.ipc)? {
        Some(fd) => Some(fd),
        None => pooled(spec.namespaces.ipc, nspool::Kind::Ipc),
    };
    let utsns = joined(&spec.join_paths.uts)?;
    let mntns = joined(&spec.join_paths.mnt)?;
    let pidns = joined(&spec.join_paths.pid)?;
    // A monitor would be cloned into it too, and a new user namespace cannot mount its proc.
    if pidns.is_some() && (launch.is_some() || spec.namespaces.user) {
        return Err(SpecError::JoinedPidNamespace.into());
    }
    // uid/gid ranges: the parent writes the maps while the child waits on this pipe.
    let maps_pipe = match (&spec.id_maps, spec.namespaces.user) {
        (Some(_), true) => {
            Some(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(StartError::MapsPipe)?)
        }
        _ => None,
    };
    let handles = Handles {
        stdio: wired.child_fds(),
        maps_sync: maps_pipe.as_ref().map(|(read, _)| read.as_raw_fd()),
        netns: netns.as_ref().map(|fd| fd.as_raw_fd()),
        ipcns: ipcns.as_ref().map(|fd| fd.as_raw_fd()),
        utsns: utsns.as_ref().map(|fd| fd.as_raw_fd()),
        mntns: mntns.as_ref().map(|fd| fd.as_raw_fd()),
        cgroup_procs: undo
            .cgroup
            .as_ref()
            .map(|c| c.join_fds())
            .unwrap_or_default(),
        cgroup_fs: undo
            .cgroup
            .as_ref()
            .map(|c| c.filesystems())
            .unwrap_or_default(),
        console: wired.console.as_ref().map(|(child, _)| child.as_raw_fd()),
        rootfs: rootfs.as_ref().map(|fd| fd.as_raw_fd()),
        parent_pidfd: own_pidfd(),
        join: None,
        init: if spec.init || spec.held {
            Some(crate::programs::INIT.memfd().map_err(StartError::Init)?)
        } else {
            None
        },
        hold: hold
            .as_ref()
            .map(|(read, _)| read.as_raw_fd())
            .or(spec.hold_fd),
    };
    let prepared = spec.prepare(&handles)?;
    let (maps_read, maps_first) = match (maps_pipe, &spec.id_maps) {
        (Some((read, release)), Some(maps)) => (Some(read), Some(MapsFirst { maps, release })),
        _ => (None, None),
    };
    let spawned = match &pidns {
        Some(ns) => in_pid_namespace(ns, spec.join_paths.pid.as_deref().unwrap_or(""), || {
            spawn(&prepared, command_name(spec), maps_first, launch.as_mut())
        })?,
        None => spawn(&prepared, command_name(spec), maps_first, launch.as_mut()),
    };
    drop(pidns);
    // The child has joined them: a namespace lives as long as its container, never longer.
    drop((
        std::mem::take(&mut wired.child),
        netns,
        ipcns,
        utsns,
        mntns,
        maps_read,
        rootfs,
        hold,
    ));
    let spawned = spawned.map_err(|e| match e {
        SpawnError::Clone(errno @ (Errno::EPERM | Errno::ENOSPC | Errno::EACCES))
            if spec.namespaces.user =>
        {
            StartError::UserNamespace(errno)
        }
        e => e.into(),
    })?;
    undo.child = Some(spawned.pid);
    undo.monitor = spawned.monitor;
    stdio::receive_console(&mut wired).map_err(StartError::Console)?;
    let mut start_time = None;
    if let Some(launch) = launch {
        // Before the release: until then the monitor reaps nothing, so the pid is still PID 1's.
        start_time = super::foreign::start_time(spawned.pid);
        launch
            .release(wired.parent[1].as_ref().filter(|_| spec.tty))
            .map_err(StartError::MonitorRelease)?;
        wired.parent = [None, None, None]; // the monitor's now
    }
    if spec.unreaped {
        let cgroups = undo.cgroup.as_ref().map(|c| c.dirs()).unwrap_or_default();
        // Nothing here waits for PID 1: once this process exits it is the subreaper's (an OCI
        // engine's shim), and its cgroup is the runtime's `delete` to remove.
        undo.child = None;
        std::mem::forget(undo.cgroup.take());
        return Ok(Running {
            pid: spawned.pid,
            stdio: wired.parent,
            start_time,
            cgroups,
        });
    }
    // Not for an image: its overlay goes before the result lets the caller remove its upper dir.
    let held = reaper::Held {
        mount_ns: (spec.namespaces.mount && spec.image.is_none())
            .then(|| namespace_of(spawned.pid, "mnt"))
            .flatten(),
    };
    reaper::watch(
        spawned.pid,
        spawned.pidfd,
        undo.monitor.take(),
        &mut undo.cgroup,
        held,
        on_exit,
    )
    .map_err(StartError::Watch)?;
    undo.child = None; // the reaper owns it now
    Ok(Running {
        pid: spawned.pid,
        stdio: wired.parent,
        start_time,
        cgroups: Vec::new(),
    })
}

/// A process in the running container whose PID 1 is `pid` (planner/join.rs): watched by the
/// reaper like a container, without a cgroup of its own (it is in the container's).
fn exec(spec: &ContainerSpec, pid: i32, on_exit: OnExit) -> Result<Running, StartError> {
    let (pidfd, procs) = match (reaper::joinable(pid), spec.join_start) {
        (Some(found), _) => found,
        // Started by another process (detached): the pid is checked to still be that PID 1.
        (None, Some(start)) => {
            let pidfd = super::foreign::pidfd(pid, start).ok_or(SpecError::NotRunning)?;
            let procs = spec
                .join_cgroups
                .iter()
                .map(|dir| cgroups::open_procs(std::path::Path::new(dir).join("cgroup.procs")))
                .collect::<Result<Vec<_>, _>>()?;
            (pidfd, procs)
        }
        (None, None) => return Err(SpecError::NotRunning.into()),
    };
    // A root in the caller's mount namespace (no mount namespace of its own): its PID 1's root,
    // opened after the pidfd, so the pid cannot be another process's yet.
    let root = (!spec.namespaces.mount && spec.rootfs.is_some())
        .then(|| super::foreign::open_root(pid, &pidfd))
        .transpose()?;
    let mut wired =
        stdio::wire(&spec.stdio, spec.tty, spec.null_stdio()).map_err(StartError::Stdio)?;
    // With `hold_fd` (lonely-runtime's exec with a terminal): the command waits, as lonely-init
    // --hold --exec, until the caller has handed its terminal to the engine.
    let init = spec
        .hold_fd
        .map(|_| crate::programs::INIT.memfd())
        .transpose()
        .map_err(StartError::Init)?;
    let handles = Handles {
        stdio: wired.child_fds(),
        cgroup_procs: procs.iter().map(|fd| fd.as_raw_fd()).collect(),
        console: wired.console.as_ref().map(|(child, _)| child.as_raw_fd()),
        parent_pidfd: own_pidfd(),
        join: Some(pidfd.as_raw_fd()),
        rootfs: root.as_ref().map(|fd| fd.as_raw_fd()),
        init,
        hold: spec.hold_fd,
        ..Default::default()
    };
    let prepared = spec.prepare(&handles)?;
    let spawned = spawn(&prepared, command_name(spec), None, None);
    drop((std::mem::take(&mut wired.child), pidfd, procs, root));
    let spawned = spawned?;
    let mut undo = Undo {
        child: Some(spawned.pid),
        cgroup: None,
        monitor: None,
    };
    stdio::receive_console(&mut wired).map_err(StartError::Console)?;
    if spec.unreaped {
        // Left as a zombie if it ends before we do: our exit hands it to the subreaper.
        undo.child = None;
        return Ok(Running {
            pid: spawned.pid,
            stdio: wired.parent,
            start_time: None,
            cgroups: Vec::new(),
        });
    }
    reaper::watch(
        spawned.pid,
        spawned.pidfd,
        None,
        &mut None,
        reaper::Held::default(),
        on_exit,
    )
    .map_err(StartError::Watch)?;
    undo.child = None;
    Ok(Running {
        pid: spawned.pid,
        stdio: wired.parent,
        start_time: None,
        cgroups: Vec::new(),
    })
}

/// What exec errors name: the command, or lonely-init alone.
fn command_name(spec: &ContainerSpec) -> &str {
    spec.argv
        .first()
        .map_or(crate::programs::INIT.name, String::as_str)
}

/// A pidfd of this process, opened once: children poll it to learn that it died.
fn own_pidfd() -> Option<i32> {
    static PIDFD: std::sync::OnceLock<Option<OwnedFd>> = std::sync::OnceLock::new();
    PIDFD
        .get_or_init(|| {
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
            // CLOEXEC by default (pidfd_open): no program of ours inherits it.
            (fd >= 0).then(|| unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) })
        })
        .as_ref()
        .map(|fd| fd.as_raw_fd())
}

fn namespace_of(pid: i32, kind: &str) -> Option<OwnedFd> {
    let path = std::ffi::CString::new(format!("/proc/{pid}/ns/{kind}")).ok()?;
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    (fd >= 0).then(|| unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// Runs `f` with this thread's children going into the PID namespace `ns` (setns changes
/// only pid_for_children of the calling thread), then puts the thread's own one back.
fn in_pid_namespace<T>(ns: &OwnedFd, path: &str, f: impl FnOnce() -> T) -> Result<T, StartError> {
    let own = nix::fcntl::open(
        "/proc/thread-self/ns/pid",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|errno| StartError::JoinPath {
        path: "/proc/thread-self/ns/pid".into(),
        errno,
    })?;
    let enter = |fd: &OwnedFd, path: &str| {
        nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWPID).map_err(|errno| {
            StartError::JoinPath {
                path: path.into(),
                errno,
            }
        })
    };
    enter(ns, path)?;
    let result = f();
    // Back before anything else forks from this thread (Node's child_process included).
    enter(&own, "/proc/thread-self/ns/pid")?;
    Ok(result)
}
