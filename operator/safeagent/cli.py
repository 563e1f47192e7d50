"""The ``safeagent`` command.

    safeagent policy check --policy FILE 'COMMAND LINE'   one JSON decision; exit 0 for every decision
    safeagent policy check --policy FILE --jsonl          stdin: a JSON string per line; stdout: a decision per line
    safeagent validate-tree PATH                          JSON report; exit 0 ok, 1 rejected
    safeagent run [SOURCE] [OPTIONS] -- ARGV...           one command through safeagent (agent_cli.py)
    safeagent follow | jobs | approvals | approve | deny  jobs and the reviewer's side (agent_cli.py)
    safeagent mcp [OPTIONS]                               the MCP server on stdio (mcp_server.py)

Exit status 2 means bad usage or an unusable policy file, with the reason on stderr; `run` and
`follow` exit with the command's status or one of their own (agent_cli.EXIT_CODES).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

from .sandbox import tree


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one clear line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _emit(decision: Mapping[str, object]) -> None:
    sys.stdout.write(json.dumps(decision) + "\n")
    sys.stdout.flush()


def _bad_line(message: str) -> dict[str, Any]:
    return {"decision": "deny", "argv": None, "reason": "invalid_input", "message": message}


def _check_jsonl(policy: Any, decide: Callable[[Any, str], Any]) -> None:
    for number, raw in enumerate(sys.stdin.buffer, start=1):
        try:
            line = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            _emit(_bad_line(f"Input line {number} is not a JSON-encoded string."))
            continue
        if not isinstance(line, str):
            _emit(_bad_line(f"Input line {number} is JSON but not a string."))
            continue
        _emit(decide(policy, line).to_dict())


def _policy_check(arguments: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if arguments.jsonl == (arguments.command is not None):
        parser.error("give exactly one of COMMAND or --jsonl")
    from .policy import PolicyError, decide, load_policy  # pydantic stays out of validate-tree

    try:
        policy = load_policy(arguments.policy)
    except PolicyError as error:
        sys.stderr.write(f"safeagent: bad policy file:\n{error}\n")
        return 2
    if arguments.jsonl:
        _check_jsonl(policy, decide)
    else:
        _emit(decide(policy, arguments.command).to_dict())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="safeagent", description="safeagent: locked-down sandboxes for AI coding agents")
    commands = parser.add_subparsers(dest="area", required=True, parser_class=_Parser)

    policy = commands.add_parser("policy", help="command policy tools")
    policy_commands = policy.add_subparsers(dest="action", required=True, parser_class=_Parser)
    check = policy_commands.add_parser("check", help="decide one command line (or --jsonl from stdin)")
    check.add_argument("--policy", required=True, metavar="FILE", help="policy YAML file")
    check.add_argument("--jsonl", action="store_true", help="read JSON strings from stdin, one per line")
    check.add_argument("command", nargs="?", help="the command line, as one argument")
    check.set_defaults(handler=lambda arguments: _policy_check(arguments, check))

    validate = commands.add_parser("validate-tree", help="validate a source tree (JSON report)")
    tree.add_arguments(validate)
    validate.set_defaults(handler=tree.run)

    from . import agent_cli, mcp_server  # the agent's side; pydantic and the API client load only here

    agent_cli.add_commands(commands, _Parser)
    mcp_server.add_command(commands)
    parser.check_parser = check  # type: ignore[attr-defined]  # main() reads `policy check` itself
    return parser


def _check_arguments(words: list[str], check: argparse.ArgumentParser) -> argparse.Namespace:
    """Read `policy check`'s words without argparse's guesses.

    The command line under test may look like one of our options ('-h', '--help', '--pol',
    '--json', '-la'): argparse would print help, expand an abbreviation or refuse it. Here only the
    exact spellings `--policy FILE`, `--policy=FILE` and `--jsonl` are options, `--` ends them,
    and any other word is the COMMAND.
    """
    policy: str | None = None
    jsonl = False
    commands: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--":
            commands.extend(words[index + 1:])
            break
        if word == "--policy" and policy is None and index + 1 < len(words):
            policy = words[index + 1]
            index += 2
            continue
        if word.startswith("--policy=") and policy is None:
            policy = word[len("--policy="):]
        elif word == "--jsonl" and not jsonl:
            jsonl = True
        else:
            commands.append(word)
        index += 1
    if policy is None:
        check.error("the following arguments are required: --policy")
    if len(commands) > 1:
        check.error("give the command line as one argument (quote it)")
    return argparse.Namespace(policy=policy, jsonl=jsonl, command=commands[0] if commands else None)


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if words[:2] == ["policy", "check"] and words[2:] not in (["-h"], ["--help"]):
        check = parser.check_parser  # type: ignore[attr-defined]
        return _policy_check(_check_arguments(words[2:], check), check)
    arguments = parser.parse_args(words)
    from . import agent_cli

    return agent_cli.dispatch(arguments)


if __name__ == "__main__":
    sys.exit(main())
