"""CSV files: the header line, the delimiter, and one streaming pass over
the whole file (UTF-8, NUL bytes, lines, the longest line)."""
from __future__ import annotations

import codecs
import csv
import re
from typing import Callable

import ckan.plugins.toolkit as tk

from .limits import NO_LIMITS, Limits
from .messages import (
    DELIMITERS,
    IntakeError,
    cell_too_long,
    delimiter_error,
    save_as_csv,
    too_many_columns,
    too_many_rows,
)
from .normalising import Intake, Original, Output
from .sniffing import CHUNK, guess_encoding


def _fields(line: str, delimiter: str) -> int:
    try:
        return len(next(csv.reader([line], delimiter=delimiter), []))
    except csv.Error:
        return len(line.split(delimiter))


def _encoding_error(data: bytes, pos: int, offset: int, line: int) -> IntakeError:
    """``data[pos]`` is the first byte that is not UTF-8; it lies at ``offset``
    in the file, on ``line``."""
    bad = data[pos:pos + 1]
    sample = data[max(0, pos - 32 * 1024):pos + 32 * 1024]
    found = guess_encoding(sample)
    name = found[0].upper() + found[1:]
    shown = ""
    try:
        char = bad.decode("cp1252" if found == "windows-1252" else found)
        if char.isprintable():
            shown = tk._(', "{char}" in {encoding}').format(char=char, encoding=name)
    except (LookupError, UnicodeDecodeError):
        pass
    return IntakeError(
        "encoding",
        tk._("The file is not saved as UTF-8 (it looks like {encoding}): line {line} has a "
             "character that cannot be read (byte {byte}{shown}). "
             "{save_as_csv} and upload the new file.").format(
            encoding=name, line=line, byte=f"0x{bad.hex().upper()}", shown=shown, save_as_csv=save_as_csv()),
        details={"line": line, "byte": offset, "found": found,
                 "value": f"0x{bad.hex().upper()}"})


def _line_of(data: bytes, pos: int, newlines: int = 0, returns: int = 0) -> int:
    """The line holding ``data[pos]``, after ``newlines`` LF and ``returns``
    CR line ends already seen. Lines end with LF or CRLF; with CR alone in
    old Mac files, so CRs count only while no LF has been seen."""
    if newlines or b"\n" in data[:pos]:
        return newlines + data.count(b"\n", 0, pos) + 1
    return returns + data.count(b"\r", 0, pos) + 1


def _first_line(data: bytes) -> tuple[str, int]:
    """The first line of ``data`` (decoded leniently) and where the next starts."""
    match = re.search(rb"\r\n|\n|\r", data)
    if match is None:
        return data.decode("utf-8", "replace"), len(data)
    return data[:match.start()].decode("utf-8", "replace"), match.end()


def _long_cell(path: str, skip: int, limit: int) -> IntakeError | None:
    """The first cell over ``limit`` characters, read with the csv module as
    frictionless reads the file (the rare path: some line is that long)."""
    # frictionless takes ~0.4 s to import: only this rare path needs it here
    from frictionless.formats.csv import settings as csv_settings  # noqa: PLC0415

    csv.field_size_limit(csv_settings.FIELD_SIZE_LIMIT)  # as frictionless's parser sets it
    with open(path, encoding="utf-8", newline="") as f:
        f.seek(skip)
        try:
            for number, record in enumerate(csv.reader(f), start=1):
                for column, cell in enumerate(record, start=1):
                    if len(cell) > limit:
                        return cell_too_long(number, column, len(cell), limit)
        except csv.Error as e:
            return IntakeError(
                "cell-too-long",
                tk._("A cell of this file is too long to read ({error}); a cell may hold at most {limit:,} "
                     "characters. Check for a quote mark left open, and upload the file again.").format(
                    error=e, limit=limit),
                details={"max_chars": limit})
    return None


