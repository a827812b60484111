//! Why a user namespace could not be made: the host settings that forbid them, by name,
//! with the fix (the failure users of bubblewrap, nsjail and sandbox-runtime meet most).

use std::path::Path;

/// Reads `/proc/sys` under `root` (a fake tree in tests) and names what forbids user namespaces.
pub fn diagnose(root: &Path) -> Option<String> {
    let read = |p: &str| std::fs::read_to_string(root.join(p)).ok().map(|s| s.trim().to_owned());
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
        let root = std::env::temp_dir().join(format!("lonely-userns-{}-{}", std::process::id(), files.len()));
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
        assert!(diagnose(&r).unwrap().starts_with("user.max_user_namespaces is 0"));
        std::fs::remove_dir_all(&r).unwrap();
        let r = fake(&[("user/max_user_namespaces", "100\n"), ("kernel/apparmor_restrict_unprivileged_userns", "1\n")]);
        assert!(diagnose(&r).unwrap().contains("apparmor_restrict_unprivileged_userns=0"));
        std::fs::remove_dir_all(&r).unwrap();
        let r = fake(&[("user/max_user_namespaces", "100\n"), ("kernel/apparmor_restrict_unprivileged_userns", "0\n"), ("kernel/unprivileged_userns_clone", "0\n")]);
        assert!(diagnose(&r).unwrap().contains("unprivileged_userns_clone=1"));
        std::fs::remove_dir_all(&r).unwrap();
        let r = fake(&[("user/max_user_namespaces", "100\n"), ("kernel/unprivileged_userns_clone", "1\n")]);
        assert_eq!(diagnose(&r), None);
        std::fs::remove_dir_all(&r).unwrap();
    }
}
