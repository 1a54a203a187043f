"""``costline lint``: SQL anti-patterns that cost money, found statically.

Each file (or each query text of a job history) is read once through the SQL-analysis layer
(:func:`costline.warehouse.sql.read_script`, BigQuery dialect unless told otherwise): template
markup replaced, BigQuery scripting understood, every statement parsed on its own. Every parsed
statement's tree is walked once; the rules of :mod:`costline.warehouse.rules` look up the nodes
they need. A statement that does not parse becomes a :class:`LintError` with its line, column
and kind, one that cannot be analysed a :class:`LintSkip` with its reason, and the run goes on:
every statement is accounted for in :class:`StatementCounts`. Files are linted in parallel
worker processes with ``jobs``.

Findings are plain values: renderers (:mod:`costline.report.lint`) print them, never recompute.
"""

from __future__ import annotations

import bisect
import fnmatch
import gzip
import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlglot import exp
from sqlglot.tokenizer_core import TokenType

from costline.core.errors import CostlineError, first_validation_error
from costline.core.prices import PriceCatalogue
from costline.core.progress import Progress
from costline.core.results import Result
from costline.warehouse.catalog import Catalog, TableKind
from costline.warehouse.jobs import JobHistory
from costline.warehouse.layout.workload import workload_partition_columns
from costline.warehouse.profiler import FingerprintStats
from costline.warehouse.rules import ALL_RULES
from costline.warehouse.rules.base import GOOGLE, Rule, Script, Severity, Statement, Violation
from costline.warehouse.rules.cl005_unpartitioned_time_filter import flaggable
from costline.warehouse.sql import Output, ProblemKind, get_dialect, read_script

__all__ = [
    "CatalogSummary",
    "LintConfig",
    "LintError",
    "LintFinding",
    "LintResult",
    "LintSkip",
    "PathOptions",
    "Severity",
    "StatementCounts",
    "find_config",
    "lint_history",
    "lint_paths",
    "lint_sql",
    "select_rules",
    "sql_files",
]

SQL_SUFFIXES = (".sql", ".bqsql")


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LintFinding(_Value):
    """One rule violation at one place; ``cost_usd`` is what its pattern cost (``--history``)."""

    path: str
    line: int
    column: int
    code: str
    name: str
    severity: Severity
    message: str
    fix: str | None
    equivalents: tuple[str, ...]
    cost_usd: float | None = None


class LintError(_Value):
    """SQL that could not be read, and where: ``parse`` when the SQL is not understood,
    ``internal`` when the parser or a rule failed on it (a bug to report, not the user's)."""

    path: str
    line: int
    column: int
    message: str
    kind: ProblemKind = ProblemKind.parse


class LintSkip(_Value):
    """A statement read but not analysed, and why (a procedure call, dynamic SQL ...)."""

    path: str
    line: int
    column: int
    reason: str


class StatementCounts(_Value):
    """What became of every statement: checked, not parseable, or skipped with a reason."""

    linted: int = 0
    unparsed: int = 0
    skipped: int = 0


class CatalogSummary(_Value):
    """Which catalogue a run used and what it knows."""

    source: str | None
    tables: int
    partitioned: int
    clustered: int
    views: int

    @classmethod
    def of(cls, catalog: Catalog) -> CatalogSummary:
        """The summary of ``catalog`` (computed once per catalogue)."""
        cached = _SUMMARIES.get(id(catalog))
        if cached is not None and cached[0] is catalog:
            return cached[1]
        tables = list(catalog)
        summary = cls(
            source=getattr(catalog, "source", None),
            tables=len(tables),
            partitioned=sum(t.partitioning is not None for t in tables),
            clustered=sum(bool(t.clustering) for t in tables),
            views=sum(t.kind is TableKind.VIEW for t in tables),
        )
        if len(_SUMMARIES) > 8:
            _SUMMARIES.clear()
        _SUMMARIES[id(catalog)] = (catalog, summary)
        return summary


_SUMMARIES: dict[int, tuple[Catalog, CatalogSummary]] = {}


class LintResult(_Value, Result):
    """Everything one lint run found."""

    findings: tuple[LintFinding, ...]
    errors: tuple[LintError, ...]
    skipped: tuple[LintSkip, ...] = ()
    templated: tuple[str, ...] = ()
    """Sources whose template markup (Jinja, ``${…}``) was replaced before parsing."""
    files: int = Field(description="files (or history patterns) linted")
    statements: StatementCounts = StatementCounts()
    catalog: CatalogSummary | None = None

    def at_or_above(self, severity: Severity) -> tuple[LintFinding, ...]:
        """Findings whose severity is ``severity`` or worse."""
        return tuple(f for f in self.findings if f.severity.rank >= severity.rank)


