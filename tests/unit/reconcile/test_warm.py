"""Which runner log line ends a warm job early (reconcile.warm.is_final_record), and what the pool
makes of a Pod it sees (reconcile.pool.warm_pod_of)."""

from __future__ import annotations

import json

import pytest

from safeagent import builders
from safeagent.reconcile.pool import WarmPool, warm_pod_of
from safeagent.reconcile.warm import is_final_record
from safeagent.sandbox import channel, contract, runner


def _line(record: dict) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


@pytest.mark.parametrize(("line", "final"), [
    pytest.param(_line(runner.no_result(None)), True, id="nothing-ran"),
    pytest.param(_line({**runner.no_result(None), "error": contract.LISTING_UNFINISHED}), False, id="commands-part"),
    pytest.param(_line(runner.no_result("bad spec")), True, id="runner-error"),
    pytest.param(b'{"kind":"safeagent.ca/prepare-result","ok":true}', False, id="preparation-record"),
    pytest.param(_line(runner.no_result(None))[:-5], False, id="cut-mid-line"),
    pytest.param(b"some diagnostics", False, id="not-a-record"),
])
def test_only_the_runners_last_record_ends_a_warm_job_early(line, final):
    assert is_final_record(line) is final


def _pod(phase="Running", ready=True, claimed=False, labels=None) -> dict:
    metadata_labels = {builders.LABEL_WARM: "true", builders.LABEL_PROFILE: "none", **(labels or {})}
    if claimed:
        metadata_labels[builders.LABEL_JOB_UID] = "u"
    return {
        "metadata": {"name": "w", "namespace": "ns", "uid": "p", "resourceVersion": "7", "labels": metadata_labels},
        "spec": {"containers": [{"env": [{"name": channel.TOKEN_ENV, "value": "t" * 64}]}]},
        "status": {"phase": phase, "podIP": "10.0.0.1",
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_a_pod_without_the_warm_label_is_not_in_the_pool():
    pod = _pod()
    del pod["metadata"]["labels"][builders.LABEL_WARM]
    assert warm_pod_of(pod) is None


@pytest.mark.parametrize(("pod", "ready"), [
    pytest.param(_pod(), True, id="ready"),
    pytest.param(_pod(ready=False), False, id="still-proving"),
    pytest.param(_pod(claimed=True), False, id="claimed"),
    pytest.param(_pod(phase="Succeeded"), False, id="ended"),
])
def test_only_a_ready_unclaimed_running_pod_can_be_taken(pod, ready):
    pool = WarmPool()
    pool.seen(pod)
    assert bool(pool.ready("ns", "none")) is ready
    assert pool.ready("ns", "git-read") == []


def test_a_pod_being_taken_is_offered_to_nobody_else_and_a_deleted_one_goes():
    pool = WarmPool()
    pool.seen(_pod())
    (taken,) = pool.ready("ns", "none")
    assert pool.start_taking(taken) and not pool.start_taking(taken)
    assert pool.ready("ns", "none") == [] and pool.unused("ns", "none") == 0
    pool.done_taking(taken)
    assert pool.unused("ns", "none") == 1
    pool.seen(_pod(), deleted=True)
    assert pool.unused("ns", "none") == 0
