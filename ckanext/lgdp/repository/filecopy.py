"""A validated file's rows into a DataStore table without a Python parse
of its values.

The normalised file (``submissions/normalised``) goes to PostgreSQL as it
is, in one ``COPY ... FORMAT csv`` into a temporary table of text columns,
and one ``INSERT ... SELECT`` puts the rows into the return's table: each
cell cast to its column's type, the council's values, the rates per 1,000
and the full-text vectors made there. Python only looks at the bytes.

What goes in is what ``consolidate.read_rows`` + ``consolidate.enrich``
would give, cell for cell (a differential test holds the two to it):

* the file is read as ``read_rows`` reads it, Python's ``csv`` module with
  its default dialect. A file PostgreSQL's CSV reader splits the same way
  (no quote character, no lone carriage return, no blank line, no line
  ``\\.``, every line as wide as the header) is sent as it is. Any other is
  first read by Python's ``csv`` module and written again for PostgreSQL,
  every cell quoted, short rows padded and long ones cut as ``read_rows``
  does, blank lines left out: still no cast, no dict per row;
* an empty cell is NULL; integers and years are cast by PostgreSQL
  (``int8``, ``int4``); booleans by the field's declared values; dates,
  times and text as ``COPY`` would take them;
* numbers are kept as the decimals the file holds ("12.50" is 12.50), where
  the older path stored the nearest double: the same figure as a double,
  and what frictionless reads (a ``Decimal``);
* a rate per 1,000 is ``value * 1000.0 / population`` in double precision,
  as ``reference.rate_per_1000`` computes it, stored from the double's
  shortest text (``extra_float_digits = 1``), as Python's ``str`` gives it;
* a value PostgreSQL refuses where Python's casts take it ("1_000", digits
  of other scripts, a boolean outside its field's values) raises
  ``DataError``: the caller rolls back to its savepoint and takes the
  Python path for that file. Nothing is ever read differently.
"""
from __future__ import annotations

import codecs
import csv
import datetime
import io
from typing import Any, Callable

import psycopg2

from ckanext.datastore.backend.postgres import identifier

from ckanext.lgdp.register import standards
from ckanext.lgdp.repository import reference

__all__ = ["DataError", "NotStreamable", "insert_file", "streamable"]

DataError = psycopg2.DataError


class NotStreamable(Exception):
    """A file this path does not take (no header row): the Python path does."""


# The Table Schema types PostgreSQL casts as the Python path does.
_NUMERIC = {"integer", "year", "number"}
_TEMP = "pg_temp.lgdp_incoming"


def _header(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text, newline="")), [])


def as_is(text: str, width: int) -> bool:
    """Whether PostgreSQL's CSV reader splits ``text`` into the records and
    cells Python's ``csv`` module gives: no quote character, no line
    ``\\.`` (PostgreSQL's end of data), no NUL, one kind of line end, no
    blank line, and every line ``width`` cells wide."""
    if not width or '"' in text or "\x00" in text or "\\." in text:
        return False
    if "\r" in text:
        if text.count("\r") != text.count("\r\n") or text.count("\r\n") != text.count("\n"):
            return False
        lines = text.split("\r\n")
    else:
        lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    commas = width - 1
    return all(line and line.count(",") == commas for line in lines)


def _rewritten(text: str, width: int) -> io.StringIO:
    """The data rows as ``read_rows`` reads them (Python's ``csv``, blank
    records left out, each cut or padded to the header's width), written
    for PostgreSQL with every cell quoted."""
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader, None)
    pad = [""] * width
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(
        (r if len(r) == width else (r + pad)[:width]) for r in reader if r)
    out.seek(0)
    return out


def streamable(schema: dict[str, Any]) -> bool:
    """Whether a standard's rows can take this path: every countable field
    a number (``standards.is_countable`` holds it to that)."""
    return all(f.get("type") in _NUMERIC for f in schema.get("fields") or [] if standards.is_countable(f))


def _q(name: str) -> str:
    """A quoted identifier, safe in a statement with pyformat parameters."""
    return identifier(name).replace("%", "%%")


def _typed(field: dict[str, Any], column_type: str, cell: str, params: dict[str, Any]) -> str:
    """SQL of a cell's value in its column's type (``cell``: the text)."""
    value = f"NULLIF({cell}, '')"
    if field.get("type") == "boolean":
        key = f"b{len(params)}"
        true, false = standards.boolean_values(field)
        params[f"{key}t"], params[f"{key}f"] = list(true), list(false)
        # the Python path's rule for any other text; the rest is refused
        # (a DataError: the Python path takes the file)
        folded = f"lower(btrim({cell}))"
        return (f"CASE WHEN {value} IS NULL THEN NULL WHEN {cell} = ANY(%({key}t)s) THEN true "
                f"WHEN {cell} = ANY(%({key}f)s) THEN false WHEN {folded} IN ('true', 'yes', '1') THEN true "
                f"ELSE CAST('not a boolean: ' || {cell} AS boolean) END")
    if column_type == "text":
        return value
    return f"CAST({value} AS {column_type})"


