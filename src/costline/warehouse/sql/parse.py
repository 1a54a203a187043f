"""Tokenizing and parsing with sqlglot, one statement at a time.

One bad statement costs only itself: every failure while parsing a statement — a syntax error,
a statement nested too deeply, or an exception raised inside sqlglot on valid-looking input
(``DATE_ADD()`` raises ``TypeError`` there) — becomes a :class:`SqlProblem` value with its
offset, and the caller goes on with the next statement. This is the only module that calls
sqlglot's parser and the only one that quiets sqlglot's logger.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from costline.core.errors import CostlineError

__all__ = [
    "DEFAULT_DIALECT",
    "MAX_NESTING",
    "ParsedText",
    "ProblemKind",
    "SqlProblem",
    "get_dialect",
    "nesting",
    "parse_statement",
    "parse_text",
    "quiet",
    "split_statements",
    "tokenize",
    "tokenize_pieces",
    "tokenize_span",
]

DEFAULT_DIALECT = "bigquery"
# costline's guard, not a BigQuery limit: sqlglot's parser copies each nested subquery, so its
# time grows with the square of the depth; deeper statements are reported, not parsed.
MAX_NESTING = 200


class ProblemKind(StrEnum):
    """Why a statement could not be read: the SQL (``parse``) or the parser (``internal``)."""

    parse = "parse"
    internal = "internal"


@dataclass(frozen=True)
class SqlProblem:
    """A statement that could not be read, where it is and why.

    ``line``/``column`` come from the parser when it knows them; otherwise ``offset`` (a
    character offset into the text) locates the statement.
    """

    offset: int
    message: str
    kind: ProblemKind = ProblemKind.parse
    line: int | None = None
    column: int | None = None


@dataclass(frozen=True)
class ParsedText:
    """The statements of a text that parsed, and the problems of those that did not."""

    statements: list[exp.Expr]
    problems: list[SqlProblem]


class _Quiet(logging.Filter):
    """sqlglot logs a warning for each statement it keeps as an opaque command; every caller
    reports what matters itself. While any caller is inside ``quiet()``, the sqlglot logger
    drops records below ERROR; a filter rather than a level change, because changing a
    logger's level clears every logger's cache, once per statement of a large run."""

    def __init__(self) -> None:
        super().__init__("costline.quiet")
        self.depth = 0
        self.lock = threading.Lock()
        self.installed = False

    def filter(self, record: logging.LogRecord) -> bool:
        return self.depth == 0 or record.levelno >= logging.ERROR

    def __call__(self) -> _Quiet:
        return self

    def __enter__(self) -> None:
        # A plain counter under a lock, not a generator: entered once per statement parsed.
        with self.lock:
            if not self.installed:
                logging.getLogger("sqlglot").addFilter(self)
                self.installed = True
            self.depth += 1

    def __exit__(self, *_exc: object) -> None:
        with self.lock:
            self.depth -= 1


quiet = _Quiet()


@lru_cache(maxsize=32)
def get_dialect(name: str) -> sqlglot.Dialect:
    """The sqlglot dialect ``name``; an unknown name is a :class:`CostlineError`."""
    try:
        return sqlglot.Dialect.get_or_raise(name)
    except (ValueError, SqlglotError):
        raise CostlineError(f"unknown SQL dialect {name!r}") from None


def tokenize(sql: str, dialect: sqlglot.Dialect) -> list[Token]:
    """All tokens of ``sql``; raises sqlglot's ``TokenError`` on text it cannot tokenize."""
    return dialect.tokenize(sql)


def split_statements(tokens: Sequence[Token]) -> list[list[Token]]:
    """Tokens grouped into statements at each semicolon (a semicolon inside a string or a
    comment is no token, so this never splits one)."""
    semicolon = TokenType.SEMICOLON
    cuts = [i for i, tok in enumerate(tokens) if tok.token_type is semicolon]
    if not cuts:
        return [list(tokens)] if tokens else []
    chunks: list[list[Token]] = []
    start = 0
    for cut in (*cuts, len(tokens)):
        if cut > start:
            chunks.append(list(tokens[start:cut]))
        start = cut + 1
    return chunks


def tokenize_span(sql: str, start: int, end: int, dialect: sqlglot.Dialect) -> list[Token]:
    """The tokens of ``sql[start:end]`` with the lines, columns and offsets they have in the
    whole of ``sql``; raises ``TokenError`` like :func:`tokenize`."""
    tokens = dialect.tokenize(sql[start:end])
    if start:
        line0 = sql.count("\n", 0, start)
        col0 = start - (sql.rfind("\n", 0, start) + 1)
        for tok in tokens:
            if tok.line == 1:
                tok.col += col0
            tok.line += line0
            tok.start += start
            tok.end += start
    return tokens


