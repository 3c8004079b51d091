"""The plugins of the Local Government Data Platform.

Kept thin: each domain folder owns its actions, auth functions, validators,
views and CLI commands; this module only registers them with CKAN.
"""
from __future__ import annotations

import functools
import os
from typing import Any

from flask import Flask

import ckan.plugins as p
import ckan.plugins.toolkit as tk
from ckan.common import CKANConfig

from ckanext.lgdp import access, access_auth, cli, gate, params
from ckanext.lgdp.connectors import auth as connector_auth
from ckanext.lgdp.connectors import pubsub, pull, reminders
from ckanext.lgdp.connectors import views as connector_views
from ckanext.lgdp.dashboards import actions as dashboard_actions
from ckanext.lgdp.dashboards import auth as dashboard_auth
from ckanext.lgdp.dashboards import helpers as dashboard_helpers
from ckanext.lgdp.dashboards import views as dashboard_views
from ckanext.lgdp.ops import actions as ops_actions
from ckanext.lgdp.ops import auth as ops_auth
from ckanext.lgdp.ops import health
from ckanext.lgdp.ops import helpers as ops_helpers
from ckanext.lgdp.register import actions as register_actions
from ckanext.lgdp.register import auth as register_auth
from ckanext.lgdp.register import calendar as register_calendar
from ckanext.lgdp.register import calendar_views
from ckanext.lgdp.register import helpers as register_helpers
from ckanext.lgdp.register import overlap as register_overlap
from ckanext.lgdp.register import search as register_search
from ckanext.lgdp.register import validators as register_validators
from ckanext.lgdp.register import views as register_views
from ckanext.lgdp.repository import actions as repository_actions
from ckanext.lgdp.repository import auth as repository_auth
from ckanext.lgdp.repository import helpers as repository_helpers
from ckanext.lgdp.repository import jobs as repository_jobs
from ckanext.lgdp.repository import tracking as repository_tracking
from ckanext.lgdp.repository import views as repository_views
from ckanext.lgdp.submissions import actions as submission_actions
from ckanext.lgdp.submissions import auth as submission_auth
from ckanext.lgdp.submissions import helpers as submission_helpers
from ckanext.lgdp.submissions import search as submission_search
from ckanext.lgdp.submissions import validators as submission_validators
from ckanext.lgdp.submissions import views as submission_views
from ckanext.lgdp.submissions import workflow as submission_workflow
from ckanext.lgdp.submissions.intake import limits as upload_limits

# Each domain module lists what it registers in __all__.
ACTION_MODULES = (
    ops_actions, register_actions, register_calendar, register_overlap, submission_actions, repository_actions,
    pubsub, reminders, pull, dashboard_actions,
)
AUTH_MODULES = (ops_auth, register_auth, access_auth, submission_auth, repository_auth, connector_auth,
                dashboard_auth)


def _chain(outer: Any, inner: Any) -> Any:
    """Two chained functions of one name from two domains, as one: `outer`
    runs first and its `next` is `inner`, whose `next` is CKAN's."""

    def chained(next_func: Any, *args: Any, **kwargs: Any) -> Any:
        return outer(functools.partial(inner, next_func), *args, **kwargs)

    for attribute, value in {**inner.__dict__, **outer.__dict__}.items():
        setattr(chained, attribute, value)
    chained.__name__ = getattr(inner, "__name__", "chained")
    chained.__doc__ = inner.__doc__
    return chained


def _is_chained(func: Any) -> bool:
    return bool(getattr(func, "chained_action", False) or getattr(func, "chained_auth_function", False))


