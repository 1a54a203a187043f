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
   lower of runs 1 and 2 (latency is measured below saturation, as a service is run; on a
   two-core machine the load generator shares the cores with the workers, so run 2 partly
   measures the client, and its figure varied from 0.8x to 1.2x run 1's): P50/P95/P99,
   error and degraded rates, cost per request against the same requests' tokens priced at the
   premium model, budgets checked against the ledger;
4. *every fault*: as 3 with a failing recommender, provider 429s and 500s, and Redis restarted
   midway, under a daily budget small enough to run out;
5. *the fault matrix*: the service pointed (``--llm-base-url``) at a fake OpenAI-compatible
   provider on 127.0.0.1 (:mod:`costline.service.fakeprovider`), one row per fault, each
   offered an open-loop load at 40% of the throughput of run 2 (the fake's process shares the
   cores), each on a service and a fake of its own:

   ``none`` (the baseline), ``kill-worker`` (one worker killed midway, ``kill -9``),
   ``redis-kill`` (Redis killed midway, ``kill -9``, no persistence, budgets rebuilt from the
   ledger, under a small daily budget), ``provider-slow`` (every answer after longer than the
   guardian's deadline for a call), ``provider-429`` / ``provider-500`` (half the calls),
   ``provider-huge`` (a 32 MiB completion body; the client reads at most 1 MiB),
   ``provider-lying-usage`` (usage claiming 1e12 input tokens), ``noisy-tenant`` (one tenant's
   questions rejected 400 by the provider, the others' served).

   Per row: P50/P99, error and degraded rates, overspend (the sum over budgets of what the
   ledger shows spent beyond the limit: must be 0). The noisy row adds the cross-tenant
   degradation: the other tenants' degraded share minus theirs in the ``none`` row (must be 0).

``--quick`` runs 2, 3 and 4 and, of the matrix, ``none``, ``provider-lying-usage``,
``noisy-tenant`` (before 3) and ``kill-worker`` (after 4), all on one service pointed at one
fake switched from mode to mode, since each service start costs seconds; it leaves out
``redis-kill``, ``provider-slow``, ``provider-429``, ``provider-500`` and ``provider-huge``
(their open breakers would carry over into the next rows for 30 s). The full run gives every
row a service and a fake of its own.

The scaling arithmetic to the seed's figures (40M requests a month, a 30K RPS load test) uses the
measured one-worker throughput. The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from costline.service.fakeprovider import (
    MIB,
    FakeMode,
    FakeProvider,
    FakeProviderConfig,
    spawned_fake_provider,
)
from costline.service.faults import KILL_WORKER, REDIS_KILL, parse_faults
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
# A word of the noisy tenant's questions that survives the masking of personal data, so the
# fake provider can tell its prompts from the other tenants'.
NOISY_MARKER = "bulk-replay"
NOISY_QUESTION = f"Please {NOISY_MARKER} every statement line and explain my savings."
# The matrix's open-loop load, as a share of the closed-loop throughput of all workers.
MATRIX_LOAD_SHARE = 0.4
# Small enough that the redis-kill row's tenants run out of it within the row.
SMALL_DAILY_BUDGET_USD = 0.004


@dataclass(frozen=True)
class Row:
    """One row of the fault matrix: the fake provider's mode and the harness's faults."""

    name: str
    fake: FakeProviderConfig
    faults: str = ""
    small_budget: bool = False
    noisy: bool = False


ROWS = (
    Row("none", FakeProviderConfig()),
    Row(KILL_WORKER, FakeProviderConfig(), faults=KILL_WORKER),
    Row(REDIS_KILL, FakeProviderConfig(), faults=REDIS_KILL, small_budget=True),
    Row("provider-slow", FakeProviderConfig(mode=FakeMode.SLOW)),
    Row("provider-429", FakeProviderConfig(mode=FakeMode.RATE_LIMITED, share=0.5)),
    Row("provider-500", FakeProviderConfig(mode=FakeMode.SERVER_ERROR, share=0.5)),
    Row("provider-huge", FakeProviderConfig(mode=FakeMode.HUGE, huge_bytes=32 * MIB)),
    Row("provider-lying-usage", FakeProviderConfig(mode=FakeMode.LYING_USAGE)),
    Row(
        "noisy-tenant",
        FakeProviderConfig(mode=FakeMode.REJECT_MARKED, marker=NOISY_MARKER),
        noisy=True,
    ),
)
QUICK_ROWS = ("none", "provider-lying-usage", "noisy-tenant")
# Run last on the quick benchmark's shared service: it loses a worker.
QUICK_LAST_ROWS = (KILL_WORKER,)


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


def _noisy_mix(mix: Mix) -> tuple[Mix, str]:
    """The mix with its first tenant asking the noisy question; and that tenant."""
    noisy = sorted(mix.customers)[0]
    return replace(mix, questions={**mix.questions, noisy: (NOISY_QUESTION,)}), noisy


def _degraded_share(r: LoadReport, exclude: str) -> float:
    """The degraded share of the requests of every tenant but ``exclude``."""
    others = [t for name, t in r.by_tenant.items() if name != exclude]
    sent = sum(t.requests for t in others)
    return sum(t.degraded for t in others) / sent if sent else 0.0


@contextmanager
def _service(
    ws: Path, workers: int, fake: FakeProviderConfig, *, small_budget: bool = False
) -> Iterator[tuple[SpawnedService, FakeProvider]]:
    """A fake provider and a service pointed at it."""
    with (
        spawned_fake_provider(fake) as provider,
        spawned_service(
            ws,
            workers=workers,
            redis=True,
            # Killed Redis keeps nothing: the budgets come back from the ledger only.
            redis_persistent=not small_budget,
            tenant_budget=daily_budget(SMALL_DAILY_BUDGET_USD) if small_budget else None,
            extra_args=["--llm-base-url", provider.base_url],
        ) as svc,
    ):
        yield svc, provider


def _row(
    svc: SpawnedService,
    provider: FakeProvider,
    row: Row,
    mix: Mix,
    n: int,
    seconds: float,
    rate: float,
    seed: int,
) -> dict[str, Any]:
    """Run one row of the matrix; its figures."""
    r = run_load(
        LoadConfig(
            base_url=svc.base_url, requests=n, duration_s=seconds, concurrency=256,
            rate_per_s=rate, seed=seed, faults=parse_faults(row.faults),
        ),
        mix, ledger_dir=svc.ledger_dir, tenants=svc.tenants, redis=svc.redis,
        worker_pids=svc.worker_pids,
    )  # fmt: skip
    _line(row.name, r)
    return {
        "report": r,
        "provider_calls": provider.stats(),
    }


def _matrix(
    ws: Path,
    workers: int,
    mix: Mix,
    names: Sequence[str],
    n: int,
    seconds: float,
    rate: float,
    shared: tuple[SpawnedService, FakeProvider] | None,
) -> dict[str, Any]:
    """The rows ``names`` of the fault matrix, on ``shared`` (one service, its fake switched
    from mode to mode) or each on a service and fake of its own; the figures and the
    cross-tenant degradation of the noisy row."""
    noisy_mix, noisy = _noisy_mix(mix)
    results: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(r for r in ROWS if r.name in names):
        row_mix = noisy_mix if row.noisy else mix
        if shared is not None:
            svc, provider = shared
            provider.switch(row.fake)
            results[row.name] = _row(svc, provider, row, row_mix, n, seconds, rate, 10 + i)
        else:
            with _service(ws, workers, row.fake, small_budget=row.small_budget) as (svc, prov):
                results[row.name] = _row(svc, prov, row, row_mix, n, seconds, rate, 10 + i)
    rows: dict[str, Any] = {}
    for name, res in results.items():
        r: LoadReport = res["report"]
        rows[name] = {
            "requests": r.requests,
            "answered": r.answered,
            "p50_ms": r.p50_ms,
            "p99_ms": r.p99_ms,
            "error_rate": r.error_rate,
            "errors": r.errors,
            "degraded_rate": r.degraded_rate,
            "overspend_usd": r.budget_overspend_usd or 0.0,
            "budget_max_utilisation": r.budget_max_utilisation,
            "provider_calls": res["provider_calls"],
        }
        if r.worker_killed is not None:
            rows[name]["worker_replaced_s"] = r.worker_replaced_s
        if r.redis_killed:
            rows[name]["redis_killed"] = True
    out: dict[str, Any] = {"rows": rows, "noisy_tenant": noisy}
    if "none" in results and "noisy-tenant" in results:
        base: LoadReport = results["none"]["report"]
        loud: LoadReport = results["noisy-tenant"]["report"]
        others_base = _degraded_share(base, noisy)
        others_loud = _degraded_share(loud, noisy)
        own = loud.by_tenant.get(noisy)
        out |= {
            "others_degraded_none": round(others_base, 4),
            "others_degraded_noisy": round(others_loud, 4),
            "cross_tenant_degradation": round(others_loud - others_base, 4),
            "noisy_tenant_degraded": round(own.degraded / own.requests, 4) if own else None,
        }
        rows["noisy-tenant"]["cross_tenant_degradation"] = out["cross_tenant_degradation"]
    return out


def _matrix_table(matrix: dict[str, Any]) -> None:
    print(
        f"{'row':<22} {'p50 ms':>7} {'p99 ms':>7} {'errors':>7} {'degraded':>8} "
        f"{'overspend':>10} {'cross-tenant':>12}",
        flush=True,
    )
    for name, row in matrix["rows"].items():
        cross = row.get("cross_tenant_degradation")
        print(
            f"{name:<22} {row['p50_ms']:>7.0f} {row['p99_ms']:>7.0f} {row['error_rate']:>7.2%} "
            f"{row['degraded_rate']:>8.1%} {row['overspend_usd']:>10.6f} "
            f"{'' if cross is None else f'{cross:+.4f}':>12}",
            flush=True,
        )


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
    matrix: dict[str, Any] = {}
    row_seconds = 3.0 if quick else 15.0
    with contextlib.ExitStack() as stack:
        if quick:
            # One service, and one fake provider, for every run of the quick benchmark.
            shared = stack.enter_context(_service(ws, workers, FakeProviderConfig()))
            svc = shared[0]
        else:
            svc = stack.enter_context(spawned_service(ws, workers=workers, redis=True))
        runs["all_workers"] = run_load(
            closed(svc.base_url, 2),
            mix,
            ledger_dir=svc.ledger_dir,
            tenants=svc.tenants,
            worker_pids=svc.worker_pids,
        )
        _line(f"{workers} workers", runs["all_workers"])
        capacity = min(r.rps for name, r in runs.items() if name in ("one_worker", "all_workers"))
        offered = round(0.6 * capacity, 1)
        matrix_rate = round(MATRIX_LOAD_SHARE * runs["all_workers"].rps, 1)
        if quick:
            # Before the runs with faults, which leave breakers open for 30 s.
            matrix = _matrix(ws, workers, mix, QUICK_ROWS, n, row_seconds, matrix_rate, shared)
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
            last = _matrix(ws, workers, mix, QUICK_LAST_ROWS, n, row_seconds, matrix_rate, shared)
            matrix["rows"] |= last["rows"]
    if not quick:
        # A daily budget small enough to run out during the run.
        with spawned_service(
            ws, workers=workers, redis=True, tenant_budget=daily_budget(0.01)
        ) as svc:
            runs["all_faults"] = _every_fault(svc, n, seconds, offered, mix)
        matrix = _matrix(
            ws, workers, mix, [r.name for r in ROWS], n, row_seconds, matrix_rate, None
        )
    _matrix_table(matrix)
    matrix["rows_run"] = list(matrix["rows"])
    matrix["rows_left_out"] = [r.name for r in ROWS if r.name not in matrix["rows"]]
    matrix["offered_rps"] = matrix_rate
    matrix["seconds_per_row"] = row_seconds

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
        "fault_matrix": matrix,
        "goal_matrix_no_overspend": all(
            row["overspend_usd"] == 0 for row in matrix["rows"].values()
        ),
        "goal_matrix_no_cross_tenant_degradation": (
            abs(matrix["cross_tenant_degradation"]) < 0.01
            if "cross_tenant_degradation" in matrix
            else None
        ),
    }
    if quick:
        shutil.rmtree(ws.parent, ignore_errors=True)  # the throwaway workspace
    sys.stdout.write(json.dumps(figures) + "\n")


if __name__ == "__main__":
    main()
