"""``costline audit``: every analysis on a workspace, one result, one HTML report.

A workspace is a directory with a job history (``jobs.jsonl``, ``jobs.parquet`` or
``jobs.csv``; several ``jobs*.…`` files are read together) and, optionally, a table catalogue
``catalog.json``. Later analyses (lint, advise, merge, capacity) add their sections here.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ConfigDict

from costline.core.errors import CostlineError
from costline.core.prices import PriceCatalogue
from costline.core.progress import Progress
from costline.core.results import Result
from costline.warehouse.catalog_read import load_catalog
from costline.warehouse.drivers import Driver, cost_drivers
from costline.warehouse.jobs import detect_format, read_history
from costline.warehouse.layout import Advice, advise
from costline.warehouse.linter import LintResult, lint_history
from costline.warehouse.merge.find import MergeFinding, find_full_table_merge
from costline.warehouse.profiler import Profile, profile_history
from costline.warehouse.slots import CapacityResult, plan_capacity, usage_from_history


class Skipped(Result):
    """A section of the audit that did not run, and why."""

    model_config = ConfigDict(frozen=True)

    section: str
    reason: str


class AuditResult(Result):
    """Everything the audit found, as rendered by the text summary and the HTML report."""

    model_config = ConfigDict(frozen=True)

    workspace: str
    profile: Profile
    drivers: tuple[Driver, ...]
    merge: MergeFinding | None = None
    capacity: CapacityResult | None = None
    layout: Advice | None = None
    lint: LintResult | None = None
    """SQL anti-patterns in the history's query patterns, costliest first."""
    skipped: tuple[Skipped, ...] = ()
    """Sections that did not run (or ran with less), each with the reason."""


def workspace_history(directory: Path) -> list[Path]:
    """The job-history files of a workspace directory."""
    if not directory.is_dir():
        raise CostlineError(f"{directory}: no such workspace directory")
    files = sorted(p for p in directory.glob("jobs*") if p.is_file() and _is_history(p))
    if not files:
        raise CostlineError(
            f"{directory}: no job history found (expected jobs.jsonl, jobs.parquet or jobs.csv, "
            "optionally .gz); `costline demo init DIR` builds an example workspace"
        )
    return files


def _is_history(path: Path) -> bool:
    try:
        detect_format(path)
    except CostlineError:
        return False
    return True


def run_audit(
    directory: Path,
    prices: PriceCatalogue,
    *,
    progress: Progress | None = None,
) -> AuditResult:
    """Profile the workspace's history and run every analysis on it (the caller renders the
    result: ``costline.report``)."""
    catalog_path = directory / "catalog.json"
    catalog = load_catalog(catalog_path) if catalog_path.is_file() else None
    history = read_history(workspace_history(directory), require_jobs=True)
    skipped: list[Skipped] = []
    if catalog is None:
        why = f"no table catalogue ({catalog_path} is missing; `costline catalog` writes one)"
        skipped += [
            Skipped(section="layout", reason=why),
            Skipped(section="merge", reason=why),
            Skipped(section="lint", reason=f"ran without table metadata: {why}"),
        ]
    profile = profile_history(history, prices, catalog=catalog, progress=progress)
    capacity = plan_capacity(usage_from_history(history, prices), prices, progress=progress)
    result = AuditResult(
        workspace=str(directory),
        profile=profile,
        drivers=tuple(cost_drivers(profile, catalog)),
        merge=find_full_table_merge(profile.fingerprints, catalog, directory, progress=progress)
        if catalog is not None
        else None,
        capacity=capacity,
        lint=lint_history(
            profile.fingerprints,
            source="jobs",
            catalog=catalog,
            history=history,
            prices=prices,
            progress=progress,
        ),
        layout=advise(profile, history, catalog, prices, catalog_dir=directory, prove=1)
        if catalog is not None
        else None,
        skipped=tuple(skipped),
    )
    return result
