"""Prometheus metrics derived from the audit stream, sandbox Pods, the job watch and API calls."""

from __future__ import annotations

import urllib.request

import kopf
import pytest

from safeagent import audit, handlers, metrics, reconcile
from safeagent.kube import NotFound, operation

CREATED = "2026-01-01T00:00:00Z"


class Events:
    def post_event(self, involved, reason, message, warning=False):
        pass


def job(status=None, uid="job-1"):
    return {
        "kind": "SandboxJob",
        "metadata": {"name": "j", "namespace": "ns", "uid": uid, "creationTimestamp": CREATED},
        "status": status or {},
    }


def pod(runner_state, uid="pod-1", job_uid="job-1"):
    return {
        "metadata": {"uid": uid, "creationTimestamp": "2026-01-01T00:00:10Z",
                     "labels": {"safeagent.ca/job-uid": job_uid}},
        "status": {"containerStatuses": [{"name": "runner", "state": runner_state}]},
    }


@pytest.fixture
def setup(monkeypatch):
    registry = metrics.Metrics()
    auditor = audit.Auditor(Events(), observers=[registry.observe_record])
    clock = iter(["2026-01-01T00:00:02.000+00:00", "2026-01-01T00:00:05.000+00:00"])
    monkeypatch.setattr(audit, "_utc_now", lambda: next(clock, "2026-01-01T00:00:50.000+00:00"))
    return registry, auditor


def value(registry, name, **labels):
    return registry.registry.get_sample_value(name, labels) or 0.0


def test_an_allowed_job_moves_decisions_phases_and_every_stage(setup):
    registry, auditor = setup
    auditor.record(job(), audit.POLICY_ALLOWED, phase="Pending", decision="allow", reason="allowed")
    auditor.record(job({"decidedAt": "2026-01-01T00:00:02Z"}), audit.SANDBOX_LAUNCHED, phase="Running")
    registry.observe_sandbox_pod(pod({"running": {"startedAt": "2026-01-01T00:00:15Z"}}))
    finished = {"terminated": {"startedAt": "2026-01-01T00:00:15Z", "finishedAt": "2026-01-01T00:00:45Z", "exitCode": 0}}
    registry.observe_sandbox_pod(pod(finished))
    registry.observe_sandbox_pod(pod(finished))  # the same Pod seen again counts once
    auditor.record(
        job({"decidedAt": "2026-01-01T00:00:02Z", "startTime": "2026-01-01T00:00:05Z"}),
        audit.COMMAND_FINISHED, phase="Succeeded", decision="allow", reason="Completed",
    )
    assert value(registry, "safeagent_decisions_total", verdict="allow", reason="allowed") == 1
    assert value(registry, "safeagent_jobs_finished_total", phase="Succeeded", reason="Completed") == 1
    assert value(registry, "safeagent_audit_events_total", kind="SandboxJob", event="SandboxLaunched") == 1
    expected = {"decision": 2, "launch": 5, "run": 30, "result": 5, "total": 50}
    for stage, seconds in expected.items():
        assert value(registry, "safeagent_stage_duration_seconds_count", stage=stage) == 1, stage
        assert value(registry, "safeagent_stage_duration_seconds_sum", stage=stage) == seconds, stage
    assert value(registry, "safeagent_stage_duration_seconds_count", stage="approval") == 0


def test_a_denied_job_is_one_decision_and_one_final_phase(setup):
    registry, auditor = setup
    auditor.record(job(), audit.POLICY_DENIED, phase="Denied", decision="deny", reason="shell_metacharacter")
    assert value(registry, "safeagent_decisions_total", verdict="deny", reason="shell_metacharacter") == 1
    assert value(registry, "safeagent_jobs_finished_total", phase="Denied", reason="shell_metacharacter") == 1
    assert value(registry, "safeagent_stage_duration_seconds_sum", stage="total") == 2


def test_approval_wait_is_timed_and_approval_records_do_not_count_as_jobs(setup):
    registry, auditor = setup
    auditor.record(job(), audit.APPROVAL_REQUESTED, phase="AwaitingApproval",
                   decision="require_approval", reason="approval_required")
    approval = {"kind": "Approval", "metadata": {"name": "a", "namespace": "ns", "uid": "a-1"}}
    auditor.record(approval, audit.APPROVAL_DENIED, phase="Denied")  # the Approval's own record
    auditor.record(job({"approvalRequestedAt": "2026-01-01T00:00:02Z", "decidedAt": "2026-01-01T00:00:02Z"}),
                   audit.APPROVAL_DENIED, phase="Denied", decision="require_approval", reason="ApprovalDenied")
    assert value(registry, "safeagent_decisions_total", verdict="require_approval", reason="approval_required") == 1
    assert value(registry, "safeagent_jobs_finished_total", phase="Denied", reason="ApprovalDenied") == 1
    assert value(registry, "safeagent_stage_duration_seconds_sum", stage="approval") == 48
    assert value(registry, "safeagent_audit_events_total", kind="Approval", event="ApprovalDenied") == 1


def test_a_decision_and_a_failure_in_one_reconcile_count_one_decision(setup):
    registry, auditor = setup
    auditor.record(job(), audit.POLICY_ALLOWED, phase="Pending", decision="allow", reason="allowed")
    auditor.record(job(), audit.JOB_FAILED, phase="Failed", decision="allow", reason="ApiRefused")
    assert value(registry, "safeagent_decisions_total", verdict="allow", reason="allowed") == 1
    assert value(registry, "safeagent_jobs_finished_total", phase="Failed", reason="ApiRefused") == 1


