"""The shape of the code, read from its imports (docs/architecture.md).

The modules of ``ckanext.lgdp`` are parsed, not imported, so that an import
hidden inside a function counts as much as one at the top. The layers are
data (``LAYERS``): a module imports its own layer and the layers below it,
never one above; no two modules import each other, however indirectly; and
an import inside a function says why, in a comment on its line or the line
above it.
"""
from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "ckanext.lgdp"
ROOT = Path(__file__).resolve().parent.parent / "ckanext" / "lgdp"

# Bottom first. A module belongs to the layer of its first name under
# ckanext.lgdp (its domain folder, or the module itself at the top level).
LAYERS: list[tuple[str, frozenset[str]]] = [
    # the policy, the signals, the tables and query layer, configuration,
    # the one fetcher, page plumbing, the action gate and input helpers, the
    # worker and health machinery, and ckanext-validation's adapter
    ("foundation", frozenset({"access", "access_auth", "config", "events", "fetch", "gate", "model", "ops",
                              "pages", "params", "validation_compat", "migration"})),
    ("register", frozenset({"register"})),
    ("submissions", frozenset({"submissions"})),
    ("repository", frozenset({"repository"})),
    ("dashboards", frozenset({"dashboards"})),
    # subscribes to the events; pull connectors submit through submissions
    ("connectors", frozenset({"connectors"})),
    # registers and drives everything: the plugin, the CLI and the demo
    ("entry points", frozenset({"plugin", "cli", "demo", "demo_submissions"})),
]


