#!/usr/bin/env bash
# Build every kernel with AddressSanitizer and UndefinedBehaviorSanitizer in a temporary
# copy of the tree (the normal build is untouched), then run the kernel tests and the fuzz
# harness under it and print every sanitizer report.
#   tools/sanitize_kernels.sh [FUZZ_CASES]      (default 5000 fuzz cases)
# KEEP=1 keeps the copy and prints where it is.
# Python's own CFLAGS carry -fwrapv, which defines signed overflow and so hides it from
# UBSan: -fno-wrapv comes later on the command line and wins. UBSan stops at its first
# report (-fno-sanitize-recover), so the fuzz driver restarts after the case that stopped it.
set -euo pipefail

# shellcheck source=tools/kernel_tree.sh
source "$(dirname "$0")/kernel_tree.sh"
cases=${1:-5000}
kernel_tree sanitize

san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
start=$(date +%s)
MINIDL_EXTRA_CFLAGS="$san -fno-wrapv -O1 -g" LDFLAGS="-fsanitize=address,undefined" build_kernels
grep -q -- "-fno-wrapv" build.log || { echo "the build did not get -fno-wrapv" >&2; exit 1; }
echo "sanitizer kernels built in $(( $(date +%s) - start )) s"

libasan=$(gcc -print-file-name=libasan.so)
export LD_PRELOAD="$libasan"
export ASAN_OPTIONS=detect_leaks=0
export UBSAN_OPTIONS=print_stacktrace=1
export PYTHONPATH="$work"
export OMP_NUM_THREADS=2

status=0
echo "== kernel tests under ASan + UBSan"
"$python" -m pytest -q -p no:cacheprovider -x "${KERNEL_TESTS[@]}" 2> tests.err \
    || status=1
grep -E "runtime error|ERROR: AddressSanitizer" tests.err || true

echo "== fuzz harness under ASan + UBSan: $cases cases"
"$python" - "$cases" <<'PY' || status=1
import re, subprocess, sys

total = int(sys.argv[1])
seed, reports, done = 0, [], 0
while seed < total:
    proc = subprocess.run(
        [sys.executable, "tests/fuzz_harness.py", str(seed), str(total - seed)],
        capture_output=True, text=True,
    )
    started = None
    for line in proc.stdout.splitlines():
        if line.startswith("start "):
            started = int(line.split()[1])
        elif line.startswith("{"):
            done += 1
            started = None
    if proc.returncode == 0:
        break
    if started is None:
        sys.exit("the fuzz harness failed to start:\n" + proc.stderr[-3000:])
    report = [
        ln for ln in proc.stderr.splitlines()
        if re.search(r"runtime error|ERROR: AddressSanitizer|^\s+#[0-4] ", ln)
    ]
    reports.append((started, report[:8] or proc.stderr.splitlines()[-5:]))
    done += 1
    seed = started + 1
print(f"{done} fuzz cases ran, {len(reports)} stopped by a sanitizer report")
for s, lines in reports:
    print(f"-- case {s} (python tests/fuzz_harness.py {s} 1):")
    print("\n".join(lines))
sys.exit(1 if reports else 0)
PY
echo "sanitizer run: $(( $(date +%s) - start )) s, status $status"
exit $status
