"""An allowed program made to run another: find -exec and -ok, git's pagers, external diff and
textconv drivers and gpg (a %G format), sort --compress-program, rg --pre and -z, diff -l, pytest
plugins, debuggers and --pyargs, make --eval and -n, and sed scripts (print-only: no w, r, e or s).
"""

from tests.support.policy_cases.codes import ALLOW, APPROVE, DENY, I, X  # noqa: F401

ROWS = [
    # --- find ---
    (I, "find . -execdir id +", DENY, "option_denied"),
    (I, "find . -ok rm", DENY, "option_denied"),
    (I, "find . -okdir rm", DENY, "option_denied"),
    (I, "find . -exec id", DENY, "option_denied"),
    (I, "find . -exec cat", DENY, "option_denied"),
    (I, "find . -execdir id", DENY, "option_denied"),
    (I, "find . -ok id", DENY, "option_denied"),
    (I, "find . -okdir id", DENY, "option_denied"),
    (I, "find . -true -exec id", DENY, "option_denied"),
    (I, "find . -not -okdir id", DENY, "option_denied"),
    # --- git ---
    (I, "git -p log", DENY, "option_denied"),
    (I, "git --paginate log", DENY, "option_denied"),
    (I, "git --help", DENY, "option_denied"),
    (I, "git -h", DENY, "option_denied"),
    (I, "git diff --ext-diff", DENY, "option_denied"),
    (I, "git diff --ext", DENY, "option_denied"),
    (I, "git diff --ext-d", DENY, "option_denied"),
    (I, "git diff --textconv", DENY, "option_denied"),
    (I, "git diff --textc", DENY, "option_denied"),
    (I, "git log --ext-diff -p", DENY, "option_denied"),
    (I, "git log --textconv -p", DENY, "option_denied"),
    (I, "git log --show-signature", DENY, "option_denied"),
    (I, "git log --show-sig", DENY, "option_denied"),
    (I, "git show --ext-diff", DENY, "option_denied"),
    (I, "git show --textconv HEAD", DENY, "option_denied"),
    (I, "git show --show-signature", DENY, "option_denied"),
    # git log/show: a %G format asks git to verify a signature, which runs gpg
    (I, "git log '--format=%G?'", DENY, "argument_denied"),  # bypass
    (I, "git log --format=%G?", DENY, "shell_metacharacter"),  # ? unquoted: a shell glob
    (I, "git log --pretty=format:%GS", DENY, "argument_denied"),  # bypass
    (I, "git log --pretty=tformat:%GK", DENY, "argument_denied"),  # bypass
    (I, "git show --format=%GG HEAD", DENY, "argument_denied"),  # bypass
    (I, "git log --format='%H %an %s'", ALLOW, "allowed"),
    (I, "git log --pretty=oneline", ALLOW, "allowed"),
    # git: global options, output files, external programs, files read by options
    (I, "git -Pp log", DENY, "option_denied"),
    (I, "git --help log", DENY, "option_denied"),
    (I, "git show --textconv HEAD:x", DENY, "option_denied"),
    # git -L: the file is a repository path; git itself refuses one outside the repository
    (I, "git log '--format=%x25G?'", ALLOW, "allowed"),  # %x25 prints a literal '%': no signature check
    (I, "git log '--pretty=%g?'", ALLOW, "allowed"),  # %g is the reflog, not gpg
    (I, "git show --textc HEAD", DENY, "option_denied"),
    # git: the listing and query subcommands stay read-only
    (I, "git tag -v v1", DENY, "option_denied"),
    (I, "git cat-file --textconv HEAD:x", DENY, "option_denied"),
    (I, "git cat-file --filters HEAD:x", DENY, "option_denied"),
    (I, "git grep --open-files-in-pager=sh foo", DENY, "option_denied"),
    (I, "git grep --textconv foo", DENY, "option_denied"),
    (I, "git blame --textconv x", DENY, "option_denied"),
    # --- pytest ---
    (X, "pytest --pastebin=all", DENY, "option_denied"),
    (X, "pytest --pdb", DENY, "option_denied"),
    (X, "pytest --trace", DENY, "option_denied"),
    (X, "pytest --pdbcls=x:y", DENY, "option_denied"),
    (X, "pytest --pyargs os", DENY, "option_denied"),
    (X, "pytest -W error::x.Y", DENY, "option_denied"),
    # pytest (argparse with fromfile_prefix_chars="@"): @FILE splices unchecked arguments in
    # pytest itself does not abbreviate; the policy reads abbreviations anyway (never towards fewer checks)
    (X, "pytest --pya os", DENY, "option_denied"),
    (X, "python3 -m pytest --pyargs os", DENY, "option_denied"),
    # --- make ---
    (X, "make -E x test", DENY, "option_denied"),
    (X, "make -n test", DENY, "option_denied"),
    (X, "make -Ex test", DENY, "option_denied"),
    # --- sort ---
    # du, sort, uniq, diff: ordinary inspection, minus their writing and program-running options
    (I, "sort --compress-program=sh x", DENY, "option_denied"),
    (I, "sort --comp=sh x", DENY, "option_denied"),
    # --- diff ---
    # du, sort, uniq, diff: ordinary inspection, minus their writing and program-running options
    (I, "diff -l a b", DENY, "option_denied"),
    (I, "diff --pag a b", DENY, "option_denied"),
    (I, "diff -ul a b", DENY, "option_denied"),
    # --- sed ---
    (I, "sed -n p x", ALLOW, "allowed"),  # print-only script (policy/scripts.py)
    (I, "sed -n 'w /tmp/x' x", DENY, "argument_denied"),
    # sed: print-only scripts
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
    # the execution policy shares every one of these rules
    (X, "sed -n 'w x' y", DENY, "argument_denied"),
    # --- rg ---
    (I, "rg --pre cat foo", DENY, "option_denied"),
    (I, "rg --pre=sh foo", DENY, "option_denied"),
    (I, "rg --pre-glob '*' foo", DENY, "option_denied"),
    (I, "rg -z foo", DENY, "option_denied"),
    (I, "rg --search-zip foo", DENY, "option_denied"),
    # the execution policy shares every one of these rules
    (X, "rg --pre cat foo", DENY, "option_denied"),
    # --- file ---
    (I, "file -z x.gz", DENY, "option_denied"),
]
