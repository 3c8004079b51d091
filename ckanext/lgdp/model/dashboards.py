"""Named dashboards people save: a set of indicators for a council and a
range of periods, kept for one user or shared with an organisation."""
from __future__ import annotations

import datetime
import uuid
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped

import ckan.plugins.toolkit as tk
from ckan import model

from ckanext.lgdp.model.audit import _now


class SavedDashboard(tk.BaseModel):  # type: ignore[misc]
    __tablename__ = "lgdp_dashboard"

    id: Mapped[str] = sa.Column(sa.UnicodeText, primary_key=True, default=lambda: str(uuid.uuid4()))
    title: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False)
    # exactly one of the two: a personal dashboard or an organisation's
    owner_user_id: Mapped[str | None] = sa.Column(sa.UnicodeText, index=True)
    owner_org_id: Mapped[str | None] = sa.Column(sa.UnicodeText, index=True)
    # indicator ids ("<return name>:<field>"), in the order shown
    indicators: Mapped[list[str]] = sa.Column(JSONB, nullable=False, default=list)
    council_gss: Mapped[str | None] = sa.Column(sa.UnicodeText)
    period_from: Mapped[str | None] = sa.Column(sa.UnicodeText)
    period_to: Mapped[str | None] = sa.Column(sa.UnicodeText)
    created_by: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False)
    created: Mapped[datetime.datetime] = sa.Column(sa.DateTime, nullable=False, default=_now)
    modified: Mapped[datetime.datetime] = sa.Column(sa.DateTime, nullable=False, default=_now)

    def dictize(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "owner_user_id": self.owner_user_id,
            "owner_org_id": self.owner_org_id, "indicators": list(self.indicators or []),
            "council_gss": self.council_gss, "period_from": self.period_from, "period_to": self.period_to,
            "created_by": self.created_by, "created": self.created.isoformat(), "modified": self.modified.isoformat(),
        }


# ---------------------------------------------------------------- reads


def saved_for(user_id: str, org_ids: Collection[str]) -> list[SavedDashboard]:
    """The dashboards a user saved and those of their organisations, by title."""
    return (model.Session.query(SavedDashboard)
            .filter((SavedDashboard.owner_user_id == user_id) | (SavedDashboard.owner_org_id.in_(list(org_ids))))
            .order_by(SavedDashboard.title)
            .all())
