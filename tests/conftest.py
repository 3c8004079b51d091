"""Shared fixtures. Services (PostgreSQL, Solr, Redis) are the real ones that
`./platform.sh test` starts; nothing here mocks them."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from ckan.tests import factories

ROOT = Path(__file__).resolve().parents[1]
STANDARDS = ROOT / "schemas" / "standards"


# Plugins with alembic migrations of their own, and the package holding their
# `migration/<plugin>/` folder (as `ckan db init` finds them).
MIGRATED_PLUGINS = {"activity": "ckanext.activity", "lgdp_validation": "ckanext.lgdp", "lgdp": "ckanext.lgdp"}


def migrate(plugin: str) -> None:
    """Apply a plugin's migrations whether or not the plugin is loaded in this
    test (CKAN's migrate_db_for needs it loaded), so tests that run a reduced
    plugin set still find every table."""
    import importlib

    from alembic import command
    from alembic.config import Config

    from ckan.plugins.toolkit import config

    package = importlib.import_module(MIGRATED_PLUGINS[plugin])
    folder = Path(package.__file__).parent / "migration" / plugin
    alembic_cfg = Config(str(folder / "alembic.ini"))
    alembic_cfg.set_main_option("script_location", str(folder))
    alembic_cfg.set_main_option("sqlalchemy.url", config["sqlalchemy.url"])
    command.upgrade(alembic_cfg, "head")


@pytest.fixture
def clean_db(reset_db):
    """CKAN's clean_db, followed by the plugins' migrations: the first reset
    of a session drops every table, the plugins' included."""
    reset_db()
    for plugin in MIGRATED_PLUGINS:
        migrate(plugin)


def ckan_cli(*args: str, timeout: int = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `ckan -c test.ini ARGS` in a child process, as an operator would."""
    ckan = Path(sys.executable).with_name("ckan")
    return subprocess.run(
        [str(ckan), "-c", str(ROOT / "test.ini"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def run_worker() -> Callable[..., subprocess.CompletedProcess]:
    """Drain the job queues with a real RQ worker process (burst mode)."""

    def run(*queues: str) -> subprocess.CompletedProcess:
        result = ckan_cli("jobs", "worker", "--burst", *(queues or ("default",)))
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    return run


def platform(*args: str, timeout: int = 240, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Call ./platform.sh (e.g. to stop or start one service)."""
    return subprocess.run(
        [str(ROOT / "platform.sh"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def standard(name: str) -> dict[str, Any]:
    return json.loads((STANDARDS / f"{name}.json").read_text("utf-8"))


def csv_bytes(rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8")


@pytest.fixture
def agency_admin():
    """A real user who administers a requesting agency, with an API token."""
    user = factories.UserWithToken()
    org = factories.Organization(
        org_type="agency",
        users=[{"name": user["name"], "capacity": "admin"}],
    )
    return {"user": user, "org": org, "headers": {"Authorization": user["token"]}}


def api(app, action, headers=None, status=200, **data) -> dict[str, Any]:
    """POST an action to the API as JSON and return the decoded answer."""
    resp = app.post(f"/api/3/action/{action}", json=data, headers=headers or {}, status=status)
    return resp.json


CTAS_HEADER = [
    "gss_code", "financial_year", "chargeable_dwellings", "net_collectable_gbp",
    "collected_by_year_end_gbp", "in_year_collection_rate_pct",
]
CTAS_VALID_ROW = ["S12000047", "2023-24", "186035", "257310000", "247480000", "96.2"]


def upload_return_file(app, headers, org_id, rows, dataset_type="data-return", status=200):
    """Create a return (or plain dataset) and upload `rows` as a CSV resource
    carrying the council tax standard, through the HTTP API."""
    fields = {"frequency": "annual", "statutory": "no", "notes": "Council tax billed and collected."}
    dataset = api(
        app,
        "package_create",
        headers=headers,
        type=dataset_type,
        name="council-tax-collection",
        title="Council Tax Collection",
        owner_org=org_id,
        **(fields if dataset_type == "data-return" else {}),
    )["result"]
    resp = app.post(
        "/api/3/action/resource_create",
        data={
            "package_id": dataset["id"],
            "name": "2023-24",
            "format": "CSV",
            "schema": json.dumps(standard("council-tax-collection.v1")),
            "upload": (io.BytesIO(csv_bytes(rows)), "ctas-2023-24.csv"),
        },
        headers=headers,
        status=status,
    )
    return dataset, resp.json
