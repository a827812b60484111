//! The container's setup as plain data (bubblewrap's model): an ordered list of
//! operations with every path already a C string. The parent builds it, the child
//! walks it with one `match` (child.rs), a user can print it (`describe`).

use std::ffi::CString;
use std::os::raw::c_int;

/// Where the container's root is assembled before pivot_root. Every bind source is
/// cloned with open_tree *before* anything is mounted here, so covering it hides nothing.
pub const STAGE: &std::ffi::CStr = c"/tmp";

/// A mount target: a path inside the new root, or inside a filesystem the plan made.
#[derive(Debug, Clone, PartialEq)]
pub struct InRoot {
    /// The parent directory, relative to the root ("." for the root itself).
    pub parent: CString,
    /// The last component.
    pub name: CString,
    /// The whole relative path from the root ("dev/pts"), as the user reads it.
    pub path: CString,
    /// The slot the path is resolved from: ROOT, or a filesystem the plan made (proc, dev, sys).
    pub base: usize,
    /// `path` relative to `base` ("pts" below dev's slot).
    pub rel: CString,
    /// Resolved beneath `base` with no symlink at all (RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS);
    /// otherwise inside the root, symlinks followed there (RESOLVE_IN_ROOT).
    pub strict: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Default handlers; the mask emptied, or with `blocked` left full through exec (lonely-init
    /// takes every signal with sigtimedwait: none may be dropped before it runs).
    ResetSignals {
        blocked: bool,
    },
    NewSession,
    /// PR_SET_DUMPABLE 0 (the shared mm, Node's: spawn.rs restores it): an exec helper that
    /// enters a running container must not be ptraceable or readable through /proc by it.
    NotDumpable,
    /// Exec into a running container: this process (in the host's PID namespace) clones the
    /// rest of the plan as a sibling (CLONE_PARENT: Node's child) inside the container's PID
    /// namespace, waits for it to exec (CLONE_VFORK), records its pid and exits.
    ForkIntoPidns,
    /// An O_PATH fd of `dev` in the working directory, no symlink followed, into slot (an exec
    /// helper's, right after it entered the container's mount namespace: its root's /dev).
    OpenDevOfCwd {
        slot: usize,
    },
    ParentDeathSignal(c_int),
    /// dup2(from, to); `from` is >= 3 (the parent moves user fds up first) or `to` itself (inherit).
    Dup2 {
        from: c_int,
        to: c_int,
    },
    /// Open a pty in the container's devpts, give it `size` (rows, columns), make its slave
    /// fds 0-2 and the controlling terminal, and send the master to the parent over `sock`.
    Console {
        ptmx: CString,
        sock: c_int,
        size: Option<(u16, u16)>,
    },
    /// unshare(flags): namespaces that must be made after an earlier step (cgroup after the cgroup join).
    Unshare(c_int),
    JoinCgroup(c_int),
    Rlimit {
        resource: c_int,
        soft: u64,
        hard: u64,
    },
    /// setns(fd, nstype): join a namespace made ahead of time (netns.rs).
    JoinNamespace {
        fd: c_int,
        nstype: c_int,
    },
    /// mount("/", MS_REC|MS_PRIVATE) in the new mount namespace, once every host tree is cloned
    /// (a clone made before keeps its link to the host's mount, for a bind that asks for it).
    MakeMountsPrivate,
    /// open_tree(src, OPEN_TREE_CLONE|AT_RECURSIVE) into slot; attrs and `propagation` (an
    /// MS_* type; 0: the source's, kept for a later SetPropagation) set recursively on the copy.
    /// With `expect` (a bind source: a path someone else may rename), src is opened with no
    /// symlink followed and cloned through that fd only if it is still (st_dev, st_ino).
    CloneTree {
        src: CString,
        slot: usize,
        attrs: u64,
        propagation: u64,
        expect: Option<(u64, u64)>,
    },
    /// mount_setattr(slot, propagation, AT_RECURSIVE) on a detached tree: a mount's asked-for
    /// propagation type, set after its last clone (an unbindable tree cannot be cloned).
    SetPropagation {
        slot: usize,
        propagation: u64,
        shown: CString,
    },
    /// The root mount's own propagation type (linux.rootfsPropagation), once it is the root:
    /// "/" opened and set with mount_setattr (a shared root cannot be pivoted into). Not
    /// recursive: the binds below keep theirs, lonely's /proc, /dev and /sys stay private.
    RootPropagation(u64),
    /// fchdir to the rootfs the parent opened once (rootfs.rs), then unshare the mount
    /// namespace: the working directory moves to the new namespace's copy of that mount.
    /// With `join`: setns into that mount namespace instead, then the rootfs is `shown` there,
    /// opened with no symlink and refused (ESTALE) unless it is the directory `fd` is.
    EnterRootfs {
        fd: c_int,
        shown: CString,
        join: Option<c_int>,
    },
    /// open_tree(".", OPEN_TREE_CLONE|AT_RECURSIVE) of the entered rootfs into slot, with attrs
    /// and a propagation type (MS_SLAVE keeps it a receiver of the host's mounts).
    CloneRootfs {
        shown: CString,
        slot: usize,
        attrs: u64,
        propagation: u64,
    },
    /// A fresh filesystem (fsopen/fsconfig/fsmount) into slot.
    NewFs {
        fstype: CString,
        params: Vec<(CString, Option<CString>)>,
        attrs: u64,
        slot: usize,
    },
    /// Attach the tree in slot at STAGE and open it as the root (slot ROOT).
    AttachRoot {
        slot: usize,
    },
    /// No mount namespace (the caller's is inherited): fchdir to the rootfs the parent opened,
    /// nothing unshared. Its clone is then built as a detached tree, never attached to the
    /// caller's mount table (move_mount into a detached tree: Linux 6.15).
    EnterRootfsShared {
        fd: c_int,
        shown: CString,
    },
    /// The detached tree in slot is the root (slot ROOT), as it is: no stage in a namespace.
    KeepRootDetached {
        slot: usize,
    },
    /// chroot into the detached root (`fd` None: slot ROOT; Some: an exec's copy of a
    /// running container's root, its PID 1's /proc/PID/root), then chdir("/").
    ChrootInto {
        fd: Option<c_int>,
    },
    /// mkdir -p inside the root, one component per entry.
    EnsureDir {
        components: Vec<InRoot>,
    },
    EnsureFile {
        target: InRoot,
    },
    /// A fresh clone of a bind's early clone, just before it is attached: since Linux 6.8
    /// mountinfo lists mounts by creation, and this keeps the config's order there. A kernel
    /// that cannot clone a detached tree keeps the early clone (same mount, older id).
    Reclone {
        slot: usize,
    },
    /// move_mount(slot -> target). `keep`: the slot stays open, the base of later steps.
    Attach {
        slot: usize,
        target: InRoot,
        keep: bool,
    },
    /// symlinkat(link_target, slots[dir], at.name): `dir` holds `at`'s parent, opened once.
    Symlink {
        link_target: CString,
        at: InRoot,
        dir: usize,
    },
    /// mknod in the container's own /dev tmpfs (slots[dir]): docker's character devices
    /// (0666, root's), or a config's node with its type, mode and owner.
    Device {
        at: InRoot,
        dir: usize,
        major: u32,
        minor: u32,
        mode: u32,
        owner: Option<(u32, u32)>,
    },
    /// A host device node bound into the container's /dev (slots[dir]; a user namespace cannot mknod).
    BindDevice {
        at: InRoot,
        dir: usize,
        slot: usize,
    },
    /// Open `name` in the container's /dev (slots[dir]) into slot, refused unless it is the
    /// character device 1:3: the source of every file mask (the CVE-2025-31133 class).
    OpenNull {
        dir: usize,
        slot: usize,
    },
    /// Open the container's own /dev/null (slots[dir]; refused unless it is 1:3) onto the fds
    /// marked: an `ignore` stream is never the host's /dev/null, whose mode uid 0 could change.
    NullStdio {
        dir: usize,
        fds: [bool; 3],
    },
    /// Remount a tmpfs lonely filled (slots[dir], shown as `shown`) read-only, once filled: no
    /// node can be added to /dev where nodes open, no entry to /sys/fs/cgroup.
    Readonly {
        dir: usize,
        shown: &'static str,
    },
    /// mount_setattr on the root mount itself (not recursive).
    RootAttrs(u64),
    /// docker's masked paths: /dev/null over a file, an empty read-only tmpfs over a directory.
    /// `dir`: known from the host's own /proc and /sys (same kernel); None: looked up in the child.
    /// `null`: the slot of the container's /dev/null (Open); `empty`: the slot where the first
    /// directory's tmpfs stays open, so that the others are copies of it, not new filesystems.
    MaskPath {
        target: InRoot,
        dir: Option<bool>,
        null: usize,
        empty: usize,
    },
    /// `target` bound over itself with `attrs` (recursive): read-only paths, /dev/shm.
    /// `must_exist`: a path the plan knows is there (the kernel's own); missing is an error.
    Rebind {
        target: InRoot,
        attrs: u64,
        must_exist: bool,
    },
    /// mkdirat(slots[dir], at.name, mode), the mode as given (no umask).
    Mkdir {
        at: InRoot,
        dir: usize,
        mode: u32,
    },
    /// Drop every capability not in `keep` from the bounding set (0..=last).
    BoundingSet {
        keep: u64,
        last: u32,
    },
    /// capset, then the ambient set raised bit by bit (it starts empty).
    Capabilities {
        effective: u64,
        permitted: u64,
        inheritable: u64,
        ambient: u64,
    },
    /// Permitted capabilities survive the credential change (an OCI config's sets for a non-root uid).
    KeepCaps,
    /// A /proc file written in the child (oom_score_adj; a namespaced sysctl before /proc/sys
    /// is made read-only); the stage names it.
    WriteProc {
        path: CString,
        text: Vec<u8>,
    },
    NoNewPrivs,
    Seccomp(crate::seccomp::Program),
    PivotRoot,
    Hostname(Vec<u8>),
    /// personality(2): the execution domain the command runs in (`uname -m` says i686 in LINUX32).
    Personality(u64),
    LoopbackUp,
    Credentials {
        uid: u32,
        gid: u32,
        groups: Vec<libc::gid_t>,
        set_groups: bool,
    },
    /// In a new user namespace: setgroups "deny", then map the caller's uid and gid to 0.
    IdMaps {
        uid_map: Vec<u8>,
        gid_map: Vec<u8>,
    },
    /// Wait until the parent wrote the maps (one byte on this pipe).
    WaitForMaps(c_int),
    Chdir(CString),
    /// mkdir -p: each of `dirs` (parents first) that is missing is made 0755 and owned by
    /// uid:gid. Best effort: a failure stops it and the chdir after it says why.
    MakeDirs {
        dirs: Vec<CString>,
        uid: u32,
        gid: u32,
    },
    /// getcwd names a directory inside the root (the CVE-2024-21626 class: not one reached
    /// through a leaked fd, which the kernel shows as "(unreachable)").
    VerifyCwd,
    /// close_range of every fd from 3 but `keep` (-1: none): the parent's pidfd that ParentAlive
    /// polls, and in an exec helper the console socket its sibling still needs.
    CloseFds {
        keep: [c_int; 4],
    },
    /// Once credentials changed (which clears the parent-death signal, re-armed just before):
    /// the parent, through its pidfd, must still be alive, or it died in between and no
    /// signal will ever come. The pidfd is closed.
    ParentAlive(c_int),
}

/// The slot of the root's O_PATH fd once AttachRoot ran.
pub const ROOT: usize = 0;

impl Op {
    /// The failing stage as the user reads it (crun style: what and where).
    pub fn stage(&self) -> (String, Option<String>) {
        let s = |c: &CString| c.to_string_lossy().into_owned();
        let abs = |t: &InRoot| format!("/{}", t.path.to_string_lossy().trim_start_matches("./"));
        match self {
            Op::ResetSignals { .. } => ("reset signals".into(), None),
            Op::NewSession => ("setsid".into(), None),
            Op::NotDumpable => ("prctl PR_SET_DUMPABLE".into(), None),
            Op::ForkIntoPidns => ("clone into the container".into(), None),
            Op::OpenDevOfCwd { .. } => ("open".into(), Some("/dev".into())),
            Op::ParentDeathSignal(_) => ("prctl PR_SET_PDEATHSIG".into(), None),
            Op::Dup2 { to, .. } => (format!("dup2 stdio {to}"), None),
            Op::Console {
                ptmx,
                size: Some((rows, cols)),
                ..
            } => (format!("open console {cols}x{rows}"), Some(s(ptmx))),
            Op::Console { ptmx, .. } => ("open console".into(), Some(s(ptmx))),
            Op::Unshare(_) => ("unshare".into(), None),
            Op::JoinNamespace { .. } => ("setns".into(), None),
            Op::JoinCgroup(_) => ("join cgroup".into(), None),
            Op::Rlimit { resource, .. } => (format!("setrlimit {resource}"), None),
            Op::MakeMountsPrivate => ("make mounts private".into(), Some("/".into())),
            Op::CloneTree { src, .. } => ("open_tree".into(), Some(s(src))),
            Op::SetPropagation { shown, .. } => ("set propagation".into(), Some(s(shown))),
            Op::RootPropagation(_) => ("set propagation".into(), Some("/".into())),
            Op::EnterRootfs { shown, .. } => ("enter rootfs".into(), Some(s(shown))),
            Op::CloneRootfs { shown, .. } => ("open_tree".into(), Some(s(shown))),
            Op::NewFs { fstype, .. } => (format!("mount {}", s(fstype)), None),
            Op::AttachRoot { .. } => ("attach root".into(), Some(s(&STAGE.to_owned()))),
            Op::EnterRootfsShared { shown, .. } => ("enter rootfs".into(), Some(s(shown))),
            Op::KeepRootDetached { .. } => ("keep root detached".into(), None),
            Op::ChrootInto { .. } => ("chroot".into(), None),
            // Mount points exist only to be mounted on: their failures are the mount's.
            Op::EnsureDir { components } => ("mount".into(), components.last().map(abs)),
            Op::EnsureFile { target } => ("mount".into(), Some(abs(target))),
            Op::Attach { target, .. } => ("mount".into(), Some(abs(target))),
            Op::Reclone { .. } => ("open_tree".into(), None),
            Op::Symlink { at, .. } => ("symlink".into(), Some(abs(at))),
            Op::Device { at, .. } => ("mknod".into(), Some(abs(at))),
            Op::BindDevice { at, .. } => ("mount".into(), Some(abs(at))),
            Op::OpenNull { .. } => ("open character device 1:3".into(), Some("/dev/null".into())),
            Op::NullStdio { .. } => ("stdio from".into(), Some("/dev/null".into())),
            Op::Readonly { shown, .. } => ("remount read-only".into(), Some(shown.to_string())),
            Op::MaskPath { target, .. } => ("mask".into(), Some(abs(target))),
            Op::Rebind { target, attrs, .. } if attrs & crate::sys::MOUNT_ATTR_RDONLY != 0 => {
                ("remount read-only".into(), Some(abs(target)))
            }
            Op::Rebind { target, .. } => ("mount".into(), Some(abs(target))),
            Op::Mkdir { at, .. } => ("mkdir".into(), Some(abs(at))),
            Op::BoundingSet { .. } => ("prctl PR_CAPBSET_DROP".into(), None),
            Op::Capabilities { .. } => ("capset".into(), None),
            Op::KeepCaps => ("prctl PR_SET_KEEPCAPS".into(), None),
            Op::WriteProc { path, .. } => (format!("write `{}`", path.to_string_lossy()), None),
            Op::NoNewPrivs => ("prctl PR_SET_NO_NEW_PRIVS".into(), None),
            Op::Seccomp(_) => ("seccomp".into(), None),
            Op::RootAttrs(_) => ("remount root read-only".into(), Some("/".into())),
            Op::PivotRoot => ("pivot_root".into(), None),
            Op::Hostname(_) => ("sethostname".into(), None),
            Op::Personality(_) => ("personality".into(), None),
            Op::LoopbackUp => ("loopback up".into(), Some("lo".into())),
            Op::Credentials { .. } => ("set credentials".into(), None),
            Op::IdMaps { .. } => (
                "write uid_map/gid_map".into(),
                Some("/proc/self/uid_map".into()),
            ),
            Op::WaitForMaps(_) => ("wait for uid_map/gid_map".into(), None),
            Op::Chdir(p) => ("chdir".into(), Some(s(p))),
            Op::MakeDirs { dirs, .. } => ("mkdir -p".into(), dirs.last().map(s)),
            Op::VerifyCwd => ("getcwd".into(), None),
            Op::CloseFds { .. } => ("close_range".into(), None),
            Op::ParentAlive(_) => ("check the parent is alive".into(), None),
        }
    }
}

impl InRoot {
    /// `path` is relative to the root, normalized (no "", ".", ".." components).
    pub fn new(path: &str) -> InRoot {
        let path = path.trim_matches('/');
        let (parent, name) = match path.rsplit_once('/') {
            Some((p, n)) => (p, n),
            None => (".", path),
        };
        InRoot {
            parent: c(parent),
            name: c(name),
            path: c(path),
            base: ROOT,
            rel: c(path),
            strict: false,
        }
    }

