"""Typed model of a policy file: every key a policy may hold, and the load-time checks on it.

Parsed by pydantic with ``extra="forbid"`` and strict types, so an unknown key, a YAML boolean where a
string belongs (``no`` instead of ``"no"``) or a missing field is refused with its field path. The
model is only the *shape*; `compiled.py` turns it into lookup tables that `engine.decide` walks.
"""

from __future__ import annotations

import posixpath
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from .programs import SCRIPTED, is_denied_program

#: What an option argument or an operand is, and so how it is checked: what the program makes of it.
#:  text    free text (a name, a glob, a separator), never looked at as a path
#:  regex   a regular expression the program matches with (never opened, never run)
#:  revision       a git revision: never starts with '-' (values.py)
#:  date           a date the program parses: never TZ=, which names a file to open (values.py)
#:  pretty-format  a git pretty format: no signature placeholder, no program-running atom (values.py)
#:  atom-format    a git %(atom) format (for-each-ref, branch, tag, ls-files, ls-tree): known atoms only
#:  directive-format  %-directives padded to a width (find -printf, stat --printf, strftime): three digits at most
#:  path    resolved lexically against the workspace; must stay inside it
#:  destination  a path a write program puts things into (mv's last operand, mv -t): it may be the
#:          workspace itself (`mv x .`), never outside it or a protected path
#:  nodeid  a pytest node id ``path::name``: the part before ``::`` and the whole are both paths
#:  number  an optionally signed count with an optional unit suffix (``5``, ``+5``, ``-3``, ``1K``)
#:  choice  one of ``choices``, exactly
#:  sed-script     a sed script that can only print (`scripts.py`): ``10p``, ``1,40p``, ``/re/p``
#:  printf-format  a printf format without unbounded widths (`scripts.py`)
ArgumentKind = Literal[
    "text", "regex", "path", "destination", "nodeid", "revision", "date", "pretty-format", "atom-format",
    "directive-format", "number", "choice", "sed-script", "printf-format",
]
#: How a command's words are read, how a one-letter option finds its value, and whether it writes
#: (see `CommandRule`); named so that the compiled tables carry the same closed sets.
Syntax = Literal["gnu", "find"]
ShortValues = Literal["attached_or_next", "next_word"]
Access = Literal["read", "write"]

SHORT_OPTION = re.compile(r"^-[A-Za-z0-9]$")
LONG_OPTION = re.compile(r"^--[a-z0-9][a-z0-9-]*$")
FIND_PREDICATE = re.compile(r"^-[a-z][A-Za-z0-9_-]*$")
PROGRAM_NAME = re.compile(r"^[a-z0-9][a-z0-9._+-]*$")
PLAIN_TOKEN = re.compile(r"^[A-Za-z0-9._+-]+$")


class Strict(BaseModel):
    """Base for every policy model: unknown keys are errors, values are never coerced."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class OptionRule(Strict):
    """An option the program may be given (or, under ``deny_options``, one it may not)."""

    names: list[str] = Field(min_length=1, description="spellings: -x, --long, or find's -predicate")
    arg: ArgumentKind | None = Field(default=None, description="the option's argument, if it takes one")
    optional: bool = Field(default=False, description="argument only in attached form: --opt=value or -xVALUE")
    choices: list[str] | None = Field(default=None, description="allowed values when arg is 'choice'")
    default_if_last: bool = Field(
        default=False,
        description="the next word is the value, but the option may be the last word (git branch --merged: HEAD)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "OptionRule":
        if (self.arg == "choice") != (self.choices is not None):
            raise ValueError("'choices' is required with arg: choice and allowed only with it")
        if self.optional and self.arg is None:
            raise ValueError("'optional' needs an 'arg'")
        if self.default_if_last and (self.arg is None or self.optional):
            raise ValueError("'default_if_last' needs an 'arg' that is not 'optional'")
        return self


class DeniedOption(Strict):
    """An option that is refused outright, with the reason a human is told."""

    names: list[str] = Field(min_length=1)
    why: str = Field(min_length=3)


class DeniedWord(Strict):
    """A pattern no argument word may match (``re.search``), with the reason a human is told."""

    pattern: str = Field(min_length=1, description="a Python regular expression, searched in each word")
    why: str = Field(min_length=3)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"not a valid regular expression: {error}") from None
        return value


class ScannedWord(Strict):
    """Words a program looks for in its whole argv, outside (or before) its option parser: given as
    another option's value in a separate word, the program would still act on them (git diff's
    --no-index, git log's first pass). Refused in that place, with the reason a human is told."""

    names: list[str] = Field(min_length=1, description="--long (also --long=...), -x (also -x...), or --")
    why: str = Field(min_length=3)

    @field_validator("names")
    @classmethod
    def _spellings(cls, value: list[str]) -> list[str]:
        for name in value:
            if name != "--" and not (SHORT_OPTION.match(name) or LONG_OPTION.match(name)):
                raise ValueError(f"{name!r} is neither -x, --long nor --")
        return value


