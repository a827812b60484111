//! What the planner needs to know about the host, read once per spawn into one value that
//! tests build themselves: the layout the mirror root copies, which kernel paths exist, a
//! bind source's kind and identity, this process's capabilities and ids.

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::{Mutex, OnceLock};

use crate::security;
use crate::spec::{source_identity, SpecError};

/// Host directories the default root mirrors read-only (those that exist).
const HOST_MIRROR: &[&str] = &[
    "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc",
];

/// One top-level entry of the host that the mirror root copies.
#[derive(Debug, Clone)]
pub enum HostEntry {
    Dir(&'static str),
    /// A symlink (merged /usr: `bin -> usr/bin`) and its target.
    Link(&'static str, CString),
}

/// A bind source's kind and identity: (is a directory, (st_dev, st_ino)).
pub type SourceLookup = fn(&str) -> Result<(bool, (u64, u64)), SpecError>;

pub struct HostFacts {
    /// The entries of HOST_MIRROR this host has.
    pub mirror: &'static [HostEntry],
    /// Whether `proc/...` or `sys/...` exists on this kernel: Some(is a directory).
    pub kernel_path: fn(&str) -> Option<bool>,
    /// A bind source: whether it is a directory, and its (st_dev, st_ino).
    pub source: SourceLookup,
    /// The capabilities this process may pass on, and the kernel's last one.
    pub bounding: u64,
    pub last_cap: u32,
    /// This process's euid and egid (what a user namespace maps 0 to).
    pub ids: (u32, u32),
    /// overlayfs takes its layers one by one (`lowerdir+`, Linux 6.8): no 256-byte limit.
    pub lowerdir_append: bool,
}

impl HostFacts {
    /// This host, now (the layout and kernel paths are cached: they do not change between spawns).
    pub fn read() -> HostFacts {
        HostFacts {
            mirror: host_layout(),
            kernel_path: kernel_path_kind,
            source: source_identity,
            bounding: security::bounding_set(),
            last_cap: security::last_cap(),
            ids: unsafe { (libc::geteuid(), libc::getegid()) },
            lowerdir_append: kernel_at_least(6, 8),
        }
    }
}

/// The running kernel's release is `major.minor` or later (read once).
fn kernel_at_least(major: u32, minor: u32) -> bool {
    static RELEASE: OnceLock<(u32, u32)> = OnceLock::new();
    let (have_major, have_minor) = *RELEASE.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut parts = text
            .trim()
            .split(['.', '-'])
            .map(|p| p.parse().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    });
    (have_major, have_minor) >= (major, minor)
}

/// The host's layout of `HOST_MIRROR`, read once per process (not on every spawn).
fn host_layout() -> &'static [HostEntry] {
    static LAYOUT: OnceLock<Vec<HostEntry>> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        HOST_MIRROR
            .iter()
            .filter_map(|dir| {
                let path = format!("/{dir}");
                let meta = std::fs::symlink_metadata(&path).ok()?;
                if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(&path).ok()?;
                    CString::new(target.into_os_string().into_encoded_bytes())
                        .ok()
                        .map(|t| HostEntry::Link(dir, t))
                } else {
                    meta.is_dir().then_some(HostEntry::Dir(dir))
                }
            })
            .collect()
    })
}

/// Whether `/proc/...` or `/sys/...` exists on this kernel (Some(is a directory)), cached:
/// the kernel's own entries do not come and go between spawns.
fn kernel_path_kind(rel: &str) -> Option<bool> {
    static SEEN: OnceLock<Mutex<HashMap<String, Option<bool>>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    *seen.entry(rel.to_owned()).or_insert_with(|| {
        std::fs::metadata(format!("/{rel}"))
            .ok()
            .map(|m| m.is_dir())
    })
}
