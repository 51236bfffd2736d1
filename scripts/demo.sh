#!/usr/bin/env bash
# The main job, end to end on a CPU: record scripted transfer-cube demonstrations in simulation,
# train ACT on them, export for act-core, evaluate act-core in the simulator, print the success
# table and latency. A second run reuses what exists: the dataset, a finished policy, or an
# interrupted training run (it resumes from its last checkpoint).
#
#   scripts/demo.sh                 # everything, into runs/transfer_cube_cpu
#   ACT_RUN_DIR=/tmp/r scripts/demo.sh
#   ACT_TRAIN_ARGS="--steps 8000" scripts/demo.sh    # extra act-train flags
#   ACT_EVAL_ROLLOUTS=20 scripts/demo.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUN="${ACT_RUN_DIR:-runs/transfer_cube_cpu}"
DATA="$RUN/data"
CKPT="$RUN/ckpt"
EPISODES="${ACT_EPISODES:-50}"
ROLLOUTS="${ACT_EVAL_ROLLOUTS:-50}"
TASK=sim_transfer_cube_scripted
H=120 W=160

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
    step "recording $EPISODES scripted $TASK episodes (top camera ${H}x${W}) into $DATA"
    "$BIN/act-sim" record --task "$TASK" --dataset-dir "$DATA" --num-episodes "$EPISODES" --height "$H" --width "$W" --seed 0
else
    step "dataset: $have episodes already in $DATA"
fi

if [ ! -f "$CKPT/policy.safetensors" ]; then
    resume=()
    if [ -f "$CKPT/last.ckpt" ]; then resume=(--resume); fi
    step "training ACT (preset sim-small${resume:+, resuming}) into $CKPT"
    # shellcheck disable=SC2086
    "$BIN/act-train" train --dataset-dir "$DATA" --ckpt-dir "$CKPT" --preset sim-small --camera-names top "${resume[@]}" ${ACT_TRAIN_ARGS:-}
else
    step "policy: $CKPT/policy.safetensors already trained"
fi

step "evaluating with act-core: $ROLLOUTS rollouts, chunk execution (query every 100 steps)"
"$BIN/act-sim" eval --ckpt "$CKPT/policy.safetensors" --task "$TASK" --num-rollouts "$ROLLOUTS" --video-dir "$RUN/videos" | tee "$RUN/eval_chunks.md"
step "evaluating with act-core: $ROLLOUTS rollouts, temporal ensembling (query every step)"
"$BIN/act-sim" eval --ckpt "$CKPT/policy.safetensors" --task "$TASK" --num-rollouts "$ROLLOUTS" --temporal-agg --video-dir "$RUN/videos_temporal_agg" | tee "$RUN/eval_temporal_agg.md"

step "done"
echo "dataset:      $DATA"
echo "loss curve:   $CKPT/loss_curve.png (losses: $CKPT/losses.csv)"
echo "policy:       $CKPT/policy.safetensors (act-core single file) and $CKPT/policy/ (LeRobot directory)"
echo "videos:       $RUN/videos/ and $RUN/videos_temporal_agg/"
echo "results:      $RUN/eval_chunks.md, $RUN/eval_temporal_agg.md"