    /// `path` in the root, resolved with no symlink: where a kernel filesystem is attached.
    pub fn no_symlinks(path: &str) -> InRoot {
        InRoot {
            strict: true,
            ..InRoot::new(path)
        }
    }

    /// `rel` inside the filesystem in `base`, which the root shows at `at` ("dev" + "pts").
    pub fn beneath(base: usize, at: &str, rel: &str) -> InRoot {
        let rel = rel.trim_matches('/');
        InRoot {
            rel: c(rel),
            base,
            strict: true,
            ..InRoot::new(&format!("{at}/{rel}"))
        }
    }

    /// One entry per component of `path`, for `EnsureDir`.
    pub fn components(path: &str) -> Vec<InRoot> {
        let path = path.trim_matches('/');
        let mut out = Vec::new();
        for (i, _) in path
            .match_indices('/')
            .chain(std::iter::once((path.len(), "")))
        {
            out.push(InRoot::new(&path[..i]));
        }
        out
    }
}

fn c(s: &str) -> CString {
    CString::new(s).expect("paths are checked for NUL before planning")
}

/// The namespaces of clone/unshare/setns flags, by their /proc/PID/ns names.
pub fn namespaces_of(flags: c_int) -> String {
    let names = [
        (libc::CLONE_NEWUSER, "user"),
        (libc::CLONE_NEWPID, "pid"),
        (libc::CLONE_NEWNS, "mnt"),
        (libc::CLONE_NEWUTS, "uts"),
        (libc::CLONE_NEWIPC, "ipc"),
        (libc::CLONE_NEWNET, "net"),
        (libc::CLONE_NEWCGROUP, "cgroup"),
    ];
    let on: Vec<&str> = names
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, n)| *n)
        .collect();
    on.join(",")
}

