"""Settings the policy never sees: environment assignments, git's `-c`, `--config-env`,
`--exec-path` and options that pick another repository or work tree, pytest's configuration files and
ini overrides, make's makefiles, include directories and variables, file's magic files.
"""

from tests.support.policy_cases.codes import ALLOW, APPROVE, DENY, I, X  # noqa: F401

ROWS = [
    # --- ls ---
    (I, "FOO=1 ls", DENY, "environment_assignment"),
    (I, "LD_PRELOAD=x.so ls", DENY, "environment_assignment"),
    (I, "PATH=. ls", DENY, "environment_assignment"),
    (I, "a= ls", DENY, "environment_assignment"),
    (I, "LS_COLORS=x ls", DENY, "environment_assignment"),
    # --- git ---
    (I, "PAGER=sh git log", DENY, "environment_assignment"),
    (I, "GIT_EXTERNAL_DIFF=x git diff", DENY, "environment_assignment"),
    (I, "git -c core.pager=sh log", DENY, "option_denied"),
    (I, "git -ccore.fsmonitor=x status", DENY, "option_denied"),
    (I, "git -Pc x=y status", DENY, "option_denied"),
    (I, "git --config-env=core.pager=X log", DENY, "option_denied"),
    (I, "git -C /etc status", DENY, "option_denied"),
    (I, "git -C .. log", DENY, "option_denied"),
    (I, "git --git-dir=/tmp/x log", DENY, "option_denied"),
    (I, "git --git-dir /tmp/x log", DENY, "option_denied"),
    (I, "git --work-tree=/ status", DENY, "option_denied"),
    (I, "git --exec-path=/tmp log", DENY, "option_denied"),
    (I, "git --exec-path", DENY, "option_denied"),
    (I, "git --bare log", DENY, "option_denied"),
    (I, "git --namespace=x log", DENY, "option_denied"),
    (I, "git --html-path", DENY, "option_denied"),
    (I, "git diff --submodule=log", DENY, "option_denied"),
    # git: global options, output files, external programs, files read by options
    (I, "git -C / log", DENY, "option_denied"),
    (I, "git -C/ log", DENY, "option_denied"),
    (I, "git --git-dir=/ log", DENY, "option_denied"),
    (I, "git --git-dir / log", DENY, "option_denied"),
    (I, "git -c core.pager=id log", DENY, "option_denied"),
    (I, "git -ccore.pager=id log", DENY, "option_denied"),
    (I, "git diff --submodule=diff", DENY, "option_denied"),
    # git -L: the file is a repository path; git itself refuses one outside the repository
    (I, "git -cfoo=bar log", DENY, "option_denied"),
    (I, "git -Pc core.pager=id log", DENY, "option_denied"),
    (I, "GIT_EXTERNAL_DIFF=id git diff", DENY, "environment_assignment"),
    (I, "git diff --submodule", DENY, "option_denied"),
    (I, "git diff --sub=diff", DENY, "option_denied"),
    # --- make ---
    (X, "make test SHELL=/bin/sh", DENY, "operand_count"),
    (X, "make SHELL=/bin/sh", DENY, "operand_not_allowed"),
    (X, "make -f evil.mk test", DENY, "option_denied"),
    (X, "make --file=evil.mk test", DENY, "option_denied"),
    (X, "make -C /tmp test", DENY, "option_denied"),
    (X, "make --eval='x:' test", DENY, "option_denied"),
    (X, "make -I /tmp test", DENY, "option_denied"),
    (X, "make -e test", DENY, "option_denied"),
    # make (execution only): only `make test`
    (X, "make -f /etc/x test", DENY, "option_denied"),
    (X, "make -C / test", DENY, "option_denied"),
    (X, "make --eval=x test", DENY, "option_denied"),
    (X, "make --ev=x test", DENY, "option_denied"),
    (X, "make SHELL=/bin/sh test", DENY, "operand_count"),
    (X, "make MAKEFLAGS=x", DENY, "operand_not_allowed"),
    (X, "make -I /etc test", DENY, "option_denied"),
    (X, "make .SHELLFLAGS=-c test", DENY, "operand_count"),
    (X, "make MAKEFLAGS=-j test", DENY, "operand_count"),
    # --- pytest ---
    (X, "pytest -c /etc/x.ini", DENY, "option_denied"),
    (X, "pytest --config-file=x", DENY, "option_denied"),
    (X, "pytest -o addopts=-pevil", DENY, "option_denied"),
    (X, "pytest --override-ini=x", DENY, "option_denied"),
    # pytest (argparse with fromfile_prefix_chars="@"): @FILE splices unchecked arguments in
    # pytest itself does not abbreviate; the policy reads abbreviations anyway (never towards fewer checks)
    (X, "pytest --override-ini=addopts=-pfoo", DENY, "option_denied"),
    (X, "pytest -o addopts=x", DENY, "option_denied"),
    (X, "pytest -ohi=1", DENY, "option_denied"),
    (X, "pytest -c/etc/x", DENY, "option_denied"),
    (X, "pytest --inifile x", DENY, "option_unknown"),
    (X, "pytest --plugins x", DENY, "option_unknown"),
    (X, "pytest --resultlog=x", DENY, "option_unknown"),
    (X, "pytest --over=addopts=-pfoo", DENY, "option_denied"),
    # --- file ---
    (I, "file -C -m x", DENY, "option_denied"),
    (I, "file -m /etc/magic x", DENY, "option_denied"),
]
