//! cgroup v1: one directory per hierarchy the container needs (co-mounted controllers
//! share one), limits written before the child joins, OOM signalled through an eventfd.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::host::Controller;
use super::{
    kill_listed, read_key, read_u64, remove_dir, write, write_limit, Cgroup, CgroupError, CgroupFs,
    Limits, Place, Stats,
};

pub struct V1 {
    /// Controller name -> the container's directory in that controller's hierarchy.
    dirs: Vec<(String, PathBuf)>,
    /// The hierarchies those directories are in.
    filesystems: Vec<CgroupFs>,
    procs: Vec<OwnedFd>,
    oom: Option<OwnedFd>,
}

/// Which controllers a container uses: memory, cpuacct and pids always (accounting), the rest per limit.
fn wanted(limits: &Limits) -> Vec<(&'static str, Option<&'static str>)> {
    let mut w = vec![
        (
            "memory",
            limits
                .memory
                .map(|_| "memory")
                .or(limits.memory_reservation.map(|_| "memoryReservation")),
        ),
        ("cpuacct", None),
        ("pids", limits.pids.map(|_| "pids")),
    ];
    if limits.cpus.is_some() || limits.cpu_shares.is_some() {
        w.push((
            "cpu",
            Some(if limits.cpus.is_some() {
                "cpus"
            } else {
                "cpuShares"
            }),
        ));
    }
    if limits.cpuset_cpus.is_some() || limits.cpuset_mems.is_some() {
        w.push(("cpuset", Some("cpusetCpus")));
    }
    if limits.io_weight.is_some() {
        w.push(("blkio", Some("ioWeight")));
    }
    w
}

/// The host's controllers a container uses, in order; a limit needing a missing one is an error.
fn used<'a>(
    controllers: &'a [Controller],
    place: &Place,
    limits: &Limits,
) -> Result<Vec<&'a Controller>, CgroupError> {
    let mut want: Vec<(String, Option<&'static str>)> = if place.all_controllers() {
        controllers.iter().map(|c| (c.name.clone(), None)).collect()
    } else {
        wanted(limits)
            .into_iter()
            .map(|(c, by)| (c.to_owned(), by))
            .collect()
    };
    for f in &limits.files {
        if !want.iter().any(|(c, _)| c == f.controller()) {
            want.push((f.controller().to_owned(), Some("files")));
        }
    }
    let mut out = Vec::new();
    for (controller, needed_by) in want {
        match (controllers.iter().find(|c| c.name == controller), needed_by) {
            (Some(c), _) => out.push(c),
            (None, Some(limit)) => {
                return Err(CgroupError::Unsupported {
                    limit,
                    why: format!("this host has no cgroup v1 `{controller}` controller mounted"),
                })
            }
            (None, None) => {}
        }
    }
    Ok(out)
}

/// The hierarchy `c` is in, as the container's /sys/fs/cgroup shows it.
fn hierarchy(controllers: &[Controller], c: &Controller) -> CgroupFs {
    CgroupFs::Hierarchy {
        dir: c
            .mount
            .file_name()
            .map_or_else(|| c.name.clone(), |n| n.to_string_lossy().into_owned()),
        controllers: controllers
            .iter()
            .filter(|o| o.mount == c.mount)
            .map(|o| o.name.clone())
            .collect(),
    }
}

/// The hierarchies a container with `limits` would have, nothing made (a plan to print).
pub fn planned_filesystems(
    controllers: &[Controller],
    place: &Place,
    limits: &Limits,
) -> Vec<CgroupFs> {
    let mut out: Vec<CgroupFs> = Vec::new();
    for c in used(controllers, place, limits).unwrap_or_default() {
        let fs = hierarchy(controllers, c);
        if !out.contains(&fs) {
            out.push(fs);
        }
    }
    out
}

impl V1 {
    /// Cgroups that already exist (another process made them), each named by the controller
    /// files it has: for reading only.
    pub fn existing(dirs: &[PathBuf]) -> V1 {
        let marks = [
            ("memory", "memory.usage_in_bytes"),
            ("cpuacct", "cpuacct.usage"),
            ("pids", "pids.current"),
        ];
        let dirs = dirs
            .iter()
            .flat_map(|d| {
                marks
                    .iter()
                    .filter(|(_, f)| d.join(f).exists())
                    .map(|(n, _)| (n.to_string(), d.clone()))
            })
            .collect();
        V1 {
            dirs,
            filesystems: Vec::new(),
            procs: Vec::new(),
            oom: None,
        }
    }

