//! The planner: a ContainerSpec and the fds made for it become the ordered list of setup
//! steps the child walks (plan.rs), every path a C string and every decision taken before
//! clone. One module per part of the container; `prepare` fixes their order.

mod binds;
mod dev;
pub mod exec;
pub mod host;
mod join;
mod kernel;
pub mod privileges;
mod root;
mod steps;
#[cfg(test)]
mod tests;

pub use exec::exec_plan;
pub use host::HostFacts;
pub use privileges::{drop_privileges, Privileges};

use crate::child::ExecPlan;
use crate::plan::Op;
use crate::spec::{ContainerSpec, Handles, SpecError};

/// Everything clone and the child need, computed before clone.
pub struct Prepared {
    pub clone_flags: libc::c_int,
    pub plan: Vec<Op>,
    pub exec: ExecPlan,
    pub slot_count: usize,
}

/// The plan for `spec` around the fds in `handles`, with what `host` says of this machine.
pub fn prepare(
    spec: &ContainerSpec,
    handles: &Handles,
    host: &HostFacts,
) -> Result<Prepared, SpecError> {
    if spec.join.is_some() {
        return join::prepare(spec, handles, host);
    }
    if spec.argv.is_empty() && !spec.init {
        return Err(SpecError::EmptyArgv);
    }
    let ns = spec.namespaces;
    for node in &spec.devices {
        let rel = crate::spec::container_path("devices", &node.path)?;
        let bad = |why: &str| Err(SpecError::Device(format!("`{}`: {why}", node.path)));
        if !rel.starts_with("dev/") {
            return bad("must be /dev/<name> or /dev/<directory>/.../<name>");
        }
        if !["c", "u", "b", "p"].contains(&node.kind.as_str()) {
            return bad("type must be c, u, b or p");
        }
        if ns.user || !spec.own_root() {
            return bad(
                "device nodes need lonely's own /dev, without a user namespace (no mknod there)",
            );
        }
    }
    // Without a mount namespace only a rootfs can be a root: a detached tree, chrooted into.
    if !ns.mount && (spec.image.is_some() || (spec.rootfs.is_none() && !spec.mounts.is_empty())) {
        return Err(SpecError::NeedsMountNamespace);
    }
    if !ns.mount && spec.rootfs.is_some() && ns.user {
        return Err(SpecError::SharedMountNamespaceUser);
    }
    // The rootfs is found again by path in the joined namespace; a new user namespace could
    // not enter one its parent's user namespace owns.
    if spec.join_paths.mnt.is_some() && (!ns.mount || spec.rootfs.is_none() || ns.user) {
        return Err(SpecError::JoinedMountNamespace);
    }
    let mut plan = vec![
        Op::ResetSignals {
            blocked: spec.init || spec.held,
        },
        Op::NewSession,
    ];
    if !spec.detached {
        plan.push(Op::ParentDeathSignal(libc::SIGKILL));
    }
    if ns.user {
        // First: every later step's privileges are those of root in this namespace.
        match handles.maps_sync {
            Some(fd) => plan.push(Op::WaitForMaps(fd)),
            None => {
                let (uid, gid) = host.ids;
                plan.push(Op::IdMaps {
                    uid_map: format!("0 {uid} 1").into_bytes(),
                    gid_map: format!("0 {gid} 1").into_bytes(),
                });
            }
        }
    }
    steps::stdio(spec, handles, &mut plan);
    if let (true, Some(fd)) = (ns.net, handles.netns) {
        // Before the mounts: sysfs shows the network namespace of the task that mounts it.
        plan.push(Op::JoinNamespace {
            fd,
            nstype: libc::CLONE_NEWNET,
        });
    }
    if let (true, Some(fd)) = (ns.ipc, handles.ipcns) {
        plan.push(Op::JoinNamespace {
            fd,
            nstype: libc::CLONE_NEWIPC,
        });
    }
    if let (true, Some(fd)) = (ns.uts, handles.utsns) {
        plan.push(Op::JoinNamespace {
            fd,
            nstype: libc::CLONE_NEWUTS,
        });
    }
    for fd in &handles.cgroup_procs {
        plan.push(Op::JoinCgroup(*fd));
    }
    if ns.cgroup {
        // After the cgroup join, so the namespace's root is the container's own cgroup.
        plan.push(Op::Unshare(libc::CLONE_NEWCGROUP));
    }
    // In the container's namespaces, before pivot_root: the host's /proc/sys paths then
    // reach the new network and IPC namespaces' values, and /proc/sys is not read-only yet.
    for (key, value) in &spec.sysctl {
        plan.push(sysctl(key, value)?);
    }
    let mut slot_count = 1;
    if ns.mount || spec.rootfs.is_some() {
        slot_count = filesystem(
            spec,
            (
                handles.rootfs.unwrap_or(-1),
                handles.mntns,
                &handles.cgroup_fs,
            ),
            host,
            &mut plan,
        )?;
    }
    // After pivot_root: /dev/pts is the container's own devpts instance.
    steps::console(spec, handles, &mut plan);
    // A joined UTS namespace keeps the name its owner gave it.
    if let (true, None, Some(name)) = (ns.uts, handles.utsns, &spec.hostname) {
        plan.push(Op::Hostname(name.as_bytes().to_vec()));
    }
    let clone_net = ns.net && handles.netns.is_none();
    if clone_net {
        plan.push(Op::LoopbackUp);
    }
    // Before the seccomp filter, which may allow personality(2) for a few domains only.
    if let Some(persona) = spec.personality {
        plan.push(Op::Personality(persona));
    }
    drop_privileges(&Privileges::of(spec, handles), host, &mut plan)?;

    let mut flags = libc::CLONE_VM | libc::CLONE_VFORK;
    for (on, flag) in [
        (ns.pid && spec.join_paths.pid.is_none(), libc::CLONE_NEWPID),
        // With a rootfs the child makes it itself, once it has entered the rootfs (rootfs.rs).
        (ns.mount && spec.rootfs.is_none(), libc::CLONE_NEWNS),
        (ns.uts && handles.utsns.is_none(), libc::CLONE_NEWUTS),
        (ns.ipc && handles.ipcns.is_none(), libc::CLONE_NEWIPC),
        (clone_net, libc::CLONE_NEWNET),
        (ns.user, libc::CLONE_NEWUSER),
    ] {
        if on {
            flags |= flag;
        }
    }
    Ok(Prepared {
        clone_flags: flags,
        plan,
        exec: exec_plan(
            &spec.argv,
            &spec.env,
            handles.init,
            handles.hold.map(|fd| (fd, !spec.init)),
        )?,
        slot_count,
    })
}

