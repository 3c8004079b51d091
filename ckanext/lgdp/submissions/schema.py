"""Input schemas of the submission actions (ckanext.lgdp.params has the
validators; a parameter not named here is refused)."""
from __future__ import annotations

import ckan.plugins.toolkit as tk
from ckan.logic.schema import validator_args
from ckan.types import Context, FlattenDataDict, FlattenErrorDict, FlattenKey, Schema, Validator, ValidatorFactory

from ckanext.lgdp.submissions import states


@validator_args
def submission_create(not_empty: Validator, lgdp_name: Validator) -> Schema:
    return {
        "data_return": [not_empty, lgdp_name],
        "council": [not_empty, lgdp_name],
        "period": [not_empty, lgdp_name],
    }


@validator_args
def submission_expect(ignore_empty: Validator, lgdp_name: Validator, lgdp_iso_date: Validator) -> Schema:
    return {
        "since": [ignore_empty, lgdp_iso_date],
        "until": [ignore_empty, lgdp_iso_date],
        "data_return": [ignore_empty, lgdp_name],
    }


def set_by_platform(key: FlattenKey, data: FlattenDataDict, errors: FlattenErrorDict, context: Context) -> None:
    """A parameter the caller may not send: the platform sets it."""
    if data.get(key) is not tk.missing:
        errors[key].append(tk._("Set by the platform (api, url, browser or pull), never by the caller"))
    data.pop(key, None)
    raise tk.StopOnError


@validator_args
def submission_upload(
    ignore_empty: Validator,
    default: ValidatorFactory,
    lgdp_name: Validator,
    lgdp_text: Validator,
    lgdp_boolean: Validator,
    lgdp_upload_file: Validator,
    lgdp_upload_key: Validator,
) -> Schema:
    return {
        "channel": [set_by_platform],
        "id": [ignore_empty, lgdp_name],
        "data_return": [ignore_empty, lgdp_name],
        "council": [ignore_empty, lgdp_name],
        "period": [ignore_empty, lgdp_name],
        "upload": [ignore_empty, lgdp_upload_file],
        "url": [ignore_empty, lgdp_text],
        "description": [ignore_empty, lgdp_text],
        "wait": [default(False), lgdp_boolean],
        "client_ref": [ignore_empty, lgdp_upload_key],
    }


@validator_args
def submission_explain(not_empty: Validator, ignore_missing: Validator, lgdp_name: Validator,
                       lgdp_text: Validator) -> Schema:
    return {
        "id": [not_empty, lgdp_name],
        "query_id": [ignore_missing, lgdp_name],
        "explanation": [ignore_missing, lgdp_text],
    }


@validator_args
def submission_transition(
    not_empty: Validator,
    ignore_missing: Validator,
    ignore_empty: Validator,
    lgdp_name: Validator,
    lgdp_text: Validator,
    lgdp_choice: ValidatorFactory,
    lgdp_iso_date: Validator,
) -> Schema:
    return {
        "id": [not_empty, lgdp_name],
        "action": [not_empty, lgdp_choice(states.TRANSITIONS)],
        "reason": [ignore_missing, lgdp_text],
        "effective_date": [ignore_empty, lgdp_iso_date],
    }


@validator_args
def upload_list(not_empty: Validator, lgdp_name: Validator) -> Schema:
    return {"id": [not_empty, lgdp_name]}


@validator_args
def upload_show(not_empty: Validator, default: ValidatorFactory, lgdp_name: Validator,
                lgdp_whole_number: ValidatorFactory) -> Schema:
    return {
        "id": [not_empty, lgdp_name],
        "limit": [default(1000), lgdp_whole_number(0, 100000)],
    }


@validator_args
def validation_sweep() -> Schema:
    return {}


def search_refresh() -> Schema:
    return {}
