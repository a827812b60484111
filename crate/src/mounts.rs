//! The container's filesystem as plan steps: the root (a rootfs bind or the host
//! mirror), /proc, /dev, /sys, /tmp, the user's binds and tmpfs, then pivot_root.

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::{Mutex, OnceLock};

use crate::plan::{InRoot, Op, ROOT};
use crate::security;
use crate::spec::{container_path, cstring, source_identity, ContainerSpec, MountSpec, SpecError};
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

/// A fresh filesystem into a new slot.
fn new_fs(
    plan: &mut Vec<Op>,
    slots: &mut Slots,
    fstype: &str,
    params: Vec<(CString, Option<CString>)>,
    attrs: u64,
) -> usize {
    let slot = slots.next();
    plan.push(Op::NewFs {
        fstype: c(fstype),
        params,
        attrs,
        slot,
    });
    slot
}

/// Attaches the tree in `slot` at `target` in the root, making the mount point first.
fn attach_in_root(plan: &mut Vec<Op>, slot: usize, target: InRoot, keep: bool) {
    plan.push(Op::EnsureDir {
        components: InRoot::components(target.path.to_str().expect("planned paths are UTF-8")),
    });
    plan.push(Op::Attach { slot, target, keep });
}

/// A kernel filesystem (proc, dev, sys) at a top-level path with no symlink, its slot kept:
/// every later step inside it goes through that fd, never through a path of the root.
fn kernel_fs_at(plan: &mut Vec<Op>, slot: usize, at: &str) {
    attach_in_root(plan, slot, InRoot::no_symlinks(at), true);
}

