"""Pages of submissions: upload a file from the browser, sign off, submit,
accept or return, explain queries, and read an upload's report row by row.
The submission itself is shown by CKAN's dataset page for its type
(/submission/<name>), with our panel (templates/lgdp/submissions/)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, send_file

import ckan.plugins.toolkit as tk

from ckanext.lgdp import pages
from ckanext.lgdp.submissions import normalised
from ckanext.lgdp.submissions.actions import CHANNEL_KEY

submissions = Blueprint("lgdp_submissions", __name__)


def _back(id: str) -> Any:
    return tk.redirect_to("submission.read", id=id)


def _act(id: str, action: str, data: dict[str, Any], success: str, **context: Any) -> Any:
    try:
        tk.get_action(action)({**pages.context(), **context}, {"id": id, **data})
    except tk.ObjectNotFound:
        return tk.abort(404, tk._("Submission not found"))
    except tk.NotAuthorized as e:
        return tk.abort(403, str(e) or tk._("Not authorised"))
    except tk.ValidationError as e:
        tk.h.flash_error(pages.messages(e))
    else:
        tk.h.flash_success(success)
    return _back(id)


def upload(id: str) -> Any:
    file = tk.request.files.get("upload")
    data = {
        "upload": file if file is not None and file.filename else None,
        "url": tk.request.form.get("url", ""),
        "description": tk.request.form.get("description", ""),
    }
    return _act(id, "lgdp_submission_upload", data, tk._("File received: it is being validated. Refresh this page for the result."),
                **{CHANNEL_KEY: "browser"})


def transition(id: str) -> Any:
    form = tk.request.form
    action = form.get("action", "")
    done = {
        "sign_off": tk._("Signed off. An editor can now submit it."),
        "withdraw_sign_off": tk._("Sign-off withdrawn."),
        "submit": tk._("Submitted to the requesting agencies."),
        "accept": tk._("Accepted."),
        "return": tk._("Returned to the council for correction."),
    }.get(action, tk._("Done."))
    return _act(id, "lgdp_submission_transition", {"action": action, "reason": form.get("reason", "")}, done)


def explain(id: str) -> Any:
    form = tk.request.form
    return _act(
        id,
        "lgdp_submission_explain",
        {"query_id": form.get("query_id", ""), "explanation": form.get("explanation", "")},
        tk._("Explanation saved."),
    )


def _upload(id: str, upload_id: str, limit: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The submission and one of its uploads as the user may read them;
    aborts with 404 (or 403) otherwise."""
    try:
        pkg = tk.get_action("package_show")(pages.context(), {"id": id})
        found = tk.get_action("lgdp_upload_show")(pages.context(), {"id": upload_id, "limit": limit})
    except tk.ObjectNotFound:
        tk.abort(404, tk._("Upload not found"))
    except tk.NotAuthorized as e:
        tk.abort(403, str(e) or tk._("Not authorised"))
    if found["submission_id"] != pkg["id"]:
        tk.abort(404, tk._("Upload not found"))
    return pkg, found


def report(id: str, upload_id: str) -> Any:
    pkg, found = _upload(id, upload_id, 5000)
    resource = next((r for r in pkg.get("resources", []) if r["id"] == upload_id), None)
    return tk.render("lgdp/submissions/report.html", {"pkg": pkg, "upload": found, "resource": resource})


def validated(id: str, upload_id: str) -> Any:
    """The upload's normalised file: exactly what was validated (and, once
    accepted, consolidated)."""
    _pkg, found = _upload(id, upload_id, 0)
    if not found.get("normalised") or not normalised.exists(found["id"]):
        return tk.abort(404, tk._("This upload has no validated file: it could not be read as a table"))
    stem = (found.get("filename") or "upload").rsplit(".", 1)[0]
    return send_file(normalised.path_of(found["id"]), mimetype="text/csv", as_attachment=True,
                     download_name=f"{stem}-as-validated.csv")


submissions.add_url_rule("/submission/<id>/upload", view_func=upload, methods=["POST"])
submissions.add_url_rule("/submission/<id>/uploads/<upload_id>/validated.csv", view_func=validated)
submissions.add_url_rule("/submission/<id>/transition", view_func=transition, methods=["POST"])
submissions.add_url_rule("/submission/<id>/explain", view_func=explain, methods=["POST"])
submissions.add_url_rule("/submission/<id>/uploads/<upload_id>", view_func=report)


def get_blueprints() -> list[Blueprint]:
    return [submissions]
