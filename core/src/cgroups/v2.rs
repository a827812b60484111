//! cgroup v2: one directory under the Node process's cgroup. The no-internal-processes
//! rule is respected: if processes sit in the cgroup whose controllers must be delegated
//! (the Node process, and whatever else shares its cgroup), they move into a leaf
//! (`lonely-supervisor`) first.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::{
    kill_listed, read_key, read_u64, remove_dir, write, write_limit, Cgroup, CgroupError, Limits,
    Place, Stats,
};

pub struct V2 {
    dir: PathBuf,
    procs: Option<OwnedFd>,
}

/// The leaf the processes of a delegating cgroup move into; host.rs takes its parent as base.
pub(super) const SUPERVISOR: &str = "lonely-supervisor";

fn words(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Controllers a container's limits need, with the option that needs each.
fn required(l: &Limits) -> Vec<(&'static str, &'static str)> {
    let mut r = Vec::new();
    if l.memory.is_some() || l.memory_swap.is_some() {
        r.push(("memory", "memory"));
    } else if l.memory_reservation.is_some() {
        r.push(("memory", "memoryReservation"));
    }
    if l.cpus.is_some() || l.cpu_shares.is_some() {
        r.push((
            "cpu",
            if l.cpus.is_some() {
                "cpus"
            } else {
                "cpuShares"
            },
        ));
    }
    if l.cpuset_cpus.is_some() || l.cpuset_mems.is_some() {
        r.push(("cpuset", "cpusetCpus"));
    }
    if l.pids.is_some() {
        r.push(("pids", "pids"));
    }
    if l.io_weight.is_some() {
        r.push(("io", "ioWeight"));
    }
    r
}

/// Makes sure `base` delegates `controllers` to its children.
fn delegate(base: &Path, controllers: &[&str]) -> Result<(), CgroupError> {
    let enabled = words(&base.join("cgroup.subtree_control"));
    let missing: Vec<String> = controllers
        .iter()
        .filter(|c| !enabled.iter().any(|e| e == *c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let control = base.join("cgroup.subtree_control");
    let value = missing.join(" ");
    let mut moved = false;
    // A process that forks into `base` between the move and the write makes it EBUSY again.
    for _ in 0..5 {
        match std::fs::write(&control, &value) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                move_to_supervisor(base, !moved)?;
                moved = true;
            }
            Err(source) => {
                return Err(CgroupError::Write {
                    path: control,
                    value,
                    source,
                })
            }
        }
    }
    write(&control, &value)
}

/// The no-internal-processes rule: `base` may delegate only once no process is in it. The
/// Node process, and every other process there (the npm or shell that started it, a test
/// runner's workers), move into the leaf `lonely-supervisor`; it is under `base`, so whatever
/// limits `base` or its parents set still cover them all.
fn move_to_supervisor(base: &Path, ours_first: bool) -> Result<(), CgroupError> {
    let leaf = base.join(SUPERVISOR);
    match std::fs::create_dir(&leaf) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => return Err(CgroupError::Mkdir { path: leaf, source }),
    }
    let procs = leaf.join("cgroup.procs");
    if ours_first {
        write(&procs, &std::process::id().to_string())?;
    }
    let listed = std::fs::read_to_string(base.join("cgroup.procs")).unwrap_or_default();
    for pid in listed.lines().map(str::trim).filter(|p| !p.is_empty()) {
        match std::fs::write(&procs, pid) {
            // ESRCH: it exited since the listing.
            Err(e) if e.raw_os_error() != Some(libc::ESRCH) => {
                return Err(CgroupError::Write {
                    path: procs,
                    value: pid.to_owned(),
                    source: e,
                })
            }
            _ => {}
        }
    }
    Ok(())
}

impl V2 {
    /// A cgroup that already exists (another process made it): for reading only.
    pub fn existing(dir: PathBuf) -> V2 {
        V2 { dir, procs: None }
    }

