//! The kernel's filesystems: a fresh procfs, sysfs (read-only; the host's, cloned, in a user
//! namespace without its own network namespace), and what protects them: docker's masked and
//! read-only paths, applied beneath the fds of the filesystems we mounted.

use super::host::HostFacts;
use super::steps::{c, kernel_fs_at, new_fs, param, Slots};
use crate::cgroups::CgroupFs;
use crate::plan::{InRoot, Op};
use crate::security;
use crate::spec::{container_path, ContainerSpec, SpecError};
use crate::sys::{
    MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, MS_PRIVATE,
};

const SYS_ATTRS: u64 = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;

/// A user namespace may mount sysfs only for a network namespace it owns: the host's then,
/// cloned before the root covers the stage.
pub fn clone_host_sys(
    spec: &ContainerSpec,
    slots: &mut Slots,
    plan: &mut Vec<Op>,
) -> Option<usize> {
    (spec.namespaces.user && !spec.namespaces.net).then(|| {
        let slot = slots.next();
        plan.push(Op::CloneTree {
            src: super::steps::c("/sys"),
            slot,
            attrs: SYS_ATTRS,
            propagation: MS_PRIVATE,
            expect: None,
        });
        slot
    })
}

pub fn mount_proc(slots: &mut Slots, plan: &mut Vec<Op>) -> usize {
    let proc = new_fs(
        plan,
        slots,
        ("proc", "proc"),
        vec![],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
    );
    kernel_fs_at(plan, proc, "proc");
    proc
}

pub fn mount_sys(host_sys: Option<usize>, slots: &mut Slots, plan: &mut Vec<Op>) -> usize {
    let sys =
        host_sys.unwrap_or_else(|| new_fs(plan, slots, ("sysfs", "sysfs"), vec![], SYS_ATTRS));
    kernel_fs_at(plan, sys, "sys");
    sys
}

/// The container's own cgroup, read-only at /sys/fs/cgroup (docker's): cgroup filesystems made
/// in its cgroup namespace, whose root is its cgroup. v2: cgroup2 there; v1: a tmpfs with one
/// directory per hierarchy it has a directory in, and a link per co-mounted controller.
pub fn mount_cgroup(sys: usize, filesystems: &[CgroupFs], slots: &mut Slots, plan: &mut Vec<Op>) {
    let at = InRoot::beneath(sys, "sys", "fs/cgroup");
    if filesystems.contains(&CgroupFs::Unified) {
        let fs = new_fs(plan, slots, ("cgroup2", "cgroup2"), vec![], SYS_ATTRS);
        plan.push(Op::Attach {
            slot: fs,
            target: at,
            keep: false,
        });
        return;
    }
    let dir = new_fs(
        plan,
        slots,
        ("tmpfs", "tmpfs"),
        vec![param("mode", "0755"), param("size", "64k")],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
    );
    plan.push(Op::Attach {
        slot: dir,
        target: at,
        keep: true,
    });
    let inside = |name: &str| InRoot::beneath(dir, "sys/fs/cgroup", name);
    for fs in filesystems {
        let CgroupFs::Hierarchy {
            dir: name,
            controllers,
        } = fs
        else {
            continue;
        };
        plan.push(Op::Mkdir {
            at: inside(name),
            dir,
            mode: 0o755,
        });
        let flags = controllers.iter().map(|name| (c(name), None)).collect();
        let hierarchy = new_fs(plan, slots, ("cgroup", "cgroup"), flags, SYS_ATTRS);
        plan.push(Op::Attach {
            slot: hierarchy,
            target: inside(name),
            keep: false,
        });
        for controller in controllers.iter().filter(|c| *c != name) {
            plan.push(Op::Symlink {
                link_target: c(name),
                at: inside(controller),
                dir,
            });
        }
    }
    // Last: its directories had to be made in a writable tmpfs.
    plan.push(Op::Readonly {
        dir,
        shown: "/sys/fs/cgroup",
    });
}

/// The slots of the filesystems the protections go beneath.
pub struct Mounted {
    pub proc: usize,
    pub sys: usize,
    pub dev: usize,
}

/// Masks and read-only paths, after every mount: a bind over /proc must not unmask what is masked.
pub fn protect(
    spec: &ContainerSpec,
    host: &HostFacts,
    at: Mounted,
    slots: &mut Slots,
    plan: &mut Vec<Op>,
) -> Result<(), SpecError> {
    let paths = |given: &Option<Vec<String>>, default: &[&str]| -> Result<Vec<String>, SpecError> {
        let list: Vec<String> = given
            .clone()
            .unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect());
        list.iter()
            .map(|p| container_path("maskedPaths", p))
            .collect()
    };
    // /proc and /sys are the host kernel's: what is absent there is absent inside, skip it;
    // what is there is reached through our own proc and sys fds (None: a path of the rootfs).
    let kernel = |rel: &str| -> Option<Option<(InRoot, bool)>> {
        let (name, base, inside) = if let Some(inside) = rel.strip_prefix("proc/") {
            ("proc", at.proc, inside)
        } else if let Some(inside) = rel.strip_prefix("sys/") {
            ("sys", at.sys, inside)
        } else {
            return Some(None);
        };
        (host.kernel_path)(rel).map(|dir| Some((InRoot::beneath(base, name, inside), dir)))
    };
    let mut masks = Vec::new();
    for path in paths(&spec.masked_paths, security::MASKED_PATHS)? {
        match kernel(&path) {
            Some(Some((target, dir))) => masks.push((target, Some(dir))),
            Some(None) => masks.push((InRoot::new(&path), None)),
            None => {}
        }
    }
    let (null, empty) = (slots.next(), slots.next());
    if masks.iter().any(|(_, dir)| *dir != Some(true)) {
        plan.push(Op::OpenNull {
            dir: at.dev,
            slot: null,
        });
    }
    for (target, dir) in masks {
        plan.push(Op::MaskPath {
            target,
            dir,
            null,
            empty,
        });
    }
    for path in paths(&spec.readonly_paths, security::READONLY_PATHS)? {
        let (target, must_exist) = match kernel(&path) {
            Some(Some((target, _))) => (target, true),
            Some(None) => (InRoot::new(&path), false),
            None => continue,
        };
        plan.push(Op::Rebind {
            target,
            attrs: SYS_ATTRS,
            must_exist,
        });
    }
    Ok(())
}
