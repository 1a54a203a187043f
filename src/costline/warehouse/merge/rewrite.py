"""Rewrite a full-table BigQuery MERGE into an idempotent, partition-scoped script.

A MERGE whose ON clause has no constant partition filter reads (and, in BigQuery, rewrites)
every partition of the target, although a nightly batch touches a few. The rewrite:

1. materialises the source once into a staging table (a table source is used as is);
2. computes the set of partitions the batch touches once, into a script variable
   (``DECLARE affected ARRAY<DATE> DEFAULT (SELECT ARRAY_AGG(DISTINCT ...) FROM staging)``);
3. runs the MERGE with ``T.p IN UNNEST(affected)`` in ON and in every ``WHEN NOT MATCHED BY
   SOURCE`` branch: a constant filter BigQuery prunes partitions on.

It is only equivalent under conditions, which are checked and explained, never assumed: the
partition column is known, ON equates the target's partition column with a source value (so a
source row can only match rows of its own partition), no UPDATE moves a row to another
partition, and a ``BY SOURCE`` branch (whose meaning scoping changes) is scoped only on request.
A check that fails is a refusal: no script is produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from sqlglot import exp

from costline.core.errors import CostlineError
from costline.core.results import Result
from costline.warehouse.catalog import Catalog, PartitionGranularity, TableMeta
from costline.warehouse.sql import is_by_source, merge_scope, read_script
from costline.warehouse.sql import partition_key as sql_partition_key

DIALECT = "bigquery"
AFFECTED = "affected"

# Functions whose value differs between runs: a script using them is not idempotent.
NONDETERMINISTIC: dict[type, str] = {
    exp.CurrentTimestamp: "CURRENT_TIMESTAMP",
    exp.CurrentDate: "CURRENT_DATE",
    exp.CurrentDatetime: "CURRENT_DATETIME",
    exp.CurrentTime: "CURRENT_TIME",
    exp.Rand: "RAND",
    exp.Uuid: "GENERATE_UUID",
}
# Partition column types BigQuery supports, and the array type of their affected set.
PARTITION_TYPES = ("DATE", "TIMESTAMP", "DATETIME", "INT64")


class Strategy(StrEnum):
    """How the affected partitions are rewritten."""

    MERGE = "merge"
    INSERT_OVERWRITE = "insert-overwrite"


class CheckStatus(StrEnum):
    """Outcome of one precondition."""

    PASS = "pass"
    WARN = "warn"
    REFUSE = "refuse"


class Check(BaseModel):
    """One precondition of the rewrite, its outcome and why."""

    model_config = ConfigDict(frozen=True)

    code: str
    status: CheckStatus
    message: str


class PartitionSpec(BaseModel):
    """The target's partitioning as the rewrite needs it: column, type, granularity."""

    model_config = ConfigDict(frozen=True)

    column: str
    type: str
    granularity: PartitionGranularity = PartitionGranularity.DAY
    source: str = "--partition-column"

    @property
    def array_type(self) -> str:
        """BigQuery type of the ``affected`` array's elements."""
        return self.type

    def describe(self) -> str:
        """``as_of_date (DATE, DAY)``."""
        if self.type == "INT64":
            return f"{self.column} (INT64, integer range)"
        return f"{self.column} ({self.type}, {self.granularity.value})"

    def bucket(self, value: exp.Expr) -> exp.Expr:
        """The partition ``value`` falls in: the value itself, or truncated to the granularity.

        DATE columns partitioned by DAY and integer-range columns are compared on the value
        itself (an exact, prunable IN list); coarser time units are truncated.
        """
        unit = exp.var(self.granularity.value)
        if self.type == "DATE":
            if self.granularity is PartitionGranularity.DAY:
                return value
            return exp.DateTrunc(this=value.copy(), unit=unit)  # type: ignore[no-untyped-call]
        if self.type == "TIMESTAMP":
            return exp.TimestampTrunc(this=value.copy(), unit=unit)
        if self.type == "DATETIME":
            return exp.DatetimeTrunc(this=value.copy(), unit=unit)
        return value


