"""The catalogue read from a BigQuery ETL tree of ``<project>/<dataset>/<table>/metadata.yaml``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from costline.core.errors import CostlineError
from costline.warehouse.catalog import (
    Column,
    PartitionGranularity,
    Partitioning,
    TableKind,
    save_catalog,
)
from costline.warehouse.catalog_metadata import read_metadata_table, read_metadata_tree
from costline.warehouse.catalog_read import load_catalog

PROD = "moz-fx-data-shared-prod"

CLIENTS_DAILY_METADATA = """\
friendly_name: Clients Daily
description: |-
  A daily aggregate of main pings, one row per client per day.
owners:
  - someone@example.com
labels:
  application: firefox
  schedule: daily
scheduling:
  dag_name: bqetl_main_summary
  start_date: "2019-11-05"
bigquery:
  time_partitioning:
    type: day
    field: submission_date
    require_partition_filter: true
    expiration_days: 775.0
  range_partitioning: null
  clustering:
    fields:
      - normalized_channel
      - sample_id
references: {}
"""

CLIENTS_DAILY_SCHEMA = """\
fields:
- mode: NULLABLE
  name: submission_date
  type: DATE
  description: !include-field-description
    file: sql/moz-fx-data-shared-prod/telemetry_derived/telemetry_derived.yaml
    field: submission_date
- name: client_id
  type: STRING
  mode: NULLABLE
- name: sample_id
  type: INTEGER
  mode: NULLABLE
- name: normalized_channel
  type: STRING
- name: experiments
  type: RECORD
  mode: REPEATED
  fields:
  - name: key
    type: STRING
  - name: value
    type: STRING
- name: active_hours_sum
  type: FLOAT
- !include-field
  table: moz-fx-data-shared-prod.telemetry_derived.clients_last_seen_v2
  field: days_seen_bits
"""

SEARCH_METADATA = """\
friendly_name: Search Clients Last Seen
bigquery:
  time_partitioning: null
  range_partitioning:
    field: sample_id
    range:
      start: 0
      end: 100
      interval: 1
  clustering:
    fields:
      - client_id
"""

# Ingestion-time partitioning: no field, so queries filter on _PARTITIONTIME.
EVENTS_METADATA = """\
friendly_name: Events
bigquery:
  time_partitioning:
    type: hour
    expiration_days: null
  clustering: null
"""

VIEW_METADATA = """\
friendly_name: Clients Daily
description: The user-facing view of clients_daily_v6.
"""

UDF_METADATA = """\
friendly_name: Histogram extract
description: Extract a histogram from its JSON representation.
"""

ACCESS_ONLY_METADATA = """\
workgroup_access:
- role: roles/bigquery.dataViewer
  members:
  - workgroup:example/service
