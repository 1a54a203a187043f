"""The stylesheet every self-contained HTML page of costline inlines."""

from __future__ import annotations

from importlib import resources


def stylesheet() -> str:
    """The report stylesheet, inlined into every self-contained HTML page costline writes."""
    return resources.files("costline.report").joinpath("templates/report.css").read_text("utf-8")
