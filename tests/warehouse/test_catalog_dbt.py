"""The catalogue read from dbt: a compiled manifest, or a project's own files without one."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from costline.core.errors import CostlineError
from costline.warehouse.catalog import (
    Catalog,
    Column,
    PartitionGranularity,
    Partitioning,
    TableKind,
    TableMeta,
    save_catalog,
)
from costline.warehouse.catalog_dbt import read_dbt_manifest, read_dbt_project
from costline.warehouse.catalog_read import load_catalog

# --------------------------------------------------------------------------------------------
# A manifest


def _column(name: str, data_type: str | None) -> dict[str, Any]:
    return {
        "name": name,
        "description": "",
        "meta": {},
        "data_type": data_type,
        "constraints": [],
        "quote": None,
        "tags": [],
    }


def _node(
    resource_type: str,
    name: str,
    config: dict[str, Any],
    *,
    schema: str = "analytics",
    columns: dict[str, Any] | None = None,
    relation: bool = True,
) -> dict[str, Any]:
    """A manifest node as dbt 1.8 writes it, less the keys a catalogue does not read."""
    base_config = {
        "enabled": True,
        "alias": None,
        "schema": None,
        "database": None,
        "tags": [],
        "meta": {},
        "materialized": "view",
        "incremental_strategy": None,
        "persist_docs": {},
        "post-hook": [],
        "pre-hook": [],
        "quoting": {},
        "column_types": {},
        "full_refresh": None,
        "unique_key": None,
        "on_schema_change": "ignore",
        "grants": {},
        "packages": [],
        "docs": {"show": True, "node_color": None},
        "contract": {"enforced": False, "alias_types": True},
        "access": "protected",
    }
    return {
        "database": "acme-prod",
        "schema": schema,
        "name": name,
        "resource_type": resource_type,
        "package_name": "shop",
        "path": f"marts/{name}.sql",
        "original_file_path": f"models/marts/{name}.sql",
        "unique_id": f"{resource_type}.shop.{name}",
        "fqn": ["shop", "marts", name],
        "alias": name,
        "checksum": {"name": "sha256", "checksum": "0" * 64},
        "config": {**base_config, **config},
        "tags": [],
        "description": "",
        "columns": columns or {},
        "meta": {},
        "relation_name": f"`acme-prod`.`{schema}`.`{name}`" if relation else None,
        "raw_code": "select 1",
        "language": "sql",
        "refs": [],
        "sources": [],
        "depends_on": {"macros": [], "nodes": []},
    }


def _manifest(version: int = 12) -> dict[str, Any]:
    orders = _node(
        "model",
        "fct_orders",
        {
            "materialized": "incremental",
            "incremental_strategy": "insert_overwrite",
            "partition_by": {"field": "order_date", "data_type": "date", "granularity": "day"},
            "cluster_by": ["customer_id", "status"],
            "require_partition_filter": True,
            "partition_expiration_days": 730,
        },
        columns={
            "order_id": _column("order_id", "int64"),
            "order_date": _column("order_date", "date"),
            "customer_id": _column("customer_id", None),
        },
    )
    sessions = _node(
        "model",
        "fct_sessions",
        {
            "materialized": "table",
            "partition_by": {
                "field": "session_start",
                "data_type": "timestamp",
                "granularity": "hour",
                "time_ingestion_partitioning": True,
            },
            "cluster_by": "user_id",
        },
    )
    buckets = _node(
        "model",
        "customer_buckets",
        {
            "materialized": "table",
            "alias": "customer_buckets_v2",
            "partition_by": {
                "field": "bucket",
                "data_type": "int64",
                "range": {"start": 0, "end": 100, "interval": 10},
            },
        },
    )
    buckets["relation_name"] = "`acme-prod`.`analytics`.`customer_buckets_v2`"
    legacy = _node("model", "daily_revenue", {"materialized": "table", "partition_by": "DATE(ts)"})
    nodes = [
        orders,
        sessions,
        buckets,
        legacy,
        _node("model", "dim_customers", {"materialized": "view"}, schema="marts"),
        _node("model", "int_order_items", {"materialized": "ephemeral"}, relation=False),
        _node("model", "old_orders", {"materialized": "table", "enabled": False}),
        _node("model", "fct_returns", {"materialized": "dynamic_table"}),
        _node("seed", "country_codes", {"materialized": "seed"}, schema="seeds"),
        _node("snapshot", "customers_snapshot", {"materialized": "snapshot"}, schema="snap"),
        _node(
            "test",
            "not_null_fct_orders_order_id",
            {"materialized": "test", "severity": "ERROR"},
            relation=False,
        ),
    ]
    sources = {
        "source.shop.raw.orders": {
            "database": "acme-raw",
            "schema": "raw",
            "name": "orders",
            "resource_type": "source",
            "package_name": "shop",
            "source_name": "raw",
            "identifier": "orders",
            "external": None,
            "columns": {"id": _column("id", "INTEGER")},
            "relation_name": "`acme-raw`.`raw`.`orders`",
            "config": {"enabled": True},
        },
        "source.shop.lake.events": {
            "database": "acme-raw",
            "schema": "lake",
            "name": "events",
            "resource_type": "source",
            "package_name": "shop",
            "source_name": "lake",
            "identifier": "events_ext",
            "external": {
                "location": "gs://acme-lake/events/*",
                "options": {"format": "parquet"},
            },
            "columns": {},
            "relation_name": "`acme-raw`.`lake`.`events_ext`",
            "config": {"enabled": True},
        },
    }
    return {
        "metadata": {
            "dbt_schema_version": f"https://schemas.getdbt.com/dbt/manifest/v{version}.json",
            "dbt_version": "1.8.7",
            "generated_at": "2025-01-14T09:12:44.123456Z",
            "invocation_id": "6f1c2b9e-0000-4000-8000-000000000000",
            "env": {},
            "project_name": "shop",
            "adapter_type": "bigquery",
        },
        "nodes": {n["unique_id"]: n for n in nodes},
        "sources": sources,
        "macros": {},
        "docs": {},
        "exposures": {},
        "metrics": {},
        "groups": {},
        "selectors": {},
        "disabled": {},
        "parent_map": {},
        "child_map": {},
        "group_map": {},
        "saved_queries": {},
        "semantic_models": {},
        "unit_tests": {},
    }


def _write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    path = directory / "target" / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return path


def test_a_manifest_names_each_relation_and_its_layout(tmp_path: Path) -> None:
    catalog = read_dbt_manifest(_write_manifest(tmp_path, _manifest()))

    assert [(t.name, t.kind) for t in catalog] == [
        ("acme-prod.analytics.fct_orders", TableKind.TABLE),
        ("acme-prod.analytics.fct_sessions", TableKind.TABLE),
        ("acme-prod.analytics.customer_buckets_v2", TableKind.TABLE),
        ("acme-prod.analytics.daily_revenue", TableKind.TABLE),
        ("acme-prod.marts.dim_customers", TableKind.VIEW),
        ("acme-prod.analytics.fct_returns", TableKind.TABLE),
        ("acme-prod.seeds.country_codes", TableKind.TABLE),
        ("acme-prod.snap.customers_snapshot", TableKind.TABLE),
        ("acme-raw.raw.orders", TableKind.TABLE),
        ("acme-raw.lake.events_ext", TableKind.EXTERNAL),
    ]
    assert catalog.source == f"dbt manifest {tmp_path / 'target' / 'manifest.json'}"


def test_a_partitioned_incremental_model(tmp_path: Path) -> None:
    orders = read_dbt_manifest(_write_manifest(tmp_path, _manifest())).get("fct_orders")

    assert orders == TableMeta(
        name="acme-prod.analytics.fct_orders",
        columns=(
            Column(name="order_id", type="INT64"),
            Column(name="order_date", type="DATE"),
            Column(name="customer_id", type="UNKNOWN"),
        ),
        partitioning=Partitioning(
            column="order_date",
            granularity=PartitionGranularity.DAY,
            require_partition_filter=True,
            expiration_days=730,
        ),
        clustering=("customer_id", "status"),
    )


def test_other_partitionings(tmp_path: Path) -> None:
    catalog = read_dbt_manifest(_write_manifest(tmp_path, _manifest()))

    def partitioning(name: str) -> Partitioning | None:
        table = catalog.get(name)
        assert table is not None
        return table.partitioning

    # Time-ingestion partitioning writes the field to _PARTITIONTIME; queries filter on that.
    assert partitioning("fct_sessions") == Partitioning(
        column=None, granularity=PartitionGranularity.HOUR
    )
    assert partitioning("customer_buckets_v2") == Partitioning(
        column="bucket", granularity=PartitionGranularity.INTEGER_RANGE
    )
    assert partitioning("daily_revenue") == Partitioning(column="ts")
    assert partitioning("dim_customers") is None
    sessions = catalog.get("fct_sessions")
    assert sessions is not None and sessions.clustering == ("user_id",)


def test_a_manifest_records_what_it_cannot_use(tmp_path: Path) -> None:
    path = _write_manifest(tmp_path, _manifest(version=13))

    assert read_dbt_manifest(path).problems == (
        f"{path}: metadata.dbt_schema_version: manifest v13 is not one of v7-v12; read as v12",
        f"{path}: nodes.model.shop.fct_returns.config: "
        "materialization 'dynamic_table' is not known; read as a table",
    )


def test_an_older_manifest_reads_the_same(tmp_path: Path) -> None:
    v12 = read_dbt_manifest(_write_manifest(tmp_path / "a", _manifest(12)))
    v7 = read_dbt_manifest(_write_manifest(tmp_path / "b", _manifest(7)))

    assert v7.tables == v12.tables


def test_a_malformed_manifest_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text('{\n  "metadata": {\n    "dbt_schema_version": \n  }\n}\n', encoding="utf-8")

    with pytest.raises(CostlineError, match=r"manifest\.json:4: not valid JSON"):
        read_dbt_manifest(path)
    with pytest.raises(CostlineError, match=r"manifest\.json:4: not valid JSON"):
        load_catalog(path)

    manifest = _manifest()
    manifest["nodes"] = []
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(CostlineError, match=r"manifest\.json: nodes: expected an object"):
        load_catalog(path)


# --------------------------------------------------------------------------------------------
# A project without a manifest

DBT_PROJECT = """\
name: 'shop'
version: '1.0.0'
config-version: 2
profile: 'shop'

