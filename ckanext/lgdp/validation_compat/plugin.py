"""The ``lgdp_validation`` plugin: ckanext-validation 2.2.0 on CKAN 2.11.

See the package docstring for the defects and why each piece exists.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint

import ckan.plugins as p
import ckan.plugins.toolkit as tk
from ckan import model
from ckan.common import CKANConfig
from ckan.types import Action, Context, DataDict
from ckanext.validation.common import validation

from ckanext.lgdp.model import uploads
from ckanext.lgdp.validation_compat import engine

log = logging.getLogger(__name__)

# Context key set by upstream's job when it patches the validation result
# into the resource; a change carrying it must not start another validation.
PERFORMED = "_validation_performed"
# Our own context key: ids of resources whose file, URL or schema changed.
REVALIDATE = "_lgdp_revalidate"


def supported_formats() -> list[str]:
    return [f.lower() for f in tk.config["ckanext.validation.formats"]]


def needs_validation(resource: dict[str, Any]) -> bool:
    """A resource is validated when it has a data standard and a format
    ckanext-validation reads, and a file or URL to read."""
    return bool(
        resource.get("schema")
        and (resource.get("format") or "").lower() in supported_formats()
        and (resource.get("url") or resource.get("url_type") == "upload")
    )


def start_validation(resource: dict[str, Any]) -> None:
    """Queue the validation of a resource in the background worker."""
    site_user = tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]
    tk.get_action("resource_validation_run")(
        {"user": site_user, "ignore_auth": True},
        {"resource_id": resource["id"], "async": True},
    )


@tk.chained_action
def resource_delete(up_func: Action, context: Context, data_dict: DataDict) -> Any:
    """Defect 3: upstream's sync mode deletes an invalid resource with no user
    (and ignore_auth), which the activity plugin refuses (HTTP 500). Act as
    the site user then: only for such a call from code, never for a visitor."""
    if not context.get("user") and context.get("ignore_auth"):
        context["user"] = tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]
    return up_func(context, data_dict)


def report_by_name(id: str, resource_id: str) -> Any:
    """Defect 4: the report page, reachable by dataset name as well as id."""
    try:
        pkg = tk.get_action("package_show")({}, {"id": id})
    except tk.ObjectNotFound:
        return tk.abort(404, tk._("Dataset not found"))
    except tk.NotAuthorized:
        return tk.abort(403, tk._("Not authorized to see this dataset"))
    return validation(resource_id, id=pkg["id"])


@tk.blanket.config_declarations
class ValidationCompatPlugin(p.SingletonPlugin):
    p.implements(p.IConfigurable)
    p.implements(p.IActions)
    p.implements(p.IBlueprint)
    p.implements(p.IResourceController, inherit=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Defect 1: plugins are built before any update_config runs, and
        # upstream's update_config needs bound metadata.
        engine.bind_validation_metadata()

    # IConfigurable

    def configure(self, config: CKANConfig) -> None:
        temporary = engine.bind_validation_metadata(model.meta.engine)
        if temporary is not None and temporary is not model.meta.engine:
            temporary.dispose()

    # IActions

    def get_actions(self) -> dict[str, Action]:
        return {"resource_delete": resource_delete}

    # IBlueprint: registered before upstream's identical rule, so it wins.

    def get_blueprint(self) -> Blueprint:
        bp = Blueprint("lgdp_validation", __name__)
        bp.add_url_rule(
            "/dataset/<id>/resource/<resource_id>/validation",
            view_func=report_by_name,
        )
        return bp

    # IResourceController (2.10+ names). Upstream's sync actions still call
    # the pre-2.10 names on every resource plugin, so they exist as no-ops.

    def after_resource_create(self, context: Context, resource: dict[str, Any]) -> None:
        if context.get(PERFORMED) or not needs_validation(resource):
            return
        start_validation(resource)

    def before_resource_update(
        self, context: Context, current: dict[str, Any], resource: dict[str, Any]
    ) -> None:
        changed = (
            resource.get("upload") not in (None, "")
            or resource.get("url") != current.get("url")
            or _schema_text(resource.get("schema")) != _schema_text(current.get("schema"))
            or (resource.get("format") or "").lower() != (current.get("format") or "").lower()
        )
        if changed:
            context.setdefault(REVALIDATE, set()).add(current["id"])  # type: ignore

    def after_resource_update(self, context: Context, resource: dict[str, Any]) -> None:
        if context.get(PERFORMED):
            return
        if resource["id"] in context.get(REVALIDATE, set()) and needs_validation(resource):
            start_validation(resource)

    def before_resource_show(self, resource_dict: dict[str, Any]) -> dict[str, Any]:
        # a submission's upload: its validation status, from its row
        resource_dict.update(uploads.validation_shown([resource_dict.get("id") or ""]).get(
            resource_dict.get("id"), {}))
        return resource_dict

    def before_create(self, context: Context, resource: dict[str, Any]) -> None:
        pass

    def after_create(self, context: Context, resource: dict[str, Any]) -> None:
        pass

    def before_update(self, context: Context, current: dict[str, Any], resource: dict[str, Any]) -> None:
        pass

    def after_update(self, context: Context, resource: dict[str, Any]) -> None:
        pass


def _schema_text(schema: Any) -> str:
    if schema in (None, ""):
        return ""
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError:
            return schema
    return json.dumps(schema, sort_keys=True)
