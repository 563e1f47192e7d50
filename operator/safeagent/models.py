"""Typed models of safeagent's custom resources: the single source of truth for the CRDs.

`safeagent.crdgen` turns these pydantic models into the chart's `crds/*.yaml` (OpenAPI schema, descriptions,
CEL rules, printer columns), and the operator parses every object it reads through them, so the
schema the API server enforces and the one the code expects cannot drift apart.

Field names are camelCase (the Kubernetes convention) and unknown fields are refused.

Over 400 lines on purpose: one file is one schema. Every field carries the description
`kubectl explain` shows, and the CRDs, the status the reconcile steps write and the records read
back from the sandbox Pod are reviewed side by side here.
"""

from __future__ import annotations

import enum
import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from safeagent.sandbox.contract import EgressProof, PrepareResultKind, RunnerResultKind, RunnerResultVersion

GROUP = "safeagent.ca"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Bounds shared by the CRD schema and the pydantic validation.
MAX_COMMAND_LENGTH = 4096
MAX_ARGV_ITEMS = 128
MAX_NAME_LENGTH = 253
MAX_PATH_LENGTH = 1024
MIN_TIMEOUT_SECONDS = 1
MAX_TIMEOUT_SECONDS = 3600
DEFAULT_TIMEOUT_SECONDS = 300
MAX_TEXT_LENGTH = 1024
# Kubernetes object names (RFC 1123 subdomain) and PVC claim names.
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


def _strict(**extra: Any) -> ConfigDict:
    return ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra=extra or None)


def _rules(*rules: tuple[str, str]) -> dict[str, Any]:
    """CEL validation rules in the form the CRD wants, attached to a model's schema."""
    return {"x-kubernetes-validations": [{"rule": rule, "message": message} for rule, message in rules]}


class NetworkProfile(str, enum.Enum):
    """The egress a sandbox Pod gets; each value maps to one NetworkPolicy per namespace."""

    NONE = "none"
    MODEL_ONLY = "model-only"
    GIT_READ = "git-read"
    PACKAGE_MIRROR = "package-mirror"


class JobPhase(str, enum.Enum):
    PENDING = "Pending"
    AWAITING_APPROVAL = "AwaitingApproval"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DENIED = "Denied"
    REJECTED = "Rejected"


TERMINAL_JOB_PHASES = frozenset(
    {JobPhase.SUCCEEDED, JobPhase.FAILED, JobPhase.DENIED, JobPhase.REJECTED}
)


class ApprovalDecision(str, enum.Enum):
    PENDING = "Pending"
    APPROVED = "Approved"
    DENIED = "Denied"


class ApprovalPhase(str, enum.Enum):
    PENDING = "Pending"
    APPROVED = "Approved"
    DENIED = "Denied"
    EXPIRED = "Expired"


# ---------------------------------------------------------------------------------------- source


def _check_relative_path(value: str) -> str:
    parts = value.split("/")
    if value.startswith("/") or any(part == ".." for part in parts):
        raise ValueError("must be a relative path inside the volume (no leading '/', no '..')")
    return value


class ConfigMapSource(BaseModel):
    """A small repository stored in a ConfigMap of the job's namespace."""

    model_config = _strict()
    name: str = Field(
        description="Name of the ConfigMap. Each key is one file; '--' in a key stands for a "
        "directory separator (key 'src--app.py' becomes 'src/app.py').",
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        pattern=NAME_PATTERN,
    )


