"""Data standards: Frictionless Table Schemas, their validation and the
field-level difference between two versions."""
from __future__ import annotations

import json
from typing import Any

import ckan.plugins.toolkit as tk

# What a change of these field properties means to a council.
COMPARED = ("type", "title", "description", "constraints", "format")


def parse(value: Any) -> dict[str, Any]:
    """A Table Schema descriptor from a dict or JSON text; tk.Invalid if it is not one."""
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
