"""Reaching files outside the workspace: `..`, absolute paths, /proc, /dev and the ServiceAccount
token, `//`, a quoted ~, empty paths, option values that name a file (`grep -f`, `git diff -O`,
`--exclude-from`, `find -newer`), options that follow symbolic links, and lists of names read from a
file (`--files0-from`).
"""

from tests.support.policy_cases.codes import ALLOW, APPROVE, DENY, I, X  # noqa: F401

ROWS = [
    # --- ls ---
    (I, "ls ..", DENY, "path_outside_workspace"),
    (I, "ls ../", DENY, "path_outside_workspace"),
    (I, "ls ../..", DENY, "path_outside_workspace"),
    (I, "ls /workspacex", DENY, "path_outside_workspace"),
    (I, "ls /workspace-other", DENY, "path_outside_workspace"),
    (I, "ls /", DENY, "path_outside_workspace"),
    (I, "ls //", DENY, "path_outside_workspace"),
    (I, "ls //etc", DENY, "path_outside_workspace"),
    (I, "ls -la /root", DENY, "path_outside_workspace"),
    (I, "ls x /etc", DENY, "path_outside_workspace"),
    (I, "ls -d -- /etc", DENY, "path_outside_workspace"),
    (I, "ls src/../../..", DENY, "path_outside_workspace"),
    (I, "ls ./../../", DENY, "path_outside_workspace"),
    # Unquoted, a shell expands ~ (at the start of a word, after = or :) to a home directory; quoted,
    # the program gets a path starting with ~, which the path rules refuse as well.
    (I, "ls '~'", DENY, "path_tilde"),
    (I, 'ls "~root"', DENY, "path_tilde"),
    (I, "ls ''", DENY, "path_empty"),
    (I, "ls -L", DENY, "option_denied"),
    (I, "ls --dereference", DENY, "option_denied"),
    (I, "ls -lL", DENY, "option_denied"),
    (I, "ls --hyperlink", DENY, "option_denied"),
    (I, "ls -L /", DENY, "option_denied"),
    (I, "ls --hyp", DENY, "option_denied"),
    (I, "ls '~root'", DENY, "path_tilde"),
    (I, "ls /workspace/../etc", DENY, "path_outside_workspace"),
    (I, "ls -R /", DENY, "path_outside_workspace"),
    (I, 'ls ""', DENY, "path_empty"),
    (I, "ls '' x", DENY, "path_empty"),
    (I, "ls x/.", ALLOW, "allowed"),
    (I, "ls /workspace/.", ALLOW, "allowed"),
    (I, "ls /workspace/../workspace/x", ALLOW, "allowed"),
    # --- cat ---
    (I, "cat ../secret", DENY, "path_outside_workspace"),
    (I, "cat a/../../x", DENY, "path_outside_workspace"),
    (I, "cat ./../x", DENY, "path_outside_workspace"),
    (I, "cat src/../../etc/passwd", DENY, "path_outside_workspace"),
    (I, "cat /workspace/../etc/passwd", DENY, "path_outside_workspace"),
    (I, "cat /workspace/a/../../etc/passwd", DENY, "path_outside_workspace"),
    (I, "cat /etc/passwd", DENY, "path_outside_workspace"),
    (I, "cat /proc/self/environ", DENY, "path_outside_workspace"),
    (I, "cat /proc/1/root/etc/shadow", DENY, "path_outside_workspace"),
    (I, "cat /dev/zero", DENY, "path_outside_workspace"),
    (I, "cat /run/secrets/kubernetes.io/serviceaccount/token", DENY, "path_outside_workspace"),
    (I, "cat -- /etc/passwd", DENY, "path_outside_workspace"),
    (I, "cat x -- ../y", DENY, "path_outside_workspace"),
    (I, "cat .//../x", DENY, "path_outside_workspace"),
    # Unquoted, a shell expands ~ (at the start of a word, after = or :) to a home directory; quoted,
    # the program gets a path starting with ~, which the path rules refuse as well.
    (I, "cat '~/.ssh/id_rsa'", DENY, "path_tilde"),
    (I, "cat \\~/x", DENY, "path_tilde"),
    (I, "cat \"\"", DENY, "path_empty"),
    (I, "cat //etc/passwd", DENY, "path_outside_workspace"),
    (I, "cat ///etc/passwd", DENY, "path_outside_workspace"),
    (I, "cat //workspace/../etc/passwd", DENY, "path_outside_workspace"),
    (I, "cat //workspace/README.md", DENY, "path_outside_workspace"),  # a leading // is left alone: fail closed
    (I, "cat /workspacex/y", DENY, "path_outside_workspace"),
    (I, "cat /dev/stdin", DENY, "path_outside_workspace"),
    (I, "cat ''", DENY, "path_empty"),
    (I, "cat -v /dev/zero", DENY, "path_outside_workspace"),
    (I, "cat \\/etc/passwd", DENY, "path_outside_workspace"),
    (I, "cat /e'tc'/passwd", DENY, "path_outside_workspace"),
    (I, "cat /.//etc", DENY, "path_outside_workspace"),
    (I, "cat /workspace/.//../etc", DENY, "path_outside_workspace"),
    (I, "cat x/../..", DENY, "path_outside_workspace"),
    (I, "cat " + "../" * 100 + "etc/passwd", DENY, "path_outside_workspace"),
    # --- head ---
    (I, "head /var/run/secrets/kubernetes.io/serviceaccount/token", DENY, "path_outside_workspace"),
    (I, "head -n 5 /etc/passwd", DENY, "path_outside_workspace"),
    (I, "head -c 100 /etc/passwd", DENY, "path_outside_workspace"),
    # --- tail ---
    (I, "tail /etc/shadow", DENY, "path_outside_workspace"),
    (I, "tail -c 10 -- /etc/passwd", DENY, "path_outside_workspace"),
    # --- wc ---
    (I, "wc -l /etc/passwd", DENY, "path_outside_workspace"),
    (I, "wc --files0-from=list", DENY, "option_denied"),
    (I, "wc --files0-from list", DENY, "option_denied"),
    (I, "wc --files0 list", DENY, "option_denied"),
    (I, "wc --files0-from=x", DENY, "option_denied"),
    (I, "wc --files0 x", DENY, "option_denied"),
    (I, "wc --files0-from=-", DENY, "option_denied"),
    # --- stat ---
    (I, "stat /", DENY, "path_outside_workspace"),
    (I, "stat -L x", DENY, "option_denied"),
    (I, "stat --dereference x", DENY, "option_denied"),
    (I, "stat -c %n /etc/passwd", DENY, "path_outside_workspace"),
    (I, "stat -f /", DENY, "path_outside_workspace"),
    (I, "stat --file-system /proc", DENY, "path_outside_workspace"),
    # --- grep ---
    (I, "grep -r foo /", DENY, "path_outside_workspace"),
    (I, "grep -r foo ..", DENY, "path_outside_workspace"),
    (I, "grep foo /etc/passwd", DENY, "path_outside_workspace"),
    (I, "grep -e x /etc/passwd", DENY, "path_outside_workspace"),
    (I, "grep -e x -- /etc/passwd", DENY, "path_outside_workspace"),
    (I, "grep x -e y /etc/passwd", DENY, "path_outside_workspace"),
    (I, "grep -f /etc/passwd .", DENY, "path_outside_workspace"),
    (I, "grep -f/etc/passwd .", DENY, "path_outside_workspace"),
    (I, "grep --file=/etc/passwd .", DENY, "path_outside_workspace"),
    (I, "grep --file /etc/passwd .", DENY, "path_outside_workspace"),
    (I, "grep -rf /etc/passwd .", DENY, "path_outside_workspace"),
    (I, "grep --exclude-from=/etc/x foo .", DENY, "path_outside_workspace"),
    (I, "grep --regexp=x ../y", DENY, "path_outside_workspace"),
    # Unquoted, a shell expands ~ (at the start of a word, after = or :) to a home directory; quoted,
    # the program gets a path starting with ~, which the path rules refuse as well.
    (I, "grep -f '~/x' .", DENY, "path_tilde"),
    (I, "grep --file= x", DENY, "path_empty"),
    # grep -R follows links, and a source holds none (the preparation step refuses them): -R is -r here
    (I, "grep -R foo .", ALLOW, "allowed"),
    (I, "grep -rR foo .", ALLOW, "allowed"),
    (I, "grep --dereference-recursive foo .", ALLOW, "allowed"),
    (I, "grep --deref foo .", ALLOW, "allowed"),
    (I, "grep -R foo /etc", DENY, "path_outside_workspace"),
    (I, "grep -R foo ..", DENY, "path_outside_workspace"),
    (I, "grep -rnf/etc/passwd .", DENY, "path_outside_workspace"),
    (I, "grep -f /etc/passwd x", DENY, "path_outside_workspace"),
    (I, "grep --file=/etc/passwd -r .", DENY, "path_outside_workspace"),
    (I, "grep --exclude-from=/etc/x -r foo .", DENY, "path_outside_workspace"),
    (I, "grep --exclude-f /etc/x -r foo .", DENY, "path_outside_workspace"),
    (I, "grep -e foo /etc/passwd", DENY, "path_outside_workspace"),
    (I, "grep /etc/passwd -e foo", DENY, "path_outside_workspace"),  # -e later: every operand is a file
    (I, "grep --reg=foo /etc/passwd", DENY, "path_outside_workspace"),
    (I, "grep foo -- /etc/passwd", DENY, "path_outside_workspace"),
    (I, "grep -rn foo /", DENY, "path_outside_workspace"),
    (I, "grep -D read foo /dev/zero", DENY, "path_outside_workspace"),
    (I, "grep --dereference-r foo .", ALLOW, "allowed"),
    (I, "grep -e /etc/passwd", ALLOW, "allowed"),  # a pattern, not a file
    (I, "grep -e -- /etc/passwd", DENY, "path_outside_workspace"),
    (I, "grep --file= .", DENY, "path_empty"),
    (I, "grep --exclude-from= -r foo .", DENY, "path_empty"),
    (I, "grep -r foo -- /etc", DENY, "path_outside_workspace"),
    (I, "grep -rf /dev/stdin .", DENY, "path_outside_workspace"),
    # --- find ---
    (I, "find /", DENY, "path_outside_workspace"),
    (I, "find / -name x", DENY, "path_outside_workspace"),
    (I, "find .. -name x", DENY, "path_outside_workspace"),
    (I, "find . /etc -name x", DENY, "path_outside_workspace"),
    (I, "find /etc", DENY, "path_outside_workspace"),
    (I, "find . -newer /etc/passwd", DENY, "path_outside_workspace"),
    (I, "find . -anewer ../x", DENY, "path_outside_workspace"),
    (I, "find . -cnewer /x", DENY, "path_outside_workspace"),
    (I, "find . -samefile /etc/passwd", DENY, "path_outside_workspace"),
    (I, "find . -newermm /etc/x", DENY, "path_outside_workspace"),
    (I, "find '' -name x", DENY, "path_empty"),
    (I, "find -files0-from list", DENY, "option_denied"),
    (I, "find . -follow", DENY, "option_denied"),
    (I, "find -L .", DENY, "option_denied"),
    (I, "find -H .", DENY, "option_denied"),
    (I, "find . -anewer /etc/passwd", DENY, "path_outside_workspace"),
    (I, "find . -files0-from x", DENY, "option_denied"),
    (I, "find -files0-from x", DENY, "option_denied"),
    (I, "find -PL .", DENY, "option_denied"),
    (I, "find /workspace/..", DENY, "path_outside_workspace"),
    (I, "find . -newerat /etc/passwd", ALLOW, "allowed"),  # t: the argument is a date, never a file
    (I, "find . -samefile ./x", ALLOW, "allowed"),
    (I, "find . -newerct /etc/passwd", ALLOW, "allowed"),  # t: a date
    (I, "find . -newercm /etc/passwd", DENY, "path_outside_workspace"),
    (I, "find . , /etc", DENY, "path_outside_workspace"),  # findutils: a leading , is a starting point, so is /etc
    # --- git ---
    (I, "git diff /etc/passwd /etc/shadow", DENY, "path_outside_workspace"),
    (I, "git diff -- /etc/passwd", DENY, "path_outside_workspace"),
    (I, "git diff ../a ../b", DENY, "path_outside_workspace"),
    (I, "git log -- ../", DENY, "path_outside_workspace"),
    (I, "git status ..", DENY, "path_outside_workspace"),
    (I, "git show /etc/passwd", DENY, "path_outside_workspace"),
    (I, "git ls-files ..", DENY, "path_outside_workspace"),
    (I, "git ls-files -X /etc/x", DENY, "path_outside_workspace"),
    (I, "git diff -O/etc/orderfile", DENY, "path_outside_workspace"),
    (I, "git diff --relative=../x", DENY, "path_outside_workspace"),
    # Unquoted, a shell expands ~ (at the start of a word, after = or :) to a home directory; quoted,
    # the program gets a path starting with ~, which the path rules refuse as well.
    (I, "git log -- '~/x'", DENY, "path_tilde"),
    (I, "git diff --no-index a b", DENY, "option_denied"),
    (I, "git diff --no-index -- a b", DENY, "option_denied"),
    (I, "git diff a b --no-index", DENY, "option_denied"),
    (I, "git ls-files --recurse-submodules", DENY, "option_denied"),
    (I, "git ls-files -o --exclude-per-directory=../../etc/passwd", DENY, "path_outside_workspace"),  # bypass
    (I, "git ls-files -o --exclude-per-directory=/etc/passwd", DENY, "path_outside_workspace"),  # bypass
    (I, "git ls-files -o --exclude-per-directory=.gitignore", ALLOW, "allowed"),
    (I, "git ls-files -X /etc/passwd", DENY, "path_outside_workspace"),
    (I, "git ls-files --exclude-from=/etc/passwd", DENY, "path_outside_workspace"),
    (I, "git ls-files --exclude-from /etc/passwd", DENY, "path_outside_workspace"),
    # git: global options, output files, external programs, files read by options
    (I, "git diff -O/etc/passwd", DENY, "path_outside_workspace"),
    (I, "git diff -O /etc/passwd", DENY, "path_outside_workspace"),
    (I, "git diff -pO/etc/passwd", DENY, "path_outside_workspace"),
    (I, "git diff --relative=/etc", DENY, "path_outside_workspace"),
    (I, "git log -- /etc/passwd", DENY, "path_outside_workspace"),
    (I, "git log -- ../x", DENY, "path_outside_workspace"),
    # git -L: the file is a repository path; git itself refuses one outside the repository
    (I, "git log -L 10,20:src/main.py", ALLOW, "allowed"),
    (I, "git log -L :main:src/main.py", ALLOW, "allowed"),
    (I, "git log -L1,2:/etc/passwd", ALLOW, "allowed"),  # git: "'/etc/passwd' is outside repository"
    (I, "git show HEAD:../x", ALLOW, "allowed"),  # a tree path (object database), never the file system
    # git: the listing and query subcommands stay read-only
    (I, "git grep --no-index foo", DENY, "option_denied"),
    (I, "git grep -f /etc/passwd", DENY, "path_outside_workspace"),
    (I, "git grep foo -- /etc", DENY, "path_outside_workspace"),
    (I, "git blame --contents /etc/passwd x", DENY, "path_outside_workspace"),
    (I, "git blame -S /etc/revs x", DENY, "path_outside_workspace"),
    (I, "git blame --ignore-revs-file=../x y", DENY, "path_outside_workspace"),
    (I, "git ls-tree -r HEAD -- /etc", DENY, "path_outside_workspace"),
    # --- rm ---
    (I, "rm /etc/passwd", DENY, "path_outside_workspace"),
    (I, "rm -rf /", DENY, "path_outside_workspace"),
    (I, "rm -rf ..", DENY, "path_outside_workspace"),
    (I, "rm ../x", DENY, "path_outside_workspace"),
    (I, "rm -rf /workspace/../", DENY, "path_outside_workspace"),
    # rm / mv: approval, never outside, never the root, never .git
    (I, "rm -rf //workspace", DENY, "path_outside_workspace"),
    # --- mv ---
    (I, "mv x /tmp/x", DENY, "path_outside_workspace"),
    (I, "mv -t /tmp x", DENY, "path_outside_workspace"),
    # rm / mv: approval, never outside, never the root, never .git
    (I, "mv -t/tmp a", DENY, "path_outside_workspace"),
    (I, "mv -ft.. a", DENY, "path_outside_workspace"),
    (I, "mv --target=/tmp a", DENY, "path_outside_workspace"),
    # --- pytest ---
    (X, "pytest /etc", DENY, "path_outside_workspace"),
    (X, "pytest ../x", DENY, "path_outside_workspace"),
    (X, "pytest ../x.py::t", DENY, "path_outside_workspace"),
    (X, "pytest x.py::t/../../../../etc", DENY, "path_outside_workspace"),
    (X, "pytest --rootdir=/", DENY, "path_outside_workspace"),
    (X, "pytest --rootdir /", DENY, "path_outside_workspace"),
    (X, "pytest --ignore=../x", DENY, "path_outside_workspace"),
    (X, "pytest --confcutdir=/", DENY, "path_outside_workspace"),
    (X, "pytest --deselect ../x.py::t", DENY, "path_outside_workspace"),
    (X, "python3 -m pytest /", DENY, "path_outside_workspace"),
    # pytest (argparse with fromfile_prefix_chars="@"): @FILE splices unchecked arguments in
    # pytest itself does not abbreviate; the policy reads abbreviations anyway (never towards fewer checks)
    (X, "pytest --root=/", DENY, "path_outside_workspace"),
    (X, "pytest --confcutdir=/etc", DENY, "path_outside_workspace"),
    (X, "pytest /etc/passwd::x", DENY, "path_outside_workspace"),
    (X, "pytest x.py::../../../etc", DENY, "path_outside_workspace"),
    (X, "pytest --deselect=/etc::x", DENY, "path_outside_workspace"),
    (X, "pytest --ignore=/etc", DENY, "path_outside_workspace"),
    (X, "pytest -- -x/../../etc", DENY, "path_outside_workspace"),
    (X, "pytest 'x.py::y/../../../../etc'", DENY, "path_outside_workspace"),
    # --- du ---
    # du, sort, uniq, diff: ordinary inspection, minus their writing and program-running options
    (I, "du -sh /", DENY, "path_outside_workspace"),
    (I, "du -L .", DENY, "option_denied"),
    (I, "du -D .", DENY, "option_denied"),
    (I, "du --files0-from=x", DENY, "option_denied"),
    (I, "du --files0=x", DENY, "option_denied"),
    (I, "du -X /etc/x .", DENY, "path_outside_workspace"),
    (I, "du --dereference-args x", DENY, "option_denied"),
    # --- sort ---
    # du, sort, uniq, diff: ordinary inspection, minus their writing and program-running options
    (I, "sort --files0-from=x", DENY, "option_denied"),
    (I, "sort --random-source=/dev/urandom x", DENY, "path_outside_workspace"),
    (I, "sort /etc/passwd", DENY, "path_outside_workspace"),
    (I, "sort -k1,1 -- /etc/passwd", DENY, "path_outside_workspace"),
    # --- uniq ---
    # du, sort, uniq, diff: ordinary inspection, minus their writing and program-running options
    (I, "uniq /etc/passwd", DENY, "path_outside_workspace"),
    # --- diff ---
    # du, sort, uniq, diff: ordinary inspection, minus their writing and program-running options
    (I, "diff a /etc/passwd", DENY, "path_outside_workspace"),
    (I, "diff --to-file=/etc/passwd a", DENY, "path_outside_workspace"),
    (I, "diff --from-file /etc/shadow a", DENY, "path_outside_workspace"),
    (I, "diff -X /etc/x a b", DENY, "path_outside_workspace"),
    (I, "diff -r / .", DENY, "path_outside_workspace"),
    # --- rg ---
    (I, "rg -L foo", DENY, "option_denied"),
    (I, "rg -f=/etc/passwd x", DENY, "option_denied"),
    (I, "rg --ignore-file=/etc/x foo", DENY, "option_denied"),
    (I, "rg --files /etc", DENY, "path_outside_workspace"),  # with --files every operand is a path
    (I, "rg --type-list /etc", DENY, "path_outside_workspace"),
    (I, "rg foo /etc", DENY, "path_outside_workspace"),
    (I, "rg -e foo /etc", DENY, "path_outside_workspace"),
    (I, "rg /etc", ALLOW, "allowed"),  # the pattern, not a path
    # --- tree ---
    # tree: a letter's value is always the next word
    (I, "tree -l", DENY, "option_denied"),
    (I, "tree --fromfile x", DENY, "option_denied"),
    (I, "tree -L 2 /etc", DENY, "path_outside_workspace"),
    # --- file ---
    (I, "file -f names.txt", DENY, "option_denied"),
    (I, "file /etc/passwd", DENY, "path_outside_workspace"),
    # --- sha256sum ---
    (I, "sha256sum -c SHA256SUMS", DENY, "option_denied"),
    (I, "sha256sum /etc/shadow", DENY, "path_outside_workspace"),
    # --- md5sum ---
    (I, "md5sum --check x", DENY, "option_denied"),
    # --- realpath ---
    (I, "realpath --relative-to=/etc x", DENY, "path_outside_workspace"),
    (I, "realpath ../x", DENY, "path_outside_workspace"),
    # --- basename ---
    (I, "basename /etc/passwd", ALLOW, "allowed"),  # text: basename never opens a file
    # --- dirname ---
    (I, "dirname /etc/passwd", ALLOW, "allowed"),
    # --- nl ---
    (I, "nl -ba /etc/passwd", DENY, "path_outside_workspace"),
    # --- tac ---
    (I, "tac /etc/passwd", DENY, "path_outside_workspace"),
    # --- cut ---
    (I, "cut -f1 /etc/passwd", DENY, "path_outside_workspace"),
]
