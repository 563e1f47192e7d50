"""The checkers of the languages inside values (safeagent/policy/values.py), one table row per spelling,
and the program tables that give each value its kind (a format is a format wherever it is taken)."""

import pytest

from safeagent.policy import PolicyError
from safeagent.policy.values import (
    CHECKERS,
    check_atom_format,
    check_date,
    check_directive_format,
    check_pretty_format,
    check_revision,
)

REFUSED, PASSES = "refused", "passes"

PRETTY = [
    ("%G?", REFUSED), ("%GG", REFUSED), ("%GS", REFUSED), ("%GK", REFUSED), ("%GF", REFUSED), ("%GP", REFUSED),
    ("%GT", REFUSED), ("%Gz", REFUSED), ("%+G?", REFUSED), ("%-GS", REFUSED), ("% GK", REFUSED),
    ("format:%h %G?", REFUSED), ("tformat:%+GS", REFUSED), ("%%%G?", REFUSED), ("%n%G?", REFUSED),
    ("% %G?", REFUSED), ("%+%G?", REFUSED), ("%C(%GS)", REFUSED),
    ("%(describe)", REFUSED), ("%+(describe:tags)", REFUSED), ("%(decorate)", REFUSED), ("%(", REFUSED),
    ("%<(1000)%s", REFUSED), ("%<|(99999)", REFUSED), ("%>>(1234)", REFUSED), ("%w(0,0,10000)", REFUSED),
    ("%H %an %s", PASSES), ("%%G?", PASSES), ("%x25G?", PASSES), ("%g? %gs %gd", PASSES),
    ("%(trailers:key=Signed-off-by,valueonly)", PASSES), ("%<(40,trunc)%s", PASSES), ("%w(72,4,8)%B", PASSES),
    ("%C(auto)%d%Creset", PASSES), ("oneline", PASSES), ("fuller", PASSES), ("author", PASSES),
    ("trailer:co-authored-by", PASSES), ("%", PASSES), ("100%", PASSES), ("%+", PASSES), ("%+%%G?", PASSES),
]
ATOMS = [
    ("%(describe)", REFUSED), ("%(signature)", REFUSED), ("%(signature:grade)", REFUSED), ("%(*describe)", REFUSED),
    ("%(refname", REFUSED), ("%(align:10000)%(refname)%(end)", REFUSED), ("x %(refname) %(describe:tags)", REFUSED),
    ("%(refname:short)", PASSES), ("%(*objectname)", PASSES), ("%%(describe)", PASSES), ("%(align:40)%(end)", PASSES),
    ("%(if)%(upstream)%(then)%(upstream:short)%(end)", PASSES), ("%(objectmode) %(path)", PASSES),
    ("%(objectsize:padded)", PASSES), ("%(eolinfo:index)", PASSES), ("%00 %x41", PASSES), ("plain", PASSES),
]
DATES = [
    ('TZ="/etc/shadow" 2024-01-01', REFUSED), ('  TZ="x" now', REFUSED), ("tz=UTC0", REFUSED),
    ('2024-01-01 TZ="x"', REFUSED), ("2024-01-01 12:00 +0200", PASSES), ("yesterday", PASSES),
    ("2 weeks ago", PASSES), ("@1700000000", PASSES),
]
DIRECTIVES = [
    ("%99999999p", REFUSED), ("%-1000s", REFUSED), ("%.99999f", REFUSED), ("%_9999Y", REFUSED), ("x %0001234d", REFUSED),
    ("%p %s\\n", PASSES), ("%-40p", PASSES), ("%10.3f", PASSES), ("%%9999", PASSES), ("%Y-%m-%d %H:%M", PASSES),
    ("+%Y", PASSES), ("iso", PASSES), ("format:%Y", PASSES), ("%TY-%Tm", PASSES),
]
REVISIONS = [
    ("-v", REFUSED), ("--output=x", REFUSED), ("--", REFUSED), ("-", REFUSED),
    ("HEAD", PASSES), ("main..side", PASSES), ("HEAD~2", PASSES), ("v1.0^{commit}", PASSES), (":/fix", PASSES),
]


def _decides(checker, value):
    try:
        checker(value, "where")
    except Exception as error:  # the checkers raise Refusal (an Exception)
        assert getattr(error, "reason", None) == "argument_denied", error
        assert repr(value) in str(error) or value in str(error)
        return REFUSED
    return PASSES


@pytest.mark.parametrize(("checker", "value", "expected"),
                         [(check_pretty_format, value, expected) for value, expected in PRETTY]
                         + [(check_atom_format, value, expected) for value, expected in ATOMS]
                         + [(check_date, value, expected) for value, expected in DATES]
                         + [(check_directive_format, value, expected) for value, expected in DIRECTIVES]
                         + [(check_revision, value, expected) for value, expected in REVISIONS],
                         ids=lambda item: item if isinstance(item, str) else getattr(item, "__name__", None))
def test_each_language_accepts_only_its_harmless_part(checker, value, expected):
    assert _decides(checker, value) == expected


def _options(command):
    yield from ((name, option) for name, option in command.long.items() if not option.denied)
    yield from ((name, option) for name, option in command.predicates.items() if not option.denied)
    for sub in command.subcommands.values():
        yield from _options(sub)


def test_kinds_live_in_the_program_tables(inspect_policy):
    """Every place a pretty or ref format, or a parsed date, is taken has the kind that checks it, and no
    program rule falls back on a word pattern for it."""
    compiled = inspect_policy._compiled
    git = compiled.programs["git"]
    for name, option in _options(git):
        if name in ("--format", "--pretty", "--group"):
            assert option.arg in ("pretty-format", "atom-format"), name
        if name in ("--since", "--after", "--until", "--before"):
            assert option.arg == "date", name
        if name in ("--contains", "--no-contains", "--merged", "--no-merged", "--points-at") and option.arg:
            assert option.arg == "revision", name
    for name, option in _options(compiled.programs["find"]):
        if name.startswith("-newer") and name.endswith("t"):
            assert option.arg == "date", name

    def patterns(command):
        yield from (pattern.pattern for pattern, _ in command.deny_words)
        for sub in command.subcommands.values():
            yield from patterns(sub)

    assert not [pattern for pattern in patterns(git) if "%" in pattern]


def test_every_kind_with_a_language_has_its_checker():
    from typing import get_args

    from safeagent.policy.model import ArgumentKind

    judged_elsewhere = {"text", "regex", "path", "destination", "nodeid", "number", "choice"}
    assert set(get_args(ArgumentKind)) == judged_elsewhere | set(CHECKERS)


def test_a_policy_with_an_unknown_kind_is_refused(tmp_path):
    from safeagent.policy import load_policy

    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nname: p\nmax_output_kb: 8\nmax_file_writes: 1\n"
                    "programs:\n  ls:\n    options:\n      - {names: [--x], arg: shell}\n")
    with pytest.raises(PolicyError):
        load_policy(path)
