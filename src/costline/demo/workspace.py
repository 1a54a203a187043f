"""A demo workspace on disk: tables, catalogue, job history and ground truth.

Layout::

    workspace.json      what was generated (seed, jobs, period, scale) and where
    catalog.json        costline.warehouse.catalog.Catalog at production sizes
    jobs.jsonl          the job history, INFORMATION_SCHEMA.JOBS as newline-delimited JSON
    ground_truth.json   the planted anti-patterns and the costs, for tests and demos
    tables/<dataset>/<table>/...   hive-partitioned Parquet, clustered within partitions
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from costline.core.errors import CostlineError
from costline.core.files import build_directory
from costline.core.progress import Progress
from costline.demo.bank import generate_bank, write_bank
from costline.demo.catalog import demo_catalog
from costline.demo.history import MIN_JOBS, generate_history
from costline.demo.truth import GroundTruth
from costline.demo.warehouse import (
    DEFAULT_END,
    DEFAULT_POSITIONS_ROWS,
    write_generic_tables,
)
from costline.warehouse.catalog import Catalog, save_catalog
from costline.warehouse.catalog_read import load_catalog

WORKSPACE_FILE = "workspace.json"
_FILES = {
    "catalog": "catalog.json",
    "jobs": "jobs.jsonl",
    "ground_truth": "ground_truth.json",
    "tables_dir": "tables",
}


class Workspace(BaseModel):
    """Where a generated workspace's files are, and what it was generated from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    root: Path
    catalog: Path
    jobs: Path
    ground_truth: Path
    tables_dir: Path
    seed: int
    job_count: int
    start: dt.date
    end: dt.date
    days: int
    scale: float
    positions_rows: int

    @classmethod
    def demo(cls, directory: Path | None = None, progress: Progress | None = None) -> Workspace:
        """The demo workspace in ``directory`` (default: :func:`default_workspace_dir`), built
        there the first time (a few tens of seconds), re-opened after."""
        root = Path(directory) if directory is not None else default_workspace_dir()
        if (root / WORKSPACE_FILE).is_file():
            return cls.open(root)
        # The cache directory is costline's own: whatever is in it without a workspace.json
        # is not a workspace, and is replaced.
        return build_workspace(root, progress=progress, replace=directory is None)

    @classmethod
    def build(
        cls,
        directory: Path,
        *,
        jobs: int = 200_000,
        seed: int = 7,
        scale: float = 1.0,
        replace: bool = False,
        progress: Progress | None = None,
    ) -> Workspace:
        """Generate a demo workspace in ``directory`` (see :func:`build_workspace`)."""
        return build_workspace(
            directory, jobs=jobs, seed=seed, scale=scale, replace=replace, progress=progress
        )

    @classmethod
    def open(cls, directory: Path) -> Workspace:
        """Re-open the workspace generated in ``directory`` (reads ``workspace.json``)."""
        root = Path(directory).resolve()
        path = root / WORKSPACE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError:
            raise CostlineError(
                f"{root} is not a demo workspace (no {WORKSPACE_FILE}); "
                "create one with `costline demo init`"
            ) from None
        except json.JSONDecodeError as exc:
            raise CostlineError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
        try:
            files = {key: root / data["files"][key] for key in _FILES}
            return cls(root=root, **files, **{k: v for k, v in data.items() if k != "files"})
        except (KeyError, TypeError, ValidationError) as exc:
            raise CostlineError(f"{path}: not a valid workspace description ({exc})") from None

    def load_catalog(self) -> Catalog:
        """The workspace's catalogue."""
        return load_catalog(self.catalog)

    def load_ground_truth(self) -> GroundTruth:
        """The workspace's ground truth."""
        return GroundTruth.load(self.ground_truth)

    def table_path(self, name: str) -> Path:
        """Directory of the local copy of table ``name`` (full or ``dataset.table``)."""
        meta = self.load_catalog().get(name)
        if meta is None or meta.local_path is None:
            raise CostlineError(f"no local copy of table {name} in {self.root}")
        return self.root / meta.local_path

    def _save(self, directory: Path | None = None) -> None:
        data = self.model_dump(mode="json", exclude=set(_FILES) | {"root"})
        data["files"] = dict(_FILES)
        where = self.root if directory is None else directory
        (where / WORKSPACE_FILE).write_text(json.dumps(data, indent=2) + "\n", "utf-8")


