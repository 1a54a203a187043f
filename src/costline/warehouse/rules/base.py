"""What every lint rule shares: the rule protocol, the parsed script it reads, and the SQL
questions several rules ask (which table does this column belong to, is this predicate a
constant filter on that column, ...).

A rule never parses: the engine (:mod:`costline.warehouse.lint`) parses each statement once and
walks its tree once, indexing the nodes by type; rules look up the node types they care about.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from sqlglot import exp
from sqlglot.tokenizer_core import Token

from costline.warehouse.catalog import Catalog, TableMeta

GOOGLE = "bigquery-antipattern-recognition"


class Severity(StrEnum):
    """How bad a finding is; ``--fail-on`` compares against this order."""

    info = "info"
    warning = "warning"
    error = "error"

    @property
    def rank(self) -> int:
        """0 for info, 1 for warning, 2 for error."""
        return _RANK[self]


_RANK = {Severity.info: 0, Severity.warning: 1, Severity.error: 2}


@dataclass(frozen=True)
class Violation:
    """What a rule reports; the engine adds the file, position and the rule's metadata."""

    node: exp.Expr | None
    message: str
    fix: str | None = None
    """How to fix it; ``{path}`` stands for the file linted."""
    severity: Severity | None = None
    """Overrides the rule's severity (a finding reported as only "possible" is milder)."""
    keyword: str | None = None
    """Report at this keyword (``ORDER``) rather than at the node's first word: the ``nth``
    occurrence in the statement, or else the last one before the node."""
    nth: int | None = None


@dataclass
class Statement:
    """One parsed statement, its nodes indexed by type from a single walk of the tree."""

    expr: exp.Expr
    offset: int
    """Character offset of the statement's first token in the file."""
    loop_depth: int = 0
    """How many scripting loops (LOOP, WHILE, REPEAT, FOR) enclose the statement."""
    tokens: Sequence[Token] = ()
    """The statement's tokens (positions of keywords the tree does not keep)."""
    nodes: dict[type[exp.Expr], list[exp.Expr]] = field(default_factory=dict)
    cache: dict[str, object] = field(default_factory=dict)
    """Analyses several rules share (see :mod:`costline.warehouse.rules.scans`)."""

    def __post_init__(self) -> None:
        index = self.nodes
        for node in self.expr.walk():
            kind = type(node)
            bucket = index.get(kind)
            if bucket is None:
                index[kind] = [node]
            else:
                bucket.append(node)

    def all(self, *kinds: type[exp.Expr]) -> list[exp.Expr]:
        """Every node of the given exact types, in walk order."""
        if len(kinds) == 1:
            return self.nodes.get(kinds[0], [])
        out: list[exp.Expr] = []
        for kind in kinds:
            out.extend(self.nodes.get(kind, ()))
        return out

    def cte_names(self) -> set[str]:
        """Lower-case names of the CTEs the statement defines."""
        names = self.cache.get("ctes")
        if names is None:
            names = self.cache["ctes"] = {c.alias_or_name.lower() for c in self.all(exp.CTE)}
        return names  # type: ignore[return-value]


@dataclass
class Script:
    """A file (or one query text of a history): its statements, and the catalogue if any."""

    path: str
    sql: str
    statements: list[Statement]
    catalog: Catalog | None = None


