"""`safeagent run` and the reviewer commands: thin layers over safeagent.client.

    safeagent run [SOURCE] [--profile P] [--timeout S] [-n NS] [--wait-approval S | --no-wait] [--name N] -- ARGV...
    safeagent follow NAME            pick up a job again (after Ctrl-C, or a wait for approval that ran out)
    safeagent jobs                   the namespace's jobs
    safeagent approvals              the Approvals waiting for a decision
    safeagent approve NAME [--note TEXT]
    safeagent deny NAME [--note TEXT]

SOURCE is `--source DIR` (a local directory, uploaded as content-addressed chunks that later runs
reuse; docs/agent.md), `--configmap NAME` or `--pvc NAME[:SUBPATH]` (or $SAFEAGENT_SOURCE,
`configmap:NAME` or `pvc:NAME[:SUBPATH]`). The command runs on a disposable copy of the source:
files it changes are reported on stderr, never written back (not to DIR either). Each command
takes `--kubeconfig`, `--context` and `-n`, as kubectl does; the identity is the kubeconfig's.

After `--`, two or more words are an argv (quoted for the policy so that it splits them back into
exactly these words); a single word is one command line, as `spec.command` takes it
(`safeagent run -- 'git log -5'`).

Exit status of `run` and `follow`: the command's own when it ran (0-199 in practice; 128+N after a
signal), else one of `EXIT_CODES` below with one line on stderr saying why. The README's "Connecting
an agent" has the table.

Ctrl-C leaves the job alone: a submitter may not delete jobs (a finished job is the record of what
ran), so the job goes on, and `safeagent follow NAME` picks it up; `run` says so on stderr and exits 130.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable
from typing import Any, TextIO

from safeagent.client import (
    DEFAULT_NAMESPACE,
    ENV_NAMESPACE,
    Client,
    ClientError,
    ConfigMapSource,
    NameTaken,
    NoKubeconfig,
    Outcome,
    Result,
    Source,
    SourceRefused,
    VolumeSource,
    age,
    new_job_name,
    reviewer_command,
)
from safeagent.client import parse_source as source_from_text
from safeagent.models import DEFAULT_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS, MIN_TIMEOUT_SECONDS, NetworkProfile

ENV_SOURCE = "SAFEAGENT_SOURCE"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# Disjoint from what commands usually exit with (0-125, 126/127 from a shell, 128+N after signal N).
EXIT_CODES: dict[Outcome, int] = {
    Outcome.DENIED: 200,
    Outcome.REJECTED: 201,
    Outcome.APPROVAL_DENIED: 202,
    Outcome.APPROVAL_EXPIRED: 203,
    Outcome.AWAITING_APPROVAL: 204,
    Outcome.TIMED_OUT: 205,
    Outcome.EGRESS_NOT_ENFORCED: 206,
    Outcome.POLICY_VIOLATION: 207,
    Outcome.INFRASTRUCTURE: 208,
    Outcome.RUNNING: 208,  # only a caller with a deadline of its own sees it; `run` waits for the end
}
# What the one stderr line starts with, per outcome.
_SAID = {
    Outcome.DENIED: "denied by the policy",
    Outcome.REJECTED: "the source was refused; nothing ran",
    Outcome.APPROVAL_DENIED: "the reviewer denied it; nothing ran",
    Outcome.APPROVAL_EXPIRED: "nobody decided in time (the Approval expired); nothing ran",
    Outcome.AWAITING_APPROVAL: "still waiting for approval",
    Outcome.TIMED_OUT: "timed out",
    Outcome.EGRESS_NOT_ENFORCED: "the sandbox's network filter could not be proven; nothing ran",
    Outcome.POLICY_VIOLATION: "the command broke a limit of the policy",
    Outcome.INFRASTRUCTURE: "infrastructure failure",
    Outcome.RUNNING: "not finished yet",
}
DEFAULT_WAIT_APPROVAL = 600.0


class UsageError(Exception):
    """Bad arguments: one line on stderr, exit status 2, nothing created."""


def exit_code(result: Result) -> int:
    """The exit status `safeagent run` ends with for `result`."""
    if result.outcome in (Outcome.SUCCEEDED, Outcome.COMMAND_FAILED) and result.exitCode is not None:
        return result.exitCode
    return EXIT_CODES.get(result.outcome, EXIT_CODES[Outcome.INFRASTRUCTURE])


def command_line(words: list[str]) -> str:
    """The one command line `spec.command` gets: a single word as it is, several quoted as an argv."""
    if not words:
        raise UsageError("no command: give it after `--`, as words or as one quoted command line")
    if len(words) == 1:
        return words[0]
    return shlex.join(words)


def parse_source(configmap: str | None, pvc: str | None, environment: str | None,
                 directory: str | None = None) -> Source | str:
    """The job's source from --source / --configmap / --pvc, else from $SAFEAGENT_SOURCE (a
    directory comes back as its path: it is uploaded once the client exists)."""
    if sum(bool(given) for given in (configmap, pvc, directory)) > 1:
        raise UsageError("give one source: --source, --configmap or --pvc")
    if directory:
        if not os.path.isdir(directory):
            raise UsageError(f"--source {directory}: not a directory")
        return directory
    if configmap:
        return ConfigMapSource(configmap)
    if pvc:
        claim, _, path = pvc.partition(":")
        if not claim:
            raise UsageError("--pvc takes NAME or NAME:SUBPATH")
        return VolumeSource(claim, path)
    if environment:
        try:
            return source_from_text(environment)
        except ValueError as error:
            raise UsageError(f"${ENV_SOURCE}: {error}") from None
    raise UsageError(f"no source: give --source DIR, --configmap NAME or --pvc NAME[:SUBPATH] (or set ${ENV_SOURCE})")


def _timeout(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if not MIN_TIMEOUT_SECONDS <= value <= MAX_TIMEOUT_SECONDS:
        raise argparse.ArgumentTypeError(f"must be {MIN_TIMEOUT_SECONDS}..{MAX_TIMEOUT_SECONDS} seconds")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more seconds")
    return value


# ------------------------------------------------------------------------------------ reporting


class Reporter:
    """What `run` and `follow` say on stderr: the approval notice once, progress only on a terminal."""

    def __init__(self, err: TextIO, progress: bool | None = None) -> None:
        self.err = err
        self.progress = err.isatty() if progress is None else progress
        self.announced: set[str] = set()
        self.last_phase: str | None = None

    def say(self, text: str) -> None:
        self.err.write(f"safeagent: {text}\n")
        self.err.flush()

    def __call__(self, job: dict[str, Any]) -> None:
        status, metadata = job.get("status") or {}, job.get("metadata") or {}
        phase, name = status.get("phase"), metadata.get("name", "")
        approval = status.get("approvalName")
        if phase == "AwaitingApproval" and approval and approval not in self.announced:
            self.announced.add(approval)
            namespace = metadata.get("namespace", "")
            self.say(
                f"job {name} waits for a reviewer: Approval {approval} "
                f"(argv {status.get('argv')}); a reviewer runs: {reviewer_command(namespace, approval)}"
                f" (or deny)"
            )
        elif self.progress and phase and phase != self.last_phase:
            detail = f" ({status.get('reason')})" if status.get("reason") else ""
            self.say(f"job {name}: {phase}{detail}")
        self.last_phase = phase or self.last_phase

    def result(self, result: Result, out: TextIO) -> int:
        """Write the command's output and the one line that explains a non-command outcome."""
        if result.stdout:
            out.write(result.stdout)
            out.flush()
        if result.stderr:
            self.err.write(result.stderr)
        code = exit_code(result)
        where = f"job {result.job}"
        if result.stdoutTruncated or result.stderrTruncated:
            cut = " and ".join(name for name, flag in (("stdout", result.stdoutTruncated),
                                                        ("stderr", result.stderrTruncated)) if flag)
            self.say(f"{where}: {cut} truncated at the policy's cap")
        changed = result.changedFiles
        if changed is not None and changed.total:
            sample = " ".join(changed.paths[:10]) + (" ..." if len(changed.paths) > 10 else "")
            self.say(f"{where}: the command changed {changed.total} entries of its sandbox copy "
                     f"(not applied back): {sample}")
        if result.outcome is Outcome.AWAITING_APPROVAL:
            self.say(f"{where} is still waiting for approval {result.approval}; it stays, and "
                     f"`safeagent follow -n {result.namespace} {result.job}` picks it up "
                     f"(exit {code})")
        elif result.outcome in _SAID:
            detail = f" ({result.reason})" if result.reason else ""
            self.say(f"{where}: {_SAID[result.outcome]}{detail}: {result.message or ''} (exit {code})")
        return code