def default_workspace_dir() -> Path:
    """Where the demo workspace is kept when no directory is given (the XDG cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "costline" / "demo"


def build_workspace(
    directory: Path,
    *,
    jobs: int = 200_000,
    seed: int = 7,
    days: int = 90,
    end: dt.date = DEFAULT_END,
    scale: float = 1.0,
    with_query_hashes: bool = True,
    progress: Progress | None = None,
    positions_rows: int = DEFAULT_POSITIONS_ROWS,
    replace: bool = False,
) -> Workspace:
    """Generate a complete demo workspace in ``directory`` and return it.

    The workspace is built under a temporary name beside ``directory`` and renamed into place
    when complete: an interruption leaves nothing half-built. A non-empty ``directory`` is
    refused unless ``replace``.

    ``scale`` multiplies the local tables' row counts (production sizes in the catalogue do not
    change); ``positions_rows`` is the local row count of ``risk.positions`` at scale 1. The job
    history and ground truth depend on ``jobs``, ``seed``, ``days`` and ``end`` only, so the same
    arguments give the same ``jobs.jsonl`` byte for byte. ``progress(step, fraction)`` is called
    as the steps advance (from worker threads, one call at a time).
    """
    if not 0 < scale <= 1.0:
        raise CostlineError(f"scale must be in (0, 1] (got {scale})")
    if jobs < MIN_JOBS:
        raise CostlineError(f"a demo history needs at least {MIN_JOBS:,} jobs (got {jobs:,})")
    if days < 1:
        raise CostlineError(f"days must be at least 1 (got {days})")
    target = Path(directory).resolve()
    with build_directory(target, replace=replace, what="workspace directory") as root:
        truth = _generate(
            root,
            jobs=jobs,
            seed=seed,
            days=days,
            end=end,
            scale=scale,
            with_query_hashes=with_query_hashes,
            progress=progress,
            positions_rows=positions_rows,
        )
        workspace = Workspace(
            root=target,
            **{key: target / name for key, name in _FILES.items()},
            seed=seed,
            job_count=jobs,
            start=truth.period.start,
            end=truth.period.end,
            days=days,
            scale=scale,
            positions_rows=positions_rows,
        )
        workspace._save(root)
    if progress is not None:
        progress("done", 1.0)
    return workspace


def _generate(
    root: Path,
    *,
    jobs: int,
    seed: int,
    days: int,
    end: dt.date,
    scale: float,
    with_query_hashes: bool,
    progress: Progress | None,
    positions_rows: int,
) -> GroundTruth:
    """Write the tables, catalogue, history and ground truth into the (new) directory ``root``."""
    tables = root / _FILES["tables_dir"]
    lock = threading.Lock()

    def report(step: str, fraction: float) -> None:
        if progress is not None:
            with lock:
                progress(step, fraction)

    def warehouse() -> dict[str, int]:
        return write_generic_tables(
            tables,
            seed=seed,
            scale=scale,
            end=end,
            positions_rows=positions_rows,
            progress=lambda f: report("tables", f),
        )

    def bank_and_history() -> tuple[dict[str, int], GroundTruth]:
        report("bank", 0.0)
        counts = write_bank(tables, generate_bank(seed=seed, scale=scale, end=end))
        report("bank", 1.0)
        report("history", 0.0)
        # Jobs bill against production sizes, which the local row counts do not change.
        truth = generate_history(
            root / _FILES["jobs"],
            jobs=jobs,
            seed=seed,
            days=days,
            end=end,
            catalog=demo_catalog(),
            with_query_hashes=with_query_hashes,
        )
        report("history", 1.0)
        return counts, truth

    # Table writing is DuckDB-bound and history generation mostly numpy: run them side by side.
    # On an interruption the pool is not waited for: the caller discards the directory.
    pool = ThreadPoolExecutor(max_workers=2)
    try:
        generic = pool.submit(warehouse)
        other = pool.submit(bank_and_history)
        counts = generic.result()
        bank_counts, truth = other.result()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    catalog = demo_catalog({**counts, **bank_counts})
    save_catalog(catalog, root / _FILES["catalog"])
    truth.save(root / _FILES["ground_truth"])
    return truth