    pub fn create(
        base: &Path,
        mount: &Path,
        place: &Place,
        limits: &Limits,
    ) -> Result<V2, CgroupError> {
        let dir = place.dir(base, mount);
        // The level the container's directory (and its missing parents) go under.
        let top = match place {
            Place::Path(p) if p.starts_with('/') => mount,
            _ => base,
        };
        let available = words(&top.join("cgroup.controllers"));
        let mut required = required(limits);
        for f in &limits.files {
            let c = f.controller();
            // The core files (cgroup.*) need no controller.
            if c != "cgroup" && !required.iter().any(|(r, _)| *r == c) {
                required.push((c, "files"));
            }
        }
        for (controller, limit) in &required {
            if !available.iter().any(|a| a == controller) {
                return Err(CgroupError::Unsupported {
                    limit,
                    why: format!("the cgroup v2 `{controller}` controller is not delegated to `{}` (cgroup.controllers: {:?})", top.display(), available.join(" ")),
                });
            }
        }
        // Accounting wants memory and pids too, where the host has them; a cgroupsPath gets
        // every controller there is (as runc).
        let mut wanted: Vec<&str> = required.iter().map(|(c, _)| *c).collect();
        let extras: Vec<&str> = if place.all_controllers() {
            available.iter().map(String::as_str).collect()
        } else {
            vec!["memory", "pids"]
        };
        for extra in extras {
            if !wanted.contains(&extra) && available.iter().any(|a| a == extra) {
                wanted.push(extra);
            }
        }
        // Each level down to the container's directory delegates them to the next.
        let mut level = top.to_owned();
        let below: Vec<_> = dir
            .strip_prefix(top)
            .map(|rel| rel.components().map(|c| c.as_os_str().to_owned()).collect())
            .unwrap_or_default();
        for (i, part) in below.iter().enumerate() {
            delegate(&level, &wanted)?;
            level = level.join(part);
            let last = i + 1 == below.len();
            match std::fs::create_dir(&level) {
                Ok(()) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::AlreadyExists
                        && (!last || place.all_controllers()) => {}
                Err(source) => {
                    return Err(CgroupError::Mkdir {
                        path: level.clone(),
                        source,
                    })
                }
            }
        }
        let mut cg = V2 { dir, procs: None };
        match cg.apply(limits) {
            Ok(()) => Ok(cg),
            Err(e) => {
                let _ = cg.remove();
                Err(e)
            }
        }
    }

    fn apply(&mut self, l: &Limits) -> Result<(), CgroupError> {
        let d = &self.dir;
        if let Some(bytes) = l.memory_reservation {
            write_limit(
                "memoryReservation",
                &d.join("memory.low"),
                &bytes.to_string(),
            )?;
        }
        if let Some(bytes) = l.memory {
            write_limit("memory", &d.join("memory.max"), &bytes.to_string())?;
            let swap = match l.memory_swap {
                Some(-1) => "max".to_owned(),
                Some(total) => (total as u64).saturating_sub(bytes).to_string(),
                None => "0".to_owned(),
            };
            if d.join("memory.swap.max").exists() || l.memory_swap.is_some() {
                write_limit("memorySwap", &d.join("memory.swap.max"), &swap)?;
            }
            // On OOM the whole container goes, not one process of it.
            write(&d.join("memory.oom.group"), "1")?;
        }
        if let Some(cpus) = l.cpus {
            write_limit(
                "cpus",
                &d.join("cpu.max"),
                &format!("{} 100000", (cpus * 100_000.0).round().max(1000.0) as u64),
            )?;
        }
        if let Some(shares) = l.cpu_shares {
            write_limit(
                "cpuShares",
                &d.join("cpu.weight"),
                &(1 + (shares.saturating_sub(2) * 9999) / 262_142).to_string(),
            )?;
        }
        if let Some(cpus) = &l.cpuset_cpus {
            write_limit("cpuset", &d.join("cpuset.cpus"), cpus)?;
        }
        if let Some(mems) = &l.cpuset_mems {
            write_limit("cpusetMems", &d.join("cpuset.mems"), mems)?;
        }
        if let Some(max) = l.pids {
            write_limit("pids", &d.join("pids.max"), &max.to_string())?;
        }
        if let Some(weight) = l.io_weight {
            write_limit(
                "ioWeight",
                &d.join("io.weight"),
                &format!("default {weight}"),
            )?;
        }
        for f in &l.files {
            std::fs::write(d.join(&f.file), &f.value).map_err(|e| CgroupError::File {
                file: f.file.clone(),
                why: format!("the kernel refused {:?}: {e}", f.value),
            })?;
        }
        let path = d.join("cgroup.procs");
        self.procs = Some(super::open_procs(path)?);
        Ok(())
    }
}

impl Cgroup for V2 {
    fn filesystems(&self) -> Vec<super::CgroupFs> {
        vec![super::CgroupFs::Unified]
    }

    fn join_fds(&self) -> Vec<i32> {
        self.procs.iter().map(|f| f.as_raw_fd()).collect()
    }

    fn dirs(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }

    fn oom_eventfd(&self) -> Option<&OwnedFd> {
        None
    }

    fn stats(&self) -> Stats {
        let d = &self.dir;
        Stats {
            memory_bytes: read_u64(&d.join("memory.current")),
            memory_peak_bytes: read_u64(&d.join("memory.peak")),
            cpu_usage_us: read_key(&d.join("cpu.stat"), "usage_usec"),
            pids: read_u64(&d.join("pids.current")),
            pids_peak: read_u64(&d.join("pids.peak")),
            oom_kills: read_key(&d.join("memory.events"), "oom_kill").unwrap_or(0),
        }
    }

    fn kill_all(&self) {
        if std::fs::write(self.dir.join("cgroup.kill"), "1").is_err() {
            kill_listed(&self.dir.join("cgroup.procs"));
        }
    }

    fn remove(&mut self) -> Result<(), CgroupError> {
        self.procs = None;
        remove_dir(&self.dir)
    }

