"""Job histories as real exports write them when they are not BigQuery's own JSON: epoch-number
times, whole-file JSON arrays, CSV records spanning lines, compressed and mislabelled files,
missing columns — each read, or refused with what is wrong and where."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costline.core.errors import CostlineError
from costline.core.prices import load_prices
from costline.warehouse.jobs import read_history
from costline.warehouse.profiler import profile_history
from tests.conftest import TIB, job, tables

UTC = dt.UTC
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _epoch(moment: dt.datetime, unit: str) -> int:
    micros = (moment - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)
    return micros * _PER_SECOND[unit] // 1_000_000


def _times(history: Any) -> list[dt.datetime]:
    rows = history.con.execute("SELECT creation_time FROM jobs ORDER BY line").fetchall()
    return [r[0] for r in rows]


@settings(max_examples=25, deadline=None)
@given(
    moment=st.datetimes(
        min_value=dt.datetime(2001, 9, 10), max_value=dt.datetime(2286, 11, 19)
    ).map(lambda d: d.replace(microsecond=0, tzinfo=UTC)),
    unit=st.sampled_from(["s", "ms", "us", "ns"]),
    as_text=st.booleans(),
)
def test_property_epoch_times_in_any_unit_are_read_exactly(
    tmp_path_factory: pytest.TempPathFactory, moment: dt.datetime, unit: str, as_text: bool
) -> None:
    # INT64 times as some exports write them, as JSON numbers or strings: the unit is told by
    # the digits (unambiguous for 2001-2286), and naming it gives the same reading.
    value: int | str = _epoch(moment, unit)
    value = str(value) if as_text else value
    path = tmp_path_factory.mktemp("epoch") / "jobs.jsonl"
    path.write_text(json.dumps(job("a", creation_time=value)) + "\n")
    assert _times(read_history(path)) == [moment]
    assert _times(read_history(path, epoch_unit=unit)) == [moment]  # type: ignore[arg-type]


def test_a_wrong_epoch_unit_is_rejected_with_the_unit_the_digits_suggest(
    write_jsonl: Callable[..., Path],
) -> None:
    micros = _epoch(dt.datetime(2026, 10, 1, tzinfo=UTC), "us")
    path = write_jsonl([job(f"j{i}", creation_time=str(micros + i)) for i in range(3)])
    history = read_history(path, epoch_unit="s")  # seconds: far past any date
    assert history.jobs == 0 and history.rejected == 3
    assert history.reasons() == [
        (
            "creation_time: expected a timestamp (ISO-8601 or 'YYYY-MM-DD HH:MM:SS[.ffffff] UTC')"
            " — epoch microseconds? pass --epoch-unit us",
            3,
        )
    ]
    with pytest.raises(CostlineError) as raised:
        history.require_jobs(str(path))
    assert str(raised.value).startswith(f"{path}: all 3 rows rejected, nothing to analyse: ")
    assert "epoch microseconds? pass --epoch-unit us (3)" in str(raised.value)
    assert f"first: {path}:1: creation_time:" in str(raised.value)


def test_rejections_are_counted_by_reason_over_every_row(write_jsonl: Callable[..., Path]) -> None:
    rows: list[dict[str, Any] | str] = [job(f"ok{i}") for i in range(3)]
    rows += [job(f"b{i}", total_slot_ms=f"x{i}") for i in range(1_200)]  # more than are kept
    rows += ["not json", job("ok0")]
    history = read_history(write_jsonl(rows))
    assert history.jobs == 3
    assert history.reasons() == [
        ("total_slot_ms: expected an integer", 1_200),
        ("job_id: duplicate", 1),
        ("not valid JSON", 1),
    ]


def test_a_file_that_is_one_json_array_is_read(tmp_path: Path) -> None:
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps([job("a"), job("b", total_slot_ms="nope"), job("c")], indent=2))
    history = read_history(path)
    assert history.jobs == 2 and history.reports[0].format == "json-array"
    # a record's number is its position in the array
    assert [(p.line, p.field) for p in history.problems] == [(2, "total_slot_ms")]


def test_json_lines_whose_first_line_is_an_array_are_read_line_by_line(
    write_jsonl: Callable[..., Path],
) -> None:
    path = write_jsonl(["[1, 2]", job("a")])
    history = read_history(path)
    assert history.jobs == 1
    assert [str(p) for p in history.problems] == [f"{path}:1: expected a JSON object, got array"]


@settings(max_examples=20, deadline=None)
@given(
    query_lines=st.lists(st.integers(min_value=1, max_value=4), min_size=2, max_size=12),
    data=st.data(),
)
def test_property_csv_problems_name_the_line_the_record_starts_on(
    tmp_path_factory: pytest.TempPathFactory, query_lines: list[int], data: st.DataObject
) -> None:
    bad = data.draw(st.integers(min_value=0, max_value=len(query_lines) - 1))
    path = tmp_path_factory.mktemp("csv") / "jobs.csv"
    starts = []
    line = 2  # after the header
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["job_id", "creation_time", "query", "total_slot_ms"])
        for i, n in enumerate(query_lines):
            starts.append(line)
            text = "\n".join(["SELECT 1"] + ["FROM t"] * (n - 1))
            writer.writerow([f"j{i}", "2026-10-01T08:00:00Z", text, "x" if i == bad else "5"])
            line += n
    history = read_history(path)
    assert history.jobs == len(query_lines) - 1
    assert [(p.line, p.field) for p in history.problems] == [(starts[bad], "total_slot_ms")]


def test_gzipped_histories_are_read(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(json.dumps(job(f"j{i}")) for i in range(5)) + "\n")
    assert read_history(path).jobs == 5


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("jobs.csv", bytes(range(256)), "binary data, not CSV text"),
        ("jobs.csv", b"PAR1" + bytes(64), "Parquet data, not CSV text (name it .parquet)"),
        ("jobs.jsonl", b"\x1f\x8b\x08" + bytes(32), "gzip-compressed data, not JSON lines text"),
        ("jobs.parquet", b'{"job_id": "a"}\n', "cannot read as Parquet: no PAR1 header"),
    ],
)
def test_binary_and_mislabelled_files_are_named(
    tmp_path: Path, name: str, content: bytes, says: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CostlineError, match=f"^{path}: ") as raised:
        read_history(path)
    assert says in str(raised.value)


def test_a_missing_required_column_is_refused_before_any_row(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text("id,creation_time,query\na,2026-10-01T08:00:00Z,SELECT 1\n")
    with pytest.raises(
        CostlineError,
        match=rf"^{path}: no job_id column, which every job needs .*the columns are: "
        r"creation_time, id, query\)$",
    ):
        read_history(path)


def test_an_empty_history_is_refused_when_jobs_are_required(
    write_jsonl: Callable[..., Path],
) -> None:
    path = write_jsonl([])
    assert read_history(path).jobs == 0
    with pytest.raises(CostlineError, match="no jobs in it"):
        read_history(path, require_jobs=True)


def test_bytes_billed_are_derived_when_the_export_has_none(
    write_jsonl: Callable[..., Path],
) -> None:
    # 1 byte processed over two tables bills 10 MiB per table referenced: 20 MiB, and 3 TiB
    # rounds to itself — the cost rules' minimums, the same ones the cost is computed with.
    rows = [
        job("a", total_bytes_processed=1, referenced_tables=tables("p.d.t", "p.d.u")),
        job("b", total_bytes_processed=3 * TIB, referenced_tables=tables("p.d.t")),
    ]
    for row in rows:
        del row["total_bytes_billed"]
    made = profile_history(read_history(write_jsonl(rows)), load_prices(None))
    assert made.total_bytes_billed == 20 * (1 << 20) + 3 * TIB
    assert made.total_cost_usd == pytest.approx(
        (20 * (1 << 20) + 3 * TIB) / TIB * load_prices(None).bigquery.on_demand.usd_per_tib
    )


def test_a_gzipped_catalogue_is_read(tmp_path: Path) -> None:
    from costline.warehouse.catalog import Catalog, Column, TableMeta, save_catalog
    from costline.warehouse.catalog_read import load_catalog

    catalog = Catalog(tables=(TableMeta(name="p.d.t", columns=(Column(name="a", type="INT64"),)),))
    plain = tmp_path / "catalog.json"
    save_catalog(catalog, plain)
    packed = tmp_path / "catalog.json.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert load_catalog(packed).tables == catalog.tables
    (tmp_path / "not.json.gz").write_text("{}")
    with pytest.raises(CostlineError, match=r"named \.gz but not gzip-compressed"):
        load_catalog(tmp_path / "not.json.gz")
