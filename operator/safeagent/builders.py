"""Desired child objects as pure functions of (job, decision, configuration).

Every object comes out whole, with the safe defaults baked in: a builder never reads the cluster,
and nothing is left for a caller to remember. Names are deterministic (derived from the job's name
and UID) so a restarted operator finds, rather than duplicates, what it created before.

Over 400 lines on purpose: the sandbox Pod's builder and `pod_mismatch` (which decides whether an
existing Pod is exactly the one we would build, before adopting it) must change together, and the
Pod, its NetworkPolicy and the review Pod share the same hardened pieces.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from safeagent.config import SANDBOX_WORKSPACE, OperatorConfig, never_egress_inside
from safeagent.models import (
    API_VERSION,
    MAX_TIMEOUT_SECONDS,
    NetworkProfile,
    SandboxJob,
    spec_hash,
)
from safeagent.quantity import parse_quantity
from safeagent.sandbox import bundle, channel
from safeagent.sandbox.contract import (
    SOURCE_BUNDLE,
    SOURCE_CONFIGMAP,
    SOURCE_PVC,
    EgressCheckSpec,
    PrepareSpec,
    RunnerSpec,
    SourceKind,
    WarmPrepareRequest,
    WarmRequest,
    WarmSpec,
)

# The image's `sandbox` group (sandbox-images/Dockerfile): every sandbox Pod's runAsGroup and
# fsGroup, so the scratch volumes and the source are the group's. The UID is the Pod's own, from
# `sandbox.uidRange` (with_run_as_user).
SANDBOX_GID = 65532
LABEL_SANDBOX = "safeagent.ca/sandbox"
LABEL_PROFILE = "safeagent.ca/network-profile"
LABEL_JOB_UID = "safeagent.ca/job-uid"
ANNOTATION_JOB_NAME = "safeagent.ca/job-name"
ANNOTATION_SPEC_HASH = "safeagent.ca/spec-hash"
MANAGED_BY = {"app.kubernetes.io/managed-by": "safeagent"}

PREPARE_CONTAINER = "prepare"
RUNNER_CONTAINER = "runner"
SOURCE_MOUNT = "/source"
WORKSPACE = SANDBOX_WORKSPACE
TMP = "/tmp"
SHM = "/dev/shm"
# Where the kubelet puts each container's termination message file (its default path).
TERMINATION_LOG = "/dev/termination-log"
# The in-sandbox Python starts here: the image's read-only root, never a volume the source fills.
ENTRY_DIRECTORY = "/"

_NAME_BUDGET = 63  # a Pod name is also its hostname: keep it a DNS label
_HASH_LENGTH = 10


def uid_hash(uid: str) -> str:
    return hashlib.sha256(uid.encode()).hexdigest()[:_HASH_LENGTH]


def child_name(job_name: str, uid: str) -> str:
    """`<job name>-<hash of the job UID>`, a valid DNS label of at most 63 characters.

    The UID part makes a re-created job (same name, new UID) get new children, never the old ones.
    """
    stem = re.sub(r"[^a-z0-9-]", "-", job_name.lower())[: _NAME_BUDGET - _HASH_LENGTH - 1]
    stem = stem.strip("-") or "sbj"
    return f"{stem}-{uid_hash(uid)}"


def network_policy_name(profile: NetworkProfile) -> str:
    return f"safeagent-profile-{profile.value}"


def owner_reference(job: SandboxJob) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "SandboxJob",
        "name": job.name,
        "uid": job.uid,
        "controller": True,
    }


def job_ties(job: SandboxJob) -> dict[str, Any]:
    """The metadata that makes an object the job's: its UID label, name and spec-hash annotations,
    owner reference (a child built for it, or a warm Pod claimed by it)."""
    return {
        "labels": {LABEL_JOB_UID: job.uid},
        "annotations": {ANNOTATION_JOB_NAME: job.name, ANNOTATION_SPEC_HASH: spec_hash(job.spec)},
        "ownerReferences": [owner_reference(job)],
    }


def _child_metadata(job: SandboxJob, name: str) -> dict[str, Any]:
    ties = job_ties(job)
    return {"name": name, "namespace": job.namespace, **ties, "labels": {**MANAGED_BY, **ties["labels"]}}


def _requester(job: SandboxJob) -> dict[str, Any]:
    requester = job.spec.requester
    if requester is None:  # refused at the decision (reconcile/decide.py); never asked about
        raise ValueError(f"job {job.name} has no requester recorded by the cluster")
    return requester.model_dump(mode="json")


def build_approval(job: SandboxJob, argv: list[str], source_digest: str) -> dict[str, Any]:
    """The Approval asking a human to decide on exactly `argv`, for exactly this job and spec, on
    exactly the files whose content digest is `source_digest`."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Approval",
        "metadata": _child_metadata(job, child_name(job.name, job.uid)),
        "spec": {
            "jobName": job.name,
            "jobUid": job.uid,
            "specHash": spec_hash(job.spec),
            "command": list(argv),
            "networkProfile": job.spec.networkProfile.value,
            "source": job.spec.source.model_dump(mode="json", exclude_none=True),
            "sourceDigest": source_digest,
            "decision": "Pending",
            "note": "",
            "requester": _requester(job),
        },
    }


