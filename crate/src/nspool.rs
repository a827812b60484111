//! Namespaces made ahead of time. A network namespace costs about half a millisecond to
//! create (every pernet subsystem initializes), an IPC namespace ~40 µs (its sysctl tables
//! register); a background thread keeps a few fresh ones of each kind, each handed out once,
//! and the child joins them with setns instead of creating them at clone.

use std::collections::VecDeque;
use std::ffi::CStr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::raw::c_int;
use std::sync::{Condvar, Mutex, OnceLock};

use nix::errno::Errno;

/// Fresh namespaces kept ready per kind; the thread refills below this.
const READY: usize = 4;

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

struct Pool {
    ready: Mutex<[VecDeque<OwnedFd>; 2]>,
    wanted: Condvar,
}

static POOL: OnceLock<Pool> = OnceLock::new();

fn pool() -> &'static Pool {
    POOL.get_or_init(|| {
        std::thread::Builder::new()
            .name("lonely-nspool".into())
            .spawn(fill)
            .expect("spawn the namespace pool thread");
        Pool {
            ready: Mutex::new([VecDeque::new(), VecDeque::new()]),
            wanted: Condvar::new(),
        }
    })
}

/// A never-used namespace of `kind` (a network one with loopback up), or None when none is
/// ready yet (the caller then clones with the namespace flag itself).
pub fn take(kind: Kind) -> Option<OwnedFd> {
    let p = pool();
    let fd = p.ready.lock().unwrap_or_else(|e| e.into_inner())[kind.index()].pop_front();
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
        let mut ready = p.ready.lock().unwrap_or_else(|e| e.into_inner());
        // The kind with the fewest ready goes first: a burst drains both.
        let lowest = |ready: &[VecDeque<OwnedFd>; 2]| {
            KINDS
                .into_iter()
                .filter(|k| !refused[k.index()] && ready[k.index()].len() < READY)
                .min_by_key(|k| ready[k.index()].len())
        };
        let kind = loop {
            match lowest(&ready) {
                Some(kind) => break kind,
                None => ready = p.wanted.wait(ready).unwrap_or_else(|e| e.into_inner()),
            }
        };
        drop(ready);
        match make(kind) {
            Ok(fd) => p.ready.lock().unwrap_or_else(|e| e.into_inner())[kind.index()].push_back(fd),
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
