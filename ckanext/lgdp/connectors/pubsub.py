"""Publish/subscribe: the subscriber. The domains announce events with
``ckanext.lgdp.events.announce`` (one CKAN signal, ``lgdp_event``) and never
import this module; each event is stored, matched against the subscriptions
whose subscriber may read what it is about (the access policy decides, as
everywhere), and delivered by signed webhook or e-mail in the worker, with
retries and a dead-letter list. A feed per return serves those who poll."""
from __future__ import annotations

import datetime
import logging
import secrets
from typing import Any

from redis.exceptions import RedisError

import ckan.plugins.toolkit as tk
from ckan import model
from ckan.lib import mailer
from ckan.types import Context, DataDict

from ckanext.lgdp import access, fetch
from ckanext.lgdp.connectors import schema, webhooks
from ckanext.lgdp.events import EVENT_TYPES, event_signal
from ckanext.lgdp.model import Delivery, Event, Subscription
from ckanext.lgdp.model.audit import now as _now
from ckanext.lgdp.params import validate
from ckanext.lgdp.register import returns

log = logging.getLogger(__name__)

__all__ = [
    "lgdp_subscription_create",
    "lgdp_subscription_list",
    "lgdp_subscription_delete",
    "lgdp_delivery_list",
    "lgdp_delivery_run",
    "lgdp_event_list",
]

# ---------------------------------------------------------------- who may see an event


def subscriber(sub: Subscription) -> access.Actor:
    """The subscriber as the access policy sees them: the user, or the
    organisation as one of its members would."""
    if sub.user_id:
        return access.actor(sub.user_id)
    group = model.Group.get(sub.org_id or "")
    if group is None or group.state != "active":
        return access.Actor(name=None, user_id=None)
    membership = access.Membership(org_id=group.id, org_name=group.name, org_type=access.org_type(group.id),
                                   capacity="member")
    return access.Actor(name=group.name, user_id=f"org:{group.id}", memberships=(membership,))


def may_see(who: access.Actor, event: Event) -> bool:
    if who.sysadmin:
        return True
    if event.subject_kind == "qa-flag":
        return access.flag_scope(who).covers(event.return_id, event.council_gss)
    obj = access.describe(model.Package.get(event.subject_id))
    return obj is not None and access.can_read(who, obj)


# ---------------------------------------------------------------- events in, deliveries out


def on_event(event_type: str, **kwargs: Any) -> None:
    """Signal receiver: store the event and queue its deliveries.

    The event and its pending deliveries are committed with whatever the
    announcer has not committed yet (a submission's step announces before
    its commit, so the two are one transaction); the jobs are queued after
    the commit. With Redis down they are not queued: the deliveries stay
    pending, due now, and `run_due` (``ckan lgdp deliver``, the schedule)
    attempts them, so the announcer's request is not failed for it."""
    event = Event(type=event_type, return_id=kwargs["return_id"], subject_kind=kwargs["subject_kind"],
                  subject_id=kwargs["subject_id"], council_gss=kwargs.get("council_gss"),
                  data=kwargs.get("data") or {}, created=_now())
    model.Session.add(event)
    model.Session.flush()
    subs = (model.Session.query(Subscription)
            .filter(Subscription.active.is_(True))
            .filter((Subscription.return_id.is_(None)) | (Subscription.return_id == event.return_id))
            .all())
    queued = []
    for sub in subs:
        if sub.event_types and event_type not in sub.event_types:
            continue
        if not may_see(subscriber(sub), event):
            continue
        delivery = Delivery(subscription_id=sub.id, event_id=event.id, status="pending", attempts=0,
                            next_attempt_at=_now())
        model.Session.add(delivery)
        queued.append(delivery)
    model.Session.commit()

    for delivery in queued:
        try:
            tk.enqueue_job(deliver_job, [delivery.id], title=f"lgdp deliver {event_type}", queue="default")
        except RedisError as e:
            log.warning("deliveries of event %s stay pending for the next run of deliveries: "
                        "the job queue is unavailable (%s)", event.id, e)
            break


