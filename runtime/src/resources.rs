//! `linux.resources` and `linux.cgroupsPath` as the core's cgroup limits: the OCI values in
//! this host's control-file names (v1 or v2), written as given by the core's cgroups module,
//! as runc's fs drivers write them. Unit conversions follow runc's (shares to weight, swap).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};
use serde_json::{json, Value};

use crate::config::ConfigError;

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Version {
    V1,
    V2,
}

/// The host's cgroup version, as the core uses it (hybrid hosts use their v1 controllers).
pub fn host_version() -> Version {
    match lonely_core::cgroups::detect().map(|h| &h.mode) {
        Ok(lonely_core::cgroups::Mode::Unified { .. }) => Version::V2,
        _ => Version::V1,
    }
}

/// The core's `limits` (path and files), or None when the config asks for no cgroup.
pub fn limits(
    path: Option<&str>,
    r: Option<&LinuxResources>,
    nodes: &[oci_spec::runtime::LinuxDevice],
    version: Version,
    notes: &mut Vec<String>,
) -> Result<Option<Value>, ConfigError> {
    if path.is_some_and(|p| !p.starts_with('/') && p.split(':').count() == 3) {
        return Err(bad(format!(
            "linux.cgroupsPath {:?} is a systemd slice path; lonely-runtime drives cgroupfs (containerd: SystemdCgroup = false; podman: cgroup_manager = \"cgroupfs\")",
            path.unwrap_or_default()
        )));
    }
    let mut files: Vec<(String, String)> = Vec::new();
    if let Some(r) = r {
        files = self::files(r, version, notes)?;
        // The config's device nodes are allowed too, as runc allows them.
        if version == Version::V1 && r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
            for n in nodes {
                let typ = n.typ().as_str().to_owned();
                if typ != "p" {
                    files.push((
                        "devices.allow".into(),
                        format!("{typ} {}:{} rwm", n.major(), n.minor()),
                    ));
                }
            }
        }
    }
    if path.is_none() && files.is_empty() {
        return Ok(None);
    }
    let files: Vec<Value> = files
        .into_iter()
        .map(|(file, value)| json!({ "file": file, "value": value }))
        .collect();
    Ok(Some(json!({ "path": path, "files": files })))
}

/// The control files `r` comes to on this host's cgroup version.
pub fn files(
    r: &LinuxResources,
    version: Version,
    notes: &mut Vec<String>,
) -> Result<Vec<(String, String)>, ConfigError> {
    match version {
        Version::V1 => v1(r, notes),
        Version::V2 => v2(r, notes),
    }
}

fn bad(what: impl Into<String>) -> ConfigError {
    ConfigError::Unsupported(what.into())
}

/// `major:minor`, with `*` for a wildcard (a device rule's absent number or -1).
fn numbers(major: Option<i64>, minor: Option<i64>) -> String {
    let n = |v: Option<i64>| match v {
        Some(v) if v >= 0 => v.to_string(),
        _ => "*".into(),
    };
    format!("{}:{}", n(major), n(minor))
}

fn device_rule(d: &LinuxDeviceCgroup) -> (String, String) {
    let typ = d
        .typ()
        .map_or_else(|| "a".to_owned(), |t| t.as_str().to_owned());
    let access = d.access().clone().unwrap_or_else(|| "rwm".into());
    let file = if d.allow() {
        "devices.allow"
    } else {
        "devices.deny"
    };
    let value = if typ == "a" {
        "a".to_owned()
    } else {
        format!("{typ} {} {access}", numbers(d.major(), d.minor()))
    };
    (file.into(), value)
}

