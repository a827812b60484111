//! Control groups: one interface over the host's mode (unified v2, legacy v1, or hybrid:
//! v1 controllers beside an empty v2 tree). A container's cgroup nests under the Node
//! process's own cgroup, is joined by the child before exec, and is removed when it ends.
//! The host's hierarchies are never remounted or reconfigured.

mod host;
mod v1;
mod v2;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

pub use host::{detect, Host, Mode};

/// What a container may use. Validated for type and range in index.ts; host support here.
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    pub memory: Option<u64>,
    /// Memory plus swap, in bytes (docker's --memory-swap); -1 for unlimited swap.
    pub memory_swap: Option<i64>,
    /// A soft limit, reclaimed down to under pressure (docker's --memory-reservation).
    #[serde(default)]
    pub memory_reservation: Option<u64>,
    /// Fraction of CPUs, as `docker --cpus`.
    pub cpus: Option<f64>,
    /// Relative CPU weight in v1 shares (2..262144), as `docker --cpu-shares`.
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids: Option<u64>,
    /// Relative IO weight (10..1000 in v1's blkio.weight scale, 1..10000 on v2).
    pub io_weight: Option<u64>,
    /// Where the cgroup is (an OCI `cgroupsPath`): absolute from each hierarchy's root, relative
    /// from the caller's own cgroup. Every controller the host has is joined then (as runc
    /// does), and the directory may exist already. None: `lonely-<pid>-<n>` under our own.
    #[serde(default)]
    pub path: Option<String>,
    /// Control files written as given, after the named limits (an OCI config's resources in
    /// this host's file names: `memory.limit_in_bytes`, `cpu.max`...). The controller is the
    /// name before its first dot.
    #[serde(default)]
    pub files: Vec<ControlFile>,
}

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ControlFile {
    pub file: String,
    pub value: String,
}

impl ControlFile {
    pub fn controller(&self) -> &str {
        self.file.split('.').next().unwrap_or_default()
    }
}

