//! Builds and runs act-core/no-std-check, a #![no_std] #![no_main] program using act-core.
use std::process::Command;

#[test]
fn act_core_builds_and_runs_without_std() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/no-std-check/Cargo.toml");
    let target = concat!(env!("CARGO_MANIFEST_DIR"), "/no-std-check/target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "--manifest-path", manifest, "--target-dir", target])
        .output()
        .expect("run cargo");
    assert!(out.status.success(), "no_std build failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let run = Command::new(format!("{target}/debug/act-core-no-std-check")).output().expect("run the no_std program");
    assert!(run.status.success(), "no_std program failed with {:?}", run.status);
    assert_eq!(String::from_utf8_lossy(&run.stdout), "no_std ok\n");
}
