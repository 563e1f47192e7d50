"""reconcile/deadlines.py on a real API server: every job ends, by its own timeout, the launch
grace, or giving up on an API that keeps failing."""

from __future__ import annotations

import pytest

from safeagent import reconcile
from safeagent.kube import Unavailable


def test_pod_past_its_deadline_times_out(world):
    world.add_job("slow", "ls", timeoutSeconds=10)
    world.run("slow")
    world.clock.advance(10 + world.ctx.config.sandbox.launchGraceSeconds + 1)
    assert world.run("slow") == "Failed"
    assert world.status("slow")["reason"] == "Timeout" and world.pods == {}


def test_deadline_exceeded_pod_without_record_times_out(world):
    world.add_job("slow", "ls", timeoutSeconds=10)
    world.run("slow")
    world.finish_pod(world.status("slow")["podName"], None, phase="Failed", reason="DeadlineExceeded")
    assert world.run("slow") == "Failed"
    assert world.status("slow")["reason"] == "Timeout"


def test_api_trouble_is_retried_then_given_up(world):
    world.add_job("list", "ls")
    world.kube.fail("apply_network_policy", Unavailable("apiserver down"), times=100)
    with pytest.raises(reconcile.TransientFailure):
        world.run("list")
    assert world.status("list")["phase"] == "Pending"
    world.clock.advance(3600)
    with pytest.raises(reconcile.PermanentFailure):
        world.run("list")
    assert (world.status("list")["phase"], world.status("list")["reason"]) == ("Failed", "GaveUp")
    assert world.kube.pods_created == 0


def test_no_canary_no_launch_then_give_up(world):
    """The chart's canary has no ready Pod (its EndpointSlice names none): nothing launches."""
    canary = world.stage.config_data["egressCheck"]["canary"]
    world.ctx.config = world.config(egressCheck={"canary": {**canary, "service": "no-such-canary"}})
    world.add_job("list", "ls")
    with pytest.raises(reconcile.TransientFailure):
        world.run("list")
    assert world.kube.pods_created == 0
    world.clock.advance(3600)
    with pytest.raises(reconcile.PermanentFailure):
        world.run("list")
    assert world.status("list")["reason"] == "GaveUp" and world.kube.pods_created == 0
