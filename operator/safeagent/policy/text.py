"""Checks on the raw command text, before it is split into words.

Invisible and bidirectional characters make a command read differently to the human who approves it
than to the program that runs it; control characters have no place in a command line. Which printable
characters a shell would act on depends on quoting, so that check is part of splitting the line into
words (`words.py`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import Refusal

if TYPE_CHECKING:
    from .model import Limits

#: Bidirectional-text controls (the "Trojan Source" characters).
BIDI_CONTROLS = frozenset(
    ["\u061c", "\u200e", "\u200f"] + [chr(c) for c in range(0x202A, 0x202F)] + [chr(c) for c in range(0x2066, 0x206A)]
)

#: Characters that render as nothing (or as white space) but are not Unicode format characters.
_INVISIBLE_EXTRA = frozenset(
    ["\u034f", "\u115f", "\u1160", "\u17b4", "\u17b5", "\u2800", "\u3164", "\uffa0", "\ufffc"]
    + [chr(c) for c in range(0x180B, 0x1810)]
    + [chr(c) for c in range(0xFE00, 0xFE10)]
    + [chr(c) for c in range(0xE0100, 0xE01F0)]
)

_PLAIN_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "Mn", "Mc"})
_LOOKALIKE_SCRIPTS = ("CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE", "COPTIC")


def describe(char: str) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE``: safe to print, whatever the character is."""
    name = unicodedata.name(char, "") or unicodedata.category(char)
    return f"U+{ord(char):04X} {name}"


def _first(line: str, predicate: Callable[[str], bool]) -> str | None:
    for char in line:
        if predicate(char):
            return char
    return None


def check_not_empty(line: str, limits: Limits) -> None:
    if not line.strip(" \t"):
        raise Refusal("empty_command", "The command is empty.")


def check_encoding(line: str, limits: Limits) -> None:
    if line.isascii():
        return
    try:
        line.encode("utf-8")
    except UnicodeEncodeError as error:
        raise Refusal("invalid_encoding", f"The command is not valid text (at character {error.start}).") from None


def check_length(line: str, limits: Limits) -> None:
    size = len(line) if line.isascii() else len(line.encode("utf-8"))
    if size > limits.max_command_bytes:
        raise Refusal("command_too_long", f"The command is {size} bytes; the limit is {limits.max_command_bytes}.")


def check_bidi(line: str, limits: Limits) -> None:
    if line.isascii():
        return
    char = _first(line, BIDI_CONTROLS.__contains__)
    if char is not None:
        raise Refusal("bidi_control", f"The command holds {describe(char)}, a bidirectional-text control.")


def _invisible(char: str) -> bool:
    if char in _INVISIBLE_EXTRA:
        return True
    category = unicodedata.category(char)
    return category == "Cf" or category in ("Zl", "Zp") or (category == "Zs" and char != " ")


def check_invisible(line: str, limits: Limits) -> None:
    if line.isascii():
        return
    char = _first(line, _invisible)
    if char is not None:
        raise Refusal("invisible_character", f"The command holds {describe(char)}, an invisible character.")


def _control(char: str) -> bool:
    return (char < " " and char not in "\t\n") or "\x7f" <= char <= "\x9f"


def check_control(line: str, limits: Limits) -> None:
    char = _first(line, _control)
    if char is not None:
        raise Refusal("control_character", f"The command holds the control character {describe(char)}.")


def _lookalike_token(token: str) -> str | None:
    """The first character of a token that could pass for another one, if any."""
    has_ascii_letter = any(char.isascii() and char.isalpha() for char in token)
    for char in token:
        if char.isascii():
            continue
        if unicodedata.category(char) not in _PLAIN_CATEGORIES or unicodedata.normalize("NFKC", char) != char:
            return char
        if has_ascii_letter and unicodedata.name(char, "").startswith(_LOOKALIKE_SCRIPTS):
            return char
    if not unicodedata.is_normalized("NFC", token):
        return _first(token, lambda char: not char.isascii())
    return None


def check_unicode(line: str, limits: Limits, allow_non_ascii: bool = False) -> None:
    if line.isascii():
        return
    if not allow_non_ascii:
        char = next(c for c in line if not c.isascii())  # there is one: the line is not ASCII
        raise Refusal("non_ascii_character", f"The command holds {describe(char)}; only ASCII is allowed.")
    for token in line.split():
        lookalike = _lookalike_token(token)
        if lookalike is not None:
            raise Refusal(
                "unicode_lookalike", f"The command holds {describe(lookalike)}, which can pass for another character."
            )
