"""Table validation of an uploaded CSV, with the report ``frictionless.validate`` gives, faster.

``validate_csv(path, schema)`` returns the dict of
``frictionless.Report.to_descriptor()`` that

    with system.use_context(trusted=True):
        frictionless.validate(path, format="csv", schema=Schema.from_descriptor(schema),
                              limit_errors=limit_errors)

returns (frictionless 5.18; ``frictionless_report`` below is exactly that
call), at a fraction of the time: the same errors (type, title, description,
message, tags, note, rowNumber, fieldNumber, fieldName, cell, cells, labels,
rowNumbers), in the same order, the same labels, warnings and stats (rows,
fields, bytes, md5, sha256; only ``seconds`` differs), the same handling of
``limit_errors``. ``trusted=True`` is what ckanext-validation uses too:
without it frictionless refuses every absolute path ("path ... is not safe")
instead of validating the file.

How it is fast. Frictionless builds a ``Row`` object per row and reads every
cell through a chain of Python calls. Here the file is read through the same
byte and text layers frictionless uses (so byte counts and hashes agree), the
dialect is sniffed and the header found exactly as frictionless does, and the
rows are then checked a block at a time, column by column:

* a line-oriented reader for the usual quote-free file (a block of lines is
  split into cells with two C calls) and Python's csv module, with the
  dialect frictionless would use, from the first block holding a quote or a
  lone carriage return to the end of the file;
* integer and number columns: one regular expression over the joined column
  proves that every cell is a plain number of a shape frictionless accepts
  and that satisfies the constraints (where it stops is the next cell to look
  at); only cells long enough to exceed a maximum are converted;
* string columns with a pattern: each distinct value is matched once, with
  the expression frictionless compiles; boolean, enum and length-constrained
  columns: each distinct value is decided once by frictionless's own cell
  reader; both remember the valid values;
* the primary key: a dict of key -> row number, updated a block at a time;
  frictionless compares keys by value (the tuple of the cells as read), so
  an integer key cell stands for its value: "01", " 1" and "+1" are the key
  1, and a cell that is no integer ("1.0", "x") or missing stands for None,
  like an empty one. A column of plain integers written the usual way (no
  sign but "-", no leading zero, no spaces) is its own key;
* a row any of this finds suspect (or a row of the wrong length, or a blank
  one) is then read cell by cell with frictionless's own cell readers, and
  its errors are frictionless's own error classes, built as its ``Row``
  builds them. The fast checks may suspect a valid row, never pass an
  invalid one.

Supported subset (anything else is handed to frictionless itself, so the
answer is always frictionless's):

* a local file frictionless reads as UTF-8 (with or without BOM; the encoding
  is detected from the first 10,000 bytes as frictionless does) whose header
  frictionless finds on row 1 (its sampler can pick a later row when the
  first row's width is far from the average of the first 100 rows; we hand
  those to frictionless), a non-empty first row, no decoding or CSV error;
* any dialect the sniffer detects (line mode needs the plain comma dialect,
  otherwise the csv module does all the work);
* field types string (format default), integer, number, boolean; constraints
  required, minimum, maximum, pattern, enum, minLength, maxLength; custom
  boolean trueValues/falseValues; custom keys (``lgdp:countable``,
  ``lgdp:totals``, ...) are ignored, as frictionless ignores them;
* missingValues [""] (the default) on the schema and every field; no
  bareNumber, floatNumber, decimalChar or groupChar; no ``unique``
  constraint; no foreignKeys; unique field names; primaryKey fields of type
  string or integer (format default), no key cell but the last holding the
  character U+001F (keys are joined with it);
* frictionless's global ``system`` in its default state (onerror "ignore",
  standards "v2").

``extra_errors`` (already-built error dicts, e.g. CSV-injection findings) are
merged into the task's errors in row order (after frictionless's errors of
the same row; errors without a row number sort before row 2), are not cut by
``limit_errors``, and make the report invalid; counts are updated.

Behaviours of frictionless this reproduces and a caller should know:

* rows are numbered by CSV record (the header is row 1), not by line: a
  quoted cell spanning lines does not advance the number; an empty line is a
  record with no cells (a blank row, plus a primary-key error "cells
  composing the primary keys are all None"), so a file ending in two line
  breaks has a blank last row;
* a cell of a required field missing from a short row gives a constraint
  error whose ``cell`` is "None", then one missing-cell error per missing cell;
* a blank row reports only "blank-row" (plus the primary-key error above);
* a cell has either one type error or its constraint errors, never both;
* integer and number cells are stripped of surrounding whitespace before
  being read ("  5 " is 5) but a cell of only spaces is a type error, not a
  missing value; integers go through Python's int(): "1_000", "+5",
  "007" and non-ASCII digits pass, "1.0", "1e3", "1,000" do not; numbers
  through Decimal(): "1e3", "1_000.5", "NaN", "inf", "-0" are numbers, NaN
  fails both minimum and maximum, "inf" passes a minimum;
* patterns are wrapped as ``^pattern$`` and matched with ``re.match``: "a|b"
  accepts anything starting with "a", and "$" accepts one trailing newline;
* header labels are stripped before they are compared with field names;
  labels are never used to map columns: cells are matched to fields by position;
* "the same as in the row at position N" names the previous row with that
  key, not the first;
* the error limit is checked after each row: once reached, the report keeps
  the first ``limit_errors`` errors, warns "reached error limit: N", and
  ``rows``, ``bytes`` (and whether md5/sha256 are present) are those of the
  part frictionless had read by then; header errors alone reaching the limit
  stop it after the first data row;
* with ``trusted`` unset, absolute paths are refused (see above).
"""
from __future__ import annotations

