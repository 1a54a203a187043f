"""Templated SQL made parseable: Jinja (dbt, Airflow), ``${…}`` and ``{name}`` placeholders.

Production repositories keep much of their SQL as templates: ``FROM {{ ref('orders') }}``,
``WHERE dt = '{{ ds }}'``, ``{% if is_incremental() %} … {% endif %}``,
``` `${project}.ds.t` ```. A parser sees none of that as SQL. This pre-pass replaces each piece of
template markup with SQL that keeps the statement parseable and means what the rendered SQL
would mean to a cost analysis, without rendering anything:

- a relation (``ref('m')``, ``source('s', 't')``, ``this``, or any placeholder where a table
  name goes: after FROM / JOIN / INTO / MERGE …, inside a backquoted path, next to a ``.``) →
  a table name (``m``, ``s.t``, the model's own name for ``this``);
- a value anywhere else → a query parameter ``@name``: known before the query runs, as a
  rendered value is, so a templated partition filter still counts as a constant one;
- inside a string literal → the placeholder's name (the literal stays a literal);
- a macro call that stands where a statement starts (``{{ is_unique(["id"]) }}``) produces a
  statement whose SQL is not in the file: it is removed and reported (:attr:`Templated.macros`);
- ``{% include … %}`` → ``(SELECT NULL)``, a query that reads nothing (the included query is
  analysed in its own file, and reported here as skipped);
- ``{{ config(…) }}``, ``{# … #}``, ``{% set … %}``, macro and test definitions → blank;
- ``{% if %}`` keeps the branch that runs every day: ``is_incremental()`` is true (dbt),
  ``is_init()`` false (bigquery-etl's one-off initialisation); any other condition keeps its
  first branch and drops the others, and what the kept condition compares is assumed from then
  on (``{% if flavour == 'ecc' %}`` kept, a later ``{% if flavour == 's4' %}`` is dropped);
  ``loop.first``/``loop.last`` are true in the one pass of a ``{% for %}`` body that is kept.

Only markup Jinja itself would read is replaced: a ``{%`` that opens no known tag (``'{%s}'``
in a format string) is text. Line breaks are kept everywhere and a replacement is padded to
the length of the markup it replaces when it is shorter, so findings keep the template's own
line numbers (and, outside backquoted names and dotted paths, its columns).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

__all__ = ["Templated", "detemplate", "has_template"]


@dataclass(frozen=True)
class Templated:
    """A template's text made parseable, and how much of it was template markup."""

    text: str
    placeholders: int
    """Expressions (``{{ … }}``, ``${…}``, ``{name}``) replaced."""
    tags: int
    """Statement tags (``{% … %}``) and comments (``{# … #}``) removed."""
    macros: tuple[tuple[int, str], ...] = ()
    """(offset, macro) of each statement a macro call produces: not in the file, not read."""


_FORMAT_FIELD = re.compile(r"\{[A-Za-z_][A-Za-z0-9_.]*\}")
# The tags Jinja and dbt know: a `{%` followed by anything else is no tag (Jinja would fail).
_TAGS = frozenset(
    {
        "if", "elif", "else", "endif", "for", "endfor", "set", "endset", "macro", "endmacro",
        "call", "endcall", "filter", "endfilter", "raw", "endraw", "block", "endblock",
        "extends", "include", "import", "from", "with", "endwith", "do", "break", "continue",
        "autoescape", "endautoescape", "trans", "endtrans", "snapshot", "endsnapshot", "test",
        "endtest", "docs", "enddocs", "materialization", "endmaterialization",
    }
)  # fmt: skip
_TAG_START = re.compile(r"\{%[-+]?\s*(\w+)")
_EXPRESSION_START = re.compile(r"(\{\{|\$\{)[-+]?\s*[A-Za-z_(\[\"']")


def has_template(text: str) -> bool:
    """Whether ``text`` holds template markup Jinja (or a ``${…}``/``{name}`` formatter) would
    read."""
    if "{" not in text:
        return False
    if _EXPRESSION_START.search(text) or "{#" in text:
        return True
    if any(m.group(1).lower() in _TAGS for m in _TAG_START.finditer(text)):
        return True
    return _FORMAT_FIELD.search(text) is not None


