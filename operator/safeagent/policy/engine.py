"""`decide`: the ordered chain of small named checks that turns one command line into a Decision.

    text checks (raw line)  ->  words (quote-aware: shell characters)  ->  program  ->  arguments  ->  paths  ->  approval

Each check either passes or raises `Refusal(reason, message)`; the first refusal is the decision.
Anything not positively allowed is denied (fail closed), and an unexpected error is ``internal_error``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from . import text
from .arguments import ParsedCommand, parse_arguments
from .compiled import compiled_for
from .decision import ADVICE, ALLOW, DENY, REQUIRE_APPROVAL, Decision
from .errors import Refusal
from .model import Limits, Policy
from .paths import check_path, check_write_target
from .programs import denial_kind
from .words import split_words

_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")

#: Checks on the raw line, in order.
TEXT_CHECKS: tuple[Callable[[str, Limits], None], ...] = (
    text.check_not_empty,
    text.check_encoding,
    text.check_length,
    text.check_bidi,
    text.check_invisible,
    text.check_control,
)


def check_argument_count(policy: Policy, argv: list[str]) -> None:
    if not argv or not argv[0]:
        raise Refusal("empty_command", "The command has no program name.")
    if len(argv) > policy.limits.max_arguments:
        raise Refusal(
            "too_many_arguments", f"The command has {len(argv)} words; the limit is {policy.limits.max_arguments}."
        )


def check_assignment(policy: Policy, argv: list[str]) -> None:
    if _ASSIGNMENT.match(argv[0]):
        raise Refusal(
            "environment_assignment", f"The command starts with {argv[0]!r}, a NAME=value that would set the environment."
        )


def check_program_path(policy: Policy, argv: list[str]) -> None:
    if "/" in argv[0]:
        raise Refusal("program_path", f"Program {argv[0]!r} is a path.")


def select_program(policy: Policy, argv: list[str]) -> tuple[str, list[str]]:
    """The allowed program ``argv`` invokes and the words after the invocation."""
    for prefix, name in compiled_for(policy).invocations.get(argv[0], ()):
        if tuple(argv[: len(prefix)]) == prefix:
            return name, argv[len(prefix) :]
    kind = denial_kind(argv[0])
    if kind == "wrapper":
        raise Refusal("wrapper_denied", f"{argv[0]} runs other commands; wrappers are never allowed.")
    if kind == "interpreter":
        raise Refusal("interpreter_denied", f"{argv[0]} can run arbitrary code; shells and interpreters are never allowed.")
    raise Refusal("program_not_allowed", f"Program {argv[0]!r} is not allowed by policy {policy.name!r}.")


def check_paths(policy: Policy, parsed: ParsedCommand) -> None:
    workspace = policy.paths.workspace
    writes = parsed.command.access == "write"
    for kind, value, where in parsed.values:
        full = check_path(workspace, kind, value, f"{parsed.label}: {where}")
        if writes:
            check_write_target(workspace, policy.paths.protected, kind, full, value, f"{parsed.label}: {where}")


def approval_message(policy: Policy, parsed: ParsedCommand) -> str | None:
    approvals = compiled_for(policy).approvals
    subcommand = parsed.path[1] if len(parsed.path) > 1 else None
    return approvals.get((parsed.path[0], subcommand)) or approvals.get((parsed.path[0], None))


def _decide(policy: Policy, line: str) -> Decision:
    argv: list[str] | None = None
    try:
        for check in TEXT_CHECKS:
            check(line, policy.limits)
        words = split_words(line)  # refuses what a shell would act on (shell_metacharacter, tokenise_error)
        text.check_unicode(line, policy.limits, policy.characters.allow_non_ascii)
        argv = words
        check_argument_count(policy, argv)
        check_assignment(policy, argv)
        check_program_path(policy, argv)
        program, args = select_program(policy, argv)
        parsed = parse_arguments(program, compiled_for(policy).programs[program], args)
        check_paths(policy, parsed)
    except Refusal as refusal:
        # every refusal names what it refuses and ends with what to do instead
        return Decision(DENY, argv, refusal.reason, f"{refusal.message} {refusal.instead or ADVICE[refusal.reason]}")
    message = approval_message(policy, parsed)
    if message is not None:
        return Decision(REQUIRE_APPROVAL, argv, "approval_required", message)
    return Decision(ALLOW, argv, "allowed", f"{parsed.label} is allowed by policy {policy.name!r}.")


def decide(policy: Policy, line: str) -> Decision:
    """Decide what may happen to one command line under ``policy``. Never raises."""
    if not isinstance(line, str):
        return Decision(DENY, None, "invalid_input", f"The command must be a string. {ADVICE['invalid_input']}")
    try:
        return _decide(policy, line)
    except Exception as error:  # noqa: BLE001 - fail closed, never crash the caller
        return Decision(
            DENY, None, "internal_error",
            f"The policy engine failed ({type(error).__name__}); denied. {ADVICE['internal_error']}",
        )
