"""The runnable examples of the README, run against a live CKAN server (the
test configuration) as a council system and an agency analyst would."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, api, csv_bytes, ctas_rows, make_world, platform, transition

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]


def _run(script, url, token, *args):
    return subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "CKAN_URL": url, "CKAN_TOKEN": token})


def test_a_council_system_pushes_and_an_agency_reads(app, live_server, live_worker, tmp_path):
    world = make_world()
    people = world["people"]
    good = tmp_path / "ctas-2023-24.csv"
    good.write_bytes(csv_bytes(ctas_rows()))
    pushed = _run("push_submission.py", live_server, people["a_editor"]["token"],
                  "council-tax-collection", "aberdeen-city", "2023-24", str(good))
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "Upload 1 is valid" in pushed.stdout

    bad = tmp_path / "ctas-bad.csv"
    bad.write_bytes(csv_bytes([*ctas_rows(), ["S12000034", "2023-24", "x", "1", "1", "1"]]))
    refused = _run("push_submission.py", live_server, people["a_editor"]["token"],
                   "council-tax-collection", "aberdeen-city", "2023-24", str(bad))
    assert refused.returncode == 1 and "Row 3, Chargeable dwellings: 'x' is not a figure" in refused.stdout, refused.stdout

    # another council's token cannot push for Aberdeen City
    other = _run("push_submission.py", live_server, people["b_editor"]["token"],
                 "council-tax-collection", "aberdeen-city", "2023-24", str(good))
    assert other.returncode == 2

    name = "council-tax-collection--aberdeen-city--2023-24"
    # the valid first upload is what gets submitted: upload it again as the latest
    _run("push_submission.py", live_server, people["a_editor"]["token"],
         "council-tax-collection", "aberdeen-city", "2023-24", str(good))
    transition(app, people["a_admin"], name, "sign_off")
    transition(app, people["a_editor"], name, "submit")

    read = _run("agency_read.py", live_server, people["r_editor"]["token"], "council-tax-collection")
    assert read.returncode == 0, read.stderr
    assert "1 submissions of council-tax-collection" in read.stdout
    assert "Aberdeen City" in read.stdout and "submitted" in read.stdout and "file: 1 data rows" in read.stdout
    # an agency that did not request the return reads nothing of it
    nothing = _run("agency_read.py", live_server, people["y_editor"]["token"], "council-tax-collection")
    assert "0 submissions" in nothing.stdout


@pytest.mark.services
def test_the_push_retries_through_an_outage_and_makes_one_upload(app, live_server, tmp_path):
    """Redis stopped: the platform answers 503, the push waits and tries
    again with the same Idempotency-Key; once Redis is back the file is
    stored (once) and validated."""
    world = make_world()
    people = world["people"]
    good = tmp_path / "ctas-2023-24.csv"
    good.write_bytes(csv_bytes(ctas_rows()))
    assert platform("service", "stop", "redis").returncode == 0
    try:
        pushing = subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / "push_submission.py"),
             "council-tax-collection", "aberdeen-city", "2023-24", str(good)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "CKAN_URL": live_server, "CKAN_TOKEN": people["a_editor"]["token"],
                 "PUSH_BACKOFF": "1", "PUSH_ATTEMPTS": "8"})
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(pushing.stderr), daemon=True)
        reader.start()
        deadline = time.monotonic() + 60
        while not any(line.startswith("attempt 2:") for line in lines):  # refused twice
            assert pushing.poll() is None and time.monotonic() < deadline, lines
            time.sleep(0.2)
    finally:
        started = platform("service", "start", "redis")
        assert started.returncode == 0, started.stdout + started.stderr
    ckan = Path(sys.executable).with_name("ckan")
    worker = subprocess.Popen([str(ckan), "-c", str(ROOT / "test.ini"), "lgdp", "worker", "lgdp:validation"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        out = pushing.stdout.read()
        pushing.wait(timeout=150)
        reader.join(10)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    err = "".join(lines)
    assert pushing.returncode == 0, out + err
    assert err.startswith("attempt 1: HTTP 503; trying again in 1 s\nattempt 2: HTTP 503; trying again in 2 s\n"), err
    assert "Upload 1 is valid" in out
    uploads = api(app, "lgdp_upload_list", headers=people["a_editor"]["headers"],
                  id="council-tax-collection--aberdeen-city--2023-24")["result"]
    assert [u["version"] for u in uploads] == [1]
