"""Renderers of table-layout advice: text for a terminal, a self-contained HTML page and the
HTML section the audit report embeds. They print an :class:`Advice`; they never recompute.

Every saving is over the history the advice replayed; given its length (``history_days``,
the profile's ``period.days``) they say so and add the saving per year beside it.

Two fractions of bytes scanned appear, both the proposed layout's bytes over the current
layout's, weighted by the bytes each pattern bills: the *estimate over the history* (every
replayed job, each at its own time) and the *check* (the costliest single-table queries run on
the local copy in both layouts, measured and estimated on those same queries). They cover
different queries, so they are shown as two figures, each named by what it covers.
"""

from __future__ import annotations

from html import escape

from costline.report.money import (
    over,
    span,
    usd,
    usd_over,
    usd_over_and_per_year,
    usd_per_year_of,
)
from costline.report.pages import breakable
from costline.report.style import stylesheet
from costline.report.text import size
from costline.warehouse.layout import Advice, Measurement, Recommendation


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _check(m: Measurement) -> str:
    return (
        f"{m.engine}, {m.queries} queries: {_pct(m.measured_fraction)} of the bytes scanned "
        f"(estimate for the same queries {_pct(m.estimated_fraction)}; error "
        f"{_pct(m.relative_error)}, {'within' if m.within_tolerance else 'NOT within'} 20%)"
    )


def render_advice_text(advice: Advice, *, history_days: int | None = None) -> str:
    """Plain text: one block per table, the DDL of the changed ones."""
    days = history_days
    lines = [
        f"Table layout advice: {len(advice.recommendations)} "
        f"table{'s' if len(advice.recommendations) != 1 else ''}, "
        f"estimated saving {usd_over_and_per_year(advice.total_saving_usd, days)}",
        "",
    ]
    for r in advice.recommendations:
        lines.append(f"{r.table}  ({usd_over(r.saving.cost_usd, days)} of queries replayed)")
        lines.append(f"  now:      {r.current.describe()}")
        if not r.changed:
            lines.append("  advice:   keep the layout (no candidate saves more)")
            if r.ddl:
                lines.append(f"  options:  {r.ddl}")
        else:
            lines.append(f"  proposed: {r.proposed.describe()}")
            options = []
            if r.proposed.require_partition_filter and r.proposed.partition_column:
                options.append("require_partition_filter")
            if r.proposed.expiration_days:
                options.append(f"partition expiration {r.proposed.expiration_days} days")
            if options:
                lines.append(f"            {', '.join(options)}")
            lines.append(f"  why:      {r.partition_reason}")
            if r.clustering_values:
                served = ", ".join(f"{v.column} {usd(v.cost_usd)}" for v in r.clustering_values)
                lines.append(
                    f"  clusters: {served} (cost {over(days)} of the queries each one's filters "
                    "serve)"
                )
            lines.append(f"  instead:  {r.ingestion_time_alternative}")
            s = r.saving
            lines.append(
                f"  saving:   {usd_over_and_per_year(s.saving_usd, days)} ({size(s.billed_bytes)} "
                f"-> {size(s.estimated_bytes)}, {_pct(s.fraction_scanned)} of the bytes scanned, "
                f"estimated over the history); {s.replayed_jobs:,} of {s.jobs:,} jobs replayed "
                f"on the {s.data_model}"
            )
        if r.measured is not None:
            lines.append(f"  measured: {_check(r.measured)}")
        for note in r.notes:
            lines.append(f"  note:     {note}")
        if r.changed:
            lines.append("")
            lines.extend("    " + line for line in r.ddl.splitlines())
        lines.append("")
    return "\n".join(lines)


def _row(r: Recommendation, days: int | None) -> str:
    m = r.measured
    check = (
        f'<td class="num">{_pct(m.measured_fraction)}<br>'
        f'<span class="muted">{m.queries:,} queries</span></td>'
        f'<td class="num">{_pct(m.estimated_fraction)}</td>'
        if m is not None
        else '<td class="num muted">-</td><td class="num muted">-</td>'
    )
    yearly = (
        f'<br><span class="muted">{usd_per_year_of(r.saving.saving_usd, days)}</span>'
        if days and r.saving.saving_usd > 0
        else ""
    )
    return (
        f"<tr><td><code>{breakable(r.table)}</code></td>"
        f"<td>{escape(r.current.describe())}</td>"
        f"<td>{escape(r.proposed.describe()) if r.changed else 'keep'}</td>"
        f'<td class="num">{usd(r.saving.saving_usd)}{yearly}</td>'
        f'<td class="num">{_pct(r.saving.fraction_scanned) if r.changed else "-"}</td>'
        f"{check}</tr>"
    )