def payload(event: Event) -> dict[str, Any]:
    return_pkg = model.Package.get(event.return_id)
    subject = model.Package.get(event.subject_id) if event.subject_kind != "qa-flag" else None
    site = tk.config.get("ckan.site_url", "").rstrip("/")
    out = {
        "id": event.id,
        "type": event.type,
        "created": event.created.isoformat(),
        "return": {"id": event.return_id, "name": return_pkg.name if return_pkg else None,
                   "title": return_pkg.title if return_pkg else None},
        "council_gss": event.council_gss,
        "data": dict(event.data or {}),
    }
    if subject is not None:
        out["subject"] = {"kind": event.subject_kind, "id": subject.id, "name": subject.name,
                          "url": f"{site}/{subject.type}/{subject.name}"}
    else:
        out["subject"] = {"kind": event.subject_kind, "id": event.subject_id}
    return out


def attempt(delivery: Delivery) -> Delivery:
    """One delivery attempt; on failure the next one is scheduled with
    exponential backoff, and after the last the delivery is dead-lettered."""
    sub = model.Session.get(Subscription, delivery.subscription_id)
    event = model.Session.get(Event, delivery.event_id)
    if sub is None or event is None or not sub.active or delivery.status != "pending":
        return delivery
    delivery.attempts += 1
    if sub.channel == "webhook":
        outcome = webhooks.post(sub.url or "", event.type, event.id, payload(event), sub.secret or "")
        ok, status, error = outcome.ok, outcome.status, outcome.error
    else:
        ok, status, error = _email(sub, event)
    delivery.last_status, delivery.last_error = status, error
    if ok:
        delivery.status, delivery.delivered_at = "delivered", _now()
    elif delivery.attempts >= webhooks.MAX_ATTEMPTS:
        delivery.status = "dead"
    else:
        delivery.next_attempt_at = _now() + datetime.timedelta(seconds=webhooks.backoff(delivery.attempts))
    model.Session.commit()
    return delivery


def _email(sub: Subscription, event: Event) -> tuple[bool, int | None, str | None]:
    user = model.User.get(sub.user_id or "")
    if user is None or not user.email:
        return False, None, "the subscriber has no e-mail address"
    body = payload(event)
    text = tk._("{type} for {title}\n\n{url}\n").format(
        type=event.type, title=body["return"]["title"], url=body["subject"].get("url", ""))
    try:
        mailer.mail_user(user, tk._("[Data platform] {type}: {title}").format(type=event.type, title=body["return"]["title"]), text)
    except mailer.MailerException as e:
        return False, None, f"mail could not be sent: {e}"
    return True, None, None


def deliver_job(delivery_id: str) -> str | None:
    delivery = model.Session.get(Delivery, delivery_id)
    if delivery is None:
        return None
    return attempt(delivery).status


def run_due(now: datetime.datetime | None = None) -> dict[str, int]:
    """Attempt every pending delivery whose time has come (cron: `ckan lgdp deliver`)."""
    now = now or _now()
    due = (model.Session.query(Delivery)
           .filter(Delivery.status == "pending", Delivery.next_attempt_at <= now)
           .order_by(Delivery.next_attempt_at).all())
    counts = {"delivered": 0, "pending": 0, "dead": 0}
    for delivery in due:
        counts[attempt(delivery).status] += 1
    return counts


# ---------------------------------------------------------------- actions


def _mine(context: Context, sub: Subscription) -> bool:
    who = access.context_actor(context)
    return who.sysadmin or sub.user_id == who.user_id or (sub.org_id is not None and who.in_org(sub.org_id, "admin"))


