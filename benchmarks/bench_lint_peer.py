"""Lint against the peer's own cases: recall and precision, per detector, of costline's rules on
the test cases and samples of Google's open-source bigquery-antipattern-recognition.

Each costline rule names, in ``equivalents``, the peer detectors it claims to match (CL016 claims
``DynamicPredicate``). The cases are read at run time from a git directory of the peer, at a
pinned commit; nothing of the peer is copied here:

- every ``@Test`` method of the parser tests (``.../antipattern/parser/*Test.java``) becomes one
  case: the detector is the visitor class the test instantiates (mapped to its public name
  through the visitor's ``NAME`` constant), the SQL is the Java string expression the test parses
  (string literals and text blocks joined with ``+``), and the expectation is what the test
  asserts about ``getResult()``: an empty string means the detector must not fire, otherwise one
  finding per line of the expected text. A test whose query or assertion is not made of such
  literals is listed as unextracted, with the reason, and not scored;
- every sample query (``samples/*/input``: ``*.sql`` files, or ``id,query`` CSV rows) against its
  ``output/results.csv``: the peer's run over the samples, one row per query on which something
  fired, one ``Name: message`` line per detector. Each sample is one case per detector of that
  run's parser visitors; a detector absent from the sample's row must not fire.

Every case is linted with ``lint_sql`` (no catalogue, all rules, BigQuery dialect). costline
fires when a finding claims the detector among its ``equivalents`` (a rule claims a detector
only on findings the peer's definition covers); scoring is on
fire / not fire (TP, FP, FN, TN, recall, precision), and on the true positives the number of
findings is compared with the number the peer expects. ``JoinOrder`` depends on table sizes
fetched from BigQuery: it is reported on its own row and left out of the totals. The table comes
first, then every false negative and false positive with the start of its SQL, then the last
line: one JSON object.

    python benchmarks/bench_lint_peer.py [--quick] [--peer GIT_DIR] [--commit SHA]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from corpora import PEER, git_dir
from costline.warehouse.linter import lint_sql
from costline.warehouse.rules import ALL_RULES
from costline.warehouse.rules.base import GOOGLE

COMMIT = PEER.commit
MODULE = "bigquery-antipattern-recognition/src"
TESTS = f"{MODULE}/test/java/com/google/zetasql/toolkit/antipattern/parser/"
MAIN = f"{MODULE}/main/java/"
SAMPLES = "samples/"
# Detectors whose verdict needs BigQuery metadata (table sizes): reported, not totalled.
NEEDS_METADATA = frozenset({"JoinOrder"})
SQL_PREVIEW = 120


# --- the peer's git directory ------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    git_dir: str
    commit: str

    def _git(self, *args: str) -> str:
        out = subprocess.run(
            ["git", "--git-dir", self.git_dir, *args],
            check=True,
            capture_output=True,
        )
        return out.stdout.decode("utf-8", errors="replace")

    def files(self, prefix: str) -> list[str]:
        return [
            p
            for p in self._git("ls-tree", "-r", "--name-only", self.commit).splitlines()
            if p.startswith(prefix)
        ]

    def show(self, path: str) -> str:
        return self._git("show", f"{self.commit}:{path}")


# --- a small Java lexer: enough for test methods built from string literals ---------------------

_JAVA_TOKEN = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<comment>//[^\n]*|/\*.*?\*/)
    | (?P<textblock>\"\"\"[ \t\f]*\r?\n(?:[^"\\]|\\.|"(?!""))*\"\"\")
    | (?P<string>"(?:[^"\\\n]|\\.)*")
    | (?P<char>'(?:[^'\\\n]|\\.)+')
    | (?P<number>\d[\w.]*)
    | (?P<annotation>@[A-Za-z_]\w*)
    | (?P<ident>[A-Za-z_$][\w$]*)
    | (?P<punct>.)
    """,
    re.S | re.X,
)
_JAVA_ESCAPE = re.compile(r"\\(u+[0-9a-fA-F]{4}|[0-3][0-7]{2}|[0-7]{1,2}|.)", re.S)
_SIMPLE_ESCAPES = {
    "b": "\b",
    "t": "\t",
    "n": "\n",
    "f": "\f",
    "r": "\r",
    "s": " ",
    '"': '"',
    "'": "'",
    "\\": "\\",
    "\n": "",  # a text block's line continuation
}


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str

    def value(self) -> str:
        """The decoded value of a string literal or text block."""
        if self.kind == "string":
            return _unescape(self.text[1:-1])
        return _unescape(_strip_text_block(self.text[3:-3]))


