"""The states of a submission and who moves it between them, as data.

    expected --upload--> draft --sign_off--> signed_off --submit--> submitted
    submitted --accept--> accepted;  submitted | accepted --return--> returned
    returned --upload--> draft (the next round) ...

An upload (in any state before submission, or after a return) makes the
submission a draft again and clears its sign-off; uploads are refused while it
is submitted or accepted. Each transition leaves a row in the audit trail.
"""
from __future__ import annotations

from dataclasses import dataclass

STATES = ("expected", "draft", "signed_off", "submitted", "accepted", "returned")
INITIAL = "expected"
# States in which the council may upload a new version.
UPLOADABLE = ("expected", "draft", "signed_off", "returned")

# Context key set by the submission actions: only they change platform fields.
PLATFORM_FLAG = "lgdp_submission_platform"

# Who may take an action (see ckanext.lgdp.submissions.auth.may_act).
COUNCIL_EDITOR = "council-editor"
COUNCIL_ADMIN = "council-admin"  # the certifier who signs off
RECEIVER = "receiver"  # an editor/admin of an agency owning or requesting the return, or of the coordinating body


# What a transition may record on the submission (Transition.records maps a
# field to one of these; lgdp_submission_transition supplies the values):
# the acting user, the time of the step, nothing (clears the field), the
# reason given, the valid upload the step was checked against, the upload
# that was submitted, and whether the step is after the due date.
VALUES = ("user", "now", "clear", "reason", "checked_upload", "submitted_upload", "late")


@dataclass(frozen=True)
class Transition:
    action: str
    sources: tuple[str, ...]
    target: str
    who: str
    needs_reason: bool = False
    needs_valid_upload: bool = False
    # field -> one of VALUES, recorded with the new state
    records: tuple[tuple[str, str], ...] = ()
    # sends the event submission.<target> to subscribers
    announces: bool = False


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        Transition("sign_off", ("draft",), "signed_off", COUNCIL_ADMIN, needs_valid_upload=True,
                   records=(("signed_off_by", "user"), ("signed_off_at", "now"))),
        Transition("withdraw_sign_off", ("signed_off",), "draft", COUNCIL_ADMIN,
                   records=(("signed_off_by", "clear"), ("signed_off_at", "clear"))),
        Transition("submit", ("signed_off",), "submitted", COUNCIL_EDITOR, needs_valid_upload=True,
                   records=(("submitted_at", "now"), ("submitted_upload", "checked_upload"), ("late", "late")),
                   announces=True),
        # the central repository consolidates an accepted submission and
        # records the outcome in its own table (repository/tracking.py)
        Transition("accept", ("submitted",), "accepted", RECEIVER,
                   records=(("decided_by", "user"), ("decided_at", "now"), ("accepted_upload", "submitted_upload"),
                            ("return_reason", "clear")),
                   announces=True),
        Transition("return", ("submitted", "accepted"), "returned", RECEIVER, needs_reason=True,
                   records=(("decided_by", "user"), ("decided_at", "now"), ("return_reason", "reason")),
                   announces=True),
    )
}


def actions_from(state: str) -> list[str]:
    return [t.action for t in TRANSITIONS.values() if state in t.sources]
