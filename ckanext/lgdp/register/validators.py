"""Validators used by the register's scheming schemas."""
from __future__ import annotations

import re
from typing import Any

import ckan.plugins.toolkit as tk

__all__ = ["lgdp_gss_code"]

# Council areas: S12; the codes run S12000005 ... S12000050.
_GSS_COUNCIL = re.compile(r"^S12\d{6}$")


def lgdp_gss_code(value: Any) -> Any:
    """A council-area GSS code: 'S12' and six digits, e.g. S12000047."""
    if value in (None, ""):
        return value
    code = str(value).strip().upper()
    if not _GSS_COUNCIL.match(code):
        raise tk.Invalid(
            tk._("A council GSS code is S12 followed by six digits, e.g. S12000047")
        )
    return code