class PersistentVolumeClaimSource(BaseModel):
    """A repository on a PersistentVolumeClaim, mounted read-only and copied into the workspace."""

    model_config = _strict(
        **_rules(
            (
                "!has(self.path) || (!self.path.startsWith('/') && self.path != '..'"
                " && !self.path.startsWith('../') && !self.path.endsWith('/..')"
                " && !self.path.contains('/../'))",
                "path must be relative to the volume root and must not contain '..'",
            )
        )
    )
    claimName: str = Field(
        description="Name of the PersistentVolumeClaim in the job's namespace.",
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        pattern=NAME_PATTERN,
    )
    path: str = Field(
        default="",
        description="Directory inside the volume that holds the repository (relative, no '..'); "
        "empty means the volume root.",
        max_length=MAX_PATH_LENGTH,
    )

    @field_validator("path")
    @classmethod
    def _path_is_relative(cls, value: str) -> str:
        return _check_relative_path(value)


class BundleSource(BaseModel):
    """A directory uploaded as content-addressed chunks (`safeagent run --source DIR`; docs/agent.md)."""

    model_config = _strict()
    name: str = Field(
        description="Name of the bundle's manifest ConfigMap (sa-bundle-<sha256 of its content>); it names "
        "the chunk ConfigMaps, and every digest is checked before use.",
        pattern=r"^sa-bundle-[0-9a-f]{64}$",
        max_length=MAX_NAME_LENGTH,
    )


class Source(BaseModel):
    """Where the files of the workspace come from: exactly one of the fields is set."""

    model_config = _strict(
        **_rules(
            (
                "(has(self.configMap) ? 1 : 0) + (has(self.persistentVolumeClaim) ? 1 : 0)"
                " + (has(self.bundle) ? 1 : 0) == 1",
                "exactly one of configMap, persistentVolumeClaim or bundle must be set",
            )
        )
    )
    configMap: ConfigMapSource | None = Field(
        default=None, description="Files of a small repository held in a ConfigMap."
    )
    persistentVolumeClaim: PersistentVolumeClaimSource | None = Field(
        default=None, description="A repository on a volume, mounted read-only."
    )
    bundle: BundleSource | None = Field(
        default=None, description="A directory uploaded as content-addressed chunks in ConfigMaps."
    )

    def read_from(self) -> tuple[str, str, str]:
        """(kind, resource, name) of the object the files come from. A bundle's is its manifest:
        the chunks it names are addressed by their content's digest, which only the manifest tells."""
        if self.configMap is not None:
            return "ConfigMap", "configmaps", self.configMap.name
        if self.bundle is not None:
            return "ConfigMap", "configmaps", self.bundle.name
        assert self.persistentVolumeClaim is not None  # exactly one is set (_exactly_one)
        return "PersistentVolumeClaim", "persistentvolumeclaims", self.persistentVolumeClaim.claimName

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        if sum(kind is not None for kind in (self.configMap, self.persistentVolumeClaim, self.bundle)) != 1:
            raise ValueError("exactly one of configMap, persistentVolumeClaim or bundle must be set")
        return self


# -------------------------------------------------------------------------------------- Identity

MAX_USER_LENGTH = 512
MAX_GROUPS = 128


class Identity(BaseModel):
    """A user as the API server authenticated the request (its userInfo), recorded by the chart's
    admission policies, never by the client: a value a client sends is refused unless it is exactly
    the caller (see charts/safeagent/templates/admission-identity.yaml)."""

    model_config = _strict()
    username: str = Field(
        description="The authenticated user name, e.g. alice or system:serviceaccount:NS:NAME.",
        min_length=1,
        max_length=MAX_USER_LENGTH,
    )
    uid: str = Field(default="", max_length=MAX_USER_LENGTH, description="The user's UID, if the "
                     "authenticator gives one (a ServiceAccount's UID for its tokens).")
    groups: list[Annotated[str, Field(max_length=MAX_USER_LENGTH)]] = Field(
        default_factory=list,
        max_length=MAX_GROUPS,
        description="The user's groups, as authenticated; the operator asks as these groups too when "
        "it checks that the requester may read the source.",
    )


# ------------------------------------------------------------------------------------ SandboxJob


