"""Input schemas of the central repository's actions: consolidation, the
publication of tables and the quality checks (ckanext.lgdp.params has the
validators; a parameter not named here is refused)."""
from __future__ import annotations

from ckan.logic.schema import validator_args
from ckan.types import Schema, Validator, ValidatorFactory

FLAG_STATUSES = ("open", "explained", "closed", "resolved")


@validator_args
def consolidate(ignore_empty: Validator, default: ValidatorFactory, lgdp_name: Validator,
                lgdp_boolean: Validator) -> Schema:
    return {
        "data_return": [ignore_empty, lgdp_name],
        "qa": [default(True), lgdp_boolean],
    }


@validator_args
def qa_run(not_empty: Validator, ignore_empty: Validator, lgdp_name: Validator) -> Schema:
    return {
        "data_return": [not_empty, lgdp_name],
        "period": [ignore_empty, lgdp_name],
    }


@validator_args
def table_publish(not_empty: Validator, default: ValidatorFactory, lgdp_name: Validator,
                  lgdp_boolean: Validator) -> Schema:
    return {
        "data_return": [not_empty, lgdp_name],
        "published": [default(True), lgdp_boolean],
    }


@validator_args
def qa_flag_list(ignore_empty: Validator, lgdp_name: Validator, lgdp_choice: ValidatorFactory) -> Schema:
    return {
        "data_return": [ignore_empty, lgdp_name],
        "council": [ignore_empty, lgdp_name],
        "period": [ignore_empty, lgdp_name],
        "status": [ignore_empty, lgdp_choice(FLAG_STATUSES)],
    }


@validator_args
def qa_flag_explain(not_empty: Validator, ignore_missing: Validator, lgdp_name: Validator,
                    lgdp_text: Validator) -> Schema:
    return {
        "id": [not_empty, lgdp_name],
        "explanation": [ignore_missing, lgdp_text],
    }


@validator_args
def qa_flag_close(not_empty: Validator, ignore_missing: Validator, lgdp_name: Validator,
                  lgdp_text: Validator) -> Schema:
    return {
        "id": [not_empty, lgdp_name],
        "note": [ignore_missing, lgdp_text],
    }


@validator_args
def consolidation_retry(not_empty: Validator, lgdp_name: Validator) -> Schema:
    return {"id": [not_empty, lgdp_name]}


@validator_args
def consolidation_sweep() -> Schema:
    return {}


@validator_args
def attention_list() -> Schema:
    return {}
