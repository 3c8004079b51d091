"""`ckan lgdp ...`: operator commands of the platform."""
from __future__ import annotations

import datetime
import json
import signal
import sys
import threading
from typing import Any

import click

import ckan.plugins.toolkit as tk
from ckan import model
from ckan.lib.search.common import SearchIndexError

from ckanext.lgdp import demo as demo_data
from ckanext.lgdp.connectors import pull as connectors
from ckanext.lgdp.model import Connector
from ckanext.lgdp.ops import scheduler as ops_scheduler
from ckanext.lgdp.ops import worker as ops_worker
from ckanext.lgdp.register.actions import run_reviews_job
from ckanext.lgdp.repository import consolidate as repo
from ckanext.lgdp.repository import reference as ref
from ckanext.lgdp.repository import tracking
from ckanext.lgdp.repository.checks import run_qa


@click.group(short_help="Local Government Data Platform commands")
def lgdp() -> None:
    """Local Government Data Platform commands."""


@lgdp.command()
def status() -> None:
    """Check the services the platform needs, the workers, the scheduler and
    the queues; exit 1 when one is not ok (jobs are not being taken)."""
    result = tk.get_action("lgdp_status_show")({"ignore_auth": True, "user": _site_user()}, {})
    for name, service in result["services"].items():
        mark = click.style("ok  ", fg="green") if service["ok"] else click.style("DOWN", fg="red")
        click.echo(f"{mark} {name:<9} {_status_detail(name, service)}")
        for line in _status_lines(name, service):
            click.echo(f"            {line}")
    click.echo("ok: jobs are being taken" if result["ok"] else click.style("NOT OK", fg="red"))
    if not result["ok"]:
        sys.exit(1)


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.0f} s"


def _status_detail(name: str, service: dict[str, Any]) -> str:
    if service.get("error"):
        return service["error"]
    if name == "worker":
        return f"{service['live']} live"
    if name == "scheduler":
        if service.get("last_tick") is None:
            return "no job is scheduled (cron)"
        return f"last tick {_age(service['age'])} ago ({service.get('host')} pid {service.get('pid')})"
    return ""


def _status_lines(name: str, service: dict[str, Any]) -> list[str]:
    if name == "worker":
        return [f"{'live' if w['live'] else 'not live'}: {w['host']} pid {w['pid']} {w['state']}"
                + (f" {w['job_title'] or w['job']} for {_age(w['job_age'])}" if w.get("job") else "")
                + f", heartbeat {_age(w['heartbeat_age'])} ago"
                + ("" if w["process"] == "alive" else ", process gone")
                for w in service.get("workers", [])]
    if name == "queues":
        return [f"{q:<16} {info['depth']} waiting, oldest {_age(info['oldest_age'])}, "
                f"last taken {_age(info['last_taken_age'])} ago" + ("" if info["ok"] else "  STUCK")
                for q, info in service.get("queues", {}).items()]
    return []


@lgdp.command()
@click.option("--councils", type=click.IntRange(1, 32), help="Submissions from the first N councils only.")
@click.option("--years", type=click.IntRange(0, 4), default=4, show_default=True, help="Years of submissions.")
def demo(councils: int | None, years: int) -> None:
    """Load the demo organisations, returns, files and submissions (idempotent)."""
    try:
        summary = demo_data.load(_site_user(), echo=click.echo, councils_limit=councils, years=years)
    except tk.ValidationError as e:
        tk.error_shout(f"the demo data was refused: {json.dumps(e.error_dict)}")
        sys.exit(1)
    click.secho(
        "demo loaded: " + ", ".join(f"{n} {what}" for what, n in summary.items()),
        fg="green",
    )


@lgdp.command()
@click.option("--dry-run", is_flag=True, help="Only list the returns that would move.")
@click.option("--enqueue", is_flag=True, help="Run it as a background job in the worker.")
def reviews(dry_run: bool, enqueue: bool) -> None:
    """Move active returns whose review date has passed to under_review (cron-friendly)."""
    if enqueue:
        job = tk.enqueue_job(run_reviews_job, title="lgdp periodic review")
        click.echo(f"queued job {job.id}")
        return
    result = tk.get_action("lgdp_reviews_run")(
        {"user": _site_user(), "ignore_auth": True}, {"dry_run": dry_run}
    )
    verb = "would move" if dry_run else "moved"
    if not result["moved"]:
        click.echo("no return is due for review")
    for name in result["moved"]:
        click.echo(f"{verb} {name} to under_review")


@lgdp.command()
@click.option("--since", help="First due date (YYYY-MM-DD); default a year before --until.")
@click.option("--until", help="Last due date (YYYY-MM-DD); default today.")
@click.option("--return", "return_name", help="Only this data return.")
def expect(since: str | None, until: str | None, return_name: str | None) -> None:
    """Create the expected submissions of the collection calendar (idempotent),
    so that "not yet received" shows for every council; run it daily (cron)."""
    data = {k: v for k, v in {"since": since, "until": until, "data_return": return_name}.items() if v}
    try:
        result = tk.get_action("lgdp_submission_expect")({"user": _site_user(), "ignore_auth": True}, data)
    except (tk.ValidationError, tk.ObjectNotFound) as e:
        tk.error_shout(str(getattr(e, "error_dict", e)))
        sys.exit(1)
    click.echo(f"{result['created']} expected submissions created, {result['existing']} already there, "
               f"{result['overdue_refreshed']} overdue ones refreshed in the catalogue")


