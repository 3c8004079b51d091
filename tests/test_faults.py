"""The fault suite in its short mode (bench/faults/run.py --short): real
processes (the web server, two workers and the scheduler under supervisord)
and the real services of `./platform.sh test`, put through worker kills
during validation and consolidation, Redis and Solr stopped mid-burst,
PostgreSQL restarted mid-burst and webhook receivers down. Every scenario
must end with nothing lost, duplicated or stuck; the runner's report (per
scenario: requests, answers, expected and found submissions, uploads and
rows, the time to recover, what each fault hit) is printed on failure."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = [
    pytest.mark.services,
    pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index"),
]

SCENARIOS = {"kill-validation", "kill-consolidation", "redis", "solr", "postgres", "webhook"}


@pytest.fixture
def fresh_connections():
    """The suite restarts PostgreSQL: this process's pooled connections are
    dead afterwards, so they are dropped before the next test uses them."""
    yield
    from ckan import model
    from ckanext.datastore.backend import postgres

    model.Session.remove()
    model.meta.engine.dispose()
    for engine in list(postgres._engines.values()):
        engine.dispose()


def _summary(result: dict) -> str:
    if "error" in result:
        return f"{result['scenario']}: could not run: {result['error']}"
    lines = [f"{result['scenario']}: lost {result['lost']} {result['lost_detail']}, duplicated "
             f"{result['duplicated']} {result['duplicated_detail']}, stuck {result['stuck']} {result['stuck_detail']}; "
             f"recovered in {result['recover']}"]
    lines += [f"  - {f}" for f in result["findings"][:15]]
    return "\n".join(lines)


def test_no_fault_loses_duplicates_or_strands_work(tmp_path, fresh_connections):
    out = tmp_path / "faults.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "faults" / "run.py"), "--short", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=2400, env=os.environ.copy(),
    )
    print(proc.stdout[-30000:])
    assert out.exists(), f"the fault runner wrote no results (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    report = json.loads(out.read_text())
    results = report["results"]
    assert {r["scenario"] for r in results} == SCENARIOS
    # every scenario did its work and its faults happened
    for r in results:
        assert "error" not in r, _summary(r)
        assert r["submissions"]["expected"] > 0 and r["requests"] >= r["submissions"]["expected"], r["scenario"]
        assert r["faults"], f"{r['scenario']}: no fault was injected"
        assert r["leaks"] == 0, f"{r['scenario']}: {r['leaks']} answers showed a traceback or the debugger"
    failed = [r for r in results if not r["ok"]]
    assert not failed, (f"{len(failed)} of {len(results)} scenarios left work lost, duplicated or stuck "
                        f"(process logs: {report['logs']}):\n" + "\n".join(_summary(r) for r in failed))
    assert proc.returncode == 0, proc.stderr[-3000:]
