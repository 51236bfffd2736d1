//! Builds and runs act-core/no-std-check, a #![no_std] #![no_main] program using act-core, for the
//! host; and builds it for bare-metal aarch64 (`aarch64-unknown-none`: no operating system at all)
//! and runs that on an emulated board.
//! Not compiled for aarch64 targets: under qemu it would only drive the x86 host's cargo again.
#![cfg(not(target_arch = "aarch64"))]
use std::process::Command;

const TARGET_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/no-std-check/target");

/// `cargo build` of no-std-check with `extra` arguments; panics with cargo's output and `hint`.
fn build(extra: &[&str], hint: &str) {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/no-std-check/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "--manifest-path", manifest, "--target-dir", TARGET_DIR])
        .args(extra)
        .output()
        .expect("run cargo");
    assert!(out.status.success(), "{hint}:\n{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn act_core_builds_and_runs_without_std() {
    build(&[], "no_std build failed");
    let run = Command::new(format!("{TARGET_DIR}/debug/act-core-no-std-check")).output().expect("run the no_std program");
    assert!(run.status.success(), "no_std program failed with {:?}", run.status);
    assert_eq!(String::from_utf8_lossy(&run.stdout), "no_std ok\n");
}

/// The same program for `aarch64-unknown-none`: no operating system, no C library; its own entry
/// point, heap and panic handler (no-std-check/src/bare.rs), the whole forward pass linked in.
/// Built in release (as firmware would be), checked to be an AArch64 executable whose entry is
/// the `_start` of no-std-check/bare.ld, and run on QEMU's emulated `virt` board (no kernel: the
/// ELF is the whole system), which reports through semihosting.
#[test]
fn act_core_builds_and_runs_on_bare_metal_aarch64() {
    build(
        &["--release", "--target", "aarch64-unknown-none"],
        "bare-metal aarch64 build failed (scripts/setup.sh adds the aarch64-unknown-none target)",
    );
    let elf = std::fs::read(format!("{TARGET_DIR}/aarch64-unknown-none/release/act-core-no-std-check")).expect("the built ELF");
    assert_eq!(&elf[..5], b"\x7fELF\x02", "a 64-bit ELF");
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 183, "e_machine EM_AARCH64");
    assert_eq!(u64::from_le_bytes(elf[24..32].try_into().unwrap()), 0x4008_0000, "entry at bare.ld's _start");
    let elf = format!("{TARGET_DIR}/aarch64-unknown-none/release/act-core-no-std-check");
    let run = Command::new("qemu-system-aarch64")
        .args(["-M", "virt", "-cpu", "max", "-nographic", "-nic", "none", "-semihosting", "-kernel", &elf])
        .output()
        .expect("run qemu-system-aarch64 (scripts/setup.sh installs Debian's qemu-system-arm)");
    // QEMU writes the program's semihosting output to its own stderr.
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "bare-metal program failed with {:?}: {said}", run.status);
    assert_eq!(said, "no_std ok\n");
}
