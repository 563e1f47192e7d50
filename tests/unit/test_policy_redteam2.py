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
    (I, "git diff -O -X/../../../etc/passwd", DENY, "path_outside_workspace"),  # bypass
    (I, "git log -p -O -X/../../etc/passwd", DENY, "path_outside_workspace"),  # bypass
    (I, "git show -O -M/../../etc/passwd HEAD", DENY, "path_outside_workspace"),  # bypass
    (I, "git ls-files -ci -X -x/../../etc/passwd", DENY, "path_outside_workspace"),  # bypass
    (I, "git ls-files -ci --exclude-from -x/../../etc/passwd", DENY, "path_outside_workspace"),  # bypass
    (I, "git ls-files -ci --exclude-per-directory -x/../../etc/passwd", DENY, "path_outside_workspace"),  # bypass
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