model-paths: ["models"]
seed-paths: ["seeds"]
target-path: "target"

models:
  +persist_docs:
    relation: true
  shop:
    schema: staging
    staging:
      +materialized: view
    marts:
      +materialized: table
      +schema: marts
      finance:
        +schema: finance
        +partition_by:
          field: booked_at
          data_type: timestamp
          granularity: month
      web:
        +schema: "{{ env_var('WEB_DATASET') }}"
"""

STG_ORDERS = """\
-- one row per order, as the shop writes it
select * from {{ source('raw', 'orders') }}
"""

FCT_ORDERS = """\
{{
    config(
        materialized='incremental',
        incremental_strategy='insert_overwrite',
        begin=var('ORDERS_START'),
        partition_by={'field': 'dt', 'data_type': 'date'},
        cluster_by=['customer_id'],
        require_partition_filter=true,
        full_refresh=false,
    )
}}
{#
  The layout before partitioning, kept for reference: {{ config(materialized='view') }}
#}

select * from {{ ref('stg_orders') }}
"""

LEDGER = """\
{{ config(
    materialized='incremental',
    cluster_by=var('ledger_clustering'),
) }}
{{ config(alias='ledger_v2') }}

select * from {{ ref('stg_orders') }}
"""

PAGE_VIEWS = """\
{{ config(partition_by={'field': 'hit_at', 'data_type': 'timestamp', 'granularity': 'hour'}) }}
select 1 as hit_at
"""

ORDER_ITEMS = "{{ config(materialized='ephemeral') }}\nselect 1\n"
LEGACY = "{{ config(materialized='table') }}\nselect 1\n"

PROPERTIES = """\
version: 2

models:
  - name: fct_orders
    description: One row per order.
    config:
      partition_expiration_days: 400
    columns:
      - name: order_id
        data_type: int64
        data_tests: [unique, not_null]
      - name: dt
        data_type: date
      - name: customer_id
  - name: legacy_orders
    config:
      enabled: false
  - name: retired_model

sources:
  - name: raw
    database: "{{ env_var('RAW_PROJECT') }}"
    tables:
      - name: orders
        columns:
          - name: id
            data_type: integer
      - name: events
        identifier: events_ext
        external:
          location: "gs://acme-lake/events/*"
          options:
            format: parquet
"""


def _project(root: Path) -> Path:
    files = {
        "dbt_project.yml": DBT_PROJECT,
        "models/staging/stg_orders.sql": STG_ORDERS,
        "models/staging/int_order_items.sql": ORDER_ITEMS,
        "models/marts/fct_orders.sql": FCT_ORDERS,
        "models/marts/_marts.yml": PROPERTIES,
        "models/marts/finance/ledger.sql": LEDGER,
        "models/marts/web/page_views.sql": PAGE_VIEWS,
        "models/marts/legacy_orders.sql": LEGACY,
        "target/.gitkeep": "",
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_a_project_names_models_by_project_schema_and_alias(tmp_path: Path) -> None:
    catalog = read_dbt_project(_project(tmp_path))

    assert [(t.name, t.kind) for t in catalog] == [
        ("shop.marts.fct_orders", TableKind.TABLE),
        ("shop.finance.ledger_v2", TableKind.TABLE),
        # web's +schema is Jinja and ignored: the marts folder's schema applies.
        ("shop.marts.page_views", TableKind.TABLE),
        ("shop.staging.stg_orders", TableKind.VIEW),
        ("shop.raw.orders", TableKind.TABLE),
        ("shop.raw.events_ext", TableKind.EXTERNAL),
    ]
    assert catalog.source == f"dbt project {tmp_path}"
    # Queries write {{ ref('fct_orders') }}; the bare model name finds the table.
    assert catalog.get("fct_orders") is catalog.tables[0]


def test_config_calls_properties_and_folders_combine(tmp_path: Path) -> None:
    catalog = read_dbt_project(_project(tmp_path))

    orders = catalog.get("fct_orders")
    assert orders == TableMeta(
        name="shop.marts.fct_orders",
        columns=(
            Column(name="order_id", type="INT64"),
            Column(name="dt", type="DATE"),
            Column(name="customer_id", type="UNKNOWN"),
        ),
        partitioning=Partitioning(
            column="dt",
            granularity=PartitionGranularity.DAY,
            require_partition_filter=True,
            expiration_days=400,
        ),
        clustering=("customer_id",),
    )
    # The finance folder's partition_by and schema; cluster_by was not a literal.
    ledger = catalog.get("ledger_v2")
    assert ledger is not None
    assert ledger.partitioning == Partitioning(
        column="booked_at", granularity=PartitionGranularity.MONTH
    )
    assert ledger.clustering == ()
    page_views = catalog.get("page_views")
    assert page_views is not None
    assert page_views.partitioning == Partitioning(
        column="hit_at", granularity=PartitionGranularity.HOUR
    )


def test_a_project_records_values_it_cannot_read(tmp_path: Path) -> None:
    root = _project(tmp_path)

    # begin=var(...) is not a literal either, but the catalogue does not read it.
    assert read_dbt_project(root).problems == (
        f"{root / 'dbt_project.yml'}: models.shop.marts.web.+schema: "
        "a Jinja expression, not a literal; ignored",
        f"{root / 'models' / 'marts' / '_marts.yml'}: models[2]: no model file for 'retired_model'",
        f"{root / 'models' / 'marts' / 'finance' / 'ledger.sql'}:3: "
        "cluster_by=var('ledger_clustering') is not a literal; ignored",
    )


def test_a_config_call_that_is_not_python_is_a_problem(tmp_path: Path) -> None:
    root = _project(tmp_path)
    model = root / "models" / "staging" / "stg_orders.sql"
    model.write_text(
        "select 1\n{{ config(\n  materialized='table',\n  alias='a' ~ 'b',\n) }}\n",
        encoding="utf-8",
    )

    catalog = read_dbt_project(root)

    expected = f"{model}:4: config(...) is not a literal call: invalid syntax"
    assert [p for p in catalog.problems if p.startswith(expected)] != []
    stg = catalog.get("stg_orders")
    assert stg is not None and stg.kind is TableKind.VIEW  # the folder's materialization


def test_a_project_file_that_names_no_project_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dbt_project.yml").write_text("version: '1.0'\nmodels: {}\n", encoding="utf-8")
    with pytest.raises(CostlineError, match=r"dbt_project\.yml: name: expected"):
        read_dbt_project(tmp_path)

    (tmp_path / "dbt_project.yml").write_text("name: shop\nmodels: [\n", encoding="utf-8")
    with pytest.raises(CostlineError, match=r"dbt_project\.yml:3: not valid YAML"):
        load_catalog(tmp_path)


# --------------------------------------------------------------------------------------------
# load_catalog: one entry point for every form


def test_load_catalog_dispatches_each_form(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    assert load_catalog(project).source == f"dbt project {project}"
    assert load_catalog(project / "dbt_project.yml").source == f"dbt project {project}"

    manifest = _write_manifest(project, _manifest())
    assert load_catalog(project).source == f"dbt manifest {manifest}"
    assert load_catalog(manifest).source == f"dbt manifest {manifest}"
    assert load_catalog(project / "target").source == f"dbt manifest {manifest}"

    saved = tmp_path / "catalog.json"
    save_catalog(Catalog(tables=(TableMeta(name="p.d.t", columns=()),)), saved)
    costline = load_catalog(saved)
    assert costline.source == f"costline catalogue {saved}"
    assert [t.name for t in costline] == ["p.d.t"]


def test_load_catalog_says_which_forms_it_accepts(tmp_path: Path) -> None:
    other = tmp_path / "run_results.json"
    other.write_text('{"results": []}', encoding="utf-8")

    with pytest.raises(CostlineError, match=r"run_results\.json: not a catalogue; expected a"):
        load_catalog(other)
    with pytest.raises(CostlineError, match=r"no catalogue found; expected .* dbt project"):
        load_catalog(tmp_path)
    with pytest.raises(CostlineError, match=r"cannot read catalogue .*missing\.json"):
        load_catalog(tmp_path / "missing.json")


def test_a_costline_catalogue_with_a_bad_entry_names_it(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text('{"tables": [{"name": "p.d.t", "columns": [], "rows": -1}]}')

    with pytest.raises(CostlineError, match=r"catalog\.json: tables\.0\.rows: Input should be"):
        load_catalog(path)


def test_saving_keeps_the_catalogue_format(tmp_path: Path) -> None:
    catalog = read_dbt_project(_project(tmp_path / "project"))
    path = tmp_path / "catalog.json"

    save_catalog(catalog, path)

    text = path.read_text(encoding="utf-8")
    assert '"source"' not in text and '"problems"' not in text
    assert load_catalog(path).tables == catalog.tables
    assert json.loads(text)["tables"][0] == json.loads(
        textwrap.dedent(
            """\
            {
              "name": "shop.marts.fct_orders",
              "columns": [
                {"name": "order_id", "type": "INT64"},
                {"name": "dt", "type": "DATE"},
                {"name": "customer_id", "type": "UNKNOWN"}
              ],
              "kind": "table",
              "partitioning": {
                "column": "dt",
                "granularity": "DAY",
                "require_partition_filter": true,
                "expiration_days": 400
              },
              "clustering": ["customer_id"],
              "long_term_bytes": 0,
              "local_scale": 1.0
            }
            """
        )
    )
