//! Why a user namespace could not be made: the host settings that forbid them, by name,
//! with the fix (the failure users of bubblewrap, nsjail and sandbox-runtime meet most).

use std::path::Path;

use serde::Deserialize;

/// One line of a uid_map / gid_map: `size` ids from `container_id` inside map to `host_id` outside.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdRange {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

/// Maps the parent writes for the child (ranges: more than the caller's own id).
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RangeMaps {
    pub uid: Vec<IdRange>,
    pub gid: Vec<IdRange>,
    /// The setuid helpers a non-root caller needs (shadow's newuidmap/newgidmap); None for root.
    pub newuidmap: Option<String>,
    pub newgidmap: Option<String>,
}

/// Writes the child's maps: directly as root, through newuidmap/newgidmap otherwise.
pub fn write_maps(pid: i32, maps: &RangeMaps) -> Result<(), String> {
    for (which, ranges, helper) in [
        ("uid_map", &maps.uid, &maps.newuidmap),
        ("gid_map", &maps.gid, &maps.newgidmap),
    ] {
        match helper {
            None => {
                let text: String = ranges
                    .iter()
                    .map(|r| format!("{} {} {}\n", r.container_id, r.host_id, r.size))
                    .collect();
                let path = format!("/proc/{pid}/{which}");
                std::fs::write(&path, text).map_err(|e| format!("write `{path}`: {e}"))?;
            }
            Some(program) => {
                let mut args = vec![pid.to_string()];
                for r in ranges.iter() {
                    args.extend([
                        r.container_id.to_string(),
                        r.host_id.to_string(),
                        r.size.to_string(),
                    ]);
                }
                let out = std::process::Command::new(program)
                    .args(&args)
                    .output()
                    .map_err(|e| format!("{program}: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "{program} {}: {}",
                        args.join(" "),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Reads `/proc/sys` under `root` (a fake tree in tests) and names what forbids user namespaces.
pub fn diagnose(root: &Path) -> Option<String> {
    let read = |p: &str| {
        std::fs::read_to_string(root.join(p))
            .ok()
            .map(|s| s.trim().to_owned())
    };
    if read("user/max_user_namespaces").as_deref() == Some("0") {
        return Some("user.max_user_namespaces is 0, so no user namespace can be made: `sysctl -w user.max_user_namespaces=15000` (and in /etc/sysctl.d to keep it)".into());
    }
    if read("kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Some("kernel.apparmor_restrict_unprivileged_userns=1 (Ubuntu 23.10 and later) forbids user namespaces to unconfined programs: `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, or give node an AppArmor profile that allows `userns,`".into());
    }
    if read("kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Some("kernel.unprivileged_userns_clone=0 forbids user namespaces to non-root users: `sysctl -w kernel.unprivileged_userns_clone=1`".into());
    }
    None
}

/// The explanation for a failed clone with CLONE_NEWUSER, or a generic one.
pub fn explain(errno: nix::errno::Errno) -> String {
    match diagnose(Path::new("/proc/sys")) {
        Some(why) => format!("clone: cannot make a user namespace ({errno}): {why}"),
        None => format!(
            "clone: cannot make a user namespace ({errno}); this host or the container Node runs in may forbid them (seccomp, a masked /proc/sys, or a limit on user namespaces)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(files: &[(&str, &str)]) -> std::path::PathBuf {
        let root = std::env::temp_dir().join(format!(
            "lonely-userns-{}-{}",
            std::process::id(),
            files.len()
        ));
        for (path, value) in files {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, value).unwrap();
        }
        root
    }

    #[test]
    fn each_forbidding_setting_is_named_with_its_fix() {
        let r = fake(&[("user/max_user_namespaces", "0\n")]);
        assert!(diagnose(&r)
            .unwrap()
            .starts_with("user.max_user_namespaces is 0"));
        std::fs::remove_dir_all(&r).unwrap();
        let r = fake(&[
            ("user/max_user_namespaces", "100\n"),
            ("kernel/apparmor_restrict_unprivileged_userns", "1\n"),
        ]);
        assert!(diagnose(&r)
            .unwrap()
            .contains("apparmor_restrict_unprivileged_userns=0"));
        std::fs::remove_dir_all(&r).unwrap();
        let r = fake(&[
            ("user/max_user_namespaces", "100\n"),
            ("kernel/apparmor_restrict_unprivileged_userns", "0\n"),
            ("kernel/unprivileged_userns_clone", "0\n"),
        ]);
        assert!(diagnose(&r)
            .unwrap()
            .contains("unprivileged_userns_clone=1"));
        std::fs::remove_dir_all(&r).unwrap();
        let r = fake(&[
            ("user/max_user_namespaces", "100\n"),
            ("kernel/unprivileged_userns_clone", "1\n"),
        ]);
        assert_eq!(diagnose(&r), None);
        std::fs::remove_dir_all(&r).unwrap();
    }
}
