"""The councils returns come from: the 32 council areas with their GSS
codes and names, and the reader of the reference data the platform ships
(``ckanext/lgdp/reference/*.csv``, never fetched at run time). The register
and everything above it (messages naming a council, consolidation, the
dashboards) take the councils from here; the population estimates and
family groups are read in ``repository/reference.py`` with the same reader."""
from __future__ import annotations

import csv
import functools
import io
from importlib import resources


def read(name: str) -> list[dict[str, str]]:
    """The rows of a shipped reference file (``reference/<name>``); none
    when the file is missing."""
    try:
        text = resources.files("ckanext.lgdp").joinpath(f"reference/{name}").read_text("utf-8")
    except FileNotFoundError:
        return []
    return list(csv.DictReader(io.StringIO(text)))


@functools.lru_cache(maxsize=1)
def councils() -> tuple[dict[str, str], ...]:
    """The council areas (``gss_code``, ``name``, ``official_name``, ``slug``)."""
    return tuple(read("councils.csv"))


def council_names() -> dict[str, str]:
    """GSS code -> council name."""
    return {c["gss_code"]: c["name"] for c in councils()}
