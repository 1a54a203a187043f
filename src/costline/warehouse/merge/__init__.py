"""``costline merge``: rewrite a full-table MERGE into a partition-scoped one, and prove it.

:func:`rewrite_merge` checks a BigQuery MERGE's preconditions and writes the partition-scoped
script; :func:`prove_merge` runs the original and the rewrite on a local Delta table and
measures what each read and wrote.
"""

from costline.warehouse.merge.prove import MergeProof, SideResult, prove_merge
from costline.warehouse.merge.rewrite import (
    Check,
    CheckStatus,
    MergeRewrite,
    PartitionSpec,
    Strategy,
    rewrite_merge,
)

__all__ = [
    "Check",
    "CheckStatus",
    "MergeProof",
    "MergeRewrite",
    "PartitionSpec",
    "SideResult",
    "Strategy",
    "prove_merge",
    "rewrite_merge",
]
