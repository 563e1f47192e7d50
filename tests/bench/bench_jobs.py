"""One command three ways on the test bed, side by side in one run: a bare Pod, a SandboxJob
(cold) and an exec into a running Pod (issue 21, `make bench-jobs`; a benchmark, not a test).

    make bench-jobs     or    .venv/bin/python tests/bench/bench_jobs.py [--big] [--out DIR]

Every mode runs `ls -la` on the same small repository (manifests/examples/00-example-repo.yaml)
with the sandbox image, on the sandbox node, with a sandbox Pod's security context and resources:

  bare-pod         a Pod made from the operator's own sandbox Pod (safeagent.builders, with the
                   installed configuration) cut down to one container that runs `ls -la` on the
                   ConfigMap mounted at /source; in a namespace of the run's own (Pod Security
                   `restricted`). Create → Succeeded: the floor for one Pod started per command.
  sandboxjob-cold  a SandboxJob, profile `none`, through the installed operator in its sandbox
                   namespace. Apply → final phase, with the Pod, the command's start and the egress
                   proof's wait on the way.
  sandboxjob-warm  the same SandboxJob with a warm pool (docs/warm-pool.md): the run turns the
                   installed release's `warmPool.size.none` up to WARM_POOL for the jobs one after
                   another and WARM_BURST_POOL for the bursts (`helm upgrade --reuse-values`), waits
                   until that many warm Pods are ready, and turns it back to what it was afterwards. A job that finds no warm Pod ready (a burst beyond the
                   pool, or one after another faster than the pool refills) runs cold, and the run
                   counts how many went warm. Apply → final phase.
  sandboxjob-approved  `rm delete-me.txt`, which the inspect-only policy sends to a person: the
                   SandboxJob is applied, and once its Approval exists a reviewer (a ServiceAccount
                   of the run's own, impersonated) patches it Approved. Every instant of this mode
                   counts from that patch: Approved → Pod, → command started, → final. One after
                   another only (a burst of people approving at once is not what it measures).
  exec             `ls -la` over the API's exec websocket (the `kubernetes` client's `stream`) into
                   one long-running Pod of the same shape: the channel floor.

Each mode: 20 one after another, then a burst of 50 submitted at once (and of 200 with `--big`).
How each instant is taken (watch events received here, on this machine's monotonic clock) and
what the percentiles mean: tests/bench/jobs_report.py. Lost (never final within the timeout) and
duplicated (more than one Pod seen for one job, from the Pod watch) are reported, never asserted.

The operator's cost comes from its metrics endpoint through the API server's Pod proxy, sampled
every 2 s (process_cpu_seconds_total, process_resident_memory_bytes, safeagent_kube_requests_total,
the requests of safeagent's own code: Kopf's own watches and patches are not in it), with its
container's cgroup (v1: cpuacct.usage, memory.max_usage_in_bytes) read by an exec before and after
as a cross-check. API requests per job: the API server's apiserver_request_total (every client:
the operator, kubelet, scheduler, controllers and this script) before and after each run, divided
by its jobs. The policy's own numbers come from bench_policy.py (1 s per policy).

Writes DIR/latest.json and DIR/latest.png (default docs/bench, shown by docs/bench.md) and prints
a Markdown table. On this project's 2-core machine the default run takes about 4 minutes; `--big`
adds three bursts of 200 and about 6 minutes more (measured 2026-12-07: the bare Pods 77 s, the
SandboxJobs 189 s, the execs 64 s, plus cleanup; the sandbox node holds about 19 Pods at a time at
100m CPU requested each, so 200 Pods queue in the scheduler, and the operator's resident memory
reached 250 MiB).

Needs the chart installed (`make install`) and the sandbox image on the nodes; creates only
objects labelled with the run's tag and deletes them at the end (a namespace, Pods, a ConfigMap,
SandboxJobs). `--yield-to FILE`: before each run, when FILE was made or touched since the start,
clean up and stop (exit 3), for a test bed shared with someone who may need it back.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import functools
import json
import os
import platform
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.bench import jobs_report  # noqa: E402
from tests.bench.jobs_report import Timeline  # noqa: E402

RELEASE = os.environ.get("RELEASE", "safeagent")
SYSTEM_NS = os.environ.get("RELEASE_NAMESPACE", "safeagent-system")
SANDBOX_NS = os.environ.get("SAFEAGENT_SANDBOX_NAMESPACE", "safeagent-sandbox")
OPERATOR_SELECTOR = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator"
GROUP, VERSION = "safeagent.ca", "v1alpha1"
BENCH_LABEL = "safeagent.ca/bench"
FINAL_PHASES = {"Succeeded", "Failed", "Denied", "Rejected"}
COMMAND = "ls -la"
# Warm Pods kept ready during the warm mode's runs one after another: one per job. A Pod's start
# and removal cost this 2-core bed about a CPU-second, against a few tenths for a warm job, so jobs
# back to back outrun any refill here; the pool refills in the pause after them (warm.refill_wait).
WARM_POOL = int(os.environ.get("SAFEAGENT_BENCH_WARM_POOL", "20"))
# ... and during its bursts: smaller, so that most of a burst falls back to cold (what is measured
# there is that nothing is lost or run twice when it does).
WARM_BURST_POOL = int(os.environ.get("SAFEAGENT_BENCH_WARM_BURST_POOL", "8"))
RELEASE = os.environ.get("RELEASE", "safeagent")
CHART = REPO / "charts" / "safeagent"
APPROVED_COMMAND = "rm delete-me.txt"  # needs a person under the inspect-only policy
EXAMPLE_REPO = REPO / "manifests/examples/00-example-repo.yaml"
CREATORS = 10  # threads that submit a burst: 50 creates leave within about half a second
SEQUENTIAL_TIMEOUT = 120.0


class Stop(Exception):
    """The test bed is wanted back (--yield-to)."""


def burst_timeout(jobs: int) -> float:
    """Long enough for the egress proof's longest wait (240 s) behind a queue of `jobs` Pods."""
    return 240 + 3.0 * jobs


