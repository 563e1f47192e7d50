"""What a value means to the program that gets it: one checker per argument kind with a small language.

An option's value is not only a word: git reads `--format=%G?` as "verify this commit's signature",
which runs gpg, gpgsm or ssh-keygen (chosen by the commit's own signature header, no configuration
needed); GNU find reads `-newermt 'TZ="/etc/shadow" 2024-01-01'` as "open that file as a time
zone". So each value the policy allows has a kind (`model.ArgumentKind`), set in the program tables,
and each kind whose language can make the program do more than print gets a checker here that
accepts only the harmless part of it:

    pretty-format   git's pretty formats (--pretty, --format, shortlog --group=format:...; git 2.39
                    pretty.c): no signature placeholder %G in any spelling (%G? %GS, with a
                    modifier %+G? %-GS % GK), no %(...) atom but %(trailers...) (%(describe) runs git
                    describe), no width of more than three digits (%<(N), %>(N), %w(N): the output
                    would be of that size)
    atom-format     git's %(atom) formats (for-each-ref, branch, tag, ls-files, ls-tree --format;
                    git 2.39 ref-filter.c, ls-files.c, ls-tree.c): only the atoms that print what
                    the repository holds (never describe or signature, which later gits add and which
                    run programs), no number of more than three digits (%(align:N))
    directive-format   a format of %-directives that pad to a width (find -printf, stat --printf, strftime
                    in git --date=format: and --time-style, diff's line formats): widths and
                    precisions of at most three digits (`%99999999p` prints 100 MB)
    date            a date the program parses (find -newermt, git --since): never TZ=, which GNU
                    parse_datetime (findutils) reads as a time-zone file to open, anywhere
    revision        a git revision (branch --contains X): never a word starting with '-', which git
                    would read as an option
    sed-script, printf-format   in scripts.py

The kinds without a language to check (text, regex, number, choice and the path kinds) are judged
where they are held (`arguments.py`, `paths.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from .errors import Refusal
from .scripts import check_printf_format, check_sed_script

#: The widest padding or wrapping a format may ask for: three digits, as for printf (scripts.py).
_WIDE = re.compile(r"[0-9]{4,}")
#: After %< or %>: more of <>| then the parenthesised arguments (%<(10), %>>(5), %<|(20,trunc)).
_PADDING = re.compile(r"[<>|]*\(([^)]*)\)")
#: What may stand between % and a directive's letter: flags, a width, a precision (printf, strftime, find).
_DIRECTIVE_FLAGS = re.compile(r"[-+ #0'_^.0-9]*")
#: git 2.39's pretty.c: a placeholder may be preceded by one of these (add or drop a line feed or space).
_MODIFIERS = "+- "
#: The %(...) placeholders of pretty formats that only print what the commit holds.
PRETTY_ATOMS = frozenset({"trailers"})
#: The %(...) atoms of git 2.39's ref-filter.c, ls-files.c and ls-tree.c that print what the
#: repository holds. Unknown atoms make git stop; these are the ones it knows that run nothing.
FORMAT_ATOMS = frozenset(
    """
    refname objecttype objectsize deltabase objectname tree parent numparent object type tag
    author authorname authoremail authordate committer committername committeremail committerdate
    tagger taggername taggeremail taggerdate creator creatordate subject body trailers contents raw
    upstream push symref flag HEAD color worktreepath align end if then else rest
    objectmode stage path eolinfo eolattr
    """.split()
)
_ATOM = re.compile(r"\(\*?([A-Za-z-]*)([^)]*)\)")


def _refuse(where: str, value: str, what: str, instead: str) -> Refusal:
    return Refusal("argument_denied", f"{where} {value!r} {what}.", f"{instead[0].upper()}{instead[1:]}.")


def _check_sizes(value: str, arguments: str, where: str) -> None:
    wide = _WIDE.search(arguments)
    if wide:
        raise _refuse(where, value, f"asks for a width or position of {wide.group()}, which makes output of that size",
                      "write widths and positions of at most three digits")


def _placeholders(value: str) -> Iterator[int]:
    """Where each placeholder starts: the position after every % but the two of a %% (a literal %).
    The scan goes on right after each %, as git's strbuf_expand does when a placeholder is unknown
    (`% %G?` is a literal `% ` and then %G?); re-reading the inside of a known one only refuses more."""
    position = 0
    while True:
        position = value.find("%", position)
        if position < 0 or position + 1 >= len(value):
            return
        if value[position + 1] == "%":
            position += 2
            continue
        yield position + 1
        position += 1


def check_pretty_format(value: str, where: str) -> None:
    """git's pretty format language, placeholder by placeholder, as pretty.c reads it."""
    for start in _placeholders(value):
        at = start + 1 if value[start] in _MODIFIERS and start + 1 < len(value) else start
        placeholder = value[at]
        if placeholder == "G":
            raise _refuse(where, value, f"holds the signature placeholder {value[start - 1:at + 2]!r}, which makes git "
                          "run gpg, gpgsm or ssh-keygen to verify the commit",
                          "leave out %G placeholders (%H, %an, %s, %d ... print without running anything)")
        if placeholder == "(":
            atom = _ATOM.match(value, at)
            name = atom.group(1) if atom else value[at + 1 : at + 12]
            if name not in PRETTY_ATOMS:
                raise _refuse(where, value, f"holds the placeholder %({name}...), which is not allowed "
                              "(%(describe) runs git describe)", "use %(trailers...) or the one-letter placeholders")
        elif placeholder in "<>w":
            arguments = _PADDING.match(value, at + 1)  # %<(N) %>>(N) %<|(N) %w(N,I,J)
            _check_sizes(value, arguments.group(1) if arguments else "", where)


