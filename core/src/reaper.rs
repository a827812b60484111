//! One thread for all containers: epoll over their pidfds (and v1 OOM eventfds), reaped
//! with waitid(P_PIDFD) so Node's own children are never touched (no waitpid(-1)). The
//! container's cgroup is read and removed here, before the result is delivered.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Mutex, OnceLock};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use crate::cgroups::{Cgroup, Stats};

/// How a container ended, with the kernel's CPU accounting for it and its reaped descendants.
/// (ru_maxrss is left out: exec records the vfork-shared Node heap in it.)
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub pid: i32,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub user_us: u64,
    pub system_us: u64,
    /// The cgroup's accounting, when the container had one.
    pub cgroup: Option<Stats>,
    pub oom_killed: bool,
}

pub type OnExit = Box<dyn FnOnce(Exit) + Send>;

struct Watched {
    /// PID 1's: what signals and joins go through.
    pidfd: OwnedFd,
    /// A detached container's monitor, our child, which ends as PID 1 did: reaped instead.
    monitor: Option<OwnedFd>,
    on_exit: OnExit,
    cgroup: Option<Box<dyn Cgroup>>,
    oom: bool,
    /// Namespaces held until the exit is delivered (see `watch`).
    held: Held,
}

/// What the reaper keeps of a container's namespaces until its exit is delivered.
#[derive(Default)]
pub struct Held {
    /// Closed then: the mount namespace's teardown runs here, not in the container's exit.
    pub mount_ns: Option<OwnedFd>,
}

/// Epoll data: the pid, tagged when the event is the cgroup's OOM eventfd.
const OOM_TAG: u64 = 1 << 32;

struct Reaper {
    epoll: Epoll,
    live: Mutex<HashMap<i32, Watched>>,
}

static REAPER: OnceLock<Reaper> = OnceLock::new();

fn reaper() -> &'static Reaper {
    REAPER.get_or_init(|| {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).expect("epoll_create1");
        std::thread::Builder::new()
            .name("lonely-reaper".into())
            .spawn(run)
            .expect("spawn the reaper thread");
        Reaper {
            epoll,
            live: Mutex::new(HashMap::new()),
        }
    })
}

/// Hands a running container to the reaper; `on_exit` runs on the reaper thread. `held` is
/// let go only after `on_exit`: the last reference to the mount namespace then tears it down
/// here, after the result is on its way, instead of in the container's exit before its parent
/// hears of it. The cgroup is taken only on success (the caller removes it otherwise).
pub fn watch(
    pid: i32,
    pidfd: OwnedFd,
    monitor: Option<OwnedFd>,
    cgroup: &mut Option<Box<dyn Cgroup>>,
    held: Held,
    on_exit: OnExit,
) -> Result<(), Errno> {
    let r = reaper();
    let mut live = r.live.lock().unwrap_or_else(|e| e.into_inner());
    // Registered under the lock: an exit that fires at once finds its entry.
    r.epoll.add(
        monitor.as_ref().unwrap_or(&pidfd).as_fd(),
        EpollEvent::new(EpollFlags::EPOLLIN, pid as u64),
    )?;
    if let Some(efd) = cgroup.as_ref().and_then(|c| c.oom_eventfd()) {
        r.epoll.add(
            efd.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, OOM_TAG | pid as u64),
        )?;
    }
    live.insert(
        pid,
        Watched {
            pidfd,
            monitor,
            on_exit,
            cgroup: cgroup.take(),
            oom: false,
            held,
        },
    );
    Ok(())
}

/// Live accounting of a running container's cgroup.
pub fn stats(pid: i32) -> Option<Stats> {
    let live = reaper().live.lock().unwrap_or_else(|e| e.into_inner());
    live.get(&pid)?.cgroup.as_ref().map(|c| c.stats())
}

/// Signals a live container through its pidfd (no pid-reuse race). False once it is reaped.
pub fn signal(pid: i32, sig: i32) -> Result<bool, Errno> {
    let live = reaper().live.lock().unwrap_or_else(|e| e.into_inner());
    let Some(w) = live.get(&pid) else {
        return Ok(false);
    };
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            w.pidfd.as_raw_fd(),
            sig,
            0usize,
            0u32,
        )
    };
    match ret {
        0 => Ok(true),
        _ => match Errno::last() {
            Errno::ESRCH => Ok(false),
            e => Err(e),
        },
    }
}