def _public(*modules: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for module in modules:
        for name in module.__all__:
            func = getattr(module, name)
            if name in out:
                if not (_is_chained(out[name]) and _is_chained(func)):
                    raise ValueError(f"{name} is registered by two modules")
                func = _chain(func, out[name])
            out[name] = func
    return out


def collect_actions() -> dict[str, Any]:
    """The platform's actions, and the access gate in front of every action
    CKAN and the other plugins register (ckanext.lgdp.gate)."""
    return gate.wrap_registry(_public(*ACTION_MODULES))


def collect_auth_functions() -> dict[str, Any]:
    return _public(*AUTH_MODULES)


def collect_validators() -> dict[str, Any]:
    return _public(params, register_validators, submission_validators)


# the catalogue (register) labels the facets submissions index
register_helpers.FACET_LABELS.update(submission_helpers.facet_labels())


def collect_helpers() -> dict[str, Any]:
    return _public(register_helpers, submission_helpers, repository_helpers, dashboard_helpers, ops_helpers)


def collect_blueprints() -> list[Any]:
    return [
        *register_views.get_blueprints(),
        *calendar_views.get_blueprints(),
        *submission_views.get_blueprints(),
        *repository_views.get_blueprints(),
        *connector_views.get_blueprints(),
        *dashboard_views.get_blueprints(),
    ]


@tk.blanket.config_declarations
@tk.blanket.actions(collect_actions)
@tk.blanket.auth_functions(collect_auth_functions)
@tk.blanket.validators(collect_validators)
@tk.blanket.helpers(collect_helpers)
@tk.blanket.blueprints(collect_blueprints)
@tk.blanket.cli(cli.get_commands)
class LgdpPlugin(p.SingletonPlugin):
    p.implements(p.IConfigurer)
    p.implements(p.IMiddleware, inherit=True)
    p.implements(p.ITranslation, inherit=True)
    p.implements(p.IFacets, inherit=True)
    p.implements(p.IPackageController, inherit=True)
    p.implements(p.IPermissionLabels)
    p.implements(p.ISignal)

    # IConfigurer

    def update_config(self, config_: CKANConfig) -> None:
        tk.add_template_directory(config_, "templates")
        tk.add_public_directory(config_, "public")
        tk.add_resource("assets", "lgdp")

    # IMiddleware

    def make_middleware(self, app: Any, config: CKANConfig) -> Any:
        if isinstance(app, Flask):
            health.register(app)
            gate.register(app)
            upload_limits.register(app)
        return app

    # IFacets

    def dataset_facets(self, facets_dict: Any, package_type: str) -> Any:
        facets_dict = register_search.facets(facets_dict, package_type)
        return submission_search.facets(facets_dict, package_type)

    # IPackageController

    def before_dataset_index(self, pkg_dict: dict[str, Any]) -> dict[str, Any]:
        pkg_dict = register_search.before_index(pkg_dict)
        return submission_search.before_index(pkg_dict)

    # a submission's state and its consolidation's live in our tables, not
    # the dataset: put on its dict whenever it is shown (and so indexed) or
    # found
    def after_dataset_show(self, context: Any, pkg_dict: dict[str, Any]) -> dict[str, Any]:
        submission_workflow.overlay([pkg_dict])
        repository_tracking.overlay([pkg_dict])
        return pkg_dict

    def after_dataset_search(self, search_results: dict[str, Any], search_params: dict[str, Any]) -> dict[str, Any]:
        results = search_results.get("results") or []
        submission_workflow.overlay(results)
        submission_workflow.overlay_uploads(results)
        repository_tracking.overlay(results)
        return search_results

    # ISignal: events between the domains

    def get_signal_subscriptions(self) -> Any:
        return {**repository_jobs.subscriptions(), **pubsub.subscriptions()}

    # IPermissionLabels: the access policy (ckanext.lgdp.access) decides.

    def get_dataset_labels(self, dataset_obj: Any) -> list[str]:
        return access.dataset_labels(dataset_obj)

    def get_user_dataset_labels(self, user_obj: Any) -> list[str]:
        return access.user_labels(user_obj)

    # ITranslation: one catalogue for every plugin of the package, shipped
    # inside it (ckanext/lgdp/i18n).

    def i18n_domain(self) -> str:
        return "ckanext-lgdp"

    def i18n_directory(self) -> str:
        return os.path.join(os.path.dirname(os.path.abspath(__file__)), "i18n")

    def i18n_locales(self) -> list[str]:
        directory = self.i18n_directory()
        return sorted(d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d, "LC_MESSAGES")))
