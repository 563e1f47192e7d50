"""What a sandbox Pod is waiting for, from its status and Events. Pure.

A Pod that cannot start says why in three places, and the job's status should say it as soon as
the cluster knows (instead of "launched" until the deadline):

  container status  waiting.reason: ErrImageNeverPull (the image is not on the node and may not be
                    pulled), ErrImagePull / ImagePullBackOff / InvalidImageName (the pull failed),
                    CreateContainerConfigError / CreateContainerError
  Pod condition     PodScheduled=False, reason Unschedulable: no node fits (resources, a
                    PersistentVolumeClaim that does not exist or is not bound ...)
  Events            only the kubelet's Events tell volume trouble: a ConfigMap volume whose
                    ConfigMap does not exist is `FailedMount ... configmap "x" not found`, and
                    the Pod's status shows nothing but ContainerCreating; likewise
                    FailedAttachVolume and FailedCreatePodSandBox (network setup)

Whether the job's *source* is missing is not read from those texts: the operator asks the API for
the ConfigMap or PersistentVolumeClaim (observe.py) and passes the answer in, because only a
definite "does not exist" may end a job (`SOURCE_NOT_FOUND`, after a grace); everything else here
only describes the wait, and the job still ends at its deadline.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from safeagent.builders import RUNNER_CONTAINER
from safeagent.reconcile.status import MAX_MESSAGE

SOURCE_NOT_FOUND = "SourceNotFound"
IMAGE_NOT_PRESENT = "ImageNotPresent"
IMAGE_PULL_FAILED = "ImagePullFailed"
CONTAINER_CONFIG_ERROR = "ContainerConfigError"
UNSCHEDULABLE = "Unschedulable"
VOLUME_MOUNT_FAILED = "VolumeMountFailed"
POD_SANDBOX_FAILED = "PodSandboxFailed"
# Every reason a waiting Pod can show in the job's status while it is Running (stable codes).
WAITING_REASONS = frozenset(
    {
        SOURCE_NOT_FOUND, IMAGE_NOT_PRESENT, IMAGE_PULL_FAILED, CONTAINER_CONFIG_ERROR,
        UNSCHEDULABLE, VOLUME_MOUNT_FAILED, POD_SANDBOX_FAILED,
    }
)

# Container waiting reasons (the kubelet's) that mean "cannot start as things are".
_CONTAINER_WAITING = {
    "ErrImageNeverPull": IMAGE_NOT_PRESENT,
    "ErrImagePull": IMAGE_PULL_FAILED,
    "ImagePullBackOff": IMAGE_PULL_FAILED,
    "InvalidImageName": IMAGE_PULL_FAILED,
    "ImageInspectError": IMAGE_PULL_FAILED,
    "CreateContainerConfigError": CONTAINER_CONFIG_ERROR,
    "CreateContainerError": CONTAINER_CONFIG_ERROR,
}
# Warning Events (the kubelet's) about a Pod that the Pod's status does not show.
_EVENTS = {
    "FailedMount": VOLUME_MOUNT_FAILED,
    "FailedAttachVolume": VOLUME_MOUNT_FAILED,
    "FailedCreatePodSandBox": POD_SANDBOX_FAILED,
}


@dataclasses.dataclass(frozen=True)
class Trouble:
    reason: str
    detail: str
    pod: str

    @property
    def message(self) -> str:
        return f"Pod {self.pod} is waiting: {self.detail}"[:MAX_MESSAGE]


def _trouble(reason: str, pod_name: str, detail: str) -> Trouble:
    return Trouble(reason, detail[:MAX_MESSAGE], pod_name)


def _statuses(pod: dict[str, Any]) -> list[dict[str, Any]]:
    status = pod.get("status") or {}
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def has_started(pod: dict[str, Any]) -> bool:
    """True once the Pod left the waiting room: scheduled, volumes mounted, a container ran.

    Until then its volumes (the source among them) may be what it waits for.
    """
    if (pod.get("status") or {}).get("phase") != "Pending":
        return True
    return any(
        (entry.get("state") or {}).get("running") or (entry.get("state") or {}).get("terminated")
        for entry in _statuses(pod)
    )


def runner_running(pod: dict[str, Any]) -> bool:
    """True while the kubelet reports the command's container (the runner) running."""
    return any(entry.get("name") == RUNNER_CONTAINER and "running" in (entry.get("state") or {})
               for entry in (pod.get("status") or {}).get("containerStatuses") or [])


def _event_time(event: dict[str, Any]) -> str:
    return str(
        event.get("lastTimestamp") or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp") or ""
    )


def pod_trouble(
    pod: dict[str, Any], events: Sequence[dict[str, Any]] = (), missing_source: str | None = None
) -> Trouble | None:
    """What the Pod is stuck on, or None when nothing is known to be wrong.

    `events` are the Pod's own Events; `missing_source` names the job's source ("ConfigMap x")
    when the API said it does not exist. The first rule that applies wins: the missing source (it
    explains the rest), a container that cannot be created, no node, then volume and network
    Events.
    """
    name = (pod.get("metadata") or {}).get("name", "")
    if missing_source is not None:
        return _trouble(SOURCE_NOT_FOUND, name, f"the source {missing_source} does not exist")
    for entry in _statuses(pod):
        waiting = (entry.get("state") or {}).get("waiting") or {}
        reason = _CONTAINER_WAITING.get(waiting.get("reason", ""))
        if reason is not None:
            detail = waiting.get("message") or waiting["reason"]
            return _trouble(reason, name, f"container {entry.get('name')}: {detail}")
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if (condition.get("type"), condition.get("status"), condition.get("reason")) == (
            "PodScheduled", "False", "Unschedulable"
        ):
            return _trouble(UNSCHEDULABLE, name, condition.get("message") or "no node can run it")
    warnings = [e for e in events if e.get("type") == "Warning" and e.get("reason") in _EVENTS]
    if warnings:
        latest = max(warnings, key=_event_time)
        return _trouble(_EVENTS[latest["reason"]], name, latest.get("message") or latest["reason"])
    return None
