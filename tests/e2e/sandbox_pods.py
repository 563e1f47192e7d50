"""Run the exact sandbox Pod the operator would build, with an argv of the test's choosing.

The operator's policy decides which commands reach a sandbox; these helpers skip that step on
purpose, to put the sandbox itself (the image, the runner as PID 1, the tmpfs volumes, the Pod's
security settings) under commands no policy would allow: a command that kills itself with each
signal, one that fills /tmp, one that forks a daemon. The Pod comes from
`safeagent.builders.build_sandbox_pod` with the configuration the chart installed, so what runs
is what the operator would run.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

import yaml

from sbj_helpers import SYSTEM_NS


def installed_config(kubectl, egress_check: bool = False, **sandbox_overrides):
    """The operator configuration the chart installed (its config.yaml ConfigMap), parsed.

    Without `egress_check` the runner's egress pre-flight is left out: Pods these helpers start
    directly get no profile NetworkPolicy, so they could never prove one enforced.
    """
    from safeagent.config import parse_config

    configmaps = json.loads(kubectl("-n", SYSTEM_NS, "get", "configmaps", "-o", "json").stdout)["items"]
    (text,) = [cm["data"]["config.yaml"] for cm in configmaps if "config.yaml" in (cm.get("data") or {})]
    raw = yaml.safe_load(text)
    if sandbox_overrides:
        raw = {**raw, "sandbox": {**raw.get("sandbox", {}), **sandbox_overrides}}
    if not egress_check:
        raw.pop("egressCheck", None)
    return parse_config(raw)


def canary_address(kubectl, config) -> str:
    """The egress canary's Service address, as the operator reads it at launch."""
    canary = config.egressCheck.canary
    return kubectl("-n", canary.namespace, "get", "service", canary.service,
                   "-o", "jsonpath={.spec.clusterIP}").stdout.strip()


def made_up_job(namespace: str, source: dict, name: str = "direct", timeout_seconds: int = 20):
    from safeagent.models import SandboxJob

    return SandboxJob.model_validate({
        "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4())},
        "spec": {"command": "ls", "source": source, "timeoutSeconds": timeout_seconds},
    })


@dataclass
class Finished:
    """One sandbox Pod's outcome: the runner's record lines and the Pod's final status."""

    name: str
    records: list[dict] = field(default_factory=list)
    log: str = ""
    pod_status: dict = field(default_factory=dict)

    @property
    def record(self) -> dict:
        """The final record: the runner writes one when nothing ran, else the command's part and
        then the final one (safeagent.sandbox.runner), which must agree on the command's result."""
        assert len(self.records) in (1, 2), f"{self.name}: {len(self.records)} records in {self.log[-2000:]!r}"
        if len(self.records) == 2:
            first, final = self.records
            same = ("exitCode", "signal", "stdout", "stderr", "timedOut", "fullVolumes", "memoryExhausted")
            assert {key: first[key] for key in same} == {key: final[key] for key in same}, self.name
        return self.records[-1]


def run_sandbox_pods(kubectl, namespace: str, config_map: str, argvs: dict[str, list[str]],
                     config, timeout_seconds: int = 20, batch: int = 16,
                     wait: float = 240) -> dict[str, Finished]:
    """Run one sandbox Pod per argv (in batches, the node is small); return each runner record."""
    from safeagent import builders

    results: dict[str, Finished] = {}
    items = list(argvs.items())
    for start in range(0, len(items), batch):
        names: dict[str, str] = {}
        for key, argv in items[start:start + batch]:
            job = made_up_job(namespace, {"configMap": {"name": config_map}}, timeout_seconds=timeout_seconds)
            pod = builders.build_sandbox_pod(job, argv, 64, config)
            pod["metadata"].pop("ownerReferences")  # the made-up job does not exist: the GC would reap it
            kubectl("create", "-f", "-", input=json.dumps(pod))
            names[key] = pod["metadata"]["name"]
        deadline = time.monotonic() + wait
        pending = dict(names)
        while pending and time.monotonic() < deadline:
            listing = json.loads(kubectl("-n", namespace, "get", "pods", "-o", "json").stdout)["items"]
            phases = {p["metadata"]["name"]: p for p in listing}
            for key, name in list(pending.items()):
                pod = phases.get(name)
                if pod and pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                    log = kubectl("-n", namespace, "logs", name, "-c", builders.RUNNER_CONTAINER, check=False).stdout
                    records = [json.loads(line) for line in log.splitlines()
                               if line.startswith('{"kind":"safeagent.ca/runner-result"')]
                    results[key] = Finished(name, records, log, pod["status"])
                    kubectl("-n", namespace, "delete", "pod", name, "--wait=false", check=False)
                    del pending[key]
            time.sleep(1)
        assert not pending, f"sandbox Pods did not finish within {wait}s: {sorted(pending)}"
    return results