def advice_section(advice: Advice, *, history_days: int | None = None) -> str:
    """The ``<section>`` the audit report and the advice page show."""
    days = history_days
    rows = "\n".join(_row(r, days) for r in advice.recommendations)
    details = []
    for r in advice.recommendations:
        if not r.changed:
            if r.ddl:
                details.append(
                    f"<h3><code>{escape(r.table)}</code></h3><p>Keep the layout; set its "
                    f"options:</p><pre><code>{escape(r.ddl)}</code></pre>"
                )
            continue
        notes = "".join(f"<li>{escape(n)}</li>" for n in r.notes)
        proof = ""
        if r.measured is not None:
            m = r.measured
            proof = (
                f"<p>Checked on {escape(m.engine)} with {m.queries} of its costliest queries: "
                f"they scanned {_pct(m.measured_fraction)} of the current layout's bytes "
                f"({_pct(m.measured_row_group_fraction)} of its row groups); the estimate for "
                f"the same {m.queries} queries was {_pct(m.estimated_fraction)}, an error of "
                f"{_pct(m.relative_error)}. {escape(m.note[:1].upper() + m.note[1:])}. The "
                f"estimate over the whole history, {_pct(r.saving.fraction_scanned)}, covers "
                f"all {r.saving.replayed_jobs:,} replayed jobs, each at its own time.</p>"
            )
        details.append(
            f"<h3><code>{escape(r.table)}</code></h3>"
            f"<p>Why (costs {over(days)}): {escape(r.partition_reason)}. Instead: "
            f"{escape(r.ingestion_time_alternative)}.</p>"
            f"<p>Estimated saving {usd_over_and_per_year(r.saving.saving_usd, days)}, of the "
            f"{usd_over(r.saving.cost_usd, days)} its queries cost: "
            f"{r.saving.replayed_jobs:,} of {r.saving.jobs:,} jobs replayed on the "
            f"{escape(r.saving.data_model)}; {_pct(r.saving.fraction_scanned)} of the bytes "
            "scanned.</p>"
            f"{proof}"
            f"{'<ul>' + notes + '</ul>' if notes else ''}"
            f"<pre><code>{escape(r.ddl)}</code></pre>"
        )
    return (
        '<section id="layout">\n<h2>Table layout recommendations</h2>\n'
        f"<p>Estimated saving {usd_over_and_per_year(advice.total_saving_usd, days)}, "
        "replaying the history's predicates against each proposed layout. <i>Bytes scanned</i> "
        "is the proposed layout's share of the current one's bytes, weighted by what each "
        "pattern bills: estimated over every replayed job of the history, and checked on the "
        "costliest single-table queries, run on the local copy rebuilt in both layouts "
        "(measured, and estimated for those same queries).</p>\n"
        '<div class="scroll"><table><thead><tr><th rowspan="2">Table</th>'
        '<th rowspan="2">Now</th><th rowspan="2">Proposed</th>'
        f'<th class="num" rowspan="2">Saving, {span(days)}</th>'
        '<th class="num" rowspan="2">Bytes scanned, est. over the history</th>'
        '<th class="num" colspan="2">Check on the local copy</th></tr>'
        '<tr><th class="num">measured</th><th class="num">estimated, same queries</th></tr>'
        "</thead><tbody>\n"
        f"{rows}\n</tbody></table></div>\n" + "\n".join(details) + "\n</section>"
    )


def render_advice_html(advice: Advice, *, history_days: int | None = None) -> str:
    """A self-contained HTML page of the advice."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>costline advise</title><style>{stylesheet()}</style></head><body><main>"
        f"{advice_section(advice, history_days=history_days)}</main></body></html>\n"
    )
