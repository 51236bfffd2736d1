#!/usr/bin/env bash
# Build libact_core (release) and install it for C/C++ controllers:
#   bash bindings/install.sh PREFIX        e.g. /usr/local, /opt/act-core, $HOME/.local
# Installs PREFIX/include/act_core.h, PREFIX/lib/libact_core.{so,a},
# PREFIX/lib/pkgconfig/act_core.pc and PREFIX/lib/cmake/ActCore/FindActCore.cmake.
# Set ACT_CORE_NO_BUILD=1 to install what target/release already holds.
# Cross-build for another target (an ARM robot computer) with ACT_CORE_TARGET, e.g.
#   ACT_CORE_TARGET=aarch64-unknown-linux-gnu bash bindings/install.sh ./act-core-arm64
# (scripts/setup.sh installs the Rust target and Debian's aarch64 cross gcc, which
# .cargo/config.toml names as its linker).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 PREFIX" >&2
    exit 2
fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
mkdir -p "$1"
PREFIX="$(cd "$1" && pwd)"

CROSS=()
TARGET="${CARGO_TARGET_DIR:-$REPO/target}/release"
if [ -n "${ACT_CORE_TARGET:-}" ]; then
    CROSS=(--target "$ACT_CORE_TARGET")
    TARGET="${CARGO_TARGET_DIR:-$REPO/target}/$ACT_CORE_TARGET/release"
fi
if [ "${ACT_CORE_NO_BUILD:-0}" != 1 ]; then
    # ${CROSS[@]+...}: an empty array under `set -u` is an error in bash before 4.4.
    (cd "$REPO" && cargo build --release -p act-core-ffi --lib ${CROSS[@]+"${CROSS[@]}"})
fi
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n1)"

install -d "$PREFIX/include" "$PREFIX/lib/pkgconfig" "$PREFIX/lib/cmake/ActCore"
install -m 644 "$HERE/include/act_core.h" "$PREFIX/include/"
install -m 755 "$TARGET/libact_core.so" "$PREFIX/lib/"
install -m 644 "$TARGET/libact_core.a" "$PREFIX/lib/"
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@VERSION@|$VERSION|g" "$HERE/pkgconfig/act_core.pc.in" > "$PREFIX/lib/pkgconfig/act_core.pc"
install -m 644 "$HERE/cmake/FindActCore.cmake" "$PREFIX/lib/cmake/ActCore/"
echo "installed libact_core $VERSION${ACT_CORE_TARGET:+ for $ACT_CORE_TARGET} in $PREFIX"
