"""Reference data shipped with the platform (never fetched at run time):
council codes and names, NRS mid-year population estimates, LGBF family
groups. See ckanext/lgdp/reference/*.md for the sources."""
from __future__ import annotations

import csv
import functools
import hashlib
import io
from collections.abc import Mapping
from importlib import resources
from typing import Any

import ckan.plugins.toolkit as tk

# the councils are the register's (register/councils.py); with the rest of
# the reference data here for the repository and the dashboards
from ckanext.lgdp.register.councils import council_names, councils  # noqa: F401 - re-exported
from ckanext.lgdp.register.councils import read as _rows


@functools.lru_cache(maxsize=1)
def populations() -> dict[str, dict[int, int]]:
    """gss_code -> {mid-year: population}."""
    out: dict[str, dict[int, int]] = {}
    for row in _rows("population.csv"):
        out.setdefault(row["gss_code"], {})[int(row["year"])] = int(row["population"])
    return out


def nearest_estimate(estimates: Mapping[int, int], year: int) -> tuple[int, int] | None:
    """(population, the year it is for) from one council's estimates by
    mid-year: that year's, else the nearest earlier one, else the nearest
    later one; None without estimates. The one population rule: the
    consolidated tables store what it gives, and the checks use it for
    tables that have no population column."""
    if not estimates:
        return None
    if year in estimates:
        return estimates[year], year
    earlier = [y for y in estimates if y < year]
    chosen = max(earlier) if earlier else min(estimates)
    return estimates[chosen], chosen


def population_for(gss: str, year: int) -> tuple[int, int] | None:
    """(population, the year it is for) for a council and year (``nearest_estimate``)."""
    return nearest_estimate(populations().get(gss) or {}, year)


# The column beside a countable field holding its rate per 1,000 population.
RATE_SUFFIX = "_per_1000"


def rate_column(field: str) -> str:
    return f"{field}{RATE_SUFFIX}"


def rate_per_1000(value: Any, population: Any) -> Any:
    """A figure per 1,000 people: the one formula, for a number (None when
    either is missing or the population is 0) or for numpy arrays (NaN or
    inf there, which the checks leave out)."""
    if value is None or population is None or (isinstance(population, (int, float)) and not population):
        return None
    return value * 1000.0 / population


@functools.lru_cache(maxsize=1)
def family_groups() -> tuple[dict[str, str], ...]:
    return tuple(_rows("family_groups.csv"))


# ---------------------------------------------------------------- in the catalogue

CATALOGUE = (
    {
        "name": "scottish-council-areas",
        "file": "councils.csv",
        "title": "Scotland's 32 council areas: GSS codes and names",
        "notes": "The council areas of Scotland with their Government Statistical Service (GSS) codes, "
                 "as used in every data return.",
        "source_citation": "Office for National Statistics / Scottish Government statistical geography (S12 codes)",
        "fields": [("gss_code", "text"), ("name", "text"), ("official_name", "text"), ("slug", "text")],
    },
    {
        "name": "nrs-mid-year-population-estimates",
        "file": "population.csv",
        "doc": "population.md",
        "title": "Mid-year population estimates by council area (NRS), 2001-2022",
        "notes": "National Records of Scotland mid-year population estimates, all persons, for the 32 council "
                 "areas. Used for rates per 1,000 population in the consolidated tables.",
        "source_citation": "National Records of Scotland, Mid-Year Population Estimates (see the sources file)",
        "fields": [("gss_code", "text"), ("council", "text"), ("year", "int4"), ("population", "int8")],
    },
    {
        "name": "lgbf-family-groups",
        "file": "family_groups.csv",
        "doc": "family_groups.md",
        "title": "LGBF family groups of councils",
        "notes": "The Local Government Benchmarking Framework family groups: eight similar councils each, by "
                 "deprivation (people services) and by rurality and density (other services).",
        "source_citation": "Improvement Service, Local Government Benchmarking Framework, How do we compare councils?",
        "fields": [("gss_code", "text"), ("council", "text"), ("family_type", "text"), ("family", "int4")],
    },
)


def _text(name: str) -> str:
    return resources.files("ckanext.lgdp").joinpath(f"reference/{name}").read_text("utf-8")


def publish(context: dict, owner_org: str) -> dict[str, str]:
    """Put the reference data in the catalogue as open datasets, each with its
    table in the DataStore. A changed file becomes a new version (its sha256
    is kept; the version number goes up); an unchanged one changes nothing."""
    done: dict[str, str] = {}
    for spec in CATALOGUE:
        text = _text(spec["file"])
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        try:
            pkg = tk.get_action("package_show")(dict(context), {"id": spec["name"]})
        except tk.ObjectNotFound:
            pkg = None
        if pkg is not None and any(r.get("hash") == f"sha256:{digest}" for r in pkg.get("resources") or []):
            done[spec["name"]] = f"unchanged (version {pkg.get('version')})"
            continue
        version = str(int(pkg.get("version") or 0) + 1) if pkg else "1"
        notes = spec["notes"]
        if spec.get("doc"):
            notes += "\n\n" + _text(spec["doc"])
        fields = {"title": spec["title"], "notes": notes, "owner_org": owner_org, "version": version,
                  "source_citation": spec["source_citation"], "license_id": "uk-ogl"}
        if pkg is None:
            pkg = tk.get_action("package_create")(dict(context), {"type": "dataset", "name": spec["name"], **fields})
        else:
            pkg = tk.get_action("package_patch")(dict(context), {"id": pkg["id"], **fields})
        records = list(csv.DictReader(io.StringIO(text)))
        tk.get_action("datastore_create")(dict(context), {
            "resource": {"package_id": pkg["id"], "name": f"{spec['title']} (version {version})", "format": "CSV",
                         "hash": f"sha256:{digest}", "description": f"Version {version} of {spec['file']}"},
            "fields": [{"id": n, "type": t} for n, t in spec["fields"]],
            "records": records,
        })
        done[spec["name"]] = f"version {version}"
    return done
