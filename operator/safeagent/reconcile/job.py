"""A job as one reconcile pass sees it, and the one place its status is written.

`Job` holds a fresh GET of the SandboxJob, parsed (spec and status typed), and `Job.apply` turns a
step's `Update` into one status merge patch followed by one audit record: the record is written
only after the change it describes is stored, so the log never claims what the cluster does not
show. After a final update the job's Pods are deleted (only the ones it launched, by UID).
"""

from __future__ import annotations

from typing import Any

from safeagent import builders
from safeagent.kube import Conflict, NotFound
from safeagent.models import TERMINAL_JOB_PHASES, JobPhase, SandboxJob
from safeagent.reconcile.context import Context
from safeagent.reconcile.deadlines import timestamp
from safeagent.reconcile.status import Update, patch_of


class Job:
    """A fresh job body, its typed model and status, and how to change them."""

    def __init__(self, ctx: Context, body: dict[str, Any], model: SandboxJob) -> None:
        self.ctx = ctx
        self.body = body
        self.model = model
        self.status = model.status
        # The Pod this pass created (not one adopted), as the API answered: the same pass observes
        # it without reading it again (observe.py).
        self.launched: dict[str, Any] | None = None

    @property
    def namespace(self) -> str:
        return self.model.namespace

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def phase(self) -> JobPhase | None:
        return self.status.phase

    @property
    def is_final(self) -> bool:
        return self.status.phase in TERMINAL_JOB_PHASES

    def now(self) -> str:
        return timestamp(self.ctx.now())

    def apply(self, update: Update) -> None:
        """Write `update` as one status merge patch, then its audit record (if it has an event);
        after a final update, delete the job's Pods."""
        patch, after = patch_of(self.status, update, self.body["metadata"].get("generation"), self.now())
        self.ctx.kube.patch_job_status(self.namespace, self.name, patch)
        self.status = after
        if update.event is not None:
            self.audit(update.event)
        if update.final:
            self.delete_pods()

    def audit(self, event: str) -> None:
        status = self.status
        self.ctx.auditor.record(
            self.body,
            event,
            phase=status.phase.value if status.phase else None,
            job=self.name,
            argv=status.argv,
            decision=status.decision,
            reason=status.reason,
            message=status.message,
            profile=self.model.spec.networkProfile.value,
            approval=status.approvalName,
            decidedBy=status.decidedBy,
            pod=status.podName,
            exitCode=status.exitCode,
            stdoutBytes=status.stdoutBytes,
            stderrBytes=status.stderrBytes,
            stdoutTruncated=status.stdoutTruncated,
            stderrTruncated=status.stderrTruncated,
            changedFiles=status.changedFiles.total if status.changedFiles else None,
            egressCheckMs=status.egressCheckMs,
            egressProof=status.egressProof,
        )

    def delete_pods(self) -> None:
        """Delete the review and run Pods this job launched; another object under a name stays.
        Their UIDs are free again (also when a Pod was never created, or the watch missed its end)."""
        for pod_name in (builders.review_pod_name(self.model), builders.child_name(self.name, self.model.uid)):
            self.ctx.uids.release(self.namespace, pod_name)
        for name, uid in (
            (self.status.reviewPodName, self.status.reviewPodUid),
            (self.status.podName, self.status.podUid),
        ):
            if not name:
                continue
            if uid:
                self.ctx.pending.seen(uid, None, deleted=True)  # no longer waits for its egress proof
            try:
                # Only the Pod we launched: the UID precondition spares another object under the name.
                self.ctx.kube.delete_pod(self.namespace, name, uid=uid)
            except (NotFound, Conflict):
                pass
