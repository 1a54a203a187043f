"""``costline lint``: SQL anti-patterns that cost money, found statically.

Each file (or each query text of a job history) is tokenized and parsed once with sqlglot
(BigQuery dialect unless told otherwise). A script is split on its semicolons; BigQuery
scripting (``IF ... THEN``, ``LOOP``, ``WHILE ... DO``, ``FOR ... DO``, ``BEGIN ... END``) is
read at the token level so the statements inside are still linted and each knows how many loops
enclose it. Every parsed statement's tree is walked once; the rules of
:mod:`costline.warehouse.rules` look up the nodes they need. Text that does not parse becomes an
:class:`LintError` with its line and column, and the run goes on.

Findings are plain values: renderers (:mod:`costline.report.lint`) print them, never recompute.
"""

from __future__ import annotations

import bisect
import fnmatch
import logging
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import sqlglot
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from costline.core.errors import CostlineError, first_validation_error
from costline.warehouse.catalog import Catalog
from costline.warehouse.profile import FingerprintStats
from costline.warehouse.rules import ALL_RULES
from costline.warehouse.rules.base import GOOGLE, Rule, Script, Severity, Statement, Violation

__all__ = [
    "LintConfig",
    "LintError",
    "LintFinding",
    "LintResult",
    "PathOptions",
    "Severity",
    "find_config",
    "lint_history",
    "lint_paths",
    "lint_sql",
    "select_rules",
]

SQL_SUFFIXES = (".sql", ".bqsql")
# costline's guard, not a BigQuery limit: sqlglot's parser copies each nested subquery, so its
# time grows with the square of the depth; deeper statements are reported, not parsed.
MAX_NESTING = 200


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
    """SQL that could not be read, and where."""

    path: str
    line: int
    column: int
    message: str


class LintResult(_Value):
    """Everything one lint run found."""

    findings: tuple[LintFinding, ...]
    errors: tuple[LintError, ...]
    files: int = Field(description="files (or history patterns) linted")
    statements: int = Field(description="statements parsed and checked")

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
    sel = [s.strip().upper() for s in select if s.strip()]
    ign = [s.strip().upper() for s in ignore if s.strip()]
    for code in (*sel, *ign):
        if not _known_prefix(code):
            raise CostlineError(f"unknown rule code {code!r}; `costline rules` lists them")
    return [
        r
        for r in ALL_RULES
        if any(r.code.startswith(s) for s in sel) and not any(r.code.startswith(i) for i in ign)
    ]


# --------------------------------------------------------------------------------------------
# Reading a script
# --------------------------------------------------------------------------------------------

_LOOP_WORDS = {"LOOP", "REPEAT"}
_BLOCK_ENDS = {"IF", "LOOP", "WHILE", "FOR", "REPEAT"}
_LOCATION = re.compile(r"Line (\d+), Col: (\d+)")
_NOQA = re.compile(
    r"(?:--|#)\s*noqa(?::\s*(?P<codes>[A-Za-z]+\d+(?:\s*,\s*[A-Za-z]+\d+)*))?", re.IGNORECASE
)


