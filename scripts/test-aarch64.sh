#!/usr/bin/env bash
# act-core on aarch64, under qemu-user (scripts/test.sh runs this after the x86 suite; setup.sh
# installs the cross gcc, qemu and the Rust target):
#   1. libtorch's reference results on x86 (act-train's libtorch_fixtures example);
#   2. every act-core test cross-built for aarch64-unknown-linux-gnu and run under
#      `qemu-aarch64 -cpu max` (fp16, dotprod, i8mm, bf16 present), including the policy-level
#      agreement with libtorch through those fixtures;
#   3. the kernel, error and agreement tests again on a plain Armv8.0 CPU model (Cortex-A53:
#      none of the optional extensions), so the baseline path and the refusals are exercised too.
# The C library and the C example for aarch64 are tested by bindings/tests/c_examples.rs, the
# bare-metal build (run on qemu-system-aarch64) by act-core/tests/no_std.rs, both in the x86 suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET=aarch64-unknown-linux-gnu
export ACT_LIBTORCH_FIXTURES="$PWD/target/aarch64-fixtures"
log() { printf '[aarch64] %s\n' "$*" >&2; }

log "writing libtorch reference results to $ACT_LIBTORCH_FIXTURES"
cargo run --quiet --locked -p act-train --example libtorch_fixtures -- "$ACT_LIBTORCH_FIXTURES"

log "act-core tests under qemu-aarch64 -cpu max"
# That CPU model has the BF16 extension and FP16 arithmetic: those tests must run, not skip.
export ACT_EXPECT_FEATURES=bf16,fp16
# Left out under emulation: the worker-thread refusal test caps its own address space with
# RLIMIT_AS just above what it uses, and under qemu-user that cap falls on the emulator itself
# (it runs on x86 and on real ARM hardware).
cargo test --locked --target "$TARGET" -p act-core -- \
    --skip neon_policies_agree_with_libtorch --skip a_worker_thread_the_system_cannot_start_is_an_error
# Separately, so that its agreement table is printed.
cargo test --locked --target "$TARGET" -p act-core --test libtorch_fixtures -- --nocapture

log "kernel, error and libtorch-agreement tests under qemu-aarch64 -cpu cortex-a53 (Armv8.0)"
unset ACT_EXPECT_FEATURES
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -cpu cortex-a53 -L /usr/aarch64-linux-gnu" \
    cargo test --locked --target "$TARGET" -p act-core --test kernels --test errors --test libtorch_fixtures