import copy
import csv
import hashlib
import heapq
import io
import logging
import os
import re
import time
from collections import Counter
from decimal import Decimal
from itertools import chain, compress, filterfalse, islice, repeat
from typing import Any, Callable, Iterable, Sequence

import frictionless
from frictionless import Report, Resource, Schema, errors as ferrors, system
from frictionless.formats.csv import settings as csv_settings
from frictionless.table import Header

log = logging.getLogger(__name__)

__all__ = ["validate_csv", "frictionless_report", "unsupported_reason"]

LINE_BLOCK_CHARS = 1 << 20  # characters read per block in line mode
CSV_BLOCK_ROWS = 8192  # records per block in csv mode
VALUE_CACHE = 20000  # valid distinct values remembered per column
FAST_TYPES = {"string", "integer", "number", "boolean"}
FAST_CONSTRAINTS = {"required", "minimum", "maximum", "pattern", "enum", "minLength", "maxLength"}
SNIFF_DELIMITERS = ",\t;|"  # what frictionless's CSV parser lets the sniffer choose from
PK_SEPARATOR = "\x1f"
ALL_NONE_NOTE = 'cells composing the primary keys are all "None"'


class _Unsupported(Exception):
    """The fast path cannot promise frictionless's answer: use frictionless."""


# Public


def validate_csv(
    path: str,
    schema: dict,
    *,
    limit_errors: int = 1000,
    extra_errors: Iterable[Any] | None = None,
) -> dict:
    """Validate the CSV at ``path`` against the Table Schema ``schema``.

    Returns the descriptor of the frictionless report (see the module
    docstring); raises what ``Schema.from_descriptor(schema)`` raises for an
    invalid schema.
    """
    started = time.perf_counter()
    path = os.fspath(path)
    if hasattr(schema, "to_descriptor"):  # a frictionless Schema
        schema = schema.to_descriptor()
    try:
        report = _FastValidation(path, schema, limit_errors).run(started)
    except _Unsupported as reason:
        log.debug("fastcsv: frictionless validates %s itself: %s", path, reason)
        report = frictionless_report(path, schema, limit_errors=limit_errors)
    if extra_errors is not None:
        _merge_extra_errors(report, extra_errors)
    return report


def frictionless_report(path: str, schema: dict, *, limit_errors: int = 1000) -> dict:
    """The reference: frictionless's own validation of ``path``, as a dict."""
    if hasattr(schema, "to_descriptor"):
        schema = schema.to_descriptor()
    schema_object = Schema.from_descriptor(copy.deepcopy(schema))
    with _trusted():
        report = frictionless.validate(
            os.fspath(path), format="csv", schema=schema_object, limit_errors=limit_errors
        )
    return report.to_descriptor()


def unsupported_reason(schema: dict) -> str | None:
    """Why the fast path would hand any file with this schema to
    frictionless, or None when it can take it (files can still be handed over:
    see the module docstring)."""
    try:
        _schema_plan(Schema.from_descriptor(copy.deepcopy(schema)))
    except _Unsupported as reason:
        return str(reason)
    return None


# Frictionless's global context


class _trusted:
    """``system.use_context(trusted=True)``, restored even when the body
    raises (frictionless's own context manager does not restore then)."""

    def __enter__(self):
        self.previous = system.trusted
        system.trusted = True

    def __exit__(self, *exc: Any):
        system.trusted = self.previous


