"""BigQuery's billing rules and limits: every number costline relies on, with its source.

Each :class:`BillingRule` states one rule as BigQuery documents it, the page that documents
it and the date it was last checked against that page. :data:`RULES` holds them all;
:func:`rule` looks one up by its dotted key, and the constants below give the ones other
modules read as plain typed values. ``costline prices --sources`` prints the table.

The on-demand minimums and free tier are also priced in ``core/data/prices.toml``; the tests
hold the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

MIB: Final = 1 << 20
TIB: Final = 1 << 40

PRICING = "https://cloud.google.com/bigquery/pricing"
ON_DEMAND_PRICING = f"{PRICING}#on_demand_pricing"
CAPACITY_PRICING = f"{PRICING}#capacity_compute_analysis_pricing"
AUTOSCALING = "https://docs.cloud.google.com/bigquery/docs/slots-autoscaling-intro"
EDITIONS = "https://docs.cloud.google.com/bigquery/docs/editions-intro"
QUOTAS = "https://docs.cloud.google.com/bigquery/quotas"
PARTITION_QUOTAS = f"{QUOTAS}#partitioned_tables"
QUERY_QUOTAS = f"{QUOTAS}#query_jobs"
CLUSTERED_TABLES = "https://docs.cloud.google.com/bigquery/docs/clustered-tables"
CACHED_RESULTS = "https://docs.cloud.google.com/bigquery/docs/cached-results"
RELEASE_NOTES = "https://docs.cloud.google.com/bigquery/docs/release-notes"
DEFAULT_CONFIGURATION = "https://cloud.google.com/bigquery/docs/default-configuration"

AS_OF = "2026-12-03"


@dataclass(frozen=True, slots=True)
class BillingRule:
    """One documented BigQuery billing rule or limit.

    ``key`` is dotted (``area.name``), ``value`` is in ``unit``, ``statement`` says the rule in
    one sentence, ``source`` is the documentation page and ``as_of`` the ISO date it was
    last checked against that page.
    """

    key: str
    value: int | float | str
    unit: str
    statement: str
    source: str
    as_of: str = AS_OF


RULES: Final[tuple[BillingRule, ...]] = (
    # Editions capacity: the autoscaler and how it is billed.
    BillingRule(
        "autoscale.step_slots",
        50,
        "slots",
        "The autoscaler allocates slots in multiples of 50, rounding the demand up.",
        AUTOSCALING,
    ),
    BillingRule(
        "autoscale.scale_down_window_seconds",
        60,
        "seconds",
        "A scale-up is kept for the 60 seconds that follow it; only a new scale-up restarts "
        "that window, and once it has passed capacity drops to what is needed.",
        AUTOSCALING,
    ),
    BillingRule(
        "autoscale.minimum_billed_seconds",
        60,
        "seconds",
        "Autoscaled slots are billed for at least one minute.",
        AUTOSCALING,
    ),
    BillingRule(
        "capacity.billing_increment_seconds",
        1,
        "seconds",
        "Capacity compute is billed per second, as slot-hours prorated to the second.",
        CAPACITY_PRICING,
    ),
    BillingRule(
        "fluid.general_availability",
        "2026-06-03",
        "date",
        "Fluid scaling, generally available since this date, follows demand second by "
        "second in 50-slot steps with no one-minute minimum and no scale-down window.",
        RELEASE_NOTES,
    ),
    BillingRule(
        "commitment.step_slots",
        50,
        "slots",
        "Slot commitments are bought in multiples of 50 slots.",
        CAPACITY_PRICING,
    ),
    # Standard edition limits.
    BillingRule(
        "standard.max_slots_per_reservation",
        1_600,
        "slots",
        "A Standard edition reservation can use at most 1,600 slots.",
        EDITIONS,
    ),
    BillingRule(
        "standard.max_reservations_per_admin_project",
        10,
        "reservations",
        "An administration project can hold at most 10 Standard edition reservations.",
        EDITIONS,
    ),
    BillingRule(
        "standard.max_slots_per_organization",
        16_000,
        "slots",
        "Standard edition reservations of one organisation can use at most 16,000 slots.",
        QUOTAS,
    ),
    # On-demand compute.
    BillingRule(
        "on_demand.min_bytes_per_query",
        10 * MIB,
        "bytes",
        "An on-demand query is billed for at least 10 MiB.",
        ON_DEMAND_PRICING,
    ),
    BillingRule(
        "on_demand.min_bytes_per_table",
        10 * MIB,
        "bytes",
        "An on-demand query is billed for at least 10 MiB per table it references.",
        ON_DEMAND_PRICING,
    ),
    BillingRule(
        "on_demand.rounding_bytes",
        MIB,
        "bytes",
        "On-demand bytes billed are rounded up to the next MiB.",
        ON_DEMAND_PRICING,
    ),
    BillingRule(
        "on_demand.free_tier_bytes_per_month",
        TIB,
        "bytes",
        "The first TiB of on-demand query processing each month is free, per billing account.",
        ON_DEMAND_PRICING,
    ),
    BillingRule(
        "on_demand.cache_hit_bytes_billed",
        0,
        "bytes",
        "A query answered from cached results is not charged.",
        CACHED_RESULTS,
    ),
    BillingRule(
        "on_demand.failed_query_bytes_billed",
        0,
        "bytes",
        "A query that returns an error is not charged; a cancelled query may still be.",
        ON_DEMAND_PRICING,
    ),
    # Table layout limits.
    BillingRule(
        "table.max_partitions",
        10_000,
        "partitions",
        "A partitioned table can have at most 10,000 partitions.",
        PARTITION_QUOTAS,
    ),
    BillingRule(
        "table.max_clustering_columns",
        4,
        "columns",
        "A table can be clustered by at most four columns.",
        CLUSTERED_TABLES,
    ),
    BillingRule(
        "clustering.reclustering_usd",
        0,
        "USD",
        "Automatic re-clustering of clustered tables is free and uses none of your slots.",
        CLUSTERED_TABLES,
    ),
    # Jobs.
    BillingRule(
        "query.max_execution_hours",
        6,
        "hours",
        "A query or script job runs for at most six hours before it fails.",
        QUERY_QUOTAS,
    ),
    BillingRule(
        "query.interactive_queue_timeout_seconds",
        6 * 3600,
        "seconds",
        "An interactive query waits at most six hours in a reservation's queue before it "
        "fails (default_interactive_query_queue_timeout_ms; batch queries wait 24 hours).",
        DEFAULT_CONFIGURATION,
        "2026-12-04",
    ),
    BillingRule(
        "query.result_table_retention_hours",
        24,
        "hours",
        "Temporary (anonymous) result tables, which hold cached results, are kept for up to "
        "about 24 hours.",
        CACHED_RESULTS,
    ),
    BillingRule(
        "load_extract.shared_pool_usd",
        0,
        "USD",
        "Batch load and extract jobs that run in the default shared slot pool are free.",
        PRICING,
    ),
    # Billing periods.
    BillingRule(
        "billing.day_time_zone",
        "America/Los_Angeles",
        "time zone",
        "Cloud Billing groups usage into days from midnight to midnight Pacific time "
        "(reports and the Channel API's daily groupings).",
        "https://cloud.google.com/billing/docs/how-to/reports",
        "2026-12-04",
    ),
)

_BY_KEY: Final[dict[str, BillingRule]] = {r.key: r for r in RULES}


def rule(key: str) -> BillingRule:
    """The rule with this dotted ``key``; :class:`KeyError` naming the key if there is none."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"no BigQuery billing rule {key!r}") from None