# ------------------------------------------------------------------------------------------ Pod


def _container_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsGroup": SANDBOX_GID,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _resources(config: OperatorConfig) -> dict[str, Any]:
    limits, requests = config.sandbox.resources, config.sandbox.requests
    return {
        "limits": {
            "cpu": limits.cpu,
            "memory": limits.memory,
            "ephemeral-storage": limits.ephemeralStorage,
        },
        "requests": {
            "cpu": requests.cpu,
            "memory": requests.memory,
            "ephemeral-storage": requests.ephemeralStorage,
        },
    }


def _spec_argument(spec: RunnerSpec | PrepareSpec | WarmSpec | dict[str, Any]) -> str:
    """A container's spec as its one JSON argument (sorted, compact: the same Pod, the same text)."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def _container(
    name: str, module: str, spec: RunnerSpec | PrepareSpec | WarmSpec, mounts: list[dict[str, Any]],
    config: OperatorConfig,
) -> dict[str, Any]:
    return {
        "name": name,
        "image": config.sandbox.image,
        "imagePullPolicy": config.sandbox.imagePullPolicy,
        # Isolated mode, from a directory the source cannot write: see safeagent.sandbox.runner.
        "command": ["python3", "-I", "-m", module],
        "args": [_spec_argument(spec)],
        "workingDir": ENTRY_DIRECTORY,
        "env": [],
        "resources": _resources(config),
        "securityContext": _container_security(),
        "volumeMounts": mounts,
        "terminationMessagePolicy": "File",
        "terminationMessagePath": TERMINATION_LOG,  # watched by the runner (safeagent.sandbox.runner)
    }


def _bundle_volume(manifest: str, chunks: Sequence[str]) -> dict[str, Any]:
    """A bundle's manifest and chunks as one projected volume, each under its object's name: the
    preparation step checks every one against its digest (safeagent.sandbox.bundle)."""
    sources = [{"configMap": {"name": manifest, "optional": False,
                              "items": [{"key": bundle.MANIFEST_KEY, "path": bundle.MANIFEST_KEY}]}}]
    sources += [
        {"configMap": {"name": bundle.chunk_name(digest), "optional": False,
                       "items": [{"key": bundle.CHUNK_KEY, "path": bundle.chunk_name(digest)}]}}
        for digest in chunks
    ]
    return {"name": "source", "projected": {"defaultMode": 0o444, "sources": sources}}


def _source_volume_and_mount(
    job: SandboxJob, bundle_chunks: Sequence[str] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    source = job.spec.source
    mount: dict[str, Any] = {"name": "source", "mountPath": SOURCE_MOUNT, "readOnly": True}
    if source.bundle is not None:
        return _bundle_volume(source.bundle.name, bundle_chunks), mount
    if source.configMap is not None:
        volume = {
            "name": "source",
            "configMap": {"name": source.configMap.name, "defaultMode": 0o444, "optional": False},
        }
    else:
        claim = source.persistentVolumeClaim
        assert claim is not None  # the model guarantees exactly one source
        volume = {
            "name": "source",
            "persistentVolumeClaim": {"claimName": claim.claimName, "readOnly": True},
        }
        if claim.path.strip("/"):
            mount["subPath"] = claim.path.strip("/")
    return volume, mount


def source_kind(job: SandboxJob) -> SourceKind:
    if job.spec.source.bundle is not None:
        return SOURCE_BUNDLE
    return SOURCE_CONFIGMAP if job.spec.source.configMap is not None else SOURCE_PVC


def _scratch_mounts() -> list[dict[str, Any]]:
    return [{"name": "workspace", "mountPath": WORKSPACE}, {"name": "tmp", "mountPath": TMP}]


def _prepare_spec(job: SandboxJob, config: OperatorConfig, source_digest: str | None) -> PrepareSpec:
    """The preparation step's spec for `job`, cold (the init container) or warm (the request's part)."""
    sandbox = config.sandbox
    spec: PrepareSpec = {
        "source": source_kind(job),
        "sourceDir": SOURCE_MOUNT,
        "workspace": WORKSPACE,
        "maxFiles": sandbox.sourceMaxFiles,
        "maxBytes": sandbox.sourceMaxBytes,
    }
    if source_digest is not None:
        spec["expectedDigest"] = source_digest
    if job.spec.source.bundle is not None:
        spec["bundle"] = job.spec.source.bundle.name
    return spec


def _prepare_container(
    job: SandboxJob, config: OperatorConfig, source_digest: str | None
) -> dict[str, Any]:
    _, source_mount = _source_volume_and_mount(job)
    return _container(
        PREPARE_CONTAINER, "safeagent.sandbox.prepare", _prepare_spec(job, config, source_digest),
        [source_mount, *_scratch_mounts()], config,
    )


def _pod(
    job: SandboxJob,
    config: OperatorConfig,
    name: str,
    profile: NetworkProfile,
    deadline_seconds: int,
    init_containers: list[dict[str, Any]],
    containers: list[dict[str, Any]],
    bundle_chunks: Sequence[str] = (),
) -> dict[str, Any]:
    """A job's sandbox-shaped Pod: hardened, no token, the source volume and the tmpfs scratch volumes."""
    source_volume, _ = _source_volume_and_mount(job, bundle_chunks)
    return _sandbox_shaped(
        _child_metadata(job, name), config, profile, deadline_seconds, init_containers, containers, [source_volume]
    )


