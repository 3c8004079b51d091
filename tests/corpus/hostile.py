"""A generator of mean files for three standards: what councils really send
(blanks in a one-row return, column names with spaces or in title case,
figures with commas, pound and percent signs, fractions for percentages) and
what an attacker would (numbers no table can hold, thousands of columns,
cells of megabytes, periods outside the calendar).

``cases()`` returns the cases; each says what the officer must be told:

* ``outcome``: "valid" (accepted as it is, perhaps with a note), "invalid"
  (kept, with errors), "rejected" (refused at intake, kept and flagged) or
  "refused" (the request itself is refused; nothing is created);
* ``expect``: fragments that must all be in what the officer reads (the
  upload's message, its notes, or its errors' messages);
* ``field``: for an invalid file, the column an error must name.

Rows are built from a valid row of each standard, so every case differs
from a valid file in exactly the way its name says.
"""
from __future__ import annotations

import dataclasses
from typing import Any

COUNCIL_GSS = "S12000033"


@dataclasses.dataclass
class Case:
    standard: str
    name: str
    content: bytes
    outcome: str
    expect: tuple[str, ...] = ()
    field: str | None = None
    filename: str = "return.csv"
    period: str | None = None  # the period asked for, when not the standard's usual one
    code: str | None = None  # intake code, or the validator's error type


# The standards, each with a valid one-row file for COUNCIL_GSS and period.
STANDARDS: dict[str, dict[str, Any]] = {
    "council-tax-collection": {
        "period": "2023-24",
        "frequency": "annual",
        "header": ["gss_code", "financial_year", "chargeable_dwellings", "net_collectable_gbp",
                   "collected_by_year_end_gbp", "in_year_collection_rate_pct"],
        "row": [COUNCIL_GSS, "2023-24", "110000", "125000000", "120000000", "96.0"],
        "integers": ["chargeable_dwellings"],
        "numbers": ["net_collectable_gbp", "collected_by_year_end_gbp", "in_year_collection_rate_pct"],
        "percent": "in_year_collection_rate_pct",
        "titles": {"chargeable_dwellings": "Chargeable dwellings"},
    },
    "visitor-levy": {
        "period": "2023-24",
        "frequency": "annual",
        "header": ["gss_code", "financial_year", "levy_scheme_in_force", "levy_rate_pct",
                   "liable_persons_registered", "chargeable_nights", "levy_collected_gbp",
                   "administration_costs_gbp", "net_proceeds_gbp"],
        "row": [COUNCIL_GSS, "2023-24", "true", "5", "412", "880000", "2100000.50", "150000", "1950000.50"],
        "integers": ["liable_persons_registered", "chargeable_nights"],
        "numbers": ["levy_rate_pct", "levy_collected_gbp", "administration_costs_gbp", "net_proceeds_gbp"],
        "required": ["levy_scheme_in_force"],
        "percent": "levy_rate_pct",
        "titles": {},
    },
    "long-term-empty-homes-monthly": {
        "period": "2024-03",
        "frequency": "monthly",
        "header": ["gss_code", "month", "long_term_empty_dwellings", "long_term_empty_charged_premium",
                   "second_homes", "second_homes_charged_premium", "empty_homes_back_in_use"],
        "row": [COUNCIL_GSS, "2024-03", "1450", "1210", "380", "295", "61"],
        "integers": ["long_term_empty_dwellings", "long_term_empty_charged_premium", "second_homes",
                     "second_homes_charged_premium", "empty_homes_back_in_use"],
        "numbers": [],
        "titles": {},
    },
}


def _csv(rows: list[list[str]]) -> bytes:
    def cell(value: str) -> str:
        if any(c in value for c in ',"\n\r'):
            return '"' + value.replace('"', '""') + '"'
        return value

    return "".join(",".join(cell(v) for v in r) + "\n" for r in rows).encode("utf-8")


def _with(spec: dict[str, Any], column: str, value: str) -> list[str]:
    row = list(spec["row"])
    row[spec["header"].index(column)] = value
    return row


def _required(spec: dict[str, Any]) -> list[str]:
    """Fields whose blank is an error: every integer or number of the
    standards with required figures, and the listed ones."""
    if "required" in spec:
        return spec["required"]
    return spec["integers"] + spec["numbers"]