def parse_partition_type(text: str) -> tuple[str, PartitionGranularity]:
    """``TYPE[:GRANULARITY]`` (``DATE``, ``TIMESTAMP:HOUR``, ``INT64``) → type and granularity."""
    kind, _, unit = text.upper().partition(":")
    if kind not in PARTITION_TYPES:
        raise CostlineError(
            f"--partition-type {text!r}: the type must be one of {', '.join(PARTITION_TYPES)}"
            " (optionally :HOUR, :DAY, :MONTH or :YEAR for time types)"
        )
    if kind == "INT64":
        return kind, PartitionGranularity.INTEGER_RANGE
    try:
        granularity = PartitionGranularity(unit or "DAY")
    except ValueError:
        raise CostlineError(
            f"--partition-type {text!r}: granularity must be HOUR, DAY, MONTH or YEAR"
        ) from None
    if granularity is PartitionGranularity.INTEGER_RANGE:
        raise CostlineError(f"--partition-type {text!r}: INTEGER_RANGE goes with INT64")
    return kind, granularity


class MergeRewrite(Result):
    """The rewrite of one MERGE: the checks, and the script when none refused."""

    model_config = ConfigDict(frozen=True)

    target: str
    partition: PartitionSpec
    strategy: Strategy
    checks: tuple[Check, ...]
    script: str | None

    @property
    def refused(self) -> bool:
        """True when a precondition failed and no script was produced."""
        return any(c.status is CheckStatus.REFUSE for c in self.checks)

    @property
    def refusals(self) -> tuple[Check, ...]:
        """The checks that refused."""
        return tuple(c for c in self.checks if c.status is CheckStatus.REFUSE)


@dataclass(frozen=True)
class MergeParts:
    """A parsed MERGE, with the names its clauses use for the target and the source."""

    merge: exp.Merge
    target: exp.Table
    target_ref: str
    source: exp.Expr
    source_ref: str
    statements: int = 1
    templated: bool = False
    """The text was a template: its markup was replaced before parsing."""
    unparsed: int = 0
    """Statements of the text that could not be parsed (only the MERGE is rewritten)."""
    comments: tuple[str, ...] = ()
    """The comment lines written right above the MERGE."""

    @property
    def target_name(self) -> str:
        """The target table as written, without alias or quotes: ``proj.ds.t``."""
        return ".".join(p.name for p in self.target.parts)

    @property
    def on(self) -> exp.Expr:
        """The ON condition."""
        on = self.merge.args.get("on")
        assert isinstance(on, exp.Expr)
        return on

    @property
    def whens(self) -> list[exp.When]:
        """The WHEN branches, in order."""
        whens = self.merge.args.get("whens")
        return list(whens.expressions) if whens is not None else []


def parse_merge(sql: str, *, origin: str = "statement") -> MergeParts:
    """The one MERGE of a file (a statement or a whole script, read as ``costline lint`` reads
    it); a :class:`CostlineError` says what is wrong and where."""
    if not sql.strip():
        raise CostlineError(f"{origin}: empty; expected a MERGE statement")
    reading = read_script(sql, DIALECT)
    merges = [s for s in reading.statements if isinstance(s.expr, exp.Merge)]
    if not merges and reading.problems:
        first = reading.problems[0]
        line, col = first.line, first.column
        if line is None:
            line = reading.text.count("\n", 0, first.offset) + 1
            col = first.offset - (reading.text.rfind("\n", 0, first.offset) + 1) + 1
        raise CostlineError(
            f"{origin}:{line}:{col}: cannot parse the SQL (BigQuery): {first.message}"
        )
    if not merges:
        if not reading.statements:
            raise CostlineError(f"{origin}: empty; expected a MERGE statement")
        if len(reading.statements) == 1:
            kind = reading.statements[0].expr.key.upper()
            raise CostlineError(f"{origin}: a {kind} statement, not a MERGE; nothing to rewrite")
        raise CostlineError(
            f"{origin}: none of its {len(reading.statements)} statements is a MERGE"
        )
    if len(merges) > 1:
        raise CostlineError(
            f"{origin}: {len(merges)} MERGE statements; put each in its own file to rewrite it"
        )
    merge = merges[0].expr
    assert isinstance(merge, exp.Merge)
    target = merge.this
    if not isinstance(target, exp.Table):
        raise CostlineError(f"{origin}: the MERGE target is not a table")
    source = merge.args.get("using")
    if source is None or merge.args.get("on") is None:
        raise CostlineError(f"{origin}: the MERGE has no USING ... ON clause")
    source_ref = source.alias_or_name
    if not source_ref:
        raise CostlineError(
            f"{origin}: the USING subquery has no alias; write `USING (...) AS s` so the"
            " conditions can name it"
        )
    return MergeParts(
        merge,
        target,
        target.alias_or_name,
        source,
        source_ref,
        statements=len(reading.statements) + len(reading.skipped),
        templated=reading.templated is not None,
        unparsed=len(reading.problems),
        comments=_leading_comments(reading.text, merges[0].offset),
    )


