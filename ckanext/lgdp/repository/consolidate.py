"""Consolidation: an accepted submission's rows go into its return's central
table in CKAN's DataStore.

One dataset of type ``return-table`` per return (its series), one DataStore
table (resource) per version of the data standard, typed from the Table
Schema, with the council's code and name, the period, rates per 1,000
population for the fields the standard marks countable, and the upload the
rows come from. A council-period's rows are replaced in one database
transaction (the DELETE, of every table of the return, and the COPY), so a
consolidation run twice, or killed at any point and run again, leaves the
table as one run would: never a council-period twice, never one lost.

Which DataStore table holds a standard version is decided from the
database (the resource rows and the DataStore's own tables) under a
PostgreSQL advisory lock, never from ``package_show``: with
``ckan.search.solr_commit = false`` (the platform's setting) Solr shows a
change up to a second later, and DataStore's ``datastore_active`` flag is
written to the database without changing the dataset's
``metadata_modified``, so ``package_show`` can serve a copy from the search
index without the flag of a table made a moment ago. Two first
consolidations of a new return then made two tables for one version: the
second worker saw no table, made another, and its ``resource_create``
(which rewrites every resource of the dataset from that same stale copy)
wiped the first table's flag, so the first council's rows dropped out of
what readers see. Every action this module calls is given
``use_cache: False`` for the same reason.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import functools
import hashlib
import io
import json
import logging
from typing import Any, Callable, Iterable, Iterator

import pandas as pd
import sqlalchemy as sa

import ckan.plugins.toolkit as tk
from ckan import model
from ckanext.datastore.backend.postgres import (
    get_read_engine,
    get_write_engine,
    identifier,
)

from ckanext.lgdp.model import Upload, submission_state
from ckanext.lgdp.model.audit import now as _now
from ckanext.lgdp.ops import faults
from ckanext.lgdp.register import standards
from ckanext.lgdp.repository import TABLE_TYPE, filecopy, qa, reference
from ckanext.lgdp.submissions import jobs as submission_jobs
from ckanext.lgdp.submissions.states import PLATFORM_FLAG

log = logging.getLogger(__name__)

# The standard's types as DataStore columns; validation enforces the values
# they hold (standards.STORAGE_BOUNDS).
DATASTORE_TYPES = standards.STORAGE_TYPES
# Columns every consolidated table starts with.
KEY_COLUMNS = [
    {"id": "council_gss", "type": "text", "info": {"label": "Council GSS code"}},
    {"id": "council_name", "type": "text", "info": {"label": "Council"}},
    {"id": "period", "type": "text", "info": {"label": "Period"}},
    {"id": "period_start", "type": "date", "info": {"label": "Period starts"}},
]
TAIL_COLUMNS = [
    {"id": "population", "type": "int8", "info": {"label": "Population (NRS mid-year estimate)"}},
    {"id": "population_year", "type": "int4", "info": {"label": "Year of the population estimate"}},
    {"id": "submission", "type": "text", "info": {"label": "Submission"}},
    {"id": "accepted_at", "type": "timestamp", "info": {"label": "Accepted at"}},
    {"id": "upload_id", "type": "text", "info": {"label": "Upload (the accepted file the rows come from)"}},
]
# Columns left out of the full-text vector.
NOT_SEARCHED = {"upload_id"}
# Columns added since the first tables were made: added to an older table.
ADDED_COLUMNS = {"upload_id"}


def site_context() -> dict[str, Any]:
    """The platform's context for the actions called here; ``use_cache``
    off: a dataset is read from the database, never from the search index
    (see the module's docstring)."""
    user = tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]
    return {"user": user, "ignore_auth": True, PLATFORM_FLAG: True, "use_cache": False}


def _read() -> dict[str, Any]:
    return {"ignore_auth": True, "use_cache": False}


def table_name(return_name: str) -> str:
    return f"{return_name}--all-councils"[:100]


