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
from ckanext.lgdp.register import validators as register_validators


def _public(module: Any) -> dict[str, Any]:
    return {name: getattr(module, name) for name in module.__all__}


def collect_actions() -> dict[str, Any]:
    return {**_public(ops_actions)}


def collect_auth_functions() -> dict[str, Any]:
    return {**_public(ops_auth)}


def collect_validators() -> dict[str, Any]:
    return {**_public(register_validators)}


@tk.blanket.config_declarations
@tk.blanket.actions(collect_actions)
@tk.blanket.auth_functions(collect_auth_functions)
@tk.blanket.validators(collect_validators)
@tk.blanket.cli(cli.get_commands)
class LgdpPlugin(p.SingletonPlugin):
    p.implements(p.IConfigurer)
    p.implements(p.IMiddleware, inherit=True)
    p.implements(p.ITranslation, inherit=True)

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

    # ITranslation: one catalogue for every plugin of the package, in i18n/
    # at the top of the repository.

    def i18n_domain(self) -> str:
        return "ckanext-lgdp"