/// A namespaced sysctl as the write of its /proc/sys file; any other key is refused.
fn sysctl(key: &str, value: &str) -> Result<Op, SpecError> {
    let namespaced = key.starts_with("net.")
        || key.starts_with("fs.mqueue.")
        || key.starts_with("kernel.shm")
        || key.starts_with("kernel.msg")
        || key == "kernel.sem"
        || key == "kernel.domainname";
    let clean = key.split('.').all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    if !namespaced || !clean {
        return Err(SpecError::Sysctl(key.into()));
    }
    Ok(Op::WriteProc {
        path: crate::spec::cstring("sysctl", &format!("/proc/sys/{}", key.replace('.', "/")))?,
        text: crate::spec::cstring("sysctl", value)?.into_bytes(),
    })
}

/// The filesystem steps, in the one order that is safe: every host tree is cloned before the
/// root covers the stage, the kernel filesystems are mounted on fds we made, the caller's
/// mounts go on top, the protections last (a bind over /proc must not unmask what is
/// masked), then pivot_root. Returns the number of fd slots the child needs.
/// `rootfs_fd`: the rootfs the parent opened (rootfs.rs), when `spec.rootfs` is set.
pub fn filesystem(
    spec: &ContainerSpec,
    (rootfs_fd, mntns, cgroup_fs): (i32, Option<i32>, &[crate::cgroups::CgroupFs]),
    host: &HostFacts,
    plan: &mut Vec<Op>,
) -> Result<usize, SpecError> {
    let mut slots = steps::Slots(0);
    root::enter(spec, rootfs_fd, mntns, plan)?;
    // Clone every host tree first: once the stage is covered nothing else is reachable by path.
    let cloned = root::clone(spec, host, &mut slots, plan)?;
    let host_devices = dev::clone_host_devices(spec.namespaces.user, &mut slots, plan);
    let host_sys = kernel::clone_host_sys(spec, &mut slots, plan);
    let sources = binds::clone_sources(spec, host, &mut slots, plan)?;

    // No mount namespace: the whole tree stays detached, the caller's mount table untouched.
    let detached = !spec.namespaces.mount;
    let mirror = root::attach(cloned, detached, plan);
    let proc = kernel::mount_proc(&mut slots, plan);
    let dev = dev::make(spec, host_devices, &mut slots, plan);
    let sys = kernel::mount_sys(host_sys, &mut slots, plan);
    // In its own cgroup namespace only: another shows the caller's cgroup, or the host's tree.
    if spec.cgroup_mount && spec.namespaces.cgroup && !detached && !cgroup_fs.is_empty() {
        kernel::mount_cgroup(sys, cgroup_fs, &mut slots, plan);
    }
    if spec.tmp {
        binds::tmp(&mut slots, plan);
    }
    binds::attach(spec, sources, &mut slots, plan)?;

    kernel::protect(
        spec,
        host,
        kernel::Mounted { proc, sys, dev },
        &mut slots,
        plan,
    )?;
    // A detached tree's inner mounts take no mount_setattr (only its root does): such a /dev
    // stays writable, as docker's is.
    dev::seal(spec.namespaces.user || detached, dev, plan);
    root::finish(
        mirror || spec.readonly_root,
        detached,
        spec.root_propagation,
        plan,
    );
    Ok(slots.0 + 1)
}
