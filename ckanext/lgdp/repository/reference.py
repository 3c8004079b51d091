"""Reference data shipped with the platform (never fetched at run time):
council codes and names, NRS mid-year population estimates, LGBF family
groups. See ckanext/lgdp/reference/*.md for the sources."""
from __future__ import annotations

import csv
import functools
import io
from importlib import resources


def _rows(name: str) -> list[dict[str, str]]:
    try:
        text = resources.files("ckanext.lgdp").joinpath(f"reference/{name}").read_text("utf-8")
    except FileNotFoundError:
        return []
    return list(csv.DictReader(io.StringIO(text)))


@functools.lru_cache(maxsize=1)
def councils() -> tuple[dict[str, str], ...]:
    return tuple(_rows("councils.csv"))


def council_names() -> dict[str, str]:
    return {c["gss_code"]: c["name"] for c in councils()}


@functools.lru_cache(maxsize=1)
def populations() -> dict[str, dict[int, int]]:
    """gss_code -> {mid-year: population}."""
    out: dict[str, dict[int, int]] = {}
    for row in _rows("population.csv"):
        out.setdefault(row["gss_code"], {})[int(row["year"])] = int(row["population"])
    return out


def population_for(gss: str, year: int) -> tuple[int, int] | None:
    """(population, the year it is for) for a council and year: that year's
    estimate, else the nearest earlier one, else the nearest later one."""
    years = populations().get(gss) or {}
    if not years:
        return None
    if year in years:
        return years[year], year
    earlier = [y for y in years if y < year]
    chosen = max(earlier) if earlier else min(years)
    return years[chosen], chosen


@functools.lru_cache(maxsize=1)
def family_groups() -> tuple[dict[str, str], ...]:
    return tuple(_rows("family_groups.csv"))