# Schema


def _schema_plan(schema: Schema) -> tuple[list[Any], list[int]]:
    """The column checks and the primary-key positions, or _Unsupported."""
    if system.onerror != "ignore" or system.standards != "v2":
        raise _Unsupported("frictionless system context is not the default")
    if not schema.fields:
        raise _Unsupported("schema without fields")
    if schema.foreign_keys:
        raise _Unsupported("foreignKeys")
    if list(schema.missing_values) != [""]:
        raise _Unsupported("schema missingValues")
    checks = []
    for field in schema.fields:
        if field.type not in FAST_TYPES:
            raise _Unsupported(f"field type {field.type}")
        if field.format != "default":
            raise _Unsupported(f"field format {field.format}")
        if field.has_defined("missing_values") and list(field.missing_values) != [""]:
            raise _Unsupported("field missingValues")
        for option in ("bare_number", "float_number", "decimal_char", "group_char"):
            if field.has_defined(option):
                raise _Unsupported(f"field option {option}")
        unknown = set(field.constraints) - FAST_CONSTRAINTS
        if unknown:
            raise _Unsupported(f"constraint {sorted(unknown)[0]}")
        checks.append(_column_check(field))
    names = [field.name for field in schema.fields]
    if len(set(names)) != len(names):
        raise _Unsupported("duplicate field names")  # frictionless's rows are keyed by name
    positions = []
    for name in schema.primary_key:
        if name not in names:
            raise _Unsupported("primaryKey names a missing field")
        field = schema.fields[names.index(name)]
        if field.type not in ("string", "integer"):
            raise _Unsupported("primaryKey field not of type string or integer")
        positions.append(names.index(name))
    return checks, positions


def _column_check(field: Any) -> Any:
    """The fast check of one field's column (None: nothing can be wrong)."""
    reader = field.create_cell_reader()
    constraints = {k: v for k, v in field.constraints.items() if v is not None}
    if field.type == "string":
        if not constraints or set(constraints) == {"required"}:
            return _RequiredCheck() if constraints.get("required") else None
        if set(constraints) <= {"required", "pattern"}:
            return _PatternCheck(constraints["pattern"], bool(constraints.get("required")))
        return _ValueCheck(reader)
    if field.type == "boolean" or "enum" in constraints:
        return _ValueCheck(reader)
    value_reader = field.create_value_reader()
    bounds = []
    for name in ("minimum", "maximum"):
        bound = constraints.get(name)
        if bound is not None:
            bound = value_reader(bound)  # as frictionless reads it
            if bound is None or (isinstance(bound, Decimal) and not bound.is_finite()):
                raise _Unsupported(f"{name} constraint frictionless cannot compare")
        bounds.append(bound)
    return _NumberCheck(reader, field.type == "integer", bool(constraints.get("required")), *bounds)


# Integer cells that are their own key: what str(int(cell)) gives back
# unchanged (at most 18 digits: int() refuses more than 4,300, which
# frictionless reads as None), or empty (None); joined with "\n".
_CANONICAL_INTEGER = r"(?:0|-?[1-9][0-9]{0,17}+)?+"
_CANONICAL_INTEGERS = re.compile(f"{_CANONICAL_INTEGER}(?:\n{_CANONICAL_INTEGER})*+")


def _integer_key_part(column: Sequence[str], value_reader: Callable[[Any], Any]) -> Sequence[str]:
    """An integer key column as key parts: each cell stands for the value
    frictionless reads from it (str(int)), "" for None (a missing cell, or
    one that is not an integer)."""
    joined = "\n".join(column)
    if _CANONICAL_INTEGERS.fullmatch(joined) is not None and joined.count("\n") == len(column) - 1:
        return column
    out = []
    for cell in column:
        value = value_reader(cell) if cell else None
        out.append("" if value is None else str(value))
    return out


class _RequiredCheck:
    """A string field whose only constraint is required: "" is the only bad cell."""

    def bad(self, column: Sequence[str]) -> list[int]:
        if "" not in column:
            return []
        return [i for i, cell in enumerate(column) if cell == ""]


