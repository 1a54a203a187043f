"""BigQuery scripts read statement by statement: procedural structure, templating, dynamic SQL.

A file, a view body or a job's query text is a *script*: statements separated by semicolons,
wrapped in BigQuery's procedural language (``DECLARE``/``SET``, ``BEGIN … EXCEPTION WHEN ERROR
THEN … END``, ``IF … ELSEIF … ELSE … END IF``, ``CASE … END CASE``, ``LOOP``, ``WHILE … DO``,
``REPEAT … UNTIL``, ``FOR x IN (query) DO``, labels, ``BREAK``/``CONTINUE``/``RETURN``/``RAISE``,
``EXECUTE IMMEDIATE``, ``CALL``, ``CREATE PROCEDURE … BEGIN … END``, transactions, ``ASSERT``).
sqlglot parses single statements well and that language hardly at all, so the structure is
read here at the token level and every statement inside it is parsed on its own:

- each statement knows how many loops enclose it (a statement in a loop runs many times);
- queries that run as part of the structure are statements too: the ``(query)`` of a ``FOR``,
  a condition of ``IF``/``WHILE``/``UNTIL``/``CASE WHEN`` that holds a subquery, an ``ASSERT``,
  the literal SQL of ``EXECUTE IMMEDIATE '…'``;
- what cannot be analysed is *skipped with its reason*, never dropped: a ``CALL`` (the
  procedure's body is analysed where it is defined), ``EXECUTE IMMEDIATE`` of SQL built at
  run time, a statement sqlglot keeps only as raw text;
- what does not parse is a :class:`~costline.warehouse.sql.parse.SqlProblem`, and the reading
  goes on with the next statement;
- templated text (Jinja, ``${…}``) is first made parseable (:mod:`.template`), lines kept.

Script variables (``DECLARE d DATE …``) are bound in the trees as ``exp.Var``: values known
before a query runs, which the engine prunes on like constants.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import TokenError
from sqlglot.tokenizer_core import Token, TokenType

from costline.warehouse.sql.parse import (
    DEFAULT_DIALECT,
    UNTOKENIZABLE,
    SqlProblem,
    get_dialect,
    parse_statement,
    quiet,
    split_statements,
    tokenize,
    tokenize_pieces,
    tokenize_span,
)
from costline.warehouse.sql.template import Templated, detemplate

__all__ = ["ScriptReading", "ScriptStatement", "SkippedStatement", "read_script"]


@dataclass
class ScriptStatement:
    """One parsed statement of a script."""

    expr: exp.Expr
    tokens: Sequence[Token]
    offset: int
    """Character offset of the statement's first token in the (templated) text."""
    loop_depth: int = 0
    """How many loops (LOOP, WHILE, REPEAT, FOR) enclose the statement."""


@dataclass(frozen=True)
class SkippedStatement:
    """A statement read but not analysed, and why."""

    offset: int
    reason: str


@dataclass
class ScriptReading:
    """Everything read from one text."""

    text: str
    """The text the offsets refer to: the input, or its templated rendering."""
    statements: list[ScriptStatement] = field(default_factory=list)
    problems: list[SqlProblem] = field(default_factory=list)
    skipped: list[SkippedStatement] = field(default_factory=list)
    templated: Templated | None = None


# Token types after which sqlglot's tokenizer keeps the rest of the statement as one string.
_COMMAND_TYPES = frozenset({TokenType.COMMAND, TokenType.EXECUTE})
_BLOCK_ENDS = frozenset({"IF", "LOOP", "WHILE", "FOR", "REPEAT", "CASE"})
_LABELLED = frozenset({"BEGIN", "LOOP", "WHILE", "FOR", "REPEAT"})
# Statements of the procedural language that run no query.
_CONTROL = frozenset({"BREAK", "LEAVE", "CONTINUE", "ITERATE", "RETURN", "RAISE"})
_TRANSACTION = frozenset({"COMMIT", "ROLLBACK"})
_STRING_TYPES = frozenset({TokenType.STRING, TokenType.RAW_STRING})


def _word(tokens: Sequence[Token], i: int) -> str:
    return tokens[i].text.upper() if i < len(tokens) else ""


def _find(tokens: Sequence[Token], start: int, word: str) -> int:
    """Index of the first ``word`` at parenthesis depth 0 from ``start``, or -1."""
    depth = 0
    for i in range(start, len(tokens)):
        tok = tokens[i]
        if tok.token_type is TokenType.L_PAREN:
            depth += 1
        elif tok.token_type is TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and tok.text.upper() == word and tok.token_type not in _STRING_TYPES:
            return i
    return -1


def _has_query(tokens: Sequence[Token]) -> bool:
    return any(t.token_type is TokenType.SELECT for t in tokens)


