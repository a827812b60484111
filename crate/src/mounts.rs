//! The container's filesystem as plan steps: the root (a rootfs bind or the host
//! mirror), /proc, /dev, /sys, /tmp, the user's binds and tmpfs, then pivot_root.

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::{Mutex, OnceLock};

use crate::plan::{InRoot, Op, ROOT};
use crate::security;
use crate::spec::{container_path, cstring, is_dir, ContainerSpec, MountSpec, SpecError};
use crate::sys::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};

/// Host directories the default root mirrors read-only (those that exist).
const HOST_MIRROR: &[&str] = &[
    "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc",
];
/// The container's devices (docker's set): name, major, minor. This list is the device
/// allowlist (docker's devices cgroup does that job): /dev, where nodes open, is read-only
/// once they exist, and every filesystem a container can write is nodev.
const DEVICES: &[(&str, u32, u32)] = &[
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

/// One top-level entry of the host that the mirror root copies.
enum HostEntry {
    Dir(&'static str),
    /// A symlink (merged /usr: `bin -> usr/bin`) and its target.
    Link(&'static str, CString),
}

/// The host's layout of `HOST_MIRROR`, read once per process (not on every spawn).
fn host_layout() -> &'static [HostEntry] {
    static LAYOUT: OnceLock<Vec<HostEntry>> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        HOST_MIRROR
            .iter()
            .filter_map(|dir| {
                let path = format!("/{dir}");
                let meta = std::fs::symlink_metadata(&path).ok()?;
                if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(&path).ok()?;
                    CString::new(target.into_os_string().into_encoded_bytes())
                        .ok()
                        .map(|t| HostEntry::Link(dir, t))
                } else {
                    meta.is_dir().then_some(HostEntry::Dir(dir))
                }
            })
            .collect()
    })
}

/// Whether `/proc/...` or `/sys/...` exists on this kernel (Some(is a directory)), cached:
/// the kernel's own entries do not come and go between spawns.
fn kernel_path_kind(rel: &str) -> Option<bool> {
    static SEEN: OnceLock<Mutex<HashMap<String, Option<bool>>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    *seen.entry(rel.to_owned()).or_insert_with(|| {
        std::fs::metadata(format!("/{rel}"))
            .ok()
            .map(|m| m.is_dir())
    })
}

/// Assigns fd slots; slot 0 is the root (plan::ROOT).
struct Slots(usize);

impl Slots {
    fn next(&mut self) -> usize {
        self.0 += 1;
        self.0
    }
}

fn c(s: &str) -> CString {
    CString::new(s).expect("static strings have no NUL")
}

fn param(key: &str, value: &str) -> (CString, Option<CString>) {
    (c(key), Some(c(value)))
}

fn new_fs(
    plan: &mut Vec<Op>,
    slots: &mut Slots,
    fstype: &str,
    params: Vec<(CString, Option<CString>)>,
    attrs: u64,
    target: &str,
) {
    let slot = slots.next();
    plan.push(Op::EnsureDir {
        components: InRoot::components(target),
    });
    plan.push(Op::NewFs {
        fstype: c(fstype),
        params,
        attrs,
        slot,
    });
    plan.push(Op::Attach {
        slot,
        target: InRoot::new(target),
    });
}

