"""The result of a policy decision, and the catalogue of stable reason codes.

Reason codes are an API: the operator puts them in status and audit records, tests assert them and
configs/README.md documents each one (a unit test checks that it does). Add codes; never rename one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypedDict

# Final keeps each one its literal type, so that it can stand where a Verdict is expected.
ALLOW: Final = "allow"
DENY: Final = "deny"
REQUIRE_APPROVAL: Final = "require_approval"

Verdict = Literal["allow", "deny", "require_approval"]

#: code -> what it means. Order follows the decision chain.
REASONS: dict[str, str] = {
    "invalid_input": "the command is not a string",
    "empty_command": "the command is empty or only white space",
    "invalid_encoding": "the command holds text that is not valid Unicode (a lone surrogate)",
    "command_too_long": "the command is longer than limits.max_command_bytes (UTF-8 bytes)",
    "bidi_control": "the command holds a bidirectional-text control character",
    "invisible_character": "the command holds an invisible or non-ASCII white-space character",
    "control_character": "the command holds a control character (NUL, escape, carriage return ...)",
    "shell_metacharacter": "the command holds a character a shell would act on (operator, substitution, glob, expansion ...)",
    "non_ascii_character": "the command holds a non-ASCII character and characters.allow_non_ascii is false",
    "unicode_lookalike": "a non-ASCII character that is not a plain letter, digit or mark, or not NFKC-stable",
    "tokenise_error": "the command cannot be split into words (an unclosed quote, a trailing backslash)",
    "too_many_arguments": "the command has more than limits.max_arguments words",
    "environment_assignment": "the command starts with NAME=value, which would set the environment",
    "program_path": "the program is given as a path; only bare names from the policy are run",
    "wrapper_denied": "the program runs another command (env, sudo, xargs, timeout, nohup ...)",
    "interpreter_denied": "the program is a shell or interpreter, or can run commands itself",
    "program_not_allowed": "the program is not on the policy's list",
    "subcommand_missing": "the program needs a subcommand and none was given",
    "subcommand_not_allowed": "the subcommand is not on the program's list",
    "option_unknown": "an option (or find predicate) is not on the command's allow-list",
    "option_denied": "an option (or find predicate) is explicitly refused; the message says why",
    "option_ambiguous": "an abbreviated long option matches more than one option",
    "option_missing_argument": "an option that needs an argument was given none",
    "option_unexpected_argument": "an option that takes no argument was given one (--flag=value)",
    "argument_denied": (
        "a value its kind refuses (a signature placeholder in a git format, TZ= in a date, a revision starting "
        "with '-', a sed script that writes ...) or a word matching deny_words (pytest's @file, tail's +f ...)"
    ),
    "option_bad_value": "an option's argument is not an allowed choice or not a number",
    "operand_not_allowed": "an operand is not one of the allowed choices (make's target), or not a number where one belongs",
    "operand_count": "too few or too many operands for the command",
    "path_option_like": "an option's path argument starts with '-' (a program may read it as an option)",
    "path_empty": "a path argument is the empty string",
    "path_tilde": "a path argument starts with ~, which a shell would expand to a home directory",
    "path_outside_workspace": "a path argument resolves (lexically) outside the workspace",
    "path_workspace_root": "a command that writes was given the workspace root itself",
    "path_protected": "a command that writes was given a protected path (paths.protected, e.g. .git)",
    "approval_required": "the command is allowed only after a human approves it",
    "allowed": "every check passed",
    "internal_error": "the policy engine failed; fail closed",
}


#: reason -> what to do instead, the last sentence of every refusal's message (unless the check that
#: refused gave a more precise one). tests/unit/policy/test_messages.py holds every refusal to it.
ADVICE: dict[str, str] = {
    "invalid_input": "Send the command as one string.",
    "empty_command": "Give a program and its arguments.",
    "invalid_encoding": "Write the command as valid UTF-8 text.",
    "command_too_long": "Shorten the command, or split the work into several jobs.",
    "bidi_control": "Remove the character and write the command in plain text.",
    "invisible_character": "Remove the character and write the command in plain text.",
    "control_character": "Remove the character and write the command in plain text.",
    "shell_metacharacter": "Quote it ('...' passes every character on literally) or leave it out: no shell runs here.",
    "non_ascii_character": "Write the command in ASCII (quote a file name another way, or match it with a pattern).",
    "unicode_lookalike": "Write the character as the plain ASCII one it looks like.",
    "tokenise_error": "Close the quote, or remove the trailing backslash.",
    "too_many_arguments": "Split the work into several jobs with fewer words each.",
    "environment_assignment": "Leave out the NAME=value prefix: the sandbox's environment is fixed.",
    "program_path": "Give the bare program name (ls, not /bin/ls).",
    "wrapper_denied": "Run the command itself, without the wrapper.",
    "interpreter_denied": (
        "Use an allowed program for the job (cat, grep, find, git ...); the execution policy runs a repository's tests."
    ),
    "program_not_allowed": "Use a program the policy lists (configs/README.md).",
    "subcommand_missing": "Name one of the allowed subcommands.",
    "subcommand_not_allowed": "Use one of the allowed subcommands.",
    "option_unknown": "Leave the option out, or use one the policy lists for this command (configs/README.md).",
    "option_denied": "Leave the option out.",
    "option_ambiguous": "Spell the option out in full.",
    "option_missing_argument": "Give the option its value.",
    "option_unexpected_argument": "Leave out the =value: the option takes none.",
    "argument_denied": "Change that word or leave it out.",
    "option_bad_value": "Give one of the values the option takes.",
    "operand_not_allowed": "Give one of the allowed operands.",
    "operand_count": "Give as many operands as the command takes.",
    "path_option_like": "Write a file whose name starts with '-' as ./-name.",
    "path_empty": "Name a file or directory.",
    "path_tilde": "Name the file inside the workspace (src/x, not ~/x).",
    "path_outside_workspace": "Name a file inside the workspace (relative paths start at /workspace).",
    "path_workspace_root": "Name the files or directories inside the workspace instead.",
    "path_protected": "Leave .git (and the other protected paths) alone; name other files.",
    "internal_error": "Report it with the command line; the command was refused to be safe.",
}


class DecisionDict(TypedDict):
    """`Decision.to_dict`: the JSON shape the CLI prints and callers parse."""

    decision: Verdict
    argv: list[str] | None
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Decision:
    """What may happen to one command line."""

    decision: Verdict
    argv: list[str] | None
    reason: str
    message: str

    def to_dict(self) -> DecisionDict:
        return {
            "decision": self.decision,
            "argv": None if self.argv is None else list(self.argv),
            "reason": self.reason,
            "message": self.message,
        }
