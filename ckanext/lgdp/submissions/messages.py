"""Validation errors in plain words: what is wrong and what to do.

The validator (``fastcsv.validate_csv``, Frictionless's report format), the
intake checks (``intake.IntakeError`` codes, stored as one-error reports by
``reports.problem_report``) and the platform's own checks (``csv-injection``,
``no-data-rows``) report errors for machines: ``type is "number/default"``,
``constraint "enum" is "['S12000020']"``, a raw regular expression. This
catalogue turns each of them into one sentence a council officer can act on,
made from the standard's field titles and constraints:

    Row 2, Financial year: '2025/26' should be written like 2025-26.

``Catalogue(schema, council=..., period=...).summary(error)`` gives that
sentence in the request's language (every string goes through ``tk._``), so
call it when the answer is made, not when the report is stored. The stored
report is never changed. ``advice(error)`` is the same without the "Row 2,
Financial year" part, for a table that shows row and column already.

Hints for the usual mistakes: thousands separators, £ and % signs, figures
in thousands ("12.5k"), a percentage over 100, dd/mm/yyyy dates, a period
written another way (2025/26), another council's GSS code (named from the
reference data), a council's name instead of its code, spaces around a
value. Cells are shown shortened to ``CELL_CHARS`` characters (``shorten``):
a 5 MB cell must not make a 5 MB message; the file keeps the whole value.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

import ckan.plugins.toolkit as tk

from ckanext.lgdp.register import councils

__all__ = ["CELL_CHARS", "Catalogue", "capitalised", "shorten", "shorten_error"]

CELL_CHARS = 200
ELLIPSIS = "…"
SHORT_ENUM = 6  # an enum this long or shorter is listed in full

# Examples of the patterns the standards use, when a field gives none.
PATTERN_EXAMPLES = {
    "S12[0-9]{6}": "S12000033",
    "[0-9]{4}-[0-9]{2}": "2024-25",
    "[0-9]{4}-Q[1-4]": "2024-Q3",
    "[0-9]{4}": "2024",
    "[0-9]{4}-(0[1-9]|1[0-2])": "2024-11",
}
GSS_PATTERN = "S12[0-9]{6}"
MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}


def shorten(value: Any, limit: int = CELL_CHARS) -> str:
    """A cell as shown to a person: at most ``limit`` characters, then "…"."""
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[:limit] + ELLIPSIS


def capitalised(text: str) -> str:
    """The text begun with a capital ("the ..." -> "The ...", Gaelic "'s e ..."
    -> "'S e ..."); a text that begins with a quoted value is left alone."""
    if text.startswith("'s "):
        return "'S" + text[2:]
    return text[:1].upper() + text[1:] if text[:1].isalpha() else text


def shorten_error(error: dict[str, Any], limit: int = CELL_CHARS) -> dict[str, Any]:
    """An error of a report with its long cells shortened (``cell``, each of
    ``cells`` and ``labels``, ``label``, and the cell where ``message`` and
    ``note`` quote it); the same dict when nothing is long."""
    long_cells = [c for c in (error.get("cells") or []) if isinstance(c, str) and len(c) > limit]
    long_labels = [c for c in (error.get("labels") or []) if isinstance(c, str) and len(c) > limit]
    quoted = [v for v in (error.get("cell"), error.get("label")) if isinstance(v, str) and len(v) > limit]
    if not (long_cells or long_labels or quoted):
        return error
    out = dict(error)
    for key in ("cells", "labels"):
        if isinstance(out.get(key), list):
            out[key] = [shorten(c, limit) if isinstance(c, str) else c for c in out[key]]
    for key in ("message", "note"):
        text = out.get(key)
        if isinstance(text, str):
            for value in quoted:
                text = text.replace(value, shorten(value, limit))
            out[key] = shorten(text, 4 * limit)
    for key in ("cell", "label"):
        if isinstance(out.get(key), str):
            out[key] = shorten(out[key], limit)
    return out


def _number(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def _plain(value: Decimal) -> str:
    """A number written the usual way: no exponent, no trailing zeros."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _bound(value: Any) -> str:
    number = _number(str(value))
    return _plain(number) if number is not None else str(value)


def _storage_bound(value: Any) -> bool:
    """Whether a bound is one of storage (standards.with_storage_bounds:
    bigint, 1e300) rather than the standard's own."""
    number = _number(str(value))
    return number is not None and abs(number) >= Decimal("1e15")


