"""ckanext.lgdp.repository.qa: cross-council quality-assurance checks.

Pure pandas (no CKAN, no database). Fixtures are built from real standards
(council-tax-collection: a countable count, two money amounts the standard
does not mark countable and a percentage; hl2-temporary-accommodation: a
declared total) for the 32 councils of ckanext/lgdp/reference/councils.csv
over several periods, with seeded, slightly noisy values and a made-up but
plausible population table (generated here, so the test does not depend on
the real population file someone else maintains).

    .venv/bin/python -m pytest -q -p no:ckan -p no:ckan_fixtures -o addopts="" tests/test_qa.py
"""
from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ckanext.lgdp.repository import qa
from ckanext.lgdp.repository.qa import Flag, QAConfig, rates_per_1000, run_checks

from tests.conftest import ROOT, STANDARDS  # noqa: E402 - the one path of the standards

with (ROOT / "ckanext" / "lgdp" / "reference" / "councils.csv").open(newline="") as fh:
    COUNCILS = [{"gss_code": r["gss_code"], "name": r["name"]} for r in csv.DictReader(fh)]
GSS = {c["name"]: c["gss_code"] for c in COUNCILS}

# Roughly the mid-2022 estimates (rounded); only plausibility matters here.
POP_2022 = {
    "Aberdeen City": 224_000, "Aberdeenshire": 263_800, "Angus": 114_800, "Argyll and Bute": 86_900,
    "City of Edinburgh": 523_300, "Clackmannanshire": 51_800, "Dumfries and Galloway": 145_700,
    "Dundee City": 148_800, "East Ayrshire": 120_200, "East Dunbartonshire": 108_900,
    "East Lothian": 112_500, "East Renfrewshire": 97_200, "Falkirk": 158_900, "Fife": 374_700,
    "Glasgow City": 635_100, "Highland": 238_100, "Inverclyde": 77_100, "Midlothian": 96_300,
    "Moray": 94_400, "Na h-Eileanan Siar": 26_100, "North Ayrshire": 133_600,
    "North Lanarkshire": 341_100, "Orkney Islands": 22_000, "Perth and Kinross": 153_800,
    "Renfrewshire": 186_400, "Scottish Borders": 116_000, "Shetland Islands": 22_900,
    "South Ayrshire": 112_500, "South Lanarkshire": 328_000, "Stirling": 92_500,
    "West Dunbartonshire": 88_300, "West Lothian": 183_800,
}
YEARS = list(range(2016, 2027))
CT_PERIODS = [f"{y}-{(y + 1) % 100:02d}" for y in range(2019, 2025)]  # 2019-20 .. 2024-25
HL2_PERIODS = [(y, q) for y in (2023, 2024) for q in (1, 2, 3, 4)]  # 2023-Q1 .. 2024-Q4


def standard(name: str) -> dict:
    return json.loads((STANDARDS / f"{name}.v1.json").read_text())


