//! An OCI bundle's config.json as lonely's ContainerSpec: the same spec a `run()` sends, so
//! the same planner, mounts, seccomp and cgroups (no second implementation). What lonely
//! cannot do yet is refused by name, never silently dropped; what a host may lack (AppArmor,
//! SELinux labels, oomScoreAdj) is accepted with a note in the log.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};
use serde_json::{json, Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("load {path}: {message}")]
    Load { path: String, message: String },
    #[error("config.json: {0}")]
    Unsupported(String),
}

/// What the runtime needs of a bundle besides the spec: notes for the log, the annotations.
pub struct Converted {
    pub spec: Value,
    /// The config's hooks, kept in the state for start and delete (hooks.rs).
    pub hooks: Option<Value>,
    pub notes: Vec<String>,
    pub annotations: Map<String, Value>,
}

/// Kernel filesystems lonely's planner makes itself at these places (planner/kernel.rs, dev.rs).
const BUILT_IN: [(&str, &str); 6] = [
    ("/proc", "proc"),
    ("/dev", "tmpfs"),
    ("/dev/pts", "devpts"),
    ("/dev/shm", "tmpfs"),
    ("/dev/mqueue", "mqueue"),
    ("/sys", "sysfs"),
];

fn unsupported(what: impl Into<String>) -> ConfigError {
    ConfigError::Unsupported(what.into())
}

