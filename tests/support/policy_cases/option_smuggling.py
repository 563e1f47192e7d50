"""How words are read as options and values: abbreviations, unknown and ambiguous options,
bad or missing values, an option whose value swallows the next word (`git log --skip -O
--output=/tmp/x`), path words that start with '-', `--` and `-`, obsolete forms, pytest's @FILE
arguments and its -p plugin pre-parse.
"""

from tests.support.policy_cases.codes import ALLOW, APPROVE, DENY, I, X  # noqa: F401

ROWS = [
    # --- find ---
    (I, "find . -maxdepth x", DENY, "option_bad_value"),
    (I, "find . -regextype perl", DENY, "option_bad_value"),
    (I, "find . -name", DENY, "option_missing_argument"),
    (I, "find . -newer", DENY, "option_missing_argument"),
    (I, "find . -type", DENY, "option_missing_argument"),
    (I, "find . -maxdepth", DENY, "option_missing_argument"),
    (I, "find -D tree .", DENY, "option_denied"),
    (I, "find -O3 .", DENY, "option_denied"),
    (I, "find . -nam x", DENY, "option_unknown"),
    (I, "find . -exe x", DENY, "option_unknown"),
    (I, "find . -del", DENY, "option_unknown"),
    (I, "find . --exec x", DENY, "option_unknown"),
    (I, "find . --delete", DENY, "option_unknown"),
    (I, "find . -name x /etc", DENY, "option_unknown"),
    (I, "find . -name x extra", DENY, "option_unknown"),
    (I, "find . -Exec x", DENY, "option_unknown"),
    (I, "find . -EXEC x", DENY, "option_unknown"),
    (I, "find . -print -x", DENY, "option_unknown"),
    (I, "find . -name x -fprin out", DENY, "option_unknown"),
    (I, "find -Q .", DENY, "option_unknown"),
    (I, "find . -newerXY x", DENY, "option_unknown"),
    (I, "find . -newerxt x", DENY, "option_unknown"),
    (I, "find . -newermB /etc/passwd", DENY, "option_unknown"),  # birth-time forms: findutils refuses them here
    (I, "find -Dexec .", DENY, "option_denied"),
    (I, "find -- /etc", DENY, "option_unknown"),
    (I, "find - -name x", ALLOW, "allowed"),  # findutils reads a lone - as a file name (a starting point)
    (I, "find . -name -exec", ALLOW, "allowed"),  # -exec is -name's pattern here, as for find
    (I, "find -- .", DENY, "option_unknown"),  # find accepts `--` here; refused (fail closed)
    (I, "find -P -P .", ALLOW, "allowed"),
    (I, "find . -newer ./-exec", ALLOW, "allowed"),
    (I, "find . '(' /etc ')'", DENY, "option_unknown"),
    (I, "find . -printf -fprint", ALLOW, "allowed"),  # -fprint is -printf's format here, as for find
    (I, "find -O0 .", DENY, "option_denied"),
    (I, "find -", ALLOW, "allowed"),  # findutils reads a lone - as a file name
    # --- git ---
    (I, "git diff --st", DENY, "option_ambiguous"),
    (I, "git diff --co", DENY, "option_ambiguous"),
    (I, "git status --porcelain=v9", DENY, "option_bad_value"),
    (I, "git diff --color=sh", DENY, "option_bad_value"),
    (I, "git log --decorate=x", DENY, "option_bad_value"),
    (I, "git diff -Uabc", DENY, "option_bad_value"),
    (I, "git log --max-count=x", DENY, "option_bad_value"),
    (I, "git --no-p log", DENY, "option_unknown"),
    (I, "git --work log", DENY, "option_unknown"),
    (I, "git --exec log", DENY, "option_unknown"),
    (I, "git --git log", DENY, "option_unknown"),
    (I, "git --conf x log", DENY, "option_unknown"),
    (I, "git --super log", DENY, "option_unknown"),
    (I, "git --version", DENY, "option_unknown"),
    (I, "git -x log", DENY, "option_unknown"),
    (I, "git diff --frobnicate", DENY, "option_unknown"),
    (I, "git diff -Q", DENY, "option_unknown"),
    (I, "git log --exec=x", DENY, "option_unknown"),
    (I, "git status --porcelain --no-such", DENY, "option_unknown"),
    (I, "git show --notes-ref=x", DENY, "option_unknown"),
    (I, "git log --glob=x", DENY, "option_unknown"),
    (I, "git diff --out=x", DENY, "option_ambiguous"),
    (I, "git log --no-", DENY, "option_ambiguous"),
    (I, "git diff --no-in a b", DENY, "option_ambiguous"),
    (I, "git diff --outp=x", DENY, "option_ambiguous"),
    # git: global options, output files, external programs, files read by options
    (I, "git --exec-pa log", DENY, "option_unknown"),
    (I, "git --attr-source=HEAD diff", DENY, "option_unknown"),
    (I, "git --glob-pathspecs log", DENY, "option_unknown"),
    (I, "git log --help", DENY, "option_unknown"),
    (I, "git status --help", DENY, "option_unknown"),
    (I, "git log --out=/tmp/x", DENY, "option_ambiguous"),
    (I, "git diff --outp /tmp/x", DENY, "option_ambiguous"),
    (I, "git diff --no-i a b", DENY, "option_ambiguous"),
    (I, "git log --stdin", DENY, "option_unknown"),
    (I, "git log --pathspec-from-file=/etc/x", DENY, "option_unknown"),
    (I, "git status --pathspec-from-file=x", DENY, "option_unknown"),
    (I, "git log --end-of-options HEAD", DENY, "option_unknown"),
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
    (I, "git log --show-notes", DENY, "option_unknown"),
    (I, "git log --ignore-missing", DENY, "option_unknown"),
    (I, "git log -p --ext HEAD", DENY, "option_ambiguous"),  # --ext-diff or --extended-regexp
    (I, "git diff -O -- /etc/passwd", DENY, "path_option_like"),
    (I, "git log -- -rf", ALLOW, "allowed"),
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
    (I, "git diff -O -- x", DENY, "path_option_like"),
    (I, "git diff -O ./-x", ALLOW, "allowed"),
    # git: the listing and query subcommands stay read-only
    (I, "git rev-parse --git-path hooks", DENY, "option_unknown"),
    (I, "git rev-parse --resolve-git-dir /etc", DENY, "option_unknown"),
    (I, "git rev-parse --parseopt", DENY, "option_unknown"),
    (I, "git rev-parse --abbrev HEAD", DENY, "option_unknown"),  # rev-parse matches exactly
    # git: the listing and query subcommands stay read-only
    # the execution policy shares every one of these rules
    (X, "git log --skip -O --output=/tmp/x -p", DENY, "option_bad_value"),  # bypass
    (X, "git show -S -O --output=.git/config", DENY, "option_denied"),  # bypass
    # --- ls ---
    (I, "ls --sort=exec", DENY, "option_bad_value"),
    (I, "ls --color=sh", DENY, "option_bad_value"),
    (I, "ls -w x", DENY, "option_bad_value"),
    (I, "ls --format=x", DENY, "option_bad_value"),
    (I, "ls --width", DENY, "option_missing_argument"),
    (I, "ls -w", DENY, "option_missing_argument"),
    (I, "ls --sort", DENY, "option_missing_argument"),
    (I, "ls --all=x", DENY, "option_unexpected_argument"),
    (I, "ls --co", DENY, "option_ambiguous"),
    (I, "ls --s", DENY, "option_ambiguous"),
    (I, "ls --deref", DENY, "option_ambiguous"),
    (I, "ls --frobnicate", DENY, "option_unknown"),
    (I, "ls -y", DENY, "option_unknown"),
    (I, "ls --color-scheme", DENY, "option_unknown"),
    (I, "ls ---all", DENY, "option_unknown"),
    (I, "ls --=x", DENY, "option_unknown"),
    (I, "ls -Falways", DENY, "option_bad_value"),  # -F takes no argument (only --classify does)
    (I, "ls --dired", DENY, "option_denied"),
    (I, "ls -", ALLOW, "allowed"),  # standard input is /dev/null in the sandbox
    (I, "ls -- -- -x", ALLOW, "allowed"),
    (I, "ls -l-a", DENY, "option_unknown"),
    (I, "ls --h", DENY, "option_ambiguous"),
    (I, "ls ./-rf", ALLOW, "allowed"),
    # a path argument that starts with '-' (a program may read it as an option)
    (I, "ls -- -x", ALLOW, "allowed"),  # an operand after --: the program sees the -- too
    # --- head ---
    (I, "head -n x file", DENY, "option_bad_value"),
    (I, "head -c ../x", DENY, "option_bad_value"),
    (I, "head -n", DENY, "option_missing_argument"),
    (I, "head --follow x", DENY, "option_unknown"),
    (I, "head -c /etc/passwd", DENY, "option_bad_value"),
    (I, "head ---presume-input-pipe x", DENY, "option_unknown"),
    # --- grep ---
    (I, "grep -m x foo .", DENY, "option_bad_value"),
    (I, "grep --binary-files=exec x .", DENY, "option_bad_value"),
    (I, "grep -D write x .", DENY, "option_bad_value"),
    (I, "grep -A /etc/passwd x", DENY, "option_bad_value"),
    (I, "grep -e", DENY, "option_missing_argument"),
    (I, "grep -f", DENY, "option_missing_argument"),
    (I, "grep --file", DENY, "option_missing_argument"),
    (I, "grep --count=x y", DENY, "option_unexpected_argument"),
    (I, "grep --no x .", DENY, "option_ambiguous"),
    (I, "grep --fil=/etc/passwd .", DENY, "option_ambiguous"),
    (I, "grep --devices-x=1 x", DENY, "option_unknown"),
    (I, "grep -O x", DENY, "option_unknown"),
    (I, "grep --fi=/etc/passwd .", DENY, "option_ambiguous"),
    (I, "grep -X grep foo x", DENY, "option_unknown"),
    (I, "grep --color= foo x", DENY, "option_bad_value"),
    (I, "grep --=x foo", DENY, "option_unknown"),
    (I, "grep -f - x", ALLOW, "allowed"),
    # a path argument that starts with '-' (a program may read it as an option)
    (I, "grep -f -x foo .", DENY, "path_option_like"),
    (I, "grep --file=-e foo .", DENY, "path_option_like"),
    (I, "grep -f - foo", ALLOW, "allowed"),  # standard input
    # --- cat ---
    (I, "cat --number=5 x", DENY, "option_unexpected_argument"),
    (I, "cat --s x", DENY, "option_ambiguous"),
    (I, "cat -x", DENY, "option_unknown"),
    (I, "cat --number-lines", DENY, "option_unknown"),
    # --- rm ---
    (I, "rm --force=x a", DENY, "option_unexpected_argument"),
    # --- tail ---
    (I, "tail --s x", DENY, "option_ambiguous"),
    # --- wc ---
    (I, "wc --xyz", DENY, "option_unknown"),
    # --- pytest ---
    (X, "pytest --frobnicate", DENY, "option_unknown"),
    (X, "pytest -Z", DENY, "option_unknown"),
    (X, "pytest -p evil", DENY, "option_denied"),
    (X, "pytest -pevil", DENY, "option_denied"),
    (X, "pytest -p no:cacheprovider", DENY, "option_denied"),
    (X, "python3 -m pytest -p evil", DENY, "option_denied"),
    # pytest (argparse with fromfile_prefix_chars="@"): @FILE splices unchecked arguments in
    (X, "pytest @/etc/args", DENY, "argument_denied"),  # bypass: reads a file outside the workspace
    (X, "pytest @args.txt", DENY, "argument_denied"),  # bypass: arguments the policy never saw (-p, -o ...)
    (X, "python3 -m pytest @args", DENY, "argument_denied"),  # bypass
    (X, "pytest -k @x", DENY, "argument_denied"),  # bypass: argparse expands every word, option values too
    (X, "pytest -- @x", DENY, "argument_denied"),  # bypass
    (X, "pytest --deselect @x", DENY, "argument_denied"),  # bypass
    # pytest (argparse with fromfile_prefix_chars="@"): @FILE splices unchecked arguments in
    # pytest loads -pNAME plugins by scanning every word, before (and whatever) argparse decides
    (X, "pytest -- -pevilplugin", DENY, "argument_denied"),  # bypass: an operand to the policy, a plugin to pytest
    (X, "pytest -k -pevilplugin", DENY, "argument_denied"),  # bypass (pytest 7 preparses before argparse)
    (X, "pytest --deselect -pantigravity", DENY, "path_option_like"),  # bypass (now refused earlier: a node id starting with '-')
    (X, "python3 -m pytest -- -p x", DENY, "argument_denied"),  # bypass
    (X, "pytest -k pyfoo --pdb", DENY, "option_denied"),
    (X, "pytest tests/-pfoo.py", ALLOW, "allowed"),
    # pytest (argparse with fromfile_prefix_chars="@"): @FILE splices unchecked arguments in
    # pytest itself does not abbreviate; the policy reads abbreviations anyway (never towards fewer checks)
    (X, "pytest --collect", ALLOW, "allowed"),
    (X, "pytest --co -q", ALLOW, "allowed"),
    (X, "pytest -pno:cacheprovider", DENY, "option_denied"),
    (X, "pytest -p plugin", DENY, "option_denied"),
    (X, "pytest -xp plugin", DENY, "option_denied"),
    (X, "pytest '--rootdir /'", DENY, "option_unknown"),
    (X, "pytest -sp foo", DENY, "option_denied"),
    (X, "pytest -rp", ALLOW, "allowed"),  # -r's characters; pytest only preparses words starting -p
    (X, "pytest --rootdir -x/../../etc", DENY, "path_option_like"),
    # --- make ---
    (X, "make --frobnicate test", DENY, "option_unknown"),
    (X, "make -B test", DENY, "option_unknown"),
    # make (execution only): only `make test`
    (X, "make -- test", ALLOW, "allowed"),
    (X, "make -ktest", DENY, "option_denied"),
    (X, "make -p test", DENY, "option_unknown"),
    (X, "make --debug test", DENY, "option_unknown"),
    (X, "make -l test", DENY, "option_unknown"),
    (X, "make -s -- test", ALLOW, "allowed"),
    # --- sort ---
    # du, sort, uniq, diff: ordinary inspection, minus their writing and program-running options
    (I, "sort +1 -2 x", DENY, "option_unknown"),
    # --- mv ---
    # rm / mv: approval, never outside, never the root, never .git
    (I, "mv --update=all a b", DENY, "option_unexpected_argument"),
    (I, "mv --exchange a b", DENY, "option_unknown"),
    # --- printf ---
    (I, "printf -- '%s' x", ALLOW, "allowed"),
    (I, "printf -v x y", DENY, "option_unknown"),  # bash's builtin option; /usr/bin/printf has none
    (I, "printf", DENY, "operand_count"),
    # --- echo ---
    (I, "echo hello -n", ALLOW, "allowed"),  # -n after a word is text, as echo reads it
    (I, "echo -x", DENY, "option_unknown"),
    # --- rg ---
    (I, "rg --pr cat foo", DENY, "option_unknown"),  # ripgrep never abbreviates
    (I, "rg --hidd foo", DENY, "option_unknown"),
    # --- tree ---
    # tree: a letter's value is always the next word
    (I, "tree -LP 2 '*.py'", ALLOW, "allowed"),
    (I, "tree -LP 2 /etc", ALLOW, "allowed"),  # /etc is -P's pattern (tree reads it so), not a directory
    (I, "tree -PL 2 /etc", DENY, "option_bad_value"),  # -P takes 2, -L takes /etc: not a number
    (I, "tree -L2", DENY, "option_missing_argument"),  # tree: -L takes the next word (none), 2 is another letter
    (I, "tree --noreport=x", DENY, "option_unexpected_argument"),
    (I, "tree --norep", DENY, "option_unknown"),  # tree never abbreviates
]