# Words after which a name is a table: a placeholder there is a relation.
_TABLE_WORDS = frozenset(
    {"FROM", "JOIN", "INTO", "UPDATE", "TABLE", "MERGE", "USING", "VIEW", "EXISTS", "TRUNCATE"}
)
# Calls that produce no SQL of their own (dbt model configuration, logging).
_SILENT_CALLS = frozenset({"config", "log", "print", "do", "set_sql_header", "return"})
# Block tags whose body is never SQL of the statement (definitions, documentation).
_DROPPED_BLOCKS = frozenset({"macro", "test", "docs", "materialization", "set"})
# Block tags whose body stays (kept once).
_KEPT_BLOCKS = frozenset(
    {"for", "call", "filter", "snapshot", "block", "with", "autoescape", "trans"}
)
_BLOCK_ENDS = {f"end{name}": name for name in (*_DROPPED_BLOCKS, *_KEPT_BLOCKS, "if")}
# The single pass of a loop body that is kept is both its first and its last.
_LOOP_VARIABLES = {"loop.first": True, "loop.last": True}
# Template functions whose value on the run that happens every day is known: dbt's
# is_incremental() (true but on the first build), bigquery-etl's is_init() (true only for the
# one-off initialisation of a table).
_RUN_EVERY_DAY = {"is_incremental": True, "is_init": False}
_INCLUDED = "(SELECT NULL)"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STRING_ARG = re.compile(r"""['"]([^'"]+)['"]""")
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_TAG_WORD = re.compile(r"[-+]?\s*(\w+)")
_LAST_WORD = re.compile(r"([A-Za-z_]+)\s*$")
_NOT_NEWLINE = re.compile(r"[^\n]")
_END_RAW = re.compile(r"\{%-?\s*endraw\s*-?%\}")

# Scanner states: where in the SQL a piece of markup sits.
_CODE, _STRING, _QUOTED, _COMMENT = range(4)


def _blank(text: str) -> str:
    return _NOT_NEWLINE.sub(" ", text)


_QUOTED_OR = r"""'[^']*'|"[^"]*"|"""
_TAG_ENDS = {close: re.compile(_QUOTED_OR + re.escape(close)) for close in ("}}", "%}", "#}", "}")}


def _tag_end(text: str, start: int, close: str) -> int:
    """Index just after ``close`` from ``start``, skipping quoted strings inside the tag."""
    for m in _TAG_ENDS[close].finditer(text, start):
        if m.group(0) == close:
            return m.end()
    return len(text)


def _closing(text: str, start: int, closer: str, *, escapes: bool) -> int:
    """Where ``closer`` ends a string (a backslash-escaped quote does not) or a comment."""
    j = text.find(closer, start)
    while escapes and j > 0 and len(closer) == 1:
        k = j
        while k > start and text[k - 1] == "\\":
            k -= 1
        if (j - k) % 2 == 0:
            break
        j = text.find(closer, j + 1)
    return j


def _sanitise(text: str) -> str:
    words = _NAME.findall(text)
    return "_".join(words) if words else "templated"


@dataclass
class _Block:
    name: str
    keep: bool
    """Whether the block's current branch is kept."""
    decided: bool = False
    """A branch was kept already: every later one is dropped."""


