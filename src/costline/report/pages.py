"""What every HTML page and section of costline renders with: one jinja environment (money
with its period, counts with thousands separators) and plotly figures as fragments."""

from __future__ import annotations

import re
from functools import cache

import plotly.graph_objects as go
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from costline.report.money import (
    over,
    per_year,
    span,
    usd,
    usd_over,
    usd_over_and_per_year,
    usd_per_year_of,
)
from costline.report.text import one_line, size


def count(n: float) -> str:
    """``12,345``: a count with thousands separators."""
    return f"{n:,.0f}"


def pct(x: float) -> str:
    """``12.3%``."""
    return f"{x:.1%}"


def breakable(name: str) -> Markup:
    """A dotted name (a table, a reservation), escaped, that may wrap after its dots and
    colons rather than push its column wide."""
    return Markup(re.sub(r"([.:])", r"\1<wbr>", str(escape(name))))


@cache
def environment() -> Environment:
    """The jinja environment of the report templates, with their filters."""
    env = Environment(
        loader=PackageLoader("costline.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    env.filters.update(
        usd=usd,
        usd_over=usd_over,
        usd_over_and_per_year=usd_over_and_per_year,
        usd_per_year_of=usd_per_year_of,
        per_year=per_year,
        over=over,
        span=span,
        size=size,
        one_line=one_line,
        count=count,
        pct=pct,
        breakable=breakable,
    )
    return env


def figure_div(fig: go.Figure) -> str:
    """A figure as an HTML fragment that resizes with its card (plotly.js not included). Its
    title becomes a heading above it, which wraps on a narrow screen where a plotly title would
    run under the tool bar."""
    fig = go.Figure(fig)
    title = fig.layout.title.text
    fig.update_layout(title=None, margin={"t": 30})
    heading = f'<h3 class="chart-title">{escape(title)}</h3>' if title else ""
    div = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        config={"displaylogo": False, "responsive": True},
    )
    return f'<figure class="chart">{heading}{div}</figure>'
