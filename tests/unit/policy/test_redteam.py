"""Red-team rows: one per attack on the policy engine and the two shipped configs.

Each row is (policy, command line, expected decision, expected reason). ``I`` is the inspect-only
policy (configs/policy.yaml), ``X`` the execution policy (configs/policy.execution.yaml). Rows marked
``# bypass`` were *allowed* before the fix next to them; the others pin down attacks that were already
refused (so a later change cannot quietly reopen them) and ordinary commands that must keep working.
"""

import re

import pytest

from safeagent.policy import decide, parse_policy

I, X = "inspect", "execution"
ALLOW, DENY, APPROVE = "allow", "deny", "require_approval"

ROWS = [
    # --- tail: the obsolete `+N[bcl]f` form follows the file forever (tail -f by another name) ---
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
    (I, "tail -n +5 README.md", ALLOW, "allowed"),
    (I, "tail +5 README.md", ALLOW, "allowed"),
    (I, "tail -20 log.txt", ALLOW, "allowed"),
    # --- pytest (argparse with fromfile_prefix_chars="@"): @FILE splices unchecked arguments in ---
    (X, "pytest @/etc/args", DENY, "argument_denied"),  # bypass: reads a file outside the workspace
    (X, "pytest @args.txt", DENY, "argument_denied"),  # bypass: arguments the policy never saw (-p, -o ...)
    (X, "python3 -m pytest @args", DENY, "argument_denied"),  # bypass
    (X, "pytest -k @x", DENY, "argument_denied"),  # bypass: argparse expands every word, option values too
    (X, "pytest -- @x", DENY, "argument_denied"),  # bypass
    (X, "pytest --deselect @x", DENY, "argument_denied"),  # bypass
    # pytest loads -pNAME plugins by scanning every word, before (and whatever) argparse decides
    (X, "pytest -- -pevilplugin", DENY, "argument_denied"),  # bypass: an operand to the policy, a plugin to pytest
    (X, "pytest -k -pevilplugin", DENY, "argument_denied"),  # bypass (pytest 7 preparses before argparse)
    (X, "pytest --deselect -pantigravity", DENY, "path_option_like"),  # bypass (now refused earlier: a node id starting with '-')
    (X, "python3 -m pytest -- -p x", DENY, "argument_denied"),  # bypass
    (X, "pytest -k pyfoo --pdb", DENY, "option_denied"),
    (X, "pytest tests/-pfoo.py", ALLOW, "allowed"),
    # pytest itself does not abbreviate; the policy reads abbreviations anyway (never towards fewer checks)
    (X, "pytest --collect", ALLOW, "allowed"),
    (X, "pytest --root=/", DENY, "path_outside_workspace"),
    (X, "pytest --base=.", DENY, "option_denied"),
    (X, "pytest --co -q", ALLOW, "allowed"),
    (X, "pytest --rootdir=/", DENY, "path_outside_workspace"),
    (X, "pytest --rootdir /", DENY, "path_outside_workspace"),
    (X, "pytest --confcutdir=/etc", DENY, "path_outside_workspace"),
    (X, "pytest --basetemp=/tmp/x", DENY, "option_denied"),
    (X, "pytest --override-ini=addopts=-pfoo", DENY, "option_denied"),
    (X, "pytest -o addopts=x", DENY, "option_denied"),
    (X, "pytest -ohi=1", DENY, "option_denied"),
    (X, "pytest -pno:cacheprovider", DENY, "option_denied"),
    (X, "pytest -p plugin", DENY, "option_denied"),
    (X, "pytest -xp plugin", DENY, "option_denied"),
    (X, "pytest -c/etc/x", DENY, "option_denied"),
    (X, "pytest --config-file=x", DENY, "option_denied"),
    (X, "pytest --pyargs os", DENY, "option_denied"),
    (X, "pytest --pya os", DENY, "option_denied"),
    (X, "pytest --import-mode=importlib", ALLOW, "allowed"),
    (X, "pytest --junitxml=/tmp/x", DENY, "option_denied"),
    (X, "pytest --log-file=/tmp/x", DENY, "option_denied"),
    (X, "pytest --debug", DENY, "option_denied"),
    (X, "pytest --pdb", DENY, "option_denied"),
    (X, "pytest -W error::x.Y", DENY, "option_denied"),
    (X, "pytest /etc/passwd::x", DENY, "path_outside_workspace"),
    (X, "pytest x.py::../../../etc", DENY, "path_outside_workspace"),
    (X, "pytest --deselect=/etc::x", DENY, "path_outside_workspace"),
    (X, "pytest --ignore=/etc", DENY, "path_outside_workspace"),
    (X, "pytest '--rootdir /'", DENY, "option_unknown"),
    (X, "pytest -q tests/test_x.py::test_y -k 'a and not b'", ALLOW, "allowed"),
    (X, "python3 -m pytest -x -q", ALLOW, "allowed"),
    (X, "python3 -I -m pytest", DENY, "interpreter_denied"),
    (X, "python3 -mpytest", DENY, "interpreter_denied"),
    (X, "python3 -m pytest.__main__", DENY, "interpreter_denied"),
    (I, "pytest", DENY, "program_not_allowed"),
    (I, "python3 -m pytest", DENY, "interpreter_denied"),
    # --- make (execution only): only `make test` ---
    (X, "make test", ALLOW, "allowed"),
    (X, "make -sk test", ALLOW, "allowed"),
    (X, "make -- test", ALLOW, "allowed"),
    (X, "make -f /etc/x test", DENY, "option_denied"),
    (X, "make -C / test", DENY, "option_denied"),
    (X, "make --eval=x test", DENY, "option_denied"),
    (X, "make --ev=x test", DENY, "option_denied"),
    (X, "make SHELL=/bin/sh test", DENY, "operand_count"),
    (X, "make test SHELL=/bin/sh", DENY, "operand_count"),
    (X, "make MAKEFLAGS=x", DENY, "operand_not_allowed"),
    (X, "make -ktest", DENY, "option_denied"),
    (X, "make -j test", DENY, "option_denied"),
    (X, "make -I /etc test", DENY, "option_denied"),
    (X, "make -e test", DENY, "option_denied"),
    (X, "make -n test", DENY, "option_denied"),
    (X, "make -p test", DENY, "option_unknown"),
    (X, "make --debug test", DENY, "option_unknown"),
    (X, "make all", DENY, "operand_not_allowed"),
    (X, "make", DENY, "operand_count"),
    (I, "make test", DENY, "program_not_allowed"),
    # --- git log/show: a %G format asks git to verify a signature, which runs gpg ---
    (I, "git log '--format=%G?'", DENY, "argument_denied"),  # bypass
    (I, "git log --format=%G?", DENY, "shell_metacharacter"),  # ? unquoted: a shell glob
    (I, "git log --pretty=format:%GS", DENY, "argument_denied"),  # bypass
    (I, "git log --pretty=tformat:%GK", DENY, "argument_denied"),  # bypass
    (I, "git show --format=%GG HEAD", DENY, "argument_denied"),  # bypass
    (I, "git log --show-signature", DENY, "option_denied"),
    (I, "git log --show-sig", DENY, "option_denied"),
    (I, "git log --format='%H %an %s'", ALLOW, "allowed"),
    (I, "git log --pretty=oneline", ALLOW, "allowed"),
    # --- git ls-files --exclude-per-directory names a file read in every directory ---
    (I, "git ls-files -o --exclude-per-directory=../../etc/passwd", DENY, "path_outside_workspace"),  # bypass
    (I, "git ls-files -o --exclude-per-directory=/etc/passwd", DENY, "path_outside_workspace"),  # bypass
    (I, "git ls-files -o --exclude-per-directory=.gitignore", ALLOW, "allowed"),
    (I, "git ls-files -X /etc/passwd", DENY, "path_outside_workspace"),
    (I, "git ls-files --exclude-from=/etc/passwd", DENY, "path_outside_workspace"),
    (I, "git ls-files --exclude-from /etc/passwd", DENY, "path_outside_workspace"),
    (I, "git ls-files --recurse-submodules", DENY, "option_denied"),
    # --- git: global options, output files, external programs, files read by options ---
    (I, "git -C / log", DENY, "option_denied"),
    (I, "git -C/ log", DENY, "option_denied"),
    (I, "git --git-dir=/ log", DENY, "option_denied"),
    (I, "git --git-dir / log", DENY, "option_denied"),
    (I, "git --work-tree=/ status", DENY, "option_denied"),
    (I, "git -c core.pager=id log", DENY, "option_denied"),
    (I, "git -ccore.pager=id log", DENY, "option_denied"),
    (I, "git --config-env=core.pager=X log", DENY, "option_denied"),
    (I, "git --exec-path=/tmp log", DENY, "option_denied"),
    (I, "git --exec-pa log", DENY, "option_unknown"),
    (I, "git -p log", DENY, "option_denied"),
    (I, "git --paginate log", DENY, "option_denied"),
    (I, "git -Pp log", DENY, "option_denied"),
    (I, "git --namespace=x log", DENY, "option_denied"),
    (I, "git --bare log", DENY, "option_denied"),
    (I, "git --help log", DENY, "option_denied"),
    (I, "git --attr-source=HEAD diff", DENY, "option_unknown"),
    (I, "git --glob-pathspecs log", DENY, "option_unknown"),
    (I, "git log --help", DENY, "option_unknown"),
    (I, "git status --help", DENY, "option_unknown"),
    (I, "git log --output=/tmp/x", DENY, "option_denied"),
    (I, "git log --out=/tmp/x", DENY, "option_ambiguous"),
    (I, "git diff --outp /tmp/x", DENY, "option_ambiguous"),
    (I, "git diff --ext-diff", DENY, "option_denied"),
    (I, "git diff --ext", DENY, "option_denied"),
    (I, "git diff --textconv", DENY, "option_denied"),
    (I, "git diff --textc", DENY, "option_denied"),
    (I, "git show --textconv HEAD:x", DENY, "option_denied"),
    (I, "git diff --no-index a b", DENY, "option_denied"),
    (I, "git diff --no-i a b", DENY, "option_ambiguous"),
    (I, "git diff --submodule=diff", DENY, "option_denied"),
    (I, "git diff -O/etc/passwd", DENY, "path_outside_workspace"),
    (I, "git diff -O /etc/passwd", DENY, "path_outside_workspace"),
    (I, "git diff -pO/etc/passwd", DENY, "path_outside_workspace"),
    (I, "git diff --relative=/etc", DENY, "path_outside_workspace"),
    (I, "git log --stdin", DENY, "option_unknown"),
    (I, "git log --pathspec-from-file=/etc/x", DENY, "option_unknown"),
    (I, "git status --pathspec-from-file=x", DENY, "option_unknown"),
    (I, "git log --end-of-options HEAD", DENY, "option_unknown"),
    (I, "git log -- /etc/passwd", DENY, "path_outside_workspace"),
    (I, "git log -- ../x", DENY, "path_outside_workspace"),
    # quoted, ( and ! are literal: git's pathspec magic, which never leaves the repository
    (I, "git log ':(top)'", ALLOW, "allowed"),
    (I, "git log ':!x'", ALLOW, "allowed"),
    (I, "git log :!x", DENY, "shell_metacharacter"),
    (I, "git log @{u}", DENY, "shell_metacharacter"),
    (I, "git commit -m x", DENY, "subcommand_not_allowed"),
    (I, "git config core.pager", DENY, "subcommand_not_allowed"),
    (I, "git grep -O foo", DENY, "option_denied"),  # --open-files-in-pager runs a pager
    (I, "git difftool", DENY, "subcommand_not_allowed"),
    (I, "git archive -o /tmp/x HEAD", DENY, "subcommand_not_allowed"),
    (I, "git", DENY, "subcommand_missing"),
    (I, "git -P", DENY, "subcommand_missing"),
    (I, "git log --oneline -5", ALLOW, "allowed"),
    (I, "git log -n 3", ALLOW, "allowed"),
    (I, "git log -n3 --stat", ALLOW, "allowed"),
    (I, "git diff HEAD~1", ALLOW, "allowed"),
    (I, "git diff HEAD~1 -- src", ALLOW, "allowed"),
    (I, "git show HEAD:README.md", ALLOW, "allowed"),
    (I, "git show HEAD~2:src/main.py", ALLOW, "allowed"),
    (I, "git status --short --branch", ALLOW, "allowed"),
    (I, "git ls-files -z", ALLOW, "allowed"),
    (I, "git log -L1,5:README.md", ALLOW, "allowed"),
    (I, "git --no-pager log -p -1", ALLOW, "allowed"),
    # --- find ---
    (I, "find . -newer /etc/passwd", DENY, "path_outside_workspace"),
    (I, "find . -anewer /etc/passwd", DENY, "path_outside_workspace"),
    (I, "find . -newermB /etc/passwd", DENY, "option_unknown"),  # birth-time forms: findutils refuses them here
    (I, "find . -samefile /etc/passwd", DENY, "path_outside_workspace"),
    (I, "find . -fls x", DENY, "option_denied"),
    (I, "find . -fprint x", DENY, "option_denied"),
    (I, "find . -fprint0 x", DENY, "option_denied"),
    (I, "find . -fprintf x %p", DENY, "option_denied"),
    (I, "find . -exec cat", DENY, "option_denied"),
    (I, "find . -execdir id", DENY, "option_denied"),
    (I, "find . -ok id", DENY, "option_denied"),
    (I, "find . -okdir id", DENY, "option_denied"),
    (I, "find . -delete", DENY, "option_denied"),
    (I, "find . -name x -o -delete", DENY, "option_denied"),
    (I, "find . -files0-from x", DENY, "option_denied"),
    (I, "find -files0-from x", DENY, "option_denied"),
    (I, "find . -follow", DENY, "option_denied"),
    (I, "find -L .", DENY, "option_denied"),
    (I, "find -H .", DENY, "option_denied"),
    (I, "find -PL .", DENY, "option_denied"),
    (I, "find -D tree .", DENY, "option_denied"),
    (I, "find -Dexec .", DENY, "option_denied"),
    (I, "find -O3 .", DENY, "option_denied"),
    (I, "find -- /etc", DENY, "option_unknown"),
    (I, "find - -name x", ALLOW, "allowed"),  # findutils reads a lone - as a file name (a starting point)
    (I, "find . -name x /etc", DENY, "option_unknown"),
    (I, "find /", DENY, "path_outside_workspace"),
    (I, "find /workspace/..", DENY, "path_outside_workspace"),
    (I, "find . -maxdepth x", DENY, "option_bad_value"),
    (I, "find . -name", DENY, "option_missing_argument"),
    (I, "find . -nam x", DENY, "option_unknown"),
    (I, "find . -name '*.py' -type f", ALLOW, "allowed"),
    (I, "find . -newerat /etc/passwd", ALLOW, "allowed"),  # t: the argument is a date, never a file
    (I, "find . -name -exec", ALLOW, "allowed"),  # -exec is -name's pattern here, as for find
    (I, "find", ALLOW, "allowed"),
    (I, "find . -type f -size +1M -printf '%s %p\\n'", ALLOW, "allowed"),
    # --- grep ---
    (I, "grep -rnf/etc/passwd .", DENY, "path_outside_workspace"),
    (I, "grep -f /etc/passwd x", DENY, "path_outside_workspace"),
    (I, "grep --file=/etc/passwd -r .", DENY, "path_outside_workspace"),
    (I, "grep --fi=/etc/passwd .", DENY, "option_ambiguous"),
    (I, "grep --exclude-from=/etc/x -r foo .", DENY, "path_outside_workspace"),
    (I, "grep --exclude-f /etc/x -r foo .", DENY, "path_outside_workspace"),
    (I, "grep -e foo /etc/passwd", DENY, "path_outside_workspace"),
    (I, "grep /etc/passwd -e foo", DENY, "path_outside_workspace"),  # -e later: every operand is a file
    (I, "grep --reg=foo /etc/passwd", DENY, "path_outside_workspace"),
    (I, "grep foo -- /etc/passwd", DENY, "path_outside_workspace"),
    (I, "grep -rn foo /", DENY, "path_outside_workspace"),
    (I, "grep -D read foo /dev/zero", DENY, "path_outside_workspace"),
    (I, "grep -R foo .", DENY, "option_denied"),
    (I, "grep --dereference-r foo .", DENY, "option_denied"),
    (I, "grep -X grep foo x", DENY, "option_unknown"),
    (I, "grep -d recurse foo", ALLOW, "allowed"),
    (I, "grep -rn 'foo' src", ALLOW, "allowed"),
    (I, "grep -e /etc/passwd", ALLOW, "allowed"),  # a pattern, not a file
    (I, "grep -rn --include='*.py' -e TODO -e FIXME .", ALLOW, "allowed"),
    # --- ls, cat, head, wc, stat ---
    (I, "ls -Falways", DENY, "option_bad_value"),  # -F takes no argument (only --classify does)
    (I, "ls -F", ALLOW, "allowed"),
    (I, "ls --classify=auto", ALLOW, "allowed"),
    (I, "ls -L /", DENY, "option_denied"),
    (I, "ls --hyp", DENY, "option_denied"),
    (I, "ls --dired", DENY, "option_denied"),
    (I, "ls ~root", DENY, "shell_metacharacter"),
    (I, "ls '~root'", DENY, "path_tilde"),
    (I, "ls /workspace/../etc", DENY, "path_outside_workspace"),
    (I, "ls -la", ALLOW, "allowed"),
    (I, "cat //etc/passwd", DENY, "path_outside_workspace"),
    (I, "cat ///etc/passwd", DENY, "path_outside_workspace"),
    (I, "cat //workspace/../etc/passwd", DENY, "path_outside_workspace"),
    (I, "cat //workspace/README.md", DENY, "path_outside_workspace"),  # a leading // is left alone: fail closed
    (I, "cat /workspacex/y", DENY, "path_outside_workspace"),
    (I, "cat /proc/self/environ", DENY, "path_outside_workspace"),
    (I, "cat /dev/stdin", DENY, "path_outside_workspace"),
    (I, "cat README.md", ALLOW, "allowed"),
    (I, "head -c 100 /etc/passwd", DENY, "path_outside_workspace"),
    (I, "head -c /etc/passwd", DENY, "option_bad_value"),
    (I, "head ---presume-input-pipe x", DENY, "option_unknown"),
    (I, "head -n 20 README.md", ALLOW, "allowed"),
    (I, "wc --files0-from=x", DENY, "option_denied"),
    (I, "wc --files0 x", DENY, "option_denied"),
    (I, "wc -l README.md", ALLOW, "allowed"),
    (I, "stat -L x", DENY, "option_denied"),
    (I, "stat -c %n /etc/passwd", DENY, "path_outside_workspace"),
    (I, "stat --printf='%n %s\\n' README.md", ALLOW, "allowed"),
    # --- du, sort, uniq, diff: ordinary inspection, minus their writing and program-running options ---
    (I, "du -sh .", ALLOW, "allowed"),
    (I, "du -d 1 -h src", ALLOW, "allowed"),
    (I, "du -sh /", DENY, "path_outside_workspace"),
    (I, "du -L .", DENY, "option_denied"),
    (I, "du -D .", DENY, "option_denied"),
    (I, "du --files0-from=x", DENY, "option_denied"),
    (I, "du --files0=x", DENY, "option_denied"),
    (I, "du -X /etc/x .", DENY, "path_outside_workspace"),
    (I, "sort README.md", ALLOW, "allowed"),
    (I, "sort -k2,2n -t: -u data.txt", ALLOW, "allowed"),
    (I, "sort -o out.txt README.md", DENY, "option_denied"),
    (I, "sort README.md -o out.txt", DENY, "option_denied"),
    (I, "sort -uo out.txt x", DENY, "option_denied"),
    (I, "sort --output=out x", DENY, "option_denied"),
    (I, "sort --outp=out x", DENY, "option_denied"),
    (I, "sort -T /tmp x", DENY, "option_denied"),
    (I, "sort --temporary-directory=. x", DENY, "option_denied"),
    (I, "sort --compress-program=sh x", DENY, "option_denied"),
    (I, "sort --comp=sh x", DENY, "option_denied"),
    (I, "sort --files0-from=x", DENY, "option_denied"),
    (I, "sort -S 100% x", DENY, "option_denied"),
    (I, "sort --random-source=/dev/urandom x", DENY, "path_outside_workspace"),
    (I, "sort /etc/passwd", DENY, "path_outside_workspace"),
    (I, "sort +1 -2 x", DENY, "option_unknown"),
    (I, "uniq data.txt", ALLOW, "allowed"),
    (I, "uniq -c data.txt", ALLOW, "allowed"),
    (I, "uniq in.txt out.txt", DENY, "operand_count"),  # uniq writes its second operand
    (I, "uniq -- in.txt out.txt", DENY, "operand_count"),
    (I, "uniq in.txt -c out.txt", DENY, "operand_count"),
    (I, "uniq +5 in.txt", DENY, "operand_count"),
    (I, "uniq /etc/passwd", DENY, "path_outside_workspace"),
    (I, "diff a b", ALLOW, "allowed"),
    (I, "diff -u a b", ALLOW, "allowed"),
    (I, "diff -ru src other", ALLOW, "allowed"),
    (I, "diff a /etc/passwd", DENY, "path_outside_workspace"),
    (I, "diff --to-file=/etc/passwd a", DENY, "path_outside_workspace"),
    (I, "diff --from-file /etc/shadow a", DENY, "path_outside_workspace"),
    (I, "diff -X /etc/x a b", DENY, "path_outside_workspace"),
    (I, "diff -l a b", DENY, "option_denied"),
    (I, "diff --pag a b", DENY, "option_denied"),
    (I, "diff -ul a b", DENY, "option_denied"),
    (I, "diff -r / .", DENY, "path_outside_workspace"),
    # --- rm / mv: approval, never outside, never the root, never .git ---
    (I, "rm delete-me.txt", APPROVE, "approval_required"),
    (I, "rm -rf ./", DENY, "path_workspace_root"),
    (I, "rm -rf src/..", DENY, "path_workspace_root"),
    (I, "rm -rf //workspace", DENY, "path_outside_workspace"),
    (I, "rm -rf .git/", DENY, "path_protected"),
    (I, "rm -rf x/../.git/hooks", DENY, "path_protected"),
    (I, "rm --no-pres -rf x", DENY, "option_denied"),
    (I, "rm --interactive=never x", DENY, "option_denied"),
    (I, "mv -t/tmp a", DENY, "path_outside_workspace"),
    (I, "mv -ft.. a", DENY, "path_outside_workspace"),
    (I, "mv --target=/tmp a", DENY, "path_outside_workspace"),
    (I, "mv a .git/", DENY, "path_protected"),
    (I, "mv --backup=t a b", DENY, "option_denied"),
    (I, "mv --update=all a b", DENY, "option_unexpected_argument"),
    (I, "mv --exchange a b", DENY, "option_unknown"),
    (I, "mv a b", APPROVE, "approval_required"),
    # --- programs that write, run code or wrap: never on the list ---
    (I, "tee out.txt", DENY, "interpreter_denied"),
    (I, "dd if=/etc/passwd of=x", DENY, "interpreter_denied"),
    (I, "split -b 1 x", DENY, "program_not_allowed"),
    (I, "cp /etc/passwd x", DENY, "interpreter_denied"),
    (I, "xargs cat", DENY, "wrapper_denied"),
    (I, "env ls", DENY, "wrapper_denied"),
    (I, "timeout 1 ls", DENY, "wrapper_denied"),
    (I, "/usr/bin/ls", DENY, "program_path"),
    (I, "LS_COLORS=x ls", DENY, "environment_assignment"),
    (I, "LS", DENY, "program_not_allowed"),
    (I, "touch x", DENY, "program_not_allowed"),
    (I, "mkdir x", DENY, "program_not_allowed"),
    (I, "sed -n p x", ALLOW, "allowed"),  # print-only script (policy/scripts.py)
    (I, "sed -n 'w /tmp/x' x", DENY, "argument_denied"),
    (I, "awk 1 x", DENY, "interpreter_denied"),
    # --- raw text ---
    (I, "ls \x00", DENY, "control_character"),
    (I, "ls \ud800", DENY, "invalid_encoding"),
    (I, "ls \u202e", DENY, "bidi_control"),
    (I, "ls\u00a0-la", DENY, "invisible_character"),
    (I, "\ufeffls", DENY, "invisible_character"),
    (I, "\uff4c\uff53", DENY, "non_ascii_character"),
    (I, "l\u0455", DENY, "non_ascii_character"),
    (I, "ls\x0b/etc", DENY, "control_character"),
    (I, "ls\r", DENY, "control_character"),
    (I, "ls\\", DENY, "tokenise_error"),
    (I, "ls 'a", DENY, "tokenise_error"),
    (I, "ls " + "a" * 5000, DENY, "command_too_long"),
    (I, "ls " + "a " * 200, DENY, "too_many_arguments"),
    (I, "", DENY, "empty_command"),
    (I, "''", DENY, "empty_command"),
    (I, "cat ''", DENY, "path_empty"),
    (I, "l's'", ALLOW, "allowed"),
    (I, "ls\t-la", ALLOW, "allowed"),
]


