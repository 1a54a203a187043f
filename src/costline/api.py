"""The Python API: every analysis as one function, re-exported from ``costline``.

Each function takes file paths as ``str`` or :class:`~pathlib.Path`, the catalogue as a
:class:`Catalog` or the path of one in any of its forms, and the prices as a
:class:`PriceCatalogue` or the path of an override file (default: the packaged catalogue). The
results are typed values with ``to_dict()`` and ``to_json()``. Bad input raises
:class:`~costline.core.errors.CostlineError` naming the file, line or field.

>>> import costline
>>> history = costline.read_history("ws/jobs.jsonl")
>>> profile = costline.profile(history, catalog="ws/catalog.json")
>>> advice = costline.advise(profile, catalog="ws/catalog.json")
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

from costline.auditor import AuditResult
from costline.core.errors import CostlineError
from costline.core.files import read_text
from costline.core.prices import Edition, PriceCatalogue, load_prices
from costline.core.progress import Progress
from costline.core.results import Result
from costline.demo import Workspace
from costline.warehouse.billing import ReservationSetup
from costline.warehouse.catalog import Catalog
from costline.warehouse.jobs import JobHistory
from costline.warehouse.layout import Advice
from costline.warehouse.linter import LintConfig, LintResult
from costline.warehouse.merge.prove import DEFAULT_PARTITIONS, DEFAULT_ROWS, MergeProof
from costline.warehouse.merge.rewrite import MergeRewrite
from costline.warehouse.profiler import Profile
from costline.warehouse.slots import CapacityResult

PathLike = str | os.PathLike[str]
CatalogLike = Catalog | PathLike
PricesLike = PriceCatalogue | PathLike


def _path(value: PathLike, what: str) -> Path:
    if isinstance(value, str | os.PathLike):
        return Path(value)
    raise CostlineError(f"{what}: expected a path (str or Path), got {type(value).__name__}")


def _paths(value: PathLike | Sequence[PathLike], what: str) -> list[Path]:
    if isinstance(value, str | os.PathLike):
        return [_path(value, what)]
    if isinstance(value, Sequence):
        return [_path(v, what) for v in value]
    raise CostlineError(f"{what}: expected a path or a list of paths, got {type(value).__name__}")


def _prices(prices: PricesLike | None) -> PriceCatalogue:
    if prices is None or isinstance(prices, PriceCatalogue):
        return prices or load_prices()
    return load_prices(_path(prices, "prices"))


def _catalog(catalog: CatalogLike | None) -> Catalog | None:
    if catalog is None or isinstance(catalog, Catalog):
        return catalog
    from costline.warehouse.catalog_read import load_catalog

    return load_catalog(_path(catalog, "catalog"))


def _catalog_dir(catalog: CatalogLike | None) -> Path | None:
    """Where a catalogue's local table copies are: the directory of its file."""
    if catalog is None or isinstance(catalog, Catalog):
        return None
    path = Path(catalog)
    return path if path.is_dir() else path.parent


def _sql_text(sql: str | os.PathLike[str]) -> tuple[str, str]:
    """SQL given as text, or as a path to a file holding it: the text and where it came from."""
    if not isinstance(sql, os.PathLike):
        return sql, "statement"
    path = Path(sql)
    return read_text(path), str(path)


def _history(source: JobHistory | PathLike | Sequence[PathLike]) -> JobHistory:
    if not isinstance(source, JobHistory):
        return read_history(source)
    source.require_jobs(", ".join(r.source for r in source.reports) or "the job history")
    return source


def read_history(paths: PathLike | Sequence[PathLike], *, epoch_unit: str = "auto") -> JobHistory:
    """A job history (``INFORMATION_SCHEMA.JOBS`` as JSONL, a JSON array, CSV or Parquet,
    optionally gzipped; several files at once). Bad rows are kept out and listed in
    ``.problems``; an unreadable file, or one in which no row is usable, raises (saying why
    the rows were rejected, counted by reason). Times written as epoch numbers are read in
    ``epoch_unit`` (``s``, ``ms``, ``us``, ``ns``; ``auto`` tells them by their digits)."""
    from costline.warehouse.jobs import EPOCH_UNITS, EpochUnit
    from costline.warehouse.jobs import read_history as read

    if epoch_unit not in EPOCH_UNITS:
        raise CostlineError(f"epoch unit {epoch_unit!r}: expected one of {', '.join(EPOCH_UNITS)}")
    unit = cast("EpochUnit", epoch_unit)
    return read(_paths(paths, "job history"), epoch_unit=unit, require_jobs=True)


def _window(days: int) -> tuple[dt.datetime, dt.datetime]:
    if days < 1:
        raise CostlineError(f"days must be at least 1 (got {days})")
    end = dt.datetime.now(dt.UTC)
    return end - dt.timedelta(days=days), end


