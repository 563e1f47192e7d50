"""Kubernetes resource quantities ("500m", "1", "256Mi", "1e3") parsed into exact numbers.

The operator's configuration compares quantities (the memory-backed workspace and /tmp must fit
below the memory limit) and refuses zero ones, because Kubernetes reads a limit of "0" as "no
limit". Decimal keeps "0.1" and "100m" equal, where a float would not.

Grammar (as the API server accepts it): an optional sign, a decimal number ("1", "1.5", ".5"),
then one suffix: binary (Ki Mi Gi Ti Pi Ei), decimal (n u m "" k M G T P E) or an exponent
(e3, E-2).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
}
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))((?:[eE][+-]?[0-9]+)|[KMGTPE]i|[numkMGTPE]?)$")


class QuantityError(ValueError):
    """Not a Kubernetes quantity."""


def parse_quantity(value: str | int) -> Decimal:
    """The exact value of a quantity: parse_quantity("256Mi") == 268435456."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise QuantityError(f"{value!r} is not a Kubernetes quantity")
    text = str(value)
    match = _QUANTITY.match(text)
    if not match:
        raise QuantityError(f"{text!r} is not a Kubernetes quantity (e.g. 500m, 1, 256Mi, 1Gi)")
    number, suffix = match.groups()
    try:
        amount = Decimal(number)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise QuantityError(f"{text!r} is not a Kubernetes quantity") from None
    if suffix in _BINARY:
        return amount * _BINARY[suffix]
    if suffix in _DECIMAL:
        return amount * _DECIMAL[suffix]
    return amount.scaleb(int(suffix[1:]))
