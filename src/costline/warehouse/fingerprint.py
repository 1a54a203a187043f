"""Query fingerprints: one id per query *pattern*, whatever its literals, comments or layout.

A job history of millions of rows holds almost as many distinct query texts, because every run
of a pipeline bakes in a new date, a new list of ids or a new comment. Grouping them needs a
canonical form that keeps what decides the cost (tables, columns, structure) and drops what
does not (literal values, IN-list length, comments, whitespace, keyword case, quoting).

Two layers cooperate so that the expensive one runs once per *shape*, not once per job:

* :func:`shape_key_sql` is a DuckDB expression (a few vectorised ``regexp_replace`` calls) that
  maps raw texts to a cheap key. It only erases what is lexically certain to be a literal or a
  comment, so two texts with the same key always get the same fingerprint.
* :func:`fingerprint` parses one representative per key with sqlglot (BigQuery dialect) and
  prints a canonical text whose blake2b hash is the id. Literal *tokens* are blanked before the
  parser sees them, so nothing the parser derives from a literal's content (an INTERVAL unit
  read out of ``'5 day'``, a JSON path) can leak into the pattern.

Text that does not parse still gets a fingerprint: first from sqlglot's tokens, then, if even
the tokenizer gives up, from the same lexical normalisation as the shape key. Those ids hash a
marked text, so they never collide with the id of a parsed query.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence, Set
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from typing import Any, TypeVar

import sqlglot
from pydantic import BaseModel, ConfigDict
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokenizer_core import Token, TokenType
from sqlglot.tokens import Tokenizer

from costline.warehouse.sql import SqlProblem, parse_statement, split_statements, table_name

__all__ = [
    "Fingerprint",
    "fingerprint",
    "fingerprint_many",
    "fingerprint_with",
    "map_shapes",
    "normalize_lexically",
    "shape_key_sql",
    "token_key",
]


class Fingerprint(BaseModel):
    """The pattern a query text belongs to."""

    model_config = ConfigDict(frozen=True)

    id: str
    """``fp_`` + 16 hex chars of blake2b over the normalised text; stable everywhere."""
    normalized: str
    """The canonical text the id hashes: literals ``?``, no comments, keywords upper case."""
    parsed: bool
    """False when sqlglot could not parse the text and a token-level fallback was used."""
    statement_type: str
    """BigQuery's ``statement_type`` spelling (SELECT, MERGE, SCRIPT...) or ``UNKNOWN``."""
    tables: tuple[str, ...]
    """Referenced tables as written but unquoted (``proj.ds.tbl``), sorted, CTEs excluded."""


# --------------------------------------------------------------------------------------------
# Lexical layer (shared by the DuckDB shape key and the last-resort fallback)
# --------------------------------------------------------------------------------------------
#
# Each pass is one regular expression whose alternatives are tried left to right at every
# position (RE2 and Python's `re` both pick the first alternative that matches), so the lexical
# order of the language is respected: a `--` inside a string is part of the string, a quote
# inside a comment is part of the comment, digits inside backticks are part of a name.
# The replacement templates can only copy capture groups plus constant text, so erased
# lexemes are marked with two control characters that never occur in query text; a text that
# does contain one is keyed by itself instead.

_STRING_MARK = "\x01"
_NUMBER_MARK = "\x02"

_BACKTICK = r"`(?:[^`\\]|\\(?s:.))*`"
_TRIPLE = r"'''(?:[^\\]|\\(?s:.))*?'''|\"\"\"(?:[^\\]|\\(?s:.))*?\"\"\""
_SINGLE = r"'(?:[^'\\]|\\(?s:.))*'|\"(?:[^\"\\]|\\(?s:.))*\""
_COMMENTS = r"--[^\n\r]*|\{#(?s:.)*?#\}|#[^\n\r]*|/\*(?s:.)*?\*/"
# Where the tokenizer commits to a construct that never ends (`'''` without its closing
# `'''`, a lone quote, backtick, `/*` or `{#`) it fails, and so does the key: the rest of
# the text is copied as it is. Without this, `'''a'` would read as `''` + `'a'`.
_UNTERMINATED_TRIPLE = r"(?:'''|\"\"\")(?s:.)*"
_UNTERMINATED = r"(?:['\"`]|/\*|\{#)(?s:.)*"
_WORD = r"(?:[A-Za-z0-9_]|[^\x00-\x7f])+"
_WS = r"[ \t\n\r\f\v]+"

