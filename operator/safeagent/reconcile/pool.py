"""The warm sandbox Pods as the operator's Pod watch last saw them (docs/warm-pool.md; the pool's
filling and a job's taking are in warm.py)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

from safeagent import builders
from safeagent.models import NetworkProfile
from safeagent.sandbox import channel

_FINISHED = frozenset({"Succeeded", "Failed"})


@dataclasses.dataclass(frozen=True)
class WarmPod:
    """One warm Pod as last seen."""

    namespace: str
    name: str
    uid: str
    profile: str
    resource_version: str
    ip: str | None
    token: str | None
    ready: bool  # proved and listening (its startup probe found the ready file)
    claimed: bool  # a job's (it carries the job's UID)
    finished: bool

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name


def warm_pod_of(pod: dict[str, Any]) -> WarmPod | None:
    """The warm Pod `pod` is, or None if it is not one."""
    metadata = pod.get("metadata") or {}
    labels = metadata.get("labels") or {}
    if labels.get(builders.LABEL_WARM) != "true":
        return None
    status = pod.get("status") or {}
    conditions = {condition.get("type"): condition.get("status") for condition in status.get("conditions") or []}
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    token = next((env.get("value") for env in containers[0].get("env") or [] if env.get("name") == channel.TOKEN_ENV),
                 None)
    return WarmPod(
        namespace=metadata.get("namespace", ""), name=metadata.get("name", ""), uid=metadata.get("uid", ""),
        profile=labels.get(builders.LABEL_PROFILE, ""), resource_version=metadata.get("resourceVersion", ""),
        ip=status.get("podIP"), token=token,
        ready=status.get("phase") == "Running" and conditions.get("Ready") == "True",
        claimed=builders.LABEL_JOB_UID in labels, finished=status.get("phase") in _FINISHED,
    )


class WarmPool:
    """The warm Pods as the Pod watch last saw them, and which of them this process is taking. Thread-safe."""

    def __init__(self) -> None:
        self._pods: dict[tuple[str, str], WarmPod] = {}
        self._taking: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.primed = False  # the first fill lists the namespaces (the watch may not have yet)
        self.changed = threading.Event()  # set when the pool may need filling
        self._last_take = float("-inf")  # time.monotonic() of the last start_taking

    def seen(self, pod: dict[str, Any], deleted: bool = False) -> None:
        warm = warm_pod_of(pod)
        if warm is None:
            return
        with self._lock:
            before = self._pods.get(warm.key)
            if deleted:
                self._pods.pop(warm.key, None)
                self._taking.discard(warm.key)
            else:
                self._pods[warm.key] = warm
        if deleted or warm.claimed or warm.finished or before is None or before.ready != warm.ready:
            self.changed.set()

    def _unused(self, namespace: str, profile: str) -> list[WarmPod]:
        return [pod for pod in self._pods.values()
                if pod.namespace == namespace and pod.profile == profile and not pod.claimed
                and not pod.finished and pod.key not in self._taking]

    def ready(self, namespace: str, profile: str) -> list[WarmPod]:
        """Ready Pods nobody has claimed or is claiming."""
        with self._lock:
            return [pod for pod in self._unused(namespace, profile) if pod.ready and pod.ip and pod.token]

    def unused(self, namespace: str, profile: str) -> int:
        """Pods that are or will be ready and nobody has claimed: what counts towards the pool's size."""
        with self._lock:
            return len(self._unused(namespace, profile))

    def starting(self, namespace: str) -> int:
        """Unused Pods of any profile that are not ready yet: the ones still starting."""
        with self._lock:
            return sum(not pod.ready for profile in NetworkProfile for pod in self._unused(namespace, profile.value))

    def surplus(self, namespace: str, size_of: Callable[[NetworkProfile], int]) -> list[WarmPod]:
        """Unclaimed Pods beyond each profile's size (`size_of`), the ones not ready yet first."""
        with self._lock:
            extra: list[WarmPod] = []
            for profile in NetworkProfile:
                pods = sorted(self._unused(namespace, profile.value), key=lambda pod: (pod.ready, pod.name))
                extra += pods[: max(0, len(pods) - size_of(profile))]
            return extra

    def ended_unused(self, namespace: str) -> list[WarmPod]:
        with self._lock:
            return [pod for pod in self._pods.values()
                    if pod.namespace == namespace and pod.finished and not pod.claimed]

    def start_taking(self, pod: WarmPod) -> bool:
        """Mark `pod` as being claimed by this process; False if it already is."""
        with self._lock:
            if pod.key in self._taking:
                return False
            self._taking.add(pod.key)
            self._last_take = time.monotonic()
            return True

    def since_take(self) -> float:
        """Seconds since a job last began to take a warm Pod (infinite if none ever did)."""
        with self._lock:
            return time.monotonic() - self._last_take

    def done_taking(self, pod: WarmPod) -> None:
        with self._lock:
            self._taking.discard(pod.key)
        self.changed.set()