def _sandbox_shaped(
    metadata: dict[str, Any],
    config: OperatorConfig,
    profile: NetworkProfile,
    deadline_seconds: int,
    init_containers: list[dict[str, Any]],
    containers: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
) -> dict[str, Any]:
    """Any sandbox Pod (a job's, a review, a warm one): hardened, no token, `volumes` beside the tmpfs ones."""
    sandbox = config.sandbox
    metadata["labels"].update(
        {
            "app.kubernetes.io/name": "safeagent-sandbox",
            LABEL_SANDBOX: "true",
            LABEL_PROFILE: profile.value,
        }
    )
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": deadline_seconds,
        "terminationGracePeriodSeconds": 5,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "shareProcessNamespace": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsGroup": SANDBOX_GID,
            "fsGroup": SANDBOX_GID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": init_containers,
        "containers": containers,
        "volumes": [
            *volumes,
            # tmpfs whose size is the limit: a write past it fails at once with ENOSPC (a disk
            # emptyDir's sizeLimit is only checked by the kubelet's periodic eviction). Its pages
            # count against the Pod's memory limit.
            {"name": "workspace", "emptyDir": {"medium": "Memory", "sizeLimit": sandbox.workspaceSizeLimit}},
            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": sandbox.tmpSizeLimit}},
            # Over the runtime's own /dev/shm (64 MiB, in no report): capped and reported like the others.
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": sandbox.shmSizeLimit}},
        ],
    }
    if not init_containers:
        del spec["initContainers"]
    if sandbox.runtimeClassName:
        spec["runtimeClassName"] = sandbox.runtimeClassName
    # Both Pods that run the sandbox image for a job (the run and the review) come through here,
    # so both land on the nodes reserved for sandboxes.
    if sandbox.nodeSelector:
        spec["nodeSelector"] = dict(sandbox.nodeSelector)
    if sandbox.tolerations:
        spec["tolerations"] = [toleration.pod_field() for toleration in sandbox.tolerations]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def egress_check_spec(
    profile: NetworkProfile, config: OperatorConfig, canary_address: str | None, pending_pods: int = 0
) -> EgressCheckSpec | None:
    """What the runner's pre-flight (safeagent.sandbox.preflight) checks for this profile, or None;
    `pending_pods`: the operator's unfinished sandbox Pods, which lengthen the wait (a burst)."""
    check = config.egressCheck
    if check is None:
        return None
    if canary_address is None:
        raise ValueError("the egress pre-flight needs the canary's address")
    return {
        "host": canary_address,
        "openPort": check.canary.openPort,
        "closedPort": check.canary.closedPort,
        "deadlineSeconds": check.deadline_for(pending_pods),
        "checkDns": not config.profile(profile).allowDns,
        "proof": check.proof,
    }