def columns(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The DataStore fields of a return's table for one standard version."""
    names = {c["id"] for c in KEY_COLUMNS + TAIL_COLUMNS}
    out = list(KEY_COLUMNS)
    for field in schema.get("fields") or []:
        if field["name"] in names:
            continue
        out.append({"id": field["name"], "type": DATASTORE_TYPES.get(field.get("type"), "text"),
                    "info": {"label": field.get("title") or field["name"], "notes": field.get("description") or ""}})
    for name in standards.countable_fields(schema):
        out.append({"id": reference.rate_column(name), "type": "numeric",
                    "info": {"label": f"{name} per 1,000 population"}})
    return out + TAIL_COLUMNS


@contextlib.contextmanager
def _creating(name: str) -> Iterator[Any]:
    """Hold a PostgreSQL advisory lock named after a table while it (or its
    DataStore resource) is made, so that two workers consolidating the same
    return at once make one table, not two: the second waits, then finds
    the first's in the database. On its own connection (yielded; each of
    its statements sees what is committed): the actions inside commit."""
    key = int.from_bytes(hashlib.sha256(f"lgdp-table:{name}".encode()).digest()[:8], "big", signed=True)
    with model.meta.engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield conn
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})


def ensure_table(return_dict: dict[str, Any]) -> dict[str, Any]:
    """The return's table dataset (made on first use, not published; safe
    when several workers make it at once)."""
    name = table_name(return_dict["name"])
    try:
        return tk.get_action("package_show")(_read(), {"id": name})
    except tk.ObjectNotFound:
        pass
    with _creating(name):
        try:  # made by another worker while this one waited
            return tk.get_action("package_show")(_read(), {"id": name})
        except tk.ObjectNotFound:
            return _create_table(name, return_dict)


def _create_table(name: str, return_dict: dict[str, Any]) -> dict[str, Any]:
    return tk.get_action("package_create")(site_context(), {
        "type": TABLE_TYPE,
        "name": name,
        "title": f"{return_dict['title']}: all councils",
        "notes": tk._("Every council's accepted submissions of {title}, one row per council and period, "
                      "with rates per 1,000 population.").format(title=return_dict["title"]),
        "owner_org": return_dict["owner_org"],
        "data_return": return_dict["id"],
        "published": "no",
        # private until lgdp_table_publish opens it: CKAN's public listings
        # (package_list, resource_search) show only public datasets
        "private": True,
    })


def _resource_rows(package_id: str, conn: Any = None) -> list[tuple[str, int | None]]:
    """(id, standard version) of a table dataset's active resources, oldest
    first, from the database (``conn``: the advisory lock's connection)."""
    query = sa.text("SELECT id, extras FROM resource WHERE package_id = :pkg AND state = 'active' "
                    "ORDER BY position, created, id")
    if conn is None:
        found = model.Session.execute(query, {"pkg": package_id}).all()
    else:
        found = conn.execute(query, {"pkg": package_id}).all()
    out = []
    for rid, extras in found:
        try:
            version = int(json.loads(extras or "{}").get("standard_version") or 0) or None
        except (TypeError, ValueError):
            version = None
        out.append((rid, version))
    return out


def _datastore_columns(resource_ids: Iterable[str]) -> dict[str, set[str]]:
    """The columns of each of these resources' DataStore tables (those that
    have one), from the DataStore's database."""
    ids = sorted(set(resource_ids))
    if not ids:
        return {}
    with get_write_engine().connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT c.relname, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname = ANY(:ids)"), {"ids": ids}).all()
    out: dict[str, set[str]] = {}
    for rel, col in rows:
        out.setdefault(rel, set()).add(col)
    return out


def version_resources(package_id: str, conn: Any = None) -> dict[int, str]:
    """The DataStore table of each standard version of a table dataset:
    the oldest active resource of the version that has one. From the
    database, never the search index."""
    rows = _resource_rows(package_id, conn)
    tables = _datastore_columns(rid for rid, _v in rows)
    out: dict[int, str] = {}
    for rid, version in rows:
        if version is not None and rid in tables:
            out.setdefault(version, rid)
    return out


