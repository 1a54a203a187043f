"""The catalogue read from ``metadata.yaml`` files beside the SQL, as BigQuery ETL trees keep it.

One directory per table, named by its place in the tree::

    sql/<project>/<dataset>/<table>/metadata.yaml   the table's layout (a ``bigquery:`` block)
                                    schema.yaml     its columns (``fields:``)
                                    query.sql       how it is built (or view.sql for a view)

The ``bigquery:`` block holds ``time_partitioning`` (``type``, ``field`` — none for ingestion
time —, ``require_partition_filter``, ``expiration_days``), ``range_partitioning`` (``field``,
``range``) and ``clustering`` (``fields``). The files use custom tags
(``!include-field-description`` and the like) that a build step expands; here every tag's value
is read as plain data, so a description or a field list included from elsewhere is not followed.

Which directories become tables:

- a ``bigquery:`` block that is a mapping: the table, with the layout it states;
- no ``bigquery:`` block (or ``bigquery: null``): the layout is unknown, so the table is kept,
  unpartitioned, only when something else says it exists — a ``schema.yaml`` or a file that
  builds it (``query.sql``, ``view.sql``, a ``data.csv``, ...). A ``metadata.yaml`` alone
  (access grants for a table generated elsewhere) is skipped;
- a routine's directory (``udf.sql``, ``udf.js``, ``stored_procedure.sql``) is not a table.

Sizes are unknown (None): the files describe layout, not bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from costline.core.errors import CostlineError, Problem
from costline.warehouse.catalog import (
    Catalog,
    Column,
    PartitionGranularity,
    Partitioning,
    TableKind,
    TableMeta,
    bigquery_type,
    whole_days,
)

_ROUTINE_FILES = ("udf.sql", "udf.js", "stored_procedure.sql")
_BUILD_FILES = (
    "query.sql",
    "query.py",
    "script.sql",
    "init.sql",
    "view.sql",
    "materialized_view.sql",
    "data.csv",  # the table's rows, loaded as they are
)
_TIME_UNITS = {g.value.lower(): g for g in PartitionGranularity if g.value != "INTEGER_RANGE"}


# The C loader is several times faster on a tree of thousands of files; the pure-Python one
# reads the same documents where PyYAML was built without libyaml.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class TolerantLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """A safe YAML loader that reads a node carrying any unknown tag as the plain data under it."""


def _plain(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


# The empty prefix matches every tag that has no constructor of its own, so only plain data
# (mappings, lists, strings, numbers) is ever built, whatever the file says.
TolerantLoader.add_multi_constructor("", _plain)


def read_yaml(path: Path) -> object | Problem:
    """The YAML document in ``path``, or a :class:`Problem` naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return Problem(path=str(path), message=f"cannot read: {exc.strerror}")
    except UnicodeDecodeError:
        return Problem(path=str(path), message="not UTF-8 text")
    try:
        data: object = yaml.load(text, Loader=TolerantLoader)  # a SafeLoader: plain data only
        return data
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return Problem(path=str(path), line=line, message=f"not valid YAML: {what}")


def read_metadata_tree(root: Path) -> Catalog:
    """Every table described by a ``metadata.yaml`` below ``root``.

    ``root`` may be a repository (whose ``sql/`` directory is then read, leaving templates and
    test fixtures elsewhere aside), its ``sql/`` directory, a project, a dataset or a table
    directory. A table is named by the three directories above its ``metadata.yaml``. A file
    that cannot be used is one of the catalogue's ``problems``; the rest is read.
    """
    base = root / "sql" if _has_metadata(root / "sql") else root
    tables: list[TableMeta] = []
    problems: list[Problem] = []
    for path in sorted(_metadata_files(base)):
        table = _table(path, problems)
        if table is not None:
            tables.append(table)
    return Catalog(
        tables=tuple(tables),
        source=f"metadata.yaml files under {base}",
        problems=tuple(str(p) for p in problems),
    )


def read_metadata_table(path: Path) -> Catalog:
    """The one table described by the ``metadata.yaml`` at ``path``.

    Named on its own, a file that cannot be used stops the read: a :class:`CostlineError`
    names the file, the line where YAML gives one, and the entry.
    """
    problems: list[Problem] = []
    table = _table(path, problems)
    if problems:
        raise CostlineError(str(problems[0]))
    return Catalog(
        tables=(table,) if table is not None else (),
        source=f"metadata.yaml {path}",
    )


def _has_metadata(directory: Path) -> bool:
    return directory.is_dir() and next(_metadata_files(directory), None) is not None


def _metadata_files(base: Path) -> Iterator[Path]:
    # os.walk with sorted names: Path.rglob also descends into hidden directories (.git).
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if "metadata.yaml" in filenames:
            yield Path(dirpath) / "metadata.yaml"