@lgdp.command()
def sweep() -> None:
    """Retry uploads whose validation job is no longer alive, or mark them
    interrupted after the last attempt; reconcile the central tables with
    the accepted submissions: queue again what is missing or stale, or
    whose job is no longer alive, mark interrupted what was killed too
    often, and retry what failed."""
    result = tk.get_action("lgdp_validation_sweep")({"user": _site_user(), "ignore_auth": True}, {})
    click.echo(f"{result['retried']} uploads queued again, {result['interrupted']} marked interrupted")
    found = tk.get_action("lgdp_consolidation_sweep")({"user": _site_user(), "ignore_auth": True}, {})
    click.echo(f"{len(found['queued'])} consolidations queued again, {len(found['interrupted'])} marked interrupted, "
               f"{len(found['consolidated'])} failed ones consolidated, {len(found['failed'])} still failing")
    for queued in found["queued"]:
        click.echo(f"  queued {queued['name']} ({queued['reason']})")
    for name in found["interrupted"]:
        click.echo(f"  interrupted {name}")
    for failed in found["failed"]:
        click.echo(f"  {failed['name']}: {failed['problem']}")


@lgdp.command("search-refresh")
def search_refresh() -> None:
    """Refresh the search documents of submissions whose state changed since
    they were indexed (the workers do it in batches after each step; this
    takes what a lost job or a Solr outage left)."""
    try:
        result = tk.get_action("lgdp_search_refresh")({"user": _site_user(), "ignore_auth": True}, {})
    except SearchIndexError as e:
        tk.error_shout(f"the search index (Solr) cannot be written: {e}")
        sys.exit(1)
    click.echo(f"{result['refreshed']} search documents refreshed, {result['removed']} removed, "
               f"{result['pending']} still stale")


@lgdp.command()
@click.option("--burst", is_flag=True, help="Stop once the queues are empty.")
@click.option("--max-jobs", type=click.IntRange(1), help="Stop after this many jobs.")
@click.argument("queues", nargs=-1)
def worker(burst: bool, max_jobs: int | None, queues: tuple[str, ...]) -> None:
    """Run the background jobs of QUEUES (default: lgdp:validation, then
    default), each in this process: no fork and no reload of CKAN per job."""
    try:
        ops_worker.work(queues, burst=burst, max_jobs=max_jobs)
    except ops_worker.RedisLost as e:
        tk.error_shout(f"the job queue (Redis) went away: {e}")
        sys.exit(1)


@lgdp.command()
def scheduler() -> None:
    """Run the platform's scheduler (long running): each job of
    ckanext.lgdp.schedule.* is queued for the worker when its cron string
    says; one scheduler leads, a second one waits."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        ops_scheduler.serve(stop)
    except ops_scheduler.CronError as e:
        tk.error_shout(f"a schedule cannot be read: {e}")
        sys.exit(1)


@lgdp.command()
@click.option("--list", "show", is_flag=True, required=True, help="List the jobs and when they run.")
def schedule(show: bool) -> None:
    """What the scheduler runs when: each job, its cron string, whether it is
    enabled, its next run and its last run's outcome."""
    def when(epoch: str | None) -> str:
        if not epoch:
            return "never"
        return datetime.datetime.fromtimestamp(float(epoch)).astimezone().isoformat(timespec="seconds")

    try:
        tick = ops_scheduler.last_tick()
    except Exception as e:  # noqa: BLE001 - Redis away: the schedule is still shown
        tick, away = None, str(e) or e.__class__.__name__
        click.echo(f"scheduler: unknown, the job queue (Redis) does not answer ({away})")
    else:
        if tick:
            click.echo(f"scheduler: last tick {when(tick['time'])} by {tick['host']} pid {tick['pid']}")
        else:
            click.echo("scheduler: no scheduler has run (ckan lgdp scheduler)")
    bad = False
    for job in ops_scheduler.describe():
        last = job["last"]
        click.echo("")
        click.echo(f"{job['name']}: {job['what']} (as {job['command']})")
        click.echo(f"  cron:     {job['cron'] or '(empty)'}")
        click.echo(f"  enabled:  {'yes' if job['enabled'] else 'no'}")
        if job["error"]:
            bad = True
            click.echo(f"  next run: {click.style('cannot be read: ' + job['error'], fg='red')}")
        else:
            click.echo(f"  next run: {job['next'] or '-'}")
        outcome = last.get("outcome") or ""
        detail = last.get("summary") if outcome == "ok" else last.get("error")
        finished = last.get("finished_at")
        click.echo(f"  last run: {when(last.get('started_at'))}"
                   + (f", finished {when(finished)}" if finished else "")
                   + (f": {outcome}" if outcome else "") + (f" ({detail})" if detail else ""))
        if last.get("tick"):
            click.echo(f"  last tick: {when(last.get('tick_at'))}: {last['tick']}")
    if bad:
        sys.exit(1)