/// Accounting read when the container ends (or live, for `stats()`).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Stats {
    pub memory_bytes: Option<u64>,
    pub memory_peak_bytes: Option<u64>,
    pub cpu_usage_us: Option<u64>,
    pub pids: Option<u64>,
    pub pids_peak: Option<u64>,
    pub oom_kills: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroups: cannot read {what}: {source}")]
    Detect {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("cgroups: no usable cgroup hierarchy is mounted (looked in /proc/self/mountinfo)")]
    NoHierarchy,
    #[error("limits.{limit}: {why}")]
    Unsupported { limit: &'static str, why: String },
    #[error("mkdir `{}`: {source}{}", path.display(), if unsafe { libc::geteuid() } != 0 && matches!(source.raw_os_error(), Some(libc::EACCES | libc::EPERM)) { " (rootless: limits need a cgroup delegated to this user, e.g. `systemd-run --user --scope -p Delegate=yes node ...`)" } else { "" })]
    Mkdir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("write `{}` ({value}): {source}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("limits.{limit}: the kernel refused {value:?} for `{}`: {source}", path.display())]
    Refused {
        limit: &'static str,
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("open `{}`: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cgroup `{file}`: {why}")]
    File { file: String, why: String },
    #[error("cgroupsPath `{0}`: must not contain `..` or be empty")]
    BadPath(String),
    #[error("rmdir `{}`: {source}", path.display())]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A cgroup filesystem the container's /sys/fs/cgroup shows (mounted in its cgroup namespace,
/// so its root is the container's own cgroup).
#[derive(Debug, Clone, PartialEq)]
pub enum CgroupFs {
    /// cgroup2, at /sys/fs/cgroup itself.
    Unified,
    /// A v1 hierarchy at /sys/fs/cgroup/`dir` (the host's name for it, `cpu,cpuacct`), mounted
    /// with its controllers (all of them: the kernel reuses a hierarchy only for its exact set).
    Hierarchy {
        dir: String,
        controllers: Vec<String>,
    },
}

/// A container's cgroup, created before clone.
pub trait Cgroup: Send {
    /// The filesystems that show it from inside (v1: one per hierarchy it has a directory in).
    fn filesystems(&self) -> Vec<CgroupFs>;
    /// `cgroup.procs` of every hierarchy, open for writing: the child writes "0" to each.
    fn join_fds(&self) -> Vec<i32>;
    /// The container's cgroup directories (one per hierarchy used), for a later process to join.
    fn dirs(&self) -> Vec<PathBuf>;
    /// An eventfd that becomes readable when the cgroup hits OOM (v1), for the reaper.
    fn oom_eventfd(&self) -> Option<&OwnedFd>;
    fn stats(&self) -> Stats;
    /// SIGKILL whatever still runs in the cgroup (processes outside a PID namespace).
    fn kill_all(&self);
    /// Closes the fds and removes the directories; retries briefly while the kernel empties them.
    fn remove(&mut self) -> Result<(), CgroupError>;
    fn describe(&self) -> String;
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// `lonely-<node pid>-<n>`: the pid lets a later process sweep what a crashed one left.
pub fn next_name() -> String {
    format!(
        "lonely-{}-{}",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
}

/// A detached container's: not keyed by our pid (the sweep would take it once we exit, with
/// the container still in it), but unique all the same; its remover deletes it.
pub fn detached_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "lonely-detached-{}-{nanos:x}",
        next_name().trim_start_matches("lonely-")
    )
}

/// Where a container's cgroup goes in one hierarchy: a name under our own cgroup, or an OCI
/// `cgroupsPath` (from the hierarchy's root when absolute).
#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    Nested(String),
    Path(String),
}

impl Place {
    fn of(limits: &Limits, detached: bool) -> Result<Place, CgroupError> {
        match &limits.path {
            Some(p) => {
                let parts: Vec<&str> = p.split('/').filter(|c| !c.is_empty()).collect();
                if parts.is_empty() || parts.iter().any(|c| *c == ".." || *c == ".") {
                    return Err(CgroupError::BadPath(p.clone()));
                }
                Ok(Place::Path(p.clone()))
            }
            None if detached => Ok(Place::Nested(detached_name())),
            None => Ok(Place::Nested(next_name())),
        }
    }

    /// The directory in a hierarchy mounted at `mount` where we sit in `base`.
    pub fn dir(&self, base: &Path, mount: &Path) -> PathBuf {
        match self {
            Place::Nested(name) => base.join(name),
            Place::Path(p) if p.starts_with('/') => mount.join(p.trim_start_matches('/')),
            Place::Path(p) => base.join(p),
        }
    }

    /// With a path, every controller of the host (as runc), not only what limits need.
    pub fn all_controllers(&self) -> bool {
        matches!(self, Place::Path(_))
    }
}

/// A control file's name is one component (no path out of the cgroup).
fn check_files(limits: &Limits) -> Result<(), CgroupError> {
    for f in &limits.files {
        if f.file.is_empty()
            || f.file.contains('/')
            || f.file.starts_with('.')
            || f.controller().is_empty()
        {
            return Err(CgroupError::File {
                file: f.file.clone(),
                why: "not a control file name".into(),
            });
        }
    }
    Ok(())
}

/// Makes the container's cgroup with `limits` applied (`detached`: named so no sweep takes it).
/// The filesystems a container with `limits` would show at /sys/fs/cgroup, nothing made.
pub fn planned_filesystems(limits: &Limits, detached: bool) -> Vec<CgroupFs> {
    let (Ok(host), Ok(place)) = (detect(), Place::of(limits, detached)) else {
        return Vec::new();
    };
    match &host.mode {
        Mode::Unified { .. } => vec![CgroupFs::Unified],
        Mode::Legacy { controllers } | Mode::Hybrid { controllers, .. } => {
            v1::planned_filesystems(controllers, &place, limits)
        }
    }
}

pub fn create(limits: &Limits, detached: bool) -> Result<Box<dyn Cgroup>, CgroupError> {
    let host = detect()?;
    let place = Place::of(limits, detached)?;
    check_files(limits)?;
    match &host.mode {
        Mode::Unified { base, mount } => Ok(Box::new(v2::V2::create(base, mount, &place, limits)?)),
        Mode::Legacy { controllers } | Mode::Hybrid { controllers, .. } => {
            Ok(Box::new(v1::V1::create(controllers, &place, limits)?))
        }
    }
}

pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(|source| CgroupError::Write {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    })
}

