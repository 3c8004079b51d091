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
from typing import Any, Callable

import yaml
from werkzeug.datastructures import FileStorage

import ckan.plugins.toolkit as tk

from ckanext.lgdp import demo_submissions
from ckanext.lgdp.register import lifecycle
from ckanext.lgdp.register.councils import councils as council_areas
from ckanext.lgdp.repository import reference
from ckanext.lgdp.submissions import indexing

# The data standards ship inside the package (ckanext/lgdp/schemas/standards).
STANDARDS = resources.files("ckanext.lgdp").joinpath("schemas/standards")

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

# The demo register: real returns, their agencies and standards.
CATALOGUE = "demo_returns.yaml"
# The fields of a return in the catalogue that are dataset fields as they stand.
RETURN_FIELDS = (
    "name", "title", "owner_org", "requesting_agencies", "notes", "statutory", "legal_basis",
    "frequency", "period_basis", "due_days_after_period_end", "collection_start",
    "review_date", "burden_hours", "topic", "guidance", "contact_email",
)
REASONS = {
    "approved": "Approved by the data board: need and value agreed",
    "active": "Collection opened to councils",
    "under_review": "Periodic review started",
    "retired": "Retired after review: the data is no longer needed",
    "rejected": "Rejected by the data board: the need is met by existing collections",
}


def _catalogue() -> dict[str, Any]:
    text = resources.files("ckanext.lgdp").joinpath(CATALOGUE).read_text("utf-8")
    return yaml.safe_load(text)


def _councils() -> list[dict[str, str]]:
    return list(council_areas())


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


def load(site_user: str, echo: Callable[[str], None] = print, councils_limit: int | None = None,
         years: int = 4) -> dict[str, int]:
    """Load the demo; `councils_limit` and `years` trim the submissions (tests)."""
    context = {"user": site_user, "ignore_auth": True}
    created = {"organisations": 0, "returns": 0}
    councils = _councils()[:councils_limit] if councils_limit else _councils()

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

    catalogue = _catalogue()
    for agency in catalogue.get("agencies", []):
        created["organisations"] += _upsert_org(context, {**agency, "org_type": "agency"})

    for spec in catalogue["returns"]:
        try:
            tk.get_action("package_show")(dict(context), {"id": spec["name"]})
            continue
        except tk.ObjectNotFound:
            pass
        standard = json.loads((STANDARDS / spec["standard"]).read_text("utf-8"))
        fields = {k: spec[k] for k in RETURN_FIELDS if spec.get(k) not in (None, "")}
        dataset = tk.get_action("package_create")(
            dict(context),
            {**fields, "type": "data-return", "data_standard": json.dumps(standard)},
        )
        for state in lifecycle.path_to(spec.get("lifecycle", "active")):
            tk.get_action("lgdp_return_transition")(
                dict(context), {"id": dataset["id"], "to": state, "reason": REASONS[state]}
            )
        if spec.get("example"):
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
        echo(f"return {spec['name']}: {spec.get('lifecycle', 'active')}")

    for name, state in reference.publish(context, COORDINATOR["name"]).items():
        echo(f"reference data {name}: {state}")

    for fate, n in demo_submissions.load(site_user, councils, echo=echo, years=years).items():
        created[f"submissions {fate}"] = n
    # the search documents the steps left for the workers' batches, now, so
    # that the catalogue shows every state when the demo is loaded
    refreshed = indexing.refresh()
    echo(f"search documents refreshed: {refreshed['refreshed']}")
    return created
