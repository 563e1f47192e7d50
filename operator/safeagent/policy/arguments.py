"""Read a command's arguments the way the real program will: GNU getopt_long, git, or find.

The parser errs towards *seeing more*: when it cannot be sure an option consumes the next word, the
policy marks the option ``optional`` (attached argument only), so that word is read as an operand and
checked as a path. Every word ends up as an option, an option argument or an operand, and each is
checked; nothing is skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from .compiled import Command, Option
from .errors import Refusal
from .paths import PathKind
from .values import CHECKERS

if TYPE_CHECKING:
    from .model import ArgumentKind, OperandRule

#: The argument kinds judged by their content alone; ``number`` and ``choice`` are judged by whoever
#: holds the value (an option or an operand), as the reason given differs.
ContentKind = Literal[
    "text", "regex", "path", "destination", "nodeid", "revision", "date", "pretty-format", "atom-format",
    "directive-format", "sed-script", "printf-format",
]
#: The kinds that name files: collected for the path rules (`paths.py`) once the words are sorted.
_PATH_KINDS: dict[str, PathKind] = {"path": "path", "destination": "destination", "nodeid": "nodeid"}

_NUMBER = re.compile(r"^[+-]?[0-9]{1,18}[A-Za-z]{0,3}$")
_DIGITS = re.compile(r"^[0-9]+$")
_NUMERIC_OPTION = Option(canonical="-NUM", names=("-NUM",), arg="number")
#: find's expression operators: harmless, take no argument. ( ) and ! arrive quoted (`\(`, `'!'`).
_FIND_OPERATORS = frozenset({"-not", "-a", "-and", "-o", "-or", ",", "(", ")", "!"})


def _starts_expression(word: str) -> bool:
    """findutils' rule for where the starting points end: `-x...`, `(` or `!` (a lone `-`, `)` or `,` is a file)."""
    return (word.startswith("-") and len(word) > 1) or word in ("(", "!")


@dataclass(slots=True)
class ParsedCommand:
    """The words of a command, sorted into what they are."""

    path: list[str]  # program, then subcommands: ["git", "diff"]
    command: Command  # rules of the innermost subcommand
    options: list[str] = field(default_factory=list)  # every spelling of every option given, all levels
    #: (kind, value, where) for every option argument and operand that needs a content check
    values: list[tuple[PathKind, str, str]] = field(default_factory=list)
    operands: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return " ".join(self.path)


def _check_value(parsed: ParsedCommand, option: Option, value: str | None, shown: str) -> None:
    where = f"{parsed.label}: {shown}"
    kind = option.arg
    if value is None or kind is None:
        return
    if kind == "choice":
        if value not in option.choices:
            allowed = ", ".join(sorted(option.choices))
            raise Refusal("option_bad_value", f"{where} does not accept {value!r} (allowed: {allowed}).")
    elif kind == "number":
        if not _NUMBER.match(value):
            raise Refusal("option_bad_value", f"{where} needs a number, not {value!r}.")
    else:
        if kind in ("path", "destination", "nodeid") and value.startswith("-") and value != "-":
            # an option's file argument that looks like an option is read as one by some programs and as a
            # file by others; a file whose name starts with '-' can always be written ./-x ('-' alone is
            # standard input, or a workspace file named '-')
            raise Refusal("path_option_like", f"{where} {value!r} starts with '-', which a program may read as an "
                          "option.", f"Write ./{value} for such a file.")
        _check_kind(parsed, kind, value, f"the argument of {shown}")


def _check_operand(parsed: ParsedCommand, rule: OperandRule, kind: ArgumentKind, value: str) -> None:
    """One operand: every kind a rule can name is judged here, so none lets a word through unread."""
    if kind == "choice":
        # choices are set only with kind: choice (the model checks it), so under any other kind a
        # leading_kind: choice has none and nothing matches
        choices = rule.choices or []
        if value not in choices:
            raise Refusal(
                "operand_not_allowed",
                f"{parsed.label}: {value!r} is not allowed (allowed: {', '.join(choices)}).",
            )
    elif kind == "number":
        if not _NUMBER.match(value):
            raise Refusal("operand_not_allowed", f"{parsed.label}: operand {value!r} is not a number.")
    else:
        _check_kind(parsed, kind, value, "operand")


def _check_kind(parsed: ParsedCommand, kind: ContentKind, value: str, where: str) -> None:
    """Content checks of one value: paths are collected for the path rules, languages are read now
    (values.py); text and regex are matched against, never acted on, so they are not looked at."""
    checker = CHECKERS.get(kind)
    if checker is not None:
        checker(value, f"{parsed.label}: {where}")
    elif kind in _PATH_KINDS:
        parsed.values.append((_PATH_KINDS[kind], value, where))


