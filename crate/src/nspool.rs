//! Namespaces made ahead of time. A network namespace costs about half a millisecond to
//! create (every pernet subsystem initializes) and as much again to destroy, an IPC namespace
//! ~40 µs (its sysctl tables register); a background thread keeps a few fresh ones of each
//! kind, and the child joins them with setns instead of creating them at clone.
//!
//! A network namespace a container has left is served again only when nothing in it can tell
//! it from a new one (`untouched`); any other namespace is used once.

use std::collections::VecDeque;
use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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

#[derive(Default)]
struct Queues {
    ready: [VecDeque<OwnedFd>; 2],
    /// Network namespaces containers have left, to be checked by the pool thread.
    returned: VecDeque<OwnedFd>,
}

struct Pool {
    queues: Mutex<Queues>,
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
            queues: Mutex::new(Queues::default()),
            wanted: Condvar::new(),
        }
    })
}

/// A never-used namespace of `kind` (a network one with loopback up), or None when none is
/// ready yet (the caller then clones with the namespace flag itself).
pub fn take(kind: Kind) -> Option<OwnedFd> {
    let p = pool();
    let fd = p.queues.lock().unwrap_or_else(|e| e.into_inner()).ready[kind.index()].pop_front();
    p.wanted.notify_one();
    fd
}

/// A network namespace from `take` whose container has ended and which it could change only
/// through sockets (no NET_ADMIN or SYS_ADMIN, read-only /proc/sys, a PID namespace: spec.rs
/// decides). The pool thread serves it again if `untouched`, else closes it.
pub fn give_back(netns: OwnedFd) {
    let p = pool();
    let mut q = p.queues.lock().unwrap_or_else(|e| e.into_inner());
    if q.returned.len() < READY {
        q.returned.push_back(netns);
        p.wanted.notify_one();
    }
}

enum Job {
    Make(Kind),
    Check(OwnedFd),
}

