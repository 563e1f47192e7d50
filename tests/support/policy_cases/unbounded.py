"""Work without end: tail following a file (-f, --retry, --pid and the obsolete +Nf forms),
printf widths and precisions in the hundreds of millions, sort's buffer, make -j, reading standard
input.
"""

from tests.support.policy_cases.codes import ALLOW, APPROVE, DENY, I, X  # noqa: F401

ROWS = [
    # --- tail ---
    (I, "tail -f log", DENY, "option_denied"),
    (I, "tail -F log", DENY, "option_denied"),
    (I, "tail -qf log", DENY, "option_denied"),
    (I, "tail --follow=name log", DENY, "option_denied"),
    (I, "tail --fo log", DENY, "option_denied"),
    (I, "tail --retry log", DENY, "option_denied"),
    (I, "tail --pid=1 log", DENY, "option_denied"),
    # tail: the obsolete `+N[bcl]f` form follows the file forever (tail -f by another name)
    (I, "tail +f README.md", DENY, "argument_denied"),  # bypass
    (I, "tail +5f README.md", DENY, "argument_denied"),  # bypass
    (I, "tail +5cf README.md", DENY, "argument_denied"),  # bypass
    (I, "tail +lf README.md", DENY, "argument_denied"),  # bypass
    (I, "tail +f -- README.md", DENY, "argument_denied"),  # bypass
    (I, "tail -- +f", DENY, "argument_denied"),  # bypass
    (I, "tail +f", DENY, "argument_denied"),  # bypass
    (I, "tail -5f README.md", DENY, "option_unknown"),
    (I, "tail -f README.md", DENY, "option_denied"),
    (I, "tail --fol=name README.md", DENY, "option_denied"),
    (I, "tail -F x", DENY, "option_denied"),
    (I, "tail --pid=1 x", DENY, "option_denied"),
    (I, "tail --retry x", DENY, "option_denied"),
    (I, "tail -s 1 x", DENY, "option_denied"),
    (I, "tail ---disable-inotify x", DENY, "option_unknown"),
    (I, "tail -n 5 README.md", ALLOW, "allowed"),
    (I, "tail +5 README.md", ALLOW, "allowed"),
    # tail: obsolete `-[NUM][bcl]f` forms follow forever; `-cf` is one of them
    (I, "tail -cf README.md", DENY, "option_bad_value"),
    (I, "tail -bf README.md", DENY, "option_unknown"),
    (I, "tail -5lf README.md", DENY, "option_unknown"),
    (I, "tail -n +5f README.md", DENY, "argument_denied"),
    (I, "tail -n +1 README.md", ALLOW, "allowed"),
    (I, "tail --lines=+5 README.md", ALLOW, "allowed"),
    # --- make ---
    (X, "make -j test", DENY, "option_denied"),
    (X, "make -j4 test", DENY, "option_denied"),
    # --- sort ---
    # du, sort, uniq, diff: ordinary inspection, minus their writing and program-running options
    (I, "sort -S 100% x", DENY, "option_denied"),
    # --- head ---
    (I, "head -n-5 README.md", ALLOW, "allowed"),
    (I, "head --lines=-5 README.md", ALLOW, "allowed"),
    # --- printf ---
    (I, "printf '%999999999d' 1", DENY, "argument_denied"),
    (I, "printf '%*d' 999999999 1", DENY, "argument_denied"),
    (I, "printf '%.*f' 99999 1", DENY, "argument_denied"),
    (I, "printf '%n' x", DENY, "argument_denied"),
    # --- git ---
    # git: the listing and query subcommands stay read-only
    (I, "git cat-file --batch", DENY, "option_denied"),
]
