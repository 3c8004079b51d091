"""Intake checks (ckanext.lgdp.submissions.intake) against the corpus in
tests/corpus/ and a few generated files. Pure unit tests, no CKAN:

    .venv/bin/python -m pytest -q -p no:ckan -p no:ckan_fixtures -o addopts="" tests/test_intake.py
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import time
import zipfile
from pathlib import Path

import frictionless
import openpyxl
import pytest

from ckanext.lgdp.submissions import intake as intake_module
from ckanext.lgdp.submissions.intake import Intake, IntakeError, formula_errors, inspect_upload

from tests.conftest import STANDARDS  # noqa: E402 - the one path of the standards

CORPUS = Path(__file__).resolve().parent / "corpus"
STANDARD = STANDARDS / "council-tax-collection.v1.json"
MANIFEST = json.loads((CORPUS / "MANIFEST.json").read_text(encoding="utf-8"))
MAX_BYTES = 10 * 1024 * 1024


def return_schema() -> dict:
    """The standard as the caller uses it for one council and period."""
    schema = json.loads(STANDARD.read_text(encoding="utf-8"))
    fields = {f["name"]: f for f in schema["fields"]}
    fields["gss_code"]["constraints"]["enum"] = ["S12000033"]
    fields["financial_year"]["constraints"]["enum"] = ["2023-24"]
    return schema


def validate(csv_path: str, schema: dict) -> list[dict]:
    """frictionless errors, as dicts. Temporary files live outside the
    working directory, which frictionless refuses unless trusted (as
    ckanext-validation's job does)."""
    with frictionless.system.use_context(trusted=True):
        report = frictionless.validate(csv_path, schema=frictionless.Schema.from_descriptor(schema))
    return [error.to_descriptor() for task in report.tasks for error in task.errors]


def upload(entry: dict) -> tuple[str, str, int]:
    name = entry["file"] or entry["use_file"]
    return str(CORPUS / name), name, entry.get("max_bytes", MAX_BYTES)


def entry_id(entry: dict) -> str:
    return entry["file"] or f"{entry['code']}:{entry['use_file']}"


INTAKE = [e for e in MANIFEST if e["stage"] == "intake"]
PASSING = [e for e in MANIFEST if e["stage"] in ("validation", "valid")]


# ------------------------------------------------------------------ corpus


def test_corpus_is_complete():
    listed = {e["file"] for e in MANIFEST if e["file"]}
    on_disk = {p.name for p in CORPUS.iterdir()} - {"MANIFEST.json", "README.md", "make_corpus.py", "hostile.py",
                                                   "__pycache__"}
    assert listed == on_disk
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    for name in listed:
        assert f"`{name}`" in readme
    bomb = CORPUS / "zip-bomb.xlsx"
    assert bomb.stat().st_size < 200 * 1000
    assert sum(i.file_size for i in zipfile.ZipFile(bomb).infolist()) > 200 * 1024 * 1024


@pytest.mark.parametrize("entry", INTAKE, ids=entry_id)
def test_intake_errors(entry):
    path, name, max_bytes = upload(entry)
    with pytest.raises(IntakeError) as caught:
        inspect_upload(path, name, max_bytes=max_bytes)
    error = caught.value
    print(f"{name}: [{error.code} {error.status}] {error.message} {error.details}")
    assert error.code == entry["code"]
    assert error.status == entry["status"]
    assert entry["message_contains"] in error.message
    assert str(error) == error.message
    assert error.as_dict()["code"] == error.code


@pytest.mark.parametrize("entry", PASSING, ids=entry_id)
def test_passes_intake_then_validation(entry):
    path, name, max_bytes = upload(entry)
    schema = return_schema()
    result = inspect_upload(path, name, max_bytes=max_bytes)
    try:
        assert result.format in ("csv", "xlsx")
        if "notes_contain" in entry:
            assert any(entry["notes_contain"] in note for note in result.notes), result.notes
        if "rows_hint" in entry:
            assert result.rows_hint == entry["rows_hint"]
        with open(result.csv_path, "rb") as f:
            assert not f.read(3).startswith(b"\xef\xbb\xbf")
        errors = validate(result.csv_path, schema) + formula_errors(result.csv_path, schema)
        types = {e["type"] for e in errors}
        if entry["stage"] == "valid":
            assert errors == [], [e["message"] for e in errors]
        else:
            assert types == {entry["code"], *entry.get("other_codes", [])}, errors
            messages = [e["message"] for e in errors if e["type"] == entry["code"]]
            assert any(entry["message_contains"] in m for m in messages), messages
    finally:
        temporary = result.temporary
        result.cleanup()
    assert os.path.exists(path)
    if temporary:
        assert not os.path.exists(result.csv_path)


def test_workbooks_convert_to_the_same_csv_as_valid_csv():
    expected = (CORPUS / "valid.csv").read_text(encoding="utf-8")
    for name in ("valid.xlsx", "xlsx-named-csv.csv"):
        with inspect_upload(str(CORPUS / name), name, max_bytes=MAX_BYTES) as result:
            assert result.format == "xlsx"
            assert result.rows_hint == 1
            assert Path(result.csv_path).read_text(encoding="utf-8") == expected


def test_plain_csv_is_used_in_place():
    path = str(CORPUS / "valid-crlf.csv")
    result = inspect_upload(path, "valid-crlf.csv", max_bytes=MAX_BYTES)
    assert result.csv_path == path and not result.temporary and result.notes == []
    result.cleanup()
    assert os.path.exists(path)


# ------------------------------------------------------------------ formulas


def planted() -> set[tuple[int, int]]:
    entry = next(e for e in MANIFEST if e["file"] == "formulas.csv")
    return {tuple(p) for p in entry["planted"]}


def test_formula_errors_finds_exactly_the_planted_cells():
    errors = formula_errors(str(CORPUS / "formulas.csv"), return_schema())
    assert {(e["rowNumber"], e["fieldNumber"]) for e in errors} == planted()
    flagged = {e["cell"] for e in errors}
    for number in ("-5", "+3.2", "-0.5e3", "-1,234.50", "-"):
        assert number not in flagged
    assert "\t=1+2" in flagged
    by_cell = {e["cell"]: e for e in errors}
    error = by_cell["=1+1"]
    assert error["fieldName"] == "chargeable_dwellings"
    assert error["message"].startswith(
        'The cell "=1+1" in row at position "2" and field "chargeable_dwellings" at position "3"')
    assert error["cells"] == ["S12000033", "2023-24", "=1+1", "-5", "+3.2", "-0.5e3"]


def test_formula_error_has_the_shape_of_a_frictionless_cell_error(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\nx,=1\n", encoding="utf-8")
    schema = {"fields": [{"name": "a", "type": "string"}, {"name": "b", "type": "integer"}]}
    theirs = validate(str(path), schema)[0]
    ours = formula_errors(str(path), schema)[0]
    assert set(ours) == set(theirs)
    assert ours["tags"] == theirs["tags"]
    for key in ("cells", "rowNumber", "cell", "fieldName", "fieldNumber"):
        assert ours[key] == theirs[key]


def test_formula_rows_are_numbered_like_frictionless(tmp_path):
    """A formula placed in an integer column is also a frictionless type
    error in the same cell: both must name the same row and field, through
    quoted line breaks (LF and CRLF), blank lines and ragged rows."""
    text = (
        "name,count,note\r\n"
        '"two\nlines",=1,ok\r\n'
        "\r\n"
        'plain,2,"three\r\nlines\r\nhere"\r\n'
        "short,=SUM(A1)\r\n"
        "\r\n"
        "\r\n"
        'long,"=2",x,extra\r\n'
        '"a ""quoted"" name",@cmd,"y\n"\r\n'
        "last,-3+4,z\r\n"
    )
    path = tmp_path / "rows.csv"
    path.write_bytes(text.encode("utf-8"))
    schema = {"fields": [{"name": "name", "type": "string"}, {"name": "count", "type": "integer"},
                         {"name": "note", "type": "string"}]}
    theirs = {(e["rowNumber"], e["fieldNumber"]) for e in validate(str(path), schema)
              if e["type"] == "type-error"}
    ours = {(e["rowNumber"], e["fieldNumber"]) for e in formula_errors(str(path), schema)}
    assert ours == theirs == {(2, 2), (5, 2), (8, 2), (9, 2), (10, 2)}


def test_formulas_csv_rows_agree_with_frictionless():
    """Every planted cell is in a numeric column, so frictionless reports a
    type error in each (and in "-1,234.50", which it does not parse)."""
    errors = validate(str(CORPUS / "formulas.csv"), return_schema())
    type_errors = {(e["rowNumber"], e["fieldNumber"]) for e in errors if e["type"] == "type-error"}
    assert planted() <= type_errors


def test_formula_errors_limit_and_extra_cells(tmp_path):
    path = tmp_path / "many.csv"
    path.write_text("a\n" + "".join(f"=A{i},@x\n" for i in range(50)), encoding="utf-8")
    errors = formula_errors(str(path), {"fields": [{"name": "a"}]}, limit=7)
    assert len(errors) == 7
    assert errors[1]["fieldName"] == "" and errors[1]["fieldNumber"] == 2


# ------------------------------------------------------------------ CSV details


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


VALID = (CORPUS / "valid.csv").read_bytes()


@pytest.mark.parametrize("data,code", [
    (b"\xef\xbb\xbf", "empty-file"),
    (b",,,,,\r\n,,,,,\r\n", "empty-file"),
    (b"\xff\xfe" + "a,b\r\n".encode("utf-16-le"), "encoding"),
    ("a,b\r\n1,2\r\n".encode("utf-16-le"), "encoding"),
    (b"<?xml version=\"1.0\"?><rows><row/></rows>", "html-not-csv"),
    (b"  <html><body><table><tr><td>1</td></tr></table></body></html>", "html-not-csv"),
    (b"MZ\x90\x00\x03\x00\x00\x00", "binary-not-csv"),
    (b"a,b\n1,\x002\n", "binary-not-csv"),
    (b"PK\x03\x04 not really a zip", "xlsx-invalid"),
    (b'"sep=;"\na;b\n1;2\n', "delimiter"),
    (b"a|b|c\n1|2|3\n", "delimiter"),
])
def test_csv_problems(tmp_path, data, code):
    path = write(tmp_path, "upload.csv", data)
    with pytest.raises(IntakeError) as caught:
        inspect_upload(path, "upload.csv", max_bytes=MAX_BYTES)
    print(caught.value.message)
    assert caught.value.code == code


def test_a_zip_that_is_not_a_workbook_is_not_a_csv(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("return.csv", VALID)
    path = write(tmp_path, "return.csv", buffer.getvalue())
    with pytest.raises(IntakeError) as caught:
        inspect_upload(path, "return.csv", max_bytes=MAX_BYTES)
    assert caught.value.code == "binary-not-csv" and "ZIP archive" in caught.value.message
    path = write(tmp_path, "return.xlsx", buffer.getvalue())
    with pytest.raises(IntakeError) as caught:
        inspect_upload(path, "return.xlsx", max_bytes=MAX_BYTES)
    assert caught.value.code == "xlsx-invalid" and "ZIP archive" in caught.value.message


def test_commas_inside_header_do_not_hide_a_semicolon_file(tmp_path):
    path = write(tmp_path, "s.csv", b'gss_code;"Net collectable, GBP";year\nS12000033;1;2\n')
    with pytest.raises(IntakeError) as caught:
        inspect_upload(path, "s.csv", max_bytes=MAX_BYTES)
    assert caught.value.code == "delimiter"
    # ...while semicolons inside a comma file's names are fine
    path = write(tmp_path, "c.csv", b'"code; GSS",year\nS12000033,2023-24\n')
    inspect_upload(path, "c.csv", max_bytes=MAX_BYTES).cleanup()


def test_excel_sep_comma_line_is_removed(tmp_path):
    path = write(tmp_path, "sep.csv", b"\xef\xbb\xbfsep=,\r\n" + VALID)
    with inspect_upload(path, "sep.csv", max_bytes=MAX_BYTES) as result:
        assert result.temporary and len(result.notes) == 2
        assert Path(result.csv_path).read_bytes() == VALID
        assert result.rows_hint == 1


@pytest.mark.parametrize("name,code", [
    ("return.xls", "xlsx-invalid"), ("return.ods", "unsupported-format"),
    ("return", "unsupported-format"), ("RETURN.CSV", None), ("return.xlsx", "xlsx-invalid"),
    ("return.csv.txt", "unsupported-format"),
])
def test_extensions(tmp_path, name, code):
    path = write(tmp_path, "upload", VALID)
    if code is None:
        inspect_upload(path, name, max_bytes=MAX_BYTES).cleanup()
        return
    with pytest.raises(IntakeError) as caught:
        inspect_upload(path, name, max_bytes=MAX_BYTES)
    print(caught.value.message)
    assert caught.value.code == code


def test_web_page_named_xls_and_xlsx_named_xls(tmp_path):
    path = write(tmp_path, "export.xls", b"<html><body><table><tr><td>1</td></tr></table></body></html>")
    with pytest.raises(IntakeError) as caught:
        inspect_upload(path, "export.xls", max_bytes=MAX_BYTES)
    assert caught.value.code == "html-not-csv" and ".xls" in caught.value.message
    path = write(tmp_path, "return.xls", (CORPUS / "valid.xlsx").read_bytes())
    with inspect_upload(path, "return.xls", max_bytes=MAX_BYTES) as result:
        assert result.format == "xlsx" and "named .xls" in result.notes[0]


def test_encoding_errors_are_found_anywhere_with_their_line(tmp_path, monkeypatch):
    """Small chunks put multi-byte characters across chunk boundaries: they
    must pass, and a bad byte deep in the file must give its line and byte."""
    monkeypatch.setattr(intake_module.text, "CHUNK", 7)
    monkeypatch.setattr(intake_module, "HEAD", 16)
    lines = ["name,town"] + [f"Café {i},Aberdeen – ‘City’ £" for i in range(300)]
    good = ("\n".join(lines) + "\n").encode("utf-8")
    path = write(tmp_path, "good.csv", good)
    with inspect_upload(path, "good.csv", max_bytes=MAX_BYTES) as result:
        assert result.rows_hint == 300
    bad_line = 250
    encoded = [line.encode("utf-8") for line in lines]
    encoded[bad_line - 1] += ",Müller".encode("cp1252")
    data = b"\n".join(encoded) + b"\n"
    path = write(tmp_path, "bad.csv", data)
    with pytest.raises(IntakeError) as caught:
        inspect_upload(path, "bad.csv", max_bytes=MAX_BYTES)
    error = caught.value
    print(error.message)
    assert error.code == "encoding"
    assert error.details["line"] == bad_line
    assert data[error.details["byte"]] == 0xFC
    assert f"line {bad_line}" in error.message and "ü" in error.message


def test_old_mac_line_ends(tmp_path):
    path = write(tmp_path, "mac.csv", b"a,b\r1,2\r3,4\r")
    with inspect_upload(path, "mac.csv", max_bytes=MAX_BYTES) as result:
        assert result.rows_hint == 2
    path = write(tmp_path, "mac-1252.csv", b"a,b\r1,2\r3,\xa34\r")
    with pytest.raises(IntakeError) as caught:
        inspect_upload(path, "mac-1252.csv", max_bytes=MAX_BYTES)
    assert caught.value.details["line"] == 3


def test_nul_byte_deep_in_the_file(tmp_path):
    data = VALID + b"S12000033,2023-24,1,2,3,4\n" * 100_000 + b"x\x00y\n"
    path = write(tmp_path, "nul.csv", data)
    with pytest.raises(IntakeError) as caught:
        inspect_upload(path, "nul.csv", max_bytes=len(data))
    assert caught.value.code == "binary-not-csv"
    assert caught.value.details["line"] == 100_003


def test_truncated_utf8_at_the_end(tmp_path):
    path = write(tmp_path, "t.csv", VALID + "£".encode("utf-8")[:1])
    with pytest.raises(IntakeError) as caught:
        inspect_upload(path, "t.csv", max_bytes=MAX_BYTES)
    assert caught.value.code == "encoding" and caught.value.details["line"] == 3


def test_a_million_rows_pass_quickly(tmp_path):
    path = tmp_path / "big.csv"
    row = "S12000033,2023-24,111234,151234567.89,144567890.12,95.59\n"
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(["gss_code", "financial_year", "chargeable_dwellings", "net_collectable_gbp",
                          "collected_by_year_end_gbp", "in_year_collection_rate_pct"]) + "\n")
        for _ in range(100):
            f.write(row * 9_999 + row.replace("2023-24", "2023–24"))  # a non-ASCII dash now and then
    size = path.stat().st_size
    start = time.perf_counter()
    result = inspect_upload(str(path), "big.csv", max_bytes=size)
    seconds = time.perf_counter() - start
    print(f"1,000,000 rows ({size / 1e6:.0f} MB): inspect_upload took {seconds:.3f} s")
    assert result.rows_hint == 1_000_000 and result.csv_path == str(path)
    assert seconds < 3


# ------------------------------------------------------------------ workbooks


def workbook_bytes(build, parts: dict[str, bytes] | None = None) -> bytes:
    """An .xlsx made by openpyxl; `parts` replace whole parts of the package
    with the XML given, so a test that needs exact XML does not depend on how
    openpyxl serialises (it writes `<v></v>` with lxml installed, `<v />`
    without)."""
    wb = openpyxl.Workbook()
    build(wb)
    buffer = io.BytesIO()
    wb.save(buffer)
    if not parts:
        return buffer.getvalue()
    source = zipfile.ZipFile(buffer)
    assert set(parts) <= set(source.namelist()), parts.keys()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, parts.get(info.filename, source.read(info.filename)))
    return out.getvalue()


def convert(tmp_path: Path, data: bytes) -> tuple[Intake, list[list[str]]]:
    path = write(tmp_path, "book.xlsx", data)
    result = inspect_upload(path, "book.xlsx", max_bytes=MAX_BYTES)
    with open(result.csv_path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    return result, rows


def test_cell_values_come_out_as_a_person_expects(tmp_path):
    def build(wb):
        ws = wb.active
        ws.title = "Data"
        ws.append(["int", "float", "whole float", "date", "datetime", "pct", "bool", "text", "tiny",
                   "big", "noise"])
        ws.append([7, 2.5, 1234.0, dt.date(2024, 3, 31), dt.datetime(2024, 3, 31, 10, 15),
                   0.956, True, "=not a formula", 0.00001, 123456789012.0, 0.1 + 0.2])
        ws["F2"].number_format = "0.0%"
        ws["F2"].data_type = "n"
        ws["H2"].data_type = "s"
    result, rows = convert(tmp_path, workbook_bytes(build))
    with result:
        assert rows[1] == ["7", "2.5", "1234", "2024-03-31", "2024-03-31T10:15:00", "95.6%", "TRUE",
                           "=not a formula", "0.00001", "123456789012", "0.3"]
        assert result.notes == ["converted from sheet 'Data' of an Excel workbook"]


def test_rows_keep_their_excel_numbers(tmp_path):
    """Blank rows inside the table are kept (validation reports them at the
    row Excel shows), trailing ones dropped, short rows padded to the header
    and extra cells kept."""
    def build(wb):
        ws = wb.active
        ws.append(["a", "b", "c"])
        ws.append([1, 2, 3])
        ws.append([])
        ws.append([4])
        ws.append([5, 6, 7, 8])
        ws["A20"] = None
        ws["C30"].number_format = "0.00"  # a formatted but empty cell far below
    result, rows = convert(tmp_path, workbook_bytes(build))
    with result:
        assert rows == [["a", "b", "c"], ["1", "2", "3"], ["", "", ""], ["4", "", ""],
                        ["5", "6", "7", "8"]]
        assert result.rows_hint == 4
        assert "first of its" not in result.notes[0]


def test_sheet_choice(tmp_path):
    def build(wb):
        wb.active.title = "Cover"
        wb.active.append(["cover"])
        hidden = wb.create_sheet(" data ")
        hidden.append(["hidden data"])
        hidden.sheet_state = "hidden"
        wb.create_sheet("Other").append(["other"])
        wb.create_sheet("DATA").append(["the data"])
    result, rows = convert(tmp_path, workbook_bytes(build))
    with result:
        assert rows == [["the data"]] and "sheet 'DATA'" in result.notes[0]

    def build2(wb):
        wb.active.title = "First"
        wb.active.append(["first"])
        wb.create_sheet("Second").append(["second"])
    result, rows = convert(tmp_path, workbook_bytes(build2))
    with result:
        assert rows == [["first"]] and "first of its 2 visible sheets" in result.notes[0]


def test_formula_results_and_uncalculated_formulas(tmp_path):
    """Cached values are read; a formula whose cached result is the empty
    string (Excel writes t="str" and an empty value) is not "uncalculated";
    one with no cached value is, with its cell and count."""
    def build(wb):
        ws = wb.active
        ws.title = "Data"
        ws.append(["x", "double", "blank", "triple"])
        ws.append([2, "=A2*2", '=IF(A2>5,"big","")', "=A2*3"])
        ws.append([3, "=A3*2", None, "=A3*3"])
    # The cached results as Excel stores them, written out in full: B2, D2,
    # B3, D3 hold their values; C2's result is the empty string (t="str").
    calculated = (
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        b'<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c>'
        b'<c r="B1" t="inlineStr"><is><t>double</t></is></c>'
        b'<c r="C1" t="inlineStr"><is><t>blank</t></is></c>'
        b'<c r="D1" t="inlineStr"><is><t>triple</t></is></c></row>'
        b'<row r="2"><c r="A2"><v>2</v></c><c r="B2"><f>A2*2</f><v>4</v></c>'
        b'<c r="C2" t="str"><f>IF(A2&gt;5,"big","")</f><v></v></c>'
        b'<c r="D2"><f>A2*3</f><v>6</v></c></row>'
        b'<row r="3"><c r="A3"><v>3</v></c><c r="B3"><f>A3*2</f><v>6</v></c>'
        b'<c r="D3"><f>A3*3</f><v>9</v></c></row>'
        b'</sheetData></worksheet>')
    data = workbook_bytes(build, {"xl/worksheets/sheet1.xml": calculated})
    result, rows = convert(tmp_path, data)
    with result:
        assert rows == [["x", "double", "blank", "triple"], ["2", "4", "", "6"], ["3", "6", "", "9"]]

    path = write(tmp_path, "raw.xlsx", workbook_bytes(build))
    with pytest.raises(IntakeError) as caught:
        inspect_upload(path, "raw.xlsx", max_bytes=MAX_BYTES)
    error = caught.value
    assert error.code == "xlsx-uncalculated"
    assert error.details["cell"] == "B2" and error.details["count"] == 5
    assert "and 4 more" in error.message


def test_workbook_with_blank_first_row(tmp_path):
    def build(wb):
        wb.active["A3"] = "header"
    path = write(tmp_path, "b.xlsx", workbook_bytes(build))
    with pytest.raises(IntakeError) as caught:
        inspect_upload(path, "b.xlsx", max_bytes=MAX_BYTES)
    assert caught.value.code == "header-missing"


def test_bomb_by_ratio_and_by_entries(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", b" " * (20 * 1024 * 1024))
    path = write(tmp_path, "ratio.xlsx", buffer.getvalue())
    with pytest.raises(IntakeError) as caught:
        inspect_upload(path, "ratio.xlsx", max_bytes=MAX_BYTES)
    assert caught.value.code == "xlsx-bomb" and "sheet1.xml" in caught.value.message
    # the same part passes the ratio check with a higher limit (then fails
    # as a workbook openpyxl cannot read)
    with pytest.raises(IntakeError) as caught:
        inspect_upload(path, "ratio.xlsx", max_bytes=MAX_BYTES, xlsx_max_ratio=10_000)
    assert caught.value.code == "xlsx-invalid"

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        for i in range(intake_module.MAX_ZIP_ENTRIES):
            z.writestr(f"xl/media/p{i}", b"")
    path = write(tmp_path, "many.xlsx", buffer.getvalue())
    with pytest.raises(IntakeError) as caught:
        inspect_upload(path, "many.xlsx", max_bytes=MAX_BYTES)
    assert caught.value.code == "xlsx-bomb" and "parts" in caught.value.message


def test_uncompressed_limit_is_a_parameter():
    path = str(CORPUS / "valid.xlsx")
    with pytest.raises(IntakeError) as caught:
        inspect_upload(path, "valid.xlsx", max_bytes=MAX_BYTES, xlsx_max_uncompressed=1000)
    assert caught.value.code == "xlsx-bomb"


def test_too_large_says_sizes_in_mb(tmp_path):
    path = write(tmp_path, "big.csv", VALID * 40_000)  # about 7 MB
    with pytest.raises(IntakeError) as caught:
        inspect_upload(path, "big.csv", max_bytes=5 * 1024 * 1024)
    assert caught.value.status == 413
    assert "6.7 MB" in caught.value.message and "5.0 MB" in caught.value.message


def test_cleanup_is_idempotent():
    result = inspect_upload(str(CORPUS / "valid-bom.csv"), "valid-bom.csv", max_bytes=MAX_BYTES)
    assert result.temporary
    result.cleanup()
    result.cleanup()
    assert not os.path.exists(result.csv_path)
    assert result.temporary is False