/// Appends the mount steps; returns the number of fd slots the child needs.
/// `rootfs_fd`: the rootfs the parent opened (rootfs.rs), when `spec.rootfs` is set.
pub fn plan(spec: &ContainerSpec, rootfs_fd: i32, plan: &mut Vec<Op>) -> Result<usize, SpecError> {
    let mut slots = Slots(0);
    if let Some(rootfs) = &spec.rootfs {
        // Before the namespace exists (clone leaves it to us when there is a rootfs).
        plan.push(Op::EnterRootfs {
            fd: rootfs_fd,
            shown: cstring("rootfs", rootfs)?,
        });
    }
    plan.push(Op::MakeMountsPrivate);

    // Clone every host tree first: once the stage is covered nothing else is reachable by path.
    let root = slots.next();
    let mirror = spec.rootfs.is_none() && spec.image.is_none();
    // Host directories the container may write: no setuid file of theirs counts inside.
    let nosuid = if spec.nosuid { MOUNT_ATTR_NOSUID } else { 0 };
    match (&spec.rootfs, &spec.image) {
        // The fd the parent opened and checked: the path is never looked up again.
        (Some(rootfs), _) => plan.push(Op::CloneRootfs {
            shown: cstring("rootfs", rootfs)?,
            slot: root,
            attrs: MOUNT_ATTR_NODEV | nosuid,
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
                        expect: None,
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
                expect: None,
            });
            devices.push((name.to_string(), slot));
        }
    }
    // A user namespace may mount sysfs only for a network namespace it owns.
    let host_sys = (user && !spec.namespaces.net).then(|| {
        let slot = slots.next();
        plan.push(Op::CloneTree {
            src: c("/sys"),
            slot,
            attrs: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
            expect: None,
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
            let attrs = MOUNT_ATTR_NODEV | nosuid | if *readonly { MOUNT_ATTR_RDONLY } else { 0 };
            let (dir, id) = source_identity(source)?;
            plan.push(Op::CloneTree {
                src: cstring("mounts.source", source)?,
                slot,
                attrs,
                expect: Some(id),
            });
            binds.push((slot, dir));
        }
    }

    plan.push(Op::AttachRoot { slot: root });
    for (dir, slot) in host_dirs {
        attach_in_root(plan, slot, InRoot::new(&dir), false);
    }
    for (dir, target) in host_links {
        plan.push(Op::Symlink {
            link_target: target,
            at: InRoot::new(&dir),
            dir: ROOT,
        });
    }

    let proc = new_fs(
        plan,
        &mut slots,
        "proc",
        vec![],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
    );
    kernel_fs_at(plan, proc, "proc");
    let dev_attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | if user { MOUNT_ATTR_NODEV } else { 0 };
    let dev = new_fs(
        plan,
        &mut slots,
        "tmpfs",
        vec![param("mode", "0755"), param("size", "65536k")],
        dev_attrs,
    );
    // Our own fresh tmpfs: its entries are made relative to its fd, never looked up by path.
    kernel_fs_at(plan, dev, "dev");
    for (name, slot) in devices {
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
        &mut slots,
        "devpts",
        devpts,
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
    );
    plan.push(Op::Attach {
        slot: pts,
        target: InRoot::beneath(dev, "dev", "pts"),
        keep: false,
    });
    // /dev/shm: a writable nodev bind of a directory of /dev's own tmpfs (its 64 MiB), not a
    // filesystem of its own: one superblock fewer to make and tear down per container.
    plan.push(Op::Mkdir {
        at: InRoot::beneath(dev, "dev", "shm"),
        dir: dev,
        mode: 0o1777,
    });
    plan.push(Op::Rebind {
        target: InRoot::beneath(dev, "dev", "shm"),
        attrs: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        must_exist: true,
    });
    for (link, target) in DEV_SYMLINKS {
        plan.push(Op::Symlink {
            link_target: c(target),
            at: InRoot::new(link),
            dir: dev,
        });
    }
    let sys = host_sys.unwrap_or_else(|| {
        new_fs(
            plan,
            &mut slots,
            "sysfs",
            vec![],
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        )
    });
    kernel_fs_at(plan, sys, "sys");
    let tmp = new_fs(
        plan,
        &mut slots,
        "tmpfs",
        vec![param("mode", "1777")],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
    );
    attach_in_root(plan, tmp, InRoot::new("tmp"), false);

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
                plan.push(Op::Attach {
                    slot,
                    target: at,
                    keep: false,
                });
            }
            MountSpec::Tmpfs { target, size, mode } => {
                let rel = container_path("mounts.target", target)?;
                let mut params = vec![param("mode", mode.as_deref().unwrap_or("1777"))];
                if let Some(size) = size {
                    params.push(param("size", size));
                }
                let fs = new_fs(
                    plan,
                    &mut slots,
                    "tmpfs",
                    params,
                    MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                );
                attach_in_root(plan, fs, InRoot::new(&rel), false);
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
    // /proc and /sys are the host kernel's: what is absent there is absent inside, skip it;
    // what is there is reached through our own proc and sys fds (None: a path of the rootfs).
    let kernel = |rel: &str| -> Option<Option<(InRoot, bool)>> {
        let (at, base, inside) = if let Some(inside) = rel.strip_prefix("proc/") {
            ("proc", proc, inside)
        } else if let Some(inside) = rel.strip_prefix("sys/") {
            ("sys", sys, inside)
        } else {
            return Some(None);
        };
        kernel_path_kind(rel).map(|dir| Some((InRoot::beneath(base, at, inside), dir)))
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
            dir: dev,
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
            attrs: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
            must_exist,
        });
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
    fn ignored_stdio_is_the_containers_own_dev_null_never_the_hosts() {
        let s = spec_with(r#","stdio":["ignore","pipe","ignore"]"#);
        let mut plan = vec![];
        plan_fn(&s, &mut plan);
        let dev = plan
            .iter()
            .find_map(|o| match o {
                Op::Device { dir, .. } => Some(*dir),
                _ => None,
            })
            .unwrap();
        let null = plan
            .iter()
            .position(|o| {
                o == &Op::NullStdio {
                    dir: dev,
                    fds: [true, false, true],
                }
            })
            .expect("one NullStdio for fds 0 and 2");
        let made = plan
            .iter()
            .rposition(|o| matches!(o, Op::Device { .. }))
            .unwrap();
        assert!(made < null, "after the nodes exist");
        let tty = spec_with(r#","stdio":["ignore","ignore","ignore"],"tty":true"#);
        plan.clear();
        plan_fn(&tty, &mut plan);
        assert!(
            !plan.iter().any(|o| matches!(o, Op::NullStdio { .. })),
            "a terminal replaces 0-2"
        );
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
                | Op::CloneRootfs { slot, .. }
                | Op::NewFs { slot, .. } => vec![*slot],
                Op::Attach { slot, target, .. } => vec![*slot, target.base],
                Op::BindDevice { slot, dir, at } => vec![*slot, *dir, at.base],
                Op::OpenNull { dir, slot } => vec![*dir, *slot],
                Op::Symlink { dir, .. }
                | Op::Device { dir, .. }
                | Op::Mkdir { dir, .. }
                | Op::NullStdio { dir, .. }
                | Op::DevReadonly { dir } => vec![*dir],
                Op::MaskPath {
                    null,
                    empty,
                    target,
                    ..
                } => vec![*null, *empty, target.base],
                Op::Rebind { target, .. } => vec![target.base],
                _ => vec![],
            })
            .collect();
        assert!(used.iter().any(|s| *s > 0), "the plan uses slots");
        for slot in used {
            assert!(slot < count, "slot {slot} of {count}");
        }
    }

    #[test]
    fn the_rootfs_is_cloned_from_the_parents_fd_never_its_path() {
        let s = spec_with(r#","rootfs":"/srv/root""#);
        let mut out = vec![];
        plan(&s, 42, &mut out).unwrap();
        assert!(out.iter().any(
            |o| matches!(o, Op::EnterRootfs { fd: 42, shown } if shown.to_str() == Ok("/srv/root"))
        ));
        assert!(!out
            .iter()
            .any(|o| matches!(o, Op::CloneTree { src, .. } if src.to_str() == Ok("/srv/root"))));
    }

    #[test]
    fn kernel_paths_go_through_the_planned_filesystems_fds_with_no_symlink() {
        let s = spec_with(r#","rootfs":"/srv/root""#);
        let mut out = vec![];
        plan(&s, 42, &mut out).unwrap();
        // The slots of the proc, dev and sys filesystems, kept open after their attach.
        let kept = |at: &str| {
            out.iter()
                .find_map(|o| match o {
                    Op::Attach {
                        slot,
                        target,
                        keep: true,
                    } if target.path.to_str() == Ok(at) => {
                        assert!(target.strict, "{at} is attached with no symlink");
                        Some(*slot)
                    }
                    _ => None,
                })
                .unwrap_or_else(|| panic!("{at} is attached and kept"))
        };
        let (proc, dev, sys) = (kept("proc"), kept("dev"), kept("sys"));
        let mut checked = 0;
        for op in &out {
            let target = match op {
                Op::MaskPath { target, .. } | Op::Rebind { target, .. } => target,
                _ => continue,
            };
            let path = target.path.to_str().unwrap();
            let base = match path.split('/').next() {
                Some("proc") => proc,
                Some("sys") => sys,
                Some("dev") => dev,
                _ => continue,
            };
            assert!(
                target.strict && target.base == base,
                "{path} resolved through its filesystem's fd"
            );
            checked += 1;
        }
        assert!(
            checked >= 8,
            "the default masks and read-only paths ({checked})"
        );
        assert!(
            out.iter()
                .any(|o| matches!(o, Op::OpenNull { dir, .. } if *dir == dev)),
            "/dev/null from our own /dev"
        );
        for op in &out {
            let at = match op {
                Op::Device { at, .. } | Op::BindDevice { at, .. } => at,
                Op::Attach { target, .. }
                | Op::MaskPath { target, .. }
                | Op::Rebind { target, .. } => target,
                _ => continue,
            };
            if at.path.to_str() == Ok("dev/null") {
                assert!(
                    at.strict && at.base == dev,
                    "never dev/null by a path of the root: {op:?}"
                );
            }
        }
        assert!(
            out.iter().any(|o| matches!(
                o,
                Op::Rebind {
                    must_exist: true,
                    ..
                }
            )),
            "kernel read-only paths must exist"
        );
    }

    fn plan_fn(s: &ContainerSpec, out: &mut Vec<Op>) -> usize {
        plan(s, -1, out).unwrap()
    }
}
