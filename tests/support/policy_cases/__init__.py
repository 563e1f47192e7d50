"""The command policy's cases, as data: one row per attack, and per ordinary command that must keep working.

A row is (policy, command line, decision, reason code): `I` is configs/policy.yaml (inspect-only), `X`
configs/policy.execution.yaml. The rows are grouped by what an attack uses, one module each:

    ordinary                everyday commands that must keep working
    shell_syntax            operators, substitutions, redirections, globs, ~; quoted, they are literal
    raw_text                control and Unicode characters, invalid encoding, open quotes, size
    program_choice          program paths, wrappers, interpreters, network tools, unlisted programs
    environment_and_config  environment assignments, configuration and plugins loaded, another repository
    path_escapes            .., absolute paths, option values naming files, followed links, name lists
    option_smuggling        abbreviations, values that swallow the next word, '-' paths, @FILE, -p
    runs_programs           exec, pagers, diff drivers, gpg, decompressors, plugins, sed scripts
    scanned_words           words a program scans its whole argv for (git diff's --no-index, git log's
                            first pass, revision.c's --), smuggled in as another option's value
    value_meaning           the languages inside values: signature placeholders in every spelling and
                            slot, program-running %(atoms), huge widths, TZ= dates, revisions like options
    writes                  rm and mv (approval), output options, the workspace root and .git
    unbounded               following a file forever, huge printf widths, sort's buffer, make -j

A row marked `# bypass` was allowed before the fix that came with it (the red-team rounds of the
policy, each checked against the real program: git 2.39, GNU coreutils 9.1, findutils 4.9, grep 3.8);
the others pin down attacks that were already refused, so that a later change cannot quietly reopen
them. An inspect-only row holds for the execution policy as well (it only adds pytest, `python3 -m
pytest` and `make test`), unless an execution row of the same command says otherwise.

Read by tests/unit/policy/test_attacks.py (every row), tests/unit/policy/test_properties.py (the
command lines), the oracle (tests/oracle/lines.py: every line a policy lets through) and the
benchmark (tests/bench/bench_policy.py). `AGENT_COMMANDS` (agent_commands.py) is the ordinary
commands' coverage list.
"""

from __future__ import annotations

from typing import NamedTuple

from tests.support.policy_cases import (
    environment_and_config,
    option_smuggling,
    ordinary,
    path_escapes,
    program_choice,
    raw_text,
    runs_programs,
    scanned_words,
    shell_syntax,
    unbounded,
    value_meaning,
    writes,
)
from tests.support.policy_cases.agent_commands import AGENT_COMMANDS
from tests.support.policy_cases.codes import ALLOW, APPROVE, DENY, EXECUTION, INSPECT

__all__ = ["AGENT_COMMANDS", "ALLOW", "APPROVE", "CASES", "DENY", "EXECUTION", "EXECUTION_COMMANDS", "GROUPS",
           "INSPECT", "Case"]

_MODULES = (ordinary, shell_syntax, raw_text, program_choice, environment_and_config, path_escapes,
            option_smuggling, scanned_words, runs_programs, value_meaning, writes, unbounded)


class Case(NamedTuple):
    group: str  # the module the row is in
    policy: str  # INSPECT or EXECUTION
    command: str
    decision: str
    reason: str


GROUPS: dict[str, list[tuple[str, str, str, str]]] = {
    module.__name__.rsplit(".", 1)[1]: module.ROWS for module in _MODULES
}
CASES: list[Case] = [Case(group, *row) for group, rows in GROUPS.items() for row in rows]
#: Command lines with an execution row of their own: the execution policy may decide them differently.
EXECUTION_COMMANDS = frozenset(case.command for case in CASES if case.policy == EXECUTION)
