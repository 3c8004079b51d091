"""Idempotency keys of lgdp_submission_upload (model: lgdp_upload_key).

A client names its request with a key: the ``Idempotency-Key`` header of the
HTTP request, or the ``client_ref`` parameter. The same key from the same user
returns the first request's upload (answered as the first one was), however
often and however late it is sent again; the same key with another file or
for another submission is refused (409, naming the key's field). Keys are
scoped per user, across submissions, and kept for good, as the uploads are.

The key is taken (`claim`) in the request's own transaction before anything
is stored: a second request with the same key waits at that insert until the
first commits (then it finds the first's upload) or rolls back (then it makes
the upload itself). No lock is held outside the database.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import has_request_context, request
from sqlalchemy.dialects.postgresql import insert

import ckan.plugins.toolkit as tk
from ckan import model

from ckanext.lgdp.model import Upload, UploadKey
from ckanext.lgdp.model.audit import _now
from ckanext.lgdp.params import _text

HEADER = "Idempotency-Key"
FIELD = "client_ref"
MAX_KEY = 255
# printable ASCII, as an HTTP header carries it
_KEY = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
# the upload action's own paths: the header belongs to that request only
_ACTION_PATHS = ("/api/3/action/lgdp_submission_upload", "/api/action/lgdp_submission_upload")


@dataclass(frozen=True)
class Key:
    field: str  # HEADER or FIELD: the name the client used, for messages
    value: str
    user_id: str


def checked_key(value: Any) -> str:
    """The key, or ``tk.Invalid`` saying why a value cannot be one."""
    text = _text(value, MAX_KEY)
    if not _KEY.fullmatch(text):
        raise tk.Invalid(tk._("Must be printable ASCII characters (letters, digits, punctuation), "
                              "such as a UUID, with no spaces around them"))
    return text


def _header() -> str | None:
    if not has_request_context() or request.path.rstrip("/") not in _ACTION_PATHS:
        return None
    return request.headers.get(HEADER)


def _user_id(context: dict[str, Any]) -> str:
    user = model.User.get(context.get("user") or "") if context.get("user") else None
    return user.id if user is not None else ""


def key_of(context: dict[str, Any], data_dict: dict[str, Any]) -> Key | None:
    """The request's key: the header (when this request is the upload
    action's own) or ``client_ref``; both may be sent if they agree."""
    header = _header()
    field = data_dict.get(FIELD) or None
    if header is not None:
        try:
            header = checked_key(header)
        except tk.Invalid as e:
            raise tk.ValidationError({HEADER: [e.error]}) from None
        if field is not None and field != header:
            raise tk.ValidationError({FIELD: [tk._(
                "Differs from the Idempotency-Key header of the request: send one key, or the same in both")]})
        return Key(HEADER, header, _user_id(context))
    if field is None:
        return None
    return Key(FIELD, field, _user_id(context))


def fingerprint_of(upload: Any, url: str) -> str:
    """What a retry must send again: the file's content (its SHA-256), or the URL."""
    if upload is None:
        return "url:" + hashlib.sha256(url.encode("utf-8")).hexdigest()
    stream = getattr(upload, "stream", None) or getattr(upload, "file", None)
    digest = hashlib.sha256()
    position = stream.tell()
    stream.seek(0)
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        digest.update(chunk)
    stream.seek(position)
    return "sha256:" + digest.hexdigest()


def file_sha256(fingerprint: str | None) -> str | None:
    """The file's SHA-256 in a fingerprint (None for a URL's, or none), so
    the file is not hashed a second time at intake."""
    if fingerprint and fingerprint.startswith("sha256:"):
        return fingerprint[len("sha256:"):]
    return None


def claim(key: Key, fingerprint: str) -> bool:
    """Take the key in the current transaction; False when a committed
    request holds it (then `first` finds its upload). A concurrent request
    holding it uncommitted makes this wait until it ends."""
    taken = model.Session.execute(
        insert(UploadKey.__table__)
        .values(user_id=key.user_id, key=key.value, fingerprint=fingerprint, created=_now())
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(UploadKey.__table__.c.key)
    ).first()
    return taken is not None


def bind(key: Key, submission_id: str, upload_id: str) -> None:
    """Record on the claimed key the upload it made (before the commit)."""
    model.Session.execute(
        sa.update(UploadKey.__table__)
        .where(UploadKey.__table__.c.user_id == key.user_id, UploadKey.__table__.c.key == key.value)
        .values(submission_id=submission_id, upload_id=upload_id)
    )


def first(key: Key, fingerprint: str, submission_id: str | None) -> Upload:
    """The upload the key made first, for a retry of the same request; a key
    used for another request is a 409 naming the key's field."""
    row = model.Session.get(UploadKey, (key.user_id, key.value), populate_existing=True)
    upload = model.Session.get(Upload, row.upload_id) if row is not None and row.upload_id else None
    if row is None or upload is None:
        # the first request's upload is gone (a submission deleted by a sysadmin)
        raise tk.ValidationError({key.field: [tk._(
            "The key {key} was used for an upload that no longer exists: send a new key").format(key=key.value)]})
    if row.submission_id != submission_id:
        pkg = model.Package.get(row.submission_id or "")
        raise tk.ValidationError({key.field: [tk._(
            "The key {key} was already used for an upload to another submission ({name}): "
            "a new upload needs a new key").format(key=key.value, name=pkg.name if pkg is not None else row.submission_id)]})
    if row.fingerprint != fingerprint:
        raise tk.ValidationError({key.field: [tk._(
            "The key {key} was already used for another file (upload {version} of this submission, {filename}): "
            "a new file needs a new key").format(
                key=key.value, version=upload.version, filename=upload.filename or upload.source_url or "")]})
    return upload
