"""One normalised file per upload: what is validated is what is stored.

Intake (``intake.inspect_upload``) decides whether an upload is a readable
table and hands back UTF-8, comma-separated CSV (a workbook converted, a
byte order mark or Excel's "sep=," line removed). ``write`` then makes the
upload's one normalised file from it, once:

* the header row is matched to the standard by these rules, each change
  recorded as a note the uploader sees:

  1. every column name is trimmed of the spaces, tabs and no-break spaces
     around it ("chargeable_dwellings " is chargeable_dwellings);
  2. a name that is a field of the standard once case, spaces, hyphens and
     underscores are ignored ("Chargeable Dwellings", "CHARGEABLE-DWELLINGS")
     or that is the field's title written that way ("Chargeable dwellings")
     becomes the field's name;
  3. nothing else is changed: a column that matches no field, or two columns
     that would become the same field, keep their names, and validation
     reports them by position and name;

* the rows after the header are copied byte for byte;
* its SHA-256, size and data rows are stored on the upload's row.

Validation, the queries, consolidation and the "as validated" download read
only this file; nothing converts or inspects the original again. The
original stays downloadable as the upload's resource.

The file lives under ``<ckan.storage_path>/lgdp/normalised/``, named by the
upload's id. ``ensure`` makes it for an upload that has none (an upload from
before the file existed): from the original, through the same intake.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import re
import shutil
import tempfile
from typing import Any

import ckan.plugins.toolkit as tk

__all__ = ["Normalised", "path_of", "exists", "write", "match_header", "header_labels"]

_CHUNK = 1 << 20
# Spaces a spreadsheet leaves around a name: ASCII blanks, no-break and
# zero-width spaces.
_AROUND = " \t\r\n\u00a0\u200b\ufeff"
_SEPARATORS = re.compile(r"[\s_\-\u00a0]+")


@dataclasses.dataclass
class Normalised:
    path: str
    sha256: str
    bytes: int
    rows: int
    header: list[str]
    notes: list[str]


def _root() -> str:
    return os.path.join(tk.config.get("ckan.storage_path") or tempfile.gettempdir(), "lgdp", "normalised")


def path_of(upload_id: str) -> str:
    """Where the upload's normalised file is (whether or not it exists)."""
    safe = re.sub(r"[^A-Za-z0-9-]", "", upload_id)
    return os.path.join(_root(), safe[:3], f"{safe}.csv")


def exists(upload_id: str) -> bool:
    return os.path.isfile(path_of(upload_id))


def _key(text: str) -> str:
    return _SEPARATORS.sub("_", text.strip(_AROUND)).strip("_").casefold()


def match_header(labels: list[str], schema: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The header row as stored, and a note for each change (rules in the
    module's docstring)."""
    fields = [f for f in schema.get("fields") or [] if f.get("name")]
    names = {f["name"] for f in fields}
    by_key: dict[str, str] = {}
    for f in fields:
        by_key.setdefault(_key(f["name"]), f["name"])
    for f in fields:
        if f.get("title"):
            by_key.setdefault(_key(f["title"]), f["name"])

    out: list[str] = []
    notes: list[str] = []
    trimmed = [label.strip(_AROUND) for label in labels]
    proposed = [lab if lab in names else by_key.get(_key(lab), lab) for lab in trimmed]
    counts: dict[str, int] = {}
    for name in proposed:
        counts[name] = counts.get(name, 0) + 1
    for i, (raw, lab, name) in enumerate(zip(labels, trimmed, proposed), start=1):
        if name != lab and (counts[name] > 1 or name in trimmed):
            name = lab  # two columns would be the same field: left for validation to report
        if name != raw:
            if name == lab:
                notes.append(tk._("Column {n}: the spaces around its name '{raw}' were removed").format(n=i, raw=_shown(raw)))
            else:
                notes.append(tk._("Column {n}: '{raw}' was read as the standard's column {name}").format(
                    n=i, raw=_shown(raw), name=name))
        out.append(name)
    return out, notes


def _shown(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


_EOL = re.compile(rb"\r\n|\n|\r")


def header_labels(csv_path: str) -> tuple[list[str], int]:
    """The header row of an intake CSV and the byte offset of the next
    record. The header is CSV's first record, so a quoted name may span
    lines: it ends at the first line end (LF, CRLF or a lone CR) after which
    its double quotes pair up."""
    data = b""
    pos = quotes = 0
    with open(csv_path, "rb") as f:
        while True:
            m = _EOL.search(data, pos)
            if m is None or (m.group() == b"\r" and m.end() == len(data)):
                more = f.read(_CHUNK)
                if more:
                    data += more
                    continue
                if m is None:
                    end = len(data)
                    break
            quotes += data.count(b'"', pos, m.end())
            pos = m.end()
            if quotes % 2 == 0:
                end = pos
                break
    record = next(csv.reader(io.StringIO(data[:end].decode("utf-8"), newline="")), [])
    return record, end


def write(source_csv: str, upload_id: str, schema: dict[str, Any], rows: int) -> Normalised:
    """Write the upload's normalised file from intake's CSV (``rows``: its
    data rows); replaces an earlier one of the same upload atomically."""
    labels, body_at = header_labels(source_csv)
    header, notes = match_header(labels, schema)
    target = path_of(upload_id)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".lgdp-normal-", dir=os.path.dirname(target))
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out, open(source_csv, "rb") as src:
            if header == labels:
                first = src.read(body_at)  # the header as it was, byte for byte
            else:
                buffer = io.StringIO()
                csv.writer(buffer, lineterminator="\n").writerow(header)
                first = buffer.getvalue().encode("utf-8")
                src.seek(body_at)
            out.write(first)
            digest.update(first)
            size += len(first)
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        os.replace(temp, target)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    return Normalised(path=target, sha256=digest.hexdigest(), bytes=size, rows=rows, header=header, notes=notes)


def remove(upload_id: str) -> None:
    try:
        os.unlink(path_of(upload_id))
    except FileNotFoundError:
        pass


def copy_to(upload_id: str, out: Any) -> None:
    with open(path_of(upload_id), "rb") as f:
        shutil.copyfileobj(f, out)
