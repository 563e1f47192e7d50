"""Pod helpers shared by the steps: create-or-adopt, identity checks and reading a record."""

from __future__ import annotations

import json
import logging
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from safeagent import audit, builders
from safeagent.kube import AlreadyExists, Invalid, NotFound
from safeagent.models import JobPhase
from safeagent.reconcile.errors import PermanentFailure
from safeagent.reconcile.job import Job
from safeagent.reconcile.status import MAX_MESSAGE, finished

log = logging.getLogger("safeagent.reconcile")

Record = TypeVar("Record", bound=BaseModel)


def create_or_adopt(job: Job, pod: dict[str, Any]) -> dict[str, Any]:
    """Create `pod`; if its name is taken, adopt it only if it is exactly the Pod we would build."""
    name = pod["metadata"]["name"]
    try:
        return job.ctx.kube.create_pod(pod)
    except AlreadyExists:
        pass
    # Ours from before a restart, or someone else's: adopt only the Pod we would have built.
    created = job.ctx.kube.get_pod(job.namespace, name)
    problem = builders.pod_mismatch(pod, created)
    check, deadline = job.ctx.config.egressCheck, builders.egress_deadline_of(created)
    if problem and check and deadline is not None and check.deadlineSeconds <= deadline <= check.maxDeadlineSeconds:
        # Built before a restart, when a different number of Pods was pending: that wait is fine too.
        problem = builders.pod_mismatch(builders.with_egress_deadline(pod, deadline), created)
    if problem is not None:
        message = f"Pod {name} exists and is not the Pod this job would run ({problem} differs)"
        final = finished(JobPhase.FAILED, "PodNameConflict", message, audit.JOB_FAILED)
        raise PermanentFailure("PodNameConflict", name, final)
    log.info("pod adopted", extra={"namespace": job.namespace, "pod": name})
    return created


def uid_of(pod: dict[str, Any]) -> str | None:
    return (pod.get("metadata") or {}).get("uid")


def is_ours(pod: dict[str, Any], expected_uid: str | None) -> bool:
    """The Pod under our name is the one we launched (jobs from before the UID was recorded: any)."""
    return not expected_uid or uid_of(pod) == expected_uid


def still_ours(job: Job, name: str, expected_uid: str | None) -> bool:
    """After reading a log by name: was it still the Pod we launched? (A name never returns to an
    old UID, so a Pod deleted and made again in between, or gone, is not.)"""
    return is_ours(get_or_empty(job, name), expected_uid)


def get_or_empty(job: Job, name: str) -> dict[str, Any]:
    try:
        return job.ctx.kube.get_pod(job.namespace, name)
    except NotFound:
        return {}


def terminated(statuses: list[dict[str, Any]] | None, container: str) -> dict[str, Any] | None:
    for entry in statuses or []:
        if entry.get("name") == container:
            terminated_state: dict[str, Any] | None = (entry.get("state") or {}).get("terminated")
            return terminated_state
    return None


def read_record(job: Job, pod: str, container: str, model: type[Record], limit: int) -> Record | None:
    """The last complete record line of a container's log, parsed; None if there is none or it is broken.

    A record of the right kind that does not parse (a key unknown, missing or of the wrong type:
    written by a sandbox image of another release, see safeagent.sandbox.contract) is None too, and
    the log says which keys did not match.
    """
    try:
        text = job.ctx.kube.read_pod_log(job.namespace, pod, container, limit)
    except (NotFound, Invalid):
        return None
    kind = model.model_fields["kind"].annotation.__args__[0]  # type: ignore[union-attr]
    lines = text.splitlines()
    cut = bool(text) and not text.endswith("\n")  # the last line's writer was killed while writing
    for number, line in reversed(list(enumerate(lines))):
        if line.startswith('{"kind":"' + kind + '"'):
            try:
                data = json.loads(line)
            except ValueError:
                if cut and number == len(lines) - 1:
                    continue  # the complete record before it stands (the runner writes two)
                log.warning("record refused", extra={"namespace": job.namespace, "pod": pod,
                                                     "container": container, "error": "not JSON"})
                return None
            try:
                return model.model_validate(data)
            except ValidationError as error:
                log.warning("record refused", extra={"namespace": job.namespace, "pod": pod, "container": container,
                                                     "error": str(error)[:MAX_MESSAGE]})
                return None
    return None