class Rule:
    """One lint rule. Subclasses set the class attributes and override a ``check`` method; the
    docstring is the rule's documentation (see :func:`rule_doc`)."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity]
    summary: ClassVar[str]
    equivalents: ClassVar[tuple[str, ...]] = ()
    needs_catalog: ClassVar[bool] = False

    def check(self, script: Script) -> Iterator[Violation]:
        """Every violation in ``script``; by default, statement by statement."""
        for stmt in script.statements:
            yield from self.check_statement(stmt, script.catalog)

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        """Violations in one statement."""
        return ()


# --------------------------------------------------------------------------------------------
# Names and tables
# --------------------------------------------------------------------------------------------


def table_name(table: exp.Table) -> str:
    """``project.dataset.table`` as written, without quotes."""
    return ".".join(p.name for p in table.parts)


_LOOKUPS: dict[int, tuple[Catalog, dict[str, TableMeta | None]]] = {}


def lookup(table: exp.Table, catalog: Catalog | None) -> TableMeta | None:
    """The catalogue entry of a table reference (None for CTEs, UNNEST, unknown tables)."""
    if catalog is None or not table.name:
        return None
    # Linting thousands of statements asks for the same few names over and over.
    entry = _LOOKUPS.get(id(catalog))
    if entry is None or entry[0] is not catalog:
        if len(_LOOKUPS) > 8:
            _LOOKUPS.clear()
        entry = _LOOKUPS[id(catalog)] = (catalog, {})
    name = table_name(table)
    found = entry[1].get(name, _MISSING)
    if found is _MISSING:
        found = entry[1][name] = catalog.get(name)
    return found  # type: ignore[return-value]


_MISSING = object()


def is_physical(table: exp.Table, ctes: set[str]) -> bool:
    """A reference to a stored table, not a CTE, UNNEST or table function."""
    if not isinstance(table.this, exp.Identifier):
        return False
    return bool(table.args.get("db")) or table.name.lower() not in ctes


def alias_of(table: exp.Table) -> str:
    """The name a query uses for the table: its alias, else its own name (lower case)."""
    return (table.alias or table.name).lower()


def select_sources(select: exp.Expr) -> list[exp.Expr]:
    """The FROM and JOIN sources of one SELECT (not of nested queries)."""
    sources: list[exp.Expr] = []
    from_ = select.args.get("from_")
    if from_ is not None and from_.this is not None:
        sources.append(from_.this)
    for join in select.args.get("joins") or ():
        sources.append(join.this)
    return sources


def scope_tables(select: exp.Expr) -> dict[str, exp.Table]:
    """Alias → table reference for the stored tables a SELECT reads directly."""
    return {alias_of(t): t for t in select_sources(select) if isinstance(t, exp.Table)}


def enclosing_select(node: exp.Expr) -> exp.Select | None:
    """The nearest SELECT above ``node``."""
    parent = node.parent
    while parent is not None and not isinstance(parent, exp.Select):
        parent = parent.parent
    return parent


def column_table(
    column: exp.Column, tables: dict[str, exp.Table], catalog: Catalog | None
) -> exp.Table | None:
    """Which of ``tables`` (alias → table) a column belongs to, when that can be known."""
    qualifier = column.table.lower()
    if qualifier:
        return tables.get(qualifier)
    if len(tables) == 1:
        return next(iter(tables.values()))
    if catalog is None:
        return None
    owners = [t for t in tables.values() if (m := lookup(t, catalog)) and m.column(column.name)]
    return owners[0] if len(owners) == 1 else None


# --------------------------------------------------------------------------------------------
# Predicates
# --------------------------------------------------------------------------------------------

_COMPARISONS = (exp.EQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ)
ColumnTest = Callable[[exp.Column], bool]


def conjuncts(condition: exp.Expr | None) -> list[exp.Expr]:
    """``a AND (b AND c)`` → ``[a, b, c]`` (parentheses removed)."""
    if condition is None:
        return []
    out: list[exp.Expr] = []
    stack = [condition]
    while stack:
        node = stack.pop()
        if isinstance(node, exp.Paren):
            stack.append(node.this)
        elif isinstance(node, exp.And):
            stack.append(node.expression)
            stack.append(node.this)
        else:
            out.append(node)
    return out


def has_subquery(node: exp.Expr) -> bool:
    """Whether ``node`` contains a query (scalar subquery, IN subquery, EXISTS)."""
    return isinstance(node, exp.Query | exp.Subquery) or node.find(exp.Query) is not None


def is_constant(node: exp.Expr) -> bool:
    """A value known before the query runs: literals, parameters, functions of those."""
    if isinstance(node, exp.Literal):
        return True
    return node.find(exp.Column, exp.Query) is None


def bare_column(node: exp.Expr) -> exp.Column | None:
    """``node`` itself if it is a column reference (parentheses ignored)."""
    while isinstance(node, exp.Paren):
        node = node.this
    return node if isinstance(node, exp.Column) else None


def comparison_pairs(pred: exp.Expr) -> list[tuple[exp.Expr, list[exp.Expr]]]:
    """(one side, the values it is compared with) for every orientation of a comparison."""
    if isinstance(pred, _COMPARISONS):
        return [(pred.this, [pred.expression]), (pred.expression, [pred.this])]
    if isinstance(pred, exp.Between):
        return [(pred.this, [pred.args["low"], pred.args["high"]])]
    if isinstance(pred, exp.In):
        query = pred.args.get("query")
        if query is not None:
            return [(pred.this, [query])]
        if pred.args.get("unnest") is not None:
            return [(pred.this, [pred.args["unnest"]])]
        return [(pred.this, list(pred.expressions))]
    return []


class FilterKind(StrEnum):
    """How a predicate restricts one column."""

    constant = "constant"
    """bare column against constants: the engine prunes on it"""
    wrapped = "wrapped"
    """the column inside a function or cast, against constants: no pruning"""
    dynamic = "dynamic"
    """bare column against a subquery: values known only at run time"""


@dataclass(frozen=True)
class ColumnFilter:
    """One predicate that filters a column, and how."""

    column: exp.Column
    kind: FilterKind
    predicate: exp.Expr
    equality: bool


def column_filters(condition: exp.Expr | None, test: ColumnTest) -> list[ColumnFilter]:
    """Filters on the columns ``test`` accepts, in the AND-conjuncts of ``condition``.

    An OR counts as a constant filter only when every branch constant-filters the column; a
    filter under NOT or inside a subquery does not restrict this query's rows.
    """
    out: list[ColumnFilter] = []
    for pred in conjuncts(condition):
        if isinstance(pred, exp.Or):
            # Restricted only where every branch restricts the same column.
            branches = [column_filters(b, test) for b in _or_branches(pred)]
            common = set.intersection(
                *(
                    {
                        (f.column.table.lower(), f.column.name.lower())
                        for f in b
                        if f.kind is FilterKind.constant
                    }
                    for b in branches
                )
            )
            for f in branches[0]:
                key = (f.column.table.lower(), f.column.name.lower())
                if f.kind is FilterKind.constant and key in common:
                    common.discard(key)
                    out.append(ColumnFilter(f.column, FilterKind.constant, pred, False))
            continue
        for side, values in comparison_pairs(pred):
            column = bare_column(side)
            equality = isinstance(pred, exp.EQ | exp.In | exp.NullSafeEQ)
            if column is not None:
                if not test(column):
                    continue
                if all(is_constant(v) for v in values):
                    out.append(ColumnFilter(column, FilterKind.constant, pred, equality))
                elif any(has_subquery(v) for v in values):
                    out.append(ColumnFilter(column, FilterKind.dynamic, pred, equality))
                break
            inner = next((c for c in side.find_all(exp.Column) if test(c)), None)
            if (
                inner is not None
                and not isinstance(side, exp.Query | exp.Subquery)
                and all(is_constant(v) for v in values)
            ):
                out.append(ColumnFilter(inner, FilterKind.wrapped, pred, equality))
                break
    return out


def _or_branches(pred: exp.Expr) -> list[exp.Expr]:
    out: list[exp.Expr] = []
    stack = [pred]
    while stack:
        node = stack.pop()
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.Or):
            stack.extend((node.expression, node.this))
        else:
            out.append(node)
    return out


def wrapper_of(f: ColumnFilter) -> exp.Expr:
    """The whole expression a wrapped column sits in, up to the comparison."""
    node: exp.Expr = f.column
    while node.parent is not None and node.parent is not f.predicate:
        node = node.parent
    return node


def table_column_test(
    table: exp.Table,
    columns: Iterable[str],
    tables: dict[str, exp.Table],
    catalog: Catalog | None,
) -> ColumnTest:
    """A test accepting references to one of ``columns`` of ``table`` within a scope."""
    wanted = columns if isinstance(columns, frozenset) else frozenset(c.lower() for c in columns)

    def test(column: exp.Column) -> bool:
        return column.name.lower() in wanted and column_table(column, tables, catalog) is table

    return test


def partition_columns(meta: TableMeta) -> set[str]:
    """The names a query may filter a partitioned table's partitions with."""
    part = meta.partitioning
    if part is None:
        return set()
    if part.column is None:
        return {"_partitiontime", "_partitiondate"}
    return {part.column.lower()}