"""

# A flow list left open: YAML finds the next key (line 5) where it expects "," or "]".
BROKEN_METADATA = """\
friendly_name: Broken
bigquery:
  clustering:
    fields: [a, b
  time_partitioning:
    type: day
"""

WEEKLY_METADATA = """\
bigquery:
  time_partitioning:
    type: week
    field: submission_date
"""

# Outside sql/: a generator's template, Jinja and not YAML; a repository root skips it.
TEMPLATE_METADATA = """\
friendly_name: {{ friendly_name }}
bigquery: {% if partitioned %}
"""


def _write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A small bigquery-etl checkout: one table of each kind, one routine, two bad files."""
    sql = f"sql/{PROD}"
    files = {
        f"{sql}/telemetry_derived/clients_daily_v6/metadata.yaml": CLIENTS_DAILY_METADATA,
        f"{sql}/telemetry_derived/clients_daily_v6/schema.yaml": CLIENTS_DAILY_SCHEMA,
        f"{sql}/telemetry_derived/clients_daily_v6/query.sql": "SELECT 1",
        f"{sql}/search_derived/search_clients_last_seen_v2/metadata.yaml": SEARCH_METADATA,
        f"{sql}/search_derived/search_clients_last_seen_v2/query.py": "print(1)\n",
        f"{sql}/telemetry_live/events_v1/metadata.yaml": EVENTS_METADATA,
        f"{sql}/telemetry/clients_daily/metadata.yaml": VIEW_METADATA,
        f"{sql}/telemetry/clients_daily/view.sql": "CREATE OR REPLACE VIEW x AS SELECT 1",
        f"{sql}/telemetry_derived/ssl_ratios_v1/metadata.yaml": "bigquery: null\n",
        f"{sql}/telemetry_derived/ssl_ratios_v1/query.sql": "SELECT 1",
        f"{sql}/firefox_desktop/newtab/metadata.yaml": ACCESS_ONLY_METADATA,
        f"{sql}/telemetry_derived/broken_v1/metadata.yaml": BROKEN_METADATA,
        f"{sql}/telemetry_derived/broken_v1/query.sql": "SELECT 1",
        f"{sql}/telemetry_derived/weekly_v1/metadata.yaml": WEEKLY_METADATA,
        f"{sql}/telemetry_derived/weekly_v1/query.sql": "SELECT 1",
        "sql/mozfun/hist/extract/metadata.yaml": UDF_METADATA,
        "sql/mozfun/hist/extract/udf.sql": "CREATE FUNCTION hist.extract(x STRING) AS (x)",
        "sql_generators/events_daily/templates/metadata.yaml": TEMPLATE_METADATA,
    }
    for relative, text in files.items():
        _write(tmp_path, relative, text)
    return tmp_path


def test_a_tree_is_read_table_by_table(repository: Path) -> None:
    catalog = read_metadata_tree(repository)

    assert [t.name for t in catalog] == [
        f"{PROD}.search_derived.search_clients_last_seen_v2",
        f"{PROD}.telemetry.clients_daily",
        f"{PROD}.telemetry_derived.clients_daily_v6",
        f"{PROD}.telemetry_derived.ssl_ratios_v1",
        f"{PROD}.telemetry_derived.weekly_v1",
        f"{PROD}.telemetry_live.events_v1",
    ]
    assert catalog.source == f"metadata.yaml files under {repository / 'sql'}"

    daily = catalog.get("telemetry_derived.clients_daily_v6")
    assert daily is not None
    assert daily.kind is TableKind.TABLE
    assert daily.partitioning == Partitioning(
        column="submission_date",
        granularity=PartitionGranularity.DAY,
        require_partition_filter=True,
        expiration_days=775,
    )
    assert daily.clustering == ("normalized_channel", "sample_id")
    assert daily.rows is None and daily.logical_bytes is None

    search = catalog.get("search_clients_last_seen_v2")
    assert search is not None
    assert search.partitioning == Partitioning(
        column="sample_id", granularity=PartitionGranularity.INTEGER_RANGE
    )
    assert search.clustering == ("client_id",)


def test_ingestion_time_partitioning_filters_on_partitiontime(repository: Path) -> None:
    events = read_metadata_tree(repository).get("telemetry_live.events_v1")

    assert events is not None
    assert events.partitioning == Partitioning(column=None, granularity=PartitionGranularity.HOUR)
    assert events.partitioning.pseudo_column == "_PARTITIONTIME"
    assert events.clustering == ()


def test_columns_come_from_schema_yaml_with_standard_types(repository: Path) -> None:
    daily = read_metadata_tree(repository).get("telemetry_derived.clients_daily_v6")

    # The !include-field entry has no name of its own and is not followed.
    assert daily is not None
    assert daily.columns == (
        Column(name="submission_date", type="DATE"),
        Column(name="client_id", type="STRING"),
        Column(name="sample_id", type="INT64"),
        Column(name="normalized_channel", type="STRING"),
        Column(name="experiments", type="ARRAY<STRUCT>"),
        Column(name="active_hours_sum", type="FLOAT64"),
    )


def test_views_routines_and_unknown_layouts(repository: Path) -> None:
    catalog = read_metadata_tree(repository)

    view = catalog.get("telemetry.clients_daily")
    assert view is not None and view.kind is TableKind.VIEW and view.partitioning is None
    # bigquery: null with a query beside it: the table exists, its layout is not stated.
    ssl = catalog.get("ssl_ratios_v1")
    assert ssl is not None and ssl.kind is TableKind.TABLE and ssl.partitioning is None
    # A routine, and a metadata.yaml holding only access grants, are no tables.
    assert catalog.get("hist.extract") is None
    assert catalog.get("firefox_desktop.newtab") is None


def test_a_bad_file_is_a_problem_and_the_rest_is_read(repository: Path) -> None:
    catalog = read_metadata_tree(repository)
    sql = repository / "sql" / PROD / "telemetry_derived"

    broken, weekly = catalog.problems
    # The wording after "not valid YAML:" is the YAML parser's own.
    assert broken.startswith(f"{sql / 'broken_v1' / 'metadata.yaml'}:5: not valid YAML: ")
    assert weekly == (
        f"{sql / 'weekly_v1' / 'metadata.yaml'}: bigquery.time_partitioning.type: "
        "'week' is not one of hour, day, month, year"
    )
    assert catalog.get("broken_v1") is None
    weekly = catalog.get("weekly_v1")
    assert weekly is not None and weekly.partitioning is None


def test_the_root_may_be_a_project_or_a_dataset(repository: Path) -> None:
    project = read_metadata_tree(repository / "sql" / PROD)
    dataset = read_metadata_tree(repository / "sql" / PROD / "telemetry_live")

    assert len(project.tables) == 6
    assert [t.name for t in dataset] == [f"{PROD}.telemetry_live.events_v1"]


def test_load_catalog_reads_a_metadata_tree(repository: Path) -> None:
    catalog = load_catalog(repository)

    assert catalog.source == f"metadata.yaml files under {repository / 'sql'}"
    assert len(catalog.tables) == 6
    assert len(catalog.problems) == 2


def test_a_single_metadata_file_is_read_or_refused(repository: Path) -> None:
    sql = repository / "sql" / PROD / "telemetry_derived"

    one = load_catalog(sql / "clients_daily_v6" / "metadata.yaml")
    assert [t.name for t in one] == [f"{PROD}.telemetry_derived.clients_daily_v6"]

    with pytest.raises(CostlineError, match=r"broken_v1/metadata\.yaml:5: not valid YAML"):
        read_metadata_table(sql / "broken_v1" / "metadata.yaml")
    with pytest.raises(CostlineError, match=r"weekly_v1/metadata\.yaml: bigquery\."):
        load_catalog(sql / "weekly_v1" / "metadata.yaml")


def test_a_saved_tree_catalogue_keeps_the_catalogue_format(repository: Path) -> None:
    catalog = read_metadata_tree(repository / "sql" / PROD / "telemetry_live")
    out = repository / "catalog.json"

    save_catalog(catalog, out)

    assert out.read_text(encoding="utf-8") == textwrap.dedent(
        f"""\
        {{
          "tables": [
            {{
              "name": "{PROD}.telemetry_live.events_v1",
              "columns": [],
              "kind": "table",
              "partitioning": {{
                "granularity": "HOUR",
                "require_partition_filter": false
              }},
              "clustering": [],
              "long_term_bytes": 0,
              "local_scale": 1.0
            }}
          ]
        }}
        """
    )
    assert load_catalog(out).tables == catalog.tables
