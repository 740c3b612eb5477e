#!/usr/bin/env bash
# Static type check of afnet_edge (export/ included through the afnet_edge/export link), as CI runs it.
#  - any unresolved import (import-not-found / import-untyped / a missing module attribute) fails;
#  - other type errors are baselined: their count may go down (update scripts/typecheck_baseline.txt) but not up.
set -uo pipefail
cd "$(dirname "$0")/.."
command -v mypy >/dev/null || { echo "ci_typecheck.sh: mypy is not installed (pip install -e .[dev])" >&2; exit 2; }
out=$(mypy --config-file mypy.ini 2>&1); rc=$?
[ $rc -gt 1 ] && { echo "$out"; echo "ci_typecheck.sh: mypy crashed (exit $rc)" >&2; exit 2; }
imports=$(grep -E "error: .*\[(import-not-found|import-untyped|import)\]|Module \".*\" has no attribute|error: Cannot find implementation" <<<"$out")
errors=$(grep -c "error:" <<<"$out")
baseline=$(tr -dc 0-9 < scripts/typecheck_baseline.txt)
echo "mypy: $errors type errors (baseline $baseline); unresolved imports: $(grep -c . <<<"$imports")"
if [ -n "$imports" ]; then
  echo "$imports"; echo "ci_typecheck.sh: FAIL: unresolved imports" >&2; exit 1
fi
if [ "$errors" -gt "$baseline" ]; then
  echo "$out" | grep "error:" | tail -40
  echo "ci_typecheck.sh: FAIL: $errors type errors > baseline $baseline (fix the new ones)" >&2; exit 1
fi
[ "$errors" -lt "$baseline" ] && echo "ci_typecheck.sh: fewer errors than the baseline: lower scripts/typecheck_baseline.txt to $errors"
exit 0
