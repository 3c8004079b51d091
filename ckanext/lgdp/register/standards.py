"""Data standards: Frictionless Table Schemas, their validation and the
field-level difference between two versions."""
from __future__ import annotations

import json
import math
from typing import Any

import ckan.plugins.toolkit as tk
from ckan import model

from ckanext.lgdp.model import StandardVersion

# What a change of these field properties means to a council.
COMPARED = ("type", "title", "description", "constraints", "format")

# How the standard's field types are stored in a return's central table
# (DataStore column types; other types are stored as text).
STORAGE_TYPES = {"integer": "int8", "number": "numeric", "string": "text", "boolean": "bool",
                 "date": "date", "datetime": "timestamp", "year": "int4"}
# The values those columns hold, as minimum and maximum constraints. Integers:
# PostgreSQL's bigint. Numbers: finite, and far enough inside a double (the
# checks read the table as float8, and rates per 1,000 multiply by 1,000) that
# every stored figure and its rate stay finite; frictionless reads "inf",
# "NaN" and "1e999999" as numbers, so the bounds are what refuses them.
STORAGE_BOUNDS: dict[str, tuple[Any, Any]] = {
    "integer": (-(2**63), 2**63 - 1),
    "number": (-1e300, 1e300),
    "year": (-(2**31), 2**31 - 1),
}


# The field types that hold figures.
NUMERIC_TYPES = ("integer", "number")


def is_countable(field: dict[str, Any]) -> bool:
    """Whether a field of a standard counts something (dwellings, children,
    tonnes): a figure marked ``"lgdp:countable": true``. Its rate per 1,000
    population is stored beside it in the return's table, a council-period's
    rows add up, and the checks and dashboards compare councils by that rate.
    The one test of it."""
    return isinstance(field, dict) and field.get("lgdp:countable") is True and field.get("type") in NUMERIC_TYPES


# Table Schema's default boolean values; a field may declare its own.
TRUE_VALUES = ("true", "True", "TRUE", "1")
FALSE_VALUES = ("false", "False", "FALSE", "0")


