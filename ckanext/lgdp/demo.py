"""Demo content for a local platform: the 32 councils, a few requesting
agencies, the coordinating body and some real data returns with their data
standards and example files. Everything goes through CKAN's actions, so the
demo exercises the same validation and indexing as real use; running it twice
changes nothing.
"""
from __future__ import annotations

import csv
import io
import json
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from werkzeug.datastructures import FileStorage

import ckan.plugins.toolkit as tk

REPO_ROOT = Path(__file__).resolve().parents[2]
STANDARDS = REPO_ROOT / "schemas" / "standards"

AGENCIES = [
    {
        "name": "sg-homelessness-statistics",
        "title": "Scottish Government: Homelessness Statistics",
        "notes": "Housing and homelessness analysis, Communities Analysis Division.",
        "website": "https://www.gov.scot/collections/homelessness-statistics/",
    },
    {
        "name": "sg-local-government-finance",
        "title": "Scottish Government: Local Government Finance Statistics",
        "notes": "Local government finance statistics, including council tax and non-domestic rates.",
        "website": "https://www.gov.scot/collections/local-government-finance-statistics/",
    },
    {
        "name": "sepa",
        "title": "Scottish Environment Protection Agency (SEPA)",
        "notes": "Household waste and recycling data returns (WasteDataFlow).",
        "website": "https://www.sepa.org.uk/",
    },
    {
        "name": "care-inspectorate",
        "title": "Care Inspectorate",
        "notes": "Regulation and inspection of care services.",
        "website": "https://www.careinspectorate.com/",
    },
    {
        "name": "public-health-scotland",
        "title": "Public Health Scotland",
        "notes": "National public health body.",
        "website": "https://publichealthscotland.scot/",
    },
]

COORDINATOR = {
    "name": "lgdp-coordination",
    "title": "Local Government Data Platform Coordination",
    "notes": "The coordinating body: governs the register of data returns on behalf of local government.",
}

RETURNS = [
    {
        "name": "council-tax-collection",
        "title": "Council Tax Collection Statistics (CTAS)",
        "owner_org": "sg-local-government-finance",
        "notes": "Annual return of council tax billed and collected, used for the "
        "Council Tax Collection Statistics publication and the Local Government "
        "Benchmarking Framework.",
        "frequency": "annual",
        "statutory": "no",
        "legal_basis": "Local Government Finance Act 1992 (collection); the return itself is voluntary",
        "topic": "Finance",
        "standard": "council-tax-collection.v1.json",
        "example": [
            ["gss_code", "financial_year", "chargeable_dwellings", "net_collectable_gbp",
             "collected_by_year_end_gbp", "in_year_collection_rate_pct"],
            ["S12000047", "2023-24", "186035", "257310000", "247480000", "96.2"],
            ["S12000049", "2023-24", "323790", "463880000", "435120000", "93.8"],
            ["S12000036", "2023-24", "254190", "442770000", "429900000", "97.1"],
        ],
    },
    {
        "name": "hl1-homelessness",
        "title": "Homelessness applications and temporary accommodation (HL1)",
        "owner_org": "sg-homelessness-statistics",
        "notes": "Quarterly summary of the HL1 homelessness case return and the "
        "temporary accommodation return, for the Homelessness in Scotland statistics.",
        "frequency": "quarterly",
        "statutory": "yes",
        "legal_basis": "Housing (Scotland) Act 1987, Part II; Housing (Scotland) Act 2001",
        "topic": "Housing",
        "standard": "hl1-homelessness.v1.json",
        # One row breaks the standard on purpose, so the demo shows a report.
        "example": [
            ["gss_code", "period", "applications", "assessed_homeless", "households_in_ta",
             "children_in_ta"],
            ["S12000047", "2024-Q1", "612", "518", "702", "398"],
            ["S12000049", "2024-Q1", "1580", "1362", "3129", "1710"],
            ["S12000036", "2024-Q1", "twelve", "1011", "4904", "2320"],
        ],
    },
]


def _councils() -> list[dict[str, str]]:
    text = resources.files("ckanext.lgdp").joinpath("reference/councils.csv").read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _upsert_org(context: dict[str, Any], data: dict[str, Any]) -> bool:
    """Create the organisation, or leave an existing one alone. True if created."""
    try:
        tk.get_action("organization_show")(dict(context), {"id": data["name"]})
        return False
    except tk.ObjectNotFound:
        tk.get_action("organization_create")(dict(context), data)
        return True


def _csv_upload(filename: str, rows: list[list[str]]) -> FileStorage:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return FileStorage(
        stream=io.BytesIO(buf.getvalue().encode("utf-8")),
        filename=filename,
        content_type="text/csv",
    )


def load(site_user: str, echo: Callable[[str], None] = print) -> dict[str, int]:
    context = {"user": site_user, "ignore_auth": True}
    created = {"organisations": 0, "returns": 0}

    for council in _councils():
        created["organisations"] += _upsert_org(
            context,
            {
                "name": council["slug"],
                "title": council["official_name"],
                "org_type": "council",
                "gss_code": council["gss_code"],
                "official_name": council["official_name"],
            },
        )
    for agency in AGENCIES:
        created["organisations"] += _upsert_org(context, {**agency, "org_type": "agency"})
    created["organisations"] += _upsert_org(context, {**COORDINATOR, "org_type": "coordinator"})
    echo(f"organisations: {created['organisations']} created")

    for spec in RETURNS:
        try:
            tk.get_action("package_show")(dict(context), {"id": spec["name"]})
            continue
        except tk.ObjectNotFound:
            pass
        standard = json.loads((STANDARDS / spec["standard"]).read_text("utf-8"))
        dataset = tk.get_action("package_create")(
            dict(context),
            {
                "type": "data-return",
                "name": spec["name"],
                "title": spec["title"],
                "owner_org": spec["owner_org"],
                "notes": spec["notes"],
                "frequency": spec["frequency"],
                "statutory": spec["statutory"],
                "legal_basis": spec["legal_basis"],
                "topic": spec["topic"],
                "lifecycle_status": "active",
            },
        )
        tk.get_action("resource_create")(
            dict(context),
            {
                "package_id": dataset["id"],
                "name": f"Example file: {spec['title']}",
                "description": "An example file laid out to the data standard.",
                "format": "CSV",
                "schema": json.dumps(standard),
                "upload": _csv_upload(f"{spec['name']}-example.csv", spec["example"]),
            },
        )
        created["returns"] += 1
        echo(f"return {spec['name']}: created")
    return created
