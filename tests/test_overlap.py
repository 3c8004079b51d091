"""Duplicate detection: a proposed standard's fields compared with every other
active standard, so the reviewer sees "this asks again for 4 of the 4 fields
in HL1". The pure functions first, then the action through the HTTP API."""
from __future__ import annotations

import json

import pytest

from ckan.tests import factories

from ckanext.lgdp.register import overlap
from tests.conftest import api, standard

HL1 = standard("hl1-homelessness.v1")

# HL1 asked again under other names: abbreviations, separators, camelCase.
HL1_AGAIN = {
    "fields": [
        {"name": "council_code", "title": "Council", "type": "string"},
        {"name": "qtr", "type": "string"},
        {"name": "no_of_apps", "title": "Number of applications", "type": "integer"},
        {"name": "hh_assessed_homeless", "title": "Households assessed as homeless", "type": "integer"},
        {"name": "NoHHInTempAccom", "title": "No. of households in temp. accommodation", "type": "number"},
        {"name": "chn_in_TA", "title": "Children in TA", "type": "integer"},
        {"name": "rough_sleepers", "title": "People sleeping rough the night before", "type": "integer"},
    ]
}
HL1_AGAIN_MATCHED = [
    ("no_of_apps", "applications"),
    ("hh_assessed_homeless", "assessed_homeless"),
    ("NoHHInTempAccom", "households_in_ta"),
    ("chn_in_TA", "children_in_ta"),
]

WASTE = {
    "fields": [
        {"name": "la_code", "title": "Local authority code", "type": "string"},
        {"name": "year", "title": "Calendar year", "type": "string"},
        {"name": "household_waste_collected_tonnes", "title": "Household waste collected (tonnes)", "type": "number"},
        {"name": "household_waste_recycled_tonnes", "title": "Household waste recycled (tonnes)", "type": "number"},
        {"name": "landfilled_tonnes", "title": "Waste sent to landfill (tonnes)", "type": "number"},
        {"name": "recycling_rate_pct", "title": "Recycling rate (%)", "type": "number"},
        {"name": "households_served", "title": "Households served by kerbside collection", "type": "integer"},
    ]
}


def pairs(result):
    return [(a, b) for a, b, _ in result["matched"]]


# --------------------------------------------------------------------------
# Pure functions
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("No_HH_in_TA", ("number", "household", "temporary", "accommodation")),
        ("numberOfHouseholdsInTemporaryAccommodation", ("number", "household", "temporary", "accommodation")),
        ("Households in temporary accommodation", ("household", "temporary", "accommodation")),
        ("num-households-temp-accom", ("number", "household", "temporary", "accommodation")),
        ("In-year collection rate (%)", ("year", "collection", "rate", "percent")),
        ("in_year_collection_rate_pct", ("year", "collection", "rate", "percent")),
        ("Collected (£)", ("collect", "gbp")),
        ("collected_gbp", ("collect", "gbp")),
        ("Applications assessed", ("application", "assess")),
        ("assessment_of_apps", ("assess", "application")),
        ("Children", ("child",)),
        ("", ()),
    ],
)
def test_names_and_titles_are_normalised(text, tokens):
    assert overlap.normalise(text) == tokens


def test_a_renamed_or_abbreviated_field_is_the_same_field():
    same = [
        ({"name": "households_in_ta", "type": "integer"}, {"name": "no_hh_temp_accom", "type": "integer"}),
        ({"name": "applications", "title": "Applications received", "type": "integer"},
         {"name": "no_of_apps", "title": "Number of applications", "type": "integer"}),
        ({"name": "in_year_collection_rate_pct", "type": "number"},
         {"name": "InYearCollectionRate", "title": "In-year collection rate (%)", "type": "number"}),
        # a misspelt word
        ({"name": "households_in_ta", "type": "integer"}, {"name": "hh_in_temporay_accomodation", "type": "integer"}),
    ]
    for a, b in same:
        assert overlap.field_similarity(a, b) >= overlap.FIELD_THRESHOLD, (a["name"], b["name"])


