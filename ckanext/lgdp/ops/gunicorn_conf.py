"""Gunicorn's settings for the platform's web server, one file for every
place that serves it (``./platform.sh run`` under supervisord, the test
suite's live server):

    CKAN_INI=ckan.ini gunicorn -c python:ckanext.lgdp.ops.gunicorn_conf -b 127.0.0.1:5000

Threaded workers (gthread): a request spends most of its time waiting on
PostgreSQL, Solr and the disk, so the threads of one process overlap; several
processes use the cores and survive one another's death. The defaults suit
a machine of two cores. Each setting can be changed through the environment:

    LGDP_WEB_WORKERS           processes (2)
    LGDP_WEB_THREADS           threads per process (8)
    LGDP_WEB_TIMEOUT           seconds a silent process lives before it is
                               killed and replaced (60)
    LGDP_WEB_GRACEFUL_TIMEOUT  seconds the requests in flight have to finish
                               on a stop or restart (30)
    LGDP_WEB_MAX_REQUESTS      replace a process after this many requests
                               (0: never), with a jitter of a tenth
"""
from __future__ import annotations

import os


def _setting(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r}: a whole number is needed") from None
    if value < minimum:
        raise SystemExit(f"{name}={value}: at least {minimum} is needed")
    return value


wsgi_app = "ckanext.lgdp.ops.wsgi:application"
proc_name = "lgdp-web"
bind = [f"127.0.0.1:{os.environ.get('LGDP_CKAN_PORT') or 5000}"]

worker_class = "gthread"
workers = _setting("LGDP_WEB_WORKERS", 2, 1)
threads = _setting("LGDP_WEB_THREADS", 8, 1)
timeout = _setting("LGDP_WEB_TIMEOUT", 60, 1)
graceful_timeout = _setting("LGDP_WEB_GRACEFUL_TIMEOUT", 30, 1)
max_requests = _setting("LGDP_WEB_MAX_REQUESTS", 0, 0)
max_requests_jitter = max_requests // 10
keepalive = 5
# CKAN's search links carry long query strings
limit_request_line = 8190

# gunicorn's control socket would be one per user ($HOME/.gunicorn), shared by
# every platform on the machine; supervisord (or the caller) controls the server
control_socket_disable = True

# both logs on standard output and error, which supervisord (or the caller) keeps
accesslog = "-"
errorlog = "-"
loglevel = "info"