def _leading_comments(text: str, offset: int) -> tuple[str, ...]:
    """The comment lines right above the MERGE: what its authors wrote about it."""
    lines = text[:offset].rstrip("\n ").splitlines()
    kept: list[str] = []
    for line in reversed(lines):
        stripped = line.strip()
        if stripped.startswith(("--", "#")):
            kept.append(stripped)
        elif stripped:
            break
    return tuple(reversed(kept))


def partition_key(parts: MergeParts, column: str) -> exp.Expr | None:
    """The source expression ON equates with the target's partition column, if any."""
    return sql_partition_key(parts.merge, column)


def _set_column(assignment: exp.Expr) -> str:
    target = assignment.this if isinstance(assignment, exp.EQ) else assignment
    return target.name if isinstance(target, exp.Column) else target.sql(DIALECT)


def _updates(parts: MergeParts) -> list[exp.EQ]:
    out: list[exp.EQ] = []
    for when in parts.whens:
        then = when.args.get("then")
        if isinstance(then, exp.Update):
            out.extend(e for e in then.expressions if isinstance(e, exp.EQ))
    return out


def _insert(parts: MergeParts) -> exp.When | None:
    for when in parts.whens:
        plain = not when.args.get("matched") and not when.args.get("source")
        if plain and isinstance(when.args.get("then"), exp.Insert):
            return when
    return None


def insert_value(parts: MergeParts, column: str) -> exp.Expr | None:
    """The value the INSERT branch writes into ``column`` (``INSERT ROW``: the source's)."""
    when = _insert(parts)
    if when is None:
        return None
    insert = when.args["then"]
    if isinstance(insert.this, exp.Var) and insert.this.name.upper() == "ROW":
        return exp.column(column, table=parts.source_ref)
    names = insert.this.expressions if isinstance(insert.this, exp.Tuple) else []
    values = insert.expression.expressions if isinstance(insert.expression, exp.Tuple) else []
    for name, value in zip(names, values, strict=False):
        if name.name.lower() == column.lower():
            return value  # type: ignore[no-any-return]
    return None


def resolve_partition(
    target: str,
    catalog: Catalog | None,
    *,
    partition_column: str | None = None,
    partition_type: str | None = None,
    catalog_name: str = "the catalogue",
) -> PartitionSpec:
    """The target's partitioning: from the options, else from the catalogue; else an error."""
    meta: TableMeta | None = catalog.get(target) if catalog is not None else None
    if partition_column:
        kind, granularity = "DATE", PartitionGranularity.DAY
        if partition_type:
            kind, granularity = parse_partition_type(partition_type)
        elif meta is not None and (col := meta.column(partition_column)) is not None:
            kind = col.type.upper()
            if meta.partitioning is not None:
                granularity = meta.partitioning.granularity
        return PartitionSpec(
            column=partition_column, type=kind, granularity=granularity, source="options"
        )
    if catalog is None:
        raise CostlineError(
            f"the partition column of {target} is unknown: give --catalog FILE (a catalogue that"
            " lists the table) or --partition-column COLUMN [--partition-type DATE|TIMESTAMP|"
            "DATETIME|INT64]"
        )
    if meta is None:
        raise CostlineError(
            f"table {target} is not in {catalog_name}; add it there, or give"
            " --partition-column COLUMN [--partition-type TYPE]"
        )
    if meta.partitioning is None:
        raise CostlineError(
            f"{meta.name} is not partitioned according to {catalog_name}: there are no"
            " partitions to scope the MERGE to; partition the table first (costline advise), or"
            " give --partition-column if the catalogue is out of date"
        )
    column = meta.partitioning.column
    if column is None:
        raise CostlineError(
            f"{meta.name} is partitioned by ingestion time (_PARTITIONTIME): the source rows do"
            " not carry their partition, so the affected set cannot be computed from them"
        )
    col = meta.column(column)
    if col is None:
        raise CostlineError(
            f"{catalog_name}: {meta.name} is partitioned by {column}, which is not among its"
            " columns; fix the catalogue or give --partition-column/--partition-type"
        )
    kind = col.type.upper()
    if kind not in PARTITION_TYPES:
        raise CostlineError(
            f"{meta.name}.{column} has type {col.type}; BigQuery partitions on"
            f" {', '.join(PARTITION_TYPES)} only"
        )
    return PartitionSpec(
        column=column, type=kind, granularity=meta.partitioning.granularity, source=catalog_name
    )


