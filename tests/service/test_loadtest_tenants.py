"""The load harness by tenant: a tenant singled out by its questions, and its figures apart."""

from __future__ import annotations

from costline.core.prices import load_prices
from costline.service.faults import parse_faults
from costline.service.loadtest import Mix, Outcome, summarise


def test_a_tenant_can_ask_its_own_questions_and_the_others_keep_the_mix() -> None:
    mix = Mix({"a": ["1"], "b": ["2"]}, [["account_summary"]], questions={"a": ("bulk-replay",)})
    plan = mix.plan(200, seed=1, faults=parse_faults(None))
    asked = {(p.tenant, p.body["question"] == "bulk-replay") for p in plan}
    assert asked == {("a", True), ("b", False)}


def test_the_report_gives_each_tenants_requests_degraded_answers_and_errors() -> None:
    outcomes = [Outcome(200, 0.01, degraded=True, tenant="a") for _ in range(3)]
    outcomes += [Outcome(200, 0.01, tenant="b"), Outcome(0, 10.0, error="ReadTimeout", tenant="b")]
    report = summarise(
        outcomes, 1.0, concurrency=1, faults=parse_faults(None), ledger=None, tenants=None,
        prices=load_prices(), premium_model="gpt-4.1", redis_restarted=False, client_cpu_s=0.1,
    )  # fmt: skip
    a, b = report.by_tenant["a"], report.by_tenant["b"]
    assert (a.requests, a.answered, a.degraded, a.errors) == (3, 3, 3, 0)
    assert (b.requests, b.answered, b.degraded, b.errors) == (2, 1, 0, 1)