# Pass 1: strings become a mark; backticks, comments and unterminated rests are copied with a
# mark after them. Alternatives are ordered as the tokenizer decides: `'''` before `'`.
_P1 = (
    rf"({_BACKTICK}|{_COMMENTS})|(?:{_TRIPLE})|({_UNTERMINATED_TRIPLE})|(?:{_SINGLE})"
    rf"|({_UNTERMINATED})"
)
# Pass 2: comments (now followed by the mark) become their delimiters only. A block comment
# keeps both ends so that it stays distinguishable from an unterminated `/*` left in the text.
_P2 = (
    rf"({_BACKTICK}{_STRING_MARK})"
    rf"|(--|#)[^\n\r]*{_STRING_MARK}"
    rf"|(/\*)(?s:.)*?(\*/){_STRING_MARK}"
    rf"|(\{{#)(?s:.)*?(#\}}){_STRING_MARK}"
)
# Pass 3: numbers become a mark, except digits that belong to a name: inside words (t_2024,
# 1a: no word boundary before them), path parts after a dot (ds.123), words led by a non-ASCII
# letter (é2) and dashed project names (my-proj-123.ds). Words are not matched one by one,
# which keeps the pass fast. The character after a number is consumed and copied back because
# RE2 has no look-ahead.
_P3 = (
    rf"({_BACKTICK}|{_WORD}(?:-{_WORD})+\.|\.[0-9](?:{_WORD})?|[^\x00-\x7f](?:{_WORD})?)"
    rf"|\b[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?(?:([^A-Za-z0-9_.`\x80-\x{{10FFFF}}])|$)"
)
# Pass 4: IN lists and arrays of literal marks collapse to one element.
_LIT = rf"(?:-?{_NUMBER_MARK}|{_STRING_MARK})"
_P4_IN = (
    rf"(^|[^A-Za-z0-9_\x80-\x{{10FFFF}}])((?i:IN)[ \t\n\r\f\v]*\([ \t\n\r\f\v]*)"
    rf"({_LIT})(?:[ \t\n\r\f\v]*,[ \t\n\r\f\v]*{_LIT})+[ \t\n\r\f\v]*\)"
)
_P4_ARRAY = rf"\[[ \t\n\r\f\v]*({_LIT})(?:[ \t\n\r\f\v]*,[ \t\n\r\f\v]*{_LIT})+[ \t\n\r\f\v]*\]"
# Pass 5: whitespace runs become one space, except inside backticks. Single spaces already
# are one, so only other runs are matched.
_P5 = rf"({_BACKTICK})|[ ]*[\t\n\r\f\v](?:{_WS})?|[ ][ ]+"

_PASSES: tuple[tuple[str, str], ...] = (
    (_P1, r"\1\2\3" + _STRING_MARK),
    (_P2, r"\1\2\3\4\5\6"),
    (_P3, r"\1" + _NUMBER_MARK + r"\2"),
    (_P4_IN, r"\1\2\3)"),
    (_P4_ARRAY, r"[\1]"),
    (_P5, r"\1 "),
)


def _py_pattern(pattern: str) -> str:
    # RE2 spells a code point \x{10FFFF}; Python spells it \U0010FFFF.
    return pattern.replace(r"\x{10FFFF}", r"\U0010FFFF")


def _py_template(template: str) -> str:
    # Python substitutes an unmatched group with '' just like RE2.
    return template


# ASCII: RE2's \b is an ASCII word boundary.
_PY_PASSES = tuple((re.compile(_py_pattern(p), re.ASCII), _py_template(t)) for p, t in _PASSES)


def normalize_lexically(sql: str) -> str:
    """The shape key of ``sql``, computed in Python exactly as :func:`shape_key_sql` does.

    Used as the last-resort normalisation for text the tokenizer rejects (so such texts group
    exactly like their shape keys) and to test the DuckDB expression against.
    """
    if "\x01" in sql or "\x02" in sql:
        return "r" + sql
    text = sql
    for pattern, template in _PY_PASSES:
        text = pattern.sub(template, text)
    return "k" + text.strip(" ")


def _sql_string(value: str) -> str:
    """A DuckDB string literal for `value` (control characters via chr())."""
    parts: list[str] = []
    buf = ""
    for ch in value:
        if ch in "\x01\x02":
            if buf:
                parts.append("'" + buf.replace("'", "''") + "'")
                buf = ""
            parts.append(f"chr({ord(ch)})")
        else:
            buf += ch
    if buf or not parts:
        parts.append("'" + buf.replace("'", "''") + "'")
    return " || ".join(parts)


def _passes_sql(expr: str, passes: Sequence[tuple[str, str]]) -> str:
    for pattern, template in passes:
        expr = f"regexp_replace({expr}, {_sql_string(pattern)}, {_sql_string(template)}, 'g')"
    return expr


