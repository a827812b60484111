//! lonely-container's native core: everything that touches the kernel.
#![cfg(target_os = "linux")]

#[cfg(not(test))]
mod binding;
pub mod cgroups;
pub mod child;
#[cfg(test)]
mod child_tests;
pub mod container;
#[cfg(not(test))]
mod image_binding;
pub mod images;
pub mod init;
pub mod nspool;
pub mod plan;
pub mod planner;
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
