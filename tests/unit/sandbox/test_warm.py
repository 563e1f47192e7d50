"""safeagent.sandbox.warm run for real on this host: `python3 -m safeagent.sandbox.warm SPEC`, a job
delivered over its channel on loopback, the preparation step and the command really run."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import safeagent
from safeagent.sandbox import bundle, channel, contract, prepare
from safeagent.sandbox.digest import digest_tree

PACKAGE_ROOT = str(Path(safeagent.__file__).resolve().parent.parent)
TOKEN = "fedcba9876543210" * 4


class WarmPod:
    """A warm runner started on this host, its paths under one temporary directory."""

    def __init__(self, root: Path, idle: float = 20.0, spec: dict[str, Any] | None = None,
                 token: str | None = TOKEN) -> None:
        self.root = root
        self.workspace, self.tmp = root / "workspace", root / "tmp"
        self.workspace.mkdir()
        self.tmp.mkdir()
        self.ready, self.staging = self.tmp / ".ready", self.tmp / ".source"
        self.spec = spec or self.default_spec(root, idle)
        env = {"PYTHONPATH": PACKAGE_ROOT, "PATH": os.environ["PATH"]}
        if token is not None:
            env[channel.TOKEN_ENV] = token
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "safeagent.sandbox.warm", json.dumps(self.spec)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd="/",
        )

    @staticmethod
    def default_spec(root: Path, idle: float = 20.0) -> dict[str, Any]:
        workspace, tmp = root / "workspace", root / "tmp"
        return {
            "workspace": str(workspace),
            "scratch": {"workspace": str(workspace), "tmp": str(tmp)},
            "channel": {"port": 0, "idleSeconds": idle, "maxRequestBytes": 1 << 20, "readyFile": str(tmp / ".ready"),
                        "stagingDir": str(tmp / ".source"), "reproveSeconds": 1.0},
        }

    def port(self) -> int:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.ready.exists() and self.ready.read_text().endswith("\n"):
                return int(self.ready.read_text())
            assert self.proc.poll() is None, self.proc.communicate()
            time.sleep(0.02)
        raise AssertionError("the warm runner never said it was ready")

    def deliver(self, request: dict[str, Any], token: str = TOKEN) -> None:
        channel.deliver("127.0.0.1", self.port(), token, request, timeout=5)

    def records(self) -> tuple[int, list[dict[str, Any]]]:
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, [json.loads(line) for line in out.decode().splitlines()]


def _b64(content: bytes) -> str:
    return base64.b64encode(content).decode()


def request(argv: list[str], data: dict[str, str] | None = None, binary: dict[str, bytes] | None = None,
            **prepare: Any) -> dict[str, Any]:
    """A ConfigMap source's job: its keys' files (text `data`, bytes `binary`)."""
    files = {key: _b64(text.encode()) for key, text in
             (data if data is not None else {"README.md": "hello\n", "src--app.py": "print(1)\n"}).items()}
    files.update((key, _b64(value)) for key, value in (binary or {}).items())
    return {
        "argv": argv, "timeoutSeconds": 20, "maxOutputBytes": 65536,
        "prepare": {"source": "configMap", "maxFiles": 100, "maxBytes": 1 << 20, **prepare},
        "files": files,
    }


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for path, content in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(content)
    return root


def packed(root: Path, files: dict[str, bytes]) -> bundle.Packed:
    """`files` as a tree under `root`, packed as `safeagent run --source DIR` packs it."""
    return bundle.pack(str(tree(root, files)))


def bundle_request(argv: list[str], source: bundle.Packed, chunk: bytes | None = None,
                   manifest: bytes | None = None, **prepare: Any) -> dict[str, Any]:
    """A bundle source's job, its volume's files as the operator reads them (a chunk or the manifest
    replaced by other bytes under the same name, when given)."""
    files = {bundle.MANIFEST_KEY: _b64(manifest if manifest is not None else source.manifest)}
    files.update((bundle.chunk_name(digest), _b64(chunk if chunk is not None else source.compressed(digest)))
                 for digest in source.chunks)
    return {
        "argv": argv, "timeoutSeconds": 20, "maxOutputBytes": 65536,
        "prepare": {"source": "bundle", "bundle": source.name, "maxFiles": 100, "maxBytes": 1 << 20, **prepare},
        "files": files,
    }


def _kinds(records: list[dict[str, Any]]) -> list[str]:
    return [record["kind"] for record in records]


def test_a_delivered_job_is_prepared_and_run_like_a_cold_one(tmp_path):
    pod = WarmPod(tmp_path)
    pod.deliver(request(["ls", "-R"], binary={"logo.bin": b"\x00\xff"}))
    code, records = pod.records()
    assert code == 0
    assert _kinds(records)[0] == contract.PREPARE_RESULT_KIND
    prepared, final = records[0], records[-1]
    assert prepared["ok"] is True and prepared["files"] == 3
    assert final["kind"] == contract.RUNNER_RESULT_KIND and final["exitCode"] == 0
    assert final["stdout"].split() == [".:", "README.md", "logo.bin", "src", "./src:", "app.py"]
    assert (pod.workspace / "logo.bin").read_bytes() == b"\x00\xff"
    assert not pod.staging.exists() and not pod.ready.exists()


def test_the_command_gets_neither_the_token_nor_the_staged_source(tmp_path):
    pod = WarmPod(tmp_path)
    pod.deliver(request(["sh", "-c", f"env; ls -a {tmp_path / 'tmp'}"]))
    _, records = pod.records()
    stdout = records[-1]["stdout"]
    assert channel.TOKEN_ENV not in stdout and TOKEN not in stdout
    assert stdout.split()[-2:] == [".", ".."]  # /tmp holds nothing: no ready file, no staging directory


def test_the_channel_is_closed_before_the_command_starts(tmp_path):
    pod = WarmPod(tmp_path)
    port = pod.port()
    probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), 2)"
    pod.deliver(request([sys.executable, "-c", probe]))
    _, records = pod.records()
    assert records[-1]["exitCode"] == 1
    assert "ConnectionRefusedError" in records[-1]["stderr"]


def test_no_job_within_the_idle_time_runs_nothing(tmp_path):
    pod = WarmPod(tmp_path, idle=0.5)
    code, records = pod.records()
    assert code == 0 and len(records) == 1
    assert records[0]["exitCode"] is None
    assert records[0]["error"].startswith("no job delivered: no request within")
    assert not pod.ready.exists()


def test_a_wrong_token_is_turned_away_and_the_right_one_still_gets_in(tmp_path):
    pod = WarmPod(tmp_path)
    with pytest.raises(channel.ChannelError):
        pod.deliver(request(["touch", "stranger"]), token="0" * 64)
    pod.deliver(request(["ls"]))
    _, records = pod.records()
    assert records[-1]["stdout"].split() == ["README.md", "src"]


def test_an_approved_job_whose_source_changed_runs_nothing(tmp_path):
    pod = WarmPod(tmp_path)
    pod.deliver(request(["touch", "ran"], expectedDigest="sha256:" + "0" * 64))
    _, records = pod.records()
    assert records[0]["reason"] == contract.PREPARE_SOURCE_CHANGED
    assert records[-1]["error"] == contract.WARM_PREPARE_FAILED and records[-1]["exitCode"] is None
    assert not (pod.workspace / "ran").exists()


def test_an_approved_job_with_its_source_unchanged_runs(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = WarmPod(tmp_path / "a")
    first.deliver(request(["true"]))
    _, records = first.records()
    digest = records[0]["digest"]
    second = WarmPod(tmp_path / "b")
    second.deliver(request(["ls"], expectedDigest=digest))
    _, records = second.records()
    assert records[0]["ok"] is True and records[-1]["exitCode"] == 0


# ------------------------------------------------------------------------ a bundle source, delivered

BUNDLE_TREE = {
    "README.md": b"hello\n",
    "bin/run.sh": b"#!/bin/sh\necho ran\n",
    "data/big.bin": bytes(range(256)) * 3200,  # 800 KiB: chunks of its own, cut at bundle.MAX_CHUNK
    "data/logo.bin": b"\x00\xff",
}


def _bundle_pod(tmp_path: Path) -> WarmPod:
    spec = WarmPod.default_spec(tmp_path / "pod")
    spec["channel"]["maxRequestBytes"] = 4 << 20
    (tmp_path / "pod").mkdir()
    return WarmPod(tmp_path / "pod", spec=spec)


def _packed_tree(tmp_path: Path) -> bundle.Packed:
    root = tree(tmp_path / "tree", BUNDLE_TREE)
    os.chmod(root / "bin" / "run.sh", 0o755)
    return bundle.pack(str(root))


def test_a_delivered_bundle_is_rebuilt_checked_and_run_like_a_cold_one(tmp_path):
    source = _packed_tree(tmp_path)
    assert len(source.chunks) >= 3  # several chunk files laid out, not just one
    digest = bundle.tree_digest(json.loads(source.manifest))
    pod = _bundle_pod(tmp_path)
    pod.deliver(bundle_request(["sh", "-c", "ls -R; ./bin/run.sh"], source, expectedDigest=digest))
    code, records = pod.records()
    assert code == 0 and _kinds(records)[0] == contract.PREPARE_RESULT_KIND
    prepared, final = records[0], records[-1]
    assert prepared["ok"] is True and prepared["files"] == 4 and prepared["digest"] == digest
    assert prepared["digest"] == digest_tree(str(tmp_path / "tree"))  # the tree the client packed
    assert final["exitCode"] == 0 and final["stdout"].split()[-1] == "ran"
    for path, content in BUNDLE_TREE.items():
        assert (pod.workspace / path).read_bytes() == content
    assert not pod.staging.exists()


def _cold_prepare(tmp_path: Path, job: dict[str, Any]) -> dict[str, Any]:
    """The cold Pod's preparation step on a volume laid out by the kubelet from the same objects."""
    volume, workspace = tmp_path / "cold-source", tmp_path / "cold-workspace"
    hidden = volume / "..2026_01_01_00_00_00.1"
    hidden.mkdir(parents=True)
    workspace.mkdir()
    for name, content in job["files"].items():
        (hidden / name).write_bytes(base64.b64decode(content))
        os.symlink(f"..data/{name}", volume / name)
    os.symlink(hidden.name, volume / "..data")
    spec = {**job["prepare"], "sourceDir": str(volume), "workspace": str(workspace)}
    record, _ = prepare.run(json.dumps(spec))
    return dict(record)


