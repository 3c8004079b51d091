"""Every valid file consolidates: what validation passes, the return's central
table holds and gives back; what it cannot hold fails validation (the same
constraint error from both validators); and a consolidation that fails all
the same is shown on the submission, announced, audited, retried and swept."""
from __future__ import annotations

import copy
import csv
import io
import json
import os
import random
import re
import tempfile
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from frictionless import Schema

from ckanext.lgdp.register import standards
from ckanext.lgdp.repository import consolidate
from ckanext.lgdp.submissions import fastcsv, intake
from tests.conftest import (
    COUNCIL_A_GSS, STANDARDS, api, csv_bytes, ctas_rows, make_world, push, transition,
)

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]

TABLE = "council-tax-collection--all-councils"


@pytest.fixture
def world():
    return make_world()


# ---------------------------------------------------------------- the property

# Edge values of each type, valid and not: every one that validates must be
# stored and read back as frictionless read it.
EDGES: dict[str, list[str]] = {
    "integer": ["0", "-0", "+7", "007", " 12 ", "1_000", "\u0663", "-1", "9223372036854775807",
                "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "1" * 40,
                "1.0", "1e3", "", "x", "12,500"],
    "number": ["0", "-0", "0.1", "-0.0", "96.2", "100", "100.0000001", ".5", "5.", " 3.5 ", "1_000.25",
               "1e300", "-1e300", "1e301", "-1e301", "1e999999", "-1e999999", "inf", "-inf", "nan", "NaN",
               "Infinity", "sNaN", "5e-324", "1e-400", "123456789012345678901234567890.5", "\u0663.\u0665",
               "", "£5", "5%"],
    "string": ["", "a", "\u00e9\u00e8 \u00c0", "\U0001f600", "two\nlines", 'a "quote"', "back\\slash", "\\N",
               "  padded  ", "x" * 5000, "\u2028", "=SUM(A1)", "S12000033", "2023-24"],
    "boolean": ["true", "True", "TRUE", "1", "false", "False", "0", "yes", "", " true"],
}


def _specs() -> list[dict[str, Any]]:
    """Every distinct field spec (type and constraints) of the standards."""
    seen: dict[str, dict[str, Any]] = {}
    for path in sorted(STANDARDS.glob("*.json")):
        for field in json.loads(path.read_text("utf-8"))["fields"]:
            spec = {k: field[k] for k in ("type", "constraints", "format", "trueValues", "falseValues") if k in field}
            seen.setdefault(json.dumps(spec, sort_keys=True), spec)
    return list(seen.values())


def _schema() -> dict[str, Any]:
    fields = [{"name": f"f{i}", **spec} for i, spec in enumerate(_specs())]
    for i, field in enumerate(fields):
        if field["type"] == "number" and i % 2:
            field["lgdp:countable"] = True  # a rate per 1,000 of some of them
    return {"fields": fields}


def _valid_value(field: dict[str, Any], rng: random.Random) -> str:
    pattern = (field.get("constraints") or {}).get("pattern")
    if pattern:
        return next(c for c in (COUNCIL_A_GSS, "2023-24", "2023-Q1", "2023-04", "2023", "2023-W05", "2023-04-01")
                    if re.fullmatch(pattern, c))
    return {"integer": str(rng.randint(0, 10**6)), "number": f"{rng.random() * 100:.2f}",
            "boolean": "true", "string": "text"}[field["type"]]


def _cases(schema: dict[str, Any]) -> list[list[list[str]]]:
    """Files (rows after the header): each edge value as the only row, as the
    last row after a valid one, and mixed at random (seeded) in longer files."""
    rng = random.Random(15)
    fields = schema["fields"]
    base = [_valid_value(f, rng) for f in fields]
    files = []
    for i, field in enumerate(fields):
        for value in EDGES[field["type"]]:
            row = [*base]
            row[i] = value
            files.append([row])
            files.append([[_valid_value(f, rng) for f in fields], row])
    for _ in range(30):
        files.append([[rng.choice([_valid_value(f, rng)] * 3 + EDGES[f["type"]]) for f in fields]
                      for _row in range(rng.randint(1, 5))])
    return files


def _expected(schema: dict[str, Any], csv_path: str) -> list[list[Any]]:
    """The values of a validated file as frictionless reads them."""
    fields = Schema.from_descriptor(copy.deepcopy(schema)).fields
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        records = list(csv.reader(f))[1:]
    return [[field.read_cell(cell if cell != "" else None)[0] for field, cell in zip(fields, record)]
            for record in records if record]


def _same(kind: str, stored: Any, expected: Any) -> bool:
    if expected is None:
        return stored is None
    if kind == "number":  # stored as the nearest double, as consolidation reads it
        return stored is not None and float(Decimal(str(stored))) == float(expected)
    if kind == "integer":
        return stored is not None and int(stored) == expected
    return stored == expected


def _errors(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(e["type"], e.get("rowNumber"), e.get("fieldName"), e.get("note"))
            for e in report["tasks"][0]["errors"]]


