"""Kubernetes quantities, parsed exactly (the configuration compares and refuses them)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from safeagent.quantity import QuantityError, parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1), ("500m", Decimal("0.5")), ("0.5", Decimal("0.5")), (".5", Decimal("0.5")),
        ("100m", Decimal("0.1")), ("256Mi", 256 * 2**20), ("1Gi", 2**30), ("1Ki", 1024),
        ("1k", 1000), ("1M", 10**6), ("1G", 10**9), ("2T", 2 * 10**12), ("1E", 10**18),
        ("1Ei", 2**60), ("1e3", 1000), ("5E-1", Decimal("0.5")), ("100n", Decimal("1e-7")),
        ("1u", Decimal("1e-6")), ("0", 0), ("+2", 2), ("-1", -1), (3, 3), ("1.5Gi", 3 * 2**29),
    ],
)
def test_parses_every_kubernetes_form(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", " 1", "1 ", "lots", "1gi", "1MiB", "Mi", "1e", "1.2.3", "0x10", "1Ki2", True, None, 1.5])
def test_refuses_what_kubernetes_refuses(text):
    with pytest.raises(QuantityError):
        parse_quantity(text)