/// Appends the mount steps; returns the number of fd slots the child needs.
pub fn plan(spec: &ContainerSpec, plan: &mut Vec<Op>) -> Result<usize, SpecError> {
    let mut slots = Slots(0);
    plan.push(Op::MakeMountsPrivate);

    // Clone every host tree first: once the stage is covered nothing else is reachable by path.
    let root = slots.next();
    let mirror = spec.rootfs.is_none() && spec.image.is_none();
    match (&spec.rootfs, &spec.image) {
        (Some(rootfs), _) => plan.push(Op::CloneTree {
            src: cstring("rootfs", rootfs)?,
            slot: root,
            attrs: MOUNT_ATTR_NODEV,
        }),
        (None, Some(image)) => {
            // The image's layers read-only, the container's own writes in `upper`.
            let mut params = vec![
                (
                    c("lowerdir"),
                    Some(cstring("image.lowerdirs", &image.lowerdirs.join(":"))?),
                ),
                (c("upperdir"), Some(cstring("image.upper", &image.upper)?)),
                (c("workdir"), Some(cstring("image.work", &image.work)?)),
            ];
            if spec.namespaces.user {
                params.push((c("userxattr"), None)); // overlayfs in a user namespace (Linux 5.11+)
            }
            plan.push(Op::NewFs {
                fstype: c("overlay"),
                params,
                attrs: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                slot: root,
            });
        }
        (None, None) => plan.push(Op::NewFs {
            fstype: c("tmpfs"),
            params: vec![param("mode", "0755"), param("size", "1m")],
            attrs: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            slot: root,
        }),
    }
    let mut host_dirs = Vec::new();
    let mut host_links = Vec::new();
    if mirror {
        for entry in host_layout() {
            match entry {
                HostEntry::Link(dir, target) => host_links.push((dir.to_string(), target.clone())),
                HostEntry::Dir(dir) => {
                    let slot = slots.next();
                    plan.push(Op::CloneTree {
                        src: c(&format!("/{dir}")),
                        slot,
                        attrs: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV,
                    });
                    host_dirs.push((dir.to_string(), slot));
                }
            }
        }
    }
    let user = spec.namespaces.user;
    // In a user namespace mknod is refused: the nodes are bound from the host's /dev instead.
    let mut devices = Vec::new();
    if user {
        for (name, _, _) in DEVICES {
            let slot = slots.next();
            plan.push(Op::CloneTree {
                src: c(&format!("/dev/{name}")),
                slot,
                attrs: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
            });
            devices.push((format!("dev/{name}"), slot));
        }
    }
    // A user namespace may mount sysfs only for a network namespace it owns.
    let host_sys = (user && !spec.namespaces.net).then(|| {
        let slot = slots.next();
        plan.push(Op::CloneTree {
            src: c("/sys"),
            slot,
            attrs: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        });
        slot
    });
    let mut binds = Vec::new();
    for m in &spec.mounts {
        if let MountSpec::Bind {
            source, readonly, ..
        } = m
        {
            let slot = slots.next();
            let attrs = MOUNT_ATTR_NODEV | if *readonly { MOUNT_ATTR_RDONLY } else { 0 };
            plan.push(Op::CloneTree {
                src: cstring("mounts.source", source)?,
                slot,
                attrs,
            });
            binds.push((slot, is_dir(source)?));
        }
    }

    plan.push(Op::AttachRoot { slot: root });
    for (dir, slot) in host_dirs {
        plan.push(Op::EnsureDir {
            components: InRoot::components(&dir),
        });
        plan.push(Op::Attach {
            slot,
            target: InRoot::new(&dir),
        });
    }
    for (dir, target) in host_links {
        plan.push(Op::Symlink {
            link_target: target,
            at: InRoot::new(&dir),
            dir: ROOT,
        });
    }

    new_fs(
        plan,
        &mut slots,
        "proc",
        vec![],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        "proc",
    );
    let dev_attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | if user { MOUNT_ATTR_NODEV } else { 0 };
    new_fs(
        plan,
        &mut slots,
        "tmpfs",
        vec![param("mode", "0755"), param("size", "65536k")],
        dev_attrs,
        "dev",
    );
    // Our own fresh tmpfs: its entries are made relative to one fd, not looked up each time.
    let dev = slots.next();
    plan.push(Op::Open {
        target: InRoot::new("dev"),
        slot: dev,
    });
    for (path, slot) in devices {
        plan.push(Op::BindDevice {
            at: InRoot::new(&path),
            slot,
        });
    }
    if !user {
        for (name, major, minor) in DEVICES {
            plan.push(Op::Device {
                at: InRoot::new(&format!("dev/{name}")),
                dir: dev,
                major: *major,
                minor: *minor,
            });
        }
    }
    let mut devpts = vec![
        (c("newinstance"), None),
        param("ptmxmode", "0666"),
        param("mode", "0620"),
    ];
    if !user {
        devpts.push(param("gid", "5")); // tty's gid, which a user namespace does not map
    }
    new_fs(
        plan,
        &mut slots,
        "devpts",
        devpts,
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
        "dev/pts",
    );
    // /dev/shm: a writable nodev bind of a directory of /dev's own tmpfs (its 64 MiB), not a
    // filesystem of its own: one superblock fewer to make and tear down per container.
    plan.push(Op::Mkdir {
        at: InRoot::new("dev/shm"),
        dir: dev,
        mode: 0o1777,
    });
    plan.push(Op::Rebind {
        target: InRoot::new("dev/shm"),
        attrs: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
    });
    for (link, target) in DEV_SYMLINKS {
        plan.push(Op::Symlink {
            link_target: c(target),
            at: InRoot::new(link),
            dir: dev,
        });
    }
    match host_sys {
        Some(slot) => {
            plan.push(Op::EnsureDir {
                components: InRoot::components("sys"),
            });
            plan.push(Op::Attach {
                slot,
                target: InRoot::new("sys"),
            });
        }
        None => new_fs(
            plan,
            &mut slots,
            "sysfs",
            vec![],
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
            "sys",
        ),
    }
    new_fs(
        plan,
        &mut slots,
        "tmpfs",
        vec![param("mode", "1777")],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        "tmp",
    );

    let mut binds = binds.into_iter();
    for m in &spec.mounts {
        match m {
            MountSpec::Bind { target, .. } => {
                let (slot, dir) = binds.next().expect("one bind slot per bind mount");
                let rel = container_path("mounts.target", target)?;
                let at = InRoot::new(&rel);
                if dir {
                    plan.push(Op::EnsureDir {
                        components: InRoot::components(&rel),
                    });
                } else {
                    if let Some((parent, _)) = rel.rsplit_once('/') {
                        plan.push(Op::EnsureDir {
                            components: InRoot::components(parent),
                        });
                    }
                    plan.push(Op::EnsureFile { target: at.clone() });
                }
                plan.push(Op::Attach { slot, target: at });
            }
            MountSpec::Tmpfs { target, size, mode } => {
                let rel = container_path("mounts.target", target)?;
                let mut params = vec![param("mode", mode.as_deref().unwrap_or("1777"))];
                if let Some(size) = size {
                    params.push(param("size", size));
                }
                new_fs(
                    plan,
                    &mut slots,
                    "tmpfs",
                    params,
                    MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                    &rel,
                );
            }
        }
    }

    // After every mount: a bind over /proc must not unmask what is masked.
    let paths = |given: &Option<Vec<String>>, default: &[&str]| -> Result<Vec<String>, SpecError> {
        let list: Vec<String> = given
            .clone()
            .unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect());
        list.iter()
            .map(|p| container_path("maskedPaths", p))
            .collect()
    };
    // /proc and /sys are the host kernel's: what is absent there is absent inside, skip it.
    let on_host = |rel: &str| -> Option<Option<bool>> {
        if !(rel.starts_with("proc/") || rel.starts_with("sys/")) {
            return Some(None);
        }
        kernel_path_kind(rel).map(Some)
    };
    let masks: Vec<(String, Option<bool>)> = paths(&spec.masked_paths, security::MASKED_PATHS)?
        .into_iter()
        .filter_map(|path| on_host(&path).map(|dir| (path, dir)))
        .collect();
    let (null, empty) = (slots.next(), slots.next());
    if masks.iter().any(|(_, dir)| *dir != Some(true)) {
        plan.push(Op::Open {
            target: InRoot::new("dev/null"),
            slot: null,
        });
    }
    for (path, dir) in masks {
        plan.push(Op::MaskPath {
            target: InRoot::new(&path),
            dir,
            null,
            empty,
        });
    }
    for path in paths(&spec.readonly_paths, security::READONLY_PATHS)? {
        if on_host(&path).is_some() {
            plan.push(Op::Rebind {
                target: InRoot::new(&path),
                attrs: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
            });
        }
    }

    if !user {
        plan.push(Op::DevReadonly { dir: dev });
    }
    if mirror || spec.readonly_root {
        // Last: every mount point above had to be created in a writable root.
        plan.push(Op::RootAttrs(MOUNT_ATTR_RDONLY));
    }
    plan.push(Op::PivotRoot);
    Ok(slots.0 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse;

    fn spec_with(extra: &str) -> ContainerSpec {
        parse(&format!(
            r#"{{"argv":["true"],"env":[],"cwd":"/","hostname":null,
            "namespaces":{{"pid":true,"mount":true,"uts":true,"ipc":true,"net":true,"cgroup":true}},
            "uid":0,"gid":0{extra}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn host_trees_are_cloned_before_the_root_is_attached() {
        let s = spec_with(
            r#","rootfs":"/","mounts":[{"type":"bind","source":"/tmp","target":"/mnt/x"}]"#,
        );
        let mut plan = vec![];
        plan_fn(&s, &mut plan);
        let attach = plan
            .iter()
            .position(|o| matches!(o, Op::AttachRoot { .. }))
            .unwrap();
        let last_clone = plan
            .iter()
            .rposition(|o| matches!(o, Op::CloneTree { .. }))
            .unwrap();
        assert!(last_clone < attach);
        assert_eq!(plan.last(), Some(&Op::PivotRoot));
        assert!(
            !plan.iter().any(|o| matches!(o, Op::RootAttrs(_))),
            "a rootfs stays writable unless asked"
        );
    }

    #[test]
    fn the_mirror_root_ends_read_only() {
        let s = spec_with(r#","rootfs":null"#);
        let mut plan = vec![];
        plan_fn(&s, &mut plan);
        let n = plan.len();
        assert_eq!(plan[n - 2], Op::RootAttrs(MOUNT_ATTR_RDONLY));
        assert!(plan
            .iter()
            .any(|o| matches!(o, Op::CloneTree { src, .. } if src.to_str() == Ok("/usr"))));
    }

    #[test]
    fn every_slot_is_within_the_count() {
        let s = spec_with(
            r#","rootfs":null,"mounts":[{"type":"tmpfs","target":"/a/b","size":"1m","mode":null}]"#,
        );
        let mut plan = vec![];
        let count = plan_fn(&s, &mut plan);
        // The child indexes the slot array with these: one out of range would panic there.
        let used: Vec<usize> = plan
            .iter()
            .flat_map(|op| match op {
                Op::CloneTree { slot, .. }
                | Op::NewFs { slot, .. }
                | Op::Attach { slot, .. }
                | Op::Open { slot, .. }
                | Op::BindDevice { slot, .. } => vec![*slot],
                Op::Symlink { dir, .. }
                | Op::Device { dir, .. }
                | Op::Mkdir { dir, .. }
                | Op::DevReadonly { dir } => vec![*dir],
                Op::MaskPath { null, empty, .. } => vec![*null, *empty],
                _ => vec![],
            })
            .collect();
        assert!(used.iter().any(|s| *s > 0), "the plan uses slots");
        for slot in used {
            assert!(slot < count, "slot {slot} of {count}");
        }
    }

    fn plan_fn(s: &ContainerSpec, out: &mut Vec<Op>) -> usize {
        plan(s, out).unwrap()
    }
}