/// What an exec needs to enter a live container: a pidfd of its PID 1 and its cgroup's
/// cgroup.procs, each a dup (the container may end and close its own meanwhile). None once reaped.
pub fn joinable(pid: i32) -> Option<(OwnedFd, Vec<OwnedFd>)> {
    let live = reaper().live.lock().unwrap_or_else(|e| e.into_inner());
    let w = live.get(&pid)?;
    let dup = |fd: std::os::fd::BorrowedFd| fd.try_clone_to_owned().ok();
    let pidfd = dup(w.pidfd.as_fd())?;
    let procs = w
        .cgroup
        .as_ref()
        .map(|c| c.join_fds())
        .unwrap_or_default()
        .into_iter()
        .map(|fd| dup(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }))
        .collect::<Option<Vec<_>>>()?;
    Some((pidfd, procs))
}

/// The cgroup directories of a live container (empty without `limits`).
pub fn cgroup_dirs(pid: i32) -> Vec<std::path::PathBuf> {
    let live = reaper().live.lock().unwrap_or_else(|e| e.into_inner());
    live.get(&pid)
        .and_then(|w| w.cgroup.as_ref())
        .map(|c| c.dirs())
        .unwrap_or_default()
}

/// Whether the container whose PID 1 is `pid` is watched (started and not reaped yet).
pub fn is_live(pid: i32) -> bool {
    REAPER.get().is_some_and(|r| {
        r.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&pid)
    })
}

pub fn live_count() -> usize {
    REAPER.get().map_or(0, |r| {
        r.live.lock().unwrap_or_else(|e| e.into_inner()).len()
    })
}

fn run() {
    // The thread starts inside get_or_init; wait until the cell is filled.
    let r = loop {
        if let Some(r) = REAPER.get() {
            break r;
        }
        std::thread::yield_now();
    };
    let mut events = [EpollEvent::empty(); 64];
    loop {
        let n = match r.epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => panic!("epoll_wait: {e}"),
        };
        for event in &events[..n] {
            let pid = event.data() as u32 as i32;
            if event.data() & OOM_TAG != 0 {
                on_oom(r, pid);
                continue;
            }
            let watched = r
                .live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&pid);
            if let Some(w) = watched {
                finish(r, pid, w);
            }
        }
    }
}

/// The cgroup ran out of memory: the kernel killed one process, we end the whole container.
fn on_oom(r: &Reaper, pid: i32) {
    let mut live = r.live.lock().unwrap_or_else(|e| e.into_inner());
    let Some(w) = live.get_mut(&pid) else { return };
    if let Some(efd) = w.cgroup.as_ref().and_then(|c| c.oom_eventfd()) {
        let mut count = 0u64;
        unsafe { libc::read(efd.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
    }
    w.oom = true;
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            w.pidfd.as_raw_fd(),
            libc::SIGKILL,
            0usize,
            0u32,
        )
    };
    // Without a PID namespace PID 1's death ends nothing else: the cgroup knows every process.
    if let Some(cg) = w.cgroup.as_ref() {
        cg.kill_all();
    }
}

fn finish(r: &Reaper, pid: i32, mut w: Watched) {
    let waited = w.monitor.as_ref().unwrap_or(&w.pidfd);
    let _ = r.epoll.delete(waited.as_fd());
    if let Some(efd) = w.cgroup.as_ref().and_then(|c| c.oom_eventfd()) {
        let _ = r.epoll.delete(efd.as_fd());
    }
    let mut exit = reap(pid, waited);
    if let Some(cg) = w.cgroup.as_mut() {
        let stats = cg.stats();
        // Without a PID namespace, descendants can outlive PID 1: the cgroup knows them all.
        cg.kill_all();
        let _ = cg.remove();
        exit.oom_killed = w.oom || stats.oom_kills > 0;
        exit.cgroup = Some(stats);
    }
    (w.on_exit)(exit);
    drop(w.held.mount_ns);
}

fn reap(pid: i32, pidfd: &OwnedFd) -> Exit {
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    const P_PIDFD: libc::c_int = 3;
    loop {
        let ret = unsafe {
            libc::syscall(
                libc::SYS_waitid,
                P_PIDFD,
                pidfd.as_raw_fd(),
                &mut info,
                libc::WEXITED,
                &mut usage,
            )
        };
        if ret == 0 || Errno::last() != Errno::EINTR {
            break;
        }
    }
    let status = unsafe { info.si_status() };
    let (code, signal) = match info.si_code {
        libc::CLD_EXITED => (Some(status), None),
        _ => (None, Some(status)),
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Exit {
        pid,
        code,
        signal,
        user_us: micros(usage.ru_utime),
        system_us: micros(usage.ru_stime),
        cgroup: None,
        oom_killed: false,
    }
}