pub fn load(bundle: &Path) -> Result<Converted, ConfigError> {
    let path = bundle.join("config.json");
    let spec = Spec::load(&path).map_err(|e| ConfigError::Load {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    convert(&spec, bundle)
}

pub fn convert(spec: &Spec, bundle: &Path) -> Result<Converted, ConfigError> {
    let mut notes = Vec::new();
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| unsupported("no process"))?;
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(unsupported("process.args is empty"));
    }
    let user = process.user();
    let root = spec.root().as_ref().ok_or_else(|| unsupported("no root"))?;
    let rootfs = absolute(bundle, root.path());
    let linux = spec.linux().as_ref();
    let mut out = Map::new();
    out.insert("argv".into(), json!(args));
    out.insert(
        "env".into(),
        json!(process.env().clone().unwrap_or_default()),
    );
    out.insert("cwd".into(), json!(process.cwd().display().to_string()));
    out.insert("hostname".into(), json!(spec.hostname()));
    out.insert("rootfs".into(), json!(rootfs.display().to_string()));
    // The mounts the config lists, and no /tmp of lonely's own (runc's way).
    out.insert("tmp".into(), json!(false));
    out.insert("cgroupMount".into(), json!(false)); // the config's own /sys/fs/cgroup, if any
    out.insert(
        "readonlyRoot".into(),
        json!(root.readonly().unwrap_or(false)),
    );
    out.insert("uid".into(), json!(user.uid()));
    out.insert("gid".into(), json!(user.gid()));
    out.insert(
        "groups".into(),
        json!(user.additional_gids().clone().unwrap_or_default()),
    );
    out.insert("tty".into(), json!(process.terminal().unwrap_or(false)));
    // The pty's first size (TIOCSWINSZ before exec), as runc applies it: a command that reads
    // its size at start (a pager, a shell's COLUMNS) sees the engine's and not 0x0.
    if let Some(size) = process
        .console_size()
        .filter(|_| process.terminal() == Some(true))
    {
        out.insert(
            "ttySize".into(),
            json!({ "columns": size.width().min(u16::MAX as u64), "rows": size.height().min(u16::MAX as u64) }),
        );
    }
    out.insert("stdio".into(), json!(["inherit", "inherit", "inherit"]));
    out.insert(
        "noNewPrivileges".into(),
        json!(process.no_new_privileges().unwrap_or(false)),
    );
    let ns = namespaces(spec)?;
    let user = ns["user"] == json!(true);
    out.insert("namespaces".into(), ns);
    out.insert("joinPaths".into(), join_paths(spec));
    if let Some(maps) = id_maps(spec, user)? {
        out.insert("idMaps".into(), maps);
    }
    out.insert(
        "mounts".into(),
        Value::Array(mounts(
            spec.mounts().as_deref().unwrap_or_default(),
            bundle,
            linux
                .and_then(|l| l.cgroups_path().as_ref())
                .map(|p| p.display().to_string())
                .as_deref(),
            &mut notes,
        )?),
    );
    // The bounding set is lonely's `capabilities`; the other four are set as given (runc's way).
    let names = |set: &Option<oci_spec::runtime::Capabilities>| -> Vec<String> {
        let mut names: Vec<String> = set.iter().flatten().map(|c| format!("CAP_{c}")).collect();
        names.sort();
        names
    };
    let caps = process.capabilities().as_ref();
    out.insert(
        "capabilities".into(),
        json!(caps.map(|c| names(c.bounding())).unwrap_or_default()),
    );
    if let Some(c) = caps {
        let (permitted, inheritable) = (names(c.permitted()), names(c.inheritable()));
        // The kernel raises an ambient capability only if it is permitted and inheritable;
        // runc skips the others (its own `runc spec` lists ambient without inheritable).
        let (ambient, skipped): (Vec<String>, Vec<String>) = names(c.ambient())
            .into_iter()
            .partition(|a| permitted.contains(a) && inheritable.contains(a));
        if !skipped.is_empty() {
            notes.push(format!(
                "process.capabilities.ambient: {} not raised (not in both permitted and inheritable)",
                skipped.join(", ")
            ));
        }
        out.insert(
            "capabilitySets".into(),
            json!({
                "effective": names(c.effective()),
                "permitted": permitted,
                "inheritable": inheritable,
                "ambient": ambient,
            }),
        );
    }
    let rlimits: Vec<Value> = process
        .rlimits()
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let name = format!("{:?}", r.typ()).to_lowercase();
            let name = name
                .strip_prefix("rlimit")
                .unwrap_or(&name)
                .trim_start_matches('_')
                .to_owned();
            let limit = |v: u64| if v == u64::MAX { -1 } else { v as i64 };
            json!({ "name": name, "soft": limit(r.soft()), "hard": limit(r.hard()) })
        })
        .collect();
    out.insert("rlimits".into(), Value::Array(rlimits));
    if let Some(adj) = process.oom_score_adj() {
        out.insert("oomScoreAdj".into(), json!(adj));
    }
    if process.apparmor_profile().is_some() || process.selinux_label().is_some() {
        notes.push(
            "process.apparmorProfile/selinuxLabel are not applied (no LSM support yet)".into(),
        );
    }
    if let Some(linux) = linux {
        if let Some(seccomp) = linux.seccomp() {
            let profile = serde_json::to_string(seccomp)
                .map_err(|e| unsupported(format!("linux.seccomp: {e}")))?;
            out.insert("seccomp".into(), json!({ "profile": profile }));
        } else {
            // The OCI meaning of no seccomp section: no filter.
            out.insert("seccomp".into(), json!("unconfined"));
        }
        out.insert(
            "maskedPaths".into(),
            json!(linux.masked_paths().clone().unwrap_or_default()),
        );
        out.insert(
            "readonlyPaths".into(),
            json!(linux.readonly_paths().clone().unwrap_or_default()),
        );
        let path = linux
            .cgroups_path()
            .as_ref()
            .map(|p| p.display().to_string());
        if let Some(limits) = crate::resources::limits(
            path.as_deref(),
            linux.resources().as_ref(),
            linux.devices().as_deref().unwrap_or_default(),
            crate::resources::host_version(),
            &mut notes,
        )? {
            out.insert("limits".into(), limits);
        }
        let devices: Vec<Value> = linux
            .devices()
            .iter()
            .flatten()
            .map(|d| {
                json!({
                    "path": d.path().display().to_string(),
                    "kind": d.typ().as_str(),
                    "major": d.major(),
                    "minor": d.minor(),
                    "mode": d.file_mode().unwrap_or(0o666),
                    "uid": d.uid().unwrap_or(0),
                    "gid": d.gid().unwrap_or(0),
                })
            })
            .collect();
        out.insert("devices".into(), Value::Array(devices));
        if let Some(sysctl) = linux.sysctl() {
            out.insert("sysctl".into(), json!(sysctl));
        }
        if let Some(p) = linux.rootfs_propagation().as_deref() {
            if !PROPAGATION.contains(&p) {
                return Err(unsupported(format!(
                    "linux.rootfsPropagation `{p}`: not one of {}",
                    PROPAGATION.join(", ")
                )));
            }
            out.insert("rootPropagation".into(), json!(p));
        }
        if let Some(p) = linux.personality() {
            if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
                return Err(unsupported("linux.personality.flags are not supported"));
            }
            let domain = match p.domain() {
                oci_spec::runtime::LinuxPersonalityDomain::PerLinux => 0,
                oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 8,
            };
            out.insert("personality".into(), json!(domain));
        }
        if linux.intel_rdt().is_some() {
            return Err(unsupported("linux.intelRdt is not supported"));
        }
    } else {
        out.insert("seccomp".into(), json!("unconfined"));
    }
    Ok(Converted {
        hooks: spec
            .hooks()
            .as_ref()
            .and_then(|h| serde_json::to_value(h).ok()),
        spec: Value::Object(out),
        notes,
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    })
}

