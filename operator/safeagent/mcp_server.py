"""`safeagent mcp`: the Model Context Protocol server an agent registers to run its commands.

Stdio transport, built on the official SDK (`pip install 'safeagent[mcp]'`, mcp 2.x), which
negotiates the protocol revisions 2024-11-05, 2025-03-26, 2025-06-18 and 2025-11-25 through the
initialize handshake (and serves the stateless 2026-07-28 revision to clients that ask for it).

Tools (no tool approves or denies anything: approval stays out of band, with a reviewer's own
identity, `safeagent approve` or kubectl):

  run_command    argv (a list) or one command line; runs through safeagent exactly as
                 `safeagent run` does; returns the Result as structured content (output schema:
                 safeagent.client.Result) and the command's output as text
  check_command  the policy's decision on a command (decision, reason, the argv that would run),
                 from the policy the cluster publishes; no job is made
  job_status     one job's Result now, or after waiting up to `wait_seconds` for it to move on

What an agent sees when a command needs approval: run_command returns at once (by default;
`--wait-approval` makes it wait that long first) with outcome `awaiting_approval`, the Approval's
name, and the command a person runs to approve it; nothing has run. The agent then calls
job_status on that job (with `wait_seconds`) to learn the decision, and never submits the command
again. Returning at once fits MCP clients: many end a tool call after about a minute, and an agent
whose call hangs for a human cannot tell the person what it is waiting for. For the same reason
run_command returns a command still running after `--max-wait` seconds (default 50) with outcome
`running`; job_status picks it up. (Protocol revision 2025-11-25 has experimental tasks for long
calls; few clients speak them yet, and job_status works with every client.)

Identity. The server acts as the kubeconfig it is given, nothing more. At start it asks the API
server what that identity may do (SelfSubjectAccessReview) and refuses to serve, unless started
with --allow-privileged-identity, when the identity may approve or forge Approvals, impersonate,
write jobs' status or edit the policy: an agent holding such rights could let itself through.
Give the agent a ServiceAccount bound to the chart's safeagent-submitter role only (README,
"Connecting an agent").
"""

# No `from __future__ import annotations` here: the SDK reads the tools' annotations, and the
# types they name are imported inside build_server (the SDK is an optional extra).
import argparse
import hashlib
import shlex
import sys
from dataclasses import dataclass
from typing import Annotated, Any

from safeagent.client import (
    DEFAULT_NAMESPACE,
    ENV_NAMESPACE,
    Client,
    ClientError,
    Outcome,
    Result,
    Source,
    SourceRefused,
    parse_source,
    reviewer_command,
)
from safeagent.models import DEFAULT_TIMEOUT_SECONDS, NetworkProfile

EXIT_REFUSED = 3
DEFAULT_MAX_WAIT = 50.0
MAX_STATUS_WAIT = 300.0

INSTRUCTIONS = """\
Commands you run through this server execute in a fresh, locked-down sandbox Pod on a disposable
copy of the repository: files they change are reported (changedFiles), never written back.
A policy decides first: a command may be denied (outcome "denied", with a reason) or need a
person's approval (outcome "awaiting_approval": tell the user which Approval and the command they
run, then call job_status with the job's name to learn the decision; never resubmit the command).
No shell: pipes, redirections, ';' and '&&' are refused; run one program per call.
Use check_command to ask the policy without running anything.
"""


@dataclass(frozen=True)
class Settings:
    """What the server was started with."""

    source: str | None  # dir:PATH, configmap:NAME or pvc:NAME[:SUBPATH]
    profile: str
    timeout: int
    wait_approval: float
    max_wait: float


# Rights that would let an agent through its own gate: (verb, group, resource, subresource, where, why).
# `where` is "namespace" (the sandbox namespace), "release" (the operator's) or "cluster".
PRIVILEGED_RIGHTS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("patch", "safeagent.ca", "approvals", "", "namespace", "approve or deny Approvals"),
    ("update", "safeagent.ca", "approvals", "", "namespace", "approve or deny Approvals"),
    ("create", "safeagent.ca", "approvals", "", "namespace", "create Approvals"),
    ("patch", "safeagent.ca", "sandboxjobs", "status", "namespace", "write a job's status"),
    ("impersonate", "", "users", "", "cluster", "impersonate users"),
    ("impersonate", "", "groups", "", "cluster", "impersonate groups"),
    ("impersonate", "", "serviceaccounts", "", "namespace", "impersonate ServiceAccounts"),
    ("update", "", "configmaps", "", "release", "edit the operator's policy"),
    ("patch", "", "configmaps", "", "release", "edit the operator's policy"),
    ("update", "", "configmaps", "", "namespace", "edit the published policy"),
)


