//! The privileged calls the child makes, behind one trait (youki's `Syscall`):
//! `Kernel` issues them for real, unit tests record them and inject failures.
//! Every method is async-signal-safe: raw syscalls, no allocation.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_long, c_uint, c_ulong};

use nix::errno::Errno;

pub type SysResult<T> = Result<T, Errno>;

// The new mount API's constants are not in the libc crate yet (linux/mount.h).
pub const OPEN_TREE_CLONE: c_uint = 1;
pub const AT_RECURSIVE: c_uint = 0x8000;
pub const MOVE_MOUNT_F_EMPTY_PATH: c_uint = 0x4;
pub const MOVE_MOUNT_T_EMPTY_PATH: c_uint = 0x40;
pub const FSOPEN_CLOEXEC: c_uint = 1;
pub const FSMOUNT_CLOEXEC: c_uint = 1;
pub const FSCONFIG_SET_FLAG: c_uint = 0;
pub const FSCONFIG_SET_STRING: c_uint = 1;
pub const FSCONFIG_CMD_CREATE: c_uint = 6;
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
// Propagation types, as mount_setattr's `propagation` field takes them (MS_* are c_ulong,
// u32 on 32-bit targets).
#[allow(clippy::unnecessary_cast)]
pub const MS_PRIVATE: u64 = libc::MS_PRIVATE as u64;
#[allow(clippy::unnecessary_cast)]
pub const MS_SLAVE: u64 = libc::MS_SLAVE as u64;
#[allow(clippy::unnecessary_cast)]
pub const MS_SHARED: u64 = libc::MS_SHARED as u64;
#[allow(clippy::unnecessary_cast)]
pub const MS_UNBINDABLE: u64 = libc::MS_UNBINDABLE as u64;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// The kernel calls the child needs, in the order-independent form the plan uses.
pub trait Sys {
    fn reset_signals(&self, blocked: bool);
    fn setsid(&self) -> SysResult<()>;
    fn set_parent_death_signal(&self, sig: c_int) -> SysResult<()>;
    fn set_not_dumpable(&self) -> SysResult<()>;
    /// clone(CLONE_PARENT|CLONE_VM|CLONE_VFORK) running `inner` on `stack`: returns its pid once
    /// it has exec'd or exited. `inner` must follow the rule of the child (it never returns).
    fn clone_sibling(&self, stack: &mut [u8], inner: &dyn Fn() -> c_int) -> SysResult<c_int>;
    fn dup2(&self, from: c_int, to: c_int) -> SysResult<()>;
    fn set_controlling_tty(&self, fd: c_int) -> SysResult<()>;
    /// Opens a pty through `ptmx`: (master, slave), both CLOEXEC.
    fn open_pty(&self, ptmx: &CStr) -> SysResult<(c_int, c_int)>;
    /// TIOCSWINSZ on a pty master: the size its slave's programs see.
    fn set_window_size(&self, master: c_int, rows: u16, cols: u16) -> SysResult<()>;
    /// sendmsg(SCM_RIGHTS) of one fd.
    fn send_fd(&self, sock: c_int, fd: c_int) -> SysResult<()>;
    fn unshare(&self, flags: c_int) -> SysResult<()>;
    /// write(fd, "0"): moves the caller into the cgroup whose cgroup.procs `fd` is.
    fn join_cgroup(&self, procs: c_int) -> SysResult<()>;
    fn set_rlimit(&self, resource: c_int, soft: u64, hard: u64) -> SysResult<()>;
    fn setns(&self, fd: c_int, nstype: c_int) -> SysResult<()>;
    fn make_mounts_private(&self) -> SysResult<()>;
    fn open_tree(&self, path: &CStr) -> SysResult<c_int>;
    /// open_tree(fd, "", OPEN_TREE_CLONE|AT_RECURSIVE|AT_EMPTY_PATH).
    fn open_tree_fd(&self, fd: c_int) -> SysResult<c_int>;
    /// An O_PATH fd of `path` with no symlink in any component.
    fn open_no_symlinks(&self, path: &CStr) -> SysResult<c_int>;
    /// (st_dev, st_ino) of an fd.
    fn file_id(&self, fd: c_int) -> SysResult<(u64, u64)>;
    /// mount_setattr(fd, "", AT_EMPTY_PATH): `attrs` set and, unless 0, the propagation
    /// type `propagation` (MS_PRIVATE, MS_SLAVE...), in one call.
    fn mount_setattr(
        &self,
        fd: c_int,
        attrs: u64,
        propagation: u64,
        recursive: bool,
    ) -> SysResult<()>;
    fn set_mount_attrs(&self, fd: c_int, attrs: u64, recursive: bool) -> SysResult<()> {
        self.mount_setattr(fd, attrs, 0, recursive)
    }
    fn move_mount(&self, from: c_int, to_dir: c_int, to_path: &CStr) -> SysResult<()>;
    fn fs_mount(
        &self,
        fstype: &CStr,
        params: &[(std::ffi::CString, Option<std::ffi::CString>)],
        attrs: u64,
    ) -> SysResult<c_int>;
    fn open_in_root(&self, root: c_int, path: &CStr, flags: c_int) -> SysResult<c_int>;
    /// openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS: `path` below `dir`, no symlink on the way.
    fn open_beneath(&self, dir: c_int, path: &CStr, flags: c_int) -> SysResult<c_int>;
    /// fstat: a character device 1:3, the kernel's null device.
    fn is_null_device(&self, fd: c_int) -> SysResult<bool>;
    fn open_dir(&self, path: &CStr) -> SysResult<c_int>;
    fn is_dir(&self, fd: c_int) -> SysResult<bool>;
    fn mkdirat(&self, dir: c_int, name: &CStr, mode: u32) -> SysResult<()>;
    fn create_file_at(&self, dir: c_int, name: &CStr) -> SysResult<()>;
    fn mknodat(&self, dir: c_int, name: &CStr, mode: u32, dev: u64) -> SysResult<()>;
    fn symlinkat(&self, target: &CStr, dir: c_int, name: &CStr) -> SysResult<()>;
    /// fchownat with no symlink followed.
    fn chown_at(&self, dir: c_int, name: &CStr, uid: u32, gid: u32) -> SysResult<()>;
    fn close(&self, fd: c_int);
    fn pivot_into(&self, root: c_int) -> SysResult<()>;
    /// fchdir + chroot(".") + chdir("/"): a root that is a detached mount tree, in the
    /// caller's own mount namespace (no mount namespace asked for).
    fn chroot_into(&self, root: c_int) -> SysResult<()>;
    fn chdir(&self, path: &CStr) -> SysResult<()>;
    /// The working directory is inside this process's root (ENOENT if not).
    fn verify_cwd(&self) -> SysResult<()>;
    fn fchdir(&self, fd: c_int) -> SysResult<()>;
    fn sethostname(&self, name: &[u8]) -> SysResult<()>;
    fn personality(&self, persona: u64) -> SysResult<()>;
    fn loopback_up(&self, ifreq: &libc::ifreq) -> SysResult<()>;
    /// setgroups (unless `set_groups` is false: a user namespace denies it), setresgid, setresuid.
    fn set_credentials(
        &self,
        uid: u32,
        gid: u32,
        groups: &[libc::gid_t],
        set_groups: bool,
    ) -> SysResult<()>;
    fn write_file(&self, path: &CStr, data: &[u8]) -> SysResult<()>;
    /// Reads one byte; EOF (the parent gave up) is EPIPE.
    fn read_byte(&self, fd: c_int) -> SysResult<()>;
    /// close_range from `first` up, all but `keep` (-1: none).
    /// close_range of every fd from `first` but the `keep` ones (-1: none).
    fn close_fds_except(&self, first: c_uint, keep: [c_int; 4]) -> SysResult<()>;
    /// poll(POLLIN) with no wait: a pidfd is readable once its process has exited.
    fn is_readable(&self, fd: c_int) -> SysResult<bool>;
    /// open_tree(fd, "", OPEN_TREE_CLONE|AT_EMPTY_PATH): a bind of what `fd` (opened in the root) is.
    fn clone_fd(&self, fd: c_int) -> SysResult<c_int>;
    fn drop_bounding_cap(&self, cap: u32) -> SysResult<()>;
    fn set_capabilities(&self, effective: u64, permitted: u64, inheritable: u64) -> SysResult<()>;
    fn clear_ambient_caps(&self) -> SysResult<()>;
    fn raise_ambient_cap(&self, cap: u32) -> SysResult<()>;
    /// PR_SET_KEEPCAPS: permitted capabilities survive the switch from uid 0.
    fn keep_caps(&self) -> SysResult<()>;
    /// Writes `text` to /proc/self/<file> (oom_score_adj) or /proc/sys/<key path> (a sysctl).
    fn write_proc(&self, path: &CStr, text: &[u8]) -> SysResult<()>;
    fn set_no_new_privs(&self) -> SysResult<()>;
    fn load_seccomp(&self, program: &[libc::sock_filter]) -> SysResult<()>;
    /// `argv` and `envp` are NULL-terminated pointer arrays (child.rs ExecPlan).
    fn execve(&self, path: &CStr, argv: &[*const c_char], envp: &[*const c_char]) -> Errno;
    /// execveat(fd, "", AT_EMPTY_PATH): the program an fd holds.
    fn execveat_fd(&self, fd: c_int, argv: &[*const c_char], envp: &[*const c_char]) -> Errno;
}

