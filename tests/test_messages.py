"""The plain-language catalogue (submissions/messages.py): every error type
the validator, intake and the platform's own checks emit, made by validating
small files against the real standards, gets a message in English and in
Scottish Gaelic that names the row and the column's title, shows the value
and says what to do, with none of Frictionless's jargon."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from ckanext.lgdp.submissions import fastcsv, intake, messages, reports
from tests.conftest import COUNCIL_A_GSS, standard

pytestmark = [pytest.mark.usefixtures("with_plugins")]

JARGON = ('constraint "', "/default", "^", "\\d", "[0-9]", "{4}", "fieldName", "position \"", 'type is "',
          "None", "enum", "minLength", "maxLength", "pattern")
CTAS_HEADER = ("gss_code,financial_year,chargeable_dwellings,net_collectable_gbp,"
               "collected_by_year_end_gbp,in_year_collection_rate_pct")


def ctas(council: str = COUNCIL_A_GSS, period: str = "2023-24") -> dict:
    """The Council Tax Collection standard, narrowed as jobs.submission_schema
    narrows it for Aberdeen City's 2023-24 submission."""
    schema = copy.deepcopy(standard("council-tax-collection.v1"))
    schema["fields"][0]["constraints"]["enum"] = [council]
    schema["fields"][1]["constraints"]["enum"] = [period]
    return schema


def catalogue(schema: dict) -> messages.Catalogue:
    return messages.Catalogue(schema, council=(COUNCIL_A_GSS, "Aberdeen City"), period="2023-24")


def errors_of(tmp_path: Path, text: str, schema: dict, name: str = "upload.csv") -> list[dict]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    report = fastcsv.validate_csv(str(path), schema, extra_errors=intake.formula_errors(str(path), schema))
    return [e for task in report["tasks"] for e in task["errors"]]


def intake_errors(tmp_path: Path) -> list[dict]:
    """Intake's refusals, stored as reports.problem_report stores them."""
    files = {
        "big.csv": b"a,b\n1,2\n" * 200,
        "notes.pdf": b"%PDF-1.4",
        "empty.csv": b"",
        "page.csv": b"<!doctype html><html><body>Sign in</body></html>",
        "latin.csv": CTAS_HEADER.encode() + b"\nS12000033,2023-24,Caf\xe9,1,1,1\n",
        "png.csv": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
        "blank-first.csv": b"\n" + CTAS_HEADER.encode() + b"\n",
        "semicolons.csv": CTAS_HEADER.replace(",", ";").encode() + b"\n",
        "old.xls": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "Workbook".encode("utf-16-le") + b"\x00" * 512,
        "text.xlsx": b"not a workbook at all\n",
    }
    limited = {
        "wide.csv": (",".join(f"c{i}" for i in range(30)).encode() + b"\n", intake.Limits(columns=12)),
        "long.csv": (b"a,b\n1," + b"x" * 300 + b"\n", intake.Limits(cell_chars=100)),
        "many.csv": (b"a,b\n" + b"1,2\n" * 20, intake.Limits(rows=10)),
    }
    found = []
    for name, content in [*files.items(), *limited.items()]:
        limits = intake.NO_LIMITS
        if isinstance(content, tuple):
            content, limits = content
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(intake.IntakeError) as raised:
            intake.inspect_upload(str(path), name, max_bytes=1000, limits=limits)
        e = raised.value
        found.extend(reports.problem_report(e.code, e.message, e.details)["tasks"][0]["errors"])
    return found


