"""ckanext.lgdp.submissions.fastcsv gives the report frictionless gives.

Pure unit tests (no CKAN, no database): every case writes a CSV, validates it
with ``validate_csv`` and with frictionless itself (``frictionless_report``:
``frictionless.validate(path, format="csv", schema=...)`` in a trusted
context), and compares the two reports whole, timings removed. Cases: edge
cases written by hand, then files generated from the standards in
``ckanext/lgdp/schemas/standards`` and mutated by a seeded random generator. The
generated files are also validated with tiny block sizes, so that block
boundaries, the switch from line reading to the csv module, the value caches
and the bisection of a failing column are crossed many times in small files.

    .venv/bin/python -m pytest -q -p no:ckan -p no:ckan_fixtures tests/test_fastcsv.py -o addopts=""
"""
from __future__ import annotations

import copy
import csv
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest

from ckanext.lgdp.submissions import fastcsv

from tests.conftest import STANDARDS  # noqa: E402 - the one path of the standards


def _standard(name: str) -> dict:
    return json.loads((STANDARDS / f"{name}.v1.json").read_text())


def _without_timing(report: dict) -> dict:
    report = copy.deepcopy(report)
    report["stats"].pop("seconds", None)
    for task in report.get("tasks", []):
        task["stats"].pop("seconds", None)
    return report


def _both(path: Path, schema: dict, limit_errors: int = 1000) -> tuple[dict, dict]:
    ours = fastcsv.validate_csv(str(path), schema, limit_errors=limit_errors)
    theirs = fastcsv.frictionless_report(str(path), schema, limit_errors=limit_errors)
    return _without_timing(ours), _without_timing(theirs)


def _assert_same(path: Path, schema: dict, limit_errors: int = 1000) -> dict:
    ours, theirs = _both(path, schema, limit_errors)
    if ours != theirs:
        # A readable first difference before the whole diff.
        a, b = ours["tasks"][0], theirs["tasks"][0]
        for key in ("labels", "stats", "warnings", "valid"):
            assert a.get(key) == b.get(key), (key, a.get(key), b.get(key))
        for x, y in zip(a["errors"], b["errors"]):
            assert x == y
        assert len(a["errors"]) == len(b["errors"])
    assert ours == theirs
    return theirs


