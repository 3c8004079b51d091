"""One normalised file per upload: what is validated is what is stored.

Intake (``intake.normalise``) decides whether an upload is a readable
table and, in the same single pass over it, writes the upload's one
normalised file: UTF-8, comma-separated CSV (a workbook converted, a byte
order mark or Excel's "sep=," line removed), where

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
upload's id. ``jobs.normalised_path`` makes it for an upload that has none (an upload from
before the file existed): from the original, through the same intake.
This module is where the file lives and the rules its header follows.
"""
from __future__ import annotations

import csv
import io
import os
import re
import shutil
import tempfile
from typing import Any

import ckan.plugins.toolkit as tk

__all__ = ["path_of", "exists", "remove", "copy_to", "match_header", "header_end", "header_record", "header_labels"]

_CHUNK = 1 << 20
# Spaces a spreadsheet leaves around a name: ASCII blanks, no-break and
# zero-width spaces.
_AROUND = " \t\r\n\u00a0\u200b\ufeff"
_SEPARATORS = re.compile(r"[\s_\-\u00a0]+")


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


def header_end(data: bytes, final: bool) -> int | None:
    """Where the header record of CSV ``data`` ends (the offset of the next
    record), or None while more data is needed to tell. The header is CSV's
    first record, so a quoted name may span lines: it ends at the first line
    end (LF, CRLF or a lone CR) after which its double quotes pair up."""
    pos = quotes = 0
    while True:
        m = _EOL.search(data, pos)
        if m is None:
            return len(data) if final else None
        if m.group() == b"\r" and m.end() == len(data) and not final:
            return None  # a CR at the end may be the first half of a CRLF
        quotes += data.count(b'"', pos, m.end())
        pos = m.end()
        if quotes % 2 == 0:
            return pos


def header_record(data: bytes) -> list[str]:
    """The names in a header record (``data[:header_end(...)]``)."""
    return next(csv.reader(io.StringIO(data.decode("utf-8"), newline="")), [])


def header_labels(csv_path: str) -> tuple[list[str], int]:
    """The header row of an intake CSV and the byte offset of the next
    record (``header_end``)."""
    data = b""
    with open(csv_path, "rb") as f:
        while True:
            more = f.read(_CHUNK)
            data += more
            end = header_end(data, final=not more)
            if end is not None:
                return header_record(data[:end]), end


def remove(upload_id: str) -> None:
    try:
        os.unlink(path_of(upload_id))
    except FileNotFoundError:
        pass


def copy_to(upload_id: str, out: Any) -> None:
    with open(path_of(upload_id), "rb") as f:
        shutil.copyfileobj(f, out)
