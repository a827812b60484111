//! Which cgroup hierarchies the host has and where the Node process sits in them.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::CgroupError;

/// One v1 controller: its name, the Node process's own directory in its hierarchy, and
/// where that hierarchy's root is mounted (an OCI `cgroupsPath` is taken from there).
#[derive(Debug, Clone, PartialEq)]
pub struct Controller {
    pub name: String,
    pub base: PathBuf,
    pub mount: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// cgroup v2 only; `base` is the Node process's own cgroup directory, `mount` the tree's.
    Unified { base: PathBuf, mount: PathBuf },
    /// cgroup v1 only.
    Legacy { controllers: Vec<Controller> },
    /// v1 controllers beside a v2 tree without them (systemd's hybrid layout): v1 is used.
    Hybrid {
        controllers: Vec<Controller>,
        unified: PathBuf,
    },
}

#[derive(Debug)]
pub struct Host {
    pub mode: Mode,
}

static HOST: OnceLock<Host> = OnceLock::new();

/// Detected once per process; the first detection also sweeps cgroups left by dead processes.
pub fn detect() -> Result<&'static Host, CgroupError> {
    if let Some(h) = HOST.get() {
        return Ok(h);
    }
    let read = |path: &'static str| {
        std::fs::read_to_string(path).map_err(|source| CgroupError::Detect { what: path, source })
    };
    let mode = parse(&read("/proc/self/mountinfo")?, &read("/proc/self/cgroup")?)?;
    match &mode {
        Mode::Unified { base, .. } => super::sweep_stale(base, "cgroup.procs"),
        Mode::Legacy { controllers } | Mode::Hybrid { controllers, .. } => {
            for c in controllers {
                super::sweep_stale(&c.base, "cgroup.procs");
            }
        }
    }
    let _ = HOST.set(Host { mode });
    Ok(HOST.get().expect("just set"))
}

struct Mount<'a> {
    root: &'a str,
    point: &'a str,
    fstype: &'a str,
    options: &'a str,
}

fn mounts(mountinfo: &str) -> Vec<Mount<'_>> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            Some(Mount {
                root: left.get(3)?,
                point: left.get(4)?,
                fstype: right.first()?,
                options: right.get(2)?,
            })
        })
        .collect()
}

/// The directory of `own` (a path from /proc/self/cgroup) under a mount of that hierarchy.
fn join(m: &Mount, own: &str) -> PathBuf {
    let rel = own
        .strip_prefix(m.root)
        .unwrap_or(own)
        .trim_start_matches('/');
    Path::new(m.point).join(rel)
}

/// Pure: mountinfo and /proc/self/cgroup text in, the host's mode out.
pub fn parse(mountinfo: &str, cgroup: &str) -> Result<Mode, CgroupError> {
    let mounts = mounts(mountinfo);
    let mut unified = None;
    let mut controllers = Vec::new();
    for line in cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(names), Some(own)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if names.is_empty() {
            unified = mounts
                .iter()
                .find(|m| m.fstype == "cgroup2")
                .map(|m| (join(m, own), PathBuf::from(m.point)));
            continue;
        }
        for name in names.split(',').filter(|n| !n.starts_with("name=")) {
            let mount = mounts
                .iter()
                .find(|m| m.fstype == "cgroup" && m.options.split(',').any(|o| o == name));
            if let Some(m) = mount {
                controllers.push(Controller {
                    name: name.to_owned(),
                    base: join(m, own),
                    mount: PathBuf::from(m.point),
                });
            }
        }
    }
    match (unified, controllers.is_empty()) {
        // Moved into the supervisor leaf (by ourselves earlier, or by another Node process of
        // our cgroup, before it forked us): containers go beside it, where it was delegated.
        (Some((base, mount)), true) if base.ends_with(super::v2::SUPERVISOR) && base != mount => {
            Ok(Mode::Unified {
                base: base.parent().unwrap_or(&mount).to_owned(),
                mount,
            })
        }
        (Some((base, mount)), true) => Ok(Mode::Unified { base, mount }),
        (Some((unified, _)), false) => Ok(Mode::Hybrid {
            controllers,
            unified,
        }),
        (None, false) => Ok(Mode::Legacy { controllers }),
        (None, true) => Err(CgroupError::NoHierarchy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
35 25 0:30 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
36 35 0:31 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
38 35 0:33 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
39 35 0:34 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
40 35 0:35 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd";

    #[test]
    fn hybrid_uses_the_v1_controllers_under_the_own_cgroup() {
        let cgroup = "4:memory:/svc/node\n3:cpu,cpuacct:/svc\n1:name=systemd:/svc\n0::/svc\n";
        let Mode::Hybrid {
            controllers,
            unified,
        } = parse(HYBRID_MOUNTS, cgroup).unwrap()
        else {
            panic!("not hybrid")
        };
        assert_eq!(unified, Path::new("/sys/fs/cgroup/unified/svc"));
        let find = |n: &str| {
            controllers
                .iter()
                .find(|c| c.name == n)
                .unwrap()
                .base
                .clone()
        };
        assert_eq!(find("memory"), Path::new("/sys/fs/cgroup/memory/svc/node"));
        assert_eq!(find("cpuacct"), Path::new("/sys/fs/cgroup/cpu,cpuacct/svc"));
        assert!(!controllers.iter().any(|c| c.name.contains("systemd")));
    }

    #[test]
    fn unified_hosts_and_namespaced_mount_roots() {
        let mounts = "30 25 0:26 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate";
        let mode = parse(mounts, "0::/kubepods/pod1/app\n").unwrap();
        assert_eq!(
            mode,
            Mode::Unified {
                base: PathBuf::from("/sys/fs/cgroup/app"),
                mount: PathBuf::from("/sys/fs/cgroup")
            }
        );
    }

    #[test]
    fn a_process_in_the_supervisor_leaf_nests_containers_beside_it() {
        let mounts = "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate";
        let mode = parse(mounts, "0::/system.slice/ci.service/lonely-supervisor\n").unwrap();
        assert_eq!(
            mode,
            Mode::Unified {
                base: PathBuf::from("/sys/fs/cgroup/system.slice/ci.service"),
                mount: PathBuf::from("/sys/fs/cgroup")
            }
        );
    }

    #[test]
    fn legacy_only_and_nothing_mounted() {
        let mounts = "38 35 0:33 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids";
        assert!(matches!(
            parse(mounts, "2:pids:/a\n").unwrap(),
            Mode::Legacy { .. }
        ));
        assert!(matches!(parse("", "0::/\n"), Err(CgroupError::NoHierarchy)));
    }
}
