#!/usr/bin/env bash
# `make soak` (not run by CI): what `make test` checks once, at a size and a count that find the
# rare failure. Against the cluster KUBECONFIG points at, with the chart installed.
#   1. bursts of 100 jobs: the profiles mixed, then per profile (none, git-read, package-mirror with DNS);
#   2. the same while a Pod outside the sandbox namespaces and a sandbox job flood the canary;
#   3. each e2e module that launches more than a few jobs or Pods, 5 times in a row (test_neighbours:
#      a full sandbox, a fork bomb and an inotify hog, each beside 3 ordinary jobs).
# Prints each step's result and time, and a summary; the full output is kept in $SOAK_LOG.
set -uo pipefail
cd "$(dirname "$0")/../.."
PYTEST=${PYTEST:-.venv/bin/pytest}
REPEATS=${SOAK_REPEATS:-5}
SOAK_LOG=${SOAK_LOG:-${SAFEAGENT_CACHE:-$HOME/.cache/safeagent}/soak-$(date +%Y%m%d-%H%M%S).log}
mkdir -p "$(dirname "$SOAK_LOG")"
summary=()

run() {  # run NAME PYTEST-ARGS...: one step, its verdict and time in the summary
  local name=$1; shift
  local started=$SECONDS out verdict line
  out=$(mktemp)
  echo "==> $name" | tee -a "$SOAK_LOG"
  "$PYTEST" -q -s -rs -p no:cacheprovider "$@" >"$out" 2>&1
  verdict=$?
  cat "$out" >>"$SOAK_LOG"
  grep -E '^\.?(none|git-read|package-mirror|flood|unfiltered|no enforcer)|passed|failed|error|SKIPPED' "$out" || true
  rm -f "$out"
  line=$(printf '%-70s %s (%ss)' "$name" "$([[ $verdict == 0 ]] && echo passed || echo FAILED)" "$((SECONDS - started))")
  summary+=("$line")
  echo "<== $line" | tee -a "$SOAK_LOG"
}

SAFEAGENT_SOAK=1 SAFEAGENT_BURST=100 run "bursts of 100, mixed and per profile" tests/e2e/test_egress_preflight.py -k completes_and_reaches
SAFEAGENT_SOAK=1 SAFEAGENT_BURST=100 run "bursts of 100 per profile under a flood of the canary" \
  tests/e2e/test_egress_preflight.py -k while_the_canary_is_flooded
for module in test_egress_preflight test_egress_wall test_trust_base test_operator_restart test_neighbours; do
  for round in $(seq 1 "$REPEATS"); do
    run "$module, round $round of $REPEATS" "tests/e2e/$module.py"
  done
done

echo
echo "soak summary (full output: $SOAK_LOG)"
printf '  %s\n' "${summary[@]}"
! printf '%s\n' "${summary[@]}" | grep -q FAILED