def test_reason_labels_stay_bounded(setup):
    registry, auditor = setup
    for index in range(metrics.MAX_REASONS + 5):
        auditor.record(job(uid=f"u{index}"), audit.JOB_FAILED, phase="Failed", reason=f"Reason{index}")
    auditor.record(job(uid="odd"), audit.JOB_FAILED, phase="Failed", reason="not a {code}")
    assert value(registry, "safeagent_jobs_finished_total", phase="Failed", reason="other") == 6


def test_an_observer_that_fails_costs_neither_the_line_nor_the_caller(capsys, caplog):
    audit.configure_logging()

    def broken(record, involved):
        raise RuntimeError("bug")

    record = audit.Auditor(Events(), observers=[broken]).record(job(), audit.POLICY_ALLOWED)
    assert record.event == "PolicyAllowed"
    assert '"event":"PolicyAllowed"' in capsys.readouterr().out
    assert "audit observer failed" in caplog.text


def test_active_jobs_follow_the_watch():
    registry = metrics.Metrics()
    registry.track_job("ns", "a", None)
    registry.track_job("ns", "b", "Running")
    registry.track_job("ns", "c", "AwaitingApproval")
    registry.track_job("ns", "c", "Succeeded")
    registry.track_job("ns", "a", "Pending")
    registry.track_job("ns", "b", "Running", deleted=True)
    assert value(registry, "safeagent_active_jobs", phase="Pending") == 1
    assert value(registry, "safeagent_active_jobs", phase="Running") == 0
    assert value(registry, "safeagent_active_jobs", phase="New") == 0
    assert value(registry, "safeagent_active_jobs", phase="AwaitingApproval") == 0


def test_api_calls_are_counted_without_object_names():
    assert operation("patch sandboxjobs/my-job/status") == ("patch", "sandboxjobs/status")
    assert operation("get pods/p-1/log") == ("get", "pods/log")
    assert operation("create events") == ("create", "events")
    registry = metrics.Metrics()
    registry.observe_api_call("get", "pods", None)
    registry.observe_api_call("get", "pods", NotFound("gone", 404))
    assert value(registry, "safeagent_kube_requests_total", verb="get", resource="pods") == 2
    assert value(registry, "safeagent_kube_request_errors_total", verb="get", resource="pods", error="NotFound") == 1


def test_the_handlers_count_retries_and_permanent_failures(monkeypatch):
    registry = metrics.Metrics()
    monkeypatch.setattr(handlers, "METRICS", registry)
    with pytest.raises(kopf.TemporaryError):
        with handlers._kopf_errors("SandboxJob"):
            raise reconcile.TransientFailure("API down")
    with pytest.raises(kopf.PermanentError):
        with handlers._kopf_errors("Approval"):
            raise reconcile.PermanentFailure("ApprovalInvalid", "bad")
    assert value(registry, "safeagent_reconcile_retries_total", kind="SandboxJob") == 1
    assert value(registry, "safeagent_reconcile_failures_total", kind="Approval") == 1


def test_metrics_are_served_over_http():
    registry = metrics.Metrics()
    registry.observe_api_call("get", "pods", None)
    server, thread = metrics.serve(registry, 0, "127.0.0.1")
    try:
        port = server.server_port
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert 'safeagent_kube_requests_total{resource="pods",verb="get"} 1.0' in text
    assert 'safeagent_stage_duration_seconds_bucket{le="86400.0",stage="approval"} 0.0' in text
    assert "safeagent_active_jobs" in text


def test_the_wait_for_the_egress_proof_is_a_histogram_by_outcome(setup):
    registry, auditor = setup
    auditor.record(job(uid="a"), audit.COMMAND_FINISHED, phase="Succeeded", reason="Completed",
                   egressCheckMs=4, egressProof="refusal")
    auditor.record(job(uid="b"), audit.EGRESS_NOT_ENFORCED, phase="Failed", reason="EgressNotEnforced",
                   egressCheckMs=30_000)
    auditor.record(job(uid="c"), audit.POLICY_DENIED, phase="Denied", reason="denied")  # no Pod, no wait
    name = "safeagent_egress_proof_wait_seconds"
    assert value(registry, f"{name}_count", outcome="refusal") == 1
    assert value(registry, f"{name}_bucket", outcome="refusal", le="0.005") == 1
    assert value(registry, f"{name}_count", outcome="not_proven") == 1
    assert value(registry, f"{name}_sum", outcome="not_proven") == 30
    assert value(registry, f"{name}_count", outcome="silence") == 0


def test_pending_pods_follow_the_pod_watch():
    now = [0.0]
    pending = reconcile.PendingPods(horizon=100, clock=lambda: now[0])
    pending.seen("a", "Pending")
    pending.seen("b", None)
    pending.seen("c", "Running")
    pending.seen("a", "Running")
    assert pending.count() == 3
    pending.seen("b", "Succeeded")
    pending.seen("c", "Running", deleted=True)
    pending.seen("d", "Failed")
    assert pending.count() == 1
    now[0] = 150.0  # "a" was first seen at 0: past the horizon, a missed deletion stops counting
    pending.seen("e", "Pending")
    assert pending.count() == 1
