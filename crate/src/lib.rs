//! lonely-container's Node-API addon: the #[napi] surface over lonely-core, converting types
//! and errors, nothing else.
#![cfg(target_os = "linux")]

pub use lonely_core::*;

// Not in the test build: the #[napi] functions only exist loaded by Node.
#[cfg(not(test))]
mod binding;
#[cfg(not(test))]
mod copy_binding;
#[cfg(not(test))]
mod image_binding;
