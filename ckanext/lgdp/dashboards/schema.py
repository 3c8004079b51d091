"""Input schemas of the dashboards' actions (ckanext.lgdp.params has the
validators; a parameter not named here is refused)."""
from __future__ import annotations

from ckan.logic.schema import validator_args
from ckan.types import Schema, Validator


@validator_args
def indicator_list(ignore_empty: Validator, lgdp_name: Validator) -> Schema:
    return {"data_return": [ignore_empty, lgdp_name]}


@validator_args
def dashboard_figures(not_empty: Validator, ignore_empty: Validator, lgdp_name: Validator) -> Schema:
    return {
        "indicator": [not_empty, lgdp_name],
        "council": [ignore_empty, lgdp_name],
        "period": [ignore_empty, lgdp_name],
        "period_from": [ignore_empty, lgdp_name],
        "period_to": [ignore_empty, lgdp_name],
    }


@validator_args
def dashboard_create(ignore_missing: Validator, ignore_empty: Validator, lgdp_name: Validator,
                     lgdp_text: Validator, lgdp_name_list: Validator) -> Schema:
    # present or absent matters to an update: absent keys keep their value
    return {
        "title": [ignore_missing, lgdp_text],
        "indicators": [ignore_missing, lgdp_name_list],
        "council": [ignore_missing, lgdp_name],
        "period_from": [ignore_missing, lgdp_name],
        "period_to": [ignore_missing, lgdp_name],
        "organization": [ignore_empty, lgdp_name],
    }


@validator_args
def dashboard_update(not_empty: Validator, lgdp_name: Validator) -> Schema:
    schema = dashboard_create()
    schema.pop("organization")
    return {"id": [not_empty, lgdp_name], **schema}


@validator_args
def dashboard_id(not_empty: Validator, lgdp_name: Validator) -> Schema:
    return {"id": [not_empty, lgdp_name]}


@validator_args
def dashboard_list() -> Schema:
    return {}
