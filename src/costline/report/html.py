"""Self-contained HTML reports (plotly.js inlined once, no CDN, no network at view time)."""

from __future__ import annotations

import datetime as dt
import math

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from costline.auditor import AuditResult
from costline.report.money import over
from costline.report.pages import environment, figure_div
from costline.report.style import (
    CATEGORY_COLOURS,
    COUNT_FORMAT,
    USD_FORMAT,
    category_colours,
    chart_layout,
    stylesheet,
)
from costline.report.text import one_line
from costline.warehouse.profiler import UNLABELLED, Profile

PARETO_BARS = 40
"""Patterns the Pareto chart shows at least; more when the 80% point lies further out."""


def team_colours(p: Profile) -> dict[str, str]:
    """A distinct colour per team, costliest first; the unlabelled share in grey."""
    by_cost = list(p.attribution.label.get(p.team_label, {}))
    teams = [t for t in by_cost if t in p.daily_by_team]
    teams += sorted(t for t in p.daily_by_team if t not in teams)
    return category_colours(teams, muted=UNLABELLED)


def daily_cost_by_team(p: Profile) -> go.Figure:
    """Stacked daily cost per team; a day a team ran nothing is $0 for it."""
    colours = team_colours(p)
    dates = sorted({d["date"] for days in p.daily_by_team.values() for d in days})
    calendar = (
        [dates[0] + dt.timedelta(days=i) for i in range((dates[-1] - dates[0]).days + 1)]
        if dates
        else []
    )
    fig = go.Figure()
    # Teams stack costliest first from the bottom; the unlabelled share goes on top.
    order = sorted(colours, key=lambda t: t == UNLABELLED)
    for team in order:
        cost = {d["date"]: d["cost_usd"] for d in p.daily_by_team[team]}
        fig.add_trace(
            go.Scatter(
                x=[d.isoformat() for d in calendar],
                y=[round(cost.get(d, 0.0), 2) for d in calendar],
                name=team,
                stackgroup="cost",
                line={"width": 0.5, "color": colours[team]},
                fillcolor=colours[team],
                hovertemplate=f"{team}: %{{y:{USD_FORMAT}}}<extra></extra>",
            )
        )
    fig.update_layout(
        chart_layout(
            title=f"Daily cost by {p.team_label}",
            yaxis={"title": "USD per day", "tickformat": USD_FORMAT},
            hovermode="x unified",
        )
    )
    return fig


def pareto_span(p: Profile) -> int:
    """How many patterns the Pareto chart shows: at least :data:`PARETO_BARS`, and the 80%
    point with a fifth more after it (at least five), never more than there are."""
    n80 = p.pareto.fingerprints_for_80pct
    return min(len(p.fingerprints), max(PARETO_BARS, n80 + max(5, math.ceil(n80 / 5))))


def pareto(p: Profile) -> go.Figure:
    """Cost per pattern (bars) and cumulative share (line), through the point where the
    patterns make 80% of the cost (marked): how few patterns make the bill."""
    shown = pareto_span(p)
    fps = p.fingerprints[:shown]
    ranks = list(range(1, len(fps) + 1))
    cumulative = list(p.pareto.cumulative_share[:shown])
    n80 = p.pareto.fingerprints_for_80pct
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=ranks,
            y=[round(fp.cost_usd, 2) for fp in fps],
            name=f"cost of the pattern {over(p.period.days)}",
            marker_color=CATEGORY_COLOURS[0],
            hovertext=[
                f"{fp.statement_type} {fp.id}<br>{one_line(fp.example_query, 90)}" for fp in fps
            ],
            hovertemplate=f"#%{{x}}: %{{y:{USD_FORMAT}}}<br>%{{hovertext}}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=ranks[: len(cumulative)],
            y=cumulative,
            name="cumulative share of the cost",
            yaxis="y2",
            line={"color": CATEGORY_COLOURS[1]},
            hovertemplate="top %{x}: %{y:.1%}<extra></extra>",
        )
    )
    if 0 < n80 <= len(cumulative):
        fig.add_trace(
            go.Scatter(
                x=[n80],
                y=[cumulative[n80 - 1]],
                name=f"80% of the cost: the top {n80:,} patterns",
                yaxis="y2",
                mode="markers",
                marker={"color": CATEGORY_COLOURS[3], "size": 12, "symbol": "diamond"},
                hovertemplate="top %{x}: %{y:.1%}<extra></extra>",
            )
        )
    if n80 > 0:
        fig.add_vline(x=n80, line={"color": CATEGORY_COLOURS[3], "dash": "dot", "width": 1})
    fig.update_layout(
        chart_layout(
            title=f"Pareto of query patterns ({n80:,} of {p.pareto.fingerprints:,} make 80% of "
            "the cost)",
            xaxis={
                "title": "query patterns, costliest first",
                "range": [0.5, len(fps) + 0.5],
                "tickformat": COUNT_FORMAT,
            },
            yaxis={"title": f"USD {over(p.period.days)}", "tickformat": USD_FORMAT},
            yaxis2={
                "overlaying": "y",
                "side": "right",
                "range": [0, 1.02],
                "tickvals": [0, 0.2, 0.4, 0.6, 0.8, 1.0],
                "tickformat": ".0%",
                "showgrid": False,
            },
            margin={"l": 70, "r": 50, "t": 50, "b": 40},
            bargap=0.15,
        )
    )
    return fig


def top_tables(p: Profile, limit: int = 15) -> go.Figure:
    """Attributed cost per table."""
    tables = list(reversed(p.tables[:limit]))
    fig = go.Figure(
        go.Bar(
            x=[round(t.cost_usd, 2) for t in tables],
            y=[".".join(t.name.split(".")[-2:]) for t in tables],
            orientation="h",
            marker_color=CATEGORY_COLOURS[2],
            hovertext=[f"{t.name}<br>{t.partitioning}" for t in tables],
            hovertemplate=f"%{{x:{USD_FORMAT}}}<br>%{{hovertext}}<extra></extra>",
        )
    )
    fig.update_layout(
        chart_layout(
            title="Top tables by attributed cost",
            xaxis={"title": f"USD {over(p.period.days)}", "tickformat": USD_FORMAT},
            yaxis={"automargin": True},
            height=460,
        )
    )
    return fig


def render_profile_html(p: Profile) -> str:
    """The profile alone as a self-contained page."""
    return _page(p, None)


def render_audit_html(result: AuditResult) -> str:
    """The audit report: summary, plots, cost drivers, findings."""
    return _page(result.profile, result)


def _page(p: Profile, result: AuditResult | None) -> str:
    plots = {
        "teams": figure_div(daily_cost_by_team(p)),
        "pareto": figure_div(pareto(p)),
        "tables": figure_div(top_tables(p)),
    }
    capacity = ""
    if result is not None and result.capacity is not None:
        from costline.report.capacity import capacity_plots, capacity_section

        capacity = capacity_section(result.capacity, capacity_plots(result.capacity))
    layout = ""
    if result is not None and result.layout is not None:
        from costline.report.advise import advice_section

        layout = advice_section(result.layout, history_days=p.period.days)
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            r=result,
            p=p,
            days=p.period.days,
            source=result.workspace if result is not None else ", ".join(p.sources),
            plots=plots,
            capacity=capacity,
            layout=layout,
            plotlyjs=get_plotlyjs(),
            css=stylesheet(),
        )
    )
