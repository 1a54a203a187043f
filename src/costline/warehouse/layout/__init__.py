"""Partitioning and clustering advice per table, with the saving replayed from the history.

For each costly table (from the :class:`~costline.warehouse.profiler.Profile`):

1. **Workload.** The jobs that read the table are grouped by query shape; a few jobs of each
   shape are parsed and their constant predicates read (:mod:`costline.warehouse.predicates`),
   each with the job's creation time, at which ``CURRENT_DATE()`` and friends are evaluated.
2. **Data model.** A sample of the table's rows: the local columnar copy when the catalogue
   has one (``local_path``), otherwise rows synthesised from the catalogue (time columns uniform
   over ``distinct_count`` days ending at the history's last day, other columns uniform over
   their distinct values).
3. **Layouts.** The partition column is the one :mod:`costline.warehouse.partitioning` picks
   (the one ``costline lint`` names too): of the DATE/TIMESTAMP/DATETIME (or integer range)
   columns the workload restricts with constants, the one serving the costliest queries;
   granularities are HOUR/DAY/MONTH/YEAR that keep the table within BigQuery's partition limit,
   and leaving it unpartitioned, or as it is, are candidates too. Clustering columns (at most
   four) are the other restricted columns, ordered by the cost of the queries whose filters
   they serve.
4. **Replay.** A layout is simulated on the sample: rows go to partitions, are sorted by the
   clustering columns within each partition, and cut into storage blocks; a query reads the
   partitions its partition predicate selects and, within them, the blocks whose min/max of a
   clustering column meet its predicates. The fraction of rows read under the proposed layout,
   over the fraction under the current one, scales each job's billed bytes and cost.

The layout with the largest replayed saving wins. Everything here is a plain value object;
``costline.report.advise`` renders it.

The package, one module a step: :mod:`.workload`, :mod:`.sample` (the data model),
:mod:`.replay`, :mod:`.search`, :mod:`.ddl` and :mod:`.proof` (the layouts measured on DuckDB);
:mod:`.model` holds the values they exchange.
"""

from costline.warehouse.layout.ddl import migration_ddl, options_ddl
from costline.warehouse.layout.model import (
    Advice,
    FilterValue,
    Layout,
    Measurement,
    Recommendation,
    Saving,
)
from costline.warehouse.layout.search import advise, catalog_tables, recommend

__all__ = [
    "Advice",
    "FilterValue",
    "Layout",
    "Measurement",
    "Recommendation",
    "Saving",
    "advise",
    "catalog_tables",
    "migration_ddl",
    "options_ddl",
    "recommend",
]