@lgdp.command()
@click.option("--return", "return_name", help="Only this data return.")
@click.option("--no-qa", is_flag=True, help="Do not run the quality checks afterwards.")
def consolidate(return_name: str | None, no_qa: bool) -> None:
    """Rebuild the consolidated tables from accepted submissions (idempotent)."""
    return_id = None
    if return_name:
        pkg = tk.get_action("package_show")({"ignore_auth": True}, {"id": return_name})
        return_id = pkg["id"]
    subs = repo.accepted_submissions(return_id)
    with click.progressbar(length=len(subs), label=f"consolidating {len(subs)} accepted submissions") as bar:
        def progress(items: Any) -> Any:
            for item in items:
                yield item
                bar.update(1)

        result = tracking.rebuild(return_id, progress=progress)
    click.echo(f"{result['rows']} rows from {result['submissions']} submissions")
    if not no_qa:
        for rid in sorted({s.extras.get("data_return") for s in subs if s.extras.get("data_return")}):
            result = run_qa(rid)
            click.echo(f"quality checks of {rid}: {result}")


@lgdp.command()
@click.option("--return", "return_name", help="Only this data return.")
@click.option("--period", help="Only flags about this period.")
def qa(return_name: str | None, period: str | None) -> None:
    """Run the cross-council quality checks and store their flags."""
    if return_name:
        ids = [tk.get_action("package_show")({"ignore_auth": True}, {"id": return_name})["id"]]
    else:
        ids = sorted({s.extras.get("data_return") for s in repo.accepted_submissions() if s.extras.get("data_return")})
    with click.progressbar(ids, label=f"checking {len(ids)} returns") as bar:
        results = {rid: run_qa(rid, period) for rid in bar}
    for rid, result in results.items():
        click.echo(f"{rid}: {result['raised']} raised, {result['seen']} still found, {result['resolved']} resolved")


@lgdp.command()
@click.option("--owner", default="lgdp-coordination", show_default=True, help="The organisation that publishes them.")
def reference(owner: str) -> None:
    """Put the reference data (councils, populations, family groups) in the
    catalogue; a changed file becomes a new version (idempotent)."""
    try:
        for name, state in ref.publish({"user": _site_user(), "ignore_auth": True}, owner).items():
            click.echo(f"{name}: {state}")
    except (tk.ValidationError, tk.ObjectNotFound) as e:
        tk.error_shout(f"could not publish the reference data: {getattr(e, 'error_dict', e)}")
        sys.exit(1)


@lgdp.command()
def deliver() -> None:
    """Attempt the event deliveries that are due (webhooks and e-mails
    waiting for a retry); cron-friendly, e.g. every minute."""
    result = tk.get_action("lgdp_delivery_run")({"user": _site_user(), "ignore_auth": True}, {})
    click.echo(f"{result['delivered']} delivered, {result['pending']} to retry later, {result['dead']} dead-lettered")


@lgdp.command()
@click.option("--dry-run", is_flag=True, help="Only list the reminders that would be sent.")
@click.option("--today", help="Run as if it were this date (YYYY-MM-DD).")
def remind(dry_run: bool, today: str | None) -> None:
    """E-mail councils about returns due in 7 days, tomorrow, or late (daily, cron)."""
    data = {"dry_run": dry_run, **({"today": today} if today else {})}
    try:
        result = tk.get_action("lgdp_reminder_run")({"user": _site_user(), "ignore_auth": True}, data)
    except tk.ValidationError as e:
        tk.error_shout(str(e.error_dict))
        sys.exit(1)
    verb = "would remind" if dry_run else "reminded"
    if not result["reminders"]:
        click.echo("no reminders today")
    for entry in result["reminders"]:
        items = ", ".join(f"{i['submission']} ({i['kind']} {i['due_date']})" for i in entry["items"])
        who = ", ".join(entry["recipients"]) or "nobody"
        line = f"{verb} {entry['council']} [{who}]: {items}"
        if entry["error"]:
            line += f"  PROBLEM: {entry['error']}"
        click.echo(line)


@lgdp.command()
@click.option("--all", "run_all", is_flag=True, help="Run every active connector, due or not.")
def pull(run_all: bool) -> None:
    """Run the pull connectors that are due (cron-friendly, e.g. every 5 minutes)."""
    due = (model.Session.query(Connector).filter(Connector.active.is_(True)).all() if run_all
           else connectors.due_connectors())
    outcomes: dict[str, int] = {}
    with click.progressbar(due, label=f"running {len(due)} connectors") as bar:
        for conn in bar:
            run = connectors.run_connector(conn)
            outcomes[run.outcome] = outcomes.get(run.outcome, 0) + 1
            if run.outcome == "failed":
                tk.error_shout(f"connector {conn.id} ({conn.url}): {run.error}")
    click.echo(", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())) or "no connector was due")


def _site_user() -> str:
    return tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]


def get_commands() -> list[click.Command]:
    return [lgdp]
