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


REPROVE = """\
import json, sys, time
from safeagent.sandbox import preflight
spec, count = json.loads(sys.argv[1]), int(sys.argv[2])
for spacing in (0.0, 1.0):
    for _ in range(count):
        result = preflight.check(spec)
        print("PROOF", json.dumps({"spacing": spacing, "ms": result["elapsedMs"], "enforced": result["enforced"]}),
              flush=True)
        time.sleep(spacing)
"""


def reprove(count: int) -> dict:
    """One filtered Pod proving its egress `count` times per spacing; percentiles in ms."""
    release_ns = os.environ.get("SAFEAGENT_RELEASE_NAMESPACE", "safeagent-system")
    service = json.loads(kubectl("-n", release_ns, "get", "service", "-l", "app.kubernetes.io/component=canary",
                                 "-o", "json"))["items"][0]
    ports = {port["name"]: port["port"] for port in service["spec"]["ports"]}
    slices = json.loads(kubectl("-n", release_ns, "get", "endpointslices", "-l",
                                f"kubernetes.io/service-name={service['metadata']['name']}", "-o", "json"))["items"]
    address = next(endpoint["addresses"][0] for item in slices for endpoint in item.get("endpoints") or []
                   if (endpoint.get("conditions") or {}).get("ready"))  # the canary Pod, as the operator hands it out
    spec = {"host": address, "openPort": ports["open"], "closedPort": ports["closed"],
            "deadlineSeconds": 10, "proof": "refusal"}
    if not kubectl("-n", NS, "get", "networkpolicy", "-l", "safeagent.ca/network-profile=none", "-o", "name").strip():
        raise SystemExit(f"no `none` NetworkPolicy in {NS} yet: run one job of that profile first (make demo)")
    name = f"bench-reprove-{uuid.uuid4().hex[:6]}"
    image = json.loads(kubectl("-n", release_ns, "get", "deployment", "-l", "app.kubernetes.io/component=canary",
                               "-o", "json"))["items"][0]["spec"]["template"]["spec"]["containers"][0]["image"]
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"safeagent.ca/sandbox": "true", "safeagent.ca/network-profile": "none"}},
        "spec": {
            "restartPolicy": "Never", "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "nodeSelector": {"safeagent.ca/sandbox": "true"} if kubectl(
                "get", "nodes", "-l", "safeagent.ca/sandbox=true", "-o", "name").strip() else {},
            "tolerations": [{"key": "safeagent.ca/sandbox", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{
                "name": "main", "image": image, "imagePullPolicy": "IfNotPresent", "workingDir": "/",
                "command": ["python3", "-I", "-c", REPROVE, json.dumps(spec), str(count)],
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }
    kubectl("-n", NS, "create", "-f", "-", stdin=json.dumps(pod))
    try:
        deadline = time.monotonic() + 120 + 2 * count
        while kubectl("-n", NS, "get", "pod", name, "-o", "jsonpath={.status.phase}") not in ("Succeeded", "Failed"):
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not finish")
            time.sleep(1)
        lines = [json.loads(line[6:]) for line in kubectl("-n", NS, "logs", name).splitlines()
                 if line.startswith("PROOF ")]
    finally:
        kubectl("-n", NS, "delete", "pod", name, "--wait=false")
    summary = {}
    for spacing in (0.0, 1.0):
        times = [float(line["ms"]) for line in lines if line["spacing"] == spacing and line["enforced"]]
        key = "back to back" if spacing == 0 else "one a second"
        summary[key] = {"proofs": len(times), "p50": percentile(times, 0.5), "p99": percentile(times, 0.99),
                        "max": max(times)} if times else None
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--reprove", type=int, default=0, metavar="N")
    args = parser.parse_args()
    if args.reprove:
        summary = reprove(args.reprove)
        print(f"one filtered Pod re-proving its egress {args.reprove} times per spacing, ms: {summary}")
        print(json.dumps(summary))
        return 0
    result = run(args.jobs, args.parallel)
    print(f"egress pre-flight over {args.jobs} jobs ({args.parallel} at a time): {result['egressCheckMs']} ms; "
          f"job end to end {result['jobSeconds']} s; outcomes {result['reasons']}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
