"""The full-table MERGE against its partition-scoped rewrite, on delta-rs, measured in one run.

    python benchmarks/bench_merge.py            # demo scenario (10M rows, 365 days) + scaled
    python benchmarks/bench_merge.py --quick    # 1M rows, 365 days

Scenarios (the table is the demo's positions table, generated once and cached):

- ``demo``: the demo workspace's nightly MERGE (update + insert), a batch revising the newest
  three days and opening the next one;
- ``scaled`` (full run only): 20M rows over 730 daily partitions (the production table's
  partition count), the same MERGE with a ``WHEN MATCHED AND s.quantity = 0 THEN DELETE``
  branch, so the batch updates, inserts and deletes.

Each scenario runs original and rewrite ``--repeats`` times on fresh clones of the same table
and reports medians. The baseline of every ratio is the original MERGE, measured in the same
run. Goal: bytes read + written at least 95% lower, wall time at least 5x lower, tables identical.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from costline.warehouse.merge import MergeProof, prove_merge
from costline.warehouse.merge.prove import demo_statement

DELETE_BRANCH = "WHEN MATCHED AND s.quantity = 0 THEN DELETE\nWHEN MATCHED THEN UPDATE"


def _workspace(root: Path) -> Path:
    """The demo workspace (catalogue + planted MERGE); a small one is built if none exists."""
    from costline.demo import build_workspace
    from costline.demo.workspace import default_workspace_dir

    demo = default_workspace_dir()
    if (demo / "ground_truth.json").is_file() and (demo / "catalog.json").is_file():
        return demo
    target = root / "demo-ws"
    if not (target / "ground_truth.json").is_file():
        build_workspace(target, jobs=2_000, seed=7, scale=0.01)
    return target


def _scenario(
    name: str, workspace: Path, sql: str, rows: int, partitions: int, repeats: int
) -> dict[str, Any]:
    runs: list[MergeProof] = []
    start = time.perf_counter()
    for _ in range(repeats):
        runs.append(prove_merge(workspace, statement=sql, rows=rows, partitions=partitions))
    total = time.perf_counter() - start

    def med(side: str, field: str) -> float:
        return statistics.median(getattr(getattr(r, side), field) for r in runs)

    first = runs[0]
    out: dict[str, Any] = {
        "rows": first.rows,
        "partitions": first.partitions,
        "affected_partitions": first.affected_partitions,
        "batch": first.batch.model_dump(),
        "repeats": repeats,
        "identical": all(r.identical for r in runs),
    }
    for side in ("original", "rewritten"):
        out[side] = {
            f: med(side, f)
            for f in ("bytes_read", "bytes_written", "files_rewritten", "rows_copied", "wall_s")
        }
    moved = {s: out[s]["bytes_read"] + out[s]["bytes_written"] for s in ("original", "rewritten")}
    out["reduction"] = round(1 - moved["rewritten"] / moved["original"], 4)
    out["read_reduction"] = round(
        1 - out["rewritten"]["bytes_read"] / out["original"]["bytes_read"], 4
    )
    out["wall_ratio"] = round(statistics.median(r.wall_ratio for r in runs), 1)
    out["total_s_including_build"] = round(total, 1)
    out["goal_met"] = bool(out["identical"] and out["reduction"] >= 0.95 and out["wall_ratio"] >= 5)
    o, r = out["original"], out["rewritten"]
    print(
        f"{name}: {out['rows']:,} rows / {out['partitions']} partitions, batch"
        f" {out['batch']['source_rows']:,} rows in {out['affected_partitions']} partitions\n"
        f"  original : read {o['bytes_read'] / 2**20:,.1f} MiB, wrote"
        f" {o['bytes_written'] / 2**20:,.1f} MiB, {o['files_rewritten']:.0f} files rewritten,"
        f" {o['rows_copied']:,.0f} rows copied, {o['wall_s']:.2f} s\n"
        f"  rewritten: read {r['bytes_read'] / 2**20:,.1f} MiB, wrote"
        f" {r['bytes_written'] / 2**20:,.1f} MiB, {r['files_rewritten']:.0f} files rewritten,"
        f" {r['rows_copied']:,.0f} rows copied, {r['wall_s']:.2f} s\n"
        f"  identical={out['identical']} reduction={out['reduction']:.2%}"
        f" wall {out['wall_ratio']}x",
        flush=True,
    )
    return out


def main() -> None:
    """Run the scenarios and print one JSON object last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M rows only (< 1 minute)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path.home() / ".cache" / "costline" / "bench-merge",
        help="where generated tables are kept between runs",
    )
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    workspace = _workspace(args.cache)
    sql = demo_statement(workspace)
    results: dict[str, Any] = {}
    if args.quick:
        results["demo"] = _scenario("demo", workspace, sql, 1_000_000, 365, args.repeats or 1)
    else:
        repeats = args.repeats or 3
        results["demo"] = _scenario("demo", workspace, sql, 10_000_000, 365, repeats)
        scaled = sql.replace("WHEN MATCHED THEN UPDATE", DELETE_BRANCH, 1)
        results["scaled"] = _scenario("scaled", workspace, scaled, 20_000_000, 730, repeats)
    results["goal_met"] = all(r["goal_met"] for r in results.values() if isinstance(r, dict))
    sys.stdout.write(json.dumps(results) + "\n")


if __name__ == "__main__":
    main()
