"""Writing, deleting and moving: rm and mv wait for approval and never touch the workspace root or
.git; options that write a file (find -delete and -fprint, sort -o, git --output and --remerge-diff,
tree -o, pytest --basetemp and --junitxml); uniq's second operand; git branch and tag creation.
"""

from tests.support.policy_cases.codes import ALLOW, APPROVE, DENY, I, X  # noqa: F401

ROWS = [
    # --- find ---
    (I, "find . -delete", DENY, "option_denied"),
    (I, "find . -name x -delete", DENY, "option_denied"),
    (I, "find . -fprint out", DENY, "option_denied"),
    (I, "find . -fprint0 out", DENY, "option_denied"),
    (I, "find . -fprintf out x", DENY, "option_denied"),
    (I, "find . -fls out", DENY, "option_denied"),
    (I, "find . -fls x", DENY, "option_denied"),
    (I, "find . -fprint x", DENY, "option_denied"),
    (I, "find . -fprint0 x", DENY, "option_denied"),
    (I, "find . -fprintf x %p", DENY, "option_denied"),
    (I, "find . -name x -o -delete", DENY, "option_denied"),
    (I, "find . , -fprint x", DENY, "option_denied"),
    # --- git ---
    (I, "git diff --output=/tmp/x", DENY, "option_denied"),
    (I, "git diff --output x", DENY, "option_denied"),
    (I, "git log --output=x", DENY, "option_denied"),
    (I, "git show --output=x", DENY, "option_denied"),
    # git: global options, output files, external programs, files read by options
    (I, "git log --output=/tmp/x", DENY, "option_denied"),
    # --remerge-diff (and --diff-merges=remerge/r) mkdir a temporary object directory in .git/objects
    (I, "git log --remerge-diff", DENY, "option_denied"),  # bypass: a write under inspect-only
    (I, "git show --remerge HEAD", DENY, "option_denied"),  # bypass
    (I, "git log -p --diff-merges=r", DENY, "option_bad_value"),  # bypass
    (I, "git log -p --diff-merges=remerge", DENY, "option_bad_value"),  # bypass
    (I, "git log -p --diff-merges=cc", ALLOW, "allowed"),
    # git: the listing and query subcommands stay read-only
    (I, "git branch x", DENY, "operand_not_allowed"),  # creates a branch
    (I, "git branch -d main", DENY, "option_denied"),
    (I, "git branch -m a b", DENY, "option_denied"),
    (I, "git branch --set-upstream-to=x", DENY, "option_denied"),
    (I, "git branch -v x", DENY, "operand_not_allowed"),
    (I, "git tag v9", DENY, "operand_not_allowed"),  # creates a tag
    (I, "git tag -d v1", DENY, "option_denied"),
    (I, "git tag -a -m x v9", DENY, "option_denied"),
    (I, "git describe --dirty", DENY, "option_denied"),  # refreshes the index
    (I, "git describe --broken", DENY, "option_denied"),
    # --- rm ---
    (I, "rm", DENY, "operand_count"),
    (I, "rm -rf", DENY, "operand_count"),
    (I, "rm -i x", DENY, "option_denied"),
    (I, "rm -I x", DENY, "option_denied"),
    (I, "rm --interactive=always x", DENY, "option_denied"),
    (I, "rm --no-preserve-root x", DENY, "option_denied"),
    (I, "rm --no-p x", DENY, "option_denied"),
    (I, "rm -rf .git", DENY, "path_protected"),
    (I, "rm .git/config", DENY, "path_protected"),
    (I, "rm -rf ./.git/hooks", DENY, "path_protected"),
    (I, "rm /workspace/.git/HEAD", DENY, "path_protected"),
    (I, "rm -r src/../.git", DENY, "path_protected"),
    (I, "rm delete-me.txt", APPROVE, "approval_required"),
    (I, "rm -f delete-me.txt", APPROVE, "approval_required"),
    (I, "rm -rf build", APPROVE, "approval_required"),
    (I, "rm -- -weird", APPROVE, "approval_required"),
    (I, "rm ./a /workspace/b", APPROVE, "approval_required"),
    (I, "rm 'src/*.pyc'", APPROVE, "approval_required"),
    (I, "rm -r src/../build", APPROVE, "approval_required"),
    (I, "rm -rf .", DENY, "path_workspace_root"),
    (I, "rm -rf ./", DENY, "path_workspace_root"),
    (I, "rm -rf /workspace", DENY, "path_workspace_root"),
    (I, "rm -rf /workspace/", DENY, "path_workspace_root"),
    (I, "rm -r src/..", DENY, "path_workspace_root"),
    (X, "rm delete-me.txt", APPROVE, "approval_required"),
    # rm / mv: approval, never outside, never the root, never .git
    (I, "rm -rf src/..", DENY, "path_workspace_root"),
    (I, "rm -rf .git/", DENY, "path_protected"),
    (I, "rm -rf x/../.git/hooks", DENY, "path_protected"),
    (I, "rm --no-pres -rf x", DENY, "option_denied"),
    (I, "rm --interactive=never x", DENY, "option_denied"),
    (I, "rm -- -rf", APPROVE, "approval_required"),
    (I, "rm ./-rf", APPROVE, "approval_required"),
    (I, "rm -rf '*'", APPROVE, "approval_required"),  # no shell: a file literally named *
    (I, "rm -rf .git/..", DENY, "path_workspace_root"),
    # --- mv ---
    (I, "mv", DENY, "operand_count"),
    (I, "mv -b a b", DENY, "option_denied"),
    (I, "mv --backup a b", DENY, "option_denied"),
    (I, "mv -S x a b", DENY, "option_denied"),
    (I, "mv .git x", DENY, "path_protected"),
    (I, "mv x .git/hooks/pre-commit", DENY, "path_protected"),
    (I, "mv -t .git x", DENY, "path_protected"),
    (I, "mv a b", APPROVE, "approval_required"),
    (I, "mv -f a b/", APPROVE, "approval_required"),
    (I, "mv -t dest a b", APPROVE, "approval_required"),
    (I, "mv . x", DENY, "path_workspace_root"),
    # the directory moved into may be the workspace itself (mv FILE .); what is moved may not
    (I, "mv x .", APPROVE, "approval_required"),
    (I, "mv -t . x", APPROVE, "approval_required"),
    (I, "mv --target-directory=. x", APPROVE, "approval_required"),
    (I, "mv a b /workspace", APPROVE, "approval_required"),
    (I, "mv . .", DENY, "path_workspace_root"),
    (I, "mv -t x .", DENY, "path_workspace_root"),
    (I, "mv -T x .", DENY, "path_workspace_root"),  # -T: the last operand is the new name, not a directory
    (I, "mv --no-target-directory x .", DENY, "path_workspace_root"),
    (I, "mv x src/..", APPROVE, "approval_required"),
    (I, "mv x ..", DENY, "path_outside_workspace"),
    (I, "mv -t .. x", DENY, "path_outside_workspace"),
    (I, "mv x .git", DENY, "path_protected"),
    (I, "mv /workspace x", DENY, "path_workspace_root"),
    (X, "mv a b", APPROVE, "approval_required"),
    # rm / mv: approval, never outside, never the root, never .git
    (I, "mv a .git/", DENY, "path_protected"),
    (I, "mv --backup=t a b", DENY, "option_denied"),
    (I, "mv -- -x y", APPROVE, "approval_required"),
    # --- pytest ---
    (X, "pytest --basetemp=.", DENY, "option_denied"),
    (X, "pytest --basetemp /workspace", DENY, "option_denied"),
    (X, "pytest --base=.", DENY, "option_denied"),
    (X, "pytest --junitxml=src/main.py", DENY, "option_denied"),
    (X, "pytest --junit=x", DENY, "option_denied"),
    (X, "pytest --log-file=x", DENY, "option_denied"),
    (X, "pytest --debug", DENY, "option_denied"),
    # pytest (argparse with fromfile_prefix_chars="@"): @FILE splices unchecked arguments in
    # pytest itself does not abbreviate; the policy reads abbreviations anyway (never towards fewer checks)
    (X, "pytest --basetemp=/tmp/x", DENY, "option_denied"),
    (X, "pytest --junitxml=/tmp/x", DENY, "option_denied"),
    (X, "pytest --log-file=/tmp/x", DENY, "option_denied"),
    (X, "pytest --debug=/tmp/x", DENY, "option_denied"),
    # --- sort ---
    # du, sort, uniq, diff: ordinary inspection, minus their writing and program-running options
    (I, "sort -o out.txt README.md", DENY, "option_denied"),
    (I, "sort README.md -o out.txt", DENY, "option_denied"),
    (I, "sort -uo out.txt x", DENY, "option_denied"),
    (I, "sort --output=out x", DENY, "option_denied"),
    (I, "sort --outp=out x", DENY, "option_denied"),
    (I, "sort -T /tmp x", DENY, "option_denied"),
    (I, "sort --temporary-directory=. x", DENY, "option_denied"),
    (I, "sort --temp=/tmp x", DENY, "option_denied"),
    # --- uniq ---
    # du, sort, uniq, diff: ordinary inspection, minus their writing and program-running options
    (I, "uniq in.txt out.txt", DENY, "operand_count"),  # uniq writes its second operand
    (I, "uniq -- in.txt out.txt", DENY, "operand_count"),
    (I, "uniq in.txt -c out.txt", DENY, "operand_count"),
    (I, "uniq +5 in.txt", DENY, "operand_count"),
    (I, "uniq -c -- x /etc/y", DENY, "operand_count"),
    (I, "uniq a +3 b", DENY, "operand_count"),  # GNU uniq reads +3 as an option: b would be written
    # --- tree ---
    # tree: a letter's value is always the next word
    (I, "tree -o out.txt", DENY, "option_denied"),
    (I, "tree -R -H . -o x", DENY, "option_denied"),
    # --- file ---
    (I, "file -p x", DENY, "option_denied"),
]
