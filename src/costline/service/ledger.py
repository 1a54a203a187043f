"""The service's cost ledger on disk, and the budget check a load test runs against it.

Each worker process appends every cost event it emits to its own JSON-lines file
(``ledger-<pid>.jsonl`` in the ledger directory), so workers never contend for one file and
nothing is lost when one of them stops. :func:`read_ledger` reads them all back;
:func:`budget_overspend` sums the spend of every tenant (and of everyone) per budget period and
reports by how much any budget was exceeded.

The ledger is also the durable record a shared budget store is rebuilt from when it loses its
data (:func:`ledger_recovery`): every cost is written here before it is settled in the store.
A line is handed to the operating system as it is written, so it survives the worker's death
(``kill -9``); surviving the machine's takes a disk that syncs, which is not asked for here.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from costline.core.budgets import BudgetLimit, BudgetLine, BudgetPolicy, Recovery
from costline.core.errors import CostlineError
from costline.core.events import CostEvent


class JsonlLedger:
    """A cost-event sink appending one JSON line per event to ``directory/ledger-<pid>.jsonl``."""

    def __init__(self, directory: Path) -> None:
        """Open (create) this process's ledger file in ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"ledger-{os.getpid()}.jsonl"
        # Line-buffered: each event is on disk when emit returns, for a reader of a live run.
        self._file = self.path.open("a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()

    def emit(self, event: CostEvent) -> None:
        """Append ``event``."""
        line = event.model_dump_json() + "\n"
        with self._lock:
            self._file.write(line)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._file.close()


def read_ledger(directory: Path) -> list[CostEvent]:
    """Every event of every worker's file in ``directory``; a bad line names its file and
    line."""
    events: list[CostEvent] = []
    for path in sorted(directory.glob("ledger-*.jsonl")):
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    events.append(CostEvent.model_validate_json(line))
                except ValidationError as exc:
                    raise CostlineError(f"{path}:{number}: not a cost event: {exc}") from None
    return events


def _live_events(directory: Path) -> Iterable[CostEvent]:
    """The events of a ledger other processes are still writing: a last line without its
    newline is being written and is left for the next read."""
    for path in sorted(directory.glob("ledger-*.jsonl")):
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.endswith("\n") or not line.strip():
                    continue
                try:
                    yield CostEvent.model_validate_json(line)
                except ValidationError as exc:
                    raise CostlineError(f"{path}:{number}: not a cost event: {exc}") from None


def settled_spend(
    directory: Path, policy: BudgetPolicy, *, since: dt.datetime | None = None
) -> list[tuple[BudgetLine, float]]:
    """What the ledger in ``directory`` shows spent on every budget account of ``policy`` (the
    accounts the guardian reserved on for each event: the tenant's, tracked even without a
    limit, and the global one), from ``since`` on when given."""
    totals: dict[str, tuple[BudgetLine, float]] = {}
    for event in _live_events(directory) if directory.is_dir() else ():
        if since is not None and event.time < since:
            continue
        for line in policy.lines(event.tenant, event.time):
            _, spent = totals.get(line.account, (line, 0.0))
            totals[line.account] = (line, spent + event.cost_usd)
    return list(totals.values())


def ledger_recovery(directory: Path, policy: BudgetPolicy) -> Recovery:
    """The record a budget store rebuilds itself from: the spend per account of the ledger
    in ``directory`` (written by every worker of the service)."""
    return lambda: settled_spend(directory, policy)


# The stores keep integer nano-dollars, the ledger floats: sums may differ by rounding.
OVERSPEND_TOLERANCE_USD = 1e-9


class BudgetSpend(BaseModel):
    """What the ledger shows spent on one budget in one period."""

    model_config = ConfigDict(frozen=True)

    budget: str
    limit_usd: float
    spent_usd: float

    @property
    def over_usd(self) -> float:
        """By how much the limit was exceeded (negative: what is left)."""
        return self.spent_usd - self.limit_usd


def budget_spend(events: Iterable[CostEvent], policy: BudgetPolicy) -> list[BudgetSpend]:
    """The spend on every tenant and global budget of ``policy``, per period, re-added from
    the ``events``.

    The check is independent of the budget store: it catches a store that lost its state (a
    Redis restart without persistence) or granted too much.
    """
    spent: defaultdict[tuple[str, str, str], float] = defaultdict(float)
    limits: dict[tuple[str, str, str], BudgetLimit] = {}
    for e in events:
        limit = policy.tenants.get(e.tenant, policy.per_tenant)
        if limit is not None:
            key = ("tenant", e.tenant, limit.period.label(e.time))
            spent[key] += e.cost_usd
            limits[key] = limit
        if policy.global_ is not None:
            key = ("global", "*", policy.global_.period.label(e.time))
            spent[key] += e.cost_usd
            limits[key] = policy.global_
    return [
        BudgetSpend(budget=":".join(key), limit_usd=limits[key].limit_usd, spent_usd=total)
        for key, total in sorted(spent.items())
    ]


def budget_overspend(events: Iterable[CostEvent], policy: BudgetPolicy) -> list[BudgetSpend]:
    """The budgets of ``policy`` the ``events`` exceed (see :func:`budget_spend`)."""
    return [b for b in budget_spend(events, policy) if b.over_usd > OVERSPEND_TOLERANCE_USD]