def build_sandbox_pod(
    job: SandboxJob,
    argv: list[str],
    max_output_kb: int,
    config: OperatorConfig,
    source_digest: str | None = None,
    canary_address: str | None = None,
    pending_pods: int = 0,
    bundle_chunks: Sequence[str] = (),
    run_as_user: int | None = None,
) -> dict[str, Any]:
    """The sandbox Pod: `prepare` validates and copies the source, `runner` runs argv under limits.

    With `source_digest` (an approved job), `prepare` refuses any source with other content.
    A bundle source needs its manifest's chunks (`bundle_chunks`, read from the manifest).
    With an egress check configured, the runner first proves, against the canary at
    `canary_address`, that the Pod's NetworkPolicy is enforced (safeagent.sandbox.preflight).
    Admitted by Pod Security `restricted`; no token, no service links, no host namespaces.
    Runs as `run_as_user` (see with_run_as_user; None: the UID its name hashes to).
    """
    runner_spec: RunnerSpec = {
        "argv": list(argv),
        "workspace": WORKSPACE,
        "timeoutSeconds": job.spec.timeoutSeconds,
        "maxOutputBytes": max_output_kb * 1024,
        "scratch": {"workspace": WORKSPACE, "tmp": TMP, "shm": SHM},
        "memoryMarginBytes": int(parse_quantity(config.sandbox.memoryMargin)),
        "pids": {"max": config.sandbox.pids.max, "required": config.sandbox.pids.required},
        "terminationLog": TERMINATION_LOG,
    }
    egress_check = egress_check_spec(job.spec.networkProfile, config, canary_address, pending_pods)
    if egress_check is not None:
        runner_spec["egressCheck"] = egress_check
    mounts = [*_scratch_mounts(), {"name": "shm", "mountPath": SHM}]
    runner = _container(RUNNER_CONTAINER, "safeagent.sandbox.runner", runner_spec, mounts, config)
    pod = _pod(
        job, config, child_name(job.name, job.uid), job.spec.networkProfile,
        job.spec.timeoutSeconds + config.sandbox.launchGraceSeconds,
        [_prepare_container(job, config, source_digest)], [runner], bundle_chunks,
    )
    return _run_as(pod, config, run_as_user)