def _nondeterministic(parts: MergeParts) -> list[str]:
    found: list[str] = []
    for node in parts.merge.walk():
        name = NONDETERMINISTIC.get(type(node))
        if name and name not in found:
            found.append(name)
    return found


def check_merge(
    parts: MergeParts,
    partition: PartitionSpec,
    strategy: Strategy,
    *,
    scope_by_source: bool,
    complete_partitions: bool = False,
) -> list[Check]:
    """Every precondition of the rewrite of ``parts``, with its outcome and explanation."""
    t = parts.target_ref
    checks = [
        Check(
            code="partition-column",
            status=CheckStatus.PASS,
            message=f"{parts.target_name} is partitioned by {partition.describe()}"
            f" (from {partition.source})",
        )
    ]
    if isinstance(parts.source, exp.Table):
        staging = f"the source {parts.source.sql(DIALECT)} is a table: used as is as staging"
    else:
        staging = "the source subquery is materialised once into a temp staging table"
    checks.append(Check(code="staging", status=CheckStatus.PASS, message=staging))
    if parts.templated:
        checks.append(
            Check(
                code="templated",
                status=CheckStatus.WARN,
                message="the input is a template: its placeholders were read as names and"
                " query parameters, and the script shows them that way; put the markup back"
                " (or rewrite the rendered SQL, e.g. `dbt compile`'s output)",
            )
        )
    if parts.unparsed:
        checks.append(
            Check(
                code="unparsed",
                status=CheckStatus.WARN,
                message=f"{parts.unparsed} other statement(s) of the input could not be parsed"
                " (`costline lint` shows where); the MERGE itself parsed",
            )
        )
    if parts.statements > 1:
        checks.append(
            Check(
                code="statements",
                status=CheckStatus.WARN,
                message=f"the input holds {parts.statements} statements: only its MERGE is"
                " rewritten; replace that statement with the script and keep the others",
            )
        )
    if strategy is Strategy.MERGE:
        checks += _merge_checks(parts, partition, scope_by_source)
    else:
        checks += _overwrite_checks(parts, partition, complete_partitions)
    found = _nondeterministic(parts)
    if found:
        checks.append(
            Check(
                code="nondeterministic",
                status=CheckStatus.WARN,
                message=f"the statement calls {', '.join(found)}: staging evaluates the source"
                " once, so both steps see one value, but each run of the script writes"
                " different values: re-running it is not idempotent",
            )
        )
    else:
        checks.append(
            Check(
                code="nondeterministic",
                status=CheckStatus.PASS,
                message="no non-deterministic function (CURRENT_TIMESTAMP, RAND, GENERATE_UUID...)",
            )
        )
    accumulating = [
        _set_column(u)
        for u in _updates(parts)
        if any(c.table.lower() == t.lower() for c in u.expression.find_all(exp.Column))
    ]
    insert = _insert(parts)
    deletes = [
        w
        for w in parts.whens
        if w.args.get("matched") and not isinstance(w.args["then"], exp.Update)
    ]
    if strategy is Strategy.MERGE and accumulating:
        status, message = (
            CheckStatus.WARN,
            f"UPDATE computes {', '.join(accumulating)} from the target's own value: each run"
            " accumulates, so running the script twice differs from once (the original MERGE"
            " behaves the same way)",
        )
    elif strategy is Strategy.MERGE and deletes and insert is not None:
        unconditional = insert.args.get("condition") is None
        status = CheckStatus.WARN if unconditional else CheckStatus.PASS
        message = (
            "a row WHEN MATCHED ... DELETE removes no longer matches on a second run, and the"
            " unconditional INSERT adds it back: running the script twice differs from once"
            " (as with the original MERGE); give the INSERT a condition that excludes deletions"
            if unconditional
            else "running the script twice leaves the table as running it once, provided the"
            " INSERT's condition excludes the rows the DELETE branch removes"
        )
    else:
        status, message = (
            CheckStatus.PASS,
            "running the script twice leaves the table as running it once",
        )
    checks.append(Check(code="idempotent", status=status, message=message))
    return checks