def test_fields_sharing_only_some_words_are_different_fields():
    households = {"name": "households_in_ta", "title": "Households in temporary accommodation", "type": "integer"}
    children = {"name": "children_in_ta", "title": "Children in temporary accommodation", "type": "integer"}
    waste = {"name": "household_waste_collected_tonnes", "type": "number"}
    assert overlap.field_similarity(households, children) < overlap.FIELD_THRESHOLD
    assert overlap.field_similarity(households, waste) < 0.5


def test_types_matter():
    count = {"name": "households_in_ta", "title": "Households in temporary accommodation", "type": "integer"}
    as_number = {**count, "type": "number"}
    as_text = {**count, "type": "string"}
    untyped = {k: v for k, v in count.items() if k != "type"}  # Table Schema's default is string

    assert overlap.field_similarity(count, count) == 1.0
    assert overlap.field_similarity(count, as_number) >= overlap.FIELD_THRESHOLD  # integer ~ number is fine
    assert overlap.field_similarity(count, as_text) < overlap.FIELD_THRESHOLD  # string vs number penalised
    assert overlap.field_similarity(count, untyped) == overlap.field_similarity(count, as_text)
    assert overlap.type_compatibility("integer", "number") > overlap.type_compatibility("string", "integer")

    # in a whole standard, the count asked for as text is not matched
    retyped = {"fields": [dict(f, type="string") if f["name"] == "NoHHInTempAccom" else f for f in HL1_AGAIN["fields"]]}
    result = overlap.compare_standards(retyped, HL1)
    assert ("NoHHInTempAccom", "households_in_ta") not in pairs(result)
    assert result["n_matched"] == 3


def test_a_proposal_reusing_most_of_hl1_is_flagged_with_the_right_pairs():
    result = overlap.compare_standards(HL1_AGAIN, HL1)

    assert pairs(result) == HL1_AGAIN_MATCHED
    assert all(s >= overlap.FIELD_THRESHOLD for _, _, s in result["matched"])
    # 4 of the proposal's 5 fields (its council code and quarter are keys)
    assert (result["n_matched"], result["n_fields"], result["n_other_fields"]) == (4, 5, 4)
    assert result["score"] == 0.8


def test_an_unrelated_standard_is_not_flagged():
    assert overlap.compare_standards(WASTE, HL1)["n_matched"] == 0
    assert overlap.compare_standards(HL1, WASTE)["n_matched"] == 0
    assert overlap.find_overlaps(WASTE, [{"name": "hl1", "title": "HL1", "data_standard": HL1}], min_score=0) == []


@pytest.mark.parametrize(
    "name, kind",
    [
        ("gss_code", "council"), ("council_code", "council"), ("council_name", "council"),
        ("la_code", "council"), ("LocalAuthority", "council"), ("ons_code", "council"),
        ("period", "period"), ("financial_year", "period"), ("fin_yr", "period"), ("qtr", "period"),
        ("month", "period"), ("academic_year", "period"), ("quarter_ending", "period"),
        ("period_start_date", "period"),
        ("started_in_year", None), ("council_tax_band", None), ("applications", None),
        ("start_date", None), ("area_hectares", None),
    ],
)
def test_shared_keys_are_recognised(name, kind):
    assert overlap.shared_key_kind({"name": name}) == kind


def test_shared_keys_do_not_count_but_are_reported():
    only_keys_and_new = {
        "fields": [
            {"name": "gss_code", "type": "string"},
            {"name": "period", "type": "string"},
            {"name": "rough_sleepers", "type": "integer"},
        ]
    }
    result = overlap.compare_standards(only_keys_and_new, HL1)
    assert (result["n_matched"], result["n_fields"], result["score"]) == (0, 1, 0.0)
    assert [(a, b) for a, b, _ in result["shared_keys"]] == [("gss_code", "gss_code"), ("period", "period")]
    assert overlap.find_overlaps(only_keys_and_new, [{"name": "hl1", "data_standard": HL1}], min_score=0) == []

    # renamed keys are paired by kind: council with council, period with period
    keys = overlap.compare_standards(HL1_AGAIN, HL1)["shared_keys"]
    assert [(a, b) for a, b, _ in keys] == [("council_code", "gss_code"), ("qtr", "period")]

    # a standard of keys alone has nothing to ask again
    keys_only = {"fields": HL1["fields"][:2]}
    assert overlap.compare_standards(keys_only, HL1)["n_fields"] == 0
    assert overlap.compare_standards(keys_only, HL1)["score"] == 0.0


