"""How the assistant is configured, and the fault hook load tests use.

Faults are decided per request by whoever serves it: :func:`inject_faults` sets them for the
block (and the tasks it starts), or pass ``AssistSettings(faults=...)`` a callable that returns
the current request's :class:`Faults` from elsewhere (the HTTP service maps its fault header
onto it). Model-endpoint faults (429s, 500s) are injected by wrapping the provider instead, so
the cost guardian's retries and breakers meet them as in production.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from costline.agents.guardian import TierPolicy
from costline.core.budgets import BudgetPolicy
from costline.core.errors import CostlineError
from costline.core.events import CostEventSink
from costline.core.telemetry import Telemetry


@dataclass(frozen=True, slots=True)
class Faults:
    """Faults injected into one request.

    * ``slow_risk`` — the risk agent sleeps ``slow_risk_delay_s`` before answering (longer
      than its timeout, so the rules fallback answers and the response is degraded);
    * ``failing_recommender`` — the recommender raises (its rules-only fallback answers).
    """

    slow_risk: bool = False
    slow_risk_delay_s: float = 5.0
    failing_recommender: bool = False


NO_FAULTS = Faults()
_current: contextvars.ContextVar[Faults] = contextvars.ContextVar(
    "costline_assistant_faults", default=NO_FAULTS
)


@contextmanager
def inject_faults(faults: Faults) -> Iterator[None]:
    """Within the block (and the tasks it starts), requests are served with ``faults``."""
    token = _current.set(faults)
    try:
        yield
    finally:
        _current.reset(token)


def current_faults() -> Faults:
    """The faults of the request being served (none outside :func:`inject_faults`)."""
    return _current.get()


@dataclass(frozen=True)
class AssistSettings:
    """The assistant's configuration; every field has a working default.

    ``budgets``/``tiers`` configure the cost guardian (per request, tenant and global budgets;
    the business values at which the premium and small tiers start); ``sink`` receives every
    model call's cost event (the ledger); ``model_dir`` is where the trained fraud model is
    cached (default: ``<workspace>/models``).
    """

    budgets: BudgetPolicy | None = None
    tiers: TierPolicy | None = None
    sink: CostEventSink | None = None
    telemetry: Telemetry | None = None
    analyst_timeout_s: float = 1.0
    risk_timeout_s: float = 0.5
    recommender_timeout_s: float = 5.0
    narrative_max_tokens: int = 220
    recent_transactions: int = 10
    model_dir: Path | None = None
    faults: Callable[[], Faults] = field(default=current_faults)

    @classmethod
    def coerce(cls, value: AssistSettings | Mapping[str, Any] | None) -> AssistSettings:
        """Settings from an instance, a mapping of field names, or ``None`` (defaults)."""
        if value is None:
            return cls()
        if isinstance(value, AssistSettings):
            return value
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise CostlineError(f"unknown assistant setting(s): {', '.join(unknown)}")
        return cls(**dict(value))
