"""What the extension's pages share: the signed-in user's action context,
an action call whose errors become HTTP errors with their message, and a
validation error in words."""
from __future__ import annotations

from typing import Any, cast

import ckan.plugins.toolkit as tk
from ckan.types import Context


def context() -> Context:
    """The action context of the signed-in user ('' when anonymous)."""
    user = tk.current_user
    if user.is_authenticated:
        return cast(Context, {"user": user.name, "auth_user_obj": user})
    return cast(Context, {"user": ""})


def messages(error: tk.ValidationError, with_fields: bool = False) -> str:
    """A validation error's messages in one line (``field: message`` when
    ``with_fields``, for errors about a query string)."""
    out = []
    for key, value in (error.error_dict or {}).items():
        if key == "errors":
            continue
        text = "; ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        out.append(f"{key}: {text}" if with_fields else text)
    return ("; " if with_fields else " ").join(out) or str(error)


def call(action: str, data: dict[str, Any], not_found: str | None = None) -> Any:
    """Run an action as the signed-in user: not found -> 404, not allowed ->
    403, invalid -> 400, each with the action's message."""
    try:
        return tk.get_action(action)(context(), data)
    except tk.ObjectNotFound as e:
        return tk.abort(404, not_found or str(e) or tk._("Not found"))
    except tk.NotAuthorized as e:
        return tk.abort(403, str(e) or tk._("Not authorised"))
    except tk.ValidationError as e:
        return tk.abort(400, messages(e, with_fields=True))
