"""Versions of the data standard (Frictionless Table Schema) of a return."""
from __future__ import annotations

import datetime
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped

import ckan.plugins.toolkit as tk
from ckan import model

from ckanext.lgdp.model.audit import _now


class StandardVersion(tk.BaseModel):  # type: ignore[misc]
    __tablename__ = "lgdp_standard_version"
    __table_args__ = (sa.UniqueConstraint("return_id", "version", name="lgdp_standard_version_return_version"),)

    id: Mapped[str] = sa.Column(sa.UnicodeText, primary_key=True, default=lambda: str(uuid.uuid4()))
    return_id: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False, index=True)
    version: Mapped[int] = sa.Column(sa.Integer, nullable=False)
    schema: Mapped[dict[str, Any]] = sa.Column(JSONB, nullable=False)
    # field-level changes against the previous version
    changes: Mapped[dict[str, Any]] = sa.Column(JSONB, nullable=False, default=dict)
    created: Mapped[datetime.datetime] = sa.Column(sa.DateTime, nullable=False, default=_now)
    created_by: Mapped[str | None] = sa.Column(sa.UnicodeText)

    def dictize(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "return_id": self.return_id,
            "version": self.version,
            "schema": self.schema,
            "changes": self.changes or {},
            "created": self.created.isoformat(),
            "created_by": self.created_by,
        }


# ---------------------------------------------------------------- reads


def versions_of(return_id: str) -> list[StandardVersion]:
    """Every version of a return's standard, newest first."""
    return (model.Session.query(StandardVersion)
            .filter(StandardVersion.return_id == return_id)
            .order_by(StandardVersion.version.desc())
            .all())


def version_of(return_id: str, version: int) -> StandardVersion | None:
    """One version of a return's standard."""
    return (model.Session.query(StandardVersion)
            .filter(StandardVersion.return_id == return_id, StandardVersion.version == version)
            .first())