def test_matching_is_one_to_one():
    twice = {
        "fields": [
            {"name": "households_in_ta", "type": "integer"},
            {"name": "hh_in_ta", "type": "integer"},
        ]
    }
    result = overlap.compare_standards(twice, HL1)
    assert result["n_matched"] == 1
    assert [b for _, b, _ in result["matched"]] == ["households_in_ta"]
    assert result["score"] == 0.5


def test_overlaps_are_sorted_by_score_and_told_in_words():
    half = {"fields": [f for f in HL1["fields"] if f["name"] in ("gss_code", "period", "applications", "assessed_homeless")]}
    others = [
        {"id": "1", "name": "half-of-hl1", "title": "Half of HL1", "data_standard": json.dumps(half)},
        {"id": "2", "name": "waste", "title": "Waste", "data_standard": WASTE},
        {"id": "3", "name": "hl1", "title": "HL1", "data_standard": HL1, "lifecycle_status": "active"},
        {"id": "4", "name": "broken", "title": "Broken", "data_standard": "{not json"},
        {"id": "5", "name": "no-standard", "title": "None"},
    ]
    found = overlap.find_overlaps(HL1_AGAIN, others)

    assert [o["name"] for o in found] == ["hl1", "half-of-hl1"]
    first = found[0]
    assert first["score"] == 0.8 and first["n_matched"] == 4 and first["n_fields"] == 5
    assert first["lifecycle_status"] == "active" and first["id"] == "3"
    assert first["summary"] == "asks again for 4 of the 4 fields in HL1"
    assert found[1]["summary"] == "asks again for 2 of the 2 fields in Half of HL1"
    assert found[1]["score"] == 0.4

    assert [o["name"] for o in overlap.find_overlaps(HL1_AGAIN, others, min_score=0.5)] == ["hl1"]


def test_a_standard_that_is_not_a_table_schema_is_refused():
    for bad in ("{not json", "[]", {"title": "no fields"}, {"fields": []}, {"fields": [{"type": "integer"}]}):
        with pytest.raises(overlap.StandardError):
            overlap.parse_standard(bad)
    assert overlap.parse_standard(json.dumps(HL1)) == HL1


# --------------------------------------------------------------------------
# The action, through the HTTP API
# --------------------------------------------------------------------------


@pytest.fixture
def agency():
    return factories.Organization(org_type="agency")


def mine(result, *datasets):
    """The overlaps with these returns only (other returns in the search
    index are not this test's)."""
    ids = {d["id"] for d in datasets}
    return [o for o in result["overlaps"] if o["id"] in ids]


def data_return(org, schema, status, **kwargs):
    """A data return in a lifecycle state. Factories run as the site user,
    a sysadmin, who may load a return in any state."""
    return factories.Dataset(
        type="data-return",
        owner_org=org["id"],
        frequency="quarterly",
        statutory="no",
        notes="x",
        data_standard=json.dumps(schema),
        lifecycle_status=status,
        **kwargs,
    )


@pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")
class TestAction:
    def test_a_proposal_reusing_hl1_is_flagged(self, app, agency):
        hl1 = data_return(agency, HL1, "active", title="HL1 homelessness")
        waste = data_return(agency, WASTE, "active")

        result = api(app, "lgdp_return_overlap", data_standard=HL1_AGAIN)["result"]

        assert [o["name"] for o in mine(result, hl1, waste)] == [hl1["name"]]
        found = mine(result, hl1)[0]
        assert found["id"] == hl1["id"] and found["title"] == "HL1 homelessness"
        assert [tuple(m[:2]) for m in found["matched"]] == HL1_AGAIN_MATCHED
        assert (found["score"], found["n_matched"], found["n_fields"]) == (0.8, 4, 5)
        assert found["summary"] == "asks again for 4 of the 4 fields in HL1 homelessness"
        assert [k[:2] for k in found["shared_keys"]] == [["council_code", "gss_code"], ["qtr", "period"]]
        assert result["threshold"] == overlap.FIELD_THRESHOLD
        assert result["min_score"] == overlap.DEFAULT_MIN_SCORE
        assert result["shared_keys"] == ["council_code", "qtr"]
        assert result["compared"] >= 2

        # the same as JSON text, and as a GET (the action is side-effect free)
        as_text = api(app, "lgdp_return_overlap", data_standard=json.dumps(HL1_AGAIN))["result"]
        assert as_text == result
        got = app.get("/api/3/action/lgdp_return_overlap", query_string={"data_standard": json.dumps(HL1_AGAIN)})
        assert got.json["result"] == result

    def test_only_approved_active_and_under_review_returns_are_compared(self, app, agency):
        returns = {
            status: data_return(agency, HL1, status)
            for status in ("proposed", "approved", "active", "under_review", "retired", "rejected")
        }

        result = api(app, "lgdp_return_overlap", data_standard=HL1_AGAIN)["result"]

        found = sorted(o["lifecycle_status"] for o in mine(result, *returns.values()))
        assert found == ["active", "approved", "under_review"]
        assert result["compared"] >= 3

    def test_a_saved_return_is_compared_by_id_and_not_with_itself(self, app, agency):
        hl1 = data_return(agency, HL1, "active", title="HL1")
        proposal = data_return(agency, HL1_AGAIN, "proposed")

        by_name = api(app, "lgdp_return_overlap", id=proposal["name"])["result"]
        assert [o["name"] for o in mine(by_name, hl1, proposal)] == [hl1["name"]]
        assert mine(by_name, hl1)[0]["summary"] == "asks again for 4 of the 4 fields in HL1"
        by_id = api(app, "lgdp_return_overlap", id=proposal["id"])["result"]
        assert mine(by_id, hl1, proposal) == mine(by_name, hl1, proposal)

        # HL1 is not compared with itself, nor with a proposal (not yet approved)
        assert mine(api(app, "lgdp_return_overlap", id=hl1["name"])["result"], hl1, proposal) == []

        # a change not yet saved: the new standard, compared without the return itself
        changed = api(app, "lgdp_return_overlap", id=hl1["name"], data_standard=HL1_AGAIN)["result"]
        assert mine(changed, hl1, proposal) == []
        assert changed["n_fields"] == 5

    def test_min_score(self, app, agency):
        half = {"fields": [f for f in HL1["fields"] if f["name"] not in ("households_in_ta", "children_in_ta")]}
        half_of_hl1 = data_return(agency, half, "active")

        def found(**data):
            return mine(api(app, "lgdp_return_overlap", data_standard=HL1_AGAIN, **data)["result"], half_of_hl1)

        assert [o["score"] for o in found()] == [0.4]
        assert found(min_score=0.5) == []
        assert [o["score"] for o in found(min_score="0.4")] == [0.4]

    def test_bad_input(self, app, agency):
        plain = factories.Dataset(owner_org=agency["id"])

        def error(status=409, **data):
            return api(app, "lgdp_return_overlap", status=status, **data)["error"]

        assert "not valid JSON" in error(data_standard="{not json")["data_standard"][0]
        assert "data_standard" in error(data_standard={"title": "no fields"})
        assert "data_standard" in error(data_standard={"fields": []})
        assert "data_standard" in error(data_standard=["gss_code"])
        assert "id" in error()
        assert "min_score" in error(data_standard=HL1, min_score="lots")
        assert "min_score" in error(data_standard=HL1, min_score=2)
        assert error(status=404, id="no-such-return")["__type"] == "Not Found Error"
        assert error(status=404, id=plain["name"])["__type"] == "Not Found Error"

    def test_a_private_return_is_compared_only_for_those_who_may_see_it(self, app):
        member = factories.UserWithToken()
        owner = factories.Organization(org_type="agency", users=[{"name": member["name"], "capacity": "member"}])
        private = data_return(owner, HL1, "active", private=True)

        anonymous = api(app, "lgdp_return_overlap", data_standard=HL1_AGAIN)["result"]
        assert mine(anonymous, private) == []

        headers = {"Authorization": member["token"]}
        seen = api(app, "lgdp_return_overlap", headers=headers, data_standard=HL1_AGAIN)["result"]
        assert [o["name"] for o in mine(seen, private)] == [private["name"]]