# A warm sandbox Pod (docs/warm-pool.md): labelled so, and reached on one port.
LABEL_WARM = "safeagent.ca/warm"
WARM_CHANNEL_PORT = 8470
# The runner writes this once proved and listening; the Pod's startup probe looks for it.
WARM_READY_FILE = f"{TMP}/.safeagent-ready"
# Where the runner lays out the delivered source for the preparation step (gone before the command).
WARM_STAGING_DIR = f"{TMP}/.safeagent-source"
# The egress proof again at the delivery: one round where enforcement holds, at most this long.
WARM_REPROVE_SECONDS = 5.0
# The request line's cap: a source up to this size (with JSON's and base64's overhead) goes warm,
# a larger one cold, so an idle Pod never has to hold more than this in memory for its request.
WARM_MAX_REQUEST_BYTES = 16 * 1024 * 1024


def build_warm_pod(
    namespace: str,
    name: str,
    profile: NetworkProfile,
    config: OperatorConfig,
    token: str,
    idle_seconds: int,
    canary_address: str | None = None,
    run_as_user: int | None = None,
) -> dict[str, Any]:
    """A warm sandbox Pod: the job's Pod without the job (no source volume, no preparation step),
    its runner (safeagent.sandbox.warm) proving its bounds, then waiting up to `idle_seconds` for
    one job on WARM_CHANNEL_PORT from whoever holds `token` (in its environment, never its argv).

    Ready once its startup probe finds the ready file: proved and listening. The probe stops
    after that, so no probe process ever runs beside the command. Its deadline covers the wait,
    the longest job and the launch grace. No owner: the pool deletes it (it leaves by itself when idle)."""
    spec: WarmSpec = {
        "workspace": WORKSPACE,
        "scratch": {"workspace": WORKSPACE, "tmp": TMP, "shm": SHM},
        "memoryMarginBytes": int(parse_quantity(config.sandbox.memoryMargin)),
        "pids": {"max": config.sandbox.pids.max, "required": config.sandbox.pids.required},
        "terminationLog": TERMINATION_LOG,
        "channel": {
            "port": WARM_CHANNEL_PORT, "idleSeconds": idle_seconds, "maxRequestBytes": WARM_MAX_REQUEST_BYTES,
            "readyFile": WARM_READY_FILE, "stagingDir": WARM_STAGING_DIR, "reproveSeconds": WARM_REPROVE_SECONDS,
        },
    }
    egress_check = egress_check_spec(profile, config, canary_address)
    wait = idle_seconds
    if egress_check is not None:
        spec["egressCheck"] = egress_check
        wait += int(egress_check["deadlineSeconds"]) + 1
    mounts = [*_scratch_mounts(), {"name": "shm", "mountPath": SHM}]
    runner = _container(RUNNER_CONTAINER, "safeagent.sandbox.warm", spec, mounts, config)
    runner["env"] = [{"name": channel.TOKEN_ENV, "value": token}]
    runner["ports"] = [{"name": "channel", "containerPort": WARM_CHANNEL_PORT, "protocol": "TCP"}]
    runner["startupProbe"] = {
        "exec": {"command": ["test", "-e", WARM_READY_FILE]},
        "periodSeconds": 1, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": wait + 1,
    }
    metadata = {"name": name, "namespace": namespace, "labels": {**MANAGED_BY, LABEL_WARM: "true"}}
    deadline = wait + MAX_TIMEOUT_SECONDS + config.sandbox.launchGraceSeconds
    pod = _sandbox_shaped(metadata, config, profile, deadline, [], [runner], [])
    return _run_as(pod, config, run_as_user)


def build_warm_ingress_policy(namespace: str, name: str, allowed: dict[str, Any]) -> dict[str, Any]:
    """What may open a warm Pod's channel: the peers `allowed` selects (a NetworkPolicy peer, e.g. the
    operator's Pods), on WARM_CHANNEL_PORT only. Policies add up: the profile's own admits nothing."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "spec": {
            "podSelector": {"matchLabels": {LABEL_SANDBOX: "true", LABEL_WARM: "true"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [allowed], "ports": [{"protocol": "TCP", "port": WARM_CHANNEL_PORT}]}],
        },
    }


def volume_file(config_map: Mapping[str, Any], key: str) -> str | None:
    """Key `key` of `config_map` (as the API returned it) as the file a volume of it holds, in base64:
    a text value's UTF-8, a binary value as the API gives it; None: no such key."""
    binary = (config_map.get("binaryData") or {}).get(key)
    if isinstance(binary, str):
        return binary
    text = (config_map.get("data") or {}).get(key)
    return base64.b64encode(text.encode()).decode() if isinstance(text, str) else None


