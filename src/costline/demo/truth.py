"""Ground truth of a generated history: what was planted and what everything cost.

The numbers come from the generator's own arrays, priced with the same rules the profiler
applies to ``INFORMATION_SCHEMA.JOBS``: on-demand jobs cost ``total_bytes_billed`` at the
on-demand price per TiB, nothing when they failed (a cancelled one is billed); each reservation
is billed for the slots the autoscaler allocated to its jobs, second by second (50-slot steps,
each scale-up held 60 s), at its edition's pay-as-you-go price, and that bill is shared by its
jobs in proportion to their ``total_slot_ms``; cache hits cost nothing; a SCRIPT parent is not
counted (its children are). The allocation is computed here from the generator's own run
intervals, with the capacity model's primitives rather than the profiler's pipeline.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from costline.core.errors import CostlineError
from costline.core.prices import MS_PER_HOUR, TIB, Edition, PriceCatalogue
from costline.warehouse.slots.pricing import (
    RULES,
    SECONDS_PER_HOUR,
    held_steps,
    round_up_steps,
)
from costline.warehouse.slots.usage import spread

UNLABELLED = "(unlabelled)"


class Period(BaseModel):
    """First and last day of the history (UTC, inclusive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: dt.date
    end: dt.date


class PlantedPattern(BaseModel):
    """One planted anti-pattern: a single query shape and the cost of all its jobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    kind: str
    description: str
    pipeline: str | None
    table: str
    example_query: str
    jobs: int = Field(ge=0)
    bytes_billed: int = Field(ge=0)
    slot_ms: int = Field(ge=0)
    cost_usd: float = Field(ge=0)


class GroundTruth(BaseModel):
    """What the generator planted in a job history, and what the history cost."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int
    jobs: int
    period: Period
    total_cost_usd: float
    cost_by_team: dict[str, float]
    planted: list[PlantedPattern]

    def pattern(self, pattern_id: str) -> PlantedPattern:
        """The planted pattern ``pattern_id``."""
        for p in self.planted:
            if p.id == pattern_id:
                return p
        raise KeyError(pattern_id)

    @property
    def planted_cost_usd(self) -> float:
        """Cost of all planted patterns together."""
        return sum(p.cost_usd for p in self.planted)

    def save(self, path: Path) -> None:
        """Write as indented JSON (stable key order, so equal truths give equal files)."""
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> GroundTruth:
        """Read a ``ground_truth.json``."""
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise CostlineError(f"cannot read ground truth {path}: {exc}") from None


def job_costs(
    *,
    billed: NDArray[np.int64],
    slot_ms: NDArray[np.int64],
    edition: NDArray[np.int8],
    is_parent: NDArray[np.bool_],
    prices: PriceCatalogue,
    charged: NDArray[np.bool_] | None = None,
    reservation: NDArray[np.int64] | None = None,
    start_us: NDArray[np.int64] | None = None,
    end_us: NDArray[np.int64] | None = None,
) -> NDArray[np.float64]:
    """USD cost of each job under the profiler's rules.

    ``edition`` is -1 for on-demand jobs, else an index into :data:`EDITIONS`. Cache hits need
    no special case: they bill 0 bytes and 0 slot-ms. ``charged`` is False for an on-demand
    job that BigQuery does not charge (a failure other than a cancellation). With
    ``reservation`` (an index per job, -1 on demand) and the run intervals, reserved jobs carry
    their share of their reservation's simulated bill; without, their slot-time price.
    """
    bq = prices.bigquery
    per_byte = bq.on_demand.usd_per_tib / TIB
    slot_price = np.array([bq.slot_hour(e) / MS_PER_HOUR for e in EDITIONS])
    reserved = edition >= 0
    on_demand = billed.astype(np.float64) * per_byte
    if charged is not None:
        on_demand = np.where(charged, on_demand, 0.0)
    capacity = slot_ms.astype(np.float64) * slot_price[np.maximum(edition, 0)]
    if reservation is not None and start_us is not None and end_us is not None:
        capacity = capacity.copy()
        for r in np.unique(reservation[reserved & ~is_parent]):
            mine = (reservation == r) & reserved & ~is_parent
            used = float(slot_ms[mine].sum())
            if used <= 0:
                continue
            bill = _reservation_bill(start_us[mine], end_us[mine], slot_ms[mine])
            payg = bq.slot_hour(EDITIONS[int(edition[mine][0])])
            capacity[mine] = slot_ms[mine] * (bill * payg / SECONDS_PER_HOUR / used)
    cost = np.where(reserved, capacity, on_demand)
    return np.where(is_parent, 0.0, cost)


def _reservation_bill(
    start_us: NDArray[np.int64], end_us: NDArray[np.int64], slot_ms: NDArray[np.int64]
) -> float:
    """Slot-seconds the autoscaler allocates to these jobs (1 s buckets, no baseline)."""
    busy = slot_ms > 0
    s, e, ms = start_us[busy], end_us[busy], slot_ms[busy].astype(np.float64)
    origin = int(s.min()) // 1_000_000 * 1_000_000
    s_b = (s - origin) / 1e6
    e_b = (e - origin) / 1e6
    # the last scale-up is still held for the window after the last job ends
    buckets = int(np.ceil(e_b.max())) + 1 + RULES.window_seconds
    demand = spread(s_b, e_b, ms, buckets) / 1000.0
    steps = held_steps(round_up_steps(demand, RULES.step_slots), RULES.window_seconds)
    return float(steps.sum()) * RULES.step_slots


EDITIONS = (Edition.STANDARD, Edition.ENTERPRISE, Edition.ENTERPRISE_PLUS)
EDITION_NAMES = tuple(e.value.upper() for e in EDITIONS)
