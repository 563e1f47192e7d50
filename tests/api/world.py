"""What an API-tier test is given: the reconcile core wired as the operator wires it, over a real
API server, acting as the chart's operator ServiceAccount in a namespace of its own.

The only part played by the test is the node's: nothing schedules or runs a Pod here, so a test
sets a sandbox Pod's status itself (`finish_pod`, `set_pod_status`) and provides what its
containers printed through the one seam that reads Pod logs (`TierKube.read_pod_log`; the real
call would ask a kubelet). Everything else is the real thing: the CRDs' schema and CEL rules, the
status subresource, Pod Security admission, RBAC, UIDs, resource versions, 404 and 409.

Two more seams, both on purpose and both visible in the test that uses them: `TierKube.fail`
makes a named call fail the next N times (the server's own failures are not reproducible on
demand), and the clock (`world.clock.advance`) moves the operator's idea of now past a deadline
without waiting for it.
"""

from __future__ import annotations

import collections
import datetime
import json
import logging
import threading
import typing
from typing import Any

from kubernetes import client

from safeagent import audit, reconcile
from safeagent.config import PolicyFile, parse_config
from safeagent.kube import KubeApi, KubeError, operation
from safeagent.models import GROUP, VERSION
from safeagent.policy import decide
from safeagent.reconcile.context import utc_now
from safeagent.sandbox import contract, prepare, runner
from tests.api.stage import SOURCE_CONFIGMAP, TIER_APPROVER, TIER_SUBMITTER, Stage

JOB_API = (GROUP, VERSION)


class TierKube(KubeApi):
    """The operator's real API client, with the node's part (Pod logs) played by the test."""

    def __init__(self, api_client: Any) -> None:
        super().__init__(api_client)
        self.logs: dict[tuple[str, str, str], str] = {}  # (namespace, pod, container) -> its log
        self.failures: dict[str, list[Exception]] = {}
        self.pods_created = 0
        self._count = threading.Lock()  # Kopf calls from its thread pool
        self.events: list[tuple[str, str, str]] = []  # (kind, reason, message) as posted, in order
        self.requests: collections.Counter[str] = collections.Counter()  # "verb resource" -> requests sent

    def fail(self, method: str, error: Exception, times: int = 1) -> None:
        self.failures.setdefault(method, []).extend([error] * times)

    def __getattribute__(self, name: str) -> Any:
        attribute = object.__getattribute__(self, name)
        if name.startswith("_") or not callable(attribute):
            return attribute
        queue = object.__getattribute__(self, "failures").get(name)
        if not queue:
            return attribute

        def failing(*args: Any, **kwargs: Any) -> Any:
            if queue:
                raise queue.pop(0)
            return attribute(*args, **kwargs)

        return failing

    def _observe(self, what: str, error: KubeError | None) -> None:
        verb, resource = operation(what)
        with self._count:
            self.requests[f"{verb} {resource}"] += 1
        super()._observe(what, error)

    def create_pod(self, body: dict[str, Any]) -> dict[str, Any]:
        created = super().create_pod(body)
        with self._count:
            self.pods_created += 1
        return created

    def read_pod_log(self, namespace: str, name: str, container: str, limit_bytes: int) -> str:
        self.get_pod(namespace, name)  # NotFound as the real call would say it
        with self._count:
            self.requests["get pods"] -= 1  # ... and counted as the one request it stands for
            self.requests["get pods/log"] += 1
        return self.logs.get((namespace, name, container), "")[:limit_bytes]

    def post_event(self, involved: dict[str, Any], reason: str, message: str, warning: bool = False) -> None:
        super().post_event(involved, reason, message, warning)
        self.events.append((involved.get("kind", ""), reason, message))


class Clock:
    """The operator's now: the real time plus however far a test has moved it."""

    def __init__(self) -> None:
        self.offset = datetime.timedelta()

    def __call__(self) -> datetime.datetime:
        return utc_now() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += datetime.timedelta(seconds=seconds)


class AuditLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))