@pytest.mark.parametrize(("tamper", "reason"), [
    pytest.param("chunk", "chunk_digest_mismatch", id="a-chunk-holding-other-bytes"),
    pytest.param("manifest", "bundle_digest_mismatch", id="a-manifest-holding-other-bytes"),
    pytest.param("missing-chunk", "chunk_missing", id="a-chunk-left-out"),
    pytest.param("other-name", "bundle_digest_mismatch", id="the-manifest-of-another-name"),
])
def test_a_tampered_bundle_delivered_warm_is_refused_exactly_as_cold(tmp_path, tamper, reason):
    source = _packed_tree(tmp_path)
    other = packed(tmp_path / "other", {"evil.sh": b"echo pwned\n"})
    job = bundle_request(["touch", "ran"], source)
    if tamper == "chunk":
        job["files"][bundle.chunk_name(next(iter(source.chunks)))] = _b64(other.compressed(next(iter(other.chunks))))
    elif tamper == "manifest":
        job["files"][bundle.MANIFEST_KEY] = _b64(other.manifest)
    elif tamper == "missing-chunk":
        del job["files"][bundle.chunk_name(next(iter(source.chunks)))]
    else:
        job["prepare"]["bundle"] = other.name
    pod = _bundle_pod(tmp_path)
    pod.deliver(job)
    _, records = pod.records()
    warm_record, cold_record = records[0], _cold_prepare(tmp_path, job)
    assert warm_record["ok"] is False and warm_record["reason"] == reason
    assert {key: warm_record[key] for key in ("ok", "reason", "message")} == {
        key: cold_record[key] for key in ("ok", "reason", "message")}
    assert records[-1]["error"] == contract.WARM_PREPARE_FAILED and records[-1]["exitCode"] is None
    assert not (pod.workspace / "ran").exists() and not (pod.workspace / "evil.sh").exists()


