"""Properties that must hold for every command line, checked with hypothesis."""

import shlex

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from safeagent.policy import REASONS, decide
from safeagent.policy.text import SHELL_METACHARACTERS
from test_policy_attacks import EXECUTION_ROWS, INSPECT_ROWS

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

ROW_COMMANDS = sorted({row[0] for row in INSPECT_ROWS + EXECUTION_ROWS})
TOKENISABLE = []
for _command in ROW_COMMANDS:
    try:
        if shlex.split(_command) and _command.isascii() and not any(ch in _command for ch in "\n\r\x00"):
            TOKENISABLE.append(_command)
    except ValueError:
        pass

WORDS = ["ls", "cat", "grep", "find", "git", "diff", "status", "-la", "-rn", ".", "src", "x.py", "'*.py'", "-name", "--stat", "rm", "pytest"]
ascii_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


@SETTINGS
@given(
    prefix=st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join),
    meta=st.sampled_from(sorted(SHELL_METACHARACTERS)),
    suffix=ascii_text,
    quote=st.sampled_from(["", "'", '"']),
)
def test_a_shell_metacharacter_is_never_allowed(inspect_policy, execution_policy, prefix, meta, suffix, quote):
    line = f"{prefix} {quote}{meta}{suffix}{quote}"
    for policy in (inspect_policy, execution_policy):
        assert decide(policy, line).decision != "allow"


@SETTINGS
@given(line=st.text(max_size=200))
def test_any_text_gets_a_well_formed_decision(inspect_policy, line):
    result = decide(inspect_policy, line)
    assert result.decision in ("allow", "deny", "require_approval")
    assert result.reason in REASONS and result.reason != "internal_error"
    if any(ch in line for ch in SHELL_METACHARACTERS):
        assert result.decision == "deny"
    if result.decision != "deny":
        assert result.argv == shlex.split(line)


def requote(argv, data):
    """The same words, each quoted in a randomly chosen (correct) way, joined by random white space."""
    parts = []
    for word in argv:
        style = data.draw(st.sampled_from(["bare", "single", "double", "split"]))
        if style == "bare" and word and all(ch not in word for ch in " \t'\"\\"):
            parts.append(word)
        elif style == "double" and all(ch not in word for ch in '"\\'):
            parts.append(f'"{word}"')
        elif style == "split" and len(word) > 1:
            cut = data.draw(st.integers(1, len(word) - 1))
            parts.append(shlex.quote(word[:cut]) + shlex.quote(word[cut:]))
        else:
            parts.append(shlex.quote(word))
    gaps = [data.draw(st.sampled_from([" ", "  ", "\t", " \t "])) for _ in parts]
    lead = data.draw(st.sampled_from(["", " ", "\t"]))
    return lead + "".join(part + gap for part, gap in zip(parts, gaps))


@SETTINGS
@given(command=st.sampled_from(TOKENISABLE), data=st.data())
def test_quotes_and_white_space_never_change_the_decision(inspect_policy, execution_policy, command, data):
    """Re-quoting the words or changing white space can never turn deny/require_approval into allow."""
    argv = shlex.split(command)
    variant = requote(argv, data)
    assume(len(variant.encode()) <= 4096)
    for policy in (inspect_policy, execution_policy):
        before, after = decide(policy, command), decide(policy, variant)
        if before.decision != "allow":
            assert after.decision != "allow", (command, variant)
        assert shlex.split(variant) == argv


@SETTINGS
@given(command=st.sampled_from(TOKENISABLE), data=st.data())
def test_requoting_gives_the_same_reason(inspect_policy, command, data):
    """Stronger than the issue asks: the whole decision only depends on the words."""
    variant = requote(shlex.split(command), data)
    assume(len(variant.encode()) <= 4096)
    before, after = decide(inspect_policy, command), decide(inspect_policy, variant)
    assert (before.decision, before.reason) == (after.decision, after.reason), (command, variant)


@SETTINGS
@given(
    program=st.sampled_from(["ls", "cat", "head", "tail", "wc", "stat", "grep -e x", "git diff --", "rm", "find"]),
    parts=st.lists(st.sampled_from(["..", ".", "a", "b", "", "workspace"]), min_size=1, max_size=8),
    absolute=st.booleans(),
)
def test_no_allowed_path_leaves_the_workspace(inspect_policy, program, parts, absolute):
    import posixpath

    path = ("/" if absolute else "") + "/".join(parts)
    if not path.strip("/") and absolute:
        path = "/"
    result = decide(inspect_policy, f"{program} {shlex.quote(path)}")
    resolved = posixpath.normpath(posixpath.join("/workspace", path)) if path else ""
    inside = resolved == "/workspace" or resolved.startswith("/workspace/")
    if not inside:
        assert result.decision == "deny", (program, path)
