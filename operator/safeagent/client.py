"""The agent's way in, as a library: one command in, its result out, through a SandboxJob.

    from safeagent.client import Client, ConfigMapSource
    result = Client().run("git log --oneline -5", source=ConfigMapSource("my-repo"))
    print(result.outcome, result.exit_code, result.stdout)

`Client.run` creates a SandboxJob with the caller's own Kubernetes identity (the kubeconfig and
context kubectl would use: `kubeconfig=`, `context=`, `KUBECONFIG`), follows it with a **watch**
on that one object (no loop of GETs: a command that runs for minutes costs a create and one
watch request per five minutes), and returns a `Result` once the job is final, or once it has
waited for an Approval as long as the caller allows. Nothing here decides anything: the policy,
the approval gate and the sandbox are the operator's; this module only asks and reads.

Idempotent on retry. A job's name is chosen before the first attempt (`name=`, or a random one)
and every retry of the create uses it, so a create whose answer was lost (the connection dropped
after the server stored it) comes back as "already exists": the job under that name is then
followed if it is the same request (same command, source, profile and timeout) and refused
otherwise (`NameTaken`). A caller that itself retries (a process restarted, an MCP client calling
again) passes the same `name=` and gets the same job followed, never a second run.

Installing it needs `kubernetes`, `pydantic` and PyYAML, not the operator's Kopf or
prometheus_client (an import contract in operator/pyproject.toml holds that). The calls are
synchronous; `run_async` runs one in a worker thread for asyncio callers (the MCP server).
"""

from __future__ import annotations

import asyncio
import datetime
import enum
import functools
import math
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from safeagent.models import (
    DEFAULT_TIMEOUT_SECONDS,
    GROUP,
    MAX_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
    VERSION,
    ChangedFiles,
    NetworkProfile,
)

JOBS, APPROVALS = "sandboxjobs", "approvals"
DEFAULT_NAMESPACE = "safeagent-sandbox"
ENV_NAMESPACE = "SAFEAGENT_NAMESPACE"
# The policy the chart publishes in every sandbox namespace (templates/policy-published.yaml).
PUBLISHED_POLICY = "safeagent-policy-published"
PUBLISHED_POLICY_FILE = "safeagent.ca/policy-file"
TERMINAL_PHASES = frozenset({"Succeeded", "Failed", "Denied", "Rejected"})
# One watch request lasts at most this long; the server ends it and the client starts the next.
WATCH_SECONDS = 300
CREATE_ATTEMPTS = 5
RECONNECT_ATTEMPTS = 8
RETRY_DELAY_SECONDS = 0.5
# The chart's defaults (sandbox.sourceMaxFiles, sandbox.sourceMaxBytes): the operator and the
# preparation step check their own, so these only spare an upload the cluster would refuse.
SOURCE_MAX_FILES = 5000
SOURCE_MAX_BYTES = 100 * 1024 * 1024
# A GET of an object's metadata only (no data): what checking that a chunk is still there costs.
PARTIAL_METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
# Time the operator needs besides the command's own timeout (the chart's launchGraceSeconds,
# 300, plus room for a review Pod and API retries) before a job that is not final is given up.
FOLLOW_GRACE_SECONDS = 900


class Outcome(str, enum.Enum):
    """How a command ended, as an agent needs to tell it apart (each has its CLI exit code)."""

    SUCCEEDED = "succeeded"  # the command ran and exited 0
    COMMAND_FAILED = "command_failed"  # the command ran and exited non-zero (or was killed)
    DENIED = "denied"  # the policy refused it; nothing ran
    REJECTED = "rejected"  # the source was refused (or changed after its review); nothing ran
    APPROVAL_DENIED = "approval_denied"  # a reviewer refused it; nothing ran
    APPROVAL_EXPIRED = "approval_expired"  # nobody decided in time; nothing ran
    AWAITING_APPROVAL = "awaiting_approval"  # still waiting for a reviewer when the caller stopped waiting
    RUNNING = "running"  # not final yet when the caller stopped waiting (`return_after`)
    TIMED_OUT = "timed_out"  # the command ran past its timeout and was killed
    EGRESS_NOT_ENFORCED = "egress_not_enforced"  # the sandbox's network filter was not proven; nothing ran
    POLICY_VIOLATION = "policy_violation"  # it ran, then broke a limit (files changed, disk full)
    INFRASTRUCTURE = "infrastructure"  # the API, the Pod or the operator failed; see reason