def inspect_csv(original: Original, head: bytes, output: Callable[[bool], Output | None],
                limits: Limits = NO_LIMITS) -> Intake:
    """The checks of a CSV file (see the package's docstring), then its one
    streaming pass, written to ``output(needed)``: ``needed`` is whether the
    file differs from what it hands on (a BOM or "sep=," line removed);
    None then hands on the upload itself."""
    size = original.size
    notes: list[str] = []
    skip = 0
    if head.startswith(codecs.BOM_UTF8):
        skip = len(codecs.BOM_UTF8)
        notes.append(tk._("UTF-8 byte order mark (BOM) removed"))

    # The start first: a bad byte there is reported before the header is judged.
    body = head[skip:]
    try:
        codecs.utf_8_decode(body, "strict", len(head) >= size)
    except UnicodeDecodeError as e:
        raise _encoding_error(body, e.start, skip + e.start, _line_of(body, e.start)) from None

    first, after = _first_line(body)
    if not first.strip():
        raise IntakeError(
            "header-missing",
            tk._("Line 1 of the file is blank: the column names must be on the first line. "
                 "Delete the empty lines above the column names and upload the file again."),
            details={"line": 1})
    sep = re.fullmatch(r'\s*"?sep=(.?)"?\s*', first, re.IGNORECASE)
    if sep:
        if sep.group(1) in DELIMITERS:
            raise delimiter_error(sep.group(1), first, from_sep_line=True)
        # Excel's "sep=," hint: harmless, but it would be read as the header.
        skip += after
        notes.append(tk._('Excel\'s "sep=," first line removed'))
        first, _ = _first_line(body[after:])
        if not first.strip():
            raise IntakeError(
                "header-missing",
                tk._('The line after Excel\'s "sep=," line is blank: the column names must '
                     "come first. Delete the empty lines above them and upload the file again."),
                details={"line": 2})
    commas = _fields(first, ",")
    best = max(DELIMITERS, key=lambda d: _fields(first, d))
    if _fields(first, best) >= 2 and _fields(first, best) > commas:
        raise delimiter_error(best, first)

    if limits.columns is not None and commas > limits.columns:
        complete = skip + after < len(head) or len(head) >= size
        raise too_many_columns(commas, limits.columns, more=not complete)

    max_lines = limits.rows + 2 if limits.rows is not None else None
    out = output(skip > 0)
    try:
        lines, ends_with_newline, longest = _stream(original, skip, out, max_lines=max_lines)
        rows = lines + (0 if ends_with_newline else 1) - 1
        if limits.rows is not None and rows > limits.rows:
            raise too_many_rows(limits.rows)
        if limits.cell_chars is not None and longest > limits.cell_chars:
            problem = _long_cell(original.path, skip, limits.cell_chars)
            if problem is not None:
                raise problem
    except BaseException:
        if out is not None:
            out.discard()
        raise
    if out is None:
        return Intake(format="csv", csv_path=original.path, rows_hint=max(rows, 0), notes=notes)
    written = out.keep()
    return Intake(format="csv", csv_path=written, rows_hint=max(rows, 0), notes=[*notes, *out.notes],
                  temporary=out.target is None, sha256=out.sha256, bytes=out.bytes, header=out.header)


def _stream(original: Original, skip: int, out: Output | None,
            max_lines: int | None = None) -> tuple[int, bool, int]:
    """Read the file once from ``skip``: check that every byte is UTF-8 and
    none is NUL, count the lines, measure the longest (in bytes, so never
    less than its characters), write what is read to ``out`` and hand it to
    ``original`` (its hash). Stops once more than ``max_lines`` line ends are
    counted. Returns (line ends, whether the file ends with one, the longest
    line)."""
    newlines = returns = 0
    longest = run = 0  # run: bytes of the line still open at the chunk's end
    pending = b""
    last = b""
    offset = skip  # file offset of the first byte of ``pending + chunk``
    with open(original.path, "rb") as f:
        f.seek(skip)
        while True:
            at = f.tell()
            chunk = f.read(CHUNK)
            original.seen(at, chunk)
            final = not chunk
            data = pending + chunk
            if not data:
                break
            nul = data.find(b"\x00")
            if nul >= 0:
                line = _line_of(data, nul, newlines, returns)
                raise IntakeError(
                    "binary-not-csv",
                    tk._("Line {line} of the file holds binary data (a NUL byte), so it is "
                         "not a text CSV file. {save_as_csv} and upload the new file.").format(
                        line=line, save_as_csv=save_as_csv()),
                    status=415, details={"line": line, "byte": offset + nul})
            if data.isascii():
                consumed = len(data)
            else:
                try:
                    _, consumed = codecs.utf_8_decode(data, "strict", final)
                except UnicodeDecodeError as e:
                    raise _encoding_error(data, e.start, offset + e.start,
                                          _line_of(data, e.start, newlines, returns)) from None
            done = data[:consumed]
            newlines += done.count(b"\n")
            returns += done.count(b"\r")
            if done:
                parts = done.split(b"\n") if newlines or b"\r" not in done else done.split(b"\r")
                if len(parts) == 1:
                    run += len(done)
                else:
                    longest = max(longest, run + len(parts[0]), max(map(len, parts[1:-1]), default=0))
                    run = len(parts[-1])
                longest = max(longest, run)
            if max_lines is not None and max(newlines, returns) > max_lines:
                break
            if done:
                last = done[-1:]
            if out is not None:
                out.write(done)
            pending = data[consumed:]
            offset += consumed
            if final:
                break
    return (newlines or returns), last in (b"\n", b"\r"), longest