def _marked_sql(column: str) -> str:
    return f"(contains({column}, chr(1)) OR contains({column}, chr(2)))"


def shape_key_sql(column: str) -> str:
    """A DuckDB expression mapping the query texts in ``column`` to a cheap grouping key.

    Contract: texts with the same key have the same :func:`fingerprint`, so a caller may
    fingerprint one representative per key. The converse does not hold (keyword case or a
    space before a dot give different keys for one fingerprint); that only costs a parse.

    The expression strips comments (``--``, ``#``, ``/* */``), blanks string literals (every
    quote style, with r/b prefixes) and numeric literals, collapses IN lists and arrays of
    literals to one element and collapses whitespace, in the lexical order of BigQuery SQL,
    and never touches identifiers, backtick-quoted names or keywords. It is the vectorised
    twin of :func:`normalize_lexically`. (:func:`shape_key_head_sql` and
    :func:`shape_key_rest_sql` compute the same key in two steps.)
    """
    return (
        f"CASE WHEN {_marked_sql(column)} THEN 'r' || {column} "
        f"ELSE 'k' || trim({_passes_sql(column, _PASSES)}, ' ') END"
    )


def shape_key_head_sql(column: str) -> str:
    """The first step of :func:`shape_key_sql`: string literals and comments blanked, or NULL
    for a text that is keyed by itself (``'r' ||`` the text).

    Most of what varies between runs of one query is its string literals, so a history has
    far fewer distinct heads than texts: a caller groups by the head and runs the remaining
    passes (:func:`shape_key_rest_sql`) once per distinct head. For a text ``q`` whose head
    ``h`` is not NULL, ``shape_key_rest_sql(h)`` equals ``shape_key_sql(q)``.
    """
    return f"CASE WHEN {_marked_sql(column)} THEN NULL ELSE {_passes_sql(column, _PASSES[:1])} END"


def shape_key_rest_sql(head: str) -> str:
    """The shape key from a non-NULL :func:`shape_key_head_sql`; see there."""
    return f"'k' || trim({_passes_sql(head, _PASSES[1:])}, ' ')"


# --------------------------------------------------------------------------------------------
# Token layer
# --------------------------------------------------------------------------------------------

_DIALECT = "bigquery"
_DIALECT_OBJ = sqlglot.Dialect.get_or_raise(_DIALECT)
_LITERAL_TOKENS = frozenset(
    {
        TokenType.STRING,
        TokenType.NUMBER,
        TokenType.RAW_STRING,
        TokenType.BYTE_STRING,
        TokenType.HEX_STRING,
        TokenType.BIT_STRING,
        TokenType.NATIONAL_STRING,
        TokenType.HEREDOC_STRING,
        TokenType.UNICODE_STRING,
    }
)
_TOKENIZERS = threading.local()


def _tokenize(sql: str, dialect: str) -> list[Token]:
    """Tokens of ``sql``, from a tokenizer kept per thread and dialect (building one per text
    costs a tenth of tokenizing it; a tokenizer resets itself on each call)."""
    cache: dict[str, Tokenizer] | None = getattr(_TOKENIZERS, "by_dialect", None)
    if cache is None:
        cache = _TOKENIZERS.by_dialect = {}
    tokenizer = cache.get(dialect)
    if tokenizer is None:
        tokenizer = cache[dialect] = sqlglot.Dialect.get_or_raise(dialect).tokenizer()
    return list(tokenizer.tokenize(sql))


_NAME_RE = re.compile(r"[A-Za-z0-9_\x80-\U0010FFFF]+")
_PLAIN_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def _adjacent(a: Token, b: Token) -> bool:
    return a.end + 1 == b.start


def _is_name_token(tok: Token) -> bool:
    return tok.token_type not in _LITERAL_TOKENS - {TokenType.NUMBER} and bool(
        _NAME_RE.fullmatch(tok.text.rstrip(".") if tok.token_type is TokenType.NUMBER else tok.text)
    )