def _merge_checks(parts: MergeParts, partition: PartitionSpec, scope: bool) -> list[Check]:
    col, t = partition.column, parts.target_ref
    checks: list[Check] = []
    key = partition_key(parts, col)
    if key is None:
        checks.append(
            Check(
                code="partition-key",
                status=CheckStatus.REFUSE,
                message=f"ON does not equate {t}.{col} with a source value: a source row may"
                " match a target row in any partition, so the partitions to read cannot be"
                f" computed from the source. If a key never changes partition, add"
                f" `AND {t}.{col} = {parts.source_ref}.{col}` to ON and rerun",
            )
        )
    else:
        checks.append(
            Check(
                code="partition-key",
                status=CheckStatus.PASS,
                message=f"ON equates {t}.{col} with {key.sql(DIALECT)}: a source row only matches"
                " target rows of its own partition, so scoping ON to the affected partitions"
                " changes no match",
            )
        )
    moves = [u for u in _updates(parts) if _set_column(u).lower() == col.lower()]
    moving = [u for u in moves if key is None or u.expression != key]
    if moving:
        checks.append(
            Check(
                code="partition-move",
                status=CheckStatus.REFUSE,
                message=f"UPDATE sets {moving[0].sql(DIALECT)}: a matched row can move to a"
                " partition outside the affected set, where a rerun no longer finds it; the"
                " partition-scoped rewrite is unsafe",
            )
        )
    else:
        why = (
            f"UPDATE sets {col} only to the value ON already equates it with"
            if moves
            else f"no UPDATE sets {col}"
        )
        checks.append(
            Check(
                code="partition-move",
                status=CheckStatus.PASS,
                message=f"{why}: rows stay in their partition",
            )
        )
    by_source = [w for w in parts.whens if is_by_source(w)]
    unscoped = _unscoped_by_source(parts, partition)
    if not by_source:
        checks.append(
            Check(
                code="by-source",
                status=CheckStatus.PASS,
                message="no WHEN NOT MATCHED BY SOURCE branch",
            )
        )
    elif not unscoped:
        conditions = "; ".join(
            str(w.args["condition"].sql(DIALECT)) for w in by_source if w.args.get("condition")
        )
        checks.append(
            Check(
                code="by-source",
                status=CheckStatus.PASS,
                message=f"WHEN NOT MATCHED BY SOURCE already filters {t}.{col} with a constant"
                f" of its own ({conditions}): it visits only those partitions, and the rewrite"
                " leaves it as written",
            )
        )
    elif scope:
        checks.append(
            Check(
                code="by-source",
                status=CheckStatus.WARN,
                message=f"WHEN NOT MATCHED BY SOURCE is scoped to the affected partitions"
                f" (`{t}.{col} IN UNNEST({AFFECTED})`): the original acts on every target row"
                " the source does not match, the whole table; the rewrite only on rows of the"
                " partitions the batch touches. Equivalent only if the source holds the complete"
                " content of those partitions and rows elsewhere must be kept",
            )
        )
    else:
        checks.append(
            Check(
                code="by-source",
                status=CheckStatus.REFUSE,
                message="WHEN NOT MATCHED BY SOURCE acts on every target row the source does not"
                " match, in every partition; scoped to the affected partitions it would leave the"
                " other partitions untouched, which changes its meaning. Pass --scope-by-source"
                " if only the batch's partitions should be affected",
            )
        )
    return checks


