//! lonely-init (init/init.c): a freestanding static program built with the target's C
//! compiler and embedded in the core (src/init.rs execs it from a sealed memfd).
fn main() {
    println!("cargo:rerun-if-changed=init/init.c");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let compiler = cc::Build::new().get_compiler();
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
        .arg(out.join("lonely-init"))
        .arg("init/init.c")
        .status()
        .expect("run the C compiler for init/init.c");
    assert!(status.success(), "building init/init.c failed");
}