@validate(schema.subscription_create)
def lgdp_subscription_create(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Subscribe to events (the answer carries the webhook secret, once).

    :param channel: ``webhook`` or ``email``
    :param url: the webhook's https:// URL, on a public internet address
    :param data_return: one return (optional: every return you may read)
    :param event_types: list of event types (optional: all); one of
        submission.submitted, submission.accepted, submission.returned,
        standard.changed, review.due, qa.flag_raised,
        submission.consolidation_failed (an accepted file could not be
        added to the return's central table),
        submission.consolidation_interrupted (its consolidation job was
        stopped too many times, the worker killed)
    :param organization: subscribe on behalf of an organisation you administer (optional)
    """
    tk.check_access("lgdp_subscription_create", context, data_dict)
    who = access.context_actor(context)
    channel = data_dict["channel"]
    errors: dict[str, list[str]] = {}
    url = (data_dict.get("url") or "").strip()
    refused = fetch.refusal(url) if channel == "webhook" else None
    if refused:
        errors["url"] = [refused]
    types = data_dict.get("event_types") or []
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        errors["event_types"] = [tk._("Unknown event types: {types}; known: {known}").format(
            types=", ".join(unknown), known=", ".join(EVENT_TYPES))]
    return_id = None
    if data_dict.get("data_return"):
        return_id = returns.package(data_dict["data_return"]).id
    org_id = None
    if data_dict.get("organization"):
        group = model.Group.get(data_dict["organization"])
        if group is None or not group.is_organization or group.state != "active":
            raise tk.ObjectNotFound(tk._("No organisation {name}").format(name=data_dict["organization"]))
        if not who.in_org(group.id, "admin"):
            raise tk.NotAuthorized(tk._("Only an organisation's admins subscribe on its behalf"))
        org_id = group.id
        if channel == "email":
            errors["channel"] = [tk._("An organisation subscribes with a webhook")]
    if errors:
        raise tk.ValidationError(errors)
    sub = Subscription(user_id=None if org_id else who.user_id, org_id=org_id, created_by=who.name or "",
                       return_id=return_id, event_types=types, channel=channel, url=url or None,
                       secret=secrets.token_hex(32) if channel == "webhook" else None, active=True, created=_now())
    model.Session.add(sub)
    model.repo.commit()
    return sub.dictize(with_secret=True)


@tk.side_effect_free
@validate(schema.no_parameters)
def lgdp_subscription_list(context: Context, data_dict: DataDict) -> list[dict[str, Any]]:
    """Your subscriptions and those of the organisations you administer. It
    takes no parameters."""
    tk.check_access("lgdp_subscription_list", context, data_dict)
    return [s.dictize() for s in model.Session.query(Subscription).order_by(Subscription.created)
            if _mine(context, s)]


@validate(schema.subscription_id)
def lgdp_subscription_delete(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Stop a subscription.

    :param id: its id
    """
    tk.check_access("lgdp_subscription_list", context, data_dict)
    sub = model.Session.get(Subscription, data_dict.get("id") or "")
    if sub is None or not _mine(context, sub):
        raise tk.ObjectNotFound(tk._("No subscription {id}").format(id=data_dict.get("id")))
    sub.active = False
    model.repo.commit()
    return sub.dictize()


@tk.side_effect_free
@validate(schema.delivery_list)
def lgdp_delivery_list(context: Context, data_dict: DataDict) -> list[dict[str, Any]]:
    """Deliveries of one of your subscriptions, newest first (``status=dead``:
    the dead-letter list).

    :param id: the subscription's id
    :param status: pending, delivered or dead (optional)
    """
    tk.check_access("lgdp_subscription_list", context, data_dict)
    sub = model.Session.get(Subscription, data_dict.get("id") or "")
    if sub is None or not _mine(context, sub):
        raise tk.ObjectNotFound(tk._("No subscription {id}").format(id=data_dict.get("id")))
    query = model.Session.query(Delivery).filter(Delivery.subscription_id == sub.id)
    if data_dict.get("status"):
        query = query.filter(Delivery.status == data_dict["status"])
    rows = query.order_by(Delivery.next_attempt_at.desc()).all()
    events = {e.id: e for e in model.Session.query(Event).filter(Event.id.in_([r.event_id for r in rows]))} if rows else {}
    return [{**r.dictize(), "event_type": events[r.event_id].type if r.event_id in events else None} for r in rows]


@validate(schema.no_parameters)
def lgdp_delivery_run(context: Context, data_dict: DataDict) -> dict[str, int]:
    """Attempt the deliveries that are due (the coordinating body; cron). It
    takes no parameters."""
    tk.check_access("lgdp_delivery_run", context, data_dict)
    return run_due()


@tk.side_effect_free
@validate(schema.event_list)
def lgdp_event_list(context: Context, data_dict: DataDict) -> list[dict[str, Any]]:
    """The events of a return that you may see, newest first (a feed to poll).

    :param data_return: the return's id or name
    :param limit: at most this many (default 100, at most 1000)
    """
    tk.check_access("lgdp_event_list", context, data_dict)
    pkg = returns.package(data_dict.get("data_return"))
    limit = data_dict["limit"]
    who = access.context_actor(context)
    rows = model.Session.query(Event).filter(Event.return_id == pkg.id).order_by(Event.created.desc()).limit(5000)
    out = []
    for event in rows:
        if may_see(who, event):
            out.append(payload(event))
            if len(out) >= limit:
                break
    return out


def subscriptions() -> dict[Any, list[Any]]:
    return {event_signal: [on_event]}
