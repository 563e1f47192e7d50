"""The wire contract between the operator and its sandbox Pod: the spec in, the record out.

The operator (safeagent.builders) writes each container's spec as one JSON argument; inside the
Pod, safeagent.sandbox.runner and safeagent.sandbox.prepare check it against the shapes here and
print one JSON record whose kind and version are named here; the operator reads that record back
(safeagent.models) and interprets the stable reasons named here (safeagent.reconcile.outcome).
Both sides import this one module, so neither can change the format without the other seeing it.

Standard library only: it runs inside the sandbox image. No `from __future__ import annotations`
here: the required keys below are read from the TypedDicts at run time, which needs real
`NotRequired[...]` annotations, not strings.
"""

from typing import Final, Literal, NotRequired, TypedDict

# ------------------------------------------------------------------------- records, Pod -> operator

# The runner's one result record (see safeagent.models.RunnerResult for its fields).
RunnerResultKind = Literal["safeagent.ca/runner-result"]
RUNNER_RESULT_KIND: Final[RunnerResultKind] = "safeagent.ca/runner-result"
RunnerResultVersion = Literal[1]
RUNNER_RESULT_VERSION: Final[RunnerResultVersion] = 1

# The preparation step's record (see safeagent.models.PrepareResult for its fields).
PrepareResultKind = Literal["safeagent.ca/prepare-result"]
PREPARE_RESULT_KIND: Final[PrepareResultKind] = "safeagent.ca/prepare-result"

# The preparation step's reasons that the operator interprets. Any other reason of a record with
# `ok: false` is the source's own fault (e.g. `too_large`, `symlink`) and is reported as it is.
PREPARE_COPIED: Final = "copied"  # ok: the source was validated and copied
PREPARE_SOURCE_CHANGED: Final = "source_changed"  # not the source that was approved
PREPARE_ERROR: Final = "prepare_error"  # the step's own failure (bad spec, internal error)

# ------------------------------------------------------------------------- specs, operator -> Pod

SourceKind = Literal["configMap", "persistentVolumeClaim"]
SOURCE_CONFIGMAP: Final[SourceKind] = "configMap"
SOURCE_PVC: Final[SourceKind] = "persistentVolumeClaim"


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


class RunnerSpec(TypedDict):
    """`python3 -I -m safeagent.sandbox.runner SPEC`."""

    argv: list[str]
    workspace: NotRequired[str]  # default /workspace
    timeoutSeconds: int
    maxOutputBytes: int
    scratch: NotRequired[dict[str, str]]  # volume name -> mount path, to report which ran full
    egressCheck: NotRequired[EgressCheckSpec]  # absent: no pre-flight


class PrepareSpec(TypedDict):
    """`python3 -I -m safeagent.sandbox.prepare SPEC`."""

    source: SourceKind
    sourceDir: str
    workspace: str
    maxFiles: int
    maxBytes: int
    expectedDigest: NotRequired[str]  # an approved job: the reviewed content's digest


# The keys a spec must carry, read off the shapes above (the runtime keeps them on the class).
RUNNER_SPEC_REQUIRED: Final = RunnerSpec.__required_keys__
EGRESS_CHECK_REQUIRED: Final = EgressCheckSpec.__required_keys__
PREPARE_SPEC_REQUIRED: Final = PrepareSpec.__required_keys__
