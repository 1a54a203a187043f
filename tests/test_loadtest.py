"""The load-and-fault harness: its statistics, and a short run against a spawned service."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from costline.core.events import CostEvent, CostSource
from costline.core.prices import load_prices
from costline.service.faults import parse_faults
from costline.service.loadtest import Mix, Outcome, spawned_service, summarise
from costline.service.tenants import demo_key, demo_tenants
from tests.assistant.conftest import bank_dir
from tests.serving import customers_by_tenant, small_workspace

__all__ = ["bank_dir", "small_workspace"]

REQUIRED = {
    "requests",
    "rps",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "error_rate",
    "degraded_rate",
    "cost_per_request_usd",
    "premium_cost_per_request_usd",
    "budget_overspend_usd",
}


def _llm(tenant: str, model: str, inp: int, out: int, cost: float, rid: str) -> CostEvent:
    return CostEvent(
        source=CostSource.LLM,
        tenant=tenant,
        model=model,
        input_tokens=inp,
        output_tokens=out,
        cost_usd=cost,
        request_id=rid,
    )


def test_the_report_counts_rates_percentiles_and_prices_the_premium_policy() -> None:
    outcomes = [
        Outcome(
            200,
            (i + 1) / 1000,
            degraded=i % 4 == 0,
            cost_usd=0.001,
            worker=f"1{1 + i % 2}",
            request_id=f"r{i}",
        )
        for i in range(100)
    ]
    outcomes += [Outcome(0, 10.0, error="ReadTimeout"), Outcome(429, 0.001, error="HTTP 429")]
    ledger = [
        _llm("acme", "gpt-4.1-mini", 1_000, 200, 0.05, "r1"),
        _llm("acme", "llama3.2:3b", 500, 100, 0.0, "r2"),
        # An earlier run against the same service: its spend counts against the budget only.
        _llm("acme", "gpt-4.1", 9_000, 900, 99.0, "other-run-1"),
    ]
    tenants = demo_tenants(["acme"])
    report = summarise(
        outcomes,
        2.0,
        concurrency=8,
        faults=parse_faults("slow-risk=0.3"),
        ledger=ledger,
        tenants=tenants,
        prices=load_prices(),
        premium_model="gpt-4.1",
        redis_restarted=False,
        client_cpu_s=0.5,
    )
    assert report.requests == 102
    # Throughput counts the 100 answered requests, not the 102 attempts.
    assert report.answered == 100
    assert report.rps == 50.0
    assert report.error_rate == pytest.approx(2 / 102)
    assert report.errors == {"ReadTimeout": 1, "HTTP 429": 1}
    assert report.rate_limited == 1
    assert report.degraded_rate == pytest.approx(25 / 102)
    # Latencies of every request sent: 1, 1, 2 ... 100 ms and the 10 s timeout.
    assert report.p50_ms == 50.5
    assert report.p99_ms == 100.0
    assert report.max_ms == 10_000.0
    assert [(w.worker, w.requests) for w in report.per_worker] == [("11", 50), ("12", 50)]
    assert report.cost_per_request_usd == pytest.approx(0.1 / 102)
    premium = load_prices().llm.model("gpt-4.1")
    expected = (premium.cost(1_000, 200) + premium.cost(500, 100)) / 102
    assert report.premium_cost_per_request_usd == pytest.approx(expected)
    assert report.calls_by_model == {"gpt-4.1-mini": 1, "llama3.2:3b": 1}
    # The demo budget is $100 a day: the earlier run's $99 plus this run's $0.05 fit.
    assert report.budget_overspend_usd == 0 and report.overspent_budgets == []
    assert report.client_cpu_share == 0.25


def test_failed_requests_count_in_the_latency_and_not_in_the_throughput() -> None:
    """A service that answers half its requests in 10 ms and lets the other half time out
    after 10 s is slow and half as productive; it must not read as fast."""
    outcomes = [Outcome(200, 0.010, request_id=f"r{i}") for i in range(50)]
    outcomes += [Outcome(0, 10.0, error="ReadTimeout") for _ in range(50)]
    report = summarise(
        outcomes,
        10.0,
        concurrency=8,
        faults=parse_faults(None),
        ledger=None,
        tenants=None,
        prices=load_prices(),
        premium_model="gpt-4.1",
        redis_restarted=False,
        client_cpu_s=0.1,
    )
    assert report.error_rate == 0.5
    assert report.p95_ms == 10_000.0 and report.p99_ms == 10_000.0
    assert report.rps == 5.0  # 50 answered in 10 s; 100 were sent


def test_the_mix_uses_every_tier_and_is_the_same_for_a_seed() -> None:
    mix = Mix({"a": ["1", "2"], "b": ["3"]}, [["account_summary"], ["fraud_check"]])
    plan = mix.plan(2_000, seed=3, faults=parse_faults("slow-risk=0.3"))
    assert plan == mix.plan(2_000, seed=3, faults=parse_faults("slow-risk=0.3"))
    values = [float(str(p.body["business_value_usd"])) for p in plan]
    assert min(values) < 100 and any(100 <= v <= 10_000 for v in values) and max(values) > 10_000
    slow = sum(p.faults == "slow-risk" for p in plan) / len(plan)
    assert 0.25 < slow < 0.35
    assert {p.body["tenant"] for p in plan} == {"a", "b"}
    assert all(p.body["customer_id"] in {"a": ["1", "2"], "b": ["3"]}[p.tenant] for p in plan)


def test_a_spawned_two_worker_service_survives_every_fault_without_overspending(
    small_workspace: Path,
) -> None:
    """`costline loadtest --spawn`: two workers sharing budgets in Redis, restarted midway, a
    daily budget small enough to run out, every fault on."""
    run = subprocess.run(
        [
            sys.executable, "-m", "costline.cli", "loadtest", "--spawn",
            "--workspace", str(small_workspace), "--workers", "2", "--redis",
            "--requests", "300", "--duration", "30", "--concurrency", "16",
            "--faults", "slow-risk=0.3,failing-recommender=0.1,provider-429=0.05,"
            "provider-500=0.05,redis-restart",
            # Small enough to run out: only customers who consent to data sharing reach a model.
            "--tenant-budget-usd", "0.0007", "--json",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(report) >= REQUIRED
    assert report["requests"] == 300
    assert report["error_rate"] == 0, report["errors"]
    assert report["redis_restarted"] is True
    assert report["workers"] == 2
    assert 0 < report["degraded_rate"] < 1
    # The mix cost less than the premium model on the same tokens. (The budget is too small
    # to hold a premium call's reservation: the guardian downgrades them to a cheaper tier.)
    assert {"gpt-4.1-mini", "llama3.2:3b"} <= set(report["calls_by_model"])
    assert "gpt-4.1" not in report["calls_by_model"]
    assert report["cost_per_request_usd"] < report["premium_cost_per_request_usd"]
    # No budget overspent, by the ledger, although budgets were spent to more than half and
    # Redis restarted midway.
    assert report["budget_overspend_usd"] == 0
    assert report["overspent_budgets"] == []
    assert report["budget_max_utilisation"] > 0.5
    assert report["server_cpu_ms_per_request"] > 0


def test_workers_serve_one_port_and_metrics_sum_over_them(small_workspace: Path) -> None:
    """Two workers, each with its own socket on the port: /metrics on either reports both."""
    customers = customers_by_tenant(small_workspace)
    tenant = sorted(customers)[0]
    body = {"tenant": tenant, "request_types": ["account_summary"], "business_value_usd": 50}
    with spawned_service(small_workspace, workers=2) as svc:
        assert len(svc.worker_pids) == 2
        answered_by: set[str] = set()
        for i in range(40):
            # A new connection each time: the kernel picks the worker per connection.
            r = httpx.post(
                f"{svc.base_url}/v1/assist",
                json={**body, "customer_id": customers[tenant][i % 10]},
                headers={"Authorization": f"Bearer {demo_key(tenant)}", "Connection": "close"},
            )
            assert r.status_code == 200
            answered_by.add(r.headers["x-costline-worker"])
        metrics = httpx.get(f"{svc.base_url}/metrics").text
    assert answered_by == {str(p) for p in svc.worker_pids}
    line = 'costline_requests_total{route="/v1/assist",status="200"} 40.0'
    assert line in metrics.splitlines()


def test_bad_configuration_is_one_message_and_exit_2(tmp_path: Path, small_workspace: Path) -> None:
    tenants = tmp_path / "tenants.toml"
    tenants.write_text('[tenants.acme]\napi_key_sha256 = "short"\n')
    cases = [
        (["serve", str(small_workspace), "--tenants", str(tenants)], "tenants.acme.api_key_sha256"),
        (["serve", str(tmp_path)], "no bank tables"),
        (["serve", str(small_workspace), "--model", "huge=gpt-4.1"], "unknown tier"),
        (["loadtest", "--spawn", "--workspace", str(small_workspace), "--faults", "meteor"],
         "unknown fault 'meteor'"),
        (["loadtest", "--spawn", "--workspace", str(small_workspace), "--faults",
          "redis-restart"], "needs --redis"),
        (["loadtest", "--spawn", "--workspace", str(small_workspace), "--faults",
          "redis-kill"], "the redis-kill fault needs --redis"),
        (["loadtest", "--url", "http://127.0.0.1:9", "--workspace", str(small_workspace),
          "--faults", "kill-worker"], "the kill-worker fault needs --spawn"),
        # Two workers, each with its own copy of every budget: twice the limit, unless asked.
        (["serve", str(small_workspace), "--workers", "2"], "--per-worker-budgets"),
        (["serve", str(small_workspace), "--redis", "redis://127.0.0.1:9/0"],
         "--redis needs --ledger-dir"),
        (["serve", str(small_workspace), "--budget-outage", "pray"], "use one of refuse"),
    ]  # fmt: skip
    for args, message in cases:
        run = subprocess.run(
            [sys.executable, "-m", "costline.cli", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 2, (args, run.stderr)
        # The console wraps long messages at its width.
        assert message in " ".join(run.stderr.split()) and "Traceback" not in run.stderr


def _loadtest(workspace: Path, *args: str) -> dict[str, object]:
    run = subprocess.run(
        [sys.executable, "-m", "costline.cli", "loadtest", "--spawn", "--workspace",
         str(workspace), "--workers", "2", "--redis", "--json", *args],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    report: dict[str, object] = json.loads(run.stdout.strip().splitlines()[-1])
    return report


def test_a_worker_killed_mid_run_costs_only_its_requests_in_flight(small_workspace: Path) -> None:
    """`--faults kill-worker`: kill -9 of one of two workers; the other keeps serving, a
    replacement joins, and only the requests the dead one was answering fail."""
    concurrency = 16
    report = _loadtest(small_workspace, "--faults", "kill-worker", "--requests", "4000",
                       "--duration", "30", "--concurrency", str(concurrency))  # fmt: skip
    assert report["worker_killed"] is not None
    assert report["worker_replaced_s"] is not None
    # The killed one, the survivor and the replacement all answered (connections are closed
    # after 100 requests, so clients come back to the replacement too).
    assert report["workers"] == 3
    errors = report["errors"]
    assert isinstance(errors, dict)
    assert set(errors) <= {"ReadError", "RemoteProtocolError", "ConnectError"}, errors
    assert sum(errors.values()) <= concurrency, errors
    assert float(str(report["p99_ms"])) <= 2_000


def test_a_redis_killed_without_persistence_hands_out_no_budget_twice(
    small_workspace: Path,
) -> None:
    """`--faults redis-kill`: Redis keeps nothing, is killed (kill -9) midway and comes back
    empty; every tenant's budget was spent before, and none is spent again."""
    report = _loadtest(small_workspace, "--faults", "redis-kill", "--requests", "3000",
                       "--duration", "30", "--concurrency", "16",
                       "--tenant-budget-usd", "0.005")  # fmt: skip
    assert report["redis_killed"] is True
    assert report["error_rate"] == 0, report["errors"]
    budgets = report["budgets"]
    assert isinstance(budgets, list) and len(budgets) == 4
    for b in budgets:
        assert b["spent_usd"] <= b["limit_usd"] + 1e-9, b
    assert report["budget_overspend_usd"] == 0 and report["overspent_budgets"] == []
    assert float(str(report["budget_max_utilisation"])) > 0.9
