"""fastcsv agrees with frictionless on every field spec of the standards, at every block edge.

A generator of cases, compared whole (timings removed) with frictionless's own
report. For every distinct field spec found in ``ckanext/lgdp/schemas/standards`` (type,
format, constraints, missing values, boolean values, membership of the
primary key), every edge value of that spec (blank, whitespace, signs, leading
zeros, exponents, inf and nan, very long digits, the bounds and one either
side, non-ASCII digits, thousands separators, currency and percent signs,
values just outside the pattern, true/false variants, ...) and every row-level
edge (a blank line, a row of empty cells, a short row, a long row, a repeated
key, a blank key) is placed:

* as the only row of a file;
* in the sample frictionless reads (``Detector().sample_size`` records): as its
  first row, in its middle right after a good row and right after a bad cell
  of its column, as its last row right after a bad cell, then alone in the
  one-row block that follows the sample, the last row of the file;
* in line mode, on both sides of each boundary of ``fastcsv.LINE_BLOCK_CHARS``
  characters (the real size: a long cell fills each block), as the last row
  of a block (the block's last character in it, or its line break) and the
  first of the next, and after a bad cell inside the block;
* in csv mode (the csv module reads from the first block holding a quote), on
  both sides of each block of ``fastcsv.CSV_BLOCK_ROWS`` records: the full set
  with the count lowered to a few records (the code is the same), and the blank
  cell with the real count;
* for integer and number columns, in blocks the check bisects (a cell holding
  a line break makes it bisect), on both sides of each leaf boundary of
  ``fastcsv._NumberCheck.LEAF`` cells, as the code splits;
* for columns whose valid values are remembered, on both sides of the point
  where ``fastcsv.VALUE_CACHE`` distinct values fill the memory.

Every boundary is computed from those constants, so the cases move with the
code. A row holds at most one cell frictionless finds wrong (a bad cell the
fast path missed cannot hide behind another error of its row). Each case is
one placed value; the test asserts how many were compared (at least 5,000),
that every distinct spec was covered by every layout, and that none of the
files was handed over to frictionless (so the fast path gave each answer).

    .venv/bin/python -m pytest -q -p no:ckan -o addopts="" tests/test_fastcsv_differential.py -s
"""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field as dataclass_field
from itertools import islice, product
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator

try:
    import re._parser as sre_parse  # Python 3.11+
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore

import re

import frictionless
import pytest
from frictionless import Schema

from ckanext.lgdp.submissions import fastcsv
from tests.test_fastcsv import _without_timing

from tests.conftest import STANDARDS  # noqa: E402 - the one path of the standards
LIMIT_ERRORS = 10**6  # every error of a file is compared, none cut
MIN_CASES = 5000
CSV_SMALL_BLOCK = 5  # records per csv block for the full csv-mode set
SAMPLE = frictionless.Detector().sample_size  # records frictionless samples (the header is one)


# Specs


@dataclass
class Spec:
    """A distinct field spec of the standards (what decides how a cell is read)."""

    key: str
    field: dict
    primary: bool
    missing_values: list | None
    used_by: list[str] = dataclass_field(default_factory=list)

    def schema(self, pad: bool = False) -> dict:
        fields = [{"name": "row", "type": "string"}, dict(self.field, name="value")]
        if pad:
            fields.append({"name": "pad", "type": "string"})
        schema: dict[str, Any] = {
            "fields": fields,
            "primaryKey": ["row", "value"] if self.primary else ["row"],
        }
        if self.missing_values is not None:
            schema["missingValues"] = self.missing_values
        return schema


IGNORED_KEYS = {"name", "title", "description", "example", "rdfType"}


def distinct_specs() -> list[Spec]:
    specs: dict[str, Spec] = {}
    for path in sorted(STANDARDS.glob("*.json")):
        standard = json.loads(path.read_text())
        primary = set(standard.get("primaryKey") or [])
        for f in standard["fields"]:
            spec = {k: v for k, v in f.items() if k not in IGNORED_KEYS and not k.startswith("lgdp:")}
            in_key = f["name"] in primary
            missing = standard.get("missingValues")
            key = json.dumps([spec, in_key, missing], sort_keys=True)
            if key not in specs:
                specs[key] = Spec(key, spec, in_key, missing)
            specs[key].used_by.append(f"{path.stem}:{f['name']}")
    return list(specs.values())