    pub fn create(
        controllers: &[Controller],
        place: &Place,
        limits: &Limits,
    ) -> Result<V1, CgroupError> {
        let mut cg = V1 {
            dirs: Vec::new(),
            filesystems: Vec::new(),
            procs: Vec::new(),
            oom: None,
        };
        match cg.setup(controllers, place, limits) {
            Ok(()) => Ok(cg),
            Err(e) => {
                let _ = cg.remove();
                Err(e)
            }
        }
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| c == controller)
            .map(|(_, d)| d.as_path())
    }

    fn setup(
        &mut self,
        controllers: &[Controller],
        place: &Place,
        limits: &Limits,
    ) -> Result<(), CgroupError> {
        for c in used(controllers, place, limits)? {
            let dir = place.dir(&c.base, &c.mount);
            // Co-mounted controllers (cpu,cpuacct) share one directory: make it once.
            if !self.dirs.iter().any(|(_, d)| *d == dir) {
                self.filesystems.push(hierarchy(controllers, c));
                match place {
                    Place::Nested(_) => {
                        std::fs::create_dir(&dir).map_err(|source| CgroupError::Mkdir {
                            path: dir.clone(),
                            source,
                        })?
                    }
                    Place::Path(_) => make_path(&dir, c.name == "cpuset")?,
                }
            }
            self.dirs.push((c.name.clone(), dir));
        }
        self.apply(limits)?;
        for f in &limits.files {
            let dir = self.dir(f.controller()).expect("made above");
            std::fs::write(dir.join(&f.file), &f.value).map_err(|e| CgroupError::File {
                file: f.file.clone(),
                why: format!("the kernel refused {:?}: {e}", f.value),
            })?;
        }
        let mut seen: Vec<&PathBuf> = Vec::new();
        for (_, dir) in &self.dirs {
            if seen.contains(&dir) {
                continue;
            }
            seen.push(dir);
            let path = dir.join("cgroup.procs");
            self.procs.push(super::open_procs(path)?);
        }
        if let Some(mem) = self.dir("memory").map(Path::to_owned) {
            // The kernel's OOM killer stays on (disabled, charges outside a page fault fail with
            // ENOMEM/EFAULT instead, and a program sees a truncated run, not an OOM kill); the
            // eventfd tells the reaper, which then kills the rest of the container.
            self.oom = oom_eventfd(&mem).ok();
        }
        Ok(())
    }

    fn apply(&self, l: &Limits) -> Result<(), CgroupError> {
        if let Some(mem) = self.dir("memory") {
            if let Some(bytes) = l.memory_reservation {
                let soft = mem.join("memory.soft_limit_in_bytes");
                write_limit("memoryReservation", &soft, &bytes.to_string())?;
            }
            if let Some(bytes) = l.memory {
                write_limit(
                    "memory",
                    &mem.join("memory.limit_in_bytes"),
                    &bytes.to_string(),
                )?;
                let memsw = mem.join("memory.memsw.limit_in_bytes");
                match (l.memory_swap, memsw.exists()) {
                    (Some(_), false) => {
                        return Err(CgroupError::Unsupported { limit: "memorySwap", why: "this host has no swap accounting (memory.memsw.limit_in_bytes is missing)".into() })
                    }
                    (Some(swap), true) => write_limit("memorySwap", &memsw, &swap.to_string())?,
                    // No swap unless asked: a memory limit then means what it says.
                    (None, true) => write_limit("memory", &memsw, &bytes.to_string())?,
                    (None, false) => {}
                }
            }
        }
        if let Some(cpu) = self.dir("cpu") {
            if let Some(cpus) = l.cpus {
                write_limit("cpus", &cpu.join("cpu.cfs_period_us"), "100000")?;
                write_limit(
                    "cpus",
                    &cpu.join("cpu.cfs_quota_us"),
                    &((cpus * 100_000.0).round().max(1000.0) as u64).to_string(),
                )?;
            }
            if let Some(shares) = l.cpu_shares {
                write_limit("cpuShares", &cpu.join("cpu.shares"), &shares.to_string())?;
            }
        }
        if let Some(cpuset) = self.dir("cpuset") {
            // A new v1 cpuset is empty and refuses tasks: inherit the parent's unless given.
            let parent = cpuset.parent().expect("a cgroup dir has a parent");
            for (file, given) in [
                ("cpuset.cpus", &l.cpuset_cpus),
                ("cpuset.mems", &l.cpuset_mems),
            ] {
                let value = match given {
                    Some(v) => v.clone(),
                    None => std::fs::read_to_string(parent.join(file))
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                };
                write_limit(
                    if file == "cpuset.cpus" {
                        "cpuset"
                    } else {
                        "cpusetMems"
                    },
                    &cpuset.join(file),
                    &value,
                )?;
            }
        }
        if let (Some(pids), Some(max)) = (self.dir("pids"), l.pids) {
            write_limit("pids", &pids.join("pids.max"), &max.to_string())?;
        }
        if let (Some(blkio), Some(weight)) = (self.dir("blkio"), l.io_weight) {
            // CFQ's file, or BFQ's under its own name.
            let Some(file) = ["blkio.weight", "blkio.bfq.weight"]
                .iter()
                .map(|f| blkio.join(f))
                .find(|f| f.exists())
            else {
                return Err(CgroupError::Unsupported { limit: "ioWeight", why: "this host's blkio controller has no weight (blkio.weight needs the CFQ or BFQ IO scheduler)".into() });
            };
            write_limit("ioWeight", &file, &weight.to_string())?;
        }
        Ok(())
    }
}