def configmap_files(config_map: Mapping[str, Any]) -> dict[str, str]:
    """The files of a ConfigMap source's volume (_source_volume_and_mount): one per key, in base64."""
    keys = [*(config_map.get("data") or {}), *(config_map.get("binaryData") or {})]
    return {key: file for key in keys if (file := volume_file(config_map, key)) is not None}


def bundle_files(manifest: bytes, chunks: Mapping[str, str]) -> dict[str, str]:
    """The files of a bundle source's volume (_bundle_volume): the manifest's bytes as stored, and each
    chunk (its digest -> its object's CHUNK_KEY file, in base64) under its object's name."""
    files = {bundle.MANIFEST_KEY: base64.b64encode(manifest).decode()}
    files.update((bundle.chunk_name(digest), content) for digest, content in chunks.items())
    return files


def build_warm_request(
    job: SandboxJob, argv: list[str], max_output_kb: int, config: OperatorConfig,
    files: Mapping[str, str], source_digest: str | None = None,
) -> WarmRequest:
    """What the operator delivers to a warm Pod for `job`: what its cold Pod's two specs would say,
    and the files of its source volume (configmap_files, bundle_files) instead of the volume."""
    prepare = _prepare_spec(job, config, source_digest)
    if prepare["source"] == SOURCE_PVC:
        raise ValueError("a volume source cannot be delivered to a running Pod")
    wanted: WarmPrepareRequest = {"source": prepare["source"], "maxFiles": prepare["maxFiles"],
                                  "maxBytes": prepare["maxBytes"]}
    if "expectedDigest" in prepare:
        wanted["expectedDigest"] = prepare["expectedDigest"]
    if "bundle" in prepare:
        wanted["bundle"] = prepare["bundle"]
    return {
        "argv": list(argv),
        "timeoutSeconds": job.spec.timeoutSeconds,
        "maxOutputBytes": max_output_kb * 1024,
        "prepare": wanted,
        "files": dict(files),
    }


def review_pod_name(job: SandboxJob) -> str:
    return child_name(job.name, f"{job.uid}/review")


def build_review_pod(job: SandboxJob, config: OperatorConfig, run_as_user: int | None = None) -> dict[str, Any]:
    """A Pod that only prepares the workspace and reports its content digest, never runs a command.

    For a volume source that needs an Approval: the operator cannot read the volume, so the
    preparation step copies it as it would for the run and digests the copy; the Approval pins
    that digest. No network at all (profile `none`), whatever the job asked for. Runs as
    `run_as_user`, like the sandbox Pod.
    """
    pod = _pod(
        job, config, review_pod_name(job), NetworkProfile.NONE, config.sandbox.launchGraceSeconds,
        [], [_prepare_container(job, config, None)],
    )
    return _run_as(pod, config, run_as_user)


def _set_run_as_user(pod: dict[str, Any], uid: int) -> dict[str, Any]:
    spec = pod["spec"]
    spec["securityContext"]["runAsUser"] = uid
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        container["securityContext"]["runAsUser"] = uid
    return pod


def _run_as(pod: dict[str, Any], config: OperatorConfig, run_as_user: int | None) -> dict[str, Any]:
    """`pod` running as `run_as_user`, or, for None, as the UID its name hashes to in the range."""
    uid_range = config.sandbox.uidRange
    uid = uid_range.preferred(pod["metadata"]["name"]) if run_as_user is None else run_as_user
    if uid not in uid_range:
        raise ValueError(f"UID {uid} is outside sandbox.uidRange ({uid_range.first}-{uid_range.last})")
    return _set_run_as_user(pod, uid)