    fn describe(&self) -> String {
        self.dir.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::tests::tempdir;

    fn fake_base(controllers: &str) -> PathBuf {
        let base = tempdir();
        std::fs::write(base.join("cgroup.controllers"), controllers).unwrap();
        std::fs::write(base.join("cgroup.subtree_control"), "").unwrap();
        base
    }

    fn cleanup(dir: &Path) {
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_cgroups_path_delegates_every_level_down_to_it() {
        let mount = fake_base("cpu memory pids\n");
        let base = mount.join("user.slice");
        std::fs::create_dir(&base).unwrap();
        let limits = Limits {
            files: vec![super::super::ControlFile {
                file: "memory.high".into(),
                value: "1000000".into(),
            }],
            ..Default::default()
        };
        let cg = V2::create(&base, &mount, &Place::Path("/pods/p1".into()), &limits).unwrap();
        assert_eq!(cg.dirs(), vec![mount.join("pods/p1")]);
        let read = |p: &str| std::fs::read_to_string(mount.join(p)).unwrap();
        assert_eq!(read("pods/p1/memory.high"), "1000000");
        assert_eq!(read("cgroup.subtree_control"), "+memory +cpu +pids");
        assert_eq!(read("pods/cgroup.subtree_control"), "+memory +cpu +pids");
        let err = V2::create(
            &base,
            &mount,
            &Place::Path("/pods/p2".into()),
            &Limits {
                files: vec![super::super::ControlFile {
                    file: "hugetlb.2MB.max".into(),
                    value: "0".into(),
                }],
                ..Default::default()
            },
        );
        assert!(matches!(
            err,
            Err(CgroupError::Unsupported { limit: "files", .. })
        ));
        cleanup(&mount);
    }

    #[test]
    fn limits_are_written_in_the_v2_units_and_controllers_delegated() {
        let base = fake_base("cpuset cpu io memory pids\n");
        let limits = Limits {
            memory: Some(64 << 20),
            cpus: Some(0.25),
            cpu_shares: Some(1024),
            pids: Some(32),
            io_weight: Some(200),
            ..Default::default()
        };
        let cg = V2::create(&base, &base, &Place::Nested("c1".into()), &limits).unwrap();
        let read = |p: &str| std::fs::read_to_string(base.join("c1").join(p)).unwrap();
        assert_eq!(read("memory.max"), "67108864");
        assert_eq!(read("memory.oom.group"), "1");
        assert_eq!(read("cpu.max"), "25000 100000");
        assert_eq!(read("cpu.weight"), "39");
        assert_eq!(read("pids.max"), "32");
        assert_eq!(read("io.weight"), "default 200");
        let delegated = std::fs::read_to_string(base.join("cgroup.subtree_control")).unwrap();
        assert_eq!(delegated, "+memory +cpu +pids +io");
        assert_eq!(cg.join_fds().len(), 1);
        std::fs::write(
            base.join("c1/memory.events"),
            "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n",
        )
        .unwrap();
        std::fs::write(base.join("c1/memory.peak"), "67100000\n").unwrap();
        std::fs::write(
            base.join("c1/cpu.stat"),
            "usage_usec 1500\nuser_usec 1000\n",
        )
        .unwrap();
        let s = cg.stats();
        assert_eq!(
            (s.oom_kills, s.memory_peak_bytes, s.cpu_usage_us),
            (1, Some(67_100_000), Some(1500))
        );
        cleanup(&base);
    }

    #[test]
    fn a_controller_the_parent_lacks_is_an_error_naming_the_limit() {
        let base = fake_base("cpu memory\n");
        let err = V2::create(
            &base,
            &base,
            &Place::Nested("c2".into()),
            &Limits {
                pids: Some(4),
                ..Default::default()
            },
        )
        .err()
        .unwrap();
        assert!(
            err.to_string()
                .starts_with("limits.pids: the cgroup v2 `pids` controller is not delegated"),
            "{err}"
        );
        assert!(!base.join("c2").exists());
        cleanup(&base);
    }

    #[test]
    fn swap_defaults_to_none_and_minus_one_is_unlimited() {
        let base = fake_base("memory\n");
        V2::create(
            &base,
            &base,
            &Place::Nested("a".into()),
            &Limits {
                memory: Some(100),
                ..Default::default()
            },
        )
        .unwrap();
        V2::create(
            &base,
            &base,
            &Place::Nested("b".into()),
            &Limits {
                memory: Some(100),
                memory_swap: Some(-1),
                ..Default::default()
            },
        )
        .unwrap();
        V2::create(
            &base,
            &base,
            &Place::Nested("c".into()),
            &Limits {
                memory: Some(100),
                memory_swap: Some(300),
                ..Default::default()
            },
        )
        .unwrap();
        let read = |p: &str| std::fs::read_to_string(base.join(p)).unwrap();
        assert_eq!(
            (read("b/memory.swap.max"), read("c/memory.swap.max")),
            ("max".to_owned(), "200".to_owned())
        );
        assert!(
            !base.join("a/memory.swap.max").exists(),
            "a host without swap files gets none written"
        );
        cleanup(&base);
    }
}
