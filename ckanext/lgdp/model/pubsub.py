"""Publish/subscribe: events of the platform, who subscribes to them, and
each delivery (with its retries and the dead-letter list)."""
from __future__ import annotations

import datetime
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped

import ckan.plugins.toolkit as tk

from ckanext.lgdp.model.audit import _now

DELIVERY_STATES = ("pending", "delivered", "dead")


def _iso(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value else None


class Event(tk.BaseModel):  # type: ignore[misc]
    __tablename__ = "lgdp_event"

    id: Mapped[str] = sa.Column(sa.UnicodeText, primary_key=True, default=lambda: str(uuid.uuid4()))
    type: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False)
    return_id: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False, index=True)
    # the object the event is about: a submission, the return, a QA flag
    subject_kind: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False)
    subject_id: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False)
    council_gss: Mapped[str | None] = sa.Column(sa.UnicodeText)
    created: Mapped[datetime.datetime] = sa.Column(sa.DateTime, nullable=False, default=_now, index=True)
    data: Mapped[dict[str, Any]] = sa.Column(JSONB, nullable=False, default=dict)

    def dictize(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "return_id": self.return_id, "subject_kind": self.subject_kind,
                "subject_id": self.subject_id, "council_gss": self.council_gss, "created": _iso(self.created),
                "data": dict(self.data or {})}


class Subscription(tk.BaseModel):  # type: ignore[misc]
    __tablename__ = "lgdp_subscription"

    id: Mapped[str] = sa.Column(sa.UnicodeText, primary_key=True, default=lambda: str(uuid.uuid4()))
    # a user's own subscription, or an organisation's (managed by its admins)
    user_id: Mapped[str | None] = sa.Column(sa.UnicodeText, index=True)
    org_id: Mapped[str | None] = sa.Column(sa.UnicodeText, index=True)
    created_by: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False)
    return_id: Mapped[str | None] = sa.Column(sa.UnicodeText, index=True)  # None: every return
    event_types: Mapped[list[str]] = sa.Column(JSONB, nullable=False, default=list)
    channel: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False)  # webhook | email
    url: Mapped[str | None] = sa.Column(sa.UnicodeText)
    secret: Mapped[str | None] = sa.Column(sa.UnicodeText)
    active: Mapped[bool] = sa.Column(sa.Boolean, nullable=False, default=True)
    created: Mapped[datetime.datetime] = sa.Column(sa.DateTime, nullable=False, default=_now)

    def dictize(self, with_secret: bool = False) -> dict[str, Any]:
        out = {"id": self.id, "user_id": self.user_id, "org_id": self.org_id, "created_by": self.created_by,
               "return_id": self.return_id, "event_types": list(self.event_types or []), "channel": self.channel,
               "url": self.url, "active": self.active, "created": _iso(self.created)}
        if with_secret:
            out["secret"] = self.secret
        return out


class Delivery(tk.BaseModel):  # type: ignore[misc]
    __tablename__ = "lgdp_delivery"

    id: Mapped[str] = sa.Column(sa.UnicodeText, primary_key=True, default=lambda: str(uuid.uuid4()))
    subscription_id: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False, index=True)
    event_id: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False)
    status: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False, default="pending", index=True)
    attempts: Mapped[int] = sa.Column(sa.Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime.datetime] = sa.Column(sa.DateTime, nullable=False, default=_now)
    last_status: Mapped[int | None] = sa.Column(sa.Integer)
    last_error: Mapped[str | None] = sa.Column(sa.UnicodeText)
    delivered_at: Mapped[datetime.datetime | None] = sa.Column(sa.DateTime)

    __table_args__ = (sa.UniqueConstraint("subscription_id", "event_id", name="lgdp_delivery_once"),)

    def dictize(self) -> dict[str, Any]:
        return {"id": self.id, "subscription_id": self.subscription_id, "event_id": self.event_id,
                "status": self.status, "attempts": self.attempts, "next_attempt_at": _iso(self.next_attempt_at),
                "last_status": self.last_status, "last_error": self.last_error,
                "delivered_at": _iso(self.delivered_at)}
