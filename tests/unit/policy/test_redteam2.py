"""Second red team: rows for attacks the first red team (test_policy_redteam.py) did not cover.

Each row is (policy, command line, expected decision, expected reason); ``I`` is configs/policy.yaml
(inspect-only), ``X`` configs/policy.execution.yaml. Rows marked ``# bypass`` were *allowed* before
the fix that came with them and were checked against the real program (git 2.39, GNU coreutils 9.1,
findutils 4.9, grep 3.8) in a scratch directory. The rest pin down attacks that were already refused
and everyday commands that must keep working.
"""

import pytest

from safeagent.policy import decide

I, X = "inspect", "execution"
ALLOW, DENY, APPROVE = "allow", "deny", "require_approval"

ROWS = [
    # --- git options that take the NEXT word as a file, even one starting with '-' ---
    # git reads `-X/../../f` as -O's order file; the policy used to read it as the option -X (dirstat),
    # so a workspace directory named `-X` let git read any file outside the workspace
    # (a path argument starting with '-' is now refused outright: path_option_like)
    (I, "git diff -O -X/../../../etc/passwd", DENY, "path_option_like"),  # bypass
    (I, "git log -p -O -X/../../etc/passwd", DENY, "path_option_like"),  # bypass
    (I, "git show -O -M/../../etc/passwd HEAD", DENY, "path_option_like"),  # bypass
    (I, "git ls-files -ci -X -x/../../etc/passwd", DENY, "path_option_like"),  # bypass
    (I, "git ls-files -ci --exclude-from -x/../../etc/passwd", DENY, "path_option_like"),  # bypass
    (I, "git ls-files -ci --exclude-per-directory -x/../../etc/passwd", DENY, "path_option_like"),  # bypass
    (I, "git diff -O", DENY, "option_missing_argument"),
    (I, "git diff -O order.txt", ALLOW, "allowed"),
    (I, "git diff -Oorder.txt --stat", ALLOW, "allowed"),
    (I, "git ls-files -o -x '*.pyc'", ALLOW, "allowed"),
    (I, "git ls-files -o -X .gitignore", ALLOW, "allowed"),
    (I, "git ls-files --with-tree HEAD", ALLOW, "allowed"),
    (I, "git ls-files --with-tree=HEAD", ALLOW, "allowed"),
    # git -L: the file is a repository path; git itself refuses one outside the repository
    (I, "git log -L 10,20:src/main.py", ALLOW, "allowed"),
    (I, "git log -L :main:src/main.py", ALLOW, "allowed"),
    (I, "git log -L1,2:/etc/passwd", ALLOW, "allowed"),  # git: "'/etc/passwd' is outside repository"
    (I, "git show HEAD:../x", ALLOW, "allowed"),  # a tree path (object database), never the file system
    (I, "git log '--format=%x25G?'", ALLOW, "allowed"),  # %x25 prints a literal '%': no signature check
    (I, "git log '--pretty=%g?'", ALLOW, "allowed"),  # %g is the reflog, not gpg
    (I, "git log --show-notes", DENY, "option_unknown"),
    (I, "git log --ignore-missing", DENY, "option_unknown"),
    (I, "git -cfoo=bar log", DENY, "option_denied"),
    (I, "git -Pc core.pager=id log", DENY, "option_denied"),
    (I, "git --config-env=core.pager=X log", DENY, "option_denied"),
    (I, "GIT_EXTERNAL_DIFF=id git diff", DENY, "environment_assignment"),
    (I, "env GIT_PAGER=id git log", DENY, "wrapper_denied"),
    (I, "git diff --submodule", DENY, "option_denied"),
    (I, "git diff --sub=diff", DENY, "option_denied"),
    (I, "git show --textc HEAD", DENY, "option_denied"),
    (I, "git log -p --ext HEAD", DENY, "option_ambiguous"),  # --ext-diff or --extended-regexp
    (I, "git status --ignored --untracked-files", ALLOW, "allowed"),
    (I, "git status --ignored=matching -uall", ALLOW, "allowed"),
    (I, "git ls-files -z --with-tree=HEAD", ALLOW, "allowed"),
    (I, "git diff -O -- /etc/passwd", DENY, "path_option_like"),
    (I, "git log --no-walk --grep=fix --since=2.weeks -S foo", ALLOW, "allowed"),
    (I, "git log --follow -- src/main.py", ALLOW, "allowed"),
    (I, "git log -- -rf", ALLOW, "allowed"),
    # --remerge-diff (and --diff-merges=remerge/r) mkdir a temporary object directory in .git/objects
    (I, "git log --remerge-diff", DENY, "option_denied"),  # bypass: a write under inspect-only
    (I, "git show --remerge HEAD", DENY, "option_denied"),  # bypass
    (I, "git log -p --diff-merges=r", DENY, "option_bad_value"),  # bypass
    (I, "git log -p --diff-merges=remerge", DENY, "option_bad_value"),  # bypass
    (I, "git log -p --diff-merges=cc", ALLOW, "allowed"),
    # --- tail: obsolete `-[NUM][bcl]f` forms follow forever; `-cf` is one of them ---
    (I, "tail -cf README.md", DENY, "option_bad_value"),
    (I, "tail -bf README.md", DENY, "option_unknown"),
    (I, "tail -5lf README.md", DENY, "option_unknown"),
    (I, "tail -n +5f README.md", DENY, "argument_denied"),
    (I, "tail -n +1 README.md", ALLOW, "allowed"),
    (I, "tail --lines=+5 README.md", ALLOW, "allowed"),
    (I, "head -n-5 README.md", ALLOW, "allowed"),
    (I, "head --lines=-5 README.md", ALLOW, "allowed"),
    (I, "head -5 README.md", ALLOW, "allowed"),
    # --- getopt corners: `-`, `--` twice, empty `=` values, `--opt --` ---
    (I, "ls -", ALLOW, "allowed"),  # standard input is /dev/null in the sandbox
    (I, "ls -- -- -x", ALLOW, "allowed"),
    (I, "grep -e -- /etc/passwd", DENY, "path_outside_workspace"),
    (I, "grep --file= .", DENY, "path_empty"),
    (I, "grep --exclude-from= -r foo .", DENY, "path_empty"),
    (I, "grep --color= foo x", DENY, "option_bad_value"),
    (I, "grep --=x foo", DENY, "option_unknown"),
    (I, "ls ---all", DENY, "option_unknown"),
    (I, "ls -l-a", DENY, "option_unknown"),
    (I, "grep -f - x", ALLOW, "allowed"),
    (I, "grep --label=x -H foo", ALLOW, "allowed"),
    (I, "grep -d skip --line-buffered foo x", ALLOW, "allowed"),
    (I, "grep -r foo -- /etc", DENY, "path_outside_workspace"),
    (I, "grep -rf /dev/stdin .", DENY, "path_outside_workspace"),
    (I, "sort -k1,1 -- /etc/passwd", DENY, "path_outside_workspace"),
    (I, "uniq -c -- x /etc/y", DENY, "operand_count"),
    (I, "uniq a +3 b", DENY, "operand_count"),  # GNU uniq reads +3 as an option: b would be written
    (I, "cat -v /dev/zero", DENY, "path_outside_workspace"),
    (I, "ls --hide=x -R", ALLOW, "allowed"),
    (I, "ls -R /", DENY, "path_outside_workspace"),
    (I, "ls --h", DENY, "option_ambiguous"),
    (I, "stat -f /", DENY, "path_outside_workspace"),
    (I, "stat --file-system /proc", DENY, "path_outside_workspace"),
    (I, "stat --dereference x", DENY, "option_denied"),
    (I, "du --dereference-args x", DENY, "option_denied"),
    (I, "sort --temp=/tmp x", DENY, "option_denied"),
    (I, "wc --files0-from=-", DENY, "option_denied"),
    # --- find ---
    (I, "find -- .", DENY, "option_unknown"),  # find accepts `--` here; refused (fail closed)
    (I, "find -P -P .", ALLOW, "allowed"),
    (I, "find . -newer ./-exec", ALLOW, "allowed"),
    (I, "find . -used +1 -regextype sed -regex x", ALLOW, "allowed"),
    (I, "find . -samefile ./x", ALLOW, "allowed"),
    (I, "find . -newerct /etc/passwd", ALLOW, "allowed"),  # t: a date
    (I, "find . -newercm /etc/passwd", DENY, "path_outside_workspace"),
    (I, "find . -true -exec id", DENY, "option_denied"),
    (I, "find . -not -okdir id", DENY, "option_denied"),
    (I, "find . , -fprint x", DENY, "option_denied"),
    (I, "find . , /etc", DENY, "path_outside_workspace"),  # findutils: a leading , is a starting point, so is /etc
    (I, "find . '(' /etc ')'", DENY, "option_unknown"),
    (I, "find . \\( -name a -o -name b \\)", ALLOW, "allowed"),
    (I, "find . '!' -name a", ALLOW, "allowed"),
    (I, "find ! -name a", DENY, "shell_metacharacter"),
    (I, "find . -printf -fprint", ALLOW, "allowed"),  # -fprint is -printf's format here, as for find
    (I, "find -Dexec .", DENY, "option_denied"),
    (I, "find -O0 .", DENY, "option_denied"),
    (I, "find -", ALLOW, "allowed"),  # findutils reads a lone - as a file name
    (I, "find '' -name x", DENY, "path_empty"),
    # --- shlex and characters ---
    (I, "ls \\\nid", DENY, "shell_metacharacter"),  # backslash-newline
    (I, "ls\f-la", DENY, "control_character"),
    (I, "ls\v/etc", DENY, "control_character"),
    (I, "ls\u2009/etc", DENY, "invisible_character"),
    (I, "ls\u3000/etc", DENY, "invisible_character"),
    (I, "cat \uff0fetc/passwd", DENY, "non_ascii_character"),
    (I, "cat e\u0301", DENY, "non_ascii_character"),
    (I, "cat \ua4f8\ua4f8/etc", DENY, "non_ascii_character"),
    (I, "cat \u2024\u2024/etc", DENY, "non_ascii_character"),
    (I, "cat \u2025/etc", DENY, "non_ascii_character"),
    (I, 'ls ""', DENY, "path_empty"),
    (I, "ls '' x", DENY, "path_empty"),
    (I, 'l""s -la', ALLOW, "allowed"),
    (I, "ls a''", ALLOW, "allowed"),
    (I, "ls \\t", ALLOW, "allowed"),  # the word is `t`
    (I, "cat \\/etc/passwd", DENY, "path_outside_workspace"),
    (I, "cat /e'tc'/passwd", DENY, "path_outside_workspace"),
    (I, "cat /.//etc", DENY, "path_outside_workspace"),
    (I, "cat /workspace/.//../etc", DENY, "path_outside_workspace"),
    (I, "cat x/../..", DENY, "path_outside_workspace"),
    (I, "cat " + "../" * 100 + "etc/passwd", DENY, "path_outside_workspace"),
    (I, "ls x/.", ALLOW, "allowed"),
    (I, "ls /workspace/.", ALLOW, "allowed"),
    (I, "ls /workspace/../workspace/x", ALLOW, "allowed"),
    (I, "ls ./-rf", ALLOW, "allowed"),
    (I, "  ls\t\t-la  ", ALLOW, "allowed"),
    # --- writes under inspect-only: approval, never allow ---
    (I, "rm -- -rf", APPROVE, "approval_required"),
    (I, "rm ./-rf", APPROVE, "approval_required"),
    (I, "rm -rf '*'", APPROVE, "approval_required"),  # no shell: a file literally named *
    (I, "mv -- -x y", APPROVE, "approval_required"),
    (I, "rm -rf .git/..", DENY, "path_workspace_root"),
    (I, "mv -t .git x", DENY, "path_protected"),
    (I, "mv x .git/hooks/pre-commit", DENY, "path_protected"),
    # --- everyday inspection that used to be refused ---
    (I, "pwd", ALLOW, "allowed"),  # false denial: it can only print /workspace
    (I, "pwd -P", ALLOW, "allowed"),
    (I, "pwd /etc", DENY, "operand_count"),
    (I, "pwd -x", DENY, "option_unknown"),
    # --- execution policy: make and pytest ---
    (X, "make -l test", DENY, "option_unknown"),
    (X, "make .SHELLFLAGS=-c test", DENY, "operand_count"),
    (X, "make MAKEFLAGS=-j test", DENY, "operand_count"),
    (X, "make -j4 test", DENY, "option_denied"),
    (X, "make -Ex test", DENY, "option_denied"),
    (X, "make - test", DENY, "operand_count"),
    (X, "make -s -- test", ALLOW, "allowed"),
    (X, "pytest --inifile x", DENY, "option_unknown"),
    (X, "pytest --plugins x", DENY, "option_unknown"),
    (X, "pytest --resultlog=x", DENY, "option_unknown"),
    (X, "pytest --debug=/tmp/x", DENY, "option_denied"),
    (X, "pytest --pastebin=all", DENY, "option_denied"),
    (X, "pytest --trace", DENY, "option_denied"),
    (X, "pytest --over=addopts=-pfoo", DENY, "option_denied"),
    (X, "pytest -sp foo", DENY, "option_denied"),
    (X, "pytest -rp", ALLOW, "allowed"),  # -r's characters; pytest only preparses words starting -p
    (X, "pytest --rootdir -x/../../etc", DENY, "path_option_like"),
    (X, "pytest -- -x/../../etc", DENY, "path_outside_workspace"),
    (X, "pytest --lf --cache-clear -x", ALLOW, "allowed"),
    (X, "pytest --import-mode=importlib --rootdir=.", ALLOW, "allowed"),
    (X, "pytest 'tests/test_a.py::TestX::test_y[1-2]'", ALLOW, "allowed"),
    (X, "pytest tests/test_a.py::TestX::test_y[1-2]", DENY, "shell_metacharacter"),  # [ unquoted: a shell glob
    (X, "pytest 'x.py::y/../../../../etc'", DENY, "path_outside_workspace"),
    (X, "python3 -m pytest --pyargs os", DENY, "option_denied"),
    (X, "python3 -m pytest -q tests", ALLOW, "allowed"),
]



def _policies_for(which, command, inspect_policy, execution_policy):
    """An inspect-only row holds for the execution policy too: it shares every inspect-only program."""
    if which == X:
        return [execution_policy]
    return [inspect_policy] + ([] if command.startswith(("pytest", "python3", "make")) else [execution_policy])


@pytest.mark.parametrize("row", ROWS, ids=[f"{row[0][0]}:{row[1][:60]!r}" for row in ROWS])
def test_second_red_team(inspect_policy, execution_policy, row):
    which, command, decision, reason = row
    for policy in _policies_for(which, command, inspect_policy, execution_policy):
        result = decide(policy, command)
        assert (result.decision, result.reason) == (decision, reason), f"{policy.name}: {result.message}"
