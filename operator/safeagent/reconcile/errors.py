"""One error taxonomy: the type of an error decides whether the job is retried, nothing else.

  PermanentFailure   never retried. The job's status already says why (a step that raises it may
                     carry the final status to record first, `final`). Kopf: PermanentError.
  TransientFailure   retried after `delay` seconds by a fresh, level-based pass. Kopf:
                     TemporaryError. Past the job's deadline (deadlines.give_up_at) a transient
                     failure becomes a final Failed/GaveUp, so nothing retries forever.

An API error (safeagent.kube) that a step does not handle itself is mapped here, once, by type:

  Invalid                      the API refused a request we built (admission, RBAC, schema):
                               retrying the same request cannot help -> Failed/ApiRefused, permanent
  Unavailable, Conflict,       the cluster hiccuped or moved under us (an object changed, vanished
  NotFound, AlreadyExists      or appeared between two calls) -> transient: the next pass reads the
                               level again and decides anew

handlers.py maps the two classes onto Kopf's and counts them; no other place decides about retries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from safeagent.kube import Invalid, KubeError

if TYPE_CHECKING:
    from safeagent.reconcile.status import Update

RETRY_DELAY_SECONDS = 10.0


class ReconcileError(Exception):
    """Base of the two outcomes a reconcile pass can end with besides returning a phase."""


class PermanentFailure(ReconcileError):
    """Input that will never work. `final`, when given, is the status recorded before raising."""

    def __init__(self, reason: str, message: str, final: Update | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.final = final


class TransientFailure(ReconcileError):
    """Try again later (API unavailable, policy file unreadable, a source not there yet ...)."""

    def __init__(self, message: str, delay: float = RETRY_DELAY_SECONDS) -> None:
        super().__init__(message)
        self.delay = delay


def is_refusal(error: KubeError) -> bool:
    """True for an API error that retrying the same request cannot cure (see the table above)."""
    return isinstance(error, Invalid)
