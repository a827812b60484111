//! lonely-container's core: everything that touches the kernel, with no Node in it. The
//! Node-API addon (crate/) and, later, the OCI runtime binary are thin layers over it.
#![cfg(target_os = "linux")]

pub mod cgroups;
pub mod child;
#[cfg(test)]
mod child_tests;
pub mod container;
pub mod images;
pub mod monitor;
pub mod nspool;
pub mod plan;
pub mod planner;
pub mod programs;
pub mod reaper;
pub mod rootfs;
pub mod seccomp;
pub mod security;
pub mod spawn;
pub mod spec;
pub mod stdio;
pub mod sys;
pub mod terminal;
pub mod userns;
