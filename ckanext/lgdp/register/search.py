"""How data returns are indexed and faceted in the catalogue."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterable, Iterator

import ckan.plugins.toolkit as tk

from ckanext.lgdp.access import agency_names
from ckanext.lgdp.register import RETURN_TYPE

# Solr's multi-valued string fields are the vocab_* dynamic fields of CKAN's schema.
REQUESTING_FIELD = "vocab_requesting_agencies"


def before_index(pkg_dict: dict[str, Any]) -> dict[str, Any]:
    """Index the requesting agencies one by one (so they can be a facet)."""
    if pkg_dict.get("dataset_type") != RETURN_TYPE:
        return pkg_dict
    names = agency_names(pkg_dict.get("requesting_agencies"))
    if names:
        pkg_dict[REQUESTING_FIELD] = names
    pkg_dict.pop("requesting_agencies", None)
    return pkg_dict


def facets(facets_dict: "OrderedDict[str, Any]", package_type: str) -> "OrderedDict[str, Any]":
    if package_type != RETURN_TYPE:
        return facets_dict
    out: OrderedDict[str, Any] = OrderedDict()
    out["organization"] = tk._("Owner agency")
    out[REQUESTING_FIELD] = tk._("Requesting agency")
    out["frequency"] = tk._("Frequency")
    out["statutory"] = tk._("Statutory")
    out["lifecycle_status"] = tk._("Lifecycle status")
    out["topic"] = tk._("Topic")
    out["tags"] = tk._("Tags")
    return out


def iter_returns(
    context: dict[str, Any],
    states: Iterable[str] | None = None,
    include_private: bool = True,
    page_size: int = 500,
) -> Iterator[dict[str, Any]]:
    """Every data return the caller may see (optionally only those in
    `states`), read from the search index page by page, by name."""
    fq = f"dataset_type:{RETURN_TYPE}"
    if states is not None:
        fq += " AND lifecycle_status:(" + " OR ".join(f'"{s}"' for s in states) + ")"
    search = tk.get_action("package_search")
    read_context = {"user": context.get("user", ""), "ignore_auth": context.get("ignore_auth", False)}
    start = 0
    while True:
        page = search(
            dict(read_context),
            {"q": "*:*", "fq": fq, "rows": page_size, "start": start, "sort": "name asc",
             "include_private": include_private},
        )
        yield from page["results"]
        start += page_size
        if not page["results"] or start >= page["count"]:
            return