def read_bigquery_history(
    project: str, *, region: str = "us", days: int = 90, client: object = None
) -> JobHistory:
    """The last ``days`` days of ``project``'s job history, read live from
    ``region-REGION.INFORMATION_SCHEMA.JOBS_BY_PROJECT`` with the application-default
    credentials (other users' jobs need ``bigquery.jobs.listAll``: when every job read belongs
    to one user, ``.notes`` says so). No job in the window raises."""
    from costline.warehouse.jobs import live_source, read_bigquery

    start, end = _window(days)
    history = read_bigquery(project, region=region, start=start, end=end, client=client)
    history.require_jobs(f"{live_source(project, region)} over the last {days} days")
    return history


class LiveWorkspace(Result):
    """A workspace directory filled from a live BigQuery project."""

    root: Path
    jobs: int
    tables: int
    notes: tuple[str, ...] = ()


def read_bigquery_workspace(
    project: str,
    directory: PathLike,
    *,
    region: str = "us",
    days: int = 90,
    replace: bool = False,
    client: object = None,
) -> LiveWorkspace:
    """Fill a new workspace ``directory`` from BigQuery ``project``: the last ``days`` days of
    ``INFORMATION_SCHEMA.JOBS_BY_PROJECT`` as ``jobs.parquet`` (BigQuery's columns, as read)
    and the table catalogue as ``catalog.json`` — what :func:`audit` reads. The directory
    appears whole or not at all; a non-empty one is refused unless ``replace``."""
    import pyarrow.parquet as pq

    from costline.core.files import build_directory
    from costline.warehouse.catalog import save_catalog as save
    from costline.warehouse.catalog_bigquery import fetch_catalog as fetch
    from costline.warehouse.jobs import (
        history_from_arrow,
        live_source,
        query_bigquery_jobs,
        visibility_warning,
    )

    target = _path(directory, "workspace").resolve()
    start, end = _window(days)
    with build_directory(target, replace=replace, what="workspace directory") as root:
        table = query_bigquery_jobs(project, region=region, start=start, end=end, client=client)
        history = history_from_arrow(table, source=live_source(project, region))
        history.require_jobs(f"{live_source(project, region)} over the last {days} days")
        pq.write_table(table, root / "jobs.parquet")
        catalog = fetch(project, region=region, client=client)
        save(catalog, root / "catalog.json")
        warning = visibility_warning(history)
    return LiveWorkspace(
        root=target,
        jobs=history.jobs,
        tables=len(catalog.tables),
        notes=(warning,) if warning else (),
    )


def profile(
    history: JobHistory | PathLike | Sequence[PathLike],
    *,
    catalog: CatalogLike | None = None,
    prices: PricesLike | None = None,
    region: str | None = None,
    edition: str = "enterprise",
    team_label: str = "team",
    reservations_timeline: PathLike | None = None,
    reservations: PathLike | Mapping[str, ReservationSetup] | None = None,
    fluid: bool = False,
    progress: Progress | None = None,
) -> Profile:
    """Cost per query pattern, attribution, Pareto and table access of a job history; the
    reservations billed for what they allocated (see ``costline profile``)."""
    from costline.warehouse.billing import load_setups
    from costline.warehouse.profiler import profile_history

    return profile_history(
        _history(history),
        _prices(prices),
        catalog=_catalog(catalog),
        default_edition=Edition.parse(edition),
        team_label=team_label,
        progress=progress,
        region=region,
        reservations_timeline=None
        if reservations_timeline is None
        else _path(reservations_timeline, "reservations timeline"),
        reservation_setups=reservations
        if reservations is None or isinstance(reservations, Mapping)
        else load_setups(_path(reservations, "reservations")),
        fluid=fluid,
    )


