fn main() {
    match std::env::var("CARGO_CFG_TARGET_OS").as_deref() {
        // Bare metal: our own entry point and memory layout (src/bare.rs, bare.ld).
        Ok("none") => {
            let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
            println!("cargo:rustc-link-arg=-T{dir}/bare.ld");
            println!("cargo:rerun-if-changed=bare.ld");
        }
        // A #![no_main] binary is linked with -nodefaultlibs: name the C library (malloc, memcpy,
        // write) and libgcc_s (_Unwind_Resume, referenced by the precompiled liballoc) explicitly.
        _ => {
            println!("cargo:rustc-link-lib=c");
            println!("cargo:rustc-link-lib=gcc_s");
        }
    }
}