def privileged_rights(client: Client, release_namespace: str) -> list[str]:
    """What the server's identity may do that an agent must not (SelfSubjectAccessReview each)."""
    from kubernetes import client as kube

    api: Any = kube.AuthorizationV1Api(client.api_client)  # Any: it takes the review as a plain dict
    found: list[str] = []
    for verb, group, resource, subresource, where, why in PRIVILEGED_RIGHTS:
        attributes: dict[str, Any] = {"verb": verb, "group": group, "resource": resource, "subresource": subresource}
        if where != "cluster":
            attributes["namespace"] = client.namespace if where == "namespace" else release_namespace
        try:
            review = api.create_self_subject_access_review({"spec": {"resourceAttributes": attributes}})
        except kube.exceptions.ApiException as error:
            raise ClientError(f"could not ask the API server what this identity may do: HTTP {error.status}") from None
        if review.status.allowed and why not in found:
            found.append(why)
    return found


def resolve_source(client: Client, text: str) -> Source:
    """`dir:PATH` (uploaded now: only what changed since the last call is sent), or a source
    already in the cluster (`configmap:NAME`, `pvc:NAME[:SUBPATH]`)."""
    if text.startswith("dir:"):
        try:
            return client.upload(text[len("dir:"):]).source
        except SourceRefused as refused:
            raise ValueError(f"the directory cannot be a source ({refused.reason}): {refused}") from None
    return parse_source(text)


def command_line(command: list[str] | str) -> str:
    """An argv (quoted so the policy splits it back into exactly these words) or one command line."""
    if isinstance(command, str):
        return command
    if not command:
        raise ValueError("the argv is empty")
    return shlex.join(command)


def job_name(request_id: str | None) -> str | None:
    """The job name for an idempotency key: the same key, the same job (never a second run)."""
    if not request_id:
        return None
    return "mcp-" + hashlib.sha256(request_id.encode()).hexdigest()[:16]


def summary(result: Result) -> str:
    """The text an agent reads: what happened, in plain words, then the command's output."""
    lines: list[str] = []
    where = f"job {result.job} (namespace {result.namespace})"
    if result.outcome is Outcome.AWAITING_APPROVAL:
        lines.append(
            f"This command needs a person's approval and has NOT run. Approval {result.approval} "
            f"for {where} waits for a reviewer, who runs: {reviewer_command(result.namespace, result.approval or '')} "
            f"(or `safeagent deny ...`). Tell the user. Then call job_status with job={result.job!r} "
            f"and wait_seconds to learn the decision; do not submit the command again."
        )
    elif result.outcome is Outcome.RUNNING:
        lines.append(f"The command is still running ({where}); call job_status with job={result.job!r} "
                     f"and wait_seconds to get its result. Do not submit it again.")
    elif result.outcome in (Outcome.SUCCEEDED, Outcome.COMMAND_FAILED):
        lines.append(f"Exit status {result.exitCode} ({where}).")
    else:
        lines.append(f"Outcome {result.outcome.value}: {result.reason}: {result.message} ({where}). "
                     + ("Nothing ran." if result.exitCode is None else ""))
    if result.stdoutTruncated or result.stderrTruncated:
        lines.append("Output was truncated at the policy's cap.")
    if result.changedFiles is not None and result.changedFiles.total:
        lines.append(f"Changed in the sandbox copy only (not applied): {' '.join(result.changedFiles.paths)}")
    if result.stdout:
        lines.append("--- stdout ---\n" + result.stdout)
    if result.stderr:
        lines.append("--- stderr ---\n" + result.stderr)
    return "\n".join(lines)


