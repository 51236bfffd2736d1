#!/usr/bin/env bash
# Fuzzes act-core's loading and inference (act-core/fuzz, target load_and_run) for a bounded time:
#   scripts/fuzz.sh [SECONDS (default 60)] [extra libFuzzer flags, e.g. -jobs=2]
# Needs the nightly toolchain and cargo-fuzz (scripts/setup.sh installs both when it can). Starts
# from the committed seeds (act-core/fuzz/seeds, written by make_seeds.py) in a scratch corpus, so
# a run never changes the repository; a finding is saved under act-core/fuzz/artifacts/ and fails
# the run. Prints libFuzzer's final statistics (number of executions, executions per second).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../act-core/fuzz"
secs="${1:-60}"
shift || true
corpus="$(mktemp -d)"
trap 'rm -rf "$corpus"' EXIT
cp seeds/load_and_run/* "$corpus"/
# -max_len: the seeds are ~1.5 kB; 8 kB leaves room for longer configs and patch lists.
# -rss_limit_mb: the f32, f16 and bf16 base models (~45 + 22 + 22 MB) stay resident under ASan.
cargo +nightly fuzz run --release load_and_run "$corpus" -- \
    -max_total_time="$secs" -max_len=8192 -rss_limit_mb=4096 -timeout=60 -print_final_stats=1 "$@" 2>&1 |
    grep -vE '^#[0-9]+\s+(NEW|REDUCE|pulse)|^"|recommended dictionary' || { echo "fuzz: load_and_run failed (see above; input in act-core/fuzz/artifacts/)" >&2; exit 1; }
