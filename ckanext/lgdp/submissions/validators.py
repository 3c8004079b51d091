"""Validators of the submission schema."""
from __future__ import annotations

from typing import Any

import ckan.plugins.toolkit as tk
from ckan.types import Context, FlattenDataDict, FlattenErrorDict, FlattenKey

from ckanext.lgdp.params import stopping
from ckanext.lgdp.submissions.states import PLATFORM_FLAG
from ckanext.lgdp.submissions.upload_keys import checked_key

__all__ = ["lgdp_platform_field", "lgdp_state_field", "lgdp_upload_key"]


def lgdp_platform_field(
    key: FlattenKey, data: FlattenDataDict, errors: FlattenErrorDict, context: Context
) -> None:
    """A field only the platform's submission actions set (status, period,
    sign-off, ...). A value sent by anyone else is ignored, not an error (forms
    and package_patch send the stored values back): the stored one is kept."""
    if not context.get(PLATFORM_FLAG):
        package = context.get("package")
        data[key] = package.extras.get(key[0]) if package is not None else None
    if data.get(key) in (None, "", tk.missing):
        data[key] = tk.missing
        raise tk.StopOnError


def lgdp_state_field(
    key: FlattenKey, data: FlattenDataDict, errors: FlattenErrorDict, context: Context
) -> None:
    """A field of the submission's state (status, sign-off, decisions, the
    current upload): kept in lgdp_submission_state by the submission
    actions, never stored with the dataset. Any value sent is dropped
    (package_patch sends the shown values back), from anyone."""
    data[key] = tk.missing
    raise tk.StopOnError


@stopping
def lgdp_upload_key(value: Any) -> str:
    """An idempotency key (``client_ref``): printable ASCII, at most 255
    characters (submissions/upload_keys.py)."""
    return checked_key(value)
