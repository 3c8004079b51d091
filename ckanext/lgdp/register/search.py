"""How data returns are indexed and faceted in the catalogue."""
from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import ckan.plugins.toolkit as tk

RETURN_TYPE = "data-return"
# Solr's multi-valued string fields are the vocab_* dynamic fields of CKAN's schema.
REQUESTING_FIELD = "vocab_requesting_agencies"


def before_index(pkg_dict: dict[str, Any]) -> dict[str, Any]:
    """Index the requesting agencies one by one (so they can be a facet)."""
    if pkg_dict.get("dataset_type") != RETURN_TYPE:
        return pkg_dict
    value = pkg_dict.get("requesting_agencies")
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.startswith("[") else [value]
        except ValueError:
            value = [value]
    if value:
        pkg_dict[REQUESTING_FIELD] = list(value)
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
