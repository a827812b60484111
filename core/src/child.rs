//! The code between clone and exec: the one place where the rule of the child holds.
//!
//! The child shares the Node process's memory (CLONE_VM) while other Node threads run:
//! no allocation, no locks, no panics, no formatting, no Rust std I/O. It only reads
//! the plan the parent built, writes fds into the parent's slot array, and on failure
//! writes one `Report` and `_exit`s. Successful exec leaves the report untouched.

use std::ffi::CString;
use std::os::raw::{c_char, c_int};

use nix::errno::Errno;

use crate::plan::{InRoot, Op, ROOT, STAGE};
use crate::sys::{Sys, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};

/// The failure record the parent reads once clone returns (vfork: the child has
/// exec'd or exited by then). `step == NO_FAILURE` means exec succeeded.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    pub step: u32,
    pub errno: i32,
}

pub const NO_FAILURE: u32 = u32::MAX;

/// What exec needs, with argv/envp pointer arrays built before clone.
pub struct ExecPlan {
    /// Paths to try in order (PATH search is done here, inside the new root).
    pub candidates: Vec<CString>,
    /// Or a program's fd, exec'd as is (init.rs: the sealed memfd of lonely-init); -1: none.
    pub fd: c_int,
    pub argv: Vec<*const c_char>,
    pub envp: Vec<*const c_char>,
    // Own the strings the pointer arrays point into.
    pub _argv: Vec<CString>,
    pub _envp: Vec<CString>,
}

/// Everything the child touches, prepared by the parent.
pub struct ChildContext<'a> {
    pub plan: &'a [Op],
    pub exec: &'a ExecPlan,
    pub slots: *mut c_int,
    pub slot_count: usize,
    pub report: *mut Report,
    /// Fork-style clone: the report goes down this pipe (the parent does not share our memory).
    pub report_fd: c_int,
    /// With Op::ForkIntoPidns: the stack of the process that runs the rest, and where its pid goes.
    pub inner_stack: *mut u8,
    pub inner_stack_len: usize,
    pub inner_pid: *mut c_int,
}

/// The child's entry point. Never returns: exec or `_exit`.
pub fn child_main<S: Sys>(sys: &S, ctx: &ChildContext) -> ! {
    let Some(fork_at) = ctx.plan.iter().position(|op| *op == Op::ForkIntoPidns) else {
        finish(sys, ctx, 0)
    };
    // SAFETY: the parent sized `slots` for the plan and is suspended until we exec or exit.
    let slots = unsafe { std::slice::from_raw_parts_mut(ctx.slots, ctx.slot_count) };
    if let Err((step, errno)) = setup_from(sys, &ctx.plan[..fork_at], 0, slots) {
        report_and_exit(ctx, step as u32, errno, 125)
    }
    // SAFETY: the parent allocated it for this; nothing else uses it while we are alive.
    let stack = unsafe { std::slice::from_raw_parts_mut(ctx.inner_stack, ctx.inner_stack_len) };
    // The rest runs in the sibling, which reports its own failure; we only pass on its pid.
    let inner = || -> c_int { finish(sys, ctx, fork_at + 1) };
    match sys.clone_sibling(stack, &inner) {
        Ok(pid) => unsafe {
            std::ptr::write_volatile(ctx.inner_pid, pid);
            libc::_exit(0)
        },
        Err(errno) => report_and_exit(ctx, fork_at as u32, errno, 125),
    }
}

/// The steps from `first` on, then exec; on failure the record, then `_exit`.
fn finish<S: Sys>(sys: &S, ctx: &ChildContext, first: usize) -> ! {
    // SAFETY: as in child_main.
    let slots = unsafe { std::slice::from_raw_parts_mut(ctx.slots, ctx.slot_count) };
    let (step, errno, code) = match setup_from(sys, ctx.plan, first, slots) {
        Err((step, errno)) => (step as u32, errno, 125),
        Ok(()) => (ctx.plan.len() as u32, exec(sys, ctx.exec), 127),
    };
    report_and_exit(ctx, step, errno, code)
}

