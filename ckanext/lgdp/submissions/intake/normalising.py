"""What intake reads and writes, each once.

``Original``: the upload, hashed as the checks read it forward, so its
SHA-256 costs no pass of its own for a CSV; ``facts`` hashes only what no
check read (a workbook, which openpyxl reads out of order, or a file refused
early). ``Output``: the UTF-8, comma-separated CSV intake hands on, hashed
and counted as it is written; with a standard's schema its header record is
matched to the standard's names on the way (``normalised.match_header``), so
it is the upload's normalised file as written, never copied again.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

from ckanext.lgdp.submissions import normalised as store

__all__ = ["Intake", "Original", "Output"]

_CHUNK = 1 << 20


@dataclass
class Intake:
    """A readable upload: ``csv_path`` is UTF-8, comma-separated CSV.

    ``rows_hint``: data rows after the header. For a workbook, the rows
    written; for a CSV, the physical lines after the header (a line break
    inside a quoted cell counts, so it can only overestimate; 0 means there
    is no data row). ``notes``: harmless normalisations, for the uploader.
    ``sha256``, ``bytes`` and ``header``: of the CSV intake wrote (None when
    ``csv_path`` is the upload itself).
    """

    format: str
    csv_path: str
    rows_hint: int | None = None
    notes: list[str] = field(default_factory=list)
    temporary: bool = False
    sha256: str | None = None
    bytes: int | None = None
    header: list[str] | None = None

    def cleanup(self) -> None:
        """Delete ``csv_path`` if intake created it; the upload is left alone."""
        if self.temporary:
            try:
                os.unlink(self.csv_path)
            except FileNotFoundError:
                pass
            self.temporary = False

    def __enter__(self) -> "Intake":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()


class Original:
    """The uploaded file at ``path``. The checks report what they read
    (``seen``); what carries the hash forward is hashed. ``sha256``: the
    hash when already known (the request's own), then nothing is hashed;
    nor when ``hashed`` is false (a check alone, whose caller needs no hash)."""

    def __init__(self, path: str, sha256: str | None = None, *, hashed: bool = True) -> None:
        self.path = path
        self.size = os.path.getsize(path)
        self._known = sha256
        self._digest = hashlib.sha256() if hashed and not sha256 else None
        self._hashed = 0

    def seen(self, at: int, data: bytes) -> None:
        """``data`` was read at offset ``at`` of the file."""
        if self._digest is None:
            return
        start = self._hashed - at
        if 0 <= start < len(data):
            self._digest.update(memoryview(data)[start:])
            self._hashed = at + len(data)

    def facts(self) -> tuple[int, str]:
        """(size, SHA-256) of the whole file, reading only what no check read."""
        if self._known:
            return self.size, self._known
        if self._digest is None:
            raise ValueError("this original is not hashed")
        if self._hashed < self.size:
            with open(self.path, "rb") as f:
                f.seek(self._hashed)
                for chunk in iter(lambda: f.read(_CHUNK), b""):
                    self.seen(self._hashed, chunk)
        return self.size, self._digest.hexdigest()


class Output:
    """Where intake writes its CSV: a temporary file, beside ``target`` when
    there is one (``keep`` moves it there atomically, replacing an earlier
    one), hashed and counted as it is written. With a ``schema`` the header
    record is matched to the standard on the way (``header``, ``notes``)."""

    def __init__(self, target: str | None = None, schema: dict[str, Any] | None = None) -> None:
        folder = os.path.dirname(target) if target else None
        if folder:
            os.makedirs(folder, exist_ok=True)
        fd, self.temp = tempfile.mkstemp(prefix=".lgdp-intake-", suffix=".csv", dir=folder)
        self.target = target
        self._file = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        self.bytes = 0
        self._schema = schema
        self._head: bytes | None = b"" if schema is not None else None
        self.header: list[str] | None = None
        self.notes: list[str] = []

    def write(self, data: bytes) -> None:
        if self._head is None:
            self._put(data)
            return
        self._head += data
        self._header(final=False)

    def text(self) -> "_Text":
        """The same output for a writer of text (``csv.writer``)."""
        return _Text(self)

    def _header(self, final: bool) -> None:
        assert self._head is not None and self._schema is not None
        end = store.header_end(self._head, final)
        if end is None:
            return
        labels = store.header_record(self._head[:end])
        self.header, self.notes = store.match_header(labels, self._schema)
        if self.header == labels:
            first = self._head[:end]  # the header as it was, byte for byte
        else:
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerow(self.header)
            first = buffer.getvalue().encode("utf-8")
        rest, self._head = self._head[end:], None
        self._put(first)
        self._put(rest)

    def _put(self, data: bytes) -> None:
        if data:
            self._file.write(data)
            self._digest.update(data)
            self.bytes += len(data)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def keep(self) -> str:
        """Close the file and return where it is (``target`` if given)."""
        if self._head is not None:
            self._header(final=True)
        self._file.close()
        if self.target:
            os.replace(self.temp, self.target)
            return self.target
        return self.temp

    def discard(self) -> None:
        self._file.close()
        try:
            os.unlink(self.temp)
        except FileNotFoundError:
            pass


class _Text:
    def __init__(self, out: Output) -> None:
        self._out = out

    def write(self, text: str) -> None:
        self._out.write(text.encode("utf-8"))
