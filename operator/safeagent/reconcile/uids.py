"""A UID of its own for every sandbox Pod: which UIDs of `sandbox.uidRange` the operator's
unfinished sandbox Pods hold, and which one the next Pod gets.

Why: per-user kernel limits (inotify instances and watches, RLIMIT_NPROC, RLIMIT_MSGQUEUE) count
per UID on a node. Under one shared UID, one sandbox that takes all 128 inotify instances leaves
the next sandbox on its node none (docs/threat-model.md, "Each sandbox Pod has a UID of its own").

What holds a UID, keyed by the Pod's namespace and name (known before the Pod exists):
  - a reservation at launch, made before the Pod is created (`reserve`), so that two jobs
    launched at once never get the same UID; a retried launch of the same Pod gets the same one;
  - a Pod the sandbox Pod watch reports (`seen`), with the runAsUser of its spec; an adopted Pod
    (created before a restart) likewise;
  - after a restart, the sandbox Pods listed from the API before the first reservation (`prime`).
A Pod that has Succeeded or Failed, or is gone, frees its UID: its processes have ended, and with
them what they counted against the UID's limits. The job's final step frees what its Pods held
(`release`) in case a Pod was never created or the watch missed its end.

The choice is deterministic: the UID the Pod's name hashes to (UidRange.preferred), else the next
free one after it (linear probing, wrapping round). With the whole range held the launch waits
(None here, a TransientFailure for the caller): two Pods never share a UID.

Thread-safe (Kopf runs handlers in a thread pool, the watch in another thread).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from safeagent import builders
from safeagent.config import UidRange

FINISHED = frozenset({"Succeeded", "Failed"})

PodKey = tuple[str, str]  # (namespace, name)


class SandboxUids:
    """The UIDs held by the operator's unfinished sandbox Pods (see the module's docstring)."""

    def __init__(self) -> None:
        self._by_pod: dict[PodKey, int] = {}
        self._holders: dict[int, set[PodKey]] = {}
        self._primed = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ what is held

    def _hold(self, key: PodKey, uid: int) -> None:
        old = self._by_pod.get(key)
        if old == uid:
            return
        if old is not None:
            self._drop(key, old)
        self._by_pod[key] = uid
        self._holders.setdefault(uid, set()).add(key)

    def _drop(self, key: PodKey, uid: int) -> None:
        del self._by_pod[key]
        holders = self._holders.get(uid, set())
        holders.discard(key)
        if not holders:
            self._holders.pop(uid, None)

    def held(self) -> dict[PodKey, int]:
        """Every Pod that holds a UID, and its UID (a copy)."""
        with self._lock:
            return dict(self._by_pod)

    def holds(self, uid: int) -> bool:
        with self._lock:
            return uid in self._holders

    # ------------------------------------------------------------------ fed by the Pods

    def _seen(self, pod: dict[str, Any], deleted: bool) -> None:
        metadata = pod.get("metadata") or {}
        namespace, name = metadata.get("namespace"), metadata.get("name")
        if not namespace or not name:
            return
        key = (str(namespace), str(name))
        uid = builders.run_as_user_of(pod)
        finished = deleted or (pod.get("status") or {}).get("phase") in FINISHED
        if finished:
            # Only the UID this Pod ran as: a late event about an older Pod under the same name
            # must not free what the newer one holds.
            if key in self._by_pod and (uid is None or self._by_pod[key] == uid):
                self._drop(key, self._by_pod[key])
        elif uid is not None:
            self._hold(key, uid)

    def seen(self, pod: dict[str, Any], deleted: bool = False) -> None:
        """A sandbox Pod as the watch (or a listing, or an adoption) shows it: unfinished, it holds
        the UID of its spec; finished or `deleted`, it frees it."""
        with self._lock:
            self._seen(pod, deleted)

    @property
    def primed(self) -> bool:
        with self._lock:
            return self._primed

    def prime(self, pods: Iterable[dict[str, Any]]) -> None:
        """The sandbox Pods that exist, as listed from the API (after a restart, before the first
        reservation): every unfinished one holds its UID."""
        with self._lock:
            for pod in pods:
                self._seen(pod, deleted=False)
            self._primed = True

    # ------------------------------------------------------------------ handed out at launch

    def reserve(self, namespace: str, name: str, uid_range: UidRange) -> int | None:
        """The UID for the Pod `name` about to be created: the one it already holds (a retried
        launch), else the one its name hashes to, else the next free one; None: all are held."""
        key = (namespace, name)
        with self._lock:
            held = self._by_pod.get(key)
            if held is not None and held in uid_range:
                return held
            preferred = uid_range.preferred(name)
            for step in range(uid_range.count):
                uid = uid_range.first + (preferred - uid_range.first + step) % uid_range.count
                if uid not in self._holders:
                    self._hold(key, uid)
                    return uid
            return None

    def release(self, namespace: str, name: str) -> None:
        """The Pod `name` holds nothing any more (its job is final and its Pods are deleted)."""
        key = (namespace, name)
        with self._lock:
            if key in self._by_pod:
                self._drop(key, self._by_pod[key])
