"""The operator under a burst, in this process, on the API tier's real kube-apiserver: where a
job's time and API requests go before its Pod exists (issue 21; a profile, not a test).

    .venv/bin/python tests/bench/profile_operator.py [--jobs 50] [--run-seconds 1.5]
    .venv/bin/py-spy record --format raw -o stacks.txt -- .venv/bin/python tests/bench/profile_operator.py

The operator is handlers.py under Kopf (kopf.testing.KopfRunner), as the chart's operator
ServiceAccount, exactly as tests/api/test_handlers.py runs it. This script plays the node: a Pod
watch sees each sandbox Pod created, and a kubelet thread walks it through what a kubelet reports
(scheduled with its preparation step running, the runner running, then its log and `Succeeded`,
`--run-seconds` after the create; with `--queue-seconds`, first Unschedulable that long, as a
burst's Pods wait for a node on the test bed). Nothing else is simulated: every request the operator makes is
served by the real API server.

What it prints (and writes as JSON with `--out FILE`): makespan, apply → Pod created and apply →
final (p50 / p99, seconds on this process's monotonic clock, from the watch events), and every
request the operator made per job, by verb and resource: safeagent's own code counted by the
client's call observer (kube.py), Kopf's own counted at its HTTP client (aiohttp), watches once.
Run under py-spy it gives where the operator's threads spend CPU.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import heapq
import json
import logging
import re
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
import kopf  # noqa: E402
from kopf.testing import KopfRunner  # noqa: E402
from kubernetes import client, watch  # noqa: E402

from safeagent import handlers  # noqa: E402
from tests.api.server import running  # noqa: E402
from tests.api.stage import BOUND_NAMESPACE, Stage  # noqa: E402
from tests.api.world import World, runner_record  # noqa: E402

_LOGIN: dict[str, Any] = {}


@kopf.on.login()
def _as_the_operator(**_: Any) -> kopf.ConnectionInfo | None:
    return kopf.ConnectionInfo(**_LOGIN) if _LOGIN else None


class Requests:
    """Requests counted by (who, verb, resource); thread-safe."""

    def __init__(self) -> None:
        self.counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self.lock = threading.Lock()

    def add(self, who: str, verb: str, resource: str) -> None:
        with self.lock:
            self.counts[(who, verb, resource)] += 1


REQUESTS = Requests()
PASSES: collections.Counter[tuple[str, str]] = collections.Counter()  # (handler, phase it left) -> passes


def _count_passes() -> None:
    """Count each reconcile pass by the handler that asked for it and the phase it left the job in."""
    from safeagent import reconcile

    original = reconcile.reconcile_job

    def counted(*args: Any, **kwargs: Any) -> str | None:
        frame, handler = sys._getframe(1), "?"
        while frame is not None:
            if frame.f_code.co_name in ("job_changed", "job_tick", "sandbox_pod_event", "approval_changed"):
                handler = frame.f_code.co_name
                break
            frame = frame.f_back  # type: ignore[assignment]
        phase = "error"
        try:
            phase = str(original(*args, **kwargs))
            return phase if phase != "None" else None
        finally:
            with REQUESTS.lock:
                PASSES[(handler, phase)] += 1

    reconcile.reconcile_job = counted  # type: ignore[assignment]
_PATH = re.compile(r"/api(?:s/[^/]+)?/v1[^/]*(?:/namespaces/[^/]+)?/([a-z]+)(?:/[^/?]+)?(?:/([a-z]+))?")


def _count_kopf_requests() -> None:
    """Kopf talks to the API server through aiohttp: count each request it sends there."""
    original = aiohttp.ClientSession._request

    async def counted(self: aiohttp.ClientSession, method: str, url: Any, **kwargs: Any) -> Any:
        path = str(url).split("://", 1)[-1].partition("/")[2]
        match = _PATH.search("/" + path)
        resource = "/".join(part for part in match.groups() if part) if match else path
        params = kwargs.get("params") or {}
        verb = "watch" if "watch" in str(url) or params.get("watch") else method.lower()
        REQUESTS.add("kopf", verb, resource)
        return await original(self, method, url, **kwargs)

    aiohttp.ClientSession._request = counted  # type: ignore[assignment]


class Node:
    """The kubelet's part: each sandbox Pod is scheduled, starts, runs and succeeds on a timetable."""

    def __init__(self, world: World, run_seconds: float, queue_seconds: float = 0.0) -> None:
        self.world, self.run_seconds, self.queue_seconds = world, run_seconds, queue_seconds
        self.due: list[tuple[float, int, str, str]] = []
        self.order = 0
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.pod_seen: dict[str, float] = {}  # job name -> first Pod event
        self.final_seen: dict[str, float] = {}  # job name -> first final job event
        self.pods_per_job: collections.Counter[str] = collections.Counter()

    def _at(self, delay: float, step: str, pod: str) -> None:
        with self.cond:
            self.order += 1
            heapq.heappush(self.due, (time.monotonic() + delay, self.order, step, pod))
            self.cond.notify()

    def watch_pods(self) -> None:
        core = client.CoreV1Api(self.world.stage.admin)
        stream = watch.Watch()
        for event in stream.stream(core.list_namespaced_pod, self.world.ns, timeout_seconds=600):
            if self.stop.is_set():
                return
            pod = event["object"]
            job = (pod.metadata.annotations or {}).get("safeagent.ca/job-name")
            if event["type"] == "ADDED" and job:
                self.pod_seen.setdefault(job, time.monotonic())
                self.pods_per_job[job] += 1
                queued = self.queue_seconds
                if queued:
                    self._at(0.2, "unschedulable", pod.metadata.name)
                self._at(queued + 0.3, "scheduled", pod.metadata.name)
                self._at(queued + 0.6, "running", pod.metadata.name)
                self._at(queued + self.run_seconds, "finished", pod.metadata.name)

    def watch_jobs(self) -> None:
        custom = client.CustomObjectsApi(self.world.stage.admin)
        stream = watch.Watch()
        for event in stream.stream(custom.list_namespaced_custom_object, "safeagent.ca", "v1alpha1",
                                   self.world.ns, "sandboxjobs", timeout_seconds=600):
            if self.stop.is_set():
                return
            body = event["object"]
            if (body.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Denied", "Rejected"):
                self.final_seen.setdefault(body["metadata"]["name"], time.monotonic())

    def kubelet(self) -> None:
        """Each step when it is due, on 8 threads (one would queue a burst's steps behind each other)."""
        with concurrent.futures.ThreadPoolExecutor(8) as steps:
            self._due_steps(steps)

    def _due_steps(self, steps: concurrent.futures.Executor) -> None:
        while not self.stop.is_set():
            with self.cond:
                while not self.due or self.due[0][0] > time.monotonic():
                    self.cond.wait(timeout=0.05 if self.due else 0.5)
                    if self.stop.is_set():
                        return
                _, _, step, pod = heapq.heappop(self.due)
            steps.submit(self._step, step, pod)

    def _step(self, step: str, pod: str) -> None:
        try:
            self._status(step, pod)
        except client.exceptions.ApiException as error:
            if error.status != 404:  # the operator deleted it already
                raise

    def _status(self, step: str, pod: str) -> None:
        running_state = {"running": {"startedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
        waiting = {"waiting": {"reason": "PodInitializing"}}
        scheduled = [{"type": "PodScheduled", "status": "True"}]
        if step == "unschedulable":
            self.world.set_pod_status(pod, {"phase": "Pending", "conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/2 nodes are available: 1 Insufficient cpu."}]})
        elif step == "scheduled":
            self.world.set_pod_status(pod, {"phase": "Pending", "conditions": scheduled, "initContainerStatuses": [
                _container("prepare", running_state)], "containerStatuses": [_container("runner", waiting)]})
        elif step == "running":
            terminated = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": running_state[
                "running"]["startedAt"], "finishedAt": running_state["running"]["startedAt"]}}
            self.world.set_pod_status(pod, {"phase": "Running", "conditions": scheduled, "initContainerStatuses": [
                _container("prepare", terminated)], "containerStatuses": [_container("runner", running_state)]})
        else:
            self.world.finish_pod(pod, runner_record())