SPECS = distinct_specs()


# Values


class Quoted(str):
    """A cell written between quotes even when it needs none."""


@dataclass(frozen=True)
class RowEdge:
    """A row-level edge, in place of a cell value."""

    kind: str

    def __str__(self) -> str:
        return f"<{self.kind}>"


ROW_EDGES = [RowEdge(k) for k in ("blank line", "empty cells", "short row", "long row", "repeated key", "blank key")]


def _examples(pattern: str) -> Iterator[str]:
    """Distinct strings the pattern matches fully: the n-th string picks the
    n-th combination of the choices of its character classes and branches."""

    def slots(items: Any) -> list[list[str]]:
        out: list[list[str]] = []
        for op, arg in items:
            name = str(op)
            if name == "LITERAL":
                out.append([chr(arg)])
            elif name == "IN":
                chars: list[str] = []
                for iop, iarg in arg:
                    iname = str(iop)
                    if iname == "LITERAL":
                        chars.append(chr(iarg))
                    elif iname == "RANGE":
                        chars.extend(chr(c) for c in range(iarg[0], min(iarg[1], iarg[0] + 25) + 1))
                    elif iname == "CATEGORY" and str(iarg) == "CATEGORY_DIGIT":
                        chars.extend("0123456789")
                    else:
                        raise ValueError(f"pattern {pattern!r}: class item {iname}")
                out.append(chars)
            elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                low, _, sub = arg
                out.extend(slots(sub) * low)
            elif name == "SUBPATTERN":
                out.extend(slots(arg[-1]))
            elif name == "BRANCH":
                choices = []
                for alternative in arg[1]:
                    choices.extend("".join(c) for c in islice(product(*slots(alternative)), 1000))
                out.append(choices)
            elif name == "AT":
                continue
            else:
                raise ValueError(f"pattern {pattern!r}: {name}")
        return out

    compiled = re.compile(f"^{pattern}$")
    parts = slots(sre_parse.parse(pattern))
    n = 0
    while True:
        rest, out = n, []
        for choices in parts:
            rest, i = divmod(rest, len(choices))
            out.append(choices[i])
        if rest:  # every combination given
            return
        text = "".join(out)
        assert compiled.match(text), (pattern, text)
        yield text
        n += 1


def _around(bound: Any, integer: bool) -> list[str]:
    b = Decimal(str(bound))
    values = [b - 1, b, b + 1]
    if not integer:
        values += [b - Decimal("0.001"), b + Decimal("0.001"), b + Decimal("1e-12")]
    out = [str(v) for v in values]
    out += [f"{b}.0", f"0{b}" if b >= 0 else f"-0{-b}", f"+{b}" if b >= 0 else str(b)]
    return out


INTEGER_VALUES = [
    "", " ", "   ", "\t", "0", "1", "7", "10", "00", "007", "-0", "+0", "+1", "-1", "-7",
    "1.0", "1.", ".5", "1.5", "1e3", "1E3", "1e0", "0x10", "0b1", " 5", "5 ", " 5 ", "\t5\t",
    "1_000", "1__000", "_1", "1_", "1,000", "1 000", "1.000", "١٢", "１２", "٣", "²", "\u22121",
    "5\u00a0", "\u20075", "inf", "-inf", "nan", "NaN", "Infinity", "true", "abc", "£5", "5%", "$5",
    "5.00", "5-", "--5", "+-5", "1\n", "\n", "9" * 18, "9" * 19, "1" + "0" * 18,
    "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
    "9" * 40, "1" * 4300, "1" * 4301, "0" * 40 + "1", Quoted(""), Quoted("5"),
]
NUMBER_VALUES = [
    "", " ", "\t", "0", "1", "0.5", ".5", "5.", "-.5", ".", "-", "+", "1.5", "-1.5", "+1.5", "0.0",
    "-0.0", "-0", "007.5", "1e3", "1E3", "1e-3", "1e+3", "1.5e2", "-1e-3", "1e400", "1e999999",
    "-1e999999", "1e-999999", "1e999999999999999999", "inf", "+inf", "-inf", "Inf", "infinity",
    "-Infinity", "nan", "-nan", "NaN", "sNaN", "nan123", "1_000.5", "1_000", "1__0", "1,5",
    "1,000.5", "1 000", "1.2.3", "1e", "e1", "1 .5", " 5 ", "\t5", "٣.٥", "１.５", "\u22121.5",
    "£5", "5%", "$5", "5.00%", "abc", "true", "1\n", "\n", "1" * 30, "1" * 400,
    "0." + "0" * 100 + "1", "9" * 19 + ".9", "1" * 5000, Quoted(""), Quoted("1.5"),
]
BOOLEAN_EXTRA = [
    "yes", "no", "y", "n", "t", "f", "T", "F", "on", "off", " true", "true ", "tRUE", "01", "1.0",
    "2", "-1", "", " ", "None", "null", "\ttrue", Quoted("true"), "true\n",
]


