"""Shared helpers: job rows shaped like BigQuery's INFORMATION_SCHEMA.JOBS JSON export."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

MIB = 1 << 20
TIB = 1 << 40


def job(job_id: str, **fields: Any) -> dict[str, Any]:
    """A job row with BigQuery's export conventions (INT64 as strings, UTC timestamps)."""
    row: dict[str, Any] = {
        "job_id": job_id,
        "creation_time": "2026-10-01 08:00:00.000000 UTC",
        "start_time": "2026-10-01 08:00:01.000000 UTC",
        "end_time": "2026-10-01 08:00:31.000000 UTC",
        "project_id": "acme-dwh-prod",
        "user_email": "etl@acme-dwh-prod.iam.gserviceaccount.com",
        "job_type": "QUERY",
        "statement_type": "SELECT",
        "priority": "INTERACTIVE",
        "query": "SELECT 1",
        "state": "DONE",
        "cache_hit": False,
        "total_bytes_processed": "0",
        "total_bytes_billed": "0",
        "total_slot_ms": "0",
        "reservation_id": None,
        "edition": None,
        "parent_job_id": None,
        "labels": [],
        "referenced_tables": [],
        "destination_table": None,
        "error_result": None,
    }
    for key, value in fields.items():
        if key in ("total_bytes_processed", "total_bytes_billed", "total_slot_ms") and isinstance(
            value, int
        ):
            value = str(value)
        row[key] = value
    return row


def labels(**kv: str) -> list[dict[str, str]]:
    """``labels`` as BigQuery exports them."""
    return [{"key": k, "value": v} for k, v in kv.items()]


def tables(*names: str) -> list[dict[str, str]]:
    """``referenced_tables`` from ``project.dataset.table`` names."""
    out = []
    for name in names:
        project, dataset, table = name.split(".")
        out.append({"project_id": project, "dataset_id": dataset, "table_id": table})
    return out


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Callable[..., Path]:
    """Write rows (dicts or raw strings) as a JSONL file, one per line."""

    def write(rows: Iterable[dict[str, Any] | str], name: str = "jobs.jsonl") -> Path:
        path = tmp_path / name
        with path.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
        return path

    return write


def costline(
    *args: str | Path, cwd: Path | None = None, columns: int = 160
) -> subprocess.CompletedProcess[str]:
    """Run the ``costline`` command as a user would — a fresh process with a bare environment —
    and check that no traceback reached them, whatever the exit code."""
    result = subprocess.run(
        [sys.executable, "-m", "costline.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd or Path.cwd()), "COLUMNS": str(columns)},
    )
    assert "Traceback" not in result.stderr + result.stdout
    return result
