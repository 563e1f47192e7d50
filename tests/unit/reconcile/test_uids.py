"""safeagent.reconcile.uids: a UID of its own for each unfinished sandbox Pod. Pure: the Pods are
dicts as the watch or a listing gives them. The launch and adoption paths that use it run against a
real API server (tests/api/reconcile/test_launch.py, test_pods.py)."""

from __future__ import annotations

import threading

import pytest

from safeagent import builders
from safeagent.config import UidRange
from safeagent.reconcile.uids import SandboxUids
from tests.support.jobs import CONFIG, job

RANGE = UidRange(first=300000, count=1000)
NS = "safeagent-sandbox"


def pod(name: str, uid: int | None, phase: str | None = "Running", containers: int = 2) -> dict:
    """A sandbox-shaped Pod as served: runAsUser on the pod and on each container."""
    context = {} if uid is None else {"runAsUser": uid}
    status = {"phase": phase} if phase else {}
    return {
        "metadata": {"name": name, "namespace": NS},
        "spec": {"securityContext": dict(context),
                 "initContainers": [{"name": "prepare", "securityContext": dict(context)}],
                 "containers": [{"name": f"c{i}", "securityContext": dict(context)} for i in range(containers - 1)]},
        "status": status,
    }


def test_a_pod_gets_the_uid_its_name_hashes_to_when_it_is_free():
    uids = SandboxUids()
    assert uids.reserve(NS, "list-files-8b00ab8651", RANGE) == RANGE.preferred("list-files-8b00ab8651")
    # The same in every process: a hash of the name, not Python's salted hash().
    assert UidRange().preferred("list-files-8b00ab8651") == 205486
    assert RANGE.first <= RANGE.preferred("x") <= RANGE.last


def test_a_retried_launch_gets_the_same_uid_again():
    uids = SandboxUids()
    first = uids.reserve(NS, "a", RANGE)
    assert uids.reserve(NS, "a", RANGE) == first and len(uids.held()) == 1


def test_a_held_uid_goes_to_the_next_free_one_wrapping_round_the_range():
    uids = SandboxUids()
    preferred = RANGE.preferred("b")
    uids.seen(pod("other", preferred))
    assert uids.reserve(NS, "b", RANGE) == (preferred + 1 if preferred < RANGE.last else RANGE.first)
    small = UidRange(first=5000, count=3)
    name = next(n for n in (f"p{i}" for i in range(100)) if small.preferred(n) == small.last)
    uids.seen(pod("holder", small.last))
    assert uids.reserve(NS, name, small) == small.first


def test_the_whole_range_held_means_no_uid_never_a_shared_one():
    small = UidRange(first=5000, count=3)
    uids = SandboxUids()
    got = [uids.reserve(NS, f"p{i}", small) for i in range(3)]
    assert sorted(got) == [5000, 5001, 5002]
    assert uids.reserve(NS, "p3", small) is None
    uids.seen(pod("p1", got[1], phase="Succeeded"))  # one finishes: its UID is free again
    assert uids.reserve(NS, "p3", small) == got[1]


@pytest.mark.parametrize(("phase", "deleted"), [("Succeeded", False), ("Failed", False), ("Running", True),
                                                (None, True)])
def test_a_finished_or_deleted_pod_frees_its_uid(phase, deleted):
    uids = SandboxUids()
    uid = uids.reserve(NS, "a", RANGE)
    uids.seen(pod("a", uid, phase="Pending"))
    assert uids.holds(uid)
    uids.seen(pod("a", uid, phase=phase), deleted=deleted)
    assert not uids.holds(uid) and uids.held() == {}


def test_a_late_event_about_an_older_pod_under_the_name_frees_nothing_of_the_newer_one():
    uids = SandboxUids()
    uids.seen(pod("a", 300007))
    uids.seen(pod("a", 300001), deleted=True)
    assert uids.held() == {(NS, "a"): 300007}


def test_release_frees_a_reservation_whose_pod_was_never_created():
    uids = SandboxUids()
    uid = uids.reserve(NS, "a", RANGE)
    uids.release(NS, "a")
    uids.release(NS, "never-reserved")
    assert not uids.holds(uid)


def test_a_pod_without_one_uid_for_all_its_containers_holds_nothing():
    uids = SandboxUids()
    odd = pod("a", 300005)
    odd["spec"]["containers"][0]["securityContext"]["runAsUser"] = 300006
    uids.seen(odd)
    uids.seen(pod("b", None))
    assert uids.held() == {}


def test_priming_from_a_listing_keeps_the_uids_of_running_pods():
    """After a restart: the Pods listed from the API hold their UIDs before anything is handed out;
    finished ones hold nothing."""
    small = UidRange(first=7000, count=4)
    uids = SandboxUids()
    assert not uids.primed
    uids.prime([pod("old-1", 7000), pod("old-2", 7001, phase="Pending"), pod("done", 7002, phase="Succeeded"),
                pod("before-range-change", 65532)])
    assert uids.primed
    assert {uids.reserve(NS, f"new-{i}", small) for i in range(2)} == {7002, 7003}
    assert uids.reserve(NS, "new-2", small) is None


def test_an_adopted_pod_holds_the_uid_it_runs_as_not_the_one_reserved_for_it():
    uids = SandboxUids()
    reserved = uids.reserve(NS, "a", RANGE)
    other = RANGE.first if reserved != RANGE.first else RANGE.first + 1
    uids.seen(pod("a", other))
    assert uids.held() == {(NS, "a"): other} and not uids.holds(reserved)


def test_concurrent_reservations_from_threads_never_share_a_uid():
    """Many threads at once, over a range barely larger than the Pods: every UID handed out once."""
    small = UidRange(first=10000, count=420)
    uids = SandboxUids()
    results: dict[str, int | None] = {}
    start = threading.Barrier(8)

    def launch(worker: int) -> None:
        start.wait()
        for i in range(50):
            name = f"job-{worker}-{i}"
            results[name] = uids.reserve(NS, name, small)

    threads = [threading.Thread(target=launch, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    given = [uid for uid in results.values() if uid is not None]
    assert len(given) == 400 and len(set(given)) == 400
    assert all(small.first <= uid <= small.last for uid in given)


def test_concurrent_watch_events_and_reservations_keep_the_uids_apart():
    """The watch frees and holds while launches reserve: at the end, no UID has two holders."""
    small = UidRange(first=20000, count=64)
    uids = SandboxUids()
    errors: list[str] = []

    def launcher(worker: int) -> None:
        for i in range(200):
            name = f"w{worker}-{i}"
            uid = uids.reserve(NS, name, small)
            if uid is not None:
                uids.seen(pod(name, uid, phase="Succeeded" if i % 2 else "Running"))

    threads = [threading.Thread(target=launcher, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = list(uids.held().values())
    if len(held) != len(set(held)):
        errors.append("a UID held twice")
    assert not errors and len(held) <= small.count


def test_the_builder_runs_both_containers_and_the_pod_as_the_reserved_uid():
    uids = SandboxUids()
    name = builders.child_name("list-files", job().uid)
    uid = uids.reserve(NS, name, CONFIG.sandbox.uidRange)
    built = builders.build_sandbox_pod(job(), ["ls"], 64, CONFIG, run_as_user=uid)
    assert builders.run_as_user_of(built) == uid
    uids.seen(built | {"metadata": {**built["metadata"], "namespace": NS}})
    assert uids.held() == {(NS, name): uid}