def int_value(key: str) -> int:
    """The value of an integer rule (a :class:`TypeError` if the rule holds another type)."""
    value = rule(key).value
    if not isinstance(value, int):
        raise TypeError(f"billing rule {key!r} is {value!r}, not an integer")
    return value


def str_value(key: str) -> str:
    """The value of a text rule (a :class:`TypeError` if the rule holds another type)."""
    value = rule(key).value
    if not isinstance(value, str):
        raise TypeError(f"billing rule {key!r} is {value!r}, not text")
    return value


AUTOSCALE_STEP_SLOTS: Final = int_value("autoscale.step_slots")
AUTOSCALE_WINDOW_SECONDS: Final = int_value("autoscale.scale_down_window_seconds")
AUTOSCALE_MINIMUM_SECONDS: Final = int_value("autoscale.minimum_billed_seconds")
COMMITMENT_STEP_SLOTS: Final = int_value("commitment.step_slots")
STANDARD_MAX_SLOTS: Final = int_value("standard.max_slots_per_reservation")
MAX_PARTITIONS_PER_TABLE: Final = int_value("table.max_partitions")
MAX_CLUSTERING_COLUMNS: Final = int_value("table.max_clustering_columns")
BILLING_TIME_ZONE: Final = str_value("billing.day_time_zone")
QUEUE_TIMEOUT_SECONDS: Final = int_value("query.interactive_queue_timeout_seconds")
STANDARD_MAX_RESERVATIONS: Final = int_value("standard.max_reservations_per_admin_project")