def _write(tmp_path: Path, data: str | bytes, name: str = "return.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


class _Spy:
    """Counts the hand-overs to frictionless."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.calls = 0
        real = fastcsv.frictionless_report

        def spy(*args: Any, **kwargs: Any) -> dict:
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(fastcsv, "frictionless_report", spy)


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastcsv, "LINE_BLOCK_CHARS", 300)
    monkeypatch.setattr(fastcsv, "CSV_BLOCK_ROWS", 7)
    monkeypatch.setattr(fastcsv, "VALUE_CACHE", 5)
    monkeypatch.setattr(fastcsv._NumberCheck, "LEAF", 2)


# Hand-written cases

SMALL = {
    "fields": [
        {"name": "code", "type": "string", "constraints": {"required": True, "pattern": "S12[0-9]{6}"}},
        {"name": "period", "type": "string", "constraints": {"required": True, "pattern": "[0-9]{4}-[0-9]{2}"}},
        {"name": "count", "type": "integer", "constraints": {"required": True, "minimum": 0}, "lgdp:countable": True},
        {"name": "pct", "type": "number", "constraints": {"minimum": 0, "maximum": 100}},
        {"name": "flag", "type": "boolean"},
        {"name": "note", "type": "string"},
    ],
    "primaryKey": ["code", "period"],
    "lgdp:totals": {"count": "sum"},
}
HEADER = "code,period,count,pct,flag,note\n"
GOOD = "S12000036,2024-25,10,55.5,true,x\n"

HAND_CASES = {
    "valid": HEADER + GOOD + "S12000033,2024-25,0,0,false,\n",
    "header only": HEADER,
    "header only, no newline": HEADER.rstrip("\n"),
    "header only, one blank line": HEADER + "\n",
    "no trailing newline": HEADER + GOOD.rstrip("\n"),
    "crlf": (HEADER + GOOD + "S12000033,2024-25,x,1,0,\n").replace("\n", "\r\n"),
    "bom": "\ufeff" + HEADER + GOOD,
    "bom crlf": "\ufeff" + (HEADER + GOOD).replace("\n", "\r\n"),
    "lone cr line endings": (HEADER + GOOD + "S12000033,2024-25,x,1,0,\n").replace("\n", "\r"),
    "blank row": HEADER + GOOD + "\n" + "S12000033,2024-25,1,1,1,\n",
    "row of empty cells": HEADER + GOOD + ",,,,,\n",
    "quoted empty cells": HEADER + '"","","","","",""\n',
    "short row": HEADER + "S12000036,2024-25\n",
    "short row, required cell missing": HEADER + "S12000036\n",
    "long row": HEADER + GOOD.rstrip("\n") + ",extra,more\n",
    "empty required": HEADER + "S12000036,,,55,true,\n",
    "whitespace cells": HEADER + "S12000036,2024-25, 5 , 7 ,true,\nS12000033,2024-25, ,  ,true,\n",
    "integer shapes": HEADER
    + "".join(
        f"S12{i:06d},2024-25,{v},1,true,\n"
        for i, v in enumerate(
            ["1.0", "1e3", "-0", "+5", "007", "1_000", "١٢", "0x10", "-1", "1,000", "1 000", "", "99999999999999999999", "1" * 5000]
        )
    ).replace("1,000,1,", '"1,000",1,'),
    "number shapes": HEADER
    + "".join(
        f"S12{i:06d},2024-25,1,{v},true,\n"
        for i, v in enumerate(
            ["100", "100.0", "100.00001", "101", "-0", "-0.0", "-1", "NaN", "nan", "inf", "-inf", "Infinity", "1e2", "1e3",
             ".5", "5.", "1_0.5", "0.0000001", " 50 ", "50%", "£5", "1" * 30]
        )
    ),
    "boolean shapes": HEADER
    + "".join(
        f"S12{i:06d},2024-25,1,1,{v},\n"
        for i, v in enumerate(["true", "True", "TRUE", "1", "false", "False", "FALSE", "0", "yes", "no", "t", " true", ""])
    ),
    "pattern is a full match": HEADER
    + "".join(
        f"{v},2024-25,1,1,true,\n"
        for v in ["S12000036", "s12000036", "S1200003", "S120000361", " S12000036", "S12000036 ", "XS12000036"]
    )
    + '"S12000037\n",2024-25,1,1,true,\n',
    "type and constraint in one row": HEADER + "S1,2024,x,101,maybe,\n",
    "duplicate keys": HEADER + GOOD + GOOD + "S12000033,2024-25,1,1,1,\n" + GOOD,
    "null keys": HEADER + ",,1,1,1,\n" + ",,1,1,1,\n" + "S12000036,,1,1,1,\n" + "S12000036,,1,1,1,\n",
    "embedded newlines count records not lines": HEADER
    + 'S12000036,2024-25,1,1,true,"a\nb\nc"\n'
    + "S12000033,2024-25,x,1,true,\n"
    + 'S12000034,2024-25,1,1,true,"\r\n"\n'
    + "S12000034,2024-25,1,1,true,\n",
    "quoted everything": "".join(
        ",".join(f'"{c}"' for c in line.split(",")) + "\n"
        for line in (HEADER + GOOD + "S12000033,2024-25,-1,1,true,x").splitlines()
    ),
    "header case": HEADER.upper() + GOOD,
    "header spaces": " code , period ,count,pct,flag,note\n" + GOOD,
    "header missing label": "code,period,count,pct,flag\n" + GOOD,
    "header extra label": HEADER.rstrip("\n") + ",extra\n" + GOOD,
    "header duplicate labels": "code,code,count,pct,flag,flag\n" + GOOD,
    "header blank label": "code,,count,pct,flag,note\n" + GOOD,
    "header other order": "period,code,count,pct,flag,note\n" + GOOD,
    "header with newline": '"co\nde",period,count,pct,flag,note\n' + GOOD,
    "semicolons in cells": HEADER + "".join(f"S12{i:06d},2024-25,{i},1,true,a;b\n" for i in range(5)),
    "single quotes": HEADER + "S12000036,2024-25,1,1,true,'a,b'\n",
    "nul byte": HEADER + "S12000036,2024-25,1,1,true,a\x00b\n",
    "unicode separators": HEADER + "S12000036,2024-25,1,1,true,a\u2028b\x0bc\x1cd\x85e\n" + GOOD,
    "empty file": "",
    "only blank lines": "\n\n\n",
    "header then blank lines": HEADER + "\n\n\n",
    "blank first line": "\n" + HEADER + GOOD,
}


@pytest.mark.parametrize("case", sorted(HAND_CASES))
def test_hand_written_cases(tmp_path: Path, case: str) -> None:
    _assert_same(_write(tmp_path, HAND_CASES[case]), SMALL)


@pytest.mark.parametrize("case", sorted(HAND_CASES))
def test_hand_written_cases_small_blocks(tmp_path: Path, case: str, small_blocks: None) -> None:
    # Past the 100 records frictionless samples, the fast reader takes over.
    body = HAND_CASES[case]
    if body.startswith(HEADER):
        body = HEADER + "".join(f"S13{i:06d},2024-25,{i},1,true,\n" for i in range(120)) + body[len(HEADER):]
    _assert_same(_write(tmp_path, body), SMALL)


def test_enum_added_by_callers_and_custom_keys(tmp_path: Path) -> None:
    schema = copy.deepcopy(SMALL)
    schema["fields"][0]["constraints"]["enum"] = ["S12000033"]
    schema["fields"][2]["constraints"]["enum"] = [1, 2, 3]
    schema["fields"][4]["trueValues"] = ["yes", "Y"]
    schema["fields"][4]["falseValues"] = ["no"]
    schema["fields"][5]["constraints"] = {"minLength": 2, "maxLength": 3}
    schema["fields"][5]["lgdp:anything"] = {"x": 1}
    body = HEADER + "".join(
        f"{code},2024-25,{count},1,{flag},{note}\n"
        for code, count, flag, note in [
            ("S12000033", "1", "yes", "ab"),
            ("S12000036", "01", "Y", "abcd"),
            ("S12000033", "4", "true", "a"),
            ("S12000033", " 2 ", "no", ""),
        ]
    )
    assert fastcsv.unsupported_reason(schema) is None
    _assert_same(_write(tmp_path, body), schema)


def test_alternation_pattern_is_not_anchored_as_a_whole(tmp_path: Path) -> None:
    # frictionless wraps patterns as ^pattern$: "a|b" accepts anything starting with "a".
    schema = {"fields": [{"name": "x", "type": "string", "constraints": {"pattern": "a|b"}}]}
    body = "x\n" + "".join(f"{v}\n" for v in ["a", "b", "axx", "xxb", "c", ""] * 30)
    report = _assert_same(_write(tmp_path, body), schema)
    errors = report["tasks"][0]["errors"]
    assert {e["cell"] for e in errors if e["type"] == "constraint-error"} == {"xxb", "c"}
    assert {e["type"] for e in errors} == {"constraint-error", "blank-row"}  # "" alone on a line


def test_single_field_and_non_required_first_field(tmp_path: Path, small_blocks: None) -> None:
    schema = {"fields": [{"name": "x", "type": "integer"}], "primaryKey": ["x"]}
    body = "x\n" + "".join(f"{v}\n" for v in ["1", "2", "", "3", "x", "2", ""] * 40)
    _assert_same(_write(tmp_path, body), schema)
    schema = {"fields": [{"name": "a", "type": "number"}, {"name": "b", "type": "string"}]}
    body = "a,b\n" + "".join(f"{a},{b}\n" for a, b in [("", ""), ("1", ""), ("", "x"), ("1.5", "y")] * 40)
    _assert_same(_write(tmp_path, body), schema)


# Integer fields in the primary key: frictionless compares keys by value
# (the cells as read), so "01", " 1", "+1" and "1" are one key, and a cell
# that is not an integer ("1.0", "x") or is missing is None, like an empty one.
INTEGER_KEY = {
    "fields": [
        {"name": "code", "type": "string", "constraints": {"required": True, "pattern": "S12[0-9]{6}"}},
        {"name": "period", "type": "string", "constraints": {"pattern": "[0-9]{4}-[0-9]{2}"}},
        {"name": "record", "type": "integer", "constraints": {"required": True, "minimum": 1}},
        {"name": "count", "type": "integer", "constraints": {"minimum": 0}},
    ],
    "primaryKey": ["code", "period", "record"],
}
INTEGER_KEY_CELLS = ["01", "1.0", " 1", "1 ", "+1", "-0", "0", "1_0", "١", "1e0", "x", "", " ", "-1",
                     "10", "00010", "99999999999999999999", "099999999999999999999", "1" * 5000]


@pytest.mark.parametrize("layout", ["plain", "quoted", "crlf"])
def test_integer_primary_key_cells_are_compared_by_value(tmp_path: Path, small_blocks: None, layout: str) -> None:
    rnd = random.Random(layout)
    lines = ["code,period,record,count"]
    for i in range(1, 400):
        record = str(i) if rnd.random() < 0.7 else rnd.choice(INTEGER_KEY_CELLS + [str(i - 1), "1", "2"])
        code = "S12000036" if rnd.random() < 0.9 else rnd.choice(["S12000033", "", "bad"])
        period = "2024-25" if rnd.random() < 0.95 else rnd.choice(["", "2023-24"])
        lines.append(",".join([code, period, f'"{record}"' if layout == "quoted" else record, str(i % 7)]))
    end = "\r\n" if layout == "crlf" else "\n"
    report = _assert_same(_write(tmp_path, end.join(lines) + end), INTEGER_KEY)
    assert [e["type"] for e in report["tasks"][0]["errors"]].count("primary-key") > 5


@pytest.mark.parametrize("blocks", ["default", "small"])
def test_integer_primary_key_hand_cases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blocks: str) -> None:
    if blocks == "small":
        monkeypatch.setattr(fastcsv, "LINE_BLOCK_CHARS", 300)
        monkeypatch.setattr(fastcsv, "CSV_BLOCK_ROWS", 7)
    header = "code,period,record,count\n"
    lead = "".join(f"S12000036,2024-25,{i},1\n" for i in range(1000, 1120))  # past frictionless's sample
    cases = {
        "duplicates": ["1", "2", "1", "3", "2", "2"],
        "leading zeros and signs": ["1", "01", "+1", "001", "-0", "0", "00"],
        "spaces": ["1", " 1", "1 ", " 1 ", "2"],
        "not integers are None": ["1.0", "1.0", "x", "1e0", "", " ", "1"],
        "blanks": ["", "", "3", ""],
        "non-ASCII digits": ["1", "١", "۱", "2"],
        "underscores": ["1_0", "10", "1_000", "1000"],
        "huge": ["99999999999999999999", "099999999999999999999", "1" * 5000, "1" * 5000],
    }
    for name, records in cases.items():
        for with_lead in (False, True):
            body = header + (lead if with_lead else "") + "".join(f"S12000036,2024-25,{r},1\n" for r in records)
            _assert_same(_write(tmp_path, body, name=f"{len(records)}.csv"), INTEGER_KEY)
    # the whole key blank: "cells composing the primary keys are all None"
    body = header + lead + ",,,1\n,,x,1\nS12000036,,,1\n"
    _assert_same(_write(tmp_path, body), INTEGER_KEY)
    # a single integer key, and an integer key before a string one
    for schema in (
        {"fields": [{"name": "n", "type": "integer"}], "primaryKey": ["n"]},
        {"fields": [{"name": "n", "type": "integer"}, {"name": "s", "type": "string"}], "primaryKey": ["n", "s"]},
    ):
        width = len(schema["fields"])
        rows = [["1", "01", " 1", "x", "", "2", "1.0", "-0", "0"][i % 9] for i in range(300)]
        body = ",".join(f["name"] for f in schema["fields"]) + "\n" + "".join(
            ",".join([r, "a" if i % 2 else ""][:width]) + "\n" for i, r in enumerate(rows))
        _assert_same(_write(tmp_path, body), schema)


def test_integer_primary_key_takes_the_fast_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert fastcsv.unsupported_reason(INTEGER_KEY) is None
    spy = _Spy(monkeypatch)
    body = "code,period,record,count\n" + "".join(f"S12000036,2024-25,{i},{i}\n" for i in range(1, 3000))
    body += "S12000036,2024-25,01,1\n"
    ours = fastcsv.validate_csv(str(_write(tmp_path, body)), INTEGER_KEY)
    assert spy.calls == 0
    monkeypatch.undo()
    assert _without_timing(ours) == _without_timing(fastcsv.frictionless_report(str(_write(tmp_path, body)), INTEGER_KEY))
    assert [e["note"] for e in ours["tasks"][0]["errors"]] == ["the same as in the row at position 2"]


BOUNDS = {
    "fields": [
        {"name": "id", "type": "string", "constraints": {"required": True}},
        {"name": "tag", "type": "string", "constraints": {"pattern": "[A-Z]{2}"}},
        {"name": "five_up", "type": "integer", "constraints": {"minimum": 5}},
        {"name": "from_minus_ten", "type": "number", "constraints": {"minimum": -10, "maximum": 1000}},
        {"name": "fraction", "type": "number", "constraints": {"required": True, "minimum": 0, "maximum": 0.5}},
        {"name": "capped", "type": "integer", "constraints": {"maximum": 5000}},
        {"name": "anything", "type": "number"},
    ],
    "primaryKey": ["id"],
}
BOUNDS_VALUES = [
    ["a", "b", "", "-0", "x y"],
    ["AB", "", "ab", "ABC", "A", "ZZ"],
    ["5", "6", "4", "", "-5", "05", "1e1"],
    ["-10", "-10.5", "-9.99", "1000", "1000.0", "1000.01", "0", "", "5", "-0"],
    ["0", "0.5", "0.50", "0.51", "0.1", ".5", "1", "", "-0", "0.4999999999999999999999"],
    ["5000", "4999", "5001", "05000", "50000", "-7", "", "0"],
    ["1", "-1.5", "1e400", "NaN", "", "-", "12345678901234567890.5"],
]


@pytest.mark.parametrize("line_ending", ["\n", "\r\n", "mixed"])
def test_bounds_and_string_constraints(tmp_path: Path, small_blocks: None, line_ending: str) -> None:
    rnd = random.Random(line_ending)
    lines = []
    for i in range(400):
        cells = [rnd.choice(values) if rnd.random() < 0.3 else values[0] for values in BOUNDS_VALUES]
        cells[0] = f"id{i}" if rnd.random() < 0.97 else rnd.choice(BOUNDS_VALUES[0])
        lines.append(",".join(cells))
    if line_ending == "mixed":
        text = "".join(line + rnd.choice(["\n", "\r\n"]) for line in ["id,tag,five_up,from_minus_ten,fraction,capped,anything"] + lines)
    else:
        text = line_ending.join(["id,tag,five_up,from_minus_ten,fraction,capped,anything"] + lines) + line_ending
    _assert_same(_write(tmp_path, text), BOUNDS)


@pytest.mark.parametrize(
    "separator", [";", "\t", "|", ", "], ids=["semicolon", "tab", "pipe", "comma-space"]
)
def test_dialects_the_sniffer_finds(tmp_path: Path, separator: str) -> None:
    rows = [["code", "period", "count", "pct", "flag", "note"]]
    rows += [[f"S12{i:06d}", "2024-25", str(i), "1.5", "true", "a b"] for i in range(150)]
    rows[60][2] = "x"
    rows[130][4] = "maybe"
    text = "".join(separator.join(row) + "\n" for row in rows)
    _assert_same(_write(tmp_path, text), SMALL)


def test_key_separator_in_a_key_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _Spy(monkeypatch)
    body = HEADER + "".join(f"S12{i:06d},2024-25,1,1,true,\n" for i in range(150))
    body += "a\x1fb,c,1,1,true,\na,b\x1fc,1,1,true,\n"
    path = _write(tmp_path, body)
    ours = fastcsv.validate_csv(str(path), SMALL)
    assert spy.calls == 1
    monkeypatch.undo()
    assert _without_timing(ours) == _without_timing(fastcsv.frictionless_report(str(path), SMALL))


@pytest.mark.parametrize("limit", [0, 1, 2, 3, 7, 50])
def test_error_limit(tmp_path: Path, limit: int) -> None:
    body = HEADER + "".join(
        f"S12{i:06d},2024-25,{'x' if i % 37 == 5 else i},1,true,\n" for i in range(4000)
    )
    report = _assert_same(_write(tmp_path, body), SMALL, limit_errors=limit)
    if limit:
        assert report["tasks"][0]["warnings"] == [f"reached error limit: {limit}"]


def test_error_limit_reached_by_header_errors(tmp_path: Path) -> None:
    # Header errors alone reach the limit: frictionless still reads one row.
    body = "a,b,c,d,e,f\n" + GOOD * 300
    _assert_same(_write(tmp_path, body), SMALL, limit_errors=3)
    _assert_same(_write(tmp_path, "a,b,c,d,e,f\n"), SMALL, limit_errors=3)


def test_same_report_for_a_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, HEADER + GOOD + GOOD, name="My Return (v2).csv")
    monkeypatch.chdir(tmp_path)
    _assert_same(Path("My Return (v2).csv"), SMALL)


def test_file_without_csv_extension(tmp_path: Path) -> None:
    # CKAN keeps uploads under names without an extension.
    _assert_same(_write(tmp_path, HEADER + GOOD + "x\n", name="3f2a9c"), SMALL)


# Fallback


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s["fields"][2].update(type="date"),
        lambda s: s["fields"][0].update(format="email"),
        lambda s: s["fields"][3].update(groupChar=","),
        lambda s: s["fields"][3].update(bareNumber=False),
        lambda s: s.update(missingValues=["", "NA"]),
        lambda s: s["fields"][5]["constraints"].update(unique=True),
        lambda s: s.update(primaryKey=["pct"]),
        lambda s: s.update(foreignKeys=[{"fields": ["code"], "reference": {"resource": "", "fields": ["note"]}}]),
    ],
)
def test_unsupported_schema_features_use_frictionless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: Any) -> None:
    schema = copy.deepcopy(SMALL)
    schema["fields"][5]["constraints"] = {}
    change(schema)
    assert fastcsv.unsupported_reason(schema)
    spy = _Spy(monkeypatch)
    path = _write(tmp_path, HEADER + GOOD + "S12000033,2024-25,NA,1,true,\n")
    ours = fastcsv.validate_csv(str(path), schema)
    assert spy.calls == 1
    monkeypatch.undo()
    assert _without_timing(ours) == _without_timing(fastcsv.frictionless_report(str(path), schema))


@pytest.mark.parametrize(
    "data",
    [
        b"",  # the source is empty
        b"code,period\n\n\n\n",  # frictionless takes row 2 (an empty line) as the header
        (HEADER + "S12000036,2024-25,1,1,true,\xe9t\xe9\n" * 300).encode("latin-1"),  # not UTF-8
    ],
)
def test_unsupported_files_use_frictionless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    spy = _Spy(monkeypatch)
    path = _write(tmp_path, data)
    ours = fastcsv.validate_csv(str(path), SMALL)
    assert spy.calls == 1
    monkeypatch.undo()
    assert _without_timing(ours) == _without_timing(fastcsv.frictionless_report(str(path), SMALL))


def test_missing_file_gives_frictionless_report(tmp_path: Path) -> None:
    path = tmp_path / "gone.csv"
    ours = fastcsv.validate_csv(str(path), SMALL)
    assert ours["valid"] is False
    assert [e["type"] for e in ours["tasks"][0]["errors"]] == ["scheme-error"]
    assert _without_timing(ours) == _without_timing(fastcsv.frictionless_report(str(path), SMALL))


def test_schema_object_accepted(tmp_path: Path) -> None:
    from frictionless import Schema

    path = _write(tmp_path, HEADER + GOOD + GOOD)
    ours = _without_timing(fastcsv.validate_csv(str(path), Schema.from_descriptor(copy.deepcopy(SMALL))))
    assert ours == _without_timing(fastcsv.frictionless_report(str(path), SMALL))


def test_supported_files_do_not_use_frictionless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _Spy(monkeypatch)
    for name in sorted(HAND_CASES):
        if name in {"empty file", "only blank lines", "header then blank lines", "blank first line"}:
            continue
        fastcsv.validate_csv(str(_write(tmp_path, HAND_CASES[name])), SMALL)
        assert spy.calls == 0, name
    for path in sorted(STANDARDS.glob("*.json")):
        assert fastcsv.unsupported_reason(json.loads(path.read_text())) is None, path.name


def test_invalid_schema_raises_like_frictionless(tmp_path: Path) -> None:
    import frictionless

    schema = {"fields": [{"name": "x", "type": "integer", "constraints": {"pattern": "[0-9]"}}]}
    path = _write(tmp_path, "x\n1\n")
    with pytest.raises(frictionless.FrictionlessException):
        fastcsv.frictionless_report(str(path), schema)
    with pytest.raises(frictionless.FrictionlessException):
        fastcsv.validate_csv(str(path), schema)


# Extra errors


def _extra(row: int | None, cell: str = "=1") -> dict:
    error = {"type": "csv-injection", "title": "CSV injection", "note": "n", "message": "m", "tags": ["#table", "#row", "#cell"]}
    if row is not None:
        error.update(rowNumber=row, cell=cell, fieldNumber=6, fieldName="note")
    return error


def test_extra_errors_are_merged_in_row_order(tmp_path: Path) -> None:
    path = _write(tmp_path, "code,period,count,pct,flag,NOTE\n" + GOOD + "S12000033,2024-25,x,1,true,=1\n" + GOOD)
    plain = fastcsv.validate_csv(str(path), SMALL)
    merged = fastcsv.validate_csv(str(path), SMALL, extra_errors=iter([_extra(4), _extra(3), _extra(None), _extra(2)]))
    types = [(e["type"], e.get("rowNumber")) for e in merged["tasks"][0]["errors"]]
    assert types == [
        ("incorrect-label", None),
        ("csv-injection", None),
        ("csv-injection", 2),
        ("type-error", 3),
        ("csv-injection", 3),
        ("primary-key", 4),
        ("csv-injection", 4),
    ]
    assert merged["tasks"][0]["stats"]["errors"] == len(types) == plain["tasks"][0]["stats"]["errors"] + 4
    assert merged["stats"]["errors"] == plain["stats"]["errors"] + 4
    assert merged["valid"] is False and merged["tasks"][0]["valid"] is False


def test_extra_errors_make_a_valid_file_invalid(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER + GOOD)
    assert fastcsv.validate_csv(str(path), SMALL, extra_errors=[])["valid"] is True
    report = fastcsv.validate_csv(str(path), SMALL, extra_errors=[_extra(2)])
    assert report["valid"] is False
    assert report["stats"]["errors"] == report["tasks"][0]["stats"]["errors"] == 1


# Generated files


def _pattern_value(pattern: str, rnd: random.Random, i: int) -> str:
    year = 1990 + i % 30
    return {
        "S12[0-9]{6}": f"S12{i // 30:06d}",
        "[0-9]{4}-[0-9]{2}": f"{year}-{(year + 1) % 100:02d}",
        "[0-9]{4}": f"{year}",
        "[0-9]{4}-(0[1-9]|1[0-2])": f"{year}-{rnd.randint(1, 12):02d}",
        "[0-9]{4}-Q[1-4]": f"{year}-Q{rnd.randint(1, 4)}",
    }.get(pattern, "x")


def _valid_cell(field: dict, rnd: random.Random, i: int) -> str:
    c = field.get("constraints", {})
    if not c.get("required") and rnd.random() < 0.05:
        return ""
    kind = field["type"]
    if kind == "string":
        return _pattern_value(c.get("pattern", ""), rnd, i)
    if kind == "boolean":
        return rnd.choice(["true", "false"])
    low, high = c.get("minimum", 0), c.get("maximum", 20000)
    if kind == "integer":
        return str(rnd.randint(int(low), int(high)))
    value = rnd.uniform(low, high)
    return rnd.choice([f"{value:.0f}", f"{value:.1f}", f"{value:.2f}", str(high), str(low)])


TRICKY = [
    "", " ", "abc", "1.0", "1e3", "NaN", "inf", "-inf", "-0", "+5", "007", " 5", "5 ", "1,000", "1 000",
    "1_000", "١٢", "-1", "101", "100", "100.0", "100.001", "99.999", ".5", "5.", "true", "True", "yes",
    "1", "0", "S12000036", "s12000036", "S1200003", "2024-25", "2024-2025", "2024-Q5", "2024-13",
    "a\nb", 'say "hi"', "=1+2", "1" * 25, "\t5", "£5", "50%",
]

GENERATED_STANDARDS = [
    "annual-return-charter",
    "visitor-levy",
    "hl1-homelessness",
    "council-tax-reduction",
    "temporary-accommodation-snapshot",
    "school-estate",
]


def _generated_case(seed: int) -> tuple[dict, str, int]:
    rnd = random.Random(seed)
    schema = _standard(GENERATED_STANDARDS[seed % len(GENERATED_STANDARDS)])
    if rnd.random() < 0.3:
        schema["fields"][0]["constraints"]["enum"] = ["S12000000", "S12000001", "S12000002", "S12000003"]
    fields = schema["fields"]
    names = [f["name"] for f in fields]
    n_rows = rnd.choice([0, 1, 2, 5, 40, 99, 100, 101, 150, 230, 400, 700])
    rate = rnd.choice([0.0, 0.002, 0.02, 0.1, 0.3])
    rows: list[list[str] | None] = []
    for i in range(n_rows):
        row = [_valid_cell(f, rnd, i) for f in fields]
        if rnd.random() < rate:
            what = rnd.random()
            if what < 0.55:
                row[rnd.randrange(len(row))] = rnd.choice(TRICKY)
            elif what < 0.65 and rows:
                previous = rnd.choice(rows)
                row = list(previous) if previous else row
            elif what < 0.7:
                for p in schema["primaryKey"]:
                    row[names.index(p)] = ""
            elif what < 0.78:
                row = row[: rnd.randrange(len(row))]
            elif what < 0.84:
                row = row + ["x"] * rnd.randint(1, 3)
            elif what < 0.9:
                row = None  # a blank line
            elif what < 0.95:
                row = [""] * len(row)
            else:
                row[0] = row[0].lower()
        rows.append(row)
    labels = list(names)
    if rnd.random() < 0.15:
        what = rnd.randrange(5)
        if what == 0:
            labels[1] = labels[1].upper()
        elif what == 1:
            labels.pop()
        elif what == 2:
            labels.append("extra")
        elif what == 3:
            labels[2] = labels[0]
        else:
            labels[3] = ""
    quoting = rnd.choice([csv.QUOTE_MINIMAL] * 4 + [csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC])
    terminator = rnd.choice(["\n", "\n", "\r\n"])
    out = io.StringIO()
    writer = csv.writer(out, quoting=quoting, lineterminator=terminator)
    writer.writerow(labels)
    for row in rows:
        if row is None:
            out.write(terminator)
        else:
            writer.writerow(row)
    text = out.getvalue()
    if rnd.random() < 0.2:
        text = text[: -len(terminator)] if text.endswith(terminator) else text
    if rnd.random() < 0.2:
        text = "\ufeff" + text
    limit = rnd.choice([1000, 1000, 1000, 25, 3, 1])
    return schema, text, limit


@pytest.mark.parametrize("seed", range(75))
def test_generated_files(tmp_path: Path, seed: int) -> None:
    schema, text, limit = _generated_case(seed)
    _assert_same(_write(tmp_path, text), schema, limit_errors=limit)


@pytest.mark.parametrize("seed", range(75, 125))
def test_generated_files_small_blocks(tmp_path: Path, seed: int, small_blocks: None) -> None:
    schema, text, limit = _generated_case(seed)
    _assert_same(_write(tmp_path, text), schema, limit_errors=limit)


def test_larger_file_with_default_blocks(tmp_path: Path) -> None:
    """Several default-sized blocks; duplicate keys and errors across them."""
    rnd = random.Random(7)
    schema = _standard("annual-return-charter")
    rows = []
    for i in range(32000):
        row = [f"S12{i // 40:06d}", f"{1985 + i % 40}-{(1986 + i % 40) % 100:02d}"]
        row += [str(rnd.randint(0, 900)), f"{rnd.randint(0, 1000) / 10}", f"{rnd.randint(5000, 15000) / 100}"]
        row += [f"{rnd.randint(0, 1000) / 10}", f"{rnd.randint(0, 1000) / 10}", str(rnd.randint(0, 900))]
        row += [f"{rnd.randint(0, 900) / 10}" for _ in range(3)] + [f"{rnd.randint(0, 1000) / 10}"]
        rows.append(",".join(row))
    for i in (3, 17000, 17001, 31000):
        rows[i] = rows[i].replace(",", ",x", 1)
    rows[25000] = rows[10]
    rows[31990] = rows[10]
    text = ",".join(f["name"] for f in schema["fields"]) + "\n" + "\n".join(rows) + "\n"
    report = _assert_same(_write(tmp_path, text), schema)
    assert report["tasks"][0]["stats"]["rows"] == 32000
    assert [e["type"] for e in report["tasks"][0]["errors"]].count("primary-key") == 2


@pytest.mark.parametrize("kind", ["integer", "number"])
def test_blank_required_figure_as_the_last_cell_of_a_block(tmp_path: Path, kind: str) -> None:
    """A blank required figure is an error wherever it sits: the only row, the
    row right after a bad cell of its column, a one-row block after the sample."""
    schema = {"fields": [{"name": "code", "type": "string"},
                         {"name": "count", "type": kind, "constraints": {"required": True, "minimum": 0}}]}
    bodies = {
        "one row": "code,count\nS12000036,\n",
        "one row, no newline": "code,count\nS12000036,",
        "after a bad cell": "code,count\nS12000036,x\nS12000033,\n",
        "one-row block after the sample": "code,count\n" + "S12000036,1\n" * 99 + "S12000033,\n",
    }
    for name, body in bodies.items():
        report = _assert_same(_write(tmp_path, body), schema)
        errors = report["tasks"][0]["errors"]
        assert errors[-1]["type"] == "constraint-error" and errors[-1]["cell"] == "", name
