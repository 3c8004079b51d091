"""Template helpers of the central repository."""
from __future__ import annotations

from typing import Any

import ckan.plugins.toolkit as tk

__all__ = ["lgdp_attention"]


def lgdp_attention() -> list[dict[str, Any]]:
    """The work needing attention that the current user may read (see the
    action ``lgdp_attention_list``); empty when nobody is signed in. For a
    "needs attention" panel::

        {% for item in h.lgdp_attention() %} {{ item.title }}: {{ item.problem }} {% endfor %}
    """
    if not tk.current_user.is_authenticated:
        return []
    try:
        return tk.get_action("lgdp_attention_list")({"user": tk.current_user.name}, {})
    except tk.NotAuthorized:
        return []