class OperandRule(Strict):
    """What the non-option arguments of a command are."""

    kind: ArgumentKind = "path"
    choices: list[str] | None = None
    min: int = Field(default=0, ge=0, le=4096)
    max: int = Field(default=4096, ge=0, le=4096)
    leading_text: int = Field(default=0, ge=0, le=4, description="leading operands of leading_kind (grep's pattern)")
    leading_kind: ArgumentKind = Field(default="text", description="what the leading operands are (sed's script)")
    leading_text_unless: list[str] = Field(
        default_factory=list, description="options whose presence means there is no leading text operand"
    )
    only_with: list[str] = Field(
        default_factory=list, description="operands are allowed only when one of these options is given (git branch --list)"
    )
    last_kind: ArgumentKind | None = Field(
        default=None, description="what the last of two or more operands is (mv SOURCE... DIRECTORY: destination)"
    )
    last_kind_unless: list[str] = Field(
        default_factory=list, description="options whose presence means the last operand is like the others (mv -t, -T)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> "OperandRule":
        if (self.kind == "choice") != (self.choices is not None):
            raise ValueError("'choices' is required with kind: choice and allowed only with it")
        if self.min > self.max:
            raise ValueError("'min' is larger than 'max'")
        if self.last_kind == "choice":
            raise ValueError("'last_kind' cannot be 'choice'")
        if self.leading_text and self.leading_kind == "choice" and self.kind != "choice":
            # the choices belong to kind: choice; without them a leading choice refuses every word
            raise ValueError("'leading_kind: choice' needs 'kind: choice' (the leading operands use its 'choices')")
        return self


class OptionSet(Strict):
    """A named group of options shared by several commands (git diff, log and show)."""

    options: list[OptionRule] = Field(default_factory=list)
    deny_options: list[DeniedOption] = Field(default_factory=list)
    scanned_words: list[ScannedWord] = Field(default_factory=list)


class CommandRule(Strict):
    """How the arguments of one program (or one of its subcommands) are read and what they may be."""

    syntax: Syntax = Field(default="gnu", description="gnu: getopt_long style; find: predicates")
    abbreviations: bool = Field(default=True, description="long options may be abbreviated to a unique prefix")
    permute: bool = Field(default=True, description="options may follow operands (GNU argument permutation)")
    numeric_option: bool = Field(default=False, description="-NUM is an option (head -5, git log -3, grep -2)")
    short_values: ShortValues = Field(
        default="attached_or_next",
        description="next_word: a short option's value is always the next unused word, never the rest of its cluster (tree)",
    )
    access: Access = Field(default="read", description="write: paths may not be the root or protected")
    option_sets: list[str] = Field(default_factory=list)
    options: list[OptionRule] = Field(default_factory=list)
    deny_options: list[DeniedOption] = Field(default_factory=list)
    predicates: list[OptionRule] = Field(default_factory=list, description="find only")
    deny_predicates: list[DeniedOption] = Field(default_factory=list, description="find only")
    deny_words: list[DeniedWord] = Field(
        default_factory=list, description="patterns no word after the program (or subcommand) may match"
    )
    scanned_words: list[ScannedWord] = Field(
        default_factory=list, description="words the program scans its argv for: never another option's separate value"
    )
    operands: OperandRule = Field(default_factory=OperandRule)
    subcommands: dict[str, "CommandRule"] | None = None
    subcommand_optional: bool = Field(
        default=False,
        description="without an operand the command runs itself (git remote, git reflog); an operand is a subcommand",
    )
    deny_subcommands: list[DeniedOption] = Field(
        default_factory=list, description="the program's other subcommands, refused with why (git reflog expire)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> "CommandRule":
        if self.syntax != "find" and (self.predicates or self.deny_predicates):
            raise ValueError("'predicates' and 'deny_predicates' belong to syntax: find")
        if (self.subcommand_optional or self.deny_subcommands) and self.subcommands is None:
            raise ValueError("'subcommand_optional' and 'deny_subcommands' need 'subcommands'")
        if self.subcommands is not None:
            if not self.subcommands:
                raise ValueError("'subcommands' must not be empty")
            if self.permute:
                raise ValueError("a command with subcommands must set permute: false")
            for name in self.subcommands:
                if not PLAIN_TOKEN.match(name) or name.startswith("-"):
                    raise ValueError(f"subcommand name {name!r} is not a plain word")
        return self


class ProgramRule(CommandRule):
    """A program on the allow-list."""

    description: str = ""
    invocations: list[list[str]] | None = Field(
        default=None, description="argv prefixes that select this program; default [[name]]"
    )
    version: str = Field(
        default="", description="the version whose source the scanned_words were read from (tested against the image)"
    )


class Limits(Strict):
    max_command_bytes: int = Field(default=4096, ge=16, le=65536)
    max_arguments: int = Field(default=128, ge=1, le=4096)


class Characters(Strict):
    allow_non_ascii: bool = Field(
        default=False, description="allow non-ASCII letters, digits and marks (never invisible or look-alike ones)"
    )


class Paths(Strict):
    workspace: str = "/workspace"
    protected: list[str] = Field(default_factory=lambda: [".git"])

    @field_validator("workspace")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or posixpath.normpath(value) != value or value == "/":
            raise ValueError("must be a normalised absolute path other than /")
        return value

    @field_validator("protected")
    @classmethod
    def _relative(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item or item.startswith("/") or posixpath.normpath(item) != item or item.startswith(".."):
                raise ValueError(f"{item!r} must be a normalised path relative to the workspace")
        return value


class ApprovalRule(Strict):
    program: str
    subcommand: str | None = None
    message: str = Field(min_length=3)


#: The argument kind of each scripted program's scripts (programs.SCRIPTED names the programs).
SCRIPT_KINDS: dict[str, ArgumentKind] = {"sed": "sed-script"}
#: Options of a scripted program that may never be allowed: they edit files or read unchecked scripts.
SCRIPTED_NEVER = {"sed": frozenset({"-i", "--in-place", "-f", "--file", "--follow-symlinks"})}


def script_rule_problem(name: str, rule: CommandRule) -> str | None:
    """Why the rule of a `SCRIPTED` program is unsafe, or None: every script it can be given must be
    checked (its first operand, unless an option gave the script), and nothing else may carry code or
    name a file of code (an option value can only be a script, a number or a choice)."""
    kind = SCRIPT_KINDS[name]
    operands = rule.operands
    if rule.option_sets:
        return "its options must be listed in the program itself (no option_sets)"
    if operands.leading_text != 1 or operands.leading_kind != kind:
        return f"its first operand must be checked as a script (leading_text: 1, leading_kind: {kind})"
    for option in rule.options:
        if option.arg not in (None, kind, "number", "choice"):
            return f"option {option.names[0]} takes a {option.arg}; only {kind}, number or choice values are allowed"
        never = SCRIPTED_NEVER[name].intersection(option.names)
        if never:
            return f"option {sorted(never)[0]} can never be allowed (it edits files or reads an unchecked script)"
    script_options = {spelling for option in rule.options if option.arg == kind for spelling in option.names}
    if not set(operands.leading_text_unless) <= script_options:
        return "leading_text_unless may only name options whose value is a script"
    if operands.kind != "path":
        return "its other operands must be paths"
    return None



def _scans(rule: CommandRule, option_sets: dict[str, OptionSet]) -> bool:
    """Whether the rule (or a subcommand, or an option set it uses) lists scanned_words."""
    if rule.scanned_words or any(option_sets[name].scanned_words for name in rule.option_sets if name in option_sets):
        return True
    return any(_scans(sub, option_sets) for sub in (rule.subcommands or {}).values())


class Policy(Strict):
    """A whole policy file. `load_policy` returns one; `decide` reads it."""

    version: Literal[1]
    name: str = Field(min_length=1)
    description: str = ""
    max_output_kb: int = Field(ge=1, le=1048576)
    max_file_writes: int = Field(ge=0, le=1000000)
    limits: Limits = Field(default_factory=Limits)
    characters: Characters = Field(default_factory=Characters)
    paths: Paths = Field(default_factory=Paths)
    option_sets: dict[str, OptionSet] = Field(default_factory=dict)
    programs: dict[str, ProgramRule] = Field(min_length=1)
    require_approval: list[ApprovalRule] = Field(default_factory=list)

    # The lookup tables the engine decides with, built once by safeagent.policy.compiled
    # (compiled_for); this module does not know them, so the two never import each other.
    _compiled: object = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_programs_and_approvals(self) -> "Policy":
        for name in self.programs:
            if not PROGRAM_NAME.match(name):
                raise ValueError(f"programs.{name}: not a plain program name")
            if is_denied_program(name):
                raise ValueError(f"programs.{name}: wrappers, shells and interpreters can never be allowed")
            if _scans(self.programs[name], self.option_sets) and not self.programs[name].version:
                raise ValueError(f"programs.{name}: scanned_words need the program's 'version' (of the source read)")
            if name in SCRIPTED:
                problem = script_rule_problem(name, self.programs[name])
                if problem:
                    raise ValueError(f"programs.{name}: {problem}")
        for index, rule in enumerate(self.require_approval):
            program = self.programs.get(rule.program)
            where = f"require_approval[{index}]"
            if program is None:
                raise ValueError(f"{where}: program {rule.program!r} is not in 'programs'")
            if rule.subcommand is not None and rule.subcommand not in (program.subcommands or {}):
                raise ValueError(f"{where}: {rule.program} has no subcommand {rule.subcommand!r}")
        return self


CommandRule.model_rebuild()
ProgramRule.model_rebuild()
