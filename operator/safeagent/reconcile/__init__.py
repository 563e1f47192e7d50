"""Observe -> decide -> converge, for SandboxJobs and Approvals. No Kopf in here.

`reconcile_job` (ensure.py) is the one ensure-function behind every SandboxJob handler (create,
resume, the periodic timer, and nudges from Pod and Approval events). It always starts from a
fresh GET of the job, so it is level-based: whatever happened before (a crash, a lost event, a
duplicate call), it looks at the stored status and the children, and takes the next step:

  no decision        -> decide.py: policy decision; deny -> Denied (no Pod ever)
  require_approval   -> approval.py: pin the source's content (source.py), create the Approval
                        (deterministic name, owned by the job) -> AwaitingApproval
  awaiting approval  -> approval.py: Approved and bound to this UID + spec hash + argv + source
                        digest -> launch; Denied -> Denied; too old -> Expired / Failed
  allowed/approved   -> launch.py: NetworkPolicy of the profile, then the Pod under a name derived
                        from the UID, running as a UID of its own (uids.py; AlreadyExists = our
                        Pod from before a restart: adopt it) -> Running
  running            -> observe.py: a Pod that has not started says what it waits for
                        (waiting.py, trouble.py; a missing source ends the job SourceNotFound);
                        a finished Pod: read the runner's record, judge it (outcome.py), copy it
                        into status, delete the Pod; preparation refused the source -> Rejected
  final phase        -> make sure no Pod is left

Beside the per-job passes, retention.py sweeps each namespace now and then: final jobs past
`retention.finishedJobSeconds` are recorded (JobExpired) and deleted, uploaded source objects no
job refers to any more are removed after `retention.sourceGraceSeconds`.

Each step returns a typed `status.Update`; `job.Job.apply` is the one place that writes it (one
status merge patch, then one audit record). Callers must serialise calls for one job
(handlers.py holds a lock per job); two operators must not run at once.

Which passes run (one at a time per job, none for a final job, the timer's only for a quiet one,
a Pod's report only when it changes what a pass reads): passes.py, used by handlers.py.

Errors: errors.py, one taxonomy deciding retry by type (PermanentFailure, TransientFailure).
"""

from safeagent.models import SandboxJob
from safeagent.reconcile.approval import approval_mismatch, reconcile_approval, record_approval_decision
from safeagent.reconcile.context import Context, PendingPods
from safeagent.reconcile.deadlines import parse_time, timestamp
from safeagent.reconcile.ensure import reconcile_job
from safeagent.reconcile.errors import PermanentFailure, ReconcileError, TransientFailure
from safeagent.reconcile.outcome import Outcome, outcome_of
from safeagent.reconcile.passes import JobPasses, PodChanges
from safeagent.reconcile.pool import WarmPool
from safeagent.reconcile.retention import Retention
from safeagent.reconcile.status import STATUS_STREAM_BUDGET, fit_for_status
from safeagent.reconcile.uids import SandboxUids
from safeagent.reconcile.warm import fill as fill_warm_pools
from safeagent.reconcile.warm import refill_wait as warm_refill_wait

__all__ = [
    "STATUS_STREAM_BUDGET",
    "Context",
    "JobPasses",
    "Outcome",
    "PendingPods",
    "PermanentFailure",
    "PodChanges",
    "ReconcileError",
    "Retention",
    "SandboxJob",
    "SandboxUids",
    "TransientFailure",
    "WarmPool",
    "approval_mismatch",
    "fill_warm_pools",
    "fit_for_status",
    "outcome_of",
    "parse_time",
    "reconcile_approval",
    "reconcile_job",
    "record_approval_decision",
    "timestamp",
    "warm_refill_wait",
]