def _reader(spec: Spec) -> Callable[[Any], Any]:
    return Schema.from_descriptor(spec.schema()).fields[1].create_cell_reader()


def _is_valid(spec: Spec, reader: Callable[[Any], Any], value: Any) -> bool:
    return not reader(str(value))[1]


_CACHE: dict[tuple[str, str], Any] = {}


def _cached(function: Callable[[Spec], Any]) -> Callable[[Spec], Any]:
    def cached(spec: Spec) -> Any:
        key = (function.__name__, spec.key)
        if key not in _CACHE:
            _CACHE[key] = function(spec)
        return _CACHE[key]

    cached.__name__ = function.__name__
    cached.__doc__ = function.__doc__
    return cached


@_cached
def edge_values(spec: Spec) -> list[Any]:
    f = spec.field
    kind = f.get("type", "any")
    c = f.get("constraints", {})
    if f.get("format", "default") != "default":
        raise AssertionError(f"no edge values for format {f['format']} yet: {spec.key}")
    if kind == "integer":
        values = list(INTEGER_VALUES)
        for name in ("minimum", "maximum"):
            if name in c:
                values += _around(c[name], True)
    elif kind == "number":
        values = list(NUMBER_VALUES)
        for name in ("minimum", "maximum"):
            if name in c:
                values += _around(c[name], False)
    elif kind == "boolean":
        field = Schema.from_descriptor(spec.schema()).fields[1]
        values = list(field.true_values) + list(field.false_values) + BOOLEAN_EXTRA
    elif kind == "string":
        values = ["", " ", "x", "a" * 1000, Quoted("")]
        if "pattern" in c:
            examples = _examples(c["pattern"])
            ex, ex2 = next(examples), next(examples)
            digit = next((ch for ch in ex if ch.isdigit()), None)
            values += [
                ex, ex2, ex.lower(), ex.upper(), ex[:-1], ex + ex[-1], ex + "0", "0" + ex, " " + ex,
                ex + " ", "\t" + ex, ex + "\n", ex + "\r\n", ex + "\u2028", ex + "\x85", ex * 2,
                ex + ",", '"' + ex + '"', ex + "x" * 1000, Quoted(ex),
            ]
            if digit:
                values += [ex.replace(digit, "٣", 1), ex.replace(digit, "x", 1), ex.replace(digit, "", 1)]
            for other in SPECS:  # the other patterns' values, e.g. a year in a financial-year column
                p = other.field.get("constraints", {}).get("pattern")
                if p and p != c["pattern"]:
                    values.append(next(_examples(p)))
        for value in c.get("enum", []):
            s = str(value)
            values += [s, s.lower(), s.upper(), " " + s, s + " ", s + "x", s[:-1]]
        for name in ("minLength", "maxLength"):
            if name in c:
                values += ["a" * max(c[name] + d, 0) for d in (-1, 0, 1)]
    else:
        raise AssertionError(f"no edge values for type {kind} yet: {spec.key}")
    seen: set[tuple[str, bool]] = set()
    out: list[Any] = []
    for value in values:
        marker = (str(value), isinstance(value, Quoted))
        if marker not in seen:
            seen.add(marker)
            out.append(value)
    return out + ROW_EDGES


@_cached
def good_and_bad(spec: Spec) -> tuple[str, str | None]:
    """A plain valid cell, and a cell frictionless finds wrong (None: none is)."""
    reader = _reader(spec)
    c = spec.field.get("constraints", {})
    candidates = ["1", "7", "1.5", "true"] + [str(c[b]) for b in ("minimum", "maximum") if b in c]
    if "pattern" in c:
        candidates.insert(0, next(_examples(c["pattern"])))
    candidates += [str(v) for v in edge_values(spec) if not isinstance(v, RowEdge)]
    plain = [v for v in candidates if v and v.isprintable() and not set(v) & set(',"\r\n ')]
    good = next(v for v in plain if _is_valid(spec, reader, v))
    bad = next((v for v in ["x", "maybe", "-1", ""] + plain if not _is_valid(spec, reader, v)), None)
    return good, bad


