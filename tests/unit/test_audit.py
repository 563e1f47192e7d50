"""The audit trail: one fixed JSON schema per line, Events with stable reasons, never fatal."""

from __future__ import annotations

import json
import logging

from safeagent import audit
from safeagent.kube import Unavailable

JOB = {"kind": "SandboxJob", "metadata": {"name": "j", "namespace": "ns", "uid": "u"}}


class Events:
    def __init__(self, error=None):
        self.posted = []
        self.error = error

    def post_event(self, involved, reason, message, warning=False):
        if self.error:
            raise self.error
        self.posted.append((reason, message, warning))


def test_line_has_every_field_and_event_is_posted(capsys):
    audit.configure_logging()
    events = Events()
    audit.Auditor(events).record(JOB, audit.POLICY_DENIED, argv=["curl"], message="no")
    line = json.loads(capsys.readouterr().out.strip())
    assert set(line) == set(audit.FIELDS)
    assert (line["event"], line["name"], line["uid"], line["argv"], line["exitCode"]) == (
        "PolicyDenied", "j", "u", ["curl"], None,
    )
    assert line["schema"] == audit.SCHEMA and line["time"].endswith("+00:00")
    assert events.posted == [("PolicyDenied", "no", True)]


def test_event_failure_is_logged_not_raised(caplog):
    logger = logging.getLogger("test.audit.quiet")
    with caplog.at_level(logging.WARNING):
        record = audit.Auditor(Events(Unavailable("down")), logger).record(JOB, audit.COMMAND_FINISHED)
    assert record.event == "CommandFinished"
    assert "event-not-posted" in caplog.text


def test_reasons_are_camel_case():
    reasons = [value for name, value in vars(audit).items() if name.isupper() and isinstance(value, str)
               and name not in ("AUDIT_LOGGER", "SCHEMA")]
    assert len(reasons) >= 9
    for reason in reasons:
        assert reason[0].isupper() and reason.isalnum(), reason


def test_the_requester_recorded_by_the_cluster_is_in_every_line_and_event(capsys):
    """Issue 17: the job's (or Approval's) spec.requester, written by the admission policy."""
    audit.configure_logging()
    events = Events()
    job = {**JOB, "spec": {"requester": {"username": "system:serviceaccount:agents:coder", "groups": []}}}
    audit.Auditor(events).record(job, audit.POLICY_ALLOWED, message="allowed")
    audit.Auditor(events).record(JOB, audit.POLICY_ALLOWED, message="allowed")  # none recorded (yet)
    first, second = (json.loads(line) for line in capsys.readouterr().out.strip().splitlines())
    assert first["requester"] == "system:serviceaccount:agents:coder" and second["requester"] is None
    assert events.posted == [("PolicyAllowed", "allowed (requester system:serviceaccount:agents:coder)", False),
                             ("PolicyAllowed", "allowed", False)]
    assert audit.requester_of({"spec": {"requester": "not an object"}}) is None
