"""The WSGI application of the platform, for a production server.

    CKAN_INI=/path/to/ckan.ini gunicorn -c python:ckanext.lgdp.ops.gunicorn_conf \\
        ckanext.lgdp.ops.wsgi:application

The application is CKAN's own (``ckan.config.middleware.make_app``), built
from the configuration file named by ``CKAN_INI`` exactly as CKAN's
``wsgi.py`` does, with two additions:

- it refuses to start with ``debug = true``: CKAN then wraps itself in
  Werkzeug's interactive debugger, which shows a traceback and a console to
  whoever causes an error. ``ckan run`` is the development server for that.
- CKAN gathers its action, auth and validator functions on first use, and a
  request served meanwhile by another thread may not find the platform's.
  Each server process gathers them here, before it takes any request, so
  every process is ready when it starts to accept.
"""
from __future__ import annotations

import configparser
import os
from logging.config import fileConfig

from ckan import authz
from ckan.cli import CKANConfigLoader
from ckan.config.middleware import make_app
from ckan.types import CKANApp

import ckan.plugins.toolkit as tk


class ConfigurationError(RuntimeError):
    """The configuration cannot be served in production."""


def config_path() -> str:
    path = os.environ.get("CKAN_INI", "")
    if not path:
        raise ConfigurationError("CKAN_INI is not set: it names the CKAN configuration file to serve")
    if not os.path.isfile(path):
        raise ConfigurationError(f"CKAN_INI names {path}, which is not a file")
    return path


def build(path: str) -> CKANApp:
    """CKAN's application for the configuration file ``path``."""
    parser = configparser.RawConfigParser(strict=False)
    parser.read(path, encoding="utf-8")
    if parser.has_section("loggers"):
        fileConfig(path, disable_existing_loggers=False)
    conf = CKANConfigLoader(path).get_config()
    if tk.asbool(conf.get("debug", False)):
        raise ConfigurationError(
            f"{path} sets debug = true, which serves Werkzeug's interactive debugger "
            "to anyone who causes an error; set debug = false to serve it"
        )
    app = make_app(conf)
    _gather_functions()
    return app


def _gather_functions() -> None:
    tk.get_action("status_show")
    authz.auth_functions_list()
    tk.get_validator("not_empty")
    tk.get_converter("convert_to_extras")


application = build(config_path())