@dataclass
class _Renderer:
    text: str
    model: str | None
    out: list[str] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)
    placeholders: int = 0
    tags: int = 0
    macros: list[tuple[int, str]] = field(default_factory=list)
    assumed: dict[str, object] = field(default_factory=dict)
    """Values the kept branches assumed (``sql_flavour == 'ecc'`` kept: sql_flavour is 'ecc',
    so a later ``{% if sql_flavour == 's4' %}`` is dropped)."""
    code: str = ""
    """The last few characters of SQL emitted (comments excluded): a placeholder's context."""
    at: int = 0
    """Offset in the output (equal to the input's: every replacement keeps its lines)."""

    @property
    def dropping(self) -> bool:
        return any(not b.keep for b in self.blocks)

    def put(self, piece: str, *, code: bool) -> None:
        self.out.append(piece)
        self.at += len(piece)
        if code and piece.strip():
            self.code = (self.code + piece)[-64:]

    def emit(self, piece: str, *, code: bool = True) -> None:
        if self.dropping:
            self.put(_blank(piece), code=False)
        else:
            self.put(piece, code=code)

    def before(self) -> str:
        return self.code.rstrip()

    def statement_start(self) -> bool:
        before = self.before()
        return not before or before.endswith(";")

    def expression(self, inner: str, markup: str, state: int, after: str) -> None:
        """Replace one ``{{ inner }}`` (or ``${inner}``, ``{inner}``) written as ``markup``."""
        if self.dropping or state == _COMMENT:
            self.put(_blank(markup), code=False)
            return
        body = inner.strip().strip("-+").strip()
        call = _NAME.match(body)
        head = call.group(0) if call else ""
        if head in _SILENT_CALLS:
            self.tags += 1
            self.put(_blank(markup), code=False)
            return
        text = self.literal(body) if body[:1] in "'\"" or " if " in body else None
        if text is not None:
            # A string the template writes as it is (`{{ "," if not loop.last }}`).
            self.placeholders += 1
            self.put(self.fit(text, markup, pad=state != _QUOTED), code=True)
            return
        if state == _CODE and self.statement_start() and "(" in body and head not in _RELATIONS:
            # A macro that writes a whole statement: its SQL is elsewhere.
            self.macros.append((self.at, body.split("(", 1)[0].strip()))
            self.put(_blank(markup), code=False)
            return
        self.placeholders += 1
        name = self.name_of(body, head)
        # Padding inside a dotted path or a quoted name would change the name.
        in_path = self.before().endswith(".") or after.startswith(".")
        if state in (_STRING, _QUOTED):
            replacement = name
        elif self.relation(head, after):
            replacement = name if _PLAIN.fullmatch(name) else f"`{name}`"
        else:
            replacement = "@" + name.replace(".", "_")
        pad = state != _QUOTED and not in_path
        self.put(self.fit(replacement, markup, pad=pad), code=True)

    def literal(self, body: str) -> str | None:
        """The text of an expression that is a string literal, or an inline ``if`` choosing
        between literals (decided like a ``{% if %}``); None for anything else."""
        inline = _INLINE_IF.fullmatch(body)
        if inline is not None and inline.group("other") is None:
            # Jinja's `a if cond` (no else) is no Python: decide it here.
            chosen = inline.group("value") if self.decide(inline.group("cond")) else "''"
            body = chosen
        try:
            tree = ast.parse(_PYTHON_WORDS.sub(_python_word, body), mode="eval").body
        except (SyntaxError, ValueError):
            return None
        if isinstance(tree, ast.IfExp):
            tree = tree.body if self.decide(ast.unparse(tree.test)) else tree.orelse
        if (
            isinstance(tree, ast.Constant)
            and isinstance(tree.value, str)
            and "\n" not in tree.value
        ):
            return tree.value
        return None

    def relation(self, head: str, after: str) -> bool:
        if head in _RELATIONS:
            return True
        before = self.before()
        if before.endswith((".", "`")) or after.startswith((".", "`", "(")):
            return True
        word = _LAST_WORD.search(before)
        return word is not None and word.group(1).upper() in _TABLE_WORDS

    def name_of(self, body: str, head: str) -> str:
        if head == "this":
            return self.model or "this"
        strings = _STRING_ARG.findall(body)
        if head == "source" and len(strings) >= 2:
            return f"{strings[0]}.{strings[1]}"
        if head in ("ref", "var", "env_var") and strings:
            return strings[-1] if _PLAIN.fullmatch(strings[-1]) else _sanitise(strings[-1])
        words = _NAME.findall(body.split("(", 1)[0])
        return words[-1] if words else "templated"

    @staticmethod
    def fit(replacement: str, markup: str, *, pad: bool) -> str:
        """``replacement`` on the markup's first line, its other lines kept as line breaks."""
        first, newline, rest = markup.partition("\n")
        tail = newline + _blank(rest) if newline else ""
        if pad and len(replacement) < len(first):
            replacement = replacement.ljust(len(first))
        return replacement + tail

    def tag(self, word: str, rest: str, markup: str, state: int) -> bool:
        """Handle one ``{% word rest %}``; True when it opens a ``raw`` block."""
        self.tags += 1
        blank = _blank(markup)
        top = self.blocks[-1] if self.blocks else None
        if word == "if":
            keep = self.decide(rest)
            self.blocks.append(_Block("if", keep, decided=keep))
        elif word in ("elif", "else") and top is not None and top.name in ("if", "for"):
            if top.name == "for":
                top.keep = False  # a FOR's ELSE runs only on an empty loop
            else:
                keep = not top.decided and (word == "else" or self.decide(rest))
                top.keep, top.decided = keep, top.decided or keep
        elif word in _BLOCK_ENDS:
            opened = _BLOCK_ENDS[word]
            # Close the innermost matching block (an unmatched end tag closes nothing).
            for i in range(len(self.blocks) - 1, -1, -1):
                if self.blocks[i].name == opened:
                    del self.blocks[i:]
                    break
        elif word == "set" and "=" in rest:
            pass  # an inline assignment, no block
        elif word in _DROPPED_BLOCKS:
            self.blocks.append(_Block(word, False))
        elif word in _KEPT_BLOCKS:
            self.blocks.append(_Block(word, True))
        elif word == "include" and state == _CODE and not self.dropping:
            # The included query stands in as a query that reads nothing, so what surrounds
            # it (a UNION of includes, a FROM (...)) still parses; it is analysed in its file.
            self.macros.append((self.at, "include"))
            self.put(self.fit(_INCLUDED, markup, pad=True), code=True)
            return False
        elif word == "raw":
            self.put(blank, code=False)
            return True
        self.put(blank, code=False)
        return False

    def decide(self, condition: str) -> bool:
        """Whether to keep a branch: its condition's value when what it compares is known
        (loop position, values earlier kept branches assumed), else True, assuming what makes
        it true so that later branches stay consistent with this one."""
        try:
            tree = ast.parse(_PYTHON_WORDS.sub(_python_word, condition.strip()), mode="eval")
        except (SyntaxError, ValueError):
            return True
        value = _evaluate(tree.body, self.assumed)
        if value is None:
            _assume(tree.body, self.assumed)
            return True
        return value