fn fill() {
    let p = loop {
        if let Some(p) = POOL.get() {
            break p;
        }
        std::thread::yield_now();
    };
    let mut refused = [false; 2];
    // This thread's own network namespace, to leave a refused one for: staying in it would keep
    // it alive until the next job.
    let home = unsafe { libc::open(Kind::Net.path().as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    // /proc/net of the first network namespace made here: what a fresh one looks like.
    let mut fresh: Option<String> = None;
    loop {
        let mut q = p.queues.lock().unwrap_or_else(|e| e.into_inner());
        let job = loop {
            let net = Kind::Net.index();
            if q.ready[net].len() < READY {
                if let Some(fd) = q.returned.pop_front() {
                    break Job::Check(fd);
                }
            }
            // The kind with the fewest ready goes first: a burst drains both.
            let lowest = KINDS
                .into_iter()
                .filter(|k| !refused[k.index()] && q.ready[k.index()].len() < READY)
                .min_by_key(|k| q.ready[k.index()].len());
            match lowest {
                Some(kind) => break Job::Make(kind),
                None => q = p.wanted.wait(q).unwrap_or_else(|e| e.into_inner()),
            }
        };
        drop(q);
        let (kind, made) = match job {
            Job::Check(fd) => match &fresh {
                Some(fresh) if untouched(&fd, fresh) => (Kind::Net, Ok(fd)),
                _ => {
                    unsafe { libc::setns(home, libc::CLONE_NEWNET) };
                    continue; // dropped: the kernel destroys it
                }
            },
            Job::Make(kind) => (kind, make(kind)),
        };
        match made {
            Ok(fd) => {
                if kind == Kind::Net && fresh.is_none() {
                    fresh = counters(); // this thread is in the namespace it just made
                }
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

/// Whether a used network namespace is, to anything inside it, a new one: no socket left in
/// it (none open, none in TIME_WAIT) and all of /proc/net's counters (IP, ICMP, TCP, UDP for
/// v4 and v6, lo's traffic, IPv6 flow labels) as in a fresh namespace. Without NET_ADMIN
/// only sockets change a namespace and every packet moves a counter; the one state a socket
/// sets up without a packet, the TCP Fast Open key (made on the first TCP_FASTOPEN listener),
/// is compared too. Reading them means joining it: this thread's own network namespace does
/// not matter (`make` unshares anew).
fn untouched(netns: &OwnedFd, fresh: &str) -> bool {
    let joined = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } == 0;
    joined
        && no_sockets()
        // lo down and up (~50 µs) cancels the one trace a closed socket leaves pending: IGMP
        // and MLD reports for groups left just before the end, due on lo within a second or two.
        && set_loopback(false).is_ok()
        && set_loopback(true).is_ok()
        && counters().is_some_and(|now| now == fresh)
}

/// /proc/net's counters of this thread's network namespace and its TCP Fast Open key; files
/// the kernel lacks (no IPv6) read as empty.
fn counters() -> Option<String> {
    let mut all = String::new();
    for file in [
        "/proc/thread-self/net/snmp",
        "/proc/thread-self/net/snmp6",
        "/proc/thread-self/net/netstat",
        "/proc/thread-self/net/dev",
        "/proc/thread-self/net/ip6_flowlabel",
        "/proc/sys/net/ipv4/tcp_fastopen_key", // the reader's network namespace: this thread's
    ] {
        match std::fs::read_to_string(file) {
            Ok(text) => all.push_str(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return None,
        }
    }
    Some(all)
}

/// sockstat's per-namespace figures are all zero (orphan, alloc and mem are host-wide).
fn no_sockets() -> bool {
    ["sockstat", "sockstat6"].into_iter().all(|file| {
        match std::fs::read_to_string(format!("/proc/thread-self/net/{file}")) {
            Ok(text) => sockstat_is_empty(&text),
            Err(e) => e.kind() == std::io::ErrorKind::NotFound && file == "sockstat6",
        }
    })
}

/// `TCP: inuse 0 orphan 0 tw 0 alloc 1 mem 3` and the like: `used`, `inuse`, `tw` and FRAG's
/// `memory` are this namespace's.
fn sockstat_is_empty(text: &str) -> bool {
    text.lines().all(|line| {
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        words.chunks(2).all(|kv| match kv {
            [key, value] if ["used", "inuse", "tw", "memory"].contains(key) => *value == "0",
            _ => true,
        })
    })
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
        set_loopback(true)?;
    }
    Ok(ns)
}

fn set_loopback(up: bool) -> Result<(), Errno> {
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(Errno::last());
    }
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = match up {
        true => libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING,
        false => libc::IFF_LOOPBACK,
    } as i16;
    let ret = unsafe { libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) };
    let errno = Errno::last();
    unsafe { libc::close(sock) };
    if ret != 0 {
        return Err(errno);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{counters, set_loopback, sockstat_is_empty};

    /// Joins and leaves 239.1.2.3 on lo with a socket that is then closed: no packet yet,
    /// IGMP reports due within a second or so.
    fn join_and_leave_a_group() {
        unsafe {
            let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
            assert!(sock >= 0);
            let group = libc::ip_mreq {
                imr_multiaddr: libc::in_addr {
                    s_addr: u32::from_be_bytes([239, 1, 2, 3]).to_be(),
                },
                imr_interface: libc::in_addr {
                    s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
                },
            };
            let len = std::mem::size_of::<libc::ip_mreq>() as libc::socklen_t;
            let joined = libc::setsockopt(
                sock,
                libc::IPPROTO_IP,
                libc::IP_ADD_MEMBERSHIP,
                (&group as *const libc::ip_mreq).cast(),
                len,
            );
            assert_eq!(joined, 0);
            libc::close(sock);
        }
    }

    /// In a new network namespace of its own thread: whether the counters still equal a fresh
    /// namespace's 1.5 s after a multicast join and leave, with lo bounced right after or not.
    fn quiet_after_a_multicast_leave(bounce: bool) -> Option<bool> {
        std::thread::spawn(move || {
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return None; // not root: nothing to show
            }
            set_loopback(true).unwrap();
            let fresh = counters().unwrap();
            join_and_leave_a_group();
            if bounce {
                set_loopback(false).unwrap();
                set_loopback(true).unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(1500));
            Some(counters().unwrap() == fresh)
        })
        .join()
        .unwrap()
    }

    #[test]
    fn bouncing_lo_cancels_the_reports_a_multicast_leave_left_due() {
        let Some(control) = quiet_after_a_multicast_leave(false) else {
            eprintln!("skipped: unshare(CLONE_NEWNET) needs root");
            return;
        };
        assert!(
            !control,
            "control: without the bounce the reports go out later"
        );
        assert_eq!(quiet_after_a_multicast_leave(true), Some(true));
    }

    #[test]
    fn host_wide_sockstat_figures_do_not_count() {
        let idle = "sockets: used 0\nTCP: inuse 0 orphan 3 tw 0 alloc 17 mem 9\nUDP: inuse 0 mem 4\nFRAG: inuse 0 memory 0\n";
        assert!(sockstat_is_empty(idle));
        for used in [
            "sockets: used 1\n",
            "TCP: inuse 0 orphan 0 tw 1 alloc 1 mem 0\n",
            "UDP6: inuse 2\n",
            "FRAG: inuse 0 memory 4096\n",
        ] {
            assert!(!sockstat_is_empty(used), "{used}");
        }
    }
}