def cases() -> list[Case]:
    out: list[Case] = []
    for name, spec in STANDARDS.items():
        header, row = spec["header"], spec["row"]
        add = out.append

        # -- one-row returns with blanks (the bug that published NULLs)
        for column in _required(spec):
            add(Case(name, f"blank {column}, only row", _csv([header, _with(spec, column, "")]), "invalid",
                     field=column, code="constraint-error"))
        first = _required(spec)[0]
        add(Case(name, f"blank {first} after a bad cell of the same column",
                 _csv([header, _with(spec, first, "x"), _with(spec, first, "")]), "invalid", field=first))
        add(Case(name, f"spaces only in {first}", _csv([header, _with(spec, first, "   ")]), "invalid", field=first))

        # -- header variants
        spaced = [h + " " for h in header]
        add(Case(name, "spaces after every column name", _csv([spaced, row]), "valid",
                 expect=("spaces around its name",)))
        titled = [h.replace("_", " ").title() for h in header]
        add(Case(name, "column names in title case", _csv([titled, row]), "valid",
                 expect=("was read as the standard's column",)))
        hyphen = [h.upper().replace("_", "-") for h in header]
        add(Case(name, "column names in capitals with hyphens", _csv([hyphen, row]), "valid",
                 expect=("was read as the standard's column",)))
        doubled = header[:2] + [header[2].upper()] + header[2:]
        add(Case(name, "a column twice, once in capitals", _csv([doubled, row[:2] + [row[2]] + row[2:]]),
                 "invalid", field=header[2]))
        add(Case(name, "a column missing", _csv([header[:-1], row[:-1]]), "invalid", field=header[-1]))
        add(Case(name, "two columns swapped", _csv([[header[0], header[1], header[3], header[2], *header[4:]],
                                                   [row[0], row[1], row[3], row[2], *row[4:]]]), "invalid"))
        add(Case(name, "an extra column with no name", _csv([header + [""], row + ["note"]]), "invalid"))

        # -- numeric extremes and the mistakes of a spreadsheet
        integer = spec["integers"][0]
        for label, value in [("a 40-digit count", "9" * 40), ("a count over bigint", "9223372036854775808"),
                             ("a negative count", "-5"), ("a decimal count", "12.5"),
                             ("thousands separators", "1,450"), ("a count in words", "twelve"),
                             ("an exponent", "1e3"), ("a non-ASCII digit", "١٢"),
                             ("a count with a plus sign", "+12")]:
            # (a sign and digits of other scripts are integers to Frictionless, and to the table)
            outcome = "valid" if label in ("a count with a plus sign", "a non-ASCII digit") else "invalid"
            add(Case(name, f"{label} in {integer}", _csv([header, _with(spec, integer, value)]), outcome,
                     field=integer if outcome == "invalid" else None))
        for number in spec["numbers"][:2]:
            for label, value in [("infinity", "inf"), ("not a number", "NaN"), ("an exponent past any table", "1e999999"),
                                 ("a pound sign", "£12.50"), ("a percent sign", "12%"), ("a comma", "1,234.5")]:
                add(Case(name, f"{label} in {number}", _csv([header, _with(spec, number, value)]), "invalid",
                         field=number))
        if spec.get("percent"):
            add(Case(name, "a fraction for a percentage", _csv([header, _with(spec, spec["percent"], "0.956")]),
                     "valid"))
            add(Case(name, "a percentage over 100", _csv([header, _with(spec, spec["percent"], "956")]),
                     "invalid", field=spec["percent"]))

        # -- wide and long
        add(Case(name, "20,000 columns", _csv([header + [f"x{i}" for i in range(20_000)],
                                               row + ["1"] * 20_000]), "rejected", code="too-many-columns",
                 expect=("columns of the return go across the first row",)))
        add(Case(name, "a cell of 40,000 characters", _csv([header, row, _with(spec, header[2], "7" * 40_000)]),
                 "rejected", code="cell-too-long", expect=("Row 3, column 3 holds 40,000 characters",)))
        add(Case(name, "a quote left open", _csv([header]) + (",".join(row) + ',"\n').encode() * 2 + b"x" * 40_000,
                 "rejected", code="cell-too-long", expect=("quote mark left open",)))

        # -- period edges (the period asked for, and the one in the file)
        wrong = "2019-20" if spec["frequency"] == "annual" else "2019-04"
        add(Case(name, "another period in the file", _csv([header, _with(spec, header[1], wrong)]), "invalid",
                 field=header[1]))
        future = "2030-31" if spec["frequency"] == "annual" else "2030-01"
        add(Case(name, "a period that has not ended", _csv([header, _with(spec, header[1], future)]), "refused",
                 period=future, field="period"))
        past = "1990-91" if spec["frequency"] == "annual" else "1990-01"
        add(Case(name, "a period before the return began", _csv([header, _with(spec, header[1], past)]), "refused",
                 period=past, field="period"))
        add(Case(name, "a period written another way", _csv([header, row]), "refused",
                 period=spec["period"].replace("-", "/"), field="period"))
    return out
