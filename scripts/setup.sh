#!/usr/bin/env bash
# One-time (idempotent) machine setup for act-rs.
#
# Installs what the workspace links against and wires it so that plain `cargo build` / `cargo test`
# work without exporting anything:
#   * Debian packages: HDF5 headers, pkg-config, EGL/Mesa for headless rendering;
#   * a trimmed libtorch 2.11.0 (what tch =0.24.0 expects) built from the PyPI torch wheel;
#   * libmujoco 3.17.0 (what mujoco-rs 7.0.0 expects) from the PyPI mujoco wheel;
#   * for the C bindings' tests: cbindgen (pinned; it generates bindings/include/act_core.h),
#     valgrind and cmake (Debian packages);
#   * for aarch64: the Rust targets aarch64-unknown-linux-gnu and aarch64-unknown-none, Debian's
#     cross gcc and qemu-user (`.cargo/config.toml` names them as linker and test runner);
#   * for scripts/fuzz.sh: the nightly toolchain and cargo-fuzz (pinned), when they can be installed.
# Both libraries live in a per-user cache outside the repository (ACT_RS_CACHE, default
# ~/.cache/act-rs) so every clone and every CI run reuses them; `.deps/` in the repository holds
# symlinks to them, which `.cargo/config.toml` turns into absolute LIBTORCH and
# MUJOCO_DYNAMIC_LINK_DIR. A second run on a ready machine only checks and returns.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${ACT_RS_CACHE:-$HOME/.cache/act-rs}"
TORCH_VERSION=2.11.0
MUJOCO_VERSION=3.17.0
LIBTORCH_DIR="$CACHE/libtorch-$TORCH_VERSION"
MUJOCO_DIR="$CACHE/mujoco-$MUJOCO_VERSION"
PY="${PYTHON:-python3}"

