"""Checks of the two small languages an inspect-only command may carry: sed scripts and printf formats.

sed is a programming language with commands that write files (`w`, `s///w`), read them (`r`, `R`) and
run programs (`e`, `s///e`). The policy does not try to find the bad commands in a script; it accepts
only scripts made of print-only commands, by a grammar small enough to read in one go:

    script   := command ( ';' command )* [';']            blanks allowed around each part
    command  := [ range ] [ '!' ] ( 'p' | 'P' | 'l' | '=' | 'd' | 'n' | 'q' [N] | 'Q' [N] )
    range    := address [ ',' ( address | '+' N | '~' N ) ]
    address  := N | N '~' N | '$' | '/' regex '/' [ 'I' | 'M' ]...

with `regex` any characters but an unescaped '/' (a backslash escapes the next character). `sed -n
'1,40p'`, `sed -n '/def main/,/^$/p'`, `sed 10q`, `sed '/^#/d'` pass; `w`, `r`, `e`, `s`, `y`, `a`,
`i`, `c`, braces, labels and custom regex delimiters do not.

printf (coreutils) writes only to standard output, but a width or precision is a size: `%999999999d`
or `%*d` with a huge argument makes one short command print gigabytes. A format may use the usual
conversions with flags and a width and precision of at most three digits; `*` (size from an
argument) and `%n` are refused.
"""

from __future__ import annotations

import re

from .errors import Refusal

_NUMBER = r"[0-9]+"
_ADDRESS = rf"(?:{_NUMBER}(?:~{_NUMBER})?|\$|/(?:[^/\\\n]|\\[^\n])*/[IM]*)"
_RANGE = rf"{_ADDRESS}(?:\s*,\s*(?:{_ADDRESS}|\+{_NUMBER}|~{_NUMBER}))?"
_COMMAND = rf"(?:{_RANGE})?\s*(?:!\s*)?(?:[pPl=dn]|[qQ](?:\s*{_NUMBER})?)"
SED_PRINT_SCRIPT = re.compile(rf"\s*{_COMMAND}(?:\s*;\s*{_COMMAND})*\s*;?\s*")

_CONVERSION = re.compile(r"%(?:%|[-+ #0']*(?:[0-9]{1,3})?(?:\.[0-9]{0,3})?[diouxXfFeEgGaAcsbq])")


def check_sed_script(script: str, where: str) -> None:
    if not SED_PRINT_SCRIPT.fullmatch(script):
        raise Refusal(
            "argument_denied",
            f"{where} {script!r} is not a print-only sed script (allowed: addresses N, N,M, $, /regex/ "
            "with the commands p P l = d n q Q; never w r e s y a i c or braces).",
        )


def check_printf_format(text: str, where: str) -> None:
    position = 0
    while True:
        position = text.find("%", position)
        if position < 0:
            return
        match = _CONVERSION.match(text, position)
        if match is None:
            raise Refusal(
                "argument_denied",
                f"{where} {text!r}: the conversion at character {position + 1} is not allowed (conversions "
                "take flags, a width and a precision of at most three digits; no * and no %n).",
            )
        position = match.end()
