"""Lookup tables built once from a validated `Policy`, so that `decide` does no work per rule.

Every option spelling of a command maps to one `Option`; denied options live in the same table (with
``why`` set) so that an abbreviation is resolved against both: ``--ext`` is ambiguous or denied, never
silently taken for an allowed option that happens to share the prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .model import FIND_PREDICATE, LONG_OPTION, PLAIN_TOKEN, SHORT_OPTION, DeniedOption

#: Interpreters that may start a fixed module of an allowed program (and nothing else).
MODULE_LAUNCHERS = frozenset({"python3"})

if TYPE_CHECKING:
    from .model import Access, ArgumentKind, CommandRule, OperandRule, OptionRule, Policy, ShortValues, Syntax


@dataclass(frozen=True, slots=True)
class Option:
    """One option (all its spellings), allowed or denied."""

    canonical: str
    names: tuple[str, ...]
    arg: ArgumentKind | None = None
    optional: bool = False
    choices: frozenset[str] = frozenset()
    default_if_last: bool = False  # the value may be missing when the option is the last word
    why: str | None = None  # set: the option is denied, and this says why

    @property
    def denied(self) -> bool:
        return self.why is not None


@dataclass(frozen=True, slots=True)
class Command:
    """One program or subcommand, ready for the argument parser."""

    name: str
    syntax: Syntax
    abbreviations: bool
    permute: bool
    numeric_option: bool
    short_values: ShortValues
    access: Access
    long: dict[str, Option]
    short: dict[str, Option]
    predicates: dict[str, Option]
    operands: "OperandRule"
    leading_text_unless: frozenset[str]
    #: (compiled pattern, why) pairs: a word that matches one is refused (``deny_words``)
    deny_words: tuple[tuple[re.Pattern[str], str], ...] = ()
    subcommands: dict[str, "Command"] = field(default_factory=dict)
    subcommand_optional: bool = False
    #: subcommand -> why it is refused (``deny_subcommands``)
    denied_subcommands: dict[str, str] = field(default_factory=dict)
    #: (spellings, why) of the words the program scans its argv for (``scanned_words``)
    scanned: tuple[tuple[tuple[str, ...], str], ...] = ()
    #: options whose presence means the last operand is like the others (``operands.last_kind_unless``)
    last_kind_unless: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    programs: dict[str, Command]
    #: first argv token -> [(invocation prefix, program name)], longest prefix first
    invocations: dict[str, list[tuple[tuple[str, ...], str]]]
    #: (program, subcommand or None) -> approval message
    approvals: dict[tuple[str, str | None], str]


def _option(rule: OptionRule | DeniedOption) -> Option:
    names = tuple(rule.names)
    longs = [name for name in names if name.startswith("--")]
    canonical = longs[0] if longs else names[0]
    if isinstance(rule, DeniedOption):
        return Option(canonical=canonical, names=names, why=rule.why)
    return Option(
        canonical=canonical,
        names=names,
        arg=rule.arg,
        optional=rule.optional,
        choices=frozenset(rule.choices or ()),
        default_if_last=rule.default_if_last,
    )


def _compile_command(policy: "Policy", where: str, rule: "CommandRule") -> Command:
    allowed = list(rule.options)
    denied = list(rule.deny_options)
    scanned = list(rule.scanned_words)
    for set_name in rule.option_sets:
        option_set = policy.option_sets.get(set_name)
        if option_set is None:
            raise ValueError(f"{where}.option_sets: no option set named {set_name!r}")
        allowed += option_set.options
        denied += option_set.deny_options
        scanned += option_set.scanned_words

    long: dict[str, Option] = {}
    short: dict[str, Option] = {}
    predicates: dict[str, Option] = {}

    def add(table: dict[str, Option], key: str, option: Option) -> None:
        if key in table:
            raise ValueError(f"{where}: option {key} is listed twice")
        table[key] = option

    def add_option(option: Option) -> None:
        for name in option.names:
            if LONG_OPTION.match(name):
                add(long, name, option)
            elif SHORT_OPTION.match(name):
                add(short, name[1], option)
            else:
                raise ValueError(f"{where}: {name!r} is neither -x nor --long-name")

    for option_rule in allowed:
        add_option(_option(option_rule))
    for denied_rule in denied:
        add_option(_option(denied_rule))
    for predicate_rule in rule.predicates:
        option = _option(predicate_rule)
        for name in option.names:
            if not FIND_PREDICATE.match(name):
                raise ValueError(f"{where}: predicate {name!r} is not -name style")
            add(predicates, name, option)
    for denied_rule in rule.deny_predicates:
        option = _option(denied_rule)
        for name in option.names:
            add(predicates, name, option)

    for key in ("leading_text_unless", "only_with", "last_kind_unless"):
        for name in getattr(rule.operands, key):
            if name not in long and not (len(name) == 2 and name[1] in short):
                raise ValueError(f"{where}.operands.{key}: {name} is not an option of this command")

    subcommands = {
        sub_name: _compile_command(policy, f"{where}.subcommands.{sub_name}", sub_rule)
        for sub_name, sub_rule in (rule.subcommands or {}).items()
    }
    return Command(
        name=where.rsplit(".", 1)[-1],
        syntax=rule.syntax,
        abbreviations=rule.abbreviations,
        permute=rule.permute,
        numeric_option=rule.numeric_option,
        short_values=rule.short_values,
        access=rule.access,
        long=long,
        short=short,
        predicates=predicates,
        operands=rule.operands,
        leading_text_unless=frozenset(rule.operands.leading_text_unless),
        deny_words=tuple((re.compile(word.pattern), word.why) for word in rule.deny_words),
        subcommands=subcommands,
        subcommand_optional=rule.subcommand_optional,
        denied_subcommands={name: denied.why for denied in rule.deny_subcommands for name in denied.names},
        scanned=tuple((tuple(word.names), word.why) for word in scanned),
        last_kind_unless=frozenset(rule.operands.last_kind_unless),
    )


def _is_module_launch(prefix: tuple[str, ...], name: str) -> bool:
    """``python3 -m NAME``: the one interpreter form a policy may name, always with a fixed module."""
    return len(prefix) == 3 and prefix[0] in MODULE_LAUNCHERS and prefix[1] == "-m" and prefix[2] == name


def compile_policy(policy: "Policy") -> CompiledPolicy:
    programs: dict[str, Command] = {}
    invocations: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    seen: dict[tuple[str, ...], str] = {}
    for name, rule in policy.programs.items():
        programs[name] = _compile_command(policy, f"programs.{name}", rule)
        for prefix in rule.invocations or [[name]]:
            prefix_tuple = tuple(prefix)
            if not prefix_tuple or not all(PLAIN_TOKEN.match(token) for token in prefix_tuple):
                raise ValueError(f"programs.{name}.invocations: {prefix!r} must be plain words")
            if prefix_tuple in seen:
                raise ValueError(f"programs.{name}.invocations: {prefix!r} also selects {seen[prefix_tuple]}")
            if prefix_tuple != (name,) and not _is_module_launch(prefix_tuple, name):
                raise ValueError(
                    f"programs.{name}.invocations: {prefix!r} must be [{name}] or [python3, -m, {name}]"
                )
            seen[prefix_tuple] = name
            invocations.setdefault(prefix_tuple[0], []).append((prefix_tuple, name))
    for entries in invocations.values():
        entries.sort(key=lambda entry: -len(entry[0]))
    approvals = {(rule.program, rule.subcommand): rule.message for rule in policy.require_approval}
    return CompiledPolicy(programs=programs, invocations=invocations, approvals=approvals)


def compiled_for(policy: Policy) -> CompiledPolicy:
    """The policy's lookup tables, compiled on first use and kept on the policy object."""
    cached = policy._compiled
    if not isinstance(cached, CompiledPolicy):
        cached = compile_policy(policy)
        policy._compiled = cached
    return cached