STORAGE_NOTES = {f'constraint "{name}" is "{value}"' for low, high in standards.STORAGE_BOUNDS.values()
                 for name, value in (("minimum", low), ("maximum", high))}


def _bound_errors(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The errors the storage bounds add (the validators' agreement on the
    rest is tested on its own)."""
    return [e for e in _errors(report) if e[3] in STORAGE_NOTES]


def test_every_file_that_validates_is_consolidated_and_read_back_equal(app, world):
    people = world["people"]
    schema = _schema()
    bounded = standards.with_storage_bounds(copy.deepcopy(schema))
    table = consolidate.ensure_table(world["return"])
    resource_id = consolidate.ensure_resource(table, 1, schema)
    fields = consolidate.columns(schema)
    kinds = {f["name"]: f["type"] for f in schema["fields"]}
    expected_rows: dict[str, list[list[Any]]] = {}
    counts = {"valid": 0, "invalid": 0, "refused": 0}
    with tempfile.TemporaryDirectory() as folder:
        for n, rows in enumerate(_cases(schema)):
            path = os.path.join(folder, f"case-{n}.csv")
            with open(path, "wb") as f:
                f.write(csv_bytes([[fl["name"] for fl in schema["fields"]], *rows]))
            try:
                found = intake.inspect_upload(path, "case.csv", max_bytes=10**8)
            except intake.IntakeError:
                counts["refused"] += 1
                continue
            try:
                report = fastcsv.validate_csv(found.csv_path, bounded)
                if len(rows) == 1:  # the storage bounds give the same errors from frictionless
                    reference = fastcsv.frictionless_report(found.csv_path, bounded)
                    assert _bound_errors(report) == _bound_errors(reference), rows
                if not report["valid"]:
                    counts["invalid"] += 1
                    continue
                counts["valid"] += 1
                period = f"case-{n:04d}"
                expected_rows[period] = _expected(bounded, found.csv_path)
                stored = consolidate.enrich(consolidate.read_rows(found.csv_path, schema), schema, COUNCIL_A_GSS,
                                            "Aberdeen City", period, consolidate.datetime.date(2023, 4, 1),
                                            "case", consolidate.datetime.datetime(2024, 6, 1))
                consolidate.replace_rows(resource_id, COUNCIL_A_GSS, period, stored, fields)  # never fails
            finally:
                found.cleanup()
    assert counts["valid"] > 200 and counts["invalid"] > 100, counts

    records = api(app, "datastore_search", headers=people["x_editor"]["headers"], resource_id=resource_id,
                  limit=32000, sort="period, _id")["result"]["records"]
    got: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        got.setdefault(record["period"], []).append(record)
    assert sorted(got) == sorted(expected_rows)
    for period, rows in expected_rows.items():
        assert len(got[period]) == len(rows), period
        for record, values in zip(got[period], rows):
            for field, value in zip(schema["fields"], values):
                assert _same(kinds[field["name"]], record[field["name"]], value), (period, field, record[field["name"]], value)


@pytest.mark.parametrize("field,value", [
    ("chargeable_dwellings", "1" * 40),
    ("collected_by_year_end_gbp", "inf"),
    ("net_collectable_gbp", "1e999999"),
])
def test_values_the_table_cannot_hold_fail_validation(app, world, live_worker, run_worker, field, value):
    people = world["people"]
    _accept(app, world, "2022-23")
    run_worker("default")
    before = _rows(app, people["x_editor"])
    rows = ctas_rows(period="2023-24")
    rows[1][rows[0].index(field)] = value
    answer = push(app, people["a_editor"], csv_bytes(rows), period="2023-24", wait="true", status=409)["error"]
    assert answer["status"] == "invalid"
    [error] = answer["errors"]
    assert (error["row"], error["field"], error["type"]) == (2, field, "constraint-error")
    assert error["cell"] == value and "maximum" in error["message"]
    assert _rows(app, people["x_editor"]) == before  # the accepted rows are unchanged


# ---------------------------------------------------------------- a failure is never silent


def _accept(app, world, period):
    people = world["people"]
    sub = push(app, people["a_editor"], csv_bytes(ctas_rows(period=period)), period=period, wait="true")["result"]["submission"]
    for q in api(app, "lgdp_upload_list", headers=people["a_editor"]["headers"], id=sub["name"])["result"][0]["queries"]:
        api(app, "lgdp_submission_explain", headers=people["a_editor"]["headers"], id=sub["name"],
            query_id=q["id"], explanation="Checked")
    transition(app, people["a_admin"], sub["name"], "sign_off")
    transition(app, people["a_editor"], sub["name"], "submit")
    transition(app, people["x_editor"], sub["name"], "accept")
    return sub["name"]


def _resource_id(app, who):
    return api(app, "package_show", headers=who["headers"], id=TABLE)["result"]["resources"][0]["id"]


def _rows(app, who):
    records = api(app, "datastore_search", headers=who["headers"], resource_id=_resource_id(app, who),
                  sort="council_gss, period")["result"]["records"]
    return [{k: v for k, v in r.items() if k != "_id"} for r in records]


def _rename(resource_id: str, old: str, new: str) -> None:
    from ckanext.datastore.backend.postgres import get_write_engine, identifier

    with get_write_engine().begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE {identifier(resource_id)} RENAME COLUMN {identifier(old)} TO {identifier(new)}"))


def test_a_failed_consolidation_is_shown_announced_retried_and_swept(app, world, live_worker, run_worker):
    people = world["people"]
    first = _accept(app, world, "2022-23")
    run_worker("default")
    shown = api(app, "package_show", headers=people["x_editor"]["headers"], id=first)["result"]
    assert shown["consolidation_status"] == "consolidated" and shown["consolidated_at"]
    before = _rows(app, people["x_editor"])
    assert [r["period"] for r in before] == ["2022-23"]

    # the table cannot be written (here: a column renamed under it)
    resource_id = _resource_id(app, people["x_editor"])
    _rename(resource_id, "collected_by_year_end_gbp", "collected_elsewhere")
    name = _accept(app, world, "2023-24")
    assert api(app, "package_show", headers=people["x_editor"]["headers"], id=name)["result"]["consolidation_status"] == "pending"
    run_worker("default")

    # the submission says so, in the API and on its page
    shown = api(app, "package_show", headers=people["x_editor"]["headers"], id=name)["result"]
    assert shown["submission_status"] == "accepted" and shown["consolidation_status"] == "failed"
    problem = shown["consolidation_problem"]
    assert problem.startswith("Accepted, not consolidated: the central table could not be written")
    assert "collected_by_year_end_gbp" in problem
    page = app.get(f"/submission/{name}", headers=people["x_editor"]["headers"]).get_data(as_text=True)
    assert "Accepted, not consolidated" in page and "Try again" in page
    council_page = app.get(f"/submission/{name}", headers=people["a_editor"]["headers"]).get_data(as_text=True)
    assert "Accepted, not consolidated" in council_page and "Try again" not in council_page

    # the agencies of the return and the coordinating body are told
    def failures(who):
        events = api(app, "lgdp_event_list", headers=who["headers"], data_return="council-tax-collection")["result"]
        return [e for e in events if e["type"] == "submission.consolidation_failed"]

    for who in ("x_editor", "r_editor", "coordinator"):
        [event] = failures(people[who])
        assert event["subject"]["name"] == name and event["data"]["problem"] == problem
    assert failures(people["y_editor"]) == []

    # the earlier rows are unchanged; the new one is not there
    _rename(resource_id, "collected_elsewhere", "collected_by_year_end_gbp")
    assert _rows(app, people["x_editor"]) == before
    _rename(resource_id, "collected_by_year_end_gbp", "collected_elsewhere")

    # only the owner agency and the coordinating body retry; again it fails, said once
    for who in ("a_editor", "a_admin", "r_editor", "x_member"):
        api(app, "lgdp_consolidation_retry", headers=people[who]["headers"], status=403, id=name)
    # an agency that does not ask for the return does not see the submission at all
    api(app, "lgdp_consolidation_retry", headers=people["y_editor"]["headers"], status=404, id=name)
    api(app, "lgdp_consolidation_retry", headers=people["x_editor"]["headers"], status=404, id="no-such-submission")
    again = api(app, "lgdp_consolidation_retry", headers=people["x_editor"]["headers"], status=409, id=name)
    assert again["error"]["id"] == [problem]
    assert len(failures(people["coordinator"])) == 1

    # the sweep finds it
    api(app, "lgdp_consolidation_sweep", headers=people["a_admin"]["headers"], status=403)
    api(app, "lgdp_consolidation_sweep", headers=people["x_editor"]["headers"], status=403)
    swept = api(app, "lgdp_consolidation_sweep", headers=people["coordinator"]["headers"])["result"]
    assert swept == {"consolidated": [], "failed": [{"name": name, "problem": problem}], "queued": [], "interrupted": []}

    # once the table is whole again a retry puts the row in
    _rename(resource_id, "collected_elsewhere", "collected_by_year_end_gbp")
    done = api(app, "lgdp_consolidation_retry", headers=people["x_editor"]["headers"], id=name)["result"]
    assert done["rows"] == 1 and done["submission"]["consolidation_status"] == "consolidated"
    assert "consolidation_problem" not in done["submission"] or not done["submission"]["consolidation_problem"]
    after = _rows(app, people["x_editor"])
    assert [r["period"] for r in after] == ["2022-23", "2023-24"] and after[0] == before[0]
    assert api(app, "lgdp_consolidation_sweep", headers=people["coordinator"]["headers"])["result"] == {
        "consolidated": [], "failed": [], "queued": [], "interrupted": []}

    # audited: the failure (by the platform) and the retry (by the agency's editor)
    trail = [e for e in api(app, "lgdp_audit_list", headers=people["coordinator"]["headers"])["result"]
             if e["object_id"] == shown["id"] and e["action"] == "consolidate"]
    assert [(e["from_state"], e["to_state"]) for e in reversed(trail)] == [("pending", "failed"), ("failed", "consolidated")]
    assert trail[0]["actor_name"] == people["x_editor"]["name"] and trail[-1]["reason"] == problem
