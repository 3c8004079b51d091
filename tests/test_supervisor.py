"""The platform's processes under supervisord (scripts/supervisor.sh): the
configuration `./platform.sh run` generates, read by supervisor's own
parser, and a real supervisord on a throw-away state folder and port that
starts the web, a worker and the scheduler, and restarts the web and the
worker after a SIGKILL."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT

# the platform's own processes and scripts: not a pure test
pytestmark = pytest.mark.ckan

SUPERVISOR_SHELL = "set -euo pipefail; source scripts/common.sh; source scripts/ckan.sh; source scripts/supervisor.sh; "


def _shell(state: Path, commands: str, timeout: int = 60, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", SUPERVISOR_SHELL + "state_dirs; " + commands],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "LGDP_STATE": str(state), **env},
    )


def _programs(conf: Path) -> dict[str, object]:
    """The process configurations supervisord reads from ``conf``, by name."""
    from supervisor.options import ServerOptions

    options = ServerOptions()
    options.realize(args=["-c", str(conf)])
    return {p.name: p for group in options.process_group_configs for p in group.process_configs}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_generated_configuration_supervises_every_process(tmp_path):
    state = tmp_path / "state"
    ini = tmp_path / "ckan.ini"
    done = _shell(state, f"supervisor_conf {ini}", LGDP_WORKERS="3", LGDP_CKAN_PORT="5123")
    assert done.returncode == 0, done.stderr
    conf = state / "supervisord.conf"
    programs = _programs(conf)

    assert set(programs) == {"web", "scheduler", "worker-0", "worker-1", "worker-2"}
    for name, program in programs.items():
        assert program.autostart and program.autorestart, name
        assert program.startretries >= 10, name
        assert program.stopsignal == signal.SIGTERM, name
        assert program.killasgroup, name
        assert Path(program.stdout_logfile).parent == state / "logs", name
        assert program.redirect_stderr, name

    web = programs["web"]
    argv = web.command.split()
    assert argv[0].endswith("/bin/gunicorn") and argv[1:3] == ["-c", "python:ckanext.lgdp.ops.gunicorn_conf"]
    assert "--bind 127.0.0.1:5123" in web.command
    assert web.environment["LGDP_WEB_WORKERS"] == "2" and web.environment["LGDP_WEB_THREADS"] == "8"
    assert web.stopwaitsecs > int(web.environment["LGDP_WEB_GRACEFUL_TIMEOUT"])

    for n in range(3):
        worker = programs[f"worker-{n}"]
        assert worker.command == f"{ROOT}/scripts/worker.sh {ini}"
        assert worker.stdout_logfile == str(state / "logs" / f"worker-{n}.log")
        # a stopped worker finishes the job in hand (RQ's warm shutdown)
        assert worker.stopwaitsecs >= 120

    scheduler = programs["scheduler"]
    assert scheduler.command.endswith(f"ckan -c {ini} lgdp scheduler")

    # each program is started with the platform's configuration file
    assert all(p.environment["CKAN_INI"] == str(ini) for p in programs.values())
    # started in turn: workers, scheduler, web (and stopped the other way)
    assert programs["worker-0"].priority < scheduler.priority < web.priority
    text = conf.read_text()
    assert f"file={state}/run/supervisor.sock" in text and "chmod=0700" in text


def test_the_configuration_is_rewritten_only_when_it_changes(tmp_path):
    state = tmp_path / "state"
    assert _shell(state, f"supervisor_conf {tmp_path}/ckan.ini").returncode == 0
    conf = state / "supervisord.conf"
    os.utime(conf, (1, 1))
    assert _shell(state, f"supervisor_conf {tmp_path}/ckan.ini").returncode == 0
    assert conf.stat().st_mtime == 1, "the same settings rewrote the file"
    assert _shell(state, f"supervisor_conf {tmp_path}/ckan.ini", LGDP_WORKERS="2").returncode == 0
    assert conf.stat().st_mtime != 1
    assert set(_programs(conf)) == {"web", "scheduler", "worker-0", "worker-1"}


@pytest.mark.parametrize(
    ("variable", "value"),
    [("LGDP_WORKERS", "0"), ("LGDP_WORKERS", "two"), ("LGDP_WEB_THREADS", "-1"), ("LGDP_WORKER_GRACE", "")],
)
def test_bad_settings_are_named(tmp_path, variable, value):
    done = _shell(tmp_path / "state", f"supervisor_conf {tmp_path}/ckan.ini", **{variable: value})
    if value == "":  # unset: the default
        assert done.returncode == 0, done.stderr
        return
    assert done.returncode != 0
    assert f"{variable}={value}: a whole number" in done.stderr


def test_gunicorn_settings_come_from_the_environment(monkeypatch):
    import importlib

    from ckanext.lgdp.ops import gunicorn_conf

    monkeypatch.setenv("LGDP_WEB_WORKERS", "3")
    monkeypatch.setenv("LGDP_WEB_THREADS", "4")
    monkeypatch.setenv("LGDP_WEB_MAX_REQUESTS", "1000")
    conf = importlib.reload(gunicorn_conf)
    assert (conf.worker_class, conf.workers, conf.threads) == ("gthread", 3, 4)
    assert (conf.max_requests, conf.max_requests_jitter) == (1000, 100)
    assert conf.wsgi_app == "ckanext.lgdp.ops.wsgi:application"
    assert conf.control_socket_disable is True
    monkeypatch.setenv("LGDP_WEB_THREADS", "many")
    with pytest.raises(SystemExit, match="LGDP_WEB_THREADS='many'"):
        importlib.reload(gunicorn_conf)
    monkeypatch.delenv("LGDP_WEB_WORKERS")
    monkeypatch.delenv("LGDP_WEB_THREADS")
    monkeypatch.delenv("LGDP_WEB_MAX_REQUESTS")
    conf = importlib.reload(gunicorn_conf)
    assert (conf.workers, conf.threads, conf.max_requests) == (2, 8, 0)


def test_the_wsgi_entry_refuses_the_debugger(tmp_path):
    """debug = true makes CKAN wrap itself in Werkzeug's interactive debugger:
    the production entry point will not serve it."""
    ini = tmp_path / "debug.ini"
    ini.write_text(f"[DEFAULT]\ndebug = true\n\n[app:main]\nuse = config:{ROOT / 'test.ini'}\n")
    python = Path(os.sys.executable)
    done = subprocess.run(
        [str(python), "-c", "import ckanext.lgdp.ops.wsgi"], cwd=ROOT, capture_output=True, text=True,
        timeout=120, env={**os.environ, "CKAN_INI": str(ini)},
    )
    assert done.returncode != 0
    assert "sets debug = true, which serves Werkzeug's interactive debugger" in done.stderr
    unset = subprocess.run(
        [str(python), "-c", "import ckanext.lgdp.ops.wsgi"], cwd=ROOT, capture_output=True, text=True,
        timeout=120, env={k: v for k, v in os.environ.items() if k != "CKAN_INI"},
    )
    assert unset.returncode != 0 and "CKAN_INI is not set" in unset.stderr


# ---------------------------------------------------------------- a real supervisord


class Supervised:
    """supervisord of scripts/supervisor.sh with test.ini, on its own state
    folder, web port and Redis database, so the suite's queues and workers
    are not touched."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.port = _free_port()
        # the Redis database after the suite's own (each test process has its
        # own pair: tests/conftest.py's slots)
        suite = urllib.parse.urlsplit(os.environ.get("CKAN_REDIS_URL", "redis://127.0.0.1:6379/1"))
        spare = f"{suite.scheme}://{suite.netloc}/{int(suite.path.strip('/') or 0) + 1}"
        self.env = {
            "LGDP_CKAN_PORT": str(self.port),
            "LGDP_WEB_WORKERS": "1",
            "CKAN_SITE_URL": f"http://127.0.0.1:{self.port}",
            "CKAN_REDIS_URL": spare,
        }

    def shell(self, commands: str, timeout: int = 240) -> subprocess.CompletedProcess:
        return _shell(self.state, commands, timeout=timeout, **self.env)

    def ctl(self, *args: str) -> str:
        done = self.shell("supervisorctl_ " + " ".join(args) + " || true")
        return done.stdout

    def pid(self, name: str) -> int:
        return int(self.ctl("pid", name).strip() or 0)

    def web_ready(self) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/api/3/action/status_show", timeout=3).ok
        except requests.RequestException:
            return False


