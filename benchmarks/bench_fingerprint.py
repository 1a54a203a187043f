"""Micro-benchmark: µs per fingerprint on realistic BigQuery texts, and the DuckDB shape key.

    .venv/bin/python benchmarks/bench_fingerprint.py [--quick]

Prints a few readable lines, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import duckdb

from costline.warehouse.fingerprint import fingerprint, fingerprint_many, shape_key_sql

TABLES = ["transactions", "accounts", "positions", "customers", "fx_rates", "ledger_entries"]
COLUMNS = ["amount", "currency", "status", "region", "segment", "booking_date", "risk_score"]


def _query(rng: random.Random, i: int) -> str:
    """One distinct shape (table and column choices vary) with run-specific literals."""
    t1, t2 = rng.sample(TABLES, 2)
    cols = rng.sample(COLUMNS, 3)
    ids = ", ".join(str(rng.randint(1, 10**6)) for _ in range(rng.randint(1, 40)))
    day = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    kind = i % 4
    if kind == 0:
        return (
            f"-- pipeline {i} run {rng.random()}\n"
            f"WITH base AS (\n  SELECT id, {cols[0]}, {cols[1]}, booking_date\n"
            f"  FROM `acme-dwh-prod.finance.{t1}`\n"
            f"  WHERE booking_date BETWEEN DATE '{day}'\n"
            f"    AND DATE_ADD(DATE '{day}', INTERVAL 7 DAY)\n"
            f"    AND id IN ({ids})\n), agg AS (\n"
            f"  SELECT b.{cols[1]}, SUM(b.{cols[0]}) AS total, COUNT(*) AS n\n"
            f"  FROM base b JOIN finance.{t2} o ON b.id = o.id AND o.{cols[2]} = '{rng.random()}'\n"
            f"  GROUP BY 1 HAVING SUM(b.{cols[0]}) > {rng.randint(0, 999)}\n)\n"
            f"SELECT * FROM agg WHERE n > {rng.randint(1, 9)} ORDER BY total DESC LIMIT 100"
        )
    if kind == 1:
        return (
            f"MERGE `acme-dwh-prod.finance.{t1}` T\n"
            f"USING (SELECT * FROM staging.{t1}_{i % 97}\n"
            f"       WHERE load_ts > TIMESTAMP '{day} 00:00:00') S\n"
            f"ON T.id = S.id AND T.booking_date >= DATE '{day}'\n"
            f"WHEN MATCHED AND S.{cols[0]} != T.{cols[0]} THEN UPDATE SET {cols[0]} = S.{cols[0]}, "
            f"{cols[1]} = S.{cols[1]}, updated_at = CURRENT_TIMESTAMP()\n"
            f"WHEN NOT MATCHED THEN INSERT ROW"
        )
    if kind == 2:
        return (
            f"SELECT {cols[0]}, {cols[1]} FROM finance.{t1} WHERE {cols[2]} = '{rng.random()}' "
            f"AND id IN ({ids}) LIMIT {rng.randint(1, 1000)}"
        )
    return (
        f"DECLARE run_date DATE DEFAULT '{day}';\n"
        f"CREATE TEMP TABLE tmp AS SELECT * FROM finance.{t1} WHERE booking_date = run_date;\n"
        f"IF (SELECT COUNT(*) FROM tmp) > {rng.randint(0, 99)} THEN\n"
        f"  INSERT INTO finance.{t2}_{i % 53} SELECT id, {cols[0]} FROM tmp WHERE {cols[1]} > 0;\n"
        f"END IF;"
    )


def corpus(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [_query(rng, i) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    args = parser.parse_args()
    n = 800 if args.quick else 4000
    texts = corpus(n)
    fingerprint.cache_clear()
    t0 = time.perf_counter()
    prints = [fingerprint(t) for t in texts]
    serial_s = time.perf_counter() - t0
    us = serial_s / n * 1e6
    sizes = [len(t) for t in texts]
    print(f"{n} texts, median {statistics.median(sizes):.0f} chars: {us:,.0f} µs per fingerprint")
    print(
        f"{len({p.id for p in prints})} fingerprints, {sum(not p.parsed for p in prints)} unparsed"
    )

    fingerprint.cache_clear()
    t0 = time.perf_counter()
    fingerprint_many(texts)
    many_s = time.perf_counter() - t0
    print(f"fingerprint_many: {many_s / n * 1e6:,.0f} µs per text")

    rows = 100_000 if args.quick else 1_000_000
    con = duckdb.connect()
    con.execute("CREATE TABLE q (t VARCHAR)")
    con.executemany("INSERT INTO q VALUES (?)", [[t] for t in texts])
    con.execute(f"CREATE TABLE big AS SELECT t FROM q, range({rows // n + 1}) LIMIT {rows}")
    t0 = time.perf_counter()
    keys = con.execute(f"SELECT count(DISTINCT {shape_key_sql('t')}) FROM big").fetchone()
    key_s = time.perf_counter() - t0
    print(f"shape key over {rows:,} texts: {key_s:.2f} s, {keys[0] if keys else 0} distinct")
    print(
        json.dumps(
            {
                "texts": n,
                "median_chars": statistics.median(sizes),
                "us_per_fingerprint_serial": round(us, 1),
                "us_per_text_fingerprint_many": round(many_s / n * 1e6, 1),
                "shape_key_rows": rows,
                "shape_key_seconds": round(key_s, 3),
                "shape_key_rows_per_second": round(rows / key_s),
            }
        )
    )


if __name__ == "__main__":
    main()