@pytest.mark.parametrize(
    "which, command, decision, reason", ROWS, ids=[f"{row[0][0]}:{row[1][:60]!r}" for row in ROWS]
)
def test_redteam_row(inspect_policy, execution_policy, which, command, decision, reason):
    policy = inspect_policy if which == I else execution_policy
    result = decide(policy, command)
    assert (result.decision, result.reason) == (decision, reason), result.message


EXECUTION_ONLY = ("pytest", "python3", "make")


@pytest.mark.parametrize(
    "which, command, decision, reason", [row for row in ROWS if row[0] == I and not row[1].startswith(EXECUTION_ONLY)]
)
def test_execution_policy_is_never_looser_on_inspect_rows(execution_policy, which, command, decision, reason):
    """The execution policy shares every inspect-only program, so it decides those rows the same way."""
    result = decide(execution_policy, command)
    assert (result.decision, result.reason) == (decision, reason), result.message


def test_deny_words_pattern_must_compile():
    from safeagent.policy import PolicyError

    with pytest.raises(PolicyError, match=r"programs\.ls\.deny_words\[0\]\.pattern"):
        parse_policy(
            {
                "version": 1,
                "name": "t",
                "max_output_kb": 1,
                "max_file_writes": 0,
                "programs": {"ls": {"deny_words": [{"pattern": "(", "why": "bad"}]}},
            }
        )