def all_errors(tmp_path: Path) -> list[tuple[dict, dict]]:
    """(error, schema) for every error type, from real validations."""
    out: list[tuple[dict, dict]] = []
    schema = ctas()
    bad_cells = (
        CTAS_HEADER + ",\n"
        + 'S12000034,2023/24,"110,000",£125000000,120000000,96%,see note\n'
        + "S12000033,2023-24,12.5k,-5,,101\n"
        + "S12000033,2023-24,1.5,x,=SUM(A1),1 000\n"
        + "s12000033,2022-23,n/a,\"1,5\",1,1\n"
        + "Aberdeen City,2024/2025,1,1,1,1\n"
        + "S12000033,2023-24,1,1,1\n"
        + ",,,,,,\n"
    )
    out += [(e, schema) for e in errors_of(tmp_path, bad_cells, schema)]
    header = ("gss_code,financial_year,dwellings,net_collectable_gbp,net_collectable_gbp,\n"
              "S12000033,2023-24,1,1,1,1\n")
    out += [(e, schema) for e in errors_of(tmp_path, header, schema, "header.csv")]
    short_header = "gss_code,financial_year,chargeable_dwellings\nS12000033,2023-24,1\n"
    out += [(e, schema) for e in errors_of(tmp_path, short_header, schema, "short.csv")]
    # the other constraint kinds and field types, on real fields of real standards
    levy = copy.deepcopy(standard("visitor-levy.v1"))
    kinds = copy.deepcopy(standard("council-tax-collection.v1"))
    fields = kinds["fields"]
    fields[0]["constraints"] = {"required": True, "minLength": 9, "maxLength": 9}
    fields[1]["constraints"] = {"enum": [f"{y}-{(y + 1) % 100:02d}" for y in range(2015, 2025)]}
    fields[2]["constraints"] = {"unique": True}
    fields[3]["constraints"] = {"maximum": 10}
    fields[4].update(type="date")
    fields[5].update(type="year")
    kinds["primaryKey"] = []
    text = (CTAS_HEADER + "\nS1200003,2013-14,1,10,31/03/2024,twenty\nS120000333,2023-24,1,11,2024-13-01,2024\n")
    out += [(e, kinds) for e in errors_of(tmp_path, text, kinds, "kinds.csv")]
    more = copy.deepcopy(kinds)
    more["fields"][4].update(type="datetime")
    more["fields"][5].update(type="yearmonth")
    more["fields"][0]["constraints"] = {"maxLength": 1}
    more["fields"][3].update(type="time", constraints={})
    text = CTAS_HEADER + "\nS1,2023-24,1,noon,yesterday,March\n"
    out += [(e, more) for e in errors_of(tmp_path, text, more, "more.csv")]
    boolean = next(f for f in levy["fields"] if f["type"] == "boolean")
    names = [f["name"] for f in levy["fields"]]
    row = ["S12000033", "2024-25"] + ["1"] * (len(names) - 2)
    row[names.index(boolean["name"])] = "maybe"
    out += [(e, levy) for e in errors_of(tmp_path, ",".join(names) + "\n" + ",".join(row) + "\n", levy, "levy.csv")]
    # a file with the column names only
    out.append((reports.no_rows_error(), schema))
    out += [(e, schema) for e in intake_errors(tmp_path)]
    return out


EXPECTED_TYPES = {
    "type-error", "constraint-error", "primary-key", "blank-row", "extra-cell", "missing-cell",
    "blank-label", "duplicate-label", "incorrect-label", "missing-label", "extra-label", "csv-injection",
    "no-data-rows", "too-large", "unsupported-format", "empty-file", "html-not-csv", "encoding",
    "binary-not-csv", "header-missing", "delimiter", "xlsx-invalid", "unique-error",
    "too-many-columns", "cell-too-long", "too-many-rows",
}
CONSTRAINT_KINDS = {"required", "minimum", "maximum", "pattern", "enum", "minLength", "maxLength"}


def _in(app, lang: str, fn):
    with app.flask_app.test_request_context("/", environ_overrides={"CKAN_LANG": lang}):
        return fn()


def test_every_error_type_has_a_plain_message_in_english_and_gaelic(app, tmp_path):
    found = all_errors(tmp_path)
    types = {e["type"] for e, _ in found}
    assert EXPECTED_TYPES <= types, EXPECTED_TYPES - types
    kinds = {e["note"].split('"')[1] for e, _ in found if e["type"] == "constraint-error"}
    assert CONSTRAINT_KINDS <= kinds, CONSTRAINT_KINDS - kinds
    field_types = {e["note"].split('"')[1].split("/")[0] for e, _ in found if e["type"] == "type-error"}
    assert {"integer", "number", "boolean", "date", "datetime", "time", "year", "yearmonth"} <= field_types

    problems = []
    for error, schema in found:
        english = _in(app, "en", lambda: catalogue(schema).summary(error))
        gaelic = _in(app, "gd", lambda: catalogue(schema).summary(error))
        for lang, text in (("en", english), ("gd", gaelic)):
            bad = [j for j in JARGON if j in text]
            if bad or len(text) < 20:
                problems.append(f"{lang} {error['type']} {error.get('note')!r}: {text!r} ({bad})")
        if english == gaelic:
            problems.append(f"not translated: {error['type']} {english!r}")
        row = error.get("rowNumber")
        if row:
            assert english.startswith(f"Row {row}") and gaelic.startswith(f"Ràgh {row}"), (english, gaelic)
    assert not problems, "\n".join(problems)