# The job's final reason -> outcome, for the reasons that are not the plain success or failure.
_FAILED_REASONS = {
    "Timeout": Outcome.TIMED_OUT,
    "EgressNotEnforced": Outcome.EGRESS_NOT_ENFORCED,
    "ApprovalExpired": Outcome.APPROVAL_EXPIRED,
    "ApprovalMismatch": Outcome.REJECTED,
    "TooManyFileWrites": Outcome.POLICY_VIOLATION,
    "DiskLimitReached": Outcome.POLICY_VIOLATION,
    "WorkspaceUninspectable": Outcome.POLICY_VIOLATION,
}


class ClientError(Exception):
    """The request could not be made or followed (bad input, API refusal, connection lost)."""


class NoKubeconfig(ClientError):
    """No usable kubeconfig or context: the caller's setup, not the cluster."""


class SourceRefused(ClientError):
    """The directory cannot be a source (the preparation step's rules), or an object the upload
    would reuse holds other bytes than its name promises; nothing was created for the job."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class NameTaken(ClientError):
    """A job of that name exists and is another request: following it would report another run."""


class JobGone(ClientError):
    """The job was deleted while it was followed."""


# ------------------------------------------------------------------------------------ sources


@dataclass(frozen=True)
class ConfigMapSource:
    """Files held in a ConfigMap of the job's namespace (a key is a file, `--` a directory separator)."""

    name: str

    def spec(self) -> dict[str, Any]:
        return {"configMap": {"name": self.name}}


@dataclass(frozen=True)
class VolumeSource:
    """A directory on a PersistentVolumeClaim of the job's namespace (`path` inside it, "" for its root)."""

    claim: str
    path: str = ""

    def spec(self) -> dict[str, Any]:
        volume: dict[str, Any] = {"claimName": self.claim}
        if self.path:
            volume["path"] = self.path
        return {"persistentVolumeClaim": volume}


@dataclass(frozen=True)
class BundleSource:
    """A directory already uploaded as a bundle (`Client.upload`): its manifest's name."""

    name: str

    def spec(self) -> dict[str, Any]:
        return {"bundle": {"name": self.name}}


Source = ConfigMapSource | VolumeSource | BundleSource


def parse_source(text: str) -> Source:
    """A source written as `configmap:NAME` or `pvc:NAME[:SUBPATH]` ($SAFEAGENT_SOURCE, the MCP tools)."""
    kind, _, rest = text.partition(":")
    claim, _, path = rest.partition(":")
    if kind == "configmap" and rest:
        return ConfigMapSource(rest)
    if kind == "pvc" and claim:
        return VolumeSource(claim, path)
    raise ValueError(f"a source is configmap:NAME or pvc:NAME[:SUBPATH], not {text!r}")


# ------------------------------------------------------------------------------------ results


class Timings(BaseModel):
    """When each step happened (RFC 3339, as the operator wrote them) and what the caller waited."""

    model_config = ConfigDict(extra="forbid")
    created: str | None = Field(default=None, description="When the SandboxJob was created.")
    decided: str | None = Field(default=None, description="When the policy decided.")
    approvalRequested: str | None = Field(default=None, description="When the Approval was created.")
    approved: str | None = Field(default=None, description="When the operator saw the approval.")
    started: str | None = Field(default=None, description="When the sandbox Pod was launched.")
    completed: str | None = Field(default=None, description="When the job reached a final phase.")
    elapsedSeconds: float = Field(description="What this call waited, submission to return, in seconds.")


class Result(BaseModel):
    """One command's result: how it ended, its output, and where to look for more."""

    model_config = ConfigDict(extra="forbid")
    outcome: Outcome = Field(description="How it ended; decides the exit code of `safeagent run`.")
    job: str = Field(description="The SandboxJob's name.")
    namespace: str = Field(description="The SandboxJob's namespace.")
    phase: str | None = Field(description="The job's phase (Succeeded, Failed, Denied, Rejected, AwaitingApproval...).")
    decision: str | None = Field(description="The policy decision: allow, deny or require_approval.")
    reason: str | None = Field(description="Stable reason code (a policy reason, NonZeroExit, Timeout...).")
    message: str | None = Field(description="One sentence for a human.")
    argv: list[str] | None = Field(description="The argv the policy decided on (and that runs).")
    exitCode: int | None = Field(description="The command's exit status, when it ran.")
    timedOut: bool = Field(description="True if the command was killed at its timeout.")
    stdout: str = Field(description="The command's standard output (at most the policy's cap).")
    stderr: str = Field(description="The command's standard error (at most the policy's cap).")
    stdoutTruncated: bool = Field(description="True if stdout was cut.")
    stderrTruncated: bool = Field(description="True if stderr was cut.")
    changedFiles: ChangedFiles | None = Field(
        description="Workspace entries the command created, modified and deleted (never applied back)."
    )
    approval: str | None = Field(description="The Approval, when the command needed one.")
    decidedBy: str | None = Field(description="Who decided that Approval.")
    timings: Timings = Field(description="When each step happened.")

    @property
    def final(self) -> bool:
        return self.outcome not in (Outcome.AWAITING_APPROVAL, Outcome.RUNNING)


