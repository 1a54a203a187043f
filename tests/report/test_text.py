"""The audit's terminal summary: every amount says its period, in its own line or in the
heading the line sits under."""

from __future__ import annotations

from rich.console import Console

from costline.auditor import AuditResult
from costline.report.text import print_audit
from tests.report.pages import MONEY, PERIOD

# Lines that belong to the heading above them: indented ones and a table's rows and rules.
_UNDER_A_HEADING = (" ", "│", "┃", "┏", "┡", "┗", "└", "├", "╇", "━", "─")


def summary(audit: AuditResult) -> list[str]:
    console = Console(record=True, width=400)  # one line per printed line: nothing wraps
    print_audit(console, audit)
    return console.export_text().splitlines()


def money_without_period(lines: list[str]) -> list[str]:
    """The lines with an amount whose line, and heading, name no period."""
    missing = []
    heading = ""
    for line in lines:
        if line and not line.startswith(_UNDER_A_HEADING):
            heading = line
        if MONEY.search(line) and not PERIOD.search(line) and not PERIOD.search(heading):
            missing.append(line.strip())
    return missing


def test_every_amount_in_the_summary_says_its_period(audit: AuditResult) -> None:
    lines = summary(audit)
    assert sum(len(MONEY.findall(line)) for line in lines) > 20
    assert money_without_period(lines) == []


def test_the_check_reads_a_missing_period() -> None:
    lines = ["Top cost drivers", "│ 1 │ $5 │", "Saving $7 over the 90 days", "  $3"]
    assert money_without_period(lines) == ["│ 1 │ $5 │"]


def test_annual_figures_say_so_and_history_figures_say_both(audit: AuditResult) -> None:
    text = "\n".join(summary(audit))
    days = audit.profile.period.days
    assert audit.layout is not None and audit.capacity is not None
    assert audit.capacity.best is not None
    saving = audit.layout.total_saving_usd
    assert f"${saving:,.0f} over the {days} days (≈ ${saving * 365 / days:,.0f}/year)" in text
    assert f"${audit.capacity.best.annual_cost_usd:,.0f}/year" in text
    assert f"annualised from {audit.capacity.period_days:,.1f} days of slot usage" in text