def layer_of(module: str) -> int:
    """The index in LAYERS of a module of the package (``ckanext.lgdp.x.y``)."""
    part = module.split(".")[2] if module.count(".") >= 2 else ""
    for index, (_name, members) in enumerate(LAYERS):
        if part in members:
            return index
    raise LookupError(f"{module} is in no layer: add it to LAYERS in tests/test_architecture.py")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the module of the package it imports
    path: Path
    line: int
    in_function: bool
    why: str  # the comment on the line or the line above ("" if none)


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        parts = path.relative_to(ROOT.parent.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module of the package a dotted name is (or is in)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _comment(lines: list[str], line: int) -> str:
    """The comments on a line and on the line above it (a linter's
    ``noqa`` is no reason)."""
    here = lines[line - 1].split("#", 1)[1] if "#" in lines[line - 1] else ""
    above = lines[line - 2].strip() if line >= 2 else ""
    words = " ".join(part.strip() for part in (above[1:] if above.startswith("#") else "", here))
    return words.replace("noqa: PLC0415", "").strip(" -:")


def imports() -> list[Import]:
    """Every import of the package's modules, at the top or in a function,
    of other modules of the package and of anything else (target "")."""
    out = []
    for source, path in MODULES.items():
        text = path.read_text("utf-8")
        lines = text.splitlines()
        tree = ast.parse(text)
        in_function: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                in_function.update(id(sub) for sub in ast.walk(node) if isinstance(sub, (ast.Import, ast.ImportFrom)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from ckanext.lgdp.x import y` imports module x.y when there is one
                names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                         for a in node.names]
            else:
                continue
            for name in names:
                target = _resolve(name) if name.startswith(PACKAGE + ".") or name == PACKAGE else None
                out.append(Import(source, target or "", path, node.lineno, id(node) in in_function,
                                  _comment(lines, node.lineno)))
    return out


IMPORTS = imports()


def _where(i: Import) -> str:
    return f"{i.path.relative_to(ROOT.parent.parent)}:{i.line}"


def test_every_module_has_a_layer():
    for module in MODULES:
        if module != PACKAGE:
            layer_of(module)


def test_no_module_imports_a_layer_above_its_own():
    upward = [f"{_where(i)}: {i.source} ({LAYERS[layer_of(i.source)][0]}) imports {i.target} "
              f"({LAYERS[layer_of(i.target)][0]})"
              for i in IMPORTS
              if i.target and i.target != PACKAGE and i.source != PACKAGE
              and layer_of(i.target) > layer_of(i.source)]
    assert not upward, "imports up the layers:\n" + "\n".join(upward)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    edges: dict[str, set[str]] = {}
    for i in IMPORTS:
        if i.target and i.target != i.source and i.target != PACKAGE:
            edges.setdefault(i.source, set()).add(i.target)
    assert not _cycles(edges)


def test_the_cycle_finder_finds_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_an_import_inside_a_function_says_why():
    silent = [f"{_where(i)}: {i.path.read_text('utf-8').splitlines()[i.line - 1].strip()}"
              for i in IMPORTS if i.in_function and not i.why]
    assert not silent, "imports inside functions without a reason:\n" + "\n".join(silent)


def test_publishers_announce_through_events_only():
    """register, submissions and repository send events; none of them
    imports the subscriber (connectors)."""
    assert not [_where(i) for i in IMPORTS if i.target.startswith(f"{PACKAGE}.connectors")
                and layer_of(i.source) < layer_of(f"{PACKAGE}.connectors")]


@pytest.mark.parametrize("source, target", [
    ("ckanext.lgdp.access", "ckanext.lgdp.register.search"),
    ("ckanext.lgdp.register.helpers", "ckanext.lgdp.submissions.helpers"),
    ("ckanext.lgdp.submissions.actions", "ckanext.lgdp.connectors.pubsub"),
])
def test_the_layer_rule_refuses_what_it_should(source, target):
    assert layer_of(target) > layer_of(source)


def test_the_consolidation_job_named_by_tracking_is_the_job():
    """repository/tracking queues the job by its name, not by importing
    repository/jobs (which imports tracking)."""
    from ckanext.lgdp.repository import jobs, tracking

    module, _, name = tracking.CONSOLIDATE_JOB.rpartition(".")
    assert getattr(importlib.import_module(module), name) is jobs.consolidate_job


def test_docs_architecture_lists_the_layers():
    """docs/architecture.md's table of layers is LAYERS."""
    text = (ROOT.parent.parent / "docs" / "architecture.md").read_text("utf-8")
    table = text.split("<!-- layers", 1)[1].split("<!-- /layers -->", 1)[0]
    rows = [line.strip("| ").split(" | ") for line in table.splitlines()[1:] if line.startswith("| ")][1:]
    documented = [(name, frozenset(m.strip(" `") for m in members.split(","))) for name, members in rows]
    assert documented == LAYERS


# The modules that answer requests: actions, auth functions, views, template
# helpers and the search hooks. They read the platform's tables and CKAN's
# through the query layer in model/ (and the DataStore through
# repository/consolidate and dashboards/data), never with a query of their own.
REQUEST_MODULES = ("actions", "auth", "views", "helpers", "search")
# Calls that run SQL: Session.query / Session.execute, and SQL built with
# sqlalchemy's text() or select().
_SQL_CALLS = {"query", "execute", "text", "select"}


def _sql_calls(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
        if node.func.attr in _SQL_CALLS and owner_name in ("Session", "sa", "sqlalchemy", "conn", "connection"):
            lines.append(node.lineno)
    return lines


def test_requests_read_through_the_query_layer():
    found = []
    for module, path in MODULES.items():
        if module.rpartition(".")[2] in REQUEST_MODULES:
            found += [f"{path.relative_to(ROOT.parent.parent)}:{line}" for line in _sql_calls(path)]
    assert not found, "SQL outside the query layer (move it to a function in model/):\n" + "\n".join(found)


def test_the_sql_finder_finds_sql(tmp_path):
    sample = tmp_path / "actions.py"
    sample.write_text("def f():\n    model.Session.query(X).all()\n    sa.text('SELECT 1')\n    x.query()\n")
    assert sorted(_sql_calls(sample)) == [2, 3]


# ------------------------------------------------ what lives outside the package
#
# The benches, the fault suite's runner and the scripts run outside the test
# suite and import the package's names: a name moved or renamed in the
# package must be moved there too, or they break unseen.
OUTSIDE = sorted([*(ROOT.parent.parent / "bench").rglob("*.py"), *(ROOT.parent.parent / "scripts").rglob("*.py")])


def _missing_names(path: Path) -> list[str]:
    """The ``ckanext.lgdp`` names a file imports, or reads as an attribute of
    a module it imports, that the package does not have."""
    tree = ast.parse(path.read_text("utf-8"))
    modules: dict[str, object] = {}
    missing = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith(PACKAGE):
            owner = importlib.import_module(node.module)
            for alias in node.names:
                if hasattr(owner, alias.name):
                    value = getattr(owner, alias.name)
                else:
                    try:
                        value = importlib.import_module(f"{node.module}.{alias.name}")
                    except ModuleNotFoundError:
                        missing.append(f"{path.name}:{node.lineno}: {node.module} has no {alias.name}")
                        continue
                if type(value).__name__ == "module":
                    modules[alias.asname or alias.name] = value
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE) and alias.asname:
                    modules[alias.asname] = importlib.import_module(alias.name)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                and not hasattr(modules[node.value.id], node.attr)):
            missing.append(f"{path.name}:{node.lineno}: {modules[node.value.id].__name__} has no {node.attr}")
    return missing


def test_the_benches_and_scripts_use_names_the_package_has():
    assert OUTSIDE
    missing = [m for path in OUTSIDE for m in _missing_names(path)]
    assert not missing, "\n".join(missing)


def test_a_missing_name_is_found(tmp_path):
    sample = tmp_path / "bench.py"
    sample.write_text("from ckanext.lgdp.repository import consolidate, reference\n"
                      "from ckanext.lgdp.repository.consolidate import _gone\n"
                      "consolidate.site_context()\nreference.no_such_rule()\n")
    assert [m.split(": ", 1)[1] for m in _missing_names(sample)] == [
        "ckanext.lgdp.repository.consolidate has no _gone", "ckanext.lgdp.repository.reference has no no_such_rule"]
