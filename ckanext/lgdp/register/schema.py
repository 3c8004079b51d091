"""Input schemas of the register's actions: the lifecycle, the audit trail,
versions of standards, reviews, the collection calendar and overlap
(ckanext.lgdp.params has the shared validators; a parameter not named here
is refused)."""
from __future__ import annotations

import datetime as dt
from typing import Any

import ckan.plugins.toolkit as tk
from ckan.logic.schema import validator_args
from ckan.types import Schema, Validator, ValidatorFactory

from ckanext.lgdp.register import lifecycle, standards

# The years a calendar window or a burden may be asked for.
FIRST_YEAR, LAST_YEAR = 1900, 2200


def calendar_date(value: Any) -> dt.date:
    """A date written YYYY-MM-DD, between 1900 and 2200."""
    day = None
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    elif isinstance(value, str) and len(value.strip()) == 10:
        try:
            day = dt.date.fromisoformat(value.strip())
        except ValueError:
            day = None
    if day is None:
        raise tk.Invalid(tk._("Use a date written as YYYY-MM-DD, e.g. 2025-01-31"))
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise tk.Invalid(tk._("Use a date between 1900 and 2200"))
    return day


def calendar_year(value: Any) -> int:
    """A year written as four digits, between 1900 and 2200."""
    try:
        if isinstance(value, bool) or isinstance(value, (list, dict)) or (isinstance(value, str) and len(value) > 10):
            raise ValueError
        year = int(value)
    except (TypeError, ValueError):
        raise tk.Invalid(tk._("Use a year written as four digits, e.g. 2025")) from None
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise tk.Invalid(tk._("Use a year between 1900 and 2200"))
    return year


def proposed_standard(value: Any) -> dict[str, Any]:
    """A proposal's standard (a Table Schema as an object or JSON text),
    checked as a saved one is."""
    if not isinstance(value, (str, dict)):
        raise tk.Invalid(tk._("A data standard is a Table Schema, as an object or JSON text"))
    if isinstance(value, str) and "\x00" in value:
        raise tk.Invalid(tk._("Must not contain a NUL character (a zero byte)"))
    try:
        return standards.parse_standard(standards.parse(value))
    except standards.StandardError as exc:
        raise tk.Invalid(str(exc))
    except tk.Invalid:
        raise
    except (TypeError, ValueError) as exc:
        raise tk.Invalid(tk._("Not a Table Schema: {error}").format(error=str(exc)[:200]))


def min_score(value: Any) -> float:
    try:
        if isinstance(value, bool) or (isinstance(value, str) and len(value) > 30):
            raise ValueError
        score = float(value)
    except (TypeError, ValueError):
        raise tk.Invalid(tk._("min_score must be a number between 0 and 1"))
    if not 0 <= score <= 1:
        raise tk.Invalid(tk._("min_score must be a number between 0 and 1"))
    return score


@validator_args
def return_transition(not_empty: Validator, lgdp_name: Validator, lgdp_text: Validator,
                      lgdp_choice: ValidatorFactory, strip_value: Validator) -> Schema:
    return {
        "id": [not_empty, lgdp_name],
        "to": [not_empty, lgdp_choice(lifecycle.STATES)],
        "reason": [not_empty, lgdp_text, strip_value, not_empty],
    }


@validator_args
def audit_list(ignore_empty: Validator, default: ValidatorFactory, lgdp_name: Validator,
               lgdp_whole_number: ValidatorFactory) -> Schema:
    return {
        "id": [ignore_empty, lgdp_name],
        "limit": [default(1000), lgdp_whole_number(0, 10000)],
        "offset": [default(0), lgdp_whole_number(0, 10**9)],
    }


@validator_args
def standard_version_list(not_empty: Validator, lgdp_name: Validator) -> Schema:
    return {"id": [not_empty, lgdp_name]}


@validator_args
def reviews_list(default: ValidatorFactory, ignore_empty: Validator,
                 lgdp_whole_number: ValidatorFactory) -> Schema:
    return {
        "within_days": [default(90), lgdp_whole_number(0, 3660)],
        "today": [ignore_empty, calendar_date],
    }


@validator_args
def reviews_run(default: ValidatorFactory, ignore_empty: Validator, lgdp_boolean: Validator) -> Schema:
    return {
        "dry_run": [default(False), lgdp_boolean],
        "today": [ignore_empty, calendar_date],
    }


@validator_args
def calendar_show(ignore_empty: Validator, lgdp_name: Validator) -> Schema:
    return {
        "organization": [ignore_empty, lgdp_name],
        "start": [ignore_empty, calendar_date],
        "end": [ignore_empty, calendar_date],
    }


@validator_args
def burden_show(ignore_empty: Validator, lgdp_name: Validator) -> Schema:
    return {
        "organization": [ignore_empty, lgdp_name],
        "year": [ignore_empty, calendar_year],
    }


@validator_args
def return_overlap(ignore_empty: Validator, ignore_missing: Validator, lgdp_name: Validator) -> Schema:
    return {
        "id": [ignore_empty, lgdp_name],
        "data_standard": [ignore_empty, proposed_standard],
        "min_score": [ignore_missing, min_score],
    }
