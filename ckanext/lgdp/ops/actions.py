"""Actions about the platform itself."""
from __future__ import annotations

from typing import Any

import ckan.plugins.toolkit as tk
from ckan.types import Context, DataDict

from ckanext.lgdp import access
from ckanext.lgdp.ops import health, schema
from ckanext.lgdp.params import validate

__all__ = ["lgdp_status_show"]


def may_see_details(user: str | None) -> bool:
    """Sysadmins and the coordinating body's members see what is behind the
    verdict (workers, the scheduler's tick, queues, reasons)."""
    return access.actor(user).is_reviewer()


@tk.side_effect_free
@validate(schema.status_show)
def lgdp_status_show(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Whether each service the platform needs answers, and whether jobs are
    actually being taken.

    Anyone may ask and gets ``ok`` per service; sysadmins and the members of
    the coordinating body also get the details. It takes no parameters.

    :returns: ``{"ok": bool, "services": {name: {"ok": bool, ...}}}`` with
        ``database``, ``search``, ``jobs`` (Redis), ``worker`` (live workers by
        heartbeat: ``live``, ``workers``), ``scheduler`` (``last_tick``,
        ``age``, ``host``, ``pid``) and ``queues`` (``queues``: per queue
        ``depth``, ``oldest_age``, ``last_taken_age``); ``error`` says why a
        service is not ok. Ages are in seconds.
    """
    tk.check_access("lgdp_status_show", context, data_dict)
    services = health.status()
    if not may_see_details(context.get("user")):
        services = {name: {"ok": s["ok"]} for name, s in services.items()}
    return {"ok": all(s["ok"] for s in services.values()), "services": services}
