"""Validators used by the register's scheming schemas."""
from __future__ import annotations

import json
import re
from typing import Any

import ckan.plugins.toolkit as tk
from ckan.types import Context, FlattenDataDict, FlattenErrorDict, FlattenKey

from ckanext.lgdp import access
from ckanext.lgdp.register import lifecycle, standards

__all__ = [
    "lgdp_gss_code",
    "lgdp_agency_names",
    "lgdp_lifecycle_status",
    "lgdp_non_negative_number",
    "lgdp_table_schema",
    "lgdp_json_object",
]

# Council areas: S12; the codes run S12000005 ... S12000050.
_GSS_COUNCIL = re.compile(r"^S12\d{6}$")


def lgdp_gss_code(value: Any) -> Any:
    """A council-area GSS code: 'S12' and six digits, e.g. S12000047."""
    if value in (None, ""):
        return value
    code = str(value).strip().upper()
    if not _GSS_COUNCIL.match(code):
        raise tk.Invalid(tk._("A council GSS code is S12 followed by six digits, e.g. S12000047"))
    return code


def lgdp_agency_names(value: Any, context: Context) -> Any:
    """Every requesting agency is an existing organisation of type agency."""
    if value in (None, "", []):
        return value
    names = access.agency_names(value)
    agencies = {key for org in access.orgs_of_type(access.AGENCY) for key in (org["name"], org["id"])}
    for name in names:
        if name not in agencies:
            raise tk.Invalid(tk._("{name} is not an agency of the platform").format(name=name))
    return value


def lgdp_non_negative_number(value: Any) -> Any:
    if value in (None, ""):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise tk.Invalid(tk._("Please enter a number"))
    if number < 0:
        raise tk.Invalid(tk._("Must be zero or more"))
    return value


def lgdp_table_schema(value: Any) -> Any:
    """A Frictionless Table Schema (dict or JSON text), stored as JSON text."""
    if value in (None, "", {}):
        return value
    descriptor = standards.parse(value)
    return json.dumps(descriptor, sort_keys=False)


def lgdp_json_object(value: Any) -> Any:
    """Output: JSON text back to an object."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def lgdp_lifecycle_status(
    key: FlattenKey, data: FlattenDataDict, errors: FlattenErrorDict, context: Context
) -> None:
    """The lifecycle status changes only through lgdp_return_transition.

    A new return starts as 'proposed' (a sysadmin may load one in another state,
    e.g. when importing the existing register). On update the stored value is
    kept, and a different value is an error naming the transition action.
    """
    value = data.get(key)
    package = context.get("package")
    current = package.extras.get("lifecycle_status") if package is not None else None
    if context.get(lifecycle.TRANSITION_FLAG):
        if value not in lifecycle.STATES:
            errors[key].append(tk._("Unknown lifecycle status"))
        return
    if package is None:  # create
        if value in (None, "", tk.missing):
            data[key] = lifecycle.INITIAL
        elif value != lifecycle.INITIAL and not access.context_actor(context).sysadmin:
            errors[key].append(
                tk._("A new return starts as proposed; its status then changes through lgdp_return_transition")
            )
        elif value not in lifecycle.STATES:
            errors[key].append(tk._("Unknown lifecycle status"))
        return
    if value in (None, "", tk.missing):
        data[key] = current or lifecycle.INITIAL
    elif value != current:
        errors[key].append(
            tk._("The lifecycle status changes only through lgdp_return_transition (from {current})").format(
                current=current
            )
        )