def table_resources(package_id: str, conn: Any = None) -> list[str]:
    """Every active resource of a table dataset that has a DataStore table."""
    rows = _resource_rows(package_id, conn)
    tables = _datastore_columns(rid for rid, _v in rows)
    return [rid for rid, _v in rows if rid in tables]


def _complete(resource_id: str, schema: dict[str, Any], conn: Any) -> bool:
    """Whether a version's resource is whole: its DataStore table, with the
    columns this release added (``upload_id``), and its ``datastore_active``
    flag in the database. (A table altered by hand is not "completed": its
    consolidation fails and says so.)"""
    columns_now = _datastore_columns([resource_id]).get(resource_id)
    if not columns_now or not ADDED_COLUMNS <= columns_now:
        return False
    extras = conn.execute(sa.text("SELECT extras FROM resource WHERE id = :id"), {"id": resource_id}).scalar()
    try:
        return bool(json.loads(extras or "{}").get("datastore_active"))
    except ValueError:
        return False


def ensure_resource(table: dict[str, Any], version: int, schema: dict[str, Any]) -> str:
    """The DataStore table holding rows of one standard version: one, even
    when several workers ask for it at once. Decided from the database under
    the advisory lock; a resource left half made (a worker killed inside
    ``datastore_create``, a table of an earlier release without the
    ``upload_id`` column) is completed rather than joined by another."""
    with _creating(table["name"]) as conn:
        rows = [rid for rid, v in _resource_rows(table["id"], conn) if v == version]
        if not rows:
            return _create_resource(table, version, schema)
        chosen = version_resources(table["id"], conn).get(version) or rows[0]
        if not _complete(chosen, schema, conn):
            _complete_resource(chosen, schema)
        return chosen


def _create_resource(table: dict[str, Any], version: int, schema: dict[str, Any]) -> str:
    result = tk.get_action("datastore_create")(site_context(), {
        "resource": {"package_id": table["id"], "name": f"All councils, standard version {version}",
                     "format": "CSV", "standard_version": version,
                     "description": tk._("Rows of submissions validated against version {v} of the data standard").format(v=version)},
        "fields": columns(schema),
        "indexes": ["council_gss", "period"],
        "force": True,
    })
    return result["resource_id"]


def _complete_resource(resource_id: str, schema: dict[str, Any]) -> None:
    """Make an existing resource's DataStore table, or add the columns it
    lacks, and set its flag (DataStore's own ``datastore_create``)."""
    exists = bool(_datastore_columns([resource_id]))
    data: dict[str, Any] = {"resource_id": resource_id, "fields": columns(schema), "force": True}
    if not exists:
        data["indexes"] = ["council_gss", "period"]
    log.warning("completing the DataStore table of resource %s (%s)", resource_id,
                "columns or flag" if exists else "no table")
    tk.get_action("datastore_create")(site_context(), data)


def _boolean(value: str) -> bool:
    return value.strip().lower() in ("true", "yes", "1")


def _boolean_of(field: dict[str, Any]) -> Callable[[str], bool]:
    """A boolean field's cast: its declared ``trueValues`` and
    ``falseValues`` (Table Schema's defaults when it declares none), which
    are what validation accepted; any other text by the older rule."""
    true, false = (set(values) for values in standards.boolean_values(field))

    def cast(value: str) -> bool:
        if value in true:
            return True
        if value in false:
            return False
        return _boolean(value)
    return cast


# Text of a validated cell -> its value, per Table Schema type (others stay text).
_CASTS: dict[str, Callable[[str], Any]] = {"integer": int, "year": int, "number": float}


def _cast_of(field: dict[str, Any]) -> Callable[[str], Any] | None:
    if field.get("type") == "boolean":
        return _boolean_of(field)
    return _CASTS.get(field.get("type", "string"))


