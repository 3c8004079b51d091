"""Background work of the central repository: when a submission is accepted,
its rows are consolidated and the return's period is checked again."""
from __future__ import annotations

import logging
from typing import Any

import ckan.plugins.toolkit as tk

log = logging.getLogger(__name__)

# Sent by lgdp_submission_transition after an acceptance (sender: the submission id).
accepted = tk.signals.ckanext.signal("lgdp_submission_accepted")


def on_accepted(sender: str, **kwargs: Any) -> None:
    tk.enqueue_job(consolidate_job, [sender], title=f"lgdp consolidate {sender}", queue="default")


def consolidate_job(submission_id: str) -> dict[str, Any]:
    from ckanext.lgdp.repository import consolidate
    from ckanext.lgdp.repository.actions import run_qa

    result = consolidate.consolidate_submission(submission_id)
    if result.get("return_id"):
        result["qa"] = run_qa(result["return_id"], result.get("period"))
    log.info("consolidated %s: %s", submission_id, result)
    return result


def subscriptions() -> dict[Any, list[Any]]:
    return {accepted: [on_accepted]}
