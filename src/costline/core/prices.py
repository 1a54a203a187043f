"""The price catalogue: prices are data, each with its source and date.

The packaged defaults live in ``core/data/prices.toml``; :func:`load_prices` merges a user's
override file (TOML or JSON, any subset of the same layout) over them.
"""

from __future__ import annotations

import json
import tomllib
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from costline.core.errors import CostlineError, first_validation_error

TIB = 1 << 40
GIB = 1 << 30
MIB = 1 << 20
MS_PER_HOUR = 3_600_000


class Edition(StrEnum):
    """BigQuery Editions, spelled as ``INFORMATION_SCHEMA.JOBS.edition`` spells them (lower)."""

    STANDARD = "standard"
    ENTERPRISE = "enterprise"
    ENTERPRISE_PLUS = "enterprise_plus"

    @classmethod
    def parse(cls, text: str) -> Edition:
        """Accept ``ENTERPRISE_PLUS``, ``enterprise-plus``, ``Enterprise Plus``..."""
        key = text.strip().lower().replace("-", "_").replace(" ", "_")
        try:
            return cls(key)
        except ValueError:
            names = ", ".join(e.value for e in cls)
            raise CostlineError(
                f"unknown BigQuery edition {text!r} (expected one of {names})"
            ) from None


class _Sourced(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    as_of: str


class OnDemandPrice(_Sourced):
    """BigQuery on-demand compute: price per TiB billed and the billing minimums."""

    usd_per_tib: float = Field(gt=0)
    region: str = ""
    min_bytes_per_query: int = Field(ge=0)
    min_bytes_per_table: int = Field(ge=0)
    rounding_bytes: int = Field(gt=0)


class EditionPrice(_Sourced):
    """Slot-hour prices of one BigQuery edition; commitments are absent where not sold."""

    payg_usd_per_slot_hour: float = Field(gt=0)
    commit_1y_usd_per_slot_hour: float | None = Field(default=None, gt=0)
    commit_3y_usd_per_slot_hour: float | None = Field(default=None, gt=0)


class StoragePrice(_Sourced):
    """BigQuery storage per GiB-month, logical and physical billing models."""

    logical_active_usd_per_gib_month: float = Field(ge=0)
    logical_long_term_usd_per_gib_month: float = Field(ge=0)
    physical_active_usd_per_gib_month: float = Field(ge=0)
    physical_long_term_usd_per_gib_month: float = Field(ge=0)


class BigQueryPrices(BaseModel):
    """All BigQuery prices costline uses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on_demand: OnDemandPrice
    editions: dict[Edition, EditionPrice]
    storage: StoragePrice

    def slot_hour(self, edition: Edition) -> float:
        """Pay-as-you-go slot-hour price of ``edition``."""
        return self.editions[edition].payg_usd_per_slot_hour


class ModelPrice(_Sourced):
    """Token prices of one LLM, USD per million tokens."""

    input_usd_per_mtok: float = Field(ge=0)
    output_usd_per_mtok: float = Field(ge=0)
    provider: str

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD cost of a call with these token counts."""
        return (
            input_tokens * self.input_usd_per_mtok + output_tokens * self.output_usd_per_mtok
        ) / 1e6


class LLMPrices(BaseModel):
    """Token prices per model name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, ModelPrice]

    def model(self, name: str) -> ModelPrice:
        """Price of ``name``; a :class:`CostlineError` names the known models if it is absent."""
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models))
            raise CostlineError(
                f"no price for model {name!r} in the catalogue (known: {known})"
            ) from None


class PriceCatalogue(BaseModel):
    """The whole catalogue, as loaded and validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bigquery: BigQueryPrices
    llm: LLMPrices


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CostlineError(f"cannot read price file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = path.suffix.lstrip(".") or "TOML"
        raise CostlineError(f"{path}: not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise CostlineError(f"{path}: the price file must hold a table/object at the top level")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def default_prices_text() -> str:
    """The packaged catalogue, as text (what ``costline prices`` shows)."""
    return resources.files("costline.core").joinpath("data/prices.toml").read_text("utf-8")


def load_prices(override: Path | None = None) -> PriceCatalogue:
    """Load the packaged catalogue, with ``override`` (TOML or JSON) merged over it."""
    data: dict[str, Any] = tomllib.loads(default_prices_text())
    origin = "packaged catalogue"
    if override is not None:
        data = _merge(data, _read(override))
        origin = str(override)
    try:
        return PriceCatalogue.model_validate(data)
    except ValidationError as exc:
        raise CostlineError(f"{origin}: price entry {first_validation_error(exc)}") from None