def check_atom_format(value: str, where: str) -> None:
    """git's %(atom) format language (for-each-ref, branch, tag, ls-files, ls-tree --format)."""
    for start in _placeholders(value):
        if value[start] != "(":  # %xx is a literal, a lone % is itself
            continue
        atom = _ATOM.match(value, start)
        if atom is None:
            raise _refuse(where, value, "holds an unclosed %(", "close every %(atom) with )")
        if atom.group(1) not in FORMAT_ATOMS:
            raise _refuse(where, value, f"holds the atom %({atom.group(1)}), which is not allowed (describe and "
                          "signature run programs)", "use the atoms that print refs and objects: %(refname), "
                          "%(objectname), %(subject), %(authordate) ...")
        _check_sizes(value, atom.group(2), where)


def check_directive_format(value: str, where: str) -> None:
    """A format of %-directives that pads to any width (find -printf, stat --printf, strftime dates in
    git --date=format: and --time-style, diff's line formats): `%99999999p` prints 100 MB from one word."""
    for start in _placeholders(value):
        flags = _DIRECTIVE_FLAGS.match(value, start)
        _check_sizes(value, flags.group() if flags else "", where)  # the pattern matches the empty string too


def check_date(value: str, where: str) -> None:
    """A date string: GNU parse_datetime opens the file a leading TZ="..." names; git ignores it."""
    if "tz=" in value.lower():
        raise _refuse(where, value, "holds TZ=, which makes the date parser open a time-zone file of the "
                      "caller's choice", "write the time zone as an offset (2024-01-01 12:00 +0200) or leave it out")


def check_revision(value: str, where: str) -> None:
    """A git revision (a commit, a ref, a range): git reads a word starting with '-' as an option."""
    if value.startswith("-"):
        raise _refuse(where, value, "starts with '-', which git reads as an option, not a revision",
                      "name the commit (HEAD, main, v1.0, a hash), or put the option last to mean HEAD")


#: kind -> the checker of its language (every kind with one; `arguments.py` dispatches on it).
CHECKERS: dict[str, Callable[[str, str], None]] = {
    "pretty-format": check_pretty_format,
    "atom-format": check_atom_format,
    "date": check_date,
    "directive-format": check_directive_format,
    "revision": check_revision,
    "sed-script": check_sed_script,
    "printf-format": check_printf_format,
}
