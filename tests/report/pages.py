"""Reading a rendered report back as a person does: its visible text, each piece with what
explains it (the paragraph, list item or card around it; in a table, its column's header)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"br", "wbr", "meta", "img", "hr", "input", "link", "col", "source"}
HIDDEN = {"script", "style"}
BLOCKS = {"p", "li", "td", "th", "h1", "h2", "h3", "title", "figcaption"}

MONEY = re.compile(r"\$\d[\d,]*(?:\.\d+)?")
PERIOD = re.compile(
    r"over the (?:\d[\d,]* days?|history)|\b\d[\d,.]* days?\b|/year|per year|/day|per day"
    r"|per slot-hour"
)


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    parent: Node | None = None
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        """The visible text under this node, whitespace collapsed."""
        if self.tag in HIDDEN:
            return ""
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return " ".join(" ".join(parts).split())

    def find_all(self, tag: str) -> list[Node]:
        out = []
        for c in self.children:
            if isinstance(c, Node):
                if c.tag == tag:
                    out.append(c)
                out.extend(c.find_all(tag))
        return out


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.open = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, parent=self.open)
        self.open.children.append(node)
        if tag not in VOID:
            self.open = node

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.open
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.open = node.parent

    def handle_data(self, data: str) -> None:
        self.open.children.append(data)


def parse(html: str) -> Node:
    """The page as a tree of nodes."""
    builder = _Builder()
    builder.feed(html)
    return builder.root


def _ancestors(node: Node) -> list[Node]:
    out = []
    current = node.parent
    while current is not None:
        out.append(current)
        current = current.parent
    return out


def column_headers(table: Node) -> dict[int, str]:
    """The header text of each column of ``table`` (header rows are rows of ``th`` only;
    ``rowspan`` and ``colspan`` respected)."""
    headers: dict[int, list[str]] = {}
    spanned: dict[tuple[int, int], bool] = {}
    for r, row in enumerate(table.find_all("tr")):
        cells = [c for c in row.children if isinstance(c, Node) and c.tag in ("th", "td")]
        if not cells or any(c.tag == "td" for c in cells):
            break
        col = 0
        for cell in cells:
            while spanned.get((r, col)):
                col += 1
            rows, cols = int(cell.attrs.get("rowspan", 1)), int(cell.attrs.get("colspan", 1))
            for dr in range(rows):
                for dc in range(cols):
                    spanned[(r + dr, col + dc)] = True
                    headers.setdefault(col + dc, []).append(cell.text())
            col += cols
    return {c: " ".join(texts) for c, texts in headers.items()}


def context(text_parent: Node) -> str:
    """What explains a piece of text: its block (paragraph, item, heading, KPI card, cell)
    and, in a table cell, the column's header."""
    chain = [text_parent, *_ancestors(text_parent)]
    block = next(
        (n for n in chain if n.tag in BLOCKS or "kpi" in n.attrs.get("class", "").split()),
        text_parent,
    )
    explained = block.text()
    if block.tag == "td" and block.parent is not None:
        row = block.parent
        cells = [c for c in row.children if isinstance(c, Node) and c.tag in ("td", "th")]
        col = 0
        for cell in cells:
            if cell is block:
                break
            col += int(cell.attrs.get("colspan", 1))
        table = next((n for n in _ancestors(block) if n.tag == "table"), None)
        if table is not None:
            explained += " | " + column_headers(table).get(col, "")
    return explained


def visible_texts(root: Node, *, skip: frozenset[str] = frozenset()) -> list[tuple[str, Node]]:
    """Every visible text of the page with the element holding it (``skip``: tags whose text
    is not read, e.g. code)."""
    out: list[tuple[str, Node]] = []

    def walk(node: Node) -> None:
        if node.tag in HIDDEN or node.tag in skip:
            return
        for c in node.children:
            if isinstance(c, str):
                if c.strip():
                    out.append((c, node))
            else:
                walk(c)

    walk(root)
    return out


def money_without_period(html: str) -> list[tuple[str, str]]:
    """Each money figure whose explanation names no period: (figure, its context)."""
    missing = []
    for text, holder in visible_texts(parse(html), skip=frozenset({"pre", "code"})):
        for match in MONEY.finditer(text):
            explained = context(holder)
            if not PERIOD.search(explained):
                missing.append((match.group(), explained[:200]))
    return missing