def scanned_why(command: Command, word: str) -> str | None:
    """Why ``word`` is one the program acts on wherever it stands (``scanned_words``), or None: a long
    name alone or with ``=value``, a letter with anything attached (``-L1,1:f``, ``-qL...``), ``--``."""
    for names, why in command.scanned:
        for name in names:
            if word == name or (name.startswith("--") and word.startswith(name + "=")):
                return why
            if len(name) == 2 and name != "--" and word.startswith(name):
                return why
    return None


def _refuse_scanned(parsed: ParsedCommand, value: str, shown: str) -> None:
    """An option's value given as the next word, which the program itself reads as something else."""
    why = scanned_why(parsed.command, value)
    if why is not None:
        attached = f"{shown}={value}" if shown.startswith("--") else f"{shown}{value}"
        raise Refusal(
            "argument_denied",
            f"{parsed.label}: {value!r}, the value of {shown}, is refused: {why}.",
            f"Attach the value ({attached}), which makes it one word, or choose another.",
        )


def _refuse_denied(parsed: ParsedCommand, option: Option, shown: str) -> None:
    if option.denied:
        also = "" if shown in option.names else f" (it abbreviates {option.canonical})"
        raise Refusal("option_denied", f"{parsed.label}: {shown} is refused{also}: {option.why}.")


def resolve_long(command: Command, parsed: ParsedCommand, name: str) -> Option:
    """The option a ``--name`` (possibly abbreviated) stands for; refuses unknown and ambiguous ones."""
    option = command.long.get(name)
    if option is not None:
        return option
    if command.abbreviations and len(name) > 2:
        matches = {id(opt): opt for key, opt in command.long.items() if key.startswith(name)}
        if len(matches) == 1:
            return next(iter(matches.values()))
        if len(matches) > 1:
            names = ", ".join(sorted(opt.canonical for opt in matches.values()))
            raise Refusal("option_ambiguous", f"{parsed.label}: {name} is ambiguous ({names}).")
    raise Refusal("option_unknown", f"{parsed.label}: option {name} is not allowed.")


def _take_argument(
    parsed: ParsedCommand, option: Option, attached: str | None, args: list[str], index: int, shown: str
) -> int:
    """Read the option's argument (attached, or the next word unless it is optional); returns the next index."""
    if option.arg is None:
        return index
    separate = attached is None and not option.optional
    if separate:
        if index >= len(args):
            if option.default_if_last:
                return index  # git branch --merged: the program uses its default (HEAD)
            raise Refusal("option_missing_argument", f"{parsed.label}: {shown} needs an argument.")
        attached = args[index]
        index += 1
    _check_value(parsed, option, attached, shown)
    if separate and attached is not None:
        _refuse_scanned(parsed, attached, shown)
    return index


def _long_option(command: Command, parsed: ParsedCommand, token: str, args: list[str], index: int) -> int:
    name, has_value, value = token.partition("=")
    option = resolve_long(command, parsed, name)
    _refuse_denied(parsed, option, name)
    if option.arg is None and has_value:
        raise Refusal("option_unexpected_argument", f"{parsed.label}: {option.canonical} takes no argument.")
    parsed.options.extend(option.names)
    return _take_argument(parsed, option, value if has_value else None, args, index, option.canonical)


def _short_cluster(command: Command, parsed: ParsedCommand, token: str, args: list[str], index: int) -> int:
    body = token[1:]
    if command.numeric_option and _DIGITS.match(body):
        parsed.options.append(_NUMERIC_OPTION.canonical)
        return index
    position = 0
    while position < len(body):
        letter = body[position]
        shown = f"-{letter}"
        option = command.short.get(letter)
        if option is None:
            raise Refusal("option_unknown", f"{parsed.label}: option {shown} is not allowed.")
        _refuse_denied(parsed, option, shown)
        parsed.options.extend(option.names)
        if option.arg is None:
            position += 1
            continue
        if command.short_values == "next_word":
            # tree: every value-taking letter of a cluster takes the next unused word, in order
            index = _take_argument(parsed, option, None, args, index, shown)
            position += 1
            continue
        return _take_argument(parsed, option, body[position + 1 :] or None, args, index, shown)
    return index


def _parse_gnu(command: Command, parsed: ParsedCommand, args: list[str], stop_at_operand: bool) -> list[str]:
    """Parse options and collect operands; returns the words after the first operand when stopping."""
    index = 0
    only_operands = False
    operands: list[str] = []
    while index < len(args):
        token = args[index]
        index += 1
        if only_operands or token == "-" or not token.startswith("-"):
            operands.append(token)
            if stop_at_operand:
                parsed.operands = operands
                return args[index:]
            if not command.permute:
                only_operands = True
        elif token == "--":
            only_operands = True
        elif token.startswith("--"):
            index = _long_option(command, parsed, token, args, index)
        else:
            index = _short_cluster(command, parsed, token, args, index)
    parsed.operands = operands
    return []


