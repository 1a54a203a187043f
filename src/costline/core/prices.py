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
from costline.core.files import read_text

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
    """BigQuery on-demand compute: price per TiB billed and the billing minimums.

    ``free_tier_bytes_per_month`` is stated, never deducted (see :mod:`costline.warehouse.cost`).
    """

    usd_per_tib: float = Field(gt=0)
    region: str = ""
    min_bytes_per_query: int = Field(ge=0)
    min_bytes_per_table: int = Field(ge=0)
    rounding_bytes: int = Field(gt=0)
    free_tier_bytes_per_month: int = Field(default=TIB, ge=0)


class EditionPrice(_Sourced):
    """Slot-hour prices of one BigQuery edition; commitments are absent where not sold."""

    payg_usd_per_slot_hour: float = Field(gt=0)
    commit_1y_usd_per_slot_hour: float | None = Field(default=None, gt=0)
    commit_3y_usd_per_slot_hour: float | None = Field(default=None, gt=0)


class MLPrice(_Sourced):
    """BigQuery ML on demand: training (``CREATE MODEL``) of the built-in model types, per TiB
    processed; prediction and evaluation are priced as queries."""

    create_model_usd_per_tib: float = Field(gt=0)


class SpendBasedDiscount(_Sourced):
    """BigQuery spend-based committed use discounts: a share off pay-as-you-go slot-hours for
    committing to an hourly spend for one or three years."""

    one_year: float = Field(ge=0, lt=1)
    three_years: float = Field(ge=0, lt=1)


class RegionPrice(_Sourced):
    """The prices of one BigQuery location where they differ from the defaults (the US
    multi-region). Parts not given are the defaults', and a priced result says so."""

    on_demand_usd_per_tib: float | None = Field(default=None, gt=0)
    editions: dict[Edition, EditionPrice] = Field(default_factory=dict)


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
    ml: MLPrice
    spend_based_discount: SpendBasedDiscount
    default_region: str = "US"
    regions: dict[str, RegionPrice] = Field(default_factory=dict)

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

    def for_region(self, region: str | None) -> tuple[PriceCatalogue, tuple[str, ...]]:
        """The catalogue with ``region``'s BigQuery prices in place of the defaults, and what
        was assumed: a part of the prices the catalogue does not give for that region is the
        default region's, said in a note. Locations match case-insensitively (``us`` is
        ``US``); a location the catalogue does not list is an error naming those it does."""
        bq = self.bigquery
        wanted = (region or bq.default_region).strip()
        if wanted.upper() == bq.default_region.upper():
            return self, ()
        known = {name.upper(): name for name in bq.regions}
        if wanted.upper() not in known:
            listed = ", ".join([bq.default_region, *sorted(bq.regions)])
            raise CostlineError(
                f"no BigQuery prices for location {wanted!r} in the catalogue (listed: {listed}); "
                f"add [bigquery.regions.{wanted!r}] to a --prices file"
            )
        name = known[wanted.upper()]
        entry = bq.regions[name]
        notes: list[str] = []
        on_demand = bq.on_demand
        if entry.on_demand_usd_per_tib is not None:
            on_demand = on_demand.model_copy(
                update={
                    "usd_per_tib": entry.on_demand_usd_per_tib,
                    "region": name,
                    "source": entry.source,
                    "as_of": entry.as_of,
                }
            )
        else:
            notes.append(f"on-demand price for {name} not in the catalogue: {bq.default_region}'s")
        editions = {**bq.editions, **entry.editions}
        missing = [e.value for e in bq.editions if e not in entry.editions]
        if missing:
            notes.append(
                f"slot-hour prices of {', '.join(missing)} for {name} not in the catalogue: "
                f"{bq.default_region}'s used (give them with --prices)"
            )
        priced = bq.model_copy(update={"on_demand": on_demand, "editions": editions})
        return self.model_copy(update={"bigquery": priced}), tuple(notes)


def read_settings(path: Path, what: str) -> object:
    """A TOML file (or JSON, by its ``.json`` suffix; either may be gzipped), parsed; a
    missing or malformed one is
    a :class:`CostlineError` naming the file (``what`` says what the file is for)."""
    if not path.is_file():
        raise CostlineError(f"cannot read {what} {path}: no such file")
    text = read_text(path)
    suffix = path.with_suffix("").suffix if path.suffix.lower() == ".gz" else path.suffix
    try:
        data: object = json.loads(text) if suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = suffix.lstrip(".") or "TOML"
        raise CostlineError(f"{path}: not valid {kind}: {exc}") from None
    return data


def _read(path: Path) -> dict[str, Any]:
    data = read_settings(path, "price file")
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
