"""Tenants of the service: who may call it, how fast, and on what budget.

A tenants file (TOML or JSON) maps each tenant to the SHA-256 of its API key (never the key
itself), its rate limit (a token bucket: ``rate_per_s`` sustained, ``burst`` at once) and its
LLM budget::

    [tenants.acme-retail-uk]
    api_key_sha256 = "5e88489..."      # printf %s "$KEY" | sha256sum
    rate_per_s = 200
    burst = 400
    budget = { limit_usd = 50.0, period = "day" }

    [global_budget]                     # optional: one budget over every tenant
    limit_usd = 500.0
    period = "day"

Without a file, the demo workspace's tenants are served with the demo keys of
:func:`demo_tenants` (``demo-key-<tenant>``): fine on 127.0.0.1, never in production.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from costline.core.budgets import BudgetLimit, BudgetPeriod, BudgetPolicy
from costline.core.errors import CostlineError

# Demo defaults: generous enough that a load test on one machine is not throttled, small enough
# that a runaway client is.
DEMO_RATE_PER_S = 2_000.0
DEMO_BURST = 4_000
DEMO_BUDGET = BudgetLimit(limit_usd=100.0, period=BudgetPeriod.DAY)
DEMO_KEY_PREFIX = "demo-key-"


def hash_key(api_key: str) -> str:
    """The SHA-256 (hex) under which an API key is stored.

    A plain digest suffices for keys (long random tokens, unlike passwords): nothing short is
    there to brute-force.
    """
    return hashlib.sha256(api_key.encode()).hexdigest()


class TenantConfig(BaseModel):
    """One tenant: its key's hash, rate limit and budget."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    rate_per_s: float = Field(default=DEMO_RATE_PER_S, gt=0)
    burst: int = Field(default=DEMO_BURST, ge=1)
    budget: BudgetLimit | None = None


class TenantsConfig(BaseModel):
    """Every tenant of a service, and the optional global budget."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenants: dict[str, TenantConfig] = Field(min_length=1)
    global_budget: BudgetLimit | None = None

    _by_hash: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _index(self) -> TenantsConfig:
        # Indexed by key hash once: every request authenticates.
        for tenant, cfg in self.tenants.items():
            if cfg.api_key_sha256 in self._by_hash:
                raise ValueError(
                    f"tenants {self._by_hash[cfg.api_key_sha256]!r} and {tenant!r} share an API key"
                )
            self._by_hash[cfg.api_key_sha256] = tenant
        return self

    def authenticate(self, api_key: str) -> str | None:
        """The tenant whose key this is, or ``None``."""
        return self._by_hash.get(hash_key(api_key))

    def budget_policy(self) -> BudgetPolicy:
        """The budgets the cost guardian enforces for these tenants."""
        return BudgetPolicy(
            tenants={t: c.budget for t, c in self.tenants.items() if c.budget is not None},
            global_=self.global_budget,
        )


def load_tenants(path: Path) -> TenantsConfig:
    """Read a tenants file (``.toml`` or ``.json``); errors name the file and the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CostlineError(f"cannot read tenants file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise CostlineError(
            f"{path}: not valid {path.suffix.lstrip('.') or 'TOML'}: {exc}"
        ) from None
    try:
        return TenantsConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise CostlineError(f"{path}: {problems}") from None


def demo_key(tenant: str) -> str:
    """The demo API key of ``tenant`` (published: for local demos and load tests only)."""
    return DEMO_KEY_PREFIX + tenant


def demo_tenants(
    tenants: list[str] | tuple[str, ...],
    *,
    rate_per_s: float = DEMO_RATE_PER_S,
    burst: int = DEMO_BURST,
    budget: BudgetLimit | None = DEMO_BUDGET,
) -> TenantsConfig:
    """The default configuration of the demo: every tenant under its :func:`demo_key`."""
    return TenantsConfig(
        tenants={
            t: TenantConfig(
                api_key_sha256=hash_key(demo_key(t)),
                rate_per_s=rate_per_s,
                burst=burst,
                budget=budget,
            )
            for t in tenants
        }
    )


def tenants_toml(config: TenantsConfig) -> str:
    """``config`` as a tenants file (TOML), e.g. to start one from the demo's."""
    lines: list[str] = []
    for tenant, cfg in config.tenants.items():
        lines.append(f"[tenants.{json.dumps(tenant)}]")
        lines.append(f'api_key_sha256 = "{cfg.api_key_sha256}"')
        lines.append(f"rate_per_s = {cfg.rate_per_s!r}")
        lines.append(f"burst = {cfg.burst}")
        if cfg.budget is not None:
            limit, period = cfg.budget.limit_usd, cfg.budget.period
            lines.append(f'budget = {{ limit_usd = {limit!r}, period = "{period}" }}')
        lines.append("")
    if config.global_budget is not None:
        lines.append("[global_budget]")
        lines.append(f"limit_usd = {config.global_budget.limit_usd!r}")
        lines.append(f'period = "{config.global_budget.period}"')
        lines.append("")
    return "\n".join(lines)
