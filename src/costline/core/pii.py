"""Personal data in free text: account numbers (IBAN), payment card numbers, e-mail addresses,
phone numbers and known full names.

One finder, used wherever text leaves the bank or reaches a log (the service's log and span
redaction, the assistant's prompt and answer checks). Each kind is found by its shape and then
checked, so that redaction does not eat ordinary numbers:

* **IBAN**, in any case and with any spacing (``gb51 acme 0000 …``): the country's registered
  length and the ISO 13616 mod-97 check; a compact upper-case IBAN-shaped token is taken as an
  account number even with a wrong check (a mistyped account number still is one);
* **card number**: 13 to 19 digits, spaces or dashes allowed, first digit 2 to 6 (the payment
  card industries: an epoch timestamp starts with 1) and a valid Luhn check digit;
* **e-mail address**: ``local@domain.tld``;
* **phone number**: E.164 (``+`` or ``00`` then 7 to 15 digits), a national number with its
  trunk ``0`` (9 to 12 digits, not a date), or the North American ``(555) 123-4567`` forms;
* **names**: the full names of a :class:`NameIndex` (two words or more), whole words, in any
  case and spacing.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

#: Length of the IBAN of each country. Source: SWIFT, IBAN Registry (ISO 13616-1).
IBAN_LENGTHS: Mapping[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27,
    "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip
#: Card numbers are 13 to 19 digits (ISO/IEC 7812-1).
CARD_DIGITS = (13, 19)
#: First digit of the payment card industries (ISO/IEC 7812 major industry identifier).
CARD_FIRST_DIGITS = frozenset("23456")
#: Longest name matched, in words.
MAX_NAME_WORDS = 5

IBAN, CARD, EMAIL, PHONE, NAME = "iban", "card", "email", "phone", "name"
#: When two findings overlap, the earlier kind here wins.
PRIORITY = (IBAN, CARD, EMAIL, PHONE, NAME)


@dataclass(frozen=True, slots=True)
class Found:
    """Personal data at ``text[start:end]``; ``value`` is its normalised form."""

    start: int
    end: int
    kind: str
    value: str


# Between the characters of a spaced number: up to two spaces, tabs or dashes.
_SEP = r"[ \t\u00a0\-]{0,2}"
_IBAN_START = re.compile(rf"(?<![A-Za-z0-9])[A-Za-z]{_SEP}[A-Za-z]{_SEP}[0-9]{_SEP}[0-9]")
# The canonical electronic form: upper case, no spaces, any checksum.
_IBAN_COMPACT = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}(?![A-Za-z0-9])")
_ALNUM = re.compile(r"[A-Za-z0-9]")
_DIGIT_RUN = re.compile(r"(?<![A-Za-z0-9])[0-9](?:[ \t\u00a0\-]?[0-9])*(?![A-Za-z0-9])")
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
    r"(?![A-Za-z0-9\-])"
)
_PSEP = r"[ \t\u00a0.\-()]{0,3}"
_PHONES = (
    # E.164, with + or the international 00 prefix: 7 to 15 digits.
    re.compile(rf"(?<![A-Za-z0-9+])\+[1-9](?:{_PSEP}[0-9]){{6,14}}(?![0-9])"),
    re.compile(rf"(?<![A-Za-z0-9+])00[1-9](?:{_PSEP}[0-9]){{6,13}}(?![0-9])"),
    # National, with its trunk 0: 020 7946 0958, 030 1234567, 01 23 45 67 89, (0)44 668 18 00.
    re.compile(rf"(?<![A-Za-z0-9])\(?0\)?{_PSEP}[1-9](?:{_PSEP}[0-9]){{7,10}}(?![0-9])"),
    # North American: (555) 123-4567, 555-123-4567, 555.123.4567.
    re.compile(r"(?<![A-Za-z0-9])(?:\([0-9]{3}\) ?|[0-9]{3}[.\-])[0-9]{3}[.\-][0-9]{4}(?![0-9])"),
)
# A national candidate that is a date (31.10.2026, 01-02-2026) is not a phone number.
_DATE = re.compile(r"\(?[0-9]{1,2}[./\-][0-9]{1,2}[./\-][0-9]{2,4}\b")
_WORD = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")


def iban_valid(candidate: str) -> bool:
    """Whether ``candidate`` (any case, separators ignored) is an IBAN: a registered country,
    its length, and the ISO 13616 mod-97 check."""
    iban = "".join(_ALNUM.findall(candidate)).upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban[2:4].isdigit():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def luhn_valid(digits: str) -> bool:
    """Whether the digits of ``digits`` end in a valid Luhn check digit."""
    numbers = [int(c) for c in digits if c.isdigit()]
    total = 0
    for i, n in enumerate(reversed(numbers)):
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return bool(numbers) and total % 10 == 0


@lru_cache(maxsize=64)
def _chars(n: int) -> re.Pattern[str]:
    return re.compile(rf"(?:{_SEP}[A-Za-z0-9]){{{n}}}(?![A-Za-z0-9])")


def find_ibans(text: str) -> list[Found]:
    """Every IBAN in ``text`` (see the module's rules)."""
    found: list[Found] = []
    pos = 0
    while (start := _IBAN_START.search(text, pos)) is not None:
        country = "".join(_ALNUM.findall(start.group(0))[:2]).upper()
        length = IBAN_LENGTHS.get(country)
        rest = _chars(length - 4).match(text, start.end()) if length else None
        if rest is not None and iban_valid(text[start.start() : rest.end()]):
            iban = "".join(_ALNUM.findall(text[start.start() : rest.end()])).upper()
            found.append(Found(start.start(), rest.end(), IBAN, iban))
            pos = rest.end()
        else:
            pos = start.start() + 1
    for m in _IBAN_COMPACT.finditer(text):
        if not any(f.start <= m.start() < f.end for f in found):
            found.append(Found(m.start(), m.end(), IBAN, m.group(0)))
    return sorted(found, key=lambda f: f.start)


def find_cards(text: str) -> list[Found]:
    """Every payment card number in ``text``: the longest Luhn-valid run of whole digit
    groups, 13 to 19 digits, starting with a card industry's digit."""
    low, high = CARD_DIGITS
    found: list[Found] = []
    for run in _DIGIT_RUN.finditer(text):
        # Groups of the run: (start, end, digits) in text positions.
        groups = [
            (run.start() + m.start(), run.start() + m.end(), m.group(0))
            for m in re.finditer(r"[0-9]+", run.group(0))
        ]
        i = 0
        while i < len(groups):
            best = None
            digits = ""
            for j in range(i, len(groups)):
                digits += groups[j][2]
                if len(digits) > high:
                    break
                if len(digits) >= low and digits[0] in CARD_FIRST_DIGITS and luhn_valid(digits):
                    best = (j, digits)
            if best is None:
                i += 1
                continue
            j, digits = best
            found.append(Found(groups[i][0], groups[j][1], CARD, digits))
            i = j + 1
    return found


def find_emails(text: str) -> list[Found]:
    """Every e-mail address in ``text``."""
    return [Found(m.start(), m.end(), EMAIL, m.group(0).lower()) for m in _EMAIL.finditer(text)]


def find_phones(text: str) -> list[Found]:
    """Every phone number in ``text`` (E.164, national with a trunk 0, North American)."""
    found: list[Found] = []
    for pattern in _PHONES:
        for m in pattern.finditer(text):
            if _DATE.match(m.group(0)):
                continue
            digits = "".join(c for c in m.group(0) if c.isdigit())
            found.append(Found(m.start(), m.end(), PHONE, digits))
    return found


def normalise_name(name: str) -> str:
    """A name as the index keys it: case-folded words, single spaces."""
    return " ".join(w.casefold() for w in _WORD.findall(name))


class NameIndex:
    """Full names to find in text, each with the identifiers of whoever bears it.

    Only names of two words or more are indexed: a lone first or last name is too common a
    word to redact. Matching is whole words, any case, any whitespace between the words.
    """

    def __init__(self, names: Iterable[tuple[str, str]] = ()) -> None:
        """Index ``(full name, owner)`` pairs (an owner is e.g. a customer id)."""
        owners: dict[str, set[str]] = {}
        for name, owner in names:
            key = normalise_name(name)
            if " " in key and key.count(" ") < MAX_NAME_WORDS:
                owners.setdefault(key, set()).add(owner)
        self._owners = {k: frozenset(v) for k, v in owners.items()}
        self._longest = max((k.count(" ") + 1 for k in self._owners), default=0)

    def __len__(self) -> int:
        """How many distinct names are indexed."""
        return len(self._owners)

    def owners(self, name: str) -> frozenset[str]:
        """Who bears ``name`` (nobody for a name not indexed)."""
        return self._owners.get(normalise_name(name), frozenset())

    def find(self, text: str) -> list[Found]:
        """Every indexed name in ``text``, longest first where names overlap."""
        if not self._owners:
            return []
        words = list(_WORD.finditer(text))
        found: list[Found] = []
        i = 0
        while i < len(words):
            for n in range(min(self._longest, len(words) - i), 1, -1):
                span = words[i : i + n]
                gaps = (text[a.end() : b.start()] for a, b in itertools.pairwise(span))
                if not all(g and g.isspace() for g in gaps):
                    continue
                key = " ".join(w.group(0).casefold() for w in span)
                if key in self._owners:
                    found.append(Found(span[0].start(), span[-1].end(), NAME, key))
                    i += n - 1
                    break
            i += 1
        return found


def find_pii(text: str, names: NameIndex | None = None) -> list[Found]:
    """Every piece of personal data in ``text``, in order, none overlapping (an IBAN is not
    also read as a phone number: the earlier kind of :data:`PRIORITY` wins)."""
    candidates = [
        *find_ibans(text),
        *find_cards(text),
        *find_emails(text),
        *find_phones(text),
        *(names.find(text) if names is not None else ()),
    ]
    candidates.sort(key=lambda f: (PRIORITY.index(f.kind), f.start, -(f.end - f.start)))
    kept: list[Found] = []
    for f in candidates:
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)


def redact_pii(
    text: str, masks: Mapping[str, str], names: NameIndex | None = None
) -> tuple[str, int]:
    """``text`` with each piece of personal data replaced by the mask of its kind; and how
    many were replaced."""
    found = find_pii(text, names)
    for f in reversed(found):
        text = text[: f.start] + masks[f.kind] + text[f.end :]
    return text, len(found)
