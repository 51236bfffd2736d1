// A #![no_main] binary is linked with -nodefaultlibs: name the C library (malloc, memcpy, write)
// and libgcc_s (_Unwind_Resume, referenced by the precompiled liballoc) explicitly.
fn main() {
    println!("cargo:rustc-link-lib=c");
    println!("cargo:rustc-link-lib=gcc_s");
}
