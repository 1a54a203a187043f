"""Personal data found in free text, and ordinary text left alone."""

from __future__ import annotations

import pytest

from costline.core.pii import (
    CARD,
    EMAIL,
    IBAN,
    NAME,
    PHONE,
    NameIndex,
    find_pii,
    iban_valid,
    luhn_valid,
)


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("from GB51ACME00000350012436", [IBAN]),
        ("from gb51 acme 0000 0350 0124 36 today", [IBAN]),
        ("iban: De89-3704-0044-0532-0130-00.", [IBAN]),
        ("card 4111 1111 1111 1111, expiry 12/29", [CARD]),
        ("card 5500-0000-0000-0004", [CARD]),
        ("amex 378282246310005", [CARD]),
        ("write to anna.keller+bank@example.co.uk", [EMAIL]),
        ("call +44 20 7946 0958", [PHONE]),
        ("call +41 (0)44 668 18 00", [PHONE]),
        ("or 0044 20 7946 0958", [PHONE]),
        ("ring 020 7946 0958", [PHONE]),
        ("Tel. 030 12345678", [PHONE]),
        ("au 01 23 45 67 89", [PHONE]),
        ("US office (555) 123-4567 or 555-123-4567", [PHONE, PHONE]),
    ],
)
def test_each_kind_is_found(text: str, kinds: list[str]) -> None:
    assert [f.kind for f in find_pii(text)] == kinds


@pytest.mark.parametrize(
    "text",
    [
        "customer 1000007 spent 1,234.56 EUR on 2026-10-31",
        "booked 31.10.2026 10:30, ref 20261031",
        "latency 1000007 ns; epoch 1730000000000 ms",
        "card 4111 1111 1111 1112 (bad check digit)",
        "gb52acme00000350012436 (bad check digits, lower case)",
        "trace 4bf92f3577b34da6a3ce929d0e0e4736",
        "at 10 am we met at the cafe, version 1.2.3",
        "order 123456789012345678901234 has 24 digits",
    ],
)
def test_ordinary_text_is_not_personal_data(text: str) -> None:
    assert find_pii(text) == []


def test_checks() -> None:
    assert iban_valid("GB51ACME00000350012436") and iban_valid("gb51 acme 0000 0350 0124 36")
    assert not iban_valid("GB52ACME00000350012436")
    assert not iban_valid("GB51ACME0000035001243")  # one character short for GB
    assert luhn_valid("4111 1111 1111 1111") and not luhn_valid("4111111111111112")


def test_names_are_found_whole_in_any_case_and_spacing() -> None:
    names = NameIndex([("Anna Keller", "1000007"), ("Jean-Luc Moreau", "1000014"), ("Cher", "x")])
    found = names.find("Dear ANNA   keller, jean-luc moreau wrote; Anna Kellerman did not; cher")
    assert [(f.kind, f.value) for f in found] == [
        (NAME, "anna keller"),
        (NAME, "jean-luc moreau"),
    ]
    assert names.owners("anna KELLER") == {"1000007"}
    assert len(names) == 2  # a one-word name is too common a word to index
