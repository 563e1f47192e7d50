"""One logging setup for the operator: diagnostics as JSON lines on stderr, audit on stdout.

Every diagnostic line (safeagent's own, Kopf's, the API client's) is one JSON object on standard
error with these keys, always present:

  timestamp  when, UTC, RFC 3339 with milliseconds
  severity   debug, info, warn, error or fatal (Kopf's words, so its own JSON lines match)
  logger     the logger's name (safeagent.reconcile, kopf.objects, ...)
  message    what happened, in words; values go into fields, not into the sentence

and, where they apply: `object` (the Kubernetes object a Kopf line is about: apiVersion, kind,
name, uid, namespace), `exception` (the traceback as text) and the fields the line was logged with
(`extra={...}`). Values that are not JSON become strings.

The audit trail is not diagnostics: its lines keep their own schema on standard output
(safeagent.audit). Kopf's `--log-format=json` makes Kopf's first lines JSON too, before the
operator's startup handler calls `configure_logging` and this formatter takes over.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Any

from safeagent import audit

_SEVERITY = ((logging.DEBUG, "debug"), (logging.INFO, "info"), (logging.WARNING, "warn"), (logging.ERROR, "error"))
# Attributes every LogRecord has, and Kopf's own carriers: none of them is a field of the line.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName", "k8s_ref", "k8s_skip", "settings",
}
CORE_KEYS = ("timestamp", "severity", "logger", "message")


def severity(level: int) -> str:
    for limit, word in _SEVERITY:
        if level <= limit:
            return word
    return "fatal"


class JsonFormatter(logging.Formatter):
    """A LogRecord as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        line: dict[str, Any] = {
            "timestamp": moment.isoformat(timespec="milliseconds"),
            "severity": severity(record.levelno),
            "logger": record.name,
            "message": record.getMessage(),
        }
        reference = getattr(record, "k8s_ref", None)
        if isinstance(reference, dict):
            line["object"] = reference
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        return json.dumps(line, default=str, ensure_ascii=False, separators=(",", ":"))


class _SafeagentHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so a second call replaces it."""


def configure_logging(level: int = logging.INFO, stream: Any = None) -> None:
    """Diagnostics: one JSON handler on the root logger (others removed); audit lines: stdout."""
    handler = _SafeagentHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for previous in list(root.handlers):
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level)
    audit.configure_logging(logging.INFO)
