"""Table-layout advice on the demo workspace: its time, and its estimate against DuckDB.

    python benchmarks/bench_advise.py            # the 200,000-job demo (built once, cached)
    python benchmarks/bench_advise.py --quick    # a 10,000-job demo at 5% scale, built here

Measures, in one process: reading the history and profiling it (the baseline, which every
analysis pays), then ``advise`` over the six costliest tables with the proof on DuckDB for the
``--prove`` tables with the largest saving. Prints per table the estimated and the measured
fraction of bytes scanned (proposed over current layout); the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small demo, under a minute")
    parser.add_argument("--prove", type=int, default=3, help="tables measured on DuckDB")
    parser.add_argument("--quick-prove", type=int, default=1, help="--prove under --quick")
    args = parser.parse_args()

    from costline.core.prices import load_prices
    from costline.demo import build_workspace
    from costline.demo.workspace import default_workspace_dir
    from costline.warehouse.catalog_read import load_catalog
    from costline.warehouse.jobs import read_history
    from costline.warehouse.layout import advise
    from costline.warehouse.profiler import profile_history

    if args.quick:
        root = Path(tempfile.mkdtemp(prefix="bench-advise-"))
        build_workspace(root, jobs=10_000, seed=7, scale=0.05)
    else:
        root = default_workspace_dir()
        if not (root / "workspace.json").is_file():
            build_workspace(root)
    prices = load_prices()
    catalog = load_catalog(root / "catalog.json")

    c0, t0 = time.process_time(), time.perf_counter()
    history = read_history([root / "jobs.jsonl"])
    profile = profile_history(history, prices, catalog=catalog)
    baseline, baseline_cpu = time.perf_counter() - t0, time.process_time() - c0

    c1, t1 = time.process_time(), time.perf_counter()
    advice = advise(profile, history, catalog, prices, catalog_dir=root, prove=0)
    advise_s, advise_cpu = time.perf_counter() - t1, time.process_time() - c1

    c2, t2 = time.process_time(), time.perf_counter()
    prove = args.quick_prove if args.quick else args.prove
    proved = advise(profile, history, catalog, prices, catalog_dir=root, prove=prove)
    with_proof_s, with_proof_cpu = time.perf_counter() - t2, time.process_time() - c2

    tables = []
    for rec in proved.recommendations:
        m = rec.measured
        row = {
            "table": rec.table,
            "changed": rec.changed,
            "proposed": rec.proposed.describe(),
            "saving_usd": round(rec.saving.saving_usd, 2),
            "estimated_fraction_history": round(rec.saving.fraction_scanned, 4),
        }
        if m is not None:
            row |= {
                "queries": m.queries,
                "estimated_fraction": round(m.estimated_fraction, 4),
                "measured_bytes_fraction": round(m.measured_fraction, 4),
                "measured_row_group_fraction": round(m.measured_row_group_fraction, 4),
                "relative_error": round(m.relative_error, 4),
                "within_20pct": m.within_tolerance,
            }
        tables.append(row)
        print(json.dumps(row))
    figures = {
        "jobs": profile.jobs,
        "profile_s": round(baseline, 2),
        "advise_s": round(advise_s, 2),
        "profile_cpu_s": round(baseline_cpu, 2),
        "advise_cpu_s": round(advise_cpu, 2),
        "advise_to_profile": round(advise_s / baseline, 3),
        "advise_to_profile_cpu": round(advise_cpu / baseline_cpu, 3),
        "advise_with_proof_s": round(with_proof_s, 2),
        "advise_with_proof_cpu_s": round(with_proof_cpu, 2),
        "proved_tables": sum(1 for r in proved.recommendations if r.measured),
        "total_saving_usd": round(advice.total_saving_usd, 2),
        "tables": tables,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