def _example_in(description: str | None) -> str | None:
    """The example a field's description gives ("..., e.g. 2024-25 for ...")."""
    match = re.search(r"\be\.g\.,?\s+([^\s,;()]+)", description or "")
    return match.group(1).rstrip(".:") if match else None


def _fits(pattern: str, value: str) -> bool:
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        return False


def _period_spellings(value: str) -> list[str]:
    """Ways a person writes a period, rewritten the standards' ways."""
    v = value.strip()
    out = [v, v.upper()]
    m = re.fullmatch(r"(?:FY\s*)?(\d{4})\s*[-/–—_ ]\s*(\d{2}|\d{4})", v, re.IGNORECASE)
    if m:
        out.append(f"{m.group(1)}-{m.group(2)[-2:]}")
    m = re.fullmatch(r"(\d{2})\s*[-/–—]\s*(\d{2})", v)
    if m:
        out.append(f"20{m.group(1)}-{m.group(2)}")
    m = re.fullmatch(r"(\d{4})\s*[-/ ]?\s*Q([1-4])", v, re.IGNORECASE) or re.fullmatch(
        r"Q([1-4])\s*[-/ ]?\s*(\d{4})", v, re.IGNORECASE)
    if m:
        year, quarter = (m.group(1), m.group(2)) if len(m.group(1)) == 4 else (m.group(2), m.group(1))
        out.append(f"{year}-Q{quarter}")
    m = re.fullmatch(r"(\d{1,2})[/.-](\d{4})", v)  # 11/2024
    if m:
        out.append(f"{m.group(2)}-{int(m.group(1)):02d}")
    m = re.fullmatch(r"(\d{4})[/.-](\d{1,2})", v)  # 2024/11, 2024-1
    if m:
        out.append(f"{m.group(1)}-{int(m.group(2)):02d}")
    m = re.fullmatch(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})", v)  # 01/11/2024
    if m:
        out.append(f"{m.group(3)}-{int(m.group(2)):02d}")
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", v)  # 2024-11-01
    if m:
        out.append(f"{m.group(1)}-{m.group(2)}")
    m = re.fullmatch(r"([A-Za-z]{3})[a-z]*\.?\s+(\d{4})", v)  # Nov 2024, November 2024
    if m and m.group(1).lower() in MONTHS:
        out.append(f"{m.group(2)}-{MONTHS[m.group(1).lower()]:02d}")
    return out


def _date_fix(value: str) -> str | None:
    """dd/mm/yyyy (as written in the UK) as yyyy-mm-dd."""
    m = re.fullmatch(r"\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\s*", value)
    if not m:
        return None
    day, month, year = int(m.group(1)), int(m.group(2)), m.group(3)
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return None
    return f"{year}-{month:02d}-{day:02d}"