class _Reader:
    def __init__(self, text: str, dialect: sqlglot.Dialect, reading: ScriptReading) -> None:
        self.text = text
        self.dialect = dialect
        self.reading = reading
        self.stack: list[str] = []
        """Open blocks: "loop", "if", "case", "block"."""

    @property
    def loops(self) -> int:
        return self.stack.count("loop")

    def expand(self, tokens: list[Token], i: int) -> None:
        """The tokenizer keeps the rest of a statement after a command word (``BEGIN``,
        ``LOOP``, ``CALL`` …) as one string; tokenize it for real, positions kept."""
        start, end = tokens[i].end + 1, tokens[i + 1].end + 1
        try:
            rest = tokenize_span(self.text, start, end, self.dialect)
        except TokenError:
            return
        tokens[i + 1 :] = rest + tokens[i + 2 :]

    def statement(self, tokens: list[Token], loops: int | None = None) -> None:
        """Parse one statement's tokens and record what came of them."""
        if not tokens:
            return
        depth = self.loops if loops is None else loops
        parsed = parse_statement(tokens, self.text, self.dialect)
        if isinstance(parsed, SqlProblem):
            self.reading.problems.append(parsed)
            return
        for expr in parsed:
            if isinstance(expr, exp.EndStatement):
                continue
            if isinstance(expr, exp.Command):
                head = []
                for t in tokens[:7]:
                    if t.token_type is TokenType.L_PAREN:
                        break
                    head.append(t.text)
                words = " ".join(head)
                self.skip(
                    tokens[0].start,
                    f"{words}: a statement the SQL parser keeps only as text; not analysed",
                )
                continue
            self.reading.statements.append(ScriptStatement(expr, tokens, tokens[0].start, depth))

    def skip(self, offset: int, reason: str) -> None:
        self.reading.skipped.append(SkippedStatement(offset, reason))

    def condition(self, tokens: list[Token], start: int, end: int) -> None:
        """A condition of the procedural language runs its subqueries: lint them."""
        part = tokens[start:end] if end >= 0 else tokens[start:]
        if _has_query(part):
            self.statement(part)

    def chunk(self, tokens: list[Token]) -> None:
        """One semicolon-separated piece: procedural keywords first, then a statement."""
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            if (
                tok.token_type in _COMMAND_TYPES
                and i + 1 < len(tokens)
                and tokens[i + 1].token_type is TokenType.STRING
            ):
                self.expand(tokens, i)
            word, nxt = tok.text.upper(), _word(tokens, i + 1)
            if tok.token_type in _STRING_TYPES:
                break
            if nxt == ":" and _word(tokens, i + 2) in _LABELLED and i + 2 < len(tokens):
                i += 2  # `label: LOOP`
            elif word == "END" and tok.token_type is TokenType.END:
                if self.stack:
                    self.stack.pop()
                i += 2 if nxt in _BLOCK_ENDS else 1
                if i == len(tokens) - 1 and tokens[i].token_type is TokenType.VAR:
                    i += 1  # `END LOOP label`
            elif word.startswith("BEGIN") and (
                nxt in ("TRANSACTION", "TRAN") or word.split()[1:2] in (["TRANSACTION"], ["TRAN"])
            ):
                return  # a transaction is no block (the tokenizer may keep it as one token)
            elif word == "BEGIN":
                self.stack.append("block")
                i += 1
            elif word in ("LOOP", "REPEAT"):
                self.stack.append("loop")
                i += 1
            elif word == "WHILE":
                do = _find(tokens, i + 1, "DO")
                self.condition(tokens, i + 1, do)
                self.stack.append("loop")
                i = len(tokens) if do < 0 else do + 1
            elif word == "FOR" and (do := _find(tokens, i + 1, "DO")) >= 0:
                self.for_query(tokens, i, do)
                self.stack.append("loop")
                i = do + 1
            elif word in ("IF", "ELSEIF") and (then := _find(tokens, i + 1, "THEN")) >= 0:
                self.condition(tokens, i + 1, then)
                if word == "IF":
                    self.stack.append("if")
                i = then + 1
            elif (word == "CASE" and i == 0) or (word == "WHEN" and self.stack[-1:] == ["case"]):
                if word == "CASE":
                    self.stack.append("case")
                when = _find(tokens, i, "WHEN")
                then = _find(tokens, max(when, i) + 1, "THEN")
                if when < 0 or then < 0:
                    break
                self.condition(tokens, when + 1, then)
                i = then + 1
            elif word == "EXCEPTION" and nxt == "WHEN":
                then = _find(tokens, i + 1, "THEN")
                i = len(tokens) if then < 0 else then + 1
            elif word == "ELSE":
                i += 1
            elif word == "UNTIL":
                # REPEAT … UNTIL condition END REPEAT: the condition is no statement.
                end = _find(tokens, i + 1, "END")
                self.condition(tokens, i + 1, end)
                i = len(tokens) if end < 0 else end
            elif word == "CREATE" and (begin := _procedure_body(tokens, i)) >= 0:
                self.stack.append("block")
                i = begin + 1
            else:
                break
        self.body(tokens[i:])

    def for_query(self, tokens: list[Token], start: int, do: int) -> None:
        """``FOR x IN (query) DO``: the query runs once, before the loop."""
        into = _find(tokens, start + 1, "IN")
        if into < 0 or into + 1 >= do:
            return
        inner = tokens[into + 1 : do]
        if inner[0].token_type is TokenType.L_PAREN and inner[-1].token_type is TokenType.R_PAREN:
            inner = inner[1:-1]
        self.statement(inner)

    def body(self, tokens: list[Token]) -> None:
        if not tokens:
            return
        first = tokens[0]
        word = first.text.upper()
        if word in _CONTROL or word in _TRANSACTION:
            return
        if word == "CALL":
            name = "".join(t.text for t in tokens[1:8]).split("(", 1)[0] or "a procedure"
            self.skip(
                first.start,
                f"CALL {name}: a procedure call; the procedure's body is analysed where it is "
                "defined",
            )
            return
        if word == "EXECUTE" and _word(tokens, 1) == "IMMEDIATE":
            self.execute_immediate(tokens)
            return
        if word == "ASSERT" and first.token_type is TokenType.VAR:
            self.statement(tokens[1:])
            return
        self.statement(tokens)

    def execute_immediate(self, tokens: list[Token]) -> None:
        """Literal SQL is read like the script's own; SQL built at run time is skipped."""
        sql = tokens[2] if len(tokens) > 2 else None
        ends = ("INTO", "USING", "")
        if sql is None or sql.token_type not in _STRING_TYPES or _word(tokens, 3) not in ends:
            self.skip(
                tokens[0].start,
                "EXECUTE IMMEDIATE of SQL built at run time: its text is not known here",
            )
            return
        start, end = _string_content(self.text, sql)
        try:
            inner = tokenize_span(self.text, start, end, self.dialect)
        except TokenError:
            self.reading.problems.append(SqlProblem(start, UNTOKENIZABLE))
            return
        for piece in split_statements(inner):
            self.chunk(piece)


