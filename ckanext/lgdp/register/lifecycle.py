"""The governance lifecycle of a data return, as data.

    proposed -> approved -> active -> under_review -> active | retired
    proposed -> rejected

Every transition is taken by the coordinating body (see auth.py) with a reason,
and leaves an audit row.
"""
from __future__ import annotations

STATES = ("proposed", "approved", "active", "under_review", "retired", "rejected")
INITIAL = "proposed"
# States in which councils are asked for the return.
COLLECTING = ("active", "under_review")
CLOSED = ("retired", "rejected")

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "proposed": ("approved", "rejected"),
    "approved": ("active",),
    "active": ("under_review",),
    "under_review": ("active", "retired"),
    "retired": (),
    "rejected": (),
}

# Set in the context by lgdp_return_transition, the one way to change the status.
TRANSITION_FLAG = "lgdp_lifecycle_transition"


def allowed(from_state: str | None, to_state: str) -> bool:
    return to_state in TRANSITIONS.get(from_state or INITIAL, ())