class PathOptions(_Value):
    """Options for files matching one glob in ``[tool.costline.lint.per-path]``."""

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    dialect: str | None = None


class LintConfig(_Value):
    """``[tool.costline.lint]`` in ``pyproject.toml``; command-line options override it."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    select: tuple[str, ...] = ("CL",)
    ignore: tuple[str, ...] = ()
    dialect: str = "bigquery"
    catalog: str | None = None
    fail_on: Severity | None = Field(default=None, alias="fail-on")
    per_path: dict[str, PathOptions] = Field(default_factory=dict, alias="per-path")
    root: str | None = Field(default=None, exclude=True)
    """Directory the ``per-path`` globs and ``catalog`` are relative to."""

    def options_for(self, path: str) -> tuple[list[type[Rule]], str]:
        """The rules and dialect that apply to ``path``."""
        select, ignore, dialect = self.select, list(self.ignore), self.dialect
        relative = _relative(path, self.root)
        for pattern, opts in self.per_path.items():
            if fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(Path(path).name, pattern):
                select = opts.select or select
                ignore.extend(opts.ignore)
                dialect = opts.dialect or dialect
        return select_rules(select, ignore), dialect


def _relative(path: str, root: str | None) -> str:
    if root is None:
        return path
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return path


def find_config(start: Path) -> LintConfig:
    """The ``[tool.costline.lint]`` of the nearest ``pyproject.toml`` at or above ``start``."""
    for directory in (start.resolve(), *start.resolve().parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return _load_config(candidate)
    return LintConfig()


def _load_config(path: Path) -> LintConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CostlineError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CostlineError(f"{path}: not valid TOML: {exc}") from None
    section = data.get("tool", {}).get("costline", {}).get("lint", {})
    try:
        config = LintConfig.model_validate({**section, "root": str(path.parent)})
    except ValidationError as exc:
        raise CostlineError(f"{path}: [tool.costline.lint] {first_validation_error(exc)}") from None
    unknown = [c for c in (*config.select, *config.ignore) if not _known_prefix(c)]
    if unknown:
        raise CostlineError(f"{path}: [tool.costline.lint] unknown rule code {unknown[0]!r}")
    return config


def _known_prefix(code: str) -> bool:
    return any(r.code.startswith(code.upper()) for r in ALL_RULES)


def select_rules(select: Iterable[str], ignore: Iterable[str] = ()) -> list[type[Rule]]:
    """Rules whose code starts with one of ``select`` and with none of ``ignore`` (like ruff)."""
    sel = tuple(s.strip().upper() for s in select if s.strip())
    ign = tuple(s.strip().upper() for s in ignore if s.strip())
    return list(_selected(sel, ign))


@lru_cache(maxsize=256)
def _selected(sel: tuple[str, ...], ign: tuple[str, ...]) -> tuple[type[Rule], ...]:
    # Asked once per file of a repository, with the same few selections.
    for code in (*sel, *ign):
        if not _known_prefix(code):
            raise CostlineError(f"unknown rule code {code!r}; `costline rules` lists them")
    return tuple(
        r
        for r in ALL_RULES
        if any(r.code.startswith(s) for s in sel) and not any(r.code.startswith(i) for i in ign)
    )


# --------------------------------------------------------------------------------------------
# Reading a text
# --------------------------------------------------------------------------------------------

_NOQA = re.compile(
    r"(?:--|#)\s*noqa(?::\s*(?P<codes>[A-Za-z]+\d+(?:\s*,\s*[A-Za-z]+\d+)*))?", re.IGNORECASE
)


class _Source:
    """A text, its line starts, and its ``-- noqa`` comments."""

    def __init__(self, path: str, sql: str) -> None:
        self.path = path
        self.sql = sql
        self.text = sql
        self._line_starts: list[int] | None = None
        self.noqa: dict[int, frozenset[str] | None] = {}
        if "noqa" in sql or "NOQA" in sql:
            for number, line in enumerate(sql.splitlines(), start=1):
                match = _NOQA.search(line)
                if match:
                    codes = match.group("codes")
                    self.noqa[number] = (
                        frozenset(c.strip().upper() for c in codes.split(",")) if codes else None
                    )

    def read_as(self, text: str) -> None:
        """Offsets refer to ``text`` from now on: the source's templated rendering, which has
        the same lines (``-- noqa`` comments stay those of the source as written)."""
        if text is not self.sql:
            self.text = text
            self._line_starts = None

    def position(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a character offset."""
        if self._line_starts is None:
            # Only texts with findings or errors need positions: computed on first use.
            self._line_starts = [0, *(m.end() for m in re.finditer("\n", self.text))]
        starts = self._line_starts
        index = bisect.bisect_right(starts, offset) - 1
        return index + 1, offset - starts[index] + 1

    def suppressed(self, line: int, code: str) -> bool:
        if line not in self.noqa:
            return False
        codes = self.noqa[line]
        return codes is None or code in codes