# ------------------------------------------------------------------------------------ commands

ClientFactory = Callable[[argparse.Namespace], Client]


def make_client(arguments: argparse.Namespace) -> Client:
    return Client(arguments.namespace, kubeconfig=arguments.kubeconfig, context=arguments.context)


def _follow(client: Client, job: dict[str, Any] | str, arguments: argparse.Namespace, reporter: Reporter,
            out: TextIO) -> int:
    wait = 0.0 if arguments.no_wait else arguments.wait_approval
    name = job if isinstance(job, str) else job["metadata"]["name"]
    try:
        result = client.follow(job, wait_approval=wait, notify=reporter)
    except KeyboardInterrupt:
        reporter.say(f"interrupted; job {name} goes on (a submitter cannot delete it): "
                     f"`safeagent follow -n {client.namespace} {name}` picks it up")
        return EXIT_INTERRUPTED
    return reporter.result(result, out)


def run(arguments: argparse.Namespace, factory: ClientFactory = make_client,
        out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    reporter = Reporter(err)
    words = list(arguments.argv)
    if words[:1] == ["--"]:
        words = words[1:]
    given = parse_source(arguments.configmap, arguments.pvc, os.environ.get(ENV_SOURCE), arguments.source)
    line = command_line(words)
    client = factory(arguments)
    name = arguments.name or new_job_name()
    if isinstance(given, str):
        try:
            upload = client.upload(given)
        except SourceRefused as refused:
            code = EXIT_CODES[Outcome.REJECTED]
            reporter.say(f"{_SAID[Outcome.REJECTED]} ({refused.reason}): {refused} (exit {code})")
            return code
        if reporter.progress:
            reporter.say(f"{given}: {upload.files} files in {upload.chunks} chunks; sent {upload.sent} bytes "
                         f"in {upload.seconds:.1f} s ({upload.source.name})")
        source: Source = upload.source
    else:
        source = given
    try:
        job = client.submit(line, source, profile=arguments.profile, timeout=arguments.timeout, name=name)
    except KeyboardInterrupt:
        reporter.say(f"interrupted while submitting; job {name} may exist: "
                     f"`safeagent follow -n {client.namespace} {name}` picks it up if it does")
        return EXIT_INTERRUPTED
    if reporter.progress:
        reporter.say(f"job {name} submitted in {client.namespace}")
    return _follow(client, job, arguments, reporter, out)


def follow(arguments: argparse.Namespace, factory: ClientFactory = make_client,
           out: TextIO | None = None, err: TextIO | None = None) -> int:
    return _follow(factory(arguments), arguments.name, arguments, Reporter(err or sys.stderr), out or sys.stdout)


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        out.write("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")


def jobs(arguments: argparse.Namespace, factory: ClientFactory = make_client, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    rows = [["NAME", "PHASE", "REASON", "EXIT", "COMMAND", "AGE"]]
    for job in factory(arguments).jobs():
        status = job.get("status") or {}
        exit_status = status.get("exitCode")
        rows.append([job["metadata"]["name"], status.get("phase") or "", status.get("reason") or "",
                     "" if exit_status is None else str(exit_status), (job.get("spec") or {}).get("command", "")[:60],
                     age(job["metadata"].get("creationTimestamp"))])
    _table(rows, out)
    return 0


def approvals(arguments: argparse.Namespace, factory: ClientFactory = make_client, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    rows = [["NAME", "JOB", "COMMAND", "PROFILE", "SOURCE", "SOURCE DIGEST", "AGE"]]
    for approval in factory(arguments).approvals():
        spec = approval.get("spec") or {}
        source = spec.get("source") or {}
        where = (f"configmap/{source['configMap']['name']}" if "configMap" in source else
                 "pvc/" + ":".join(filter(None, [(source.get("persistentVolumeClaim") or {}).get("claimName"),
                                                 (source.get("persistentVolumeClaim") or {}).get("path")])))
        rows.append([approval["metadata"]["name"], spec.get("jobName", ""), shlex.join(spec.get("command") or []),
                     str(spec.get("networkProfile", "")), where, str(spec.get("sourceDigest", ""))[:19],
                     age(approval["metadata"].get("creationTimestamp"))])
    _table(rows, out)
    return 0


def decide(arguments: argparse.Namespace, decision: str, factory: ClientFactory = make_client,
           out: TextIO | None = None) -> int:
    out = out or sys.stdout
    factory(arguments).decide(arguments.name, decision, arguments.note)
    out.write(f"approval {arguments.name}: {decision}\n")
    return 0


# ------------------------------------------------------------------------------------ arguments


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--namespace", help=f"sandbox namespace (default: ${ENV_NAMESPACE}, the "
                        f"context's namespace, else {DEFAULT_NAMESPACE})")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: its current context)")


def _waiting(parser: argparse.ArgumentParser) -> None:
    wait = parser.add_mutually_exclusive_group()
    wait.add_argument("--wait-approval", type=_seconds, default=DEFAULT_WAIT_APPROVAL, metavar="SECONDS",
                      help=f"how long to wait for a reviewer's decision (default {DEFAULT_WAIT_APPROVAL:.0f}); "
                           "the job keeps waiting after that, and `safeagent follow` picks it up")
    wait.add_argument("--no-wait", action="store_true", help="return at once when the command needs approval")


RUN_EPILOG = """\
The command runs on a disposable copy of the source in a fresh sandbox Pod: files it changes are
reported on stderr and never applied back to the source (nor to DIR). Its stdout and stderr are written to ours,
and we exit with its exit status. Otherwise, with one line on stderr: 200 denied by the policy,
201 source refused, 202 approval denied, 203 approval expired, 204 still waiting for approval,
205 timed out, 206 network filter not proven, 207 a policy limit broken after the run,
208 infrastructure failure, 2 bad arguments, 130 interrupted (the job goes on).
"""


def add_commands(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """The agent's and the reviewer's subcommands, on the `safeagent` parser (cli.py)."""
    run_parser = commands.add_parser(
        "run", help="run one command through safeagent and pass its output and exit status through",
        description="Run one command in a safeagent sandbox, as your own Kubernetes identity.",
        epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run_parser.add_argument("--source", metavar="DIR", help="source: a local directory (a repository with its "
                            ".git too), uploaded as content-addressed chunks; unchanged chunks are reused")
    run_parser.add_argument("--configmap", metavar="NAME", help="source: a ConfigMap (a key per file)")
    run_parser.add_argument("--pvc", metavar="NAME[:SUBPATH]", help="source: a PersistentVolumeClaim (and a directory in it)")
    run_parser.add_argument("--profile", default=NetworkProfile.NONE.value,
                            choices=[profile.value for profile in NetworkProfile], help="network profile (default none)")
    run_parser.add_argument("--timeout", type=_timeout, default=DEFAULT_TIMEOUT_SECONDS, metavar="SECONDS",
                            help=f"the command's time limit (default {DEFAULT_TIMEOUT_SECONDS})")
    run_parser.add_argument("--name", help="the job's name (default: a fresh one); the same name again "
                            "follows the same job instead of running the command twice")
    _waiting(run_parser)
    _connection(run_parser)
    run_parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- ARGV",
                            help="the command: several words (an argv) or one quoted command line")
    run_parser.set_defaults(handler=run)

    follow_parser = commands.add_parser("follow", help="follow a job to its end (after Ctrl-C or an approval wait)")
    follow_parser.add_argument("name", help="the SandboxJob's name")
    _waiting(follow_parser)
    _connection(follow_parser)
    follow_parser.set_defaults(handler=follow)

    jobs_parser = commands.add_parser("jobs", help="list the namespace's SandboxJobs")
    _connection(jobs_parser)
    jobs_parser.set_defaults(handler=jobs)

    approvals_parser = commands.add_parser("approvals", help="list the Approvals waiting for a decision")
    _connection(approvals_parser)
    approvals_parser.set_defaults(handler=approvals)

    for verb, decision in (("approve", "Approved"), ("deny", "Denied")):
        decide_parser = commands.add_parser(verb, help=f"set an Approval's decision to {decision} (as kubectl patch would)")
        decide_parser.add_argument("name", help="the Approval's name")
        decide_parser.add_argument("--note", default="", help="why (kept on the Approval)")
        _connection(decide_parser)
        decide_parser.set_defaults(handler=lambda arguments, decision=decision: decide(arguments, decision))


def dispatch(arguments: argparse.Namespace) -> int:
    """Run a subcommand of this module; its errors become one line on stderr and an exit status."""
    try:
        status: int = arguments.handler(arguments)
        return status
    except UsageError as error:
        sys.stderr.write(f"safeagent: error: {error}\n")
        return EXIT_USAGE
    except NameTaken as error:
        sys.stderr.write(f"safeagent: error: {error} (choose another --name)\n")
        return EXIT_USAGE
    except NoKubeconfig as error:
        sys.stderr.write(f"safeagent: error: {error}\n")
        return EXIT_USAGE
    except ClientError as error:
        sys.stderr.write(f"safeagent: {_SAID[Outcome.INFRASTRUCTURE]}: {error} "
                         f"(exit {EXIT_CODES[Outcome.INFRASTRUCTURE]})\n")
        return EXIT_CODES[Outcome.INFRASTRUCTURE]
    except KeyboardInterrupt:
        sys.stderr.write("safeagent: interrupted\n")
        return EXIT_INTERRUPTED
