"""The catalogue read from a dbt project: its compiled manifest, or the project's own files.

**A manifest** (``target/manifest.json``, schema versions v7 to v12) holds every node with its
resolved configuration. Models, seeds and snapshots become tables, named by their
``relation_name`` (``project.dataset.table``); tests, analyses, ephemeral and disabled models
make no relation and are left out. Sources become tables too, external when they say so.

**A project without a manifest** (the usual state of a repository: ``target/`` is not
committed) is read from ``dbt_project.yml``, the ``{{ config(...) }}`` calls in the model files
and the ``models:`` entries of the property files, with dbt's precedence: a model file's own
``config()`` over its property file over the folder configs of ``dbt_project.yml``, a folder's
config over its parent's. Nothing is rendered: a value that is not a literal (``var(...)``, an
``env_var`` in a string) is ignored, and when it is one the catalogue reads (materialization,
schema, alias, partitioning, clustering, ``enabled``) it is recorded as a problem. Such a
project names each model ``{project}.{schema}.{alias or model}``: ``project`` is the dbt
project's name, ``schema`` the model's custom schema as written (dbt's generated schema
depends on the target) or ``default``. Queries written with ``{{ ref('model') }}`` find the
model by its last name part. Sources are named ``{database}.{schema}.{identifier}``, the
project's name standing in for a database not written literally. Seeds and snapshots are read
only from a manifest.

From both, a model's partitioning comes from ``partition_by`` (the dict form, or the legacy
string ``"DATE(col)"`` / ``"col"``), with ``require_partition_filter`` and
``partition_expiration_days``; its clustering from ``cluster_by``. Sizes are unknown (None).
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from costline.core.errors import CostlineError, Problem
from costline.warehouse.catalog import (
    MAX_CLUSTERING_COLUMNS,
    Catalog,
    Column,
    PartitionGranularity,
    Partitioning,
    TableKind,
    TableMeta,
    bigquery_type,
    read_json,
    whole_days,
)
from costline.warehouse.catalog_metadata import read_yaml

MANIFEST_VERSIONS = range(7, 13)
"""Manifest schema versions read as documented (dbt 1.3 to 1.8 and later releases on v12)."""

_NODE_TYPES = ("model", "seed", "snapshot")
_KINDS = {
    "view": TableKind.VIEW,
    "table": TableKind.TABLE,
    "incremental": TableKind.TABLE,
    "snapshot": TableKind.TABLE,
    "seed": TableKind.TABLE,
    "materialized_view": TableKind.MATERIALIZED_VIEW,
}
_NO_RELATION = ("ephemeral",)
# The configuration keys the catalogue reads; only for these is a value it cannot use a problem.
_LAYOUT_KEYS = frozenset(
    {
        "enabled",
        "materialized",
        "schema",
        "dataset",
        "alias",
        "partition_by",
        "cluster_by",
        "require_partition_filter",
        "partition_expiration_days",
    }
)
# Mapping-valued configs that a dbt_project.yml may write without "+"; any other mapping under
# a folder is a sub-folder (or a model named by its file).
_MAPPING_CONFIGS = frozenset(
    {
        "partition_by",
        "labels",
        "persist_docs",
        "meta",
        "docs",
        "grants",
        "contract",
        "quoting",
        "column_types",
        "freshness",
        "hours_to_expiration",
    }
)
_TIME_UNITS = {g.value.lower(): g for g in PartitionGranularity if g.value != "INTEGER_RANGE"}
_TIME_TYPES = ("date", "timestamp", "datetime")
_MANIFEST_VERSION = re.compile(r"/manifest/v(\d+)\.json$")
_LEGACY_DATE = re.compile(r"^date\s*\(\s*`?(\w+)`?\s*\)$", re.IGNORECASE)
_LEGACY_COLUMN = re.compile(r"^`?(\w+)`?$")
_INGESTION = frozenset({"_partitiontime", "_partitiondate"})
_JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)
_SQL_CONFIG = re.compile(r"\{\{-?\s*config\s*\(")
_PY_CONFIG = re.compile(r"\bdbt\.config\s*\(")
_LITERAL_NAMES = {"true": True, "false": False, "none": None}


# --------------------------------------------------------------------------------------------
# The manifest


def read_dbt_manifest(path: Path) -> Catalog:
    """The tables of the dbt manifest at ``path`` (``target/manifest.json``).

    A file that is not a readable manifest raises a :class:`CostlineError` naming it (and the
    line, for JSON that does not parse); a node that cannot be used is a problem.
    """
    return manifest_catalog(read_json(path, "dbt manifest"), path)


def manifest_catalog(data: object, path: Path) -> Catalog:
    """The tables of a dbt manifest already parsed from the JSON file at ``path``."""
    if not isinstance(data, Mapping) or not isinstance(data.get("metadata"), Mapping):
        raise CostlineError(f"{path}: metadata: expected a dbt manifest's metadata object")
    problems: list[Problem] = []
    version = str(data["metadata"].get("dbt_schema_version") or "")
    match = _MANIFEST_VERSION.search(version)
    if match is None:
        raise CostlineError(
            f"{path}: metadata.dbt_schema_version: {version!r} is not a dbt manifest schema"
        )
    if int(match.group(1)) not in MANIFEST_VERSIONS:
        problems.append(
            Problem(
                path=str(path),
                field="metadata.dbt_schema_version",
                message=f"manifest v{match.group(1)} is not one of v7-v12; read as v12",
            )
        )
    tables: list[TableMeta] = []
    for section in ("nodes", "sources"):
        nodes = data.get(section, {})
        if not isinstance(nodes, Mapping):
            raise CostlineError(f"{path}: {section}: expected an object of nodes")
        for unique_id, node in nodes.items():
            where = _Where(str(path), f"{section}.{unique_id}", problems)
            if not isinstance(node, Mapping):
                where.problem("expected an object")
                continue
            read = _manifest_node if section == "nodes" else _manifest_source
            table = read(node, where)
            if table is not None:
                tables.append(table)
    return Catalog(
        tables=tuple(tables),
        source=f"dbt manifest {path}",
        problems=tuple(str(p) for p in problems),
    )


@dataclass
class _Where:
    """Where a configuration came from, for the problems found in it."""

    path: str
    field: str
    problems: list[Problem]
    line: int | None = None

    def problem(self, message: str, key: str | None = None) -> None:
        name = f"{self.field}.{key}" if key and self.field else key or self.field or None
        self.problems.append(Problem(path=self.path, line=self.line, field=name, message=message))


def _manifest_node(node: Mapping[str, Any], where: _Where) -> TableMeta | None:
    if node.get("resource_type") not in _NODE_TYPES:
        return None
    config = _mapping(node.get("config"))
    if config.get("enabled") is False:
        return None
    materialized = config.get("materialized") or node.get("resource_type")
    if materialized in _NO_RELATION:
        return None
    name = _relation(node)
    if name is None:
        return None
    return _table(name, _manifest_columns(node), config, str(materialized), where)


def _manifest_source(node: Mapping[str, Any], where: _Where) -> TableMeta | None:
    config = _mapping(node.get("config"))
    if config.get("enabled") is False:
        return None
    name = _relation(node)
    if name is None:
        return None
    return TableMeta(
        name=name,
        columns=_manifest_columns(node),
        kind=TableKind.EXTERNAL if node.get("external") else TableKind.TABLE,
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _relation(node: Mapping[str, Any]) -> str | None:
    """``project.dataset.table`` from ``relation_name``, else database, schema and alias."""
    relation = node.get("relation_name")
    if isinstance(relation, str) and relation:
        quoted = re.findall(r"`([^`]*)`", relation)
        parts = quoted or [p.strip('"') for p in relation.split(".")]
        return ".".join(parts)
    ident = node.get("alias") or node.get("identifier") or node.get("name")
    parts = [node.get("database"), node.get("schema"), ident]
    if not all(isinstance(p, str) and p for p in parts):
        return None
    return ".".join(str(p) for p in parts)


def _manifest_columns(node: Mapping[str, Any]) -> tuple[Column, ...]:
    columns = node.get("columns")
    if not isinstance(columns, Mapping):
        return ()
    return tuple(
        Column(
            name=str(c.get("name") or key), type=bigquery_type(str(c.get("data_type") or "UNKNOWN"))
        )
        for key, c in columns.items()
        if isinstance(c, Mapping)
    )


# --------------------------------------------------------------------------------------------
# Configuration shared by both readers


def _table(
    name: str,
    columns: tuple[Column, ...],
    config: Mapping[str, Any],
    materialized: str,
    where: _Where,
) -> TableMeta:
    kind = _KINDS.get(materialized)
    if kind is None:
        where.problem(f"materialization {materialized!r} is not known; read as a table", "config")
        kind = TableKind.TABLE
    if kind is TableKind.VIEW:  # dbt ignores partition_by and cluster_by on a view
        return TableMeta(name=name, columns=columns, kind=kind)
    return TableMeta(
        name=name,
        columns=columns,
        kind=kind,
        partitioning=_partitioning(config, where),
        clustering=_clustering(config.get("cluster_by"), where),
    )


def _partitioning(config: Mapping[str, Any], where: _Where) -> Partitioning | None:
    """``partition_by`` with the two table options that go with it, or None."""
    value = config.get("partition_by")
    if value is None:
        return None
    if isinstance(value, str):
        key = _legacy_partition_key(value, where)
    elif isinstance(value, Mapping):
        key = _partition_key(value, where)
    else:
        where.problem("expected a mapping or a column name", "config.partition_by")
        key = None
    if key is None:
        return None
    column, grain = key
    return Partitioning(
        column=column,
        granularity=grain,
        require_partition_filter=config.get("require_partition_filter") is True,
        expiration_days=_expiration(config.get("partition_expiration_days"), where),
    )


def _partition_key(
    value: Mapping[str, Any], where: _Where
) -> tuple[str | None, PartitionGranularity] | None:
    """Column (None: ingestion time) and granularity of the dict form of ``partition_by``."""
    key = "config.partition_by"
    column = value.get("field")
    if not isinstance(column, str) or not column:
        where.problem("expected a 'field' naming the partition column", key)
        return None
    data_type = str(value.get("data_type") or "date").lower()
    if data_type == "int64":
        bounds = value.get("range")
        if not isinstance(bounds, Mapping) or not {"start", "end", "interval"} <= set(bounds):
            where.problem("int64 partitioning needs a range with start, end, interval", key)
            return None
        return column, PartitionGranularity.INTEGER_RANGE
    if data_type not in _TIME_TYPES:
        where.problem(f"data_type {data_type!r} is not date, timestamp, datetime or int64", key)
        return None
    unit = str(value.get("granularity") or "day").lower()
    if unit not in _TIME_UNITS or (data_type == "date" and unit == "hour"):
        where.problem(f"granularity {unit!r} does not apply to a {data_type} column", key)
        return None
    if value.get("time_ingestion_partitioning") is True:
        return None, _TIME_UNITS[unit]  # the field's value goes to _PARTITIONTIME, not a column
    return column, _TIME_UNITS[unit]


def _legacy_partition_key(
    value: str, where: _Where
) -> tuple[str | None, PartitionGranularity] | None:
    """The string form dbt took before 0.16: ``"DATE(col)"``, ``"col"``, ``_PARTITIONTIME``."""
    text = value.strip()
    match = _LEGACY_DATE.match(text) or _LEGACY_COLUMN.match(text)
    if match is None:
        where.problem(f"{value!r} is not a column or DATE(column)", "config.partition_by")
        return None
    column = match.group(1)
    return (None if column.lower() in _INGESTION else column), PartitionGranularity.DAY


def _expiration(value: object, where: _Where) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        where.problem(
            f"{value!r} is not a positive number of days", "config.partition_expiration_days"
        )
        return None
    return whole_days(value)


def _clustering(value: object, where: _Where) -> tuple[str, ...]:
    if value is None:
        return ()
    columns = [value] if isinstance(value, str) else value
    if not isinstance(columns, list | tuple) or not all(isinstance(c, str) for c in columns):
        where.problem("expected a column name or a list of them", "config.cluster_by")
        return ()
    if len(columns) > MAX_CLUSTERING_COLUMNS:
        where.problem(
            f"{len(columns)} clustering columns; BigQuery allows {MAX_CLUSTERING_COLUMNS}",
            "config.cluster_by",
        )
    return tuple(columns)


# --------------------------------------------------------------------------------------------
# A project without a manifest


@dataclass
class _Model:
    """One model file and the configuration gathered for it, in rising precedence."""

    name: str
    path: Path
    fqn: tuple[str, ...]
    config: dict[str, Any] = field(default_factory=dict)
    columns: tuple[Column, ...] = ()


def read_dbt_project(root: Path) -> Catalog:
    """The models and sources of the dbt project in ``root``, read without compiling it.

    ``dbt_project.yml`` must be readable and name the project (else a :class:`CostlineError`);
    any other file that cannot be used, and any configuration value the catalogue needs that
    is not a literal, is a problem, and the rest is read.
    """
    project_file = root / "dbt_project.yml"
    data = read_yaml(project_file)
    if isinstance(data, Problem):
        raise CostlineError(str(data))
    if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
        raise CostlineError(f"{project_file}: name: expected the project's name")
    project = data["name"]
    problems: list[Problem] = []
    tree = _mapping(data.get("models"))
    paths = data.get("model-paths") or data.get("source-paths") or ["models"]
    model_dirs = [root / str(p) for p in paths if (root / str(p)).is_dir()]

    models: dict[str, _Model] = {}
    for directory in model_dirs:
        for path in _files(directory, (".sql", ".py")):
            name = path.stem
            if name in models:
                first = models[name].path
                problems.append(
                    Problem(path=str(path), message=f"a second model {name!r} (first: {first})")
                )
                continue
            fqn = (project, *path.relative_to(directory).parent.parts, name)
            model = _Model(name=name, path=path, fqn=fqn)
            where = _Where(str(project_file), "models", problems)
            model.config.update(_folder_config(tree, fqn, where))
            models[name] = model

    sources: list[TableMeta] = []
    for directory in model_dirs:
        for path in _files(directory, (".yml", ".yaml")):
            _read_properties(path, project, models, sources, problems)

    tables = []
    for model in models.values():
        where = _Where(str(model.path), "", problems)
        model.config.update(_file_config(model.path, where))
        table = _project_table(project, model, where)
        if table is not None:
            tables.append(table)
    return Catalog(
        tables=(*tables, *sources),
        source=f"dbt project {root}",
        problems=tuple(dict.fromkeys(str(p) for p in problems)),
    )


def _files(directory: Path, suffixes: tuple[str, ...]) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(suffixes):
                yield Path(dirpath) / name


def _project_table(project: str, model: _Model, where: _Where) -> TableMeta | None:
    config = model.config
    if config.get("enabled") is False:
        return None
    default = "table" if model.path.suffix == ".py" else "view"
    materialized = str(config.get("materialized") or default)
    if materialized in _NO_RELATION:
        return None
    schema = config.get("schema") or config.get("dataset") or "default"
    alias = config.get("alias") or model.name
    name = f"{project}.{schema}.{alias}"
    return _table(name, model.columns, config, materialized, where)


def _folder_config(tree: Mapping[str, Any], fqn: tuple[str, ...], where: _Where) -> dict[str, Any]:
    """The ``models:`` configs of dbt_project.yml that apply to ``fqn``, parent first."""
    # Directly under models: only "+" keys are configs (the other keys name packages).
    config = _own_config(tree, where, "models", plus_only=True)
    node: object = tree
    trail = "models"
    for part in fqn:
        node = node.get(part) if isinstance(node, Mapping) else None
        if not isinstance(node, Mapping):
            break
        trail = f"{trail}.{part}"
        config.update(_own_config(node, where, trail, plus_only=False))
    return config


def _own_config(
    node: Mapping[str, Any], where: _Where, trail: str, *, plus_only: bool
) -> dict[str, Any]:
    config = {}
    for key, value in node.items():
        key = str(key)
        if key.startswith("+"):
            name = key[1:]
        elif plus_only or (isinstance(value, Mapping) and key not in _MAPPING_CONFIGS):
            continue
        else:
            name = key
        if _usable(name, value, _Where(where.path, trail, where.problems), key):
            config[name] = value
    return config


def _usable(name: str, value: object, where: _Where, written: str | None = None) -> bool:
    """Whether a config value is a literal (a Jinja string for a key read here is a problem)."""
    if not _has_jinja(value):
        return True
    if name in _LAYOUT_KEYS:
        where.problem("a Jinja expression, not a literal; ignored", written or name)
    return False


def _has_jinja(value: object) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(_has_jinja(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_jinja(v) for v in value)
    return False


def _read_properties(
    path: Path,
    project: str,
    models: Mapping[str, _Model],
    sources: list[TableMeta],
    problems: list[Problem],
) -> None:
    """Add a property file's ``models:`` configs and columns, and its ``sources:`` tables."""
    data = read_yaml(path)
    if isinstance(data, Problem):
        problems.append(data)
        return
    if not isinstance(data, Mapping):
        return  # an empty file, or one that is no property file
    for key in ("models", "sources"):
        if not isinstance(data.get(key) or [], list):
            problems.append(Problem(path=str(path), field=key, message="expected a list"))
            return
    for i, entry in enumerate(data.get("models") or ()):
        where = _Where(str(path), f"models[{i}]", problems)
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            where.problem("expected a model entry with a name")
            continue
        model = models.get(entry["name"])
        if model is None:
            where.problem(f"no model file for {entry['name']!r}")
            continue
        config = entry.get("config")
        if isinstance(config, Mapping):
            model.config.update(
                {k: v for k, v in config.items() if _usable(k, v, where, f"config.{k}")}
            )
        columns = _property_columns(entry.get("columns"))
        if columns:
            model.columns = columns
    for i, entry in enumerate(data.get("sources") or ()):
        if isinstance(entry, Mapping):
            sources.extend(
                _property_sources(entry, project, _Where(str(path), f"sources[{i}]", problems))
            )