class _ValueCheck:
    """Each distinct value is read once by frictionless's cell reader."""

    def __init__(self, reader: Callable[[Any], Any]):
        self.reader = reader
        self.good: set[str] = set()

    def bad(self, column: Sequence[str]) -> list[int]:
        new = set(column)
        new.difference_update(self.good)
        if not new:
            return []
        wrong = set()
        for value in new:
            _, notes = self.reader(value)
            if notes:
                wrong.add(value)
            elif len(self.good) < VALUE_CACHE:
                self.good.add(value)
        if not wrong:
            return []
        return [i for i, cell in enumerate(column) if cell in wrong]


class _PatternCheck(_ValueCheck):
    """A string field whose constraints are a pattern (and perhaps required):
    a value is valid when it is missing ("") and not required, or when the
    pattern matches it as frictionless matches it (``^pattern$``, re.match)."""

    def __init__(self, pattern: str, required: bool):
        super().__init__(lambda cell: None)
        self.match = re.compile("^{0}$".format(pattern)).match
        self.required = required

    def bad(self, column: Sequence[str]) -> list[int]:
        new = set(column)
        new.difference_update(self.good)
        if not new:
            return []
        wrong = set(filterfalse(self.match, new))
        if "" in new:
            if self.required:
                wrong.add("")
            else:
                wrong.discard("")
        if len(self.good) < VALUE_CACHE:
            self.good.update(new.difference(wrong) if wrong else new)
        if not wrong:
            return []
        return [i for i, cell in enumerate(column) if cell in wrong]


class _NumberCheck:
    """Integer and number columns: a regular expression over the joined
    column accepts only cells that are plain numbers frictionless reads and
    that meet the constraints; cells it cannot vouch for are read by
    frictionless's cell reader. Where the expression stops is where the
    next suspect cell is, so one pass finds them all."""

    LEAF = 32

    def __init__(self, reader, integer: bool, required: bool, minimum: Any, maximum: Any):
        self.reader = reader
        self.convert = int if integer else Decimal
        self.minimum = minimum
        self.maximum = maximum
        negative = minimum is None or minimum < 0
        # Possessive quantifiers: no backtracking, about twice as fast.
        digits = "[0-9]{1,18}+" if integer else r"(?:[0-9]++(?:\.[0-9]*+)?+|\.[0-9]++)"
        cell = ("-?" if negative else "") + digits
        if not required:
            cell = f"(?:{cell})?"
        self.syntax = re.compile(f"{cell}(?:\n{cell})*+")
        # Cells must be converted when the bounds are unusual; otherwise only
        # the cells long enough to exceed the maximum are.
        self.convert_all = (minimum is not None and minimum != 0) or (
            maximum is not None and maximum < 1
        )
        self.big = None
        # (An integer maximum of 19 digits or more: no cell of at most 18 digits exceeds it.)
        if maximum is not None and not self.convert_all and not (integer and maximum >= 10**18):
            width = len(str(int(maximum)))
            width = f"{width},18" if integer else f"{width},"
            fraction = "" if integer else r"(?:\.[0-9]*+)?+"
            # Whole cells of plain digits long enough to exceed the maximum,
            # searched in "\n" + the joined column (a literal first character
            # makes the search fast).
            self.big = re.compile(f"\n([0-9]{{{width}}}+{fraction})(?![^\n])")

    def fine(self, column: Sequence[str]) -> bool:
        joined = "\n".join(column)
        if self.syntax.fullmatch(joined) is None or joined.count("\n") != len(column) - 1:
            return False
        if self.convert_all:
            values = list(map(self.convert, filter(None, column)))
            if values:
                if self.minimum is not None and min(values) < self.minimum:
                    return False
                if self.maximum is not None and max(values) > self.maximum:
                    return False
        elif self.big is not None:
            big = self.big.findall("\n" + joined)
            if big and max(map(self.convert, big)) > self.maximum:
                return False
        return True

    def bad(self, column: Sequence[str]) -> list[int]:
        joined = "\n".join(column)
        if self.convert_all or joined.count("\n") != len(column) - 1:
            # Unusual bounds, or cells holding a newline: bisect.
            if self.fine(column):
                return []
            found: list[int] = []
            self._locate(column, 0, found)
            return found
        found = self._scan(column, joined)
        if self.big is not None:
            self._over_maximum(column, joined, found)
        return found

    def _scan(self, column: Sequence[str], joined: str) -> list[int]:
        """Cells the syntax rejects and frictionless's reader confirms."""
        found: list[int] = []
        match = self.syntax.match
        size = len(joined)
        pos = index = 0  # pos: where cell number ``index`` starts
        while True:
            m = match(joined, pos)
            end = m.end() if m is not None else pos
            if end == size:
                # Every cell from ``index`` on passed, unless nothing matched
                # at the very end: then cell ``index`` is an empty last cell
                # (the whole column, or the cell after the last newline) that
                # the syntax did not take, as for a required field.
                if end == pos and self.reader(column[index])[1]:
                    found.append(index)
                return found
            if joined[end] != "\n":  # stopped inside a cell: that one
                before = joined.rfind("\n", pos, end)
                start = before + 1 if before >= 0 else pos
            elif end > pos:  # the cell before the newline passed: the next one
                start = end + 1
            else:  # an empty cell at pos
                start = pos
            index += joined.count("\n", pos, start)
            if self.reader(column[index])[1]:
                found.append(index)
            after = joined.find("\n", start)
            if after < 0:
                return found
            index += 1
            pos = after + 1

    def _over_maximum(self, column: Sequence[str], joined: str, found: list[int]) -> None:
        """Add the plain-number cells over the maximum (rare)."""
        text = "\n" + joined
        last = 0
        index = -1
        for m in self.big.finditer(text):
            if self.convert(m.group(1)) > self.maximum:
                index += text.count("\n", last, m.start() + 1)
                last = m.start() + 1
                if index not in found and self.reader(column[index])[1]:
                    found.append(index)

    def _locate(self, column: Sequence[str], base: int, found: list[int]) -> None:
        if len(column) <= self.LEAF:
            reader = self.reader
            for i, cell in enumerate(column):
                if reader(cell)[1]:
                    found.append(base + i)
            return
        middle = len(column) // 2
        left, right = column[:middle], column[middle:]
        if not self.fine(left):
            self._locate(left, base, found)
        if not self.fine(right):
            self._locate(right, base + middle, found)


