"""A warm sandbox Pod's runner: ready before its job exists, then one job: `python3 -I -m safeagent.sandbox.warm SPEC`.

STDLIB ONLY: this module runs in the sandbox image. The design and its threats: docs/warm-pool.md.

SPEC is a WarmSpec (safeagent.sandbox.contract): a runner spec without the job's own keys, plus the
channel's. The token that lets the operator in is in the environment (safeagent.sandbox.channel),
never in SPEC: every process of the container can read /proc/1/cmdline. In order:

1. hardened like the runner (non-dumpable, subreaper, SIGINT handled), and the token taken out of
   the environment, before anything else;
2. the PID bound and the egress proof, exactly the runner's (safeagent.sandbox.runner.prove); a Pod
   where either is not in force writes that record and runs nothing;
3. listens on the channel's port, writes the ready file (the Pod's startup probe looks for it, then stops),
   and waits for the one request that carries the token (safeagent.sandbox.channel.serve_once);
   no such request within `idleSeconds`, or too many connections without one: a record saying so,
   nothing run. The listening socket, the connection and the ready file are gone before step 4;
4. lays the delivered source volume's files (a ConfigMap's keys, or a bundle's manifest and
   chunks) out under `stagingDir` the way the kubelet lays out the cold Pod's volume (a hidden
   directory of the files and a `..data` link to it) and runs the preparation step on it, the very
   code the cold Pod's init container runs (safeagent.sandbox.prepare): the same checks (a
   bundle's manifest against its name, each chunk against the manifest), caps, copy, digest
   against the approved one, git directories neutralised; run in this process, not started anew
   (a Python start is most of a warm job's time otherwise). Its record goes to this container's
   log, before the runner's. Then the staging directory is removed; a source refused or not
   prepared runs nothing;
5. proves egress again, for at most `reproveSeconds` (one round where enforcement holds: about a
   millisecond), since the enforcer may have lost the Pod's rules while it waited;
6. runs the command and writes its records exactly as the runner does (run_and_report).

The command starts after all of this: it never holds the channel, the token or the unvalidated
source. It runs as the runner's UID, as on the cold path, with the same protections (see
safeagent.sandbox.runner, "Why the record is unforgeable").

Exit status: 0 when a record was written, 2 for a bad SPEC or token.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
import sys
from collections.abc import Mapping
from typing import cast

from safeagent.sandbox import channel, preflight, prepare, runner
from safeagent.sandbox.contract import (
    CHANNEL_SPEC_REQUIRED,
    RUNNER_JOB_KEYS,
    SOURCE_BUNDLE,
    SOURCE_CONFIGMAP,
    WARM_PREPARE_FAILED,
    WARM_REQUEST_REQUIRED,
    WARM_REQUEST_RETIRED,
    PrepareSpec,
    RunnerSpec,
    WarmRequest,
    WarmSpec,
)

# A ConfigMap key as the API server allows it (a bundle's file names are such keys too).
_CONFIGMAP_KEY = re.compile(r"[-._a-zA-Z0-9]+")
# The hidden directory the `..data` link names, as the kubelet's timestamped one would be.
_STAGED_DATA = "..warm"


def check_warm_spec(spec: object) -> WarmSpec:
    """`spec` if it is a WarmSpec (its runner part checked as the runner checks a spec), else SpecError."""
    if not isinstance(spec, dict):
        raise runner.SpecError("spec must be a JSON object")
    own = RUNNER_JOB_KEYS & set(spec)
    if own:
        raise runner.SpecError(f"a warm spec has no {', '.join(sorted(own))}: the request brings them")
    chan = spec.get("channel")
    if not (isinstance(chan, dict) and CHANNEL_SPEC_REQUIRED.issubset(chan)):
        raise runner.SpecError(f"channel needs {', '.join(sorted(CHANNEL_SPEC_REQUIRED))}")
    for key in ("port", "maxRequestBytes"):
        if not isinstance(chan[key], int) or isinstance(chan[key], bool) or chan[key] < 0:
            raise runner.SpecError(f"channel.{key} must be a non-negative integer")
    for key in ("idleSeconds", "reproveSeconds"):
        if not isinstance(chan[key], (int, float)) or isinstance(chan[key], bool) or chan[key] <= 0:
            raise runner.SpecError(f"channel.{key} must be a positive number")
    for key in ("readyFile", "stagingDir"):
        if not (isinstance(chan[key], str) and chan[key].startswith("/")):
            raise runner.SpecError(f"channel.{key} must be an absolute path")
    # The rest is a runner spec's: check it with a job's keys filled in.
    runner.check_spec({**_without_channel(spec), "argv": ["true"], "timeoutSeconds": 0, "maxOutputBytes": 0})
    return cast(WarmSpec, spec)


def _without_channel(spec: Mapping[str, object]) -> dict[str, object]:
    return {key: value for key, value in spec.items() if key != "channel"}


def job_spec(spec: WarmSpec, request: Mapping[str, object]) -> RunnerSpec:
    """The runner spec of the delivered job: the Pod's spec with the request's argv, timeout and output cap."""
    retired = sorted(WARM_REQUEST_RETIRED & set(request))
    if retired:
        raise runner.SpecError(f"a request with {', '.join(retired)} is of an earlier shape; this runner takes files")
    missing = sorted(WARM_REQUEST_REQUIRED - set(request))
    if missing:
        raise runner.SpecError(f"the request has no {', '.join(missing)}")
    return runner.check_spec({**_without_channel(spec), **{key: request[key] for key in RUNNER_JOB_KEYS}})


def stage_files(request: WarmRequest, staging: str) -> str:
    """Lay the delivered source volume's files out under `staging` as the kubelet lays out a ConfigMap
    or projected volume (the files in a hidden directory, `..data` naming it); returns `staging`.
    Every name must be one a ConfigMap key could be (a bundle's manifest and chunks are), every
    content base64. What the files hold is the preparation step's to check."""
    files = request["files"]
    if not isinstance(files, dict):
        raise runner.SpecError("files must be an object of names and base64 contents")
    decoded: dict[str, bytes] = {}
    for name, encoded in files.items():
        if not _CONFIGMAP_KEY.fullmatch(name) or name in (".", "..") or name.startswith(".."):
            raise runner.SpecError(f"{name!r} is not a file name a source volume holds")
        if not isinstance(encoded, str):
            raise runner.SpecError(f"file {name!r} is not base64")
        try:
            decoded[name] = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise runner.SpecError(f"file {name!r} is not base64") from None
    os.mkdir(staging, 0o700)
    real = os.path.join(staging, _STAGED_DATA)
    os.mkdir(real, 0o700)
    for name, content in decoded.items():
        fd = os.open(os.path.join(real, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
    os.symlink(_STAGED_DATA, os.path.join(staging, "..data"))
    return staging


def prepare_spec(request: WarmRequest, staging: str, workspace: str) -> PrepareSpec:
    """The preparation step's spec: the request's source kind, caps, approved digest and bundle name,
    the Pod's paths."""
    wanted = request["prepare"]
    source = wanted.get("source") if isinstance(wanted, dict) else None
    if source not in (SOURCE_CONFIGMAP, SOURCE_BUNDLE):
        raise runner.SpecError("a warm Pod is delivered configMap and bundle sources only")
    caps = [wanted.get("maxFiles"), wanted.get("maxBytes")]
    if not all(isinstance(cap, int) and not isinstance(cap, bool) and cap >= 0 for cap in caps):
        raise runner.SpecError("prepare needs maxFiles and maxBytes (non-negative integers)")
    spec = PrepareSpec(source=source, sourceDir=staging, workspace=workspace,
                       maxFiles=wanted["maxFiles"], maxBytes=wanted["maxBytes"])
    if "expectedDigest" in wanted:
        if not isinstance(wanted["expectedDigest"], str):
            raise runner.SpecError("prepare.expectedDigest must be a digest")
        spec["expectedDigest"] = wanted["expectedDigest"]
    if source == SOURCE_BUNDLE:
        if not isinstance(wanted.get("bundle"), str):
            raise runner.SpecError("prepare.bundle must name the bundle's manifest")
        spec["bundle"] = wanted["bundle"]
    elif "bundle" in wanted:
        raise runner.SpecError("prepare.bundle is for a bundle source only")
    return spec


def run_prepare(spec: PrepareSpec) -> bool:
    """The preparation step, the cold Pod's own code run here (the runner is already non-dumpable, as
    the step makes itself; the git it starts gets an environment of its own), its record on our
    stdout before the runner's."""
    result, status = prepare.run(json.dumps(spec))
    runner.emit(result)
    return status == 0


def _write_ready(path: str, port: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{port}\n")


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def serve(spec: WarmSpec, token: bytes) -> WarmRequest:
    """Listen, say so in the ready file, wait for the one request; everything closed and removed on return."""
    chan = spec["channel"]
    server = channel.listen(chan["port"])
    try:
        _write_ready(chan["readyFile"], server.getsockname()[1])
        return cast(WarmRequest, channel.serve_once(server, token, chan["maxRequestBytes"], chan["idleSeconds"]))
    finally:
        server.close()
        _remove(chan["readyFile"])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    runner.harden_self()
    try:
        token = channel.take_token(os.environ)
        if len(args) != 1:
            raise runner.SpecError("usage: python3 -I -m safeagent.sandbox.warm '<json spec>'")
        spec = check_warm_spec(json.loads(args[0]))
    except (channel.ChannelError, runner.SpecError, ValueError) as exc:
        runner.emit(runner.no_result(f"warm spec: {exc}"))
        return 2
    proved = runner.prove(spec)
    if proved is None:
        return 0
    egress, pids = proved
    try:
        request = serve(spec, token)
    except channel.ChannelError as exc:
        runner.emit(runner.no_result(f"no job delivered: {exc}", egress, pids))
        return 0
    del token
    staging = spec["channel"]["stagingDir"]
    try:
        job = job_spec(spec, request)
        prepared = run_prepare(prepare_spec(request, stage_files(request, staging), job.get("workspace", "/workspace")))
    except (runner.SpecError, OSError) as exc:
        runner.emit(runner.no_result(f"bad request: {exc}"[:1024], egress, pids))
        return 0
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not prepared:
        runner.emit(runner.no_result(WARM_PREPARE_FAILED, egress, pids))
        return 0
    check = spec.get("egressCheck")
    if check:
        # The enforcer may have dropped the Pod's rules while it waited: prove it again, briefly.
        egress = preflight.check({**check, "deadlineSeconds": spec["channel"]["reproveSeconds"]})
        if not egress["enforced"]:
            runner.emit(runner.no_result(None, egress, pids))
            return 0
    runner.run_and_report(job, egress, pids)
    return 0


if __name__ == "__main__":
    sys.exit(main())
