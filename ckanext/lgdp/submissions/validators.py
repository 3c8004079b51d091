"""Validators of the submission schema."""
from __future__ import annotations

import ckan.plugins.toolkit as tk
from ckan.types import Context, FlattenDataDict, FlattenErrorDict, FlattenKey

from ckanext.lgdp.submissions.states import PLATFORM_FLAG

__all__ = ["lgdp_platform_field"]


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
