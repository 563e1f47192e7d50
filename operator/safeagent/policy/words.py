"""Split a command line into words as a POSIX shell would, refusing what a shell would give meaning to.

No shell ever runs an agent's command: the runner executes the argv this module produces. The agent,
though, writes its command for bash, and the human who approves it reads it as bash. So the rule is
*a shell and safeagent must agree*: every character a shell would treat as anything but a literal
part of a word is refused, and every other character is kept exactly as the shell would keep it.

Quoting follows POSIX (`sh`, dash and bash agree on all of it for the lines we allow):

- inside single quotes every character is literal (``'a|b'``, ``'$HOME'``, ``'foo('``);
- inside double quotes every character is literal except ``$`` and backquote (substitution: refused),
  ``!`` (bash's history expansion: refused) and ``\\``, which escapes ``$ ` " \\`` and is kept before
  anything else;
- outside quotes a backslash makes the next character literal, and these are refused:
  ``; & | < > ( )`` (operators, redirections, subshells), ``$`` and backquote (substitution),
  ``{ }`` (bash brace expansion), ``!`` (history expansion, pipeline negation), ``* ? [`` (file-name
  globbing: the shell would replace the word with matching file names), ``#`` at the start of a word
  (a comment: the shell ignores the rest of the line), ``~`` at the start of a word or after ``=`` or
  ``:`` (tilde expansion to a home directory).

A newline is refused anywhere (a command separator, or a line continuation after a backslash): a
command is one line. Reason codes: ``shell_metacharacter`` for a refused character, ``tokenise_error``
for an unclosed quote or a trailing backslash. configs/README.md explains the rule and its costs.
"""

from __future__ import annotations

from .errors import Refusal

BLANKS = frozenset(" \t")
#: Unquoted, each of these makes a shell do something other than pass the character on.
OPERATORS = frozenset(";&|<>()")
SUBSTITUTION = frozenset("$`")
BRACES = frozenset("{}")
GLOBS = frozenset("*?[")
#: Inside double quotes a backslash only escapes these (POSIX); before anything else it stays.
DOUBLE_QUOTE_ESCAPES = frozenset('$`"\\')

_WHAT = {
    **{char: "a shell operator or redirection" for char in OPERATORS},
    "$": "substitution (parameters, commands, arithmetic)",
    "`": "command substitution",
    "{": "brace expansion (bash: {a,b} and {1..3} become several words)",
    "}": "brace expansion (bash: {a,b} and {1..3} become several words)",
    "!": "history expansion and pipeline negation",
    "*": "a file-name glob (the shell would replace the word with the matching file names)",
    "?": "a file-name glob (the shell would replace the word with the matching file names)",
    "[": "a file-name glob (the shell would replace the word with the matching file names)",
    "#": "a comment (the shell would ignore the rest of the line)",
    "~": "tilde expansion (the shell would put a home directory there)",
    "\n": "a command separator",
}


def _refuse(char: str, position: int, where: str) -> Refusal:
    shown = "newline" if char == "\n" else repr(char)
    instead = "Run one command per job: a command is one line." if char == "\n" else (
        "Put it in single quotes to pass it on literally, or leave it out."
    )
    return Refusal(
        "shell_metacharacter",
        f"The command holds {shown} {where} at character {position + 1}: to a shell it is {_WHAT[char]}, "
        "and no shell runs commands here.",
        instead,
    )


def split_words(line: str) -> list[str]:
    """The argv a POSIX shell would build from ``line``; refuses every character it would act on."""
    newline = line.find("\n")
    if newline >= 0:
        raise _refuse("\n", newline, "")
    words: list[str] = []
    word: list[str] = []
    in_word = False  # a word has started (even an empty quoted one: '' is a word)
    previous = ""  # the previous character of this word if it was unquoted, else ""
    index, end = 0, len(line)
    while index < end:
        char = line[index]
        if char in BLANKS:
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
            previous = ""
            index += 1
        elif char == "'":
            close = line.find("'", index + 1)
            if close < 0:
                raise Refusal("tokenise_error", "The command cannot be split into words: a single quote is not closed.")
            word.append(line[index + 1 : close])
            in_word, previous, index = True, "", close + 1
        elif char == '"':
            index = _double_quoted(line, index + 1, word)
            in_word, previous = True, ""
        elif char == "\\":
            if index + 1 >= end:
                raise Refusal("tokenise_error", "The command cannot be split into words: it ends with a backslash.")
            word.append(line[index + 1])
            in_word, previous, index = True, "", index + 2
        else:
            if char in OPERATORS or char in SUBSTITUTION or char in BRACES or char in GLOBS or char == "!":
                raise _refuse(char, index, "outside quotes")
            if char == "#" and not in_word:
                raise _refuse(char, index, "at the start of a word")
            if char == "~" and (not in_word or previous in ("=", ":")):
                raise _refuse(char, index, "at the start of a word" if not in_word else f"after {previous!r}")
            word.append(char)
            in_word, previous, index = True, char, index + 1
    if in_word:
        words.append("".join(word))
    return words


def _double_quoted(line: str, index: int, word: list[str]) -> int:
    """Read a double-quoted part starting after its opening quote; returns the index after the closing one."""
    end = len(line)
    while index < end:
        char = line[index]
        if char == '"':
            return index + 1
        if char in SUBSTITUTION or char == "!":
            raise _refuse(char, index, "inside double quotes")
        if char == "\\" and index + 1 < end and line[index + 1] in DOUBLE_QUOTE_ESCAPES:
            word.append(line[index + 1])
            index += 2
            continue
        word.append(char)
        index += 1
    raise Refusal("tokenise_error", "The command cannot be split into words: a double quote is not closed.")
