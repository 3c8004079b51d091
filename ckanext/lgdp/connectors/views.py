"""The events feed of a return, for those who poll: JSON and Atom."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

import ckan.plugins.toolkit as tk

connectors = Blueprint("lgdp_connectors", __name__)


def _events(id: str) -> list[dict[str, Any]]:
    context = {"user": tk.current_user.name if tk.current_user.is_authenticated else ""}
    try:
        return tk.get_action("lgdp_event_list")(context, {"data_return": id, "limit": tk.request.args.get("limit", 100)})
    except tk.ObjectNotFound:
        return tk.abort(404, tk._("Data return not found"))
    except tk.ValidationError as e:
        return tk.abort(400, str(e.error_dict))


def events_json(id: str) -> Any:
    return jsonify({"return": id, "events": _events(id)})


def events_atom(id: str) -> Any:
    body = tk.render("lgdp/connectors/events.atom", {"id": id, "events": _events(id)})
    return Response(body, mimetype="application/atom+xml")


connectors.add_url_rule("/return/<id>/events.json", view_func=events_json)
connectors.add_url_rule("/return/<id>/events.atom", view_func=events_atom)


def get_blueprints() -> list[Blueprint]:
    return [connectors]
