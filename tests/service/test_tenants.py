"""Tenants files: keys stored as hashes, budgets, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from costline.core.budgets import BudgetPeriod
from costline.core.errors import CostlineError
from costline.service.tenants import (
    TenantsConfig,
    demo_tenants,
    hash_key,
    load_tenants,
    tenants_toml,
)


def test_a_tenants_file_authenticates_by_key_hash_and_yields_the_budget_policy(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(
        f"""
[tenants.acme]
api_key_sha256 = "{hash_key("s3cret-acme")}"
rate_per_s = 5
burst = 10
budget = {{ limit_usd = 2.5, period = "day" }}

[tenants.globex]
api_key_sha256 = "{hash_key("s3cret-globex")}"

[global_budget]
limit_usd = 10.0
"""
    )
    config = load_tenants(path)
    assert config.authenticate("s3cret-acme") == "acme"
    assert config.authenticate("s3cret-globex") == "globex"
    assert config.authenticate("s3cret") is None
    assert "s3cret-acme" not in path.read_text()
    policy = config.budget_policy()
    assert policy.tenants["acme"].limit_usd == 2.5
    assert policy.tenants["acme"].period is BudgetPeriod.DAY
    assert "globex" not in policy.tenants
    assert policy.global_ is not None and policy.global_.limit_usd == 10.0


def test_a_bad_field_is_reported_with_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.acme]\napi_key_sha256 = "not-a-hash"\n')
    with pytest.raises(CostlineError, match=r"tenants\.toml: tenants\.acme\.api_key_sha256"):
        load_tenants(path)


def test_two_tenants_may_not_share_a_key() -> None:
    with pytest.raises(ValueError, match="share an API key"):
        TenantsConfig.model_validate(
            {
                "tenants": {
                    "a": {"api_key_sha256": hash_key("k")},
                    "b": {"api_key_sha256": hash_key("k")},
                }
            }
        )


def test_the_demo_configuration_round_trips_through_its_toml(tmp_path: Path) -> None:
    demo = demo_tenants(["acme-retail-uk", "acme-direct-de"])
    path = tmp_path / "tenants.toml"
    path.write_text(tenants_toml(demo))
    assert load_tenants(path) == demo
    assert load_tenants(path).authenticate("demo-key-acme-direct-de") == "acme-direct-de"