_INSTANCES: dict[type[Rule], Rule] = {}


def _instance(rule_cls: type[Rule]) -> Rule:
    """Rules keep no state between checks: one instance each serves every run."""
    rule = _INSTANCES.get(rule_cls)
    if rule is None:
        rule = _INSTANCES[rule_cls] = rule_cls()
    return rule


def _keyword_offset(v: Violation, stmt: Statement, near: int) -> int:
    """Where the violation's keyword is: its n-th occurrence in the statement, or the last
    one at or before the node."""
    word = (v.keyword or "").upper()
    found = [
        t.start
        for t in stmt.tokens
        if t.token_type is not TokenType.STRING
        and t.text[: len(word)].upper() == word
        and (len(t.text) == len(word) or not t.text[len(word)].isalnum())
    ]
    if v.nth is not None:
        return found[v.nth] if v.nth < len(found) else near
    before = [start for start in found if start <= near]
    return before[-1] if before else near


def _node_offset(node: exp.Expr | None, stmt: Statement) -> int:
    if node is None or node is stmt.expr:
        return stmt.offset
    meta = node.meta
    if meta and "start" in meta:
        return int(meta["start"])
    best: int | None = None
    for child in node.walk():
        m = child.meta
        if m and "start" in m:
            start = int(m["start"])
            best = start if best is None or start < best else best
    return best if best is not None else stmt.offset


def _statement_of(node: exp.Expr | None, statements: Sequence[Statement]) -> Statement:
    if node is None or len(statements) == 1:
        return statements[0]
    root = node.root()
    return next((s for s in statements if s.expr is root), statements[0])


# File names under which an ETL tree (sql/<project>/<dataset>/<table>/) keeps the query that
# fills its table or defines its view.
_TABLE_FILES = frozenset({"query.sql", "view.sql"})


def _destination(path: str, catalog: Catalog | None) -> Output | None:
    """Where a file's bare SELECT is written, when the catalogue knows: a dbt model (named by
    its file) or an ETL tree's ``query.sql``/``view.sql`` (named by its directories)."""
    if catalog is None or not path.endswith(SQL_SUFFIXES):
        return None
    parts = path.replace("\\", "/").split("/")
    if parts[-1] in _TABLE_FILES and len(parts) >= 4:
        meta = catalog.get(".".join(parts[-4:-1]))
    else:
        meta = catalog.get(parts[-1].rsplit(".", 1)[0])
    if meta is None:
        return None
    return Output.view if meta.kind is TableKind.VIEW else Output.table


class _Outcome:
    """What linting one source gave."""

    def __init__(self) -> None:
        self.findings: list[LintFinding] = []
        self.errors: list[LintError] = []
        self.skipped: list[LintSkip] = []
        self.linted = self.unparsed = 0
        self.templated = False


