#!/usr/bin/env python3
"""Add the strings Babel's extractors cannot see to ckanext/lgdp/i18n/ckanext-lgdp.pot.

Run after `pybabel extract` (see i18n/README.md), from anywhere:

    .venv/bin/python i18n/extract_schema_labels.py [--pot ckanext/lgdp/i18n/ckanext-lgdp.pot]

Two sources:

1. The scheming schemas, ckanext/lgdp/schemas/*.yaml: ckanext-scheming passes every plain
   string `label`, `help_text`, `form_placeholder` (and `repeating_label`,
   `upload_label`, `form_alert_warning`), and every choice `label`, through
   gettext when it renders a form or a page (scheming_language_text), so they
   are translated by this catalogue. Language dicts ({en: ..., gd: ...}) are
   left alone: scheming does not pass them through gettext. Each string gets
   a `#: ckanext/lgdp/schemas/<file>:<line>` reference.

2. Constants translated at run time: a call such as
   `tk._(UPLOAD_LABELS.get(status))` has no literal for Babel to extract, so
   the string values of the module-level dicts, lists and tuples that the
   argument of a `_()` call refers to (directly or through local variables of
   the same function) are added with the reference of each string.

Strings already in the template only gain the new references; running the
script twice changes nothing but the creation date.
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import yaml
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = ROOT / "ckanext" / "lgdp"
SCHEMA_DIR = PACKAGE_DIR / "schemas"

# Field keys whose plain string values scheming translates with gettext.
TRANSLATED_KEYS = {
    "label",
    "help_text",
    "form_placeholder",
    "repeating_label",
    "upload_label",
    "form_alert_warning",
}
# Top-level keys of a scheming schema that hold field lists.
FIELD_SECTIONS = ("dataset_fields", "resource_fields", "fields")
GETTEXT_NAMES = {"_", "gettext", "ugettext"}


# --- 1. scheming schemas ----------------------------------------------------

def _walk_field_node(node: yaml.Node, rel: str, out: list) -> None:
    """Collect translatable scalars below one field list (fields, their
    choices and repeating subfields)."""
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _walk_field_node(item, rel, out)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value in TRANSLATED_KEYS and isinstance(value, yaml.ScalarNode):
                if value.tag != "tag:yaml.org,2002:str":
                    print(f"warning: {rel}:{value.start_mark.line + 1}: "
                          f"{key.value} {value.value!r} is not a string; skipped",
                          file=sys.stderr)
                elif value.value.strip():
                    out.append((value.value, rel, value.start_mark.line + 1))
            elif isinstance(value, (yaml.SequenceNode, yaml.MappingNode)):
                _walk_field_node(value, rel, out)


def schema_strings() -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    for path in sorted(SCHEMA_DIR.glob("*.yaml")):
        rel = path.relative_to(ROOT).as_posix()
        root = yaml.compose(path.read_text(encoding="utf-8"))
        if not isinstance(root, yaml.MappingNode):
            continue
        for key, value in root.value:
            if key.value in FIELD_SECTIONS:
                _walk_field_node(value, rel, out)
    return out


# --- 2. constants translated at run time ------------------------------------

def _is_gettext_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call) or not node.args:
        return False
    func = node.func
    name = func.id if isinstance(func, ast.Name) else (
        func.attr if isinstance(func, ast.Attribute) else None)
    return name in GETTEXT_NAMES


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _string_values(node: ast.AST) -> list[ast.Constant]:
    if isinstance(node, ast.Dict):
        items = node.values
    elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = node.elts
    else:
        return []
    return [v for v in items if isinstance(v, ast.Constant) and isinstance(v.value, str)]


def runtime_strings() -> list[tuple[str, str, int, str]]:
    out: list[tuple[str, str, int, str]] = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        constants: dict[str, ast.AST] = {}
        for stmt in tree.body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else (
                [stmt.target] if isinstance(stmt, ast.AnnAssign) and stmt.value else [])
            for target in targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = stmt.value
        scopes = [n for n in ast.walk(tree)
                  if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))] + [tree]
        seen_calls: set[int] = set()
        for scope in scopes:
            local: dict[str, list[ast.AST]] = {}
            for n in ast.walk(scope):
                if isinstance(n, ast.Assign):
                    for t in n.targets:
                        if isinstance(t, ast.Name):
                            local.setdefault(t.id, []).append(n.value)
            for call in ast.walk(scope):
                if not _is_gettext_call(call) or id(call) in seen_calls:
                    continue
                seen_calls.add(id(call))
                arg = call.args[0]
                if isinstance(arg, ast.Constant):
                    continue  # a literal: Babel has it already
                names, todo = set(), list(_names_in(arg))
                while todo:  # follow local variables to the constants
                    name = todo.pop()
                    if name in names:
                        continue
                    names.add(name)
                    if scope is not tree:
                        for value in local.get(name, []):
                            todo.extend(_names_in(value))
                for name in sorted(names):
                    for const in _string_values(constants.get(name)):
                        if const.value.strip():
                            # short enough not to be wrapped by write_po
                            # (a wrapped comment reads back as two)
                            out.append((const.value, rel, const.lineno,
                                        f"Translated at run time: {name}"))
    return out


# --- the template ------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pot", default=str(PACKAGE_DIR / "i18n" / "ckanext-lgdp.pot"))
    args = parser.parse_args(argv)

    pot = Path(args.pot)
    with pot.open("rb") as f:
        catalog = read_po(f)
    before = len(catalog)

    schema = schema_strings()
    for msgid, rel, line in schema:
        catalog.add(msgid, locations=[(rel, line)])
    runtime = runtime_strings()
    for msgid, rel, line, comment in runtime:
        catalog.add(msgid, locations=[(rel, line)], auto_comments=[comment])

    with pot.open("wb") as f:
        write_po(f, catalog, width=76)
    print(f"{pot}: {len(schema)} schema strings, {len(runtime)} run-time "
          f"strings; {before} -> {len(catalog)} msgids")
    return 0


if __name__ == "__main__":
    sys.exit(main())
