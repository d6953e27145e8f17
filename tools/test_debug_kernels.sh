#!/usr/bin/env bash
# Build every kernel with MINIDL_DEBUG_KERNELS=1 (Cython's bounds, wraparound and
# initialisation checks, Python division, -O0 -g) in a temporary copy of the tree, so the
# normal build is untouched, and run the kernel tests on it.
#   tools/test_debug_kernels.sh [extra pytest arguments]
# KEEP=1 keeps the copy (for gdb) and prints where it is.
set -euo pipefail

# shellcheck source=tools/kernel_tree.sh
source "$(dirname "$0")/kernel_tree.sh"
kernel_tree debug_kernels
start=$(date +%s)
MINIDL_DEBUG_KERNELS=1 build_kernels
built=$(date +%s)
echo "debug kernels built in $((built - start)) s"
PYTHONPATH="$work" "$python" -m pytest -q -p no:cacheprovider "${KERNEL_TESTS[@]}" "$@"
echo "kernel tests on the debug build: $(( $(date +%s) - built )) s"
