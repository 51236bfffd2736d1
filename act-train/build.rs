include!("../build-support/rpath.rs");

fn main() {
    add_rpath_from_env("LIBTORCH", "lib");
    link_torch_cuda_if_present();
}

/// With a CUDA libtorch, nothing in the binary references libtorch_cuda.so directly (its kernels
/// register themselves when it is loaded), so the linker's --as-needed would drop it and
/// `tch::Cuda::is_available()` would be false. Link it with --no-as-needed when the libtorch
/// directory has it; the trimmed CPU libtorch does not, and then nothing changes.
fn link_torch_cuda_if_present() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Ok(dir) = std::env::var("LIBTORCH") else {
        return;
    };
    let lib = std::path::Path::new(&dir).join("lib");
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-search=native={}", lib.display());
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
