"""Checks on the shipped reference data in ckanext/lgdp/reference/.

Pure file checks: no CKAN, no services. Run with
    .venv/bin/python -m pytest -q -p no:ckan -p no:ckan_fixtures -o addopts="" \
        tests/test_reference_data.py
Sources and caveats are in ckanext/lgdp/reference/population.md and
family_groups.md.
"""
from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[1] / "ckanext" / "lgdp" / "reference"

# Published Scotland totals (all persons, 30 June) that the 32 council-area
# figures must add up to. They are the SCOTLAND rows of the same tables the
# council figures come from:
#   2001-2020: ONS, "Population estimates for the UK, England and Wales, Scotland
#              and Northern Ireland: mid-2020" (published 25 June 2021),
#              ukpopestimatesmid2020on2021geography.xls, sheet MYE 5
#              (Scottish figures are NRS mid-year estimates; 2001-2010 are the
#              NRS estimates revised after the 2011 Census). 2001-2019 are
#              identical in the ONS mid-2019 file (published 24 June 2020).
#   2021:      ONS, same dataset, mid-2021 edition (published 21 December 2022),
#              ukpopestimatesmid2021on2021geographyfinal.xls, MYE2 - Persons;
#              = NRS Mid-2021 Population Estimates Scotland (2011-Census-based).
#   2022:      NRS, Mid-Year Population Estimates, Scotland, mid-2022
#              (published 26 March 2024), mid-year-pop-est-22-data.xlsx,
#              Table 1 (first Census-2022-based estimate; before the
#              8 October 2024 revision).
# NRS text confirms 2013 (5,327,700), 2016 (5,404,700), 2017 (5,424,800),
# 2019 (5,463,300), 2021 (5,479,900) and 2022 (5,447,700).
SCOTLAND_TOTALS = {
    2001: 5_064_200,
    2002: 5_066_000,
    2003: 5_068_500,
    2004: 5_084_300,
    2005: 5_110_200,
    2006: 5_133_100,
    2007: 5_170_000,
    2008: 5_202_900,
    2009: 5_231_900,
    2010: 5_262_200,
    2011: 5_299_900,
    2012: 5_313_600,
    2013: 5_327_700,
    2014: 5_347_600,
    2015: 5_373_000,
    2016: 5_404_700,
    2017: 5_424_800,
    2018: 5_438_100,
    2019: 5_463_300,
    2020: 5_466_000,
    2021: 5_479_900,
    2022: 5_447_700,
}

# Year-on-year change allowed for one council. Real published changes reach
# 2.3% within a series (Argyll and Bute 2011->2012) and 2.6% across the
# 2021->2022 census break (East Lothian); see population.md.
MAX_ANNUAL_CHANGE = 0.03


def _read(name: str) -> list[dict[str, str]]:
    with open(REFERENCE / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def councils() -> dict[str, str]:
    rows = _read("councils.csv")
    assert len(rows) == 32
    return {r["gss_code"]: r["name"] for r in rows}


@pytest.fixture(scope="module")
def population() -> list[dict[str, str]]:
    return _read("population.csv")


@pytest.fixture(scope="module")
def families() -> list[dict[str, str]]:
    return _read("family_groups.csv")


def _by_year(population: list[dict[str, str]]) -> dict[int, dict[str, int]]:
    table: dict[int, dict[str, int]] = defaultdict(dict)
    for row in population:
        table[int(row["year"])][row["gss_code"]] = int(row["population"])
    return table


def test_population_columns(population):
    assert population, "population.csv is empty"
    assert list(population[0].keys()) == ["gss_code", "council", "year", "population"]


def test_population_names_and_values(population, councils):
    for row in population:
        assert row["gss_code"] in councils, row
        assert row["council"] == councils[row["gss_code"]], row
        assert row["population"].isdigit() and int(row["population"]) > 0, row


def test_every_council_exactly_once_per_year(population, councils):
    counts = Counter((int(r["year"]), r["gss_code"]) for r in population)
    years = {int(r["year"]) for r in population}
    for year in years:
        for code in councils:
            assert counts[(year, code)] == 1, (year, code, counts[(year, code)])
    assert len(population) == 32 * len(years)


def test_years_are_consecutive_and_cited(population):
    years = sorted({int(r["year"]) for r in population})
    assert years == list(range(years[0], years[-1] + 1))
    assert set(years) == set(SCOTLAND_TOTALS)
    assert {2019, 2020, 2021, 2022} <= set(years)


def test_yearly_totals_match_published_scotland_totals(population):
    for year, values in _by_year(population).items():
        assert sum(values.values()) == SCOTLAND_TOTALS[year], year


def test_figures_are_rounded_to_ten_as_published(population):
    assert all(int(r["population"]) % 10 == 0 for r in population)


def test_annual_change_is_plausible(population):
    table = _by_year(population)
    for year in sorted(table)[1:]:
        for code, value in table[year].items():
            before = table[year - 1][code]
            assert abs(value - before) / before < MAX_ANNUAL_CHANGE, (code, year)


def test_family_columns(families):
    assert list(families[0].keys()) == ["gss_code", "council", "family_type", "family"]


def test_family_groups_have_eight_councils_each_and_cover_all(families, councils):
    for row in families:
        assert row["gss_code"] in councils, row
        assert row["council"] == councils[row["gss_code"]], row
    for family_type in ("people", "other"):
        rows = [r for r in families if r["family_type"] == family_type]
        codes = [r["gss_code"] for r in rows]
        assert len(codes) == len(set(codes)) == 32, family_type
        assert set(codes) == set(councils), family_type
        sizes = Counter(int(r["family"]) for r in rows)
        assert sizes == {1: 8, 2: 8, 3: 8, 4: 8}, (family_type, sizes)
    assert {r["family_type"] for r in families} == {"people", "other"}
    assert len(families) == 64


def test_family_groups_spot_checks(families):
    """A few placements straight from the Improvement Service page."""
    lookup = {(r["gss_code"], r["family_type"]): int(r["family"]) for r in families}
    assert lookup[("S12000011", "people")] == 1  # East Renfrewshire
    assert lookup[("S12000049", "people")] == 4  # Glasgow City
    assert lookup[("S12000013", "other")] == 1  # Na h-Eileanan Siar
    assert lookup[("S12000036", "other")] == 4  # City of Edinburgh
