"""The wire contract between the operator and its sandbox Pod: the spec in, the record out.

The operator (safeagent.builders) writes each container's spec as one JSON argument; inside the
Pod, safeagent.sandbox.runner and safeagent.sandbox.prepare check it against the shapes here and
print one JSON record of the shape defined here; the operator reads that record back
(safeagent.models) and interprets the stable reasons named here (safeagent.reconcile.outcome).
Both sides import this one module, so neither can change the format without the other seeing it.

The records are TypedDicts with every key required: the writers build them through these types
(mypy refuses a record with a key missing, added or misspelt), and the operator's models forbid
unknown keys and default none, with a unit test (tests/unit/test_wire_contract.py) holding their
fields to the ones here, nested records included, both ways. A value that is sometimes absent is
a required key whose value may be null, never a missing key.

Version skew. The sandbox image and the operator ship together (one chart, one release), so a
record is always read by the operator of its own release. Should they differ anyway (an image
pinned by hand, a Pod that outlived an upgrade), a record with a key the operator does not know,
without one it needs, or of another `version` does not parse: the job ends Failed with reason
ResultUnreadable (a runner record) or PrepareFailed (a preparation record), and the operator's log
names the keys that did not match. It never reads such a record with a default standing in for
a missing value. Change a record's keys here, in safeagent.models and in the runner together, and
raise RUNNER_RESULT_VERSION when the runner record changes.

Standard library only: it runs inside the sandbox image. No `from __future__ import annotations`
here: the required keys below are read from the TypedDicts at run time, which needs real
`NotRequired[...]` annotations, not strings.
"""

from typing import Final, Literal, NotRequired, TypedDict

# ------------------------------------------------------------------------- records, Pod -> operator

# The runner's one result record (RunnerRecord below; read by safeagent.models.RunnerResult).
RunnerResultKind = Literal["safeagent.ca/runner-result"]
RUNNER_RESULT_KIND: Final[RunnerResultKind] = "safeagent.ca/runner-result"
RunnerResultVersion = Literal[2]
RUNNER_RESULT_VERSION: Final[RunnerResultVersion] = 2

# The preparation step's record (PrepareRecord below; read by safeagent.models.PrepareResult).
PrepareResultKind = Literal["safeagent.ca/prepare-result"]
PREPARE_RESULT_KIND: Final[PrepareResultKind] = "safeagent.ca/prepare-result"

# The preparation step's reasons that the operator interprets. Any other reason of a record with
# `ok: false` is the source's own fault (e.g. `too_large`, `symlink`) and is reported as it is.
PREPARE_COPIED: Final = "copied"  # ok: the source was validated and copied
PREPARE_SOURCE_CHANGED: Final = "source_changed"  # not the source that was approved
PREPARE_ERROR: Final = "prepare_error"  # the step's own failure (bad spec, internal error)

# ------------------------------------------------------------------------- specs, operator -> Pod

SourceKind = Literal["configMap", "persistentVolumeClaim", "bundle"]
SOURCE_CONFIGMAP: Final[SourceKind] = "configMap"
SOURCE_PVC: Final[SourceKind] = "persistentVolumeClaim"
SOURCE_BUNDLE: Final[SourceKind] = "bundle"  # chunks in a projected volume (safeagent.sandbox.bundle)


# What proves the closed port filtered (safeagent.sandbox.preflight): an explicit refusal only, or
# also a silence the canary vouches for (for enforcers that drop rather than refuse).
EgressProof = Literal["refusal", "silence"]
EGRESS_PROOFS: Final[tuple[EgressProof, ...]] = ("refusal", "silence")
# How every line of the egress canary (safeagent.sandbox.canary) begins, protocol version included.
CANARY_PREFIX: Final = "safeagent-canary 2"


class EgressCheckSpec(TypedDict):
    """What the runner's pre-flight (safeagent.sandbox.preflight) connects to before anything runs."""

    host: str
    openPort: int
    closedPort: int
    deadlineSeconds: float
    checkDns: NotRequired[bool]  # also prove that DNS is filtered (the profile does not allow it)
    proof: NotRequired[EgressProof]  # what counts as filtered; default "refusal"


class PidsSpec(TypedDict):
    """The PID bound the runner proves before the command (safeagent.sandbox.limits)."""

    max: int  # the bound must refuse a task before this many more were started
    required: bool  # no such bound: run nothing (the job ends ResourcesNotLimited)


