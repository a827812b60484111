//! Privileges: capability sets by name (docker's defaults), masked and read-only /proc and
//! /sys paths. Applied by child.rs in order; no_new_privs and seccomp come last.

/// Capability names in kernel order (capability.h); the index is the capability's number.
pub const CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// docker's default set: what root in a container keeps.
pub const DOCKER_DEFAULT: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// docker's masked paths: files get /dev/null bound over them, directories an empty read-only tmpfs.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// docker's read-only paths: bound over themselves, read-only.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

#[derive(Debug, thiserror::Error)]
#[error("capabilities: unknown capability `{0}`")]
pub struct UnknownCapability(pub String);

/// A capability set as the kernel's 64-bit mask, from names with or without `CAP_`.
pub fn mask<S: AsRef<str>>(names: &[S]) -> Result<u64, UnknownCapability> {
    names.iter().try_fold(0u64, |m, name| {
        let name = name.as_ref();
        let bare = name.strip_prefix("CAP_").unwrap_or(name);
        let bit = CAPABILITIES
            .iter()
            .position(|c| *c == bare)
            .ok_or_else(|| UnknownCapability(name.to_owned()))?;
        Ok(m | 1 << bit)
    })
}

/// The capabilities this process may still pass on (its bounding set).
/// Read once: a process's bounding set can only shrink, and a capability dropped later
/// would surface as a `capset` setup error, not a silent grant.
pub fn bounding_set() -> u64 {
    static SET: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SET.get_or_init(|| {
        (0..=last_cap())
        .filter(
            |&c| unsafe { libc::prctl(libc::PR_CAPBSET_READ, c as libc::c_ulong, 0, 0, 0) } == 1,
        )
        .fold(0, |m, c| m | 1 << c)
    })
}

/// Names of the capabilities in `mask`, as CAP_X.
pub fn names(mask: u64) -> Vec<String> {
    CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, n)| format!("CAP_{n}"))
        .collect()
}

/// The highest capability this kernel knows (capabilities above it cannot be dropped, nor exist).
pub fn last_cap() -> u32 {
    static LAST: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *LAST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(CAPABILITIES.len() as u32 - 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_kernel_numbers() {
        assert_eq!(mask(&["CHOWN"]).unwrap(), 1);
        assert_eq!(mask(&["CAP_SYS_ADMIN"]).unwrap(), 1 << 21);
        assert_eq!(mask(DOCKER_DEFAULT).unwrap().count_ones(), 14);
        assert!(mask(&["SUPERPOWER"]).is_err());
    }
}
