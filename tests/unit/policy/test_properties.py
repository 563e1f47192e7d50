"""Properties that must hold for every command line, checked with hypothesis and against real shells.

The central one: for every command line the policy allows, the argv it produces is exactly the argv a
POSIX shell (dash, the Debian `sh`) and bash would pass to the program. The shells run here, in an
empty temporary directory with an empty environment, and print their argv; an allowed line never
holds an unquoted glob, so the equality holds in any directory, not just an empty one.
"""

import os
import posixpath
import shlex
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from safeagent.policy import REASONS, decide
from safeagent.policy.errors import Refusal
from safeagent.policy.words import BRACES, GLOBS, OPERATORS, SUBSTITUTION, split_words
from tests.support.policy_cases import AGENT_COMMANDS, CASES

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

#: Characters a shell acts on outside quotes, wherever they stand in a word.
UNQUOTED_SPECIAL = sorted(OPERATORS | SUBSTITUTION | BRACES | GLOBS | {"!"})
#: Characters a shell (bash) acts on inside double quotes.
DOUBLE_QUOTED_SPECIAL = sorted(SUBSTITUTION | {"!"})


def _splits(command):
    try:
        split_words(command)
    except Refusal:
        return False
    return True


ROW_COMMANDS = sorted({case.command for case in CASES})
TOKENISABLE = [command for command in ROW_COMMANDS if command.isascii() and _splits(command)]

WORDS = ["ls", "cat", "grep", "find", "git", "diff", "status", "-la", "-rn", ".", "src", "x.py", "'*.py'", "-name", "--stat", "rm", "pytest"]
ascii_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


# --- the shell oracle ---

SHELLS = [shell for shell in ("dash", "bash") if shutil.which(shell)]
_PRINT_ARGV = 'p() { for a in "$@"; do printf "%s\\0" "$a"; done; }\np '


@pytest.fixture(scope="module")
def empty_directory(tmp_path_factory):
    return tmp_path_factory.mktemp("empty")


def shell_argv(shell: str, line: str, directory) -> list[str]:
    """The argv `shell` would give the program of ``line`` (run in an empty directory)."""
    argv = [shell, "-c", _PRINT_ARGV + line] if shell == "dash" else [shell, "--norc", "--noprofile", "-c", _PRINT_ARGV + line]
    result = subprocess.run(
        argv, cwd=directory, capture_output=True, timeout=10, env={"PATH": os.defpath, "HOME": "/nonexistent-home"}
    )
    assert result.returncode == 0, (shell, line, result.stderr)
    return result.stdout.decode("utf-8").split("\0")[:-1]


def assert_shells_agree(line: str, argv: list[str], directory) -> None:
    if not SHELLS:
        pytest.skip("neither dash nor bash is installed, so the argv cannot be compared with a shell's")
    for shell in SHELLS:
        assert shell_argv(shell, line, directory) == argv, (shell, line)


def test_every_allowed_table_row_splits_as_a_shell_splits_it(inspect_policy, execution_policy, empty_directory):
    """Every command of the attack tables and of the ordinary list that is allowed (or waits for approval)."""
    checked = 0
    for line in sorted(set(ROW_COMMANDS) | set(AGENT_COMMANDS)):
        for policy in (inspect_policy, execution_policy):
            result = decide(policy, line)
            if result.decision != "deny":
                assert_shells_agree(line, result.argv, empty_directory)
                checked += 1
                break
    assert checked >= 200


# Pieces of a command line: bare runs of any printable character, single- and double-quoted runs,
# backslash escapes and blanks. Most combinations are refused; the allowed ones must split as sh does.
printable = st.characters(min_codepoint=32, max_codepoint=126)
piece = st.one_of(
    st.text(alphabet=printable, min_size=1, max_size=6).filter(lambda text: "'" not in text and '"' not in text),
    st.text(alphabet=printable.filter(lambda char: char != "'"), max_size=8).map(lambda text: f"'{text}'"),
    st.text(alphabet=printable.filter(lambda char: char != '"'), max_size=8).map(lambda text: f'"{text}"'),
    printable.map(lambda char: "\\" + char),
    st.sampled_from([" ", "\t", "  "]),
    st.sampled_from(["a", "-n", "x.py", "=", ":", "~", "#", "\\\\", '\\"', "''", '""']),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=st.sampled_from(["echo", "printf '%s\\n'", "grep -e", "ls --", "git log --grep"]), pieces=st.lists(piece, max_size=8))
def test_allowed_lines_split_exactly_as_a_shell_splits_them(inspect_policy, empty_directory, program, pieces):
    line = program + " " + "".join(pieces)
    result = decide(inspect_policy, line)
    if result.decision == "deny":
        return
    assert_shells_agree(line, result.argv, empty_directory)


# --- character rules ---


