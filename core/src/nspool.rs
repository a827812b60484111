//! Namespaces made ahead of time. A network namespace costs about half a millisecond to
//! create (every pernet subsystem initializes) and as much again to destroy, an IPC namespace
//! ~40 µs (its sysctl tables register); a background thread keeps a few fresh ones of each
//! kind, and the child joins them with setns instead of creating them at clone.
//!
//! Every namespace is used once. A reused one could never pass for new: its nsfs inode and
//! `SO_NETNS_COOKIE` repeat, and state a container without NET_ADMIN can leave behind (the
//! interface index counter a `pimreg` device advances, IPv6 route-cache statistics) is not all
//! readable to compare.

use std::collections::VecDeque;
use std::ffi::CStr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};

use nix::errno::Errno;

/// Fresh namespaces kept ready per kind; the thread refills below this.
const READY: usize = 4;

/// The most namespace fds the pool holds at once (every kind full).
pub const CAPACITY: usize = READY * KINDS.len();

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Net,
    Ipc,
}

const KINDS: [Kind; 2] = [Kind::Net, Kind::Ipc];

impl Kind {
    fn index(self) -> usize {
        self as usize
    }

    fn flag(self) -> c_int {
        match self {
            Kind::Net => libc::CLONE_NEWNET,
            Kind::Ipc => libc::CLONE_NEWIPC,
        }
    }

    fn path(self) -> &'static CStr {
        match self {
            Kind::Net => c"/proc/thread-self/ns/net",
            Kind::Ipc => c"/proc/thread-self/ns/ipc",
        }
    }
}

#[derive(Default)]
struct Queues {
    ready: [VecDeque<OwnedFd>; 2],
}

struct Pool {
    queues: Mutex<Queues>,
    wanted: Condvar,
}

static POOL: OnceLock<Pool> = OnceLock::new();

static DISABLED: AtomicBool = AtomicBool::new(false);

/// For a process that starts one container and exits (lonely-runtime): the namespaces a pool
/// would make ahead are never used, and making them contends with the container's own clone
/// for the kernel's pernet lock (measured: +4 ms on the clone of a `create`).
pub fn disable() {
    DISABLED.store(true, Ordering::Relaxed);
}

fn pool() -> &'static Pool {
    POOL.get_or_init(|| {
        std::thread::Builder::new()
            .name("lonely-nspool".into())
            .spawn(fill)
            .expect("spawn the namespace pool thread");
        Pool {
            queues: Mutex::new(Queues::default()),
            wanted: Condvar::new(),
        }
    })
}

/// A never-used namespace of `kind` (a network one with loopback up), or None when none is
/// ready yet (the caller then clones with the namespace flag itself).
pub fn take(kind: Kind) -> Option<OwnedFd> {
    if DISABLED.load(Ordering::Relaxed) {
        return None;
    }
    let p = pool();
    let fd = p.queues.lock().unwrap_or_else(|e| e.into_inner()).ready[kind.index()].pop_front();
    p.wanted.notify_one();
    fd
}

fn fill() {
    let p = loop {
        if let Some(p) = POOL.get() {
            break p;
        }
        std::thread::yield_now();
    };
    let mut refused = [false; 2];
    loop {
        let mut q = p.queues.lock().unwrap_or_else(|e| e.into_inner());
        let kind = loop {
            // The kind with the fewest ready goes first: a burst drains both.
            let lowest = KINDS
                .into_iter()
                .filter(|k| !refused[k.index()] && q.ready[k.index()].len() < READY)
                .min_by_key(|k| q.ready[k.index()].len());
            match lowest {
                Some(kind) => break kind,
                None => q = p.wanted.wait(q).unwrap_or_else(|e| e.into_inner()),
            }
        };
        drop(q);
        match make(kind) {
            Ok(fd) => {
                p.queues.lock().unwrap_or_else(|e| e.into_inner()).ready[kind.index()].push_back(fd)
            }
            // Not permitted here (no CAP_SYS_ADMIN...): callers fall back to the clone flag.
            Err(Errno::EPERM) => {
                refused[kind.index()] = true;
                if refused.iter().all(|r| *r) {
                    return;
                }
            }
            // Out of memory or fds for a moment: try again soon.
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}

/// unshare moves only this thread; its new namespace is kept by fd.
fn make(kind: Kind) -> Result<OwnedFd, Errno> {
    if unsafe { libc::unshare(kind.flag()) } != 0 {
        return Err(Errno::last());
    }
    let fd = unsafe { libc::open(kind.path().as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Errno::last());
    }
    let ns = unsafe { OwnedFd::from_raw_fd(fd) };
    if kind == Kind::Net {
        loopback_up()?;
    }
    Ok(ns)
}

fn loopback_up() -> Result<(), Errno> {
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(Errno::last());
    }
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as i16;
    let ret = unsafe { libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) };
    let errno = Errno::last();
    unsafe { libc::close(sock) };
    if ret != 0 {
        return Err(errno);
    }
    Ok(())
}
