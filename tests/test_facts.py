"""One home per fact: which fields are countable, which population a period
uses, and how a rate per 1,000 is worked out are each decided in one place,
and every other module asks that place.

The homes are read from the source (parsed, not imported): a second test of
``lgdp:countable`` or a second ``*_per_1000`` name in another module fails
here."""
from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ckanext.lgdp.register import standards
from ckanext.lgdp.repository import qa, reference

ROOT = Path(__file__).resolve().parent.parent / "ckanext" / "lgdp"

# A string literal -> the modules that may hold it (the fact's home; the
# checks also read the explicit "lgdp:countable": false, which marks a ratio).
HOMES = {
    "lgdp:countable": {"register/standards.py", "repository/qa.py"},
    "_per_1000": {"repository/reference.py"},
}


def _literals(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    # the names a module exports are its functions' names, not the fact
    exported = {id(const) for node in ast.walk(tree) if isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
                for const in ast.walk(node.value)}
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings and id(node) not in exported}


@pytest.mark.parametrize("literal", sorted(HOMES))
def test_each_fact_is_named_in_its_home_only(literal):
    holders = set()
    for path in ROOT.rglob("*.py"):
        if "node_modules" in path.parts:
            continue
        if any(literal in text for text in _literals(path)):
            holders.add(path.relative_to(ROOT).as_posix())
    assert holders <= HOMES[literal], holders - HOMES[literal]
    assert holders, f"nobody names {literal!r}: the test is looking in the wrong place"


def test_countable_is_a_figure_marked_true():
    assert standards.is_countable({"name": "n", "type": "integer", "lgdp:countable": True})
    assert standards.is_countable({"name": "n", "type": "number", "lgdp:countable": True})
    assert not standards.is_countable({"name": "n", "type": "string", "lgdp:countable": True})
    assert not standards.is_countable({"name": "n", "type": "integer", "lgdp:countable": "yes"})
    assert not standards.is_countable({"name": "n", "type": "integer", "lgdp:countable": False})
    assert not standards.is_countable({"name": "n", "type": "integer"})
    assert not standards.is_countable("n")
    schema = {"fields": [{"name": "a", "type": "integer", "lgdp:countable": True}, {"name": "b", "type": "number"},
                         {"name": "c", "type": "number", "lgdp:countable": True}]}
    assert standards.countable_fields(schema) == ["a", "c"]
    assert standards.countable_fields(None) == [] and standards.countable_fields({}) == []


def test_the_checks_call_countable_what_the_standard_does():
    schema = {"fields": [{"name": "a", "type": "integer", "lgdp:countable": True},
                         {"name": "b", "type": "string", "lgdp:countable": True},
                         {"name": "c", "type": "number"}]}
    kinds = qa.field_kinds(schema)
    assert [n for n, k in kinds.items() if k["kind"] == "countable"] == standards.countable_fields(schema)


def test_nearest_estimate():
    years = {2011: 100, 2015: 150, 2020: 200}
    assert reference.nearest_estimate(years, 2015) == (150, 2015)
    assert reference.nearest_estimate(years, 2017) == (150, 2015)  # the nearest earlier
    assert reference.nearest_estimate(years, 2030) == (200, 2020)
    assert reference.nearest_estimate(years, 2001) == (100, 2011)  # none earlier: the nearest later
    assert reference.nearest_estimate({}, 2015) is None


def test_the_checks_choose_the_population_the_tables_store():
    """The checks' vectorised lookup (for tables without populations) gives
    what consolidation stores (reference.population_for), for every council
    and for years before, inside and after the estimates."""
    pops = reference.populations()
    frame = pd.DataFrame([{"gss_code": g, "year": y, "population": p} for g, ys in pops.items() for y, p in ys.items()])
    gss = [g for g in sorted(pops) for _ in range(1995, 2031)] + ["S12999999", sorted(pops)[0]]
    years = [y for _ in sorted(pops) for y in range(1995, 2031)] + [2020, None]
    got = qa._populations(pd.Series(gss), pd.Series(years, dtype="Int64"), frame)
    for i, (code, year) in enumerate(zip(gss, years)):
        want = reference.population_for(code, year) if year is not None else None
        if want is None:
            assert math.isnan(got["population"][i]) and got["population_year"][i] is pd.NA
        else:
            assert (got["population"][i], got["population_year"][i]) == (want[0], want[1]), (code, year)


def test_rate_per_1000():
    assert reference.rate_per_1000(50, 2000) == 25.0
    assert reference.rate_per_1000(None, 2000) is None
    assert reference.rate_per_1000(5, None) is None
    assert reference.rate_per_1000(5, 0) is None
    out = reference.rate_per_1000(np.array([1.0, 2.0, np.nan]), np.array([1000.0, np.nan, 10.0]))
    assert out[0] == 1.0 and math.isnan(out[1]) and math.isnan(out[2])
    assert reference.rate_column("households") == "households_per_1000"
