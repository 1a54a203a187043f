"""A small demo bank (250 customers, ~34k transactions) built once per session, the assistant's
view of it, and an independent DuckDB connection to compute expected values."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from costline.agents.guardian import CostGuardian, GuardianConfig, TierPolicy
from costline.agents.llm.base import LLMProvider
from costline.assistant import AssistSettings, FinancialAssistant, offline_provider
from costline.assistant.bank import Bank, load_bank
from costline.core.budgets import BudgetPolicy, BudgetStore
from costline.demo.bank import generate_bank, write_bank
from tests.core.conftest import redis_url

__all__ = ["redis_url"]

END = dt.date(2026, 10, 31)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the runtime's loop)."""
    return "asyncio"


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """pytest-httpserver listens on 127.0.0.1 (a free port)."""
    return ("127.0.0.1", 0)


@pytest.fixture(scope="session")
def bank_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace holding only the bank tables (seed 7, scale 0.05)."""
    root = tmp_path_factory.mktemp("bank")
    write_bank(root / "tables", generate_bank(seed=7, scale=0.05, end=END))
    return root


@pytest.fixture(scope="session")
def bank(bank_dir: Path) -> Bank:
    """The bank as the assistant loads it (model trained once, cached in the workspace)."""
    return load_bank(bank_dir)


@pytest.fixture(scope="session")
def sql(bank_dir: Path) -> Iterator[Callable[..., list[tuple[Any, ...]]]]:
    """Run SQL over the raw bank tables (``customers``, ``accounts``, ``transactions``)."""
    con = duckdb.connect()
    tables = bank_dir / "tables"
    for name, rel in (
        ("customers", "core_banking/customers"),
        ("accounts", "core_banking/accounts"),
        ("transactions", "finance/transactions"),
    ):
        con.execute(
            f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{tables / rel}/**/*.parquet', "
            "hive_partitioning = true)"
        )

    def run(query: str, *params: Any) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = con.execute(query, list(params)).fetchall()
        return rows

    yield run
    con.close()


MakeAssistant = Callable[..., FinancialAssistant]


@pytest.fixture
def make_assistant(bank: Bank) -> MakeAssistant:
    """A fresh assistant (own guardian, breakers and caches) over the session's bank."""

    def make(
        *,
        provider: LLMProvider | None = None,
        store: BudgetStore | None = None,
        budgets: BudgetPolicy | None = None,
        tiers: TierPolicy | None = None,
        **settings: Any,
    ) -> FinancialAssistant:
        config = AssistSettings(budgets=budgets, tiers=tiers, **settings)
        guardian = CostGuardian(
            GuardianConfig(budgets=budgets or BudgetPolicy(), tiers=tiers or TierPolicy()),
            providers=provider if provider is not None else offline_provider(),
            store=store,
            sink=config.sink,
        )
        return FinancialAssistant(bank, guardian, config)

    return make


def one(rows: list[tuple[Any, ...]], what: str) -> Any:
    """The first column of the first row; fails the test naming ``what`` if there is none."""
    if not rows:
        pytest.fail(f"the test bank has no {what}")
    return rows[0][0]