_INLINE_IF = re.compile(r"(?P<value>.+?)\s+if\s+(?P<cond>.+?)(?:\s+else\s+(?P<other>.+))?")
_PYTHON_WORDS = re.compile(r"\b(true|false|none)\b")


def _python_word(m: re.Match[str]) -> str:
    return {"true": "True", "false": "False", "none": "None"}[m.group(1)]


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _evaluate(node: ast.expr, assumed: dict[str, object]) -> bool | None:
    """The truth of a Jinja condition from what is known, or None."""
    if isinstance(node, ast.BoolOp):
        values = [_evaluate(v, assumed) for v in node.values]
        if isinstance(node.op, ast.Or):
            if any(v is True for v in values):
                return True
            return False if all(v is False for v in values) else None
        if any(v is False for v in values):
            return False
        return True if all(v is True for v in values) else None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _evaluate(node.operand, assumed)
        return None if inner is None else not inner
    if isinstance(node, ast.Call) and not node.args and not node.keywords:
        called = _dotted(node.func)
        known = _RUN_EVERY_DAY.get(called or "")
        return known
    name = _dotted(node)
    if name is not None:
        value = _LOOP_VARIABLES.get(name, assumed.get(name, _UNKNOWN))
        return None if value is _UNKNOWN else bool(value)
    if (
        isinstance(node, ast.Compare)
        and len(node.ops) == 1
        and isinstance(node.ops[0], ast.Eq | ast.NotEq)
        and isinstance(node.comparators[0], ast.Constant)
    ):
        left = _dotted(node.left)
        if left is None or left not in assumed:
            return None
        equal = assumed[left] == node.comparators[0].value
        return equal if isinstance(node.ops[0], ast.Eq) else not equal
    return None


def _assume(node: ast.expr, assumed: dict[str, object]) -> None:
    """Record the values that make an undecided condition true (the first way, for OR)."""
    if isinstance(node, ast.BoolOp):
        targets = node.values if isinstance(node.op, ast.And) else node.values[:1]
        for value in targets:
            if _evaluate(value, assumed) is None:
                _assume(value, assumed)
    elif (
        isinstance(node, ast.Compare)
        and len(node.ops) == 1
        and isinstance(node.ops[0], ast.Eq)
        and isinstance(node.comparators[0], ast.Constant)
    ):
        left = _dotted(node.left)
        if left is not None and left not in _LOOP_VARIABLES:
            assumed[left] = node.comparators[0].value