fn absolute(bundle: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        bundle.join(p)
    }
}

fn namespaces(spec: &Spec) -> Result<Value, ConfigError> {
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    // PID, network, IPC, UTS and mount may be joined by path (a pod's sandbox); cgroup and
    // user not yet.
    let joinable = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ];
    let has = |t: LinuxNamespaceType| -> Result<bool, ConfigError> {
        match list.iter().find(|n| n.typ() == t) {
            Some(n) if n.path().is_some() && !joinable.contains(&t) => Err(unsupported(format!(
                "joining the {t:?} namespace by path is not supported yet"
            ))),
            Some(_) => Ok(true),
            None => Ok(false),
        }
    };
    let user = has(LinuxNamespaceType::User)?;
    Ok(json!({
        "user": user,
        "pid": has(LinuxNamespaceType::Pid)?,
        "mount": has(LinuxNamespaceType::Mount)?,
        "uts": has(LinuxNamespaceType::Uts)?,
        "ipc": has(LinuxNamespaceType::Ipc)?,
        "net": has(LinuxNamespaceType::Network)?,
        "cgroup": has(LinuxNamespaceType::Cgroup)?,
    }))
}

/// `linux.uidMappings`/`gidMappings`, written by this process (root) once PID 1 exists.
fn id_maps(spec: &Spec, user: bool) -> Result<Option<Value>, ConfigError> {
    let linux = spec.linux().as_ref();
    let ranges = |list: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<Value> {
        list.into_iter()
            .flatten()
            .map(|m| json!({ "containerId": m.container_id(), "hostId": m.host_id(), "size": m.size() }))
            .collect()
    };
    let uid = ranges(linux.and_then(|l| l.uid_mappings().as_ref()));
    let gid = ranges(linux.and_then(|l| l.gid_mappings().as_ref()));
    match (user, uid.is_empty() || gid.is_empty()) {
        (false, _) if uid.is_empty() && gid.is_empty() => Ok(None),
        (false, _) => Err(unsupported(
            "linux.uidMappings/gidMappings need a user namespace in linux.namespaces",
        )),
        (true, true) => Err(unsupported(
            "a user namespace needs both linux.uidMappings and linux.gidMappings",
        )),
        (true, false) => Ok(Some(
            json!({ "uid": uid, "gid": gid, "newuidmap": null, "newgidmap": null }),
        )),
    }
}

/// The paths of the namespaces to join rather than make (`linux.namespaces[].path`).
fn join_paths(spec: &Spec) -> Value {
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let path = |t: LinuxNamespaceType| {
        list.iter()
            .find(|n| n.typ() == t)
            .and_then(|n| n.path().as_ref())
            .map(|p| p.display().to_string())
    };
    json!({ "pid": path(LinuxNamespaceType::Pid), "net": path(LinuxNamespaceType::Network), "ipc": path(LinuxNamespaceType::Ipc), "uts": path(LinuxNamespaceType::Uts), "mnt": path(LinuxNamespaceType::Mount) })
}

/// mount(8)'s propagation types, as OCI mount options and linux.rootfsPropagation name them.
const PROPAGATION: [&str; 8] = [
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
];