def compact(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"))


class World:
    """One test's operator (reconcile core + real client) and its namespace, seen as the admin."""

    def __init__(self, stage: Stage, namespace: str) -> None:
        self.stage, self.ns = stage, namespace
        self.kube = TierKube(stage.operator)
        self.clock = Clock()
        self.audit = AuditLines()
        logger = logging.getLogger(f"test.safeagent.audit.{namespace}")
        logger.handlers[:] = [self.audit]
        logger.propagate = False
        logger.setLevel(logging.INFO)
        self.policy_file = PolicyFile(str(stage.policy_path))
        self.ctx = reconcile.Context(
            kube=self.kube, config=self.config(), policy=self.policy_file.current, decide=decide,
            auditor=audit.Auditor(self.kube, logger), now=self.clock,
        )
        self.core = client.CoreV1Api(stage.admin)
        self.custom = client.CustomObjectsApi(stage.admin)
        # The two people of the namespace (stage.TIER_SUBMITTER and TIER_APPROVER).
        self.submitter = client.CustomObjectsApi(stage.client_as(TIER_SUBMITTER))
        self.approver = client.CustomObjectsApi(stage.client_as(TIER_APPROVER))

    def config(self, **overrides: Any):  # -> OperatorConfig
        """The chart's configuration for this namespace, with `overrides` merged at the top."""
        data = json.loads(json.dumps(self.stage.config_data))
        data["namespaces"] = [self.ns]
        for key, value in overrides.items():
            data[key] = {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
        return parse_config(data)

    # ------------------------------------------------------------------ the operator's passes

    def run(self, name: str, uid: str | None = None) -> str | None:
        return reconcile.reconcile_job(self.ctx, self.ns, name, uid)

    def run_approval(self, name: str) -> str | None:
        return reconcile.reconcile_approval(self.ctx, self.ns, name)

    def await_approval(self, name: str = "rm") -> tuple[dict[str, Any], str]:
        """A job whose command needs a human (rm), asked for: the job and its Approval's name."""
        job = self.add_job(name, "rm delete-me.txt")
        assert self.run(name) == "AwaitingApproval"
        return job, self.status(name)["approvalName"]

    def run_to_result(self, record: dict[str, Any], name: str = "list") -> str | None:
        """An allowed job launched, its Pod finished with `record`, and the pass that reads it."""
        self.add_job(name, "ls")
        self.run(name)
        self.finish_pod(self.status(name)["podName"], record)
        return self.run(name)

    # ------------------------------------------------------------------ jobs and approvals

    def add_job(self, name: str, command: str, by: Any = None, **spec: Any) -> dict[str, Any]:
        """A job as the namespace's submitter makes it (`by`: another user's CustomObjectsApi)."""
        body = {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "SandboxJob", "metadata": {"name": name},
            "spec": {"command": command, "source": {"configMap": {"name": SOURCE_CONFIGMAP}}, **spec},
        }
        return (by or self.submitter).create_namespaced_custom_object(*JOB_API, self.ns, "sandboxjobs", body)

    def job(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(*JOB_API, self.ns, "sandboxjobs", name)

    def status(self, name: str) -> dict[str, Any]:
        return self.job(name).get("status", {})

    def patch_status(self, name: str, status: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(*JOB_API, self.ns, "sandboxjobs", name, {"status": status})

    @property
    def approvals(self) -> dict[str, dict[str, Any]]:
        items = self.custom.list_namespaced_custom_object(*JOB_API, self.ns, "approvals")["items"]
        return {item["metadata"]["name"]: item for item in items}

    def create_approval(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.custom.create_namespaced_custom_object(*JOB_API, self.ns, "approvals", body)

    def delete_approval(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(*JOB_API, self.ns, "approvals", name)

    def patch_approval(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object(*JOB_API, self.ns, "approvals", name, patch)

    def decide(self, name: str, decision: str, note: str = "", by: Any = None) -> dict[str, Any]:
        """The namespace's approver (or `by`) decides, as `kubectl patch` would."""
        patch = {"spec": {"decision": decision, "note": note}}
        return (by or self.approver).patch_namespaced_custom_object(*JOB_API, self.ns, "approvals", name, patch)

    # ------------------------------------------------------------------ Pods: the node's part

    @property
    def pods(self) -> dict[str, dict[str, Any]]:
        items = self.core.list_namespaced_pod(self.ns).items
        return {pod.metadata.name: self.stage.admin.sanitize_for_serialization(pod) for pod in items}

    def pod(self, name: str) -> dict[str, Any]:
        return self.stage.admin.sanitize_for_serialization(self.core.read_namespaced_pod(name, self.ns))

    def create_pod(self, body: dict[str, Any]) -> dict[str, Any]:
        body = {**body, "metadata": {**body["metadata"], "namespace": self.ns}}
        body["metadata"].pop("uid", None)
        body.pop("status", None)
        return self.stage.admin.sanitize_for_serialization(self.core.create_namespaced_pod(self.ns, body))

    def delete_pod(self, name: str) -> None:
        self.core.delete_namespaced_pod(name, self.ns, grace_period_seconds=0)

    def bind_pod(self, name: str, node: str = "tier-node") -> None:
        """The scheduler's part: the Pod is bound to a node (spec.nodeName), as a Binding does it."""
        self.core.create_namespaced_pod_binding(
            name, self.ns, {"metadata": {"name": name}, "target": {"kind": "Node", "name": node}},
            _preload_content=False,
        )

    def set_pod_status(self, name: str, status: dict[str, Any]) -> None:
        self.core.patch_namespaced_pod_status(name, self.ns, {"status": status})

    def set_log(self, pod: str, container: str, text: str) -> None:
        self.kube.logs[(self.ns, pod, container)] = text

    def log(self, pod: str, container: str) -> str:
        return self.kube.logs.get((self.ns, pod, container), "")

    def finish_pod(
        self, name: str, record: dict[str, Any] | None = None, phase: str = "Succeeded", prepare_exit: int = 0,
        prepare_record: dict[str, Any] | None = None, reason: str | None = None,
    ) -> None:
        """The Pod ran: its containers' logs, then its status as the kubelet would write it. A failed
        preparation step leaves the runner never started; a failed Pod's runner exited non-zero."""
        def terminated(code: int) -> dict[str, Any]:
            return {"terminated": {"startedAt": _now(), "finishedAt": _now(), "exitCode": code,
                                   "reason": "Completed" if code == 0 else "Error"}}

        runner_state = ({"waiting": {"reason": "PodInitializing"}} if prepare_exit
                        else terminated(0 if phase == "Succeeded" else 1))
        status: dict[str, Any] = {
            "phase": phase,
            "initContainerStatuses": [{
                "name": "prepare", "image": "safeagent/sandbox:dev", "imageID": "", "ready": False,
                "restartCount": 0, "state": terminated(prepare_exit),
            }],
            "containerStatuses": [{
                "name": "runner", "image": "safeagent/sandbox:dev", "imageID": "", "ready": False,
                "restartCount": 0, "state": runner_state,
            }],
        }
        if reason:
            status["reason"] = reason
        if record is not None:
            # As the runner writes it: when the command ran, its part of the record first, then the final one.
            lines = [compact(record)]
            if record.get("exitCode") is not None:
                early = {**record, "error": record.get("error") or runner.LISTING_UNFINISHED,
                         "changedFiles": runner.no_result(None)["changedFiles"]}
                lines.insert(0, compact(early))
            self.set_log(name, "runner", "some diagnostics\n" + "\n".join(lines) + "\n")
        if prepare_record is not None:
            self.set_log(name, "prepare", compact(prepare_record) + "\n")
        # Last, as a kubelet does: a container's log is complete before its terminated state is posted.
        self.set_pod_status(name, status)

    # ------------------------------------------------------------------ what else is in the namespace

    @property
    def network_policies(self) -> list[str]:
        items = client.NetworkingV1Api(self.stage.admin).list_namespaced_network_policy(self.ns).items
        return [item.metadata.name for item in items]

    def delete_configmap(self, name: str = SOURCE_CONFIGMAP) -> None:
        self.core.delete_namespaced_config_map(name, self.ns)

    def put_configmap(self, data: dict[str, str], binary: dict[str, str] | None = None,
                      name: str = SOURCE_CONFIGMAP) -> None:
        body = {"metadata": {"name": name}, "data": data, "binaryData": binary}
        try:
            self.core.replace_namespaced_config_map(name, self.ns, body)
        except client.exceptions.ApiException as error:
            if error.status != 404:
                raise
            self.core.create_namespaced_config_map(self.ns, body)

    def post_pod_event(self, pod: dict[str, Any], reason: str, message: str) -> None:
        """An Event about a Pod as the kubelet posts one."""
        self.core.create_namespaced_event(self.ns, {
            "metadata": {"generateName": f"{pod['metadata']['name']}."},
            "involvedObject": {"kind": "Pod", "name": pod["metadata"]["name"], "namespace": self.ns,
                               "uid": pod["metadata"]["uid"], "apiVersion": "v1"},
            "reason": reason, "message": message, "type": "Warning", "source": {"component": "kubelet"},
            "firstTimestamp": _now(), "lastTimestamp": _now(), "count": 1,
        })

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.kube.events]


def _now() -> str:
    """Now, as Kubernetes writes times (the operator's own formatter)."""
    return reconcile.timestamp(utc_now())


def runner_record(**overrides: Any) -> contract.RunnerRecord:
    """A finished run's record as the runner writes it: every key of the wire contract, then
    `overrides` (which may only name keys the contract has)."""
    record = contract.RunnerRecord(
        kind=contract.RUNNER_RESULT_KIND, version=contract.RUNNER_RESULT_VERSION, exitCode=0, signal=None,
        timedOut=False, durationMs=5, stdout="a.txt\nb.txt\n", stderr="", stdoutBytes=12, stderrBytes=0,
        stdoutTruncated=False, stderrTruncated=False,
        changedFiles=contract.ChangedFilesRecord(created=0, modified=0, deleted=0, total=0, complete=True, paths=[]),
        leftoverProcessesKilled=0, fullVolumes=[], memoryExhausted=False, egress=None, pids=None, error=None,
    )
    unknown = set(overrides) - set(record)
    assert not unknown, f"not in the runner's record: {sorted(unknown)}"
    return typing.cast(contract.RunnerRecord, {**record, **overrides})


def unproven_record(egress: contract.EgressCheckRecord) -> contract.RunnerRecord:
    """The record of a runner whose pre-flight never proved egress filtered (nothing ran)."""
    return runner.no_result(None, egress)


def prepare_record(ok: bool, reason: str, message: str = "", digest: str | None = None) -> contract.PrepareRecord:
    """The preparation step's record, built by the step's own function; with `digest`, as after a copy."""
    git = contract.GitSummaryRecord(repository=False, kept=0, dropped=0, gitDirectories=0, indexRefreshed=False)
    return prepare.record(ok, reason, message, copied=(1, 4, digest, git) if digest else None)
