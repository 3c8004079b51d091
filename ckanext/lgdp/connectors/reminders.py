"""Reminders from the collection calendar: before a submission is due and
when it is late, to the council's uploaders (its editors and admins), by
e-mail. Run daily (`ckan lgdp remind`, `--dry-run` to see what would go).

So that a daily run does not nag, a council hears about a submission 7 days
and 1 day before it is due, the day after it falls due, and then weekly.
"""
from __future__ import annotations

import datetime
from collections import defaultdict
from typing import Any

import ckan.plugins.toolkit as tk
from ckan import model
from ckan.lib import mailer
from ckan.types import Context, DataDict

from ckanext.lgdp.connectors import schema
from ckanext.lgdp.model import submission_state
from ckanext.lgdp.params import validate
from ckanext.lgdp.submissions import SUBMISSION_TYPE
from ckanext.lgdp.submissions.search import OPEN_STATES

__all__ = ["lgdp_reminder_run"]

BEFORE = (7, 1)  # days before the due date


def reminder_kind(due: datetime.date, today: datetime.date) -> str | None:
    days = (due - today).days
    if days in BEFORE:
        return "due"
    late = -days
    if late >= 1 and (late - 1) % 7 == 0:
        return "late"
    return None


def uploaders(org_id: str) -> list[model.User]:
    rows = (model.Session.query(model.User)
            .join(model.Member, model.Member.table_id == model.User.id)
            .filter(model.Member.group_id == org_id, model.Member.table_name == "user",
                    model.Member.state == "active", model.Member.capacity.in_(("editor", "admin")))
            .filter(model.User.state == "active"))
    return [u for u in rows if u.email]


def due_reminders(today: datetime.date) -> dict[str, list[dict[str, Any]]]:
    """council org id -> [{submission, title, period, due_date, kind, status}]"""
    rows = (model.Session.query(model.Package)
            .filter(model.Package.type == SUBMISSION_TYPE, model.Package.state == "active").all())
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    status = {row.submission_id: row.status for row in submission_state.states_of(p.id for p in rows).values()}
    for pkg in rows:
        extras = pkg.extras
        if status.get(pkg.id, submission_state.INITIAL) not in OPEN_STATES or not extras.get("due_date"):
            continue
        kind = reminder_kind(datetime.date.fromisoformat(extras["due_date"]), today)
        if kind:
            out[pkg.owner_org].append({"submission": pkg.name, "title": pkg.title, "period": extras.get("period"),
                                       "due_date": extras["due_date"], "kind": kind,
                                       "status": status.get(pkg.id, submission_state.INITIAL)})
    return out


def _message(council: model.Group, items: list[dict[str, Any]]) -> tuple[str, str]:
    site = tk.config.get("ckan.site_url", "").rstrip("/")
    late = [i for i in items if i["kind"] == "late"]
    subject = (tk._("{n} returns overdue for {council}").format(n=len(late), council=council.title) if late
               else tk._("Returns due soon for {council}").format(council=council.title))
    lines = [tk._("Returns that {council} still has to submit:").format(council=council.title), ""]
    for item in sorted(items, key=lambda i: i["due_date"]):
        when = tk._("OVERDUE since {date}") if item["kind"] == "late" else tk._("due {date}")
        lines.append(f"- {item['title']}: {when.format(date=item['due_date'])}")
        lines.append(f"  {site}/submission/{item['submission']}")
    return subject, "\n".join(lines)


@validate(schema.reminder_run)
def lgdp_reminder_run(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Send (or with dry_run, list) today's reminders.

    :param dry_run: true to only list them (default false)
    :param today: the date to run as, YYYY-MM-DD (default today)
    :returns: ``{"reminders": [{council, recipients, items, sent, error}]}``
    """
    tk.check_access("lgdp_reminder_run", context, data_dict)
    today = data_dict.get("today") or datetime.date.today()
    dry_run = data_dict["dry_run"]

    out = []
    for org_id, items in sorted(due_reminders(today).items()):
        council = model.Group.get(org_id)
        people = uploaders(org_id)
        entry: dict[str, Any] = {"council": council.name, "recipients": [u.name for u in people],
                                 "items": items, "sent": 0, "error": None}
        if not people:
            entry["error"] = tk._("the council has no editor or admin with an e-mail address")
        elif not dry_run:
            subject, body = _message(council, items)
            for user in people:
                try:
                    mailer.mail_user(user, subject, body)
                    entry["sent"] += 1
                except mailer.MailerException as e:
                    entry["error"] = str(e)
        out.append(entry)
    return {"today": today.isoformat(), "dry_run": dry_run, "reminders": out}
