"""Actions about the platform itself."""
from __future__ import annotations

from typing import Any

import ckan.authz as authz
import ckan.plugins.toolkit as tk
from ckan.types import Context, DataDict

from ckanext.lgdp.ops import health, schema
from ckanext.lgdp.params import validate

__all__ = ["lgdp_status_show"]


@tk.side_effect_free
@validate(schema.status_show)
def lgdp_status_show(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Whether each service the platform needs answers.

    Anyone may ask; only sysadmins see the reasons behind a failure. It
    takes no parameters.

    :returns: ``{"ok": bool, "services": {"database": {"ok": bool, "error": str},
        "search": ..., "jobs": ..., "worker": ...}}``
    """
    tk.check_access("lgdp_status_show", context, data_dict)
    services = health.status()
    if not authz.is_sysadmin(context.get("user")):
        services = {name: {"ok": s["ok"]} for name, s in services.items()}
    return {"ok": all(s["ok"] for s in services.values()), "services": services}
