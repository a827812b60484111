//! ContainerSpec: what index.ts sends (already validated there, checked again here for the
//! invariants the child relies on). The planner (planner/) turns it into a plan.

use std::ffi::CString;

use serde::Deserialize;

use crate::cgroups::Limits;
use crate::planner;
pub use crate::planner::Prepared;
use crate::stdio::{Named, Stdio};

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerSpec {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub hostname: Option<String>,
    pub namespaces: Namespaces,
    /// None: the built-in read-only host mirror.
    pub rootfs: Option<String>,
    #[serde(default)]
    pub readonly_root: bool,
    /// The root mount's propagation after pivot_root (an OCI `linux.rootfsPropagation`);
    /// None: private, as every mount lonely makes.
    #[serde(default)]
    pub root_propagation: Option<Propagation>,
    /// The container's own tmpfs /tmp (docker's); an OCI config gets only the mounts it lists.
    #[serde(default = "yes")]
    pub tmp: bool,
    /// Its own cgroup, read-only at /sys/fs/cgroup (docker's); an OCI config lists its own mounts.
    #[serde(default = "yes")]
    pub cgroup_mount: bool,
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub groups: Vec<u32>,
    #[serde(default)]
    pub tty: bool,
    /// With `tty`: the terminal's size from its first instruction (TIOCSWINSZ before exec).
    /// None: the kernel's 0x0, as an OCI config without `consoleSize`.
    #[serde(default)]
    pub tty_size: Option<TtySize>,
    #[serde(default = "inherit_all")]
    pub stdio: [Stdio; 3],
    /// cgroup limits; None: no cgroup at all.
    #[serde(default)]
    pub limits: Option<Limits>,
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    /// uid/gid ranges for the user namespace, written by the parent (fork-style clone).
    #[serde(default)]
    pub id_maps: Option<crate::userns::RangeMaps>,
    /// An image's layers as the root: overlayfs with a writable upper directory of its own.
    #[serde(default)]
    pub image: Option<ImageRoot>,
    /// The capability set root keeps (None: docker's default 14).
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
    /// `capAdd: ['ALL']`: keep what this process's bounding set allows instead of failing.
    #[serde(default)]
    pub capabilities_all: bool,
    #[serde(default = "yes")]
    pub no_new_privileges: bool,
    /// The setuid guard (a container that writes into host directories): with the default
    /// seccomp profile, no call may leave a setuid or setgid file (seccomp/compact.rs).
    #[serde(default)]
    pub setuid_guard: bool,
    /// The rootfs and bind mounts are mounted `nosuid` (unless `allowSetuid`).
    #[serde(default)]
    pub nosuid: bool,
    /// Exec into this running container (the host pid of its PID 1) instead of making one: its
    /// namespaces and cgroup are joined, `namespaces` says which it has, the filesystem fields
    /// are ignored, and the privileges apply as for a PID 1.
    #[serde(default)]
    pub join: Option<i32>,
    /// PID 1 is lonely-init (init.rs), which runs `argv` (none: it only reaps) as its child.
    #[serde(default)]
    pub init: bool,
    /// Outlives this process: no parent-death signal, and lonely-monitor (monitor.rs) as the
    /// parent of PID 1, holding its stdio, log, attach socket and exit status in `state_dir`.
    #[serde(default)]
    pub detached: bool,
    #[serde(default)]
    pub state_dir: Option<String>,
    /// Detached and created, not started (`docker create`): PID 1 waits, every setup step
    /// done, as `lonely-init --hold` until its monitor is told to start it.
    #[serde(default)]
    pub held: bool,
    /// Namespaces to join instead of making them (an OCI config's `linux.namespaces[].path`):
    /// network, IPC and UTS, as a pod's containers join its sandbox's.
    #[serde(default)]
    pub join_paths: JoinPaths,
    /// Held without a monitor: the fd PID 1 waits on (a fifo another process writes to).
    #[serde(default)]
    pub hold_fd: Option<i32>,
    /// Detached with an image: the fd of its writable layer's lock, handed to its monitor.
    #[serde(default)]
    pub layer_lock: Option<i32>,
    /// With `join` for a container this process did not start (detached by another): its PID
    /// 1's start time (/proc/<pid>/stat field 22), checked against the pid before joining.
    #[serde(default)]
    pub join_start: Option<u64>,
    /// With `join_start`: that container's cgroup directories, to join too.
    #[serde(default)]
    pub join_cgroups: Vec<String>,
    /// Nothing in this process waits for the container's PID 1 (or, with `join`, the exec'd
    /// process). It is our child until we exit, then the subreaper's (an engine's shim): reaped
    /// here, its exit would never reach the shim (lonely-runtime's `create`, `exec --detach`).
    #[serde(default)]
    pub unreaped: bool,
    #[serde(default = "default_seccomp")]
    pub seccomp: Seccomp,
    /// None: docker's lists (security.rs).
    #[serde(default)]
    pub masked_paths: Option<Vec<String>>,
    #[serde(default)]
    pub readonly_paths: Option<Vec<String>>,
    /// An OCI config's four capability sets; `capabilities` is then the bounding set. None:
    /// root gets `capabilities` as effective and permitted, nothing inheritable or ambient.
    #[serde(default)]
    pub capability_sets: Option<CapabilitySets>,
    /// Written to /proc/self/oom_score_adj before the credentials change.
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    /// Namespaced sysctls (`net.*`, `kernel.shm*`, `kernel.msg*`, `kernel.sem`, `fs.mqueue.*`,
    /// `kernel.domainname`), written once the container's namespaces exist.
    #[serde(default)]
    pub sysctl: std::collections::BTreeMap<String, String>,
    /// The execution domain (personality(2): 0 PER_LINUX, 8 PER_LINUX32), set before exec.
    #[serde(default)]
    pub personality: Option<u64>,
    /// Device nodes made in the container's /dev besides docker's (an OCI `linux.devices`).
    #[serde(default)]
    pub devices: Vec<DeviceNode>,
    /// Size of /dev/shm as tmpfs's `size=` (docker's --shm-size). None: docker's 64 MiB.
    #[serde(default)]
    pub shm_size: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct DeviceNode {
    /// `/dev/<name>` or `/dev/<dir>/<name>`, checked by `validate_devices`.
    pub path: String,
    /// `c` (or `u`), `b` or `p`.
    pub kind: String,
    #[serde(default)]
    pub major: u32,
    #[serde(default)]
    pub minor: u32,
    pub mode: u32,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
}

impl DeviceNode {
    pub fn file_type(&self) -> u32 {
        match self.kind.as_str() {
            "b" => libc::S_IFBLK,
            "p" => libc::S_IFIFO,
            _ => libc::S_IFCHR,
        }
    }
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct CapabilitySets {
    #[serde(default)]
    pub effective: Vec<String>,
    #[serde(default)]
    pub permitted: Vec<String>,
    #[serde(default)]
    pub inheritable: Vec<String>,
    #[serde(default)]
    pub ambient: Vec<String>,
}

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageRoot {
    /// Top layer first (overlayfs `lowerdir` order).
    pub lowerdirs: Vec<String>,
    pub upper: String,
    pub work: String,
}

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(untagged)]
pub enum Seccomp {
    Named(SeccompName),
    /// A docker/OCI profile as JSON text.
    Profile {
        profile: String,
    },
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum SeccompName {
    Default,
    Unconfined,
}

fn yes() -> bool {
    true
}

fn default_seccomp() -> Seccomp {
    Seccomp::Named(SeccompName::Default)
}

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rlimit {
    /// `nofile`, `nproc`, ... (setrlimit's names without RLIMIT_, lower case).
    pub name: String,
    /// -1 is unlimited (RLIM_INFINITY: u64::MAX does not survive JSON through a JS number).
    pub soft: i64,
    pub hard: i64,
}

/// RLIMIT_* by docker's --ulimit names.
pub fn rlimit_resource(name: &str) -> Option<libc::c_int> {
    Some(match name {
        "as" => libc::RLIMIT_AS,
        "core" => libc::RLIMIT_CORE,
        "cpu" => libc::RLIMIT_CPU,
        "data" => libc::RLIMIT_DATA,
        "fsize" => libc::RLIMIT_FSIZE,
        "locks" => libc::RLIMIT_LOCKS,
        "memlock" => libc::RLIMIT_MEMLOCK,
        "msgqueue" => libc::RLIMIT_MSGQUEUE,
        "nice" => libc::RLIMIT_NICE,
        "nofile" => libc::RLIMIT_NOFILE,
        "nproc" => libc::RLIMIT_NPROC,
        "rss" => libc::RLIMIT_RSS,
        "rtprio" => libc::RLIMIT_RTPRIO,
        "rttime" => libc::RLIMIT_RTTIME,
        "sigpending" => libc::RLIMIT_SIGPENDING,
        "stack" => libc::RLIMIT_STACK,
        _ => return None,
    } as libc::c_int)
}

/// Fds and namespaces made for this container before clone.
#[derive(Debug, Default)]
pub struct Handles {
    /// What the child dup2s onto 0, 1, 2.
    pub stdio: [i32; 3],
    /// A ready network namespace to join instead of making one at clone.
    pub netns: Option<i32>,
    /// A ready IPC namespace, likewise.
    pub ipcns: Option<i32>,
    /// A UTS namespace to join (`join_paths.uts`) instead of making one.
    pub utsns: Option<i32>,
    /// A mount namespace to make the root in (`join_paths.mnt`) instead of a new one.
    pub mntns: Option<i32>,
    /// cgroup.procs of the container's cgroup, one per hierarchy.
    pub cgroup_procs: Vec<i32>,
    /// The cgroup filesystems that show the container's cgroup (its /sys/fs/cgroup).
    pub cgroup_fs: Vec<crate::cgroups::CgroupFs>,
    /// With a tty: the socket the child sends the pty master over.
    pub console: Option<i32>,
    /// With id ranges: the pipe the child waits on until the parent wrote its maps.
    pub maps_sync: Option<i32>,
    /// The rootfs, opened and checked by the parent (rootfs.rs); -1 only to describe a plan.
    pub rootfs: Option<i32>,
    /// A pidfd of this process, which the child polls once its credentials changed.
    pub parent_pidfd: Option<i32>,
    /// With `join`: a pidfd of the container's PID 1, to setns into all its namespaces at once.
    pub join: Option<i32>,
    /// With `init` (or `held`): the sealed memfd of lonely-init, exec'd as PID 1.
    pub init: Option<i32>,
    /// With `held`: the read end of the pipe lonely-init waits on before the command.
    pub hold: Option<i32>,
}

/// A terminal's window size in character cells.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TtySize {
    pub columns: u16,
    pub rows: u16,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct JoinPaths {
    /// A PID namespace the container's first process enters (not as its PID 1): a pod's
    /// shared one. Entered by the parent's thread for the clone alone (setns, then back).
    #[serde(default)]
    pub pid: Option<String>,
    pub net: Option<String>,
    pub ipc: Option<String>,
    pub uts: Option<String>,
    /// A mount namespace the root is made in (an engine's pod): the rootfs is looked up there
    /// by path, with no symlink, and must be the directory the parent opened.
    pub mnt: Option<String>,
}

fn inherit_all() -> [Stdio; 3] {
    [Stdio::Named(Named::Inherit); 3]
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct Namespaces {
    pub pid: bool,
    pub mount: bool,
    pub uts: bool,
    pub ipc: bool,
    pub net: bool,
    pub cgroup: bool,
    /// A user namespace mapping the caller's uid and gid to 0 (rootless).
    #[serde(default)]
    pub user: bool,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum MountSpec {
    Bind {
        source: String,
        target: String,
        #[serde(default)]
        readonly: bool,
        /// An OCI mount's `noexec` / `nosuid` (lonely's binds are always `nodev`).
        #[serde(default)]
        noexec: bool,
        #[serde(default)]
        nosuid: bool,
        /// None: private (nothing propagates to or from the source).
        #[serde(default)]
        propagation: Option<Propagation>,
    },
    Tmpfs {
        target: String,
        size: Option<String>,
        mode: Option<String>,
        #[serde(default)]
        noexec: bool,
        #[serde(default)]
        readonly: bool,
        /// Owner of its root directory (tmpfs's uid= and gid=).
        #[serde(default)]
        uid: Option<u32>,
        #[serde(default)]
        gid: Option<u32>,
        #[serde(default)]
        propagation: Option<Propagation>,
    },
}

/// A mount's propagation type (mount(8)'s names). lonely's binds are recursive, so a bind's
/// applies to the whole bound tree (`slave` acts as `rslave`); the root's to the root mount.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Propagation {
    Private,
    Rprivate,
    Slave,
    Rslave,
    Shared,
    Rshared,
    Unbindable,
    Runbindable,
}

impl Propagation {
    /// The MS_* flag mount_setattr takes in its `propagation` field.
    pub fn flag(self) -> u64 {
        use crate::sys::{MS_PRIVATE, MS_SHARED, MS_SLAVE, MS_UNBINDABLE};
        match self {
            Propagation::Private | Propagation::Rprivate => MS_PRIVATE,
            Propagation::Slave | Propagation::Rslave => MS_SLAVE,
            Propagation::Shared | Propagation::Rshared => MS_SHARED,
            Propagation::Unbindable | Propagation::Runbindable => MS_UNBINDABLE,
        }
    }

    /// slave or shared: its clone must keep the host mount's peers until the type is set.
    pub fn keeps_peers(self) -> bool {
        use crate::sys::{MS_SHARED, MS_SLAVE};
        matches!(self.flag(), MS_SLAVE | MS_SHARED)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("spec: invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("spec: {field} contains a NUL byte")]
    Nul { field: &'static str },
    #[error("spec: argv is empty")]
    EmptyArgv,
    #[error("spec: {field} `{path}` must be an absolute path")]
    NotAbsolute { field: &'static str, path: String },
    #[error("spec: {field} `{path}` must not contain `..`")]
    DotDot { field: &'static str, path: String },
    #[error("container not running")]
    NotRunning,
    #[error("spec: a held container needs a monitor or a hold fd")]
    HeldWithoutHold,
    #[error(
        "uidMap/gidMap ranges do not go with `detached` yet (the single default mapping does)"
    )]
    DetachedIdRanges,
    #[error(
        "spec: joining a PID namespace goes with neither a user namespace nor a detached monitor"
    )]
    JoinedPidNamespace,
    #[error("spec: an image and mounts without a rootfs need the mount namespace")]
    NeedsMountNamespace,
    #[error("spec: a rootfs in the caller's mount namespace goes with no user namespace (its mounts need the caller's privileges)")]
    SharedMountNamespaceUser,
    #[error("spec: joining a mount namespace goes with a rootfs and no user namespace")]
    JoinedMountNamespace,
    #[error("spec: {0}")]
    Capabilities(String),
    #[error("spec: seccomp: {0}")]
    Seccomp(String),
    #[error("spec: sysctl `{0}` is not namespaced (only net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, kernel.domainname)")]
    Sysctl(String),
    #[error("spec: devices: {0}")]
    Device(String),
    #[error("image: {0}")]
    ImageLayers(String),
    #[error("spec: rlimits: unknown resource `{0}`")]
    UnknownRlimit(String),
    #[error("spec: mount source `{path}`: {source}")]
    Source {
        path: String,
        source: std::io::Error,
    },
}

pub fn parse(json: &str) -> Result<ContainerSpec, SpecError> {
    Ok(serde_json::from_str(json)?)
}

pub fn cstring(field: &'static str, s: &str) -> Result<CString, SpecError> {
    CString::new(s).map_err(|_| SpecError::Nul { field })
}

/// `path` must be absolute and free of `..`; returns it relative to the root, normalized.
pub fn container_path(field: &'static str, path: &str) -> Result<String, SpecError> {
    if !path.starts_with('/') {
        return Err(SpecError::NotAbsolute {
            field,
            path: path.into(),
        });
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(SpecError::DotDot {
            field,
            path: path.into(),
        });
    }
    cstring(field, path)?;
    Ok(parts.join("/"))
}

impl ContainerSpec {
    /// The `ignore` streams that get the container's own /dev/null (it has a /dev of ours and
    /// no terminal); the others of them get the host's, opened by stdio::wire.
    pub fn null_stdio(&self) -> [bool; 3] {
        let own_dev = self.own_root() && !self.tty;
        self.stdio
            .map(|s| own_dev && s == Stdio::Named(Named::Ignore))
    }

    /// A root of lonely's making (its /dev, /proc): in a mount namespace of its own, or a
    /// rootfs chrooted into as a detached tree in the caller's.
    pub fn own_root(&self) -> bool {
        self.namespaces.mount || self.rootfs.is_some()
    }

    /// Builds the plan around the fds made for this container, with this host's facts.
    pub fn prepare(&self, handles: &Handles) -> Result<Prepared, SpecError> {
        planner::prepare(self, handles, &planner::HostFacts::read())
    }
}

/// A bind source as the parent finds it: whether it is a directory (the mount point's kind) and
/// its (st_dev, st_ino), which the child checks the file it clones against. Opened with no
/// symlink in any component: the options gave its canonical path.
pub fn source_identity(path: &str) -> Result<(bool, (u64, u64)), SpecError> {
    let fail = |errno: nix::errno::Errno| SpecError::Source {
        path: path.into(),
        source: std::io::Error::from_raw_os_error(errno as i32),
    };
    let c = cstring("mounts.source", path)?;
    let fd = crate::sys::openat2(libc::AT_FDCWD, &c, libc::O_PATH, libc::RESOLVE_NO_SYMLINKS)
        .map_err(fail)?;
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let st = nix::sys::stat::fstat(&fd).map_err(fail)?;
    Ok((
        st.st_mode & libc::S_IFMT == libc::S_IFDIR,
        (st.st_dev, st.st_ino),
    ))
}

/// A spec the tests start from (the planner's tests too).
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{parse, ContainerSpec};

    pub fn spec(json: &str) -> ContainerSpec {
        parse(json).unwrap()
    }

    pub const BASE: &str = r#"{"argv":["ls","-l"],"env":["PATH=/bin:/usr/bin"],"cwd":"/","hostname":"box",
        "namespaces":{"pid":true,"mount":true,"uts":true,"ipc":true,"net":true,"cgroup":true},
        "rootfs":null,"uid":0,"gid":0}"#;
}

#[cfg(test)]
mod tests {
    use super::fixtures::{spec, BASE};
    use super::*;

    #[test]
    fn rejects_nul_and_relative_paths() {
        assert!(matches!(
            container_path("cwd", "tmp"),
            Err(SpecError::NotAbsolute { .. })
        ));
        assert!(matches!(
            container_path("mounts", "/a/../b"),
            Err(SpecError::DotDot { .. })
        ));
        assert_eq!(container_path("mounts", "/a//b/./c/").unwrap(), "a/b/c");
        let bad = BASE.replace(r#""-l""#, r#""a\u0000b""#);
        assert!(matches!(
            spec(&bad).prepare(&Handles {
                stdio: [0, 1, 2],
                ..Default::default()
            }),
            Err(SpecError::Nul { field: "argv" })
        ));
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(parse(&BASE.replace(r#""uid":0"#, r#""uid":0,"bogus":1"#)).is_err());
    }
}
