"""The audit trail: one append-only row per change of a governed object."""
from __future__ import annotations

import datetime
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped

import ckan.plugins.toolkit as tk


def now() -> datetime.datetime:
    """Now, in UTC, naive: how every timestamp of the platform's tables is stored."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


_now = now


class AuditEntry(tk.BaseModel):  # type: ignore[misc]
    __tablename__ = "lgdp_audit"

    id: Mapped[str] = sa.Column(sa.UnicodeText, primary_key=True, default=lambda: str(uuid.uuid4()))
    # 'data-return', 'standard', 'submission', ...
    object_type: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False)
    object_id: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False, index=True)
    object_name: Mapped[str | None] = sa.Column(sa.UnicodeText)
    # 'create', 'update', 'transition', 'standard-version', 'delete'
    action: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False)
    actor_id: Mapped[str | None] = sa.Column(sa.UnicodeText)
    actor_name: Mapped[str | None] = sa.Column(sa.UnicodeText)
    timestamp: Mapped[datetime.datetime] = sa.Column(sa.DateTime, nullable=False, default=_now, index=True)
    from_state: Mapped[str | None] = sa.Column(sa.UnicodeText)
    to_state: Mapped[str | None] = sa.Column(sa.UnicodeText)
    reason: Mapped[str | None] = sa.Column(sa.UnicodeText)
    # {field: {"from": old, "to": new}}
    diff: Mapped[dict[str, Any]] = sa.Column(JSONB, nullable=False, default=dict)

    def dictize(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "object_name": self.object_name,
            "action": self.action,
            "actor_id": self.actor_id,
            "actor_name": self.actor_name,
            "timestamp": self.timestamp.isoformat(),
            "from_state": self.from_state,
            "to_state": self.to_state,
            "reason": self.reason,
            "diff": self.diff or {},
        }