def _constant(column_type: str, value: Any, params: dict[str, Any]) -> str:
    key = f"k_{len(params)}"
    if isinstance(value, (datetime.date, datetime.datetime)):
        value = value.isoformat()  # read by the column's type, as COPY reads it
    params[key] = value
    return f"CAST(%({key})s AS {column_type})"


def _statement(table: str, fields: list[dict[str, Any]], schema: dict[str, Any], header: list[str],
               common: dict[str, Any], text_names: list[str], lang: str) -> tuple[str, dict[str, Any]]:
    """The INSERT ... SELECT from the temporary table into ``table``."""
    params: dict[str, Any] = {"lang": lang}
    by_name = {f["name"]: f for f in schema.get("fields") or [] if f.get("name")}
    position = {name: i for i, name in enumerate(header)}  # the last of a name, as read_rows
    typed: dict[str, str] = {}  # column -> its value in r
    select: list[str] = []
    for column in fields:
        name, kind = column["id"], column["type"]
        if name in common:
            typed[name] = _constant(kind, common[name], params)
        elif name in by_name and name in position:
            select.append(f"{_typed(by_name[name], kind, f'c{position[name]}', params)} AS v{len(select)}")
            typed[name] = f"r.v{len(select) - 1}"
        elif name in by_name:
            typed[name] = f"CAST(NULL AS {kind})"
    population = common.get("population")
    values: list[str] = []
    for column in fields:
        name = column["id"]
        if name in typed:
            values.append(typed[name])
            continue
        source = name[: -len(reference.RATE_SUFFIX)]
        if not name.endswith(reference.RATE_SUFFIX) or source not in typed:
            values.append(f"CAST(NULL AS {column['type']})")
        elif not population:
            values.append("CAST(NULL AS numeric)")
        else:
            params["population"] = float(population)
            v = typed[source]
            values.append(f"CASE WHEN {v} IS NULL THEN NULL ELSE CAST(CAST(CAST({v} AS float8) * "
                          f"CAST(1000 AS float8) / CAST(%(population)s AS float8) AS text) AS numeric) END")
    words = []
    for name in text_names:
        if name in common:
            params[f"t_{name}"] = None if common[name] in (None, "") else str(common[name])
            words.append(f"CAST(%(t_{name})s AS text)")
        elif name in by_name and name in position:
            words.append(f"NULLIF(c{position[name]}, '')")
    doc = f"concat_ws(' ', {', '.join(words)})" if words else "''"
    names = ", ".join(_q(c["id"]) for c in fields)
    sql = (f"WITH r AS MATERIALIZED (SELECT t.ctid AS n, {doc} AS doc"
           + "".join(f", {s}" for s in select) + f" FROM {_TEMP} AS t), "
           "d AS (SELECT doc, to_tsvector(CAST(%(lang)s AS regconfig), doc) AS vec FROM (SELECT DISTINCT doc FROM r) AS u) "
           f"INSERT INTO {table.replace('%', '%%')} ({names}, _full_text) "
           f"SELECT {', '.join(values)}, d.vec FROM r JOIN d USING (doc) ORDER BY r.n")
    return sql, params


def insert_file(conn: Any, table: str, fields: list[dict[str, Any]], schema: dict[str, Any], path: str,
                common: dict[str, Any], text_names: list[str], lang: str,
                wrap: Callable[[Any], Any] = lambda source: source) -> int:
    """Insert a validated file's rows into ``table`` (a quoted identifier)
    on the transaction of ``conn`` (a SQLAlchemy connection); the number of
    rows. ``wrap``: the data stream's wrapper (fault testing). Raises
    ``DataError`` where PostgreSQL refuses a value (see the module's
    docstring); the caller's savepoint undoes what this did."""
    with open(path, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8-sig")  # as read_rows opens it
    header = _header(text)
    if not header:
        raise NotStreamable("the file has no header row")
    width = len(header)
    cursor = conn.connection.cursor()
    try:
        cursor.execute("SET LOCAL extra_float_digits = 1")
        cursor.execute(f"DROP TABLE IF EXISTS {_TEMP}")
        cursor.execute(f"CREATE TEMPORARY TABLE lgdp_incoming ({', '.join(f'c{i} text' for i in range(width))}) "
                       "ON COMMIT DROP")
        cells = ", ".join(f"c{i}" for i in range(width))
        if as_is(text, width):
            data: Any = io.BytesIO(raw[len(codecs.BOM_UTF8):] if raw.startswith(codecs.BOM_UTF8) else raw)
            copy = f"COPY {_TEMP} ({cells}) FROM STDIN WITH (FORMAT csv, HEADER true)"
        else:
            data = _rewritten(text, width)
            copy = f"COPY {_TEMP} ({cells}) FROM STDIN WITH (FORMAT csv)"
        cursor.copy_expert(copy, wrap(data))
        sql, params = _statement(table, fields, schema, header, common, text_names, lang)
        cursor.execute(sql, params)
        return cursor.rowcount
    finally:
        cursor.close()