@SETTINGS
@given(
    prefix=st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join),
    meta=st.sampled_from(UNQUOTED_SPECIAL),
    before=st.text(alphabet="abc-._/", max_size=5),
    suffix=ascii_text,
)
def test_an_unquoted_shell_character_is_never_allowed(inspect_policy, execution_policy, prefix, meta, before, suffix):
    line = f"{prefix} {before}{meta}{suffix}"
    for policy in (inspect_policy, execution_policy):
        result = decide(policy, line)
        assert result.decision == "deny"


@SETTINGS
@given(
    prefix=st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join),
    meta=st.sampled_from(DOUBLE_QUOTED_SPECIAL),
    inside=st.text(alphabet="abc -._/", max_size=5),
)
def test_substitution_inside_double_quotes_is_never_allowed(inspect_policy, execution_policy, prefix, meta, inside):
    line = f'{prefix} "{inside}{meta}{inside}"'
    for policy in (inspect_policy, execution_policy):
        assert decide(policy, line).reason == "shell_metacharacter"


@SETTINGS
@given(meta=st.sampled_from(UNQUOTED_SPECIAL + ["#", "~"]), inside=st.text(alphabet="abc -._/", max_size=5))
def test_inside_single_quotes_every_character_is_literal(inspect_policy, meta, inside):
    line = f"grep -e '{inside}{meta}{inside}' x.txt"
    result = decide(inspect_policy, line)
    assert result.decision == "allow", result
    assert result.argv == ["grep", "-e", f"{inside}{meta}{inside}", "x.txt"]


@SETTINGS
@given(line=st.text(max_size=200))
def test_any_text_gets_a_well_formed_decision(inspect_policy, line):
    result = decide(inspect_policy, line)
    assert result.decision in ("allow", "deny", "require_approval")
    assert result.reason in REASONS and result.reason != "internal_error"
    if "\n" in line:
        assert result.decision == "deny"


# --- re-quoting ---

_BARE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=:,+@%^-")


def requote(argv, data):
    """The same words, each quoted in a randomly chosen (correct) way, joined by random white space."""
    parts = []
    for word in argv:
        style = data.draw(st.sampled_from(["bare", "single", "double", "split"]))
        if style == "bare" and word and set(word) <= _BARE:
            parts.append(word)
        elif style == "double" and not any(char in word for char in '"\\$`!'):
            parts.append(f'"{word}"')
        elif style == "split" and len(word) > 1:
            cut = data.draw(st.integers(1, len(word) - 1))
            parts.append("'" + word[:cut].replace("'", "'\\''") + "''" + word[cut:].replace("'", "'\\''") + "'")
        else:
            parts.append("'" + word.replace("'", "'\\''") + "'")
    gaps = [data.draw(st.sampled_from([" ", "  ", "\t", " \t "])) for _ in parts]
    lead = data.draw(st.sampled_from(["", " ", "\t"]))
    return lead + "".join(part + gap for part, gap in zip(parts, gaps))


@SETTINGS
@given(command=st.sampled_from(TOKENISABLE), data=st.data())
def test_quotes_and_white_space_never_change_the_decision(inspect_policy, execution_policy, command, data):
    """Re-quoting the words or changing white space can never turn deny/require_approval into allow."""
    argv = split_words(command)
    variant = requote(argv, data)
    assume(len(variant.encode()) <= 4096)
    assert split_words(variant) == argv
    for policy in (inspect_policy, execution_policy):
        before, after = decide(policy, command), decide(policy, variant)
        if before.decision != "allow":
            assert after.decision != "allow", (command, variant)


@SETTINGS
@given(command=st.sampled_from(TOKENISABLE), data=st.data())
def test_requoting_gives_the_same_reason(inspect_policy, command, data):
    """Stronger than the issue asks: the whole decision only depends on the words."""
    variant = requote(split_words(command), data)
    assume(len(variant.encode()) <= 4096)
    before, after = decide(inspect_policy, command), decide(inspect_policy, variant)
    assert (before.decision, before.reason) == (after.decision, after.reason), (command, variant)


@SETTINGS
@given(
    program=st.sampled_from(["ls", "cat", "head", "tail", "wc", "stat", "grep -e x", "git diff --", "rm", "find", "rg -e x", "tree", "nl"]),
    parts=st.lists(st.sampled_from(["..", ".", "a", "b", "", "workspace"]), min_size=1, max_size=8),
    absolute=st.booleans(),
)
def test_no_allowed_path_leaves_the_workspace(inspect_policy, program, parts, absolute):
    path = ("/" if absolute else "") + "/".join(parts)
    if not path.strip("/") and absolute:
        path = "/"
    result = decide(inspect_policy, f"{program} {shlex.quote(path)}")
    resolved = posixpath.normpath(posixpath.join("/workspace", path)) if path else ""
    inside = resolved == "/workspace" or resolved.startswith("/workspace/")
    if not inside:
        assert result.decision == "deny", (program, path)
