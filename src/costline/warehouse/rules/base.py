"""What every lint rule shares: the rule protocol and the parsed script it reads.

A rule never parses: the engine (:mod:`costline.warehouse.linter`) reads each text once through
the SQL-analysis layer (:mod:`costline.warehouse.sql`) and walks each statement's tree once,
indexing the nodes by type; rules look up the node types they care about and ask the layer
the SQL questions (which table a column belongs to, whether a predicate constant-filters it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from sqlglot import exp
from sqlglot.tokenizer_core import Token

from costline.warehouse.catalog import Catalog, TableMeta
from costline.warehouse.sql import Output, statement_output

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
    equivalents: tuple[str, ...] | None = None
    """Overrides the rule's peer equivalents (a finding the peer's definition does not cover
    claims none)."""
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
    output: Output | None = None
    """Where the statement's rows go; by default what the statement itself says (a bare
    SELECT in a dbt model materialised as a view is a view's body)."""
    nodes: dict[type[exp.Expr], list[exp.Expr]] = field(default_factory=dict)
    cache: dict[str, object] = field(default_factory=dict)
    """Analyses several rules share (see :mod:`costline.warehouse.rules.scans`)."""

    def __post_init__(self) -> None:
        if self.output is None:
            self.output = statement_output(self.expr)
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
    partition_columns: Mapping[str, str] = field(default_factory=dict)
    """Per table (its catalogue name), the column the workload's filters say to partition it
    on (:func:`costline.warehouse.partitioning.partition_column`): known when a job history
    is linted, empty for files."""


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


# costline's threshold, not a BigQuery limit: below one on-demand TiB ($6.25) a full scan per
# run is rarely worth a migration. A finding whose cost is the table's size is a warning only
# when the catalogue knows the table is at least this large.
LARGE_TABLE_BYTES = 1 << 40
SIZE_SETTLES = (
    "; the table's size settles whether it matters (a catalogue with sizes: "
    "costline catalog --bigquery)"
)


def large(meta: TableMeta | None) -> bool:
    """Whether the catalogue knows the table is large enough for its scans to matter."""
    return meta is not None and (meta.logical_bytes or 0) >= LARGE_TABLE_BYTES


def by_size(meta: TableMeta | None) -> tuple[Severity | None, str]:
    """The severity of a finding whose cost scales with the table's size (None: the rule's
    own) and what to add to its message when the size cannot settle it."""
    if large(meta):
        return None, ""
    if meta is not None and meta.logical_bytes is not None:
        return Severity.info, f"; at {size_text(meta.logical_bytes)} a full read costs little"
    return Severity.info, SIZE_SETTLES


def sized(name: str, nbytes: int | None) -> str:
    """``name (300.1 TiB)``, or the name alone when the catalogue does not know the size."""
    return name if nbytes is None else f"{name} ({size_text(nbytes)})"


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