def _unescape(body: str) -> str:
    def one(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] == "u":
            return chr(int(e.lstrip("u"), 16))
        if e[0].isdigit():
            return chr(int(e, 8))
        return _SIMPLE_ESCAPES.get(e, e)

    return _JAVA_ESCAPE.sub(one, body)


def _strip_text_block(raw: str) -> str:
    """A text block's content: incidental indentation and trailing blanks removed (JLS 3.10.6)."""
    lines = raw.replace("\r\n", "\n").split("\n")[1:]  # the opening delimiter's line
    if not lines:
        return ""
    significant = [line for line in lines[:-1] if line.strip()] + [lines[-1]]
    indent = min(len(line) - len(line.lstrip(" \t\f")) for line in significant)
    out = [line[indent:].rstrip(" \t\f") if line.strip() else "" for line in lines]
    return "\n".join(out)


def java_tokens(source: str) -> list[Tok]:
    return [
        Tok(m.lastgroup or "punct", m.group())
        for m in _JAVA_TOKEN.finditer(source)
        if m.lastgroup not in ("ws", "comment")
    ]


def _matching(toks: list[Tok], start: int, open_: str, close: str) -> int:
    """Index of the token closing the bracket opened at ``start``."""
    depth = 0
    for i in range(start, len(toks)):
        if toks[i].kind == "punct" and toks[i].text == open_:
            depth += 1
        elif toks[i].kind == "punct" and toks[i].text == close:
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unbalanced {open_!r}")


def _statements(toks: list[Tok]) -> Iterator[list[Tok]]:
    """Top-level statements of a block body, split on ``;`` (nested blocks stay whole)."""
    depth, current = 0, []
    for tok in toks:
        if tok.kind == "punct" and tok.text in "({[":
            depth += 1
        elif tok.kind == "punct" and tok.text in ")}]":
            depth -= 1
        if depth == 0 and tok.kind == "punct" and tok.text in ";}":
            if tok.text == "}":
                current.append(tok)
            if current:
                yield current
            current = []
        else:
            current.append(tok)
    if current:
        yield current


def _split_args(toks: list[Tok]) -> list[list[Tok]]:
    """Arguments of a call, given the tokens between its parentheses."""
    args: list[list[Tok]] = [[]]
    depth = 0
    for tok in toks:
        if tok.kind == "punct" and tok.text in "({[":
            depth += 1
        elif tok.kind == "punct" and tok.text in ")}]":
            depth -= 1
        if depth == 0 and tok.kind == "punct" and tok.text == ",":
            args.append([])
        else:
            args[-1].append(tok)
    return [a for a in args if a]


def _text(toks: list[Tok]) -> str:
    return " ".join(t.text for t in toks)


def _string_expr(toks: list[Tok], env: dict[str, str]) -> str | None:
    """The value of ``"a" + "b" + NAME ...`` (literals, text blocks, known string variables)."""
    while (
        len(toks) >= 2
        and toks[0].text == "("
        and toks[-1].text == ")"
        and _matching(toks, 0, "(", ")") == len(toks) - 1
    ):
        toks = toks[1:-1]
    if not toks:
        return None
    parts: list[str] = []
    for i, tok in enumerate(toks):
        if i % 2:
            if not (tok.kind == "punct" and tok.text == "+"):
                return None
        elif tok.kind in ("string", "textblock"):
            parts.append(tok.value())
        elif tok.kind == "ident" and tok.text in env:
            parts.append(env[tok.text])
        else:
            return None
    return "".join(parts) if len(toks) % 2 else None


# --- detectors and test cases ------------------------------------------------------------------


@dataclass(frozen=True)
class Detectors:
    by_class: dict[str, str]  # visitor class -> public detector name
    sample_run: tuple[str, ...]  # detectors the peer runs on every query without metadata


