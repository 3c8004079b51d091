"""Pages of the central repository: the quality flags of a return (per
period) and of a council, with the explain / close workflow."""
from __future__ import annotations

from typing import Any

from flask import Blueprint

import ckan.plugins.toolkit as tk

from ckanext.lgdp import pages

repository = Blueprint("lgdp_repository", __name__)


def return_qa(id: str) -> Any:
    pkg = pages.call("package_show", {"id": id})
    period = tk.request.args.get("period") or None
    flags = pages.call("lgdp_qa_flag_list", {"data_return": pkg["id"], **({"period": period} if period else {})})
    periods = sorted({f["period"] for f in pages.call("lgdp_qa_flag_list", {"data_return": pkg["id"]}) if f["period"]}, reverse=True)
    return tk.render("lgdp/repository/qa.html", {"pkg": pkg, "council": None, "flags": flags, "period": period,
                                                  "periods": periods})


def council_qa(id: str) -> Any:
    org = pages.call("organization_show", {"id": id})
    flags = pages.call("lgdp_qa_flag_list", {"council": org["id"]})
    return tk.render("lgdp/repository/qa.html", {"pkg": None, "council": org, "flags": flags, "period": None,
                                                  "periods": []})


def _act(action: str, data: dict[str, Any], done: str, missing: str = "", back: str = "") -> Any:
    """Run a form's action, flash its outcome and go back (404/403 as pages)."""
    try:
        tk.get_action(action)(pages.context(), data)
    except tk.ObjectNotFound:
        return tk.abort(404, missing or tk._("Flag not found"))
    except tk.NotAuthorized as e:
        return tk.abort(403, str(e) or tk._("Not authorised"))
    except tk.ValidationError as e:
        tk.h.flash_error(" ".join("; ".join(v) for v in e.error_dict.values() if isinstance(v, list)))
    else:
        tk.h.flash_success(done)
    return tk.redirect_to(back or tk.request.form.get("came_from") or "/")


def explain(flag_id: str) -> Any:
    return _act("lgdp_qa_flag_explain", {"id": flag_id, "explanation": tk.request.form.get("explanation", "")},
                tk._("Explanation saved."))


def close(flag_id: str) -> Any:
    return _act("lgdp_qa_flag_close", {"id": flag_id, "note": tk.request.form.get("note", "")}, tk._("Flag closed."))


def retry_consolidation(id: str) -> Any:
    return _act("lgdp_consolidation_retry", {"id": id}, tk._("The accepted file is in the central table."),
                missing=tk._("Submission not found"), back=tk.url_for("submission.read", id=id))


repository.add_url_rule("/qa/return/<id>", view_func=return_qa)
repository.add_url_rule("/submission/<id>/consolidate", view_func=retry_consolidation, methods=["POST"])
repository.add_url_rule("/qa/council/<id>", view_func=council_qa)
repository.add_url_rule("/qa/flag/<flag_id>/explain", view_func=explain, methods=["POST"])
repository.add_url_rule("/qa/flag/<flag_id>/close", view_func=close, methods=["POST"])


def get_blueprints() -> list[Blueprint]:
    return [repository]
