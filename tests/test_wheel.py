"""Packaging: the wheel of ckanext-lgdp works without the source checkout.

The wheel is built from a copy of the sources (offline: the project venv's
setuptools and wheel, no build isolation), installed into a fresh virtualenv
and used from a temporary folder: the package, its schemas, data standards,
reference data and translation catalogue are found inside that virtualenv,
`ckan config-tool` writes its ini, `ckan db upgrade` migrates an empty
database (CKAN's and every plugin's migrations, as `./platform.sh` applies
them) and CKAN starts with the plugins loaded.

The fresh virtualenv takes CKAN and the other dependencies from the project
venv without downloading them again: a folder of links to the project venv's
site-packages, leaving out everything of the project's own editable install
(its finder, its .pth files, its dist-info), is added as a site directory.
The database is `lgdp_test_wheel`, which `./platform.sh test` creates empty;
the test empties it again before use.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

import ckan.plugins.toolkit as tk

from tests.conftest import ROOT

pytestmark = [pytest.mark.packaging]

PACKAGE = ROOT / "ckanext" / "lgdp"
WHEEL_DB = "lgdp_test_wheel"  # scripts/ckan.sh TEST_WHEEL_DB
# the CKAN_* variables CKAN reads over the ini: the fresh install must use its own ini
CKAN_URL_VARS = ("CKAN_INI", "CKAN_SQLALCHEMY_URL", "CKAN_DATASTORE_WRITE_URL", "CKAN_DATASTORE_READ_URL",
                 "CKAN_SOLR_URL", "CKAN_REDIS_URL", "CKAN_SITE_URL")
BUILD_FILES = ("setup.py", "MANIFEST.in", "README.md", "pyproject.toml")


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 120) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def _is_own_install(name: str) -> bool:
    """Entries of the project venv's site-packages that belong to the
    editable install of this checkout."""
    lowered = name.lower().replace("-", "_")
    return lowered.startswith(("ckanext_lgdp", "__editable__.ckanext_lgdp", "__editable___ckanext_lgdp"))


def _package_files() -> set[str]:
    """Every file of the package in the checkout (bytecode and npm packages
    aside), as wheel paths."""
    found = set()
    for path in PACKAGE.rglob("*"):
        rel = path.relative_to(ROOT)
        if path.is_file() and "node_modules" not in rel.parts and "__pycache__" not in rel.parts \
                and path.suffix not in (".pyc", ".pyo"):
            found.add(rel.as_posix())
    return found


def _webasset_files() -> set[str]:
    """The files webassets.yml serves, as wheel paths."""
    spec = yaml.safe_load((PACKAGE / "assets" / "webassets.yml").read_text("utf-8"))
    return {f"ckanext/lgdp/assets/{item}" for bundle in spec.values() for item in bundle.get("contents", [])}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel-build")
    source = work / "source"
    source.mkdir()
    for name in BUILD_FILES:
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "ckanext", source / "ckanext",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    out = work / "dist"
    _run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
          "--no-index", "-q", "-w", str(out)], cwd=work, timeout=180)
    (built,) = out.glob("ckanext_lgdp-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv with the wheel installed and the project venv's
    dependencies (not its editable install) visible after its own packages."""
    home = tmp_path_factory.mktemp("wheel-venv")
    target = home / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(target)], cwd=home)
    deps = home / "deps"
    deps.mkdir()
    project_site = Path(sysconfig.get_paths()["purelib"])
    for entry in project_site.iterdir():
        if not _is_own_install(entry.name):
            (deps / entry.name).symlink_to(entry)
    python = target / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=home).strip())
    # processed after the venv's own site-packages: its packages come first
    (site / "zz_lgdp_project_deps.pth").write_text(f"import site; site.addsitedir({str(deps)!r})\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], cwd=home, timeout=180)
    # CKAN's console script, as pip writes it when it installs ckan
    (ckan,) = metadata.entry_points(group="console_scripts", name="ckan")
    script = target / "bin" / "ckan"
    script.write_text(f"#!{python}\nimport sys\nfrom {ckan.module} import {ckan.attr}\n"
                      f"sys.exit({ckan.attr}())\n")
    script.chmod(0o755)
    return target


def _env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CKAN_URL_VARS and k != "PYTHONPATH"}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