/// cgroup.procs open for writing. (O_CREAT is a no-op on cgroupfs, where it always exists,
/// and lets the unit tests run against a plain directory tree.)
/// The accounting of a container whose cgroup directories another process made and recorded
/// (a detached container's state): read from those directories as its own cgroup would be.
pub fn stats_of(dirs: &[PathBuf]) -> Stats {
    match dirs {
        [dir] if dir.join("cgroup.controllers").exists() => v2::V2::existing(dir.clone()).stats(),
        _ => v1::V1::existing(dirs).stats(),
    }
}

pub fn open_procs(path: PathBuf) -> Result<OwnedFd, CgroupError> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path);
    file.map(OwnedFd::from)
        .map_err(|source| CgroupError::Open { path, source })
}

/// Writes one limit's file; a refusal names the limit (`limits.cpuset: the kernel refused ...`).
pub(crate) fn write_limit(
    limit: &'static str,
    path: &Path,
    value: &str,
) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(|source| CgroupError::Refused {
        limit,
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    })
}

pub(crate) fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A `key value` line from a flat-keyed file (memory.events, cpu.stat, memory.oom_control).
pub(crate) fn read_key(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// rmdir, retried: a cgroup whose last task just exited can be busy for a moment.
pub(crate) fn remove_dir(path: &Path) -> Result<(), CgroupError> {
    let mut delay = std::time::Duration::from_micros(100);
    for _ in 0..12 {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
    std::fs::remove_dir(path).map_err(|source| CgroupError::Remove {
        path: path.to_owned(),
        source,
    })
}

/// Kills the pids listed in `procs` (a cgroup.procs file).
pub(crate) fn kill_listed(procs: &Path) {
    if let Ok(text) = std::fs::read_to_string(procs) {
        for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Removes `lonely-<pid>-<n>` cgroups under `parent` whose Node process is gone.
pub(crate) fn sweep_stale(parent: &Path, procs_file: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("lonely-"))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive && pid != std::process::id() as i32 {
            let dir = entry.path();
            kill_listed(&dir.join(procs_file));
            let _ = remove_dir(&dir);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn flat_keyed_files_are_read_by_key() {
        let dir = tempdir();
        let f = dir.join("memory.events");
        std::fs::write(
            &f,
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        assert_eq!(read_key(&f, "oom_kill"), Some(1));
        assert_eq!(read_key(&f, "oom"), Some(1));
        assert_eq!(read_key(&f, "max"), Some(3));
        assert_eq!(read_key(&f, "missing"), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn stale_cgroups_of_dead_processes_are_swept_and_live_ones_kept() {
        let dir = tempdir();
        let dead = dir.join("lonely-999999999-3");
        let mine = dir.join(format!("lonely-{}-0", std::process::id()));
        let other = dir.join("unrelated");
        // A detached container's outlives the (dead) process that made it.
        let detached = dir.join("lonely-detached-999999999-0-1a2b3c");
        for d in [&dead, &mine, &other, &detached] {
            std::fs::create_dir(d).unwrap();
        }
        sweep_stale(&dir, "cgroup.procs");
        assert!(!dead.exists());
        assert!(mine.exists() && other.exists());
        assert!(detached.exists(), "a detached container's cgroup was swept");
        std::fs::remove_dir_all(dir).unwrap();
    }

    pub(crate) fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "lonely-cg-test-{}-{}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
