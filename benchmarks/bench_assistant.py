"""The financial assistant under load, with faults: latency, errors, cost against always-premium,
throughput per worker and with every worker, and budgets checked against the ledger.

    python benchmarks/bench_assistant.py            # the cached demo workspace, full runs
    python benchmarks/bench_assistant.py --quick    # a small workspace, short runs (< 1 min)

Every run goes through the harness of ``costline loadtest``: the service is started as
separate processes (``costline serve``, a redis-server holding the budgets), driven over
127.0.0.1 by this process, and stopped. Runs:

1. *one worker*, closed loop, no faults: the throughput of one worker process;
2. *all workers* (2 on this machine), closed loop, no faults: the throughput of the service;
3. *slow risk*: the risk agent slow in 30% of requests, offered an open-loop load at 60% of the
   throughput of run 2 (latency is measured below saturation, as a service is run): P50/P95/P99,
   error and degraded rates, cost per request against the same requests' tokens priced at the
   premium model, budgets checked against the ledger;
4. *every fault*: as 3 with a failing recommender, provider 429s and 500s, and Redis restarted
   midway, under a daily budget small enough to run out.

The scaling arithmetic to the seed's figures (40M requests a month, a 30K RPS load test) uses the
measured one-worker throughput. The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from costline.service.faults import parse_faults
from costline.service.loadtest import (
    LoadConfig,
    LoadReport,
    Mix,
    SpawnedService,
    daily_budget,
    request_mix,
    run_load,
    spawned_service,
    workspace_mix,
)

SEED_REQUESTS_PER_MONTH = 40_000_000
SEED_LOAD_TEST_RPS = 30_000
SECONDS_PER_MONTH = 30 * 24 * 3600
ALL_FAULTS = (
    "slow-risk=0.3,failing-recommender=0.1,provider-429=0.05,provider-500=0.05,redis-restart"
)


def _workspace(quick: bool) -> Path:
    if not quick:
        from costline.demo import build_workspace
        from costline.demo.workspace import default_workspace_dir

        root = default_workspace_dir()
        if not (root / "workspace.json").is_file():
            build_workspace(root)
        return root
    from costline.demo import build_workspace

    root = Path(tempfile.mkdtemp(prefix="bench-assistant-")) / "ws"
    build_workspace(root, jobs=1_000, seed=7, scale=0.01)
    return root


def _line(name: str, r: LoadReport) -> None:
    workers = ", ".join(f"{w.rps:.0f}" for w in r.per_worker)
    print(
        f"{name:<14} {r.requests:>6} req {r.rps:>7.1f} req/s [{workers}]  p50 {r.p50_ms:>6.0f} "
        f"p95 {r.p95_ms:>6.0f} p99 {r.p99_ms:>6.0f} ms  err {r.error_rate:.2%}  "
        f"degr {r.degraded_rate:.1%}  ${r.cost_per_request_usd:.6f}/req "
        f"(premium ${r.premium_cost_per_request_usd or 0:.6f})  client {r.client_cpu_share:.0%}",
        flush=True,
    )


def _every_fault(
    svc: SpawnedService, n: int, seconds: float, offered: float, mix: Mix
) -> LoadReport:
    report = run_load(
        LoadConfig(
            base_url=svc.base_url, requests=n, duration_s=seconds, concurrency=256,
            rate_per_s=offered, seed=4, faults=parse_faults(ALL_FAULTS),
        ),
        mix, ledger_dir=svc.ledger_dir, tenants=svc.tenants, redis=svc.redis,
        worker_pids=svc.worker_pids,
    )  # fmt: skip
    _line("every fault", report)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small workspace, short runs")
    args = parser.parse_args()
    quick: bool = args.quick
    workers = os.cpu_count() or 2
    ws = _workspace(quick)
    mix = workspace_mix(ws, request_mix())
    n, seconds = (600, 4.0) if quick else (40_000, 40.0)
    concurrency = 32
    runs: dict[str, LoadReport] = {}

    def closed(base_url: str, seed: int) -> LoadConfig:
        return LoadConfig(
            base_url=base_url, requests=n, duration_s=seconds, concurrency=concurrency, seed=seed
        )

    if not quick:
        with spawned_service(ws, workers=1, redis=True) as svc:
            runs["one_worker"] = run_load(
                closed(svc.base_url, 1),
                mix,
                ledger_dir=svc.ledger_dir,
                tenants=svc.tenants,
                worker_pids=svc.worker_pids,
            )
            _line("one worker", runs["one_worker"])
    with spawned_service(ws, workers=workers, redis=True) as svc:
        runs["all_workers"] = run_load(
            closed(svc.base_url, 2),
            mix,
            ledger_dir=svc.ledger_dir,
            tenants=svc.tenants,
            worker_pids=svc.worker_pids,
        )
        _line(f"{workers} workers", runs["all_workers"])
        offered = round(0.6 * runs["all_workers"].rps, 1)
        runs["slow_risk"] = run_load(
            LoadConfig(
                base_url=svc.base_url, requests=n, duration_s=seconds, concurrency=256,
                rate_per_s=offered, seed=3, faults=parse_faults("slow-risk=0.3"),
            ),
            mix, ledger_dir=svc.ledger_dir, tenants=svc.tenants, worker_pids=svc.worker_pids,
        )  # fmt: skip
        _line("slow risk 30%", runs["slow_risk"])
        if quick:
            # One service for every run of the quick benchmark (each start costs seconds).
            runs["all_faults"] = _every_fault(svc, n, seconds, offered, mix)
    if not quick:
        # A daily budget small enough to run out during the run.
        with spawned_service(
            ws, workers=workers, redis=True, tenant_budget=daily_budget(0.01)
        ) as svc:
            runs["all_faults"] = _every_fault(svc, n, seconds, offered, mix)

    one = runs["one_worker"].rps if "one_worker" in runs else None
    # CPU per request of the workers, in the closed-loop runs: what one worker answers per
    # second on a core of its own, whatever else the shared machine runs.
    cpu_ms = [
        r.server_cpu_ms_per_request
        for k in ("one_worker", "all_workers")
        if (r := runs.get(k)) is not None and r.server_cpu_ms_per_request
    ]
    cpu_ms_per_request = min(cpu_ms) if cpu_ms else None
    per_core = 1000 / cpu_ms_per_request if cpu_ms_per_request else None
    per_worker = per_core or one or runs["all_workers"].rps / workers
    slow = runs["slow_risk"]
    assert slow.premium_cost_per_request_usd is not None
    avg_rps = SEED_REQUESTS_PER_MONTH / SECONDS_PER_MONTH
    figures: dict[str, Any] = {
        "benchmark": "assistant",
        "quick": quick,
        "workspace": str(ws),
        "cpu_cores": os.cpu_count(),
        "workers": workers,
        "rps_one_worker": one,
        "rps_all_workers": runs["all_workers"].rps,
        "scaling_all_over_one": round(runs["all_workers"].rps / one, 2) if one else None,
        "server_cpu_ms_per_request": cpu_ms_per_request,
        "rps_per_worker_core": round(per_core, 1) if per_core else None,
        "offered_rps_latency_runs": offered,
        "requests": slow.requests,
        "rps": slow.rps,
        "p50_ms": slow.p50_ms,
        "p95_ms": slow.p95_ms,
        "p99_ms": slow.p99_ms,
        "error_rate": slow.error_rate,
        "degraded_rate": slow.degraded_rate,
        "cost_per_request_usd": slow.cost_per_request_usd,
        "premium_cost_per_request_usd": slow.premium_cost_per_request_usd,
        "saving_vs_premium": slow.saving_vs_premium,
        "calls_by_model": slow.calls_by_model,
        "budget_overspend_usd": max(r.budget_overspend_usd or 0.0 for r in runs.values()),
        "all_faults": runs["all_faults"].model_dump(
            include={
                "requests",
                "rps",
                "p50_ms",
                "p95_ms",
                "p99_ms",
                "error_rate",
                "errors",
                "degraded_rate",
                "cost_per_request_usd",
                "premium_cost_per_request_usd",
                "budget_overspend_usd",
                "overspent_budgets",
                "budget_max_utilisation",
                "server_cpu_ms_per_request",
                "redis_restarted",
            }
        ),
        "client_cpu_share_max": max(r.client_cpu_share for r in runs.values()),
        "seed_avg_rps_40m_per_month": round(avg_rps, 1),
        "workers_for_40m_per_month_avg": math.ceil(avg_rps / per_worker),
        "workers_for_30k_rps": math.ceil(SEED_LOAD_TEST_RPS / per_worker),
        "goal_p99_le_2s": slow.p99_ms <= 2_000,
        "goal_error_rate_le_0_3pct": slow.error_rate <= 0.003,
        "goal_saving_ge_40pct": (slow.saving_vs_premium or 0) >= 0.40,
        "goal_no_overspend": all((r.budget_overspend_usd or 0) == 0 for r in runs.values()),
    }
    if quick:
        shutil.rmtree(ws.parent, ignore_errors=True)  # the throwaway workspace
    sys.stdout.write(json.dumps(figures) + "\n")


if __name__ == "__main__":
    main()