class SandboxJobSpec(BaseModel):
    """What to run and on which files; immutable once created."""

    model_config = _strict(**_rules(("self == oldSelf", "spec is immutable")))
    command: str = Field(
        description="One command line. The policy tokenises and normalises it; it is never run "
        "through a shell.",
        min_length=1,
        max_length=MAX_COMMAND_LENGTH,
    )
    source: Source = Field(description="The files copied into the sandbox's /workspace.")
    networkProfile: NetworkProfile = Field(
        default=NetworkProfile.NONE,
        description="Egress allowed to the sandbox: none (default), model-only, git-read or "
        "package-mirror; each maps to a NetworkPolicy configured by the cluster admin.",
    )
    timeoutSeconds: int = Field(
        default=DEFAULT_TIMEOUT_SECONDS,
        ge=MIN_TIMEOUT_SECONDS,
        le=MAX_TIMEOUT_SECONDS,
        description=f"Wall-clock limit for the command in seconds "
        f"({MIN_TIMEOUT_SECONDS}..{MAX_TIMEOUT_SECONDS}, default {DEFAULT_TIMEOUT_SECONDS}).",
    )
    requester: Identity | None = Field(
        default=None,
        description="Who submitted the job, as the API server authenticated them. Leave it out: the "
        "cluster records it at creation, and refuses any other value than the caller.",
    )