log() { printf '[setup] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- apt packages
# gcc-aarch64-linux-gnu and qemu-user: act-core and the C library cross-built for aarch64 and run
# under emulation (scripts/test-aarch64.sh, bindings/tests/c_examples.rs).
APT_PACKAGES=(libhdf5-dev pkg-config libegl1 libegl-mesa0 libgl1-mesa-dri valgrind cmake gcc-aarch64-linux-gnu qemu-user)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Installed without their recommends (fewer, smaller packages):
# - qemu-system-arm runs the bare-metal aarch64 build (act-core/tests/no_std.rs): 24 packages
#   instead of 170 (the test passes `-nic none`, so no network ROMs);
# - ffmpeg (and ffprobe) write the rollout videos as MP4 and check them in act-sim's tests;
# - fonts-dejavu-core: the font the plots' axis labels, legends and the videos' captions use.
lean=()
command -v qemu-system-aarch64 >/dev/null || lean+=(qemu-system-arm)
command -v ffprobe >/dev/null || lean+=(ffmpeg)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || lean+=(fonts-dejavu-core)
if ((${#lean[@]})); then
    log "installing Debian packages without recommends: ${lean[*]}"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${lean[@]}" >/dev/null
fi

# ---------------------------------------------------------------- Rust targets
# aarch64 Linux (cross-built tests under qemu) and bare-metal aarch64 (act-core/tests/no_std.rs).
for target in aarch64-unknown-linux-gnu aarch64-unknown-none; do
    if ! rustup target list --installed | grep -qx "$target"; then
        log "adding Rust target $target"
        rustup target add "$target" >&2
    fi
done

# ---------------------------------------------------------------- cbindgen
# Pinned: the committed header must equal this version's output (bindings/tests/header.rs).
# The Debian package is too old for edition-2024 attributes.
CBINDGEN_VERSION=0.29.4
if [ "$(cbindgen --version 2>/dev/null)" != "cbindgen $CBINDGEN_VERSION" ]; then
    log "installing cbindgen $CBINDGEN_VERSION (cargo install, one time)"
    cargo install --locked --quiet --force cbindgen --version "$CBINDGEN_VERSION" >&2
fi

# ---------------------------------------------------------------- fuzzing
# scripts/fuzz.sh (run for 60 s by scripts/test.sh) needs the nightly toolchain (cargo-fuzz builds
# with sanitizer flags only nightly accepts) and cargo-fuzz. Best effort: where no nightly can be
# installed, setup goes on and test.sh says that its fuzz stage did not run.
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    log "installing the nightly toolchain (minimal profile) for cargo-fuzz"
    rustup toolchain install nightly --profile minimal >&2 || log "WARNING: no nightly toolchain; scripts/fuzz.sh cannot run"
fi
CARGO_FUZZ_VERSION=0.13.2
if rustup run nightly rustc --version >/dev/null 2>&1 && [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION (cargo install, one time)"
    cargo install --locked --quiet --force cargo-fuzz --version "$CARGO_FUZZ_VERSION" >&2
fi

# ---------------------------------------------------------------- wheels
fetch_wheel() { # fetch_wheel DEST SPEC...
    local dest="$1"; shift
    mkdir -p "$dest"
    "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$dest" "$@" >&2
}

# ---------------------------------------------------------------- libtorch
if [ ! -f "$LIBTORCH_DIR/.complete" ]; then
    log "building a trimmed libtorch $TORCH_VERSION in $LIBTORCH_DIR (one time, ~0.5 GB)"
    mkdir -p "$CACHE"
    tmp="$(mktemp -d "$CACHE/tmp.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    fetch_wheel "$tmp/whl" "torch==$TORCH_VERSION" "nvidia-cuda-runtime>=13,<14" "nvidia-cuda-cupti>=13,<14"
    stage="$tmp/libtorch"
    mkdir -p "$stage/lib"
    (cd "$tmp" && unzip -q -o whl/torch-*.whl 'torch/include/*' 'torch/lib/libtorch_cpu.so' \
        'torch/lib/libtorch.so' 'torch/lib/libc10.so' 'torch/lib/libgomp.so.1')
    mv "$tmp/torch/include" "$stage/include"
    mv "$tmp"/torch/lib/*.so* "$stage/lib/"
    (cd "$tmp" && unzip -q -o 'whl/nvidia_cuda_runtime-*.whl' '*/libcudart.so.13' \
        && unzip -q -o 'whl/nvidia_cuda_cupti-*.whl' '*/libcupti.so.13')
    find "$tmp/nvidia" -name 'lib*.so.13' -exec mv {} "$stage/lib/" \;
    echo "$TORCH_VERSION" > "$stage/build-version"
    touch "$stage/.complete"
    rm -rf "$LIBTORCH_DIR"
    mkdir -p "$(dirname "$LIBTORCH_DIR")"
    mv "$stage" "$LIBTORCH_DIR"
    rm -rf "$tmp"; trap - EXIT
fi

# ---------------------------------------------------------------- MuJoCo
if [ ! -f "$MUJOCO_DIR/.complete" ]; then
    log "installing libmujoco $MUJOCO_VERSION in $MUJOCO_DIR"
    mkdir -p "$CACHE"
    tmp="$(mktemp -d "$CACHE/tmp.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    fetch_wheel "$tmp/whl" "mujoco==$MUJOCO_VERSION"
    (cd "$tmp" && unzip -q -o whl/mujoco-*.whl "mujoco/libmujoco.so.$MUJOCO_VERSION")
    mkdir -p "$tmp/stage/lib"
    mv "$tmp/mujoco/libmujoco.so.$MUJOCO_VERSION" "$tmp/stage/lib/"
    ln -sf "libmujoco.so.$MUJOCO_VERSION" "$tmp/stage/lib/libmujoco.so"
    ln -sf "libmujoco.so.$MUJOCO_VERSION" "$tmp/stage/lib/libmujoco.so.3"
    touch "$tmp/stage/.complete"
    rm -rf "$MUJOCO_DIR"
    mv "$tmp/stage" "$MUJOCO_DIR"
    rm -rf "$tmp"; trap - EXIT
fi

# ---------------------------------------------------------------- wire the repository
mkdir -p "$REPO/.deps"
ln -sfn "$LIBTORCH_DIR" "$REPO/.deps/libtorch"
ln -sfn "$MUJOCO_DIR" "$REPO/.deps/mujoco"
log "ready: LIBTORCH=$LIBTORCH_DIR MUJOCO_DYNAMIC_LINK_DIR=$MUJOCO_DIR/lib"