def lint(
    paths: PathLike | Sequence[PathLike] | None = None,
    *,
    sql: str | None = None,
    history: Profile | JobHistory | PathLike | Sequence[PathLike] | None = None,
    catalog: CatalogLike | None = None,
    dialect: str = "bigquery",
    config: LintConfig | None = None,
    prices: PricesLike | None = None,
    jobs: int | None = 1,
    progress: Progress | None = None,
) -> LintResult:
    """Lint SQL files (directories walked for ``*.sql``), one SQL text (``sql=``), or the query
    patterns of a job history (``history=``: a profile, a history or its paths), ranked by
    what each cost. ``config`` (rule selection, per-path options) defaults to all rules in
    ``dialect``; ``jobs`` worker processes lint files (None: one per CPU)."""
    from costline.warehouse.linter import lint_history, lint_paths, lint_sql

    if sum(x is not None for x in (paths, sql, history)) != 1:
        raise CostlineError("lint: give SQL files, sql=TEXT or history=JOBS: one of them")
    settings = config or LintConfig(dialect=dialect)
    rules, _ = settings.options_for("")
    tables = _catalog(catalog)
    if sql is not None:
        return lint_sql(sql, catalog=tables, dialect=settings.dialect, rules=rules)
    if history is not None:
        made = (
            history
            if isinstance(history, Profile)
            else profile(history, catalog=tables, prices=prices, progress=progress)
        )
        source = Path(made.sources[0]).name if made.sources else "history"
        return lint_history(
            made.fingerprints,
            source=source,
            catalog=tables,
            rules=rules,
            dialect=settings.dialect,
            history=made.history,
            prices=_prices(prices),
        )
    assert paths is not None
    given = _paths(paths, "SQL")
    result = lint_paths(given, config=settings, catalog=tables, jobs=jobs, progress=progress)
    names = ", ".join(str(p) for p in given)
    if result.files == 0:
        raise CostlineError(f"{names}: no SQL files in it (*.sql, *.bqsql)")
    counted = result.statements
    if not (counted.linted or counted.unparsed or counted.skipped or result.errors):
        raise CostlineError(f"{names}: no SQL statements (every SQL file is empty)")
    return result


def advise(
    source: Profile | JobHistory | PathLike | Sequence[PathLike],
    catalog: CatalogLike,
    *,
    prices: PricesLike | None = None,
    tables: Sequence[str] | None = None,
    top: int = 6,
    prove: int = 0,
    progress: Progress | None = None,
) -> Advice:
    """Partitioning and clustering advice for the costliest tables, replayed on the history.

    ``source`` is a profile made by :func:`profile` (its history is reused), a job history or
    the paths of one (profiled first)."""
    from costline.warehouse.layout import advise as advise_tables
    from costline.warehouse.layout import catalog_tables

    table_catalog = _catalog(catalog)
    if table_catalog is None:
        raise CostlineError("advise: a catalogue is needed (the tables' layout and sizes)")
    catalog_tables(table_catalog, tables or ())  # an unknown table fails before any work
    price_list = _prices(prices)
    if isinstance(source, Profile):
        made, history = source, source.history
        if history is None:
            raise CostlineError(
                "advise: this profile has no job history (it was read from JSON); "
                "give the history instead"
            )
    else:
        history = _history(source)
        made = profile(history, catalog=table_catalog, prices=price_list)
    return advise_tables(
        made,
        history,
        table_catalog,
        price_list,
        catalog_dir=_catalog_dir(catalog),
        tables=tables,
        top=top,
        prove=prove,
        progress=progress,
    )


def capacity(
    history: JobHistory | PathLike | Sequence[PathLike] | None = None,
    *,
    timeline: PathLike | None = None,
    prices: PricesLike | None = None,
    region: str | None = None,
    resolution: str | int = 1,
    editions: Sequence[str] | None = None,
    max_slots: int | None = None,
    growth: float | str | None = None,
    fluid: bool = False,
    spend_based: bool = False,
    idle_sharing: bool = True,
    queue_tolerance_hours: float = 0.0,
    progress: Progress | None = None,
) -> CapacityResult:
    """Every way to buy the compute of a job history (or of an
    ``INFORMATION_SCHEMA.JOBS_TIMELINE`` export, ``timeline=``), priced on its slot usage at
    ``resolution`` (seconds, or text such as ``"1m"``), and the optimum. ``growth`` prices a
    what-if load change (``0.2`` or ``"20%"``). The best plan makes work wait at most
    ``queue_tolerance_hours`` hours of the period under its cap (Standard's, or
    ``max_slots``)."""
    from costline.warehouse.slots import (
        check_queue_tolerance,
        parse_growth,
        parse_resolution,
        plan_capacity,
        usage_from_history,
        usage_from_timeline,
    )

    if (history is None) == (timeline is None):
        raise CostlineError("capacity: give a job history or a timeline, not both and not neither")
    price_list, notes = _prices(prices).for_region(region)
    seconds = parse_resolution(resolution) if isinstance(resolution, str) else resolution
    chosen = [Edition.parse(e) for e in editions] if editions else None
    what_if = parse_growth(growth) if isinstance(growth, str) else growth
    check_queue_tolerance(queue_tolerance_hours)
    step = progress or (lambda _name, _done: None)
    step("reading usage", 0.0)
    if timeline is not None:
        series = usage_from_timeline(
            _path(timeline, "timeline"),
            price_list,
            resolution_s=seconds,
            by_reservation=not idle_sharing,
        )
    else:
        assert history is not None
        series = usage_from_history(
            _history(history), price_list, resolution_s=seconds, by_reservation=not idle_sharing
        )
    result = plan_capacity(
        series,
        price_list,
        editions=chosen,
        max_slots=max_slots,
        growth=what_if,
        idle_sharing=idle_sharing,
        fluid=fluid,
        spend_based=spend_based,
        queue_tolerance_hours=queue_tolerance_hours,
        progress=progress,
    )
    return result.model_copy(update={"notes": (*notes, *result.notes)}) if notes else result


