#!/usr/bin/env bash
# Runs every test of the workspace on a fresh or ready machine: setup (idempotent), cargo test, then
# act-core's tests cross-built for aarch64 and run under qemu (scripts/test-aarch64.sh), then a
# bounded fuzz run of act-core's loading (scripts/fuzz.sh, ACT_FUZZ_SECONDS, default 60) where the
# nightly toolchain and cargo-fuzz are installed.
# Slow tests at full model size are `#[ignore]`d; run them with `scripts/test.sh -- --ignored`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
cargo test --workspace --locked "$@"
bash scripts/test-aarch64.sh
if rustup run nightly rustc --version >/dev/null 2>&1 && cargo fuzz --version >/dev/null 2>&1; then
    bash scripts/fuzz.sh "${ACT_FUZZ_SECONDS:-60}"
else
    echo "test.sh: fuzz stage NOT RUN: no nightly toolchain or no cargo-fuzz (scripts/setup.sh installs them where it can)" >&2
fi