def read_rows(csv_path: str, schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a validated CSV as dicts of the standard's fields (typed;
    empty cells None; other columns left out)."""
    kinds = {f["name"]: f for f in schema.get("fields") or []}
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        wanted = [(i, name, _cast_of(kinds[name])) for i, name in enumerate(header) if name in kinds]
        out = []
        for record in reader:
            if not record:
                continue  # a blank line
            width = len(record)
            row: dict[str, Any] = {}
            for i, name, cast in wanted:
                value = record[i] if i < width else ""
                row[name] = None if value == "" else (cast(value) if cast else value)
            out.append(row)
    return out


def enrich(rows: list[dict[str, Any]], schema: dict[str, Any], gss: str, council_name: str,
           period: str, period_start: datetime.date, submission: str, accepted_at: datetime.datetime,
           upload_id: str | None = None) -> list[dict[str, Any]]:
    """The rows with the council, period, population, rates per 1,000 of
    the countable fields and the upload they come from (new dicts)."""
    common = common_values(gss, council_name, period, period_start, submission, accepted_at, upload_id)
    return with_common(rows, schema, common)


def common_values(gss: str, council_name: str, period: str, period_start: datetime.date, submission: str,
                  accepted_at: datetime.datetime, upload_id: str | None = None) -> dict[str, Any]:
    """The values every row of a council-period's file gets: the key and
    tail columns (``KEY_COLUMNS``, ``TAIL_COLUMNS``)."""
    found = reference.population_for(gss, period_start.year)
    population, pop_year = found if found else (None, None)
    return {"council_gss": gss, "council_name": council_name, "period": period, "period_start": period_start,
            "population": population, "population_year": pop_year, "submission": submission,
            "accepted_at": accepted_at, "upload_id": upload_id}


def with_common(rows: list[dict[str, Any]], schema: dict[str, Any], common: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows with ``common`` and the rates per 1,000 of the countable
    fields (new dicts)."""
    population = common["population"]
    rates = [(name, reference.rate_column(name)) for name in standards.countable_fields(schema)]
    out = []
    for row in rows:
        row = {**row, **common}
        for name, rate in rates:
            row[rate] = reference.rate_per_1000(row.get(name), population)
        out.append(row)
    return out


