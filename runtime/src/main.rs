//! lonely-runtime: an OCI runtime with runc's command line (what containerd's runc shim and
//! podman call), over lonely's core: config.json becomes the ContainerSpec a `run()` sends.
//! `create` leaves PID 1 waiting on `exec.fifo` with every setup step done; `start` lets it go.
//! Errors go to stderr and, with `--log FILE --log-format json`, as runc's one-line records.

mod cli;
mod commands;
mod config;
mod events;
mod hooks;
mod log;
mod resources;
mod state;

use std::io::Write;

fn main() {
    // One container per process: namespaces made ahead would never be used.
    lonely_core::nspool::disable();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match cli::parse(&args) {
        Ok(p) => p,
        Err(e) => fail(&cli::Global::default(), &e),
    };
    match commands::run(&parsed) {
        Ok(code) => std::process::exit(code),
        Err(e) => fail(&parsed.global, &e),
    }
}

/// The error as runc reports it: one line on stderr, and a record in the log (the shim
/// shows its `msg` as "OCI runtime create failed: <msg>").
fn fail(global: &cli::Global, message: &str) -> ! {
    let _ = writeln!(std::io::stderr(), "lonely-runtime: {message}");
    log::record(global, "error", message);
    std::process::exit(1)
}