def _messages(app, tmp_path, text: str, lang: str = "en", schema: dict | None = None) -> list[str]:
    schema = schema or ctas()
    errors = errors_of(tmp_path, text, schema)
    return _in(app, lang, lambda: [catalogue(schema).summary(e) for e in errors])


def test_the_usual_mistakes_get_their_own_words(app, tmp_path):
    got = _messages(app, tmp_path, CTAS_HEADER + ",\n"
                    + 'S12000034,2025/26,"1,234",£125000000,120000000,96%,see note\n'
                    + "S12000033,2023-24,12.5k,-5,,101\n")
    assert got == [
        "Row 1 (column names), column 7: a column with no name after the last column of the standard, "
        "which has 6 columns: delete it.",
        "Row 2, Council GSS code: 'S12000034' is the code of Aberdeenshire: this submission is for Aberdeen City, "
        "whose code is S12000033. Upload Aberdeenshire's figures to its own submission.",
        "Row 2, Financial year: '2025/26' should be written like 2025-26.",
        "Row 2, Financial year: '2025/26' is another period: this submission is for 2023-24. Upload the figures "
        "for 2025/26 to that period's submission.",
        "Row 2, Chargeable dwellings: '1,234' should be written without commas: 1234.",
        "Row 2, Net collectable amount (GBP): '£125000000' should be written without the £ sign: 125000000.",
        "Row 2, In-year collection rate (%): '96%' should be written without the % sign: 96.",
        "Row 2, column 7: 'see note' is in column 7, after the last column of the standard, which has 6 columns: "
        "delete it (a note about the file goes in the upload's note).",
        "Row 3, Chargeable dwellings: '12.5k' should be the whole figure, not in thousands or millions: 12500.",
        "Row 3, Net collectable amount (GBP): '-5' cannot be negative: the lowest value allowed is 0.",
        "Row 3, Collected by year end (GBP): the cell is empty: the standard needs a value here.",
        "Row 3, In-year collection rate (%): '101' is over 100: a percentage is written from 0 to 100.",
    ]
    gaelic = _messages(app, tmp_path, CTAS_HEADER + "\nS12000034,2025/26,\"1,234\",1,1,1\n", lang="gd")
    # the standard's titles and the councils' names are as the standard and the reference data have them
    assert gaelic[0] == ("Ràgh 2, Council GSS code: 's e 'S12000034' an còd aig Aberdeenshire: tha an tagradh seo "
                         "airson Aberdeen City, aig a bheil an còd S12000033. Luchdaich suas figearan Aberdeenshire "
                         "dhan tagradh aice fhèin.")
    assert gaelic[1] == "Ràgh 2, Financial year: '2025/26': sgrìobh e mar 2025-26."
    assert gaelic[3] == "Ràgh 2, Chargeable dwellings: '1,234': sgrìobh e gun chromagan: 1234."


def test_figures_beyond_what_the_platform_stores(app, tmp_path):
    from ckanext.lgdp.register.standards import with_storage_bounds

    schema = with_storage_bounds(ctas())
    got = _messages(app, tmp_path, CTAS_HEADER + "\nS12000033,2023-24," + "9" * 40 + ",1e999999,inf,1\n",
                    schema=schema)
    assert got == [
        "Row 2, Chargeable dwellings: '" + "9" * 40 + "' is far larger than any figure of a return, and the "
        "platform cannot store it: check the figure.",
        "Row 2, Net collectable amount (GBP): '1e999999' is far larger than any figure of a return, and the "
        "platform cannot store it: check the figure.",
        "Row 2, Collected by year end (GBP): 'inf' is far larger than any figure of a return, and the platform "
        "cannot store it: check the figure.",
    ]


