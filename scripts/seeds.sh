#!/usr/bin/env bash
# Training seeds side by side: runs scripts/demo.sh for each seed of one task (each into its own
# run directory, all on the same recorded episodes; finished runs are reused), then prints each
# seed's success with chunk execution and temporal ensembling, their Wilson 95 % intervals, the
# mean over seeds and the training time, as a markdown table (also written to runs/<task>_seeds.md).
#
#   scripts/seeds.sh transfer_cube 0 1 2
#   scripts/seeds.sh insertion 0 1 2
#   ACT_PARALLEL=2 scripts/seeds.sh transfer_cube 1 2   # two seeds at once, one libtorch thread each
#
# ACT_PARALLEL=N trains N seeds at a time, each with libtorch threads = cores / N, logging to
# runs/<task>_seed<S>.log. libtorch uses a second core poorly on the sim-small model (AMD EPYC
# Zen 3, 2 cores: 7.1 samples/s with 2 threads, 6.0 with 1), so two one-thread runs side by side
# finish about 1.65x sooner than one after the other. Results depend on the thread count (the
# order of floating-point sums), so a run is reproduced with the same ACT_PARALLEL.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WHICH="${1:?usage: scripts/seeds.sh transfer_cube|insertion SEED...}"
shift
(($#)) || { echo "seeds.sh: give at least one seed" >&2; exit 2; }
PARALLEL="${ACT_PARALLEL:-1}"
# shellcheck source=scripts/recipe.sh
source scripts/recipe.sh
recipe "$WHICH" 0 || { echo "seeds.sh: unknown task $WHICH (transfer_cube or insertion)" >&2; exit 2; }
for s in "$@"; do
    case "$s" in ''|*[!0-9]*) echo "seeds.sh: a seed must be a number, got $s" >&2; exit 2;; esac
done
failed=()
case "$PARALLEL" in ''|*[!0-9]*|0) echo "seeds.sh: ACT_PARALLEL must be a positive number, got $PARALLEL" >&2; exit 2;; esac
if [ "$PARALLEL" = 1 ]; then
    for s in "$@"; do
        ACT_SEED="$s" bash scripts/demo.sh "$WHICH"
    done
else
    threads=$(( $(nproc) / PARALLEL ))
    ((threads >= 1)) || threads=1
    # Set up and build once, before the runs start side by side.
    bash scripts/setup.sh
    cargo build --release --locked -p act-sim -p act-train
    mkdir -p runs
    seeds=("$@")
    for ((i = 0; i < ${#seeds[@]}; i += PARALLEL)); do
        pids=() batch=()
        for s in "${seeds[@]:i:PARALLEL}"; do
            log="runs/${WHICH}_seed$s.log"
            echo "seeds.sh: seed $s with $threads libtorch thread(s), log $log"
            ACT_SEED="$s" ACT_TRAIN_ARGS="--threads $threads ${ACT_TRAIN_ARGS:-}" bash scripts/demo.sh "$WHICH" >"$log" 2>&1 &
            pids+=($!) batch+=("$s")
        done
        for j in "${!pids[@]}"; do
            wait "${pids[$j]}" || failed+=("${batch[$j]}")
        done
    done
    if ((${#failed[@]})); then
        echo "seeds.sh: seed(s) ${failed[*]} failed; see runs/${WHICH}_seed<S>.log (rerun to continue)" >&2
    fi
fi
# "success 42/50 = 84 % (Wilson 95 % CI 71-92 %), average return ..." -> "42/50 = 84 % (Wilson 95 % CI 71-92 %)"
# A run that is missing or did not finish leaves its cells empty.
rate() { { sed -n 's/^success \(.*%)\), average return.*/\1/p' "$1" 2>/dev/null || true; } | tail -1; }
count() { { sed -n 's/^success \([0-9]*\)\/\([0-9]*\) .*/\1 \2/p' "$1" 2>/dev/null || true; } | tail -1; }
out="runs/${WHICH}_seeds.md"
{
    echo "| $WHICH, training seed | chunk execution | temporal ensembling | training time |"
    echo "|---|---|---|---|"
    sum_c=0 sum_t=0 n=0
    for s in "$@"; do
        recipe "$WHICH" "$s"
        run="$DEFAULT_RUN"
        secs=$({ sed -n 's/^training wall time: \([0-9]*\) s/\1/p' "$run/train.log" 2>/dev/null || true; } | tail -1)
        echo "| $s | $(rate "$run/eval_chunks.md") | $(rate "$run/eval_temporal_agg.md") | ${secs:+$((secs / 60)) min} |"
        read -r kc nc <<<"$(count "$run/eval_chunks.md")" || true
        read -r kt nt <<<"$(count "$run/eval_temporal_agg.md")" || true
        if [ -n "${nc:-}" ] && [ -n "${nt:-}" ]; then
            sum_c=$(awk -v a="$sum_c" -v k="$kc" -v n="$nc" 'BEGIN { print a + 100 * k / n }')
            sum_t=$(awk -v a="$sum_t" -v k="$kt" -v n="$nt" 'BEGIN { print a + 100 * k / n }')
            n=$((n + 1))
        fi
    done
    if ((n)); then
        awk -v c="$sum_c" -v t="$sum_t" -v n="$n" 'BEGIN { printf "| mean over %d finished seeds | %.0f %% | %.0f %% | |\n", n, c / n, t / n }'
    fi
} | tee "$out"
echo "written to $out"
((${#failed[@]} == 0))
