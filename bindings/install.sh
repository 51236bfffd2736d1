#!/usr/bin/env bash
# Build libact_core (release) and install it for C/C++ controllers:
#   bash bindings/install.sh PREFIX        e.g. /usr/local, /opt/act-core, $HOME/.local
# Installs PREFIX/include/act_core.h, PREFIX/lib/libact_core.{so,a},
# PREFIX/lib/pkgconfig/act_core.pc and PREFIX/lib/cmake/ActCore/FindActCore.cmake.
# Set ACT_CORE_NO_BUILD=1 to install what target/release already holds.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 PREFIX" >&2
    exit 2
fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
mkdir -p "$1"
PREFIX="$(cd "$1" && pwd)"

if [ "${ACT_CORE_NO_BUILD:-0}" != 1 ]; then
    (cd "$REPO" && cargo build --release -p act-core-ffi --lib)
fi
TARGET="${CARGO_TARGET_DIR:-$REPO/target}/release"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n1)"

install -d "$PREFIX/include" "$PREFIX/lib/pkgconfig" "$PREFIX/lib/cmake/ActCore"
install -m 644 "$HERE/include/act_core.h" "$PREFIX/include/"
install -m 755 "$TARGET/libact_core.so" "$PREFIX/lib/"
install -m 644 "$TARGET/libact_core.a" "$PREFIX/lib/"
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@VERSION@|$VERSION|g" "$HERE/pkgconfig/act_core.pc.in" > "$PREFIX/lib/pkgconfig/act_core.pc"
install -m 644 "$HERE/cmake/FindActCore.cmake" "$PREFIX/lib/cmake/ActCore/"
echo "installed libact_core $VERSION in $PREFIX"