def read_detectors(peer: Peer) -> Detectors:
    by_class: dict[str, str] = {}
    parser_side: list[str] = []
    helper = None
    for path in peer.files(MAIN):
        if not path.endswith(".java"):
            continue
        source = peer.show(path)
        if path.endswith("/AntiPatternHelper.java"):
            helper = source
        cls = re.search(r"\bclass\s+(\w+)", source)
        name = re.search(r"\bNAME\s*=\s*\"(\w+)\"", source)
        if cls and name and "/visitors/" in path:
            by_class[cls.group(1)] = name.group(1)
            if "/parser/visitors/" in path:
                parser_side.append(name.group(1))
    run: list[str] = []
    if helper is not None:  # the visitors its parser pass instantiates for each query
        m = re.search(r"getParserVisitorList\s*\([^)]*\)\s*\{(.*?)\n\s*\}", helper, re.S)
        for cls in re.findall(r"new\s+(\w+)\s*\(", m.group(1) if m else ""):
            if cls in by_class and by_class[cls] not in run:
                run.append(by_class[cls])
    return Detectors(by_class=by_class, sample_run=tuple(run or sorted(parser_side)))


@dataclass(frozen=True)
class Case:
    source: str  # "test" or "sample"
    name: str
    detector: str
    sql: str
    fires: bool | None  # None: the peer's expectation is unknown (reported, not scored)
    count: int | None  # findings the peer expects, when it says


@dataclass(frozen=True)
class Unextracted:
    source: str
    name: str
    reason: str


def _lines(text: str) -> int:
    return len(text.split("\n")) if text else 0


def _test_methods(toks: list[Tok]) -> Iterator[tuple[str, list[str], list[Tok]]]:
    """(name, annotation texts, body tokens) of each ``@Test`` method."""
    i = 0
    while i < len(toks):
        if toks[i].kind != "annotation":
            i += 1
            continue
        annotations: list[str] = []
        j = i
        while j < len(toks) and toks[j].kind == "annotation":
            if j + 1 < len(toks) and toks[j + 1].text == "(":
                end = _matching(toks, j + 1, "(", ")")
                annotations.append("".join(t.text for t in toks[j : end + 1]))
                j = end + 1
            else:
                annotations.append(toks[j].text)
                j += 1
        if not any(a == "@Test" or a.startswith("@Test(") for a in annotations):
            i = j
            continue
        while j < len(toks) and toks[j].text != "(":
            j += 1
        name = toks[j - 1].text
        brace = j
        while brace < len(toks) and toks[brace].text != "{":
            brace += 1
        end = _matching(toks, brace, "{", "}")
        yield name, annotations, toks[brace + 1 : end]
        i = end + 1


def _class_constants(toks: list[Tok]) -> dict[str, str]:
    """``static final String X = "...";`` fields, for tests that build queries from them."""
    env: dict[str, str] = {}
    for k, tok in enumerate(toks):
        if tok.text == "String" and k + 2 < len(toks) and toks[k + 2].text == "=":
            before = {t.text for t in toks[max(0, k - 3) : k]}
            if {"static", "final"} <= before:
                end = k + 3
                while end < len(toks) and toks[end].text != ";":
                    end += 1
                value = _string_expr(toks[k + 3 : end], env)
                if value is not None:
                    env[toks[k + 1].text] = value
    return env


_ASSERT_NAMES = {"assertEquals", "assertTrue", "assertFalse", "assertNotEquals", "assertThat"}