_UNKNOWN = object()
_RELATIONS = frozenset({"ref", "source", "this"})
# Where the scanner may change state in SQL code.
_CODE_STOPS = re.compile(r"""'''|\"\"\"|['"`]|--|#(?!\})|/\*|\{\{|\{%|\{#|\$\{|\{(?=[A-Za-z_])""")
_MARKUP = re.compile(r"\{\{|\{%|\{#|\$\{")


def _next_markup(text: str, start: int, end: int) -> int:
    """The first markup at or after ``start`` and before ``end`` (-1: none)."""
    m = _MARKUP.search(text, start, end)
    return m.start() if m else -1


def detemplate(text: str, *, model: str | None = None) -> Templated | None:
    """``text`` with its template markup replaced (see the module docstring), or None when it
    holds none. ``model`` names what ``{{ this }}`` refers to (a dbt model's file name)."""
    if not has_template(text):
        return None
    r = _Renderer(text, model)
    i, n = 0, len(text)
    state, closer = _CODE, ""
    while i < n:
        if state == _CODE:
            m = _CODE_STOPS.search(text, i)
            if m is None:
                r.emit(text[i:])
                break
            r.emit(text[i : m.start()])
            token, i = m.group(0), m.start()
        else:
            # Inside a string, a quoted name or a comment: only its end and markup matter.
            j = _closing(text, i, closer, escapes=state == _STRING)
            k = _next_markup(text, i, n if j < 0 else j)
            if k >= 0:
                r.emit(text[i:k], code=state != _COMMENT)
                token, i = text[k : k + 2], k
            else:
                end = n if j < 0 else j + len(closer)
                r.emit(text[i:end], code=state != _COMMENT)
                i, state = end, _CODE
                continue
        if token == "{#":
            end = _tag_end(text, i + 2, "#}")
            r.tags += 1
            r.put(_blank(text[i:end]), code=False)
            i = end
        elif token == "{%":
            word_match = _TAG_START.match(text, i)
            word = word_match.group(1).lower() if word_match else ""
            if word not in _TAGS:
                r.emit(token, code=state != _COMMENT)  # not a tag Jinja knows: text
                i += 2
                continue
            end = _tag_end(text, i + 2, "%}")
            markup = text[i:end]
            assert word_match is not None
            rest = text[word_match.end() : end].rstrip("%}").rstrip("-+ \t\n")
            i = end
            if r.tag(word, rest, markup, state):
                # Text up to {% endraw %} is SQL as written, markup-like characters included.
                stop = _END_RAW.search(text, i)
                raw_end = stop.start() if stop else n
                r.emit(text[i:raw_end], code=state != _COMMENT)
                i = raw_end
        elif token in ("{{", "${") or (token == "{" and state == _CODE):
            close = "}}" if token == "{{" else "}"
            end = _tag_end(text, i + len(token), close)
            markup = text[i:end]
            if (token == "{" and not _FORMAT_FIELD.fullmatch(markup)) or not markup.endswith(close):
                r.emit(token, code=state != _COMMENT)  # a brace that is no placeholder
                i += len(token)
                continue
            inner = markup[len(token) : len(markup) - len(close)]
            r.expression(inner, markup, state, text[end : end + 1])
            i = end
        elif state == _CODE:
            r.emit(token, code=token not in ("--", "#", "/*"))
            i += len(token)
            if token in ("'''", '"""', "'", '"'):
                state, closer = _STRING, token
            elif token == "`":
                state, closer = _QUOTED, "`"
            elif token in ("--", "#"):
                state, closer = _COMMENT, "\n"
            elif token == "/*":
                state, closer = _COMMENT, "*/"
        else:
            r.emit(token, code=state != _COMMENT)
            i += len(token)
    if not r.placeholders and not r.tags and not r.macros:
        return None
    return Templated("".join(r.out), r.placeholders, r.tags, tuple(r.macros))
