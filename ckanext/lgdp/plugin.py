"""The plugins of the Local Government Data Platform.

Kept thin: each domain folder owns its actions, auth functions, validators,
views and CLI commands; this module only registers them with CKAN.
"""
from __future__ import annotations

from typing import Any

from flask import Flask

import ckan.plugins as p
import ckan.plugins.toolkit as tk
from ckan.common import CKANConfig

from ckanext.lgdp import cli
from ckanext.lgdp.ops import actions as ops_actions
from ckanext.lgdp.ops import auth as ops_auth
from ckanext.lgdp.ops import health
from ckanext.lgdp.register import actions as register_actions
from ckanext.lgdp.register import auth as register_auth
from ckanext.lgdp.register import calendar as register_calendar
from ckanext.lgdp.register import calendar_views
from ckanext.lgdp.register import helpers as register_helpers
from ckanext.lgdp.register import overlap as register_overlap
from ckanext.lgdp.register import search as register_search
from ckanext.lgdp.register import validators as register_validators
from ckanext.lgdp.register import views as register_views

# Each domain module lists what it registers in __all__.
ACTION_MODULES = (ops_actions, register_actions, register_calendar, register_overlap)
AUTH_MODULES = (ops_auth, register_auth)


def _public(*modules: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for module in modules:
        for name in module.__all__:
            if name in out:
                raise ValueError(f"{name} is registered by two modules")
            out[name] = getattr(module, name)
    return out


def collect_actions() -> dict[str, Any]:
    return _public(*ACTION_MODULES)


def collect_auth_functions() -> dict[str, Any]:
    return _public(*AUTH_MODULES)


def collect_validators() -> dict[str, Any]:
    return _public(register_validators)


def collect_helpers() -> dict[str, Any]:
    return _public(register_helpers)


def collect_blueprints() -> list[Any]:
    return [*register_views.get_blueprints(), *calendar_views.get_blueprints()]


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

    # IConfigurer

    def update_config(self, config_: CKANConfig) -> None:
        tk.add_template_directory(config_, "templates")
        tk.add_public_directory(config_, "public")
        tk.add_resource("assets", "lgdp")

    # IMiddleware

    def make_middleware(self, app: Any, config: CKANConfig) -> Any:
        if isinstance(app, Flask):
            health.register(app)
        return app

    # IFacets

    def dataset_facets(self, facets_dict: Any, package_type: str) -> Any:
        return register_search.facets(facets_dict, package_type)

    # IPackageController

    def before_dataset_index(self, pkg_dict: dict[str, Any]) -> dict[str, Any]:
        return register_search.before_index(pkg_dict)

    # ITranslation: one catalogue for every plugin of the package, in i18n/
    # at the top of the repository.

    def i18n_domain(self) -> str:
        return "ckanext-lgdp"
