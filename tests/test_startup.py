"""Bad start-up states get a clear message and a non-zero exit: a port in use,
Solr failing to load its core, PostgreSQL not reachable. Each case runs the
real scripts against a throw-away state folder and free ports, so the
services of the running suite are not disturbed."""
from __future__ import annotations

import os
import socket
import subprocess

import pytest

from tests.conftest import ROOT, ckan_cli, platform

# the platform's own processes and scripts: not a pure test
pytestmark = pytest.mark.ckan


@pytest.fixture
def busy_port():
    """A port on 127.0.0.1 that another program listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("service", "variable"),
    [("postgres", "LGDP_PG_PORT"), ("redis", "LGDP_REDIS_PORT"), ("solr", "LGDP_SOLR_PORT")],
)
def test_a_busy_port_is_named(tmp_path, busy_port, service, variable):
    state = tmp_path / "state"
    if service == "solr":
        prepared = _solr_shell(state, "solr_prepare_core ckan")
        assert prepared.returncode == 0, prepared.stderr
    result = platform("service", "start", service, env={"LGDP_STATE": str(state), variable: str(busy_port)})
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"port {busy_port}" in output and "already in use" in output, output
    assert variable in output, "the message says how to choose another port"


def _solr_shell(state, commands, port=None):
    script = f"set -euo pipefail; source scripts/common.sh; source scripts/solr.sh; {commands}"
    env = {"LGDP_STATE": str(state)}
    if port:
        env["LGDP_SOLR_PORT"] = str(port)
    return subprocess.run(
        ["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180, env={**os.environ, **env}
    )


def test_a_solr_core_that_fails_to_load_is_named(tmp_path):
    state = tmp_path / "state"
    broken = (
        "solr_prepare_core ckan; "
        "sed -i 's/class=\"solr.TextField\"/class=\"solr.NoSuchFieldType\"/' "
        "\"$LGDP_STATE/solr/home/ckan/conf/managed-schema.xml\"; solr_start"
    )
    result = _solr_shell(state, broken, port=free_port())
    try:
        assert result.returncode != 0
        assert "core 'ckan' failed to load" in result.stderr, result.stderr[-3000:]
        assert "NoSuchFieldType" in result.stderr
    finally:
        _solr_shell(state, "solr_stop")


def test_an_unreachable_postgresql_is_named():
    result = ckan_cli(
        "lgdp", "status",
        env={"CKAN_SQLALCHEMY_URL": f"postgresql://ckan_default:ckan_default@127.0.0.1:{free_port()}/lgdp_test"},
    )
    assert result.returncode != 0
    last_lines = result.stderr.strip().splitlines()[-3:]
    assert any(line.startswith("PostgreSQL is not reachable at postgresql://ckan_default:***@127.0.0.1") for line in last_lines), last_lines
    assert "ckan_default:ckan_default" not in result.stderr, "the password is not printed"