@functools.lru_cache(maxsize=256)
def _statements(resource_id: str, names: tuple[str, ...]) -> tuple[Any, Any, str]:
    """The DELETE (one council-period), DELETE (all) and COPY (the columns,
    then ``_full_text``) of a table, built once per table and column list."""
    table = identifier(resource_id)
    delete_one = sa.text(f"DELETE FROM {table} WHERE council_gss = :gss AND period = :period")
    delete_all = sa.text(f"DELETE FROM {table}")
    copy = f"COPY {table} ({', '.join(identifier(n) for n in names)}, _full_text) FROM STDIN"
    return delete_one, delete_all, copy


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_value(value: Any) -> str:
    """A value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return str(value)


def _full_texts(conn: Any, rows: list[dict[str, Any]], text_names: list[str]) -> list[str]:
    """Each row's full-text vector (the ``_full_text`` column DataStore
    searches with ``q``), made from its text values: the council's code and
    name, the period, the submission and the standard's text fields.

    Numbers are left out: they are found with filters, and the DataStore's
    own trigger, which turns every value of a row into words, cost about 1.2 s
    per 10,000 rows, most of what consolidating them took. A council-period's
    rows share most of their text, so each distinct text is made into a
    vector once, by PostgreSQL, in the language the DataStore searches in."""
    texts = [" ".join(str(row[n]) for n in text_names if row.get(n) not in (None, "")) for row in rows]
    distinct = sorted(set(texts))
    lang = _fts_lang()
    vectors = dict(conn.execute(sa.text(
        "SELECT t, CAST(to_tsvector(CAST(:lang AS regconfig), t) AS text) FROM unnest(CAST(:texts AS text[])) AS t"),
        {"lang": lang, "texts": distinct}).all())
    return [vectors[t] for t in texts]


def _copy_text(value: Any) -> str:
    return "\\N" if value is None else str(value).translate(_COPY_ESCAPES)


def _copy_number(value: Any) -> str:
    return "\\N" if value is None else str(value)


# How a column's values are written, by DataStore type (others: _copy_value).
_COPY_FORMATS: dict[str, Callable[[Any], str]] = {
    "text": _copy_text, "int8": _copy_number, "int4": _copy_number, "numeric": _copy_number,
}


class _FaultyReader:
    """The COPY's data, read by psycopg2 in chunks; for fault testing only
    (faults.point "consolidate.during_copy"): the process is killed once
    the data has been sent, before the COPY ends."""

    def __init__(self, buf: io.StringIO):
        self.buf = buf

    def read(self, size: int = -1) -> str:
        chunk = self.buf.read(size)
        if not chunk:
            faults.point("consolidate.during_copy")
        return chunk

    def readline(self, size: int = -1) -> str:
        return self.buf.readline(size)


def _copy_rows(conn: Any, copy: str, fields: list[dict[str, Any]], rows: list[dict[str, Any]],
               full_texts: list[str]) -> None:
    """Insert rows with one COPY (the fastest way in, indexes maintained as
    for INSERT), on the transaction of ``conn``; ``full_texts`` go in the
    last column, ``_full_text`` (given, the DataStore's trigger keeps it)."""
    formats = [(f["id"], _COPY_FORMATS.get(f["type"], _copy_value)) for f in fields]
    buf = io.StringIO()
    write = buf.write
    for row, vector in zip(rows, full_texts):
        write("\t".join([fmt(row.get(name)) for name, fmt in formats]))
        write("\t")
        write(vector.translate(_COPY_ESCAPES))
        write("\n")
    buf.seek(0)
    cursor = conn.connection.cursor()
    try:
        cursor.copy_expert(copy, _FaultyReader(buf) if faults.armed("consolidate.during_copy") else buf)
    finally:
        cursor.close()


def _text_names(fields: list[dict[str, Any]]) -> list[str]:
    return [f["id"] for f in fields if f["type"] == "text" and f["id"] not in NOT_SEARCHED]


@functools.lru_cache(maxsize=256)
def _delete_one(resource_id: str) -> Any:
    return sa.text(f"DELETE FROM {identifier(resource_id)} WHERE council_gss = :gss AND period = :period")


@dataclasses.dataclass(frozen=True)
class Source:
    """An accepted file on its way into a table: the normalised file, its
    standard and the values every row of it gets (``common_values``)."""
    path: str
    schema: dict[str, Any]
    common: dict[str, Any]

    def rows(self) -> list[dict[str, Any]]:
        """Its rows read and enriched in Python (``read_rows`` +
        ``with_common``)."""
        return with_common(read_rows(self.path, self.schema), self.schema, self.common)


def _fts_lang() -> str:
    return tk.config.get("ckan.datastore.default_fts_lang") or "english"


def _stream_wrapper(data: Any) -> Any:
    return _FaultyReader(data) if faults.armed("consolidate.during_copy") else data


def _insert_rows(conn: Any, resource_id: str, fields: list[dict[str, Any]], rows: list[dict[str, Any]]) -> int:
    names = tuple(f["id"] for f in fields)
    if rows:
        _copy_rows(conn, _statements(resource_id, names)[2], fields, rows, _full_texts(conn, rows, _text_names(fields)))
    return len(rows)


def _insert_source(conn: Any, resource_id: str, fields: list[dict[str, Any]], source: Source) -> int:
    """Insert a file's rows on the transaction of ``conn``; how many. The
    file goes to PostgreSQL as it is (``filecopy``); where PostgreSQL
    refuses a value Python's casts take, that is undone (a savepoint) and
    the rows are read in Python instead: the same rows either way."""
    if filecopy.streamable(source.schema):
        try:
            with conn.begin_nested():
                return filecopy.insert_file(conn, identifier(resource_id), fields, source.schema, source.path,
                                            source.common, _text_names(fields), _fts_lang(), wrap=_stream_wrapper)
        except (filecopy.DataError, sa.exc.DataError, filecopy.NotStreamable) as e:
            log.info("rows of %s read in Python (%s)", source.common.get("submission"), str(e).splitlines()[0])
    return _insert_rows(conn, resource_id, fields, source.rows())


def _replace_one(resource_id: str, gss: str, period: str, fields: list[dict[str, Any]], others: Iterable[str],
                 insert: Callable[[Any], int]) -> int:
    """Replace one council-period's rows in one transaction: the DELETE
    (from this table and from ``others``, the return's tables of other
    standard versions, which must not keep an older file's rows of the same
    council-period) and the rows' way in are on one connection, in one
    transaction, committed together or not at all. A process killed at any
    point before the commit leaves the table as it was."""
    names = tuple(f["id"] for f in fields)
    delete_one, _all, _copy = _statements(resource_id, names)
    with get_write_engine().begin() as conn:
        conn.execute(delete_one, {"gss": gss, "period": period})
        for other in others:
            if other != resource_id:
                conn.execute(_delete_one(other), {"gss": gss, "period": period})
        faults.point("consolidate.before_copy")
        count = insert(conn)
        faults.point("consolidate.before_commit")
    return count


def replace_rows(resource_id: str, gss: str, period: str, rows: list[dict[str, Any]], fields: list[dict[str, Any]],
                 others: Iterable[str] = ()) -> None:
    """Replace one council-period's rows with these (``_replace_one``)."""
    _replace_one(resource_id, gss, period, fields, others, lambda conn: _insert_rows(conn, resource_id, fields, rows))


def replace_from(resource_id: str, gss: str, period: str, source: Source, fields: list[dict[str, Any]],
                 others: Iterable[str] = ()) -> int:
    """Replace one council-period's rows with a file's (``_replace_one``);
    how many went in."""
    return _replace_one(resource_id, gss, period, fields, others,
                        lambda conn: _insert_source(conn, resource_id, fields, source))


def replace_all(resource_id: str, rows: list[dict[str, Any]], fields: list[dict[str, Any]],
                sources: Iterable[Source] = ()) -> list[int]:
    """Replace a whole table in one transaction: one DELETE, then ``rows``
    and each of ``sources``' rows (a rebuild is all or nothing); how many
    rows of each source went in."""
    names = tuple(f["id"] for f in fields)
    _one, delete_all, _copy = _statements(resource_id, names)
    with get_write_engine().begin() as conn:
        conn.execute(delete_all)
        _insert_rows(conn, resource_id, fields, rows)
        return [_insert_source(conn, resource_id, fields, source) for source in sources]


def council_periods(resource_id: str) -> dict[tuple[str, str], dict[str | None, int]]:
    """What a DataStore table holds, from the table itself: for each
    council-period, its number of rows by the upload they come from (None
    for rows of a table made before the column)."""
    with get_read_engine().connect() as conn:
        has_upload = "upload_id" in {name for name, _t in _table_columns(conn, identifier(resource_id))}
        upload = "upload_id" if has_upload else "NULL"
        rows = conn.execute(sa.text(
            f"SELECT council_gss, period, {upload}, count(*) FROM {identifier(resource_id)} GROUP BY 1, 2, 3")).all()
    out: dict[tuple[str, str], dict[str | None, int]] = {}
    for gss, period, upload_id, n in rows:
        out.setdefault((gss, period), {})[upload_id] = int(n)
    return out


NUMERIC_OID = 1700  # PostgreSQL's numeric (psycopg2 would give Decimal)


def read_table(resource_id: str, periods: Iterable[str] | None = None) -> Any:
    """A DataStore table (only the rows of ``periods`` when given) as a
    pandas DataFrame, numeric columns as numbers (cast to float8 by
    PostgreSQL: the nearest double, as float(Decimal)); without the
    DataStore's full-text column. Read with the plain DB-API cursor: a
    table of 300,000 rows in seconds rather than tens of seconds."""
    table = identifier(resource_id)
    with get_read_engine().connect() as conn:
        columns = _table_columns(conn, table)
        names = [name for name, _type in columns]
        select = "SELECT " + ", ".join(
            f"CAST({identifier(name)} AS float8) AS {identifier(name)}" if type_oid == NUMERIC_OID else identifier(name)
            for name, type_oid in columns) + f" FROM {table}"
        rows = _fetch(conn, select, periods)
    return pd.DataFrame.from_records(rows, columns=names, coerce_float=False)


def read_council_periods(resource_id: str, summed: list[str], ratios: list[str],
                         periods: Iterable[str] | None = None) -> Any:
    """A DataStore table folded by PostgreSQL into one row per
    council-period, as the quality checks fold it (``qa.aggregation``):
    ``summed`` fields added up (empty when all of the rows' values are),
    ``ratios`` kept where the rows agree (else empty), the earliest
    ``period_start``, the stored population and population_year and the
    stored rates of the summed fields, added up; numbers as float8. A return's table of 32 councils
    with 10,000 rows each is read in a fraction of the time its rows take."""
    table = identifier(resource_id)
    with get_read_engine().connect() as conn:
        present = {name for name, _type in _table_columns(conn, table)}
        summed = [n for n in summed if n in present]
        ratios = [n for n in ratios if n in present]
        # with the stored population and the summed stored rates
        stored = [n for n in ("population", "population_year") if n in present]
        rates = [reference.rate_column(n) for n in summed if reference.rate_column(n) in present]
        names = ["council_gss", "council_name", "period", "period_start", *summed, *ratios, *stored, *rates]
        select = ("SELECT council_gss, min(council_name), period, min(period_start)"
                  + "".join(f", CAST(sum({identifier(n)}) AS float8)" for n in summed)
                  + "".join(f", CASE WHEN count(DISTINCT {identifier(n)}) <= 1 THEN CAST(min({identifier(n)}) AS float8) END"
                            for n in ratios)
                  + "".join(f", max({identifier(n)})" for n in stored)
                  + "".join(f", CAST(sum({identifier(n)}) AS float8)" for n in rates)
                  + f" FROM {table}")
        rows = _fetch(conn, select, periods, group=" GROUP BY council_gss, period")
    return pd.DataFrame.from_records(rows, columns=names, coerce_float=False)


def _table_columns(conn: Any, table: str) -> list[tuple[str, int]]:
    """(name, type oid) of a DataStore table's columns, without ``_full_text``."""
    return [tuple(r) for r in conn.execute(sa.text(
        "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 "
        "AND NOT attisdropped AND attname <> '_full_text' ORDER BY attnum"), {"t": table}).all()]


def _fetch(conn: Any, select: str, periods: Iterable[str] | None, group: str = "") -> list[tuple[Any, ...]]:
    """Run a SELECT (of ``periods`` only, when given) with the plain DB-API
    cursor."""
    params: dict[str, Any] | None = None
    if periods is not None:  # (a "%" in a column name is doubled once there are parameters)
        select = select.replace("%", "%%") + " WHERE period = ANY(%(periods)s)"
        params = {"periods": sorted(set(periods))}
    cursor = conn.connection.cursor()
    try:
        cursor.execute(select + group, params)
        return cursor.fetchall()
    finally:
        cursor.close()


def check_periods(resource_id: str, period: str) -> list[str]:
    """The periods of a table the checks of ``period`` read
    (``qa.periods_read``), from one row per council-period."""
    with get_read_engine().connect() as conn:
        rows = conn.execute(sa.text(
            f"SELECT council_gss, period, min(period_start) FROM {identifier(resource_id)} "
            "GROUP BY council_gss, period")).fetchall()
    keys = pd.DataFrame([(gss, label, str(start)) for gss, label, start in rows],
                        columns=["council_gss", "period", "period_start"])
    return qa.periods_read(keys, period)


def prepared(submission_id: str) -> dict[str, Any] | None:
    """An accepted submission's rows, enriched, with where they go; None if it
    has nothing to consolidate."""
    pkg = model.Package.get(submission_id)
    if pkg is None:
        return None
    # the last accepted file stays the council's data while a correction is
    # under way (returned after acceptance), until the next acceptance
    state = submission_state.state_or_initial(pkg.id)
    upload = model.Session.get(Upload, state.accepted_upload or "")
    if upload is None:
        return None
    schema = standards.standard_for(pkg, upload.standard_version)
    # the file that was validated, and only that one
    made_now = not submission_jobs.has_normalised(upload)
    path = submission_jobs.normalised_path(upload)
    if made_now:
        model.Session.commit()  # the facts of the normalised file of an older upload, made just now
    group = model.Group.get(pkg.owner_org)
    gss = group.extras.get("gss_code") or ""
    decided = state.decided_at or _now()
    common = common_values(gss, reference.council_names().get(gss, group.title), pkg.extras["period"],
                           datetime.date.fromisoformat(pkg.extras["period_start"]), pkg.name, decided, upload.id)
    return {"return_id": pkg.extras["data_return"], "version": upload.standard_version or 1, "schema": schema,
            "gss": gss, "period": pkg.extras["period"], "source": Source(path, schema, common),
            "upload_id": upload.id}


def _resource_for(return_id: str, version: int, schema: dict[str, Any]) -> tuple[dict[str, Any], str]:
    return_dict = tk.get_action("package_show")(_read(), {"id": return_id})
    table = ensure_table(return_dict)
    return table, ensure_resource(table, version, schema)


def consolidate_submission(submission_id: str) -> dict[str, Any]:
    """Put an accepted submission's rows into its return's table (replacing
    that council-period's rows, in every table of the return, in one
    transaction)."""
    ready = prepared(submission_id)
    if ready is None:
        return {"rows": 0, "skipped": "not accepted"}
    table, resource_id = _resource_for(ready["return_id"], ready["version"], ready["schema"])
    count = replace_from(resource_id, ready["gss"], ready["period"], ready["source"], columns(ready["schema"]),
                         others=table_resources(table["id"]))
    return {"rows": count, "table": table["name"], "resource_id": resource_id,
            "period": ready["period"], "return_id": ready["return_id"], "upload_id": ready["upload_id"]}


def accepted_submissions(return_id: str | None = None) -> list[model.Package]:
    """Submissions with an accepted file (accepted now, or returned after
    acceptance and not yet accepted again)."""
    ids = submission_state.with_accepted_upload()
    rows = (model.Session.query(model.Package).filter(model.Package.id.in_(ids))
            .filter(model.Package.type == "submission", model.Package.state == "active").all()) if ids else []
    if return_id:
        rows = [p for p in rows if p.extras.get("data_return") == return_id]
    return sorted(rows, key=lambda p: (p.extras.get("data_return") or "", p.extras.get("period_start") or "", p.name))


def rebuild(return_id: str | None = None, progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None,
            on_done: Callable[[list[dict[str, Any]]], None] | None = None) -> dict[str, int]:
    """Build the tables again from every accepted submission (idempotent):
    each table is replaced whole in one transaction. ``on_done`` is given,
    per table, what went in: ``[{"submission_id", "upload_id",
    "resource_id", "rows"}]`` (tracking.rebuild records it)."""
    subs = accepted_submissions(return_id)
    batches: dict[tuple[str, int], dict[str, Any]] = {}
    for pkg in (progress(subs) if progress else subs):
        ready = prepared(pkg.id)
        if ready is None:
            continue
        batch = batches.setdefault((ready["return_id"], ready["version"]),
                                   {"schema": ready["schema"], "sources": [], "subs": []})
        batch["sources"].append(ready["source"])
        batch["subs"].append({"submission_id": pkg.id, "upload_id": ready["upload_id"]})
    total = 0
    filled: dict[str, set[str]] = {}  # table id -> its resources rebuilt
    for (rid, version), batch in sorted(batches.items()):
        table, resource_id = _resource_for(rid, version, batch["schema"])
        counts = replace_all(resource_id, [], columns(batch["schema"]), sources=batch["sources"])
        filled.setdefault(table["id"], set()).add(resource_id)
        total += sum(counts)
        if on_done is not None:
            on_done([{**sub, "resource_id": resource_id, "rows": n} for sub, n in zip(batch["subs"], counts)])
    # a table no accepted file is in any more (every council-period it held
    # was accepted again under a newer standard) is emptied
    for table_id, done in filled.items():
        for resource_id in table_resources(table_id):
            if resource_id not in done:
                replace_all(resource_id, [], [])
    return {"submissions": len(subs), "rows": total}
