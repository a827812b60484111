//! The container's root: a `rootfs` the parent opened, an image's layers under a writable
//! upper, or the built-in mirror (a tmpfs with the host's /usr, /etc... read-only).

use std::ffi::CString;

use super::host::{HostEntry, HostFacts};
use super::steps::{attach_in_root, c, param, Slots};
use crate::plan::{InRoot, Op, ROOT};
use crate::spec::{cstring, ContainerSpec, Propagation, SpecError};
use crate::sys::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, MS_PRIVATE, MS_SLAVE};

/// The cloned root and, for the mirror, the host trees to attach in it.
pub struct Root {
    slot: usize,
    /// The built-in mirror (read-only at the end).
    pub mirror: bool,
    host_dirs: Vec<(String, usize)>,
    host_links: Vec<(String, CString)>,
}

/// Enters the rootfs: the first filesystem step.
pub fn enter(
    spec: &ContainerSpec,
    rootfs_fd: i32,
    join: Option<i32>,
    plan: &mut Vec<Op>,
) -> Result<(), SpecError> {
    if let Some(rootfs) = &spec.rootfs {
        if !spec.namespaces.mount {
            // The caller's mount namespace: nothing in it is touched, private or not.
            plan.push(Op::EnterRootfsShared {
                fd: rootfs_fd,
                shown: cstring("rootfs", rootfs)?,
            });
            return Ok(());
        }
        // Before the namespace exists (clone leaves it to us when there is a rootfs).
        plan.push(Op::EnterRootfs {
            fd: rootfs_fd,
            shown: cstring("rootfs", rootfs)?,
            join,
        });
    }
    Ok(())
}

/// Clones (or makes) the root and the mirror's host trees.
pub fn clone(
    spec: &ContainerSpec,
    host: &HostFacts,
    slots: &mut Slots,
    plan: &mut Vec<Op>,
) -> Result<Root, SpecError> {
    let slot = slots.next();
    let mirror = spec.rootfs.is_none() && spec.image.is_none();
    // Host directories the container may write: no setuid file of theirs counts inside.
    let nosuid = if spec.nosuid { MOUNT_ATTR_NOSUID } else { 0 };
    match (&spec.rootfs, &spec.image) {
        // The fd the parent opened and checked: the path is never looked up again.
        (Some(rootfs), _) => plan.push(Op::CloneRootfs {
            shown: cstring("rootfs", rootfs)?,
            slot,
            attrs: MOUNT_ATTR_NODEV | nosuid,
            // A slave still receives the host's mounts; a shared root waits for pivot_root
            // (which refuses one), then RootPropagation makes it shared.
            propagation: if spec.root_propagation.is_some_and(Propagation::keeps_peers) {
                MS_SLAVE
            } else {
                MS_PRIVATE
            },
        }),
        (None, Some(image)) => {
            // The image's layers read-only, the container's own writes in `upper`.
            let mut params = vec![param("source", "overlay")];
            params.extend(lowerdirs(&image.lowerdirs, host.lowerdir_append)?);
            params.extend([
                (c("upperdir"), Some(cstring("image.upper", &image.upper)?)),
                (c("workdir"), Some(cstring("image.work", &image.work)?)),
            ]);
            if spec.namespaces.user {
                params.push((c("userxattr"), None)); // overlayfs in a user namespace (Linux 5.11+)
            }
            // nosuid unless `allowSetuid`: a layer loaded with keepSetuid has setuid files.
            plan.push(Op::NewFs {
                fstype: c("overlay"),
                params,
                attrs: nosuid | MOUNT_ATTR_NODEV,
                slot,
            });
        }
        (None, None) => plan.push(Op::NewFs {
            fstype: c("tmpfs"),
            params: vec![
                param("source", "tmpfs"),
                param("mode", "0755"),
                param("size", "1m"),
            ],
            attrs: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            slot,
        }),
    }
    let mut host_dirs = Vec::new();
    let mut host_links = Vec::new();
    if mirror {
        for entry in host.mirror {
            match entry {
                HostEntry::Link(dir, target) => host_links.push((dir.to_string(), target.clone())),
                HostEntry::Dir(dir) => {
                    let tree = slots.next();
                    plan.push(Op::CloneTree {
                        src: c(&format!("/{dir}")),
                        slot: tree,
                        attrs: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV,
                        propagation: MS_PRIVATE,
                        expect: None,
                    });
                    host_dirs.push((dir.to_string(), tree));
                }
            }
        }
    }
    Ok(Root {
        slot,
        mirror,
        host_dirs,
        host_links,
    })
}

/// The layers, top first: one `lowerdir+` each where the kernel takes them so; else one
/// `lowerdir` string, which fsconfig caps at 255 bytes (then a clear error, not EINVAL).
pub(super) fn lowerdirs(
    layers: &[String],
    append: bool,
) -> Result<Vec<(CString, Option<CString>)>, SpecError> {
    if append {
        return layers
            .iter()
            .map(|l| Ok((c("lowerdir+"), Some(cstring("image.lowerdirs", l)?))))
            .collect();
    }
    let joined = layers.join(":");
    if joined.len() > 255 {
        return Err(SpecError::ImageLayers(format!(
            "{} layers name {} bytes of lowerdir; this kernel takes at most 255 (Linux 6.8 takes any number, one by one)",
            layers.len(),
            joined.len()
        )));
    }
    Ok(vec![(
        c("lowerdir"),
        Some(cstring("image.lowerdirs", &joined)?),
    )])
}

/// Covers the stage with the root (or, without a mount namespace, keeps it detached), then
/// the mirror's trees and links in it.
pub fn attach(root: Root, detached: bool, plan: &mut Vec<Op>) -> bool {
    if detached {
        plan.push(Op::KeepRootDetached { slot: root.slot });
    } else {
        // After every clone (a bind that asks keeps its link to the host's mount), before the
        // first attach: nothing mounted in this namespace reaches the host's.
        plan.push(Op::MakeMountsPrivate);
        plan.push(Op::AttachRoot { slot: root.slot });
    }
    for (dir, slot) in root.host_dirs {
        attach_in_root(plan, slot, InRoot::new(&dir), false);
    }
    for (dir, target) in root.host_links {
        plan.push(Op::Symlink {
            link_target: target,
            at: InRoot::new(&dir),
            dir: ROOT,
        });
    }
    root.mirror
}

/// Read-only if asked (or the mirror), then pivot_root (chroot into a detached root), then
/// the root's own propagation type: the last filesystem steps.
pub fn finish(
    read_only: bool,
    detached: bool,
    propagation: Option<Propagation>,
    plan: &mut Vec<Op>,
) {
    if read_only {
        // Last: every mount point above had to be created in a writable root.
        plan.push(Op::RootAttrs(MOUNT_ATTR_RDONLY));
    }
    plan.push(if detached {
        Op::ChrootInto { fd: None }
    } else {
        Op::PivotRoot
    });
    if let Some(p) = propagation {
        plan.push(Op::RootPropagation(p.flag()));
    }
}
