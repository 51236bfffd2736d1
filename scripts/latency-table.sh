#!/usr/bin/env bash
# Task success under inference latency: the policy scripts/demo.sh trains, evaluated in act-sim over
# the same rollouts with a query that takes K control steps (--latency-steps K: the chunk from
# step t's observation is usable at step t + K, the simulation runs on meanwhile), for chunk
# execution, temporal ensembling and latest-chunk blending, chunks aligned to their observation or
# played from their arrival (naive). K = 0 is the synchronous, latency-free ideal.
#
#   scripts/latency-table.sh                       # after scripts/demo.sh; writes runs/.../latency/
#   ACT_LATENCIES="0 5" ACT_EVAL_ROLLOUTS=10 scripts/latency-table.sh
#   ACT_JOBS=2 scripts/latency-table.sh            # two evaluations at a time
#
# Each evaluation's full output is kept in $OUT/<blending>_k<K>_<alignment>.md; one that exists is
# not run again (delete it to rerun). The table goes to stdout and $OUT/table.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUN="${ACT_RUN_DIR:-runs/transfer_cube_cpu}"
CKPT="${ACT_CKPT:-$RUN/ckpt/policy.safetensors}"
OUT="${ACT_LATENCY_DIR:-$RUN/latency}"
ROLLOUTS="${ACT_EVAL_ROLLOUTS:-50}"
LATENCIES="${ACT_LATENCIES:-0 2 5 10 25}"
JOBS="${ACT_JOBS:-1}"
BIN=target/release/act-sim

if [ ! -f "$CKPT" ]; then
    echo "latency-table.sh: no policy at $CKPT; run scripts/demo.sh first (or set ACT_CKPT)" >&2
    exit 1
fi
cargo build --release --locked -p act-sim
mkdir -p "$OUT"

# One line per evaluation: name, then act-sim flags.
jobs_file="$OUT/jobs.txt"
: >"$jobs_file"
for k in $LATENCIES; do
    if [ "$k" = 0 ]; then aligns="sync"; else aligns="aligned naive"; fi
    for al in $aligns; do
        for blend in chunk ensemble latest; do
            case $blend in
                chunk) flags="" ;;
                ensemble) flags="--temporal-agg" ;;
                latest) flags="--latest-chunk" ;;
            esac
            if [ "$al" != sync ]; then flags="$flags --alignment $al"; fi
            # No trailing blank: xargs -L would join the next line to this one.
            echo "${blend}_k${k}_${al} --latency-steps $k${flags:+ }${flags# }" >>"$jobs_file"
        done
    done
done

run_one() { # run_one NAME FLAGS...
    local name="$1"; shift
    local file="$OUT/$name.md"
    if [ -s "$file" ] && grep -q '^success ' "$file"; then
        echo "[latency] $name: kept from an earlier run" >&2
        return
    fi
    echo "[latency] $name: act-sim eval $*" >&2
    # Written to a temporary file first: an interrupted evaluation leaves no half table behind.
    # shellcheck disable=SC2086
    "$BIN" eval --ckpt "$CKPT" --num-rollouts "$ROLLOUTS" "$@" ${ACT_EVAL_ARGS:-} >"$file.part" 2>"$OUT/$name.log"
    mv "$file.part" "$file"
}
export -f run_one
export OUT ROLLOUTS CKPT BIN ACT_EVAL_ARGS
# shellcheck disable=SC2016
xargs -P "$JOBS" -L 1 bash -c 'run_one "$@"' _ <"$jobs_file"

python3 - "$OUT" "$jobs_file" <<'EOF' | tee "$OUT/table.md"
import re, sys
out, jobs = sys.argv[1], sys.argv[2]
names = [l.split()[0] for l in open(jobs) if l.strip()]
rows, base = [], {}
for name in names:
    text = open(f"{out}/{name}.md").read()
    stages = re.findall(r"^\| \d [^|]* \| (\d+)/(\d+) \|", text, re.M)
    blend, k, al = re.match(r"(\w+?)_k(\d+)_(\w+)", name).groups()
    held = re.search(r"\((\d+\.\d) %\), mean staleness (\d+\.\d)", text)
    done = int(stages[-1][0])
    n = int(stages[-1][1])
    if k == "0":
        base[blend] = done
    rows.append((blend, int(k), al, [int(s[0]) for s in stages], n, done, held))
label = {"chunk": "chunk execution", "ensemble": "temporal ensembling (m 0.01)", "latest": "latest chunk"}
def wilson(k, n, z=1.96):
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / d
    return f"{100 * (c - h):.0f}-{100 * (c + h):.0f} %"
print("| blending | K (steps of 20 ms) | chunks placed at | touched | lifted | handed over | **transferred** | 95 % interval | vs K = 0 | held steps | mean staleness |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for blend in ["chunk", "ensemble", "latest"]:
    for b, k, al, st, n, done, held in sorted((r for r in rows if r[0] == blend), key=lambda r: (r[1], r[2] != "aligned")):
        where = {"sync": "- (synchronous)", "aligned": "observation (aligned)", "naive": "arrival (naive)"}[al]
        rel = f"{100 * done / base[b]:.0f} %" if base.get(b) else "-"
        h = f"{held.group(1)} %" if held else "0 %"
        s = f"{held.group(2)}" if held else "-"
        cells = " | ".join(f"{x}/{n}" for x in st[:3])
        print(f"| {label[b]} | {k} | {where} | {cells} | **{done}/{n}** | {wilson(done, n)} | {rel} | {h} | {s} |")
EOF
