"""What a BigQuery job cost: the pricing rules, in one place.

:func:`job_cost` is the definition, written for one job and readable as a specification;
:func:`cost_sql` is the same rules as a DuckDB expression, which is how a history of millions
of jobs is priced. A property test holds the two equal.

The rules (prices from the catalogue; sources in ``costline prices --sources``):

1. A cache hit costs nothing.
2. A SCRIPT parent costs nothing itself, whatever its row says: its bytes and slots are the sum
   of its child jobs', which are priced (and attributed) one by one. A parent is a job whose
   ``statement_type`` is ``SCRIPT`` or whose ``job_id`` is some job's ``parent_job_id``; when
   a parent's children are missing from the history, its work is missing too, and the profile
   says so rather than pricing the parent.
3. A job that ran in the ``default-pipeline`` reservation (BigQuery's free shared pool for
   load and extract jobs) costs nothing.
4. A job with a ``reservation_id`` is capacity work. Its *slot-time price* is
   ``total_slot_ms / 3,600,000`` times the pay-as-you-go slot-hour price of its ``edition``
   (the configured default edition — Enterprise unless set — when the history does not say).
   That is not what the reservation is billed: BigQuery bills the slots it *allocated* over
   time, not the slot-ms jobs used. The profile replaces it with each job's share of the
   reservation's bill (:mod:`costline.warehouse.billing`); the slot-time price is what is left
   when no bill can be known.
5. Any other job is on-demand: ``total_bytes_billed`` times the price per TiB. When the export
   has no ``total_bytes_billed``, it is derived from ``total_bytes_processed`` with BigQuery's
   billing rules: rounded up to 1 MiB, at least 10 MiB per query and per table referenced.
6. An on-demand query that returned an error costs nothing ("you aren't charged for queries
   that return an error"), except a cancelled one (``error_result.reason = 'stopped'``), which
   is billed what it processed.
7. An on-demand ``CREATE_MODEL`` is BigQuery ML training, priced per TiB at its own rate.
8. The free tier (the first TiB of on-demand bytes each month, per billing account) is never
   deducted: it is shared by every project on the account, which one history cannot see.
"""

from __future__ import annotations

from dataclasses import dataclass

from costline.core.prices import MS_PER_HOUR, TIB, Edition, PriceCatalogue

FREE_RESERVATION = "default-pipeline"
SCRIPT_PARENT_SQL = (
    "(job_id IN (SELECT parent_job_id FROM jobs WHERE parent_job_id IS NOT NULL) "
    "OR statement_type IS NOT DISTINCT FROM 'SCRIPT')"
)
"""Rule 2's test over the ``jobs`` table: the job is a SCRIPT parent."""
CANCELLED = "stopped"
"""``error_result.reason`` of a job cancelled by its user: billed as it ran."""


@dataclass(frozen=True)
class BillableJob:
    """The fields of a job that decide its price."""

    cache_hit: bool = False
    total_bytes_billed: int | None = 0
    total_bytes_processed: int = 0
    total_slot_ms: int = 0
    reservation_id: str | None = None
    edition: str | None = None
    referenced_tables: int = 0
    is_script_parent_with_children: bool = False
    statement_type: str | None = None
    error_reason: str | None = None

    @property
    def is_script_parent(self) -> bool:
        """Rule 2: the job is a SCRIPT parent."""
        return self.is_script_parent_with_children or self.statement_type == "SCRIPT"


def billed_bytes(processed: int, tables: int, prices: PriceCatalogue) -> int:
    """On-demand bytes billed for ``processed`` bytes over ``tables`` referenced tables."""
    if processed <= 0:
        return 0
    od = prices.bigquery.on_demand
    rounded = -(-processed // od.rounding_bytes) * od.rounding_bytes
    return max(rounded, od.min_bytes_per_query, od.min_bytes_per_table * tables)


def job_cost(
    job: BillableJob, prices: PriceCatalogue, default_edition: Edition = Edition.ENTERPRISE
) -> float:
    """USD cost of one job under the rules in this module's docstring."""
    if job.cache_hit or job.is_script_parent:
        return 0.0
    if job.reservation_id is not None:
        if job.reservation_id == FREE_RESERVATION:
            return 0.0
        edition = Edition.parse(job.edition) if job.edition else default_edition
        return job.total_slot_ms / MS_PER_HOUR * prices.bigquery.slot_hour(edition)
    if job.error_reason is not None and job.error_reason != CANCELLED:
        return 0.0
    billed = job.total_bytes_billed
    if billed is None:
        billed = billed_bytes(job.total_bytes_processed, job.referenced_tables, prices)
    if job.statement_type == "CREATE_MODEL":
        return billed / TIB * prices.bigquery.ml.create_model_usd_per_tib
    return billed / TIB * prices.bigquery.on_demand.usd_per_tib


def derived_billed_sql(prices: PriceCatalogue) -> str:
    """What an on-demand job bills when the export has no ``total_bytes_billed``: its
    ``total_bytes_processed`` rounded up to the MiB, at least the per-query and per-table
    minimums (a DuckDB expression over the normalised ``jobs`` columns)."""
    od = prices.bigquery.on_demand
    return (
        "CASE WHEN total_bytes_processed <= 0 THEN 0 ELSE greatest("
        f"ceil(total_bytes_processed / {od.rounding_bytes}) * {od.rounding_bytes}, "
        f"{od.min_bytes_per_query}, {od.min_bytes_per_table} * len(referenced_tables)) END"
    )


def billed_bytes_sql(prices: PriceCatalogue) -> str:
    """The bytes an on-demand job bills: ``total_bytes_billed``, or when the export has none,
    :func:`derived_billed_sql` (capacity jobs keep what the export says)."""
    return (
        "CASE WHEN total_bytes_billed IS NULL AND reservation_id IS NULL "
        f"THEN CAST({derived_billed_sql(prices)} AS BIGINT) ELSE total_bytes_billed END"
    )


def cost_sql(prices: PriceCatalogue, default_edition: Edition = Edition.ENTERPRISE) -> str:
    """:func:`job_cost` as a DuckDB expression over the normalised ``jobs`` columns plus a
    boolean ``is_script_parent`` (the job has children in the history)."""
    bq = prices.bigquery
    od = bq.on_demand
    edition_price = " ".join(
        f"WHEN '{e.value.upper()}' THEN {bq.slot_hour(e)!r}" for e in bq.editions
    )
    derived_billed = derived_billed_sql(prices)
    return f"""(CASE
        WHEN cache_hit OR is_script_parent OR statement_type IS NOT DISTINCT FROM 'SCRIPT'
            THEN 0.0
        WHEN reservation_id = '{FREE_RESERVATION}' THEN 0.0
        WHEN reservation_id IS NOT NULL THEN total_slot_ms / {float(MS_PER_HOUR)!r}
            * (CASE coalesce(replace(upper(edition), ' ', '_'), '{default_edition.value.upper()}')
               {edition_price} ELSE {bq.slot_hour(default_edition)!r} END)
        WHEN error_reason IS NOT NULL AND error_reason <> '{CANCELLED}' THEN 0.0
        ELSE coalesce(total_bytes_billed, {derived_billed}) / {float(TIB)!r}
            * (CASE WHEN statement_type IS NOT DISTINCT FROM 'CREATE_MODEL'
                    THEN {bq.ml.create_model_usd_per_tib!r} ELSE {od.usd_per_tib!r} END)
    END)"""