# Files


def _needs_quotes(cell: str) -> bool:
    return isinstance(cell, Quoted) or any(ch in cell for ch in ',"\r\n')


def _cell(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"' if _needs_quotes(cell) else cell


def line_safe(value: Any) -> bool:
    """Whether a row holding the value can be read in line mode (no quotes)."""
    return isinstance(value, RowEdge) or not _needs_quotes(value)


@dataclass
class Builder:
    """The rows of one file of a spec's narrow schema (row, value[, pad])."""

    spec: Spec
    pad: bool = False
    terminator: str = "\n"
    final_newline: bool = True
    quote_all: bool = False
    lines: list[str] = dataclass_field(default_factory=list)
    cases: int = 0
    previous: list[str] | None = None

    def __post_init__(self) -> None:
        self.good, self.bad = good_and_bad(self.spec)
        names = ["row", "value"] + (["pad"] if self.pad else [])
        self.lines.append(",".join(names))

    @property
    def width(self) -> int:
        return 3 if self.pad else 2

    def _cells(self, value: Any, pad: str = "") -> list[str] | None:
        n = len(self.lines)
        row = f"r{n}"
        tail = [pad] if self.pad else []
        if isinstance(value, RowEdge):
            kind = value.kind
            if kind == "blank line":
                return None
            if kind == "empty cells":
                return [""] * self.width
            if kind == "short row":
                return [row]
            if kind == "long row":
                return [row, self.good] + tail + ["extra"]
            if kind == "repeated key":
                previous = self.previous or [f"r{n - 1}", self.good]
                return (previous + ["", ""])[:2] + tail
            if kind == "blank key":
                return ["", "" if self.spec.primary else self.good] + tail
            raise AssertionError(kind)
        return [row, value] + tail

    def row(self, value: Any, pad: str = "", case: bool = True) -> str:
        cells = self._cells(value, pad)
        self.previous = cells
        if cells is None:
            line = ""
        elif self.quote_all:
            line = ",".join('"' + c.replace('"', '""') + '"' for c in cells)
        else:
            line = ",".join(map(_cell, cells))
        self.lines.append(line)
        if case:
            self.cases += 1
        return line

    def good_row(self, pad: str = "") -> str:
        return self.row(self.good, pad, case=False)

    def bad_row(self) -> str:
        if self.bad is None:
            return self.row(RowEdge("long row"), case=False)
        return self.row(self.bad, case=False)

    def text(self) -> str:
        text = self.terminator.join(self.lines)
        if self.final_newline or self.lines[-1] == "":
            text += self.terminator
        return text


@dataclass
class Case:
    layout: str
    spec: Spec
    name: str
    text: str
    cases: int
    patch: dict = dataclass_field(default_factory=dict)
    pad: bool = False


def _ending(i: int) -> dict:
    return [dict(), dict(final_newline=False), dict(terminator="\r\n")][i % 3]


def layout_only(spec: Spec) -> Iterator[Case]:
    for i, value in enumerate(edge_values(spec)):
        b = Builder(spec, **_ending(i))
        b.row(value)
        yield Case("only row", spec, f"only {value!r}", b.text(), b.cases)


def layout_sample(spec: Spec) -> Iterator[Case]:
    data = SAMPLE - 1  # data rows in the sample block
    for i, value in enumerate(edge_values(spec)):
        b = Builder(spec, **_ending(i))
        b.row(value)  # first row of the file and of the sample block
        b.good_row()
        b.bad_row()
        b.row(value)  # right after a bad cell of its column
        b.good_row()
        b.row(value)  # right after a good row
        while len(b.lines) - 1 < data - 2:
            b.good_row()
        b.bad_row()
        b.row(value)  # the sample's last row, right after a bad cell
        assert len(b.lines) - 1 == data
        b.row(value)  # alone in the block after the sample: the file's last row
        yield Case("sample", spec, f"sample {value!r}", b.text(), b.cases)


LINE_SMALL_BLOCK = 1 << 14  # characters per line block for the full line-mode set


def layout_line_blocks(spec: Spec) -> Iterator[Case]:
    """Line mode, every value that can be read in line mode, with blocks of
    LINE_SMALL_BLOCK characters (the code is the same)."""
    assert LINE_SMALL_BLOCK < fastcsv.LINE_BLOCK_CHARS
    values = [v for v in edge_values(spec) if line_safe(v)]
    yield from _line_blocks(spec, values, LINE_SMALL_BLOCK, "line blocks", group=len(values))


def layout_line_real_blocks(spec: Spec) -> Iterator[Case]:
    """Line mode with the real LINE_BLOCK_CHARS (a long cell fills each
    block): the blanks, a bad cell and the row-level edges."""
    good, bad = good_and_bad(spec)
    chosen = ["", " ", bad, good] + [e for e in ROW_EDGES]
    values = [v for v in edge_values(spec) if (v in chosen and not isinstance(v, Quoted)) and line_safe(v)]
    yield from _line_blocks(spec, values, fastcsv.LINE_BLOCK_CHARS, "line blocks, real size", group=len(values))


def _line_blocks(spec: Spec, values: list[Any], size: int, layout: str, group: int) -> Iterator[Case]:
    """Block k is [F, bad, F, pad, good, V]: V = value k is its last row (its
    line holds the block's last character: its first character or its line
    break) and F = value k-1 its first row (the first block: good rows)."""
    patch = {} if size == fastcsv.LINE_BLOCK_CHARS else {"LINE_BLOCK_CHARS": size}
    for start in range(0, len(values), group):
        chunk = values[start : start + group]
        term = "\r\n" if (start // group + SPECS.index(spec)) % 2 else "\n"
        b = Builder(spec, pad=True, terminator=term)
        while len(b.lines) < SAMPLE:
            b.good_row()
        first: Any = None
        for k, value in enumerate(chunk):
            begin = len(b.lines)
            if first is None:
                b.good_row()
                b.bad_row()
                b.good_row()
            else:
                b.row(first)  # the first row of the block
                b.bad_row()
                b.row(first)  # right after a bad cell
            pad_at = len(b.lines)
            b.good_row()  # its pad cell is filled below
            b.good_row()
            b.row(value)  # the last row of the block
            lengths = [len(line) + len(term) for line in b.lines[begin:]]
            # V starts at the block's last character, or ends with it
            inside = 0 if k % 2 else lengths[-1] - 1
            pad = size - 1 - inside - sum(lengths[:-1])
            assert pad > 0
            b.lines[pad_at] += "p" * pad
            first = value
        b.row(first)
        b.bad_row()
        b.row(first)
        case = Case(layout, spec, f"{layout} {start}", b.text(), b.cases, patch=patch, pad=True)
        _check_line_blocks(case, size, term, len(chunk))
        yield case


def _check_line_blocks(case: Case, size: int, term: str, blocks: int) -> None:
    """The block ends are where the layout put them (as fastcsv reads: the
    sample lines, then ``size`` characters completed to a line break)."""
    text = case.text
    pos = 0
    for _ in range(SAMPLE):
        pos = text.index(term, pos) + len(term)
    ends = []
    while pos < len(text):
        end = min(pos + size, len(text))
        if text[end - 1] != "\n":
            nl = text.find("\n", end)
            end = len(text) if nl < 0 else nl + 1
        ends.append(end)
        pos = end
    rows_in, counted, last = [], 0, 0
    for e in ends:
        counted += text.count(term, last, e)
        rows_in.append(counted)
        last = e
    assert len(ends) == blocks + 1, (len(ends), blocks)
    # each block but the last holds 6 records: F, bad, F, pad, good, V
    assert [b - a for a, b in zip([SAMPLE] + rows_in, rows_in)][:-1] == [6] * blocks


def layout_csv_blocks(spec: Spec) -> Iterator[Case]:
    """Csv mode with small blocks: [F, bad, F, good..., V] per block of
    CSV_BLOCK_ROWS records, F the previous value, V the next."""
    size = CSV_SMALL_BLOCK
    values = edge_values(spec)
    term = ["\n", "\r\n", "\r"][SPECS.index(spec) % 3]  # a lone CR: the csv module from the start
    b = Builder(spec, terminator=term)
    while len(b.lines) < SAMPLE:
        b.good_row()
    # a quoted first row after the sample: the csv module reads from here
    b.row(Quoted(b.good), case=False)
    for _ in range(size - 2):
        b.good_row()
    b.row(values[0])
    for k in range(1, len(values)):
        b.row(values[k - 1])  # first of its block
        b.bad_row()
        b.row(values[k - 1])  # right after a bad cell
        for _ in range(size - 4):
            b.good_row()
        b.row(values[k])  # last of its block
    b.row(values[-1])
    b.bad_row()
    b.row(values[-1])
    yield Case("csv blocks", spec, "csv blocks", b.text(), b.cases, patch={"CSV_BLOCK_ROWS": size})


def layout_csv_real_blocks(spec: Spec) -> Iterator[Case]:
    """Csv mode with the real CSV_BLOCK_ROWS: a blank cell on both sides of
    the first boundary and after a bad cell in the last block."""
    size = fastcsv.CSV_BLOCK_ROWS
    b = Builder(spec)
    while len(b.lines) < SAMPLE:
        b.good_row()
    b.row(Quoted(b.good), case=False)
    for _ in range(size - 3):
        b.good_row()
    b.bad_row()
    b.row("")  # last of the first csv block, after a bad cell
    b.row("")  # first of the next
    b.row(" ")
    b.bad_row()
    b.row("")  # the file's last row, after a bad cell
    yield Case("csv blocks, real size", spec, "csv real", b.text(), b.cases)


def leaf_edges(size: int, leaf: int) -> list[int]:
    """Where _NumberCheck._locate's leaves start in a column of ``size`` cells."""
    starts: list[int] = []

    def split(lo: int, hi: int) -> None:
        if hi - lo <= leaf:
            starts.append(lo)
            return
        middle = lo + (hi - lo) // 2
        split(lo, middle)
        split(middle, hi)

    split(0, size)
    return starts[1:]


def layout_bisection(spec: Spec) -> Iterator[Case]:
    """Integer and number columns: csv blocks the check bisects (the block's
    first cell holds a line break), each value on both sides of a leaf edge."""
    if spec.field.get("type") not in ("integer", "number"):
        return
    leaf = fastcsv._NumberCheck.LEAF
    size = 8 * leaf + 3  # uneven halves
    edges = leaf_edges(size, leaf)
    values = [v for v in edge_values(spec) if not isinstance(v, RowEdge) or v.kind != "blank line"]
    b = Builder(spec)
    good, _ = good_and_bad(spec)
    while len(b.lines) < SAMPLE:
        b.good_row()
    for start in range(0, len(values), len(edges)):
        slots: dict[int, Any] = {}
        for edge, value in zip(edges, values[start : start + len(edges)]):
            slots[edge - 1] = slots[edge] = value
        for i in range(size):
            if i == 0:
                b.row(Quoted(good + "\n"), case=False)  # makes the check bisect
            elif i in slots:
                b.row(slots[i])
            else:
                b.good_row()
    yield Case("bisection", spec, "bisection", b.text(), b.cases, patch={"CSV_BLOCK_ROWS": size})


def layout_value_cache(spec: Spec) -> Iterator[Case]:
    """Columns whose valid values are remembered (patterns, booleans, enums,
    lengths): every value on both sides of the point where VALUE_CACHE
    distinct valid values fill the memory."""
    c = spec.field.get("constraints", {})
    if "pattern" not in c:
        return  # only patterns have enough distinct valid values in the standards
    limit = fastcsv.VALUE_CACHE
    distinct = []
    for text in _examples(c["pattern"]):
        distinct.append(text)
        if len(distinct) > limit + 1000:
            break
    if len(distinct) <= limit:
        return  # the memory never fills
    values = edge_values(spec)
    b = Builder(spec)
    fillers = iter(distinct)
    while len(b.lines) - 1 < limit - len(values) - 5:
        b.row(next(fillers), case=False)
    for value in values:
        b.row(value)
    while len(b.lines) - 1 < limit + 5:
        b.row(next(fillers), case=False)
    for value in values:
        b.row(value)
    yield Case("value cache", spec, "value cache", b.text(), b.cases)


LAYOUTS = [
    layout_only,
    layout_sample,
    layout_line_blocks,
    layout_line_real_blocks,
    layout_csv_blocks,
    layout_csv_real_blocks,
    layout_bisection,
    layout_value_cache,
]


def generate() -> Iterator[Case]:
    for layout in LAYOUTS:
        for spec in SPECS:
            yield from layout(spec)


# Comparison


def _first_difference(ours: dict, theirs: dict) -> str:
    if not ours.get("tasks") or not theirs.get("tasks"):
        return f"ours {ours.get('errors')} theirs {theirs.get('errors')}"
    a, b = ours["tasks"][0], theirs["tasks"][0]
    for key in ("labels", "stats", "warnings", "valid"):
        if a.get(key) != b.get(key):
            return f"{key}: ours {a.get(key)} theirs {b.get(key)}"
    for x, y in zip(a["errors"], b["errors"]):
        if x != y:
            return f"ours {x}\ntheirs {y}"
    return f"{len(a['errors'])} errors, frictionless {len(b['errors'])}"


def test_specs_of_the_standards_are_all_generated() -> None:
    """Every distinct spec gets values, a good and a bad cell, in every layout
    that applies to it (no validation here: quick)."""
    assert len(SPECS) >= 10  # the standards hold 14 distinct field specs today
    used = Counter(name for spec in SPECS for name in spec.used_by)
    assert sum(used.values()) == sum(len(json.loads(p.read_text())["fields"]) for p in STANDARDS.glob("*.json"))
    for spec in SPECS:
        good, bad = good_and_bad(spec)
        reader = _reader(spec)
        assert _is_valid(spec, reader, good), spec.key
        assert bad is None or not _is_valid(spec, reader, bad), spec.key
        assert len(edge_values(spec)) >= 20, spec.key


def test_fastcsv_agrees_with_frictionless_on_generated_cases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fallbacks: list[str] = []
    real_report = fastcsv.frictionless_report

    def spy(path: str, *args: Any, **kwargs: Any) -> dict:
        fallbacks.append(str(path))
        return real_report(path, *args, **kwargs)

    monkeypatch.setattr(fastcsv, "frictionless_report", spy)
    compared = Counter()
    files = Counter()
    covered: dict[str, set[str]] = {}
    mismatches: list[str] = []
    started = time.perf_counter()
    path = tmp_path / "case.csv"
    for case in generate():
        path.write_text(case.text, encoding="utf-8", newline="")
        schema = case.spec.schema(pad=case.pad)
        with monkeypatch.context() as m:
            for name, value in case.patch.items():
                m.setattr(fastcsv, name, value)
            before = len(fallbacks)
            ours = _without_timing(fastcsv.validate_csv(str(path), schema, limit_errors=LIMIT_ERRORS))
            handed_over = len(fallbacks) > before
        theirs = _without_timing(real_report(str(path), schema, limit_errors=LIMIT_ERRORS))
        files[case.layout] += 1
        if ours != theirs:
            kept = tmp_path / f"mismatch-{len(mismatches)}.csv"
            kept.write_text(case.text, encoding="utf-8", newline="")
            mismatches.append(
                f"{case.layout} / {case.spec.key} / {case.name} ({kept}):\n{_first_difference(ours, theirs)}"
            )
        if handed_over:
            fallbacks[-1] = f"{case.layout} / {case.spec.key} / {case.name}"
            continue
        compared[case.layout] += case.cases
        covered.setdefault(case.layout, set()).add(case.spec.key)
    seconds = time.perf_counter() - started
    total = sum(compared.values())
    print(
        f"\nfastcsv differential: {total} cases in {sum(files.values())} files compared with frictionless "
        f"in {seconds:.0f} s, {len(mismatches)} mismatches, {len(fallbacks)} files handed over; "
        f"{len(SPECS)} distinct specs; by layout: {dict(compared)}"
    )
    assert not mismatches, f"{len(mismatches)} mismatches, first ones:\n" + "\n\n".join(mismatches[:5])
    assert not fallbacks, fallbacks[:5]
    assert total >= MIN_CASES
    every = {spec.key for spec in SPECS}
    numeric = {spec.key for spec in SPECS if spec.field.get("type") in ("integer", "number")}
    for layout in ("only row", "sample", "line blocks", "line blocks, real size", "csv blocks", "csv blocks, real size"):
        assert covered.get(layout) == every, layout
    assert covered.get("bisection") == numeric
    assert covered.get("value cache")
