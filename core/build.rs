//! lonely's freestanding programs (init/init.c, init/monitor.c): static, no libc, built with the
//! target's C compiler and embedded in the core (src/programs.rs execs them from sealed memfds).
fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let compiler = cc::Build::new().get_compiler();
    println!("cargo:rerun-if-changed=init/sys.h");
    for name in ["init", "monitor"] {
        let source = format!("init/{name}.c");
        println!("cargo:rerun-if-changed={source}");
        let status = compiler
            .to_command()
            .args([
                "-static",
                "-nostdlib",
                "-ffreestanding",
                "-fno-builtin",
                "-fno-stack-protector",
                "-fno-asynchronous-unwind-tables",
                "-fno-pie",
                "-no-pie",
                "-Os",
                "-Wall",
                "-Werror",
                "-Wl,--build-id=none",
                "-o",
            ])
            .arg(out.join(format!("lonely-{name}")))
            .arg(&source)
            .status()
            .unwrap_or_else(|e| panic!("run the C compiler for {source}: {e}"));
        assert!(status.success(), "building {source} failed");
    }
}