def run_as_user_of(pod: dict[str, Any]) -> int | None:
    """The UID a sandbox-shaped Pod runs as: the pod's runAsUser when every container says the
    same (None: missing, not an integer, or not one UID for all)."""
    spec = pod.get("spec") or {}
    users = [(spec.get("securityContext") or {}).get("runAsUser")]
    users += [(container.get("securityContext") or {}).get("runAsUser")
              for kind in ("initContainers", "containers") for container in spec.get(kind) or []]
    uid = users[0]
    if not isinstance(uid, int) or isinstance(uid, bool) or any(user != uid for user in users):
        return None
    return uid


def with_run_as_user(pod: dict[str, Any], uid: int) -> dict[str, Any]:
    """`pod` running as `uid` instead (a copy).

    Each sandbox Pod gets a UID of its own from `sandbox.uidRange` (safeagent.reconcile.uids): the
    one its name hashes to, or the next free one. A Pod built before a restart may therefore run
    as another UID of the range than today's build; adoption compares it so."""
    return _set_run_as_user(copy.deepcopy(pod), uid)


# Keys the API server adds to a container we built; any other key we did not set (an env, a
# lifecycle hook, a tty ...) means the Pod is not the one we would have created.
_SERVER_CONTAINER_KEYS = frozenset({"terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy"})
# Pod-level keys that must be absent unless we set them.
_FORBIDDEN_POD_KEYS = frozenset({"ephemeralContainers"})
# Pod-level lists the API server adds to (the DefaultTolerationSeconds admission plugin appends
# not-ready and unreachable tolerations, a RuntimeClass its own): ours must all be there, in any
# place, beside whatever was added.
_EXTENDED_POD_LISTS = frozenset({"tolerations"})


def _empty(value: Any) -> bool:
    return value is None or value is False or value == [] or value == {}


def _covers(desired: Any, actual: Any, where: str) -> str | None:
    """Where `actual` differs from `desired`; server defaults (keys we never set) are allowed,
    except in containers, whose extra keys must be server defaults too."""
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return where
        for key, value in desired.items():
            if _empty(value) and _empty(actual.get(key)):
                continue
            problem = _covers(value, actual.get(key), f"{where}.{key}")
            if problem:
                return problem
        return None
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(actual) != len(desired):
            return where
        for index, (want, have) in enumerate(zip(desired, actual, strict=True)):
            problem = _covers(want, have, f"{where}[{index}]")
            if problem:
                return problem
        return None
    return None if desired == actual else where


def _runner_spec(pod: dict[str, Any]) -> dict[str, Any] | None:
    for container in (pod.get("spec") or {}).get("containers") or []:
        if container.get("name") == RUNNER_CONTAINER:
            try:
                spec = json.loads((container.get("args") or [""])[0])
            except (ValueError, TypeError):
                return None
            return spec if isinstance(spec, dict) else None
    return None


def egress_deadline_of(pod: dict[str, Any]) -> int | None:
    """The egress proof's deadline a sandbox Pod was given (None: none, or not readable)."""
    check = (_runner_spec(pod) or {}).get("egressCheck")
    deadline = check.get("deadlineSeconds") if isinstance(check, dict) else None
    return deadline if isinstance(deadline, int) and not isinstance(deadline, bool) else None


def with_egress_deadline(pod: dict[str, Any], seconds: int) -> dict[str, Any]:
    """`pod` with its runner's egress proof deadline set to `seconds` (a copy).

    The deadline depends on how many Pods were pending when the Pod was built, so a Pod built
    before a restart may differ from today's in this number only; adoption compares it so."""
    copied = copy.deepcopy(pod)
    for container in copied["spec"]["containers"]:
        if container["name"] == RUNNER_CONTAINER:
            spec = json.loads(container["args"][0])
            spec["egressCheck"]["deadlineSeconds"] = seconds
            container["args"] = [_spec_argument(spec)]
    return copied


