"""The assistant's fraud model on the demo bank: held-out quality against the rules baseline,
training and scoring time, and the assistant's in-process cost per request.

    python benchmarks/bench_fraud.py            # the demo bank at scale 1 (5,000 customers)
    python benchmarks/bench_fraud.py --quick    # scale 0.1 (500 customers), < 1 min

Steps, in one run on a freshly generated bank (seed 7, so the figures are reproducible):

1. features: DuckDB window functions over every transaction;
2. training on three quarters of the customers, evaluation on the held-out quarter: ROC AUC,
   precision and recall at the flagging threshold, recall per planted pattern; the rules
   fallback scored on the same held-out rows is the baseline;
3. scoring every transaction (rows per second);
4. the assistant in process (offline provider): its cold start (features, training again and
   scoring, as a first worker does), then a mix of request types answered one after another:
   latency percentiles and requests per second on one core.

The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _assist_loop(workspace: Path, requests: int) -> dict[str, Any]:
    from costline.assistant import AssistRequest, FinancialAssistant, RequestType

    t0 = time.perf_counter()
    assistant = FinancialAssistant.from_workspace(workspace)
    load_s = time.perf_counter() - t0
    mix = [
        [RequestType.ACCOUNT_SUMMARY],
        [RequestType.FRAUD_CHECK],
        [RequestType.INVESTMENT_ADVICE],
        [RequestType.ACCOUNT_SUMMARY, RequestType.FRAUD_CHECK],
        list(RequestType),
    ]
    values = [50.0, 2_500.0, 25_000.0]
    pairs = sorted((t, c) for t in assistant.tenants for c in assistant.customers_of(t))
    latencies: list[float] = []
    cost = 0.0
    started = time.perf_counter()
    for i in range(requests):
        tenant, customer = pairs[(i * 7919) % len(pairs)]
        t0 = time.perf_counter()
        answer = await assistant.assist(
            AssistRequest(
                tenant=tenant,
                customer_id=customer,
                request_types=mix[i % len(mix)],
                business_value_usd=values[i % len(values)],
            )
        )
        latencies.append((time.perf_counter() - t0) * 1000)
        cost += answer.cost_usd
    wall = time.perf_counter() - started
    return {
        "assistant_cold_load_s": load_s,
        "assist_requests": requests,
        "assist_rps_one_core": requests / wall,
        "assist_p50_ms": statistics.median(latencies),
        "assist_p99_ms": _percentile(latencies, 0.99),
        "assist_cost_per_request_usd": cost / requests,
    }


def main() -> int:
    """Run the benchmark; print the figures, the last line as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scale 0.1, fewer requests")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    requests = 500 if args.quick else 5_000

    import duckdb

    from costline.assistant import fraud
    from costline.assistant.bank import _views, bank_tables
    from costline.demo.bank import generate_bank, write_bank

    with tempfile.TemporaryDirectory(prefix="bench-fraud-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        counts = write_bank(
            root / "tables", generate_bank(seed=7, scale=scale, end=dt.date(2026, 10, 31))
        )
        generate_s = time.perf_counter() - t0
        con = duckdb.connect()
        _views(con, bank_tables(root))
        t0 = time.perf_counter()
        table = fraud.transaction_features(con)
        features_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        model = fraud.train(table)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        scored = fraud.score(table, model)
        score_s = time.perf_counter() - t0
        con.close()
        q = model.quality
        assist = asyncio.run(_assist_loop(root, requests))
    figures: dict[str, Any] = {
        "scale": scale,
        "customers": counts["acme-dwh-prod.core_banking.customers"],
        "transactions": table.num_rows,
        "frauds": int(sum(table["is_fraud"].to_pylist())),
        "train_rows": q.train_rows,
        "test_rows": q.test_rows,
        "test_frauds": q.test_frauds,
        "roc_auc": round(q.roc_auc, 6),
        "precision": round(q.precision, 4),
        "recall": round(q.recall, 4),
        "threshold": q.threshold,
        "recall_by_pattern": {k: round(v, 4) for k, v in q.recall_by_pattern.items()},
        "rules_roc_auc": round(q.rules_roc_auc, 4),
        "auc_gap_closed_vs_rules": round((q.roc_auc - q.rules_roc_auc) / (1 - q.rules_roc_auc), 4),
        "generate_s": round(generate_s, 2),
        "features_s": round(features_s, 2),
        "train_s": round(train_s, 2),
        "score_rows_per_s": round(scored.num_rows / score_s),
        **{k: round(v, 6) if isinstance(v, float) else v for k, v in assist.items()},
    }
    for key, value in figures.items():
        print(f"{key:36} {value}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
