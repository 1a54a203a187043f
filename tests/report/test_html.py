"""The audit report as a reader checks it: every amount says its period, counts carry
thousands separators, each team has its own colour, the Pareto chart reaches its 80% point,
labels sit off the data, and a table's column never claims more than the table costs."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from costline.auditor import AuditResult
from costline.core.prices import load_prices
from costline.report.capacity import cost_vs_commitment, load_duration, usage_over_time
from costline.report.html import daily_cost_by_team, pareto, render_audit_html, top_tables
from costline.report.style import MUTED_COLOUR
from costline.warehouse.jobs import read_history
from costline.warehouse.profiler import UNLABELLED
from costline.warehouse.slots import CapacityResult, plan_capacity, usage_from_history
from tests.conftest import TIB, job
from tests.report.pages import money_without_period, parse, visible_texts

# A number of four digits or more written without separators (dates, versions, identifiers
# and decimals are not counts: the neighbours rule them out).
BARE_COUNT = re.compile(r"(?<![\w.,:/#-])\d{4,}(?![\w.,:/-])")


@pytest.fixture(scope="module")
def page(audit: AuditResult) -> str:
    return render_audit_html(audit)


def test_every_amount_in_the_report_says_its_period(page: str) -> None:
    assert money_without_period(page) == []


def test_the_check_reads_a_missing_period() -> None:
    html = (
        "<p>saves $1,234</p><p>saves $1,234 over the 90 days</p>"
        "<table><tr><th>cost</th><th>cost, 90 days</th></tr><tr><td>$5</td><td>$6</td></tr>"
        "</table>"
    )
    assert [figure for figure, _ in money_without_period(html)] == ["$1,234", "$5"]


def test_savings_over_the_history_come_with_their_annual_figure(
    audit: AuditResult, page: str
) -> None:
    text = parse(page).text()
    days = audit.profile.period.days
    assert audit.layout is not None and audit.merge is not None
    saving = audit.layout.total_saving_usd
    assert f"${saving:,.0f} over the {days} days (≈ ${saving * 365 / days:,.0f}/year)" in text
    merge = audit.merge.cost_usd
    assert f"${merge:,.0f} over the {days} days (≈ ${merge * 365 / days:,.0f}/year)" in text


def test_counts_have_thousands_separators(page: str) -> None:
    bare = [
        (m.group(), text.strip()[:80])
        for text, _ in visible_texts(parse(page), skip=frozenset({"pre", "code"}))
        for m in BARE_COUNT.finditer(text)
    ]
    assert bare == []


def test_each_team_has_its_own_colour_and_the_unlabelled_share_is_grey(
    audit: AuditResult,
) -> None:
    fig = daily_cost_by_team(audit.profile)
    colours = {trace.name: trace.line.color for trace in fig.data}
    assert set(colours) == set(audit.profile.daily_by_team)
    assert colours[UNLABELLED] == MUTED_COLOUR
    labelled = [c for team, c in colours.items() if team != UNLABELLED]
    assert len(set(labelled)) == len(labelled) and MUTED_COLOUR not in labelled


def test_a_day_a_team_ran_nothing_is_zero_not_a_line_to_its_next_day(
    audit: AuditResult,
) -> None:
    fig = daily_cost_by_team(audit.profile)
    lengths = {len(trace.x) for trace in fig.data}
    assert len(lengths) == 1  # every team on the same calendar
    start, end = fig.data[0].x[0], fig.data[0].x[-1]
    all_days = {d["date"] for days in audit.profile.daily_by_team.values() for d in days}
    assert (start, end) == (min(all_days).isoformat(), max(all_days).isoformat())


@pytest.mark.parametrize("n80", [1, 39, 65, 95, 300])
def test_the_pareto_chart_reaches_and_marks_its_80_percent_point(
    audit: AuditResult, n80: int
) -> None:
    p = audit.profile
    profile = p.model_copy(
        update={"pareto": p.pareto.model_copy(update={"fingerprints_for_80pct": n80})}
    )
    fig = pareto(profile)
    low, high = fig.layout.xaxis.range
    assert low < 1 and high >= n80 + 5  # the point and a margin after it
    assert high <= len(p.fingerprints) + 0.5
    assert any(shape.x0 == n80 for shape in fig.layout.shapes)
    if n80 <= len(p.pareto.cumulative_share):
        marker = next(t for t in fig.data if t.name and "80%" in t.name)
        assert tuple(marker.x) == (n80,)
    assert f"{n80:,} of" in fig.layout.title.text


@pytest.fixture
def steady(write_jsonl: Callable[..., Path]) -> CapacityResult:
    """A week of 1,000 slots around the clock: committing slots pays."""
    t0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    rows = [
        job(
            f"h{h}",
            start_time=f"{t0 + dt.timedelta(hours=h):%Y-%m-%d %H:%M:%S}.000000 UTC",
            end_time=f"{t0 + dt.timedelta(hours=h + 1):%Y-%m-%d %H:%M:%S}.000000 UTC",
            total_slot_ms=1000 * 3_600_000,
            total_bytes_billed=10 * TIB,  # on demand dearer than any reservation
        )
        for h in range(7 * 24)
    ]
    prices = load_prices()
    return plan_capacity(usage_from_history(read_history(write_jsonl(rows)), prices), prices)


def test_commitments_are_named_in_the_legend_not_written_on_the_data(
    steady: CapacityResult,
) -> None:
    assert steady.best is not None and steady.best.commitment_slots > 0
    for fig in (usage_over_time(steady), load_duration(steady)):
        assert not fig.layout.annotations
        lines = [t for t in fig.data if "commitment" in (t.name or "")]
        assert lines and all(t.showlegend is not False for t in lines)
    cost = cost_vs_commitment(steady)
    assert all(t.mode != "markers+text" for t in cost.data)  # no labels printed on the stars
    # A commitment keeps its colour from one chart to the next.
    colour = {
        (t.name or "").split(" commitment")[0]: t.line.color
        for t in usage_over_time(steady).data
        if "commitment" in (t.name or "")
    }
    curves = {t.name: t.line.color for t in cost.data if t.mode != "markers"}
    assert colour and all(curves[name] == c for name, c in colour.items())


def test_every_value_axis_prints_thousands_separators(audit: AuditResult) -> None:
    assert audit.capacity is not None
    p, c = audit.profile, audit.capacity
    figures = [daily_cost_by_team(p), pareto(p), top_tables(p)]
    figures += [usage_over_time(c), load_duration(c), cost_vs_commitment(c)]
    for fig in figures:
        names = [k for k in fig.layout.to_plotly_json() if k.startswith(("xaxis", "yaxis"))]
        for axis in (fig.layout[name] for name in names):
            if axis.type == "date" or (axis.tickformat is None and axis.title.text is None):
                continue  # dates, categories and axes not in use
            assert axis.tickformat and ("," in axis.tickformat or "%" in axis.tickformat), (
                fig.layout.title.text,
                axis.title.text,
            )


def test_a_column_filtered_on_never_carries_more_than_its_table(audit: AuditResult) -> None:
    merge_target = audit.merge.rewrite.target if audit.merge is not None else None
    checked = 0
    for table in audit.profile.tables:
        for use in table.access:
            assert use.table_cost_usd is not None
            assert use.table_cost_usd <= table.cost_usd * (1 + 1e-9) + 1e-9
            checked += 1
    assert checked and merge_target is not None
    # The whole cost of the MERGE's pattern is over both its tables; each column a share.
    staging = next(t for t in audit.profile.tables if "positions_delta" in t.name)
    load_date = next(a for a in staging.access if a.role == "filter")
    assert load_date.cost_usd > staging.cost_usd >= load_date.table_cost_usd  # type: ignore[operator]


def test_the_two_fractions_of_bytes_scanned_are_named_by_what_they_cover(page: str) -> None:
    section = page[page.index('<section id="layout">') :]
    section = section[: section.index("</section>")]
    assert "Scanned (est.)" not in section
    assert "Bytes scanned, est. over the history" in section
    assert "estimated, same queries" in section