/// `/sys/fs/cgroup` (type cgroup) as runc shows it: the container's own cgroup directories,
/// bound from the host's hierarchies (v1: a tmpfs with one directory per hierarchy; v2: the
/// directory itself). The directories exist by then: the core makes the cgroup before it
/// plans the mounts. Without an absolute `cgroupsPath` their place is not known here.
fn cgroup_mounts(
    cgroups_path: Option<&str>,
    readonly: bool,
    notes: &mut Vec<String>,
) -> Vec<Value> {
    let Some(rel) = cgroups_path
        .filter(|p| p.starts_with('/'))
        .map(|p| p.trim_start_matches('/'))
    else {
        notes
            .push("mount /sys/fs/cgroup: not made (it needs an absolute linux.cgroupsPath)".into());
        return Vec::new();
    };
    let bind = |source: &Path, target: String| {
        json!({ "type": "bind", "source": source.join(rel).display().to_string(), "target": target,
                "readonly": readonly, "noexec": true, "nosuid": true })
    };
    match lonely_core::cgroups::detect().map(|h| &h.mode) {
        Ok(lonely_core::cgroups::Mode::Unified { mount, .. }) => {
            vec![bind(mount, "/sys/fs/cgroup".into())]
        }
        Ok(
            lonely_core::cgroups::Mode::Legacy { controllers }
            | lonely_core::cgroups::Mode::Hybrid { controllers, .. },
        ) => {
            let mut out = vec![
                json!({ "type": "tmpfs", "target": "/sys/fs/cgroup", "size": null, "mode": "755", "noexec": true }),
            ];
            let mut seen: Vec<&Path> = Vec::new();
            // One bind per hierarchy (cpu,cpuacct mounted together is one).
            for c in controllers {
                if seen.contains(&c.mount.as_path()) {
                    continue;
                }
                seen.push(&c.mount);
                let Some(name) = c.mount.file_name() else {
                    continue;
                };
                out.push(bind(
                    &c.mount,
                    format!("/sys/fs/cgroup/{}", name.to_string_lossy()),
                ));
            }
            out
        }
        Err(e) => {
            notes.push(format!("mount /sys/fs/cgroup: not made ({e})"));
            Vec::new()
        }
    }
}

fn mounts(
    list: &[Mount],
    bundle: &Path,
    cgroups_path: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<Vec<Value>, ConfigError> {
    let mut out = Vec::new();
    for m in list {
        let dest = m.destination().display().to_string();
        let typ = m.typ().clone().unwrap_or_default();
        let options = m.options().clone().unwrap_or_default();
        let has = |flag: &str| options.iter().any(|o| o == flag);
        let bind = has("bind") || has("rbind") || typ == "bind";
        // The last one counts, as in runc; none: private (nothing propagates either way).
        let propagation = options
            .iter()
            .rev()
            .find(|o| PROPAGATION.contains(&o.as_str()));
        if !bind && BUILT_IN.iter().any(|(d, t)| *d == dest && *t == typ) {
            if let Some(p) = propagation.filter(|p| !p.ends_with("private")) {
                notes.push(format!("mount {dest}: propagation `{p}` not applied (lonely makes this mount itself, private)"));
            }
            continue; // lonely's planner makes it, with its own masks and flags
        }
        if !bind && dest == "/sys/fs/cgroup" && (typ == "cgroup" || typ == "cgroup2") {
            // Read-only unless the config says rw (runc's default for an unprivileged one).
            out.extend(cgroup_mounts(cgroups_path, !has("rw"), notes));
            continue;
        }
        if bind {
            let source = m
                .source()
                .as_ref()
                .ok_or_else(|| unsupported(format!("mount {dest}: a bind without a source")))?;
            // Canonical, as the Node API's options give it (core opens a source with no
            // symlink): the engine's path may have one (podman's --init source,
            // /usr/libexec/podman/catatonit -> ../../bin/catatonit); runc follows it too.
            let source = absolute(bundle, source);
            let source = std::fs::canonicalize(&source).unwrap_or(source);
            out.push(json!({
                "type": "bind",
                "source": source.display().to_string(),
                "target": dest,
                "readonly": has("ro"),
                "noexec": has("noexec"),
                "nosuid": has("nosuid"),
                "propagation": propagation,
            }));
        } else if typ == "tmpfs" {
            let value = |key: &str| {
                options
                    .iter()
                    .find_map(|o| o.strip_prefix(&format!("{key}=")).map(str::to_owned))
            };
            out.push(json!({ "type": "tmpfs", "target": dest, "size": value("size"), "mode": value("mode"), "noexec": has("noexec"), "propagation": propagation }));
        } else {
            return Err(unsupported(format!(
                "mount {dest}: type {typ:?} is not supported yet"
            )));
        }
    }
    Ok(out)
}
