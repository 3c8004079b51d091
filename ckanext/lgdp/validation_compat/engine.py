"""Defect 1: give ckanext-validation's table metadata an engine."""
from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

import ckan.plugins.toolkit as tk


def _validation_metadata() -> Any:
    from ckanext.validation.model import Validation

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
    metadata.bind = engine
    return previous