def rewrite_merge(
    sql: str | os.PathLike[str],
    *,
    catalog: CatalogLike | None = None,
    catalog_name: str | None = None,
    partition_column: str | None = None,
    partition_type: str | None = None,
    strategy: str = "merge",
    scope_by_source: bool = False,
    complete_partitions: bool = False,
) -> MergeRewrite:
    """Rewrite a full-table MERGE partition-scoped. ``sql`` is the statement's text, or a
    :class:`~pathlib.Path` to a file holding it. ``strategy`` is ``merge`` (a scoped MERGE) or
    ``insert-overwrite`` (dbt's, which needs ``complete_partitions``); a precondition that does
    not hold is a refusal in the result (``script`` None), not an error."""
    from costline.warehouse.merge import Strategy
    from costline.warehouse.merge.rewrite import rewrite_merge as rewrite

    text, origin = _sql_text(sql)
    try:
        chosen = Strategy(strategy.replace("_", "-"))
    except ValueError:
        names = ", ".join(s.value for s in Strategy)
        raise CostlineError(f"unknown MERGE strategy {strategy!r} (expected {names})") from None
    if catalog_name is None:
        named = catalog is not None and not isinstance(catalog, Catalog)
        catalog_name = str(catalog) if named else "the catalogue"
    return rewrite(
        text,
        catalog=_catalog(catalog),
        catalog_name=catalog_name,
        partition_column=partition_column,
        partition_type=partition_type,
        strategy=chosen,
        scope_by_source=scope_by_source,
        complete_partitions=complete_partitions,
        origin=origin,
    )


def prove_merge(
    workspace: PathLike | Workspace | None = None,
    *,
    statement: str | os.PathLike[str] | None = None,
    rows: int = DEFAULT_ROWS,
    partitions: int = DEFAULT_PARTITIONS,
    progress: Progress | None = None,
) -> MergeProof:
    """Run a MERGE and its rewrite on a real Delta table of ``rows`` rows over ``partitions``
    daily partitions, and compare what each read, wrote and left (default: the workspace's
    planted MERGE, the demo workspace's when none is given). ``statement`` is the MERGE's
    text, or a :class:`~pathlib.Path` to a file holding it."""
    from costline.warehouse.merge.prove import prove_merge as prove

    return prove(
        _workspace_dir(workspace),
        statement=None if statement is None else _sql_text(statement)[0],
        rows=rows,
        partitions=partitions,
        progress=progress,
    )


def fetch_catalog(project: str, *, region: str = "us", datasets: Sequence[str] = ()) -> Catalog:
    """The table catalogue of BigQuery ``project`` (optionally only ``datasets``) in ``region``,
    read from its ``INFORMATION_SCHEMA`` with the application-default credentials. Write it with
    :func:`save_catalog` for the commands that take ``--catalog``."""
    from costline.warehouse.catalog_bigquery import fetch_catalog as fetch

    return fetch(project, region=region, datasets=datasets)


def save_catalog(catalog: Catalog, path: PathLike) -> Path:
    """Write ``catalog`` to ``path`` as the JSON every ``catalog`` argument reads; returns the
    path."""
    from costline.warehouse.catalog import save_catalog as save

    target = _path(path, "catalogue")
    try:
        save(catalog, target)
    except OSError as exc:
        raise CostlineError(f"cannot write {target}: {exc.strerror}") from None
    return target


def audit(
    workspace: PathLike | Workspace | None = None,
    *,
    prices: PricesLike | None = None,
    progress: Progress | None = None,
) -> AuditResult:
    """Every analysis on a workspace (``catalog.json`` + ``jobs.*``; default: the demo's).
    Render it with :func:`costline.report.html.render_audit_html`."""
    from costline.auditor import run_audit

    return run_audit(_workspace_dir(workspace), _prices(prices), progress=progress)


def _workspace_dir(workspace: PathLike | Workspace | None) -> Path:
    if workspace is None:
        return Workspace.demo().root
    if isinstance(workspace, Workspace):
        return workspace.root
    return _path(workspace, "workspace")


__all__ = [
    "Advice",
    "AuditResult",
    "CapacityResult",
    "Catalog",
    "CostlineError",
    "JobHistory",
    "LintResult",
    "LiveWorkspace",
    "MergeProof",
    "MergeRewrite",
    "PriceCatalogue",
    "Profile",
    "Workspace",
    "advise",
    "audit",
    "capacity",
    "fetch_catalog",
    "lint",
    "profile",
    "prove_merge",
    "read_bigquery_history",
    "read_bigquery_workspace",
    "read_history",
    "rewrite_merge",
    "save_catalog",
]
