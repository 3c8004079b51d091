#!/usr/bin/env python3
"""STAND-IN for the platform's scheduler, until `ckan lgdp scheduler` exists.

Every ``--tick`` seconds it runs the code of ``ckan lgdp sweep`` (uploads
whose validation stopped, accepted submissions not consolidated) and of
``ckan lgdp deliver`` (webhook retries that are due): the commands' own
functions, in one process that loads CKAN once, since starting ``ckan`` for
each would cost about 3 CPU seconds a time on a 2-core machine. The fault
runner (bench/faults/stack.py) runs it under supervisord in place of the
scheduler; remove it once ``ckan lgdp scheduler`` exists (the runner then
uses that instead, by itself).
"""
from __future__ import annotations

import argparse
import datetime
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ini", required=True)
    ap.add_argument("--tick", type=float, default=10.0)
    args = ap.parse_args()

    from ckan.cli import load_config
    from ckan.config.middleware import make_app

    app = make_app(load_config(args.ini))
    app._wsgi_app.test_request_context().push()

    from ckan import model
    from ckanext.lgdp.cli import lgdp

    commands = [lgdp.commands["sweep"], lgdp.commands["deliver"]]
    print(f"stand-in scheduler: {', '.join('ckan lgdp ' + c.name for c in commands)} every {args.tick:g} s",
          flush=True)
    while True:
        for command in commands:
            stamp = datetime.datetime.now().strftime("%H:%M:%S")
            try:
                print(f"[{stamp}] ckan lgdp {command.name}", flush=True)
                command.callback()
            except Exception as e:  # noqa: BLE001 - a service is down: next tick
                print(f"[{stamp}] ckan lgdp {command.name} failed: {type(e).__name__}: {str(e)[:300]}",
                      file=sys.stderr, flush=True)
            finally:
                try:
                    model.Session.rollback()
                    model.Session.remove()
                except Exception:  # noqa: BLE001
                    pass
        sys.stdout.flush()
        time.sleep(args.tick)


if __name__ == "__main__":
    main()