def _unscoped_by_source(parts: MergeParts, partition: PartitionSpec) -> list[exp.When]:
    """The BY SOURCE branches without a constant filter of their own on the partition column
    (a parameter, a variable, a literal): each visits every partition of the target."""
    scope = merge_scope(parts.merge, {partition.column.lower()})
    branches = [w for w in parts.whens if is_by_source(w)]
    if scope is None:
        return branches
    return [branches[i] for i in scope.unscoped_by_source]


def _overwrite_checks(
    parts: MergeParts, partition: PartitionSpec, complete_partitions: bool
) -> list[Check]:
    col = partition.column
    checks: list[Check] = []
    if insert_value(parts, col) is None:
        reason = (
            "has no WHEN NOT MATCHED THEN INSERT branch"
            if _insert(parts) is None
            else f"has an INSERT that does not set {col}"
        )
        checks.append(
            Check(
                code="insert-branch",
                status=CheckStatus.REFUSE,
                message=f"the MERGE {reason}: insert-overwrite rewrites the affected partitions"
                " from the INSERT's values, and needs their partition; use --strategy merge",
            )
        )
    else:
        checks.append(
            Check(
                code="insert-branch",
                status=CheckStatus.PASS,
                message=f"the INSERT branch gives each source row's {col}",
            )
        )
    if any(is_by_source(w) for w in parts.whens):
        checks.append(
            Check(
                code="by-source",
                status=CheckStatus.REFUSE,
                message="WHEN NOT MATCHED BY SOURCE acts on partitions outside the batch, which"
                " insert-overwrite never touches; use --strategy merge --scope-by-source",
            )
        )
    what = (
        "insert-overwrite deletes every row of the affected partitions and inserts the source:"
        " valid only when the source holds the complete new content of each partition it"
        " touches. Matched rows take the INSERT's values; the original's UPDATE and DELETE"
        " branches are not carried over"
    )
    if complete_partitions:
        checks.append(
            Check(
                code="complete-partitions",
                status=CheckStatus.WARN,
                message=f"{what}; stated with --complete-partitions",
            )
        )
    else:
        checks.append(
            Check(
                code="complete-partitions",
                status=CheckStatus.REFUSE,
                message=f"{what}. Otherwise it deletes data: pass --complete-partitions to state"
                " that each batch carries whole partitions, or use --strategy merge",
            )
        )
    return checks


def _staging_name(parts: MergeParts) -> str:
    return f"{parts.target.name}_staging"


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def _scoped(parts: MergeParts, partition: PartitionSpec) -> exp.Expr:
    target_col = exp.column(partition.column, table=parts.target_ref)
    return exp.In(
        this=partition.bucket(target_col),
        unnest=exp.Unnest(expressions=[exp.column(AFFECTED)]),
    )


def _and(left: exp.Expr, right: exp.Expr | None) -> exp.Expr:
    if right is None:
        return left
    both: exp.Expr = exp.and_(
        left, exp.paren(right.copy()) if isinstance(right, exp.Or) else right.copy()
    )
    return both


def scoped_merge(parts: MergeParts, partition: PartitionSpec, staging: exp.Expr) -> exp.Merge:
    """The MERGE of ``parts`` against ``staging``, with the affected-partitions filter in ON
    and in every BY SOURCE branch."""
    unscoped = [parts.whens.index(w) for w in _unscoped_by_source(parts, partition)]
    merge = parts.merge.copy()
    merge.set("using", staging)
    merge.set("on", _and(_scoped(parts, partition), parts.on))
    for i, when in enumerate(merge.args["whens"].expressions):
        # A branch that already names its partitions is left as written.
        if i in unscoped:
            when.set("condition", _and(_scoped(parts, partition), when.args.get("condition")))
    return merge


def overwrite_merge(parts: MergeParts, partition: PartitionSpec, staging: exp.Expr) -> exp.Merge:
    """The dbt-style insert-overwrite MERGE: delete the affected partitions, insert the source."""
    insert = _insert(parts)
    assert insert is not None
    delete = exp.When(
        matched=False, source=True, condition=_scoped(parts, partition), then=exp.var("DELETE")
    )
    return exp.Merge(
        this=parts.target.copy(),
        using=staging,
        on=exp.false(),
        whens=exp.Whens(expressions=[delete, insert.copy()]),
    )