class _Source:
    """A text, its line starts, and its ``-- noqa`` comments."""

    def __init__(self, path: str, sql: str) -> None:
        self.path = path
        self.sql = sql
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

    def position(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a character offset."""
        if self._line_starts is None:
            # Only texts with findings or errors need positions: computed on first use.
            self._line_starts = [0, *(m.end() for m in re.finditer("\n", self.sql))]
        starts = self._line_starts
        index = bisect.bisect_right(starts, offset) - 1
        return index + 1, offset - starts[index] + 1

    def suppressed(self, line: int, code: str) -> bool:
        if line not in self.noqa:
            return False
        codes = self.noqa[line]
        return codes is None or code in codes


def _skip_to(tokens: Sequence[Token], start: int, word: str) -> int:
    """Index after the first ``word`` at parenthesis depth 0 from ``start`` (or the end)."""
    depth = 0
    for i in range(start, len(tokens)):
        tok = tokens[i]
        if tok.token_type is TokenType.L_PAREN:
            depth += 1
        elif tok.token_type is TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and tok.text.upper() == word:
            return i + 1
    return len(tokens)


def _has_word(tokens: Sequence[Token], start: int, word: str) -> bool:
    return any(t.text.upper() == word for t in tokens[start:])


_SCRIPT_COMMANDS = {"BEGIN", "ELSEIF", "EXCEPTION", "LOOP", "REPEAT", "WHILE"}


def _expand_command(tokens: list[Token], i: int, sql: str, dialect: sqlglot.Dialect) -> None:
    """The tokenizer keeps the rest of a statement after a command word (``WHILE``, ``LOOP``,
    ``BEGIN`` ...) as one string; tokenize it for real, keeping every position exact."""
    start, end = tokens[i].end + 1, tokens[-1].end
    padded = re.sub(r"[^\n]", " ", sql[:start]) + sql[start : end + 1]
    tokens[i + 1 :] = dialect.tokenize(padded)


def _control_prefix(
    tokens: list[Token], stack: list[str], sql: str, dialect: sqlglot.Dialect
) -> int:
    """Consume BigQuery scripting keywords at the start of a chunk; return where SQL starts.

    ``stack`` holds the open blocks ("loop", "if", "block") and is updated in place.
    """
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        word = tok.text.upper()
        if (
            word in _SCRIPT_COMMANDS
            and tok.token_type is TokenType.COMMAND
            and i + 1 < len(tokens)
            and tokens[i + 1].token_type is TokenType.STRING
        ):
            _expand_command(tokens, i, sql, dialect)
        n = len(tokens)
        nxt = tokens[i + 1].text.upper() if i + 1 < n else ""
        if word == "END" and tok.token_type is TokenType.END:
            if stack:
                stack.pop()
            i += 2 if nxt in _BLOCK_ENDS else 1
        elif word == "BEGIN" and nxt not in ("TRANSACTION", "TRAN"):
            stack.append("block")
            i += 1
        elif word in _LOOP_WORDS:
            stack.append("loop")
            i += 1
        elif word == "WHILE" or (word == "FOR" and _has_word(tokens, i + 1, "DO")):
            stack.append("loop")
            i = _skip_to(tokens, i + 1, "DO")
        elif word == "IF" and _has_word(tokens, i + 1, "THEN"):
            stack.append("if")
            i = _skip_to(tokens, i + 1, "THEN")
        elif word == "ELSEIF" or (word == "EXCEPTION" and nxt == "WHEN"):
            i = _skip_to(tokens, i + 1, "THEN")
        elif word == "ELSE":
            i += 1
        elif word == "UNTIL":
            # REPEAT ... UNTIL condition END REPEAT: the condition is no statement.
            i = _skip_to(tokens, i + 1, "END") - 1
        else:
            break
    return i


def _nesting(tokens: Sequence[Token]) -> int:
    depth = deepest = 0
    for tok in tokens:
        if tok.token_type is TokenType.L_PAREN:
            depth += 1
            deepest = max(deepest, depth)
        elif tok.token_type is TokenType.R_PAREN:
            depth -= 1
    return deepest


def _split(tokens: Sequence[Token], sql: str) -> list[list[Token]]:
    if ";" not in sql:
        return [list(tokens)] if tokens else []
    chunks: list[list[Token]] = [[]]
    for tok in tokens:
        if tok.token_type is TokenType.SEMICOLON:
            chunks.append([])
        else:
            chunks[-1].append(tok)
    return [c for c in chunks if c]


def _split_untokenizable(
    source: _Source, dialect: sqlglot.Dialect, errors: list[LintError]
) -> list[list[Token]]:
    """Statements of a text the tokenizer rejects (an unterminated string, a stray
    character): each piece between semicolons on its own, so only the bad one is lost."""
    chunks: list[list[Token]] = []
    offset = 0
    for piece in source.sql.split(";"):
        start = offset
        offset += len(piece) + 1
        if not piece.strip():
            continue
        try:
            tokens = dialect.tokenize(piece)
        except TokenError:
            at = start + len(piece) - len(piece.lstrip())
            line, col = source.position(at)
            errors.append(
                LintError(
                    path=source.path,
                    line=line,
                    column=col,
                    message="cannot tokenize (unterminated string or comment, or a stray "
                    "character) in this statement",
                )
            )
            continue
        line0, col0 = source.position(start)
        for tok in tokens:
            if tok.line == 1:
                tok.col += col0 - 1
            tok.line += line0 - 1
            tok.start += start
            tok.end += start
        if tokens:
            chunks.append(list(tokens))
    return chunks


def _error_at(source: _Source, exc: SqlglotError, fallback: int) -> LintError:
    line, col = source.position(fallback)
    message = str(exc).split("\n", 1)[0]
    if isinstance(exc, ParseError) and exc.errors:
        first = exc.errors[0]
        line = int(first.get("line") or line)
        col = int(first.get("col") or col)
        message = str(first.get("description") or message)
    else:
        match = _LOCATION.search(str(exc))
        if match:
            line, col = int(match.group(1)), int(match.group(2))
            message = message.split(". Line")[0]
    message = _TOKEN_REPR.sub(lambda m: _token_words(m.group(1)), message)
    return LintError(path=source.path, line=line, column=max(col, 1), message=message)


_TOKEN_REPR = re.compile(r"<Token token_type: TokenType\.\w+, text: (.*?), line: [^>]*>")


def _token_words(text: str) -> str:
    return "the end of the statement" if text == "SENTINEL" else repr(text)


def _read_script(
    source: _Source, dialect: sqlglot.Dialect
) -> tuple[list[Statement], list[LintError]]:
    errors: list[LintError] = []
    try:
        chunks = _split(dialect.tokenize(source.sql), source.sql)
    except TokenError:
        chunks = _split_untokenizable(source, dialect, errors)
    parsed_all: list[tuple[exp.Expr, list[Token], int]] = []
    stack: list[str] = []
    for chunk in chunks:
        try:
            start = _control_prefix(chunk, stack, source.sql, dialect)
        except TokenError as exc:
            errors.append(_error_at(source, exc, chunk[0].start))
            continue
        body = chunk[start:]
        if not body:
            continue
        loops = stack.count("loop")
        if len(body) > 2 * MAX_NESTING and _nesting(body) > MAX_NESTING:
            line, col = source.position(body[0].start)
            errors.append(
                LintError(
                    path=source.path,
                    line=line,
                    column=col,
                    message=f"statement nested more than {MAX_NESTING} levels deep; not analysed",
                )
            )
            continue
        try:
            parsed = dialect.parser().parse(body, source.sql)
        except SqlglotError as exc:
            errors.append(_error_at(source, exc, body[0].start))
            continue
        except RecursionError:
            errors.append(
                LintError(
                    path=source.path,
                    line=source.position(body[0].start)[0],
                    column=source.position(body[0].start)[1],
                    message="statement nested too deeply to analyse",
                )
            )
            continue
        for expr in parsed:
            if expr is None or isinstance(expr, exp.Command | exp.EndStatement):
                continue
            parsed_all.append((expr, body, loops))
    variables = _declared(e for e, _, _ in parsed_all)
    statements = []
    for expr, body, loops in parsed_all:
        if variables:
            _bind_variables(expr, variables)
        statements.append(Statement(expr, body[0].start, loop_depth=loops, tokens=body))
    return statements, errors


def _declared(statements: Iterable[exp.Expr]) -> set[str]:
    """Names of the script's variables (``DECLARE a, b DATE ...``)."""
    names: set[str] = set()
    for stmt in statements:
        if isinstance(stmt, exp.Declare):
            for item in stmt.expressions:
                this = item.this
                for ident in this if isinstance(this, list) else [this]:
                    if isinstance(ident, exp.Expr):
                        names.add(ident.name.lower())
    return names


def _bind_variables(expr: exp.Expr, variables: set[str]) -> None:
    """Turn references to script variables into variables: values known before a query runs,
    which the engine prunes on like constants."""
    for column in list(expr.find_all(exp.Column)):
        if not column.table and column.name.lower() in variables:
            var = exp.Var(this=column.name)
            var.meta.update(column.this.meta)
            column.replace(var)


_INSTANCES: dict[type[Rule], Rule] = {}


def _instance(rule_cls: type[Rule]) -> Rule:
    """Rules keep no state between checks: one instance each serves every run."""
    rule = _INSTANCES.get(rule_cls)
    if rule is None:
        rule = _INSTANCES[rule_cls] = rule_cls()
    return rule


@lru_cache(maxsize=32)
def _dialect(name: str) -> sqlglot.Dialect:
    try:
        return sqlglot.Dialect.get_or_raise(name)
    except (ValueError, SqlglotError):
        raise CostlineError(f"unknown SQL dialect {name!r}") from None


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


def _lint_source(
    source: _Source,
    rules: Sequence[type[Rule]],
    dialect_name: str,
    catalog: Catalog | None,
) -> tuple[list[LintFinding], list[LintError], int]:
    dialect = _dialect(dialect_name)
    try:
        statements, errors = _read_script(source, dialect)
    except RecursionError:
        error = LintError(
            path=source.path, line=1, column=1, message="text nested too deeply to analyse"
        )
        return [], [error], 0
    if not statements:
        return [], errors, 0
    script = Script(path=source.path, sql=source.sql, statements=statements, catalog=catalog)
    findings: list[LintFinding] = []
    # A history pattern is no file a command could be given.
    file_arg = "FILE" if "#" in source.path else source.path
    for rule_cls in rules:
        if rule_cls.needs_catalog and catalog is None:
            continue
        rule = _instance(rule_cls)
        try:
            violations: list[Violation] = list(rule.check(script))
        except Exception as exc:  # a rule's bug must not cost the user the other findings
            line, col = source.position(statements[0].offset)
            reason = "nested too deeply" if isinstance(exc, RecursionError) else repr(exc)
            errors.append(
                LintError(
                    path=source.path,
                    line=line,
                    column=col,
                    message=f"rule {rule_cls.code} could not check this text: {reason}",
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
            findings.append(
                LintFinding(
                    path=source.path,
                    line=line,
                    column=col,
                    code=rule_cls.code,
                    name=rule_cls.name,
                    severity=v.severity or rule_cls.severity,
                    message=v.message,
                    fix=v.fix.replace("{path}", file_arg) if v.fix else None,
                    equivalents=tuple(f"{GOOGLE}:{e}" for e in rule_cls.equivalents),
                )
            )
    findings.sort(key=lambda f: (f.line, f.column, f.code))
    return findings, errors, len(statements)


class _QuietParser:
    """sqlglot logs a warning for each statement it keeps as an opaque command; lint reports
    what matters itself."""

    def __enter__(self) -> None:
        self.logger = logging.getLogger("sqlglot")
        self.level = self.logger.level
        if self.level < logging.ERROR:
            self.logger.setLevel(logging.ERROR)

    def __exit__(self, *_exc: object) -> None:
        if self.logger.level != self.level:
            self.logger.setLevel(self.level)


def lint_sql(
    sql: str,
    *,
    path: str = "<sql>",
    catalog: Catalog | None = None,
    dialect: str = "bigquery",
    rules: Sequence[type[Rule]] | None = None,
) -> LintResult:
    """Lint one SQL text (a statement or a script)."""
    with _QuietParser():
        findings, errors, n = _lint_source(
            _Source(path, sql), ALL_RULES if rules is None else rules, dialect, catalog
        )
    return LintResult(findings=tuple(findings), errors=tuple(errors), files=1, statements=n)


def _walk(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in SQL_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            yield path
        else:
            raise CostlineError(f"{path}: no such file or directory")


def lint_paths(
    paths: Sequence[Path],
    *,
    config: LintConfig | None = None,
    catalog: Catalog | None = None,
) -> LintResult:
    """Lint SQL files; directories are walked for ``*.sql``."""
    config = config or LintConfig()
    findings: list[LintFinding] = []
    errors: list[LintError] = []
    files = statements = 0
    with _QuietParser():
        for file in _walk(paths):
            files += 1
            name = str(file)
            try:
                text = file.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                errors.append(
                    LintError(path=name, line=1, column=1, message=f"not UTF-8 text: {exc.reason}")
                )
                continue
            except OSError as exc:
                errors.append(
                    LintError(path=name, line=1, column=1, message=f"cannot read: {exc.strerror}")
                )
                continue
            rules, dialect = config.options_for(name)
            f, e, n = _lint_source(_Source(name, text), rules, dialect, catalog)
            findings.extend(f)
            errors.extend(e)
            statements += n
    return LintResult(
        findings=tuple(findings), errors=tuple(errors), files=files, statements=statements
    )


def lint_history(
    patterns: Iterable[FingerprintStats],
    *,
    source: str = "history",
    catalog: Catalog | None = None,
    rules: Sequence[type[Rule]] | None = None,
    dialect: str = "bigquery",
    progress: Callable[[str, float], None] | None = None,
) -> LintResult:
    """Lint the example text of each pattern of a profile (``Profile.fingerprints``).

    Each finding carries the cost of its pattern over the history and names it
    ``SOURCE#fp_…``; findings are ranked by cost, costliest first.
    """
    chosen = ALL_RULES if rules is None else rules
    findings: list[LintFinding] = []
    errors: list[LintError] = []
    files = statements = 0
    patterns = list(patterns)
    step = progress or (lambda _name, _done: None)
    with _QuietParser():
        for i, fp in enumerate(patterns):
            if i % 250 == 0:
                step("linting query patterns", i / max(len(patterns), 1))
            text = fp.example_query
            if not text:
                continue
            files += 1
            cost = float(fp.cost_usd)
            f, e, n = _lint_source(_Source(f"{source}#{fp.id}", text), chosen, dialect, catalog)
            findings.extend(x.model_copy(update={"cost_usd": cost}) for x in f)
            errors.extend(e)
            statements += n
    findings.sort(key=lambda f: (-(f.cost_usd or 0.0), f.path, f.line, f.column, f.code))
    return LintResult(
        findings=tuple(findings), errors=tuple(errors), files=files, statements=statements
    )