def _property_columns(value: object) -> tuple[Column, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(
        Column(name=c["name"], type=bigquery_type(str(c.get("data_type") or "UNKNOWN")))
        for c in value
        if isinstance(c, Mapping) and isinstance(c.get("name"), str)
    )


def _property_sources(entry: Mapping[str, Any], project: str, where: _Where) -> list[TableMeta]:
    """The tables of one ``sources:`` entry; a database not written literally is the project."""
    source_name = entry.get("name")
    if not isinstance(source_name, str):
        where.problem("expected a source entry with a name")
        return []
    database = (
        _literal_name(entry.get("database")) or _literal_name(entry.get("project")) or project
    )
    schema = (
        _literal_name(entry.get("schema")) or _literal_name(entry.get("dataset")) or source_name
    )
    out = []
    tables = entry.get("tables") or []
    if not isinstance(tables, list):
        where.problem("expected a list", "tables")
        return []
    for table in tables:
        if not isinstance(table, Mapping) or not isinstance(table.get("name"), str):
            continue
        config = table.get("config")
        if isinstance(config, Mapping) and config.get("enabled") is False:
            continue
        ident = _literal_name(table.get("identifier")) or table["name"]
        out.append(
            TableMeta(
                name=f"{database}.{schema}.{ident}",
                columns=_property_columns(table.get("columns")),
                kind=TableKind.EXTERNAL if table.get("external") else TableKind.TABLE,
            )
        )
    return out


def _literal_name(value: object) -> str | None:
    return value if isinstance(value, str) and value and not _has_jinja(value) else None


def _file_config(path: Path, where: _Where) -> dict[str, Any]:
    """The keyword arguments of the ``config(...)`` calls in a model file, merged in order."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        where.problem(f"cannot read: {getattr(exc, 'strerror', None) or exc}")
        return {}
    if path.suffix == ".py":
        calls = _PY_CONFIG
    else:
        # Keep the line count so that lines still point into the file.
        text = _JINJA_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        calls = _SQL_CONFIG
    config: dict[str, Any] = {}
    for match in calls.finditer(text):
        start = match.end() - 1  # the opening parenthesis
        line = text.count("\n", 0, start) + 1
        end = _closing(text, start)
        call_where = _Where(where.path, "", where.problems, line)
        if end is None:
            call_where.problem("config( is never closed")
            continue
        config.update(_call_config(text[start : end + 1], call_where))
    return config


def _closing(text: str, start: int) -> int | None:
    """Index of the parenthesis closing the one at ``start``, skipping quoted strings."""
    depth = 0
    quote = ""
    i = start
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


class _JinjaLiterals(ast.NodeTransformer):
    """Jinja writes ``true``, ``false`` and ``none``; Python's literal reader knows capitals."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        key = node.id.lower()
        if key in _LITERAL_NAMES:
            return ast.copy_location(ast.Constant(_LITERAL_NAMES[key]), node)
        return node


def _call_config(arguments: str, where: _Where) -> dict[str, Any]:
    """The literal arguments of ``(...)``; a non-literal for a key read here is a problem."""
    try:
        call = ast.parse(f"config{arguments}", mode="eval").body
    except SyntaxError as exc:
        line = (where.line or 1) + (exc.lineno or 1) - 1
        _Where(where.path, "", where.problems, line).problem(
            f"config(...) is not a literal call: {exc.msg}"
        )
        return {}
    if not isinstance(call, ast.Call):
        return {}
    call = _JinjaLiterals().visit(call)
    config: dict[str, Any] = {}
    base = where.line or 1
    for arg in call.args:  # config({'materialized': 'table'}) is accepted by dbt too
        try:
            value = _literal(arg)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            _Where(where.path, "", where.problems, base + arg.lineno - 1).problem(
                "a positional argument that is not a literal mapping is not read"
            )
            continue
        config.update({k: v for k, v in value.items() if _usable(str(k), v, where)})
    for keyword in call.keywords:
        here = _Where(where.path, "", where.problems, base + keyword.value.lineno - 1)
        if keyword.arg is None:
            here.problem("**arguments are not read")
            continue
        try:
            config[keyword.arg] = _literal(keyword.value)
        except ValueError:
            if keyword.arg in _LAYOUT_KEYS:
                snippet = ast.unparse(keyword.value)
                snippet = snippet if len(snippet) <= 60 else snippet[:57] + "..."
                here.problem(f"{keyword.arg}={snippet} is not a literal; ignored")
            continue
        if not _usable(keyword.arg, config[keyword.arg], here):
            del config[keyword.arg]
    return config


def _literal(node: ast.expr) -> Any:
    """The value of a literal expression; ValueError for anything else (calls, names, ``~``)."""
    try:
        return ast.literal_eval(node)
    except (TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ValueError(str(exc)) from None