def test_deny_words_applies_to_every_word_of_a_subcommand():
    policy = parse_policy(
        {
            "version": 1,
            "name": "t",
            "max_output_kb": 1,
            "max_file_writes": 0,
            "programs": {
                "git": {
                    "permute": False,
                    "subcommands": {"log": {"deny_words": [{"pattern": "^x", "why": "no x"}]}},
                }
            },
        }
    )
    assert decide(policy, "git log a b").decision == ALLOW
    result = decide(policy, "git log a -- xy")
    assert (result.decision, result.reason) == (DENY, "argument_denied")
    assert "no x" in result.message


def test_new_keys_and_reason_are_documented():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "configs" / "README.md").read_text()
    for word in ("`deny_words`", "`pattern`", "`argument_denied`"):
        assert word in readme, word


@pytest.mark.parametrize("program", ["du", "sort", "uniq", "diff"])
def test_added_programs_match_the_real_options(inspect_policy, program):
    """Every option we list exists, and no real option is a prefix we would misread as an abbreviation."""
    from tests.unit.policy.test_config import assert_prefixes_known, real_long_options

    command = inspect_policy._compiled.programs[program]
    real = real_long_options([program, "--help"])
    assert_prefixes_known(command, real)
    # diff's --help names --GTYPE-group-format and --LTYPE-line-format only as templates
    templated = re.compile(r"^--(old|new|unchanged|changed)-(line|group)-format$")
    unknown = sorted(name for name in command.long if name not in real and not templated.match(name))
    assert not unknown, f"{program}: options not in --help (typos?): {unknown}"
