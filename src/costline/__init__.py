"""costline: cloud cost as an architectural property you can see, test and enforce.

The Python API (:mod:`costline.api`), loaded on first use so that ``import costline`` stays
quick::

    import costline

    history = costline.read_history("ws/jobs.jsonl")
    profile = costline.profile(history, catalog="ws/catalog.json")
    print(profile.total_cost_usd, profile.fingerprints[0].example_query)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

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
    "__version__",
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
    raise AttributeError(f"module 'costline' has no attribute {name!r}")
