"""What a value means to the program: the small languages inside option values (policy v3, issue 19).

Each class is written out in several spellings, every option and command that takes the language:

    signature placeholders   %G? %GG %GS %GK %GF %GP %GT, bare and with each modifier (%+G? %-GS % GK),
                             in --format, --pretty, format:/tformat:, shortlog --group=format:, in
                             log, show, reflog, stash list, rev-list, diff-tree: git runs gpg, gpgsm or
                             ssh-keygen, chosen by the commit's own signature header
    program-running atoms    %(describe) in pretty formats; in %(atom) formats (for-each-ref, branch,
                             tag, ls-files, ls-tree) every atom but the ones that print what the
                             repository holds (describe and signature run programs in later gits)
    huge widths              %<(N), %>(N), %w(N), %(align:N) with N of four digits or more, and the
                             same in every %-directive format: find -printf, stat --printf, strftime in
                             git --date=format: and --time-style, diff's line formats (`%99999999p`)
    dates with TZ=           find -newermt/-newerat/-newerct and git --since/--until: GNU
                             parse_datetime opens the file TZ="..." names, anywhere
    revisions like options   --contains/--merged/--points-at and revision operands starting with '-'

and the harmless spellings beside them stay allowed (%% escapes, %x25, %g? for the reflog, %(trailers)).
Rows marked `# bypass` were allowed by policy v2 (red-team round of issue 19, git 2.39, findutils 4.9).
"""

from tests.support.policy_cases.codes import ALLOW, APPROVE, DENY, I, X  # noqa: F401

#: every signature placeholder git 2.39's pretty.c knows, and one it does not (git checks on %G alone)
SIGNATURE_PLACEHOLDERS = ["%G?", "%GG", "%GS", "%GK", "%GF", "%GP", "%GT", "%Gx"]
MODIFIERS = ["", "+", "-", " "]
#: (command prefix, how the format is given) for every place a pretty format is taken
PRETTY_SLOTS = [
    ("git log", "--format={}"),
    ("git log", "--pretty=format:{}"),
    ("git log", "--pretty=tformat:{}"),
    ("git show", "--format={}"),
    ("git show", "--pretty={}"),
    ("git reflog", "--format={}"),
    ("git reflog show", "--pretty=format:{}"),
    ("git stash list", "--format={}"),
    ("git rev-list HEAD", "--format={}"),
    ("git rev-list HEAD", "--pretty=format:{}"),
    ("git diff-tree -r HEAD", "--format={}"),
    ("git shortlog HEAD", "--group=format:{}"),
    ("git log -g", "--format={}"),
]


def _quoted(word: str) -> str:
    return "'" + word + "'"


def _signature_rows() -> list:
    rows = []
    for index, (prefix, slot) in enumerate(PRETTY_SLOTS):
        for modifier in MODIFIERS:
            # every slot with every modifier, the placeholders taken in turn so that each appears often
            placeholder = SIGNATURE_PLACEHOLDERS[(index + len(modifier) + MODIFIERS.index(modifier)) % len(SIGNATURE_PLACEHOLDERS)]
            word = slot.format("%" + modifier + placeholder[1:])
            rows.append((I, f"{prefix} {_quoted(word)}", DENY, "argument_denied"))  # bypass (modifiers, new slots)
    for placeholder in SIGNATURE_PLACEHOLDERS:
        rows.append((I, f"git log {_quoted('--format=%h ' + placeholder + ' %s')}", DENY, "argument_denied"))
    # a separate word, and a format after %% (the %% is a literal, the %G after it is not)
    rows += [
        # --format and --pretty take a value only attached: a separate word is a revision, to git too
        (I, "git log --format '%GS'", ALLOW, "allowed"),
        (I, "git log --pretty '%+G?'", ALLOW, "allowed"),
        (I, "git shortlog --group 'format:%GK' HEAD", DENY, "argument_denied"),  # bypass: no rule at all before
        (I, "git log '--format=%%%G?'", DENY, "argument_denied"),
        (X, "git log '--format=%-G?'", DENY, "argument_denied"),  # bypass
        (X, "git shortlog '--group=format:% GS' HEAD", DENY, "argument_denied"),  # bypass
    ]
    return rows