/// The nodes of lonely's own /dev, allowed after the config's rules as runc allows its
/// defaults (a config that denies everything still gets a working /dev/null and terminal).
const OWN_DEVICES: [&str; 9] = [
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

fn v1(r: &LinuxResources, notes: &mut Vec<String>) -> Result<Vec<(String, String)>, ConfigError> {
    let mut f: Vec<(String, String)> = Vec::new();
    let mut put = |file: &str, value: String| f.push((file.to_owned(), value));
    let rules = r.devices().as_deref().unwrap_or_default();
    for d in rules {
        let (file, value) = device_rule(d);
        put(&file, value);
    }
    if !rules.is_empty() {
        for rule in OWN_DEVICES {
            put("devices.allow", rule.into());
        }
    }
    if let Some(m) = r.memory() {
        // A new cgroup's memsw limit is unlimited: the memory limit goes first.
        if let Some(v) = m.limit() {
            put("memory.limit_in_bytes", v.to_string());
        }
        if let Some(v) = m.swap() {
            put("memory.memsw.limit_in_bytes", v.to_string());
        }
        if let Some(v) = m.reservation() {
            put("memory.soft_limit_in_bytes", v.to_string());
        }
        if m.kernel().is_some() {
            notes.push(
                "linux.resources.memory.kernel is not applied (deprecated; kernels ignore it)"
                    .into(),
            );
        }
        if let Some(v) = m.kernel_tcp() {
            put("memory.kmem.tcp.limit_in_bytes", v.to_string());
        }
        if let Some(v) = m.swappiness().filter(|v| *v <= 100) {
            put("memory.swappiness", v.to_string());
        }
        if m.disable_oom_killer() == Some(true) {
            put("memory.oom_control", "1".into());
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(v) = c.shares().filter(|v| *v > 0) {
            put("cpu.shares", v.to_string());
        }
        // The period first: a quota is checked against it.
        if let Some(v) = c.period().filter(|v| *v > 0) {
            put("cpu.cfs_period_us", v.to_string());
        }
        if let Some(v) = c.quota().filter(|v| *v != 0) {
            put("cpu.cfs_quota_us", v.to_string());
        }
        if let Some(v) = c.realtime_period().filter(|v| *v > 0) {
            put("cpu.rt_period_us", v.to_string());
        }
        if let Some(v) = c.realtime_runtime().filter(|v| *v != 0) {
            put("cpu.rt_runtime_us", v.to_string());
        }
        if let Some(v) = c.cpus().as_ref().filter(|v| !v.is_empty()) {
            put("cpuset.cpus", v.clone());
        }
        if let Some(v) = c.mems().as_ref().filter(|v| !v.is_empty()) {
            put("cpuset.mems", v.clone());
        }
    }
    if let Some(p) = r.pids() {
        let v = p.limit();
        put("pids.max", if v > 0 { v.to_string() } else { "max".into() });
    }
    if let Some(b) = r.block_io() {
        if let Some(v) = b.weight() {
            put("blkio.weight", v.to_string());
        }
        if let Some(v) = b.leaf_weight() {
            put("blkio.leaf_weight", v.to_string());
        }
        for d in b.weight_device().as_deref().unwrap_or_default() {
            let dev = numbers(Some(d.major()), Some(d.minor()));
            if let Some(w) = d.weight() {
                put("blkio.weight_device", format!("{dev} {w}"));
            }
            if let Some(w) = d.leaf_weight() {
                put("blkio.leaf_weight_device", format!("{dev} {w}"));
            }
        }
        for (list, file) in [
            (
                b.throttle_read_bps_device(),
                "blkio.throttle.read_bps_device",
            ),
            (
                b.throttle_write_bps_device(),
                "blkio.throttle.write_bps_device",
            ),
            (
                b.throttle_read_iops_device(),
                "blkio.throttle.read_iops_device",
            ),
            (
                b.throttle_write_iops_device(),
                "blkio.throttle.write_iops_device",
            ),
        ] {
            for d in list.as_deref().unwrap_or_default() {
                let dev = numbers(Some(d.major()), Some(d.minor()));
                put(file, format!("{dev} {}", d.rate()));
            }
        }
    }
    for h in r.hugepage_limits().as_deref().unwrap_or_default() {
        put(
            &format!("hugetlb.{}.limit_in_bytes", h.page_size()),
            h.limit().to_string(),
        );
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            put("net_cls.classid", id.to_string());
        }
        for p in n.priorities().as_deref().unwrap_or_default() {
            put(
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
            );
        }
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(bad(
            "linux.resources.unified needs cgroup v2 (this host's controllers are v1)",
        ));
    }
    if r.rdma().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(bad("linux.resources.rdma is not supported"));
    }
    Ok(f)
}

