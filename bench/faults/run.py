#!/usr/bin/env python3
"""The fault suite: the running platform put through an operator's bad day.

A real stack (the web server, two workers and the scheduler under
supervisord, against the PostgreSQL, Redis and Solr of ``./platform.sh
test`` and the databases of test.ini) takes bursts of uploads and of
acceptances over HTTP from careful clients (bench/faults/client.py) while
the runner injects one kind of fault per scenario:

  kill-validation     SIGKILL of a worker while it validates uploads, several times
  kill-consolidation  SIGKILL of a worker while it consolidates acceptances, several
                      times, aimed at the stages of the job (job taken, during the
                      COPY, between the COPY and the commit, after the rows are in
                      but before the outcome is recorded) and at random moments
  redis               Redis stopped mid-burst (uploads, then acceptances), then started
  solr                Solr stopped mid-burst (uploads, then acceptances), then started
  postgres            PostgreSQL restarted mid-burst (uploads, then acceptances)
  webhook             two webhook receivers down during a burst of acceptances; one
                      comes back (every event must then be delivered, once), one
                      never does (every delivery must be dead-lettered after the
                      limit), with nobody running a command

Each scenario has a data return of its own (councils x periods submissions,
one file of ``rows`` rows each) and ends with a check, read with SQL: the
submissions, uploads and rows expected against those found (rows counted in
the return's consolidated DataStore table), and, once recovered, 0 lost,
0 duplicated and 0 stuck (no upload pending or running, no accepted
submission unconsolidated, no delivery pending). It prints the requests
sent, the answers received by HTTP status, the time to recover, what each
fault hit, and a table across scenarios; ``--json`` writes it all.

  bench/run_faults.sh                  # full size, every scenario
  bench/run_faults.sh --short          # the test suite's size (tests/test_faults.py)
  bench/run_faults.sh --short --scenario redis --scenario solr

Exit status: 0 when every scenario ended with nothing lost, duplicated or
stuck; 1 otherwise; 2 when the run itself could not be made.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import client as client_mod  # noqa: E402
import stack as stack_mod  # noqa: E402
import world  # noqa: E402
from receiver import Receiver  # noqa: E402

ROOT = stack_mod.ROOT
RESULTS = ROOT / "bench" / "results"
SCENARIOS = ("kill-validation", "kill-consolidation", "redis", "solr", "postgres", "webhook")
TERMINAL = ("valid", "invalid", "rejected", "interrupted", "error")
GIVEN_UP = ("interrupted", "error")
RANK = {"expected": 0, "draft": 1, "returned": 1, "signed_off": 2, "submitted": 3, "accepted": 4}
STEPS = (("sign_off", "admin", "signed_off"), ("submit", "editor", "submitted"), ("accept", "agency", "accepted"))
# Where a consolidation is killed, in turn (run.Run._stage_of): once the job is taken
# (before its transaction; caught by watching, so first, while most jobs are still to
# come), inside its DataStore transaction (before the COPY), after the commit (the rows
# in, the outcome not recorded on the submission yet), in the COPY,
# between the COPY and the commit; then random moments. A COPY of a few thousand rows
# takes milliseconds: those two are seldom caught, and a stage not caught gives way to a
# random moment of a running consolidation.
KILL_STAGES = ("job-taken", "in-transaction", "rows-in", "copy", "after-copy", "random")
# Stages the runner holds a worker at with a real database lock, taken on a connection
# of its own and released right after the kill: the consolidated table locked
# (EXCLUSIVE: reads go on) so the job waits at its DELETE, inside its transaction;
# a submission's package row locked (FOR UPDATE) so the job, its rows committed,
# waits to record the outcome. The others are caught by watching.
HELD = ("in-transaction", "rows-in")


def log(msg: str) -> None:
    print(f"[{datetime.datetime.now():%H:%M:%S}] {msg}", flush=True)


@dataclass(frozen=True)
class Size:
    councils: int
    periods: int
    rows: int            # rows per file
    big_rows: int        # rows per file where the fault aims inside a job (kill scenarios)
    concurrency: int
    spread: float        # seconds a burst is spread over
    kills: int
    outage: float        # seconds a service (or a receiver) stays down
    recover: float       # seconds allowed to recover after the last fault
    tick: float          # the stand-in scheduler's interval
    client_deadline: float
    max_backoff: float
    compress_time: bool  # hurry webhook retries (their backoff is minutes)


SHORT = Size(councils=3, periods=2, rows=200, big_rows=4000, concurrency=6, spread=4, kills=3, outage=4,
             recover=75, tick=5, client_deadline=90, max_backoff=4, compress_time=True)
FULL = Size(councils=8, periods=4, rows=2000, big_rows=10000, concurrency=16, spread=20, kills=8, outage=15,
            recover=900, tick=10, client_deadline=300, max_backoff=15, compress_time=False)


# ---------------------------------------------------------------- a scenario's state


@dataclass
class Scenario:
    name: str
    title: str
    ret: dict[str, Any]
    rows: int
    subs: list[tuple[world.Council, str]]  # (council, period)
    tally: client_mod.Tally = field(default_factory=client_mod.Tally)
    logical: Counter = field(default_factory=Counter)       # submission -> logical uploads sent
    upload_answers: Counter = field(default_factory=Counter)  # final status of each logical upload
    upload_history: dict[str, list[list[int]]] = field(default_factory=dict)  # submission -> statuses of each try
    reuploads: list[str] = field(default_factory=list)
    accepted_ok: set[str] = field(default_factory=set)       # submissions the client got accepted
    refused: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    fault_end: float = 0.0
    t0: float = 0.0
    receivers: dict[str, tuple[Receiver, str]] = field(default_factory=dict)  # role -> (receiver, subscription)
    notes: list[str] = field(default_factory=list)

    def sub_name(self, council: world.Council, period: str) -> str:
        return f"{self.ret['name']}--{council.name}--{period}"[:100]

    def fault(self, what: str, **info: Any) -> None:
        entry = {"t": round(time.monotonic() - self.t0, 2), "what": what, **info}
        self.faults.append(entry)
        log(f"  fault: {what} {json.dumps(info, default=str)}")
        self.fault_end = time.monotonic()


class Run:
    def __init__(self, args: argparse.Namespace, size: Size) -> None:
        self.args = args
        self.size = size
        self.folder = Path(tempfile.mkdtemp(prefix="lgdp-faults-"))
        self.stack = stack_mod.Stack(port=args.port, workers=args.workers, tick=size.tick, folder=self.folder)
        self.site: world.Site | None = None
        self.obs: world.Observer | None = None
        self.people: world.People | None = None
        self.redis: Any = None
        self.holding: Any = None  # (connection, transaction) holding a worker at a stage
        self.seen: Counter = Counter()
        self._pids: dict[int, str] = {}
        self._pids_at = 0.0
        self.run_id = uuid.uuid4().hex[:6]

    # ------------------------------------------------------------ set-up

    def setup(self, names: list[str]) -> list[Scenario]:
        t = time.monotonic()
        self.site = world.Site(self.args.ini)
        self.obs = world.Observer(self.site.main_url, self.site.ds_url)
        import redis

        self.redis = redis.Redis.from_url(self.site.redis_url)
        self.people = world.setup_people(self.site, self.size.councils)
        out = []
        for name in names:
            rows = self.size.big_rows if name.startswith("kill-consolidation") else self.size.rows
            ret = world.make_return(self.site, f"{world.PREFIX}{self.run_id}-{name}",
                                    f"Fault suite {self.run_id}: {name}", self.people.agency_id)
            more = {"kill-validation": 1, "kill-consolidation": 2}.get(name, 0)  # work for the kills
            subs = [(c, p) for p in world.periods(self.size.periods + more)
                    for c in self.people.councils]
            sc = Scenario(name, TITLES[name], ret, rows, subs)
            if name == "webhook":
                for role in ("returns", "never"):
                    rec = Receiver(role)
                    sub_id = world.subscribe(self.site, self.people.agency_editor, ret["id"], rec.url)
                    from ckanext.lgdp.model import Subscription
                    from ckan import model

                    rec.secret = model.Session.get(Subscription, sub_id).secret or ""
                    self.site.fresh()
                    sc.receivers[role] = (rec, sub_id)
            out.append(sc)
        log(f"set-up: {len(self.people.councils)} councils, {2 * len(self.people.councils) + 1} users with tokens, "
            f"{len(out)} returns ({time.monotonic() - t:.1f} s)")
        return out

    def start_stack(self) -> None:
        env = stack_mod.service_env()
        self.stack.start(env, self.args.scheduler)
        log(f"supervisord: web on {self.stack.url}, {self.stack.workers} workers, scheduler: {self.stack.scheduler}"
            + (" (STAND-IN: the code of `ckan lgdp sweep` and `ckan lgdp deliver` every "
               f"{self.size.tick:g} s; bench/faults/standin.py)" if self.stack.scheduler == "stand-in" else "")
            + f"; logs in {self.stack.logs}")
        waited = self.stack.wait_ready()
        log(f"the stack is up ({waited:.1f} s)")

    # ------------------------------------------------------------ client work

    def client(self, sc: Scenario) -> client_mod.Client:
        return client_mod.Client(self.stack.url, sc.tally, deadline_s=self.size.client_deadline,
                                 max_backoff=self.size.max_backoff)

    def upload_one(self, sc: Scenario, cl: client_mod.Client, council: world.Council, period: str) -> None:
        name = sc.sub_name(council, period)
        sc.logical[name] += 1
        _key, outcome = cl.upload(council.editor.token, sc.ret["name"], council.name, period,
                                  f"{council.name}-{period}.csv", world.csv_bytes(council.gss, period, sc.rows))
        sc.upload_answers[outcome.status] += 1
        sc.upload_history.setdefault(name, []).append(outcome.history)
        if outcome.status != 200:
            sc.refused.append({"submission": name, "step": "upload", "status": outcome.status,
                               "attempts": outcome.attempts, "error": outcome.error[:200]})

    def burst_uploads(self, sc: Scenario) -> None:
        cl = self.client(sc)
        n = len(sc.subs)

        def job(i: int) -> None:
            time.sleep(i * self.size.spread / max(1, n))
            council, period = sc.subs[i]
            self.upload_one(sc, cl, council, period)

        with cf.ThreadPoolExecutor(self.size.concurrency) as pool:
            list(pool.map(job, range(n)))

    def wait_validated(self, sc: Scenario, deadline: float) -> bool:
        """Until every submission's latest upload is validated; an upload the
        platform gave up on (interrupted, error) is sent again, as its message
        asks, at most twice."""
        cl = self.client(sc)
        while time.monotonic() < deadline:
            subs = self.obs.submissions(sc.ret["id"])
            ups = {u["id"]: u for u in self.obs.uploads([s["id"] for s in subs.values()])}
            # an upload stored under a refusal, or a duplicate, must be validated too
            busy = sum(1 for u in ups.values() if u["status"] in ("pending", "running")
                       and not any(s and s["current_upload"] == u["id"] for s in subs.values()))
            for council, period in sc.subs:
                name = sc.sub_name(council, period)
                s = subs.get(name)
                u = ups.get(s["current_upload"]) if s else None
                if u is None or u["status"] not in TERMINAL:
                    busy += 1
                elif u["status"] in GIVEN_UP and sc.logical[name] < 3:
                    sc.reuploads.append(f"{name}: upload {u['version']} {u['status']} ({u['problem_code']})")
                    log(f"  client: {name} upload {u['version']} ended {u['status']}; uploading again")
                    self.upload_one(sc, cl, council, period)
                    busy += 1
            if busy == 0:
                return True
            time.sleep(1)
        return False

    def burst_transitions(self, sc: Scenario) -> None:
        cl = self.client(sc)
        # spread wider where kills are aimed at consolidations, so that jobs keep coming
        spread = self.size.spread * (4 if sc.name == "kill-consolidation" else 1)
        subs = self.obs.submissions(sc.ret["id"])
        ups = {u["id"]: u for u in self.obs.uploads([s["id"] for s in subs.values()])}
        ready = []
        for council, period in sc.subs:
            name = sc.sub_name(council, period)
            s = subs.get(name)
            u = ups.get(s["current_upload"]) if s else None
            if u is not None and u["status"] == "valid":
                ready.append((council, name))
            else:
                sc.refused.append({"submission": name, "step": "sign_off", "status": None,
                                   "error": f"not moved: latest upload {u['status'] if u else 'missing'}"})

        def done(name: str, target: str) -> Callable[[], bool]:
            def check() -> bool:
                s = self.obs.submissions(sc.ret["id"]).get(name)
                return s is not None and RANK.get(s["status"] or "", 0) >= RANK[target]
            return check

        def move(i: int) -> None:
            time.sleep(i * spread / max(1, len(ready)))
            council, name = ready[i]
            tokens = {"admin": council.admin.token, "editor": council.editor.token,
                      "agency": self.people.agency_editor.token}
            for action, who, target in STEPS:
                outcome = cl.transition(tokens[who], name, action, done(name, target))
                if outcome.status != 200:
                    sc.refused.append({"submission": name, "step": action, "status": outcome.status,
                                       "attempts": outcome.attempts, "error": outcome.error[:200]})
                    return
            sc.accepted_ok.add(name)

        with cf.ThreadPoolExecutor(self.size.concurrency) as pool:
            list(pool.map(move, range(len(ready))))

    def consolidated(self, sc: Scenario) -> bool:
        """Every accepted submission's rows in, recorded, and no upload left pending or running."""
        subs = self.obs.submissions(sc.ret["id"])
        if any(u["status"] in ("pending", "running") for u in self.obs.uploads([s["id"] for s in subs.values()])):
            return False
        table = self.obs.table(sc.ret["name"])
        for council, period in sc.subs:
            name = sc.sub_name(council, period)
            if name not in sc.accepted_ok:
                continue
            s = subs.get(name)
            if s is None or s["consolidation_status"] != "consolidated":
                return False
            if table["counts"].get((council.gss, period), 0) != sc.rows:
                return False
        return True

    def wait_until(self, check: Callable[[], bool], deadline: float, every: float = 1.0,
                   meanwhile: Callable[[], None] | None = None) -> bool:
        while True:
            if check():
                return True
            if time.monotonic() >= deadline:
                return False
            if meanwhile is not None:
                meanwhile()
            time.sleep(every)

    # ------------------------------------------------------------ faults

    def when_sent(self, sc: Scenario, share: float, of: int, timeout: float = 60) -> None:
        """Wait until ``share`` of ``of`` logical requests of this phase were sent."""
        start = sc.tally.requests
        deadline = time.monotonic() + timeout
        while sc.tally.requests - start < share * of and time.monotonic() < deadline:
            time.sleep(0.05)

    def outage(self, sc: Scenario, service: str, phase: str, share: float, of: int) -> None:
        self.when_sent(sc, share, of)
        t = time.monotonic()
        stopped = stack_mod.platform("service", "stop", service)
        sc.fault(f"{service} stopped", phase=phase, rc=stopped.returncode, took=round(time.monotonic() - t, 1))
        time.sleep(self.size.outage if service != "postgres" else 2)
        t = time.monotonic()
        started = stack_mod.platform("service", "start", service)
        sc.fault(f"{service} started", phase=phase, rc=started.returncode, took=round(time.monotonic() - t, 1))
        if started.returncode != 0:
            sc.notes.append(f"{service} did not start: {started.stdout[-300:]} {started.stderr[-300:]}")

    def worker_pid_map(self, fresh: bool = False) -> dict[int, str]:
        """{pid: supervisord program} of this stack's workers (asked of
        supervisord at most once a second)."""
        if fresh or time.monotonic() - self._pids_at > 1.0:
            self._pids = {pid: name for name, pid in self.stack.worker_pids().items()}
            self._pids_at = time.monotonic()
        return self._pids

    def rq_current(self) -> dict[int, str]:
        """{worker pid: id of the job it is running}, from RQ's registrations."""
        out: dict[int, str] = {}
        try:
            for key in self.redis.smembers("rq:workers"):
                fields = self.redis.hgetall(key)
                job = (fields.get(b"current_job") or b"").decode()
                pid = (fields.get(b"pid") or b"").decode()
                if job and pid.isdigit():
                    out[int(pid)] = job
        except Exception:  # noqa: BLE001 - Redis away: nothing known
            pass
        return out

    def job_status(self, job_id: str) -> str | None:
        try:
            status = self.redis.hget(f"rq:job:{job_id}", "status")
        except Exception:  # noqa: BLE001
            return None
        return status.decode() if status else None

    @staticmethod
    def local_ports(pid: int) -> set[int]:
        """Local TCP ports of a process's sockets (/proc)."""
        inodes = set()
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            return set()
        ports = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                parts = line.split()
                if len(parts) > 9 and parts[9] in inodes:
                    ports.add(int(parts[1].rsplit(":", 1)[1], 16))
        return ports

    def kill_validation(self, sc: Scenario, phase_end: threading.Event) -> None:
        """SIGKILL a worker while it validates an upload, ``kills`` times."""
        ids = None
        done = 0
        deadline = time.monotonic() + self.size.client_deadline
        while done < self.size.kills and time.monotonic() < deadline:
            if ids is None or not done:
                ids = [s["id"] for s in self.obs.submissions(sc.ret["id"]).values()]
            running = [u for u in self.obs.uploads(ids) if u["status"] == "running" and u["worker"]]
            workers = self.worker_pid_map()
            target = next((u for u in running if int(u["worker"].rsplit(":", 1)[1]) in workers), None)
            if target is None:
                if phase_end.is_set() and not any(u["status"] in ("pending", "running") for u in self.obs.uploads(ids)):
                    break
                ids = [s["id"] for s in self.obs.submissions(sc.ret["id"]).values()]
                time.sleep(0.05)
                continue
            time.sleep(random.uniform(0, 0.15))
            pid = int(target["worker"].rsplit(":", 1)[1])
            if self.stack.kill(pid):
                done += 1
                sc.fault("SIGKILL worker", stage="validating", process=workers[pid], pid=pid,
                         upload=target["id"], attempt=target["attempts"])
                time.sleep(1.0)
        if done < self.size.kills:
            sc.notes.append(f"{done} of {self.size.kills} kills landed on a validation (the burst ran out)")

    def is_worker(self, pid: int) -> bool:
        """A live worker of this stack (RQ's registrations outlive their processes)."""
        if pid not in self.worker_pid_map():
            return False
        try:
            return b"lgdp\0worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False

    def _consolidating(self) -> list[tuple[int, str]]:
        """(worker pid, submission id) of each live worker running a consolidation."""
        return [(pid, job[len("lgdp-consolidate-"):]) for pid, job in self.rq_current().items()
                if job.startswith("lgdp-consolidate-") and self.is_worker(pid)]

    def _stage_of(self, sc: Scenario, pid: int, sid: str, backends: list[dict[str, Any]]) -> str:
        """Where a worker's consolidation job is, from its DataStore connection:
        in its transaction before the COPY, in the COPY, between the COPY and
        the commit; else before its transaction, or after it (rows-in: the rows
        are in the table, the outcome not recorded on the submission yet)."""
        ports = self.local_ports(pid)
        for b in backends:
            if b["client_port"] not in ports or not b["in_transaction"]:
                continue
            query = b["query"] or ""
            if query.startswith("COPY"):
                return "copy" if b["state"] == "active" else "after-copy"
            return "before-copy"
        s = next((x for x in self.obs.submissions(sc.ret["id"]).values() if x["id"] == sid), None)
        council = next((c for c in self.people.councils if s and c.id == s["owner_org"]), None)
        if s is None or council is None or s["consolidation_status"] == "consolidated":
            return "other"
        rows = self.obs.table(sc.ret["name"])["counts"].get((council.gss, s["period"]), 0)
        return "rows-in" if rows == sc.rows else "job-taken"

    def _stage_target(self, sc: Scenario, stage: str) -> tuple[int, str, str] | None:
        busy = self._consolidating()
        if not busy:
            return None
        if stage == "random":
            pid, sid = random.choice(busy)
            return pid, sid, "random"
        backends = self.obs.datastore_backends()
        for pid, sid in busy:
            seen = self._stage_of(sc, pid, sid, backends)
            self.seen[seen] += 1
            if seen == stage:
                return pid, sid, stage
        return None

    def _waiting_worker(self, engine: Any, query_start: str) -> int | None:
        """A live worker whose connection waits on a lock in a statement
        starting with ``query_start``."""
        backends = self.obs.backends(engine)
        waiting = {b["client_port"] for b in backends
                   if b["wait_event_type"] == "Lock" and (b["query"] or "").startswith(query_start)}
        if not waiting:
            return None
        for pid, _job in self.rq_current().items():
            if self.is_worker(pid) and self.local_ports(pid) & waiting:
                return pid
        return None

    def _hold(self, sc: Scenario, stage: str, seconds: float) -> tuple[int, str, str] | None:
        """Hold a worker at ``stage`` with a lock and return it (pid, submission
        id, stage) while the lock is still held (``self.holding``), or None."""
        import sqlalchemy as sa

        table = [r for r in self.obs.table(sc.ret["name"])["resources"] if r["exists"] and r["datastore_active"]]
        if stage == "in-transaction":
            if not table:
                return None  # the first job makes the table: wait for it
            engine, lock = self.obs.ds, f'LOCK TABLE "{table[0]["id"]}" IN EXCLUSIVE MODE'
            params: dict[str, Any] = {}
            waits_in = "DELETE"
        else:
            subs = self.obs.submissions(sc.ret["id"])
            counts = self.obs.table(sc.ret["name"])["counts"]
            gss = {c.id: c.gss for c in self.people.councils}
            live = {sid for _pid, sid in self._consolidating()}
            # accepted, its rows not in yet, its job queued or being run by a live
            # worker (not one lost with a killed worker): it will wait to record
            ahead = [x for x in subs.values() if x["status"] == "accepted" and x["consolidation_status"] == "pending"
                     and counts.get((gss.get(x["owner_org"]), x["period"]), 0) == 0
                     and (x["id"] in live or self.job_status(f"lgdp-consolidate-{x['id']}") == "queued")]
            if not ahead:
                return None
            chosen = ahead[0]
            engine, lock = self.obs.main, "SELECT id FROM package WHERE id = :id FOR UPDATE"
            params = {"id": chosen["id"]}
            waits_in = ""  # its first write touching the row (UPDATE package, a new package_extra ...)
        conn = engine.connect()
        txn = conn.begin()
        try:
            conn.execute(sa.text(lock), params)
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                pid = self._waiting_worker(engine, waits_in)
                if pid is not None:
                    sid = self.rq_current().get(pid, "")[len("lgdp-consolidate-"):]
                    self.holding = (conn, txn)
                    return pid, sid, stage
                time.sleep(0.02)
        except Exception as e:  # noqa: BLE001
            sc.notes.append(f"holding a worker at {stage} failed: {type(e).__name__}: {str(e)[:200]}")
        txn.rollback()
        conn.close()
        return None

    def _release(self) -> None:
        if self.holding is not None:
            conn, txn = self.holding
            self.holding = None
            try:
                txn.rollback()
                conn.close()
            except Exception:  # noqa: BLE001
                pass

    def workers_back(self, seconds: float) -> None:
        """Until supervisord has every worker running again (the next kill
        then finds work being done)."""
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            states = self.stack.states()
            if all(states.get(n.split(":")[-1]) == "RUNNING" or states.get(n) == "RUNNING"
                   for n in self.stack.worker_names()):
                break
            time.sleep(0.5)
        self.worker_pid_map(fresh=True)

    def kill_consolidation(self, sc: Scenario, phase_end: threading.Event) -> None:
        """SIGKILL a worker while it consolidates, ``kills`` times, each aimed
        at a stage of the job (KILL_STAGES); a stage not seen within a few
        seconds gives way to a random moment of a running consolidation."""
        wait_each = 6.0 if self.size.compress_time else 10.0
        self.seen = Counter()
        polls = 0
        # the first consolidation makes the return's table; the kills start once it exists
        until = time.monotonic() + self.size.client_deadline
        while time.monotonic() < until and not any(
                r["exists"] and r["datastore_active"] for r in self.obs.table(sc.ret["name"])["resources"]):
            time.sleep(0.2)
        for k in range(self.size.kills):
            stage = KILL_STAGES[k % len(KILL_STAGES)]
            target = None
            for aim, seconds in ((stage, wait_each), ("random", wait_each)):
                until = time.monotonic() + seconds
                while target is None and time.monotonic() < until:
                    if aim in HELD:
                        target = self._hold(sc, aim, until - time.monotonic())
                        if target is None:
                            time.sleep(0.1)
                        continue
                    target = self._stage_target(sc, aim)
                    polls += 1
                    if target is None:
                        time.sleep(0.003)
                if target is not None:
                    break
            if target is None:
                sc.notes.append(f"kill {k + 1}: no consolidation was running to kill (aimed at {stage})")
                if phase_end.is_set():
                    break
                continue
            pid, sid, hit = target
            if hit == "random":
                time.sleep(random.uniform(0, 0.3))
            name = self.worker_pid_map().get(pid, "?")
            job_now = self.rq_current().get(pid, "")  # what it runs at the kill (it may have moved on)
            if job_now.startswith("lgdp-consolidate-"):
                sid = job_now[len("lgdp-consolidate-"):]
            killed = self.stack.kill(pid)
            self._release()
            if killed:
                time.sleep(0.3)  # PostgreSQL rolls back what the dead process had not committed
                sub = next((s for s in self.obs.submissions(sc.ret["id"]).values() if s["id"] == sid), None)
                council = next((c for c in self.people.councils if sub and c.id == sub["owner_org"]), None)
                rows_now = (self.obs.table(sc.ret["name"])["counts"].get((council.gss, sub["period"]), 0)
                            if council else None)
                sc.fault("SIGKILL worker", stage=f"consolidation: {hit}", aimed=stage, process=name, pid=pid,
                         submission=sub["name"] if sub else sid, job_at_kill=job_now or None,
                         rows_in_table_after_kill=rows_now,
                         consolidation_status=sub["consolidation_status"] if sub else None)
            self.workers_back(30)
        sc.notes.append(f"stages of running consolidations seen while aiming ({polls} looks): {dict(self.seen)}")

    # ------------------------------------------------------------ scenarios

    def run_scenario(self, sc: Scenario) -> dict[str, Any]:
        log(f"== {sc.name}: {sc.title} ({len(sc.subs)} submissions x {sc.rows} rows)")
        stack_mod.ensure_services()
        self.stack.wait_ready()
        restarts_before = self.stack.restarts()
        sc.t0 = time.monotonic()
        n = len(sc.subs)

        # 1. a burst of uploads, with the scenario's fault in it
        fault: Callable[[threading.Event], None] | None = {
            "kill-validation": lambda ev: self.kill_validation(sc, ev),
            "redis": lambda ev: self.outage(sc, "redis", "uploads", 0.3, n),
            "solr": lambda ev: self.outage(sc, "solr", "uploads", 0.3, n),
            "postgres": lambda ev: self.outage(sc, "postgres", "uploads", 0.3, n),
        }.get(sc.name)
        sc.fault_end = 0.0
        self.phase(sc, self.burst_uploads, fault)
        t_uploaded = time.monotonic()
        fault_1 = sc.fault_end
        validated = self.wait_validated(sc, max(fault_1, t_uploaded) + self.size.recover)
        t_validated = time.monotonic()
        log(f"  uploads: {sc.tally.requests} requests, answers {dict(sc.tally.answers)}; "
            f"validated after {t_validated - sc.t0:.1f} s")

        # 2. a burst of acceptances (sign-off, submit, accept), with the fault in it
        fault = {
            "kill-consolidation": lambda ev: self.kill_consolidation(sc, ev),
            "redis": lambda ev: self.outage(sc, "redis", "acceptances", 0.3, 3 * n),
            "solr": lambda ev: self.outage(sc, "solr", "acceptances", 0.3, 3 * n),
            "postgres": lambda ev: self.outage(sc, "postgres", "acceptances", 0.3, 3 * n),
        }.get(sc.name)
        sc.fault_end = 0.0
        if sc.name == "webhook":
            for rec, _sid in sc.receivers.values():
                rec.down()
            sc.fault("webhook receivers down", receivers=[r.url for r, _ in sc.receivers.values()])
        self.phase(sc, self.burst_transitions, fault)
        t_moved = time.monotonic()
        done = self.wait_until(lambda: self.consolidated(sc), max(sc.fault_end, t_moved) + self.size.recover)
        if sc.name == "webhook":
            done = self.webhooks(sc) and done
        t_done = time.monotonic()
        fault_2 = sc.fault_end
        # time to recover: from the end of a phase's last fault to its work done
        recover = {}
        if fault_1:
            recover["uploads"] = round(t_validated - fault_1, 1) if validated else None
        if fault_2:
            recover["acceptances"] = round(t_done - fault_2, 1) if done else None
        worst = None if None in recover.values() else max(recover.values(), default=0.0)
        result = self.verify(sc)
        result.update({
            "recovered_s": worst, "recover": recover, "recover_limit_s": self.size.recover,
            "elapsed_s": round(t_done - sc.t0, 1), "validated_s": round(t_validated - sc.t0, 1),
            "supervisord_starts": {k: v - restarts_before.get(k, 0) for k, v in self.stack.restarts().items()
                                   if v - restarts_before.get(k, 0)},
        })
        self.print_result(result)
        return result

    def phase(self, sc: Scenario, burst: Callable[[Scenario], None],
              fault: Callable[[threading.Event], None] | None) -> None:
        end = threading.Event()
        thread = threading.Thread(target=fault, args=(end,), daemon=True) if fault else None
        if thread:
            thread.start()
        try:
            burst(sc)
        finally:
            end.set()
            if thread:
                thread.join(timeout=self.size.client_deadline + 120)

    def webhooks(self, sc: Scenario) -> bool:
        """Receivers down during the acceptances; after ``outage`` s one comes
        back. Until the deadline: the one that came back has every event once,
        the other's deliveries are all dead-lettered. Nobody runs a command;
        in short mode the retries' backoff is compressed (world.hurry_deliveries)."""
        comes_back, _ = sc.receivers["returns"]
        time.sleep(self.size.outage)
        comes_back.up()
        sc.fault("webhook receiver up", receiver=comes_back.url)
        sub_ids = [sid for _r, sid in sc.receivers.values()]

        def settled() -> bool:
            events = set(self.obs.events(sc.ret["id"], "submission.accepted"))
            if len(events) < len(sc.accepted_ok):
                return False
            back = self.obs.deliveries(sc.receivers["returns"][1])
            never = self.obs.deliveries(sc.receivers["never"][1])
            return (len(back) >= len(events) and all(d["status"] == "delivered" for d in back)
                    and len(never) >= len(events) and all(d["status"] == "dead" for d in never))

        hurry = (lambda: self.obs.hurry_deliveries(sub_ids)) if self.size.compress_time else None
        if hurry:
            sc.notes.append("time compressed: pending deliveries were made due at once (their backoff is "
                            "30 s, 1, 2, 4, 8 min); the retries themselves were left to the scheduler")
        limit = self.size.recover if self.size.compress_time else max(self.size.recover, 1200)
        return self.wait_until(settled, time.monotonic() + limit, every=1.0, meanwhile=hurry)

    # ------------------------------------------------------------ the check

    def verify(self, sc: Scenario) -> dict[str, Any]:
        subs = self.obs.submissions(sc.ret["id"])
        uploads = self.obs.uploads([s["id"] for s in subs.values()])
        by_sub: dict[str, list[dict[str, Any]]] = {}
        names = {s["id"]: s["name"] for s in subs.values()}
        for u in uploads:
            by_sub.setdefault(names[u["submission_id"]], []).append(u)
        table = self.obs.table(sc.ret["name"])
        expected = {sc.sub_name(c, p): (c, p) for c, p in sc.subs}
        findings: list[str] = []

        missing_subs = sorted(set(expected) - set(subs))
        extra_subs = sorted(set(subs) - set(expected))
        for name in missing_subs:
            findings.append(f"submission {name} missing")
        # uploads: one per logical upload the client made
        up_expected = sum(sc.logical[n] for n in expected)
        dup_uploads = lost_uploads = 0
        for name in expected:
            found = by_sub.get(name, [])
            if len(found) > sc.logical[name]:
                dup_uploads += len(found) - sc.logical[name]
                findings.append(f"{name}: {len(found)} uploads for {sc.logical[name]} logical upload(s) "
                                f"(answers to its attempts: {sc.upload_history.get(name)}): "
                                + ", ".join(f"v{u['version']} {u['status']}" for u in found))
            elif len(found) < sc.logical[name] and sc.logical[name]:
                lost_uploads += sc.logical[name] - len(found)
                findings.append(f"{name}: {len(found)} uploads for {sc.logical[name]} logical upload(s)")
        states = Counter(u["status"] for u in uploads)
        stuck_uploads = [u for u in uploads if u["status"] in ("pending", "running")]
        for u in stuck_uploads:
            findings.append(f"upload {u['id']} (v{u['version']} of {names[u['submission_id']]}) stuck {u['status']}, "
                            f"attempts {u['attempts']}, worker {u['worker'] or '-'}")
        for u in uploads:
            if u["status"] in GIVEN_UP:
                findings.append(f"upload {u['id']} (v{u['version']} of {names[u['submission_id']]}) ended "
                                f"{u['status']} ({u['problem_code']}), attempts {u['attempts']}")
        # submissions through the workflow
        statuses = Counter((subs[n]["status"] if n in subs else "missing") for n in expected)
        not_accepted = [n for n in expected if n not in sc.accepted_ok]
        for name in not_accepted:
            s = subs.get(name)
            cur = next((u for u in by_sub.get(name, []) if s and u["id"] == s["current_upload"]), None)
            findings.append(f"{name} not accepted: {s['status'] if s else 'missing'}, latest upload "
                            f"{cur['status'] if cur else '-'}")
        # rows: each accepted submission's rows, once, in the return's table
        rows_expected = sc.rows * len(sc.accepted_ok)
        missing_rows = extra_rows = 0
        unconsolidated = []
        keys = {}
        for name in sc.accepted_ok:
            council, period = expected[name]
            keys[(council.gss, period)] = name
            n = table["counts"].get((council.gss, period), 0)
            s = subs.get(name) or {}
            if n < sc.rows:
                missing_rows += sc.rows - n
            elif n > sc.rows:
                extra_rows += n - sc.rows
            if n != sc.rows or s.get("consolidation_status") != "consolidated":
                unconsolidated.append(name)
                findings.append(f"{name} accepted, {n} of {sc.rows} rows in the table, consolidation_status "
                                f"'{s.get('consolidation_status', '')}'"
                                + (f" ({s['consolidation_problem']})" if s.get("consolidation_problem") else ""))
        for key, n in table["counts"].items():
            if key not in keys:
                extra_rows += n
                findings.append(f"{n} rows of {key} in the table, from no accepted submission")
        if len(table["resources"]) > 1:  # one standard version: one table
            findings.append(f"the return's table dataset has {len(table['resources'])} resources for one standard "
                            "version: " + ", ".join(
                                f"{r['id']} ({str(r['rows']) + ' rows' if r['exists'] else 'no table'}, "
                                f"datastore_active {r['datastore_active']}, {r['state']})" for r in table["resources"]))
        inactive_rows = sum(r["rows"] for r in table["resources"]
                            if not r["datastore_active"] or r["state"] != "active")
        if inactive_rows:
            findings.append(f"{inactive_rows} rows sit in a table that is not an active DataStore resource")
        # webhooks
        hooks: dict[str, Any] = {}
        lost_events = dup_events = stuck_deliveries = 0
        if sc.receivers:
            events = set(self.obs.events(sc.ret["id"], "submission.accepted"))
            hooks["events"] = len(events)
            hooks["events_expected"] = len(sc.accepted_ok)
            if len(events) < len(sc.accepted_ok):
                lost_events += len(sc.accepted_ok) - len(events)
                findings.append(f"{len(events)} submission.accepted events for {len(sc.accepted_ok)} acceptances")
            for role, (rec, sid) in sc.receivers.items():
                ds = self.obs.deliveries(sid)
                got = rec.received()
                st = Counter(d["status"] for d in ds)
                hooks[role] = {"deliveries": dict(st), "received": sum(got.values()), "distinct": len(got),
                               "attempts": dict(Counter(d["attempts"] for d in ds)),
                               "bad_signatures": rec.bad_signatures}
                stuck_deliveries += st.get("pending", 0)
                dup_events += sum(n - 1 for n in got.values() if n > 1)
                if role == "returns":
                    missed = events - set(got)
                    lost_events += len(missed)
                    if missed:
                        findings.append(f"receiver that came back: {len(missed)} events never delivered "
                                        f"(deliveries {dict(st)})")
                else:
                    if st.get("pending"):
                        findings.append(f"receiver that never came back: {st['pending']} deliveries still pending "
                                        f"(attempts {dict(Counter(d['attempts'] for d in ds))})")
                    if len(ds) < len(events):
                        lost_events += len(events) - len(ds)
                        findings.append(f"receiver that never came back: {len(ds)} deliveries for {len(events)} events")
                if rec.bad_signatures:
                    findings.append(f"{role}: {rec.bad_signatures} deliveries with a bad signature")
        for entry in sc.tally.written_though_refused:
            findings.append(f"refused yet written: {entry}")
        lost = len(missing_subs) + lost_uploads + missing_rows + lost_events + len(not_accepted)
        duplicated = len(extra_subs) + dup_uploads + extra_rows + dup_events
        stuck = len(stuck_uploads) + len(unconsolidated) + stuck_deliveries
        return {
            "scenario": sc.name, "title": sc.title, "return": sc.ret["name"],
            **sc.tally.as_dict(),
            "upload_answers": {str(k): v for k, v in sorted(sc.upload_answers.items())},
            "submissions": {"expected": len(expected), "found": len(set(subs) & set(expected)),
                            "extra": len(extra_subs),
                            "accepted_expected": len(expected), "accepted": len(sc.accepted_ok),
                            "states": dict(statuses)},
            "uploads": {"expected": up_expected, "found": len(uploads), "duplicated": dup_uploads, "lost": lost_uploads,
                        "states": dict(states), "reuploads": len(sc.reuploads)},
            "rows": {"expected": rows_expected, "found": table["total"], "missing": missing_rows, "extra": extra_rows,
                     "tables": len(table["resources"]),
                     "tables_existing": sum(r["exists"] for r in table["resources"])},
            "webhooks": hooks or None,
            "lost": lost, "duplicated": duplicated, "stuck": stuck,
            "lost_detail": {"submissions_missing": len(missing_subs), "not_accepted": len(not_accepted),
                            "uploads": lost_uploads, "rows": missing_rows, "events": lost_events},
            "duplicated_detail": {"submissions": len(extra_subs), "uploads": dup_uploads, "rows": extra_rows,
                                  "events": dup_events},
            "stuck_detail": {"uploads": len(stuck_uploads), "unconsolidated": len(unconsolidated),
                             "deliveries": stuck_deliveries},
            "ok": lost == 0 and duplicated == 0 and stuck == 0,
            "faults": sc.faults, "refused": sc.refused[:20], "reuploaded": sc.reuploads,
            "findings": findings, "notes": sc.notes, "answer_samples": sc.tally.samples,
        }

    def print_result(self, r: dict[str, Any]) -> None:
        s, u, rows = r["submissions"], r["uploads"], r["rows"]
        answers = ", ".join(f"{k} x {v}" for k, v in r["answers"].items())
        print(f"  requests sent       {r['requests']}")
        print(f"  answers received    {answers}" + (f"  ({r['leaks']} showing a traceback)" if r["leaks"] else ""))
        print(f"  submissions         expected {s['expected']}, found {s['found']}, accepted {s['accepted']} "
              f"of {s['accepted_expected']}; states {s['states']}")
        print(f"  uploads             expected {u['expected']}, found {u['found']} (duplicated {u['duplicated']}, "
              f"lost {u['lost']}); states {u['states']}" + (f"; sent again {u['reuploads']}" if u["reuploads"] else ""))
        print(f"  rows                accepted rows expected {rows['expected']}, found {rows['found']} "
              f"(missing {rows['missing']}, extra {rows['extra']}); {rows['tables']} DataStore resource(s), "
              f"{rows['tables_existing']} with a table")
        if r["webhooks"]:
            print(f"  webhooks            {json.dumps(r['webhooks'])}")
        print(f"  faults              {len(r['faults'])}; supervisord starts {r['supervisord_starts'] or '{}'}")
        parts = [f"{phase}: " + (f"{s} s" if s is not None else f"NOT recovered in {r['recover_limit_s']:.0f} s")
                 for phase, s in r["recover"].items()]
        print(f"  time to recover     {'; '.join(parts) or 'no fault'} (after the phase's last fault; "
              f"scenario {r['elapsed_s']} s)")
        verdict = "ok" if r["ok"] else "FAIL"
        print(f"  lost {r['lost']} {r['lost_detail']}, duplicated {r['duplicated']} {r['duplicated_detail']}, "
              f"stuck {r['stuck']} {r['stuck_detail']}  -> {verdict}")
        for f in r["findings"][:40]:
            print(f"    - {f}")
        for n in r["notes"]:
            print(f"    note: {n}")


