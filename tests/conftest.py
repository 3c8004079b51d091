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


# Enabled plugins with alembic migrations of their own (as `ckan db init` runs them).
MIGRATED_PLUGINS = ("activity", "lgdp_validation")


@pytest.fixture
def clean_db(reset_db, migrate_db_for):
    """CKAN's clean_db, followed by the plugins' migrations: the first reset
    of a session drops every table, the plugins' included."""
    reset_db()
    for plugin in MIGRATED_PLUGINS:
        migrate_db_for(plugin)


def ckan_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `ckan -c test.ini ARGS` in a child process, as an operator would."""
    ckan = Path(sys.executable).with_name("ckan")
    return subprocess.run(
        [str(ckan), "-c", str(ROOT / "test.ini"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


@pytest.fixture
def run_worker() -> Callable[..., subprocess.CompletedProcess]:
    """Drain the job queues with a real RQ worker process (burst mode)."""

    def run(*queues: str) -> subprocess.CompletedProcess:
        result = ckan_cli("jobs", "worker", "--burst", *(queues or ("default",)))
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    return run


def platform(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """Call ./platform.sh (e.g. to stop or start one service)."""
    return subprocess.run(
        [str(ROOT / "platform.sh"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
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