def _classify_operands(command: Command, parsed: ParsedCommand) -> None:
    rule = command.operands
    operands = parsed.operands
    if not rule.min <= len(operands) <= rule.max:
        extra = f" ({', '.join(map(repr, operands[rule.max : rule.max + 3]))} too many)" if len(operands) > rule.max else ""
        raise Refusal(
            "operand_count",
            f"{parsed.label}: takes {rule.min} to {rule.max} operands, not {len(operands)}{extra}.",
        )
    if operands and rule.only_with and not set(rule.only_with).intersection(parsed.options):
        raise Refusal(
            "operand_not_allowed",
            f"{parsed.label}: takes operands only with {' or '.join(rule.only_with)} ({operands[0]!r} was given).",
        )
    leading = rule.leading_text
    if leading and command.leading_text_unless.intersection(parsed.options):
        leading = 0
    last: ArgumentKind = rule.kind
    if rule.last_kind is not None and len(operands) >= 2 and not command.last_kind_unless.intersection(parsed.options):
        last = rule.last_kind
    for position, value in enumerate(operands):
        if position < leading:
            _check_operand(parsed, rule, rule.leading_kind, value)
        else:
            _check_operand(parsed, rule, last if position == len(operands) - 1 else rule.kind, value)


def _parse_find(command: Command, parsed: ParsedCommand, args: list[str]) -> None:
    """find [-P] [starting points] [expression]: predicates are exact words, never abbreviated."""
    index = 0
    while index < len(args) and len(args[index]) >= 2 and args[index][0] == "-" and args[index][1].isupper():
        index = _short_cluster(command, parsed, args[index], args, index + 1)
    while index < len(args) and not _starts_expression(args[index]):
        parsed.operands.append(args[index])
        index += 1
    _classify_operands(command, parsed)
    while index < len(args):
        token = args[index]
        index += 1
        if token in _FIND_OPERATORS:
            continue
        predicate = command.predicates.get(token)
        if predicate is None:
            what = "predicate" if token.startswith("-") else "word (starting points come first)"
            raise Refusal("option_unknown", f"find: {what} {token!r} is not allowed.")
        _refuse_denied(parsed, predicate, token)
        parsed.options.append(token)
        if predicate.arg is not None:
            if index >= len(args):
                raise Refusal("option_missing_argument", f"find: {token} needs an argument.")
            _check_value(parsed, predicate, args[index], token)
            index += 1


def _refuse_words(command: Command, parsed: ParsedCommand, args: list[str]) -> None:
    """A word matching one of the command's ``deny_words`` is refused, wherever it stands."""
    for pattern, why in command.deny_words:
        for word in args:
            if pattern.search(word):
                raise Refusal("argument_denied", f"{parsed.label}: {word!r} is refused: {why}.")


def parse_arguments(program: str, command: Command, args: list[str]) -> ParsedCommand:
    """Sort ``args`` (the words after the program's invocation) by the rules of ``command``."""
    parsed = ParsedCommand(path=[program], command=command)
    levels = [(command, args)]  # deny_words are checked once the options parsed (clearer reasons first)
    while command.subcommands:
        rest = _parse_gnu(command, parsed, args, stop_at_operand=True)
        if not parsed.operands:
            if command.subcommand_optional:  # `git remote -v`: every word was an option of the command itself
                break
            raise Refusal("subcommand_missing", f"{parsed.label}: a subcommand is needed.")
        name = parsed.operands[0]
        sub = command.subcommands.get(name)
        if name in command.denied_subcommands:
            raise Refusal(
                "subcommand_not_allowed",
                f"{parsed.label}: subcommand {name!r} is refused: {command.denied_subcommands[name]}.",
                f"Use {' or '.join(sorted(command.subcommands))}.",
            )
        if sub is None and command.subcommand_optional and command.operands.max > 0:
            # git's PARSE_OPT_SUBCOMMAND_OPTIONAL: a word that names no subcommand starts the command's
            # own mode, with every word (`git reflog main` is `git reflog show main`)
            first = parsed.operands
            _parse_gnu(command, parsed, rest, stop_at_operand=False)
            parsed.operands = first + parsed.operands
            break
        if sub is None:
            allowed = ", ".join(sorted(command.subcommands))
            raise Refusal(
                "subcommand_not_allowed", f"{parsed.label}: subcommand {name!r} is not allowed (allowed: {allowed})."
            )
        parsed.path.append(name)
        parsed.command = command = sub
        parsed.operands = []
        args = rest
        levels.append((command, args))
    if command.subcommands:
        _classify_operands(command, parsed)  # no subcommand: the command runs in its own mode
    elif command.syntax == "find":
        _parse_find(command, parsed, args)
    else:
        _parse_gnu(command, parsed, args, stop_at_operand=False)
        _classify_operands(command, parsed)
    for level, words in levels:
        _refuse_words(level, parsed, words)
    return parsed