def outcome_of(status: dict[str, Any]) -> Outcome:
    """The outcome a job's status says (a pure function; tests/unit/test_client.py has its table)."""
    phase, reason = status.get("phase"), status.get("reason")
    if phase == "Succeeded":
        return Outcome.SUCCEEDED
    if phase == "Denied":
        return Outcome.APPROVAL_DENIED if reason == "ApprovalDenied" else Outcome.DENIED
    if phase == "Rejected":
        return Outcome.REJECTED
    if phase == "Failed":
        if reason == "NonZeroExit" and status.get("exitCode") is not None:
            return Outcome.COMMAND_FAILED
        return _FAILED_REASONS.get(str(reason), Outcome.INFRASTRUCTURE)
    if phase == "AwaitingApproval":
        return Outcome.AWAITING_APPROVAL
    return Outcome.INFRASTRUCTURE  # not final: the caller stopped following it (see Client.follow)


def result_of(job: dict[str, Any], elapsed: float, outcome: Outcome | None = None) -> Result:
    """The Result of a job as the API server returned it."""
    metadata, status = job.get("metadata") or {}, job.get("status") or {}
    return Result(
        outcome=outcome or outcome_of(status),
        job=metadata.get("name", ""),
        namespace=metadata.get("namespace", ""),
        phase=status.get("phase"),
        decision=status.get("decision"),
        reason=status.get("reason"),
        message=status.get("message"),
        argv=status.get("argv"),
        exitCode=status.get("exitCode"),
        timedOut=bool(status.get("timedOut")),
        stdout=status.get("stdout") or "",
        stderr=status.get("stderr") or "",
        stdoutTruncated=bool(status.get("stdoutTruncated")),
        stderrTruncated=bool(status.get("stderrTruncated")),
        changedFiles=ChangedFiles.model_validate(status["changedFiles"]) if status.get("changedFiles") else None,
        approval=status.get("approvalName"),
        decidedBy=status.get("decidedBy"),
        timings=Timings(
            created=metadata.get("creationTimestamp"), decided=status.get("decidedAt"),
            approvalRequested=status.get("approvalRequestedAt"), approved=status.get("approvedAt"),
            started=status.get("startTime"), completed=status.get("completionTime"),
            elapsedSeconds=round(elapsed, 3),
        ),
    )


def reviewer_command(namespace: str, approval: str) -> str:
    """What a reviewer runs to approve (with their own identity; `deny` refuses)."""
    return f"safeagent approve -n {namespace} {approval}"


# ------------------------------------------------------------------------------------ the client


def new_job_name(prefix: str = "run") -> str:
    """A fresh job name (random: two runs of the same command are two jobs, on purpose)."""
    return f"{prefix}-{secrets.token_hex(5)}"


def job_body(command: str, source: Source, profile: str, timeout: int, name: str) -> dict[str, Any]:
    """The SandboxJob a request creates. Who asked is not in it: the cluster records that."""
    if not command.strip():
        raise ClientError("the command is empty")
    if not MIN_TIMEOUT_SECONDS <= timeout <= MAX_TIMEOUT_SECONDS:
        raise ClientError(f"the timeout must be {MIN_TIMEOUT_SECONDS}..{MAX_TIMEOUT_SECONDS} seconds, not {timeout}")
    profiles = [member.value for member in NetworkProfile]
    if profile not in profiles:
        raise ClientError(f"unknown network profile {profile!r} (one of {', '.join(profiles)})")
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SandboxJob",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/created-by": "safeagent-client"}},
        "spec": {"command": command, "source": source.spec(), "networkProfile": profile, "timeoutSeconds": timeout},
    }