def _number_is_name(tokens: Sequence[Token], i: int) -> bool:
    """Whether the NUMBER token at ``i`` is part of a name rather than a literal.

    sqlglot reads ``ds.2024_t`` as DOT, NUMBER, VAR and ``my-proj-123.ds`` as VAR, DASH,
    NUMBER; the parser glues them back into identifiers. Keeping these digits is what makes
    two different tables two different fingerprints. Every case kept here is one the shape
    key keeps too (names, `.name` parts, dashed paths followed by a dot).
    """
    tok = tokens[i]
    text = tok.text
    prev = tokens[i - 1] if i > 0 else None
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    if prev is not None and prev.token_type is TokenType.DOT and _adjacent(prev, tok):
        return True
    if (
        nxt is not None
        and not text.endswith(".")
        and _adjacent(tok, nxt)
        and nxt.token_type is not TokenType.NUMBER
        and _is_name_token(nxt)
    ):
        return True
    if not text.rstrip(".").isdigit():
        return False
    # A dashed chain `word-word-...` of adjacent tokens that ends with a dot.
    j = i
    while j >= 2 and (
        tokens[j - 1].token_type is TokenType.DASH
        and _adjacent(tokens[j - 1], tokens[j])
        and _adjacent(tokens[j - 2], tokens[j - 1])
        and _is_name_token(tokens[j - 2])
        and not tokens[j - 2].text.endswith(".")
    ):
        j -= 2
    if j == i:
        return False
    k = i
    while not tokens[k].text.endswith(".") and k + 2 < len(tokens):
        dash, part = tokens[k + 1], tokens[k + 2]
        if not (
            dash.token_type is TokenType.DASH
            and _adjacent(tokens[k], dash)
            and _adjacent(dash, part)
            and _is_name_token(part)
        ):
            break
        k += 2
    if tokens[k].text.endswith("."):
        return True
    after = tokens[k + 1] if k + 1 < len(tokens) else None
    return after is not None and after.token_type is TokenType.DOT and _adjacent(tokens[k], after)


def _blank_literals(tokens: list[Token], bodies: Set[int] | None = None) -> None:
    """Replace the text of literal tokens in place, so the parser never sees their values.

    The raw text the tokenizer keeps for a command statement is left alone: it is normalised
    as a whole later. Tokens are blanked left to right (:func:`_number_is_name` looks at the
    already blanked ones before it).
    """
    if bodies is None:
        bodies = _command_bodies(tokens)
    for i, tok in enumerate(tokens):
        tt = tok.token_type
        if tt in _LITERAL_TOKENS and i not in bodies:
            if tt is TokenType.NUMBER:
                if not _number_is_name(tokens, i):
                    tok.text = "0"
            else:
                tok.text = "?"


_COMMAND_TOKENS = frozenset(sqlglot.Dialect.get_or_raise(_DIALECT).tokenizer_class.COMMANDS)
_COMMAND_PREFIX = frozenset(
    sqlglot.Dialect.get_or_raise(_DIALECT).tokenizer_class.COMMAND_PREFIX_TOKENS
)


def _command_bodies(tokens: Sequence[Token]) -> Set[int]:
    """Indices of STRING tokens the tokenizer made from the raw rest of a command statement."""
    out: set[int] = set()
    prev2: TokenType | None = None
    prev: TokenType | None = None
    for i, tok in enumerate(tokens):
        tt = tok.token_type
        if (
            tt is TokenType.STRING
            and prev in _COMMAND_TOKENS
            and (i == 1 or prev2 in _COMMAND_PREFIX)
        ):
            out.add(i)
        prev2, prev = prev, tt
    return out


_LIT_PLACEHOLDER = "?"


def _token_text(tok: Token, in_path: bool) -> str:
    tt = tok.token_type
    if tt in _LITERAL_TOKENS:
        return tok.text if tok.text not in ("0", "?") else _LIT_PLACEHOLDER
    if tt is TokenType.IDENTIFIER:
        parts = tok.text.split(".")
        if all(_PLAIN_IDENT.fullmatch(p) for p in parts):
            # Quoting must not matter: a lone quoted name prints like the bare word would.
            return tok.text if in_path or len(parts) > 1 else tok.text.upper()
        return "`" + tok.text.replace("`", "\\`") + "`"
    if tt is TokenType.VAR and in_path:
        # Part of a dotted path, likely a table name, whose case matters in BigQuery. A lone
        # word is a keyword sqlglot does not know (END IF, LOOP) or a case-insensitive column.
        return tok.text
    return tok.text.upper()


def _collapse_token_lists(words: list[str], types: list[TokenType | None]) -> list[str]:
    """Collapse ``IN (?, ?, ...)`` and ``[?, ?, ...]`` to one element, on printed tokens."""
    n = len(words)
    openers = [
        i
        for i, t in enumerate(types)
        if t is TokenType.L_BRACKET
        or (t is TokenType.L_PAREN and i and types[i - 1] is TokenType.IN)
    ]
    if not openers:
        return words
    out: list[str] = []
    done = 0  # words before this index are settled
    for i in openers:
        if i < done:
            continue  # inside a list already collapsed
        opener = types[i]
        closer = TokenType.R_PAREN if opener is TokenType.L_PAREN else TokenType.R_BRACKET
        j, count, ok = i + 1, 0, True
        while ok:
            if j < n and types[j] is TokenType.DASH:
                j += 1
            if j < n and words[j] == _LIT_PLACEHOLDER and types[j] in _LITERAL_TOKENS:
                count += 1
                j += 1
            else:
                ok = False
                break
            if j < n and types[j] is TokenType.COMMA:
                j += 1
                continue
            break
        # One element is rewritten too, so that `IN (-1)` reads like `IN (-1, 2)`.
        if ok and count >= 1 and j < n and types[j] is closer:
            out.extend(words[done:i])
            out.extend((words[i], _LIT_PLACEHOLDER, words[j]))
            done = j + 1
    out.extend(words[done:])
    return out


