"""Third red team (issue 9): option-argument injection, and the inspection commands added with v2.

Each row is (policy, command line, expected decision, expected reason); ``I`` is configs/policy.yaml
(inspect-only), ``X`` configs/policy.execution.yaml. Rows marked ``# bypass`` were *allowed* by both
shipped policies before this change: git takes the next word as the value of these options whatever
it looks like, while the policy marked them `optional` (attached value only) and read the next word
as an option of its own. tests/unit/policy/test_arity.py now checks every option's arity against the
real programs, so a table like this one is no longer the only line of defence.
"""

import pytest

from safeagent.policy import decide

I, X = "inspect", "execution"
ALLOW, DENY, APPROVE = "allow", "deny", "require_approval"

ROWS = [
    # --- option-argument injection (git reads the next word as the value) ---
    (I, "git log --skip -O --output=/tmp/x -p", DENY, "option_bad_value"),  # bypass: wrote the log to /tmp/x
    (I, "git show -S -O --output=.git/config", DENY, "option_denied"),  # bypass: overwrote .git/config
    (I, "git log -S -O --output=x --format=owned", DENY, "option_denied"),  # bypass: content of the caller's choice
    (I, "git log -G -O --remerge-diff", DENY, "option_denied"),  # bypass: re-opened --remerge-diff
    (I, "git log --grep -O /etc/passwd", DENY, "path_outside_workspace"),  # bypass: -O was --grep's text, /etc/passwd unchecked
    (I, "git log --author -O -O/../../etc/passwd", DENY, "path_outside_workspace"),  # bypass: order file outside
    (I, "git diff --src-prefix -O --output=/tmp/x", DENY, "option_denied"),  # bypass
    (I, "git log -n --output=/tmp/x", DENY, "option_bad_value"),  # bypass
    (I, "git log --exclude -O --output=/tmp/x --all", DENY, "option_denied"),  # bypass
    (I, "git show --anchored -O --output=x", DENY, "option_denied"),  # bypass
    (I, "git show --rotate-to -O --output=x", DENY, "option_denied"),  # bypass
    (I, "git diff --ws-error-highlight -O --output=x", DENY, "option_denied"),  # bypass
    (I, "git log --decorate-refs -O --output=x", DENY, "option_denied"),  # bypass
    (I, "git log --date -O --output=x", DENY, "option_denied"),  # bypass
    (I, "git log -L -O --output=x", DENY, "option_denied"),  # bypass
    # the word right after such an option is its value for git too: `--output=/tmp/x` here is a date,
    # a prefix, a ref pattern, never the --output option (git rejects or ignores it as a value)
    (I, "git log --since --output=/tmp/x", ALLOW, "allowed"),
    (I, "git diff --line-prefix --output=/tmp/x HEAD", ALLOW, "allowed"),
    (I, "git log --decorate-refs --output=x", ALLOW, "allowed"),
    # what such words really are now: free text, never a path (and never an option)
    (I, "git log --grep ../x", ALLOW, "allowed"),  # search text, not a path
    (I, "git log -S /etc/passwd", ALLOW, "allowed"),  # search text, not a path
    (I, "git log --author /etc/passwd --oneline", ALLOW, "allowed"),
    (I, "git log --skip 3 -n 2", ALLOW, "allowed"),
    (I, "git log --skip x", DENY, "option_bad_value"),
    (I, "git log --grep", DENY, "option_missing_argument"),
    (I, "git diff --src-prefix a/ --dst-prefix b/", ALLOW, "allowed"),
    # a path argument that starts with '-' (a program may read it as an option)
    (I, "grep -f -x foo .", DENY, "path_option_like"),
    (I, "grep --file=-e foo .", DENY, "path_option_like"),
    (I, "git diff -O -- x", DENY, "path_option_like"),
    (I, "git diff -O ./-x", ALLOW, "allowed"),
    (I, "grep -f - foo", ALLOW, "allowed"),  # standard input
    (I, "ls -- -x", ALLOW, "allowed"),  # an operand after --: the program sees the -- too
    # --- sed: print-only scripts ---
    (I, "sed -n '1,40p' README.md", ALLOW, "allowed"),
    (I, "sed -n '$p' README.md", ALLOW, "allowed"),
    (I, "sed -n -e 1p -e '/x/p' README.md", ALLOW, "allowed"),
    (I, "sed 10q README.md", ALLOW, "allowed"),
    (I, "sed '/^#/d' README.md", ALLOW, "allowed"),
    (I, "sed -n '/a\\/b/p' x", ALLOW, "allowed"),
    (I, "sed -n '1~2p' x", ALLOW, "allowed"),
    (I, "sed -n '/start/,+3p' x", ALLOW, "allowed"),
    (I, "sed -n '1p;w /tmp/x' x", DENY, "argument_denied"),
    (I, "sed -n 'w x' README.md", DENY, "argument_denied"),
    (I, "sed 'e id' x", DENY, "argument_denied"),
    (I, "sed '1e id' x", DENY, "argument_denied"),
    (I, "sed 's/a/b/' x", DENY, "argument_denied"),
    (I, "sed 's/a/id/e' x", DENY, "argument_denied"),
    (I, "sed 's/a/b/w /tmp/x' x", DENY, "argument_denied"),
    (I, "sed 'r /etc/passwd' x", DENY, "argument_denied"),
    (I, "sed 'R /etc/passwd' x", DENY, "argument_denied"),
    (I, "sed '1W out' x", DENY, "argument_denied"),
    (I, "sed 'a hello' x", DENY, "argument_denied"),
    (I, "sed '1{p}' x", DENY, "argument_denied"),
    (I, "sed -n '\\%x%p' x", DENY, "argument_denied"),  # custom delimiters are not in the grammar
    (I, "sed -n '/x/p' -e 'w y' x", DENY, "argument_denied"),
    (I, "sed -n -e '/x/p' -e 'w y' x", DENY, "argument_denied"),
    (I, "sed -n -e 1p /etc/passwd", DENY, "path_outside_workspace"),
    (I, "sed -i 1d x", DENY, "option_denied"),
    (I, "sed -i.bak 1d x", DENY, "option_denied"),
    (I, "sed --in-place=.b 1d x", DENY, "option_denied"),
    (I, "sed -f script.sed x", DENY, "option_denied"),
    (I, "sed -n --expression=1p x", ALLOW, "allowed"),
    # --- printf and echo ---
    (I, "printf '%s\\n' a b", ALLOW, "allowed"),
    (I, "printf '%-10s|%5.2f\\n' a 1", ALLOW, "allowed"),
    (I, "printf '%999999999d' 1", DENY, "argument_denied"),
    (I, "printf '%*d' 999999999 1", DENY, "argument_denied"),
    (I, "printf '%.*f' 99999 1", DENY, "argument_denied"),
    (I, "printf '%n' x", DENY, "argument_denied"),
    (I, "printf -- '%s' x", ALLOW, "allowed"),
    (I, "printf -v x y", DENY, "option_unknown"),  # bash's builtin option; /usr/bin/printf has none
    (I, "printf", DENY, "operand_count"),
    (I, "echo -n hello", ALLOW, "allowed"),
    (I, "echo hello -n", ALLOW, "allowed"),  # -n after a word is text, as echo reads it
    (I, "echo -x", DENY, "option_unknown"),
    # --- rg ---
    (I, "rg --pre cat foo", DENY, "option_denied"),
    (I, "rg --pre=sh foo", DENY, "option_denied"),
    (I, "rg --pre-glob '*' foo", DENY, "option_denied"),
    (I, "rg -z foo", DENY, "option_denied"),
    (I, "rg --search-zip foo", DENY, "option_denied"),
    (I, "rg -L foo", DENY, "option_denied"),
    (I, "rg -f=/etc/passwd x", DENY, "option_denied"),
    (I, "rg --ignore-file=/etc/x foo", DENY, "option_denied"),
    (I, "rg --pr cat foo", DENY, "option_unknown"),  # ripgrep never abbreviates
    (I, "rg --hidd foo", DENY, "option_unknown"),
    (I, "rg --files /etc", DENY, "path_outside_workspace"),  # with --files every operand is a path
    (I, "rg --type-list /etc", DENY, "path_outside_workspace"),
    (I, "rg foo /etc", DENY, "path_outside_workspace"),
    (I, "rg -e foo /etc", DENY, "path_outside_workspace"),
    (I, "rg /etc", ALLOW, "allowed"),  # the pattern, not a path
    (I, "rg -uuu foo", ALLOW, "allowed"),
    # --- tree: a letter's value is always the next word ---
    (I, "tree -o out.txt", DENY, "option_denied"),
    (I, "tree -R -H . -o x", DENY, "option_denied"),
    (I, "tree -l", DENY, "option_denied"),
    (I, "tree --fromfile x", DENY, "option_denied"),
    (I, "tree -LP 2 '*.py'", ALLOW, "allowed"),
    (I, "tree -LP 2 /etc", ALLOW, "allowed"),  # /etc is -P's pattern (tree reads it so), not a directory
    (I, "tree -PL 2 /etc", DENY, "option_bad_value"),  # -P takes 2, -L takes /etc: not a number
    (I, "tree -L2", DENY, "option_missing_argument"),  # tree: -L takes the next word (none), 2 is another letter
    (I, "tree -L 2 /etc", DENY, "path_outside_workspace"),
    (I, "tree --noreport=x", DENY, "option_unexpected_argument"),
    (I, "tree --norep", DENY, "option_unknown"),  # tree never abbreviates
    # --- file ---
    (I, "file -z x.gz", DENY, "option_denied"),
    (I, "file -C -m x", DENY, "option_denied"),
    (I, "file -f names.txt", DENY, "option_denied"),
    (I, "file -m /etc/magic x", DENY, "option_denied"),
    (I, "file -p x", DENY, "option_denied"),
    (I, "file /etc/passwd", DENY, "path_outside_workspace"),
    # --- checksums, cut, nl, tac, realpath, basename, dirname ---
    (I, "sha256sum -c SHA256SUMS", DENY, "option_denied"),
    (I, "md5sum --check x", DENY, "option_denied"),
    (I, "sha256sum /etc/shadow", DENY, "path_outside_workspace"),
    (I, "realpath --relative-to=/etc x", DENY, "path_outside_workspace"),
    (I, "realpath ../x", DENY, "path_outside_workspace"),
    (I, "basename /etc/passwd", ALLOW, "allowed"),  # text: basename never opens a file
    (I, "dirname /etc/passwd", ALLOW, "allowed"),
    (I, "nl -ba /etc/passwd", DENY, "path_outside_workspace"),
    (I, "tac /etc/passwd", DENY, "path_outside_workspace"),
    (I, "cut -f1 /etc/passwd", DENY, "path_outside_workspace"),
    # --- git: the listing and query subcommands stay read-only ---
    (I, "git branch x", DENY, "operand_not_allowed"),  # creates a branch
    (I, "git branch -d main", DENY, "option_denied"),
    (I, "git branch -m a b", DENY, "option_denied"),
    (I, "git branch --set-upstream-to=x", DENY, "option_denied"),
    (I, "git branch -v x", DENY, "operand_not_allowed"),
    (I, "git branch --list 'feat/*'", ALLOW, "allowed"),
    (I, "git branch --contains HEAD -a", ALLOW, "allowed"),
    (I, "git tag v9", DENY, "operand_not_allowed"),  # creates a tag
    (I, "git tag -d v1", DENY, "option_denied"),
    (I, "git tag -v v1", DENY, "option_denied"),
    (I, "git tag -a -m x v9", DENY, "option_denied"),
    (I, "git tag -l 'v*'", ALLOW, "allowed"),
    (I, "git tag -n5 -l", ALLOW, "allowed"),
    (I, "git remote add x y", DENY, "operand_count"),
    (I, "git remote show origin", DENY, "operand_count"),  # contacts the remote
    (I, "git remote -v", ALLOW, "allowed"),
    (I, "git describe --dirty", DENY, "option_denied"),  # refreshes the index
    (I, "git describe --broken", DENY, "option_denied"),
    (I, "git cat-file --textconv HEAD:x", DENY, "option_denied"),
    (I, "git cat-file --filters HEAD:x", DENY, "option_denied"),
    (I, "git cat-file --batch", DENY, "option_denied"),
    (I, "git cat-file -p HEAD:README.md", ALLOW, "allowed"),
    (I, "git grep -O foo", DENY, "option_denied"),
    (I, "git grep --open-files-in-pager=sh foo", DENY, "option_denied"),
    (I, "git grep --no-index foo", DENY, "option_denied"),
    (I, "git grep --textconv foo", DENY, "option_denied"),
    (I, "git grep -f /etc/passwd", DENY, "path_outside_workspace"),
    (I, "git grep foo -- /etc", DENY, "path_outside_workspace"),
    (I, "git grep -e foo --and -e bar", ALLOW, "allowed"),
    (I, "git blame --textconv x", DENY, "option_denied"),
    (I, "git blame --contents /etc/passwd x", DENY, "path_outside_workspace"),
    (I, "git blame -S /etc/revs x", DENY, "path_outside_workspace"),
    (I, "git blame --ignore-revs-file=../x y", DENY, "path_outside_workspace"),
    (I, "git blame -L 1,5 -- x", ALLOW, "allowed"),
    (I, "git rev-parse --git-path hooks", DENY, "option_unknown"),
    (I, "git rev-parse --resolve-git-dir /etc", DENY, "option_unknown"),
    (I, "git rev-parse --parseopt", DENY, "option_unknown"),
    (I, "git rev-parse --abbrev HEAD", DENY, "option_unknown"),  # rev-parse matches exactly
    (I, "git rev-parse --short=8 HEAD", ALLOW, "allowed"),
    (I, "git shortlog", DENY, "operand_count"),  # without a revision it reads standard input
    (I, "git shortlog -sn HEAD", ALLOW, "allowed"),
    (I, "git ls-tree -r HEAD -- /etc", DENY, "path_outside_workspace"),
    (I, "git ls-tree", DENY, "operand_count"),
    # the execution policy shares every one of these rules
    (X, "git log --skip -O --output=/tmp/x -p", DENY, "option_bad_value"),  # bypass
    (X, "git show -S -O --output=.git/config", DENY, "option_denied"),  # bypass
    (X, "rg --pre cat foo", DENY, "option_denied"),
    (X, "sed -n 'w x' y", DENY, "argument_denied"),
]


@pytest.mark.parametrize(("which", "command", "decision", "reason"), ROWS, ids=[f"{row[0][0]}:{row[1]!r}" for row in ROWS])
def test_third_red_team(inspect_policy, execution_policy, which, command, decision, reason):
    policy = inspect_policy if which == I else execution_policy
    result = decide(policy, command)
    assert (result.decision, result.reason) == (decision, reason), result.message
