"""Who queries the demo warehouse, and how: pipelines, dashboards and analysts.

A :class:`Shape` is one query pattern: a SQL template whose ``{slots}`` take literal values
that change per run (dates, ids, amounts, IN-lists), the tables it reads and how much of them.
Pipelines run a fixed shape (or a script of shapes) on a schedule; analysts pick from a pool of a
few thousand shapes generated from families of typical questions. The anti-patterns from
"Architecture Over Alerts" are pipelines whose shape carries a ``planted`` id.

Slots: ``{d0}``/``{d1}`` start and end date of the range read, ``{d1c}`` the end date as
``YYYYMMDD``, ``{ts0}`` the run hour, ``{id0}``/``{id1}`` ids, ``{amt}`` an amount, ``{s0}`` one
of the shape's ``choices``, ``{in}`` an IN-list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from costline.demo.warehouse import PROJECT

DWH = PROJECT


def fq(table: str) -> str:
    """Backticked fully qualified name of a ``dataset.table`` in the warehouse project."""
    return f"`{DWH}.{table}`"


@dataclass(frozen=True)
class Read:
    """Part of a table a shape reads: columns (None: all) over all of it or over its date range.

    ``scope`` "full" reads every partition; "range" reads the partitions of the ``{d0}``..``{d1}``
    range (the whole table if it is unpartitioned). ``prune`` is the fraction of the scanned
    partitions left after clustering. Tables outside the catalogue give ``fixed_bytes``.
    """

    table: str
    columns: tuple[str, ...] | None = None
    scope: str = "range"
    prune: float = 1.0
    fixed_bytes: float = 0.0


@dataclass(frozen=True)
class InList:
    """How an IN-list slot is filled: integers below ``size``, or strings from ``choices``."""

    lengths: tuple[int, int]
    size: int = 0
    prefix: str = ""
    width: int = 0
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shape:
    """One query pattern."""

    key: str
    template: str | None
    statement_type: str | None
    reads: tuple[Read, ...] = ()
    destination: str | None = None
    job_type: str = "QUERY"
    slot_ms_per_gib: float = 64_000.0
    span: tuple[int, int] = (1, 1)
    lag: tuple[int, int] = (0, 0)
    ids: int = 1_000_000
    amounts: tuple[int, int] = (100, 100_000)
    choices: tuple[str, ...] = ()
    in_list: InList | None = None
    cacheable: bool = False
    planted: str | None = None

    @property
    def tables(self) -> tuple[str, ...]:
        """Referenced tables, fully qualified, in first-read order."""
        seen: dict[str, None] = {}
        for r in self.reads:
            seen.setdefault(r.table if r.table.count(".") == 2 else f"{DWH}.{r.table}")
        return tuple(seen)


@dataclass(frozen=True)
class Actor:
    """Who runs jobs: identity, project, billing model, labels, job-id style."""

    key: str
    user_email: str
    project_id: str
    reservation_id: str | None = None
    edition: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    priority: str = "INTERACTIVE"
    id_style: int = 0  # 0 console, 1 API client, 2 Airflow, 3 scheduled query
    id_prefix: str = ""

    @property
    def team(self) -> str | None:
        """The ``team`` label, if any."""
        return next((v for k, v in self.labels if k == "team"), None)


@dataclass(frozen=True)
class Schedule:
    """Runs every ``every`` minutes from ``offset`` within ``hours``; daily/weekly via ``every``."""

    every: int
    offset: int = 0
    hours: tuple[int, int] = (0, 24)
    weekdays_only: bool = False
    weekday: int | None = None  # for weekly runs: 0 = Monday
    jitter_s: int = 90
    runs_per_slot: int = 1


@dataclass(frozen=True)
class Pipeline:
    """A scheduled workload: one shape, or a script of several (a SCRIPT parent with children)."""

    name: str
    actor: Actor
    schedule: Schedule
    shapes: tuple[Shape, ...]
    script: bool = False
    always: bool = False  # never thinned when the job budget is small
    cache_rate: float = 0.0
    failure_rate: float = 0.006
    description: str = ""


# -- projects and reservations ---------------------------------------------------------------

ON_DEMAND = (None, None)
ETL_PROD = ("acme-admin:US.etl-prod", "ENTERPRISE")
REGULATORY = ("acme-admin:US.regulatory", "ENTERPRISE_PLUS")
DS_SANDBOX = ("acme-admin:US.data-science", "STANDARD")
BI_RESERVED = ("acme-admin:US.bi-interactive", "ENTERPRISE")

_PROJECT_BILLING: dict[str, tuple[str | None, str | None]] = {
    "acme-risk-etl": ON_DEMAND,
    "acme-finance-etl": ON_DEMAND,
    "acme-etl-prod": ETL_PROD,
    "acme-regulatory": REGULATORY,
    "acme-bi-prod": ON_DEMAND,
    "acme-analytics": ON_DEMAND,
    "acme-ds-sandbox": DS_SANDBOX,
    "acme-treasury": BI_RESERVED,
}


def _sa(name: str, project: str) -> str:
    return f"{name}@{project}.iam.gserviceaccount.com"


def _pipeline_actor(
    name: str,
    team: str | None,
    project: str,
    *,
    labels: str = "tpe",
    style: int = 2,
    sa: str = "",
    priority: str = "INTERACTIVE",
) -> Actor:
    """Actor of pipeline ``name``; ``labels`` says which of team/pipeline/env it sets."""
    reservation, edition = _PROJECT_BILLING[project]
    pairs: list[tuple[str, str]] = []
    if "t" in labels and team:
        pairs.append(("team", team))
    if "p" in labels:
        pairs.append(("pipeline", name))
    if "e" in labels:
        pairs.append(("env", "prod"))
    prefix = f"airflow_{name}_" if style == 2 else ""
    return Actor(
        name,
        _sa(sa or f"{team or 'ops'}-pipelines", project),
        project,
        reservation,
        edition,
        tuple(pairs),
        priority,
        style,
        prefix,
    )


def _hourly(offset: int, **kw: object) -> Schedule:
    return Schedule(60, offset, **kw)  # type: ignore[arg-type]


def _daily(hour: int, minute: int = 0, **kw: object) -> Schedule:
    return Schedule(1440, hour * 60 + minute, **kw)  # type: ignore[arg-type]


def _weekly(weekday: int, hour: int, minute: int = 0) -> Schedule:
    return Schedule(1440, hour * 60 + minute, weekday=weekday)


_POSITION_SET = (
    "quantity = s.quantity,\n    price = s.price,\n    market_value = s.market_value,\n"
    "    market_value_base = s.market_value_base,\n    unrealised_pnl = s.unrealised_pnl,\n"
    "    pnl_daily = s.pnl_daily,\n    settlement_status = s.settlement_status,\n"
    "    last_updated_ts = s.last_updated_ts,\n    row_hash = s.row_hash"
)

_COUNTRIES = ("GB", "DE", "FR", "CH", "US", "NL", "IE", "ES", "IT", "SE", "JP", "SG")
_CCYS = ("EUR", "USD", "GBP", "CHF", "JPY", "SEK", "NOK", "CAD")
_CHANNELS = ("card_present", "contactless", "ecommerce", "atm", "online_banking", "mobile")
_REPORT_CODES = (
    "COREP_C07",
    "COREP_C08",
    "FINREP_F01",
    "FINREP_F18",
    "LCR_C72",
    "NSFR_C80",
    "LE_C27",
    "LE_C28",
    "AE_F32",
    "IRRBB_J01",
)
_ENTITIES = ("ACMEUK", "ACMEDE", "ACMEFR", "ACMECH", "ACMEUS", "ACMESG", "ACMEIE", "ACMENL")


def pipelines() -> tuple[Pipeline, ...]:
    """The scheduled workloads: ETL, loads, dashboards, models; six of them planted."""
    pos = "risk.positions"
    delta = "risk_staging.positions_delta"
    exp = "risk.exposures"
    txn = "finance.transactions"
    led = "finance.ledger_entries"
    reg = "regulatory.regulatory_reports"
    gl = "finance.gl_balances"
    fx = "finance.fx_rates"
    a = _pipeline_actor
    out: list[Pipeline] = []

    def add(name: str, actor: Actor, schedule: Schedule, *shapes: Shape, **kw: object) -> None:
        out.append(Pipeline(name, actor, schedule, shapes, **kw))  # type: ignore[arg-type]

    # --- risk --------------------------------------------------------------------------------
    add(
        "positions_nightly_merge",
        a("positions_nightly_merge", "risk", "acme-risk-etl", sa="positions-loader"),
        _daily(1, 30, jitter_s=240),
        Shape(
            "positions_nightly_merge",
            f"-- positions_nightly_merge: apply the day's position changes\n"
            f"MERGE {fq(pos)} AS t\n"
            f"USING (\n  SELECT *\n  FROM {fq(delta)}\n  WHERE load_date = '{{d1}}'\n) AS s\n"
            "ON t.portfolio_id = s.portfolio_id\n  AND t.instrument_id = s.instrument_id\n"
            "  AND t.as_of_date = s.as_of_date\n"
            f"WHEN MATCHED THEN UPDATE SET\n    {_POSITION_SET}\n"
            "WHEN NOT MATCHED THEN\n  INSERT (as_of_date, portfolio_id, instrument_id, quantity,"
            " price, market_value, market_value_base, last_updated_ts, row_hash)\n"
            "  VALUES (s.as_of_date, s.portfolio_id, s.instrument_id, s.quantity, s.price,"
            " s.market_value, s.market_value_base, s.last_updated_ts, s.row_hash)",
            "MERGE",
            (Read(pos, None, "full"), Read(delta, None)),
            destination=f"{DWH}.{pos}",
            slot_ms_per_gib=40_000,
            planted="full_table_merge",
        ),
        always=True,
        failure_rate=0.0,
        description="nightly MERGE of staged position changes into risk.positions",
    )
    add(
        "positions_delta_load",
        a("positions_delta_load", "risk", "acme-risk-etl", sa="positions-loader"),
        _daily(1, 5),
        Shape(
            "positions_delta_load",
            None,
            None,
            destination=f"{DWH}.{delta}",
            job_type="LOAD",
            slot_ms_per_gib=0,
        ),
    )
    add(
        "positions_eod_snapshot",
        a("positions_eod_snapshot", "risk", "acme-risk-etl", sa="risk-reporting"),
        _daily(6, 15),
        Shape(
            "positions_eod_snapshot",
            "-- positions_eod_snapshot\n"
            "SELECT desk, legal_entity, currency,\n"
            "  SUM(market_value_base) AS market_value_base,\n  SUM(pnl_daily) AS pnl_daily\n"
            f"FROM {fq(pos)}\n"
            "WHERE FORMAT_DATE('%Y%m%d', as_of_date) = '{d1c}'\n"
            "GROUP BY desk, legal_entity, currency",
            "SELECT",
            (
                Read(
                    pos,
                    (
                        "as_of_date",
                        "desk",
                        "legal_entity",
                        "currency",
                        "market_value_base",
                        "pnl_daily",
                    ),
                    "full",
                ),
            ),
            lag=(1, 1),
            slot_ms_per_gib=48_000,
            planted="non_sargable_format_date",
        ),
    )
    add(
        "exposures_daily_build",
        a("exposures_daily_build", "risk", "acme-etl-prod"),
        _daily(3, 0),
        Shape(
            "exposures_daily_build.delete",
            f"DELETE FROM {fq(exp)}\nWHERE as_of_date = '{{d1}}'",
            "DELETE",
            (Read(exp, None),),
            destination=f"{DWH}.{exp}",
            lag=(1, 1),
        ),
        Shape(
            "exposures_daily_build.insert",
            f"INSERT INTO {fq(exp)} (as_of_date, exposure_id, counterparty_id, legal_entity,"
            " currency, ead_amount, rwa_amount)\n"
            "SELECT p.as_of_date, FARM_FINGERPRINT(CONCAT(p.portfolio_id, CAST(p.instrument_id"
            " AS STRING))), c.counterparty_id, p.legal_entity, p.currency,\n"
            "  SUM(p.notional), SUM(p.notional) * 0.35\n"
            f"FROM {fq(pos)} AS p\nJOIN {fq('risk.counterparties')} AS c\n"
            "  ON c.counterparty_id = MOD(p.instrument_id, 1200000)\n"
            "WHERE p.as_of_date = '{d1}'\n"
            "GROUP BY 1, 2, 3, 4, 5",
            "INSERT",
            (
                Read(
                    pos,
                    (
                        "as_of_date",
                        "portfolio_id",
                        "instrument_id",
                        "legal_entity",
                        "currency",
                        "notional",
                    ),
                ),
                Read("risk.counterparties", ("counterparty_id",), "full"),
            ),
            destination=f"{DWH}.{exp}",
            lag=(1, 1),
            slot_ms_per_gib=160_000,
        ),
        script=True,
    )
    add(
        "var_results_daily",
        a("var_results_daily", "risk", "acme-etl-prod"),
        _daily(4, 0),
        Shape(
            "var_results_daily",
            f"CREATE OR REPLACE TABLE `{DWH}.risk.var_results` AS\n"
            "SELECT portfolio_id, desk, SUM(var_contribution) AS var_99,\n"
            "  SUM(delta) AS delta, SUM(vega) AS vega\n"
            f"FROM {fq(pos)}\nWHERE as_of_date BETWEEN '{{d0}}' AND '{{d1}}'\n"
            "GROUP BY portfolio_id, desk",
            "CREATE_TABLE_AS_SELECT",
            (Read(pos, ("portfolio_id", "desk", "var_contribution", "delta", "vega")),),
            destination=f"{DWH}.risk.var_results",
            span=(10, 10),
            lag=(1, 1),
            slot_ms_per_gib=120_000,
        ),
    )
    add(
        "counterparty_refresh",
        a("counterparty_refresh", "risk", "acme-etl-prod"),
        _daily(0, 30),
        Shape(
            "counterparty_refresh",
            f"MERGE {fq('risk.counterparties')} AS t\n"
            f"USING `{DWH}.risk_staging.counterparties_cdc` AS s\n"
            "ON t.counterparty_id = s.counterparty_id\n"
            "WHEN MATCHED THEN UPDATE SET rating = s.rating, sector = s.sector,"
            " updated_ts = s.updated_ts\n"
            "WHEN NOT MATCHED THEN INSERT ROW",
            "MERGE",
            (
                Read("risk.counterparties", None, "full"),
                Read(f"{DWH}.risk_staging.counterparties_cdc", fixed_bytes=40e6),
            ),
            destination=f"{DWH}.risk.counterparties",
        ),
    )
    add(
        "risk_limits_hourly",
        a("risk_limits_hourly", "risk", "acme-etl-prod"),
        _hourly(10),
        Shape(
            "risk_limits_hourly",
            "SELECT portfolio_id,\n  SUM(notional) AS notional,\n"
            "  SUM(market_value_base) AS market_value\n"
            f"FROM {fq(pos)}\nWHERE as_of_date = '{{d1}}'\nGROUP BY portfolio_id\n"
            "HAVING SUM(notional) > {amt}",
            "SELECT",
            (Read(pos, ("portfolio_id", "notional", "market_value_base")),),
            lag=(1, 1),
            amounts=(1_000_000, 50_000_000),
        ),
    )
    add(
        "exposures_intraday",
        a("exposures_intraday", "risk", "acme-etl-prod", labels="tp"),
        Schedule(120, 40),
        Shape(
            "exposures_intraday",
            "SELECT counterparty_id,\n  SUM(ead_amount) AS ead,\n"
            "  MAX(limit_utilisation) AS max_utilisation\n"
            f"FROM {fq(exp)}\nWHERE as_of_date = '{{d1}}'\n  AND counterparty_id IN ({{in}})\n"
            "GROUP BY counterparty_id",
            "SELECT",
            (Read(exp, ("counterparty_id", "ead_amount", "limit_utilisation"), prune=0.05),),
            lag=(1, 1),
            in_list=InList((20, 20), size=1_200_000),
        ),
    )
    # --- finance -----------------------------------------------------------------------------
    add(
        "ledger_hourly_reconciliation",
        a("ledger_hourly_reconciliation", "finance", "acme-finance-etl", sa="ledger-recon"),
        _hourly(5, jitter_s=60),
        Shape(
            "ledger_hourly_reconciliation",
            "-- ledger_hourly_reconciliation: unreconciled postings since the hour started\n"
            "SELECT legal_entity, gl_account, cost_centre, currency, debit_credit, source_system,\n"
            "  SUM(amount) AS amount,\n  SUM(amount_base) AS amount_base,\n"
            "  COUNT(*) AS entries\n"
            f"FROM {fq(led)}\n"
            "WHERE posting_ts >= TIMESTAMP('{ts0}')\n  AND reconciled = FALSE\n"
            "GROUP BY legal_entity, gl_account, cost_centre, currency, debit_credit, source_system",
            "SELECT",
            (
                Read(
                    led,
                    (
                        "posting_ts",
                        "reconciled",
                        "legal_entity",
                        "gl_account",
                        "cost_centre",
                        "currency",
                        "debit_credit",
                        "source_system",
                        "amount",
                        "amount_base",
                    ),
                ),
            ),
            slot_ms_per_gib=48_000,
            planted="hourly_full_scan",
        ),
    )
    add(
        "card_txn_ingest",
        a("card_txn_ingest", "finance", "acme-etl-prod", sa="card-ingest"),
        Schedule(15, 3, jitter_s=30),
        Shape(
            "card_txn_ingest",
            None,
            None,
            destination=f"{DWH}.{txn}",
            job_type="LOAD",
            slot_ms_per_gib=0,
        ),
    )
    add(
        "transactions_daily_aggregates",
        a("transactions_daily_aggregates", "finance", "acme-etl-prod"),
        _daily(2, 30),
        Shape(
            "transactions_daily_aggregates",
            f"INSERT INTO `{DWH}.finance.daily_spend` (booking_date, tenant_id, category,"
            " channel, txns, amount)\n"
            "SELECT booking_date, tenant_id, category, channel, COUNT(*), SUM(amount)\n"
            f"FROM {fq(txn)}\nWHERE booking_date = '{{d1}}'\n"
            "GROUP BY booking_date, tenant_id, category, channel",
            "INSERT",
            (Read(txn, ("booking_date", "tenant_id", "category", "channel", "amount")),),
            destination=f"{DWH}.finance.daily_spend",
            lag=(1, 1),
        ),
    )
    add(
        "gl_balances_daily",
        a("gl_balances_daily", "finance", "acme-etl-prod"),
        _daily(5, 0),
        Shape(
            "gl_balances_daily.delete",
            f"DELETE FROM {fq(gl)}\nWHERE balance_date = '{{d1}}'",
            "DELETE",
            (Read(gl, None),),
            destination=f"{DWH}.{gl}",
            lag=(1, 1),
        ),
        Shape(
            "gl_balances_daily.insert",
            f"INSERT INTO {fq(gl)} (balance_date, entity_id, gl_account, cost_centre, currency,"
            " debits, credits)\n"
            "SELECT entry_date, legal_entity, gl_account, cost_centre, currency,\n"
            "  SUM(IF(debit_credit = 'D', amount, 0)),\n  SUM(IF(debit_credit = 'C', amount, 0))\n"
            f"FROM {fq(led)}\nWHERE entry_date = '{{d1}}'\n"
            "GROUP BY entry_date, legal_entity, gl_account, cost_centre, currency",
            "INSERT",
            (
                Read(
                    led,
                    (
                        "entry_date",
                        "legal_entity",
                        "gl_account",
                        "cost_centre",
                        "currency",
                        "debit_credit",
                        "amount",
                    ),
                ),
            ),
            destination=f"{DWH}.{gl}",
            lag=(1, 1),
            slot_ms_per_gib=72_000,
        ),
        script=True,
    )
    add(
        "fx_rates_load",
        a("fx_rates_load", "finance", "acme-etl-prod", sa="market-data"),
        _hourly(2),
        Shape(
            "fx_rates_load",
            None,
            None,
            destination=f"{DWH}.{fx}",
            job_type="LOAD",
            slot_ms_per_gib=0,
        ),
    )
    add(
        "fx_rates_daily_close",
        a("fx_rates_daily_close", "finance", "acme-etl-prod", sa="market-data"),
        _daily(22, 15),
        Shape(
            "fx_rates_daily_close",
            f"CREATE OR REPLACE TABLE `{DWH}.finance.fx_close` AS\n"
            "SELECT currency_pair,\n"
            "  ARRAY_AGG(mid ORDER BY rate_ts DESC LIMIT 1)[OFFSET(0)] AS close_mid\n"
            f"FROM {fq(fx)}\nWHERE _PARTITIONTIME = TIMESTAMP('{{d1}}')\n"
            "GROUP BY currency_pair",
            "CREATE_TABLE_AS_SELECT",
            (Read(fx, ("currency_pair", "mid", "rate_ts")),),
            destination=f"{DWH}.finance.fx_close",
        ),
    )
    add(
        "ledger_ingest",
        a("ledger_ingest", "finance", "acme-etl-prod", sa="ledger-ingest"),
        Schedule(30, 12, jitter_s=45),
        Shape(
            "ledger_ingest",
            None,
            None,
            destination=f"{DWH}.{led}",
            job_type="LOAD",
            slot_ms_per_gib=0,
        ),
    )
    add(
        "ledger_export_archive",
        a("ledger_export_archive", "finance", "acme-etl-prod", sa="ledger-ingest"),
        _daily(23, 30),
        Shape(
            "ledger_export_archive",
            None,
            None,
            (Read(led, None, "full"),),
            job_type="EXTRACT",
            slot_ms_per_gib=0,
        ),
    )
    add(
        "transactions_enrichment",
        a("transactions_enrichment", "finance", "acme-etl-prod", labels="pe"),
        _hourly(20),
        Shape(
            "transactions_enrichment",
            f"MERGE {fq(txn)} AS t\nUSING `{DWH}.finance_staging.merchant_enrichment` AS s\n"
            "ON t.booking_date = '{d1}'\n  AND t.txn_id = s.txn_id\n"
            "WHEN MATCHED THEN UPDATE SET category = s.category, mcc = s.mcc",
            "MERGE",
            (
                Read(txn, None, prune=0.02),
                Read(f"{DWH}.finance_staging.merchant_enrichment", fixed_bytes=300e6),
            ),
            destination=f"{DWH}.{txn}",
            slot_ms_per_gib=240_000,
        ),
        description="partition-scoped MERGE: the pattern the nightly positions MERGE should use",
    )
    add(
        "instruments_refresh",
        a("instruments_refresh", "finance", "acme-etl-prod", sa="market-data"),
        _daily(5, 30),
        Shape(
            "instruments_refresh",
            f"MERGE {fq('finance.instruments')} AS t\n"
            f"USING `{DWH}.finance_staging.instruments_feed` AS s\n"
            "ON t.instrument_id = s.instrument_id\n"
            "WHEN MATCHED THEN UPDATE SET rating = s.rating, is_active = s.is_active\n"
            "WHEN NOT MATCHED THEN INSERT ROW",
            "MERGE",
            (
                Read("finance.instruments", None, "full"),
                Read(f"{DWH}.finance_staging.instruments_feed", fixed_bytes=60e6),
            ),
            destination=f"{DWH}.finance.instruments",
        ),
    )
    # --- core banking ------------------------------------------------------------------------
    add(
        "accounts_snapshot",
        a("accounts_snapshot", "core-banking", "acme-etl-prod"),
        _daily(0, 15),
        Shape(
            "accounts_snapshot",
            None,
            None,
            (Read("core_banking.accounts", None, "full"),),
            destination=f"{DWH}.core_banking.accounts_snapshot",
            job_type="COPY",
            slot_ms_per_gib=0,
        ),
    )
    for table, minute in (("customers", 45), ("accounts", 50)):
        add(
            f"{table}_cdc_merge",
            a(f"{table}_cdc_merge", "core-banking", "acme-etl-prod", sa="cdc"),
            Schedule(240, minute),
            Shape(
                f"{table}_cdc_merge",
                f"MERGE {fq('core_banking.' + table)} AS t\n"
                f"USING `{DWH}.core_banking_staging.{table}_cdc` AS s\n"
                f"ON t.{table[:-1]}_id = s.{table[:-1]}_id\n"
                "WHEN MATCHED AND s.op = 'D' THEN DELETE\n"
                "WHEN MATCHED THEN UPDATE SET t.updated = s.updated\n"
                "WHEN NOT MATCHED THEN INSERT ROW",
                "MERGE",
                (
                    Read(f"core_banking.{table}", None, "full"),
                    Read(f"{DWH}.core_banking_staging.{table}_cdc", fixed_bytes=80e6),
                ),
                destination=f"{DWH}.core_banking.{table}",
            ),
        )
    add(
        "payments_screening",
        a(
            "payments_screening",
            "core-banking",
            "acme-etl-prod",
            labels="t",
            style=1,
            sa="payments-screening",
        ),
        _hourly(30),
        Shape(
            "payments_screening",
            "SELECT txn_id, account_id, customer_id, amount, country, merchant_id, payee_id\n"
            f"FROM {fq(txn)}\nWHERE booking_date = '{{d1}}'\n"
            "  AND txn_ts >= TIMESTAMP('{ts0}')\n  AND ABS(amount) > {amt}",
            "SELECT",
            (
                Read(
                    txn,
                    (
                        "txn_id",
                        "account_id",
                        "customer_id",
                        "amount",
                        "country",
                        "merchant_id",
                        "payee_id",
                        "txn_ts",
                    ),
                ),
            ),
            amounts=(500, 5_000),
        ),
    )
    add(
        "kyc_refresh",
        a("kyc_refresh", "core-banking", "acme-etl-prod"),
        _daily(6, 0),
        Shape(
            "kyc_refresh",
            f"CREATE OR REPLACE TABLE `{DWH}.core_banking.kyc_summary` AS\n"
            "SELECT c.tenant_id, c.kyc_status, a.account_type, COUNT(*) AS accounts,\n"
            "  SUM(a.balance) AS balance\n"
            f"FROM {fq('core_banking.customers')} AS c\n"
            f"JOIN {fq('core_banking.accounts')} AS a USING (customer_id)\n"
            "GROUP BY c.tenant_id, c.kyc_status, a.account_type",
            "CREATE_TABLE_AS_SELECT",
            (
                Read("core_banking.customers", ("customer_id", "tenant_id", "kyc_status"), "full"),
                Read("core_banking.accounts", ("customer_id", "account_type", "balance"), "full"),
            ),
            destination=f"{DWH}.core_banking.kyc_summary",
        ),
    )
    # --- regulatory --------------------------------------------------------------------------
    add(
        "regulatory_extract_daily",
        a("regulatory_extract_daily", "regulatory", "acme-regulatory", sa="reg-reporting"),
        Schedule(1440, 5 * 60, runs_per_slot=6, jitter_s=20 * 60),
        Shape(
            "regulatory_extract_daily",
            "-- regulatory_extract_daily: quarter-to-date lines for one report\n"
            "SELECT report_code, entity_id, report_line, counterparty_id, exposure_class,\n"
            "  country, currency, amount, amount_reporting_ccy, risk_weight, rwa, row_text\n"
            f"FROM {fq(reg)}\n"
            "WHERE report_date BETWEEN '{d0}' AND '{d1}'\n  AND report_code = '{s0}'\n"
            "ORDER BY entity_id, report_line, counterparty_id",
            "SELECT",
            (
                Read(
                    reg,
                    (
                        "report_code",
                        "entity_id",
                        "report_line",
                        "counterparty_id",
                        "exposure_class",
                        "country",
                        "currency",
                        "amount",
                        "amount_reporting_ccy",
                        "risk_weight",
                        "rwa",
                        "row_text",
                    ),
                    prune=0.6,
                ),
            ),
            span=(90, 90),
            lag=(1, 1),
            choices=_REPORT_CODES,
            slot_ms_per_gib=700_000,
            planted="order_by_without_limit",
        ),
        failure_rate=0.03,
    )
    add(
        "regulatory_reports_build",
        a("regulatory_reports_build", "regulatory", "acme-regulatory", sa="reg-reporting"),
        _daily(3, 30),
        Shape(
            "regulatory_reports_build.delete",
            f"DELETE FROM {fq(reg)}\nWHERE report_date = '{{d1}}'",
            "DELETE",
            (Read(reg, None),),
            destination=f"{DWH}.{reg}",
            lag=(1, 1),
        ),
        Shape(
            "regulatory_reports_build.insert",
            f"INSERT INTO {fq(reg)} (report_date, report_code, entity_id, report_line,"
            " counterparty_id, exposure_class, country, currency, amount, rwa)\n"
            "SELECT as_of_date, 'COREP_C07', legal_entity, product_type, counterparty_id,\n"
            "  sector, country, currency, ead_amount, rwa_amount\n"
            f"FROM {fq(exp)}\nWHERE as_of_date = '{{d1}}'",
            "INSERT",
            (
                Read(
                    exp,
                    (
                        "as_of_date",
                        "legal_entity",
                        "product_type",
                        "counterparty_id",
                        "sector",
                        "country",
                        "currency",
                        "ead_amount",
                        "rwa_amount",
                    ),
                ),
            ),
            destination=f"{DWH}.{reg}",
            lag=(1, 1),
            slot_ms_per_gib=96_000,
        ),
        script=True,
    )
    add(
        "lcr_daily",
        a("lcr_daily", "regulatory", "acme-regulatory", sa="reg-reporting"),
        _daily(7, 0),
        Shape(
            "lcr_daily",
            f"CREATE OR REPLACE TABLE `{DWH}.regulatory.lcr_daily` AS\n"
            "SELECT entity_id, currency, SUM(closing_balance) AS hqla\n"
            f"FROM {fq(gl)}\nWHERE balance_date = '{{d1}}'\n  AND gl_account LIKE '1%'\n"
            "GROUP BY entity_id, currency",
            "CREATE_TABLE_AS_SELECT",
            (Read(gl, ("entity_id", "currency", "closing_balance", "gl_account")),),
            destination=f"{DWH}.regulatory.lcr_daily",
            lag=(1, 1),
        ),
    )
    add(
        "large_exposures_weekly",
        a("large_exposures_weekly", "regulatory", "acme-regulatory", sa="reg-reporting"),
        _weekly(0, 8),
        Shape(
            "large_exposures_weekly",
            "SELECT counterparty_id, SUM(ead_amount) AS ead\n"
            f"FROM {fq(exp)}\nWHERE as_of_date = '{{d1}}'\nGROUP BY counterparty_id\n"
            "HAVING SUM(ead_amount) > {amt}\nORDER BY ead DESC\nLIMIT 500",
            "SELECT",
            (Read(exp, ("counterparty_id", "ead_amount")),),
            lag=(3, 3),
            amounts=(10_000_000, 100_000_000),
        ),
    )
    add(
        "regulatory_archive_export",
        a("regulatory_archive_export", "regulatory", "acme-regulatory", sa="reg-reporting"),
        _weekly(6, 2),
        Shape(
            "regulatory_archive_export",
            None,
            None,
            (Read(reg, None, "full"),),
            job_type="EXTRACT",
            slot_ms_per_gib=0,
        ),
    )
    # --- dashboards --------------------------------------------------------------------------
    add(
        "exposure_dashboard",
        a("exposure_dashboard", "risk", "acme-bi-prod", style=1, sa="looker"),
        Schedule(30, 0, hours=(7, 19), weekdays_only=True, jitter_s=20),
        Shape(
            "exposure_dashboard",
            f"SELECT *\nFROM {fq(exp)}\nWHERE as_of_date >= '{{d0}}'",
            "SELECT",
            (Read(exp, None),),
            span=(30, 30),
            lag=(1, 1),
            planted="select_star_wide",
            cacheable=True,
        ),
        cache_rate=0.15,
    )
    add(
        "txn_volume_dashboard",
        a("txn_volume_dashboard", "finance", "acme-bi-prod", style=1, sa="looker"),
        Schedule(60, 0, hours=(7, 20), weekdays_only=True, jitter_s=20),
        Shape(
            "txn_volume_dashboard",
            "SELECT channel, category, COUNT(*) AS txns, SUM(amount) AS amount\n"
            f"FROM {fq(txn)}\n"
            "WHERE CAST(booking_date AS STRING) = '{d1}'\n"
            "GROUP BY channel, category",
            "SELECT",
            (Read(txn, ("booking_date", "channel", "category", "amount"), "full"),),
            planted="non_sargable_partition_filter",
            cacheable=True,
        ),
        cache_rate=0.12,
    )
    add(
        "liquidity_dashboard",
        a("liquidity_dashboard", "treasury", "acme-treasury", style=1, sa="looker"),
        Schedule(30, 10, hours=(7, 19), weekdays_only=True, jitter_s=20),
        Shape(
            "liquidity_dashboard",
            "SELECT entity_id, currency, SUM(closing_balance) AS balance\n"
            f"FROM {fq(gl)}\nWHERE balance_date = '{{d1}}'\n  AND entity_id IN ({{in}})\n"
            "GROUP BY entity_id, currency",
            "SELECT",
            (Read(gl, ("entity_id", "currency", "closing_balance"), prune=0.4),),
            lag=(1, 1),
            in_list=InList((3, 3), choices=_ENTITIES),
            cacheable=True,
        ),
        cache_rate=0.3,
    )
    add(
        "customer_360_dashboard",
        a(
            "customer_360_dashboard",
            "core-banking",
            "acme-bi-prod",
            labels="tp",
            style=1,
            sa="looker",
        ),
        Schedule(60, 25, hours=(8, 18), weekdays_only=True, jitter_s=20),
        Shape(
            "customer_360_dashboard",
            "SELECT c.customer_id, c.risk_profile, a.account_type, a.balance\n"
            f"FROM {fq('core_banking.customers')} AS c\n"
            f"JOIN {fq('core_banking.accounts')} AS a ON a.customer_id = c.customer_id\n"
            "WHERE c.customer_id = {id0}",
            "SELECT",
            (
                Read("core_banking.customers", ("customer_id", "risk_profile"), "full"),
                Read("core_banking.accounts", ("customer_id", "account_type", "balance"), "full"),
            ),
            ids=28_000_000,
            cacheable=True,
        ),
        cache_rate=0.1,
    )
    # --- data science ------------------------------------------------------------------------
    add(
        "fraud_features_daily",
        a("fraud_features_daily", "data-science", "acme-ds-sandbox", sa="ml-pipelines"),
        _daily(3, 30),
        Shape(
            "fraud_features_daily",
            f"CREATE OR REPLACE TABLE `acme-ds-sandbox.fraud.features` AS\n"
            "SELECT customer_id, account_id,\n  COUNT(*) AS txns_30d,\n"
            "  AVG(ABS(amount)) AS avg_amount_30d,\n  MAX(ABS(amount)) AS max_amount_30d,\n"
            "  COUNTIF(is_new_payee) AS new_payees_30d,\n"
            "  COUNT(DISTINCT country) AS countries_30d\n"
            f"FROM {fq(txn)}\nWHERE booking_date BETWEEN '{{d0}}' AND '{{d1}}'\n"
            "GROUP BY customer_id, account_id",
            "CREATE_TABLE_AS_SELECT",
            (Read(txn, ("customer_id", "account_id", "amount", "is_new_payee", "country")),),
            destination="acme-ds-sandbox.fraud.features",
            span=(30, 30),
            lag=(1, 1),
            slot_ms_per_gib=112_000,
        ),
    )
    add(
        "fraud_scoring_hourly",
        a("fraud_scoring_hourly", "data-science", "acme-ds-sandbox", sa="ml-pipelines"),
        _hourly(45),
        Shape(
            "fraud_scoring_hourly",
            "SELECT t.txn_id, t.amount, t.country, t.channel, t.is_new_payee,\n"
            "  f.avg_amount_30d, f.max_amount_30d\n"
            f"FROM {fq(txn)} AS t\n"
            "JOIN `acme-ds-sandbox.fraud.features` AS f USING (customer_id, account_id)\n"
            "WHERE t.booking_date = '{d1}'\n  AND t.txn_ts >= TIMESTAMP('{ts0}')",
            "SELECT",
            (
                Read(
                    txn,
                    (
                        "txn_id",
                        "customer_id",
                        "account_id",
                        "amount",
                        "country",
                        "channel",
                        "is_new_payee",
                        "txn_ts",
                    ),
                ),
                Read("acme-ds-sandbox.fraud.features", fixed_bytes=2e9),
            ),
            slot_ms_per_gib=96_000,
        ),
    )
    add(
        "churn_model_weekly",
        a("churn_model_weekly", "data-science", "acme-ds-sandbox", sa="ml-pipelines"),
        _weekly(5, 4),
        Shape(
            "churn_model_weekly",
            "CREATE OR REPLACE TABLE `acme-ds-sandbox.churn.training` AS\n"
            "SELECT c.customer_id, c.segment, c.risk_profile, COUNT(t.txn_id) AS txns,\n"
            "  SUM(t.amount) AS net_flow\n"
            f"FROM {fq('core_banking.customers')} AS c\n"
            f"LEFT JOIN {fq(txn)} AS t\n"
            "  ON t.customer_id = c.customer_id\n"
            "  AND t.booking_date BETWEEN '{d0}' AND '{d1}'\n"
            "GROUP BY c.customer_id, c.segment, c.risk_profile",
            "CREATE_TABLE_AS_SELECT",
            (
                Read("core_banking.customers", ("customer_id", "segment", "risk_profile"), "full"),
                Read(txn, ("customer_id", "txn_id", "amount")),
            ),
            destination="acme-ds-sandbox.churn.training",
            span=(90, 90),
            lag=(1, 1),
            slot_ms_per_gib=128_000,
        ),
    )
    # --- unlabelled legacy jobs --------------------------------------------------------------
    add(
        "legacy_negative_balances",
        a("legacy_negative_balances", None, "acme-analytics", labels="", style=1, sa="ops-batch"),
        _daily(7, 0),
        Shape(
            "legacy_negative_balances",
            "select account_id, customer_id, balance, overdraft_limit\n"
            f"from {fq('core_banking.accounts')}\n"
            "where balance < -overdraft_limit - {amt}",
            "SELECT",
            (
                Read(
                    "core_banking.accounts",
                    ("account_id", "customer_id", "balance", "overdraft_limit"),
                    "full",
                ),
            ),
            amounts=(0, 500),
        ),
    )
    add(
        "storage_audit_daily",
        a("storage_audit_daily", None, "acme-analytics", labels="", style=1, sa="platform-ops"),
        _daily(6, 30),
        Shape(
            "storage_audit_daily",
            "SELECT table_schema, table_name, total_logical_bytes, active_logical_bytes,\n"
            "  long_term_logical_bytes\n"
            "FROM `region-us`.INFORMATION_SCHEMA.TABLE_STORAGE\n"
            "WHERE total_logical_bytes > {amt}\nORDER BY total_logical_bytes DESC",
            "SELECT",
            (),
            amounts=(1_000_000_000, 10_000_000_000),
        ),
    )
    return tuple(out)


# -- analysts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """A kind of question analysts ask of one table (optionally joined to a second)."""

    key: str
    table: str
    dims: tuple[str, ...]
    measures: tuple[tuple[str, str], ...]  # (SQL expression, column it reads)
    where: str
    where_columns: tuple[str, ...]
    extras: tuple[tuple[str, tuple[str, ...], float], ...] = ()  # predicate, columns, prune
    scope: str = "range"
    span: tuple[int, int] = (1, 1)
    lag: tuple[int, int] = (0, 3)
    teams: tuple[str, ...] = ()
    weight: float = 1.0
    variants: int = 200
    join: tuple[str, str, tuple[str, ...]] | None = None  # table, ON clause, columns it reads
    choices: tuple[str, ...] = ()
    in_list: InList | None = None
    ids: int = 1_000_000
    amounts: tuple[int, int] = (100, 100_000)
    slot_ms_per_gib: float = 80_000.0


def families() -> tuple[Family, ...]:
    """The analyst question families; each yields ``variants`` shapes."""
    txn_dims = (
        "category",
        "channel",
        "country",
        "currency",
        "mcc",
        "merchant",
        "tenant_id",
        "booking_date",
    )
    pos_dims = (
        "desk",
        "legal_entity",
        "strategy",
        "currency",
        "position_type",
        "book_id",
        "portfolio_id",
        "custodian",
    )
    exp_dims = ("country", "sector", "rating", "product_type", "legal_entity", "currency")
    led_dims = (
        "legal_entity",
        "gl_account",
        "cost_centre",
        "currency",
        "source_system",
        "debit_credit",
    )
    reg_dims = ("report_code", "entity_id", "exposure_class", "country", "currency")
    return (
        Family(
            "txn_summary",
            "finance.transactions",
            txn_dims,
            (
                ("SUM(amount)", "amount"),
                ("COUNT(*)", ""),
                ("AVG(amount)", "amount"),
                ("MAX(ABS(amount))", "amount"),
                ("COUNT(DISTINCT customer_id)", "customer_id"),
                ("COUNTIF(is_fraud)", "is_fraud"),
            ),
            "booking_date BETWEEN '{d0}' AND '{d1}'",
            ("booking_date",),
            (
                ("country IN ({in})", ("country",), 1.0),
                ("channel = '{s0}'", ("channel",), 1.0),
                ("ABS(amount) > {amt}", ("amount",), 1.0),
            ),
            span=(1, 62),
            teams=("finance", "data-science", "payments", "bi"),
            weight=3.0,
            variants=450,
            choices=_CHANNELS,
            in_list=InList((2, 6), choices=_COUNTRIES),
        ),
        Family(
            "txn_customer",
            "finance.transactions",
            (
                "txn_id",
                "txn_ts",
                "amount",
                "merchant",
                "category",
                "country",
                "channel",
                "payee_id",
            ),
            (),
            "booking_date >= '{d0}' AND customer_id = {id0}",
            ("booking_date", "customer_id"),
            (
                ("account_id = {id1}", ("account_id",), 0.5),
                ("ABS(amount) > {amt}", ("amount",), 1.0),
            ),
            span=(7, 90),
            teams=("finance", "core-banking", "payments"),
            weight=2.5,
            variants=220,
            ids=28_000_000,
            slot_ms_per_gib=48_000,
        ),
        Family(
            "positions_portfolio",
            "risk.positions",
            pos_dims,
            (
                ("SUM(market_value_base)", "market_value_base"),
                ("SUM(notional)", "notional"),
                ("SUM(pnl_daily)", "pnl_daily"),
                ("SUM(delta)", "delta"),
                ("SUM(var_contribution)", "var_contribution"),
                ("COUNT(*)", ""),
            ),
            "as_of_date = '{d1}' AND portfolio_id IN ({in})",
            ("as_of_date", "portfolio_id"),
            (("desk = '{s0}'", ("desk",), 1.0), ("currency IN ({in})", ("currency",), 1.0)),
            teams=("risk", "treasury"),
            weight=2.5,
            variants=350,
            lag=(1, 5),
            choices=("RATES", "FX", "CREDIT", "EQUITY", "COMMOD", "TREASURY"),
            in_list=InList((1, 12), prefix="PF", width=5, size=48_000),
        ),
        Family(
            "positions_trend",
            "risk.positions",
            ("as_of_date", "desk", "legal_entity", "currency"),
            (
                ("SUM(market_value_base)", "market_value_base"),
                ("SUM(unrealised_pnl)", "unrealised_pnl"),
            ),
            "as_of_date BETWEEN '{d0}' AND '{d1}' AND book_id = '{s0}'",
            ("as_of_date", "book_id"),
            span=(5, 30),
            teams=("risk",),
            weight=1.6,
            variants=80,
            lag=(1, 3),
            choices=tuple(f"BK{n:04d}" for n in range(1, 40)),
        ),
        Family(
            "exposures_summary",
            "risk.exposures",
            exp_dims,
            (
                ("SUM(ead_amount)", "ead_amount"),
                ("SUM(rwa_amount)", "rwa_amount"),
                ("AVG(pd_1y)", "pd_1y"),
                ("SUM(expected_loss)", "expected_loss"),
                ("MAX(limit_utilisation)", "limit_utilisation"),
                ("SUM(ead_5y)", "ead_5y"),
                ("SUM(pfe_1y)", "pfe_1y"),
                ("SUM(cva_10y)", "cva_10y"),
            ),
            "as_of_date = '{d1}'",
            ("as_of_date",),
            (
                ("counterparty_id IN ({in})", ("counterparty_id",), 0.05),
                ("rating = '{s0}'", ("rating",), 1.0),
            ),
            teams=("risk", "regulatory"),
            weight=2.0,
            variants=350,
            lag=(1, 5),
            choices=("AAA", "AA", "A", "BBB", "BB", "B", "CCC"),
            in_list=InList((1, 15), size=1_200_000),
        ),
        Family(
            "ledger_analysis",
            "finance.ledger_entries",
            led_dims,
            (("SUM(amount)", "amount"), ("SUM(amount_base)", "amount_base"), ("COUNT(*)", "")),
            "entry_date BETWEEN '{d0}' AND '{d1}'",
            ("entry_date",),
            (
                ("gl_account IN ({in})", ("gl_account",), 1.0),
                ("legal_entity = '{s0}'", ("legal_entity",), 1.0),
            ),
            span=(1, 31),
            teams=("finance", "treasury"),
            weight=0.7,
            variants=260,
            choices=_ENTITIES,
            in_list=InList((1, 8), prefix="GL", width=6, size=14_000),
        ),
        Family(
            "regulatory_lines",
            "regulatory.regulatory_reports",
            reg_dims,
            (("SUM(amount)", "amount"), ("SUM(rwa)", "rwa"), ("COUNT(*)", "")),
            "report_date = '{d1}' AND report_code = '{s0}'",
            ("report_date", "report_code"),
            (("entity_id IN ({in})", ("entity_id",), 0.4),),
            teams=("regulatory",),
            weight=1.2,
            variants=180,
            lag=(1, 10),
            choices=_REPORT_CODES,
            in_list=InList((1, 4), choices=_ENTITIES),
        ),
        Family(
            "customer_accounts",
            "core_banking.accounts",
            ("account_type", "currency", "status", "tenant_id"),
            (
                ("SUM(balance)", "balance"),
                ("COUNT(*)", ""),
                ("AVG(balance)", "balance"),
                ("COUNTIF(balance < 0)", "balance"),
            ),
            "opened_date <= '{d1}'",
            ("opened_date",),
            (("tenant_id = '{s0}'", ("tenant_id",), 1.0),),
            scope="full",
            teams=("core-banking", "finance", "bi"),
            weight=1.5,
            variants=150,
            choices=("acme-retail-uk", "acme-direct-de", "acme-private-ch", "acme-wealth-fr"),
        ),
        Family(
            "txn_accounts_join",
            "finance.transactions",
            ("t.category", "t.channel", "a.account_type", "a.currency", "t.country"),
            (
                ("SUM(t.amount)", "amount"),
                ("COUNT(*)", ""),
                ("COUNT(DISTINCT t.account_id)", "account_id"),
            ),
            "t.booking_date BETWEEN '{d0}' AND '{d1}'",
            ("booking_date", "account_id"),
            (("a.account_type = '{s0}'", (), 1.0),),
            span=(1, 14),
            teams=("finance", "data-science", "bi"),
            weight=1.0,
            variants=160,
            join=(
                "core_banking.accounts",
                "a.account_id = t.account_id",
                ("account_id", "account_type", "currency"),
            ),
            choices=("current", "savings", "credit_card"),
        ),
        Family(
            "positions_instruments",
            "risk.positions",
            ("i.asset_class", "i.instrument_type", "p.desk", "p.currency", "i.rating"),
            (
                ("SUM(p.market_value_base)", "market_value_base"),
                ("SUM(p.notional)", "notional"),
                ("COUNT(DISTINCT p.instrument_id)", "instrument_id"),
            ),
            "p.as_of_date BETWEEN '{d0}' AND '{d1}'",
            ("as_of_date", "instrument_id"),
            (
                ("i.asset_class = '{s0}'", (), 1.0),
                ("p.portfolio_id IN ({in})", ("portfolio_id",), 0.05),
            ),
            span=(1, 5),
            teams=("risk",),
            weight=0.6,
            variants=150,
            lag=(1, 3),
            join=(
                "finance.instruments",
                "i.instrument_id = p.instrument_id",
                ("instrument_id", "asset_class", "instrument_type", "rating"),
            ),
            choices=("EQUITY", "BOND", "FX", "RATES", "CREDIT"),
            in_list=InList((1, 8), prefix="PF", width=5, size=48_000),
        ),
        Family(
            "fx_history",
            "finance.fx_rates",
            ("currency_pair", "source"),
            (("AVG(mid)", "mid"), ("MIN(bid)", "bid"), ("MAX(ask)", "ask"), ("COUNT(*)", "")),
            "_PARTITIONTIME BETWEEN TIMESTAMP('{d0}') AND TIMESTAMP('{d1}')",
            (),
            (("currency_pair IN ({in})", ("currency_pair",), 1.0),),
            span=(1, 60),
            teams=("treasury", "finance"),
            weight=0.8,
            variants=60,
            in_list=InList(
                (1, 5),
                choices=(
                    "EURUSD",
                    "GBPUSD",
                    "USDJPY",
                    "USDCHF",
                    "EURGBP",
                    "AUDUSD",
                    "USDCAD",
                    "EURCHF",
                ),
            ),
        ),
        Family(
            "gl_balances",
            "finance.gl_balances",
            ("entity_id", "gl_account", "cost_centre", "currency"),
            (
                ("SUM(closing_balance)", "closing_balance"),
                ("SUM(debits)", "debits"),
                ("SUM(credits)", "credits"),
            ),
            "balance_date BETWEEN '{d0}' AND '{d1}'",
            ("balance_date",),
            (("entity_id IN ({in})", ("entity_id",), 0.3),),
            span=(1, 31),
            teams=("finance", "treasury"),
            weight=1.0,
            variants=120,
            in_list=InList((1, 4), choices=_ENTITIES),
        ),
        Family(
            "counterparty_exposure",
            "risk.exposures",
            ("c.country", "c.sector", "c.rating", "e.product_type"),
            (
                ("SUM(e.ead_amount)", "ead_amount"),
                ("SUM(e.collateral_value)", "collateral_value"),
                ("COUNT(DISTINCT e.counterparty_id)", "counterparty_id"),
            ),
            "e.as_of_date = '{d1}'",
            ("as_of_date", "counterparty_id"),
            (("c.is_financial = TRUE", (), 1.0),),
            teams=("risk", "regulatory"),
            weight=0.8,
            variants=100,
            lag=(1, 5),
            join=(
                "risk.counterparties",
                "c.counterparty_id = e.counterparty_id",
                ("counterparty_id", "country", "sector", "rating", "is_financial"),
            ),
        ),
        Family(
            "instrument_lookup",
            "finance.instruments",
            (
                "instrument_id",
                "isin",
                "name",
                "asset_class",
                "currency",
                "maturity_date",
                "coupon_rate",
                "rating",
            ),
            (),
            "asset_class = '{s0}' AND maturity_date > '{d1}'",
            ("asset_class", "maturity_date"),
            (("country IN ({in})", ("country",), 1.0),),
            scope="full",
            teams=("risk", "treasury"),
            weight=0.6,
            variants=80,
            choices=("EQUITY", "BOND", "FX", "RATES", "CREDIT", "FUND"),
            in_list=InList((1, 5), choices=_COUNTRIES),
        ),
    )


TEAMS = (
    "risk",
    "finance",
    "regulatory",
    "treasury",
    "data-science",
    "core-banking",
    "payments",
    "bi",
)
_ANALYST_PROJECT = {
    "data-science": "acme-ds-sandbox",
    "treasury": "acme-treasury",
}
_FIRST = (
    "anna",
    "ben",
    "carla",
    "david",
    "elena",
    "felix",
    "grace",
    "hamid",
    "irene",
    "jonas",
    "kate",
    "liam",
    "mei",
    "nora",
    "oscar",
    "priya",
    "quentin",
    "rosa",
    "sven",
    "tara",
    "umar",
    "vera",
    "will",
    "xenia",
    "yara",
    "zoe",
    "marco",
    "lena",
    "tobias",
    "sara",
    "omar",
    "julia",
)
_LAST = (
    "meyer",
    "okafor",
    "rossi",
    "chen",
    "dubois",
    "novak",
    "smith",
    "garcia",
    "kowalski",
    "brennan",
    "haddad",
    "schmidt",
    "tanaka",
    "larsen",
    "moreau",
    "patel",
)


@dataclass(frozen=True)
class Analyst:
    """A person running ad-hoc queries, with their habits."""

    actor: Actor
    team: str
    families: tuple[int, ...]
    activity: float
    lowercase: float  # share of their queries written in lower-case keywords
    comments: float
    one_line: float


def analysts(rng: np.random.Generator, count: int = 64) -> tuple[Analyst, ...]:
    """``count`` analysts across the teams, with label, case, comment and layout habits."""
    fams = families()
    out: list[Analyst] = []
    used: set[str] = set()
    for n in range(count):
        team = TEAMS[n % len(TEAMS)]
        while True:
            name = f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}"
            if name not in used:
                used.add(name)
                break
        project = _ANALYST_PROJECT.get(team, "acme-analytics")
        reservation, edition = _PROJECT_BILLING[project]
        habit = rng.random()
        labels: tuple[tuple[str, str], ...] = ()
        if habit < 0.3:
            labels = (("team", team),)
        elif habit < 0.4:
            labels = (("team", team), ("env", "adhoc"))
        own = [i for i, f in enumerate(fams) if team in f.teams]
        others = [i for i in range(len(fams)) if i not in own]
        extra = rng.choice(others, size=min(2, len(others)), replace=False).tolist()
        out.append(
            Analyst(
                Actor(
                    f"analyst:{name}",
                    f"{name}@acme-bank.com",
                    project,
                    reservation,
                    edition,
                    labels,
                    "INTERACTIVE",
                    0 if rng.random() < 0.7 else 1,
                ),
                team,
                tuple(own + [int(e) for e in extra]),
                float(rng.lognormal(0.0, 0.7)),
                float(rng.choice([0.0, 0.05, 0.9])),
                float(rng.choice([0.0, 0.1, 0.4])),
                float(rng.choice([0.05, 0.3, 0.7])),
            )
        )
    return tuple(out)


@dataclass
class ShapePool:
    """Analyst shapes, grouped by family, with a popularity weight each."""

    shapes: list[Shape] = field(default_factory=list)
    family: list[int] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)


def _analyst_shape(fam: Family, index: int, rng: np.random.Generator) -> Shape:
    alias = {"risk.positions": "p", "finance.transactions": "t", "risk.exposures": "e"}
    a = alias.get(fam.table, "x") if fam.join else ""
    is_lookup = not fam.measures
    k = (
        int(rng.integers(1, min(4, len(fam.dims)) + 1))
        if not is_lookup
        else int(rng.integers(3, len(fam.dims) + 1))
    )
    dims = [fam.dims[i] for i in rng.permutation(len(fam.dims))[:k]]
    measures: list[tuple[str, str]] = []
    if not is_lookup:
        m = int(rng.integers(1, min(3, len(fam.measures)) + 1))
        measures = [fam.measures[i] for i in rng.permutation(len(fam.measures))[:m]]
    extra = None
    if fam.extras and rng.random() < 0.6:
        extra = fam.extras[int(rng.integers(len(fam.extras)))]
    style = int(rng.integers(0, 2))
    table_ref = fq(fam.table) if style == 0 else f"`{DWH}`.{fam.table}"
    select_items = list(dims)
    for n, (expr, _col) in enumerate(measures):
        name = expr.split("(")[0].lower()
        select_items.append(f"{expr} AS {name}_{n + 1}")
    lines = ["SELECT " + ",\n  ".join(select_items)]
    lines.append(f"FROM {table_ref}" + (f" AS {a}" if a else ""))
    reads_cols = {d.split(".")[-1] for d in dims if not d.startswith(("a.", "i.", "c."))}
    reads_cols |= {c for _e, c in measures if c}
    reads_cols |= set(fam.where_columns)
    join_read: Read | None = None
    if fam.join is not None:
        jt, on, jcols = fam.join
        ja = {"core_banking.accounts": "a", "finance.instruments": "i", "risk.counterparties": "c"}[
            jt
        ]
        lines.append(f"JOIN {fq(jt)} AS {ja} ON {on}")
        join_read = Read(jt, jcols, "full")
    where = fam.where
    prune = 1.0
    if extra is not None:
        where += f"\n  AND {extra[0]}"
        reads_cols |= set(extra[1])
        prune = extra[2]
    lines.append(f"WHERE {where}")
    if not is_lookup:
        lines.append("GROUP BY " + ", ".join(dims))
        if rng.random() < 0.5:
            lines.append(f"ORDER BY {select_items[len(dims)].split(' AS ')[-1]} DESC")
            lines.append(f"LIMIT {int(rng.choice([10, 20, 50, 100, 1000]))}")
    else:
        lines.append(f"ORDER BY {dims[0]} DESC")
        lines.append("LIMIT 200")
    text = "\n".join(lines)
    statement = "SELECT"
    destination = None
    if rng.random() < 0.05:
        dest = f"acme-analytics.scratch.{fam.key}_{index}"
        text = f"CREATE OR REPLACE TABLE `{dest}` AS\n{text}"
        statement = "CREATE_TABLE_AS_SELECT"
        destination = dest
    base_prune = 0.02 if fam.key == "txn_customer" else 1.0
    if fam.key == "positions_portfolio":
        base_prune = 0.05
    scope = fam.scope
    in_list = fam.in_list if "{in}" in text else None
    reads = [Read(fam.table, tuple(sorted(reads_cols)), scope, base_prune * prune)]
    if join_read is not None:
        reads.append(join_read)
    return Shape(
        f"{fam.key}.{index}",
        text,
        statement,
        tuple(reads),
        destination=destination,
        slot_ms_per_gib=fam.slot_ms_per_gib,
        span=fam.span,
        lag=fam.lag,
        ids=fam.ids,
        amounts=fam.amounts,
        choices=fam.choices,
        in_list=in_list,
        cacheable=statement == "SELECT",
    )


def analyst_shapes(rng: np.random.Generator) -> ShapePool:
    """A few thousand distinct analyst shapes, with Zipf-like popularity within each family."""
    pool = ShapePool()
    seen: set[str] = set()
    for f_index, fam in enumerate(families()):
        made = 0
        for n in range(fam.variants * 3):
            if made >= fam.variants:
                break
            shape = _analyst_shape(fam, n, rng)
            if shape.template in seen or shape.template is None:
                continue
            seen.add(shape.template)
            made += 1
            pool.shapes.append(shape)
            pool.family.append(f_index)
            pool.weight.append(1.0 / (made**0.9))
    return pool
