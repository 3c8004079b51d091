"""Pull connectors: a council's own system that the platform fetches a
return from on a schedule, and a record of every run."""
from __future__ import annotations

import datetime
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped

import ckan.plugins.toolkit as tk

from ckanext.lgdp.model.audit import _now


def _iso(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value else None


class Connector(tk.BaseModel):  # type: ignore[misc]
    __tablename__ = "lgdp_connector"

    id: Mapped[str] = sa.Column(sa.UnicodeText, primary_key=True, default=lambda: str(uuid.uuid4()))
    council_id: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False, index=True)
    return_id: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False, index=True)
    url: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False)
    auth_header: Mapped[str | None] = sa.Column(sa.UnicodeText)  # e.g. "Authorization"
    auth_secret: Mapped[str | None] = sa.Column(sa.UnicodeText)  # encrypted (Fernet)
    interval_minutes: Mapped[int] = sa.Column(sa.Integer, nullable=False, default=1440)
    active: Mapped[bool] = sa.Column(sa.Boolean, nullable=False, default=True)
    next_run_at: Mapped[datetime.datetime] = sa.Column(sa.DateTime, nullable=False, default=_now)
    last_sha256: Mapped[str | None] = sa.Column(sa.UnicodeText)
    last_etag: Mapped[str | None] = sa.Column(sa.UnicodeText)
    failures: Mapped[int] = sa.Column(sa.Integer, nullable=False, default=0)
    created_by: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False)
    created: Mapped[datetime.datetime] = sa.Column(sa.DateTime, nullable=False, default=_now)

    def dictize(self) -> dict[str, Any]:
        return {"id": self.id, "council_id": self.council_id, "return_id": self.return_id, "url": self.url,
                "auth_header": self.auth_header, "has_secret": bool(self.auth_secret),
                "interval_minutes": self.interval_minutes, "active": self.active,
                "next_run_at": _iso(self.next_run_at), "failures": self.failures, "created_by": self.created_by,
                "created": _iso(self.created)}


class ConnectorRun(tk.BaseModel):  # type: ignore[misc]
    __tablename__ = "lgdp_connector_run"

    id: Mapped[str] = sa.Column(sa.UnicodeText, primary_key=True, default=lambda: str(uuid.uuid4()))
    connector_id: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False, index=True)
    started_at: Mapped[datetime.datetime] = sa.Column(sa.DateTime, nullable=False, default=_now)
    finished_at: Mapped[datetime.datetime | None] = sa.Column(sa.DateTime)
    # created: a new upload; unchanged: same content as last time; skipped:
    # the submission takes no upload now; failed: see error
    outcome: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False, default="running")
    period: Mapped[str | None] = sa.Column(sa.UnicodeText)
    http_status: Mapped[int | None] = sa.Column(sa.Integer)
    error: Mapped[str | None] = sa.Column(sa.UnicodeText)
    upload_id: Mapped[str | None] = sa.Column(sa.UnicodeText)

    def dictize(self) -> dict[str, Any]:
        return {"id": self.id, "connector_id": self.connector_id, "started_at": _iso(self.started_at),
                "finished_at": _iso(self.finished_at), "outcome": self.outcome, "period": self.period,
                "http_status": self.http_status, "error": self.error, "upload_id": self.upload_id}