fn report_and_exit(ctx: &ChildContext, step: u32, errno: Errno, code: c_int) -> ! {
    let report = Report {
        step,
        errno: errno as i32,
    };
    unsafe {
        if ctx.report_fd >= 0 {
            libc::write(
                ctx.report_fd,
                (&report as *const Report).cast(),
                std::mem::size_of::<Report>(),
            );
        } else {
            std::ptr::write_volatile(ctx.report, report);
        }
        libc::_exit(code)
    }
}

/// Walks the plan; on failure returns the index of the failing step and its errno.
pub fn setup<S: Sys>(sys: &S, plan: &[Op], slots: &mut [c_int]) -> Result<(), (usize, Errno)> {
    setup_from(sys, plan, 0, slots)
}

/// The steps of `plan` from index `first`; a failing step's index counts from the plan's start.
fn setup_from<S: Sys>(
    sys: &S,
    plan: &[Op],
    first: usize,
    slots: &mut [c_int],
) -> Result<(), (usize, Errno)> {
    for (i, op) in plan.iter().enumerate().skip(first) {
        apply(sys, op, slots).map_err(|e| (i, e))?;
    }
    Ok(())
}

fn apply<S: Sys>(sys: &S, op: &Op, slots: &mut [c_int]) -> Result<(), Errno> {
    match op {
        Op::ResetSignals { blocked } => {
            sys.reset_signals(*blocked);
            Ok(())
        }
        Op::NewSession => sys.setsid(),
        Op::NotDumpable => sys.set_not_dumpable(),
        Op::OpenDevOfCwd { slot } => {
            slots[*slot] =
                sys.open_beneath(libc::AT_FDCWD, c"dev", libc::O_PATH | libc::O_DIRECTORY)?;
            Ok(())
        }
        // child_main splits the plan there: a walk never reaches it.
        Op::ForkIntoPidns => Err(Errno::EINVAL),
        Op::ParentDeathSignal(sig) => sys.set_parent_death_signal(*sig),
        Op::Dup2 { from, to } => sys.dup2(*from, *to),
        Op::Console { ptmx, sock, size } => {
            let (master, slave) = sys.open_pty(ptmx)?;
            let wired = (|| {
                if let Some((rows, cols)) = size {
                    sys.set_window_size(master, *rows, *cols)?;
                }
                for to in 0..3 {
                    sys.dup2(slave, to)?;
                }
                sys.set_controlling_tty(0)?;
                sys.send_fd(*sock, master)
            })();
            sys.close(master);
            sys.close(slave);
            wired
        }
        Op::Unshare(flags) => sys.unshare(*flags),
        Op::JoinNamespace { fd, nstype } => sys.setns(*fd, *nstype),
        Op::JoinCgroup(fd) => sys.join_cgroup(*fd),
        Op::Rlimit {
            resource,
            soft,
            hard,
        } => sys.set_rlimit(*resource, *soft, *hard),
        Op::MakeMountsPrivate => sys.make_mounts_private(),
        Op::CloneTree {
            src,
            slot,
            attrs,
            propagation,
            expect,
        } => {
            let fd = match expect {
                None => sys.open_tree(src)?,
                Some(id) => {
                    let found = sys.open_no_symlinks(src)?;
                    // The file the parent checked, or none: a swapped source is a setup error.
                    let cloned = match sys.file_id(found) {
                        Ok(now) if now == *id => sys.open_tree_fd(found),
                        Ok(_) => Err(Errno::ESTALE),
                        Err(e) => Err(e),
                    };
                    sys.close(found);
                    cloned?
                }
            };
            slots[*slot] = fd;
            if *attrs != 0 || *propagation != 0 {
                sys.mount_setattr(fd, *attrs, *propagation, true)?;
            }
            Ok(())
        }
        Op::SetPropagation {
            slot, propagation, ..
        } => sys.mount_setattr(slots[*slot], 0, *propagation, true),
        Op::RootPropagation(propagation) => {
            let root = sys.open_dir(c"/")?;
            let set = sys.mount_setattr(root, 0, *propagation, false);
            sys.close(root);
            set
        }
        Op::EnterRootfs { fd, join: None, .. } => {
            sys.fchdir(*fd)?;
            sys.unshare(libc::CLONE_NEWNS)
        }
        Op::EnterRootfs {
            fd,
            join: Some(ns),
            shown,
        } => {
            sys.setns(*ns, libc::CLONE_NEWNS)?;
            // The parent's fd is a mount of its namespace: the joined one's copy is found by path.
            let found = sys.open_no_symlinks(shown)?;
            let entered = match (sys.file_id(found), sys.file_id(*fd)) {
                (Ok(there), Ok(checked)) if there == checked => sys.fchdir(found),
                (Ok(_), Ok(_)) => Err(Errno::ESTALE),
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
            sys.close(found);
            entered
        }
        Op::CloneRootfs {
            slot,
            attrs,
            propagation,
            ..
        } => {
            let fd = sys.open_tree(c".")?;
            slots[*slot] = fd;
            sys.mount_setattr(fd, *attrs, *propagation, true)
        }
        Op::NewFs {
            fstype,
            params,
            attrs,
            slot,
        } => {
            slots[*slot] = sys.fs_mount(fstype, params, *attrs)?;
            Ok(())
        }
        Op::EnterRootfsShared { fd, .. } => sys.fchdir(*fd),
        Op::KeepRootDetached { slot } => {
            slots[ROOT] = slots[*slot];
            Ok(())
        }
        Op::ChrootInto { fd } => {
            let root = fd.unwrap_or(slots[ROOT]);
            let entered = sys.chroot_into(root);
            if fd.is_none() {
                sys.close(root);
            }
            entered
        }
        Op::AttachRoot { slot } => {
            sys.move_mount(slots[*slot], libc::AT_FDCWD, STAGE)?;
            sys.close(slots[*slot]);
            slots[ROOT] = sys.open_dir(STAGE)?;
            Ok(())
        }
        Op::EnsureDir { components } => {
            let root = slots[ROOT];
            if let Some(last) = components.last() {
                match kind(sys, slots, last) {
                    Some(true) => return Ok(()),
                    // A directory bound onto a file: mount(2)'s answer.
                    Some(false) => return Err(Errno::ENOTDIR),
                    None => {}
                }
            }
            for dir in components {
                let parent =
                    sys.open_in_root(root, &dir.parent, libc::O_PATH | libc::O_DIRECTORY)?;
                let made = sys.mkdirat(parent, &dir.name, 0o755);
                sys.close(parent);
                match made {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
        Op::EnsureFile { target } => {
            let root = slots[ROOT];
            match kind(sys, slots, target) {
                Some(false) => return Ok(()),
                Some(true) => return Err(Errno::ENOTDIR),
                None => {}
            }
            let parent =
                sys.open_in_root(root, &target.parent, libc::O_PATH | libc::O_DIRECTORY)?;
            let made = sys.create_file_at(parent, &target.name);
            sys.close(parent);
            made
        }
        Op::Reclone { slot } => {
            match sys.open_tree_fd(slots[*slot]) {
                Ok(fresh) => {
                    sys.close(slots[*slot]);
                    slots[*slot] = fresh;
                }
                // An older kernel cannot clone a detached tree: the early clone is attached.
                Err(Errno::EINVAL) => {}
                Err(e) => return Err(e),
            }
            Ok(())
        }
        Op::Attach { slot, target, keep } => {
            let tree = slots[*slot];
            let moved = attach(sys, slots, tree, target);
            if !keep {
                sys.close(tree);
            }
            moved
        }
        Op::NullStdio { dir, fds } => {
            let null = sys.open_beneath(slots[*dir], c"null", libc::O_RDWR | libc::O_CLOEXEC)?;
            let wired = match sys.is_null_device(null) {
                Ok(true) => (0..3)
                    .filter(|to| fds[*to as usize])
                    .try_for_each(|to| sys.dup2(null, to)),
                other => Err(other.err().unwrap_or(Errno::EPERM)),
            };
            sys.close(null);
            wired
        }
        Op::OpenNull { dir, slot } => {
            let null = sys.open_beneath(slots[*dir], c"null", libc::O_PATH)?;
            match sys.is_null_device(null) {
                Ok(true) => {
                    slots[*slot] = null;
                    Ok(())
                }
                other => {
                    sys.close(null);
                    Err(other.err().unwrap_or(Errno::EPERM))
                }
            }
        }
        Op::Symlink {
            link_target,
            at,
            dir,
        } => match sys.symlinkat(link_target, slots[*dir], &at.name) {
            Err(Errno::EEXIST) => Ok(()),
            other => other,
        },
        Op::Device {
            at,
            dir,
            major,
            minor,
            mode,
            owner,
        } => {
            // `rel` below /dev's own fd (net/tun): a tmpfs of ours nobody else has written.
            sys.mknodat(slots[*dir], &at.rel, *mode, libc::makedev(*major, *minor))?;
            match owner {
                Some((uid, gid)) => sys.chown_at(slots[*dir], &at.rel, *uid, *gid),
                None => Ok(()),
            }
        }
        Op::Readonly { dir, .. } => sys.set_mount_attrs(slots[*dir], MOUNT_ATTR_RDONLY, false),
        Op::BindDevice { at, dir, slot } => {
            // Our own fresh /dev tmpfs, through its fd: create and bind at once.
            let made = sys
                .create_file_at(slots[*dir], &at.name)
                .and_then(|()| attach(sys, slots, slots[*slot], at));
            sys.close(slots[*slot]);
            made
        }
        Op::MaskPath {
            target,
            dir,
            null,
            empty,
        } => {
            // Known from the kernel (dir: Some) it must be there; a path of the rootfs may not be.
            let Some(dir) = dir.or_else(|| kind(sys, slots, target)) else {
                return Ok(());
            };
            let at = open_target(sys, slots, target, libc::O_PATH)?;
            if !dir {
                cover(sys, sys.clone_fd(slots[*null]), at)
            } else if slots[*empty] >= 0 {
                // A copy of the first one, now attached in this namespace (any kernel clones that).
                cover(sys, sys.clone_fd(slots[*empty]), at)
            } else {
                let tmpfs = sys.fs_mount(
                    c"tmpfs",
                    &[],
                    MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                );
                let moved = tmpfs.and_then(|fd| {
                    slots[*empty] = fd; // kept open for the copies; close_range ends it
                    sys.move_mount(fd, at, c"")
                });
                sys.close(at);
                moved
            }
        }
        // `rel` below the fd (cpu/0 for /dev/cpu/0/cpuid), as Device: a tmpfs of ours.
        Op::Mkdir { at, dir, mode } => sys.mkdirat(slots[*dir], &at.rel, *mode),
        Op::Rebind {
            target,
            attrs,
            must_exist,
        } => {
            // Source and target are one fd resolved inside the root: a symlink (or one swapped
            // in by a racing writer) cannot make the copy come from the host.
            let at = match open_target(sys, slots, target, libc::O_PATH) {
                Ok(fd) => fd,
                // Fail closed: only a path of the rootfs may be absent, never the kernel's own.
                Err(Errno::ENOENT | Errno::ENOTDIR) if !must_exist => return Ok(()),
                Err(e) => return Err(e),
            };
            let copy =
                sys.clone_fd(at)
                    .and_then(|copy| match sys.set_mount_attrs(copy, *attrs, true) {
                        Ok(()) => Ok(copy),
                        Err(e) => {
                            sys.close(copy);
                            Err(e)
                        }
                    });
            cover(sys, copy, at)
        }
        Op::BoundingSet { keep, last } => {
            for cap in 0..=*last {
                if keep & (1u64 << cap) == 0 {
                    sys.drop_bounding_cap(cap)?;
                }
            }
            Ok(())
        }
        Op::Capabilities {
            effective,
            permitted,
            inheritable,
            ambient,
        } => {
            sys.set_capabilities(*effective, *permitted, *inheritable)?;
            sys.clear_ambient_caps()?;
            for cap in 0..64 {
                if ambient & (1u64 << cap) != 0 {
                    sys.raise_ambient_cap(cap)?;
                }
            }
            Ok(())
        }
        Op::KeepCaps => sys.keep_caps(),
        Op::WriteProc { path, text } => sys.write_proc(path, text),
        Op::NoNewPrivs => sys.set_no_new_privs(),
        Op::Personality(persona) => sys.personality(*persona),
        Op::Seccomp(program) => sys.load_seccomp(&program.0),
        Op::RootAttrs(attrs) => sys.set_mount_attrs(slots[ROOT], *attrs, false),
        Op::PivotRoot => {
            let pivoted = sys.pivot_into(slots[ROOT]);
            sys.close(slots[ROOT]);
            pivoted
        }
        Op::Hostname(name) => sys.sethostname(name),
        Op::LoopbackUp => {
            // SAFETY: ifreq is plain old data; only the name and IFF_UP are set.
            let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
            req.ifr_name[0] = b'l' as c_char;
            req.ifr_name[1] = b'o' as c_char;
            req.ifr_ifru.ifru_flags =
                (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as i16;
            sys.loopback_up(&req)
        }
        Op::Credentials {
            uid,
            gid,
            groups,
            set_groups,
        } => sys.set_credentials(*uid, *gid, groups, *set_groups),
        Op::WaitForMaps(fd) => {
            sys.read_byte(*fd)?;
            // The caller's own id may be outside the ranges: become the namespace's root
            // explicitly, or every file made during setup would be unmapped (EOVERFLOW).
            sys.set_credentials(0, 0, &[], true)
        }
        Op::IdMaps { uid_map, gid_map } => {
            // Unprivileged, a gid map needs setgroups denied first (user_namespaces(7)).
            match sys.write_file(c"/proc/self/setgroups", b"deny") {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
            sys.write_file(c"/proc/self/uid_map", uid_map)?;
            sys.write_file(c"/proc/self/gid_map", gid_map)
        }
        Op::Chdir(path) => sys.chdir(path),
        Op::MakeDirs { dirs, uid, gid } => {
            for dir in dirs {
                match sys.mkdirat(libc::AT_FDCWD, dir, 0o755) {
                    Ok(()) => sys.chown_at(libc::AT_FDCWD, dir, *uid, *gid)?,
                    Err(Errno::EEXIST) => {}
                    Err(_) => break,
                }
            }
            Ok(())
        }
        Op::VerifyCwd => sys.verify_cwd(),
        Op::CloseFds { keep } => sys.close_fds_except(3, *keep),
        Op::ParentAlive(pidfd) => {
            let exited = sys.is_readable(*pidfd);
            sys.close(*pidfd);
            match exited {
                Ok(true) => Err(Errno::ESRCH),
                Ok(false) => Ok(()),
                Err(e) => Err(e),
            }
        }
    }
}

/// Moves the detached mount `tree` onto the opened target `at`; closes both.
fn cover<S: Sys>(sys: &S, tree: Result<c_int, Errno>, at: c_int) -> Result<(), Errno> {
    let moved = tree.and_then(|tree| {
        let moved = sys.move_mount(tree, at, c"");
        sys.close(tree);
        moved
    });
    sys.close(at);
    moved
}

/// Opens `target` as the plan says: beneath a filesystem the plan made, with no symlink, or
/// inside the root (RESOLVE_IN_ROOT), where symlinks stay inside it.
fn open_target<S: Sys>(
    sys: &S,
    slots: &[c_int],
    target: &InRoot,
    flags: c_int,
) -> Result<c_int, Errno> {
    if target.strict {
        sys.open_beneath(slots[target.base], &target.rel, flags)
    } else {
        sys.open_in_root(slots[ROOT], &target.path, flags)
    }
}

/// Moves the detached mount `tree` onto `target` (the caller owns `tree`).
fn attach<S: Sys>(sys: &S, slots: &[c_int], tree: c_int, target: &InRoot) -> Result<(), Errno> {
    let at = open_target(sys, slots, target, libc::O_PATH)?;
    let moved = sys.move_mount(tree, at, c"");
    sys.close(at);
    moved
}

/// Whether `target` exists: Some(true) a directory, Some(false) something else.
fn kind<S: Sys>(sys: &S, slots: &[c_int], target: &InRoot) -> Option<bool> {
    let fd = open_target(sys, slots, target, libc::O_PATH).ok()?;
    let dir = sys.is_dir(fd);
    sys.close(fd);
    dir.ok()
}

/// execvp inside the new root: the first candidate that is not ENOENT wins; like
/// execvp, EACCES from any candidate is reported over a later ENOENT.
pub fn exec<S: Sys>(sys: &S, plan: &ExecPlan) -> Errno {
    if plan.fd >= 0 {
        return sys.execveat_fd(plan.fd, &plan.argv, &plan.envp);
    }
    let mut reported = Errno::ENOENT;
    for path in &plan.candidates {
        match sys.execve(path, &plan.argv, &plan.envp) {
            Errno::ENOENT | Errno::ENOTDIR => {}
            Errno::EACCES => reported = Errno::EACCES,
            other => return other,
        }
    }
    reported
}
