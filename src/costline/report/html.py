"""Self-contained HTML reports (plotly.js inlined once, no CDN, no network at view time)."""

from __future__ import annotations

from functools import cache

import plotly.graph_objects as go
from jinja2 import Environment, PackageLoader, select_autoescape
from plotly.offline import get_plotlyjs

from costline.auditor import AuditResult
from costline.report.style import stylesheet
from costline.report.text import one_line, size, usd
from costline.warehouse.profiler import Profile

_PALETTE = ("#1f5fa8", "#e07b39", "#3a9a5b", "#c0392b", "#8e5ea2", "#7f8c8d", "#d4a017", "#16a085")


@cache
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("costline.report", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    env.filters.update(usd=usd, size=size, one_line=one_line, pct=lambda x: f"{x:.1%}")
    return env


def _div(fig: go.Figure) -> str:
    fig.update_layout(
        template="plotly_white", margin={"l": 60, "r": 20, "t": 50, "b": 50}, height=380
    )
    return str(fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False}))


def daily_cost_by_team(p: Profile) -> go.Figure:
    """Stacked daily cost per team."""
    fig = go.Figure()
    for i, (team, days) in enumerate(sorted(p.daily_by_team.items())):
        fig.add_trace(
            go.Scatter(
                x=[d["date"].isoformat() for d in days],
                y=[round(d["cost_usd"], 2) for d in days],
                name=team,
                stackgroup="cost",
                line={"width": 0.5, "color": _PALETTE[i % len(_PALETTE)]},
            )
        )
    fig.update_layout(title=f"Daily cost by {p.team_label}", yaxis_title="USD / day")
    return fig


def pareto(p: Profile, limit: int = 40) -> go.Figure:
    """Cost per pattern (bars) and cumulative share (line): how few patterns make the bill."""
    fps = p.fingerprints[:limit]
    names = [f"#{i}" for i in range(1, len(fps) + 1)]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=names,
            y=[round(fp.cost_usd, 2) for fp in fps],
            name="cost",
            marker_color=_PALETTE[0],
            hovertext=[
                f"{fp.statement_type} {fp.id}<br>{one_line(fp.example_query, 90)}" for fp in fps
            ],
        )
    )
    fig.add_trace(
        go.Scatter(
            x=names,
            y=list(p.pareto.cumulative_share[:limit]),
            name="cumulative share",
            yaxis="y2",
            line={"color": _PALETTE[1]},
        )
    )
    fig.update_layout(
        title=f"Pareto of query patterns ({p.pareto.fingerprints_for_80pct} make 80% of cost)",
        yaxis={"title": "USD"},
        yaxis2={"overlaying": "y", "side": "right", "range": [0, 1.02], "tickformat": ".0%"},
        legend={"orientation": "h"},
    )
    return fig


def top_tables(p: Profile, limit: int = 15) -> go.Figure:
    """Attributed cost per table."""
    tables = list(reversed(p.tables[:limit]))
    fig = go.Figure(
        go.Bar(
            x=[round(t.cost_usd, 2) for t in tables],
            y=[t.name for t in tables],
            orientation="h",
            marker_color=_PALETTE[2],
            hovertext=[t.partitioning for t in tables],
        )
    )
    fig.update_layout(title="Top tables by attributed cost", xaxis_title="USD")
    return fig


def render_profile_html(p: Profile) -> str:
    """The profile alone as a self-contained page."""
    return _page(p, None)


def render_audit_html(result: AuditResult) -> str:
    """The audit report: summary, plots, cost drivers, findings."""
    return _page(result.profile, result)


def _page(p: Profile, result: AuditResult | None) -> str:
    plots = {
        "teams": _div(daily_cost_by_team(p)),
        "pareto": _div(pareto(p)),
        "tables": _div(top_tables(p)),
    }
    capacity = ""
    if result is not None and result.capacity is not None:
        from costline.report.capacity import capacity_plots, capacity_section

        capacity = capacity_section(result.capacity, capacity_plots(result.capacity))
    layout = ""
    if result is not None and result.layout is not None:
        from costline.report.advise import advice_section

        layout = advice_section(result.layout)
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            r=result,
            p=p,
            source=result.workspace if result is not None else ", ".join(p.sources),
            plots=plots,
            capacity=capacity,
            layout=layout,
            plotlyjs=get_plotlyjs(),
            css=stylesheet(),
        )
    )