def same_request(existing: dict[str, Any], body: dict[str, Any]) -> bool:
    """Is the job already there the one `body` asks for? (Fields the cluster adds are ignored.)"""
    ours, theirs = body["spec"], existing.get("spec") or {}
    return all(theirs.get(key) == value for key, value in ours.items())


def _api_message(error: Any) -> str:
    import json

    try:
        return str(json.loads(error.body or "").get("message") or error.reason)
    except (TypeError, ValueError, AttributeError):
        return f"HTTP {error.status} {error.reason}"


def _transient(error: BaseException) -> bool:
    """A failure after which the request may or may not have reached the server: try again."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    if isinstance(error, ApiException):
        return error.status in (429, 500, 502, 503, 504) or error.status == 0
    return isinstance(error, HTTPError | OSError)


def kube_namespace(kubeconfig: str | None, context: str | None) -> str | None:
    """The namespace the kubeconfig's context names, as kubectl would use it (None: none named)."""
    from kubernetes import config

    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError):
        return None
    chosen = next((item for item in contexts if item.get("name") == context), None) if context else active
    return ((chosen or {}).get("context") or {}).get("namespace")


Notify = Callable[[dict[str, Any]], None]


class Client:
    """SandboxJobs and Approvals in one namespace, as the kubeconfig's identity.

    `namespace`: the argument, else $SAFEAGENT_NAMESPACE, else the context's namespace, else
    safeagent-sandbox (the chart's default sandbox namespace). `api_client`: an already
    configured `kubernetes.client.ApiClient` instead of a kubeconfig (tests use it).
    """

    def __init__(
        self,
        namespace: str | None = None,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        api_client: Any | None = None,
    ) -> None:
        from kubernetes import client, config

        if api_client is None:
            try:
                api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
                    config_file=kubeconfig, context=context
                )
            except (config.ConfigException, OSError) as error:
                raise NoKubeconfig(f"no usable kubeconfig: {error}") from None
            namespace = namespace or os.environ.get(ENV_NAMESPACE) or kube_namespace(kubeconfig, context)
        self.api_client = api_client
        self.namespace = namespace or os.environ.get(ENV_NAMESPACE) or DEFAULT_NAMESPACE
        # Typed as Any: the generated API classes return `object` for custom resources.
        self.custom: Any = client.CustomObjectsApi(api_client)
        self.core: Any = client.CoreV1Api(api_client)
        self.sleep: Callable[[float], None] = time.sleep

    # ------------------------------------------------------------------ one command

    def run(
        self,
        command: str,
        source: Source,
        *,
        profile: str = NetworkProfile.NONE.value,
        timeout: int = DEFAULT_TIMEOUT_SECONDS,
        name: str | None = None,
        wait_approval: float | None = None,
        notify: Notify | None = None,
    ) -> Result:
        """Submit `command` (one command line, as `spec.command` takes it) and follow it.

        Returns when the job is final or, if it needs an Approval, after `wait_approval` seconds
        without a decision (None: wait as long as the Approval lives; 0: return at once). The job is
        never deleted here: one still waiting for its Approval keeps waiting, and a later `follow`
        (or `run` with the same `name`) picks it up. `notify` sees every version of the job as the
        watch delivers it (the CLI says "waiting for approval" from it).
        """
        started = time.monotonic()
        job = self.submit(command, source, profile=profile, timeout=timeout, name=name)
        return self.follow(job, wait_approval=wait_approval, notify=notify, started=started)

    async def run_async(self, command: str, source: Source, **options: Any) -> Result:
        """`run` in a worker thread, for asyncio callers."""
        return await asyncio.to_thread(self.run, command, source, **options)

    def submit(
        self,
        command: str,
        source: Source,
        *,
        profile: str = NetworkProfile.NONE.value,
        timeout: int = DEFAULT_TIMEOUT_SECONDS,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Create the job (or find it already created by an earlier attempt); returns its body."""
        from kubernetes.client.exceptions import ApiException

        body = job_body(command, source, profile, timeout, name or new_job_name())
        job_name = body["metadata"]["name"]
        last: BaseException | None = None
        for attempt in range(CREATE_ATTEMPTS):
            if attempt:
                self.sleep(RETRY_DELAY_SECONDS * 2 ** (attempt - 1))
            try:
                created: dict[str, Any] = self.custom.create_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, JOBS, body
                )
                return created
            except ApiException as error:
                if error.status == 409:
                    return self._existing(job_name, body)
                if not _transient(error):
                    raise ClientError(f"the API server refused the job: {_api_message(error)}") from None
                last = error
            except Exception as error:
                if not _transient(error):
                    raise
                last = error  # the create may have been stored: the next attempt finds out
        raise ClientError(f"could not reach the API server to create job {job_name}: {last}")

    def _existing(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        existing = self.job(name)
        if not same_request(existing, body):
            raise NameTaken(f"job {name} already exists in {self.namespace} and is another request")
        return existing

    def job(self, name: str) -> dict[str, Any]:
        """One job as the API server has it now."""
        from kubernetes.client.exceptions import ApiException

        try:
            found: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, JOBS, name)
            return found
        except ApiException as error:
            if error.status == 404:
                raise JobGone(f"job {name} does not exist in {self.namespace}") from None
            raise ClientError(f"could not read job {name}: {_api_message(error)}") from None

    def follow(
        self,
        job: dict[str, Any] | str,
        *,
        wait_approval: float | None = None,
        notify: Notify | None = None,
        started: float | None = None,
        give_up_after: float | None = None,
        return_after: float | None = None,
    ) -> Result:
        """Watch the job until it is final (or has waited `wait_approval` for its Approval).

        One watch request on this job alone (a field selector on its name), resumed from the last
        resourceVersion seen when the server ends it; a resourceVersion too old to resume from
        (410 Gone) costs one GET. `give_up_after` (default: the job's timeout + 900 s of
        operator time, not counting the approval wait) ends the wait with outcome
        `infrastructure`; `return_after` returns a job not final after that many seconds with
        outcome `running` (a caller with a deadline of its own: the MCP server). Either way the
        job itself goes on.
        """
        started = time.monotonic() if started is None else started
        if isinstance(job, str):
            job = self.job(job)
        name = job["metadata"]["name"]
        timeout = int((job.get("spec") or {}).get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS)
        budget = give_up_after if give_up_after is not None else timeout + FOLLOW_GRACE_SECONDS
        deadline = time.monotonic() + budget
        awaiting_since: float | None = None
        watcher = _JobWatch(self, name, job)
        try:
            while True:
                current = watcher.latest
                if notify is not None and watcher.fresh:
                    notify(current)
                watcher.fresh = False
                phase = (current.get("status") or {}).get("phase")
                if phase in TERMINAL_PHASES:
                    return result_of(current, time.monotonic() - started)
                now = time.monotonic()
                if return_after is not None and now - started >= return_after and phase != "AwaitingApproval":
                    return result_of(current, now - started, Outcome.RUNNING)
                if phase == "AwaitingApproval":
                    if awaiting_since is None:
                        awaiting_since = now
                    if wait_approval is not None and now - awaiting_since >= wait_approval:
                        return result_of(current, now - started, Outcome.AWAITING_APPROVAL)
                    until = None if wait_approval is None else awaiting_since + wait_approval
                else:
                    if awaiting_since is not None:  # decided: the operator's budget starts again
                        deadline, awaiting_since = now + budget, None
                    if now >= deadline:
                        result = result_of(current, now - started, Outcome.INFRASTRUCTURE)
                        message = f"job {name} is not final after {budget:.0f} s; it is left as it is ({phase})"
                        return result.model_copy(update={"reason": "ClientGaveUp", "message": message})
                    until = deadline
                    if return_after is not None:  # the approval wait has its own limit, above
                        until = min(until, started + return_after)
                watcher.next_change(None if until is None else max(until - now, 0.0))
        finally:
            watcher.close()

    # ------------------------------------------------------------------ a directory as the source

    def upload(self, directory: str, *, max_files: int = SOURCE_MAX_FILES, max_bytes: int = SOURCE_MAX_BYTES,
               cache: VerifiedCache | None = None) -> Upload:
        """Upload `directory` as a bundle (docs/agent.md, "--source DIR") and return its source.

        The tree is checked with the preparation step's own rules before anything is sent
        (SourceRefused). Chunks already in the namespace are reused, never trusted: one this client
        did not make or check before (`cache`, by name and UID: an immutable ConfigMap cannot change
        without a new UID) is read and its digest checked first, and one that holds other bytes
        stops the upload (SourceRefused, reason poisoned_object)."""
        from safeagent.sandbox import bundle, tree

        report = tree.validate_tree(directory, max_files=max_files, max_bytes=max_bytes)
        if not report["ok"]:
            raise SourceRefused(report["reason"], f"{directory}: {report['message']}")
        try:
            packed = bundle.pack(directory)
        except bundle.BundleRejected as rejected:
            raise SourceRefused(rejected.reason, f"{directory}: {rejected.message}") from None
        except OSError as error:
            raise SourceRefused("unreadable", f"{directory}: {error}") from None
        cache = cache if cache is not None else VerifiedCache.load(self)
        started, sent = time.monotonic(), 0
        for digest in packed.chunks:
            sent += self._ensure_object(bundle.chunk_name(digest), bundle.CHUNK_KEY,
                                        functools.partial(packed.compressed, digest),
                                        functools.partial(_chunk_holds, digest=digest), cache)
        sent += self._ensure_object(packed.name, bundle.MANIFEST_KEY, lambda: packed.manifest,
                                    lambda data: bundle.manifest_name(data) == packed.name, cache, text=True)
        cache.save()
        return Upload(BundleSource(packed.name), packed.files, packed.bytes, len(packed.chunks), sent,
                      round(time.monotonic() - started, 3))

    def _ensure_object(self, name: str, key: str, content: Callable[[], bytes], holds: Callable[[bytes], bool],
                       cache: VerifiedCache, text: bool = False) -> int:
        """Make the immutable ConfigMap `name` holding `content()` (compressed only when it is sent),
        or check the one there; returns the bytes sent (0 when it was reused)."""
        import base64

        from kubernetes.client.exceptions import ApiException

        from safeagent.sandbox import bundle

        uid = self._configmap_uid(name)
        if uid is not None and cache.has(name, uid):
            return 0  # made or checked before, by this UID: an immutable object has not changed
        existing = self._configmap(name) if uid is not None else None
        if existing is None:
            data = content()
            # The label marks the object as the client's: the operator's retention sweep removes it once
            # no job refers to it (docs/operations.md, "Retention"), and never a ConfigMap without it.
            body: dict[str, Any] = {"metadata": {"name": name, "labels": {bundle.UPLOADED_LABEL: bundle.UPLOADED_BY}},
                                    "immutable": True}
            if text:
                body["data"] = {key: data.decode()}
            else:
                body["binaryData"] = {key: base64.b64encode(data).decode()}
            try:
                created = self.core.create_namespaced_config_map(self.namespace, body)
                cache.add(name, created.metadata.uid)
                return len(data)
            except ApiException as error:
                if error.status != 409:
                    raise ClientError(f"could not create {name}: {_api_message(error)}") from None
            existing = self._configmap(name)  # made by someone else in between: check it like any other
            if existing is None:
                raise ClientError(f"{name} appeared and vanished while it was uploaded")
        uid = existing.metadata.uid
        if cache.has(name, uid):
            return 0
        if text:
            found = ((existing.data or {}).get(key) or "").encode()
        else:
            found = base64.b64decode((existing.binary_data or {}).get(key) or "")
        if not existing.immutable or not holds(found):
            raise SourceRefused("poisoned_object", f"ConfigMap {name} in {self.namespace} does not hold what its "
                                "name promises (or is not immutable); an administrator should delete it")
        cache.add(name, uid)
        return 0

    def _configmap_uid(self, name: str) -> str | None:
        """The UID of ConfigMap `name` (None: there is none), read as metadata only: a chunk's bytes
        are fetched only when they have to be checked."""
        import json

        from kubernetes.client.exceptions import ApiException

        try:
            response = self.core.read_namespaced_config_map(
                name, self.namespace, _headers={"Accept": PARTIAL_METADATA}, _preload_content=False)
        except TypeError:  # an older client without per-call headers: read it all
            found = self._configmap(name)
            return None if found is None else str(found.metadata.uid)
        except ApiException as error:
            if error.status == 404:
                return None
            raise ClientError(f"could not read ConfigMap {name}: {_api_message(error)}") from None
        try:
            return str(json.loads(response.data)["metadata"]["uid"])
        except (ValueError, KeyError, TypeError):
            raise ClientError(f"could not read ConfigMap {name}'s metadata") from None

    def _configmap(self, name: str) -> Any | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.core.read_namespaced_config_map(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise ClientError(f"could not read ConfigMap {name}: {_api_message(error)}") from None

    # ------------------------------------------------------------------ reviewers and listings

    def jobs(self) -> list[dict[str, Any]]:
        """Every SandboxJob of the namespace, oldest first."""
        items: list[dict[str, Any]] = self._list(JOBS)
        return sorted(items, key=lambda item: item["metadata"].get("creationTimestamp", ""))

    def approvals(self, pending_only: bool = True) -> list[dict[str, Any]]:
        """The namespace's Approvals (only those still waiting for a decision, by default), oldest first."""
        items = [
            item for item in self._list(APPROVALS)
            if not pending_only or ((item.get("spec") or {}).get("decision", "Pending") == "Pending"
            and (item.get("status") or {}).get("phase") in (None, "Pending"))
        ]
        return sorted(items, key=lambda item: item["metadata"].get("creationTimestamp", ""))

    def decide(self, approval: str, decision: str, note: str = "") -> dict[str, Any]:
        """Set an Approval's decision (Approved or Denied) and note: the same merge patch as kubectl's."""
        from kubernetes.client.exceptions import ApiException

        if decision not in ("Approved", "Denied"):
            raise ClientError(f"a decision is Approved or Denied, not {decision!r}")
        spec: dict[str, Any] = {"decision": decision}
        if note:
            spec["note"] = note
        try:
            patched: dict[str, Any] = self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, APPROVALS, approval, {"spec": spec}
            )
            return patched
        except ApiException as error:
            raise ClientError(f"could not decide approval {approval}: {_api_message(error)}") from None

    def _list(self, plural: str) -> list[dict[str, Any]]:
        from kubernetes.client.exceptions import ApiException

        try:
            listed = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, plural)
        except ApiException as error:
            raise ClientError(f"could not list {plural} in {self.namespace}: {_api_message(error)}") from None
        items: list[dict[str, Any]] = listed.get("items") or []
        return items

    # ------------------------------------------------------------------ the policy, without a job

    def check(self, command: str) -> dict[str, Any]:
        """The policy's decision on `command`, as the cluster's published policy makes it; no job.

        The chart publishes the policy the operator enforces in every sandbox namespace (ConfigMap
        safeagent-policy-published, readable by submitters); the decision is made here with the operator's
        own code on that text. Returns the decision's JSON form (decision, reason, message, argv)
        plus the policy's name.
        """
        from kubernetes.client.exceptions import ApiException

        from safeagent.policy import PolicyError, decide, load_policy

        try:
            published = self.core.read_namespaced_config_map(PUBLISHED_POLICY, self.namespace)
        except ApiException as error:
            raise ClientError(
                f"cannot read the published policy ({PUBLISHED_POLICY} in {self.namespace}): {_api_message(error)}"
            ) from None
        files: dict[str, str] = published.data or {}
        chosen = (published.metadata.annotations or {}).get(PUBLISHED_POLICY_FILE, "")
        if chosen not in files or os.sep in chosen:
            raise ClientError(f"{PUBLISHED_POLICY} does not name its policy file ({PUBLISHED_POLICY_FILE})")
        with tempfile.TemporaryDirectory(prefix="safeagent-policy-") as directory:
            for file_name, text in files.items():
                if os.sep not in file_name:
                    with open(os.path.join(directory, file_name), "w", encoding="utf-8") as handle:
                        handle.write(text)
            try:
                policy = load_policy(os.path.join(directory, chosen))
            except PolicyError as error:
                raise ClientError(f"the published policy does not load: {error}") from None
        decision: dict[str, Any] = dict(decide(policy, command).to_dict())
        decision["policy"] = policy.name
        return decision