def tokenize_pieces(sql: str, dialect: sqlglot.Dialect) -> tuple[list[list[Token]], list[int]]:
    """Statements of a text the tokenizer rejects as a whole (an unterminated string or a stray
    character): each piece between semicolons tokenized on its own, positions kept exact, so
    only the bad piece is lost. Returns the statements and the offsets of the bad pieces."""
    chunks: list[list[Token]] = []
    bad: list[int] = []
    offset = 0
    for piece in sql.split(";"):
        start = offset
        offset += len(piece) + 1
        if not piece.strip():
            continue
        try:
            tokens = tokenize_span(sql, start, start + len(piece), dialect)
        except TokenError:
            bad.append(start + len(piece) - len(piece.lstrip()))
            continue
        if tokens:
            chunks.append(tokens)
    return chunks, bad


def nesting(tokens: Sequence[Token]) -> int:
    """The deepest parenthesis nesting in ``tokens``."""
    opening, closing = TokenType.L_PAREN, TokenType.R_PAREN
    depth = deepest = 0
    for kind in [
        t.token_type for t in tokens if t.token_type is opening or t.token_type is closing
    ]:
        if kind is opening:
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


UNTOKENIZABLE = (
    "cannot tokenize (unterminated string or comment, or a stray character) in this statement"
)


_LOCATION = re.compile(r"Line (\d+), Col: (\d+)")
_TOKEN_REPR = re.compile(r"<Token token_type: TokenType\.\w+, text: (.*?), line: [^>]*>")


def _token_words(text: str) -> str:
    return "the end of the statement" if text == "SENTINEL" else repr(text)


def _problem(exc: SqlglotError, offset: int) -> SqlProblem:
    message = str(exc).split("\n", 1)[0]
    line: int | None = None
    col: int | None = None
    if isinstance(exc, ParseError) and exc.errors:
        first = exc.errors[0]
        line = int(first["line"]) if first.get("line") else None
        col = int(first["col"]) if first.get("col") else None
        message = str(first.get("description") or message)
    else:
        match = _LOCATION.search(str(exc))
        if match:
            line, col = int(match.group(1)), int(match.group(2))
            message = message.split(". Line")[0]
    message = _TOKEN_REPR.sub(lambda m: _token_words(m.group(1)), message)
    return SqlProblem(offset, message, ProblemKind.parse, line, max(col, 1) if col else None)


def parse_statement(
    tokens: list[Token], sql: str, dialect: sqlglot.Dialect
) -> list[exp.Expr] | SqlProblem:
    """The trees of one statement's tokens, or the problem that stopped the parser.

    Never raises for any input: sqlglot's own errors are ``parse`` problems, anything else
    raised inside it is an ``internal`` one naming the exception.
    """
    offset = tokens[0].start if tokens else 0
    if len(tokens) > 2 * MAX_NESTING and nesting(tokens) > MAX_NESTING:
        return SqlProblem(
            offset, f"statement nested more than {MAX_NESTING} levels deep; not analysed"
        )
    try:
        with quiet():
            trees = dialect.parser().parse(tokens, sql)
    except SqlglotError as exc:
        return _problem(exc, offset)
    except RecursionError:
        return SqlProblem(offset, "statement nested too deeply to analyse")
    except Exception as exc:  # sqlglot's bug on this statement must not end the run
        detail = str(exc).split("\n", 1)[0][:200]
        return SqlProblem(
            offset,
            f"the SQL parser failed on this statement ({type(exc).__name__}: {detail})",
            ProblemKind.internal,
        )
    return [t for t in trees if t is not None]


def parse_text(sql: str, dialect: str | sqlglot.Dialect = DEFAULT_DIALECT) -> ParsedText:
    """Every statement of ``sql`` that parses, and a problem for each one that does not.

    For analyses that read the trees of a query text (predicates, column access, MERGE): no
    scripting structure, no templating (see :func:`costline.warehouse.sql.read_script`).
    """
    dialect_obj = get_dialect(dialect) if isinstance(dialect, str) else dialect
    problems: list[SqlProblem] = []
    try:
        chunks = split_statements(tokenize(sql, dialect_obj))
    except TokenError:
        chunks, bad = tokenize_pieces(sql, dialect_obj)
        problems += [SqlProblem(at, UNTOKENIZABLE) for at in bad]
    statements: list[exp.Expr] = []
    for chunk in chunks:
        parsed = parse_statement(chunk, sql, dialect_obj)
        if isinstance(parsed, SqlProblem):
            problems.append(parsed)
        else:
            statements.extend(parsed)
    return ParsedText(statements, problems)
