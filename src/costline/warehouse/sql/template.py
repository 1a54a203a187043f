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
- ``{{ config(…) }}``, ``{# … #}``, ``{% set … %}``, macro and test definitions → blank;
- ``{% if %}`` keeps its first branch (the incremental form of a dbt model, the one that runs
  every day) and drops the others; a ``{% for %}`` body is kept once.

Line breaks are kept everywhere and a replacement is padded to the length of the markup it
replaces when it is shorter, so findings keep the template's own line numbers (and, outside
backquoted names, its columns).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Templated", "detemplate", "has_template"]


@dataclass(frozen=True)
class Templated:
    """A template's text made parseable, and how much of it was template markup."""

    text: str
    placeholders: int
    """Expressions (``{{ … }}``, ``${…}``, ``{name}``) replaced."""
    tags: int
    """Statement tags (``{% … %}``) and comments (``{# … #}``) removed."""


_MARKERS = ("{{", "{%", "{#", "${")
_FORMAT_FIELD = re.compile(r"\{[A-Za-z_][A-Za-z0-9_.]*\}")


def has_template(text: str) -> bool:
    """Whether ``text`` holds template markup (cheap: a few substring searches)."""
    return any(m in text for m in _MARKERS) or (
        "{" in text and _FORMAT_FIELD.search(text) is not None
    )


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
_BLOCK_ENDS = {f"end{name}": name for name in (*_DROPPED_BLOCKS, *_KEPT_BLOCKS, "if", "raw")}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STRING_ARG = re.compile(r"""['"]([^'"]+)['"]""")
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_TAG_WORD = re.compile(r"[-+]?\s*(\w+)")
_LAST_WORD = re.compile(r"([A-Za-z_]+)\s*$")
_NOT_NEWLINE = re.compile(r"[^\n]")

# Scanner states: where in the SQL a piece of markup sits.
_CODE, _STRING, _QUOTED, _COMMENT = range(4)


def _blank(text: str) -> str:
    return _NOT_NEWLINE.sub(" ", text)


def _tag_end(text: str, start: int, close: str) -> int:
    """Index just after ``close`` from ``start``, skipping quoted strings inside the tag."""
    i, n = start, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            j = text.find(ch, i + 1)
            i = n if j < 0 else j + 1
            continue
        if text.startswith(close, i):
            return i + len(close)
        i += 1
    return n


@dataclass
class _Block:
    name: str
    keep: bool
    """Whether the block's current branch is kept."""


class _Renderer:
    def __init__(self, text: str, model: str | None) -> None:
        self.text = text
        self.model = model
        self.out: list[str] = []
        self.blocks: list[_Block] = []
        self.placeholders = 0
        self.tags = 0

    @property
    def dropping(self) -> bool:
        return any(not b.keep for b in self.blocks)

    def emit(self, piece: str) -> None:
        self.out.append(_blank(piece) if self.dropping else piece)

    def previous_code(self) -> str:
        """The last non-blank output, for the context of a placeholder."""
        for piece in reversed(self.out):
            if piece.strip():
                return piece.rstrip()
        return ""

    def expression(self, inner: str, markup: str, state: int, after: str) -> None:
        """Replace one ``{{ inner }}`` (or ``${inner}``, ``{inner}``) written as ``markup``."""
        if self.dropping or state == _COMMENT:
            self.out.append(_blank(markup))
            return
        body = inner.strip().strip("-+").strip()
        call = _NAME.match(body)
        head = call.group(0) if call else ""
        if head in _SILENT_CALLS:
            self.tags += 1
            self.out.append(_blank(markup))
            return
        self.placeholders += 1
        name = self.name_of(body, head)
        # Padding inside a dotted path or a quoted name would change the name.
        in_path = self.previous_code().endswith(".") or after.startswith(".")
        if state in (_STRING, _QUOTED):
            replacement = name
        elif self.relation(head, after):
            replacement = name if _PLAIN.fullmatch(name) else f"`{name}`"
        else:
            replacement = "@" + name.replace(".", "_")
        pad = state != _QUOTED and not in_path
        self.out.append(self.fit(replacement, markup, pad=pad))

    def relation(self, head: str, after: str) -> bool:
        if head in ("ref", "source", "this"):
            return True
        before = self.previous_code()
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

    def tag(self, inner: str, markup: str) -> bool:
        """Handle one ``{% inner %}``; True when it opens a ``raw`` block."""
        self.tags += 1
        match = _TAG_WORD.match(inner)
        word = match.group(1).lower() if match else ""
        rest = inner[match.end() :] if match else ""
        blank = _blank(markup)
        if word == "if":
            self.out.append(blank)
            self.blocks.append(_Block("if", True))
        elif word in ("elif", "else") and self.blocks and self.blocks[-1].name in ("if", "for"):
            # Only the first branch of an IF stays; a FOR's ELSE runs only on empty loops.
            self.blocks[-1].keep = False
            self.out.append(blank)
        elif word in _BLOCK_ENDS:
            opened = _BLOCK_ENDS[word]
            while self.blocks:
                if self.blocks.pop().name == opened:
                    break
            self.out.append(blank)
        elif word == "set" and "=" in rest:
            self.out.append(blank)  # an inline assignment, no block
        elif word in _DROPPED_BLOCKS:
            self.out.append(blank)
            self.blocks.append(_Block(word, False))
        elif word in _KEPT_BLOCKS:
            self.out.append(blank)
            self.blocks.append(_Block(word, True))
        elif word == "raw":
            self.out.append(blank)
            return True
        else:
            self.out.append(blank)
        return False


_END_RAW = re.compile(r"\{%-?\s*endraw\s*-?%\}")


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


# Where the scanner may change state, per state.
_CODE_STOPS = re.compile(r"""'''|\"\"\"|['"`]|--|#(?!\})|/\*|\{\{|\{%|\{#|\$\{|\{(?=[A-Za-z_])""")


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
            k = min(
                (p for p in (text.find(x, i) for x in ("{{", "{%", "{#", "${")) if p >= 0),
                default=-1,
            )
            if k >= 0 and (j < 0 or k < j):
                r.emit(text[i:k])
                token, i = text[k : k + 2], k
            else:
                end = n if j < 0 else j + len(closer)
                r.emit(text[i:end])
                i, state = end, _CODE
                continue
        if token == "{#":
            end = _tag_end(text, i + 2, "#}")
            r.tags += 1
            r.out.append(_blank(text[i:end]))
            i = end
        elif token == "{%":
            end = _tag_end(text, i + 2, "%}")
            markup = text[i:end]
            raw = r.tag(markup[2:-2] if markup.endswith("%}") else markup[2:], markup)
            i = end
            if raw:
                # Text up to {% endraw %} is SQL as written, markup-like characters included.
                stop = _END_RAW.search(text, i)
                raw_end = stop.start() if stop else n
                r.emit(text[i:raw_end])
                i = raw_end
        elif token in ("{{", "${") or (token == "{" and state == _CODE):
            close = "}}" if token == "{{" else "}"
            end = _tag_end(text, i + len(token), close)
            markup = text[i:end]
            if token == "{" and not _FORMAT_FIELD.fullmatch(markup):
                r.emit(token)  # a brace that is no placeholder
                i += 1
                continue
            inner = markup[len(token) : len(markup) - len(close)]
            r.expression(inner, markup, state, text[end : end + 1])
            i = end
        elif state == _CODE:
            r.emit(token)
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
            r.emit(token)
            i += len(token)
    if not r.placeholders and not r.tags:
        return None
    return Templated("".join(r.out), r.placeholders, r.tags)