class RunnerSpec(TypedDict):
    """`python3 -I -m safeagent.sandbox.runner SPEC`."""

    argv: list[str]
    workspace: NotRequired[str]  # default /workspace
    timeoutSeconds: int
    maxOutputBytes: int
    scratch: NotRequired[dict[str, str]]  # volume name -> mount path, to report which ran full
    egressCheck: NotRequired[EgressCheckSpec]  # absent: no pre-flight
    pids: NotRequired[PidsSpec]  # absent: no PID proof
    # Stop the command when less than this many bytes of the container's memory are left, so the
    # runner can still list the workspace and write its record (safeagent.sandbox.limits); absent: 0.
    memoryMarginBytes: NotRequired[int]
    # The container's termination message file: writable by every process of the container, and on
    # the node's disk, not in a capped volume. The runner stops a command that writes more than
    # TERMINATION_LOG_CAP bytes into it, empties it and reports it full; absent: not watched.
    terminationLog: NotRequired[str]


class ChannelSpec(TypedDict):
    """Where a warm Pod's runner waits for its one job (safeagent.sandbox.warm, safeagent.sandbox.channel)."""

    port: int  # 0: any free port (tests); the ready file names the one taken
    idleSeconds: float  # no job by then: run nothing and leave
    maxRequestBytes: int  # the request line's cap: the source cap plus room for the rest
    readyFile: str  # written (the port, in decimal) once listening with every proof done; removed at the delivery
    stagingDir: str  # where the delivered source is laid out for the preparation step; removed before the command
    reproveSeconds: float  # the egress proof again at the delivery, at most this long


class WarmSpec(TypedDict):
    """`python3 -I -m safeagent.sandbox.warm SPEC`: a RunnerSpec without the job's own keys (`argv`,
    `timeoutSeconds`, `maxOutputBytes`, which the request brings), with the channel's."""

    channel: ChannelSpec
    workspace: NotRequired[str]
    scratch: NotRequired[dict[str, str]]
    egressCheck: NotRequired[EgressCheckSpec]
    pids: NotRequired[PidsSpec]
    memoryMarginBytes: NotRequired[int]
    terminationLog: NotRequired[str]


class WarmPrepareRequest(TypedDict):
    """The preparation step's part of a warm request: a PrepareSpec without the paths, which are the Pod's."""

    source: SourceKind  # configMap or bundle: a volume cannot reach a running Pod
    maxFiles: int
    maxBytes: int
    expectedDigest: NotRequired[str]
    bundle: NotRequired[str]  # a bundle source: its manifest's name, as in PrepareSpec


class WarmRequest(TypedDict):
    """What the operator delivers to a warm Pod over its channel: one job.

    `files` is the source volume the cold Pod would have mounted, whatever the source: each file's
    name and its bytes in base64 (a ConfigMap: one file per key; a bundle: `manifest.json` and one
    file per chunk, named after its object). The runner lays them out as the kubelet would and the
    preparation step checks them as it checks a mounted volume: nothing in them is trusted here."""

    argv: list[str]
    timeoutSeconds: int
    maxOutputBytes: int
    prepare: WarmPrepareRequest
    files: dict[str, str]


class PrepareSpec(TypedDict):
    """`python3 -I -m safeagent.sandbox.prepare SPEC`."""

    source: SourceKind
    sourceDir: str
    workspace: str
    maxFiles: int
    maxBytes: int
    expectedDigest: NotRequired[str]  # an approved job: the reviewed content's digest
    bundle: NotRequired[str]  # a bundle source: its manifest's name (sa-bundle-<sha256>)


# The `error` of the runner's first record (the command's part), which the final record replaces once
# the workspace is listed: a record with it is not the last the runner means to write.
LISTING_UNFINISHED: Final = (
    "the runner ended before it finished listing the workspace; the command's result above is complete"
)

# A warm Pod's runner record when the preparation step refused the source or failed: that step's
# record precedes it in the same log (safeagent.sandbox.warm), and nothing ran.
WARM_PREPARE_FAILED: Final = "the source was not prepared (the preparation record above says why); nothing ran"

# The keys a spec must carry, read off the shapes above (the runtime keeps them on the class).
RUNNER_SPEC_REQUIRED: Final = RunnerSpec.__required_keys__
EGRESS_CHECK_REQUIRED: Final = EgressCheckSpec.__required_keys__
PREPARE_SPEC_REQUIRED: Final = PrepareSpec.__required_keys__
PIDS_SPEC_REQUIRED: Final = PidsSpec.__required_keys__
CHANNEL_SPEC_REQUIRED: Final = ChannelSpec.__required_keys__
WARM_REQUEST_REQUIRED: Final = WarmRequest.__required_keys__
# Keys of an earlier shape of the request, refused by name: a runner never guesses at a request.
WARM_REQUEST_RETIRED: Final = frozenset({"configMap"})
# The job's own keys of a RunnerSpec: a warm Pod's spec has none of them, its request brings them.
RUNNER_JOB_KEYS: Final = frozenset({"argv", "timeoutSeconds", "maxOutputBytes"})
# The kubelet reads at most this much of a termination message; more is only a way to fill the node's disk.
TERMINATION_LOG_CAP: Final = 4096
# The name a termination log written past its cap has in a record's `fullVolumes`.
TERMINATION_LOG_VOLUME: Final = "termination-log"


