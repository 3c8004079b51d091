"""Flags raised by the cross-council quality checks of a return's
consolidated table, and what people did about them."""
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

# open: raised, waiting for the council; explained: the council has answered;
# closed: the coordinating body or the agency has closed it; resolved: the
# check no longer finds the problem (e.g. after a resubmission).
FLAG_STATES = ("open", "explained", "closed", "resolved")


class QAFlag(tk.BaseModel):  # type: ignore[misc]
    __tablename__ = "lgdp_qa_flag"

    id: Mapped[str] = sa.Column(sa.UnicodeText, primary_key=True, default=lambda: str(uuid.uuid4()))
    return_id: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False, index=True)
    # check|council|period|field: the same problem found again is the same flag
    key: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False)
    check: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False)
    severity: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False)
    council_gss: Mapped[str | None] = sa.Column(sa.UnicodeText, index=True)
    council_name: Mapped[str | None] = sa.Column(sa.UnicodeText)
    period: Mapped[str | None] = sa.Column(sa.UnicodeText, index=True)
    field: Mapped[str | None] = sa.Column(sa.UnicodeText)
    value: Mapped[float | None] = sa.Column(sa.Float)
    expected: Mapped[float | None] = sa.Column(sa.Float)
    reason: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False)
    detail: Mapped[dict[str, Any]] = sa.Column(JSONB, nullable=False, default=dict)
    status: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False, default="open")
    raised_at: Mapped[datetime.datetime] = sa.Column(sa.DateTime, nullable=False, default=_now)
    last_seen_at: Mapped[datetime.datetime] = sa.Column(sa.DateTime, nullable=False, default=_now)
    explanation: Mapped[str | None] = sa.Column(sa.UnicodeText)
    explained_by: Mapped[str | None] = sa.Column(sa.UnicodeText)
    closed_by: Mapped[str | None] = sa.Column(sa.UnicodeText)
    closed_at: Mapped[datetime.datetime | None] = sa.Column(sa.DateTime)
    close_note: Mapped[str | None] = sa.Column(sa.UnicodeText)

    __table_args__ = (sa.UniqueConstraint("return_id", "key", name="lgdp_qa_flag_return_key"),)

    def dictize(self) -> dict[str, Any]:
        def iso(v: datetime.datetime | None) -> str | None:
            return v.isoformat() if v else None

        return {
            "id": self.id, "return_id": self.return_id, "key": self.key, "check": self.check,
            "severity": self.severity, "council_gss": self.council_gss, "council_name": self.council_name,
            "period": self.period, "field": self.field, "value": self.value, "expected": self.expected,
            "reason": self.reason, "detail": dict(self.detail or {}), "status": self.status,
            "raised_at": iso(self.raised_at), "last_seen_at": iso(self.last_seen_at),
            "explanation": self.explanation, "explained_by": self.explained_by,
            "closed_by": self.closed_by, "closed_at": iso(self.closed_at), "close_note": self.close_note,
        }


# ---------------------------------------------------------------- reads


def flags(*, within: tuple[Collection[str], Collection[str]] | None = None, flag_id: str | None = None,
          return_id: str | None = None, council_gss: str | None = None, period: str | None = None,
          status: str | None = None) -> list[QAFlag]:
    """Quality flags, filtered by what is given. ``within`` is the reader's
    reach, (council GSS codes, return ids): only the flags about one of those
    councils or of one of those returns (None: every flag)."""
    query = model.Session.query(QAFlag)
    if within is not None:
        codes, return_ids = within
        clauses = []
        if codes:
            clauses.append(QAFlag.council_gss.in_(list(codes)))
        if return_ids:
            clauses.append(QAFlag.return_id.in_(list(return_ids)))
        if not clauses:
            return []
        query = query.filter(sa.or_(*clauses))
    for column, value in ((QAFlag.id, flag_id), (QAFlag.return_id, return_id), (QAFlag.council_gss, council_gss),
                          (QAFlag.period, period), (QAFlag.status, status)):
        if value is not None:
            query = query.filter(column == value)
    return query.all()
