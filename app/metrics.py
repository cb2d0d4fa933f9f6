"""``/metrics``: what operators watch, in Prometheus' text exposition format.

Why read at scrape time: several gunicorn workers and RQ workers share the work, so a per-process counter
would only ever show one process's share. Every figure here is read from PostgreSQL (the truth) and Redis
(the transport) when Prometheus scrapes, by one custom collector, so every scrape of every web worker
agrees. A stuck pipeline shows at the next scrape: the age gauges grow by the second while nothing moves.

Metric names and what they count (labels in braces):

- ``outreach_inbound_received_total``: inbound texts stored.
- ``outreach_inbound_processed_total``: stored and neither waiting for processing nor given up on.
- ``outreach_inbound_failed_total``: processing gave up (an error class is recorded, no retry is due).
- ``outreach_inbound_pending``, ``outreach_inbound_oldest_pending_age_seconds``: stored, not processed yet
  (a retry is scheduled, ``next_attempt_at`` set, or the status says it waits: ``PENDING_INBOUND``).
  0 when none wait. The webhook stores first (``pending``) and a job processes (app/messaging/inbound.py), so a
  text is pending until its job has run; one whose step raised is ``retry`` until it succeeds or fails.
- ``outreach_outbound_messages{kind_group,status}``: outbound rows by current status (``queued``,
  ``sending``, ``sent``, ``delivered``, ``failed`` …); ``kind_group`` is ``page`` for on-call pages,
  ``text`` for everything sent to patients.
- ``outreach_pages_sent_total``: pages the provider accepted (``sent`` or later).
- ``outreach_outbound_due``, ``outreach_outbound_oldest_due_age_seconds``: queued texts whose time has
  come (``next_attempt_at`` unset or past), and how long the oldest has waited since it became due.
- ``outreach_queue_depth{queue,state}``: RQ jobs ``queued`` / ``started`` / ``scheduled`` / ``failed``;
  ``outreach_queue_oldest_job_age_seconds``: how long the job at the head of the queue has waited.
- ``outreach_escalations_open{level,status}``: ``open`` and ``acknowledged`` escalations by level.
- ``outreach_escalations_sla_breached{level}``: open, unacknowledged and past ``sla_due_at`` now.
- ``outreach_escalation_sla_breaches_total{level}``: escalations ever acknowledged late or still
  unacknowledged past their SLA.
- ``outreach_metrics_source_up{source}``: 1 when ``database`` / ``queue`` answered this scrape, else 0
  (their metrics are then absent, never reported as zero).

No label carries a phone number, a name, a body or an id.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import and_, func, or_, select

from app.models import Escalation, EscalationStatus, Message

if TYPE_CHECKING:
    from flask import Flask, Response

    from app.runtime import Runtime

log = logging.getLogger(__name__)

#: Inbound statuses that mean "stored, processing still to come" (a store-first pipeline's states).
PENDING_INBOUND = ("pending", "processing", "retry")
#: Outbound statuses at which the provider has accepted a text.
ACCEPTED = ("sent", "delivered", "read", "undelivered")
RQ_STATES = ("queued", "started", "scheduled", "failed")


def _age(now: dt.datetime, since: dt.datetime | None) -> float:
    if since is None:
        return 0.0
    if since.tzinfo is None:  # SQLite hands back naive UTC
        since = since.replace(tzinfo=dt.UTC)
    return max(0.0, (now - since).total_seconds())


class OutreachCollector(Collector):
    """Reads every figure at scrape time from SQL and Redis (see the module docstring for the names)."""

    def __init__(self, rt: Runtime):
        self.rt = rt

    def collect(self) -> Iterator[Any]:
        started = time.perf_counter()
        now = self.rt.now()
        up = GaugeMetricFamily(
            "outreach_metrics_source_up", "1 when the source answered this scrape, else 0", labels=["source"]
        )
        try:
            database = list(self._database(now))
            up.add_metric(["database"], 1)
        except Exception as exc:
            log.warning("metrics: database unreadable (%s)", type(exc).__name__)
            database = []
            up.add_metric(["database"], 0)
        yield from database
        try:
            queue = list(self._queue(now))
            up.add_metric(["queue"], 1 if queue else 0)
        except Exception as exc:
            log.warning("metrics: queue unreadable (%s)", type(exc).__name__)
            queue = []
            up.add_metric(["queue"], 0)
        yield from queue
        yield up
        yield GaugeMetricFamily(
            "outreach_metrics_scrape_seconds",
            "Time this scrape spent reading SQL and Redis",
            value=time.perf_counter() - started,
        )

    # -- PostgreSQL ------------------------------------------------------------------------------------

    def _database(self, now: dt.datetime) -> Iterator[Any]:
        inbound = Message.direction == "inbound"
        pending = and_(inbound, or_(Message.next_attempt_at.is_not(None), Message.status.in_(PENDING_INBOUND)))
        failed = and_(inbound, Message.error_code.is_not(None), Message.next_attempt_at.is_(None))
        due = and_(
            Message.direction == "outbound",
            Message.status == "queued",
            or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now),
        )
        open_statuses = (EscalationStatus.OPEN.value, EscalationStatus.ACKNOWLEDGED.value)
        breached_now = and_(
            Escalation.status == EscalationStatus.OPEN.value,
            Escalation.acknowledged_at.is_(None),
            Escalation.sla_due_at.is_not(None),
            Escalation.sla_due_at < now,
        )
        breached_ever = and_(
            Escalation.sla_due_at.is_not(None),
            or_(
                Escalation.acknowledged_at > Escalation.sla_due_at,
                and_(
                    Escalation.acknowledged_at.is_(None), Escalation.resolved_at.is_(None), Escalation.sla_due_at < now
                ),
                and_(Escalation.acknowledged_at.is_(None), Escalation.resolved_at > Escalation.sla_due_at),
            ),
        )
        with self.rt.sessions() as session:
            received, pending_n, failed_n, oldest_pending = session.execute(
                select(
                    func.count(),
                    func.count().filter(pending),
                    func.count().filter(failed),
                    func.min(Message.created_at).filter(pending),
                ).where(inbound)
            ).one()
            by_kind = session.execute(
                select(Message.kind, Message.status, func.count())
                .where(Message.direction == "outbound")
                .group_by(Message.kind, Message.status)
            ).all()
            due_n, oldest_due = session.execute(
                select(func.count(), func.min(func.coalesce(Message.next_attempt_at, Message.created_at))).where(due)
            ).one()
            escalations = session.execute(
                select(
                    Escalation.level,
                    Escalation.status,
                    func.count(),
                    func.count().filter(breached_now),
                    func.count().filter(breached_ever),
                ).group_by(Escalation.level, Escalation.status)
            ).all()

        yield CounterMetricFamily("outreach_inbound_received", "Inbound texts stored", value=received)
        yield CounterMetricFamily(
            "outreach_inbound_processed",
            "Inbound texts stored and processed (not waiting, not given up on)",
            value=received - pending_n - failed_n,
        )
        yield CounterMetricFamily(
            "outreach_inbound_failed", "Inbound texts whose processing gave up (error recorded)", value=failed_n
        )
        yield GaugeMetricFamily(
            "outreach_inbound_pending", "Inbound texts stored and not processed yet", value=pending_n
        )
        yield GaugeMetricFamily(
            "outreach_inbound_oldest_pending_age_seconds",
            "Age of the oldest inbound text not processed yet (0 when none waits)",
            value=_age(now, oldest_pending),
        )

        outbound = GaugeMetricFamily(
            "outreach_outbound_messages", "Outbound texts by current status", labels=["kind_group", "status"]
        )
        by_status: dict[tuple[str, str], int] = {}
        for kind, status, count in by_kind:
            key = ("page" if kind == "page" else "text", status)
            by_status[key] = by_status.get(key, 0) + count
        for (group, status), count in sorted(by_status.items()):
            outbound.add_metric([group, status], count)
        pages = sum(count for (group, status), count in by_status.items() if group == "page" and status in ACCEPTED)
        yield outbound
        yield CounterMetricFamily("outreach_pages_sent", "On-call pages the provider accepted", value=pages)
        yield GaugeMetricFamily("outreach_outbound_due", "Queued outbound texts whose send time has come", value=due_n)
        yield GaugeMetricFamily(
            "outreach_outbound_oldest_due_age_seconds",
            "How long the oldest due outbound text has waited since it became due (0 when none)",
            value=_age(now, oldest_due),
        )

        open_ = GaugeMetricFamily(
            "outreach_escalations_open", "Escalations not resolved, by level and status", labels=["level", "status"]
        )
        breached = GaugeMetricFamily(
            "outreach_escalations_sla_breached",
            "Open escalations nobody acknowledged, past their SLA now",
            labels=["level"],
        )
        breaches = CounterMetricFamily(
            "outreach_escalation_sla_breaches",
            "Escalations acknowledged (or resolved) after their SLA, or still unacknowledged past it",
            labels=["level"],
        )
        now_by_level: dict[str, int] = {}
        ever_by_level: dict[str, int] = {}
        for level, status, count, breached_count, ever_count in escalations:
            if status in open_statuses:
                open_.add_metric([level, status], count)
            now_by_level[level] = now_by_level.get(level, 0) + breached_count
            ever_by_level[level] = ever_by_level.get(level, 0) + ever_count
        for level, count in sorted(now_by_level.items()):
            breached.add_metric([level], count)
        for level, count in sorted(ever_by_level.items()):
            breaches.add_metric([level], count)
        yield open_
        yield breached
        yield breaches

    # -- Redis (RQ) ------------------------------------------------------------------------------------

    def _queue(self, now: dt.datetime) -> Iterator[Any]:
        queue = getattr(self.rt.jobs, "queue", None)
        if queue is None:  # the in-process demo queue: nothing waits anywhere
            return
        from rq.job import Job

        depth = GaugeMetricFamily("outreach_queue_depth", "RQ jobs by state", labels=["queue", "state"])
        depth.add_metric([queue.name, "queued"], queue.count)
        depth.add_metric([queue.name, "started"], queue.started_job_registry.count)
        depth.add_metric([queue.name, "scheduled"], queue.scheduled_job_registry.count)
        depth.add_metric([queue.name, "failed"], queue.failed_job_registry.count)
        yield depth
        oldest = 0.0
        head = queue.get_job_ids(0, 1)
        if head:
            job = Job.fetch(head[0], connection=queue.connection)
            oldest = _age(dt.datetime.now(dt.UTC), job.enqueued_at)
        yield GaugeMetricFamily(
            "outreach_queue_oldest_job_age_seconds",
            "How long the job at the head of the RQ queue has waited (0 when empty)",
            value=oldest,
        )


def metrics_token(rt: Runtime) -> str:
    """The bearer token ``/metrics`` wants: ``METRICS_TOKEN``, else the API's ``API_TOKEN``; "" = off."""
    return rt.settings.metrics_token or rt.settings.api_token


def register_metrics(app: Flask, rt: Runtime) -> None:
    """``GET /metrics`` with ``Authorization: Bearer <METRICS_TOKEN or API_TOKEN>``.

    401 without the right token (and 404 when neither token is set: the endpoint is off); otherwise 200
    with the text exposition format (``prometheus_client.CONTENT_TYPE_LATEST``). One registry per app, so
    tests that build several apps never see each other's collectors.
    """
    from flask import Response, request

    registry = CollectorRegistry(auto_describe=False)
    registry.register(OutreachCollector(rt))

    @app.get("/metrics")
    def metrics() -> Response:
        token = metrics_token(rt)
        if not token:
            return Response("metrics are off: set METRICS_TOKEN or API_TOKEN\n", status=404, mimetype="text/plain")
        header = request.headers.get("Authorization", "")
        given = header[7:] if header.startswith("Bearer ") else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            return Response(
                "a valid bearer token is required\n",
                status=401,
                mimetype="text/plain",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        return Response(generate_latest(registry), status=200, content_type=CONTENT_TYPE_LATEST)
