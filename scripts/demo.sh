#!/usr/bin/env bash
# The main job, end to end on a CPU: record scripted demonstrations of one of ACT's two simulated
# tasks, train ACT on them (exporting a snapshot every 1000 steps), export for act-core, evaluate
# act-core in the simulator, print the success tables (with Wilson 95 % intervals), the success of
# each snapshot and the latency. A second run reuses what exists: the dataset, a finished policy,
# or an interrupted training run (it resumes from its last checkpoint).
#
#   scripts/demo.sh                          # transfer cube, into runs/transfer_cube_cpu
#   scripts/demo.sh insertion                # insertion (100 demonstrations), into runs/insertion_fc100
#   ACT_SEED=1 scripts/demo.sh               # another training seed, into runs/transfer_cube_cpu_seed1
#   ACT_RUN_DIR=/tmp/r scripts/demo.sh
#   ACT_TRAIN_ARGS="--steps 8000" scripts/demo.sh    # extra act-train flags
#   ACT_EVAL_ROLLOUTS=20 scripts/demo.sh
#   ACT_SNAPSHOT_ROLLOUTS=0 scripts/demo.sh  # skip evaluating the snapshots (default 20 rollouts each)
#   ACT_CAMERAS=top,angle scripts/demo.sh insertion   # cameras recorded and seen by the model
#   ACT_EPISODES=50 ACT_DATA_DIR=runs/insertion_data_fc scripts/demo.sh insertion   # fewer demonstrations
# Each task's recipe and default directories are in scripts/recipe.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WHICH="${1:-transfer_cube}"
SEED="${ACT_SEED:-0}"
case "$SEED" in ''|*[!0-9]*) echo "demo.sh: ACT_SEED must be a number, got $SEED" >&2; exit 2;; esac
# shellcheck source=scripts/recipe.sh
source scripts/recipe.sh
recipe "$WHICH" "$SEED" || { echo "demo.sh: unknown task $WHICH (transfer_cube or insertion)" >&2; exit 2; }
CAMERAS="${ACT_CAMERAS:-$CAMERAS}"
RUN="${ACT_RUN_DIR:-$DEFAULT_RUN}"
# Every seed of a task trains on the same recorded episodes.
DATA="${ACT_DATA_DIR:-$DEFAULT_DATA}"
CKPT="$RUN/ckpt"
EPISODES="${ACT_EPISODES:-$EPISODES}"
ROLLOUTS="${ACT_EVAL_ROLLOUTS:-50}"
SNAP_ROLLOUTS="${ACT_SNAPSHOT_ROLLOUTS:-20}"

step() { printf '\n==> %s\n' "$*"; }
trap 'echo "demo.sh: failed at line $LINENO (exit $?); rerun to continue where it stopped" >&2' ERR

bash scripts/setup.sh
step "building act-sim and act-train (release)"
cargo build --release --locked -p act-sim -p act-train
BIN=target/release

have=0
if [ -d "$DATA" ]; then
    have=$(find "$DATA" -maxdepth 1 -name 'episode_*.hdf5' | wc -l)
fi
if [ "$have" -lt "$EPISODES" ]; then
    step "recording $EPISODES scripted $TASK episodes (cameras $CAMERAS at ${H}x${W}) into $DATA"
    cams=()
    for c in ${CAMERAS//,/ }; do cams+=(--camera "$c"); done
    "$BIN/act-sim" record --task "$TASK" --dataset-dir "$DATA" --num-episodes "$EPISODES" "${cams[@]}" --height "$H" --width "$W" --seed 0
else
    step "dataset: $have episodes already in $DATA"
fi

if [ ! -f "$CKPT/policy.safetensors" ]; then
    resume=()
    if [ -f "$CKPT/last.ckpt" ]; then resume=(--resume); fi
    step "training ACT (${PRESET_ARGS[*]}${ACT_TRAIN_ARGS:+ $ACT_TRAIN_ARGS}, seed $SEED${resume:+, resuming}) into $CKPT"
    # shellcheck disable=SC2086
    mkdir -p "$RUN"
    start=$(date +%s)
    "$BIN/act-train" train --dataset-dir "$DATA" --ckpt-dir "$CKPT" "${PRESET_ARGS[@]}" --camera-names "$CAMERAS" \
        --seed "$SEED" --snapshot-every 1000 "${resume[@]}" ${ACT_TRAIN_ARGS:-} 2> >(tee -a "$RUN/train.log" >&2)
    echo "training wall time: $(( $(date +%s) - start )) s" >> "$RUN/train.log"
else
    step "policy: $CKPT/policy.safetensors already trained"
fi

# Each table is written to a temporary file and renamed when complete, so an interrupted evaluation
# leaves no partial table; a table newer than the policy is reused by the next run.
evaluate() { # evaluate OUT.md DESCRIPTION act-sim-arguments...
    local out=$1 what=$2
    shift 2
    if [ -s "$out" ] && [ "$out" -nt "$CKPT/policy.safetensors" ] && grep -q -E '^(success |wrote )' "$out"; then
        step "$what: already evaluated, $out"
        cat "$out"
        return
    fi
    step "$what"
    "$BIN/act-sim" "$@" | tee "$out.tmp"
    mv "$out.tmp" "$out"
}
evaluate "$RUN/eval_chunks.md" "evaluating with act-core: $ROLLOUTS rollouts, chunk execution (query every 100 steps)" \
    eval --ckpt "$CKPT/policy.safetensors" --task "$TASK" --num-rollouts "$ROLLOUTS" --video-dir "$RUN/videos"
evaluate "$RUN/eval_temporal_agg.md" "evaluating with act-core: $ROLLOUTS rollouts, temporal ensembling (query every step)" \
    eval --ckpt "$CKPT/policy.safetensors" --task "$TASK" --num-rollouts "$ROLLOUTS" --temporal-agg --video-dir "$RUN/videos_temporal_agg"
if [ "$SNAP_ROLLOUTS" -gt 0 ] && [ -d "$CKPT/snapshots" ]; then
    evaluate "$RUN/eval_snapshots.md" "success over training time: every snapshot, $SNAP_ROLLOUTS rollouts, chunk execution" \
        eval-snapshots --ckpt-dir "$CKPT" --task "$TASK" --num-rollouts "$SNAP_ROLLOUTS"
fi

step "done"
echo "dataset:      $DATA"
echo "loss curve:   $CKPT/loss_curve.png (losses: $CKPT/losses.csv; success per snapshot: $CKPT/success_vs_step.csv)"
echo "policy:       $CKPT/policy.safetensors (act-core single file) and $CKPT/policy/ (LeRobot directory)"
echo "videos:       $RUN/videos/ and $RUN/videos_temporal_agg/"
echo "results:      $RUN/eval_chunks.md, $RUN/eval_temporal_agg.md"
