"""The data return a parameter names: one look-up, one answer when it names
none, for every domain."""
from __future__ import annotations

import ckan.plugins.toolkit as tk
from ckan import model

from ckanext.lgdp.register import RETURN_TYPE


def package(ident: str | None, *, active: bool = False) -> model.Package:
    """The data return whose id or name is ``ident`` (only an active one when
    ``active``), or a 404 naming ``ident``."""
    pkg = model.Package.get(ident) if ident else None
    if pkg is None or pkg.type != RETURN_TYPE or (active and pkg.state != "active"):
        raise tk.ObjectNotFound(tk._("No data return {name}").format(name=ident))
    return pkg
