"""The records a sandbox Pod writes are the records the operator reads, key for key.

safeagent.sandbox.contract defines each record once (TypedDicts, every key required); the runner and
the preparation step build theirs from those types; safeagent.models reads them with models that
forbid unknown keys and default none. These tests hold the two definitions to each other both ways,
nested records included, parse what the real runner and preparation step print, and show that a
record of another shape is refused and reported, never read with a default. The last section holds
the typed status fields of safeagent.reconcile.status to the status model the same way.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

import safeagent
from safeagent import models
from safeagent.reconcile import pods, status
from safeagent.reconcile.outcome import no_record_outcome
from safeagent.sandbox import contract, preflight, prepare, runner

PACKAGE_ROOT = str(Path(safeagent.__file__).resolve().parent.parent)

# (the operator's model, the contract's record): the records that cross from the Pod to the operator.
RECORDS = [
    (models.RunnerResult, contract.RunnerRecord),
    (models.PrepareResult, contract.PrepareRecord),
]


# ------------------------------------------------------------------ the two definitions, both ways


def _is_record(annotation: object) -> bool:
    return typing.is_typeddict(annotation) or (isinstance(annotation, type) and issubclass(annotation, BaseModel))


def _fields(record: type) -> dict[str, object]:
    if typing.is_typeddict(record):
        return typing.get_type_hints(record)
    assert issubclass(record, BaseModel)
    return {name: field.annotation for name, field in record.model_fields.items()}


def _strictness(record: type, where: str) -> Iterator[str]:
    """A model forbids unknown keys and defaults none; a TypedDict requires every key."""
    if typing.is_typeddict(record):
        for key in sorted(set(_fields(record)) - record.__required_keys__):
            yield f"{where}{key}: not required in {record.__name__}"
        return
    if record.model_config.get("extra") != "forbid":
        yield f"{where}: {record.__name__} does not forbid unknown keys"
    for name, field in record.model_fields.items():
        if not field.is_required():
            yield f"{where}{name}: {record.__name__} has a default for it"


def _origin(annotation: object) -> object:
    """`X | None` and `Optional[X]` are one thing, however the annotation spelt it."""
    origin = typing.get_origin(annotation)
    return typing.Union if origin is types.UnionType else origin


def _compare(read: object, written: object, where: str) -> Iterator[str]:
    if _is_record(read) and _is_record(written):
        yield from differences(read, written, where + ".")  # type: ignore[arg-type]
    elif typing.get_args(read) or typing.get_args(written):
        read_args, written_args = typing.get_args(read), typing.get_args(written)
        if _origin(read) != _origin(written) or len(read_args) != len(written_args):
            yield f"{where}: the operator reads {read}, the Pod writes {written}"
        for read_arg, written_arg in zip(read_args, written_args):
            yield from _compare(read_arg, written_arg, where)
    elif read != written:
        yield f"{where}: the operator reads {read}, the Pod writes {written}"


def differences(model: type, record: type, where: str = "") -> Iterator[str]:
    """Every way `model` (what the operator reads) and `record` (what the Pod writes) differ."""
    yield from _strictness(model, where)
    yield from _strictness(record, where)
    read, written = _fields(model), _fields(record)
    for key in sorted(set(read) - set(written)):
        yield f"{where}{key}: read by the operator, never written by the Pod"
    for key in sorted(set(written) - set(read)):
        yield f"{where}{key}: written by the Pod, unknown to the operator"
    for key in sorted(set(read) & set(written)):
        yield from _compare(read[key], written[key], where + key)


@pytest.mark.parametrize(("model", "record"), RECORDS, ids=lambda kind: kind.__name__)
def test_the_operator_reads_exactly_the_keys_the_pod_writes(model, record):
    assert list(differences(model, record)) == []


def test_the_comparison_sees_a_renamed_a_retyped_and_a_defaulted_key():
    """The check above would catch the drift it exists for (here in a nested record)."""

    class Changed(typing.TypedDict):
        created: int
        modified: str  # retyped
        deleted: int
        total: int
        complete: bool
        path: list[str]  # renamed

    class Lenient(models.ChangedFiles):
        total: int = 0  # defaulted

    found = list(differences(Lenient, Changed, "changedFiles."))
    assert found == [
        "changedFiles.total: Lenient has a default for it",
        "changedFiles.paths: read by the operator, never written by the Pod",
        "changedFiles.path: written by the Pod, unknown to the operator",
        "changedFiles.modified: the operator reads <class 'int'>, the Pod writes <class 'str'>",
    ]


# ------------------------------------------------------------- what the real sandbox code prints


def _sandbox_lines(module: str, spec: dict | str) -> tuple[int, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-m", module, spec if isinstance(spec, str) else json.dumps(spec)],
        capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": PACKAGE_ROOT, "PATH": os.environ["PATH"]},
    )
    assert proc.stdout.endswith("\n"), (proc.stdout, proc.stderr)
    return proc.returncode, proc.stdout.splitlines()


def _sandbox(module: str, spec: dict | str) -> tuple[int, str]:
    code, lines = _sandbox_lines(module, spec)
    assert len(lines) == 1, lines
    return code, lines[0]


def _runner_spec(workspace: Path, argv: list[str]) -> dict:
    return {"argv": argv, "workspace": str(workspace), "timeoutSeconds": 10, "maxOutputBytes": 1024}


@pytest.mark.parametrize(
    ("spec", "exit_code"),
    [
        (lambda ws: _runner_spec(ws, ["sh", "-c", "echo hi; touch new"]), 0),  # a run
        (lambda ws: _runner_spec(ws, ["/no/such/program"]), 0),  # a command that cannot start
        (lambda ws: "{not json", 2),  # a bad spec
    ],
    ids=["ran", "could-not-start", "bad-spec"],
)
def test_every_record_the_runner_prints_parses_whole(tmp_path, spec, exit_code):
    code, lines = _sandbox_lines("safeagent.sandbox.runner", spec(tmp_path))
    assert code == exit_code
    # A command that ran gets the command's part first, then the final record; the rest one record.
    assert len(lines) == (2 if exit_code == 0 else 1)
    for line in lines:
        # The operator finds its record by this prefix (safeagent.reconcile.pods.read_record).
        assert line.startswith('{"kind":"' + contract.RUNNER_RESULT_KIND + '"')
        record = json.loads(line)
        assert set(record) == set(contract.RunnerRecord.__annotations__)
        models.RunnerResult.model_validate(record)
    if len(lines) == 2:
        first, final = (json.loads(line) for line in lines)
        assert first["error"] == (final["error"] or runner.LISTING_UNFINISHED) and not first["changedFiles"]["complete"]
        assert {key: value for key, value in first.items() if key not in ("error", "changedFiles")} == {
            key: value for key, value in final.items() if key not in ("error", "changedFiles")
        }
        assert final["changedFiles"]["complete"]


@pytest.mark.parametrize("round_proof", [None, "refusal"], ids=["not-proven", "proven"])
def test_a_pre_flight_verdict_travels_whole_in_the_runner_record(round_proof):
    spec = {"host": "canary", "openPort": 1, "closedPort": 2, "deadlineSeconds": 0}
    egress = preflight.check(spec, round_=lambda *_: preflight.Round(round_proof, "shown"), pause=lambda _: None)
    assert set(egress) == set(contract.EgressCheckRecord.__annotations__)
    parsed = models.RunnerResult.model_validate(json.loads(json.dumps(runner.no_result(None, egress))))
    assert parsed.egress is not None and parsed.egress.enforced is (round_proof is not None)


def _prepare_spec(source: Path, workspace: Path, kind: str = contract.SOURCE_PVC) -> dict:
    return {"source": kind, "sourceDir": str(source), "workspace": str(workspace), "maxFiles": 100, "maxBytes": 1 << 20}


@pytest.mark.parametrize(
    ("layout", "exit_code", "reason"),
    [
        ("plain", 0, contract.PREPARE_COPIED),
        ("link", 1, "symlink"),  # refused by the tree check: the record carries its report
        ("bad-spec", 2, contract.PREPARE_ERROR),
    ],
)
def test_every_record_the_preparation_step_prints_parses_whole(tmp_path, layout, exit_code, reason):
    source, workspace = tmp_path / "source", tmp_path / "workspace"
    source.mkdir()
    workspace.mkdir()
    (source / "src").mkdir()
    (source / "src" / "app.py").write_text("print(1)\n")
    if layout == "link":
        (source / "escape").symlink_to("/etc/passwd")
    spec = _prepare_spec(source, workspace, "tarball" if layout == "bad-spec" else contract.SOURCE_PVC)
    code, line = _sandbox("safeagent.sandbox.prepare", spec)
    assert line.startswith('{"kind":"' + contract.PREPARE_RESULT_KIND + '"')
    record = json.loads(line)
    assert set(record) == set(contract.PrepareRecord.__annotations__)
    parsed = models.PrepareResult.model_validate(record)
    assert (code, parsed.reason) == (exit_code, reason)
    assert (parsed.report is not None) is (layout != "bad-spec")
    assert (parsed.git is not None and parsed.digest is not None) is (layout == "plain")


# ------------------------------------------------------------ another shape: refused and reported


def _whole_runner_record() -> dict:
    return json.loads(json.dumps(runner.no_result("x")))


@pytest.mark.parametrize("key", sorted(contract.RunnerRecord.__annotations__))
def test_a_runner_record_without_a_key_is_refused(key):
    record = _whole_runner_record()
    del record[key]
    with pytest.raises(ValidationError):
        models.RunnerResult.model_validate(record)


@pytest.mark.parametrize(
    "change",
    [
        lambda record: record.update(exit_code=record.pop("exitCode")),  # renamed
        lambda record: record.update(newKey=1),  # added
        lambda record: record.update(version=contract.RUNNER_RESULT_VERSION + 1),  # another version
        lambda record: record["changedFiles"].pop("paths"),  # nested, missing
        lambda record: record["changedFiles"].update(renamed=[]),  # nested, unknown
    ],
    ids=["renamed", "added", "version", "nested-missing", "nested-unknown"],
)
def test_a_runner_record_of_another_shape_is_refused(change):
    record = _whole_runner_record()
    change(record)
    with pytest.raises(ValidationError):
        models.RunnerResult.model_validate(record)


@pytest.mark.parametrize("key", sorted(contract.PrepareRecord.__annotations__))
def test_a_preparation_record_without_a_key_is_refused(key):
    record = json.loads(json.dumps(prepare.record(False, "symlink", "a link")))
    del record[key]
    with pytest.raises(ValidationError):
        models.PrepareResult.model_validate(record)


class _Log:
    """The one API call read_record makes."""

    def __init__(self, text: str) -> None:
        self.text = text

    def read_pod_log(self, namespace: str, pod: str, container: str, limit: int) -> str:
        return self.text


def test_a_record_from_another_release_ends_the_job_unreadable_and_the_log_says_why(caplog):
    record = _whole_runner_record()
    record["exit_code"] = record.pop("exitCode")  # what a runner with a renamed key would print
    job = types.SimpleNamespace(namespace="sandbox", ctx=types.SimpleNamespace(kube=_Log(json.dumps(record, separators=(",", ":")))))
    with caplog.at_level(logging.WARNING, logger="safeagent.reconcile"):
        assert pods.read_record(job, "pod", "runner", models.RunnerResult, 1 << 20) is None
    refused = [entry for entry in caplog.records if entry.getMessage() == "record refused"]
    assert refused and "exitCode" in refused[0].error and "exit_code" in refused[0].error
    ending = no_record_outcome(None, 0)
    assert (ending.phase, ending.reason) == (models.JobPhase.FAILED, "ResultUnreadable")


def _read(text: str) -> models.RunnerResult | None:
    job = types.SimpleNamespace(namespace="sandbox", ctx=types.SimpleNamespace(kube=_Log(text)))
    return pods.read_record(job, "pod", "runner", models.RunnerResult, 1 << 20)


def test_the_last_complete_record_is_read_and_a_cut_off_one_is_passed_over():
    first = {**_whole_runner_record(), "exitCode": 3, "error": runner.LISTING_UNFINISHED}
    final = {**first, "error": None}
    lines = [json.dumps(record, separators=(",", ":")) for record in (first, final)]
    both = _read("\n".join(lines) + "\n")
    assert both is not None and both.exitCode == 3 and both.error is None
    # The runner was killed while writing its final record: the command's part stands.
    cut = _read(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
    assert cut is not None and cut.exitCode == 3 and cut.error == runner.LISTING_UNFINISHED
    # A broken line that is not the last, cut-off one is not passed over.
    assert _read(lines[0] + "\n" + lines[1][:-1] + "\n") is None


# ------------------------------------------------------------------- typed status updates, both ways

# Written by Job.apply itself, never by a step.
APPLIED_FIELDS = {"observedGeneration", "completionTime", "conditions"}


def test_the_typed_status_fields_are_the_status_models_fields():
    typed = typing.get_type_hints(status.StatusFields)
    model = {name: field.annotation for name, field in models.SandboxJobStatus.model_fields.items()}
    assert set(typed) == set(model) - APPLIED_FIELDS
    assert {name: typed[name] for name in typed} == {name: model[name] for name in typed}
    assert status.StatusFields.__required_keys__ == frozenset()
    # `finished` takes the outcome as arguments: the rest is what its keywords may set.
    assert set(typing.get_type_hints(status.FinishedFields)) == set(typed) - {"phase", "reason", "message"}
