"""Refusal messages: every refusal names the offending word or option and says what to do instead.

Checked on every row of the attack tables that a policy refuses (tests/support/policy_cases/) and
on every generated line the properties test refuses alike: the message holds the word (or the
option, or the character, or the count) that was refused, and ends with advice, either the one
the check gave or the reason's own (`decision.ADVICE`).
"""

import re

import pytest

from safeagent.policy import decide
from safeagent.policy.decision import ADVICE, REASONS
from tests.support.policy_cases import CASES, INSPECT

#: Reasons about the line as a whole, a count or an empty word: the message names a size, a position or
#: the kind of trouble (there is no word to quote).
WHOLE_LINE = {"empty_command", "command_too_long", "too_many_arguments", "tokenise_error", "invalid_input",
              "operand_count", "path_empty"}
#: Advice is an imperative sentence (the reason's own, or the check's more precise one).
ADVICE_SENTENCE = re.compile(r"(^|\. )(Write|Leave|Name|Put|Attach|Run|Use|Give|Close|Remove|Spell|Change|Quote|Send|"
                             r"Shorten|Split|Report)\b")
#: Reasons about one character: the message names it (U+XXXX NAME, or the character and its position).
CHARACTER = {"bidi_control", "invisible_character", "control_character", "non_ascii_character",
             "unicode_lookalike", "invalid_encoding", "shell_metacharacter"}


def test_every_deny_reason_has_advice():
    assert set(ADVICE) == set(REASONS) - {"allowed", "approval_required"}
    for reason, advice in ADVICE.items():
        assert advice.endswith(".") and advice[0].isupper(), reason


def _path_words(policy, argv):
    """The program and subcommand words of argv (not what a refusal of an option or value should name)."""
    compiled = policy._compiled
    words = {argv[0]}
    for prefix, name in compiled.invocations.get(argv[0], []):
        if tuple(argv[: len(prefix)]) == prefix:
            words.update(prefix)
            command = compiled.programs[name]
            for word in argv[len(prefix):]:
                if word.startswith("-"):
                    continue
                if word in command.subcommands:
                    words.add(word)
                    command = command.subcommands[word]
                else:
                    break
    return words


def _named(reason, message, argv, skip):
    if reason in WHOLE_LINE:
        return any(char.isdigit() for char in message) or any(
            word in message for word in ("quote", "empty", "program name"))
    if reason in CHARACTER:
        return "U+" in message or "character" in message
    candidates = set()
    for word in argv or ():
        if word in skip and reason not in ("subcommand_missing", "subcommand_not_allowed", "program_not_allowed",
                                           "program_path", "wrapper_denied", "interpreter_denied",
                                           "environment_assignment"):
            continue
        candidates.add(word)
        candidates.update(word.split("=", 1))  # an option and its attached value: either is named
        if word.startswith("-") and not word.startswith("--"):
            candidates.update(f"-{letter}" for letter in word[1:])
    return any(candidate and candidate in message for candidate in candidates)


DENIED = [case for case in CASES if case.decision == "deny"]


@pytest.mark.parametrize("case", DENIED, ids=lambda case: f"{case.group}:{case.command[:50]!r}")
def test_every_refusal_names_the_word_and_says_what_to_do(inspect_policy, execution_policy, case):
    policy = inspect_policy if case.policy == INSPECT else execution_policy
    result = decide(policy, case.command)
    assert result.decision == "deny"
    argv = result.argv or []
    assert _named(result.reason, result.message, argv, _path_words(policy, argv) if argv else set()), result.message
    assert result.message.endswith(".") and ADVICE_SENTENCE.search(result.message), result.message