def _lint_source(
    source: _Source,
    rules: Sequence[type[Rule]],
    dialect: str,
    catalog: Catalog | None,
    *,
    template: bool = True,
    partition_columns: Mapping[str, str] | None = None,
) -> _Outcome:
    out = _Outcome()
    model = Path(source.path).stem if template else None
    reading = read_script(source.sql, get_dialect(dialect), model=model, template=template)
    source.read_as(reading.text)
    out.templated = reading.templated is not None
    out.unparsed = len(reading.problems)
    for problem in reading.problems:
        line, col = source.position(problem.offset)
        out.errors.append(
            LintError(
                path=source.path,
                line=problem.line or line,
                column=problem.column or col,
                message=problem.message,
                kind=problem.kind,
            )
        )
    for skip in reading.skipped:
        line, col = source.position(skip.offset)
        out.skipped.append(LintSkip(path=source.path, line=line, column=col, reason=skip.reason))
    if not reading.statements:
        return out
    written_to = _destination(source.path, catalog) if template else None
    statements = [
        Statement(
            s.expr,
            s.offset,
            loop_depth=s.loop_depth,
            tokens=s.tokens,
            output=written_to if isinstance(s.expr, exp.Query) else None,
        )
        for s in reading.statements
    ]
    out.linted = len(statements)
    script = Script(
        path=source.path,
        sql=reading.text,
        statements=statements,
        catalog=catalog,
        partition_columns=partition_columns or {},
    )
    # A history pattern is no file a command could be given.
    file_arg = "FILE" if "#" in source.path else source.path
    for rule_cls in rules:
        if rule_cls.needs_catalog and catalog is None:
            continue
        try:
            violations: list[Violation] = list(_instance(rule_cls).check(script))
        except Exception as exc:  # a rule's bug must not cost the user the other findings
            line, col = source.position(statements[0].offset)
            reason = "nested too deeply" if isinstance(exc, RecursionError) else repr(exc)
            out.errors.append(
                LintError(
                    path=source.path,
                    line=line,
                    column=col,
                    message=f"rule {rule_cls.code} could not check this text: {reason}",
                    kind=ProblemKind.internal,
                )
            )
            continue
        for v in violations:
            stmt = _statement_of(v.node, statements)
            offset = _node_offset(v.node, stmt)
            if v.keyword:
                offset = _keyword_offset(v, stmt, offset)
            line, col = source.position(offset)
            if source.suppressed(line, rule_cls.code):
                continue
            out.findings.append(
                LintFinding(
                    path=source.path,
                    line=line,
                    column=col,
                    code=rule_cls.code,
                    name=rule_cls.name,
                    severity=v.severity or rule_cls.severity,
                    message=v.message,
                    fix=v.fix.replace("{path}", file_arg) if v.fix else None,
                    equivalents=tuple(
                        f"{GOOGLE}:{e}"
                        for e in (rule_cls.equivalents if v.equivalents is None else v.equivalents)
                    ),
                )
            )
    out.findings.sort(key=lambda f: (f.line, f.column, f.code))
    return out


class _Totals:
    """Outcomes of many sources, added up into one result."""

    def __init__(self) -> None:
        self.findings: list[LintFinding] = []
        self.errors: list[LintError] = []
        self.skipped: list[LintSkip] = []
        self.templated: list[str] = []
        self.files = self.linted = self.unparsed = 0

    def add(self, path: str, out: _Outcome) -> None:
        self.files += 1
        self.findings.extend(out.findings)
        self.errors.extend(out.errors)
        self.skipped.extend(out.skipped)
        self.linted += out.linted
        self.unparsed += out.unparsed
        if out.templated:
            self.templated.append(path)

    def result(self, catalog: Catalog | None) -> LintResult:
        return LintResult(
            findings=tuple(self.findings),
            errors=tuple(self.errors),
            skipped=tuple(self.skipped),
            templated=tuple(self.templated),
            files=self.files,
            statements=StatementCounts(
                linted=self.linted, unparsed=self.unparsed, skipped=len(self.skipped)
            ),
            catalog=CatalogSummary.of(catalog) if catalog is not None else None,
        )


def lint_sql(
    sql: str,
    *,
    path: str = "<sql>",
    catalog: Catalog | None = None,
    dialect: str = "bigquery",
    rules: Sequence[type[Rule]] | None = None,
    template: bool = True,
) -> LintResult:
    """Lint one SQL text (a statement or a script; templated SQL unless ``template=False``)."""
    totals = _Totals()
    chosen = ALL_RULES if rules is None else rules
    totals.add(path, _lint_source(_Source(path, sql), chosen, dialect, catalog, template=template))
    return totals.result(catalog)


def _sql_suffix(path: Path) -> str:
    """The suffix that says a file is SQL, under a ``.gz``."""
    name = path.with_suffix("") if path.suffix.lower() == ".gz" else path
    return name.suffix.lower()


def sql_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The SQL files of ``paths``: files as given, directories walked (sorted) for ``*.sql``
    and ``*.bqsql``, hidden directories skipped."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and _sql_suffix(p) in SQL_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            yield path
        else:
            raise CostlineError(f"{path}: no such file or directory")


def _lint_file(file: Path, config: LintConfig, catalog: Catalog | None) -> _Outcome:
    name = str(file)
    try:
        if file.suffix.lower() == ".gz":
            text = gzip.decompress(file.read_bytes()).decode("utf-8")
        else:
            text = file.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        out = _Outcome()
        reason = (
            f"not UTF-8 text: {exc.reason}"
            if isinstance(exc, UnicodeDecodeError)
            else f"cannot read: {getattr(exc, 'strerror', None) or exc}"
        )
        out.errors.append(LintError(path=name, line=1, column=1, message=reason))
        out.unparsed = 1
        return out
    rules, dialect = config.options_for(name)
    return _lint_source(_Source(name, text), rules, dialect, catalog)


