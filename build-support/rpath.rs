// Shared by the build scripts of crates that link libtorch or libmujoco (included with `include!`).
// Neither torch-sys nor mujoco-rs sets an rpath, so binaries and tests would not find the shared
// libraries at run time. The environment variables come from .cargo/config.toml (set up by
// scripts/setup.sh); the path is canonicalised so the rpath points into the per-user cache rather
// than through the repository's .deps symlinks.

#[allow(dead_code)]
fn add_rpath_from_env(var: &str, subdir: &str) {
    println!("cargo:rerun-if-env-changed={var}");
    let Ok(dir) = std::env::var(var) else {
        println!("cargo:warning={var} is not set; run scripts/setup.sh");
        return;
    };
    let path = std::path::Path::new(&dir).join(subdir);
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", path.display());
}
