"""The values of layout advice: layouts, savings, measurements, recommendations."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from costline.core.results import Result
from costline.warehouse.catalog import (
    PartitionGranularity,
)
from costline.warehouse.partitioning import PARTITION_TIME_TYPES

TIME_TYPES = PARTITION_TIME_TYPES
DAY_SECONDS = 86_400
EPOCH = dt.date(1970, 1, 1)


class ValueModel(BaseModel):
    model_config = ConfigDict(frozen=True)


class Layout(ValueModel):
    """A table's physical layout: partitioning and clustering."""

    partition_column: str | None = Field(
        default=None, description="column, '_PARTITIONTIME' for ingestion time, None: none"
    )
    granularity: PartitionGranularity | None = None
    integer_range: tuple[int, int, int] | None = Field(
        default=None, description="start, end, interval of integer-range partitioning"
    )
    clustering: tuple[str, ...] = ()
    require_partition_filter: bool = False
    expiration_days: int | None = None

    def describe(self) -> str:
        """One line: ``PARTITION BY … CLUSTER BY …``, or ``unpartitioned``."""
        parts = []
        if self.partition_column is None:
            parts.append("unpartitioned")
        elif self.integer_range is not None:
            start, end, step = self.integer_range
            parts.append(
                f"partitioned by {self.partition_column} (integer range {start}..{end} step {step})"
            )
        else:
            grain = self.granularity.value if self.granularity else "DAY"
            parts.append(f"partitioned by {self.partition_column} ({grain})")
        if self.clustering:
            parts.append("clustered by " + ", ".join(self.clustering))
        return ", ".join(parts)


class FilterValue(ValueModel):
    """What the workload's filters on one column are worth: the cost of the queries they serve."""

    column: str
    cost_usd: float
    jobs: int


class Saving(ValueModel):
    """The replayed saving of a layout over the history."""

    jobs: int
    replayed_jobs: int = Field(description="jobs whose text was parsed and replayed")
    billed_bytes: int = Field(description="bytes billed now (a job's bytes split over its tables)")
    estimated_bytes: int = Field(description="bytes the same jobs would scan under the layout")
    cost_usd: float
    estimated_cost_usd: float
    saving_usd: float
    fraction_scanned: float = Field(description="estimated over billed bytes, 0..1")
    data_model: str = Field(description="'local copy (N rows)' or 'synthesised from catalogue'")


class Measurement(ValueModel):
    """Estimate against a real engine: the same queries on the local copy in both layouts."""

    engine: str
    queries: int
    bytes_current: int
    bytes_proposed: int
    measured_fraction: float = Field(description="bytes scanned, proposed over current layout")
    measured_row_group_fraction: float = Field(
        description="row groups scanned, proposed over current (what pruning alone decides)"
    )
    estimated_fraction: float
    relative_error: float = Field(
        description="|estimated - measured| / measured, on the fraction of bytes scanned"
    )
    within_tolerance: bool
    note: str


class Recommendation(ValueModel):
    """The advice for one table."""

    table: str
    cost_usd: float
    current: Layout
    proposed: Layout
    changed: bool
    partitions: int | None = Field(description="partitions the proposed layout makes")
    partition_reason: str
    ingestion_time_alternative: str
    clustering_values: tuple[FilterValue, ...]
    notes: tuple[str, ...]
    saving: Saving
    ddl: str
    measured: Measurement | None = None


class Advice(ValueModel, Result):
    """Every recommendation, costliest table first."""

    recommendations: tuple[Recommendation, ...]
    total_saving_usd: float
    history_days: int | None = None
    """Days of job history the costs and savings are over."""


# --- workload -----------------------------------------------------------------------------
