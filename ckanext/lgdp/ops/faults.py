"""Fault points, for fault testing only.

``point("consolidate.before_copy")`` does nothing, unless the environment
variable ``LGDP_FAULT_POINTS`` names that point (a comma-separated list):
then the process kills itself with SIGKILL on the spot, as an operator's
``kill -9`` or the kernel's out-of-memory killer would, with no clean-up,
no ``finally`` and no rollback but PostgreSQL's own. The fault tests
(tests/test_faults.py) start a real worker with the variable set to stop it
at a chosen stage of a job, deterministically.

No deployment sets the variable; a point costs one dictionary look-up.

The points:

``validate.before_running``
    the validation job has its upload, before it marks it running
``validate.running``
    the upload is marked running (committed), before the checks
``consolidate.start``
    the consolidation is marked running (committed), before its rows are read
``consolidate.before_copy``
    the council-period's old rows are deleted, before the COPY (same transaction)
``consolidate.during_copy``
    the COPY has sent its rows, before it ends
``consolidate.before_commit``
    the COPY is done, before the transaction commits
``consolidate.after_commit``
    the rows are committed, before the outcome is recorded
"""
from __future__ import annotations

import os
import signal

ENV = "LGDP_FAULT_POINTS"


def armed(name: str) -> bool:
    """Whether the point is named in LGDP_FAULT_POINTS."""
    value = os.environ.get(ENV)
    return bool(value) and name in {p.strip() for p in value.split(",")}


def point(name: str) -> None:
    """SIGKILL this process here if LGDP_FAULT_POINTS names the point."""
    if armed(name):
        os.kill(os.getpid(), signal.SIGKILL)