def build_server(client: Client, settings: Settings) -> Any:
    """The MCPServer with safeagent's three tools (`Any`: the SDK is an optional extra)."""
    import anyio
    from mcp.server.mcpserver import MCPServer
    from mcp_types import CallToolResult, TextContent, ToolAnnotations

    server = MCPServer("safeagent", instructions=INSTRUCTIONS)

    def answer(result: Result) -> CallToolResult:
        return CallToolResult(
            content=[TextContent(type="text", text=summary(result))],
            structured_content=result.model_dump(mode="json"),
            is_error=result.outcome not in (Outcome.SUCCEEDED, Outcome.COMMAND_FAILED,
                                             Outcome.AWAITING_APPROVAL, Outcome.RUNNING),
        )

    @server.tool(annotations=ToolAnnotations(title="Run a command in a safeagent sandbox", destructive_hint=False,
                                             open_world_hint=False))
    async def run_command(
        command: list[str] | str,
        source: str | None = None,
        profile: str | None = None,
        timeout_seconds: int | None = None,
        request_id: str | None = None,
    ) -> Annotated[CallToolResult, Result]:
        """Run one command (an argv list, or one command line without shell operators) in a fresh
        sandbox on a disposable copy of the repository, after safeagent's policy allows it.
        source: dir:PATH, configmap:NAME or pvc:NAME[:SUBPATH] (default: the server's). request_id: give the
        same one when you retry a call that failed, so the command never runs twice."""
        chosen = source or settings.source
        if not chosen:
            raise ValueError("no source: pass source=dir:PATH, configmap:NAME or pvc:NAME[:SUBPATH] (the server has none)")
        line = command_line(command)

        def call() -> Result:
            return _run_bounded(client, line, resolve_source(client, chosen), profile or settings.profile,
                                timeout_seconds or settings.timeout, request_id, settings)

        return answer(await anyio.to_thread.run_sync(call))

    @server.tool(annotations=ToolAnnotations(title="Ask safeagent's policy about a command", read_only_hint=True))
    async def check_command(command: list[str] | str) -> dict[str, Any]:
        """The policy's decision on a command without running it: decision (allow, deny,
        require_approval), reason, message and the argv that would run."""
        line = command_line(command)
        return await anyio.to_thread.run_sync(lambda: client.check(line))

    @server.tool(annotations=ToolAnnotations(title="A safeagent job's status", read_only_hint=True))
    async def job_status(job: str, wait_seconds: float = 0) -> Annotated[CallToolResult, Result]:
        """A job's result now, or after waiting up to wait_seconds (at most 300) for it to finish
        or for its Approval to be decided."""
        wait = min(max(wait_seconds, 0.0), MAX_STATUS_WAIT)

        def call() -> Result:
            return client.follow(job, wait_approval=wait, return_after=wait)

        return answer(await anyio.to_thread.run_sync(call))

    return server


def _run_bounded(client: Client, line: str, source: Source, profile: str, timeout: int,
                 request_id: str | None, settings: Settings) -> Result:
    job = client.submit(line, source, profile=profile, timeout=timeout, name=job_name(request_id))
    return client.follow(job, wait_approval=settings.wait_approval,
                         return_after=settings.max_wait if settings.max_wait > 0 else None)


def serve(arguments: argparse.Namespace) -> int:
    try:
        import mcp  # noqa: F401 -- the optional extra
    except ImportError:
        sys.stderr.write("safeagent: the MCP server needs the SDK: pip install 'safeagent[mcp]'\n")
        return 2
    client = Client(arguments.namespace, kubeconfig=arguments.kubeconfig, context=arguments.context)
    rights = privileged_rights(client, arguments.release_namespace)
    if rights:
        sys.stderr.write(
            "safeagent mcp: this identity may " + "; ".join(rights) + ". An agent using it could let "
            "itself through the approval gate or the policy: give it a ServiceAccount bound to "
            "safeagent-submitter only.\n"
        )
        if not arguments.allow_privileged_identity:
            sys.stderr.write("safeagent mcp: refusing to serve (--allow-privileged-identity overrides)\n")
            return EXIT_REFUSED
    if arguments.source and not arguments.source.startswith("dir:"):
        try:
            parse_source(arguments.source)  # a bad one stops the server at start, not at the first call
        except ValueError as error:
            sys.stderr.write(f"safeagent mcp: --source: {error}\n")
            return 2
    settings = Settings(arguments.source, arguments.profile, arguments.timeout, arguments.wait_approval, arguments.max_wait)
    build_server(client, settings).run("stdio")
    return 0


def add_command(commands: Any) -> None:
    parser = commands.add_parser("mcp", help="serve safeagent's tools to an agent over MCP (stdio)",
                                 description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", help="the default source of run_command: dir:PATH (a local directory, "
                        "uploaded before each call, only what changed), configmap:NAME or pvc:NAME[:SUBPATH]")
    parser.add_argument("--profile", default=NetworkProfile.NONE.value,
                        choices=[profile.value for profile in NetworkProfile], help="default network profile")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT_SECONDS, help="default command timeout (seconds)")
    parser.add_argument("--wait-approval", type=float, default=0.0, metavar="SECONDS",
                        help="how long run_command waits for a reviewer before it returns awaiting_approval (default 0)")
    parser.add_argument("--max-wait", type=float, default=DEFAULT_MAX_WAIT, metavar="SECONDS",
                        help=f"run_command returns a command still running after this long (default {DEFAULT_MAX_WAIT:.0f})")
    parser.add_argument("--release-namespace", default="safeagent-system",
                        help="the operator's namespace, whose policy the identity must not be able to edit")
    parser.add_argument("--allow-privileged-identity", action="store_true",
                        help="serve even when the identity may approve, impersonate or edit the policy")
    parser.add_argument("-n", "--namespace", help=f"sandbox namespace (default: ${ENV_NAMESPACE}, the context's, "
                        f"else {DEFAULT_NAMESPACE})")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context")
    parser.set_defaults(handler=serve)