# Reading, as frictionless reads


class _CountingStream:
    """The byte stream under the text layer: counts and hashes what is read
    through read1, and publishes the hashes at end of file, which is when
    frictionless's loader sets them."""

    def __init__(self, raw: Any):
        self._raw = raw
        self._md5 = hashlib.md5()
        self._sha256 = hashlib.sha256()
        self.bytes = 0
        self.md5: str | None = None
        self.sha256: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    @property
    def closed(self) -> bool:
        return self._raw.closed

    def read1(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        chunk = self._raw.read1(size)
        self._md5.update(chunk)
        self._sha256.update(chunk)
        self.bytes += len(chunk)
        if size == -1 or not chunk:
            self.md5 = self._md5.hexdigest()
            self.sha256 = self._sha256.hexdigest()
        return chunk


def _open_bytes(path: str, buffer_size: int) -> tuple[Any, bytes]:
    raw = io.open(path, "rb")
    try:
        buffer = raw.read(buffer_size)[:buffer_size]
        raw.seek(0)
    except BaseException:
        raw.close()
        raise
    return raw, buffer


def _sniff(sample_lines: list[str]) -> Any:
    """The csv dialect frictionless's CSV parser would use."""
    try:
        sniffed = csv.Sniffer().sniff("".join(sample_lines), SNIFF_DELIMITERS)
    except csv.Error:
        sniffed = csv.excel()
    quotechar = '"' if sniffed.quotechar == "'" else sniffed.quotechar
    dialect = csv.excel()
    dialect.delimiter = sniffed.delimiter
    dialect.doublequote = True
    dialect.escapechar = sniffed.escapechar
    dialect.lineterminator = sniffed.lineterminator
    dialect.quotechar = quotechar
    dialect.quoting = csv.QUOTE_NONE if quotechar == "" else csv.QUOTE_MINIMAL
    dialect.skipinitialspace = sniffed.skipinitialspace
    return dialect


def _plain_dialect(dialect: Any) -> bool:
    return (
        dialect.delimiter == ","
        and dialect.quotechar == '"'
        and dialect.escapechar is None
        and not dialect.skipinitialspace
        and dialect.quoting == csv.QUOTE_MINIMAL
    )


def _header_row(sample: list[list[str]]) -> int:
    """The row frictionless's detector takes as the header."""
    widths = [len(cells) for cells in sample]
    if not widths:
        return 1
    width = round(sum(widths) / len(widths))
    drift = max(round(width * 0.1), 1)
    for number, size in enumerate(widths, start=1):
        if width - drift <= size <= width + drift:
            return number
    return 1


# The validation


class _FastValidation:
    def __init__(self, path: str, schema: dict, limit_errors: int):
        self.path = path
        self.limit = limit_errors
        self.schema = Schema.from_descriptor(copy.deepcopy(schema))
        self.checks, self.pk = _schema_plan(self.schema)
        self.fields = list(self.schema.fields)
        self.width = len(self.fields)
        self.names = [field.name for field in self.fields]
        self.readers = [field.create_cell_reader() for field in self.fields]
        # Integer key fields: their value readers (keys are compared by value)
        self.pk_integers = {
            p: self.fields[p].create_value_reader() for p in self.pk if self.fields[p].type == "integer"
        }
        self.errors: list[Any] = []
        self.rows = 0  # data rows read
        self.next_row = 2  # row number of the next data row
        self.stopped_at: int | None = None  # row number after which the limit stopped us
        self.keys: dict[str, int] = {}
        self.one_line_records = True  # every record read so far was one line

    # Run

    def run(self, started: float) -> dict:
        with _trusted():
            resource = Resource(self.path, format="csv", schema=self.schema)
            if (
                resource.type != "table"
                or resource.format != "csv"
                or resource.scheme != "file"
                or resource.compression
                or resource.innerpath
                or resource.multipart
            ):
                raise _Unsupported("not a local, uncompressed CSV file")
            try:
                resource.to_descriptor(validate=True)
            except frictionless.FrictionlessException as e:
                raise _Unsupported(f"resource metadata: {e}") from None
        detector = resource.detector
        try:
            raw, buffer = _open_bytes(self.path, detector.buffer_size)
        except OSError as e:  # frictionless reports it as a scheme error
            raise _Unsupported(f"cannot read the file: {e}") from None
        try:
            encoding = detector.detect_encoding(buffer)
            if encoding not in ("utf-8", "utf-8-sig"):
                raise _Unsupported(f"encoding {encoding}")
            stream = _CountingStream(raw)
            text = io.TextIOWrapper(stream, encoding, newline="")
            try:
                labels = self._read(text, detector.sample_size)
            except (UnicodeDecodeError, csv.Error) as e:
                raise _Unsupported(f"{type(e).__name__}: {e}") from None
            finally:
                text.detach()
        finally:
            raw.close()

        warnings: list[str] = []
        stats = {"fields": self.width, "rows": self.rows}
        if self.stopped_at is None:
            stats.update(bytes=stream.bytes, md5=stream.md5, sha256=stream.sha256)
        else:
            warnings.append(f"reached error limit: {self.limit}")
            stats.update(self._bytes_read_by(self.stopped_at, encoding, detector))
        for name, value in stats.items():
            setattr(resource.stats, name, value)
        seconds = round(time.perf_counter() - started, 3)
        report = Report.from_validation_task(
            resource, time=seconds, labels=labels, errors=self.errors, warnings=warnings
        )
        return report.to_descriptor()

    def _read(self, text: Any, sample_size: int) -> list[str]:
        """Read the whole file (or up to the error limit); return the labels."""
        sniff_lines = list(islice(text, sample_size))
        dialect = _sniff(sniff_lines)
        self.dialect = dialect
        csv.field_size_limit(csv_settings.FIELD_SIZE_LIMIT)  # as frictionless's parser sets it
        reader = csv.reader(chain(sniff_lines, text), dialect)
        sample = list(islice(reader, sample_size))
        if _header_row(sample) != 1:
            raise _Unsupported("frictionless would take a later row as the header")
        labels = ["" if cell is None else str(cell).strip() for cell in sample[0]] if sample else []
        if not labels:
            raise _Unsupported("empty file or empty first row")
        header = Header(labels, fields=self.fields, row_numbers=[1], ignore_case=False)
        self.errors.extend(header.errors)

        self.one_line_records = reader.line_num == len(sample)
        if not self._csv_block(sample[1:]):
            return labels
        if len(sample) < sample_size:
            return labels
        if not _plain_dialect(dialect):
            self._csv_rest(reader)
            return labels
        while True:
            chunk = text.read(LINE_BLOCK_CHARS)
            if not chunk:
                return labels
            while chunk[-1] != "\n":
                more = text.readline()
                if not more:
                    break
                chunk += more
            crlf = chunk.count("\r\n") if "\r" in chunk else 0
            if '"' in chunk or ("\r" in chunk and chunk.count("\r") != crlf):
                # From here on the csv module reads: quoted cells can span
                # lines (and blocks), a lone CR ends a record.
                self._csv_rest(csv.reader(chain(io.StringIO(chunk, newline=""), text), dialect))
                return labels
            if not crlf:
                lines = chunk.split("\n")
            elif crlf == chunk.count("\n"):
                lines = chunk.split("\r\n")
            else:
                lines = chunk.replace("\r\n", "\n").split("\n")
            if chunk[-1] == "\n":
                lines.pop()
            if not self._line_block(lines):
                return labels

    def _csv_rest(self, reader: Any) -> None:
        self.one_line_records = False
        while True:
            rows = list(islice(reader, CSV_BLOCK_ROWS))
            if not rows or not self._csv_block(rows):
                return

    # Blocks

    def _csv_block(self, rows: list[list[str]]) -> bool:
        """Rows from the csv module; False when the error limit stopped us."""
        if not rows:
            return True
        n = self.width
        irregular: dict[int, list[str]] = {}
        if set(map(len, rows)) == {n}:
            cells = rows
        else:
            cells = rows.copy()
            for i, row in enumerate(rows):
                if len(row) != n:
                    irregular[i] = row
                    cells[i] = (row + [""] * n)[:n]
        flat = list(chain.from_iterable(cells))
        columns = [flat[j::n] for j in range(n)]
        return self._block(columns, irregular, rows.__getitem__, len(rows))

    def _line_block(self, lines: list[str]) -> bool:
        """Quote-free lines of a plain comma dialect: cells are the line split at commas."""
        m = len(lines)
        if not m:
            return True
        n = self.width
        irregular: dict[int, list[str]] = {}
        counts = list(map(str.count, lines, repeat(",", m)))
        if counts.count(n - 1) != m or (n == 1 and "" in lines):
            for i, count in enumerate(counts):
                line = lines[i]
                if count != n - 1 or not line:
                    # The csv module reads an empty line as a record of no cells.
                    row = line.split(",") if line else []
                    irregular[i] = row
                    lines[i] = ",".join((row + [""] * n)[:n])
        flat = ",".join(lines).split(",")
        columns = [flat[j::n] for j in range(n)]

        def cells_of(i: int) -> list[str]:
            row = irregular.get(i)
            return row if row is not None else lines[i].split(",")

        return self._block(columns, irregular, cells_of, m)

    def _block(
        self,
        columns: list[Sequence[str]],
        irregular: dict[int, list[str]],
        cells_of: Callable[[int], list[str]],
        m: int,
    ) -> bool:
        first = self.next_row
        suspects = set(irregular)
        for check, column in zip(self.checks, columns):
            if check is not None:
                bad = check.bad(column)
                if bad:
                    suspects.update(bad)
        # A blank row has every cell missing, the first one included.
        head = columns[0]
        if "" in head:
            suspects.update(i for i, cell in enumerate(head) if cell == "")
        pk_notes = self._primary_keys(columns, first, m) if self.pk else {}
        events = suspects.union(pk_notes) if pk_notes else suspects
        if self.limit and len(self.errors) >= self.limit:
            events.add(0)  # frictionless checks the limit after the first row
        for i in sorted(events):
            found = self._row_errors(cells_of(i), first + i) if i in suspects else []
            note = pk_notes.get(i)
            if note is not None:
                found.append(
                    ferrors.PrimaryKeyError(
                        note=note, cells=list(cells_of(i)), row_number=first + i
                    )
                )
            self.errors.extend(found)
            if self.limit and len(self.errors) >= self.limit:
                self.errors = self.errors[: self.limit]
                self.rows += i + 1
                self.stopped_at = first + i
                return False
        self.rows += m
        self.next_row += m
        return True

    def _primary_keys(self, columns: list[Sequence[str]], first: int, m: int) -> dict[int, str]:
        """Notes of primary-key errors by index in the block, in frictionless's
        terms: the key is the tuple of the cells' values (a missing cell and
        an empty one are None), a key of Nones is an error, and a repeated key
        names the last row that had it."""
        parts = [
            _integer_key_part(columns[p], self.pk_integers[p]) if p in self.pk_integers else columns[p]
            for p in self.pk
        ]
        if len(parts) == 1:
            keys = parts[0]
            empty = ""
        else:
            for part in parts[:-1]:
                if PK_SEPARATOR in "".join(part):
                    raise _Unsupported("primary-key cell holding the key separator")
            keys = list(map(PK_SEPARATOR.join, zip(*parts)))
            empty = PK_SEPARATOR * (len(parts) - 1)
        seen = self.keys
        distinct = set(keys)
        if len(distinct) == m and empty not in distinct and seen.keys().isdisjoint(distinct):
            seen.update(zip(keys, range(first, first + m)))
            return {}
        # Only keys seen before, repeated in the block, or empty need the
        # row-by-row treatment; every other key is new and unique.
        problem = set(filter(seen.__contains__, distinct))  # (dict_keys & set copies the dict)
        if len(distinct) != m:
            problem.update(key for key, count in Counter(keys).items() if count > 1)
        if empty in distinct:
            problem.add(empty)
        notes: dict[int, str] = {}
        for i in compress(range(m), map(problem.__contains__, keys)):
            key = keys[i]
            if key == empty:
                notes[i] = ALL_NONE_NOTE
                continue
            previous = seen.get(key)
            seen[key] = first + i
            if previous is not None:
                notes[i] = f"the same as in the row at position {previous}"
        seen.update(zip(keys, range(first, first + m)))  # each key's last row
        seen.pop(empty, None)  # a key of Nones is never remembered
        return notes

    def _row_errors(self, cells: list[str], row_number: int) -> list[Any]:
        """A row's cell errors, as frictionless's Row finds them."""
        found: list[Any] = []
        blank = 0
        size = len(cells)
        for j, (name, reader) in enumerate(zip(self.names, self.readers)):
            source = cells[j] if j < size else None
            value, notes = reader(source)
            type_note = notes.pop("type", None) if notes else None
            if value is None and not type_note:
                blank += 1
            if type_note:
                found.append(
                    ferrors.TypeError(
                        note=type_note,
                        cells=list(cells),
                        row_number=row_number,
                        cell=str(source),
                        field_name=name,
                        field_number=j + 1,
                    )
                )
            if notes:
                for note in notes.values():
                    found.append(
                        ferrors.ConstraintError(
                            note=note,
                            cells=list(cells),
                            row_number=row_number,
                            cell=str(source),
                            field_name=name,
                            field_number=j + 1,
                        )
                    )
        for number in range(self.width + 1, size + 1):
            found.append(
                ferrors.ExtraCellError(
                    note="",
                    cells=list(cells),
                    row_number=row_number,
                    cell=str(cells[number - 1]),
                    field_name="",
                    field_number=number,
                )
            )
        for number in range(size + 1, self.width + 1):
            found.append(
                ferrors.MissingCellError(
                    note="",
                    cells=list(cells),
                    row_number=row_number,
                    cell="",
                    field_name=self.names[number - 1],
                    field_number=number,
                )
            )
        if blank == self.width:
            found = [ferrors.BlankRowError(note="", cells=list(cells), row_number=row_number)]
        return found

    # Stats of a validation stopped by the error limit

    def _bytes_read_by(self, row_number: int, encoding: str, detector: Any) -> dict[str, Any]:
        """Frictionless reads the file lazily, so when the error limit stops it
        its stats describe the bytes read so far. Read the same way up to the
        same record to get the same figures."""
        raw, _ = _open_bytes(self.path, detector.buffer_size)
        try:
            stream = _CountingStream(raw)
            text = io.TextIOWrapper(stream, encoding, newline="")
            try:
                wanted = max(detector.sample_size, row_number)
                if self.one_line_records:
                    # Each record was one line: the csv reader asked the
                    # text layer for exactly one line per record.
                    for _ in islice(text, wanted):
                        pass
                else:
                    sniff_lines = list(islice(text, detector.sample_size))
                    reader = csv.reader(chain(sniff_lines, text), self.dialect)
                    for _ in islice(reader, wanted):
                        pass
            finally:
                text.detach()
        finally:
            raw.close()
        return {"bytes": stream.bytes, "md5": stream.md5, "sha256": stream.sha256}


# Extra errors


def _merge_extra_errors(report: dict, extra_errors: Iterable[Any]) -> None:
    extra = [
        error.to_descriptor() if hasattr(error, "to_descriptor") else dict(error)
        for error in extra_errors
    ]
    if not extra:
        return
    if not report.get("tasks"):
        report.setdefault("errors", []).extend(extra)
    else:
        task = report["tasks"][0]

        def row_of(error: dict) -> int:
            number = error.get("rowNumber")
            return number if isinstance(number, int) else 0

        extra.sort(key=row_of)
        task["errors"] = list(heapq.merge(task.get("errors", []), extra, key=row_of))
        task["valid"] = False
        task.setdefault("stats", {})["errors"] = len(task["errors"])
    report["valid"] = False
    stats = report.setdefault("stats", {})
    stats["errors"] = stats.get("errors", 0) + len(extra)
