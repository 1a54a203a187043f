"""The look every self-contained HTML page of costline shares: the stylesheet, the colours and
the plotly layout of its charts."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from typing import Any

# A fixed qualitative palette (Tableau 10 without its grey, then the lighter Tableau 20 tones):
# neighbours differ in hue, so stacked areas stay apart. Grey is kept for "no label".
CATEGORY_COLOURS = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#b07aa1",
    "#edc948",
    "#76b7b2",
    "#9c755f",
    "#ff9da7",
    "#1f3b73",
    "#8cd17d",
    "#b6992d",
    "#d37295",
    "#499894",
    "#a0cbe8",
    "#ffbe7d",
)
MUTED_COLOUR = "#a0a4a8"
"""Grey: what carries no label, and reference data behind the main series."""

# Thousands separators on every axis and in every hover text (d3-format).
COUNT_FORMAT = ",.0f"
USD_FORMAT = "$,.0f"


def stylesheet() -> str:
    """The report stylesheet, inlined into every self-contained HTML page costline writes."""
    return resources.files("costline.report").joinpath("templates/report.css").read_text("utf-8")


def category_colours(names: Iterable[str], *, muted: str | None = None) -> dict[str, str]:
    """A colour per name, in order: distinct for up to ``len(CATEGORY_COLOURS)`` names (then
    the palette repeats); the ``muted`` name, if any, is grey."""
    out: dict[str, str] = {}
    coloured = 0
    for name in names:
        if name == muted:
            out[name] = MUTED_COLOUR
        else:
            out[name] = CATEGORY_COLOURS[coloured % len(CATEGORY_COLOURS)]
            coloured += 1
    return out


def chart_layout(**extra: Any) -> dict[str, Any]:
    """The layout every chart shares: white, the legend under the plot (it then never covers
    the data, and a phone's width goes to the plot), separators in the numbers."""
    layout: dict[str, Any] = {
        "template": "plotly_white",
        "margin": {"l": 70, "r": 20, "t": 50, "b": 40},
        "height": 420,
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0},
        "separators": ".,",
        "hoverlabel": {"namelength": -1},
    }
    layout.update(extra)
    return layout