TITLES = {
    "kill-validation": "SIGKILL of a worker during validation (a burst of uploads)",
    "kill-consolidation": "SIGKILL of a worker during consolidation (a burst of acceptances), at each stage",
    "redis": "Redis stopped mid-burst, then started (uploads, then acceptances)",
    "solr": "Solr stopped mid-burst, then started (uploads, then acceptances)",
    "postgres": "PostgreSQL restarted mid-burst (uploads, then acceptances)",
    "webhook": "webhook receivers down: one comes back (delivered), one never does (dead-lettered)",
}


def table(results: list[dict[str, Any]]) -> str:
    head = ("scenario", "requests", "answers", "subs exp/found/acc", "uploads exp/found", "rows exp/found",
            "recover s", "lost", "dup", "stuck", "")
    lines = []
    for r in results:
        s, u, rows = r["submissions"], r["uploads"], r["rows"]
        lines.append((r["scenario"], str(r["requests"]), " ".join(f"{k}:{v}" for k, v in r["answers"].items()),
                      f"{s['expected']}/{s['found']}/{s['accepted']}", f"{u['expected']}/{u['found']}",
                      f"{rows['expected']}/{rows['found']}",
                      str(r["recovered_s"]) if r["recovered_s"] is not None else "not",
                      str(r["lost"]), str(r["duplicated"]), str(r["stuck"]), "ok" if r["ok"] else "FAIL"))
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", action="store_true", help="the test suite's size (about 3 minutes on 2 cores)")
    ap.add_argument("--scenario", action="append", choices=SCENARIOS, help="run only these (repeatable)")
    ap.add_argument("--ini", default=str(stack_mod.TEST_INI))
    ap.add_argument("--port", type=int, default=0, help="the web server's port (default: a free one)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler", choices=("auto", "platform", "stand-in"), default="auto",
                    help="`ckan lgdp scheduler` when it exists (auto), or the stand-in")
    ap.add_argument("--recover", type=float, help="seconds allowed to recover after the last fault")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--json", help="write the results here (default: bench/results/faults_<time>.json)")
    args = ap.parse_args()
    for key, value in stack_mod.service_env().items():  # as ./platform.sh test sets them
        os.environ.setdefault(key, value)
    size = SHORT if args.short else FULL
    if args.recover:
        size = Size(**{**size.__dict__, "recover": args.recover})
    if args.seed is not None:
        random.seed(args.seed)
    if not args.port:
        from receiver import free_port

        args.port = free_port()
    down = [n for n, up in stack_mod.services_up().items() if not up]
    if down:
        print(f"services not running: {', '.join(down)}; start them with bench/run_faults.sh "
              "(or ./platform.sh test)", file=sys.stderr)
        return 2
    names = list(dict.fromkeys(args.scenario or SCENARIOS))
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack on the way out
    run = Run(args, size)
    log(f"fault suite ({'short' if args.short else 'full'} mode): {', '.join(names)}; "
        f"{size.councils} councils x {size.periods} periods, {size.rows} rows a file "
        f"({size.big_rows} for kill-consolidation)")
    results: list[dict[str, Any]] = []
    t0 = time.monotonic()
    try:
        scenarios = run.setup(names)
        run.start_stack()
        for sc in scenarios:
            try:
                results.append(run.run_scenario(sc))
            except Exception as e:  # noqa: BLE001 - report it as the scenario's result, go on
                import traceback

                traceback.print_exc()
                results.append({"scenario": sc.name, "ok": False, "error": f"{type(e).__name__}: {e}",
                                "requests": sc.tally.requests, "answers": {}, "submissions": {}, "uploads": {},
                                "rows": {}, "lost": None, "duplicated": None, "stuck": None, "findings": [],
                                "faults": sc.faults})
    finally:
        try:
            stack_mod.ensure_services()
        finally:
            run.stack.stop()
            if run.obs is not None:
                run.obs.dispose()
    total = round(time.monotonic() - t0, 1)
    print()
    print(f"Fault suite, {'short' if args.short else 'full'} mode, {total} s, scheduler: {run.stack.scheduler}")
    complete = [r for r in results if "error" not in r]
    if complete:
        print(table(complete))
    for r in results:
        if "error" in r:
            print(f"{r['scenario']}: the scenario could not run: {r['error']}")
    out = Path(args.json) if args.json else RESULTS / f"faults_{datetime.datetime.now():%Y%m%d_%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"mode": "short" if args.short else "full", "seconds": total,
                               "scheduler": run.stack.scheduler, "logs": str(run.stack.logs),
                               "size": size.__dict__, "results": results}, indent=2, default=str))
    print(f"written {out}; process logs in {run.stack.logs}")
    return 0 if results and all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
