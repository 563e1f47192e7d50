"""What finished and active SandboxJobs cost the operator while they are merely present (issue 21,
`make bench-scale`; a benchmark, not a test).

    make bench-scale    or    .venv/bin/python tests/bench/bench_scale.py [--finished 1000] [--active 200]

The claim it measures: with 1,000 finished jobs present and 200 active, the operator's resident
memory stays under 150 MiB and it does no timer or handler work for the finished ones. In order:

  1. one `ls -la` job runs to its end through the installed operator: its status and Kopf's record
     of it (the `safeagent.ca/last-handled-configuration` annotation) are the template of every
     finished job below, exactly as the operator wrote them;
  2. `--active` jobs of `rm delete-me.txt`, which the inspect-only policy sends to a person, are
     applied with the operator up and wait in AwaitingApproval beside their Approvals (no Pods);
  3. the operator's Deployment is scaled to 0, `--finished` jobs are created with the template's
     annotation and get the template's final status through the status subresource (as cluster
     admin, as the operator would have written it), and the Deployment is scaled back to 1;
  4. the restarted operator is watched for `--settle` seconds (its startup with everything
     present), then `--running` jobs of `ls -la` really run in a burst, then `--settle` seconds
     more.

Every 2 s the operator's /metrics is read through the API server's Pod proxy: its resident memory
(`process_resident_memory_bytes`), CPU, the API requests of safeagent's own code
(`safeagent_kube_requests_total`) and the calls of each Kopf handler, split by whether the object
was final (`safeagent_handler_calls_total{final="true"}`: a finished job, a decided Approval, a
finished Pod). At the end of each stage its memory is also read from inside the container
(/proc/1/status and /proc/1/smaps, classified: the main heap, glibc's per-thread malloc arenas,
other anonymous memory, files) and its cgroup (v1 `memory.usage_in_bytes`, `memory.stat` rss).
The API server's own request count (`apiserver_request_total`, every client) is read before and
after the restart.

Writes DIR/scale.json (default docs/bench) and prints a Markdown table (docs/bench.md). Needs the
chart installed (`make install`), nothing else running jobs in the sandbox namespace (the
operator's numbers are its whole process), and about 7 minutes on this project's 2-core machine
(measured: 6 min 19 s and 7 min 22 s; with `--running 200`, 9 min 49 s).
Everything it creates carries the run's label and is deleted at the end; the Deployment is scaled
back to 1 whatever happens.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.bench import jobs_report  # noqa: E402
from tests.bench.bench_jobs import (  # noqa: E402
    APPROVED_COMMAND,
    BENCH_LABEL,
    COMMAND,
    EXAMPLE_REPO,
    FINAL_PHASES,
    GROUP,
    OPERATOR_SELECTOR,
    SANDBOX_NS,
    SYSTEM_NS,
    VERSION,
    OperatorProbe,
    api_client,
    core,
    custom,
    kubectl,
    machine,
)

DIFF_BASE = f"{GROUP}/last-handled-configuration"
CREATORS = 10
# A call of one of these for a final object is work for a finished job (a sandbox Pod's end and
# deletion are one or two calls in each job's life, counted apart).
FINISHED_JOB_HANDLERS = ("job_changed", "job_tick", "job_seen", "approval_changed")
MIB = 2**20
# Read inside the operator's container by its own Python: resident memory by kind of mapping. A glibc
# malloc arena of a thread is an anonymous mapping inside a 64 MiB-aligned reservation (HEAP_MAX_SIZE).
SMAPS_SCRIPT = r"""
import json, re
kinds, arenas, current = {}, 0, None
for line in open('/proc/1/smaps'):
    head = re.match(r'^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$', line)
    if head:
        start, end, perms, path = int(head[1], 16), int(head[2], 16), head[3], head[4].strip()
        if path == '[heap]':
            current = 'heap'
        elif path.startswith('['):
            current = 'other'
        elif path:
            current = 'file'
        elif start % (64 << 20) == 0 and end - start <= (64 << 20) and perms.startswith('rw'):
            current, arenas = 'arena', arenas + 1
        else:
            current = 'anon'
        continue
    if line.startswith('Rss:') and current:
        kinds[current] = kinds.get(current, 0) + int(line.split()[1]) * 1024