/// The real kernel.
pub struct Kernel;

fn check(ret: c_long) -> SysResult<c_long> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// openat2 with a mode for O_CREAT, `resolve` as openat2 (magic links never followed), CLOEXEC.
pub fn openat2_mode(
    dir: c_int,
    path: &CStr,
    flags: c_int,
    mode: u32,
    resolve: u64,
) -> SysResult<c_int> {
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = mode as u64;
    how.resolve = resolve | libc::RESOLVE_NO_MAGICLINKS;
    let size = std::mem::size_of::<libc::open_how>();
    check(unsafe { libc::syscall(libc::SYS_openat2, dir, path.as_ptr(), &how, size) })
        .map(|fd| fd as c_int)
}

/// openat2 with `resolve` (magic links never followed), CLOEXEC.
pub fn openat2(dir: c_int, path: &CStr, flags: c_int, resolve: u64) -> SysResult<c_int> {
    openat2_mode(dir, path, flags, 0, resolve)
}

fn check_int(ret: c_int) -> SysResult<c_int> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

impl Sys for Kernel {
    fn reset_signals(&self, blocked: bool) {
        // Node's handlers must never run here, and SIG_IGN (Node ignores SIGPIPE) survives exec.
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            for sig in 1..=64 {
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            if blocked {
                libc::sigfillset(&mut empty); // as spawn.rs blocked them around clone
            } else {
                libc::sigemptyset(&mut empty);
            }
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &empty,
                0usize,
                8usize,
            );
        }
    }

    fn setsid(&self) -> SysResult<()> {
        check(unsafe { libc::syscall(libc::SYS_setsid) }).map(drop)
    }

    fn set_parent_death_signal(&self, sig: c_int) -> SysResult<()> {
        check_int(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as c_ulong) }).map(drop)
    }

    fn set_not_dumpable(&self) -> SysResult<()> {
        check_int(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as c_ulong) }).map(drop)
    }

    fn clone_sibling(&self, stack: &mut [u8], inner: &dyn Fn() -> c_int) -> SysResult<c_int> {
        extern "C" fn trampoline(arg: *mut libc::c_void) -> c_int {
            // SAFETY: `arg` is the `&&dyn Fn` below, alive while we are suspended (CLONE_VFORK).
            let inner = unsafe { &*(arg as *const &dyn Fn() -> c_int) };
            inner()
        }
        let flags = libc::CLONE_PARENT | libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
        // The stack grows down: its top, 16-byte aligned.
        let top = unsafe { stack.as_mut_ptr().add(stack.len()) };
        let top = (top as usize & !15) as *mut libc::c_void;
        let arg = &inner as *const &dyn Fn() -> c_int as *mut libc::c_void;
        check_int(unsafe { libc::clone(trampoline, top, flags, arg) })
    }

    fn dup2(&self, from: c_int, to: c_int) -> SysResult<()> {
        if from == to {
            // dup2 onto itself keeps FD_CLOEXEC: clear it so the fd survives exec.
            return check_int(unsafe { libc::fcntl(from, libc::F_SETFD, 0) }).map(drop);
        }
        check_int(unsafe { libc::dup2(from, to) }).map(drop)
    }

    fn set_controlling_tty(&self, fd: c_int) -> SysResult<()> {
        check_int(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) }).map(drop)
    }

    fn set_window_size(&self, master: c_int, rows: u16, cols: u16) -> SysResult<()> {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        check_int(unsafe { libc::ioctl(master, libc::TIOCSWINSZ, &size) }).map(drop)
    }

    fn open_pty(&self, ptmx: &CStr) -> SysResult<(c_int, c_int)> {
        let master = check_int(unsafe {
            libc::open(
                ptmx.as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        })?;
        let unlock: c_int = 0;
        let slave = check_int(unsafe { libc::ioctl(master, libc::TIOCSPTLCK, &unlock) })
            // TIOCGPTPEER: the slave without a path lookup that a rootfs could redirect.
            .and_then(|_| {
                check_int(unsafe {
                    libc::ioctl(
                        master,
                        libc::TIOCGPTPEER,
                        libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
                    )
                })
            });
        match slave {
            Ok(slave) => Ok((master, slave)),
            Err(e) => {
                unsafe { libc::close(master) };
                Err(e)
            }
        }
    }

    fn send_fd(&self, sock: c_int, fd: c_int) -> SysResult<()> {
        // A cmsg buffer on the stack, u64-aligned as cmsghdr wants.
        let mut space = [0u64; 4];
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = space.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<c_int>() as u32) as usize;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<c_int>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<c_int>(), fd);
            check(libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) as c_long).map(drop)
        }
    }

    fn unshare(&self, flags: c_int) -> SysResult<()> {
        check(unsafe { libc::syscall(libc::SYS_unshare, flags) }).map(drop)
    }

    fn join_cgroup(&self, procs: c_int) -> SysResult<()> {
        check(unsafe { libc::write(procs, c"0".as_ptr().cast(), 1) } as c_long).map(drop)
    }

    fn set_rlimit(&self, resource: c_int, soft: u64, hard: u64) -> SysResult<()> {
        let limit = libc::rlimit64 {
            rlim_cur: soft,
            rlim_max: hard,
        };
        check(unsafe {
            libc::syscall(
                libc::SYS_prlimit64,
                0,
                resource,
                &limit,
                std::ptr::null_mut::<libc::rlimit64>(),
            )
        })
        .map(drop)
    }

    fn setns(&self, fd: c_int, nstype: c_int) -> SysResult<()> {
        check(unsafe { libc::syscall(libc::SYS_setns, fd, nstype) }).map(drop)
    }

    fn make_mounts_private(&self) -> SysResult<()> {
        let root = c"/";
        check_int(unsafe {
            libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            )
        })
        .map(drop)
    }

    fn open_tree(&self, path: &CStr) -> SysResult<c_int> {
        let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as c_uint | AT_RECURSIVE;
        check(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) })
            .map(|fd| fd as c_int)
    }

    fn open_tree_fd(&self, fd: c_int) -> SysResult<c_int> {
        let flags = OPEN_TREE_CLONE
            | libc::O_CLOEXEC as c_uint
            | AT_RECURSIVE
            | libc::AT_EMPTY_PATH as c_uint;
        check(unsafe { libc::syscall(libc::SYS_open_tree, fd, c"".as_ptr(), flags) })
            .map(|fd| fd as c_int)
    }

    fn open_no_symlinks(&self, path: &CStr) -> SysResult<c_int> {
        openat2(
            libc::AT_FDCWD,
            path,
            libc::O_PATH,
            libc::RESOLVE_NO_SYMLINKS,
        )
    }

    fn file_id(&self, fd: c_int) -> SysResult<(u64, u64)> {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        check_int(unsafe { libc::fstat(fd, &mut st) })?;
        Ok((st.st_dev, st.st_ino))
    }

    fn mount_setattr(
        &self,
        fd: c_int,
        attrs: u64,
        propagation: u64,
        recursive: bool,
    ) -> SysResult<()> {
        let attr = MountAttr {
            attr_set: attrs,
            attr_clr: 0,
            propagation,
            userns_fd: 0,
        };
        let flags = libc::AT_EMPTY_PATH as c_uint | if recursive { AT_RECURSIVE } else { 0 };
        check(unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                fd,
                c"".as_ptr(),
                flags,
                &attr,
                std::mem::size_of::<MountAttr>(),
            )
        })
        .map(drop)
    }

    fn move_mount(&self, from: c_int, to_dir: c_int, to_path: &CStr) -> SysResult<()> {
        let flags = MOVE_MOUNT_F_EMPTY_PATH
            | if to_path.is_empty() {
                MOVE_MOUNT_T_EMPTY_PATH
            } else {
                0
            };
        check(unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                from,
                c"".as_ptr(),
                to_dir,
                to_path.as_ptr(),
                flags,
            )
        })
        .map(drop)
    }

    fn fs_mount(
        &self,
        fstype: &CStr,
        params: &[(std::ffi::CString, Option<std::ffi::CString>)],
        attrs: u64,
    ) -> SysResult<c_int> {
        let fs = check(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })?
            as c_int;
        let result = (|| {
            for (key, value) in params {
                let (cmd, value_ptr) = match value {
                    Some(v) => (FSCONFIG_SET_STRING, v.as_ptr()),
                    None => (FSCONFIG_SET_FLAG, std::ptr::null()),
                };
                check(unsafe {
                    libc::syscall(libc::SYS_fsconfig, fs, cmd, key.as_ptr(), value_ptr, 0)
                })?;
            }
            let null: *const c_char = std::ptr::null();
            check(unsafe {
                libc::syscall(libc::SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, null, null, 0)
            })?;
            check(unsafe { libc::syscall(libc::SYS_fsmount, fs, FSMOUNT_CLOEXEC, attrs as c_uint) })
                .map(|fd| fd as c_int)
        })();
        unsafe { libc::close(fs) };
        result
    }

    fn open_in_root(&self, root: c_int, path: &CStr, flags: c_int) -> SysResult<c_int> {
        // RESOLVE_IN_ROOT: a symlink in the rootfs cannot point a mount outside it.
        openat2(root, path, flags, libc::RESOLVE_IN_ROOT)
    }

    fn open_beneath(&self, dir: c_int, path: &CStr, flags: c_int) -> SysResult<c_int> {
        openat2(
            dir,
            path,
            flags,
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
        )
    }

    fn is_null_device(&self, fd: c_int) -> SysResult<bool> {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        check_int(unsafe { libc::fstat(fd, &mut st) })?;
        Ok(st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == libc::makedev(1, 3))
    }

    fn is_dir(&self, fd: c_int) -> SysResult<bool> {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        check_int(unsafe { libc::fstat(fd, &mut st) })?;
        Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
    }

    fn open_dir(&self, path: &CStr) -> SysResult<c_int> {
        check_int(unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })
    }

    fn mkdirat(&self, dir: c_int, name: &CStr, mode: u32) -> SysResult<()> {
        // The mode as given (1777 for /dev/shm), not as Node's umask would cut it.
        let umask = unsafe { libc::umask(0) };
        let made = check_int(unsafe { libc::mkdirat(dir, name.as_ptr(), mode) });
        unsafe { libc::umask(umask) };
        made.map(drop)
    }

    fn create_file_at(&self, dir: c_int, name: &CStr) -> SysResult<()> {
        let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let fd = check_int(unsafe { libc::openat(dir, name.as_ptr(), flags, 0o644) })?;
        unsafe { libc::close(fd) };
        Ok(())
    }

    fn mknodat(&self, dir: c_int, name: &CStr, mode: u32, dev: u64) -> SysResult<()> {
        // The mode as given: Node's umask (022) would make /dev/null unwritable for non-root.
        let umask = unsafe { libc::umask(0) };
        let made = check_int(unsafe { libc::mknodat(dir, name.as_ptr(), mode, dev) });
        unsafe { libc::umask(umask) };
        made.map(drop)
    }

    fn symlinkat(&self, target: &CStr, dir: c_int, name: &CStr) -> SysResult<()> {
        check_int(unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) }).map(drop)
    }

    fn chown_at(&self, dir: c_int, name: &CStr, uid: u32, gid: u32) -> SysResult<()> {
        check_int(unsafe {
            libc::fchownat(dir, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW)
        })
        .map(drop)
    }

    fn close(&self, fd: c_int) {
        unsafe { libc::close(fd) };
    }

    fn pivot_into(&self, root: c_int) -> SysResult<()> {
        // pivot_root(".", ".") stacks the old root under the new one; detach it at once.
        check_int(unsafe { libc::fchdir(root) })?;
        let dot = c".";
        check(unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) })?;
        check_int(unsafe { libc::umount2(dot.as_ptr(), libc::MNT_DETACH) })?;
        check_int(unsafe { libc::chdir(c"/".as_ptr()) }).map(drop)
    }

    fn chroot_into(&self, root: c_int) -> SysResult<()> {
        check_int(unsafe { libc::fchdir(root) })?;
        check_int(unsafe { libc::chroot(c".".as_ptr()) })?;
        check_int(unsafe { libc::chdir(c"/".as_ptr()) }).map(drop)
    }

    fn fchdir(&self, fd: c_int) -> SysResult<()> {
        check_int(unsafe { libc::fchdir(fd) }).map(drop)
    }

    fn chdir(&self, path: &CStr) -> SysResult<()> {
        check_int(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
    }

    fn verify_cwd(&self) -> SysResult<()> {
        // The kernel prefixes a working directory outside our root with "(unreachable)": one
        // reached through a leaked fd (CVE-2024-21626 class) is refused, whatever the path said.
        let mut buf = [0u8; libc::PATH_MAX as usize];
        match unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) } {
            n if n > 0 && buf[0] != b'/' => Err(Errno::ENOENT),
            n if n < 0 && Errno::last() != Errno::ERANGE => Err(Errno::last()),
            _ => Ok(()),
        }
    }

    fn sethostname(&self, name: &[u8]) -> SysResult<()> {
        check_int(unsafe { libc::sethostname(name.as_ptr() as *const c_char, name.len()) })
            .map(drop)
    }

    fn personality(&self, persona: u64) -> SysResult<()> {
        check_int(unsafe { libc::personality(persona as libc::c_ulong) }).map(drop)
    }

    fn loopback_up(&self, ifreq: &libc::ifreq) -> SysResult<()> {
        let sock = check_int(unsafe {
            libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
        })?;
        let ret = check_int(unsafe { libc::ioctl(sock, libc::SIOCSIFFLAGS, ifreq) });
        unsafe { libc::close(sock) };
        ret.map(drop)
    }

    fn set_credentials(
        &self,
        uid: u32,
        gid: u32,
        groups: &[libc::gid_t],
        set_groups: bool,
    ) -> SysResult<()> {
        // Raw syscalls: glibc's wrappers broadcast to threads that do not exist here and hang.
        if set_groups {
            check(unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) })?;
        }
        check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })?;
        check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
    }

    fn write_file(&self, path: &CStr, data: &[u8]) -> SysResult<()> {
        let fd = check_int(unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) })?;
        let written = check(unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) } as c_long);
        unsafe { libc::close(fd) };
        written.map(drop)
    }

    fn read_byte(&self, fd: c_int) -> SysResult<()> {
        let mut byte = 0u8;
        loop {
            match unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) } {
                1 => return Ok(()),
                0 => return Err(Errno::EPIPE),
                _ if Errno::last() == Errno::EINTR => continue,
                _ => return Err(Errno::last()),
            }
        }
    }

    fn close_fds_except(&self, first: c_uint, keep: [c_int; 4]) -> SysResult<()> {
        let close = |from: c_uint, to: c_uint| {
            check(unsafe { libc::syscall(libc::SYS_close_range, from, to, 0) }).map(drop)
        };
        let mut kept = keep.map(|k| c_uint::try_from(k).ok().filter(|k| *k >= first));
        // Four entries, ordered by a sorting network: the child may not call slice::sort (it
        // can allocate). None sorts first and is skipped.
        for (a, b) in [(0, 1), (2, 3), (0, 2), (1, 3), (1, 2)] {
            if kept[a] > kept[b] {
                kept.swap(a, b);
            }
        }
        let mut from = first;
        for k in kept.into_iter().flatten() {
            if k > from {
                close(from, k - 1)?;
            }
            from = from.max(k + 1);
        }
        close(from, c_uint::MAX)
    }

    fn is_readable(&self, fd: c_int) -> SysResult<bool> {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        check_int(unsafe { libc::poll(&mut pfd, 1, 0) }).map(|n| n > 0)
    }

    fn clone_fd(&self, fd: c_int) -> SysResult<c_int> {
        let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as c_uint | libc::AT_EMPTY_PATH as c_uint;
        check(unsafe { libc::syscall(libc::SYS_open_tree, fd, c"".as_ptr(), flags) })
            .map(|fd| fd as c_int)
    }

    fn drop_bounding_cap(&self, cap: u32) -> SysResult<()> {
        check_int(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as c_ulong, 0, 0, 0) }).map(drop)
    }

    fn set_capabilities(&self, effective: u64, permitted: u64, inheritable: u64) -> SysResult<()> {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: c_int,
        }
        #[repr(C)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        // _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set.
        let header = Header {
            version: 0x2008_0522,
            pid: 0,
        };
        let split = |m: u64, i: usize| (m >> (32 * i)) as u32;
        let data = [0, 1].map(|i| Data {
            effective: split(effective, i),
            permitted: split(permitted, i),
            inheritable: split(inheritable, i),
        });
        check(unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) }).map(drop)
    }

    fn clear_ambient_caps(&self) -> SysResult<()> {
        check_int(unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as c_ulong,
                0,
                0,
                0,
            )
        })
        .map(drop)
    }

    fn raise_ambient_cap(&self, cap: u32) -> SysResult<()> {
        check_int(unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as c_ulong,
                cap as c_ulong,
                0,
                0,
            )
        })
        .map(drop)
    }

    fn keep_caps(&self) -> SysResult<()> {
        check_int(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1 as c_ulong, 0, 0, 0) }).map(drop)
    }

    fn write_proc(&self, path: &CStr, text: &[u8]) -> SysResult<()> {
        let fd = check_int(unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) })?;
        let n = unsafe { libc::write(fd, text.as_ptr().cast(), text.len()) };
        let result = if n < 0 { Err(Errno::last()) } else { Ok(()) };
        unsafe { libc::close(fd) };
        result
    }

    fn set_no_new_privs(&self) -> SysResult<()> {
        check_int(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as c_ulong, 0, 0, 0) })
            .map(drop)
    }

    fn load_seccomp(&self, program: &[libc::sock_filter]) -> SysResult<()> {
        let prog = libc::sock_fprog {
            len: program.len() as u16,
            filter: program.as_ptr() as *mut libc::sock_filter,
        };
        check_int(unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as c_ulong,
                &prog as *const _ as c_ulong,
                0,
                0,
            )
        })
        .map(drop)
    }

    fn execve(&self, path: &CStr, argv: &[*const c_char], envp: &[*const c_char]) -> Errno {
        unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        Errno::last()
    }

    fn execveat_fd(&self, fd: c_int, argv: &[*const c_char], envp: &[*const c_char]) -> Errno {
        let flags = libc::AT_EMPTY_PATH;
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                fd,
                c"".as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                flags,
            )
        };
        Errno::last()
    }
}