def _normalize_tokens(tokens: list[Token], tables: set[str]) -> str:
    """Token-level canonical text: literals ``?``, keywords upper, IN lists collapsed.

    Expects literals already blanked; adds the tables it can see to ``tables``.
    """
    words: list[str] = []
    types: list[TokenType | None] = []
    bodies = _command_bodies(tokens)
    tables.update(_tables_from_tokens(tokens))
    for i, tok in enumerate(tokens):
        if i in bodies:
            text, found = _normalize_fragment(tok.text)
            words.append(text)
            types.append(None)
            tables.update(found)
        else:
            in_path = (i > 0 and tokens[i - 1].token_type is TokenType.DOT) or (
                i + 1 < len(tokens) and tokens[i + 1].token_type is TokenType.DOT
            )
            words.append(_token_text(tok, in_path))
            types.append(tok.token_type)
    words = _collapse_token_lists(words, types)
    return " ".join(words).replace(" . ", ".")


def _normalize_fragment(sql: str) -> tuple[str, set[str]]:
    """Token-level normalisation of a statement's raw text, and the tables it names."""
    tables: set[str] = set()
    try:
        tokens = _tokenize(sql, _DIALECT)
    except SqlglotError:
        return normalize_lexically(sql), tables
    _blank_literals(tokens)
    return _normalize_tokens(tokens, tables), tables


# --------------------------------------------------------------------------------------------
# AST layer
# --------------------------------------------------------------------------------------------

_LITERAL_NODES: tuple[type[exp.Expr], ...] = tuple(
    cls
    for cls in (
        getattr(exp, name, None)
        for name in (
            "Literal",
            "RawString",
            "ByteString",
            "HexString",
            "BitString",
            "National",
            "UnicodeString",
            "HeredocString",
            "JSONPath",
        )
    )
    if isinstance(cls, type)
)

_STATEMENT_TYPES: dict[type[exp.Expr], str] = {
    exp.Insert: "INSERT",
    exp.Merge: "MERGE",
    exp.Update: "UPDATE",
    exp.Delete: "DELETE",
    exp.TruncateTable: "TRUNCATE_TABLE",
    exp.Export: "EXPORT_DATA",
}


def _placeholder() -> exp.Placeholder:
    return exp.Placeholder()


def _all_placeholders(nodes: Sequence[exp.Expr]) -> bool:
    return bool(nodes) and all(isinstance(n, exp.Placeholder) and not n.this for n in nodes)


def _canonical_table(table: exp.Table) -> None:
    """Print every table path one way: ``proj.ds.tbl``, `` `proj.ds.tbl` `` and
    `` `proj`.`ds`.`tbl` `` are the same table; a path with a non-plain part is quoted whole."""
    parts = [p for p in (table.args.get("catalog"), table.args.get("db"), table.this) if p]
    if not parts or not all(isinstance(p, exp.Identifier) for p in parts):
        return
    names = ".".join(p.name for p in parts).split(".")
    plain = all(_PLAIN_IDENT.fullmatch(n) for n in names)
    # The parser flags `proj.ds.tbl` written in one pair of backticks so it can print it back
    # that way; the canonical form prints every path alike.
    table.meta.pop("quoted_table", None)
    table.set("catalog", None)
    table.set("db", None)
    table.set("this", exp.Identifier(this=".".join(names), quoted=not plain))


