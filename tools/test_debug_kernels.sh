#!/usr/bin/env bash
# Build every kernel with MINIDL_DEBUG_KERNELS=1 (Cython's bounds, wraparound and
# initialisation checks, Python division, -O0 -g) in a temporary copy of the tree, so the
# normal build is untouched, and run the kernel tests on it.
#   tools/test_debug_kernels.sh [extra pytest arguments]
# KEEP=1 keeps the copy (for gdb) and prints where it is.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python}
work=$(mktemp -d "${TMPDIR:-/tmp}/minidl_debug_kernels.XXXXXX")
if [ "${KEEP:-0}" = "1" ]; then
    echo "debug tree: $work"
else
    trap 'rm -rf "$work"' EXIT
fi

# the sources as they are in the working tree (tracked and new files; nothing ignored:
# no .c, .so or build/ of the normal build)
(cd "$root" && git ls-files -z --cached --others --exclude-standard \
    | xargs -0 tar -cf - --ignore-failed-read) | tar -xf - -C "$work"

cd "$work"
start=$(date +%s)
MINIDL_DEBUG_KERNELS=1 "$python" setup.py build_ext --inplace -j "$(nproc 2>/dev/null || echo 2)" \
    > build.log 2>&1 || { tail -n 40 build.log; exit 1; }
built=$(date +%s)
echo "debug kernels built in $((built - start)) s"
PYTHONPATH="$work" "$python" -m pytest -q -p no:cacheprovider \
    tests/test_kernels*.py tests/test_depthwise.py tests/test_batchnorm.py tests/test_reference.py \
    tests/test_seed_examples.py "$@"
echo "kernel tests on the debug build: $(( $(date +%s) - built )) s"
