"""Input schemas of the actions about the platform itself (a parameter not
named here is refused)."""
from __future__ import annotations

from ckan.logic.schema import validator_args
from ckan.types import Schema


@validator_args
def status_show() -> Schema:
    return {}