def affected_value(parts: MergeParts, partition: PartitionSpec, strategy: Strategy) -> exp.Expr:
    """The source expression whose partition buckets make the affected set."""
    value = (
        partition_key(parts, partition.column)
        if strategy is Strategy.MERGE
        else insert_value(parts, partition.column)
    )
    assert value is not None
    return partition.bucket(value)


def build_script(parts: MergeParts, partition: PartitionSpec, strategy: Strategy) -> str:
    """The BigQuery script of the rewrite (the checks must have passed)."""
    source = parts.source
    header = [
        *parts.comments,
        f"-- costline merge rewrite ({strategy.value}): {parts.target_name},"
        f" partitioned by {partition.describe()}",
    ]
    if isinstance(source, exp.Table):
        staging_ref = source.copy()
        staging_ref.set("alias", exp.TableAlias(this=exp.to_identifier(parts.source_ref)))
        staging_from = staging_ref.copy()
        bare = source.copy()
        bare.set("alias", None)
        stage_sql = [f"-- 1. the source {bare.sql(DIALECT)} is a table: used as is as staging"]
    else:
        name = _staging_name(parts)
        query = source.this if isinstance(source, exp.Subquery) else source
        body = query.sql(DIALECT, pretty=True)
        stage_sql = [
            "-- 1. the source, materialised once",
            f"CREATE OR REPLACE TEMP TABLE {name} AS\n{body};",
        ]
        staging_ref = exp.table_(name, alias=parts.source_ref)
        staging_from = staging_ref.copy()
    value = affected_value(parts, partition, strategy).sql(DIALECT)
    declare = (
        f"DECLARE {AFFECTED} ARRAY<{partition.array_type}> DEFAULT (\n"
        f"  SELECT ARRAY_AGG(DISTINCT {value} IGNORE NULLS)\n"
        f"  FROM {staging_from.sql(DIALECT)}\n);"
    )
    if strategy is Strategy.MERGE:
        merge = scoped_merge(parts, partition, staging_ref)
        what = "-- 3. the MERGE, pruned to those partitions (constant filter)"
    else:
        merge = overwrite_merge(parts, partition, staging_ref)
        what = "-- 3. replace those partitions wholesale with the source"
    # The comments above the MERGE head the script; the ones inside stay where they are.
    merge.comments = None
    merge_sql = merge.sql(DIALECT, pretty=True)
    block = "\n".join(
        [
            "-- 2. the partitions the batch touches, computed once",
            declare,
            what,
            merge_sql + ";",
        ]
    )
    return "\n".join([*header, *stage_sql, "BEGIN", _indent(block), "END;"]) + "\n"


def rewrite_merge(
    sql: str,
    *,
    catalog: Catalog | None = None,
    catalog_name: str = "the catalogue",
    partition_column: str | None = None,
    partition_type: str | None = None,
    strategy: Strategy = Strategy.MERGE,
    scope_by_source: bool = False,
    complete_partitions: bool = False,
    origin: str = "statement",
) -> MergeRewrite:
    """Check and rewrite one MERGE; the result carries the checks and, unless refused, the script.

    Bad input (not a MERGE, unparseable, unknown table, unknown partition column) raises a
    :class:`CostlineError` naming what is missing; a failed precondition is a refusal in the
    result, with ``script`` None.
    """
    strategy = Strategy(strategy)
    parts = parse_merge(sql, origin=origin)
    partition = resolve_partition(
        parts.target_name,
        catalog,
        partition_column=partition_column,
        partition_type=partition_type,
        catalog_name=catalog_name,
    )
    checks = check_merge(
        parts,
        partition,
        strategy,
        scope_by_source=scope_by_source,
        complete_partitions=complete_partitions,
    )
    refused = any(c.status is CheckStatus.REFUSE for c in checks)
    return MergeRewrite(
        target=parts.target_name,
        partition=partition,
        strategy=strategy,
        checks=tuple(checks),
        script=None if refused else build_script(parts, partition, strategy),
    )