def pod_mismatch(desired: dict[str, Any], actual: dict[str, Any]) -> str | None:
    """Why an existing Pod under our name is not the Pod `desired` (None: it is, adopt it).

    Labels and owner references can be written by anyone who can create Pods, so they prove
    nothing; what matters is that the Pod runs what we would run, the way we would run it.
    """
    uid = desired["metadata"]["labels"][LABEL_JOB_UID]
    metadata = actual.get("metadata") or {}
    if not any(
        ref.get("uid") == uid and ref.get("controller") for ref in metadata.get("ownerReferences") or []
    ):
        return "metadata.ownerReferences"
    labels = metadata.get("labels") or {}
    for key, value in desired["metadata"]["labels"].items():
        if labels.get(key) != value:
            return f"metadata.labels.{key}"
    spec = actual.get("spec") or {}
    exact = {key: value for key, value in desired["spec"].items() if key not in _EXTENDED_POD_LISTS}
    problem = _covers(exact, spec, "spec")
    if problem:
        return problem
    for kind in sorted(_EXTENDED_POD_LISTS):
        served = spec.get(kind) or []
        for index, item in enumerate(desired["spec"].get(kind) or []):
            if not any(_covers(item, have, kind) is None for have in served):
                return f"spec.{kind}[{index}]"
    extra = _FORBIDDEN_POD_KEYS & {key for key, value in spec.items() if not _empty(value)}
    if extra:
        return f"spec.{sorted(extra)[0]}"
    for kind in ("initContainers", "containers"):
        if len(spec.get(kind) or []) != len(desired["spec"].get(kind) or []):
            return f"spec.{kind}"
        for index, container in enumerate(spec.get(kind) or []):
            ours = desired["spec"][kind][index]
            unexpected = {
                key for key, value in container.items()
                if key not in ours and key not in _SERVER_CONTAINER_KEYS and not _empty(value)
            }
            if unexpected:
                return f"spec.{kind}[{index}].{sorted(unexpected)[0]}"
    return None


# -------------------------------------------------------------------------------- NetworkPolicy


def _ip_block(cidr: str) -> dict[str, Any]:
    """An ipBlock for `cidr` with the link-local and metadata ranges inside it cut out."""
    excepted = never_egress_inside(cidr)
    return {"cidr": cidr, "except": excepted} if excepted else {"cidr": cidr}


def build_network_policy(
    namespace: str, profile: NetworkProfile, config: OperatorConfig
) -> dict[str, Any]:
    """One NetworkPolicy per profile and namespace, selecting only safeagent sandbox Pods.

    Ingress is always denied. Egress is the profile's configured CIDRs and ports, plus DNS only
    where the profile allows it; `none` (and any unconfigured profile) gets no egress at all but
    one: the egress canary's open port, which the runner's pre-flight must reach to prove the
    policy is enforced (safeagent.sandbox.canary; the canary reads nothing and forwards nothing).
    """
    settings = config.profile(profile)
    egress: list[dict[str, Any]] = [
        {
            "to": [{"ipBlock": _ip_block(rule.cidr)}],
            "ports": [{"protocol": port.protocol, "port": port.port} for port in rule.ports],
        }
        for rule in settings.egress
    ]
    if config.egressCheck is not None:
        canary = config.egressCheck.canary
        egress.append(
            {
                "to": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": canary.namespace}
                        },
                        "podSelector": {"matchLabels": dict(canary.podLabels)},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": canary.openPort}],
            }
        )
    if settings.allowDns:
        egress.append(
            {
                "to": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": config.dns.namespace}
                        },
                        "podSelector": {"matchLabels": dict(config.dns.podLabels)},
                    }
                ],
                "ports": [
                    {"protocol": port.protocol, "port": port.port} for port in config.dns.ports
                ],
            }
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": network_policy_name(profile),
            "namespace": namespace,
            "labels": {**MANAGED_BY, LABEL_PROFILE: profile.value},
        },
        "spec": {
            "podSelector": {"matchLabels": {LABEL_SANDBOX: "true", LABEL_PROFILE: profile.value}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": egress,
        },
    }
