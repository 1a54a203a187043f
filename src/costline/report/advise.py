"""Renderers of table-layout advice: text for a terminal, a self-contained HTML page and the
HTML section the audit report embeds. They print an :class:`Advice`; they never recompute."""

from __future__ import annotations

from html import escape

from costline.report.text import size, usd
from costline.warehouse.layout import Advice, Recommendation


def _pct(x: float) -> str:
    return f"{x:.1%}"


def render_advice_text(advice: Advice) -> str:
    """Plain text: one block per table, the DDL of the changed ones."""
    lines = [
        f"Table layout advice: {len(advice.recommendations)} "
        f"table{'s' if len(advice.recommendations) != 1 else ''}, "
        f"estimated saving {usd(advice.total_saving_usd)} over the history",
        "",
    ]
    for r in advice.recommendations:
        lines.append(f"{r.table}  ({usd(r.saving.cost_usd)} of queries replayed)")
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
                lines.append(f"  clusters: {served} (cost of the filters each serves)")
            lines.append(f"  instead:  {r.ingestion_time_alternative}")
            s = r.saving
            lines.append(
                f"  saving:   {usd(s.saving_usd)} ({size(s.billed_bytes)} -> "
                f"{size(s.estimated_bytes)}, {_pct(s.fraction_scanned)} scanned); "
                f"{s.replayed_jobs:,} of {s.jobs:,} jobs replayed on the {s.data_model}"
            )
        if r.measured is not None:
            m = r.measured
            verdict = "within" if m.within_tolerance else "NOT within"
            lines.append(
                f"  measured: {m.engine}, {m.queries} queries: {_pct(m.measured_fraction)} of "
                f"the bytes scanned (estimate {_pct(m.estimated_fraction)}; error "
                f"{_pct(m.relative_error)}, {verdict} 20%)"
            )
        for note in r.notes:
            lines.append(f"  note:     {note}")
        if r.changed:
            lines.append("")
            lines.extend("    " + line for line in r.ddl.splitlines())
        lines.append("")
    return "\n".join(lines)


def _row(r: Recommendation) -> str:
    m = r.measured
    measured = (
        f"{_pct(m.measured_fraction)} (estimate {_pct(m.estimated_fraction)} on the same "
        f"{m.queries} queries)"
        if m is not None
        else "-"
    )
    return (
        f"<tr><td><code>{escape(r.table)}</code></td>"
        f"<td>{escape(r.current.describe())}</td>"
        f"<td>{escape(r.proposed.describe()) if r.changed else 'keep'}</td>"
        f'<td class="num">{usd(r.saving.saving_usd)}</td>'
        f'<td class="num">{_pct(r.saving.fraction_scanned)}</td>'
        f'<td class="num">{measured}</td></tr>'
    )


def advice_section(advice: Advice) -> str:
    """The ``<section>`` the audit report and the advice page show."""
    rows = "\n".join(_row(r) for r in advice.recommendations)
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
                f"<p>Measured on {escape(m.engine)}: {m.queries} queries scanned "
                f"{_pct(m.measured_fraction)} of the current layout's bytes "
                f"({_pct(m.measured_row_group_fraction)} of its row groups); the estimate was "
                f"{_pct(m.estimated_fraction)}, an error of {_pct(m.relative_error)}. "
                f"{escape(m.note[:1].upper() + m.note[1:])}.</p>"
            )
        details.append(
            f"<h3><code>{escape(r.table)}</code></h3>"
            f"<p>{escape(r.partition_reason)}. Instead: "
            f"{escape(r.ingestion_time_alternative)}.</p>"
            f"<p>Estimated saving {usd(r.saving.saving_usd)} of {usd(r.saving.cost_usd)}: "
            f"{r.saving.replayed_jobs:,} of {r.saving.jobs:,} jobs replayed on the "
            f"{escape(r.saving.data_model)}.</p>{proof}"
            f"{'<ul>' + notes + '</ul>' if notes else ''}"
            f"<pre><code>{escape(r.ddl)}</code></pre>"
        )
    return (
        '<section id="layout">\n<h2>Table layout recommendations</h2>\n'
        f"<p>Estimated saving {usd(advice.total_saving_usd)}, replaying the history's "
        "predicates against each proposed layout; measured: the same queries on the local copy "
        "rebuilt in both layouts (fraction of bytes scanned, proposed over current).</p>\n"
        "<table><thead><tr><th>Table</th><th>Now</th><th>Proposed</th><th>Saving</th>"
        "<th>Scanned (est.)</th><th>Scanned (measured)</th></tr></thead><tbody>\n"
        f"{rows}\n</tbody></table>\n" + "\n".join(details) + "\n</section>"
    )


def render_advice_html(advice: Advice) -> str:
    """A self-contained HTML page of the advice."""
    from costline.report.style import stylesheet

    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>costline advise</title><style>{stylesheet()}</style></head><body>"
        f"{advice_section(advice)}</body></html>\n"
    )