def test_a_request_of_the_earlier_configmap_shape_runs_nothing(tmp_path):
    pod = WarmPod(tmp_path)
    job = request(["touch", "ran"])
    del job["files"]
    job["configMap"] = {"data": {"README.md": "hello\n"}, "binaryData": {}}
    pod.deliver(job)
    _, records = pod.records()
    assert len(records) == 1 and records[0]["exitCode"] is None
    assert records[0]["error"] == "bad request: a request with configMap is of an earlier shape; this runner takes files"
    assert not (pod.workspace / "ran").exists() and not pod.staging.exists()


@pytest.mark.parametrize(("data", "reason"), [
    pytest.param({"a--..--b": "x"}, "bad_key", id="key-decodes-to-dotdot"),
    pytest.param({f"f{n}": "x" for n in range(101)}, "too_many_files", id="too-many-files"),
])
def test_a_source_the_preparation_step_refuses_runs_nothing(tmp_path, data, reason):
    pod = WarmPod(tmp_path)
    pod.deliver(request(["touch", "ran"], data=data))
    _, records = pod.records()
    assert records[0]["ok"] is False and records[0]["reason"] == reason
    assert records[-1]["error"] == contract.WARM_PREPARE_FAILED
    assert not (pod.workspace / "ran").exists()


@pytest.mark.parametrize(("job", "error"), [
    pytest.param({"argv": []}, "argv must be a non-empty list", id="empty-argv"),
    pytest.param({"files": {"..data": "eA=="}}, "is not a file name", id="hidden-name"),
    pytest.param({"files": {"a/b": "eA=="}}, "is not a file name", id="slash"),
    pytest.param({"files": {"a": "!!"}}, "not base64", id="not-base64"),
    pytest.param({"files": {"a": 1}}, "not base64", id="not-text"),
    pytest.param({"files": ["a"]}, "files must be an object", id="files-not-an-object"),
    pytest.param({"prepare": {"source": "persistentVolumeClaim", "maxFiles": 1, "maxBytes": 1}},
                 "configMap and bundle sources only", id="volume-source"),
    pytest.param({"prepare": {"source": "bundle", "maxFiles": 1, "maxBytes": 1}}, "prepare.bundle must name",
                 id="bundle-unnamed"),
    pytest.param({"prepare": {"source": "configMap", "bundle": "sa-bundle-" + "0" * 64, "maxFiles": 1,
                              "maxBytes": 1}}, "for a bundle source only", id="bundle-name-on-a-configmap"),
    pytest.param({"configMap": {"data": {"a": "x"}, "binaryData": {}}}, "of an earlier shape", id="old-shape"),
])
def test_a_bad_request_runs_nothing_and_says_why(tmp_path, job, error):
    pod = WarmPod(tmp_path)
    pod.deliver({**request(["touch", "ran"]), **job})
    _, records = pod.records()
    assert len(records) == 1 and records[0]["exitCode"] is None
    assert records[0]["error"].startswith("bad request") and error in records[0]["error"]
    assert not (pod.workspace / "ran").exists() and not pod.staging.exists()


