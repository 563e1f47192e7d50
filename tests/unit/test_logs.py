"""Diagnostics are JSON lines on stderr with one set of keys; audit lines keep their own schema."""

from __future__ import annotations

import io
import json
import logging

import pytest

from safeagent import audit, logs


@pytest.fixture
def stream():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    out = io.StringIO()
    logs.configure_logging(logging.DEBUG, stream=out)
    yield out
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def lines(out: io.StringIO) -> list[dict]:
    return [json.loads(text) for text in out.getvalue().splitlines()]


def test_every_logger_writes_one_json_line_with_the_core_keys(stream):
    logging.getLogger("safeagent.reconcile").info("pod adopted", extra={"pod": "p-1", "count": 2})
    logging.getLogger("kopf.objects").warning(
        "Handler failed\nwith two lines", extra={"k8s_ref": {"kind": "SandboxJob", "name": "j"}, "k8s_skip": False}
    )
    logging.getLogger("kubernetes.client").debug("value %s interpolated by an old caller", "x")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("safeagent.handlers").exception("startup failed", extra={"odd": object()})
    first, kopf_line, old_style, failure = lines(stream)
    for line in (first, kopf_line, old_style, failure):
        assert set(logs.CORE_KEYS) <= set(line), line
        assert line["timestamp"].endswith("+00:00")
    assert (first["severity"], first["logger"], first["message"], first["pod"], first["count"]) == (
        "info", "safeagent.reconcile", "pod adopted", "p-1", 2,
    )
    assert kopf_line["object"] == {"kind": "SandboxJob", "name": "j"} and "k8s_skip" not in kopf_line
    assert kopf_line["message"] == "Handler failed\nwith two lines" and kopf_line["severity"] == "warn"
    assert old_style["message"] == "value x interpolated by an old caller" and old_style["severity"] == "debug"
    assert failure["severity"] == "error" and "ValueError: boom" in failure["exception"]
    assert failure["odd"].startswith("<object object")


def test_configuring_twice_leaves_one_handler(stream):
    logs.configure_logging(logging.INFO, stream=stream)
    logging.getLogger("safeagent").info("once")
    assert [line["message"] for line in lines(stream)] == ["once"]


def test_audit_lines_stay_bare_json_on_stdout(stream, capsys):
    job = {"kind": "SandboxJob", "metadata": {"name": "j", "namespace": "ns", "uid": "u"}}

    class Events:
        def post_event(self, *args, **kwargs):
            raise audit.KubeError("events refused")

    audit.Auditor(Events()).record(job, audit.POLICY_ALLOWED)
    (line,) = capsys.readouterr().out.splitlines()
    assert set(json.loads(line)) == set(audit.FIELDS)
    (diagnostic,) = lines(stream)  # the Event that failed is a diagnostic, not an audit line
    assert diagnostic["message"] == "event-not-posted" and diagnostic["reason"] == "PolicyAllowed"


def test_kopf_json_lines_use_the_same_core_keys():
    """Kopf's own --log-format=json (its first lines, before ours takes over) fits the schema."""
    from kopf._core.actions.loggers import LogFormat, make_formatter

    record = logging.LogRecord("kopf", logging.INFO, __file__, 1, "starting", None, None)
    kopf_line = json.loads(make_formatter(LogFormat.JSON).format(record))
    assert {"message", "timestamp", "severity"} <= set(kopf_line)
    assert {"message", "timestamp", "severity"} <= set(logs.CORE_KEYS)