@dataclass(frozen=True)
class Upload:
    """What `Client.upload` did: the source to run on, and what it cost."""

    source: BundleSource
    files: int
    bytes: int
    chunks: int
    sent: int  # bytes sent (compressed chunks and the manifest); 0 when everything was reused
    seconds: float


def _chunk_holds(compressed: bytes, digest: str) -> bool:
    import hashlib
    import zlib

    from safeagent.sandbox import bundle

    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(compressed, bundle.MAX_CHUNK + 1)
    except zlib.error:
        return False
    return inflater.eof and hashlib.sha256(data).hexdigest() == digest


class VerifiedCache:
    """Chunk objects this client made or checked, by (name, UID), kept between runs in the user's
    cache directory, one file per API server and namespace. A ConfigMap made immutable cannot
    change; replaced, it has a new UID and is checked again."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.entries: dict[str, str] = {}

    @classmethod
    def load(cls, client: Client) -> VerifiedCache:
        import hashlib
        import json

        home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        where = hashlib.sha256(f"{client.api_client.configuration.host} {client.namespace}".encode()).hexdigest()[:16]
        cache = cls(os.path.join(home, "safeagent", f"verified-{where}.json"))
        try:
            with open(cache.path or "", encoding="utf-8") as handle:
                loaded = json.load(handle)
            if isinstance(loaded, dict):
                cache.entries = {str(key): str(value) for key, value in loaded.items()}
        except (OSError, ValueError):
            pass
        return cache

    def has(self, name: str, uid: str) -> bool:
        return bool(uid) and self.entries.get(name) == uid

    def add(self, name: str, uid: str) -> None:
        if uid:
            self.entries[name] = uid

    def save(self) -> None:
        import json

        if self.path is None:
            return
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            temporary = f"{self.path}.{os.getpid()}"
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(self.entries, handle)
            os.replace(temporary, self.path)
        except OSError:
            pass  # only a cache: the next run checks again


class _JobWatch:
    """The one job's versions as one watch delivers them; a new watch request only when the server
    ends one (its time limit), the caller needs to wake up sooner than the open one ends (an
    approval wait), or the connection broke."""

    def __init__(self, client: Client, name: str, job: dict[str, Any]) -> None:
        self.client, self.name = client, name
        self.latest = job
        self.fresh = True  # `latest` not yet seen by the caller
        self.resource_version: str = job["metadata"].get("resourceVersion", "")
        self._events: Iterator[dict[str, Any]] | None = None
        self._stream: Any = None
        self._ends = 0.0  # when the open watch request's server-side time limit runs out

    def _open(self, within: float | None) -> None:
        from kubernetes import watch

        self.close()
        seconds = WATCH_SECONDS if within is None else max(1, min(WATCH_SECONDS, math.ceil(within)))
        self._stream = watch.Watch()  # type: ignore[no-untyped-call]
        self._ends = time.monotonic() + seconds
        self._events = self._stream.stream(
            self.client.custom.list_namespaced_custom_object, GROUP, VERSION, self.client.namespace, JOBS,
            field_selector=f"metadata.name={self.name}", resource_version=self.resource_version,
            allow_watch_bookmarks=True, timeout_seconds=seconds, _request_timeout=(10, seconds + 30),
        )

    def close(self) -> None:
        if self._stream is not None:
            self._stream.stop()
        if self._events is not None:
            close = getattr(self._events, "close", None)
            if close is not None:
                close()
        self._stream = self._events = None

    def next_change(self, within: float | None) -> None:
        """Wait for the job's next version, or about `within` seconds; updates `latest`."""
        from kubernetes.client.exceptions import ApiException

        failures = 0
        while True:
            if self._events is None or (within is not None and time.monotonic() + within < self._ends - 1):
                self._open(within)
            assert self._events is not None
            try:
                for event in self._events:
                    body = event["raw_object"]
                    self.resource_version = body["metadata"].get("resourceVersion") or self.resource_version
                    if event["type"] == "BOOKMARK":
                        continue
                    if event["type"] == "DELETED":
                        raise JobGone(f"job {self.name} was deleted while it was followed")
                    self.latest, self.fresh = body, True
                    return
                self._events, self.fresh = None, False
                return  # the server ended the watch: the caller decides whether to go on
            except ApiException as error:
                self._events = None
                if error.status == 410:  # too old to resume from: read the job once, go on from there
                    self.latest, self.fresh = self.client.job(self.name), True
                    self.resource_version = self.latest["metadata"]["resourceVersion"]
                    return
                if not _transient(error):
                    raise ClientError(f"could not watch job {self.name}: {_api_message(error)}") from None
            except ClientError:
                raise
            except Exception as error:
                self._events = None
                if not _transient(error):
                    raise
            failures += 1
            if failures >= RECONNECT_ATTEMPTS:
                raise ClientError(f"lost the API server while following job {self.name}")
            self.client.sleep(RETRY_DELAY_SECONDS * 2 ** min(failures, 5))


def age(timestamp: str | None, now: datetime.datetime | None = None) -> str:
    """A Kubernetes timestamp as kubectl shows an age (`45s`, `3m`, `2h`, `4d`)."""
    if not timestamp:
        return "?"
    then = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    seconds = int(((now or datetime.datetime.now(datetime.timezone.utc)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"