# ------------------------------------------------------------------------------- kube plumbing


def api_client() -> Any:
    """A client of its own: `stream` (exec) swaps a client's transport while it runs, so every
    thread that execs, and every watch, gets one."""
    from kubernetes import client

    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = 32
    return client.ApiClient(configuration)


def core(client_: Any | None = None) -> Any:
    from kubernetes import client

    return client.CoreV1Api(client_ or api_client())


def custom(client_: Any | None = None) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(client_ or api_client())


class Watch(threading.Thread):
    """List, then watch, one collection; every event goes to `on_event(type, object, received)`
    with the monotonic time it arrived. Reconnects; lists again after a 410 (Gone)."""

    def __init__(self, name: str, list_call: Callable[..., Any], on_event: Callable[[str, dict, float], None]):
        super().__init__(name=name, daemon=True)
        self.list_call, self.on_event = list_call, on_event
        self.ready = threading.Event()
        self.stopped = threading.Event()

    def run(self) -> None:
        from kubernetes.watch.watch import iter_resp_lines

        version = None
        while not self.stopped.is_set():
            try:
                if version is None:
                    listing = json.loads(self.list_call(_preload_content=False).data)
                    version = listing["metadata"]["resourceVersion"]
                    received = time.monotonic()
                    for item in listing["items"]:
                        self.on_event("ADDED", item, received)
                    self.ready.set()
                response = self.list_call(watch=True, resource_version=version, timeout_seconds=30,
                                          allow_watch_bookmarks=True, _preload_content=False, _request_timeout=60)
                for line in iter_resp_lines(response):
                    received = time.monotonic()
                    event = json.loads(line)
                    if event["type"] == "ERROR":
                        if event["object"].get("code") == 410:
                            version = None
                        break
                    version = event["object"]["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self.on_event(event["type"], event["object"], received)
            except Exception as error:  # noqa: BLE001 - a dropped watch is taken up again
                print(f"watch {self.name}: {type(error).__name__}: {error}; again", file=sys.stderr)
                time.sleep(0.5)


def parse_time(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@dataclass
class PodSeen:
    first: float
    uids: set[str] = field(default_factory=set)
    started: float | None = None
    started_stamp: float | None = None
    done: float | None = None
    phase: str | None = None


@dataclass
class JobSeen:
    uid: str | None = None
    final: float | None = None
    phase: str | None = None
    egress_ms: int | None = None
    approval: str | None = None
    warm: bool = False  # its Launched condition names a warm Pod


class Recorder:
    """What the watches saw, by key: a bare Pod's name, or a sandbox Pod's job UID (its label)."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.pods: dict[str, PodSeen] = {}
        self.jobs: dict[str, JobSeen] = {}

    def on_pod(self, container: str, key_of: Callable[[dict], str | None], kind: str, pod: dict, received: float) -> None:
        key = key_of(pod)
        if key is None:
            return
        status = pod.get("status") or {}
        with self.changed:
            seen = self.pods.setdefault(key, PodSeen(first=received))
            seen.uids.add(pod["metadata"]["uid"])
            for container_status in status.get("containerStatuses") or []:
                state = container_status.get("state") or {}
                began = state.get("running") or state.get("terminated")
                if container_status.get("name") == container and began and seen.started is None:
                    seen.started, seen.started_stamp = received, parse_time(began.get("startedAt"))
            if status.get("phase") in ("Succeeded", "Failed") and seen.done is None:
                seen.done, seen.phase = received, status["phase"]
            self.changed.notify_all()

    def on_job(self, kind: str, job: dict, received: float) -> None:
        status = job.get("status") or {}
        with self.changed:
            seen = self.jobs.setdefault(job["metadata"]["name"], JobSeen())
            seen.uid = job["metadata"]["uid"]
            seen.approval = seen.approval or status.get("approvalName")
            seen.warm = seen.warm or any(condition.get("type") == "Launched" and
                                         str(condition.get("message", "")).startswith("warm Pod ")
                                         for condition in status.get("conditions") or [])
            if status.get("phase") in FINAL_PHASES and seen.final is None:
                seen.final, seen.phase, seen.egress_ms = received, status["phase"], status.get("egressCheckMs")
            self.changed.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)


def kubectl(*args: str) -> str:
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, check=True).stdout


def bare_pod(config: Any, namespace: str, repo: str, tag: str, name: str, command: list[str],
             deadline_seconds: int) -> dict[str, Any]:
    """The operator's sandbox Pod for this configuration, cut down to one container that runs
    `command` with the runner's image, security context and resources, and the ConfigMap `repo`
    mounted read-only at /source; placed (nodeSelector, tolerations, runtimeClass) the same."""
    from safeagent import builders
    from safeagent.models import SandboxJob

    job = SandboxJob.model_validate({
        "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4())},
        "spec": {"command": COMMAND, "source": {"configMap": {"name": repo}}, "timeoutSeconds": 60},
    })
    # The canary's address only reaches the runner's arguments, which the bare Pod does not keep.
    pod = builders.build_sandbox_pod(job, COMMAND.split(), 64, config, canary_address="192.0.2.1")
    spec = pod["spec"]
    runner = next(c for c in spec["containers"] if c["name"] == builders.RUNNER_CONTAINER)
    spec.pop("initContainers", None)
    spec["activeDeadlineSeconds"] = deadline_seconds
    spec["containers"] = [{
        "name": "main", "image": runner["image"], "imagePullPolicy": "Never", "command": command,
        "workingDir": "/", "resources": runner["resources"], "securityContext": runner["securityContext"],
        "volumeMounts": [{"name": "source", "mountPath": builders.SOURCE_MOUNT, "readOnly": True}],
    }]
    spec["volumes"] = [volume for volume in spec["volumes"] if volume["name"] == "source"]
    return {"apiVersion": "v1", "kind": "Pod", "spec": spec,
            "metadata": {"name": name, "namespace": namespace, "labels": {BENCH_LABEL: tag}}}


# ------------------------------------------------------------------------------------ the bench


@dataclass
class Submitted:
    key: str
    applied: float
    applied_wall: float
    uid: str | None = None


class Bench:
    def __init__(self, tag: str, yield_to: Path | None) -> None:
        from kubernetes import config as kube_config

        kube_config.load_kube_config()
        self.tag, self.yield_to, self.began_wall = tag, yield_to, time.time()
        self.bare_ns = f"safeagent-bench-{tag}"
        self.repo = f"bench-repo-{tag}"
        self.client = api_client()
        self.core, self.custom = core(self.client), custom(self.client)
        self.recorder = Recorder()
        self.config = self.installed_config()
        self.repo_files = yaml.safe_load(EXAMPLE_REPO.read_text())["data"]
        self.operator = OperatorProbe(self.config.metrics.port)
        self.watches: list[Watch] = []
        self.exec_pod: str | None = None
        self.reviewer = f"bench-reviewer-{tag}"
        self.pool_on = 0  # the pool the warm mode set on the release (cleanup turns it back)

    # -- setup and cleanup

    def installed_config(self) -> Any:
        """The operator configuration the chart installed, as the operator parses it."""
        from safeagent.config import parse_config

        listing = self.core.list_namespaced_config_map(SYSTEM_NS)
        (text,) = [item.data["config.yaml"] for item in listing.items if "config.yaml" in (item.data or {})]
        return parse_config(yaml.safe_load(text))

    def setup(self) -> None:
        labels = {BENCH_LABEL: self.tag}
        self.core.create_namespace({"metadata": {"name": self.bare_ns, "labels": {
            **labels, "pod-security.kubernetes.io/enforce": "restricted"}}})
        for namespace in (self.bare_ns, SANDBOX_NS):
            self.core.create_namespaced_config_map(namespace, {"metadata": {"name": self.repo, "labels": labels},
                                                               "data": self.repo_files})
        selector = f"{BENCH_LABEL}={self.tag}"
        self.watches = [
            Watch("bare-pods", functools.partial(core().list_namespaced_pod, self.bare_ns, label_selector=selector),
                  functools.partial(self.recorder.on_pod, "main", lambda pod: pod["metadata"]["name"])),
            Watch("sandbox-pods", functools.partial(core().list_namespaced_pod, SANDBOX_NS,
                                                    label_selector="safeagent.ca/job-uid"),
                  functools.partial(self.recorder.on_pod, "runner",
                                    lambda pod: pod["metadata"]["labels"].get("safeagent.ca/job-uid"))),
            Watch("jobs", functools.partial(custom().list_namespaced_custom_object, GROUP, VERSION, SANDBOX_NS,
                                            "sandboxjobs", label_selector=selector), self.recorder.on_job),
        ]
        for watch in self.watches:
            watch.start()
        for watch in self.watches:
            if not watch.ready.wait(30):
                raise SystemExit(f"the {watch.name} watch did not start")
        self.operator.start()

    def cleanup(self) -> None:
        selector = f"{BENCH_LABEL}={self.tag}"
        self.delete_jobs()
        if self.pool_on:
            try:
                self.warm_pool(self.installed_pool())
            except Exception as error:  # noqa: BLE001 - cleanup goes on, and says what is left
                print(f"cleanup: the warm pool is still {self.pool_on}: {error}", file=sys.stderr)
        for call in (lambda: self.core.delete_namespace(self.bare_ns),
                     lambda: self.core.delete_namespaced_config_map(self.repo, SANDBOX_NS),
                     lambda: kubectl("-n", SANDBOX_NS, "delete", "serviceaccount,rolebinding", self.reviewer,
                                     "--ignore-not-found")):
            try:
                call()
            except Exception as error:  # noqa: BLE001 - cleanup goes on
                print(f"cleanup: {error}", file=sys.stderr)
        for watch in self.watches:
            watch.stopped.set()
        self.operator.stop()
        left = self.custom.list_namespaced_custom_object(GROUP, VERSION, SANDBOX_NS, "sandboxjobs",
                                                         label_selector=selector)["items"]
        if left:
            print(f"cleanup: {len(left)} SandboxJobs of this run still there", file=sys.stderr)

    def check_yield(self) -> None:
        """Stop when the --yield-to file was made (or touched) after this run began."""
        try:
            made = self.yield_to.stat().st_mtime if self.yield_to is not None else None
        except FileNotFoundError:
            made = None
        if made is not None and made >= self.began_wall:
            raise Stop(f"{self.yield_to} appeared")

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Until `predicate` holds or `timeout` passes, looking at the --yield-to file every 2 s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.recorder.wait(predicate, min(2.0, deadline - time.monotonic())):
                return True
            self.check_yield()
        return False

    def delete_jobs(self, wait: float = 240) -> None:
        """Delete this run's SandboxJobs and wait until they and their Pods are gone, so that the
        next run starts on a quiet operator and an empty node."""
        selector = f"{BENCH_LABEL}={self.tag}"
        self.custom.delete_collection_namespaced_custom_object(GROUP, VERSION, SANDBOX_NS, "sandboxjobs",
                                                               label_selector=selector)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            jobs = self.custom.list_namespaced_custom_object(GROUP, VERSION, SANDBOX_NS, "sandboxjobs",
                                                             label_selector=selector)["items"]
            pods = [pod for pod in self.core.list_namespaced_pod(SANDBOX_NS, label_selector="safeagent.ca/job-uid").items
                    if pod.metadata.labels.get("safeagent.ca/job-uid") in self.job_uids()]
            if not jobs and not pods:
                return
            time.sleep(1)
        print(f"SandboxJobs or their Pods still there after {wait:.0f} s", file=sys.stderr)

    def job_uids(self) -> set[str]:
        with self.recorder.changed:
            return {seen.uid for seen in self.recorder.jobs.values() if seen.uid}

    def delete_bare_pods(self, wait: float = 120) -> None:
        self.core.delete_collection_namespaced_pod(self.bare_ns, label_selector=f"{BENCH_LABEL}={self.tag}",
                                                   grace_period_seconds=0)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not self.core.list_namespaced_pod(self.bare_ns).items:
                return
            time.sleep(1)

    # -- the Pods

    def submit_bare(self, index: int, scenario: str) -> Submitted:
        name = f"bare-{scenario}-{index}"
        pod = bare_pod(self.config, self.bare_ns, self.repo, self.tag, name, ["ls", "-la", "/source"], 300)
        applied, applied_wall = time.monotonic(), time.time()
        self.core.create_namespaced_pod(self.bare_ns, pod)
        return Submitted(name, applied, applied_wall)

    def submit_job(self, index: int, scenario: str, command: str = COMMAND) -> Submitted:
        name = f"bench-{self.tag}-{scenario}-{index}"
        job = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "SandboxJob",
               "metadata": {"name": name, "labels": {BENCH_LABEL: self.tag}},
               "spec": {"command": command, "source": {"configMap": {"name": self.repo}},
                        "networkProfile": "none", "timeoutSeconds": 60}}
        applied, applied_wall = time.monotonic(), time.time()
        created = self.custom.create_namespaced_custom_object(GROUP, VERSION, SANDBOX_NS, "sandboxjobs", job)
        return Submitted(name, applied, applied_wall, created["metadata"]["uid"])

    def approver(self) -> Any:
        """An API client acting as the run's own reviewer: a ServiceAccount bound to the chart's
        approver role (nobody approves their own job, and this script submitted them)."""
        from kubernetes import client

        kubectl("-n", SANDBOX_NS, "create", "serviceaccount", self.reviewer)
        kubectl("-n", SANDBOX_NS, "create", "rolebinding", self.reviewer, "--clusterrole=safeagent-approver",
                f"--serviceaccount={SANDBOX_NS}:{self.reviewer}")
        api = api_client()
        api.set_default_header("Impersonate-User", f"system:serviceaccount:{SANDBOX_NS}:{self.reviewer}")
        return client.CustomObjectsApi(api)

    def approve(self, reviewer: Any, index: int, label: str) -> Submitted:
        """Apply one job that needs a person, wait for its Approval, approve it: timed from the patch."""
        item = self.submit_job(index, label, APPROVED_COMMAND)
        self.wait(lambda: (self.recorder.jobs.get(item.key) or JobSeen()).approval is not None, SEQUENTIAL_TIMEOUT)
        with self.recorder.changed:
            approval = (self.recorder.jobs.get(item.key) or JobSeen()).approval
        if approval is None:
            return item  # never asked for: lost
        for _ in range(50):  # the operator may still be writing the Approval's status: retry a conflict
            try:
                decided, decided_wall = time.monotonic(), time.time()
                reviewer.patch_namespaced_custom_object(GROUP, VERSION, SANDBOX_NS, "approvals", approval,
                                                        {"spec": {"decision": "Approved"}})
                return Submitted(item.key, decided, decided_wall, item.uid)
            except Exception as error:  # noqa: BLE001 - an Approval not yet there or in conflict: again
                if getattr(error, "status", None) not in (404, 409):
                    raise
                time.sleep(0.1)
        return item

    def run_approved(self, scenario: str, jobs: int) -> dict[str, Any]:
        reviewer = self.approver()
        before = self.costs()
        submitted = []
        for index in range(jobs):
            submitted.append(self.approve(reviewer, index, "a"))
            self.wait(lambda: (self.recorder.jobs.get(submitted[-1].key) or JobSeen()).final is not None,
                      SEQUENTIAL_TIMEOUT)
        after = self.costs()
        with self.recorder.changed:
            timelines = [self.timeline(jobs_report.FROM_APPROVAL, item) for item in submitted]
        self.delete_jobs()
        return jobs_report.summarize_run(jobs_report.FROM_APPROVAL, scenario, timelines, counts_pods=True,
                                         extra=per_job(before, after, jobs))

    # -- the runs

    def warm_pool(self, size: int) -> None:
        """The installed release's pool for the `none` profile at `size` (its other values kept), and
        until `size` warm Pods are ready."""
        subprocess.run(["helm", "upgrade", RELEASE, str(CHART), "--namespace", SYSTEM_NS, "--reuse-values",
                        "--set", f"warmPool.size.none={size}", "--wait", "--timeout", "5m"],
                       check=True, capture_output=True, timeout=600)
        if size and not self.wait(lambda: self.warm_ready() >= size, 300):
            raise Stop(f"{size} warm Pods not ready within 300 s")

    def warm_ready(self) -> int:
        pods = self.core.list_namespaced_pod(SANDBOX_NS, label_selector="safeagent.ca/warm=true,!safeagent.ca/job-uid")
        return sum(1 for pod in pods.items if pod.status.phase == "Running"
                   and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []))

    def installed_pool(self) -> int:
        from safeagent.models import NetworkProfile

        return self.config.warmPool.size_of(NetworkProfile.NONE)

    def run_warm(self, scenario: str, jobs: int, burst: bool) -> dict[str, Any]:
        """The warm runs come after every other (a pool would take the other modes' jobs too): the
        first turns the pool on, which restarts the operator, and cleanup turns it back."""
        size = WARM_BURST_POOL if burst else WARM_POOL
        if self.pool_on != size:
            self.pool_on = size
            self.warm_pool(size)
            self.operator.repoint()
        elif not self.wait(lambda: self.warm_ready() >= size, 300):
            raise Stop(f"the pool did not refill to {size} within 300 s")
        return self.run_submitted(jobs_report.WARM, scenario, jobs, burst)

    def run_submitted(self, mode: str, scenario: str, jobs: int, burst: bool) -> dict[str, Any]:
        submit = self.submit_bare if mode == "bare-pod" else self.submit_job
        # Job names are per mode: the watches key what they saw by name, across the whole run.
        label = ("w" if mode == jobs_report.WARM else "") + (f"b{jobs}" if burst else "s")

        def done(item: Submitted) -> bool:
            if mode == "bare-pod":
                seen = self.recorder.pods.get(item.key)
                return seen is not None and seen.done is not None
            return (self.recorder.jobs.get(item.key) or JobSeen()).final is not None

        before = self.costs()
        submitted: list[Submitted] = []
        if burst:
            with concurrent.futures.ThreadPoolExecutor(CREATORS) as pool:
                submitted = list(pool.map(lambda index: submit(index, label), range(jobs)))
            self.wait(lambda: all(done(item) for item in submitted), burst_timeout(jobs))
        else:
            for index in range(jobs):
                submitted.append(submit(index, label))
                self.wait(lambda: done(submitted[-1]), SEQUENTIAL_TIMEOUT)
        after = self.costs()
        with self.recorder.changed:
            timelines = [self.timeline(mode, item) for item in submitted]
        extra = per_job(before, after, jobs)
        if mode == jobs_report.WARM:
            extra["warmJobs"] = sum((self.recorder.jobs.get(item.key) or JobSeen()).warm for item in submitted)
        if mode == "bare-pod":
            self.delete_bare_pods()
        else:
            self.delete_jobs()
        return jobs_report.summarize_run(mode, scenario, timelines, counts_pods=True, extra=extra)

    def timeline(self, mode: str, item: Submitted) -> Timeline:
        timeline = Timeline(applied=item.applied, applied_wall=item.applied_wall)
        if mode == "bare-pod":
            pod = self.recorder.pods.get(item.key)
            timeline.final = pod.done if pod else None
            timeline.outcome = pod.phase if pod else None
        else:
            job = self.recorder.jobs.get(item.key) or JobSeen()
            pod = self.recorder.pods.get(job.uid or item.uid or "")
            timeline.final, timeline.outcome, timeline.egress_ms = job.final, job.phase, job.egress_ms
        if pod is not None:
            timeline.pod, timeline.started, timeline.started_stamp_wall = pod.first, pod.started, pod.started_stamp
            timeline.pod_uids = set(pod.uids)
        return timeline

    def start_exec_pod(self) -> None:
        name = f"exec-{self.tag}"
        pod = bare_pod(self.config, self.bare_ns, self.repo, self.tag, name, ["sleep", "3600"], 3600)
        self.core.create_namespaced_pod(self.bare_ns, pod)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pod = self.core.read_namespaced_pod(name, self.bare_ns)
            if any(c.state.running for c in pod.status.container_statuses or []):
                self.exec_pod = name
                return
            time.sleep(0.5)
        raise SystemExit(f"the exec Pod {name} did not start")

    def exec_once(self, api: Any) -> Timeline:
        from kubernetes.stream import stream

        timeline = Timeline(applied=time.monotonic(), applied_wall=time.time())
        try:
            output = stream(api.connect_get_namespaced_pod_exec, self.exec_pod, self.bare_ns,
                            command=["ls", "-la", "/source"], container="main",
                            stderr=True, stdin=False, stdout=True, tty=False, _request_timeout=60)
        except Exception as error:  # noqa: BLE001 - an exec that failed is lost, and said
            print(f"exec: {type(error).__name__}: {error}", file=sys.stderr)
            return timeline
        if "README.md" not in output:  # the client gave up at its timeout with nothing read: lost
            print(f"exec: no listing after {time.monotonic() - timeline.applied:.1f} s", file=sys.stderr)
            return timeline
        timeline.final, timeline.outcome = time.monotonic(), "Succeeded"
        return timeline

    def run_exec(self, scenario: str, jobs: int, burst: bool) -> dict[str, Any]:
        clients = [core() for _ in range(jobs if burst else 1)]
        before = self.costs()
        if burst:
            with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
                timelines = list(pool.map(self.exec_once, clients))
        else:
            timelines = [self.exec_once(clients[0]) for _ in range(jobs)]
        after = self.costs()
        return jobs_report.summarize_run("exec", scenario, timelines, counts_pods=False,
                                         extra=per_job(before, after, jobs))

    def costs(self) -> dict[str, float | None]:
        apiserver = jobs_report.sample_sum(kubectl("get", "--raw", "/metrics"), "apiserver_request_total")
        return {"apiserverRequests": apiserver, **self.operator.counters()}


def per_job(before: dict[str, float | None], after: dict[str, float | None], jobs: int) -> dict[str, Any]:
    def delta(key: str, scale: float = 1.0) -> float | None:
        if before.get(key) is None or after.get(key) is None:
            return None
        return round((after[key] - before[key]) * scale / jobs, 1)  # type: ignore[operator]

    return {"perJob": {"apiserverRequests": delta("apiserverRequests"),
                       "operatorRequests": delta("operatorRequests"),
                       "operatorCpuMs": delta("operatorCpuSeconds", 1000.0)}}


class OperatorProbe:
    """The operator's CPU, RSS and API requests from its /metrics (through the API server's Pod
    proxy), sampled every 2 s for the peak RSS; its cgroup read by exec as a cross-check."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.api = core()
        self.exec_api = core()
        self.pod = self.running_pod()
        self.restarted = False
        self.peak_rss: float | None = None
        self.first: dict[str, float | None] = {}
        self.cgroup_before: dict[str, float] | None = None
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.sample, name="operator-metrics", daemon=True)
        self.lock = threading.Lock()

    def running_pod(self) -> str:
        pods = [pod for pod in self.api.list_namespaced_pod(SYSTEM_NS, label_selector=OPERATOR_SELECTOR).items
                if pod.status.phase == "Running" and not pod.metadata.deletion_timestamp]
        if len(pods) != 1:
            raise SystemExit(f"expected one running operator Pod in {SYSTEM_NS}, found {len(pods)}: make install")
        return str(pods[0].metadata.name)

    def repoint(self) -> None:
        """After the operator was restarted (a new configuration): its new Pod, and the whole-run
        numbers counted from now (said so in the summary)."""
        with self.lock:
            self.pod = self.running_pod()
        self.restarted, self.peak_rss = True, None
        self.first = self.counters()
        self.cgroup_before = self.cgroup()

    def scrape(self) -> str | None:
        try:
            with self.lock:
                text = self.api.connect_get_namespaced_pod_proxy_with_path(f"{self.pod}:{self.port}", SYSTEM_NS, "metrics")
            return text.decode() if isinstance(text, bytes) else str(text)
        except Exception as error:  # noqa: BLE001 - the numbers are then missing, and said
            print(f"operator metrics: {type(error).__name__}: {error}", file=sys.stderr)
            return None

    def counters(self) -> dict[str, float | None]:
        text = self.scrape()
        if text is None:
            return {"operatorCpuSeconds": None, "operatorRequests": None, "operatorRss": None}
        rss = jobs_report.sample_sum(text, "process_resident_memory_bytes")
        if rss is not None:
            self.peak_rss = max(self.peak_rss or 0.0, rss)
        return {"operatorCpuSeconds": jobs_report.sample_sum(text, "process_cpu_seconds_total"),
                "operatorRequests": jobs_report.sample_sum(text, "safeagent_kube_requests_total"),
                "operatorRss": rss}

    def sample(self) -> None:
        while not self.stopped.wait(2.0):
            self.counters()

    def cgroup(self) -> dict[str, float] | None:
        from kubernetes.stream import stream

        try:
            output = stream(self.exec_api.connect_get_namespaced_pod_exec, self.pod, SYSTEM_NS,
                            command=["sh", "-c", "cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null"
                                     " || cat /sys/fs/cgroup/cpu,cpuacct/cpuacct.usage;"
                                     " cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes"],
                            stderr=True, stdin=False, stdout=True, tty=False, _request_timeout=30)
            cpu_ns, max_usage = (float(word) for word in output.split())
        except Exception as error:  # noqa: BLE001 - e.g. cgroup v2, or no `cat` in the image
            print(f"operator cgroup: {type(error).__name__}: {error}", file=sys.stderr)
            return None
        return {"cpuSeconds": cpu_ns / 1e9, "maxUsageMiB": max_usage / 2**20}

    def start(self) -> None:
        self.first = self.counters()
        self.cgroup_before = self.cgroup()
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()

    def summary(self) -> dict[str, Any]:
        last = self.counters()
        cgroup_after = self.cgroup()
        cpu = None
        if self.first.get("operatorCpuSeconds") is not None and last.get("operatorCpuSeconds") is not None:
            cpu = round(last["operatorCpuSeconds"] - self.first["operatorCpuSeconds"], 2)  # type: ignore[operator]
        cgroup = None
        if self.cgroup_before and cgroup_after:
            cgroup = {"cpuSeconds": round(cgroup_after["cpuSeconds"] - self.cgroup_before["cpuSeconds"], 2),
                      "maxUsageMiB": round(cgroup_after["maxUsageMiB"], 1)}
        return {
            "pod": self.pod, "cpuSeconds": cpu, "sinceRestartForWarmPool": self.restarted,
            "peakRssMiB": None if self.peak_rss is None else round(self.peak_rss / 2**20, 1),
            "source": "process_* from the operator's /metrics through the API server's Pod proxy, every 2 s; "
                      "cgroup: cpuacct.usage delta and memory.max_usage_in_bytes (peak since the container "
                      "started, page cache included), read by exec",
            "cgroup": cgroup,
        }


def machine() -> dict[str, Any]:
    from kubernetes import client

    api = core()
    nodes = [{"name": node.metadata.name, "kubelet": node.status.node_info.kubelet_version,
              "cpu": node.status.capacity.get("cpu"),
              "sandbox": (node.metadata.labels or {}).get("safeagent.ca/sandbox") == "true"}
             for node in api.list_node().items]
    memory_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal:"))
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(), "memoryGiB": round(memory_kib / 2**20, 1), "kernel": platform.release(),
        "kubernetes": client.VersionApi(api.api_client).get_code().git_version,
        "nodes": nodes, "commit": commit,
        "testBed": "the kind cluster of `make cluster` (docs/testbed.md): a control-plane node with the operator, "
                   "one sandbox node behind the nftables wall; this script runs on the same machine",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=20, help="jobs one after another per mode")
    parser.add_argument("--burst", type=int, default=50, help="jobs at once per mode")
    parser.add_argument("--big", action="store_true", help="also bursts of 200 (about 10 minutes more)")
    parser.add_argument("--modes", default=",".join(jobs_report.MODES), help="comma-separated subset")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench", help="where latest.json/.png go")
    parser.add_argument("--yield-to", type=Path, default=None, metavar="FILE",
                        help="stop (exit 3) before the next run when FILE appears")
    arguments = parser.parse_args()
    modes = [mode for mode in arguments.modes.split(",") if mode]
    unknown = set(modes) - set(jobs_report.MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}")

    from tests.bench.bench_policy import run_policies

    print("policy (bench_policy.py, 1 s per policy):")
    policy = run_policies(1.0)
    scenarios = [("sequential", arguments.sequential, False), (f"burst of {arguments.burst}", arguments.burst, True)]
    if arguments.big:
        scenarios.append(("burst of 200", 200, True))
    scenarios = [scenario for scenario in scenarios if scenario[1] > 0]  # --sequential 0: bursts only

    bench = Bench(uuid.uuid4().hex[:6], arguments.yield_to)
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    stopped = None
    try:
        bench.setup()
        # Every warm run last: its pool, once on, would take the other modes' jobs too.
        order = [(scenario, mode) for group in (False, True) for scenario in scenarios
                 for mode in modes if (mode == jobs_report.WARM) is group]
        for (scenario, jobs, burst), mode in order:
            bench.check_yield()
            began = time.monotonic()
            if mode == "exec":
                bench.start_exec_pod()
                runs.append(bench.run_exec(scenario, jobs, burst))
                bench.delete_bare_pods()
            elif mode == jobs_report.WARM:
                runs.append(bench.run_warm(scenario, jobs, burst))
            elif mode == jobs_report.FROM_APPROVAL:
                if burst:
                    continue  # one person at a time: measured one after another only
                runs.append(bench.run_approved(scenario, jobs))
            else:
                runs.append(bench.run_submitted(mode, scenario, jobs, burst))
            run = runs[-1]
            warm = f", {run['warmJobs']} warm" if "warmJobs" in run else ""
            print(f"{mode:16} {scenario:14} {jobs:4} jobs: final p50 "
                  f"{(run['phases']['final'] or {}).get('p50')} s, lost {run['lost']}, "
                  f"duplicated {run['duplicated']}{warm} ({time.monotonic() - began:.0f} s)", flush=True)
    except Stop as reason:
        stopped = str(reason)
    finally:
        operator = bench.operator.summary()
        bench.cleanup()
    document = jobs_report.report(
        machine(),
        {"command": COMMAND, "sequential": arguments.sequential, "bursts": [jobs for _, jobs, burst in scenarios if burst],
         "modes": modes, "runSeconds": round(time.monotonic() - started), "stoppedEarly": stopped},
        runs, operator, policy)
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "latest.json").write_text(json.dumps(document, indent=1) + "\n")
    jobs_report.plot(document, str(arguments.out / "latest.png"))
    print()
    print(jobs_report.format_table(runs))
    print()
    print(jobs_report.format_operator(operator))
    print(f"wrote {arguments.out / 'latest.json'} and latest.png")
    if stopped:
        print(f"stopped early: {stopped}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
