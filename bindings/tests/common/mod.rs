//! Test helpers: act-core's synthetic checkpoint writer (act-core/tests/common.rs, included, not
//! copied), plus the paths of the built C library and the example inputs.
#![allow(dead_code)]

#[path = "../../../act-core/tests/common.rs"]
mod checkpoint;
pub use checkpoint::*;

/// The cargo target profile directory (target/debug or target/release) this test runs from:
/// test executables live in `<profile dir>/deps/`.
pub fn profile_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent().and_then(|d| d.parent()).expect("test executable is in <target>/<profile>/deps").to_path_buf()
}

/// A built library of this crate (`libact_core.so` or `libact_core.a`), up to date.
///
/// `cargo test` builds only linkable library targets for integration tests, so the cdylib and
/// staticlib are built here with `cargo build -p act-core-ffi`, same profile and target directory
/// (cargo releases its lock before it runs the tests; on an up-to-date tree this takes a moment).
pub fn built_library(file: &str) -> std::path::PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let dir = profile_dir();
    BUILT.call_once(|| {
        let profile = dir.file_name().unwrap().to_str().unwrap().to_owned();
        let target_dir = dir.parent().unwrap();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["build", "-p", "act-core-ffi", "--lib", "--target-dir"]).arg(target_dir);
        match profile.as_str() {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
        let out = cmd.output().expect("run cargo");
        assert!(out.status.success(), "{cmd:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    });
    let p = dir.join(file);
    assert!(p.is_file(), "{} does not exist after `cargo build -p act-core-ffi`", p.display());
    p
}

/// A fresh scratch directory under cargo's per-target temp dir.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let base = option_env!("CARGO_TARGET_TMPDIR").map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    // Leftovers of earlier runs (other process ids) go first.
    let stem = format!("act-core-ffi-{name}-");
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            if e.file_name().to_str().is_some_and(|n| n.starts_with(&stem)) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(format!("{stem}{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The synthetic inputs of c/examples/control_loop.{c,cpp} at step `step` (keep in sync with
/// `fill_inputs` there): qpos[j] = 0.01 * ((step + j) % 20) - 0.1, and
/// pixel(cam, y, x, ch) = (3x + 5y + 50ch + 20cam + 7step) mod 256.
pub fn example_qpos(step: usize, state_dim: usize) -> Vec<f32> {
    (0..state_dim).map(|j| 0.01f32 * ((step + j) % 20) as f32 - 0.1f32).collect()
}

pub fn example_image(step: usize, cam: usize, h: usize, w: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(h * w * 3);
    for y in 0..h {
        for x in 0..w {
            for ch in 0..3 {
                v.push(((3 * x + 5 * y + 50 * ch + 20 * cam + 7 * step) % 256) as u8);
            }
        }
    }
    v
}