def test_a_request_without_a_key_is_refused(tmp_path):
    pod = WarmPod(tmp_path)
    job = request(["ls"])
    del job["prepare"]
    pod.deliver(job)
    _, records = pod.records()
    assert records[0]["error"] == "bad request: the request has no prepare"


@pytest.mark.parametrize(("change", "error"), [
    pytest.param({"argv": ["ls"]}, "a warm spec has no argv", id="job-key-in-spec"),
    pytest.param({"channel": {"port": 0}}, "channel needs", id="channel-incomplete"),
    pytest.param({"timeoutSeconds": 3}, "a warm spec has no timeoutSeconds", id="timeout-in-spec"),
])
def test_a_bad_spec_runs_nothing(tmp_path, change, error):
    pod = WarmPod(tmp_path, spec={**_spec(tmp_path), **change})
    code, records = pod.records()
    assert code == 2 and records[0]["error"].startswith("warm spec: ") and error in records[0]["error"]


def test_no_token_in_the_environment_runs_nothing(tmp_path):
    pod = WarmPod(tmp_path, token=None)
    code, records = pod.records()
    assert code == 2 and channel.TOKEN_ENV in records[0]["error"]


def _spec(root: Path) -> dict[str, Any]:
    return {"channel": {"port": 0, "idleSeconds": 5, "maxRequestBytes": 1024, "readyFile": str(root / "ready"),
                        "stagingDir": str(root / "staging"), "reproveSeconds": 1}}


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def canary_ports():
    """The real egress canary as its own process on loopback. Nothing filters loopback, so the Pod's
    spec names a closed port nobody listens on, whose refusal stands in for an enforcer's; what these
    tests are about is the canary's being there or not."""
    open_port, closed_port = _free_port(), _free_port()
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "safeagent.sandbox.canary", "--open-port", str(open_port),
         "--closed-port", str(closed_port), "--workers", "1"],
        env={"PYTHONPATH": PACKAGE_ROOT, "PATH": os.environ["PATH"]}, stdout=subprocess.PIPE,
        start_new_session=True,  # its workers are forked children: stopped with it as a group
    )
    assert proc.stdout is not None and proc.stdout.readline().startswith(b"canary ")
    # The Pod is told of a closed port nothing listens on: its refusal stands in for the enforcer's.
    yield proc, {"host": "127.0.0.1", "openPort": open_port, "closedPort": _free_port(), "deadlineSeconds": 5}
    _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def test_egress_is_proved_while_warm_and_again_at_the_delivery(tmp_path, canary_ports):
    _, check = canary_ports
    pod = WarmPod(tmp_path, spec={**WarmPod.default_spec(tmp_path), "egressCheck": check})
    pod.deliver(request(["ls"]))
    _, records = pod.records()
    assert records[-1]["exitCode"] == 0 and records[-1]["egress"]["enforced"] is True


def test_egress_lost_while_warm_is_caught_at_the_delivery_and_nothing_runs(tmp_path, canary_ports):
    canary_proc, check = canary_ports
    pod = WarmPod(tmp_path, spec={**WarmPod.default_spec(tmp_path), "egressCheck": check})
    pod.port()  # proved and listening
    _stop(canary_proc)  # what the Pod can prove has changed since
    pod.deliver(request(["touch", "ran"]))
    _, records = pod.records()
    assert records[-1]["egress"]["enforced"] is False and records[-1]["exitCode"] is None
    assert not (pod.workspace / "ran").exists()