def _test_case(
    file: str,
    method: str,
    annotations: list[str],
    body: list[Tok],
    env: dict[str, str],
    det: Detectors,
) -> Case | Unextracted:
    label = f"{file.removesuffix('.java')}.{method}"
    if any(a.startswith("@Ignore") for a in annotations):
        return Unextracted("test", label, "marked @Ignore")
    if any(a.startswith("@Test(") and "expected" in a for a in annotations):
        return Unextracted("test", label, "expects an exception")
    strings = dict(env)
    unknown: dict[str, str] = {}  # string variables whose value is not a literal expression
    assigned: Counter[str] = Counter()
    visitors: dict[str, str] = {}  # variable -> visitor class
    results: dict[str, str] = {}  # variable -> visitor variable whose getResult() it holds
    parsed: list[str] = []  # variables passed to Parser.parse*
    asserts: list[list[Tok]] = []
    for st in _statements(body):
        texts = [t.text for t in st]
        for k in range(len(st) - 3):  # Parser.parseStatement(query, ...) / parseScript(...)
            if (
                texts[k] == "Parser"
                and texts[k + 2].startswith("parse")
                and texts[k + 3] == "("
                and k + 4 < len(st)
                and st[k + 4].kind == "ident"
            ):
                parsed.append(texts[k + 4])
        if texts and (
            texts[0] in _ASSERT_NAMES
            or (texts[:2] == ["Assert", "."] and len(texts) > 2 and texts[2] in _ASSERT_NAMES)
        ):
            asserts.append(st)
        elif "=" in texts and texts.index("=") >= 1 and st[texts.index("=") - 1].kind == "ident":
            eq = texts.index("=")
            var, rhs = texts[eq - 1], st[eq + 1 :]
            assigned[var] += 1
            rhs_texts = [t.text for t in rhs]
            if rhs_texts[:1] == ["new"] and len(rhs) > 1 and rhs[1].text in det.by_class:
                visitors[var] = rhs[1].text
            elif len(rhs) == 5 and rhs_texts[1:] == [".", "getResult", "(", ")"]:
                results[var] = rhs_texts[0]
            elif "String" in texts[: eq - 1]:
                value = _string_expr(rhs, strings)
                if value is None:
                    unknown[var] = _text(rhs)[:60]
                else:
                    strings[var] = value
    if not visitors:
        return Unextracted("test", label, "instantiates no detector visitor")
    if len(set(visitors.values())) > 1:
        return Unextracted("test", label, f"several detectors: {sorted(set(visitors.values()))}")
    detector = det.by_class[next(iter(visitors.values()))]
    query_var = parsed[0] if parsed else "query"
    if len(set(parsed)) > 1:
        return Unextracted("test", label, f"parses several queries: {sorted(set(parsed))}")
    if query_var in unknown:
        return Unextracted(
            "test", label, f"query is not a literal expression: {unknown[query_var]}"
        )
    if query_var not in strings:
        return Unextracted("test", label, f"no string value for the parsed variable {query_var!r}")
    if assigned[query_var] > 1:
        return Unextracted("test", label, f"{query_var!r} is assigned more than once")
    expectations: set[tuple[bool, int | None]] = set()
    for st in asserts:
        got = _assertion(st, strings, unknown, results, assigned)
        if isinstance(got, str):
            return Unextracted("test", label, got)
        if got is not None:
            expectations.add(got)
    if not expectations:
        return Unextracted("test", label, "no assertion on the detector's result")
    if len(expectations) > 1:
        return Unextracted("test", label, f"assertions disagree: {sorted(expectations)}")
    fires, count = expectations.pop()
    return Case("test", label, detector, strings[query_var], fires, count)


def _assertion(
    st: list[Tok],
    strings: dict[str, str],
    unknown: dict[str, str],
    results: dict[str, str],
    assigned: Counter[str],
) -> tuple[bool, int | None] | str | None:
    """(fires, count) an assertion states about a result; a reason if it cannot be read; None
    when it is not about a detector's result."""
    start = 2 if st[0].text == "Assert" else 0
    fn = st[start].text
    if len(st) < start + 3 or st[start + 1].text != "(" or st[-1].text != ")":
        return f"assertion not understood: {_text(st)[:80]}"
    args = _split_args(st[start + 2 : -1])

    def is_result(arg: list[Tok]) -> bool:
        t = [x.text for x in arg]
        return (len(t) == 1 and t[0] in results) or (
            len(t) == 5 and t[1:] == [".", "getResult", "(", ")"]
        )

    def result_call(arg: list[Tok], method: str) -> bool:
        t = [x.text for x in arg]
        return len(t) == 5 and t[0] in results and t[1:] == [".", method, "(", ")"]

    if fn in ("assertEquals", "assertNotEquals") and len(args) in (2, 3):
        expected, actual = args[-2], args[-1]
        if is_result(expected) and not is_result(actual):
            expected, actual = actual, expected
        if is_result(actual):
            names = [t.text for t in expected if t.kind == "ident"]
            if any(n in unknown for n in names):
                return "expected text is not a literal expression"
            if any(assigned[n] > 1 for n in names):
                return "expected text is assigned more than once"
            value = _string_expr(expected, strings)
            if value is None:
                return f"expected text not understood: {_text(expected)[:60]}"
            if fn == "assertEquals":
                return (bool(value), _lines(value))
            return (True, None) if value == "" else "assertNotEquals with a non-empty text"
        for a, b in ((expected, actual), (actual, expected)):
            if len(a) == 1 and a[0].kind == "number" and result_call(b, "size"):
                n = int(a[0].text)
                return (n > 0, n) if fn == "assertEquals" else f"{fn} on a size"
        return None
    if fn in ("assertTrue", "assertFalse") and len(args) in (1, 2):
        arg = args[-1]
        if result_call(arg, "isEmpty"):
            return (False, 0) if fn == "assertTrue" else (True, None)
        if any(t.text in results for t in arg):
            return f"assertion not understood: {_text(st)[:80]}"
        return None
    if any(t.text in results for t in st):
        return f"assertion not understood: {_text(st)[:80]}"
    return None


