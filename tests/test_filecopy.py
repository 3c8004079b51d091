"""The rows' way into a return's table from the file as it is
(``repository/filecopy``) against the Python path it replaces
(``consolidate.read_rows`` + ``with_common`` + COPY): over files written to
be awkward, both put the same rows in the same order, cell for cell; where
PostgreSQL refuses a value Python takes, the file falls back to the Python
path and nothing is lost."""
from __future__ import annotations

import datetime
import decimal
import random

import psycopg2
import pytest
import sqlalchemy as sa

from ckan.tests import factories
from ckan.tests.helpers import call_action

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db")]

SCHEMA = {"fields": [
    {"name": "area", "type": "string"},
    {"name": "count", "type": "integer", "lgdp:countable": True},
    {"name": "amount", "type": "number", "lgdp:countable": True},
    {"name": "share", "type": "number"},
    {"name": "flag", "type": "boolean"},
    {"name": "answered", "type": "boolean", "trueValues": ["Y", "yes"], "falseValues": ["N", "no"]},
    {"name": "day", "type": "date"},
    {"name": "year", "type": "year"},
    {"name": "at", "type": "datetime"},
    {"name": "note", "type": "string"},
]}
HEADER = [f["name"] for f in SCHEMA["fields"]]

# Cells Python's casts take, written to be awkward for a CSV reader and for
# PostgreSQL's casts; the rest of the row varies at random.
TEXTS = ["Aberdeen", "Edinburgh, City of", 'a "quoted" word', 'ab"c', "two\nlines", "cr\r\nlf", "lone\rcr",
         "\\.", "\\N", "back\\slash", "tab\there", "  spaced  ", "Gàidhlig ùr", "ß", "'", "=1+1", "", "NULL", "\u00a0"]
COUNTS = ["0", "7", "-3", "+5", " 12 ", "007", "9223372036854775807", "-9223372036854775808", "", "1000000"]
AMOUNTS = ["0.10", "1e3", "1E-7", " 2.5 ", "-0.0", "+3", "5.", ".5", "12345678901234567890.123456789",
           "0.1", "1e300", "-1e300", "", "3.14159265358979323846", "100"]
FLAGS = ["true", "false", "True", "FALSE", "1", "0", ""]
ANSWERS = ["Y", "N", "yes", "no", ""]
DAYS = ["2024-01-05", "2025-12-31", ""]
YEARS = ["2024", " 1999", "", "-5"]
ATS = ["2024-01-05T10:00:00", "2024-01-05T10:00:00Z", "2024-02-29T23:59:59.5", ""]


