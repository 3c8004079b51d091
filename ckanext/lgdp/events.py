"""The platform's events: the signals the domains send and the one way to
send them. Publishers (register, submissions, repository) import this module
and never a subscriber; the subscribers (``connectors.pubsub`` stores each
event and delivers it, ``repository.jobs`` consolidates an acceptance)
connect to the signals through the plugin's ``ISignal`` subscriptions.

A receiver runs in the sender's transaction: an event and its deliveries are
stored together with the change that caused it.
"""
from __future__ import annotations

from typing import Any

import ckan.plugins.toolkit as tk

__all__ = ["EVENT_TYPES", "event_signal", "accepted", "announce", "announce_accepted"]

# What subscribers may ask to hear of (``lgdp_subscription_create`` checks
# its ``types`` against these).
EVENT_TYPES = (
    "submission.submitted", "submission.accepted", "submission.returned",
    "standard.changed", "review.due", "qa.flag_raised", "submission.consolidation_failed",
    "submission.consolidation_interrupted",
)

# Sent as event_signal.send(event_type, return_id=..., subject_kind=...,
# subject_id=..., council_gss=..., data={...}).
event_signal = tk.signals.ckanext.signal("lgdp_event")

# Sent after an acceptance is committed (sender: the submission id); the
# central repository consolidates it.
accepted = tk.signals.ckanext.signal("lgdp_submission_accepted")


def announce(event_type: str, *, return_id: str, subject_kind: str, subject_id: str,
             council_gss: str | None = None, data: dict[str, Any] | None = None) -> None:
    """Announce an event of the platform to whoever subscribes.

    :param event_type: one of :data:`EVENT_TYPES`
    :param return_id: the data return it is about
    :param subject_kind: the kind of object (``submission``, ``data-return``, ``qa-flag``)
    :param subject_id: that object's id
    :param council_gss: the council it concerns, if one
    :param data: what the event says (JSON-serialisable)
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    event_signal.send(event_type, return_id=return_id, subject_kind=subject_kind, subject_id=subject_id,
                      council_gss=council_gss, data=data or {})


def announce_accepted(submission_id: str) -> None:
    """Announce that a submission's acceptance is committed."""
    accepted.send(submission_id)
