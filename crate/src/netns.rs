//! Network namespaces made ahead of time. Creating one costs about half a millisecond
//! (every pernet subsystem initializes), more than the rest of a container's setup; a
//! background thread keeps a few fresh ones with `lo` up, each handed out once, and the
//! child joins it with setns instead of CLONE_NEWNET.

use std::collections::VecDeque;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Condvar, Mutex, OnceLock};

use nix::errno::Errno;

/// Fresh namespaces kept ready; the thread refills below this.
const READY: usize = 4;

struct Pool {
    ready: Mutex<VecDeque<OwnedFd>>,
    wanted: Condvar,
}

static POOL: OnceLock<Pool> = OnceLock::new();

fn pool() -> &'static Pool {
    POOL.get_or_init(|| {
        std::thread::Builder::new()
            .name("lonely-netns".into())
            .spawn(fill)
            .expect("spawn the netns thread");
        Pool {
            ready: Mutex::new(VecDeque::new()),
            wanted: Condvar::new(),
        }
    })
}

/// A never-used network namespace with loopback up, or None when none is ready yet
/// (the caller then clones with CLONE_NEWNET itself).
pub fn take() -> Option<OwnedFd> {
    let p = pool();
    let fd = p
        .ready
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop_front();
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
    loop {
        let mut ready = p.ready.lock().unwrap_or_else(|e| e.into_inner());
        while ready.len() >= READY {
            ready = p.wanted.wait(ready).unwrap_or_else(|e| e.into_inner());
        }
        drop(ready);
        match make() {
            Ok(fd) => p
                .ready
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_back(fd),
            // Not permitted here (no CAP_SYS_ADMIN...): callers fall back to CLONE_NEWNET.
            Err(Errno::EPERM) => return,
            // Out of memory or fds for a moment: try again soon.
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}

/// unshare(CLONE_NEWNET) moves only this thread; its new namespace is kept by fd.
fn make() -> Result<OwnedFd, Errno> {
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(Errno::last());
    }
    let fd = unsafe {
        libc::open(
            c"/proc/thread-self/ns/net".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    let ns = unsafe { OwnedFd::from_raw_fd(fd) };
    loopback_up()?;
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