def _cell(text: str) -> str:
    """A cell as a spreadsheet writes it: quoted when it must be."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _file(rows: list[list[str]], header: list[str] = HEADER, eol: str = "\n", bom: bool = False,
          tail: str = "") -> bytes:
    text = eol.join(",".join(_cell(c) for c in row) for row in [header, *rows]) + eol + tail
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


def _random_rows(rng: random.Random, n: int, plain: bool) -> list[list[str]]:
    texts = [t for t in TEXTS if not any(c in t for c in ',"\r\n\\')] if plain else TEXTS
    return [[rng.choice(texts), rng.choice(COUNTS), rng.choice(AMOUNTS), rng.choice(AMOUNTS), rng.choice(FLAGS),
             rng.choice(ANSWERS), rng.choice(DAYS), rng.choice(YEARS), rng.choice(ATS), rng.choice(texts)]
            for _ in range(n)]


def _cases() -> list[tuple[str, bytes, bool]]:
    """(name, file, whether PostgreSQL takes it without the Python path)."""
    rng = random.Random(20261204)
    cases = [
        ("plain, LF", _file(_random_rows(rng, 300, plain=True)), True),
        ("plain, CRLF, BOM", _file(_random_rows(rng, 300, plain=True), eol="\r\n", bom=True), True),
        ("quoted cells", _file(_random_rows(rng, 300, plain=False)), True),
        ("quoted cells, CRLF", _file(_random_rows(rng, 200, plain=False), eol="\r\n"), True),
        ("blank lines and a blank end", _file(_random_rows(rng, 50, plain=True) + [[]] + _random_rows(rng, 50, True),
                                              tail="\n\n"), True),
        ("short and long rows", _file([r[:rng.randint(1, 9)] if i % 3 == 0 else r + ["extra", "more"] if i % 3 == 1
                                       else r for i, r in enumerate(_random_rows(rng, 90, plain=True))]), True),
        ("columns reordered, unknown ones, a field missing",
         _file([[r[9], "zz", r[1], r[0], r[2]] for r in _random_rows(rng, 60, plain=False)],
               header=["note", "unknown", "count", "area", "amount"]), True),
        ("a name twice (the last one read)", _file([r + ["42"] for r in _random_rows(rng, 40, plain=True)],
                                                   header=[*HEADER, "count"]), True),
        ("a mid-field quote only", _file([["x", "1", "2", "3", "true", "Y", "2024-01-05", "2024", "", 'say "hi"']]),
         True),
        ("no rows", _file([]), True),
        ("Python's integers: underscores", _file([["a", "1_000", "1", "1", "true", "Y", "", "", "", ""]] +
                                                 _random_rows(rng, 20, plain=True)), False),
        ("Python's numbers: underscores", _file([["a", "1", "2_000.5", "1", "true", "Y", "", "", "", ""]]), False),
        ("a boolean by the older rule", _file([["a", "1", "1", "1", " yes ", "Y", "", "", "", ""]]), True),
        ("a boolean by the older rule, not a value", _file([["a", "1", "1", "1", "maybe", "Y", "", "", "", ""]]),
         False),
    ]
    one = [["Fife"], ["\\."], [""], ["Angus"]]  # one column: a lone "\." and an empty cell
    cases.append(("one column", _file(one, header=["area"]), True))
    return cases


def _table(fields):
    dataset = factories.Dataset(owner_org=factories.Organization(org_type="agency")["id"])
    return call_action("datastore_create", context={"user": factories.Sysadmin()["name"]},
                       resource={"package_id": dataset["id"]}, fields=fields, force=True)["resource_id"]


def _stored(resource_id: str) -> list[tuple]:
    from ckanext.datastore.backend.postgres import get_read_engine, identifier

    with get_read_engine().connect() as conn:
        columns = [r[0] for r in conn.execute(sa.text(
            "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 "
            "AND NOT attisdropped AND attname NOT IN ('_id', '_full_text') ORDER BY attnum"),
            {"t": identifier(resource_id)})]
        rows = conn.execute(sa.text(
            f"SELECT {', '.join(identifier(c) for c in columns)}, CAST(_full_text AS text) "
            f"FROM {identifier(resource_id)} ORDER BY _id")).all()
    return [dict(zip([*columns, "_full_text"], row)) for row in rows]


def _same(python: dict, streamed: dict) -> list[str]:
    """The cells that differ. Numbers are compared as the figure they are:
    the Python path stored the nearest double, the file's way the decimal
    written, which is that double when read as one."""
    out = []
    for name, old in python.items():
        new = streamed[name]
        if name in ("amount", "share") and old is not None and new is not None:
            if float(old) != float(new):
                out.append(f"{name}: {old!r} != {new!r}")
        elif old != new:
            out.append(f"{name}: {old!r} != {new!r}")
    return out


@pytest.mark.parametrize("population", [123_457, 0, None])
def test_the_file_as_it_is_gives_the_rows_the_python_path_gives(tmp_path, monkeypatch, population):
    from ckanext.lgdp.repository import consolidate

    fields = consolidate.columns(SCHEMA)
    common = {"council_gss": "S12000036", "council_name": "City of Edinburgh", "period": "2024-25",
              "period_start": datetime.date(2024, 4, 1), "population": population, "population_year": 2024,
              "submission": "sub-edinburgh-2024-25", "accepted_at": datetime.datetime(2025, 5, 1, 9, 30, 15, 123456),
              "upload_id": "upload-1"}
    python_path = []
    real_rows = consolidate.Source.rows
    monkeypatch.setattr(consolidate.Source, "rows", lambda self: python_path.append(self.path) or real_rows(self))
    compared = 0
    for name, content, streams in _cases():
        path = tmp_path / f"{len(python_path)}-{compared}.csv"
        path.write_bytes(content)
        source = consolidate.Source(str(path), SCHEMA, common)
        expected, actual = _table(fields), _table(fields)
        consolidate.replace_rows(expected, "S12000036", "2024-25", real_rows(source), fields)
        python_path.clear()
        count = consolidate.replace_from(actual, "S12000036", "2024-25", source, fields)
        assert (python_path == []) is streams, f"{name}: took the {'Python' if python_path else 'file'} path"
        old, new = _stored(expected), _stored(actual)
        assert count == len(new) == len(old), name
        for i, (a, b) in enumerate(zip(old, new)):
            assert not _same(a, b), f"{name}, row {i + 1}: {_same(a, b)}"
        compared += len(new)
    assert compared > 1000


def test_numbers_are_stored_as_written_and_rates_as_python_computes_them(tmp_path):
    from ckanext.lgdp.repository import consolidate, reference

    fields = consolidate.columns(SCHEMA)
    amounts = ["0.10", "12345678901234567890.123456789", "3.14159265358979323846", "1e3", "2.5"]
    path = tmp_path / "numbers.csv"
    path.write_bytes(_file([["a", str(i), a, "", "", "", "", "", "", ""] for i, a in enumerate(amounts)]))
    common = {"council_gss": "S12000036", "council_name": "City of Edinburgh", "period": "2024-25",
              "period_start": datetime.date(2024, 4, 1), "population": 98_765, "population_year": 2024,
              "submission": "s", "accepted_at": datetime.datetime(2025, 5, 1), "upload_id": "u"}
    resource_id = _table(fields)
    consolidate.replace_from(resource_id, "S12000036", "2024-25", consolidate.Source(str(path), SCHEMA, common), fields)
    stored = _stored(resource_id)
    assert [r["amount"] for r in stored] == [decimal.Decimal(a) for a in amounts]
    assert str(stored[0]["amount"]) == "0.10"
    for i, (row, text) in enumerate(zip(stored, amounts)):
        assert row["amount_per_1000"] == decimal.Decimal(str(reference.rate_per_1000(float(text), 98_765)))
        assert row["count_per_1000"] == decimal.Decimal(str(reference.rate_per_1000(i, 98_765)))


def test_a_file_killed_during_its_copy_leaves_the_table_as_it_was(tmp_path, monkeypatch):
    """The fault point inside the rows' way in: an exception there (the
    fault suite kills the process at it) rolls the whole replacement back."""
    from ckanext.lgdp.ops import faults
    from ckanext.lgdp.repository import consolidate

    fields = consolidate.columns(SCHEMA)
    common = {"council_gss": "S12000036", "council_name": "x", "period": "2024-25",
              "period_start": datetime.date(2024, 4, 1), "population": 1000, "population_year": 2024,
              "submission": "s", "accepted_at": datetime.datetime(2025, 5, 1), "upload_id": "u"}
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_bytes(_file(_random_rows(random.Random(1), 10, plain=True)))
    second.write_bytes(_file(_random_rows(random.Random(2), 30, plain=False)))
    resource_id = _table(fields)
    consolidate.replace_from(resource_id, "S12000036", "2024-25", consolidate.Source(str(first), SCHEMA, common), fields)
    before = _stored(resource_id)

    class Stop(Exception):
        pass

    def stop(name):
        if name == "consolidate.during_copy":
            raise Stop(name)

    monkeypatch.setattr(faults, "point", stop)
    monkeypatch.setattr(faults, "armed", lambda name: name == "consolidate.during_copy")
    # (psycopg2 ends the COPY and raises its own error for the reader's)
    with pytest.raises((Stop, psycopg2.errors.QueryCanceled), match="consolidate.during_copy"):
        consolidate.replace_from(resource_id, "S12000036", "2024-25",
                                 consolidate.Source(str(second), SCHEMA, common), fields)
    monkeypatch.undo()
    assert _stored(resource_id) == before and len(before) == 10
