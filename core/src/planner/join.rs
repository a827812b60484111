//! Exec into a running container (docker exec). A helper, still in the host's PID namespace
//! and sharing Node's memory, makes itself non-dumpable first (a container process must never
//! ptrace it or read its fds through /proc: the CVE-2016-9962 class), joins the container's
//! cgroup and every namespace at once through a pidfd of its PID 1 (setns), takes its stdio
//! (`ignore`: the container's own /dev/null), closes every other fd it inherited from Node,
//! and only then clones the sibling that appears inside the container's PID namespace. That
//! sibling runs the same privilege tail as a PID 1 and execs: what the container can see is
//! the program it named, never Node's binary (the CVE-2019-5736 class), and its working
//! directory is checked to be inside the root (the CVE-2024-21626 class).

use super::host::HostFacts;
use super::privileges::{drop_privileges, Privileges};
use super::{exec_plan, Prepared};
use crate::plan::Op;
use crate::spec::{ContainerSpec, Handles, SpecError};

pub fn prepare(
    spec: &ContainerSpec,
    handles: &Handles,
    host: &HostFacts,
) -> Result<Prepared, SpecError> {
    if spec.argv.is_empty() {
        return Err(SpecError::EmptyArgv);
    }
    let pidfd = handles.join.ok_or(SpecError::NotRunning)?;
    let ns = spec.namespaces;
    // First: nothing the container can reach may see this helper dumpable.
    let mut plan = vec![Op::ResetSignals { blocked: false }, Op::NotDumpable];
    super::steps::stdio(spec, handles, &mut plan);
    for fd in &handles.cgroup_procs {
        plan.push(Op::JoinCgroup(*fd));
    }
    let mut nstype = 0;
    for (on, flag) in [
        (ns.user, libc::CLONE_NEWUSER),
        (ns.mount, libc::CLONE_NEWNS),
        (ns.pid, libc::CLONE_NEWPID),
        (ns.uts, libc::CLONE_NEWUTS),
        (ns.ipc, libc::CLONE_NEWIPC),
        (ns.net, libc::CLONE_NEWNET),
        (ns.cgroup, libc::CLONE_NEWCGROUP),
    ] {
        if on {
            nstype |= flag;
        }
    }
    plan.push(Op::JoinNamespace { fd: pidfd, nstype });
    if !ns.mount && spec.rootfs.is_some() {
        // No mount namespace to join: the container's root is a detached tree, entered by chroot.
        let root = handles.rootfs.ok_or(SpecError::NotRunning)?;
        plan.push(Op::ChrootInto { fd: Some(root) });
    }
    let null = spec.null_stdio();
    if handles.console.is_none() && null.contains(&true) {
        // setns left the working directory at the container's root: its /dev is ours to open.
        plan.push(Op::OpenDevOfCwd { slot: 1 });
        plan.push(Op::NullStdio { dir: 1, fds: null });
    }
    // Before the sibling exists in the container: no fd of Node's goes with it.
    plan.push(Op::CloseFds {
        keep: [
            handles.parent_pidfd.unwrap_or(-1),
            handles.console.unwrap_or(-1),
            // Held (lonely-runtime's exec with a terminal): lonely-init and the pipe it waits on.
            handles.hold.unwrap_or(-1),
            handles.init.unwrap_or(-1),
        ],
    });
    plan.push(Op::ForkIntoPidns);
    plan.push(Op::NewSession);
    // Detached (lonely-runtime's exec): it outlives the process that started it.
    if !spec.detached {
        plan.push(Op::ParentDeathSignal(libc::SIGKILL));
    }
    super::steps::console(spec, handles, &mut plan);
    let privileges = Privileges {
        make_cwd: false, // docker exec -w of a missing directory fails
        ..Privileges::of(spec, handles)
    };
    drop_privileges(&privileges, host, &mut plan)?;
    Ok(Prepared {
        clone_flags: libc::CLONE_VM | libc::CLONE_VFORK,
        plan,
        // Held: lonely-init waits on the pipe, then execs the command in its place.
        exec: exec_plan(
            &spec.argv,
            &spec.env,
            handles.hold.and(handles.init),
            handles.hold.map(|fd| (fd, true)),
        )?,
        slot_count: 2,
    })
}