/// cgroup v1 `cpu.shares` (2..262144) as v2 `cpu.weight` (1..10000), as runc converts it.
fn weight_of_shares(shares: u64) -> u64 {
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

fn v2(r: &LinuxResources, notes: &mut Vec<String>) -> Result<Vec<(String, String)>, ConfigError> {
    let mut f: Vec<(String, String)> = Vec::new();
    let mut put = |file: &str, value: String| f.push((file.to_owned(), value));
    if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        notes.push("linux.resources.devices: cgroup v2 has no device files (an eBPF program would be needed); the container's /dev is lonely's own tmpfs with the config's nodes only".into());
    }
    let max = |v: i64| {
        if v < 0 {
            "max".to_owned()
        } else {
            v.to_string()
        }
    };
    if let Some(m) = r.memory() {
        if let Some(v) = m.limit() {
            put("memory.max", max(v));
        }
        if let Some(v) = m.reservation() {
            put("memory.low", max(v));
        }
        if let Some(swap) = m.swap() {
            // v1's swap is memory plus swap; v2's memory.swap.max is swap alone.
            let value = match (swap, m.limit()) {
                (s, _) if s < 0 => "max".into(),
                (s, Some(l)) if l > 0 => (s - l).max(0).to_string(),
                (s, _) => s.to_string(),
            };
            put("memory.swap.max", value);
        }
        if m.disable_oom_killer() == Some(true) {
            notes.push("linux.resources.memory.disableOOMKiller has no cgroup v2 file".into());
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(v) = c.shares().filter(|v| *v > 0) {
            put("cpu.weight", weight_of_shares(v).to_string());
        }
        if c.quota().is_some() || c.period().is_some() {
            let quota = c
                .quota()
                .filter(|q| *q > 0)
                .map_or("max".into(), |q| q.to_string());
            put(
                "cpu.max",
                format!("{quota} {}", c.period().unwrap_or(100_000)),
            );
        }
        if let Some(v) = c.idle() {
            put("cpu.idle", v.to_string());
        }
        if c.realtime_runtime().is_some() || c.realtime_period().is_some() {
            return Err(bad(
                "linux.resources.cpu.realtimeRuntime/realtimePeriod need cgroup v1",
            ));
        }
        if let Some(v) = c.cpus().as_ref().filter(|v| !v.is_empty()) {
            put("cpuset.cpus", v.clone());
        }
        if let Some(v) = c.mems().as_ref().filter(|v| !v.is_empty()) {
            put("cpuset.mems", v.clone());
        }
    }
    if let Some(p) = r.pids() {
        put(
            "pids.max",
            if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".into()
            },
        );
    }
    if let Some(b) = r.block_io() {
        // v1's blkio weight scale (10..1000) into io.weight's (1..10000), as runc.
        let io = |w: u16| 1 + (u64::from(w).saturating_sub(10)) * 9999 / 990;
        if let Some(w) = b.weight() {
            put("io.weight", format!("default {}", io(w)));
        }
        for d in b.weight_device().as_deref().unwrap_or_default() {
            if let Some(w) = d.weight() {
                put(
                    "io.weight",
                    format!("{}:{} {}", d.major(), d.minor(), io(w)),
                );
            }
        }
        for (list, key) in [
            (b.throttle_read_bps_device(), "rbps"),
            (b.throttle_write_bps_device(), "wbps"),
            (b.throttle_read_iops_device(), "riops"),
            (b.throttle_write_iops_device(), "wiops"),
        ] {
            for d in list.as_deref().unwrap_or_default() {
                put(
                    "io.max",
                    format!("{}:{} {key}={}", d.major(), d.minor(), d.rate()),
                );
            }
        }
    }
    for h in r.hugepage_limits().as_deref().unwrap_or_default() {
        put(&format!("hugetlb.{}.max", h.page_size()), max(h.limit()));
    }
    if r.network().is_some() {
        notes.push("linux.resources.network (net_cls/net_prio) has no cgroup v2 files".into());
    }
    if r.rdma().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(bad("linux.resources.rdma is not supported"));
    }
    let mut unified: Vec<_> = r
        .unified()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    unified.sort();
    for (file, value) in unified {
        put(&file, value);
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn v1_files_in_runcs_order_and_units() {
        let r = resources(
            r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},{"allow":true,"type":"c","major":136,"access":"rwm"}],
                "memory":{"limit":1000000,"swap":2000000,"swappiness":30},
                "cpu":{"shares":512,"quota":20000,"period":100000,"cpus":"0"},
                "pids":{"limit":-1},
                "hugepageLimits":[{"pageSize":"2MB","limit":4194304}],
                "network":{"classID":1048577,"priorities":[{"name":"lo","priority":2}]}}"#,
        );
        let mut notes = Vec::new();
        let files = v1(&r, &mut notes).unwrap();
        let get = |f: &str| -> Vec<&str> {
            files
                .iter()
                .filter(|(n, _)| n == f)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(get("devices.deny"), ["a"]);
        assert_eq!(get("devices.allow")[..2], ["c 1:3 rwm", "c 136:* rwm"]);
        assert_eq!(
            get("devices.allow").len(),
            2 + OWN_DEVICES.len(),
            "lonely's /dev allowed after"
        );
        let order: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        let at = |f: &str| order.iter().position(|n| *n == f).unwrap();
        assert!(at("memory.limit_in_bytes") < at("memory.memsw.limit_in_bytes"));
        assert!(at("cpu.cfs_period_us") < at("cpu.cfs_quota_us"));
        assert_eq!(get("pids.max"), ["max"]);
        assert_eq!(get("hugetlb.2MB.limit_in_bytes"), ["4194304"]);
        assert_eq!(get("net_prio.ifpriomap"), ["lo 2"]);
        assert!(v2(&r, &mut notes)
            .unwrap()
            .iter()
            .any(|(f, v)| f == "memory.swap.max" && v == "1000000"));
    }

    #[test]
    fn v2_converts_shares_and_quota_and_passes_unified_through() {
        let r = resources(
            r#"{"cpu":{"shares":1024,"quota":-1,"period":50000},"unified":{"memory.high":"500000"}}"#,
        );
        let files = v2(&r, &mut Vec::new()).unwrap();
        assert!(files.contains(&("cpu.weight".into(), "39".into())));
        assert!(files.contains(&("cpu.max".into(), "max 50000".into())));
        assert!(files.contains(&("memory.high".into(), "500000".into())));
        assert!(
            v1(&r, &mut Vec::new()).is_err(),
            "unified on a v1 host is refused"
        );
    }
}
