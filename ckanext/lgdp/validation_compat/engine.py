"""Defect 1: give ckanext-validation's table metadata an engine."""
from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

import ckan.plugins.toolkit as tk
from ckan.exceptions import CkanConfigurationException
from ckanext.validation.model import Validation


def _validation_metadata() -> Any:
    return Validation.metadata


def bind_validation_metadata(engine: Any = None) -> Any:
    """Bind the metadata of upstream's ``Validation`` model to ``engine``.

    Called twice: while plugins are constructed (CKAN has no engine yet, so a
    short-lived one is made from the configured URL, honouring
    CKAN_SQLALCHEMY_URL as CKAN itself will) and from ``configure`` with
    CKAN's own engine. Returns the engine bound before, if any.
    """
    metadata = _validation_metadata()
    previous = metadata.bind
    if engine is None:
        url = os.environ.get("CKAN_SQLALCHEMY_URL") or tk.config.get("sqlalchemy.url")
        if not url:
            return previous
        engine = sa.create_engine(url, poolclass=NullPool)
        _require_database(engine)
    metadata.bind = engine
    return previous


def _require_database(engine: Any) -> None:
    """Upstream queries the database while plugins load; without one it
    would fail with a long driver trace, so say plainly what is wrong."""
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as e:
        reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
        raise CkanConfigurationException(
            f"PostgreSQL is not reachable at {engine.url.render_as_string(hide_password=True)}: "
            f"{reason}. Start the database (./platform.sh run starts it locally) "
            "or correct sqlalchemy.url / CKAN_SQLALCHEMY_URL."
        ) from None
