"""Typed getters for the options declared in config_declaration.yaml."""
from __future__ import annotations

import ckan.plugins.toolkit as tk


def service_check_timeout() -> int:
    return tk.config["ckanext.lgdp.service_check_timeout"]


def service_check_ttl() -> int:
    return tk.config["ckanext.lgdp.service_check_ttl"]
