//! The container's /dev: a tmpfs of its own with docker's six devices (made with mknod, or
//! bound from the host's in a user namespace), the container's /dev/null on `ignore` stdio,
//! a private devpts, /dev/shm, /dev/mqueue and the fd links; read-only once its nodes exist.

use super::steps::{c, kernel_fs_at, new_fs, param, Slots};
use crate::plan::{InRoot, Op};
use crate::spec::ContainerSpec;
use crate::sys::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MS_PRIVATE};

/// The container's devices (docker's set): name, major, minor. This list is the device
/// allowlist (docker's devices cgroup does that job): /dev, where nodes open, is read-only
/// once they exist, and every filesystem a container can write is nodev.
pub const DEVICES: &[(&str, u32, u32)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];
const DEV_SYMLINKS: &[(&str, &str)] = &[
    ("dev/ptmx", "pts/ptmx"),
    ("dev/fd", "/proc/self/fd"),
    ("dev/stdin", "/proc/self/fd/0"),
    ("dev/stdout", "/proc/self/fd/1"),
    ("dev/stderr", "/proc/self/fd/2"),
];

/// The host's device nodes, cloned before the root covers the stage (a user namespace cannot mknod).
pub struct HostDevices(Vec<(String, usize)>);

pub fn clone_host_devices(user: bool, slots: &mut Slots, plan: &mut Vec<Op>) -> HostDevices {
    let mut devices = Vec::new();
    if user {
        for (name, _, _) in DEVICES {
            let slot = slots.next();
            plan.push(Op::CloneTree {
                src: c(&format!("/dev/{name}")),
                slot,
                attrs: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
                propagation: MS_PRIVATE,
                expect: None,
            });
            devices.push((name.to_string(), slot));
        }
    }
    HostDevices(devices)
}

/// Mounts /dev and fills it; returns its slot (masks open /dev/null beneath it).
pub fn make(
    spec: &ContainerSpec,
    host_devices: HostDevices,
    slots: &mut Slots,
    plan: &mut Vec<Op>,
) -> usize {
    let user = spec.namespaces.user;
    let attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | if user { MOUNT_ATTR_NODEV } else { 0 };
    let dev = new_fs(
        plan,
        slots,
        ("tmpfs", "tmpfs"),
        vec![param("mode", "0755"), param("size", "65536k")],
        attrs,
    );
    // Our own fresh tmpfs: its entries are made relative to its fd, never looked up by path.
    kernel_fs_at(plan, dev, "dev");
    for (name, slot) in host_devices.0 {
        plan.push(Op::BindDevice {
            at: InRoot::beneath(dev, "dev", &name),
            dir: dev,
            slot,
        });
    }
    if !user {
        for (name, major, minor) in DEVICES {
            plan.push(Op::Device {
                at: InRoot::beneath(dev, "dev", name),
                dir: dev,
                major: *major,
                minor: *minor,
                mode: libc::S_IFCHR | 0o666,
                owner: None,
            });
        }
        // The directories made so far: each once (net/tun and net/tap share net).
        let mut made: Vec<String> = Vec::new();
        for node in &spec.devices {
            let normal = crate::spec::container_path("devices", &node.path).unwrap_or_default();
            let rel = normal.trim_start_matches("dev/");
            if DEVICES.contains(&(rel, node.major, node.minor)) {
                continue; // one of ours already
            }
            // A node in a directory of /dev (net/tun, cpu/0/cpuid): each directory first, made
            // in our tmpfs.
            for (i, _) in rel.match_indices('/') {
                let parent = &rel[..i];
                if !made.iter().any(|m| m == parent) {
                    plan.push(Op::Mkdir {
                        at: InRoot::beneath(dev, "dev", parent),
                        dir: dev,
                        mode: 0o755,
                    });
                    made.push(parent.to_owned());
                }
            }
            plan.push(Op::Device {
                at: InRoot::beneath(dev, "dev", rel),
                dir: dev,
                major: node.major,
                minor: node.minor,
                mode: node.file_type() | (node.mode & 0o7777),
                owner: Some((node.uid, node.gid)),
            });
        }
    }
    let fds = spec.null_stdio();
    if fds.contains(&true) {
        plan.push(Op::NullStdio { dir: dev, fds });
    }
    let mut devpts = vec![
        (c("newinstance"), None),
        param("ptmxmode", "0666"),
        param("mode", "0620"),
    ];
    if !user {
        devpts.push(param("gid", "5")); // tty's gid, which a user namespace does not map
    }
    plan.push(Op::Mkdir {
        at: InRoot::beneath(dev, "dev", "pts"),
        dir: dev,
        mode: 0o755,
    });
    let pts = new_fs(
        plan,
        slots,
        ("devpts", "devpts"),
        devpts,
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
    );
    plan.push(Op::Attach {
        slot: pts,
        target: InRoot::beneath(dev, "dev", "pts"),
        keep: false,
    });
    // /dev/shm and /dev/mqueue: filesystems of their own, as docker's (what `df`, the OCI
    // validation suite and shm-size expect), in /dev's tmpfs through its fd.
    let private = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    let shm = vec![
        param("mode", "1777"),
        param("size", spec.shm_size.as_deref().unwrap_or("65536k")),
    ];
    let mut extra = vec![("shm", ("tmpfs", "shm"), shm, 0o1777)];
    if spec.namespaces.ipc {
        // mqueue shows the mounter's IPC namespace: only the container's own (never the host's).
        extra.push(("mqueue", ("mqueue", "mqueue"), vec![], 0o755));
    }
    for (name, kind, params, mode) in extra {
        plan.push(Op::Mkdir {
            at: InRoot::beneath(dev, "dev", name),
            dir: dev,
            mode,
        });
        let fs = new_fs(plan, slots, kind, params, private);
        plan.push(Op::Attach {
            slot: fs,
            target: InRoot::beneath(dev, "dev", name),
            keep: false,
        });
    }
    for (link, target) in DEV_SYMLINKS {
        plan.push(Op::Symlink {
            link_target: c(target),
            at: InRoot::new(link),
            dir: dev,
        });
    }
    dev
}

/// Read-only once every node exists (in a user namespace the nodes are binds, nodev anyway;
/// `keep_writable` also for a detached root, whose inner mounts take no mount_setattr).
pub fn seal(keep_writable: bool, dev: usize, plan: &mut Vec<Op>) {
    if !keep_writable {
        plan.push(Op::Readonly {
            dir: dev,
            shown: "/dev",
        });
    }
}
