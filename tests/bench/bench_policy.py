"""Benchmark of the command policy: decisions per second and latency percentiles (not a test).

    make bench-policy          or    .venv/bin/python tests/bench/bench_policy.py [--seconds N]

Runs a mixed corpus (ordinary commands, attacks, approvals) through both shipped policies and prints
one line per policy plus a JSON summary line, so CI logs can be compared over time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from safeagent.policy import decide, load_policy  # noqa: E402
from tests.support.policy_cases import CASES, INSPECT  # noqa: E402

LONG_LINES = ["grep -rn " + " ".join(f"-e p{i}" for i in range(60)) + " .", "ls " + " ".join(f"src/d{i}/f.py" for i in range(120))]


def percentile(sorted_values: list[int], fraction: float) -> int:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def bench(policy, corpus: list[str], seconds: float) -> dict:
    for command in corpus:  # warm up
        decide(policy, command)
    latencies: list[int] = []
    clock = time.perf_counter_ns
    deadline = clock() + int(seconds * 1e9)
    started = clock()
    while clock() < deadline:
        for command in corpus:
            before = clock()
            decide(policy, command)
            latencies.append(clock() - before)
    elapsed = (clock() - started) / 1e9
    latencies.sort()
    return {
        "policy": policy.name,
        "decisions": len(latencies),
        "decisions_per_second": round(len(latencies) / elapsed),
        "p50_us": round(percentile(latencies, 0.50) / 1000, 1),
        "p99_us": round(percentile(latencies, 0.99) / 1000, 1),
        "max_us": round(latencies[-1] / 1000, 1),
    }


def run_policies(seconds: float, echo: bool = True) -> list[dict]:
    """Both shipped policies on the mixed corpus, `seconds` each (also used by bench_jobs.py)."""
    results = []
    inspect_only = [case.command for case in CASES if case.policy == INSPECT]
    for name, commands in (("policy.yaml", inspect_only), ("policy.execution.yaml", [case.command for case in CASES])):
        policy = load_policy(REPO / "configs" / name)
        corpus = commands + LONG_LINES
        result = bench(policy, corpus, seconds)
        results.append({**result, "file": name, "distinct_commands": len(corpus)})
        if echo:
            print(
                f"{name:24} {result['decisions_per_second']:>9,} decisions/s   p50 {result['p50_us']:>7} us   "
                f"p99 {result['p99_us']:>7} us   max {result['max_us']:>8} us   ({len(corpus)} distinct commands)"
            )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per policy")
    arguments = parser.parse_args()
    print(json.dumps({"bench": "policy", "results": run_policies(arguments.seconds)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
