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


def path_to(target: str, start: str = INITIAL) -> list[str]:
    """The shortest sequence of transitions from `start` to `target`
    (e.g. proposed -> active: ["approved", "active"])."""
    frontier: list[tuple[str, list[str]]] = [(start, [])]
    seen = {start}
    while frontier:
        state, path = frontier.pop(0)
        if state == target:
            return path
        for nxt in TRANSITIONS.get(state, ()):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append((nxt, [*path, nxt]))
    raise ValueError(f"{target} cannot be reached from {start}")
