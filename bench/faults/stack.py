"""The platform under test, as real processes: the web server, the workers
and the scheduler under supervisord (restarted when they die, as a
supervisor does), against the services of ``./platform.sh test``
(PostgreSQL, Redis, Solr; the databases, Redis database and Solr core of
``test.ini``), which stop and start with ``./platform.sh service``.

The supervisord configuration is written to a temporary folder of the run;
its logs stay there for reading after the run (the path is printed).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
TEST_INI = ROOT / "test.ini"

# The platform's own scheduler, when it has one (`ckan lgdp scheduler`).
SCHEDULER_COMMAND = ("lgdp", "scheduler")


def ckan_bin() -> str:
    return str(VENV_BIN / "ckan")


def has_scheduler() -> bool:
    """Whether `ckan lgdp scheduler` exists (asked of the CLI group itself,
    without loading CKAN)."""
    probe = subprocess.run(
        [sys.executable, "-c", "from ckanext.lgdp.cli import lgdp; print('scheduler' in lgdp.commands)"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    return probe.stdout.strip().endswith("True")


def service_env() -> dict[str, str]:
    """CKAN's service URLs for test.ini on this run's ports, as
    ``./platform.sh test`` sets them (scripts/ckan.sh ckan_test_env)."""
    pg = os.environ.get("LGDP_PG_PORT", "5432")
    redis = os.environ.get("LGDP_REDIS_PORT", "6379")
    solr = os.environ.get("LGDP_SOLR_PORT", "8983")
    user, ro = "ckan_default:ckan_default", "datastore_default:datastore_default"
    return {
        "CKAN_SQLALCHEMY_URL": f"postgresql://{user}@127.0.0.1:{pg}/lgdp_test",
        "CKAN_DATASTORE_WRITE_URL": f"postgresql://{user}@127.0.0.1:{pg}/lgdp_test_datastore",
        "CKAN_DATASTORE_READ_URL": f"postgresql://{ro}@127.0.0.1:{pg}/lgdp_test_datastore",
        "CKAN_SOLR_URL": f"http://127.0.0.1:{solr}/solr/ckan-test",
        "CKAN_REDIS_URL": f"redis://127.0.0.1:{redis}/1",
    }


def platform(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """./platform.sh ARGS (e.g. service stop redis), with this run's ports."""
    return subprocess.run([str(ROOT / "platform.sh"), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=os.environ.copy())


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the runner dies (Linux), so a
    killed runner leaves no supervisord behind (supervisord then stops its
    programs)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class Stack:
    """supervisord running the web server, ``workers`` workers and the
    scheduler (or its stand-in) on ``port``."""

    port: int
    workers: int = 2
    tick: float = 10.0
    folder: Path = field(default_factory=lambda: Path(os.environ.get("TMPDIR", "/tmp")))
    scheduler: str = ""  # "platform" or "stand-in", decided at start
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def conf(self) -> Path:
        return self.folder / "supervisord.conf"

    @property
    def logs(self) -> Path:
        return self.folder / "logs"

    def _program(self, name: str, command: list[str], numprocs: int = 1, stopwait: int = 30) -> str:
        quoted = " ".join(command)
        lines = [
            f"[program:{name}]",
            f"command={quoted}",
            f"directory={ROOT}",
            "autostart=true",
            "autorestart=true",
            # a process that dies at once (its service is down) is started
            # again and again, waiting a little longer each time, never given up
            "startsecs=3",
            "startretries=1000",
            f"stopwaitsecs={stopwait}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={self.logs}/%(program_name)s-%(process_num)d.log",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=0",
        ]
        if numprocs > 1:
            lines += [f"numprocs={numprocs}", "process_name=%(program_name)s-%(process_num)d"]
        return "\n".join(lines) + "\n"

    def write_ini(self) -> str:
        """test.ini with the scheduler's runs made fast: the sweep every
        ``tick`` seconds, deliveries every 2 s (6-field crons, seconds first),
        the daily runs off; the logging of test.ini copied in (an ini that
        `use`s another does not inherit its logging sections)."""
        tick = max(1, int(self.tick))
        settings = {
            "ckanext.lgdp.schedule.sweep": f"*/{tick} * * * * *",
            "ckanext.lgdp.schedule.deliver": "*/2 * * * * *",
            **{f"ckanext.lgdp.schedule.{job}": "" for job in ("pull", "remind", "reviews", "expect")},
        }
        text = TEST_INI.read_text("utf-8")
        logging_part = text[text.index("[loggers]"):] if "[loggers]" in text else ""
        path = self.folder / "faults.ini"
        path.write_text("\n".join(["[app:main]", f"use = config:{TEST_INI}",
                                    *(f"{k} = {v}" for k, v in settings.items())]) + "\n\n" + logging_part, "utf-8")
        return str(path)

    def write_config(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        ckan = ckan_bin()
        ini = self.write_ini() if self.scheduler == "platform" else str(TEST_INI)
        # the platform's production web server, as ./platform.sh run serves it
        web = self._program("web", [str(VENV_BIN / "gunicorn"), "-c", "python:ckanext.lgdp.ops.gunicorn_conf",
                                    "--bind", f"127.0.0.1:{self.port}"])
        web += f"environment=CKAN_INI=\"{ini}\",CKAN_SITE_URL=\"{self.url}\",LGDP_WEB_WORKERS=\"1\"\n"
        programs = [
            web,
            self._program("worker", [ckan, "-c", ini, "lgdp", "worker", "lgdp:validation", "default"],
                          numprocs=self.workers),
        ]
        if self.scheduler == "platform":
            programs.append(self._program("scheduler", [ckan, "-c", ini, *SCHEDULER_COMMAND]))
        else:
            # without the platform's scheduler (an older checkout): the code of
            # `ckan lgdp sweep` and `ckan lgdp deliver` every `tick` seconds
            # (bench/faults/standin.py)
            programs.append(self._program("scheduler", [
                sys.executable, str(Path(__file__).with_name("standin.py")), "--ini", ini, "--tick", str(self.tick)]))
        sock = self.folder / "supervisor.sock"
        self.conf.write_text(
            "[unix_http_server]\n"
            f"file={sock}\n"
            "chmod=0700\n\n"
            "[supervisord]\n"
            f"logfile={self.logs}/supervisord.log\n"
            f"pidfile={self.folder}/supervisord.pid\n"
            f"childlogdir={self.logs}\n"
            "nodaemon=true\n"
            "loglevel=info\n\n"
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
            "[supervisorctl]\n"
            f"serverurl=unix://{sock}\n\n"
            + "\n".join(programs))

    def start(self, env: dict[str, str], want_scheduler: str = "auto") -> None:
        if want_scheduler == "auto":
            self.scheduler = "platform" if has_scheduler() else "stand-in"
        else:
            self.scheduler = want_scheduler
        self.write_config()
        self.proc = subprocess.Popen([str(VENV_BIN / "supervisord"), "-c", str(self.conf)], cwd=ROOT,
                                     env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 30
        while not (self.folder / "supervisor.sock").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"supervisord did not start (log: {self.logs}/supervisord.log)")
            time.sleep(0.2)

    def ctl(self, *args: str, timeout: int = 60) -> subprocess.CompletedProcess:
        return subprocess.run([str(VENV_BIN / "supervisorctl"), "-c", str(self.conf), *args],
                              capture_output=True, text=True, timeout=timeout)

    def worker_names(self) -> list[str]:
        if self.workers == 1:
            return ["worker"]
        return [f"worker:worker-{i}" for i in range(self.workers)]

    def pid(self, name: str) -> int | None:
        out = self.ctl("pid", name).stdout.strip()
        return int(out) if out.isdigit() and out != "0" else None

    def states(self) -> dict[str, str]:
        """{program: supervisord state} (RUNNING, STARTING, BACKOFF, FATAL ...)."""
        out = {}
        for line in self.ctl("status").stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                out[parts[0]] = parts[1]
        return out

    def worker_pids(self) -> dict[str, int]:
        return {n: p for n in self.worker_names() if (p := self.pid(n))}

    def kill(self, pid: int) -> bool:
        """SIGKILL one process (a worker): supervisord starts it again."""
        try:
            os.kill(pid, signal.SIGKILL)
            return True
        except ProcessLookupError:
            return False

    def web_ready(self) -> bool:
        try:
            return requests.get(self.url + "/api/3/action/status_show", timeout=5).ok
        except requests.RequestException:
            return False

    def wait_ready(self, timeout: float = 180) -> float:
        """Until the web answers and every program is RUNNING; seconds waited."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            states = self.states()
            if states and all(s == "RUNNING" for s in states.values()) and self.web_ready():
                # CKAN gathers its auth functions on first use: one call first
                try:
                    requests.get(self.url + "/api/3/action/site_read", timeout=30)
                except requests.RequestException:
                    pass
                return time.monotonic() - t0
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"supervisord exited (log: {self.logs}/supervisord.log)")
            time.sleep(1)
        raise RuntimeError(f"the stack was not ready in {timeout:.0f} s: {self.states()} (logs: {self.logs})")

    def restarts(self) -> dict[str, int]:
        """How often supervisord started each program (from its log)."""
        counts: dict[str, int] = {}
        log = self.logs / "supervisord.log"
        if log.exists():
            for line in log.read_text(errors="replace").splitlines():
                if "spawned: '" in line:
                    name = line.split("spawned: '", 1)[1].split("'", 1)[0]
                    counts[name] = counts.get(name, 0) + 1
        return counts

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.ctl("shutdown", timeout=90)
            self.proc.wait(timeout=90)
        except (subprocess.TimeoutExpired, OSError):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc = None


def services_up() -> dict[str, bool]:
    """Which of the services answer (PostgreSQL, Redis, Solr)."""
    out = {}
    pg = os.environ.get("LGDP_PG_PORT", "5432")
    pg_isready = shutil.which("pg_isready") or next(
        iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_isready"))), None)
    out["postgres"] = bool(pg_isready) and subprocess.run(
        [str(pg_isready), "-q", "-h", "127.0.0.1", "-p", pg]).returncode == 0
    redis = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", os.environ.get("LGDP_REDIS_PORT", "6379"), "ping"],
                           capture_output=True, text=True)
    out["redis"] = redis.stdout.strip() == "PONG"
    try:
        solr = os.environ.get("LGDP_SOLR_PORT", "8983")
        out["solr"] = requests.get(f"http://127.0.0.1:{solr}/solr/ckan-test/admin/ping", timeout=5).ok
    except requests.RequestException:
        out["solr"] = False
    return out


def ensure_services() -> None:
    """Start any service a scenario left stopped (after a failure)."""
    for name, up in services_up().items():
        if not up:
            result = platform("service", "start", name)
            if result.returncode != 0:
                raise RuntimeError(f"could not start {name}: {result.stdout[-500:]} {result.stderr[-500:]}")


