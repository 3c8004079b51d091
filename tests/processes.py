"""Real platform processes for the tests of the scheduler, the worker and
health: a configuration of their own (test.ini and a few settings, such as
sub-minute schedules), each process's log in a file, stopped at the end."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from tests.conftest import ROOT

# test.ini's own logging sections say WARNING; these tests read what the
# processes did at INFO.
LOGGING = """
[loggers]
keys = root, ckanext

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[logger_ckanext]
qualname = ckanext
handlers =
level = INFO

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s] %(message)s
"""

# Every schedule off unless a test turns it on.
NO_SCHEDULES = {f"ckanext.lgdp.schedule.{job}": "" for job in ("pull", "deliver", "remind", "reviews", "expect", "sweep", "search")}


def write_ini(folder: Path, **settings: str) -> Path:
    """An ini that is test.ini with ``settings`` (dotted keys as keywords:
    pass a dict with ``**``)."""
    lines = ["[app:main]", f"use = config:{ROOT / 'test.ini'}"]
    lines += [f"{key} = {value}" for key, value in settings.items()]
    path = folder / "platform-test.ini"
    path.write_text("\n".join(lines) + "\n" + LOGGING, "utf-8")
    return path


def ckan(ini: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """`ckan -c INI ARGS` to its end."""
    exe = Path(sys.executable).with_name("ckan")
    return subprocess.run([str(exe), "-c", str(ini), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


class Processes:
    """Long-running `ckan -c INI ...` processes, each logging to a file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[tuple[subprocess.Popen, Path]] = []

    def start(self, ini: Path, *args: str) -> subprocess.Popen:
        exe = Path(sys.executable).with_name("ckan")
        log = self.folder / f"{'-'.join(a.strip('-') for a in args)}-{len(self.started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([str(exe), "-c", str(ini), *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        proc.log = log  # type: ignore[attr-defined]
        self.started.append((proc, log))
        return proc

    @staticmethod
    def log_of(proc: subprocess.Popen) -> str:
        return proc.log.read_text("utf-8", errors="replace")  # type: ignore[attr-defined]

    def stop_all(self) -> None:
        for proc, _log in self.started:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=20)
                except ProcessLookupError:
                    pass
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


def wait_until(condition: Callable[[], Any], seconds: float, what: str, every: float = 0.25) -> Any:
    """Poll ``condition`` until it is true (returned) or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} (after {seconds} s)"
        time.sleep(every)