# Each worker process receives the configuration and the catalogue once, not with every file.
_WORKER: dict[str, object] = {}


def _init_worker(config: LintConfig, catalog: Catalog | None) -> None:
    _WORKER["config"], _WORKER["catalog"] = config, catalog


def _lint_files(files: Sequence[Path]) -> list[_Outcome]:
    config = _WORKER["config"]
    catalog = _WORKER["catalog"]
    assert isinstance(config, LintConfig)
    assert catalog is None or isinstance(catalog, Catalog)
    return [_lint_file(f, config, catalog) for f in files]


def _batches(files: Sequence[Path], jobs: int) -> list[Sequence[Path]]:
    size = max(1, min(64, -(-len(files) // (jobs * 8))))
    return [files[i : i + size] for i in range(0, len(files), size)]


def lint_paths(
    paths: Sequence[Path],
    *,
    config: LintConfig | None = None,
    catalog: Catalog | None = None,
    jobs: int | None = 1,
    progress: Progress | None = None,
) -> LintResult:
    """Lint SQL files; directories are walked for ``*.sql``.

    ``jobs`` worker processes lint files in parallel (None: one per CPU); the result is the
    same, in the same order, whatever their number.
    """
    config = config or LintConfig()
    files = list(sql_files(paths))
    step = progress or (lambda _name, _done: None)
    workers = (os.cpu_count() or 1) if jobs is None else max(1, jobs)
    totals = _Totals()
    outcomes: Iterable[list[_Outcome]]
    pool: ProcessPoolExecutor | None = None
    if workers > 1 and len(files) > 1:
        try:
            pool = ProcessPoolExecutor(
                max_workers=workers, initializer=_init_worker, initargs=(config, catalog)
            )
        except (OSError, RuntimeError):
            pool = None
    batches = _batches(files, workers)
    try:
        if pool is not None:
            outcomes = pool.map(_lint_files, batches)
        else:
            outcomes = ([_lint_file(f, config, catalog) for f in batch] for batch in batches)
        done = 0
        for batch, results in zip(batches, outcomes, strict=True):
            for file, out in zip(batch, results, strict=True):
                totals.add(str(file), out)
            done += len(batch)
            step("linting files", done / max(len(files), 1))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return totals.result(catalog)


def lint_history(
    patterns: Iterable[FingerprintStats],
    *,
    source: str = "history",
    catalog: Catalog | None = None,
    rules: Sequence[type[Rule]] | None = None,
    dialect: str = "bigquery",
    history: JobHistory | None = None,
    prices: PriceCatalogue | None = None,
    progress: Progress | None = None,
) -> LintResult:
    """Lint the example text of each pattern of a profile (``Profile.fingerprints``).

    Each finding carries the cost of its pattern over the history and names it
    ``SOURCE#fp_…``; findings are ranked by cost, costliest first. Query texts of a job history
    are SQL as BigQuery ran it, never templates. Given the ``history`` itself (and its
    ``prices``), a fix that proposes a partition column names the one ``costline advise``
    partitions on, read from the same workload
    (:func:`~costline.warehouse.layout.workload.workload_partition_columns`).
    """
    chosen = ALL_RULES if rules is None else rules
    totals = _Totals()
    patterns = list(patterns)
    partitioning: dict[str, str] = {}
    if history is not None and prices is not None and catalog is not None:
        flagged = {
            m.name
            for fp in patterns
            for t in fp.tables
            if (m := catalog.get(t)) is not None and flaggable(m)
        }
        if flagged:
            partitioning = workload_partition_columns(history, sorted(flagged), prices, catalog)
    step = progress or (lambda _name, _done: None)
    for i, fp in enumerate(patterns):
        if i % 250 == 0:
            step("linting query patterns", i / max(len(patterns), 1))
        text = fp.example_query
        if not text:
            continue
        cost = float(fp.cost_usd)
        name = f"{source}#{fp.id}"
        out = _lint_source(
            _Source(name, text),
            chosen,
            dialect,
            catalog,
            template=False,
            partition_columns=partitioning,
        )
        out.findings = [x.model_copy(update={"cost_usd": cost}) for x in out.findings]
        totals.add(name, out)
    totals.findings.sort(key=lambda f: (-(f.cost_usd or 0.0), f.path, f.line, f.column, f.code))
    return totals.result(catalog)