class Catalogue:
    """The messages of one standard, for one submission.

    :param schema: the Table Schema validated against (the standard, narrowed
        by ``jobs.submission_schema``)
    :param council: ``(gss_code, name)`` of the submission's council
    :param period: the period as it is written in the data (e.g. ``2023-24``)
    :param council_names: GSS code -> council name (default: the reference data)
    """

    def __init__(self, schema: dict[str, Any] | None, *, council: tuple[str, str] | None = None,
                 period: str | None = None, council_names: dict[str, str] | None = None) -> None:
        schema = schema or {}
        self.fields: list[dict[str, Any]] = [f for f in schema.get("fields") or [] if isinstance(f, dict)]
        self.by_name = {f.get("name"): f for f in self.fields}
        keys = schema.get("primaryKey") or []
        self.primary_key = [keys] if isinstance(keys, str) else list(keys)
        self.council = council
        self.period = period
        if council_names is None:
            council_names = councils.council_names()
        self.council_names = council_names
        self.codes_by_name = {n.lower(): c for c, n in council_names.items()}

    # ------------------------------------------------------------ public

    def summary(self, error: dict[str, Any]) -> str:
        """One sentence: where, what is wrong, what to do."""
        where = self._where(error)
        advice = self.advice(error)
        if not where:
            return capitalised(advice)
        return tk._("{where}: {advice}").format(where=where, advice=advice)

    def advice(self, error: dict[str, Any]) -> str:
        """What is wrong and what to do, without the row and column."""
        handler = self._handlers().get(error.get("type") or "")
        if handler is not None:
            try:
                return handler(error)
            except (KeyError, TypeError, ValueError, IndexError):
                pass
        return self._fallback(error)

    def known_field(self, error: dict[str, Any]) -> bool:
        """Whether the error's column is one of the standard's."""
        return self._field(error) is not None

    def field_title(self, error: dict[str, Any]) -> str:
        """The column as the standard names it (its title), or "column N"."""
        field = self._field(error)
        if field is not None:
            return str(field.get("title") or field.get("name"))
        number = error.get("fieldNumber")
        return tk._("column {n}").format(n=number) if number else ""

    # ------------------------------------------------------------ helpers

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], str]]:
        return {
            "type-error": self._type_error,
            "constraint-error": self._constraint_error,
            "unique-error": self._unique,
            "primary-key": self._primary_key,
            "foreign-key": lambda e: tk._("this row refers to something the standard's reference list does not have."),
            "blank-row": lambda e: tk._("the row is empty: delete it."),
            "extra-cell": self._extra_cell,
            "missing-cell": self._missing_cell,
            "blank-label": self._blank_label,
            "duplicate-label": self._duplicate_label,
            "incorrect-label": self._incorrect_label,
            "missing-label": self._missing_label,
            "extra-label": self._extra_label,
            "blank-header": lambda e: tk._("row 1 is empty: it should hold the column names of the standard."),
            "csv-injection": self._csv_injection,
            "no-data-rows": lambda e: tk._(
                "the file has the column names but no data rows: add your council's row(s) and upload it again."),
            "encoding-error": lambda e: tk._(
                "the file cannot be read as UTF-8 text. In Excel, use File > Save As, choose "
                "\u201cCSV UTF-8 (Comma delimited) (*.csv)\u201d and upload the new file."),
            **{code: self._unreadable for code in (
                "source-error", "scheme-error", "format-error", "compression-error", "file-error",
                "byte-count", "hash-count", "data-error")},
            # intake (reports.problem_report) and the platform
            "too-large": self._too_large,
            "unsupported-format": self._unsupported_format,
            "empty-file": lambda e: tk._(
                "the file holds no data. Check you chose the right file and that it was saved before uploading."),
            "html-not-csv": lambda e: tk._(
                "this file is a web page or an XML document, not a table: it may be an error or sign-in page "
                "saved instead of the data. Open the return in Excel and save it as CSV UTF-8 or as an Excel "
                "workbook (.xlsx)."),
            "xlsx-invalid": self._xlsx_invalid,
            "encoding": self._encoding,
            "binary-not-csv": lambda e: tk._(
                "this file is not a text CSV file. Upload the return as a CSV file (saved as CSV UTF-8) or an "
                "Excel workbook (.xlsx)."),
            "header-missing": lambda e: tk._(
                "the column names must be in row 1: delete the empty rows above them and upload the file again."),
            "delimiter": self._delimiter,
            "xlsx-bomb": lambda e: tk._(
                "this workbook cannot be opened safely: it would expand to far more than a return needs. Delete "
                "unused sheets, images and empty formatted rows, or save the data sheet as CSV UTF-8, and upload "
                "it again."),
            "xlsx-empty": lambda e: tk._(
                "the workbook has no data to read: put the return in a visible sheet named 'Data', with the "
                "column names in row 1, and upload it again."),
            "xlsx-uncalculated": self._uncalculated,
            "download-failed": lambda e: tk._(
                "the file could not be fetched from its address (the server answered {status}): check the "
                "address, or upload the file itself.").format(status=(e.get("details") or {})["status"]),
            "no-standard": lambda e: tk._(
                "the return has no data standard to check the file against: ask the return's owner."),
            "too-many-columns": self._too_many_columns,
            "too-many-rows": lambda e: tk._(
                "the file has more than {limit} rows of data, the most a file may hold. Check it holds only the "
                "return (no empty formatted rows below it), or split it, and upload it again.").format(
                limit=f"{int((e.get('details') or {})['max_rows']):,}"),
            "cell-too-long": self._cell_too_long,
            "too-large-to-validate": lambda e: tk._(
                "the file needs more memory to check than the platform allows a file. Check it holds only the "
                "return (no extra columns, no very long cells), or split it, and upload it again."),
            "validation-interrupted": self._platform_problem,
            "validation-error": self._platform_problem,
        }

    def _field(self, error: dict[str, Any]) -> dict[str, Any] | None:
        name = error.get("fieldName")
        if name and name in self.by_name:
            return self.by_name[name]
        number = error.get("fieldNumber")
        if error.get("type") not in ("extra-cell", "extra-label") and isinstance(number, int) \
                and 1 <= number <= len(self.fields):
            return self.fields[number - 1]
        return None

    def _title(self, field: dict[str, Any] | None, fallback: str = "") -> str:
        if field is None:
            return fallback
        return str(field.get("title") or field.get("name"))

    def _where(self, error: dict[str, Any]) -> str:
        kind = error.get("type") or ""
        row = error.get("rowNumber")
        if kind.endswith("-label"):
            return tk._("Row 1 (column names), column {n}").format(n=error.get("fieldNumber"))
        if kind in ("blank-row", "primary-key", "foreign-key", "no-data-rows") and row:
            return tk._("Row {row}").format(row=row)
        title = self.field_title(error)
        if row and title:
            return tk._("Row {row}, {field}").format(row=row, field=title)
        if row:
            return tk._("Row {row}").format(row=row)
        return ""

    @staticmethod
    def _value(error: dict[str, Any]) -> str:
        cell = error.get("cell")
        return shorten("" if cell in (None, "None") else cell)

    def _fallback(self, error: dict[str, Any]) -> str:
        message = error.get("message") or error.get("description") or ""
        if error.get("type") in ("type-error", "constraint-error") or "constraint \"" in message:
            return tk._("'{value}' is not what the standard allows in this column: see the data standard.").format(
                value=self._value(error))
        return shorten(message, 4 * CELL_CHARS) or tk._("there is a problem with the file: see the data standard.")

    # ------------------------------------------------------------ cells

    def _type_error(self, error: dict[str, Any]) -> str:
        field = self._field(error) or {}
        kind = field.get("type") or (re.search(r'type is "(\w+)', error.get("note") or "") or [None, "string"])[1]
        raw = "" if error.get("cell") in (None, "None") else str(error.get("cell"))
        value = shorten(raw)
        if kind in ("integer", "number"):
            return self._number_hint(raw, value, kind == "integer")
        if kind == "boolean":
            true = (field.get("trueValues") or ["true"])[0]
            false = (field.get("falseValues") or ["false"])[0]
            return tk._("'{value}' should be {true} or {false}.").format(value=value, true=true, false=false)
        if kind == "date":
            fixed = _date_fix(raw)
            if fixed:
                return tk._("'{value}' should be written year first: {fixed}.").format(value=value, fixed=fixed)
            return tk._("'{value}' should be a date written year first, like 2024-03-31.").format(value=value)
        if kind == "datetime":
            return tk._("'{value}' should be a date and time, like 2024-03-31T14:30:00.").format(value=value)
        if kind == "time":
            return tk._("'{value}' should be a time, like 14:30:00.").format(value=value)
        if kind == "year":
            return tk._("'{value}' should be a year of four digits, like 2024.").format(value=value)
        if kind == "yearmonth":
            return tk._("'{value}' should be a year and month, like 2024-03.").format(value=value)
        fmt = field.get("format") or "default"
        if fmt == "email":
            return tk._("'{value}' should be an e-mail address, like name@council.gov.uk.").format(value=value)
        if fmt == "uri":
            return tk._("'{value}' should be a web address starting with https://.").format(value=value)
        return tk._("'{value}' is not written in the form this column needs: see the data standard.").format(
            value=value)

    def _number_hint(self, raw: str, value: str, integer: bool) -> str:
        text = raw.strip()
        if raw and not text:
            return tk._("the cell holds only spaces: write the figure, or leave the cell empty.")
        for sign in ("£", "$", "€"):
            if sign in text:
                fixed = text.replace(sign, "").replace(",", "").strip()
                if _number(fixed) is not None:
                    return tk._("'{value}' should be written without the {sign} sign: {fixed}.").format(
                        value=value, sign=sign, fixed=fixed)
        if text.endswith("%") and _number(text[:-1].replace(",", "").strip()) is not None:
            return tk._("'{value}' should be written without the {sign} sign: {fixed}.").format(
                value=value, sign="%", fixed=text[:-1].replace(",", "").strip())
        if re.fullmatch(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
            return tk._("'{value}' should be written without commas: {fixed}.").format(
                value=value, fixed=text.replace(",", ""))
        if re.fullmatch(r"[-+]?\d+,\d+", text):
            return tk._("'{value}' should be written with a decimal point, not a comma: {fixed}.").format(
                value=value, fixed=text.replace(",", "."))
        m = re.fullmatch(r"(-?\d+(?:\.\d+)?)\s*([kKmM]|bn)", text.replace(",", ""))
        if m:
            scale = {"k": 1000, "m": 1000000, "bn": 1000000000}[m.group(2).lower()]
            fixed = _plain(Decimal(m.group(1)) * scale)
            return tk._("'{value}' should be the whole figure, not in thousands or millions: {fixed}.").format(
                value=value, fixed=fixed)
        number = _number(text.replace(" ", ""))
        if number is not None and " " in text:
            return tk._("'{value}' should be written without spaces: {fixed}.").format(
                value=value, fixed=text.replace(" ", ""))
        if integer and number is not None:
            return tk._("'{value}' should be a whole number, without decimal places.").format(value=value)
        if text.lower() in ("n/a", "na", "-", "x", "*", "..", ".", "nil", "none", "null", "unknown", "tbc", "c"):
            return tk._("'{value}' is not a figure: write the number itself (a mark such as n/a or - is not "
                        "accepted; if there is none, write 0).").format(value=value)
        if integer:
            return tk._("'{value}' should be a whole number, like 1234.").format(value=value)
        return tk._("'{value}' should be a number, like 1234.5 (digits and a decimal point only).").format(
            value=value)

    def _constraint_error(self, error: dict[str, Any]) -> str:
        field = self._field(error) or {}
        constraints = field.get("constraints") or {}
        match = re.search(r'constraint "(\w+)"', error.get("note") or "")
        kind = match.group(1) if match else ""
        value = self._value(error)
        raw = "" if error.get("cell") in (None, "None") else str(error.get("cell"))
        title = self._title(field, "")
        if kind == "required":
            return tk._("the cell is empty: the standard needs a value here.")
        if kind in ("minimum", "maximum") and _storage_bound(constraints.get(kind)):
            if kind == "maximum":
                return tk._("'{value}' is far larger than any figure of a return, and the platform cannot store it: "
                            "check the figure.").format(value=value)
            return tk._("'{value}' is far below any figure of a return, and the platform cannot store it: "
                        "check the figure.").format(value=value)
        if kind in ("minimum", "exclusiveMinimum"):
            bound = _bound(constraints.get(kind, ""))
            if bound == "0" and kind == "minimum":
                return tk._("'{value}' cannot be negative: the lowest value allowed is 0.").format(value=value)
            if kind == "exclusiveMinimum":
                return tk._("'{value}' should be more than {bound}.").format(value=value, bound=bound)
            return tk._("'{value}' is below the lowest value allowed, {bound}.").format(value=value, bound=bound)
        if kind in ("maximum", "exclusiveMaximum"):
            bound = _bound(constraints.get(kind, ""))
            if bound == "100" and ("%" in title or str(field.get("name", "")).endswith("_pct")):
                return tk._("'{value}' is over 100: a percentage is written from 0 to 100.").format(value=value)
            if kind == "exclusiveMaximum":
                return tk._("'{value}' should be less than {bound}.").format(value=value, bound=bound)
            return tk._("'{value}' is above the highest value allowed, {bound}.").format(value=value, bound=bound)
        if kind == "minLength":
            n = int(constraints.get("minLength") or 0)
            return tk.ungettext("'{value}' is too short: it should have at least {n} character.",
                                "'{value}' is too short: it should have at least {n} characters.", n).format(
                value=value, n=n)
        if kind == "maxLength":
            n = int(constraints.get("maxLength") or 0)
            return tk.ungettext("'{value}' is too long: it should have at most {n} character (it has {length}).",
                                "'{value}' is too long: it should have at most {n} characters (it has {length}).",
                                n).format(value=value, n=n, length=len(raw))
        if kind == "pattern":
            return self._pattern(field, raw, value)
        if kind == "enum":
            return self._enum(field, raw, value)
        if kind == "unique":
            return self._unique(error)
        return self._fallback(error)

    def _is_gss(self, field: dict[str, Any]) -> bool:
        pattern = (field.get("constraints") or {}).get("pattern")
        return field.get("name") == "gss_code" or pattern == GSS_PATTERN

    def _example(self, field: dict[str, Any]) -> str | None:
        constraints = field.get("constraints") or {}
        enum = constraints.get("enum")
        if isinstance(enum, list) and len(enum) == 1:
            return str(enum[0])
        example = field.get("example")
        if example not in (None, ""):
            return str(example)
        pattern = constraints.get("pattern")
        found = _example_in(field.get("description"))
        if found and (not pattern or _fits(pattern, found)):
            return found
        return PATTERN_EXAMPLES.get(pattern or "")

    def _pattern(self, field: dict[str, Any], raw: str, value: str) -> str:
        pattern = (field.get("constraints") or {}).get("pattern") or ""
        if raw.strip() != raw and _fits(pattern, raw.strip()):
            return tk._("'{value}' has spaces before or after it: write {fixed}.").format(
                value=value, fixed=raw.strip())
        if self._is_gss(field):
            code = self.codes_by_name.get(raw.strip().lower())
            if code is None and raw.strip().lower().endswith(" council"):
                code = self.codes_by_name.get(raw.strip().lower()[: -len(" council")])
            if code:
                return tk._("'{value}' is a council's name: write its GSS code, {code}.").format(value=value, code=code)
            if _fits(pattern, raw.strip().upper()):
                return tk._("'{value}' should be written in capitals: {fixed}.").format(
                    value=value, fixed=raw.strip().upper())
            example = self._example(field) or PATTERN_EXAMPLES[GSS_PATTERN]
            return tk._("'{value}' is not a council GSS code: it should be S12 and six digits, like {example}.").format(
                value=value, example=example)
        for fixed in _period_spellings(raw):
            if fixed != raw and _fits(pattern, fixed):
                return tk._("'{value}' should be written like {fixed}.").format(value=value, fixed=fixed)
        example = self._example(field)
        if example:
            return tk._("'{value}' should be written like {example}.").format(value=value, example=example)
        description = field.get("description")
        if description:
            return tk._("'{value}' is not in the form this column needs: {description}.").format(
                value=value, description=str(description).rstrip("."))
        return tk._("'{value}' is not in the form this column needs: see the data standard.").format(value=value)

    def _enum(self, field: dict[str, Any], raw: str, value: str) -> str:
        allowed = [str(v) for v in (field.get("constraints") or {}).get("enum") or []]
        if self._is_gss(field) and len(allowed) == 1:
            code = allowed[0]
            council = (self.council[1] if self.council and self.council[0] == code else None) \
                or self.council_names.get(code) or code
            other = self.council_names.get(raw.strip().upper())
            if other and raw.strip().upper() != code:
                return tk._("'{value}' is the code of {other}: this submission is for {council}, whose code is "
                            "{code}. Upload {other}'s figures to its own submission.").format(
                    value=value, other=other, council=council, code=code)
            return tk._("'{value}' should be your council's GSS code, {code} ({council}).").format(
                value=value, code=code, council=council)
        if len(allowed) == 1 and self.period is not None and allowed[0] == self.period:
            spelled = [s for s in _period_spellings(raw) if s == self.period]
            if spelled:
                return tk._("'{value}' should be {period}, the period of this submission.").format(
                    value=value, period=self.period)
            return tk._("'{value}' is another period: this submission is for {period}. Upload the figures for "
                        "{value} to that period's submission.").format(value=value, period=self.period)
        if len(allowed) == 1:
            return tk._("'{value}' should be {allowed}.").format(value=value, allowed=allowed[0])
        if len(allowed) <= SHORT_ENUM:
            return tk._("'{value}' should be one of: {allowed}.").format(value=value, allowed=", ".join(allowed))
        close = [a for a in allowed if a.lower() == raw.strip().lower()]
        if close:
            return tk._("'{value}' should be written {allowed}.").format(value=value, allowed=close[0])
        return tk._("'{value}' is not one of the {n} values the standard allows here: see the data standard.").format(
            value=value, n=len(allowed))

    def _unique(self, error: dict[str, Any]) -> str:
        match = re.search(r"position (\d+)", error.get("note") or "")
        if match:
            return tk._("'{value}' is already in row {other}: each row needs its own value in this column.").format(
                value=self._value(error), other=match.group(1))
        return tk._("'{value}' is in another row too: each row needs its own value in this column.").format(
            value=self._value(error))

    def _primary_key(self, error: dict[str, Any]) -> str:
        cells = error.get("cells") or []
        names = [self._title(self.by_name.get(k), k) for k in self.primary_key]
        parts = []
        for key in self.primary_key:
            position = next((i for i, f in enumerate(self.fields) if f.get("name") == key), None)
            cell = cells[position] if position is not None and position < len(cells) else ""
            parts.append(f"{self._title(self.by_name.get(key), key)} {shorten(cell, 40)}".strip())
        columns = tk._(" and ").join(names) if names else tk._("the key columns")
        match = re.search(r"position (\d+)", error.get("note") or "")
        if match:
            return tk._("this row repeats row {other} ({key}): there can be only one row for each {columns}. "
                        "Delete the repeated row or correct it.").format(
                other=match.group(1), key=", ".join(parts), columns=columns)
        return tk._("{columns} are empty: every row needs them.").format(columns=columns)

    def _extra_cell(self, error: dict[str, Any]) -> str:
        count = len(self.fields)
        value = self._value(error)
        if value == "":
            return tk.ungettext(
                "the row has an empty cell after the last column (column {n}): the standard has {count} column. "
                "Delete the empty column in the spreadsheet (or the comma at the end of the line).",
                "the row has an empty cell after the last column (column {n}): the standard has {count} columns. "
                "Delete the empty column in the spreadsheet (or the comma at the end of the line).",
                count).format(n=error.get("fieldNumber"), count=count)
        return tk.ungettext(
            "'{value}' is in column {n}, after the last column of the standard, which has {count} column: "
            "delete it (a note about the file goes in the upload's note).",
            "'{value}' is in column {n}, after the last column of the standard, which has {count} columns: "
            "delete it (a note about the file goes in the upload's note).",
            count).format(value=value, n=error.get("fieldNumber"), count=count)

    def _missing_cell(self, error: dict[str, Any]) -> str:
        count = len(self.fields)
        return tk.ungettext(
            "the row ends before this column: every row needs all {count} column, like the header.",
            "the row ends before this column: every row needs all {count} columns, like the header.",
            count).format(count=count)

    def _csv_injection(self, error: dict[str, Any]) -> str:
        cell = str(error.get("cell") or "")
        first = {"\t": tk._("a tab"), "\r": tk._("a carriage return")}.get(cell[:1], f"'{cell[:1]}'")
        shown = shorten(cell.replace("\t", "\\t").replace("\r", "\\r").replace("\n", "\\n"))
        return tk._("'{value}' starts with {first}, so a spreadsheet could run it as a formula when the file is "
                    "opened: remove that first character or reword the value.").format(value=shown, first=first)

    # ------------------------------------------------------------ header

    def _expected(self, error: dict[str, Any]) -> str:
        field = self._field(error)
        if field is None:
            return ""
        title = self._title(field)
        name = str(field.get("name"))
        return name if title == name else f"{name} ({title})"

    def _label(self, error: dict[str, Any]) -> str:
        labels = error.get("labels") or []
        number = error.get("fieldNumber")
        label = error.get("label")
        if not label and isinstance(number, int) and 0 < number <= len(labels):
            label = labels[number - 1]
        return shorten(label or "", 80)

    def _blank_label(self, error: dict[str, Any]) -> str:
        return tk._("the column has no name: it should be {expected}.").format(expected=self._expected(error))

    def _duplicate_label(self, error: dict[str, Any]) -> str:
        match = re.search(r'position "?([\d, ]+)', error.get("note") or "")
        return tk._("the column is named '{label}' like column {other}: it should be {expected}.").format(
            label=self._label(error), other=(match.group(1).strip() if match else "?"),
            expected=self._expected(error))

    def _incorrect_label(self, error: dict[str, Any]) -> str:
        label = self._label(error)
        expected = self._expected(error)
        field = self._field(error) or {}
        name = str(field.get("name") or "")
        if label.strip().lower().replace(" ", "_") == name.lower():
            return tk._("the column is named '{label}': write it exactly {name}.").format(label=label, name=name)
        elsewhere = next((i for i, f in enumerate(self.fields, start=1) if f.get("name") == label.strip()), None)
        if elsewhere is not None:
            return tk._("'{label}' is the name of column {other} of the standard: put the columns in the "
                        "standard's order. Here the standard has {expected}.").format(
                label=label, other=elsewhere, expected=expected)
        titled = next((f for f in self.fields if str(f.get("title") or "").lower() == label.strip().lower()), None)
        if titled is not None:
            return tk._("'{label}' is a title: row 1 needs the column names of the standard, here {expected}.").format(
                label=label, expected=expected)
        return tk._("the column is named '{label}', but the standard has {expected} here: use the standard's column "
                    "names, in its order.").format(label=label, expected=expected)

    def _missing_label(self, error: dict[str, Any]) -> str:
        return tk._("the file has no column {expected}: every column of the standard is needed, in its order.").format(
            expected=self._expected(error))

    def _extra_label(self, error: dict[str, Any]) -> str:
        label = self._label(error)
        count = len(self.fields)
        if not label:
            return tk.ungettext(
                "a column with no name after the last column of the standard, which has {count} column: delete it.",
                "a column with no name after the last column of the standard, which has {count} columns: delete it.",
                count).format(count=count)
        return tk.ungettext(
            "the column '{label}' is not in the standard, which has {count} column: delete it.",
            "the column '{label}' is not in the standard, which has {count} columns: delete it.",
            count).format(label=label, count=count)

    # ------------------------------------------------------------ the file

    def _unreadable(self, error: dict[str, Any]) -> str:
        return tk._("the file could not be read as a table. Save it as CSV UTF-8 (Comma delimited) or as an Excel "
                    "workbook (.xlsx) and upload it again.")

    @staticmethod
    def _megabytes(n: Any) -> str:
        n = int(n)
        if n >= 10 * 1048576:
            return f"{n / 1048576:.0f} MB"
        if n >= 104858:
            return f"{n / 1048576:.1f} MB"
        return f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} B"

    def _too_large(self, error: dict[str, Any]) -> str:
        details = error.get("details") or {}
        return tk._("the file is {size}, over the {limit} limit for an upload. Check it holds only the return (no "
                    "extra sheets, images or empty formatted rows); a workbook saved as CSV UTF-8 is usually much "
                    "smaller.").format(size=self._megabytes(details["bytes"]), limit=self._megabytes(details["max_bytes"]))

    def _unsupported_format(self, error: dict[str, Any]) -> str:
        ext = (error.get("details") or {}).get("extension") or ""
        return tk._("files of type '.{ext}' cannot be accepted: upload the return as a CSV file (saved as CSV UTF-8) "
                    "or an Excel workbook (.xlsx).").format(ext=ext)

    def _xlsx_invalid(self, error: dict[str, Any]) -> str:
        found = (error.get("details") or {}).get("found")
        if found in ("encrypted", "encrypted-zip"):
            return tk._("this workbook is protected with a password, so it cannot be read: remove the password, "
                        "save it and upload it again.")
        if found == "xls":
            return tk._("this is an old Excel 97-2003 workbook (.xls), which cannot be read: in Excel use File > "
                        "Save As to save it as Excel Workbook (.xlsx) or CSV UTF-8, then upload that file.")
        return tk._("this file cannot be opened as an Excel workbook: open the return in Excel, save it again as "
                    "Excel Workbook (.xlsx) or CSV UTF-8, and upload the new file.")

    def _encoding(self, error: dict[str, Any]) -> str:
        details = error.get("details") or {}
        return tk._("the file is not saved as UTF-8 (it looks like {found}): line {line} has a character that "
                    "cannot be read. In Excel, use File > Save As, choose \u201cCSV UTF-8 (Comma delimited) "
                    "(*.csv)\u201d and upload the new file.").format(found=details["found"], line=details["line"])

    def _delimiter(self, error: dict[str, Any]) -> str:
        found = (error.get("details") or {}).get("found")
        shown = {"\t": tk._("tabs")}.get(found, f"'{found}'")
        return tk._("the columns of this file are separated by {found}, not commas. In Excel, use File > Save As, "
                    "choose \u201cCSV UTF-8 (Comma delimited) (*.csv)\u201d and upload the new file.").format(
            found=shown)

    def _uncalculated(self, error: dict[str, Any]) -> str:
        details = error.get("details") or {}
        return tk._("cell {cell} of sheet '{sheet}' holds a formula that has never been calculated, so its value is "
                    "unknown: open the file in Excel, save it and upload it again, or save it as CSV UTF-8.").format(
            cell=details["cell"], sheet=details["sheet"])

    def _too_many_columns(self, error: dict[str, Any]) -> str:
        details = error.get("details") or {}
        return tk._("the first row of the file has {found} columns; a file for this return may have at most {limit}. "
                    "Check that the columns of the return go across the first row (not down), remove the columns "
                    "that are not part of the return, and upload the file again.").format(
            found=f"{int(details['columns']):,}" + ("+" if details.get("at_least") else ""),
            limit=f"{int(details['max_columns']):,}")

    def _cell_too_long(self, error: dict[str, Any]) -> str:
        details = error.get("details") or {}
        return tk._("row {row}, column {column} holds {length} characters; a cell may hold at most {limit}. Check "
                    "that cell (a quote mark left open can join many rows into one cell), shorten it and upload the "
                    "file again.").format(row=details["row"], column=details["column"],
                                          length=f"{int(details['chars']):,}", limit=f"{int(details['max_chars']):,}")

    def _platform_problem(self, error: dict[str, Any]) -> str:
        return tk._("the platform could not finish checking this file; it is kept. Try again later or ask the "
                    "platform team.")
