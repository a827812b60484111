//! A container's life in the core, independent of Node: its start (one transaction), and the
//! failure the caller sees when it does not start.

pub mod copy;
pub mod failure;
pub mod files;
pub mod foreign;
pub mod start;

pub use failure::Failure;
pub use start::{start, Running, StartError};