ROWS = _signature_rows() + [
    # %(describe) runs git describe; only %(trailers) of the %(...) placeholders is allowed
    (I, "git log '--format=%(describe)'", DENY, "argument_denied"),
    (I, "git log '--format=%+(describe:tags)'", DENY, "argument_denied"),
    (I, "git show '--pretty=format:%(describe:match=v*)' HEAD", DENY, "argument_denied"),
    (I, "git shortlog '--group=format:%(describe)' HEAD", DENY, "argument_denied"),
    (I, "git log '--format=%(trailers:key=Signed-off-by)'", ALLOW, "allowed"),
    # widths are output sizes: three digits at most
    (I, "git log '--format=%<(99999)%s'", DENY, "argument_denied"),
    (I, "git log '--format=%>>(123456)%s'", DENY, "argument_denied"),
    (I, "git log '--format=%w(100000,1,2)%s'", DENY, "argument_denied"),
    (I, "git log '--format=%<(40,trunc)%s'", ALLOW, "allowed"),
    (I, "git log '--format=%w(72)%B'", ALLOW, "allowed"),
    # harmless spellings around the signature placeholders
    (I, "git log '--format=%%G? %h'", ALLOW, "allowed"),  # %% is a literal %: prints %G?
    (I, "git log '--format=%x25GS'", ALLOW, "allowed"),  # %x25 prints %: no signature check
    (I, "git log '--format=%g? %gs'", ALLOW, "allowed"),  # %g is the reflog, not gpg
    # a name the repository's config could define (pretty.sig = %G?, format.pretty = %+G?): the preparation
    # step cuts both, and the oracle runs these against a fixture whose config defines them so
    (I, "git log --pretty=sig -3", ALLOW, "allowed"),
    (I, "git log -3", ALLOW, "allowed"),
    (I, "git stash list", ALLOW, "allowed"),  # stash.showPatch and format.pretty in the fixture, cut alike
    (I, "git log --pretty=fuller", ALLOW, "allowed"),
    (I, "git log --pretty=raw -1", ALLOW, "allowed"),  # prints the signature header, verifies nothing
    (I, "git shortlog --group=trailer:co-authored-by HEAD", ALLOW, "allowed"),
    (I, "git shortlog '--group=format:%an <%ae>' HEAD", ALLOW, "allowed"),
    # %(atom) formats: the atoms that print refs and objects only
    (I, "git for-each-ref '--format=%(describe)'", DENY, "argument_denied"),
    (I, "git for-each-ref '--format=%(signature)'", DENY, "argument_denied"),
    (I, "git for-each-ref '--format=%(signature:key)'", DENY, "argument_denied"),
    (I, "git branch '--format=%(describe:tags)'", DENY, "argument_denied"),
    (I, "git tag '--format=%(signature:grade)'", DENY, "argument_denied"),
    (I, "git tag -l '--format=%(*describe)'", DENY, "argument_denied"),
    (I, "git ls-files '--format=%(describe)'", DENY, "argument_denied"),
    (I, "git ls-tree '--format=%(signature)' HEAD", DENY, "argument_denied"),
    (I, "git for-each-ref '--format=%(align:99999)%(refname)%(end)'", DENY, "argument_denied"),
    (I, "git for-each-ref '--format=%(refname'", DENY, "argument_denied"),
    (I, "git for-each-ref '--format=%(refname:short) %(objectname:short) %(subject)'", ALLOW, "allowed"),
    (I, "git for-each-ref '--format=%(if)%(upstream)%(then)%(upstream:short)%(end)' refs/heads", ALLOW, "allowed"),
    (I, "git for-each-ref '--format=%%(describe) %(refname)'", ALLOW, "allowed"),  # %%( is a literal %(
    (I, "git branch '--format=%(HEAD) %(refname:short) %(committerdate:relative)'", ALLOW, "allowed"),
    (I, "git tag -l '--format=%(*objectname) %(taggerdate:short)'", ALLOW, "allowed"),
    (I, "git ls-files '--format=%(objectmode) %(path)'", ALLOW, "allowed"),
    (I, "git ls-tree '--format=%(objectsize:padded) %(path)' HEAD", ALLOW, "allowed"),
    # %-directives padded to a width: one word prints 100 MB (find -printf, stat, strftime, diff formats)
    (I, "find . -maxdepth 0 -printf '%99999999p'", DENY, "argument_denied"),  # bypass: 100 MB of output
    (I, "find . -printf '%-123456s\\n'", DENY, "argument_denied"),  # bypass
    (I, "stat -c '%99999999n' README.md", DENY, "argument_denied"),  # bypass
    (I, "stat --printf='%.99999n' README.md", DENY, "argument_denied"),  # bypass
    (I, "git log -1 --date=format:%99999999Y --format=%ad", DENY, "argument_denied"),  # bypass: 100 MB
    (I, "git blame --date 'format:%_99999Y' README.md", DENY, "argument_denied"),  # bypass
    (I, "ls -l --time-style=+%99999Y", DENY, "argument_denied"),
    (I, "tree -D --timefmt '%99999Y'", DENY, "argument_denied"),
    (I, "diff --line-format='%99999L' a b", DENY, "argument_denied"),
    (I, "find . -printf '%-40p %s\\n'", ALLOW, "allowed"),
    (I, "stat -c '%n %s' README.md", ALLOW, "allowed"),
    (I, "git log --date=format:'%Y-%m-%d' --oneline", ALLOW, "allowed"),
    (I, "ls -l --time-style=+%Y-%m-%d", ALLOW, "allowed"),
    # dates: TZ="FILE" makes GNU parse_datetime open FILE (findutils); git ignores it, refused alike
    (I, "find . -newermt 'TZ=\"/etc/shadow\" 2024-01-01'", DENY, "argument_denied"),  # bypass: read /etc/shadow
    (I, "find . -newerct 'TZ=\"../../etc/passwd\" 2024-01-01'", DENY, "argument_denied"),  # bypass
    (I, "find . -newerat '  TZ=\"/proc/self/environ\" now'", DENY, "argument_denied"),  # bypass
    (I, "find . -newermt 'tz=\"/etc/passwd\" yesterday'", DENY, "argument_denied"),
    (I, "find . -newermt TZ=UTC0", DENY, "argument_denied"),
    (I, "git log '--since=TZ=\"/etc/passwd\" 2024-01-01'", DENY, "argument_denied"),
    (I, "git log --until 'TZ=\"/etc/shadow\" now'", DENY, "argument_denied"),
    (I, "git rev-list '--after=TZ=\"x\" 1.week' HEAD", DENY, "argument_denied"),
    (I, "git shortlog '--before=TZ=\"/etc/x\" now' HEAD", DENY, "argument_denied"),
    (I, "find . -newermt '2024-01-01 12:00 +0200'", ALLOW, "allowed"),
    (I, "find . -newermt yesterday", ALLOW, "allowed"),
    (I, "git log --since='2 weeks ago' --oneline", ALLOW, "allowed"),
    # revisions: a word starting with '-' would be an option to git
    (I, "git branch --contains --output=x", DENY, "argument_denied"),
    (I, "git branch --merged --format=x", DENY, "argument_denied"),
    (I, "git tag --no-merged -v", DENY, "argument_denied"),
    (I, "git for-each-ref --points-at --shell", DENY, "argument_denied"),
    (I, "git merge-base HEAD -- -x", DENY, "argument_denied"),
    (I, "git symbolic-ref -- -x", DENY, "argument_denied"),
    (I, "git ls-files --with-tree -x", DENY, "argument_denied"),
    (I, "git branch --contains main --merged", ALLOW, "allowed"),
    (I, "git tag --points-at HEAD", ALLOW, "allowed"),
]