status = dict(l.split(':', 1) for l in open('/proc/1/status') if ':' in l)
cgroup = {}
for key, path in (('usage', '/sys/fs/cgroup/memory/memory.usage_in_bytes'),
                  ('usage', '/sys/fs/cgroup/memory.current')):
    try:
        cgroup[key] = int(open(path).read())
    except OSError:
        pass
try:
    stat = dict(l.split() for l in open('/sys/fs/cgroup/memory/memory.stat'))
    cgroup['rss'] = int(stat['total_rss'])
except (OSError, KeyError):
    pass
print(json.dumps({'rssByKind': kinds, 'mallocArenas': arenas, 'threads': int(status['Threads']),
                  'vmRss': int(status['VmRSS'].split()[0]) * 1024, 'cgroup': cgroup}))
"""


def mib(value: float | None) -> float | None:
    return None if value is None else round(value / MIB, 1)


class Probe(OperatorProbe):
    """The operator's /metrics as OperatorProbe reads them, every sample kept, plus the handler
    calls by final-ness and a look at its memory from inside."""

    def __init__(self, port: int, began: float, samples: list[dict[str, Any]]) -> None:
        super().__init__(port)
        self.began = began
        self.samples = samples  # shared by every Probe of the run: one timeline across restarts

    def counters(self) -> dict[str, float | None]:
        text = self.scrape()
        if text is None:
            return {}
        sample = {
            "t": round(time.monotonic() - self.began, 1),
            "operatorRss": jobs_report.sample_sum(text, "process_resident_memory_bytes"),
            "operatorCpuSeconds": jobs_report.sample_sum(text, "process_cpu_seconds_total"),
            "operatorRequests": jobs_report.sample_sum(text, "safeagent_kube_requests_total"),
            "finalHandlerCalls": sum(jobs_report.sample_sum(
                text, "safeagent_handler_calls_total", {"handler": handler, "final": "true"}) or 0.0
                for handler in FINISHED_JOB_HANDLERS),
            "handlerCalls": jobs_report.sample_sum(text, "safeagent_handler_calls_total"),
            "memoryReturned": jobs_report.sample_sum(text, "safeagent_memory_returned_bytes_total"),
            "byHandler": {
                f"{handler}/{final}": jobs_report.sample_sum(
                    text, "safeagent_handler_calls_total", {"handler": handler, "final": final})
                for handler in ("job_changed", "job_tick", "job_seen", "sandbox_pod_event", "approval_changed")
                for final in ("true", "false")
            },
        }
        if sample["operatorRss"] is not None:
            self.peak_rss = max(self.peak_rss or 0.0, sample["operatorRss"])
        with self.lock:
            self.samples.append(sample)
        return sample

    def inside(self) -> dict[str, Any] | None:
        from kubernetes.stream import stream

        try:
            output = stream(self.exec_api.connect_get_namespaced_pod_exec, self.pod, SYSTEM_NS,
                            command=["python3", "-c", SMAPS_SCRIPT],
                            stderr=True, stdin=False, stdout=True, tty=False, _request_timeout=30)
            seen = json.loads(output.strip().splitlines()[-1])
        except Exception as error:  # noqa: BLE001 - the numbers are then missing, and said
            print(f"operator memory from inside: {type(error).__name__}: {error}", file=sys.stderr)
            return None
        return {"vmRssMiB": mib(seen["vmRss"]), "threads": seen["threads"], "mallocArenas": seen["mallocArenas"],
                "rssByKindMiB": {kind: mib(value) for kind, value in sorted(seen["rssByKind"].items())},
                "cgroupMiB": {key: mib(value) for key, value in seen["cgroup"].items()}}


class Scale:
    def __init__(self, tag: str, began: float) -> None:
        from kubernetes import config as kube_config

        kube_config.load_kube_config()
        self.tag, self.began = tag, began
        self.selector = f"{BENCH_LABEL}={tag}"
        self.repo = f"bench-repo-{tag}"
        self.client = api_client()
        self.core, self.custom = core(self.client), custom(self.client)
        from kubernetes import client

        self.apps = client.AppsV1Api(self.client)
        self.deployment = self.apps.list_namespaced_deployment(SYSTEM_NS, label_selector=OPERATOR_SELECTOR).items[0]
        self.port = self.installed_port()
        self.probe: Probe | None = None
        self.samples: list[dict[str, Any]] = []
        self.stages: list[dict[str, Any]] = []

    def installed_port(self) -> int:
        from safeagent.config import parse_config

        listing = self.core.list_namespaced_config_map(SYSTEM_NS)
        (text,) = [item.data["config.yaml"] for item in listing.items if "config.yaml" in (item.data or {})]
        return parse_config(yaml.safe_load(text)).metrics.port

    def log(self, message: str) -> None:
        print(f"[{time.monotonic() - self.began:6.1f} s] {message}", flush=True)

    # -- the operator

    def start_probe(self) -> Probe:
        if self.probe is not None:
            self.probe.stop()
        self.probe = Probe(self.port, self.began, self.samples)
        self.probe.start()
        return self.probe

    def scale(self, replicas: int, timeout: float = 180) -> None:
        name = self.deployment.metadata.name
        self.apps.patch_namespaced_deployment_scale(name, SYSTEM_NS, {"spec": {"replicas": replicas}})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pods = self.core.list_namespaced_pod(SYSTEM_NS, label_selector=OPERATOR_SELECTOR).items
            if replicas == 0 and not pods:
                return
            ready = [pod for pod in pods if not pod.metadata.deletion_timestamp and any(
                condition.type == "Ready" and condition.status == "True" for condition in pod.status.conditions or [])]
            if replicas and len(ready) == replicas and len(pods) == replicas:
                return
            time.sleep(1)
        raise SystemExit(f"the operator's Deployment did not reach {replicas} replicas in {timeout:.0f} s")

    def apiserver_requests(self) -> float | None:
        return jobs_report.sample_sum(kubectl("get", "--raw", "/metrics"), "apiserver_request_total")

    # -- jobs

    def job_body(self, name: str, command: str) -> dict[str, Any]:
        return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "SandboxJob",
                "metadata": {"name": name, "labels": {BENCH_LABEL: self.tag}},
                "spec": {"command": command, "source": {"configMap": {"name": self.repo}},
                         "networkProfile": "none", "timeoutSeconds": 60}}

    def jobs(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, SANDBOX_NS, "sandboxjobs", label_selector=self.selector)["items"]
        return items

    def wait_jobs(self, names: set[str], done: Any, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = {job["metadata"]["name"] for job in self.jobs() if not done(job)} & names
            missing = names - {job["metadata"]["name"] for job in self.jobs()}
            if not left and not missing:
                return
            time.sleep(2)
        raise SystemExit(f"{len(left)} of {len(names)} jobs not {what} within {timeout:.0f} s")

    def create_all(self, bodies: list[dict[str, Any]], after: Any = None) -> None:
        def one(body: dict[str, Any]) -> None:
            api = custom(self.client)
            created = api.create_namespaced_custom_object(GROUP, VERSION, SANDBOX_NS, "sandboxjobs", body)
            if after is not None:
                after(api, created)

        with concurrent.futures.ThreadPoolExecutor(CREATORS) as pool:
            list(pool.map(one, bodies))

    def template(self) -> dict[str, Any]:
        """One real job, run to its end by the installed operator."""
        name = f"bench-{self.tag}-template"
        self.create_all([self.job_body(name, COMMAND)])
        self.wait_jobs({name}, lambda job: (job.get("status") or {}).get("phase") in FINAL_PHASES, "final", 120)
        body = next(job for job in self.jobs() if job["metadata"]["name"] == name)
        if DIFF_BASE not in body["metadata"].get("annotations", {}):
            raise SystemExit(f"the template job has no {DIFF_BASE} annotation: is this the chart's operator?")
        return body

    def finished(self, count: int, template: dict[str, Any], stdout_bytes: int = 0) -> None:
        """`count` jobs in the template's final status, with its diff base, as the operator left it;
        `stdout_bytes`: their stdout that long instead (the template's repeated, as a longer listing)."""
        annotation = template["metadata"]["annotations"][DIFF_BASE]
        status = copy.deepcopy(template["status"])
        if stdout_bytes:
            text = status.get("stdout") or "-"
            status["stdout"] = (text * (stdout_bytes // len(text) + 1))[:stdout_bytes]
            status["stdoutBytes"] = stdout_bytes

        def finish(api: Any, created: dict[str, Any]) -> None:
            api.patch_namespaced_custom_object_status(GROUP, VERSION, SANDBOX_NS, "sandboxjobs",
                                                      created["metadata"]["name"], {"status": status})

        bodies = []
        for index in range(count):
            body = self.job_body(f"bench-{self.tag}-done-{index}", COMMAND)
            body["metadata"]["annotations"] = {DIFF_BASE: annotation}
            bodies.append(body)
        self.create_all(bodies, finish)

    # -- stages

    def watch(self, stage: str, seconds: float, note: str, from_zero: bool = False) -> None:
        """Let the operator be for `seconds`, then record where the stage left it."""
        first = len(self.samples) - 1 if from_zero else len(self.samples)
        time.sleep(seconds)
        self.record(stage, note, first, from_zero)

    def record(self, stage: str, note: str, first: int, from_zero: bool = False) -> None:
        """The stage from sample `first` on; `from_zero`: a fresh process, whose counters (but its
        CPU, which includes starting) count from 0, so that work before the first sample counts."""
        assert self.probe is not None
        self.probe.counters()
        with self.probe.lock:
            samples = self.samples[first:]
        rss = [sample["operatorRss"] for sample in samples if sample.get("operatorRss") is not None]
        last, start = samples[-1], dict(samples[0])
        if from_zero:
            start.update(operatorRequests=0.0, finalHandlerCalls=0.0, handlerCalls=0.0)

        def delta(key: str) -> float | None:
            if start.get(key) is None or last.get(key) is None:
                return None
            return round(last[key] - start[key], 2)

        self.stages.append({
            "stage": stage, "note": note, "seconds": round(last["t"] - start.get("t", last["t"]), 1),
            "rssEndMiB": mib(last.get("operatorRss")), "rssPeakMiB": mib(max(rss) if rss else None),
            "cpuSeconds": delta("operatorCpuSeconds"), "operatorRequests": delta("operatorRequests"),
            "finalHandlerCalls": delta("finalHandlerCalls"), "handlerCalls": delta("handlerCalls"),
            "finalHandlerCallsSinceStart": last.get("finalHandlerCalls"),
            "memoryReturnedMiBSinceStart": mib(last.get("memoryReturned")),
            "byHandlerSinceStart": {key: value for key, value in last["byHandler"].items() if value},
            "inside": self.probe.inside(),
        })
        self.log(f"{stage}: RSS {mib(last.get('operatorRss'))} MiB (peak {mib(max(rss) if rss else None)}), "
                 f"final-object handler calls {delta('finalHandlerCalls')}, requests {delta('operatorRequests')}")

    def run(self, finished: int, active: int, running: int, settle: float, stdout_bytes: int = 0) -> dict[str, Any]:
        repo_files = yaml.safe_load(EXAMPLE_REPO.read_text())["data"]
        self.core.create_namespaced_config_map(SANDBOX_NS, {"metadata": {"name": self.repo, "labels": {
            BENCH_LABEL: self.tag}}, "data": repo_files})
        # A fresh operator, so that its memory is this run's and its counters start here.
        self.scale(0)
        self.scale(1)
        self.start_probe()
        self.watch("fresh", 20, "the operator just restarted, nothing of this run present")
        self.log("one job runs to its end: the template of the finished ones")
        first = len(self.samples)
        template = self.template()
        self.log(f"{active} jobs that wait for a person")
        self.create_all([self.job_body(f"bench-{self.tag}-wait-{index}", APPROVED_COMMAND) for index in range(active)])
        self.wait_jobs({f"bench-{self.tag}-wait-{index}" for index in range(active)},
                       lambda job: (job.get("status") or {}).get("phase") == "AwaitingApproval",
                       "AwaitingApproval", 300)
        self.record("active", f"{active} jobs applied, each AwaitingApproval beside its Approval", first)
        self.watch("active-settled", settle, f"{active} jobs waiting, the operator left alone")
        self.log(f"operator scaled to 0; {finished} finished jobs written as it would have written them")
        if self.probe is not None:
            self.probe.stop()
        self.scale(0)
        began = time.monotonic()
        self.finished(finished, template, stdout_bytes)
        body_bytes = len(json.dumps(next(job for job in self.jobs() if "-done-" in job["metadata"]["name"])))
        write_seconds = round(time.monotonic() - began, 1)
        requests_before = self.apiserver_requests()
        self.scale(1)
        self.start_probe()
        self.watch("startup", settle, f"the operator restarted with {finished} finished and {active} waiting jobs",
                   from_zero=True)
        requests_after = self.apiserver_requests()
        self.watch("settled", settle, "the same, left alone")
        if running:
            self.log(f"a burst of {running} jobs that run")
            first = len(self.samples)
            names = {f"bench-{self.tag}-run-{index}" for index in range(running)}
            self.create_all([self.job_body(name, COMMAND) for name in sorted(names)])
            self.wait_jobs(names, lambda job: (job.get("status") or {}).get("phase") in FINAL_PHASES, "final", 300)
            self.record("running", f"a burst of {running} `ls -la` jobs ran to their end", first)
            self.watch("after", settle, "all of it present again, left alone")
        apiserver = None
        if requests_before is not None and requests_after is not None:
            apiserver = round(requests_after - requests_before)
        return {"finished": finished, "active": active, "running": running, "settleSeconds": settle,
                "finishedJobStdoutBytes": stdout_bytes or len((template["status"].get("stdout") or "").encode()),
                "finishedJobBodyBytes": body_bytes,
                "writeFinishedSeconds": write_seconds, "apiserverRequestsOverStartup": apiserver,
                "peakRssMiB": mib(self.probe.peak_rss) if self.probe else None}

    def cleanup(self) -> None:
        try:
            self.scale(1)  # Kopf's finalizers on the waiting jobs need the operator to go
        except Exception as error:  # noqa: BLE001 - cleanup goes on
            print(f"cleanup: {error}", file=sys.stderr)
        if self.probe is not None:
            self.probe.stop()
        try:
            self.custom.delete_collection_namespaced_custom_object(GROUP, VERSION, SANDBOX_NS, "sandboxjobs",
                                                                   label_selector=self.selector)
            deadline = time.monotonic() + 300
            while self.jobs() and time.monotonic() < deadline:
                time.sleep(2)
            left = self.jobs()
            if left:
                print(f"cleanup: {len(left)} SandboxJobs of this run still there", file=sys.stderr)
            self.core.delete_namespaced_config_map(self.repo, SANDBOX_NS)
        except Exception as error:  # noqa: BLE001
            print(f"cleanup: {error}", file=sys.stderr)


def format_table(stages: list[dict[str, Any]]) -> str:
    lines = ["| stage | what | seconds | RSS end / peak (MiB) | inside: heap / arenas (n) / other anon | "
             "handler calls for final objects | all handler calls | API requests (operator) | CPU s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for stage in stages:
        inside = stage.get("inside") or {}
        kinds = inside.get("rssByKindMiB") or {}
        memory = (f"{kinds.get('heap', 0)} / {kinds.get('arena', 0)} ({inside.get('mallocArenas')}) / "
                  f"{kinds.get('anon', 0)}" if inside else "–")
        lines.append(f"| {stage['stage']} | {stage['note']} | {stage['seconds']} | {stage['rssEndMiB']} / "
                     f"{stage['rssPeakMiB']} | {memory} | {stage['finalHandlerCalls']} | {stage['handlerCalls']} | "
                     f"{stage['operatorRequests']} | {stage['cpuSeconds']} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--finished", type=int, default=1000, help="finished jobs present")
    parser.add_argument("--active", type=int, default=200, help="jobs waiting for a person")
    parser.add_argument("--running", type=int, default=20, help="jobs that really run, in a burst, at the end")
    parser.add_argument("--stdout-bytes", type=int, default=0,
                        help="the finished jobs' stdout this long (the runner keeps up to 65536 per stream)")
    parser.add_argument("--settle", type=float, default=60.0, help="seconds each stage is left alone")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench", help="where scale.json goes")
    parser.add_argument("--name", default="scale", help="the JSON's file name, without .json")
    arguments = parser.parse_args()
    began = time.monotonic()
    scale = Scale(uuid.uuid4().hex[:6], began)
    summary: dict[str, Any] = {}
    try:
        summary = scale.run(arguments.finished, arguments.active, arguments.running, arguments.settle,
                            arguments.stdout_bytes)
    finally:
        scale.cleanup()
    document = {"schema": "safeagent.ca/bench-scale/v1", "machine": machine(),
                "run": {**summary, "runSeconds": round(time.monotonic() - began)},
                "stages": scale.stages,
                "samples": scale.samples}
    arguments.out.mkdir(parents=True, exist_ok=True)
    path = arguments.out / f"{arguments.name}.json"
    path.write_text(json.dumps(document, indent=1) + "\n")
    print()
    print(format_table(scale.stages))
    print()
    print(f"peak RSS {summary.get('peakRssMiB')} MiB after the restart; API server requests over the startup "
          f"stage (every client) {summary.get('apiserverRequestsOverStartup')}; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