# --------------------------------------------------------------------- record shapes, Pod -> operator


class ChangedFilesRecord(TypedDict):
    """Workspace entries the command created, modified and deleted (safeagent.sandbox.runner.diff)."""

    created: int
    modified: int
    deleted: int
    total: int  # created + modified + deleted
    complete: bool  # false: the workspace could not be fully inspected
    paths: list[str]  # a sample, each prefixed with + (created), ~ (modified) or - (deleted)


class EgressCheckRecord(TypedDict):
    """The pre-flight's verdict (safeagent.sandbox.preflight.check)."""

    enforced: bool
    rounds: int
    elapsedMs: int
    detail: str
    proof: EgressProof | None  # what proved the egress filtered; null when it was not


class PidsCheckRecord(TypedDict):
    """The PID proof's verdict (safeagent.sandbox.limits.prove_pids_limit)."""

    limited: bool  # the kernel refused a task before the spec's `max`
    available: int  # tasks the probe started before the refusal (or in all)
    elapsedMs: int
    detail: str


class RunnerRecord(TypedDict):
    """The runner's result record. A record of a run that never got a result of the command
    (a bad spec, egress or PIDs not proven, the runner's own failure) carries every key too: null
    exit code, empty streams and a `changedFiles` that is not `complete`.

    The runner writes it twice when the command ran: once as soon as the command and everything
    it left are gone (its `changedFiles` not `complete`, `error` saying the listing did not
    finish), then again, final, after listing the workspace. The operator reads the last complete
    line, so a runner stopped while listing (its Pod's deadline) still leaves the command's exit
    code and output."""

    kind: RunnerResultKind
    version: RunnerResultVersion
    exitCode: int | None  # null: the command did not run or its end is unknown (see `error`)
    signal: str | None  # the signal that killed it (SIGKILL, SIGRTMIN+6 ...)
    timedOut: bool
    durationMs: int
    stdout: str  # at most maxOutputBytes of each stream
    stderr: str
    stdoutBytes: int  # all the bytes written, kept or not
    stderrBytes: int
    stdoutTruncated: bool
    stderrTruncated: bool
    changedFiles: ChangedFilesRecord
    leftoverProcessesKilled: int
    fullVolumes: list[str]  # scratch volumes the command filled
    memoryExhausted: bool  # the runner stopped the command: the container's memory was nearly all used
    egress: EgressCheckRecord | None  # null: the spec asked for no pre-flight, or none finished
    pids: PidsCheckRecord | None  # null: the spec asked for no PID proof
    error: str | None  # the runner's own trouble (a bad spec, a command that could not start ...)


class TreeProblemRecord(TypedDict):
    """One refused entry of a source tree (safeagent.sandbox.tree)."""

    reason: str
    path: str
    message: str


class TreeLimitsRecord(TypedDict):
    """The caps a tree was validated against."""

    max_files: int
    max_bytes: int
    max_depth: int


class TreeReportRecord(TypedDict):
    """A source tree's validation report (safeagent.sandbox.tree.validate_tree; also what
    `safeagent validate-tree` prints)."""

    ok: bool
    reason: str
    message: str
    path: str
    files: int
    directories: int
    bytes: int
    problems: list[TreeProblemRecord]  # the first few
    limits: TreeLimitsRecord


class GitSummaryRecord(TypedDict):
    """What neutralising the copy's git directories did (safeagent.sandbox.gitconfig)."""

    repository: bool  # the workspace has a top-level .git directory
    kept: int  # keys of the top-level config kept
    dropped: int | None  # keys dropped (null: the config did not parse, so none were kept)
    gitDirectories: int  # git directories neutralised in all
    indexRefreshed: bool


class PrepareRecord(TypedDict):
    """The preparation step's record. `files`, `bytes`, `digest` and `git` are null unless the
    source was copied; `report` is null unless the tree was validated."""

    kind: PrepareResultKind
    ok: bool
    reason: str  # copied, source_changed, prepare_error, or the source's own fault
    message: str
    files: int | None
    bytes: int | None
    digest: str | None  # the copy's content digest (safeagent.sandbox.digest)
    report: TreeReportRecord | None
    git: GitSummaryRecord | None
