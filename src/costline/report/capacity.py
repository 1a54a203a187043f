"""Rendering of a capacity plan: terminal tables, plotly figures, the self-contained page.
Renders a :class:`~costline.warehouse.slots.CapacityResult`; computes nothing."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from rich import box
from rich.console import Console
from rich.table import Table

from costline.report.money import per_year, usd
from costline.report.pages import environment, figure_div
from costline.report.style import (
    CATEGORY_COLOURS,
    COUNT_FORMAT,
    MUTED_COLOUR,
    USD_FORMAT,
    chart_layout,
    stylesheet,
)
from costline.report.text import size
from costline.warehouse.slots import CapacityResult, Plan

_KIND = {
    "on_demand": "on-demand (bytes)",
    "autoscale": "pay-as-you-go autoscale",
    "optimal_commitment": "optimal commitment + autoscale",
    "split_70_30": "70/30 split + autoscale",
    "full_commitment": "commit the billed peak",
    "per_reservation": "each reservation its own optimum (no idle-slot sharing)",
    "spend_based": "autoscale under a spend-based discount",
}
_SHORT = {
    "on_demand": "bytes",
    "autoscale": "autoscale",
    "optimal_commitment": "optimum",
    "split_70_30": "70/30",
    "full_commitment": "peak",
    "per_reservation": "unshared",
    "spend_based": "spend CUD",
}


def plan_name(plan: Plan) -> str:
    """``enterprise 3y: 500 committed + autoscale`` — one line naming a plan."""
    if plan.kind == "on_demand":
        return "on-demand"
    if plan.kind == "spend_based":
        hourly = plan.spend_commitment_usd_per_hour or 0.0
        return f"{plan.edition} {plan.term}: autoscale, ${hourly:,.2f}/h spend committed"
    if plan.commitment_slots == 0:
        return f"{plan.edition} pay-as-you-go autoscale"
    tail = " + autoscale" if plan.kind != "full_commitment" else ""
    if plan.kind == "per_reservation":
        tail += " per reservation, idle slots not shared"
    return f"{plan.edition} {plan.term}: {plan.commitment_slots:,} committed slots{tail}"


def _period(r: CapacityResult) -> str:
    if r.start is None or r.end is None:
        return "no usage"
    return (
        f"{r.start:%Y-%m-%d %H:%M} → {r.end:%Y-%m-%d %H:%M} UTC "
        f"({r.period_days:,.1f} days, {r.resolution_seconds}s resolution)"
    )


def _best_per_group(plans: tuple[Plan, ...]) -> list[Plan]:
    return [p for p in plans if p.optimal]


def print_capacity(console: Console, r: CapacityResult) -> None:
    """The plan comparison, the optimum and why, the forecast and the what-if."""
    u = r.usage
    console.print(f"[bold]slot usage[/] of {r.jobs:,} jobs: {_period(r)}", highlight=False)
    console.print(
        f"  {u.slot_hours:,.0f} slot-hours; slots: mean {u.mean_slots:,.0f}, p50 "
        f"{u.p50_slots:,.0f}, p95 {u.p95_slots:,.0f}, p99 {u.p99_slots:,.0f}, peak "
        f"{u.peak_slots:,.0f}\n  (the autoscaler bills up to {u.billed_peak_slots:,})",
        highlight=False,
    )
    if r.on_demand_bytes_billed is not None:
        console.print(f"  {size(r.on_demand_bytes_billed)} billed on demand", highlight=False)
    t = Table(
        title="Plans (annual cost at the observed load)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
    for name in ("edition", "term", "plan"):
        t.add_column(name, no_wrap=True)
    for name in ("committed", "annual cost", "share", ""):
        t.add_column(name, justify="right", no_wrap=True)
    for p in r.plans:
        mark = "optimal" if p.optimal and p.kind != "on_demand" else ""
        if r.best is not None and p == r.best:
            mark = "[bold green]best[/]"
        t.add_row(
            p.edition,
            p.term,
            _SHORT[p.kind],
            f"{p.commitment_slots:,}",
            usd(p.annual_cost_usd),
            f"{p.committed_share:.0%}",
            mark,
        )
    console.print(t)
    best = r.best
    if best is not None:
        line = (
            f"[bold]best plan:[/] {plan_name(best)}:\n  [bold]{usd(best.annual_cost_usd)}[/]/year"
        )
        od = next((p for p in r.plans if p.kind == "on_demand"), None)
        if od is not None and od.annual_cost_usd > 0 and best is not od:
            saving = 1 - best.annual_cost_usd / od.annual_cost_usd
            line += f" ({saving:.0%} below on-demand's {usd(od.annual_cost_usd)})"
        if best.commitment_slots:
            line += f"; commitment covers {best.committed_share:.0%} of the slot usage"
        console.print(line, highlight=False)
    if r.curves:
        console.print(
            "why: a 50-slot step pays iff the billed autoscale curve exceeds it over "
            "commit/payg of the time",
            highlight=False,
        )
    for c in r.curves:
        i = c.optimum_slots // 50
        label = f"{c.edition} {c.term}"
        ratio = f"{c.commit_usd_per_slot_hour:g}/{c.payg_usd_per_slot_hour:g}"
        why = f"  {label:<19}{ratio:>10} = {c.break_even_time_share:.0%}"
        why += f"  optimum {c.optimum_slots:>5,}"
        if i >= 1:
            why += f"  (above {c.optimum_slots - 50:,}: {c.time_above[i - 1]:.0%}"
            why += f", above {c.optimum_slots:,}: {c.time_above[i]:.0%} of the time)"
        console.print(why, highlight=False)
    for p in r.plans:
        if p.kind != "per_reservation" or not p.reservation_commitments:
            continue
        pooled = next(
            (q for q in r.plans if q.optimal and (q.edition, q.term) == (p.edition, p.term)), p
        )
        parts = ", ".join(f"{k} {v:,}" for k, v in p.reservation_commitments.items())
        console.print(
            f"unshared {p.edition} {p.term}: {parts};\n  idle-slot sharing saves "
            f"{usd(p.annual_cost_usd - pooled.annual_cost_usd)}/year",
            highlight=False,
        )
    for edition, q in r.queues.items():
        if not q.delayed_seconds and r.max_slots is None:
            continue
        console.print(
            f"{edition}: at most {q.max_slots:,} slots, so work queued "
            f"{q.delayed_seconds / 3600:,.1f} h in all;\n  mean delay "
            f"{q.mean_delay_seconds:,.0f} s, longest {q.max_delay_seconds:,.0f} s"
            + (
                f"; {q.timed_out_slot_hours:,.0f} slot-hours would wait past the "
                f"{q.queue_timeout_seconds / 3600:g} h queue timeout and fail"
                if q.timed_out_seconds
                else ""
            ),
            highlight=False,
        )
    if r.forecast is not None:
        f = r.forecast.fit
        holdout = f"{f.holdout_mape:.1%}" if f.holdout_mape is not None else "n/a"
        mape = f"{f.mape:.1%}" if f.mape is not None else "n/a"
        console.print(
            f"[bold]forecast[/]: {f.method} over {f.days} days;\n"
            f"  fit R² {f.r2:.2f}, MAPE {mape}, last-2-weeks holdout MAPE {holdout}; trend "
            f"{f.trend_slot_hours_per_day:+,.0f} slot-hours/day per day;\n"
            f"  next 12 months {f.next_year_slot_hours:,.0f} slot-hours, ×{f.growth_factor:.2f} "
            f"the observed level{' (clamped at 0)' if f.clamped else ''}. Best plans then:",
            highlight=False,
        )
        for p in _best_per_group(r.forecast.plans):
            console.print(f"  {plan_name(p)}: {usd(p.annual_cost_usd)}", highlight=False)
    if r.what_if is not None:
        console.print(f"[bold]what if[/] the load grows {r.what_if.growth:+.0%}: best plans")
        for p in _best_per_group(r.what_if.plans):
            console.print(f"  {plan_name(p)}: {usd(p.annual_cost_usd)}", highlight=False)
    for note in r.notes:
        console.print(f"[dim]note: {note}[/]", highlight=False)


def term_colours(r: CapacityResult) -> dict[tuple[str, str], str]:
    """One colour per edition and term, the same in every chart (the measured series, used
    and billed slots, keep the palette's first two)."""
    return {
        (c.edition, c.term): CATEGORY_COLOURS[(2 + i) % len(CATEGORY_COLOURS)]
        for i, c in enumerate(r.curves)
    }


def _commitments(r: CapacityResult) -> list[Plan]:
    """The optimal commitments of the best plan's edition, for the reference lines."""
    edition = r.best.edition if r.best is not None else None
    return [p for p in r.plans if p.optimal and p.commitment_slots > 0 and p.edition == edition]


def _commitment_line(p: Plan, x: list[Any], colour: str) -> go.Scatter:
    """A commitment as a dashed level across the plot, named in the legend (a label written on
    the plot would sit on the data)."""
    return go.Scatter(
        x=[x[0], x[-1]] if x else [],
        y=[p.commitment_slots, p.commitment_slots],
        name=f"{p.edition} {p.term} commitment: {p.commitment_slots:,} slots",
        mode="lines",
        line={"color": colour, "dash": "dash", "width": 2},
        hovertemplate=f"{p.edition} {p.term} commitment: %{{y:{COUNT_FORMAT}}} slots"
        "<extra></extra>",
    )


def usage_over_time(r: CapacityResult) -> go.Figure:
    """Hourly mean and peak slots, with the optimal commitment levels."""
    hours = [h.isoformat() for h in r.profile.hours]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=hours,
            y=list(r.profile.peak_slots),
            name="hourly peak",
            line={"color": MUTED_COLOUR, "width": 0.8},
            hovertemplate=f"peak %{{y:{COUNT_FORMAT}}} slots<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=hours,
            y=list(r.profile.mean_slots),
            name="hourly mean",
            line={"color": CATEGORY_COLOURS[0], "width": 1.2},
            hovertemplate=f"mean %{{y:{COUNT_FORMAT}}} slots<extra></extra>",
        )
    )
    colours = term_colours(r)
    for p in _commitments(r):
        fig.add_trace(_commitment_line(p, hours, colours.get((p.edition, p.term), MUTED_COLOUR)))
    fig.update_layout(
        chart_layout(
            title="Slot usage over time",
            yaxis={"title": "slots", "tickformat": COUNT_FORMAT},
            hovermode="x unified",
        )
    )
    return fig