def _normalize_ast(root: exp.Expr, command_tables: set[str]) -> None:
    """Blank literals, collapse literal lists, canonicalise identifiers; in place, one walk.

    Tables named inside statements kept as raw text are added to ``command_tables``.
    """
    nodes = list(root.walk(bfs=False))
    table_idents: set[int] = set()
    for node in nodes:
        if isinstance(node, exp.Table):
            _canonical_table(node)
            table_idents.add(id(node.this))
        elif isinstance(node, exp.Column):
            node.meta.pop("quoted_column", None)
    # Children come after their parent in a depth-first pre-order list, so walking it backwards
    # rewrites leaves (literals) before the lists that contain them.
    for node in reversed(nodes):
        if isinstance(node, exp.Command):
            # A statement sqlglot keeps as raw text (IF, WHILE, BEGIN ... END, CALL):
            # normalise that text at token level so its literals and comments go too.
            body = node.args.get("expression")
            raw = body.this if isinstance(body, exp.Literal) else str(body or "")
            text, found = _normalize_fragment(raw)
            node.set("this", str(node.this).upper())
            node.set(
                "expression", exp.Literal.string(text) if isinstance(body, exp.Literal) else text
            )
            command_tables.update(found)
        elif isinstance(node, _LITERAL_NODES):
            if isinstance(node.parent, exp.Command):
                continue
            node.replace(_placeholder())
        elif isinstance(node, exp.Neg) and isinstance(node.this, exp.Placeholder):
            node.replace(_placeholder())
        elif isinstance(node, exp.In | exp.Array):
            items = node.expressions
            if len(items) > 1 and _all_placeholders(items):
                node.set("expressions", [_placeholder()])
        elif isinstance(node, exp.Values):
            rows = node.expressions
            if len(rows) > 1 and all(
                isinstance(r, exp.Tuple)
                and _all_placeholders(r.expressions)
                and len(r.expressions) == len(rows[0].expressions)
                for r in rows
            ):
                node.set("expressions", [rows[0]])
        elif isinstance(node, exp.Identifier):
            if id(node) in table_idents:
                continue
            # Column names, aliases and field names are case-insensitive in BigQuery; table and
            # dataset names are not, so table paths (above) keep their case.
            name = node.this.lower()
            node.set("this", name)
            node.set("quoted", not _PLAIN_IDENT.fullmatch(name))


def _statement_type(stmt: exp.Expr) -> str:
    if isinstance(stmt, exp.Query):
        return "SELECT"
    for cls, name in _STATEMENT_TYPES.items():
        if isinstance(stmt, cls):
            return name
    if isinstance(stmt, exp.Create):
        kind = str(stmt.args.get("kind") or "").upper()
        if kind == "TABLE" and stmt.expression is not None:
            return "CREATE_TABLE_AS_SELECT"
        return f"CREATE_{kind}" if kind else "UNKNOWN"
    if isinstance(stmt, exp.Drop):
        kind = str(stmt.args.get("kind") or "").upper()
        return f"DROP_{kind}" if kind else "UNKNOWN"
    if isinstance(stmt, exp.Alter):
        kind = str(stmt.args.get("kind") or "TABLE").upper()
        return f"ALTER_{kind}"
    if isinstance(stmt, exp.Command):
        return "SCRIPT"
    return "UNKNOWN"


def _tables(stmts: Sequence[exp.Expr]) -> tuple[str, ...]:
    names: set[str] = set()
    ctes: set[str] = set()
    for stmt in stmts:
        for cte in stmt.find_all(exp.CTE):
            ctes.add(cte.alias_or_name)
        for table in stmt.find_all(exp.Table):
            if not isinstance(table.this, exp.Identifier):
                continue
            name = table_name(table)
            if name and not (len(table.parts) == 1 and name in ctes):
                names.add(name)
    return tuple(sorted(names))


_TABLE_KEYWORDS = frozenset(
    {
        TokenType.FROM,
        TokenType.JOIN,
        TokenType.INTO,
        TokenType.UPDATE,
        TokenType.MERGE,
        TokenType.TABLE,
    }
)


def _tables_from_tokens(tokens: Sequence[Token]) -> set[str]:
    """Best-effort table names for text the parser did not understand: paths after FROM etc."""
    out: set[str] = set()
    n = len(tokens)
    for i, tok in enumerate(tokens):
        if tok.token_type not in _TABLE_KEYWORDS or i + 1 >= n:
            continue
        parts: list[str] = []
        j = i + 1
        while j < n and tokens[j].token_type in (TokenType.VAR, TokenType.IDENTIFIER):
            parts.extend(tokens[j].text.split("."))
            if j + 1 < n and tokens[j + 1].token_type is TokenType.DOT:
                j += 2
            else:
                break
        if parts and all(parts):
            out.add(".".join(parts))
    return out


def _statement_type_from_tokens(tokens: Sequence[Token]) -> str:
    if not tokens:
        return "UNKNOWN"
    if sum(t.token_type is TokenType.SEMICOLON for t in tokens[:-1]) > 0:
        return "SCRIPT"
    first = tokens[0].text.upper()
    if first in ("SELECT", "WITH"):
        return "SELECT"
    if first in ("INSERT", "MERGE", "UPDATE", "DELETE"):
        return first
    if first in ("DECLARE", "BEGIN", "CALL", "SET", "IF", "WHILE", "LOOP", "EXECUTE"):
        return "SCRIPT"
    return "UNKNOWN"


