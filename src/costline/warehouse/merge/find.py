"""The audit's MERGE finding: the costliest full-table MERGE of a history, rewritten and proved.

The profile's query patterns are searched, costliest first, for a MERGE into a partitioned
table (per the catalogue) whose ON clause has no constant partition filter. Its rewrite is
checked; when it is safe, it is proved on a generated copy of the target (smaller than
``costline merge prove``'s default, so the audit stays quick).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from sqlglot import exp

from costline.core.errors import CostlineError
from costline.core.progress import Progress
from costline.warehouse.catalog import Catalog
from costline.warehouse.merge.prove import MergeProof, prove_merge
from costline.warehouse.merge.rewrite import MergeRewrite, rewrite_merge
from costline.warehouse.profiler import FingerprintStats
from costline.warehouse.sql import read_script, target_scope

# The audit proves on 1M rows over 365 daily partitions: large enough that the full scan
# dominates, small enough to build in seconds (once; it is cached in the workspace).
AUDIT_PROOF_ROWS = 1_000_000
AUDIT_PROOF_PARTITIONS = 365


class MergeFinding(BaseModel):
    """A full-table MERGE pattern, its rewrite, and the proof (when the rewrite is safe)."""

    model_config = ConfigDict(frozen=True)

    fingerprint: str
    jobs: int
    cost_usd: float
    statement: str
    rewrite: MergeRewrite
    proof: MergeProof | None = None
    proof_error: str | None = None


def is_full_table_merge(sql: str, catalog: Catalog | None) -> bool:
    """Whether a query text holds a MERGE into a partitioned table that reads every partition:
    the question ``costline lint`` (CL001) answers, asked through the same function."""
    for stmt in read_script(sql, template=False).statements:
        merge = stmt.expr
        if isinstance(merge, exp.Merge):
            found = target_scope(merge, catalog)
            if found is not None and found.full_table:
                return True
    return False


def find_full_table_merge(
    patterns: Iterable[FingerprintStats],
    catalog: Catalog,
    workspace: Path,
    *,
    rows: int = AUDIT_PROOF_ROWS,
    partitions: int = AUDIT_PROOF_PARTITIONS,
    progress: Progress | None = None,
) -> MergeFinding | None:
    """The costliest full-table MERGE among ``patterns``, rewritten and proved; None if none."""
    merges = sorted(
        (p for p in patterns if p.statement_type == "MERGE" and p.example_query),
        key=lambda p: -p.cost_usd,
    )
    for pattern in merges:
        sql = pattern.example_query or ""
        if not is_full_table_merge(sql, catalog):
            continue
        try:
            rewrite = rewrite_merge(sql, catalog=catalog, catalog_name="catalog.json")
        except CostlineError:
            continue  # e.g. partitioned by ingestion time: no partition to compute from rows
        proof, error = None, None
        if not rewrite.refused:
            try:
                proof = prove_merge(
                    workspace, statement=sql, rows=rows, partitions=partitions, progress=progress
                )
            except CostlineError as exc:
                error = str(exc)
        return MergeFinding(
            fingerprint=pattern.id,
            jobs=pattern.jobs,
            cost_usd=pattern.cost_usd,
            statement=sql,
            rewrite=rewrite,
            proof=proof,
            proof_error=error,
        )
    return None