def _container(name: str, state: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "image": "safeagent/sandbox:dev", "imageID": "", "ready": False, "restartCount": 0,
            "state": state}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(-(-q * len(ordered) // 1)) - 1))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--run-seconds", type=float, default=1.5, help="create → Succeeded of each Pod")
    parser.add_argument("--queue-seconds", type=float, default=0.0,
                        help="each Pod first waits this long for a node (Unschedulable), as in a burst on the test bed")
    parser.add_argument("--timeout", type=float, default=240.0)
    parser.add_argument("--out", help="write the numbers as JSON here")
    args = parser.parse_args()
    _count_kopf_requests()
    _count_passes()
    with running() as server, tempfile.TemporaryDirectory() as workdir:
        stage = Stage.install(server, Path(workdir))
        world = World(stage, BOUND_NAMESPACE)
        world.kube._observer = lambda verb, resource, _error: REQUESTS.add("safeagent", verb, resource)
        _LOGIN.update(server=stage.server.url, ca_path=str(stage.server.ca_file), token=stage.operator_token,
                      default_namespace=BOUND_NAMESPACE)
        handlers.use_context(lambda: world.ctx)
        node = Node(world, args.run_seconds, args.queue_seconds)
        threads = [threading.Thread(target=target, daemon=True)
                   for target in (node.watch_pods, node.watch_jobs, node.kubelet)]
        for thread in threads:
            thread.start()
        runner_args = ["run", "--standalone", "--namespace", BOUND_NAMESPACE, "-m", "safeagent.handlers"]
        with KopfRunner(runner_args, timeout=60):
            time.sleep(3)  # Kopf's first listing and the watches
            logging.getLogger().setLevel(logging.WARNING)
            world.ctx.policy()  # parsed once before the burst, as after the operator's first job
            REQUESTS.counts.clear()
            names = [f"burst-{uuid.uuid4().hex[:6]}" for _ in range(args.jobs)]
            applied: dict[str, float] = {}
            for name in names:
                applied[name] = time.monotonic()
                world.add_job(name, "ls")
            deadline = time.monotonic() + args.timeout
            while len(node.final_seen.keys() & set(names)) < len(names) and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(6)  # the last Pods' deletion and Kopf's finalizer removal
            counts, passes = dict(REQUESTS.counts), dict(PASSES)
        node.stop.set()
        handlers.use_context(None)
    to_pod = [node.pod_seen[n] - applied[n] for n in names if n in node.pod_seen]
    to_final = [node.final_seen[n] - applied[n] for n in names if n in node.final_seen]
    report = {
        "jobs": len(names),
        "lost": len(names) - len(to_final),
        "duplicated": sum(1 for n in names if node.pods_per_job[n] > 1),
        "makespanSeconds": round(max(node.final_seen.get(n, 0.0) for n in names) - min(applied.values()), 2),
        "applyToPod": {"p50": round(_percentile(to_pod, 0.5), 2), "p99": round(_percentile(to_pod, 0.99), 2)},
        "applyToFinal": {"p50": round(_percentile(to_final, 0.5), 2), "p99": round(_percentile(to_final, 0.99), 2)},
        "requestsPerJob": {
            who: round(sum(n for (w, _, _), n in counts.items() if w == who) / len(names), 2)
            for who in ("safeagent", "kopf")
        },
        "requests": {f"{who} {verb} {resource}": n for (who, verb, resource), n in sorted(counts.items())},
        "passes": {f"{handler} -> {phase}": n for (handler, phase), n in sorted(passes.items())},
    }
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