def _table(path: Path, problems: list[Problem]) -> TableMeta | None:
    """The table of one ``metadata.yaml``, or None when it is no table (problems appended)."""
    directory = path.parent
    files = {p.name for p in directory.iterdir()}
    if any(name in files for name in _ROUTINE_FILES):
        return None
    parts = directory.absolute().parts
    if len(parts) < 4:  # the first part is the filesystem root
        problems.append(Problem(path=str(path), message="not inside <project>/<dataset>/<table>"))
        return None
    data = read_yaml(path)
    if isinstance(data, Problem):
        problems.append(data)
        return None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        problems.append(Problem(path=str(path), message="expected a mapping of keys"))
        return None
    block = data.get("bigquery")
    columns = _columns(directory / "schema.yaml", problems) if "schema.yaml" in files else ()
    if not isinstance(block, Mapping):
        if block is not None:
            problems.append(Problem(path=str(path), field="bigquery", message="expected a mapping"))
        if "schema.yaml" not in files and not any(name in files for name in _BUILD_FILES):
            return None
        block = {}
    partitioning = _partitioning(block, path, problems)
    clustering = _clustering(block.get("clustering"), path, problems)
    return TableMeta(
        name=".".join(parts[-3:]),
        columns=columns,
        kind=_kind(files),
        partitioning=partitioning,
        clustering=clustering,
    )


def _kind(files: set[str]) -> TableKind:
    if "materialized_view.sql" in files:
        return TableKind.MATERIALIZED_VIEW
    builds_table = {"query.sql", "query.py", "script.sql"} & files
    if "view.sql" in files and not builds_table:
        return TableKind.VIEW
    return TableKind.TABLE


def _partitioning(
    block: Mapping[str, Any], path: Path, problems: list[Problem]
) -> Partitioning | None:
    time_part = block.get("time_partitioning")
    range_part = block.get("range_partitioning")
    if time_part is not None and range_part is not None:
        problems.append(
            Problem(
                path=str(path),
                field="bigquery",
                message="both time_partitioning and range_partitioning; time_partitioning used",
            )
        )
    if time_part is not None:
        return _time_partitioning(time_part, path, problems)
    if range_part is not None:
        return _range_partitioning(range_part, path, problems)
    return None


def _time_partitioning(value: object, path: Path, problems: list[Problem]) -> Partitioning | None:
    where = "bigquery.time_partitioning"
    if not isinstance(value, Mapping):
        problems.append(Problem(path=str(path), field=where, message="expected a mapping"))
        return None
    unit = str(value.get("type") or "day").lower()
    if unit not in _TIME_UNITS:
        problems.append(
            Problem(
                path=str(path),
                field=f"{where}.type",
                message=f"{value.get('type')!r} is not one of hour, day, month, year",
            )
        )
        return None
    field = value.get("field")
    if field is not None and not isinstance(field, str):
        problems.append(Problem(path=str(path), field=f"{where}.field", message="expected a name"))
        return None
    return Partitioning(
        column=field or None,
        granularity=_TIME_UNITS[unit],
        require_partition_filter=value.get("require_partition_filter") is True,
        expiration_days=_expiration_days(value.get("expiration_days"), path, where, problems),
    )


def _expiration_days(value: object, path: Path, where: str, problems: list[Problem]) -> int | None:
    """Whole days (at least one) from a number of days that may be fractional, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        problems.append(
            Problem(
                path=str(path),
                field=f"{where}.expiration_days",
                message=f"{value!r} is not a positive number of days",
            )
        )
        return None
    return whole_days(value)


def _range_partitioning(value: object, path: Path, problems: list[Problem]) -> Partitioning | None:
    where = "bigquery.range_partitioning"
    field = value.get("field") if isinstance(value, Mapping) else None
    if not isinstance(field, str) or not field:
        problems.append(
            Problem(path=str(path), field=f"{where}.field", message="expected a column name")
        )
        return None
    return Partitioning(column=field, granularity=PartitionGranularity.INTEGER_RANGE)


def _clustering(value: object, path: Path, problems: list[Problem]) -> tuple[str, ...]:
    if value is None:
        return ()
    fields = value.get("fields") if isinstance(value, Mapping) else None
    if fields is None:
        return ()
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        problems.append(
            Problem(
                path=str(path),
                field="bigquery.clustering.fields",
                message="expected a list of column names",
            )
        )
        return ()
    return tuple(fields)


def _columns(path: Path, problems: list[Problem]) -> tuple[Column, ...]:
    """Top-level columns of a ``schema.yaml``; nested RECORD fields stay inside their STRUCT."""
    data = read_yaml(path)
    if isinstance(data, Problem):
        problems.append(data)
        return ()
    fields = data.get("fields") if isinstance(data, Mapping) else None
    if not isinstance(fields, list):
        # Absent, or a field list included from another table's schema, which is not followed.
        return ()
    columns = []
    for field in fields:
        # Entries without a name are references (!include-field) to another schema's fields.
        if not isinstance(field, Mapping) or not isinstance(field.get("name"), str):
            continue
        type_ = bigquery_type(str(field.get("type") or "UNKNOWN"))
        if str(field.get("mode") or "").upper() == "REPEATED":
            type_ = f"ARRAY<{type_}>"
        columns.append(Column(name=field["name"], type=type_))
    return tuple(columns)
