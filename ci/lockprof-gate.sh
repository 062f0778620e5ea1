#!/usr/bin/env bash
# The lock-contention gate of a pull request, as docs/github-actions-example.yml runs it:
# record the base build and the head build of a benchmark under lockprof, write the
# markdown diff for a PR comment, and check the head against the base with lockprof's
# default rules (docs/ci.md, "One judgement").
#
#   ci/lockprof-gate.sh OUT_DIR --base CMD [ARGS...] --head CMD [ARGS...]
#
# Writes OUT_DIR/base.json, OUT_DIR/head.json (the reports), OUT_DIR/diff.md (the PR
# comment) and OUT_DIR/check.txt (the verdict). Exits with lockprof check's code:
# 0 no regression, 1 regression, 2 bad input; a failing recording exits with its code.
# Needs root (lockprof loads eBPF programs). Environment: LOCKPROF (default: lockprof
# on PATH), LOCKPROF_BUDGET (optional budget file, its [baseline] keys and limits apply).
#
# cargo xtask test runs this script (profiler/tests/ci.rs) on the kmutex demo: a head
# that brings the bug back fails, a fixed head passes.
set -euo pipefail

usage() {
    echo "usage: $0 OUT_DIR --base CMD [ARGS...] --head CMD [ARGS...]" >&2
    exit 2
}

[ $# -ge 5 ] || usage
out=$1
shift
[ "$1" = "--base" ] || usage
shift
base=()
while [ $# -gt 0 ] && [ "$1" != "--head" ]; do
    base+=("$1")
    shift
done
[ $# -gt 1 ] && [ ${#base[@]} -gt 0 ] || usage
shift
head=("$@")

lockprof=${LOCKPROF:-lockprof}
budget=()
if [ -n "${LOCKPROF_BUDGET:-}" ]; then
    budget=(--budget "$LOCKPROF_BUDGET")
fi
mkdir -p "$out"

# 1. Record both builds. The benchmark's own output goes to the job log (stderr).
"$lockprof" record -q -o "$out/base.json" -- "${base[@]}" >&2
"$lockprof" record -q -o "$out/head.json" -- "${head[@]}" >&2

# 2. The PR comment: what changed, site by site, and the verdict.
"$lockprof" diff "$out/base.json" "$out/head.json" --format markdown "${budget[@]}" >"$out/diff.md"

# 3. The gate: exit 1 exactly when the diff's verdict is "regressed".
status=0
"$lockprof" check "$out/head.json" --baseline "$out/base.json" "${budget[@]}" >"$out/check.txt" || status=$?
cat "$out/check.txt"
exit "$status"
