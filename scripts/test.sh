#!/usr/bin/env bash
# Runs every test of the workspace on a fresh or ready machine: setup (idempotent), cargo test, then
# act-core's tests cross-built for aarch64 and run under qemu (scripts/test-aarch64.sh).
# Slow tests at full model size are `#[ignore]`d; run them with `scripts/test.sh -- --ignored`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
cargo test --workspace --locked "$@"
bash scripts/test-aarch64.sh
