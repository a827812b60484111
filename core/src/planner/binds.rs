//! The caller's mounts: bind sources cloned (checked against the file the parent found)
//! before the root covers the stage, then attached with the tmpfs mounts in their order.

use super::host::HostFacts;
use super::steps::{attach_in_root, new_fs, param, Slots};
use crate::plan::{InRoot, Op};
use crate::spec::{container_path, cstring, ContainerSpec, MountSpec, Propagation, SpecError};
use crate::sys::{
    MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, MS_PRIVATE,
};

/// Each bind's slot and whether its source is a directory, in `spec.mounts` order.
pub struct Sources(Vec<(usize, bool)>);

pub fn clone_sources(
    spec: &ContainerSpec,
    host: &HostFacts,
    slots: &mut Slots,
    plan: &mut Vec<Op>,
) -> Result<Sources, SpecError> {
    let nosuid = if spec.nosuid { MOUNT_ATTR_NOSUID } else { 0 };
    let mut sources = Vec::new();
    for m in &spec.mounts {
        if let MountSpec::Bind {
            source,
            readonly,
            noexec,
            nosuid: own_nosuid,
            propagation,
            ..
        } = m
        {
            let slot = slots.next();
            let attrs = MOUNT_ATTR_NODEV
                | nosuid
                | flag(*own_nosuid, MOUNT_ATTR_NOSUID)
                | flag(*readonly, MOUNT_ATTR_RDONLY)
                | flag(*noexec, MOUNT_ATTR_NOEXEC);
            let (dir, id) = (host.source)(source)?;
            plan.push(Op::CloneTree {
                src: cstring("mounts.source", source)?,
                slot,
                attrs,
                // A slave or shared bind keeps the source's own peers until SetPropagation.
                propagation: if propagation.is_some_and(Propagation::keeps_peers) {
                    0
                } else {
                    MS_PRIVATE
                },
                expect: Some(id),
            });
            sources.push((slot, dir));
        }
    }
    Ok(Sources(sources))
}

/// Every mount at its target, in order: a later one may go on top of an earlier one.
pub fn attach(
    spec: &ContainerSpec,
    sources: Sources,
    slots: &mut Slots,
    plan: &mut Vec<Op>,
) -> Result<(), SpecError> {
    let mut sources = sources.0.into_iter();
    for m in &spec.mounts {
        match m {
            MountSpec::Bind {
                target,
                propagation,
                ..
            } => {
                let (slot, dir) = sources.next().expect("one bind slot per bind mount");
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
                plan.push(Op::Reclone { slot });
                set_propagation(*propagation, slot, target, plan)?;
                plan.push(Op::Attach {
                    slot,
                    target: at,
                    keep: false,
                });
            }
            MountSpec::Tmpfs {
                target,
                size,
                mode,
                noexec,
                readonly,
                uid,
                gid,
                propagation,
            } => {
                let rel = container_path("mounts.target", target)?;
                let mut params = vec![param("mode", mode.as_deref().unwrap_or("1777"))];
                if let Some(size) = size {
                    params.push(param("size", size));
                }
                for (key, id) in [("uid", uid), ("gid", gid)] {
                    if let Some(id) = id {
                        params.push(param(key, &id.to_string()));
                    }
                }
                let fs = new_fs(
                    plan,
                    slots,
                    ("tmpfs", "tmpfs"),
                    params,
                    MOUNT_ATTR_NOSUID
                        | MOUNT_ATTR_NODEV
                        | flag(*noexec, MOUNT_ATTR_NOEXEC)
                        | flag(*readonly, MOUNT_ATTR_RDONLY),
                );
                set_propagation(*propagation, fs, target, plan)?;
                attach_in_root(plan, fs, InRoot::new(&rel), false);
            }
        }
    }
    Ok(())
}

/// A mount's asked-for propagation type on its detached tree, just before its attach
/// (private, lonely's own, is what it already has).
fn set_propagation(
    propagation: Option<Propagation>,
    slot: usize,
    target: &str,
    plan: &mut Vec<Op>,
) -> Result<(), SpecError> {
    if let Some(p) = propagation.filter(|p| p.flag() != MS_PRIVATE) {
        plan.push(Op::SetPropagation {
            slot,
            propagation: p.flag(),
            shown: cstring("mounts.target", target)?,
        });
    }
    Ok(())
}

/// The container's own /tmp, a tmpfs.
pub fn tmp(slots: &mut Slots, plan: &mut Vec<Op>) {
    let tmp = new_fs(
        plan,
        slots,
        ("tmpfs", "tmpfs"),
        vec![param("mode", "1777")],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
    );
    attach_in_root(plan, tmp, InRoot::new("tmp"), false);
}

/// `attr` when `on`: mount attributes from a spec's booleans.
fn flag(on: bool, attr: u64) -> u64 {
    if on {
        attr
    } else {
        0
    }
}
