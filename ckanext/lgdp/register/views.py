"""Pages of the register: a return's history (audit trail) and its CSV,
its data standard with the versions, the lifecycle form, and reviews due."""
from __future__ import annotations

import csv
import io
import json
from typing import Any

from flask import Blueprint, Response

import ckan.plugins.toolkit as tk

from ckanext.lgdp import pages

register = Blueprint("lgdp_register", __name__)

AUDIT_COLUMNS = [
    "timestamp", "object_type", "object_name", "object_id", "action", "actor_name",
    "from_state", "to_state", "reason", "diff",
]


def _call(action: str, data_dict: dict[str, Any]) -> Any:
    return pages.call(action, data_dict, not_found=tk._("Data return not found"))


def history(id: str) -> Any:
    pkg = _call("package_show", {"id": id})
    rows = _call("lgdp_audit_list", {"id": pkg["id"]})
    return tk.render("lgdp/register/history.html", {"pkg": pkg, "rows": rows})


def _csv(rows: list[dict[str, Any]], filename: str) -> Response:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=AUDIT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "diff": json.dumps(row["diff"], sort_keys=True, ensure_ascii=False)})
    return Response(
        buf.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def history_csv(id: str) -> Any:
    pkg = _call("package_show", {"id": id})
    return _csv(_call("lgdp_audit_list", {"id": pkg["id"]}), f"{pkg['name']}-audit.csv")


def audit_csv() -> Any:
    """The whole audit trail (governance reviewers)."""
    return _csv(_call("lgdp_audit_list", {"limit": 10000}), "lgdp-audit.csv")


def standard(id: str) -> Any:
    pkg = _call("package_show", {"id": id})
    if pkg.get("type") != "data-return":
        return tk.abort(404, tk._("Data return not found"))
    versions = _call("lgdp_standard_version_list", {"id": pkg["id"]})
    return tk.render("lgdp/register/standard.html", {"pkg": pkg, "versions": versions})


def transition(id: str) -> Any:
    form = tk.request.form
    try:
        tk.get_action("lgdp_return_transition")(
            pages.context(), {"id": id, "to": form.get("to", ""), "reason": form.get("reason", "")}
        )
    except tk.ObjectNotFound:
        return tk.abort(404, tk._("Data return not found"))
    except tk.NotAuthorized as e:
        return tk.abort(403, str(e) or tk._("Not authorised"))
    except tk.ValidationError as e:
        messages = [f"{k}: {'; '.join(v)}" for k, v in e.error_dict.items() if isinstance(v, list)]
        tk.h.flash_error(" ".join(messages))
    else:
        tk.h.flash_success(tk._("The return is now {state}.").format(state=form.get("to")))
    return tk.redirect_to("data-return.read", id=id)


def reviews() -> Any:
    listing = _call("lgdp_reviews_list", {})
    return tk.render("lgdp/register/reviews.html", {"listing": listing})


register.add_url_rule("/return/<id>/history", view_func=history)
register.add_url_rule("/return/<id>/history.csv", view_func=history_csv)
register.add_url_rule("/return/<id>/standard", view_func=standard)
register.add_url_rule("/return/<id>/transition", view_func=transition, methods=["POST"])
register.add_url_rule("/returns/reviews", view_func=reviews)
register.add_url_rule("/returns/audit.csv", view_func=audit_csv)


def get_blueprints() -> list[Blueprint]:
    return [register]