def _make(
    normalized: str, *, parsed: bool, statement_type: str, tables: Iterable[str]
) -> Fingerprint:
    digest = hashlib.blake2b(normalized.encode("utf-8"), digest_size=8).hexdigest()
    return Fingerprint(
        id="fp_" + digest,
        normalized=normalized,
        parsed=parsed,
        statement_type=statement_type,
        tables=tuple(sorted(set(tables))),
    )


# Markers prefixed to the hashed text so that fallback ids live in the same space as parsed
# ones without ever colliding with them.
_TOKEN_MARK = "\x00tokens\x00"
_LEXICAL_MARK = "\x00lexical\x00"


@lru_cache(maxsize=4096)
def fingerprint(sql: str, dialect: str = "bigquery") -> Fingerprint:
    """The fingerprint of one query text (parsed once; see the module docstring)."""
    return fingerprint_with(sql, dialect)


def fingerprint_with(
    sql: str,
    dialect: str = "bigquery",
    visit: Callable[[Sequence[exp.Expr]], None] | None = None,
) -> Fingerprint:
    """:func:`fingerprint`, letting ``visit`` read the parsed statements first.

    Other analyses that need the syntax tree (column access patterns) ride on the same parse
    instead of parsing the text again; ``visit`` sees the statements before they are rewritten
    into canonical form (literal tokens already blanked) and must not modify them.
    """
    dialect_obj = sqlglot.Dialect.get_or_raise(dialect)
    try:
        tokens = _tokenize(sql, dialect)
    except SqlglotError:
        return _make(
            _LEXICAL_MARK + normalize_lexically(sql),
            parsed=False,
            statement_type="UNKNOWN",
            tables=(),
        )
    _blank_literals(tokens)
    pieces = _parse(dialect_obj, tokens, sql)
    if not any(isinstance(p, exp.Expr) for p in pieces):
        found: set[str] = set()
        text = _normalize_tokens(tokens, found)
        return _make(
            _TOKEN_MARK + text,
            parsed=False,
            statement_type=_statement_type_from_tokens(tokens),
            tables=found,
        )
    stmts = [p for p in pieces if isinstance(p, exp.Expr)]
    if visit is not None:
        visit(stmts)
    tables = set(_tables(stmts))
    generator = dialect_obj.generator(comments=False, normalize_functions="upper")
    texts: list[str] = []
    for piece in pieces:
        if isinstance(piece, exp.Expr):
            _normalize_ast(piece, tables)
            if isinstance(piece, (*_LITERAL_NODES, exp.Neg)) and not piece.find(exp.Column):
                # A statement that is a bare literal: the walk above cannot replace the root.
                piece = _placeholder()
            texts.append(generator.generate(piece, copy=False))
        else:
            # A statement of a script the parser rejected: its token-level form, marked.
            texts.append(_TOKEN_MARK + _normalize_tokens(piece, tables))
    kinds = [p for p in pieces if not isinstance(p, exp.EndStatement)]
    statement_type = (
        _statement_type(kinds[0])
        if len(kinds) == 1 and isinstance(kinds[0], exp.Expr)
        else "SCRIPT"
    )
    return _make(";\n".join(texts), parsed=True, statement_type=statement_type, tables=tables)


def _parse(
    dialect_obj: sqlglot.Dialect, tokens: list[Token], sql: str
) -> list[exp.Expr | list[Token]]:
    """Statements parsed from ``tokens``; in a script, a statement the parser rejects (or
    fails on) is kept as its tokens so the rest of the script is still understood."""
    whole = parse_statement(tokens, sql, dialect_obj)
    if not isinstance(whole, SqlProblem):
        return list(whole)
    chunks = split_statements(tokens)
    if len(chunks) < 2:
        return [tokens]
    out: list[exp.Expr | list[Token]] = []
    for chunk in chunks:
        parsed = parse_statement(chunk, sql, dialect_obj)
        if isinstance(parsed, SqlProblem):
            out.append(chunk)
        else:
            out.extend(parsed)
    return out


# Tokens after which a name followed by "(" is a table with a column list, not a function.
_BEFORE_TABLE = _TABLE_KEYWORDS | {TokenType.INSERT, TokenType.USING, TokenType.DOT}


