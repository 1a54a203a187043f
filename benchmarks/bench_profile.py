"""Profile a large job history end to end, against a floor measured in the same run.

    python benchmarks/bench_profile.py            # 1,000,000 jobs
    python benchmarks/bench_profile.py --quick    # 100,000 jobs

For each input (JSONL as BigQuery exports it, the same with ten damaged lines, the same without
``query_info`` hashes so every text goes through costline's own shape keys, and Parquet with
BigQuery's export types) it measures, each in a fresh process:

- the *floor*: DuckDB reading the same file and grouping by raw query text;
- costline: read + validate + price + fingerprint + attribute + table access, the whole profile.

Floor and profile run as pairs, one after the other, ``--repeat`` times (3 by default, 1 with
``--quick``): the machines are shared, and a neighbour's burst lands on one pair rather than
on every figure. The ratio reported is the median of the pairs' ratios, with the lowest and
highest; times are medians. It prints wall time, peak RSS and the ratio to the floor; the last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from queue import Empty
from typing import Any

FLOOR_SQL = {
    "jsonl": "SELECT query, count(*), sum(CAST(total_bytes_billed AS BIGINT)) "
    "FROM read_json('{path}', format = 'newline_delimited') GROUP BY query",
    # The floor skips the damaged lines, which costline reads and reports.
    "jsonl_damaged": "SELECT query, count(*), sum(CAST(total_bytes_billed AS BIGINT)) "
    "FROM read_json('{path}', format = 'newline_delimited', ignore_errors = true) GROUP BY query",
    "parquet": "SELECT query, count(*), sum(CAST(total_bytes_billed AS BIGINT)) "
    "FROM read_parquet('{path}') GROUP BY query",
}


def _peak_mib() -> float:
    """Peak resident memory of this process. (``ru_maxrss`` is not used: on Linux it survives
    exec, so a spawned child would report its parent's peak.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _floor(path: str, kind: str, queue: Any) -> None:
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect()
    groups = len(con.execute(FLOOR_SQL[kind].format(path=path)).fetchall())
    wall = time.perf_counter() - t0
    peak = _peak_mib()
    queue.put({"wall_s": wall, "peak_mib": peak, "groups": groups})


def _profile(path: str, catalog: str, queue: Any) -> None:
    from costline.core.prices import load_prices
    from costline.warehouse.catalog_read import load_catalog
    from costline.warehouse.jobs import read_history
    from costline.warehouse.profiler import profile_history

    t0 = time.perf_counter()
    history = read_history(Path(path))
    t_read = time.perf_counter() - t0
    result = profile_history(history, load_prices(), catalog=load_catalog(Path(catalog)))
    wall = time.perf_counter() - t0
    peak = _peak_mib()
    queue.put(
        {
            "wall_s": wall,
            "read_s": t_read,
            "peak_mib": peak,
            "jobs": result.jobs,
            "rejected": result.rejected_count,
            "fingerprints": len(result.fingerprints),
            "total_cost_usd": round(result.total_cost_usd, 2),
        }
    )


def _damage(source: Path, target: Path, *, bad: int) -> None:
    """A copy of ``source`` with ``bad`` lines spread through it damaged, as real exports are:
    a line cut short, a count that is not a number, a timestamp that is not a time."""
    with source.open("rb") as f:
        lines = f.readlines()
    step = len(lines) // (bad + 1)
    for k in range(bad):
        i = step * (k + 1)
        line = lines[i]
        if k % 3 == 0:
            lines[i] = line[: len(line) // 2] + b"\n"
        elif k % 3 == 1:
            lines[i] = line.replace(b'"total_slot_ms":"', b'"total_slot_ms":"many ', 1)
        else:
            lines[i] = line.replace(b'"creation_time":"', b'"creation_time":"yesterday ', 1)
    with target.open("wb") as f:
        f.writelines(lines)


def _run(target: Any, *args: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    while True:
        try:
            result: dict[str, Any] = queue.get(timeout=1)
            break
        except Empty:
            if not proc.is_alive():
                raise SystemExit(f"{target.__name__} failed (exit code {proc.exitcode})") from None
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 jobs instead of 1,000,000")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--dir", type=Path, default=None, help="keep the generated files here")
    parser.add_argument("--repeat", type=int, default=None, help="floor/profile pairs per input")
    args = parser.parse_args()
    jobs = args.jobs or (100_000 if args.quick else 1_000_000)
    repeat = args.repeat or (1 if args.quick else 3)

    from costline.demo import build_workspace, generate_history
    from costline.warehouse.jobs import connect

    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp)
        ws = build_workspace(root / "ws", jobs=1_000, scale=0.01)
        jsonl = root / "jobs.jsonl"
        damaged = root / "jobs-damaged.jsonl"
        bare = root / "jobs-no-hashes.jsonl"
        parquet = root / "jobs.parquet"
        t0 = time.perf_counter()
        generate_history(jsonl, jobs=jobs, seed=11)
        _damage(jsonl, damaged, bad=10)
        generate_history(bare, jobs=jobs, seed=11, with_query_hashes=False)
        # BigQuery exports Parquet with its own types: TIMESTAMP and INT64 columns, not the
        # strings of the JSON export.
        connect().execute(
            f"""
            COPY (SELECT * REPLACE (
                      creation_time::TIMESTAMPTZ AS creation_time,
                      start_time::TIMESTAMPTZ AS start_time,
                      end_time::TIMESTAMPTZ AS end_time,
                      total_bytes_processed::BIGINT AS total_bytes_processed,
                      total_bytes_billed::BIGINT AS total_bytes_billed,
                      total_slot_ms::BIGINT AS total_slot_ms)
                  FROM read_json('{jsonl}', format = 'newline_delimited'))
            TO '{parquet}' (FORMAT PARQUET)
            """
        )
        print(f"generated {jobs:,} jobs in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

        figures: dict[str, Any] = {"jobs": jobs}
        for name, path, kind in (
            ("jsonl", jsonl, "jsonl"),
            ("jsonl_ten_bad_lines", damaged, "jsonl_damaged"),
            ("jsonl_no_hashes", bare, "jsonl"),
            ("parquet", parquet, "parquet"),
        ):
            pairs = [
                (_run(_floor, str(path), kind), _run(_profile, str(path), str(ws.catalog)))
                for _ in range(repeat)
            ]
            ratios = sorted(o["wall_s"] / f["wall_s"] for f, o in pairs)
            last_floor, last = pairs[-1]
            figures[name] = {
                "file_mib": round(path.stat().st_size / 2**20, 1),
                "runs": repeat,
                "floor_s": round(statistics.median(f["wall_s"] for f, _ in pairs), 2),
                "wall_s": round(statistics.median(o["wall_s"] for _, o in pairs), 2),
                "read_s": round(statistics.median(o["read_s"] for _, o in pairs), 2),
                "ratio_to_floor": round(statistics.median(ratios), 2),
                "ratio_min": round(ratios[0], 2),
                "ratio_max": round(ratios[-1], 2),
                "peak_mib": round(max(o["peak_mib"] for _, o in pairs)),
                "floor_peak_mib": round(max(f["peak_mib"] for f, _ in pairs)),
                "fingerprints": last["fingerprints"],
                "distinct_texts": last_floor["groups"],
                "rejected": last["rejected"],
                "total_cost_usd": last["total_cost_usd"],
            }
            print(f"{name}: {figures[name]}", file=sys.stderr)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
