"""Pod helpers shared by the steps: a UID for a new Pod, create-or-adopt, identity checks and
reading a record."""

from __future__ import annotations

import json
import logging
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from safeagent import audit, builders
from safeagent.kube import AlreadyExists, Invalid, NotFound
from safeagent.models import JobPhase
from safeagent.reconcile.context import Context
from safeagent.reconcile.errors import PermanentFailure, TransientFailure
from safeagent.reconcile.job import Job
from safeagent.reconcile.status import MAX_MESSAGE, finished

log = logging.getLogger("safeagent.reconcile")

Record = TypeVar("Record", bound=BaseModel)


def reserve_uid(job: Job, name: str) -> int:
    """The UID the Pod `name` will run as, held for it from now on (safeagent.reconcile.uids).

    The first reservation after a start lists the sandbox Pods of every sandbox namespace first:
    a Pod launched before a restart keeps its UID, and nobody else gets it."""
    ctx = job.ctx
    if not ctx.uids.primed:
        ctx.uids.prime(
            pod for namespace in ctx.config.namespaces
            for pod in ctx.kube.list_pods(namespace, f"{builders.LABEL_SANDBOX}=true")
        )
    uid_range = ctx.config.sandbox.uidRange
    uid = ctx.uids.reserve(job.namespace, name, uid_range)
    if uid is None:
        raise TransientFailure(
            f"every UID of sandbox.uidRange ({uid_range.first}-{uid_range.last}, {uid_range.count} UIDs) is held "
            "by an unfinished sandbox Pod; the Pod waits for one to finish (raise sandbox.uidRange.count "
            "to run more sandboxes at once)"
        )
    return uid


def canary_address(ctx: Context) -> str | None:
    """Where a sandbox Pod's runner proves its egress filtered (safeagent.sandbox.preflight): the egress
    canary Pod's address; no canary, no Pod: the caller waits for it (TransientFailure)."""
    check = ctx.config.egressCheck
    if check is None:
        return None
    try:
        return ctx.kube.get_canary_address(check.canary.namespace, check.canary.service)
    except NotFound as error:
        raise TransientFailure(f"egress canary missing: {error}") from error


def create_or_adopt(job: Job, pod: dict[str, Any]) -> dict[str, Any]:
    """Create `pod`; if its name is taken, adopt it only if it is exactly the Pod we would build.

    Two differences are tolerated in a Pod built before a restart, each only within its bounds:
    the egress proof's deadline, and the UID (another one of `sandbox.uidRange`, recorded as held)."""
    name = pod["metadata"]["name"]
    try:
        job.launched = job.ctx.kube.create_pod(pod)
        job.ctx.pod_changes.worth_a_pass(job.launched)  # its first report, as created, asks for no pass
        return job.launched
    except AlreadyExists:
        pass
    # Ours from before a restart, or someone else's: adopt only the Pod we would have built.
    created = job.ctx.kube.get_pod(job.namespace, name)
    problem = builders.pod_mismatch(pod, created)
    check, deadline = job.ctx.config.egressCheck, builders.egress_deadline_of(created)
    if problem and check and deadline is not None and check.deadlineSeconds <= deadline <= check.maxDeadlineSeconds:
        # Built before a restart, when a different number of Pods was pending: that wait is fine too.
        pod = builders.with_egress_deadline(pod, deadline)
        problem = builders.pod_mismatch(pod, created)
    user = builders.run_as_user_of(created)
    if problem and user is not None and user in job.ctx.config.sandbox.uidRange:
        # Built before a restart, when another UID of the range was free or its name's was held.
        problem = builders.pod_mismatch(builders.with_run_as_user(pod, user), created)
    if problem is not None:
        message = f"Pod {name} exists and is not the Pod this job would run ({problem} differs)"
        final = finished(JobPhase.FAILED, "PodNameConflict", message, audit.JOB_FAILED)
        raise PermanentFailure("PodNameConflict", name, final)
    job.ctx.uids.seen(created)  # it holds its UID, whichever it is, until it finishes
    log.info("pod adopted", extra={"namespace": job.namespace, "pod": name, "runAsUser": user})
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
