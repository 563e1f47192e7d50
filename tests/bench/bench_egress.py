"""Benchmark of the egress pre-flight on the cluster: what proving enforcement costs a job (not a test).

    make bench-egress     or    .venv/bin/python tests/bench/bench_egress.py [--jobs N] [--parallel P]

Submits N `ls` jobs (P at a time) to the installed operator in its sandbox namespace and reads
`status.egressCheckMs` (the runner's own measurement, from its first probe to the proof) and the
job's end-to-end time. Prints percentiles and a JSON summary line. Needs a cluster with safeagent
installed (`make install`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid

NS = os.environ.get("SAFEAGENT_SANDBOX_NAMESPACE", "safeagent-sandbox")


def kubectl(*args: str, stdin: str | None = None) -> str:
    return subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, check=True).stdout


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(jobs: int, parallel: int) -> dict:
    tag = uuid.uuid4().hex[:6]
    repo = f"bench-egress-{tag}"
    kubectl("-n", NS, "create", "configmap", repo, "--from-literal=a.txt=a")
    checks, totals, reasons = [], [], {}
    try:
        for start in range(0, jobs, parallel):
            names = [f"bench-egress-{tag}-{i}" for i in range(start, min(jobs, start + parallel))]
            items = [{"apiVersion": "safeagent.ca/v1alpha1", "kind": "SandboxJob",
                      "metadata": {"name": name, "namespace": NS},
                      "spec": {"command": "ls", "source": {"configMap": {"name": repo}}}} for name in names]
            began = time.monotonic()
            kubectl("create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
            pending = set(names)
            while pending:
                time.sleep(0.5)
                listing = json.loads(kubectl("-n", NS, "get", "sandboxjobs", "-o", "json"))["items"]
                for item in listing:
                    status = item.get("status") or {}
                    name = item["metadata"]["name"]
                    if name in pending and status.get("completionTime"):
                        pending.discard(name)
                        totals.append(time.monotonic() - began)
                        reasons[status.get("reason")] = reasons.get(status.get("reason"), 0) + 1
                        if status.get("egressCheckMs") is not None:
                            checks.append(float(status["egressCheckMs"]))
            kubectl("-n", NS, "delete", "sandboxjobs", *names, "--wait=false")
    finally:
        kubectl("-n", NS, "delete", "configmap", repo, "--wait=false")
    return {
        "jobs": jobs, "parallel": parallel, "reasons": reasons,
        "egressCheckMs": {"p50": percentile(checks, 0.5), "p95": percentile(checks, 0.95), "max": max(checks)}
        if checks else None,
        "jobSeconds": {"p50": round(percentile(totals, 0.5), 2), "p95": round(percentile(totals, 0.95), 2)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=1)
    args = parser.parse_args()
    result = run(args.jobs, args.parallel)
    print(f"egress pre-flight over {args.jobs} jobs ({args.parallel} at a time): {result['egressCheckMs']} ms; "
          f"job end to end {result['jobSeconds']} s; outcomes {result['reasons']}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
