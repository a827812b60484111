//! Small builders the planner modules share: fd slots, C strings, new filesystems, attaches.

use std::ffi::CString;

use crate::plan::{InRoot, Op};
use crate::spec::{ContainerSpec, Handles};

/// Assigns fd slots; slot 0 is the root (plan::ROOT).
pub struct Slots(pub usize);

impl Slots {
    pub fn next(&mut self) -> usize {
        self.0 += 1;
        self.0
    }
}

pub fn c(s: &str) -> CString {
    CString::new(s).expect("static strings have no NUL")
}

pub fn param(key: &str, value: &str) -> (CString, Option<CString>) {
    (c(key), Some(c(value)))
}

/// A fresh filesystem into a new slot; `source` is the name mountinfo shows (docker's).
pub fn new_fs(
    plan: &mut Vec<Op>,
    slots: &mut Slots,
    (fstype, source): (&str, &str),
    mut params: Vec<(CString, Option<CString>)>,
    attrs: u64,
) -> usize {
    let slot = slots.next();
    params.insert(0, param("source", source));
    plan.push(Op::NewFs {
        fstype: c(fstype),
        params,
        attrs,
        slot,
    });
    slot
}

/// Attaches the tree in `slot` at `target` in the root, making the mount point first.
pub fn attach_in_root(plan: &mut Vec<Op>, slot: usize, target: InRoot, keep: bool) {
    plan.push(Op::EnsureDir {
        components: InRoot::components(target.path.to_str().expect("planned paths are UTF-8")),
    });
    plan.push(Op::Attach { slot, target, keep });
}

/// A kernel filesystem (proc, dev, sys) at a top-level path with no symlink, its slot kept:
/// every later step inside it goes through that fd, never through a path of the root.
pub fn kernel_fs_at(plan: &mut Vec<Op>, slot: usize, at: &str) {
    attach_in_root(plan, slot, InRoot::no_symlinks(at), true);
}

/// The caller's stdio onto 0-2 (unless a terminal replaces them), but the `ignore` ones the
/// container's own /dev/null takes (dev::make, join.rs).
pub fn stdio(spec: &ContainerSpec, handles: &Handles, plan: &mut Vec<Op>) {
    if handles.console.is_some() {
        return;
    }
    let null = spec.null_stdio();
    for (to, from) in handles.stdio.iter().enumerate() {
        if !null[to] {
            plan.push(Op::Dup2 {
                from: *from,
                to: to as i32,
            });
        }
    }
}

/// With a terminal: a pty of the container's own devpts (after pivot_root or setns), at the
/// spec's size, sent back.
pub fn console(spec: &ContainerSpec, handles: &Handles, plan: &mut Vec<Op>) {
    if let Some(sock) = handles.console {
        let ptmx = if spec.own_root() {
            c"/dev/pts/ptmx"
        } else {
            c"/dev/ptmx"
        };
        plan.push(Op::Console {
            ptmx: ptmx.to_owned(),
            sock,
            size: spec.tty_size.map(|t| (t.rows, t.columns)),
        });
    }
}