def test_the_wheel_holds_the_package_data(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    expected = _package_files() | _webasset_files()
    # the checkout's package data are what the wheel ships, and these kinds at least
    for needed in ("ckanext/lgdp/schemas/dataset.yaml", "ckanext/lgdp/i18n/gd/LC_MESSAGES/ckanext-lgdp.mo",
                   "ckanext/lgdp/migration/lgdp/env.py", "ckanext/lgdp/migration/lgdp/alembic.ini",
                   "ckanext/lgdp/migration/lgdp_validation/script.py.mako",
                   "ckanext/lgdp/assets/node_modules/echarts/dist/echarts.min.js",
                   "ckanext/lgdp/config_declaration.yaml", "ckanext/lgdp/demo_returns.yaml",
                   "ckanext/lgdp/dashboards/scotland_hex.geojson", "ckanext/lgdp/reference/population.csv"):
        assert needed in expected, needed
    assert not expected - names, f"missing from the wheel: {sorted(expected - names)}"
    assert len([n for n in names if n.startswith("ckanext/lgdp/schemas/standards/")]) >= 30
    # of the npm packages, only what the webassets serve (and its licence)
    npm = {n for n in names if "/node_modules/" in n}
    assert npm - _webasset_files() <= {"ckanext/lgdp/assets/node_modules/echarts/LICENSE",
                                       "ckanext/lgdp/assets/node_modules/echarts/NOTICE"}, sorted(npm)


def test_the_installed_package_finds_its_data_outside_the_checkout(venv, tmp_path):
    probe = """
import json, sys
from importlib import metadata, resources
import ckanext.lgdp
from ckanext.lgdp import demo
from ckanext.lgdp.plugin import LgdpPlugin
package = resources.files("ckanext.lgdp")
plugin = LgdpPlugin()
print(json.dumps({
    "file": ckanext.lgdp.__file__,
    "dist": str(metadata.distribution("ckanext-lgdp").locate_file("ckanext/lgdp/__init__.py")),
    "schemas": sorted(p.name for p in package.joinpath("schemas").iterdir() if p.name.endswith(".yaml")),
    "standards": sorted(p.name for p in demo.STANDARDS.iterdir()),
    "i18n_directory": plugin.i18n_directory(),
    "locales": plugin.i18n_locales(),
    "path": sys.path,
}))
"""
    out = json.loads(_run([str(venv / "bin" / "python"), "-c", probe], cwd=tmp_path, env=_env(venv)))
    inside = str(venv.resolve())
    assert Path(out["file"]).resolve().is_relative_to(inside), out["file"]
    assert Path(out["dist"]).resolve().is_relative_to(inside), out["dist"]
    assert not any(Path(p).resolve() in (ROOT, ROOT / "ckanext") for p in out["path"] if p), out["path"]
    assert out["schemas"] == sorted(p.name for p in (PACKAGE / "schemas").glob("*.yaml"))
    assert out["standards"] == sorted(p.name for p in (PACKAGE / "schemas" / "standards").iterdir())
    i18n = Path(out["i18n_directory"])
    assert i18n.resolve().is_relative_to(inside)
    assert (i18n / "gd" / "LC_MESSAGES" / "ckanext-lgdp.mo").is_file()
    assert out["locales"] == ["gd"]


def test_ckan_loads_the_plugins_and_migrates_from_the_wheel(venv, tmp_path):
    import psycopg2  # noqa: PLC0415 (the test database driver, as CKAN's)

    url = make_url(tk.config["sqlalchemy.url"]).set(database=WHEEL_DB)
    with psycopg2.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                          dbname=WHEEL_DB) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:  # empty, whatever an earlier run left
            cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    conn.close()

    env = _env(venv)
    ckan = str(venv / "bin" / "ckan")
    assert Path(ckan).is_file()
    ini = tmp_path / "wheel.ini"
    shutil.copy2(ROOT / "test.ini", ini)
    settings = {
        "sqlalchemy.url": url.render_as_string(hide_password=False),
        "ckan.storage_path": str(tmp_path / "storage"),
    }
    for option in ("ckan.datastore.write_url", "ckan.datastore.read_url", "solr_url", "ckan.redis.url"):
        settings[option] = tk.config[option]
    _run([ckan, "config-tool", str(ini), *(f"{k}={v}" for k, v in settings.items())], cwd=tmp_path, env=env)
    assert f"/{WHEEL_DB}" in ini.read_text("utf-8")

    _run([ckan, "-c", str(ini), "db", "upgrade"], cwd=tmp_path, env=env, timeout=300)
    pending = _run([ckan, "-c", str(ini), "db", "pending-migrations"], cwd=tmp_path, env=env)
    assert "lgdp" not in pending, pending
    for plugin in ("lgdp", "lgdp_validation", "activity"):
        version = _run([ckan, "-c", str(ini), "db", "version", "-p", plugin], cwd=tmp_path, env=env)
        assert version.strip(), f"{plugin}: no migration applied"

    with psycopg2.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                          dbname=WHEEL_DB) as conn, conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = {row[0] for row in cur.fetchall()}
    conn.close()
    assert {"package", "activity", "lgdp_validation_alembic_version", "lgdp_alembic_version"} <= tables, tables

    # CKAN started from the wheel: the scheming schemas and the catalogue of
    # the installed package are loaded, and the webassets find their files.
    check = f"""
import json
from ckan.cli import load_config
from ckan.config.middleware import make_app
import ckan.plugins as p
from flask_babel import force_locale
app = make_app(load_config({str(ini)!r}))
flask_app = app._wsgi_app
with flask_app.test_request_context():
    import ckan.plugins.toolkit as tk
    from ckan.lib import webassets_tools
    from ckanext.scheming.helpers import scheming_dataset_schemas, scheming_organization_schemas
    with force_locale("gd"):
        council = tk._("Council")
    webassets_tools.include_asset("lgdp/lgdp-dashboard")
    scripts = webassets_tools.render_assets("script")
    print(json.dumps({{
        "plugins": sorted(p.get_plugin(n).__module__ for n in ("lgdp", "lgdp_validation")),
        "datasets": sorted(scheming_dataset_schemas()),
        "organizations": sorted(scheming_organization_schemas()),
        "council": council,
        "echarts": "echarts.min.js" in scripts,
        "modules": sorted({{m.__file__ for n, m in __import__("sys").modules.items()
                          if n.startswith("ckanext.lgdp") and getattr(m, "__file__", None)}}),
    }}))
"""
    out = json.loads(_run([str(venv / "bin" / "python"), "-c", check], cwd=tmp_path, env=env).splitlines()[-1])
    assert out["plugins"] == ["ckanext.lgdp.plugin", "ckanext.lgdp.validation_compat.plugin"]
    declared = {yaml.safe_load((PACKAGE / "schemas" / f).read_text("utf-8"))["dataset_type"]
                for f in ("dataset.yaml", "data_return.yaml", "submission.yaml", "return_table.yaml")}
    assert set(out["datasets"]) == declared
    org_schema = yaml.safe_load((PACKAGE / "schemas" / "organization.yaml").read_text("utf-8"))
    assert out["organizations"] == [org_schema.get("organization_type", "organization")]
    assert out["council"] == "Comhairle"
    assert out["echarts"]
    inside = venv.resolve()
    outside = [f for f in out["modules"] if not Path(f).resolve().is_relative_to(inside)]
    assert out["modules"] and not outside, outside