def where_of(node: exp.Expr) -> exp.Expr | None:
    """The WHERE condition of a SELECT / UPDATE / DELETE, if any."""
    where = node.args.get("where")
    return where.this if where is not None else None


def join_conditions(select: exp.Expr) -> list[exp.Expr]:
    """The ON conditions of a SELECT's joins."""
    return [j.args["on"] for j in select.args.get("joins") or () if j.args.get("on") is not None]


def scope_condition(select: exp.Expr) -> exp.Expr | None:
    """WHERE and every JOIN ... ON of a SELECT, as one AND."""
    parts = [c for c in (where_of(select), *join_conditions(select)) if c is not None]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else exp.and_(*parts, copy=False)


def size_text(nbytes: int | None) -> str:
    """A byte count for a message: ``300.1 TiB`` (``size unknown`` when the catalogue does not
    say)."""
    if nbytes is None:
        return "size unknown"
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:,.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:,.1f} PiB"


# --------------------------------------------------------------------------------------------
# Documentation
# --------------------------------------------------------------------------------------------

_SECTION = re.compile(r"^\*\*(?P<title>[^*]+)\*\*\s*$")


@dataclass(frozen=True)
class RuleDoc:
    """A rule's documentation, read from its docstring."""

    text: str
    sections: dict[str, str]

    def example(self, title: str) -> str:
        """The SQL of a section (``Anti-pattern`` / ``Best practice``), code fence removed."""
        body = self.sections.get(title, "")
        parts = body.split("```")
        code = parts[1] if len(parts) >= 3 else body
        return code.removeprefix("sql").strip()


def rule_doc(rule: type[Rule]) -> RuleDoc:
    """Split a rule docstring into its ``**Section**`` parts."""
    import inspect

    text = inspect.cleandoc(rule.__doc__ or "")
    sections: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        match = _SECTION.match(line.strip())
        if match:
            current = match.group("title").strip()
            sections[current] = []
        elif current:
            sections[current].append(line)
    return RuleDoc(text=text, sections={k: "\n".join(v).strip() for k, v in sections.items()})
