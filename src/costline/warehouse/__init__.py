"""The BigQuery half of costline: job histories, SQL analysis, layouts, MERGE rewrites and
capacity plans.

The public functions and result types are those of :mod:`costline` (loaded on first use); the
modules of this package are its implementation::

    from costline import warehouse

    profile = warehouse.profile("ws/jobs.jsonl", catalog="ws/catalog.json")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "Advice",
    "AuditResult",
    "CapacityResult",
    "Catalog",
    "CostlineError",
    "JobHistory",
    "LintResult",
    "LiveWorkspace",
    "MergeProof",
    "MergeRewrite",
    "PriceCatalogue",
    "Profile",
    "Workspace",
    "advise",
    "audit",
    "capacity",
    "fetch_catalog",
    "lint",
    "profile",
    "prove_merge",
    "read_bigquery_history",
    "read_bigquery_workspace",
    "read_history",
    "rewrite_merge",
    "save_catalog",
]

if TYPE_CHECKING:
    from costline.api import (
        Advice,
        AuditResult,
        CapacityResult,
        Catalog,
        CostlineError,
        JobHistory,
        LintResult,
        LiveWorkspace,
        MergeProof,
        MergeRewrite,
        PriceCatalogue,
        Profile,
        Workspace,
        advise,
        audit,
        capacity,
        fetch_catalog,
        lint,
        profile,
        prove_merge,
        read_bigquery_history,
        read_bigquery_workspace,
        read_history,
        rewrite_merge,
        save_catalog,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        from costline import api

        return getattr(api, name)
    raise AttributeError(f"module 'costline.warehouse' has no attribute {name!r}")