def _wait(what: str, seconds: float, check) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what} not within {seconds} s"
        time.sleep(0.5)


@pytest.fixture
def supervised(tmp_path):
    sv = Supervised(tmp_path / "state")
    try:
        yield sv
    finally:
        stopped = sv.shell("procs_stop")
        assert stopped.returncode == 0, stopped.stderr
        import redis

        conn = redis.Redis.from_url(sv.env["CKAN_REDIS_URL"])
        conn.flushdb()


def test_supervisord_starts_the_processes_and_restarts_them_after_a_kill(supervised):
    sv = supervised
    started = sv.shell(f"procs_start {ROOT / 'test.ini'}")
    output = started.stdout + started.stderr
    # the scheduler is a program of its own (its state is reported either way)
    assert started.returncode == 0, output
    assert sv.web_ready()
    status = sv.ctl("status")
    assert "web " in status and "worker:worker-0 " in status and "scheduler " in status, status
    worker_log = sv.state / "logs" / "worker-0.log"
    assert "sweep before the worker starts" in worker_log.read_text()

    # a second run with everything up changes nothing
    web, worker = sv.pid("web"), sv.pid("worker:worker-0")
    again = sv.shell(f"procs_start {ROOT / 'test.ini'}")
    assert again.returncode == 0, again.stdout + again.stderr
    assert (sv.pid("web"), sv.pid("worker:worker-0")) == (web, worker)

    os.kill(worker, signal.SIGKILL)
    _wait("a new worker", 60, lambda: sv.pid("worker:worker-0") not in (0, worker))
    # and it swept again before it started
    _wait("the new worker's sweep", 60, lambda: worker_log.read_text().count("sweep before the worker starts") == 2)

    os.kill(web, signal.SIGKILL)
    _wait("a new web server", 60, lambda: sv.pid("web") not in (0, web))
    _wait("the new web server's answer", 120, sv.web_ready)
    new_web, new_worker = sv.pid("web"), sv.pid("worker:worker-0")
    log = (sv.state / "logs" / "supervisord.log").read_text()
    assert "exited: worker-0 (terminated by SIGKILL; not expected)" in log
    assert "exited: web (terminated by SIGKILL; not expected)" in log

    stopped = sv.shell("procs_stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not sv.web_ready()
    assert not (sv.state / "run" / "supervisord.pid").exists()
    assert not any(_alive(pid) for pid in (new_web, new_worker))


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