def test_header_rows_and_keys_in_plain_words(app, tmp_path):
    got = _messages(app, tmp_path, "gss_code,financial_year,dwellings,net_collectable_gbp,net_collectable_gbp\n"
                    "S12000033,2023-24,1,1,1\nS12000033,2023-24,1,1,1\n\n")
    assert "Row 1 (column names), column 3: the column is named 'dwellings', but the standard has " \
           "chargeable_dwellings (Chargeable dwellings) here: use the standard's column names, in its order." in got
    assert "Row 1 (column names), column 5: the column is named 'net_collectable_gbp' like column 4: it should " \
           "be collected_by_year_end_gbp (Collected by year end (GBP))." in got
    assert "Row 1 (column names), column 6: the file has no column in_year_collection_rate_pct (In-year " \
           "collection rate (%)): every column of the standard is needed, in its order." in got
    assert "Row 3: this row repeats row 2 (Council GSS code S12000033, Financial year 2023-24): there can be " \
           "only one row for each Council GSS code and Financial year. Delete the repeated row or correct it." in got
    assert "Row 4: the row is empty: delete it." in got
    spelled = _messages(app, tmp_path, CTAS_HEADER + "\nAberdeen City,2023-24,1,1,1,1\ns12000033,2023-24,1,1,1,1\n")
    assert "Row 2, Council GSS code: 'Aberdeen City' is a council's name: write its GSS code, S12000033." in spelled
    assert "Row 3, Council GSS code: 's12000033' should be written in capitals: S12000033." in spelled


def test_long_cells_are_shortened_in_messages_and_answers(app, tmp_path):
    cell = "x" * 5_000_000
    errors = errors_of(tmp_path, CTAS_HEADER + f"\nS12000033,2023-24,{cell},1,1,1\n", ctas())
    [error] = [e for e in errors if e["type"] == "type-error"]
    text = _in(app, "en", lambda: catalogue(ctas()).summary(error))
    assert len(text) < 400 and "x" * messages.CELL_CHARS + "…" in text
    report = {"tasks": [{"errors": errors}]}
    listed = _in(app, "en", lambda: reports.row_errors(report, catalogue=catalogue(ctas())))
    assert sum(len(str(v)) for e in listed for v in e.values()) < 5000
    short = reports.shortened(report)
    assert len(str(short)) < 5000 and short["tasks"][0]["errors"][0]["type"] == "type-error"
    assert len(report["tasks"][0]["errors"][0]["cell"]) == 5_000_000, "the stored report is unchanged"


def test_a_fraction_where_a_percentage_is_wanted_is_queried(app, tmp_path):
    from ckanext.lgdp.submissions import jobs

    path = tmp_path / "fraction.csv"
    path.write_text(CTAS_HEADER + "\nS12000033,2023-24,1,1,1,0.96\n", encoding="utf-8")
    [query] = _in(app, "en", lambda: jobs.percentage_queries(str(path), ctas()))
    assert query["id"] == "fraction-in_year_collection_rate_pct" and query["explanation"] is None
    assert query["message"] == ("In-year collection rate (%) is 0.96: percentages are written from 0 to 100, so "
                                "this reads as under 1%. If it means 96%, write 96; otherwise explain it")
    path.write_text(CTAS_HEADER + "\nS12000033,2023-24,1,1,1,96\n", encoding="utf-8")
    assert _in(app, "en", lambda: jobs.percentage_queries(str(path), ctas())) == []


def test_intake_refusals_and_notes_speak_the_language_of_the_upload(app, tmp_path):
    """Intake's own sentences (each refusal, and the notes on a file it
    reads) go through the catalogue: a Gaelic request gets them in Gaelic."""
    english = _in(app, "en", lambda: intake_errors(tmp_path))
    gaelic = _in(app, "gd", lambda: intake_errors(tmp_path))
    assert [e["type"] for e in english] == [e["type"] for e in gaelic]
    for en, gd in zip(english, gaelic):
        assert en["message"] != gd["message"], en["message"]
    assert any(e["message"].startswith("The file is empty (0 bytes)") for e in english)
    assert any(e["message"].startswith("Tha am faidhle falamh (0 baidht)") for e in gaelic)

    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + CTAS_HEADER.encode() + b"\nS12000033,2023-24,1,1,1,1\n")

    def notes():
        with intake.inspect_upload(str(bom), "bom.csv", max_bytes=10_000) as found:
            return found.notes

    assert _in(app, "en", notes) == ["UTF-8 byte order mark (BOM) removed"]
    assert _in(app, "gd", notes) == ["chaidh comharra òrdugh nam baidht UTF-8 (BOM) a thoirt air falbh"]
