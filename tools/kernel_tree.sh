# Sourced by tools/test_debug_kernels.sh and tools/sanitize_kernels.sh: a temporary copy
# of the tree for a special build of the kernels, and the tests that exercise them.
#   kernel_tree NAME        copy the working tree's sources to $work and cd there
#   build_kernels           python setup.py build_ext in $work (the caller sets the env)
# KEEP=1 keeps the copy and prints where it is.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python}
KERNEL_TESTS=(tests/test_kernels*.py tests/test_depthwise.py tests/test_batchnorm.py
              tests/test_reference.py tests/test_seed_examples.py)

kernel_tree() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/minidl_$1.XXXXXX")
    if [ "${KEEP:-0}" = "1" ]; then
        echo "$1 tree: $work"
    else
        trap 'rm -rf "$work"' EXIT
    fi
    # the sources as they are in the working tree (tracked and new files; nothing
    # ignored: no .c, .so or build/ of the normal build)
    (cd "$root" && git ls-files -z --cached --others --exclude-standard \
        | xargs -0 tar -cf - --ignore-failed-read) | tar -xf - -C "$work"
    cd "$work"
}

build_kernels() {
    "$python" setup.py build_ext --inplace -j "$(nproc 2>/dev/null || echo 2)" \
        > build.log 2>&1 || { tail -n 40 build.log; exit 1; }
}
