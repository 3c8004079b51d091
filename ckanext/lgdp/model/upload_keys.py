"""Idempotency keys of uploads: what a client sent as ``Idempotency-Key``
(or ``client_ref``) with an upload, so that a retry of the same request
returns the first upload instead of making a second one.

A key belongs to the user who sent it, across every submission: the same key
with another file or another submission is refused, not taken for a new
upload. Keys are kept as long as their uploads (for good), so a retry after
any delay still finds the first result. The primary key (user, key) is what
makes two concurrent requests with the same key make one upload: the second
waits at its insert until the first commits, then finds the first's row.
"""
from __future__ import annotations

import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped

import ckan.plugins.toolkit as tk

from ckanext.lgdp.model.audit import _now


class UploadKey(tk.BaseModel):  # type: ignore[misc]
    __tablename__ = "lgdp_upload_key"

    # the user's id ("" for the platform's own callers without a user)
    user_id: Mapped[str] = sa.Column(sa.UnicodeText, primary_key=True)
    key: Mapped[str] = sa.Column(sa.UnicodeText, primary_key=True)
    # what the key was used for: the submission and the request's content
    # ("sha256:<hex>" of the file, "url:<sha256 of the URL>" for a URL); set in
    # the transaction that stores the upload, so a committed row always has them
    submission_id: Mapped[str | None] = sa.Column(sa.UnicodeText)
    fingerprint: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False)
    upload_id: Mapped[str | None] = sa.Column(sa.UnicodeText, index=True)
    created: Mapped[datetime.datetime] = sa.Column(sa.DateTime, nullable=False, default=_now)