def _string_content(text: str, tok: Token) -> tuple[int, int]:
    """Start and end offsets of a string literal's content (quotes and prefix removed)."""
    start, end = tok.start, tok.end + 1
    while start < end and text[start] in "rRbB":
        start += 1
    quote = 3 if text.startswith(('"""', "'''"), start) else 1
    return start + quote, end - quote


def _procedure_body(tokens: Sequence[Token], start: int) -> int:
    """For ``CREATE [OR REPLACE] [TEMP] PROCEDURE name(args) [OPTIONS(...)] BEGIN``: the index
    of the BEGIN that opens the body, else -1."""
    if _find(tokens[: start + 8], start, "PROCEDURE") < 0:
        return -1
    return _find(tokens, start, "BEGIN")


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
    for column in list(expr.find_all(exp.Column)):
        if not column.table and column.name.lower() in variables:
            var = exp.Var(this=column.name)
            var.meta.update(column.this.meta)
            column.replace(var)


def read_script(
    sql: str,
    dialect: str | sqlglot.Dialect = DEFAULT_DIALECT,
    *,
    model: str | None = None,
    template: bool = True,
) -> ScriptReading:
    """Every statement of ``sql``, parsed one at a time (see the module docstring).

    ``model`` names what a template's ``{{ this }}`` refers to; ``template=False`` reads the
    text as it is. Never raises for any text.
    """
    dialect_obj = get_dialect(dialect) if isinstance(dialect, str) else dialect
    templated = detemplate(sql, model=model) if template else None
    text = templated.text if templated is not None else sql
    reading = ScriptReading(text=text, templated=templated)
    if templated is not None:
        reading.skipped += [
            SkippedStatement(
                at,
                f"{{{{ {macro}(…) }}}}: a statement produced by a template macro; its SQL is "
                "not in this file"
                if macro != "include"
                else "{% include … %}: SQL kept in another file, analysed there",
            )
            for at, macro in templated.macros
        ]
    try:
        chunks = split_statements(tokenize(text, dialect_obj))
    except TokenError:
        chunks, bad = tokenize_pieces(text, dialect_obj)
        reading.problems += [SqlProblem(at, UNTOKENIZABLE) for at in bad]
    reader = _Reader(text, dialect_obj, reading)
    with quiet():  # once for the text, not once per statement
        for chunk in chunks:
            try:
                reader.chunk(chunk)
            except RecursionError:
                reading.problems.append(
                    SqlProblem(chunk[0].start, "statement nested too deeply to analyse")
                )
    variables = _declared(s.expr for s in reading.statements)
    if variables:
        for stmt in reading.statements:
            _bind_variables(stmt.expr, variables)
    reading.problems.sort(key=lambda p: p.offset)
    reading.skipped.sort(key=lambda k: k.offset)
    return reading