def token_key(sql: str, dialect: str = "bigquery") -> str:
    """A cheap key (tokenize only, no parse) under which texts share one fingerprint.

    Literal tokens are blanked, comments and whitespace dropped, keywords upper-cased, plain
    quoted identifiers unquoted and literal IN lists collapsed — everything
    :func:`fingerprint` ignores — while names keep their case (table names are case-sensitive
    in BigQuery). Two texts with the same key therefore have the same fingerprint, so a batch
    is parsed once per key. Texts the tokenizer rejects key on their lexical normalisation.
    """
    try:
        tokens = _tokenize(sql, dialect)
    except SqlglotError:
        return _LEXICAL_MARK + normalize_lexically(sql)
    bodies = _command_bodies(tokens)
    _blank_literals(tokens, bodies)
    # One pass over the tokens: this runs for every distinct text of a history.
    types: list[TokenType | None] = [tok.token_type for tok in tokens]
    words: list[str] = []
    append = words.append
    last = len(tokens) - 1
    for i, tok in enumerate(tokens):
        tt = types[i]
        text = tok.text
        if bodies and i in bodies:
            append(_normalize_fragment(text)[0])
            types[i] = None
        elif tt in _LITERAL_TOKENS:
            append(text if text not in ("0", "?") else _LIT_PLACEHOLDER)
        elif tt is TokenType.VAR:
            # A bare name called like a function (not a table with a column list, see
            # _BEFORE_TABLE): fingerprint() prints those upper case.
            called = (
                i < last
                and types[i + 1] is TokenType.L_PAREN
                and (i == 0 or types[i - 1] not in _BEFORE_TABLE)
            )
            append(text.upper() if called else text)
        elif tt is TokenType.IDENTIFIER:
            # Unquoted, case kept: `t` and t share a key, `T` and t do not.
            append(text if _PLAIN_PATH.fullmatch(text) else _token_text(tok, in_path=False))
        elif tt is TokenType.PLACEHOLDER:
            # A query parameter is structure, not a literal: keep it apart from the "?" that
            # blanked literals print as.
            append("\x02" + text)
        else:
            append(text.upper())
    return "\x00".join(_collapse_token_lists(words, types))


# Below this many texts the start-up of worker processes costs more than it saves.
_PARALLEL_THRESHOLD = 2000

T = TypeVar("T")


def _token_keys(texts: Sequence[str]) -> list[str]:
    return [token_key(t) for t in texts]


def _fingerprint_chunk(texts: Sequence[str]) -> list[Fingerprint]:
    return [fingerprint(t) for t in texts]


def _chunks(items: Sequence[str], cpus: int) -> list[Sequence[str]]:
    size = max(64, -(-len(items) // (cpus * 4)))
    return [items[i : i + size] for i in range(0, len(items), size)]


def map_shapes(
    texts: Iterable[str],
    analyse: Callable[[Sequence[str]], list[T]],
    *,
    workers: int | None = None,
) -> list[T]:
    """``analyse`` applied to one representative text per :func:`token_key`, in input order.

    ``analyse`` maps a chunk of texts to one result each and must be picklable (a module-level
    function or a ``functools.partial`` of one): large batches are spread over worker
    processes, because tokenizing and parsing are pure Python and CPU-bound; small batches run
    serially, and so does everything where processes cannot start. ``workers=1`` forces the
    serial path.
    """
    items = list(texts)
    cpus = workers if workers is not None else (os.cpu_count() or 1)
    pool: ProcessPoolExecutor | None = None
    if cpus > 1 and len(items) >= _PARALLEL_THRESHOLD:
        try:
            pool = ProcessPoolExecutor(max_workers=cpus)
        except (OSError, RuntimeError):
            pool = None

    def run(fn: Callable[[Sequence[str]], list[Any]], batch: list[str]) -> list[Any]:
        if pool is None or len(batch) < _PARALLEL_THRESHOLD // 4:
            return fn(batch)
        return [r for part in pool.map(fn, _chunks(batch, cpus)) for r in part]

    try:
        keys = run(_token_keys, items)
        first: dict[str, int] = {}
        for i, key in enumerate(keys):
            first.setdefault(key, i)
        representatives = list(first.values())
        results = run(analyse, [items[i] for i in representatives])
    except (OSError, RuntimeError) as exc:
        if pool is None:
            raise
        # A pool that breaks (a sandbox without process support) still gets an answer.
        logging.getLogger(__name__).debug("worker pool failed, running serially: %s", exc)
        pool.shutdown(cancel_futures=True)
        pool = None
        return map_shapes(items, analyse, workers=1)
    finally:
        if pool is not None:
            pool.shutdown()
    by_key = {keys[i]: r for i, r in zip(representatives, results, strict=True)}
    return [by_key[k] for k in keys]


def fingerprint_many(texts: Iterable[str], *, workers: int | None = None) -> list[Fingerprint]:
    """Fingerprints of many texts, in input order, parsing once per :func:`token_key`."""
    return map_shapes(texts, _fingerprint_chunk, workers=workers)
