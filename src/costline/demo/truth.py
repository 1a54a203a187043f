"""Ground truth of a generated history: what was planted and what everything cost.

The numbers come from the generator's own arrays, priced with the same rules the profiler
applies to ``INFORMATION_SCHEMA.JOBS``: on-demand jobs cost ``total_bytes_billed`` at the
on-demand price per TiB; jobs that ran in a reservation cost ``total_slot_ms`` at their edition's
pay-as-you-go slot-hour price; cache hits cost nothing; a SCRIPT parent is not counted (its
children are).
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
) -> NDArray[np.float64]:
    """USD cost of each job under the profiler's rules.

    ``edition`` is -1 for on-demand jobs, else an index into :data:`EDITIONS`. Cache hits need
    no special case: they bill 0 bytes and 0 slot-ms.
    """
    bq = prices.bigquery
    per_byte = bq.on_demand.usd_per_tib / TIB
    slot_price = np.array([bq.slot_hour(e) / MS_PER_HOUR for e in EDITIONS])
    reserved = edition >= 0
    cost = np.where(
        reserved,
        slot_ms.astype(np.float64) * slot_price[np.maximum(edition, 0)],
        billed.astype(np.float64) * per_byte,
    )
    return np.where(is_parent, 0.0, cost)


EDITIONS = (Edition.STANDARD, Edition.ENTERPRISE, Edition.ENTERPRISE_PLUS)
EDITION_NAMES = tuple(e.value.upper() for e in EDITIONS)
