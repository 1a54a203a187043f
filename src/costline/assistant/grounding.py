"""Is the model's narrative bound to the computed recommendation?

The recommender computes the advice; a model only rewrites it in plain words. A rewrite is used
only if everything it asserts is in the computation:

* every number in it is one of the recommendation's (amounts, shares as percentages, the
  horizon, months of the emergency fund, risk classes), allowing for rounding to the unit and
  for thousands separators;
* every product it names is in the allocation (the bank's catalogue is known; a product outside
  it, such as a crypto note, is caught by the words below);
* it carries no account number or IBAN, no instruction to move money, and none of the words a
  suitability review rejects outright (guaranteed returns, leverage, crypto assets).

Anything else and the deterministic narrative is used instead; the caller marks the answer
degraded with the reasons.
"""

from __future__ import annotations

import math
import re

from costline.assistant import rules
from costline.assistant.models import Recommendation
from costline.core.pii import find_ibans

_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:[,\u202f ]\d{3})+|\d+)(?:\.(\d+))?(\s?%)?")
#: Words and phrases a narrative must not contain, whatever the computation says.
FORBIDDEN = (
    r"guarantee[ds]?",
    r"risk[- ]free",
    r"can(?:no|')t lose",
    r"leverag\w*",
    r"crypto\w*",
    r"bitcoin",
    r"\bETNs?\b",
    r"\bCFDs?\b",
    r"margin (?:trading|loan)",
)
#: Instructions to move money: the assistant never tells a customer to pay anyone.
INSTRUCTIONS = (
    r"\btransfer\b[^.]{0,40}\bto\b",
    r"\bwire\b",
    r"\bsend\b[^.]{0,40}\bto\b",
    r"\bpay\b[^.]{0,40}\binto\b",
)
_FORBIDDEN = re.compile("|".join(FORBIDDEN), re.IGNORECASE)
_INSTRUCTIONS = re.compile("|".join(INSTRUCTIONS), re.IGNORECASE)
_PRODUCTS = {p.name: p for p in vars(rules).values() if isinstance(p, rules.Product)}


def allowed_numbers(rec: Recommendation) -> set[float]:
    """The numbers a narrative of ``rec`` may state."""
    values: set[float] = {
        rec.emergency_fund_target,
        rec.emergency_fund_gap,
        rec.investable_amount,
        float(rec.horizon_years),
        float(rec.max_risk_class),
        float(rules.EMERGENCY_MONTHS[rec.liquidity_need]),
    }
    for line in rec.allocation:
        values |= {line.amount, line.share * 100, float(line.risk_class)}
    return values


def _matches(value: float, allowed: set[float]) -> bool:
    # Within 0.5: the number as computed, or rounded to the unit.
    return any(math.isclose(value, a, abs_tol=0.5 + 1e-9) for a in allowed)


def check_narrative(text: str, rec: Recommendation, models: tuple[str, ...] = ()) -> list[str]:
    """Why ``text`` may not stand for ``rec`` (empty: it may). Names in ``models`` (the model
    that wrote it, which a narrative may name) are not read for numbers."""
    problems: list[str] = []
    allowed = allowed_numbers(rec)
    scanned = text
    for model in models:
        if model:
            scanned = scanned.replace(model, " ")
    for match in _NUMBER.finditer(scanned):
        whole, decimals, _percent = match.groups()
        value = float(re.sub(r"[,\u202f ]", "", whole) + (f".{decimals}" if decimals else ""))
        if not _matches(value, allowed):
            problems.append(f"the number {match.group(0).strip()} is not in the recommendation")
    named = {p for p in _PRODUCTS if p.replace("_", " ") in text.lower() or p in text}
    held = {line.product for line in rec.allocation}
    for product in sorted(named - held):
        problems.append(f"the product {product} is not in the allocation")
    for found in _FORBIDDEN.finditer(text):
        problems.append(f"{found.group(0)!r} is not something the bank's advice may say")
    for found in _INSTRUCTIONS.finditer(text):
        problems.append(f"an instruction to move money ({found.group(0)!r})")
    if find_ibans(text):
        problems.append("an account number")
    return problems