impl Op {
    /// What the step does it with, for `explain()` (none where the stage says it all).
    pub fn params(&self) -> Option<String> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).trim_end().replace('\n', "; ");
        Some(match self {
            Op::Unshare(flags) => namespaces_of(*flags),
            Op::JoinNamespace { nstype, .. } => format!("{} made ahead of time", namespaces_of(*nstype)),
            Op::Rlimit { soft, hard, .. } => format!("soft {soft}, hard {hard}"),
            Op::NewFs { params, attrs, .. } => {
                let p: Vec<String> = params
                    .iter()
                    .map(|(k, v)| match v {
                        Some(v) => format!("{}={}", k.to_string_lossy(), v.to_string_lossy()),
                        None => k.to_string_lossy().into_owned(),
                    })
                    .collect();
                format!("{} attrs {attrs:#x}", p.join(","))
            }
            Op::RootAttrs(attrs) => format!("attrs {attrs:#x}"),
            Op::BoundingSet { keep, .. } => format!("keep {keep:#x}"),
            Op::Capabilities {
                effective,
                permitted,
                inheritable,
                ambient,
            } => format!("effective {effective:#x}, permitted {permitted:#x}, inheritable {inheritable:#x}, ambient {ambient:#x}"),
            Op::WriteProc { text: t, .. } => text(t),
            Op::Seccomp(program) => format!("{} BPF instructions", program.0.len()),
            Op::Hostname(name) => text(name),
            Op::Personality(p) => format!("{p:#x}"),
            Op::Credentials { uid, gid, groups, .. } => format!("uid {uid}, gid {gid}, groups {groups:?}"),
            Op::IdMaps { uid_map, gid_map } => format!("uid_map {}, gid_map {}", text(uid_map), text(gid_map)),
            Op::MakeDirs { uid, gid, .. } => format!("owned by {uid}:{gid}"),
            _ => return None,
        })
    }
}

/// A human-readable listing of the plan, one step per line, each with its parameters.
pub fn describe(plan: &[Op]) -> String {
    plan.iter()
        .enumerate()
        .map(|(i, op)| {
            let (stage, path) = op.stage();
            let mut line = match path {
                Some(p) => format!("{i:3} {stage} `{p}`"),
                None => format!("{i:3} {stage}"),
            };
            if let Some(params) = op.params() {
                line.push_str(&format!(": {params}"));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_root_splits_parent_and_name() {
        let t = InRoot::new("/dev/pts/");
        assert_eq!(t.parent.to_str().unwrap(), "dev");
        assert_eq!(t.name.to_str().unwrap(), "pts");
        assert_eq!(InRoot::new("proc").parent.to_str().unwrap(), ".");
    }

    #[test]
    fn components_cover_every_prefix() {
        let c: Vec<_> = InRoot::components("a/b/c")
            .iter()
            .map(|t| t.path.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(c, ["a", "a/b", "a/b/c"]);
    }
}