def extract_tests(peer: Peer, det: Detectors) -> tuple[list[Case], list[Unextracted], int]:
    cases: list[Case] = []
    skipped: list[Unextracted] = []
    found = 0
    for path in sorted(peer.files(TESTS)):
        if not path.endswith("Test.java"):
            continue
        file = PurePosixPath(path).name
        toks = java_tokens(peer.show(path))
        env = _class_constants(toks)
        for method, marks, body in _test_methods(toks):
            found += 1
            try:
                got = _test_case(file, method, marks, body, env, det)
            except ValueError as e:  # unbalanced brackets in the method
                got = Unextracted("test", f"{file.removesuffix('.java')}.{method}", str(e))
            if isinstance(got, Case):
                cases.append(got)
            else:
                skipped.append(got)
    return cases, skipped, found


# --- samples ------------------------------------------------------------------------------------


def _detector_lines(recommendation: str, names: set[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in recommendation.splitlines():
        m = re.match(r"\s*(\w+):\s", line)
        if m and m.group(1) in names:
            counts[m.group(1)] += 1
    return counts


def extract_samples(peer: Peer, det: Detectors) -> tuple[list[Case], list[Unextracted], int]:
    files = peer.files(SAMPLES)
    names = set(det.by_class.values())
    cases: list[Case] = []
    skipped: list[Unextracted] = []
    found = 0
    for results_path in sorted(p for p in files if p.endswith("/output/results.csv")):
        root = results_path.removesuffix("output/results.csv")
        group = root.removeprefix(SAMPLES).strip("/")
        queries: dict[str, str] = {}
        for path in sorted(p for p in files if p.startswith(f"{root}input/")):
            if path.endswith(".sql"):
                queries[PurePosixPath(path).name] = peer.show(path)
            elif path.endswith(".csv"):
                for row in csv.DictReader(io.StringIO(peer.show(path))):
                    if row.get("id") and row.get("query") is not None:
                        queries[row["id"]] = row["query"]
        fired: dict[str, Counter[str]] = {}
        for row in csv.DictReader(io.StringIO(peer.show(results_path))):
            key = PurePosixPath(row.get("id") or "").name
            if key not in queries:
                skipped.append(Unextracted("sample", f"{group}/{key}", "result for no input query"))
                continue
            fired[key] = _detector_lines(row.get("recommendation") or "", names)
        for key, sql in queries.items():
            found += 1
            counts = fired.get(key, Counter())
            for detector in det.sample_run:
                n = counts.get(detector, 0)
                cases.append(Case("sample", f"{group}/{key}", detector, sql, n > 0, n))
            for detector in sorted(NEEDS_METADATA & names):  # the run had no table sizes
                cases.append(Case("sample", f"{group}/{key}", detector, sql, None, None))
    return cases, skipped, found


# --- linting and scoring ------------------------------------------------------------------------


@dataclass
class Verdict:
    case: Case
    count: int  # findings of rules claiming the detector
    codes: tuple[str, ...]  # every rule that fired on the case
    errors: tuple[str, ...]

    @property
    def fires(self) -> bool:
        return self.count > 0


def rules_for() -> dict[str, set[str]]:
    claims: dict[str, set[str]] = defaultdict(set)
    for rule in ALL_RULES:
        for detector in rule.equivalents:
            claims[detector].add(rule.code)
    return claims


def judge(cases: list[Case], claims: dict[str, set[str]]) -> list[Verdict]:
    """A case fires when a finding claims the detector: each finding carries the peer
    detectors it matches (a rule claims one only where the peer's definition holds)."""
    cache: dict[str, Any] = {}
    verdicts = []
    for case in cases:
        if case.sql not in cache:
            cache[case.sql] = lint_sql(case.sql, path=case.name)
        result = cache[case.sql]
        claim = f"{GOOGLE}:{case.detector}"
        verdicts.append(
            Verdict(
                case=case,
                count=sum(1 for f in result.findings if claim in f.equivalents),
                codes=tuple(sorted({f.code for f in result.findings})),
                errors=tuple(f"line {e.line}:{e.column} {e.message}" for e in result.errors),
            )
        )
    return verdicts


@dataclass
class Score:
    cases: int = 0
    positive: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    unscored: int = 0
    unscored_fired: int = 0
    counted: int = 0  # true positives whose expected count is known
    count_match: int = 0
    rules: list[str] = field(default_factory=list)

    def add(self, v: Verdict) -> None:
        if v.case.fires is None:
            self.unscored += 1
            self.unscored_fired += v.fires
            return
        self.cases += 1
        self.positive += v.case.fires
        if v.case.fires and v.fires:
            self.tp += 1
            if v.case.count is not None:
                self.counted += 1
                self.count_match += v.count == v.case.count
        elif v.fires:
            self.fp += 1
        elif v.case.fires:
            self.fn += 1
        else:
            self.tn += 1

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "cases": self.cases,
            "positive": self.positive,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "recall": _round(self.recall),
            "precision": _round(self.precision),
            "count_match": self.count_match,
            "count_compared": self.counted,
        }
        if self.rules:
            out["rules"] = self.rules
        if self.unscored:
            out["unscored"] = self.unscored
            out["unscored_costline_fired"] = self.unscored_fired
        return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


_LEADING_COMMENT = re.compile(r"\s*(?:/\*.*?\*/|--[^\n]*|#[^\n]*)", re.S)


def _preview(sql: str) -> str:
    """The first characters of the SQL, after any leading comment (a licence header)."""
    while m := _LEADING_COMMENT.match(sql):
        sql = sql[m.end() :]
    return " ".join(sql.split())[:SQL_PREVIEW]


# --- report -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the same run (it is fast anyway)")
    parser.add_argument(
        "--peer",
        default=None,
        help="git directory of the peer repository (default: cloned once into the cache)",
    )
    parser.add_argument("--commit", default=COMMIT, help="commit of the peer to read")
    args = parser.parse_args()
    if args.peer is None:
        args.peer = str(git_dir(PEER))
    peer = Peer(args.peer, args.commit)
    try:
        det = read_detectors(peer)
    except subprocess.CalledProcessError as e:
        sys.exit(f"cannot read {args.peer} at {args.commit}: {e.stderr.decode().strip()}")
    start = time.perf_counter()
    test_cases, test_skipped, tests_found = extract_tests(peer, det)
    sample_cases, sample_skipped, samples_found = extract_samples(peer, det)
    claims = rules_for()
    verdicts = judge(test_cases + sample_cases, claims)
    seconds = time.perf_counter() - start

    detectors = sorted(
        {v.case.detector for v in verdicts} | set(claims) & set(det.by_class.values())
    )
    per: dict[str, Score] = {d: Score(rules=sorted(claims.get(d, ()))) for d in detectors}
    by_source: dict[str, Score] = {"test": Score(), "sample": Score()}
    total = Score()
    for v in verdicts:
        per[v.case.detector].add(v)
        if v.case.detector not in NEEDS_METADATA:
            by_source[v.case.source].add(v)
            total.add(v)

    print(f"peer {args.peer} @ {args.commit[:12]}")
    print(
        f"tests: {tests_found} found, {len(test_cases)} extracted, {len(test_skipped)} unextracted;"
        f" samples: {samples_found} queries x {len(det.sample_run)} detectors"
        f" = {sum(v.case.fires is not None for v in verdicts if v.case.source == 'sample')} cases"
    )
    print()
    head = (
        f"{'detector':<28} {'rules':<6} {'cases':>5} {'pos':>4} {'TP':>4} {'FP':>4} {'FN':>4}"
        f" {'TN':>4} {'recall':>7} {'prec.':>7} {'count=':>7}"
    )
    print(head)
    print("-" * len(head))

    def row(label: str, s: Score, rules: str = "") -> None:
        count = f"{s.count_match}/{s.counted}" if s.counted else "-"
        print(
            f"{label:<28} {rules:<6} {s.cases:>5} {s.positive:>4} {s.tp:>4} {s.fp:>4} {s.fn:>4}"
            f" {s.tn:>4} {_pct(s.recall):>7} {_pct(s.precision):>7} {count:>7}"
        )

    for d in detectors:
        s = per[d]
        label = d + (" *" if d in NEEDS_METADATA else "")
        row(label, s, ",".join(s.rules) or "none")
        if s.unscored:
            print(
                f"{'':<28} {'':<6} {s.unscored} case(s) with no peer verdict (no table sizes);"
                f" costline fired on {s.unscored_fired}"
            )
    print("-" * len(head))
    row("total: tests", by_source["test"])
    row("total: samples", by_source["sample"])
    row("TOTAL", total)
    print("* needs BigQuery table sizes: not in the totals. count= : true positives whose number")
    print("  of findings equals the peer's.")

    misses = [v for v in verdicts if v.case.fires and not v.fires]
    false_alarms = [v for v in verdicts if v.case.fires is False and v.fires]
    miscounts = [
        v
        for v in verdicts
        if v.case.fires and v.fires and v.case.count is not None and v.count != v.case.count
    ]
    for title, items in (("false negatives", misses), ("false positives", false_alarms)):
        print(f"\n{title} ({len(items)}):")
        for v in items:
            fired = ",".join(v.codes) or "nothing"
            print(f"  [{v.case.detector}] {v.case.source} {v.case.name} (costline: {fired})")
            print(f"      {_preview(v.case.sql)}")
    print(f"\ncount differs on true positives ({len(miscounts)}):")
    for v in miscounts:
        print(f"  [{v.case.detector}] {v.case.name}: peer {v.case.count}, costline {v.count}")
    erred = {v.case.name: v for v in verdicts if v.errors}
    print(f"\nparse errors ({len(erred)} cases):")
    for name, v in erred.items():
        for message in v.errors:
            print(f"  {name}: {message}")
    skipped = test_skipped + sample_skipped
    print(f"\nunextracted ({len(skipped)}):")
    for u in skipped:
        print(f"  {u.source} {u.name}: {u.reason}")

    def listing(items: list[Verdict]) -> list[dict[str, Any]]:
        return [
            {"detector": v.case.detector, "case": v.case.name, "costline": list(v.codes)}
            for v in items
        ]

    result = {
        "benchmark": "lint_peer",
        "quick": args.quick,
        "peer_commit": args.commit,
        "tests_found": tests_found,
        "tests_extracted": len(test_cases),
        "tests_unextracted": [{"case": u.name, "reason": u.reason} for u in test_skipped],
        "samples": samples_found,
        "sample_detectors": list(det.sample_run),
        "excluded_from_totals": sorted(NEEDS_METADATA),
        "seconds": round(seconds, 2),
        "total": total.as_dict(),
        "tests": by_source["test"].as_dict(),
        "samples_total": by_source["sample"].as_dict(),
        "per_detector": {d: per[d].as_dict() for d in detectors},
        "false_negatives": listing(misses),
        "false_positives": listing(false_alarms),
        "count_differs": [
            {
                "detector": v.case.detector,
                "case": v.case.name,
                "peer": v.case.count,
                "costline": v.count,
            }
            for v in miscounts
        ],
        "parse_errors": {name: list(v.errors) for name, v in erred.items()},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
