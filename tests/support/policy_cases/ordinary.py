"""Everyday commands that must keep working: looking around, reading, searching, the history, and
running the repository's own tests under the execution policy. (Allowed lines that mark the edge of an
attack stay beside that attack, in its group.)
"""

from tests.support.policy_cases.codes import ALLOW, APPROVE, DENY, I, X  # noqa: F401

ROWS = [
    # --- ls ---
    (I, "ls", ALLOW, "allowed"),
    (I, "ls -la", ALLOW, "allowed"),
    (I, "ls -la src", ALLOW, "allowed"),
    (I, "ls foo -la", ALLOW, "allowed"),
    (I, "ls --color=never -1", ALLOW, "allowed"),
    (I, "ls --col=never", ALLOW, "allowed"),
    (I, "ls ./src /workspace/src src", ALLOW, "allowed"),
    (I, "ls /workspace", ALLOW, "allowed"),
    (I, "ls 'a b'", ALLOW, "allowed"),
    (I, 'ls "dir with spaces"', ALLOW, "allowed"),
    (I, "ls src/../docs", ALLOW, "allowed"),
    (I, "ls -- -weird-name", ALLOW, "allowed"),
    (I, "ls '*'", ALLOW, "allowed"),
    (X, "ls -la", ALLOW, "allowed"),
    (I, "ls -F", ALLOW, "allowed"),
    (I, "ls --classify=auto", ALLOW, "allowed"),
    (I, "ls --hide=x -R", ALLOW, "allowed"),
    # --- cat ---
    (I, "cat --squeeze x", ALLOW, "allowed"),
    (I, "cat README.md", ALLOW, "allowed"),
    (I, "cat -n src/main.py", ALLOW, "allowed"),
    (I, "cat /workspace/README.md", ALLOW, "allowed"),
    # --- wc ---
    (I, "wc --ma x", ALLOW, "allowed"),
    (I, "wc -l src/main.py", ALLOW, "allowed"),
    (I, "wc -l README.md", ALLOW, "allowed"),
    # --- grep ---
    (I, "grep --exclude-fro=x foo .", ALLOW, "allowed"),
    (I, "grep -rn 'foo.*bar' .", ALLOW, "allowed"),
    (I, "grep -rn TODO src", ALLOW, "allowed"),
    (I, "grep -rnE 'fo+' --include='*.py' .", ALLOW, "allowed"),
    (I, "grep -e foo -e bar README.md", ALLOW, "allowed"),
    (I, "grep -rl --exclude-dir=.git needle .", ALLOW, "allowed"),
    (I, "grep -c '^import' src/main.py", ALLOW, "allowed"),
    (I, "grep -2 needle file.txt", ALLOW, "allowed"),
    (I, "grep -f patterns.txt src/main.py", ALLOW, "allowed"),
    (I, "grep '[a-z]\\+' file", ALLOW, "allowed"),
    (I, "grep -- -v file", ALLOW, "allowed"),
    (I, "grep '/etc/passwd' notes.txt", ALLOW, "allowed"),
    (I, "grep '#include' src/x.c", ALLOW, "allowed"),
    (I, "grep -d recurse foo", ALLOW, "allowed"),
    (I, "grep -rn 'foo' src", ALLOW, "allowed"),
    (I, "grep -rn --include='*.py' -e TODO -e FIXME .", ALLOW, "allowed"),
    (I, "grep --label=x -H foo", ALLOW, "allowed"),
    (I, "grep -d skip --line-buffered foo x", ALLOW, "allowed"),
    # --- find ---
    (I, "find . -name '*.py'", ALLOW, "allowed"),
    (I, "find . -type f -name '*.py' -not -path './.git/*'", ALLOW, "allowed"),
    (I, "find src -maxdepth 2 -type d", ALLOW, "allowed"),
    (I, "find . -iname '*readme*' -print0", ALLOW, "allowed"),
    (I, "find . -newer setup.py -name '*.py'", ALLOW, "allowed"),
    (I, "find . -size +10k -o -empty", ALLOW, "allowed"),
    (I, "find . -regex '.*/test_[a-z]*[.]py'", ALLOW, "allowed"),
    (I, "find . -printf '%p %s\\n'", ALLOW, "allowed"),
    (I, "find -P . -name x", ALLOW, "allowed"),
    (I, "find . -newermt '2024-01-01'", ALLOW, "allowed"),
    (I, "find . -name '*.py' -type f", ALLOW, "allowed"),
    (I, "find", ALLOW, "allowed"),
    (I, "find . -type f -size +1M -printf '%s %p\\n'", ALLOW, "allowed"),
    (I, "find . -used +1 -regextype sed -regex x", ALLOW, "allowed"),
    # --- head ---
    (I, "head -n 20 README.md", ALLOW, "allowed"),
    (I, "head -5 README.md", ALLOW, "allowed"),
    (I, "head -c 1K README.md", ALLOW, "allowed"),
    # --- tail ---
    (I, "tail -n +5 README.md", ALLOW, "allowed"),
    (I, "tail -20 log.txt", ALLOW, "allowed"),
    # --- stat ---
    (I, "stat README.md", ALLOW, "allowed"),
    (I, "stat --printf='%n %s\\n' README.md", ALLOW, "allowed"),
    # --- git ---
    (I, "git status", ALLOW, "allowed"),
    (I, "git status -s", ALLOW, "allowed"),
    (I, "git status --porcelain=v2", ALLOW, "allowed"),
    (I, "git diff", ALLOW, "allowed"),
    (I, "git diff --stat", ALLOW, "allowed"),
    (I, "git diff --cached -- src", ALLOW, "allowed"),
    (I, "git diff HEAD~1 HEAD", ALLOW, "allowed"),
    (I, "git diff main...feature", ALLOW, "allowed"),
    (I, "git diff -U5 --no-ext-diff --no-textconv", ALLOW, "allowed"),
    (I, "git log --oneline -5", ALLOW, "allowed"),
    (I, "git log -n 3 --stat", ALLOW, "allowed"),
    (I, "git log -p --follow -- README.md", ALLOW, "allowed"),
    (I, "git log --author='Jane Doe' --since=2.weeks", ALLOW, "allowed"),
    (I, "git log --format='%H %s'", ALLOW, "allowed"),
    (I, "git --no-pager log", ALLOW, "allowed"),
    (I, "git -P diff", ALLOW, "allowed"),
    (I, "git show HEAD", ALLOW, "allowed"),
    (I, "git show HEAD:README.md", ALLOW, "allowed"),
    (I, "git show --stat HEAD^", ALLOW, "allowed"),
    (I, "git ls-files", ALLOW, "allowed"),
    (I, "git ls-files -o --exclude-standard", ALLOW, "allowed"),
    (X, "git status", ALLOW, "allowed"),
    # git -L: the file is a repository path; git itself refuses one outside the repository
    (I, "git status --ignored --untracked-files", ALLOW, "allowed"),
    (I, "git status --ignored=matching -uall", ALLOW, "allowed"),
    (I, "git ls-files -z --with-tree=HEAD", ALLOW, "allowed"),
    (I, "git log --no-walk --grep=fix --since=2.weeks -S foo", ALLOW, "allowed"),
    (I, "git log --follow -- src/main.py", ALLOW, "allowed"),
    # git: the listing and query subcommands stay read-only
    (I, "git branch --list 'feat/*'", ALLOW, "allowed"),
    (I, "git branch --contains HEAD -a", ALLOW, "allowed"),
    (I, "git tag -l 'v*'", ALLOW, "allowed"),
    (I, "git tag -n5 -l", ALLOW, "allowed"),
    (I, "git remote -v", ALLOW, "allowed"),
    (I, "git cat-file -p HEAD:README.md", ALLOW, "allowed"),
    (I, "git grep -e foo --and -e bar", ALLOW, "allowed"),
    (I, "git blame -L 1,5 -- x", ALLOW, "allowed"),
    (I, "git rev-parse --short=8 HEAD", ALLOW, "allowed"),
    (I, "git shortlog -sn HEAD", ALLOW, "allowed"),
    # --- pytest ---
    (X, "pytest", ALLOW, "allowed"),
    (X, "pytest -q", ALLOW, "allowed"),
    (X, "pytest -x -q tests/unit", ALLOW, "allowed"),
    (X, "pytest tests/test_x.py::test_one", ALLOW, "allowed"),
    (X, "pytest 'tests/test_x.py::test_one[a-b]'", ALLOW, "allowed"),
    (X, "pytest -k 'not slow' -m unit", ALLOW, "allowed"),
    (X, "pytest --tb=short -ra", ALLOW, "allowed"),
    (X, "pytest -vv --maxfail=1", ALLOW, "allowed"),
    (X, "pytest --lf", ALLOW, "allowed"),
    (X, "python3 -m pytest", ALLOW, "allowed"),
    (X, "python3 -m pytest -q tests", ALLOW, "allowed"),
    # pytest (argparse with fromfile_prefix_chars="@"): @FILE splices unchecked arguments in
    # pytest itself does not abbreviate; the policy reads abbreviations anyway (never towards fewer checks)
    (X, "pytest --import-mode=importlib", ALLOW, "allowed"),
    (X, "pytest -q tests/test_x.py::test_y -k 'a and not b'", ALLOW, "allowed"),
    (X, "python3 -m pytest -x -q", ALLOW, "allowed"),
    (X, "pytest --lf --cache-clear -x", ALLOW, "allowed"),
    (X, "pytest --import-mode=importlib --rootdir=.", ALLOW, "allowed"),
    (X, "pytest 'tests/test_a.py::TestX::test_y[1-2]'", ALLOW, "allowed"),
    # --- make ---
    (X, "make test", ALLOW, "allowed"),
    (X, "make -s test", ALLOW, "allowed"),
    (X, "make -k test", ALLOW, "allowed"),
    # make (execution only): only `make test`
    (X, "make -sk test", ALLOW, "allowed"),
    # --- du ---
    # du, sort, uniq, diff: ordinary inspection, minus their writing and program-running options
    (I, "du -sh .", ALLOW, "allowed"),
    (I, "du -d 1 -h src", ALLOW, "allowed"),
    # --- sort ---
    # du, sort, uniq, diff: ordinary inspection, minus their writing and program-running options
    (I, "sort README.md", ALLOW, "allowed"),
    (I, "sort -k2,2n -t: -u data.txt", ALLOW, "allowed"),
    # --- uniq ---
    # du, sort, uniq, diff: ordinary inspection, minus their writing and program-running options
    (I, "uniq data.txt", ALLOW, "allowed"),
    (I, "uniq -c data.txt", ALLOW, "allowed"),
    # --- diff ---
    # du, sort, uniq, diff: ordinary inspection, minus their writing and program-running options
    (I, "diff a b", ALLOW, "allowed"),
    (I, "diff -u a b", ALLOW, "allowed"),
    (I, "diff -ru src other", ALLOW, "allowed"),
    # --- pwd ---
    (I, "pwd", ALLOW, "allowed"),  # false denial: it can only print /workspace
    (I, "pwd -P", ALLOW, "allowed"),
    (I, "pwd /etc", DENY, "operand_count"),
    (I, "pwd -x", DENY, "option_unknown"),
    # --- printf ---
    (I, "printf '%s\\n' a b", ALLOW, "allowed"),
    (I, "printf '%-10s|%5.2f\\n' a 1", ALLOW, "allowed"),
    # --- echo ---
    (I, "echo -n hello", ALLOW, "allowed"),
    # --- rg ---
    (I, "rg -uuu foo", ALLOW, "allowed"),
]
