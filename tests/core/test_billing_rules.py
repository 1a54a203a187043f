"""BigQuery's billing rules: one registry, every rule sourced and dated, read by the code."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from costline.core import billing_rules
from costline.core.billing_rules import RULES, rule
from costline.core.prices import load_prices
from costline.warehouse import catalog, profiler
from costline.warehouse.slots import plan, pricing
from costline.warehouse.slots.pricing import BillingRules
from tests.conftest import costline

EXPECTED_KEYS = {
    "autoscale.step_slots",
    "autoscale.scale_down_window_seconds",
    "autoscale.minimum_billed_seconds",
    "capacity.billing_increment_seconds",
    "fluid.general_availability",
    "commitment.step_slots",
    "standard.max_slots_per_reservation",
    "standard.max_reservations_per_admin_project",
    "standard.max_slots_per_organization",
    "on_demand.min_bytes_per_query",
    "on_demand.min_bytes_per_table",
    "on_demand.rounding_bytes",
    "on_demand.free_tier_bytes_per_month",
    "on_demand.cache_hit_bytes_billed",
    "on_demand.failed_query_bytes_billed",
    "table.max_partitions",
    "table.max_clustering_columns",
    "clustering.reclustering_usd",
    "query.max_execution_hours",
    "query.interactive_queue_timeout_seconds",
    "query.result_table_retention_hours",
    "load_extract.shared_pool_usd",
    "billing.day_time_zone",
}


def test_the_expected_rules_and_no_others() -> None:
    keys = [r.key for r in RULES]
    assert len(keys) == len(set(keys)), "duplicate keys"
    assert set(keys) == EXPECTED_KEYS


@pytest.mark.parametrize("r", RULES, ids=lambda r: r.key)
def test_every_rule_is_sourced_and_dated(r: billing_rules.BillingRule) -> None:
    assert r.source.startswith("https://"), r.source
    assert dt.date.fromisoformat(r.as_of).isoformat() == r.as_of  # YYYY-MM-DD, a real date
    assert r.key.count(".") == 1 and r.key == r.key.lower()
    assert r.unit and r.statement.endswith(".")


def test_the_documented_values() -> None:
    assert rule("autoscale.step_slots").value == 50
    assert rule("autoscale.scale_down_window_seconds").value == 60
    assert rule("autoscale.minimum_billed_seconds").value == 60
    assert rule("capacity.billing_increment_seconds").value == 1
    assert rule("fluid.general_availability").value == "2026-06-03"
    assert rule("commitment.step_slots").value == 50
    assert rule("standard.max_slots_per_reservation").value == 1_600
    assert rule("standard.max_reservations_per_admin_project").value == 10
    assert rule("standard.max_slots_per_organization").value == 16_000
    assert rule("table.max_partitions").value == 10_000
    assert rule("table.max_clustering_columns").value == 4
    assert rule("query.max_execution_hours").value == 6
    assert rule("query.interactive_queue_timeout_seconds").value == 6 * 3600
    assert pricing.QUEUE_TIMEOUT_SECONDS == 6 * 3600
    assert (
        rule("standard.max_reservations_per_admin_project").value == plan.STANDARD_MAX_RESERVATIONS
    )
    assert rule("query.result_table_retention_hours").value == 24
    assert rule("on_demand.cache_hit_bytes_billed").value == 0
    assert rule("on_demand.failed_query_bytes_billed").value == 0


def test_an_unknown_key_is_named() -> None:
    with pytest.raises(KeyError, match=r"autoscale\.no_such_rule"):
        rule("autoscale.no_such_rule")
    with pytest.raises(TypeError, match=r"billing\.day_time_zone"):
        billing_rules.int_value("billing.day_time_zone")


def test_on_demand_rules_equal_the_price_catalogue() -> None:
    on_demand = load_prices().bigquery.on_demand
    assert rule("on_demand.min_bytes_per_query").value == on_demand.min_bytes_per_query
    assert rule("on_demand.min_bytes_per_table").value == on_demand.min_bytes_per_table
    assert rule("on_demand.rounding_bytes").value == on_demand.rounding_bytes
    assert rule("on_demand.free_tier_bytes_per_month").value == on_demand.free_tier_bytes_per_month


def test_the_billing_day_zone_is_the_profiles() -> None:
    assert rule("billing.day_time_zone").value == profiler.BILLING_TIME_ZONE
    assert billing_rules.BILLING_TIME_ZONE == "America/Los_Angeles"


def test_the_code_reads_the_registry() -> None:
    assert rule("table.max_partitions").value == catalog.MAX_PARTITIONS_PER_TABLE
    assert rule("table.max_clustering_columns").value == catalog.MAX_CLUSTERING_COLUMNS
    defaults = BillingRules()
    assert defaults.step_slots == rule("autoscale.step_slots").value
    assert defaults.window_seconds == rule("autoscale.scale_down_window_seconds").value
    assert defaults.commitment_step_slots == rule("commitment.step_slots").value
    assert defaults.standard_max_slots == rule("standard.max_slots_per_reservation").value


def test_prices_sources_prints_every_rule() -> None:
    shown = costline("prices", "--sources", columns=200)
    assert shown.returncode == 0, shown.stderr
    for key in ("autoscale.step_slots", "table.max_partitions", "billing.day_time_zone"):
        assert key in shown.stdout
    assert "https://docs.cloud.google.com/bigquery/docs/slots-autoscaling-intro" in shown.stdout
    assert "America/Los_Angeles" in shown.stdout


def test_prices_sources_as_json() -> None:
    shown = costline("prices", "--sources", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert [r["key"] for r in rows] == [r.key for r in RULES]
    assert rows[0] == {
        "key": "autoscale.step_slots",
        "value": 50,
        "unit": "slots",
        "statement": rule("autoscale.step_slots").statement,
        "source": "https://docs.cloud.google.com/bigquery/docs/slots-autoscaling-intro",
        "as_of": "2026-12-03",
    }


def test_prices_without_sources_is_the_catalogue() -> None:
    shown = costline("prices")
    assert shown.returncode == 0 and "usd_per_tib = 6.25" in shown.stdout
    refused = costline("prices", "--format", "json")
    assert refused.returncode == 2 and "--sources" in refused.stderr