def boolean_values(field: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A boolean field's texts for true and for false: its ``trueValues``
    and ``falseValues``, Table Schema's defaults where it declares none."""
    return tuple(field.get("trueValues") or TRUE_VALUES), tuple(field.get("falseValues") or FALSE_VALUES)


def countable_fields(schema: dict[str, Any] | None) -> list[str]:
    """The names of a standard's countable fields (``is_countable``), in order."""
    return [f["name"] for f in (schema or {}).get("fields") or [] if is_countable(f)]


class StandardError(ValueError):
    """Not a Table Schema with fields; the message says why, in words."""


def parse_standard(value: Any) -> dict[str, Any]:
    """A Table Schema as a dict, from a dict or its JSON text; StandardError
    when it is not valid JSON or not a Table Schema with named fields."""
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise StandardError(tk._("The data standard is not valid JSON: {error}").format(error=exc)) from None
    if not isinstance(value, dict) or not isinstance(value.get("fields"), list) or not value["fields"]:
        raise StandardError(tk._("The data standard must be a Table Schema with a list of fields"))
    for i, field in enumerate(value["fields"]):
        if not isinstance(field, dict) or not isinstance(field.get("name"), str) or not field["name"].strip():
            raise StandardError(tk._("Field {number} of the data standard has no name").format(number=i + 1))
    return value


def parse(value: Any) -> dict[str, Any]:
    """A Table Schema descriptor from a dict or JSON text; tk.Invalid if it is not one."""
    # frictionless takes ~0.4 s to import: loaded when a standard is parsed,
    # not by every process that loads the plugin
    from frictionless import FrictionlessException, Schema

    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise tk.Invalid(tk._("The data standard is not valid JSON: {error}").format(error=e))
    if not isinstance(value, dict) or not isinstance(value.get("fields"), list) or not value["fields"]:
        raise tk.Invalid(tk._("The data standard must be a Table Schema with a list of fields"))
    try:
        Schema.from_descriptor(value)
    except FrictionlessException as e:
        errors = [err.message for err in e.reasons] or [e.error.message]
        raise tk.Invalid(tk._("The data standard is not a valid Table Schema: {errors}").format(errors="; ".join(errors)))
    names = [f.get("name") for f in value["fields"]]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise tk.Invalid(tk._("The data standard names a field twice: {names}").format(names=", ".join(duplicates)))
    return value


def with_storage_bounds(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema (changed in place and returned) with the bounds of storage
    as constraints of its integer and number fields: a value the central
    table cannot hold fails validation, with the same constraint error from
    frictionless and from the fast validator, instead of failing
    consolidation later. A standard's own tighter bound is kept."""
    for field in schema.get("fields") or []:
        bounds = STORAGE_BOUNDS.get(field.get("type") or "")
        if bounds is None:
            continue
        constraints = field.setdefault("constraints", {})
        low, high = bounds
        if not _number(constraints.get("minimum")) or constraints["minimum"] < low:
            constraints["minimum"] = low
        if not _number(constraints.get("maximum")) or constraints["maximum"] > high:
            constraints["maximum"] = high
    return schema


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load(value: Any) -> dict[str, Any] | None:
    """The standard as a dict (package_show gives a dict; the database text)."""
    if value in (None, "", {}):
        return None
    if isinstance(value, dict):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return None


def diff(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    """What changed between two standards, field by field:
    {"added": [name...], "removed": [name...],
     "changed": {name: {property: {"from": x, "to": y}}}, "primary_key": {...}}"""
    old_fields = {f["name"]: f for f in (old or {}).get("fields", [])}
    new_fields = {f["name"]: f for f in (new or {}).get("fields", [])}
    changed: dict[str, Any] = {}
    for name in old_fields.keys() & new_fields.keys():
        props = {
            prop: {"from": old_fields[name].get(prop), "to": new_fields[name].get(prop)}
            for prop in COMPARED
            if old_fields[name].get(prop) != new_fields[name].get(prop)
        }
        if props:
            changed[name] = props
    out: dict[str, Any] = {
        "added": [n for n in new_fields if n not in old_fields],
        "removed": [n for n in old_fields if n not in new_fields],
        "changed": changed,
    }
    if (old or {}).get("primaryKey") != (new or {}).get("primaryKey"):
        out["primary_key"] = {"from": (old or {}).get("primaryKey"), "to": (new or {}).get("primaryKey")}
    return out


def is_empty(change: dict[str, Any]) -> bool:
    return not (change.get("added") or change.get("removed") or change.get("changed") or change.get("primary_key"))


# ---------------------------------------------------------------- which version applies


def current_standard(return_dict: dict[str, Any]) -> tuple[int | None, dict[str, Any] | None]:
    """The version number and Table Schema councils validate against now:
    the newest saved version, else the return's ``data_standard`` field
    (a return whose standard was never saved as a version)."""
    row = (
        model.Session.query(StandardVersion)
        .filter(StandardVersion.return_id == return_dict["id"])
        .order_by(StandardVersion.version.desc())
        .first()
    )
    if row is not None:
        return row.version, row.schema
    return None, load(return_dict.get("data_standard"))


def standard_for(submission: model.Package, version: int | None) -> dict[str, Any] | None:
    """The Table Schema a submission's upload was (or is) checked against:
    the version it names, else the current one (``current_standard``).
    tk.ObjectNotFound when the submission's return is gone."""
    return_id = submission.extras.get("data_return")
    if version:
        row = (
            model.Session.query(StandardVersion)
            .filter(StandardVersion.return_id == return_id, StandardVersion.version == version)
            .first()
        )
        if row is not None:
            return row.schema
    pkg = tk.get_action("package_show")({"ignore_auth": True, "use_cache": False}, {"id": return_id})
    return current_standard(pkg)[1]