def population_table(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for c in COUNCILS:
        growth = rng.uniform(-0.003, 0.008)
        for y in YEARS:
            rows.append({"gss_code": c["gss_code"], "year": y,
                         "population": int(round(POP_2022[c["name"]] * (1 + growth) ** (y - 2022)))})
    return pd.DataFrame(rows)


def pop_of(pop: pd.DataFrame, gss: str, year: int) -> float:
    return float(pop[(pop.gss_code == gss) & (pop.year == year)].population.iloc[0])


def pop_lookup(pop: pd.DataFrame) -> dict[tuple[str, int], float]:
    return dict(zip(zip(pop.gss_code, pop.year), pop.population.astype(float)))


def spread(rng: np.random.Generator, low: float, high: float) -> dict[str, float]:
    """A level per council, evenly spread over [low, high] in a random
    order (with 32 independent uniform draws a cluster can make the MAD
    small by chance, and then an ordinary council looks like an outlier)."""
    levels = rng.permutation(np.linspace(low, high, len(COUNCILS)))
    return {c["gss_code"]: float(v) for c, v in zip(COUNCILS, levels)}


def council_tax_table(pop: pd.DataFrame, seed: int = 11) -> pd.DataFrame:
    """Council tax collection, 2019-20 to 2024-25, all 32 councils."""
    rng = np.random.default_rng(seed)
    people_in = pop_lookup(pop)
    rows = []
    dwellings_rates = spread(rng, 440, 500)  # chargeable dwellings per 1,000 people
    per_dwellings = spread(rng, 1250, 1550)  # net collectable per dwelling, 2019-20
    collections = spread(rng, 94.5, 97.0)
    for c in COUNCILS:
        gss = c["gss_code"]
        dwellings_rate, per_dwelling, collection = dwellings_rates[gss], per_dwellings[gss], collections[gss]
        for i, label in enumerate(CT_PERIODS):
            year = 2019 + i
            people = people_in[c["gss_code"], year]
            dwellings = round(people * dwellings_rate * (1 + 0.002 * i) * (1 + rng.normal(0, 0.003)) / 1000)
            net = round(dwellings * per_dwelling * 1.04 ** i * (1 + rng.normal(0, 0.004)), 2)
            rate = round(collection + rng.normal(0, 0.2), 1)
            rows.append({
                "council_gss": c["gss_code"], "council_name": c["name"], "period": label,
                "period_start": f"{year}-04-01", "gss_code": c["gss_code"], "financial_year": label,
                "chargeable_dwellings": dwellings, "net_collectable_gbp": net,
                "collected_by_year_end_gbp": round(net * rate / 100, 2),
                "in_year_collection_rate_pct": rate,
            })
    return pd.DataFrame(rows)


def hl2_table(pop: pd.DataFrame, seed: int = 5) -> pd.DataFrame:
    """Households in temporary accommodation, 2023-Q1 to 2024-Q4."""
    rng = np.random.default_rng(seed)
    bands = {  # households per 1,000 people
        "households_la_dwelling": (1.0, 2.0), "households_rsl_dwelling": (0.3, 0.7),
        "households_hostel": (0.1, 0.3), "households_bed_and_breakfast": (0.05, 0.2),
        "households_other_ta": (0.1, 0.3),
    }
    people_in = pop_lookup(pop)
    levels = {k: spread(rng, *b) for k, b in bands.items()}
    with_children_rates, per_households, uaos = spread(rng, 0.7, 1.1), spread(rng, 1.7, 1.8), spread(rng, 0.05, 0.2)
    rows = []
    for c in COUNCILS:
        gss = c["gss_code"]
        base = {k: v[gss] for k, v in levels.items()}
        with_children_rate, per_household, uao = with_children_rates[gss], per_households[gss], uaos[gss]
        for y, q in HL2_PERIODS:
            people = people_in[c["gss_code"], y] / 1000
            parts = {k: int(round(v * people * (1 + rng.normal(0, 0.02)))) for k, v in base.items()}
            total = sum(parts.values())
            with_children = int(round(with_children_rate * people * (1 + rng.normal(0, 0.02))))
            rows.append({
                "council_gss": c["gss_code"], "council_name": c["name"], "period": f"{y}-Q{q}",
                "period_start": f"{y}-{3 * q - 2:02d}-01", "gss_code": c["gss_code"],
                "households_in_ta_total": total, **parts, "households_with_children": with_children,
                "children_in_ta": int(round(with_children * per_household)),
                "uao_breaches": int(round(uao * people * (1 + rng.normal(0, 0.02)))),
            })
    return pd.DataFrame(rows)


def robust_z(values: pd.Series, x: float) -> float:
    med = values.median()
    return (x - med) / (1.4826 * (values - med).abs().median())


def summary(flags: list[Flag]) -> set[tuple]:
    return {(f.check, f.council_name, f.period, f.field) for f in flags}


@pytest.fixture(scope="module")
def pop() -> pd.DataFrame:
    return population_table()


@pytest.fixture(scope="module")
def ct_schema() -> dict:
    return standard("council-tax-collection")


@pytest.fixture(scope="module")
def hl2_schema() -> dict:
    return standard("hl2-temporary-accommodation")


@pytest.fixture(scope="module")
def ct_clean(pop) -> pd.DataFrame:
    return council_tax_table(pop)


@pytest.fixture(scope="module")
def hl2_clean(pop) -> pd.DataFrame:
    return hl2_table(pop)


# --------------------------------------------------------------------------
# clean data: no flags at all


def test_clean_council_tax_has_no_flags(ct_clean, ct_schema, pop):
    assert len(ct_clean) == 32 * len(CT_PERIODS)
    assert run_checks(ct_clean, ct_schema, councils=COUNCILS, population=pop) == []
    for label in CT_PERIODS:
        assert run_checks(ct_clean, ct_schema, period=label, councils=COUNCILS, population=pop) == []


def test_clean_hl2_has_no_flags(hl2_clean, hl2_schema, pop):
    assert run_checks(hl2_clean, hl2_schema, councils=COUNCILS, population=pop) == []


def test_clean_fixtures_are_clean_for_other_seeds(ct_schema, hl2_schema):
    """The noise is tuned so that "clean" is not luck of one seed."""
    for seed in range(10):
        pop = population_table(100 + seed)
        assert run_checks(council_tax_table(pop, 200 + seed), ct_schema, councils=COUNCILS, population=pop) == []
        assert run_checks(hl2_table(pop, 300 + seed), hl2_schema, councils=COUNCILS, population=pop) == []


def test_glasgow_is_big_not_odd(ct_clean, ct_schema, pop):
    """Glasgow's raw counts and amounts are far out of line with the other
    councils only because it is the biggest: per 1,000 people it is
    ordinary, so it is not flagged."""
    last = ct_clean[ct_clean.period == "2024-25"]
    glasgow = last[last.council_name == "Glasgow City"].iloc[0]
    assert robust_z(last.chargeable_dwellings, glasgow.chargeable_dwellings) > 3.5
    assert robust_z(last.net_collectable_gbp, glasgow.net_collectable_gbp) > 3.5
    flags = run_checks(ct_clean, ct_schema, councils=COUNCILS, population=pop)
    assert not [f for f in flags if f.council_name == "Glasgow City"]
    # ... whereas comparing the unmarked money amounts raw would flag it
    raw = run_checks(ct_clean, ct_schema, councils=COUNCILS, population=pop,
                     config=QAConfig(unmarked_numeric="as_is"))
    assert ("outlier", "Glasgow City", "2024-25", "net_collectable_gbp") in summary(raw)


# --------------------------------------------------------------------------
# planted problems


@pytest.fixture(scope="module")
def ct_planted(ct_clean) -> pd.DataFrame:
    t = ct_clean.copy()
    last = t.period == "2024-25"
    t.loc[last & (t.council_name == "Inverclyde"), "in_year_collection_rate_pct"] = 81.0
    t.loc[last & (t.council_name == "Falkirk"), "chargeable_dwellings"] *= 10
    t = t[~((t.council_name == "Orkney Islands") & (t.period == "2022-23"))]
    return t.reset_index(drop=True)


def test_planted_council_tax_problems_are_flagged(ct_planted, ct_clean, ct_schema, pop):
    flags = run_checks(ct_planted, ct_schema, councils=COUNCILS, population=pop)
    assert summary(flags) == {
        ("outlier", "Inverclyde", "2024-25", "in_year_collection_rate_pct"),
        ("outlier", "Falkirk", "2024-25", "chargeable_dwellings"),
        ("jump", "Falkirk", "2024-25", "chargeable_dwellings"),
        ("missing", "Orkney Islands", "2022-23", None),
    }
    by = {(f.check, f.council_name): f for f in flags}

    # collection rate: compared as it is
    rate = by["outlier", "Inverclyde"]
    others = ct_planted[(ct_planted.period == "2024-25") & (ct_planted.council_name != "Inverclyde")]
    med = ct_planted[ct_planted.period == "2024-25"].in_year_collection_rate_pct.median()
    assert rate.council_gss == GSS["Inverclyde"] and rate.value == 81.0 and rate.expected == pytest.approx(med)
    assert 94 < med < 97 and others.in_year_collection_rate_pct.min() > 93
    assert rate.severity == "error" and rate.detail["z"] < -7 and rate.detail["basis"] == "as_is"
    assert rate.detail["scale_method"] == "mad" and rate.detail["councils_compared"] == 32
    assert rate.reason.startswith("In-year collection rate of 81.0% is far below other councils")
    assert f"median {med:.1f}%" in rate.reason and f"robust z = {rate.detail['z']:.1f}" in rate.reason
    assert "2024-25" in rate.reason
    assert rate.key == f"outlier|{GSS['Inverclyde']}|2024-25|in_year_collection_rate_pct"

    # dwellings x10: an outlier per 1,000 people ...
    out = by["outlier", "Falkirk"]
    falkirk = GSS["Falkirk"]
    people = pop_of(pop, falkirk, 2024)
    dwellings = float(ct_planted[(ct_planted.council_gss == falkirk) & (ct_planted.period == "2024-25")]
                      .chargeable_dwellings.iloc[0])
    assert out.value == pytest.approx(dwellings / people * 1000)
    assert out.severity == "error" and out.detail["basis"] == "per_1000" and out.detail["population_year"] == 2024
    assert out.detail["raw_value"] == dwellings and out.detail["population"] == people
    assert f"{dwellings / people * 1000:,.1f} per 1,000 population" in out.reason
    assert f"{dwellings:,.0f} for a population of {people:,.0f}, mid-2024 estimate" in out.reason
    assert "far above other councils" in out.reason and f"median {out.expected:,.1f} per 1,000" in out.reason

    # ... and a jump from the previous year
    jump = by["jump", "Falkirk"]
    before = float(ct_clean[(ct_clean.council_gss == falkirk) & (ct_clean.period == "2023-24")]
                   .chargeable_dwellings.iloc[0])
    prev_rate = before / pop_of(pop, falkirk, 2023) * 1000
    assert jump.severity == "warning" and jump.detail["previous_period"] == "2023-24"
    assert jump.expected == pytest.approx(prev_rate) and jump.value == pytest.approx(out.value)
    assert jump.detail["basis"] == "per_1000" and jump.detail["previous_population_year"] == 2023
    change = (out.value - prev_rate) / prev_rate * 100
    assert (f"Chargeable dwellings rose from {prev_rate:,.1f} to {out.value:,.1f} per 1,000 population "
            f"(+{change:.0f}%) between 2023-24 and 2024-25 (from {before:,.0f} to {dwellings:,.0f})") in jump.reason

    # Orkney missing 2022-23
    miss = by["missing", "Orkney Islands"]
    assert miss.severity == "info" and miss.field is None and miss.value is None
    assert miss.key == f"missing|{GSS['Orkney Islands']}|2022-23|"
    assert "31 of the 32 councils" in miss.reason

    # every flag is a plain, JSON-serialisable record with a unique key
    json.dumps([f.as_dict() for f in flags])
    assert len({f.key for f in flags}) == len(flags)
    # errors first
    assert [f.severity for f in flags] == sorted((f.severity for f in flags), key=["error", "warning", "info"].index)


def test_period_argument_limits_flags_to_that_period(ct_planted, ct_schema, pop):
    only = run_checks(ct_planted, ct_schema, period="2024-25", councils=COUNCILS, population=pop)
    assert summary(only) == {
        ("outlier", "Inverclyde", "2024-25", "in_year_collection_rate_pct"),
        ("outlier", "Falkirk", "2024-25", "chargeable_dwellings"),
        ("jump", "Falkirk", "2024-25", "chargeable_dwellings"),
    }
    assert summary(run_checks(ct_planted, ct_schema, period="2022-23", councils=COUNCILS, population=pop)) == {
        ("missing", "Orkney Islands", "2022-23", None)}
    # Orkney's 2023-24 is compared with its previous period present, 2021-22
    t = ct_planted.copy()
    orkney = (t.council_name == "Orkney Islands") & (t.period == "2023-24")
    t.loc[orkney, "chargeable_dwellings"] = (t.loc[orkney, "chargeable_dwellings"] * 1.6).round()
    jumps = [f for f in run_checks(t, ct_schema, period="2023-24", councils=COUNCILS, population=pop)
             if f.check == "jump"]
    assert [(f.council_name, f.detail["previous_period"]) for f in jumps] == [("Orkney Islands", "2021-22")]
    # a period nobody has reported yet: every council is missing
    ahead = run_checks(ct_planted, ct_schema, period="2025-26", councils=COUNCILS, population=pop)
    assert {f.check for f in ahead} == {"missing"} and len(ahead) == 32


def _flags_json(flags: list[Flag]) -> list[str]:
    """Flags as text; without the totals check's ``detail.row``, the
    position of the failing row among the rows the checks were given."""
    out = []
    for f in flags:
        d = f.as_dict()
        d["detail"] = {k: v for k, v in d["detail"].items() if not (f.check == "totals" and k == "row")}
        out.append(json.dumps(d, sort_keys=True, default=str))
    return out


def test_the_checks_of_a_period_need_only_the_periods_it_reads(ct_planted, ct_schema, hl2_clean, hl2_schema, pop):
    """After an acceptance the checks of its period read only that period
    and each council's previous one (periods_read): the same flags as over
    the whole table, for every period, gaps and several rows per
    council-period included."""
    t = ct_planted.copy()
    orkney = (t.council_name == "Orkney Islands") & (t.period == "2023-24")
    t.loc[orkney, "chargeable_dwellings"] = (t.loc[orkney, "chargeable_dwellings"] * 1.6).round()
    t = t[~((t.council_name == "Fife") & t.period.isin(["2020-21", "2021-22"]))]
    split = pd.concat([hl2_clean, hl2_clean.iloc[::3]], ignore_index=True)
    split.loc[split.index[::7], "households_hostel"] += 3
    for table, schema in ((t, ct_schema), (split, hl2_schema)):
        periods = list(dict.fromkeys(table.period)) + ["2099-00"]
        for period in periods:
            read = qa.periods_read(table[["council_gss", "period", "period_start"]], period)
            assert period in read and len(read) <= 3
            part = table[table.period.isin(read)]
            if part.empty:  # as table_frame: nobody reported it, the whole table
                part = table
            whole = run_checks(table, schema, period=period, councils=COUNCILS, population=pop)
            assert _flags_json(run_checks(part, schema, period=period, councils=COUNCILS, population=pop)) == \
                _flags_json(whole), period
    keys = t[["council_gss", "period", "period_start"]]
    assert qa.periods_read(keys, "2024-25") == ["2023-24", "2024-25"]
    # Fife skipped two years: its 2022-23 is compared with its 2019-20
    assert qa.periods_read(keys, "2022-23") == ["2019-20", "2021-22", "2022-23"]
    assert qa.periods_read(keys, "2099-00") == ["2099-00"]


def test_totals_not_equal_to_parts(hl2_clean, hl2_schema, pop):
    t = hl2_clean.copy()
    dundee = (t.council_name == "Dundee City") & (t.period == "2024-Q3")
    t.loc[dundee, "households_in_ta_total"] += 12
    flags = run_checks(t, hl2_schema, councils=COUNCILS, population=pop)
    assert summary(flags) == {("totals", "Dundee City", "2024-Q3", "households_in_ta_total")}
    (flag,) = flags
    row = t[dundee].iloc[0]
    parts = ["households_la_dwelling", "households_rsl_dwelling", "households_hostel",
             "households_bed_and_breakfast", "households_other_ta"]
    total, added = int(row.households_in_ta_total), int(sum(row[p] for p in parts))
    assert total - added == 12
    assert flag.severity == "error" and flag.value == total and flag.expected == added
    assert flag.detail["parts"] == {p: int(row[p]) for p in parts} and flag.detail["difference"] == 12
    assert flag.reason.startswith(
        f"Households in temporary accommodation is {total:,} but its parts add up to {added:,} "
        f"(In local authority ordinary dwellings {int(row.households_la_dwelling):,} + ")
    assert "a difference of 12, in 2024-Q3" in flag.reason
    assert flag.key == (f"totals|{GSS['Dundee City']}|2024-Q3|households_in_ta_total="
                        "households_la_dwelling+households_rsl_dwelling+households_hostel+"
                        "households_bed_and_breakfast+households_other_ta")
    assert run_checks(t, hl2_schema, period="2024-Q2", councils=COUNCILS, population=pop) == []


def test_totals_tolerance():
    schema = {"fields": [{"name": "total", "type": "integer"}, {"name": "a", "type": "integer"},
                         {"name": "b", "type": "integer"}],
              "lgdp:totals": [{"total": "total", "parts": ["a", "b"]}]}
    cases = [  # (total, a, b, flagged): |total - (a + b)| > max(1, 0.001 * |total|)
        (10, 5, 4, False), (10, 5, 3, True), (5000, 2500, 2495, False), (5000, 2500, 2494, True),
        (None, 1, 2, False), (3, None, 2, False),
    ]
    t = pd.DataFrame([{"council_gss": f"S1200{i:04d}", "council_name": f"C{i}", "period": "2024",
                       "period_start": "2024-01-01", "total": tot, "a": a, "b": b}
                      for i, (tot, a, b, _) in enumerate(cases)])
    flags = run_checks(t, schema, councils=[])
    assert sorted(f.council_name for f in flags) == sorted(f"C{i}" for i, c in enumerate(cases) if c[3])


# --------------------------------------------------------------------------
# outlier edge cases


def _one_period(values: list[float], field: str = "score_pct") -> tuple[pd.DataFrame, dict, list[dict]]:
    councils = [{"gss_code": f"S12{i:06d}", "name": f"Council {i}"} for i in range(len(values))]
    table = pd.DataFrame({"council_gss": [c["gss_code"] for c in councils],
                          "council_name": [c["name"] for c in councils],
                          "period": "2024-25", "period_start": "2024-04-01", field: values})
    schema = {"fields": [{"name": field, "title": "Score (%)", "type": "number"}]}
    return table, schema, councils


def test_mad_zero_falls_back_to_mean_absolute_deviation():
    values = [50.0] * 11 + [45, 46, 47, 48, 52, 53, 54, 55] + [90.0]
    series = pd.Series(values)
    assert (series - series.median()).abs().median() == 0  # MAD = 0
    table, schema, councils = _one_period(values)
    flags = run_checks(table, schema, councils=councils)
    assert summary(flags) == {("outlier", "Council 19", "2024-25", "score_pct")}
    (flag,) = flags
    scale = 1.2533 * (series - 50).abs().mean()
    assert flag.detail["scale_method"] == "meanad" and flag.detail["scale"] == pytest.approx(scale)
    assert flag.detail["z"] == pytest.approx(40 / scale, abs=1e-3) and flag.severity == "error"
    assert "Score of 90.0% is far above other councils (median 50.0%" in flag.reason
    assert "More than half of them report exactly 50.0%" in flag.reason
    # the IQR rule would also have flagged 45 and 55 (quartiles 50 and 50.5)
    q1, q3 = series.quantile(0.25), series.quantile(0.75)
    assert (q1, q3) == (50.0, 50.5) and 55 > q3 + 3 * (q3 - q1)


def test_constant_field_is_not_compared():
    table, schema, councils = _one_period([12.5] * 32)
    assert run_checks(table, schema, councils=councils) == []


def test_mad_zero_with_all_but_one_equal_flags_that_one():
    table, schema, councils = _one_period([5.0] * 31 + [50.0])
    assert summary(run_checks(table, schema, councils=councils)) == {("outlier", "Council 31", "2024-25", "score_pct")}


def test_fewer_than_min_councils_are_not_compared():
    values = [95.1, 95.6, 96.0, 94.8, 95.3, 96.2, 95.0]
    table, schema, councils = _one_period(values + [70.0])
    assert len(run_checks(table, schema, councils=councils)) == 1  # 8 councils: compared
    table, schema, councils = _one_period(values[:6] + [70.0])
    assert run_checks(table, schema, councils=councils) == []  # 7: not compared
    assert len(run_checks(table, schema, councils=councils, config=QAConfig(min_councils=7))) == 1
    # councils without a value do not count
    table, schema, councils = _one_period(values + [70.0, None, None])
    assert len(run_checks(table, schema, councils=councils)) == 1
    table, schema, councils = _one_period(values[:6] + [70.0, None, None])
    assert run_checks(table, schema, councils=councils) == []


def test_warning_between_threshold_and_twice_threshold():
    base = [95.1, 95.6, 96.0, 94.8, 95.3, 96.2, 95.0, 95.4, 95.8, 94.9]
    series = pd.Series(base)
    med, scale = series.median(), 1.4826 * (series - series.median()).abs().median()
    x = round(med - 5 * scale, 1)  # z about -5
    table, schema, councils = _one_period(base + [x])
    (flag,) = run_checks(table, schema, councils=councils)
    assert flag.severity == "warning" and -7 < flag.detail["z"] < -3.5
    assert "is well below other councils" in flag.reason


# --------------------------------------------------------------------------
# populations


def test_without_population_rates_are_not_compared(ct_planted, ct_schema):
    flags = run_checks(ct_planted, ct_schema, councils=COUNCILS, population=None)
    # no per-1,000 outliers; the jump is measured on raw counts
    assert summary(flags) == {
        ("outlier", "Inverclyde", "2024-25", "in_year_collection_rate_pct"),
        ("jump", "Falkirk", "2024-25", "chargeable_dwellings"),
        ("missing", "Orkney Islands", "2022-23", None),
    }
    jump = next(f for f in flags if f.check == "jump")
    assert jump.detail["basis"] == "raw" and jump.value == jump.detail["raw_value"]
    before, after = jump.detail["raw_previous"], jump.detail["raw_value"]
    assert jump.reason == (f"Chargeable dwellings rose from {before:,.0f} to {after:,.0f} "
                           f"(+{(after - before) / before * 100:.0f}%) between 2023-24 and 2024-25.")


def test_council_without_population_is_left_out(ct_planted, ct_schema, pop):
    falkirk = GSS["Falkirk"]
    flags = run_checks(ct_planted, ct_schema, councils=COUNCILS, population=pop[pop.gss_code != falkirk])
    assert ("outlier", "Falkirk", "2024-25", "chargeable_dwellings") not in summary(flags)
    jump = next(f for f in flags if f.check == "jump")
    assert jump.council_gss == falkirk and jump.detail["basis"] == "raw"


def test_population_growth_is_not_a_jump(ct_schema):
    """A council whose population (and so its dwellings) grows 60% between
    two years: no jump per 1,000 people; the same counts without a
    population are a jump."""
    councils = [{"gss_code": f"S12{i:06d}", "name": f"Council {i}"} for i in range(10)]
    rows, pops = [], []
    for i, c in enumerate(councils):
        for y in (2023, 2024):
            people = 100_000 + 1000 * i
            if i == 0 and y == 2024:
                people = 160_000
            pops.append({"gss_code": c["gss_code"], "year": y, "population": people})
            rows.append({"council_gss": c["gss_code"], "council_name": c["name"], "period": f"{y}-{y % 100 + 1}",
                         "period_start": f"{y}-04-01", "chargeable_dwellings": people * 0.46,
                         "net_collectable_gbp": people * 0.46 * 1400, "collected_by_year_end_gbp": people * 600,
                         "in_year_collection_rate_pct": 95.0})
    table, pops = pd.DataFrame(rows), pd.DataFrame(pops)
    assert run_checks(table, ct_schema, councils=councils, population=pops) == []
    jumps = {f.field for f in run_checks(table, ct_schema, councils=councils) if f.check == "jump"}
    assert jumps == {"chargeable_dwellings", "net_collectable_gbp", "collected_by_year_end_gbp"}


def test_rates_per_1000_exact(ct_schema):
    table = pd.DataFrame({
        "council_gss": ["S12000005", "S12000005", "S12000005", "S12000006", "S12000008"],
        "council_name": ["Clackmannanshire"] * 3 + ["Dumfries and Galloway", "East Ayrshire"],
        "period": ["2020-21", "2023-24", "2024-25", "2023-24", "2023-24"],
        "period_start": ["2020-04-01", "2023-04-01", "2024-04-01", "2023-04-01", "2023-04-01"],
        "chargeable_dwellings": [25_000, 26_000, 26_520, 72_000, 60_000],
        "net_collectable_gbp": [1.0, 2.0, 3.0, 4.0, 5.0],
    }, index=[10, 11, 12, 13, 14])
    population = pd.DataFrame({
        "gss_code": ["S12000005", "S12000005", "S12000006"],
        "year": [2022, 2024, 2026],
        "population": [52_000, 51_000, 144_000],
    })
    out = rates_per_1000(table, ct_schema, population)
    assert list(out.index) == [10, 11, 12, 13, 14]
    # 2020: no earlier year -> nearest later (2022); 2023 -> nearest earlier (2022);
    # 2024 -> 2024; Dumfries and Galloway 2023 -> 2026 (only later); East Ayrshire: none
    assert out["population_year"].tolist()[:4] == [2022, 2022, 2024, 2026]
    assert out["population_year"].isna().tolist() == [False, False, False, False, True]
    assert out["chargeable_dwellings_per_1000"].tolist()[:4] == pytest.approx(
        [25_000 / 52, 26_000 / 52, 520.0, 500.0])
    assert math.isnan(out["chargeable_dwellings_per_1000"].iloc[4])
    assert "net_collectable_gbp_per_1000" not in out.columns  # only fields marked countable
    assert list(table.columns) == list(out.columns)[:-2]  # the input is not modified
    none = rates_per_1000(table, ct_schema, None)
    assert none["chargeable_dwellings_per_1000"].isna().all() and none["population_year"].isna().all()
    extra = rates_per_1000(table, ct_schema, population, fields=["net_collectable_gbp"])
    assert extra["net_collectable_gbp_per_1000"].iloc[2] == pytest.approx(3.0 / 51)


def test_several_rows_per_council_period(hl2_clean, hl2_schema, pop):
    """Countables are summed per council-period before the checks: splitting
    every row in two (half each) changes nothing; a ratio field whose rows
    disagree is not compared."""
    countable = [n for n, k in qa.field_kinds(hl2_schema).items() if k["kind"] != "ratio"]
    parts = hl2_schema["lgdp:totals"][0]["parts"]
    first = hl2_clean.copy()
    first[countable] = first[countable] // 2
    first["households_in_ta_total"] = first[parts].sum(axis=1)
    second = hl2_clean.copy()
    second[countable] = second[countable] - first[countable]
    split = pd.concat([first, second], ignore_index=True)
    assert run_checks(split, hl2_schema, councils=COUNCILS, population=pop) == []

    t = split.copy()
    dundee = (t.council_name == "Dundee City") & (t.period == "2024-Q3")
    t.loc[dundee[dundee].index[:1], "households_hostel"] += 5  # one of the two rows off by 5
    (flag,) = run_checks(t, hl2_schema, councils=COUNCILS, population=pop)
    assert (flag.check, flag.council_name, flag.period, flag.detail["rows_failing"]) == (
        "totals", "Dundee City", "2024-Q3", 1)

    schema = {"fields": [{"name": "score_pct", "type": "number"}]}
    values = [95.1, 95.6, 96.0, 94.8, 95.3, 96.2, 95.0, 95.4, 95.8, 60.0]
    rows = [{"council_gss": f"S12{i:06d}", "council_name": f"C{i}", "period": "2024", "period_start": "2024-01-01",
             "score_pct": v} for i, v in enumerate(values)]
    councils = [{"gss_code": r["council_gss"], "name": r["council_name"]} for r in rows]
    rows.append(dict(rows[0], score_pct=60.0))  # C0: 95.1 and 60.0 disagree -> not compared
    rows.append(dict(rows[9]))  # C9: 60.0 twice -> 60.0
    assert summary(run_checks(pd.DataFrame(rows), schema, councils=councils)) == {
        ("outlier", "C9", "2024", "score_pct")}


def test_field_kinds_of_real_standards(ct_schema, hl2_schema):
    kinds = qa.field_kinds(ct_schema)
    assert kinds == {
        "chargeable_dwellings": {"kind": "countable", "basis": "per_1000", "unit": None},
        "net_collectable_gbp": {"kind": "amount", "basis": "per_1000", "unit": "£"},
        "collected_by_year_end_gbp": {"kind": "amount", "basis": "per_1000", "unit": "£"},
        "in_year_collection_rate_pct": {"kind": "ratio", "basis": "as_is", "unit": "%"},
    }
    assert qa.field_kinds(hl2_schema)["uao_breaches"]["kind"] == "amount"
    charter = qa.field_kinds(standard("annual-return-charter"))
    assert charter["average_weekly_rent_gbp"]["kind"] == "ratio" and charter["lets"]["kind"] == "countable"
    assert qa.field_kinds(standard("non-domestic-rates-income"))["gross_rates_levied_gbp"]["kind"] == "amount"
    assert qa.field_kinds(ct_schema, QAConfig(unmarked_numeric="skip"))["net_collectable_gbp"]["basis"] is None
    for path in STANDARDS.glob("*.json"):  # identifiers are never compared
        schema = json.loads(path.read_text())
        assert not set(qa.field_kinds(schema)) & set(schema["primaryKey"])


# --------------------------------------------------------------------------
# speed


def _monthly_table(noise: float, seed: int = 1) -> tuple[pd.DataFrame, dict]:
    """32 councils x 40 months x 12 compared fields (8 countable, 3
    percentages, a countable total of four of them)."""
    rng = np.random.default_rng(seed)
    countable = [f"count_{i}" for i in range(8)]
    ratios = [f"share_{i}_pct" for i in range(3)]
    schema = {
        "fields": [{"name": "gss_code", "type": "string"}, {"name": "month", "type": "string"}]
        + [{"name": n, "type": "integer", "lgdp:countable": True} for n in countable]
        + [{"name": n, "type": "number"} for n in ratios]
        + [{"name": "total", "type": "integer", "lgdp:countable": True}],
        "primaryKey": ["gss_code", "month"],
        "lgdp:totals": [{"total": "total", "parts": countable[:4]}],
    }
    months = pd.date_range("2021-01-01", periods=40, freq="MS")
    n = len(COUNCILS) * len(months)
    table = pd.DataFrame({
        "council_gss": np.repeat([c["gss_code"] for c in COUNCILS], len(months)),
        "council_name": np.repeat([c["name"] for c in COUNCILS], len(months)),
        "period": np.tile(months.strftime("%Y-%m"), len(COUNCILS)),
        "period_start": np.tile(months.strftime("%Y-%m-%d"), len(COUNCILS)),
    })
    size = table.council_name.map(POP_2022).to_numpy() / 1000
    for name in countable:
        level = np.repeat(rng.permutation(np.linspace(5, 10, len(COUNCILS))), len(months))
        table[name] = np.round(size * level * rng.normal(1, noise, n)).clip(0)
    for name in ratios:
        level = np.repeat(rng.permutation(np.linspace(60, 80, len(COUNCILS))), len(months))
        table[name] = (level * rng.normal(1, noise / 3, n)).round(1)
    table["total"] = table[countable[:4]].sum(axis=1)
    return table, schema


def _timed(table: pd.DataFrame, schema: dict, pop: pd.DataFrame) -> tuple[float, list[Flag]]:
    run_checks(table.head(64), schema, councils=COUNCILS, population=pop)  # warm up
    start = time.perf_counter()
    flags = run_checks(table, schema, councils=COUNCILS, population=pop)
    return time.perf_counter() - start, flags


def test_speed_32_councils_40_periods_12_fields():
    pop = population_table()
    table, schema = _monthly_table(noise=0.02)
    assert len(table) == 1280 and len(qa.field_kinds(schema)) == 12
    # plant a few problems
    table.loc[5, "count_0"] *= 10
    table.loc[100, "total"] += 50
    table.loc[700, "share_1_pct"] = 5.0
    table = table.drop(index=1000)
    elapsed, flags = _timed(table, schema, pop)
    start = time.perf_counter()
    rates_per_1000(table, schema, pop)
    rates_elapsed = time.perf_counter() - start
    print(f"\nrun_checks: 32 councils x 40 periods x 12 fields in {elapsed * 1000:.0f} ms "
          f"({len(flags)} flags); rates_per_1000 in {rates_elapsed * 1000:.0f} ms")
    assert {f.check for f in flags} == {"totals", "jump", "outlier", "missing"}
    assert elapsed < 2.0

    # very noisy data (+-30% month to month): thousands of flags to build
    noisy, schema = _monthly_table(noise=0.3)
    elapsed, flags = _timed(noisy, schema, pop)
    print(f"run_checks, very noisy data: {elapsed * 1000:.0f} ms ({len(flags)} flags)")
    assert len(flags) > 1000 and elapsed < 2.0