/// Makes `dir` and the parents it lacks. A new v1 cpuset is empty and refuses tasks, so each
/// new level of one takes its parent's cpus and mems.
fn make_path(dir: &Path, cpuset: bool) -> Result<(), CgroupError> {
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.exists() {
        missing.push(at.to_owned());
        match at.parent() {
            Some(p) => at = p,
            None => break,
        }
    }
    for level in missing.iter().rev() {
        match std::fs::create_dir(level) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(CgroupError::Mkdir {
                    path: level.clone(),
                    source,
                })
            }
        }
        if cpuset {
            let parent = level.parent().expect("a made level has a parent");
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let value = std::fs::read_to_string(parent.join(file)).unwrap_or_default();
                write(&level.join(file), value.trim())?;
            }
        }
    }
    Ok(())
}

/// Registers an eventfd on memory.oom_control (cgroup.event_control) and returns it.
fn oom_eventfd(mem: &Path) -> Result<OwnedFd, CgroupError> {
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if efd < 0 {
        return Err(CgroupError::Open {
            path: "eventfd".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    let efd = unsafe { OwnedFd::from_raw_fd(efd) };
    let path = mem.join("memory.oom_control");
    let control =
        std::fs::File::open(&path).map_err(|source| CgroupError::Open { path, source })?;
    write(
        &mem.join("cgroup.event_control"),
        &format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()),
    )?;
    Ok(efd)
}

impl Cgroup for V1 {
    fn filesystems(&self) -> Vec<CgroupFs> {
        self.filesystems.clone()
    }

    fn join_fds(&self) -> Vec<i32> {
        self.procs.iter().map(|f| f.as_raw_fd()).collect()
    }

    fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self.dirs.iter().map(|(_, d)| d.clone()).collect();
        dirs.dedup();
        dirs
    }

    fn oom_eventfd(&self) -> Option<&OwnedFd> {
        self.oom.as_ref()
    }

    fn stats(&self) -> Stats {
        let mem = self.dir("memory");
        Stats {
            memory_bytes: mem.and_then(|d| read_u64(&d.join("memory.usage_in_bytes"))),
            memory_peak_bytes: mem.and_then(|d| read_u64(&d.join("memory.max_usage_in_bytes"))),
            cpu_usage_us: self
                .dir("cpuacct")
                .and_then(|d| read_u64(&d.join("cpuacct.usage")))
                .map(|ns| ns / 1000),
            pids: self
                .dir("pids")
                .and_then(|d| read_u64(&d.join("pids.current"))),
            pids_peak: None,
            oom_kills: mem
                .and_then(|d| read_key(&d.join("memory.oom_control"), "oom_kill"))
                .unwrap_or(0),
        }
    }

    fn kill_all(&self) {
        for (_, dir) in &self.dirs {
            kill_listed(&dir.join("cgroup.procs"));
        }
    }

    fn remove(&mut self) -> Result<(), CgroupError> {
        self.procs.clear();
        self.oom = None;
        let mut result = Ok(());
        for (_, dir) in self.dirs.drain(..).rev() {
            if let Err(e) = remove_dir(&dir) {
                result = Err(e);
            }
        }
        result
    }

    fn describe(&self) -> String {
        self.dirs
            .iter()
            .map(|(_, d)| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::tests::tempdir;

    /// A fake v1 tree: one directory per hierarchy, with the files the kernel would create.
    fn fake(root: &Path) -> Vec<Controller> {
        ["memory", "cpuacct", "pids", "cpu", "cpuset"]
            .iter()
            .map(|n| {
                let base = root.join(n).join("node");
                std::fs::create_dir_all(&base).unwrap();
                Controller {
                    name: n.to_string(),
                    base,
                    mount: root.join(n),
                }
            })
            .collect()
    }

    #[test]
    fn limits_are_written_in_the_v1_units() {
        let root = tempdir();
        let controllers = fake(&root);
        std::fs::write(root.join("cpuset/node/cpuset.cpus"), "0-3\n").unwrap();
        std::fs::write(root.join("cpuset/node/cpuset.mems"), "0\n").unwrap();
        let limits = Limits {
            cpus: Some(0.5),
            pids: Some(32),
            cpuset_cpus: Some("1".into()),
            ..Default::default()
        };
        let mut cg = V1::create(&controllers, &Place::Nested("c1".into()), &limits).unwrap();
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
        assert_eq!(read("cpu/node/c1/cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu/node/c1/cpu.cfs_period_us"), "100000");
        assert_eq!(read("pids/node/c1/pids.max"), "32");
        assert_eq!(read("cpuset/node/c1/cpuset.cpus"), "1");
        assert_eq!(
            read("cpuset/node/c1/cpuset.mems"),
            "0",
            "mems inherited from the parent"
        );
        assert_eq!(cg.join_fds().len(), 5);
        std::fs::write(root.join("pids/node/c1/pids.current"), "3\n").unwrap();
        std::fs::write(root.join("cpuacct/node/c1/cpuacct.usage"), "2500000\n").unwrap();
        let stats = cg.stats();
        assert_eq!((stats.pids, stats.cpu_usage_us), (Some(3), Some(2500)));
        for f in [
            "cpu/node/c1",
            "pids/node/c1",
            "cpuset/node/c1",
            "cpuacct/node/c1",
            "memory/node/c1",
        ] {
            for entry in std::fs::read_dir(root.join(f)).unwrap() {
                std::fs::remove_file(entry.unwrap().path()).unwrap();
            }
        }
        cg.remove().unwrap();
        assert!(!root.join("pids/node/c1").exists());
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_cgroups_path_is_taken_from_each_hierarchys_root_with_every_controller_and_files_as_given()
    {
        let root = tempdir();
        let controllers = fake(&root);
        std::fs::write(root.join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
        std::fs::write(root.join("cpuset/cpuset.mems"), "0\n").unwrap();
        let limits = Limits {
            path: Some("/oci/box".into()),
            files: vec![super::super::ControlFile {
                file: "pids.max".into(),
                value: "9".into(),
            }],
            ..Default::default()
        };
        let mut cg = V1::create(&controllers, &Place::Path("/oci/box".into()), &limits).unwrap();
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
        assert_eq!(read("pids/oci/box/pids.max"), "9");
        // Every controller, not only what the limits need; each new cpuset level filled.
        assert_eq!(cg.dirs().len(), 5);
        assert_eq!(read("cpuset/oci/cpuset.cpus"), "0-1");
        assert_eq!(read("cpuset/oci/box/cpuset.mems"), "0");
        // A relative path is under our own cgroup.
        assert_eq!(
            Place::Path("k/x".into()).dir(Path::new("/cg/memory/node"), Path::new("/cg/memory")),
            Path::new("/cg/memory/node/k/x")
        );
        for d in cg.dirs() {
            for entry in std::fs::read_dir(&d).unwrap() {
                std::fs::remove_file(entry.unwrap().path()).unwrap();
            }
        }
        cg.remove().unwrap();
        assert!(!root.join("pids/oci/box").exists() && root.join("pids/oci").exists());
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn an_io_weight_without_a_weight_file_is_refused_by_name() {
        let root = tempdir();
        let mut controllers = fake(&root);
        let base = root.join("blkio/node");
        std::fs::create_dir_all(&base).unwrap();
        controllers.push(Controller {
            name: "blkio".into(),
            base,
            mount: root.join("blkio"),
        });
        let err = V1::create(
            &controllers,
            &Place::Nested("c3".into()),
            &Limits {
                io_weight: Some(100),
                ..Default::default()
            },
        )
        .err()
        .unwrap();
        assert!(
            err.to_string()
                .starts_with("limits.ioWeight: this host's blkio controller has no weight"),
            "{err}"
        );
        assert!(!root.join("blkio/node/c3").exists());
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_limit_without_its_controller_is_an_error_and_nothing_is_left() {
        let root = tempdir();
        let controllers: Vec<_> = fake(&root)
            .into_iter()
            .filter(|c| c.name != "pids")
            .collect();
        let err = V1::create(
            &controllers,
            &Place::Nested("c2".into()),
            &Limits {
                pids: Some(8),
                ..Default::default()
            },
        )
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "limits.pids: this host has no cgroup v1 `pids` controller mounted"
        );
        assert!(
            !root.join("memory/node/c2").exists(),
            "the half-made cgroup is removed"
        );
        std::fs::remove_dir_all(root).unwrap();
    }
}