def load_duration(r: CapacityResult) -> go.Figure:
    """Slots against the share of time they are exceeded, used and billed."""
    d = r.load_duration
    x = list(d.time_share)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x,
            y=list(d.usage_slots),
            name="used",
            line={"color": CATEGORY_COLOURS[0]},
            hovertemplate=f"%{{y:{COUNT_FORMAT}}} slots used %{{x:.1%}} of the time<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=list(d.billed_slots),
            name="billed by the autoscaler",
            line={"color": CATEGORY_COLOURS[1], "shape": "hv"},
            hovertemplate=f"%{{y:{COUNT_FORMAT}}} slots billed %{{x:.1%}} of the time"
            "<extra></extra>",
        )
    )
    colours = term_colours(r)
    for p in _commitments(r):
        fig.add_trace(_commitment_line(p, x, colours.get((p.edition, p.term), MUTED_COLOUR)))
    fig.update_layout(
        chart_layout(
            title="Load-duration curve",
            xaxis={"title": "share of the time at or above", "tickformat": ".0%"},
            yaxis={"title": "slots", "tickformat": COUNT_FORMAT},
        )
    )
    return fig


def cost_vs_commitment(r: CapacityResult) -> go.Figure:
    """Annual cost at every commitment level, per edition and term, optimum marked."""
    fig = go.Figure()
    colours = term_colours(r)
    for c in r.curves:
        colour = colours[(c.edition, c.term)]
        name = f"{c.edition} {c.term}"
        fig.add_trace(
            go.Scatter(
                x=list(c.commitment_slots),
                y=list(c.annual_cost_usd),
                name=name,
                legendgroup=name,
                line={"color": colour},
                hovertemplate=f"{name}: %{{x:{COUNT_FORMAT}}} committed, "
                f"%{{y:{USD_FORMAT}}}/year<extra></extra>",
            )
        )
        # The optimum is named in the legend: curves often share an optimum, and labels
        # written beside the markers then print over each other.
        fig.add_trace(
            go.Scatter(
                x=[c.optimum_slots],
                y=[c.optimum_annual_cost_usd],
                name=f"{name} optimum: {c.optimum_slots:,} slots, "
                f"{per_year(c.optimum_annual_cost_usd)}",
                legendgroup=name,
                mode="markers",
                marker={
                    "color": colour,
                    "size": 12,
                    "symbol": "star",
                    "line": {"color": "#ffffff", "width": 1},
                },
                hovertemplate=f"{name} optimum: %{{x:{COUNT_FORMAT}}} committed, "
                f"%{{y:{USD_FORMAT}}}/year<extra></extra>",
            )
        )
    # Past the 95th percentile of usage commitments only get dearer: the view stops there
    # (zoom out for the whole curve).
    top = max((c.commitment_slots[-1] for c in r.curves if c.commitment_slots), default=0)
    optimum = max((c.optimum_slots for c in r.curves), default=0)
    right = min(top, max(r.usage.p95_slots, 3 * optimum, 500))
    fig.update_layout(
        chart_layout(
            title="Annual cost vs commitment (autoscale above it)",
            xaxis={"title": "committed slots", "range": [0, right], "tickformat": COUNT_FORMAT},
            yaxis={"title": "USD per year", "tickformat": USD_FORMAT},
            height=480,
        )
    )
    return fig


def capacity_plots(r: CapacityResult) -> dict[str, str]:
    """The three capacity plots as HTML fragments (plotly.js not included)."""
    return {
        "capacity_usage": figure_div(usage_over_time(r)),
        "capacity_duration": figure_div(load_duration(r)),
        "capacity_cost": figure_div(cost_vs_commitment(r)),
    }


def capacity_section(r: CapacityResult, plots: dict[str, str]) -> str:
    """The capacity section (tables and plots) as an HTML fragment."""
    return (
        environment()
        .get_template("capacity_section.html.j2")
        .render(c=r, plots=plots, plan_name=plan_name, kind_name=_KIND.get)
    )


def render_capacity_html(r: CapacityResult) -> str:
    """The capacity plan as a self-contained page (plotly.js inlined)."""
    section = capacity_section(r, capacity_plots(r))
    return (
        environment()
        .get_template("capacity.html.j2")
        .render(c=r, section=section, plotlyjs=get_plotlyjs(), css=stylesheet())
    )
