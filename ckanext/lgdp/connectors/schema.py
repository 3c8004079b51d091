"""Input schemas of the connectors' actions: subscriptions and their
deliveries, the events feed, reminders and pull connectors
(ckanext.lgdp.params has the validators; a parameter not named here is
refused)."""
from __future__ import annotations

from typing import Any

import ckan.plugins.toolkit as tk
from ckan.logic.schema import validator_args
from ckan.types import Schema, Validator, ValidatorFactory

from ckanext.lgdp import fetch

SUBSCRIPTION_CHANNELS = ("webhook", "email")
DELIVERY_STATUSES = ("pending", "delivered", "dead")
# A connector runs at least every 5 minutes and at most once a year.
INTERVAL_MINUTES = (5, 60 * 24 * 366)


def fetchable_url(value: Any) -> Any:
    """An address the platform's fetcher would fetch from (checked again at
    each run)."""
    refused = fetch.refusal(value)
    if refused:
        raise tk.Invalid(refused)
    return value


@validator_args
def subscription_create(not_empty: Validator, ignore_missing: Validator, ignore_empty: Validator,
                        lgdp_name: Validator, lgdp_text: Validator, lgdp_name_list: Validator,
                        lgdp_choice: ValidatorFactory) -> Schema:
    return {
        "channel": [not_empty, lgdp_choice(SUBSCRIPTION_CHANNELS)],
        "url": [ignore_missing, lgdp_text],
        "data_return": [ignore_empty, lgdp_name],
        "event_types": [ignore_empty, lgdp_name_list],
        "organization": [ignore_empty, lgdp_name],
    }


@validator_args
def no_parameters() -> Schema:
    return {}


@validator_args
def subscription_id(not_empty: Validator, lgdp_name: Validator) -> Schema:
    return {"id": [not_empty, lgdp_name]}


@validator_args
def delivery_list(not_empty: Validator, ignore_empty: Validator, lgdp_name: Validator,
                  lgdp_choice: ValidatorFactory) -> Schema:
    return {
        "id": [not_empty, lgdp_name],
        "status": [ignore_empty, lgdp_choice(DELIVERY_STATUSES)],
    }


@validator_args
def event_list(not_empty: Validator, default: ValidatorFactory, lgdp_name: Validator,
               lgdp_whole_number: ValidatorFactory) -> Schema:
    return {
        "data_return": [not_empty, lgdp_name],
        "limit": [default(100), lgdp_whole_number(1, 1000)],
    }


@validator_args
def reminder_run(default: ValidatorFactory, ignore_empty: Validator, lgdp_boolean: Validator,
                 lgdp_iso_date: Validator) -> Schema:
    return {
        "dry_run": [default(False), lgdp_boolean],
        "today": [ignore_empty, lgdp_iso_date],
    }


@validator_args
def connector_create(not_empty: Validator, ignore_empty: Validator, default: ValidatorFactory,
                     lgdp_name: Validator, lgdp_text: Validator, lgdp_whole_number: ValidatorFactory) -> Schema:
    return {
        "council": [not_empty, lgdp_name],
        "data_return": [not_empty, lgdp_name],
        "url": [not_empty, lgdp_text, fetchable_url],
        "auth_header": [ignore_empty, lgdp_name],
        "auth_secret": [ignore_empty, lgdp_text],
        "interval_minutes": [default(1440), lgdp_whole_number(*INTERVAL_MINUTES)],
    }


@validator_args
def connector_run(ignore_empty: Validator, default: ValidatorFactory, lgdp_name: Validator,
                  lgdp_boolean: Validator) -> Schema:
    return {
        "id": [ignore_empty, lgdp_name],
        "due": [default(False), lgdp_boolean],
    }


@validator_args
def connector_id(not_empty: Validator, lgdp_name: Validator) -> Schema:
    return {"id": [not_empty, lgdp_name]}


@validator_args
def connector_switch(not_empty: Validator, ignore_empty: Validator, lgdp_name: Validator,
                     lgdp_text: Validator) -> Schema:
    return {
        "id": [not_empty, lgdp_name],
        "reason": [ignore_empty, lgdp_text],
    }