class Condition(BaseModel):
    """One observed aspect of the object, Kubernetes-style."""

    model_config = _strict()
    type: str = Field(description="Condition type, e.g. Decided, Approved, Launched, Completed.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="Stable CamelCase reason for the last transition.")
    message: str = Field(default="", description="Human-readable detail.")
    lastTransitionTime: str = Field(description="When the status last changed (RFC 3339).")
    observedGeneration: int | None = Field(
        default=None, description="metadata.generation the condition was computed from."
    )


class ChangedFiles(BaseModel):
    """Workspace entries the command created, modified and deleted (lstat-based, links not followed).

    Both a part of the status and a nested record of the runner's (safeagent.sandbox.contract
    ChangedFilesRecord), so every field is required: a record without one is refused, not defaulted.
    """

    model_config = _strict()
    created: int = Field(ge=0, description="Entries that did not exist before the run.")
    modified: int = Field(ge=0, description="Non-directory entries whose metadata changed.")
    deleted: int = Field(ge=0, description="Entries that existed before and are gone.")
    total: int = Field(ge=0, description="created + modified + deleted.")
    complete: bool = Field(
        description="False when the workspace could not be fully inspected (fails the job closed).",
    )
    paths: list[str] = Field(
        max_length=200,
        description="A sample of changed paths, each prefixed with +, ~ or - (created, modified, "
        "deleted).",
    )


class JobLimits(BaseModel):
    """Policy limits captured when the decision was made, so a later policy edit cannot change them."""

    model_config = _strict()
    maxOutputKb: int = Field(ge=0, description="Kilobytes of stdout and of stderr kept in status.")
    maxFileWrites: int = Field(ge=0, description="Most workspace entries the command may change.")


class SandboxJobStatus(BaseModel):
    """What the operator decided and observed; written only by the operator."""

    model_config = _strict()
    phase: JobPhase | None = Field(
        default=None,
        description="Pending, AwaitingApproval, Running, Succeeded, Failed, Denied or Rejected.",
    )
    decision: Literal["allow", "deny", "require_approval"] | None = Field(
        default=None, description="The policy decision: allow, deny or require_approval."
    )
    reason: str | None = Field(default=None, description="Stable reason code of the latest step.")
    message: str | None = Field(default=None, description="One sentence for a human.")
    argv: list[str] | None = Field(
        default=None, description="The normalised argv the policy decided on (and that runs)."
    )
    specHash: str | None = Field(
        default=None, description="SHA-256 of the spec the decision was made on."
    )
    limits: JobLimits | None = Field(default=None, description="Policy limits applied to this job.")
    sourceDigest: str | None = Field(
        default=None,
        description="Content digest of the source the Approval was asked for (sha256:...); the "
        "preparation step refuses to run on any other content.",
    )
    reviewPodName: str | None = Field(
        default=None,
        description="For a volume source that needs an Approval: the Pod that copied the source "
        "and reported its digest before the review (it runs no command).",
    )
    reviewPodUid: str | None = Field(default=None, description="UID of that review Pod.")
    approvalName: str | None = Field(default=None, description="The Approval created for this job.")
    approvalUid: str | None = Field(
        default=None, description="UID of that Approval; another object under its name is refused."
    )
    decidedBy: str | None = Field(
        default=None, description="Who decided the Approval, as the cluster authenticated them."
    )
    podName: str | None = Field(default=None, description="The sandbox Pod of this job.")
    podUid: str | None = Field(
        default=None,
        description="UID of the sandbox Pod; a different object under podName is never trusted.",
    )
    exitCode: int | None = Field(default=None, description="Exit status of the command.")
    timedOut: bool | None = Field(default=None, description="True if the command hit its timeout.")
    stdout: str | None = Field(default=None, description="Standard output, at most maxOutputKb.")
    stderr: str | None = Field(default=None, description="Standard error, at most maxOutputKb.")
    stdoutBytes: int | None = Field(default=None, description="Total bytes the command wrote to stdout.")
    stderrBytes: int | None = Field(default=None, description="Total bytes the command wrote to stderr.")
    stdoutTruncated: bool | None = Field(default=None, description="True if stdout was cut at the cap.")
    stderrTruncated: bool | None = Field(default=None, description="True if stderr was cut at the cap.")
    changedFiles: ChangedFiles | None = Field(
        default=None, description="Workspace entries created, modified and deleted by the command."
    )
    egressCheckMs: int | None = Field(
        default=None,
        description="Milliseconds the runner's pre-flight waited for proof that the Pod's egress is "
        "filtered (until it gave up, for EgressNotEnforced).",
    )
    egressProof: EgressProof | None = Field(
        default=None,
        description="What proved the Pod's egress filtered: refusal (the enforcer refused the canary's "
        "closed port) or silence (it stayed silent while the canary saw no drops).",
    )
    fullVolumes: list[str] | None = Field(
        default=None,
        description="Writable volumes (workspace, tmp, shm) the command filled to their size limit.",
    )
    memoryExhausted: bool | None = Field(
        default=None,
        description="True if the runner stopped the command because the sandbox's memory was nearly "
        "used up (by processes, tmpfs files or the kernel's records of them).",
    )
    pidsAvailable: int | None = Field(
        default=None,
        description="Tasks the runner could still start when it proved the Pod's PID limit (how many "
        "the command had); for ResourcesNotLimited, how many it started without refusal.",
    )
    decidedAt: str | None = Field(default=None, description="When the policy decided (RFC 3339).")
    approvalRequestedAt: str | None = Field(default=None, description="When the Approval was created.")
    approvedAt: str | None = Field(default=None, description="When the operator saw the approval.")
    startTime: str | None = Field(default=None, description="When the sandbox Pod was launched.")
    completionTime: str | None = Field(default=None, description="When the job reached a final phase.")
    observedGeneration: int | None = Field(default=None, description="Generation last reconciled.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Decided, Approved, Launched and Completed conditions."
    )


class SandboxJob(BaseModel):
    """One agent command to run in a locked-down sandbox Pod, after a policy decision."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")
    spec: SandboxJobSpec = Field(description="What to run and on which files; immutable.")
    status: SandboxJobStatus = Field(
        default_factory=SandboxJobStatus, description="Decision and result, set by the operator."
    )

    @property
    def name(self) -> str:
        value: str = self.metadata.get("name", "")
        return value

    @property
    def namespace(self) -> str:
        value: str = self.metadata.get("namespace", "")
        return value

    @property
    def uid(self) -> str:
        value: str = self.metadata.get("uid", "")
        return value


# -------------------------------------------------------------------------------------- Approval


APPROVAL_IMMUTABLE_FIELDS = (
    "jobName", "jobUid", "specHash", "command", "networkProfile", "source", "sourceDigest", "requester",
)
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"


class ApprovalSpec(BaseModel):
    """A request for a human to approve one exact argv for one job; only `decision` and `note` may
    change, once, and the cluster records who changed them in `decider`."""

    model_config = _strict(
        **_rules(
            *[
                (f"self.{field} == oldSelf.{field}", f"{field} is immutable")
                for field in APPROVAL_IMMUTABLE_FIELDS
            ],
            (
                "oldSelf.decision == 'Pending' || self.decision == oldSelf.decision",
                "a decision is final: it can change only from Pending to Approved or Denied",
            ),
            (
                "oldSelf.decision == 'Pending' || self.note == oldSelf.note",
                "the note is final with the decision",
            ),
            (
                "has(self.decider) == (self.decision != 'Pending')",
                "spec.decider is recorded by the cluster with the decision, and only then",
            ),
            (
                "!has(oldSelf.decider) || (has(self.decider) && self.decider == oldSelf.decider)",
                "spec.decider is immutable",
            ),
        )
    )
    jobName: str = Field(
        description="Name of the SandboxJob in this namespace.",
        min_length=1,
        max_length=MAX_NAME_LENGTH,
    )
    jobUid: str = Field(
        description="UID of the SandboxJob; the approval applies to that object only.",
        min_length=1,
        max_length=64,
    )
    specHash: str = Field(
        description="SHA-256 of the job's spec when it was reviewed; the job runs only if it still "
        "matches.",
        min_length=64,
        max_length=64,
    )
    command: list[Annotated[str, Field(max_length=MAX_COMMAND_LENGTH)]] = Field(
        description="The exact argv under review; this and nothing else runs if approved.",
        min_length=1,
        max_length=MAX_ARGV_ITEMS,
    )
    networkProfile: NetworkProfile = Field(description="The network profile the command gets.")
    source: Source = Field(description="The files the command runs on.")
    sourceDigest: str = Field(
        description="Content digest (sha256:...) of the files under review, as the operator read "
        "them when it asked; the command runs only on files with this digest.",
        pattern=DIGEST_PATTERN,
    )
    decision: ApprovalDecision = Field(
        default=ApprovalDecision.PENDING,
        description="Pending until a human sets Approved or Denied; final once set.",
    )
    note: str = Field(
        default="", max_length=MAX_TEXT_LENGTH, description="Optional: why (free text), set with the decision."
    )
    requester: Identity = Field(
        description="Who submitted the job (its spec.requester); the cluster refuses a decision by "
        "this user."
    )
    decider: Identity | None = Field(
        default=None,
        description="Who set the decision, as the API server authenticated them: recorded by the "
        "cluster with the decision (leave it out), never the requester.",
    )


class ApprovalStatus(BaseModel):
    """The operator's record of the decision."""

    model_config = _strict()
    phase: ApprovalPhase | None = Field(
        default=None, description="Pending, Approved, Denied or Expired; final once not Pending."
    )
    decidedBy: str | None = Field(
        default=None,
        description="Who decided: the authenticated user the cluster recorded in spec.decider.",
    )
    decidedAt: str | None = Field(default=None, description="When the operator saw the decision.")
    message: str | None = Field(default=None, description="One sentence for a human.")


class Approval(BaseModel):
    """A human decision on one command a SandboxJob wants to run."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")
    spec: ApprovalSpec = Field(description="The reviewed command and the decision.")
    status: ApprovalStatus = Field(
        default_factory=ApprovalStatus, description="The operator's record of the decision."
    )

    @property
    def name(self) -> str:
        value: str = self.metadata.get("name", "")
        return value


# --------------------------------------------------------------------------------------- helpers


def spec_hash(spec: SandboxJobSpec) -> str:
    """SHA-256 over the canonical JSON of a spec (defaults filled in), used to bind approvals."""
    # Fields added later are left out while unset (a source kind, the requester), so that the hash
    # of every spec that does not use them stays what it was.
    unset: dict[str, Any] = {}
    if spec.source.bundle is None:
        unset["source"] = {"bundle"}
    if spec.requester is None:
        unset["requester"] = True
    canonical = json.dumps(spec.model_dump(mode="json", exclude=unset or None), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def dump(model: BaseModel) -> dict[str, Any]:
    """The JSON form of a model as the API server stores it (no nulls, enums as strings)."""
    return model.model_dump(mode="json", exclude_none=True)


# ------------------------------------------------------------------- records from the sandbox Pod
#
# Each model reads one record shape of safeagent.sandbox.contract (named beside it), field for field:
# every key required, none unknown, no defaults (tests/unit/test_wire_contract.py compares the two
# both ways). A record of another release therefore fails to parse instead of being read with a
# default in place of what it lacks; the contract's docstring says how the job then ends.

# Records are read, never written by the operator; no aliases, nothing but the contract's keys.
_RECORD = ConfigDict(extra="forbid")


class EgressCheck(BaseModel):
    """The runner's egress pre-flight (safeagent.sandbox.preflight): was the Pod provably filtered.
    Contract: EgressCheckRecord."""

    model_config = _RECORD
    enforced: bool
    rounds: int
    elapsedMs: int
    detail: str
    proof: EgressProof | None  # what proved it, when enforced


class PidsCheck(BaseModel):
    """The runner's proof of a PID bound (safeagent.sandbox.limits). Contract: PidsCheckRecord."""

    model_config = _RECORD
    limited: bool
    available: int
    elapsedMs: int
    detail: str


class RunnerResult(BaseModel):
    """The runner's one result record (safeagent.sandbox.runner), as read from the runner container's log.
    Contract: RunnerRecord."""

    model_config = _RECORD
    kind: RunnerResultKind
    version: RunnerResultVersion
    exitCode: int | None
    signal: str | None
    timedOut: bool
    durationMs: int
    stdout: str
    stderr: str
    stdoutBytes: int
    stderrBytes: int
    stdoutTruncated: bool
    stderrTruncated: bool
    changedFiles: ChangedFiles
    leftoverProcessesKilled: int
    fullVolumes: list[str]
    memoryExhausted: bool
    egress: EgressCheck | None
    pids: PidsCheck | None
    error: str | None


class TreeProblem(BaseModel):
    """One refused entry of the source tree. Contract: TreeProblemRecord."""

    model_config = _RECORD
    reason: str
    path: str
    message: str


class TreeLimits(BaseModel):
    """The caps the source tree was validated against. Contract: TreeLimitsRecord."""

    model_config = _RECORD
    max_files: int
    max_bytes: int
    max_depth: int


class TreeReport(BaseModel):
    """The source tree's validation report (safeagent.sandbox.tree). Contract: TreeReportRecord."""

    model_config = _RECORD
    ok: bool
    reason: str
    message: str
    path: str
    files: int
    directories: int
    bytes: int
    problems: list[TreeProblem]
    limits: TreeLimits


class GitSummary(BaseModel):
    """What neutralising the copy's git directories did (safeagent.sandbox.gitconfig).
    Contract: GitSummaryRecord."""

    model_config = _RECORD
    repository: bool
    kept: int
    dropped: int | None
    gitDirectories: int
    indexRefreshed: bool


class PrepareResult(BaseModel):
    """The preparation step's record (safeagent.sandbox.prepare): was the source copied or rejected.
    Contract: PrepareRecord."""

    model_config = _RECORD
    kind: PrepareResultKind
    ok: bool
    reason: str
    message: str
    files: int | None
    bytes: int | None
    digest: str | None
    report: TreeReport | None
    git: GitSummary | None
