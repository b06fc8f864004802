"""Prometheus metrics, computed on scrape from the shared state (database and Redis).

Nothing is counted in process memory: with several API processes behind a balancer, a
scrape of any one of them must tell the whole truth. Job counts, durations and alerts
come from the database; queue depth and rate-limit refusals from Redis; authentication
failures from the stored security events. Durations cover jobs finished within the last
``DURATION_WINDOW`` (a histogram per kind), so a scrape stays cheap on a large table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from secops.config import RATE_CLASSES
from secops.db.base import utcnow
from secops.db.models import Alert, Job, SecurityEvent
from secops.kinds import QUEUES
from secops.services.certs import certificate_gauges
from secops.services.redisconn import REDIS_ERRORS

RATE_LIMITED_PREFIX = "secops:metrics:rate_limited:"
ANOMALY_SAMPLED_KEY = "secops:metrics:anomaly_sampled_out"
DURATION_WINDOW = timedelta(hours=1)
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
MAX_DURATION_ROWS = 100_000


def count_rate_limited(kv: redis.Redis, route_class: str) -> None:
    """Count one refused request (shared by all API processes)."""
    try:
        kv.incr(RATE_LIMITED_PREFIX + route_class)
    except REDIS_ERRORS:
        pass


class _Collector(Collector):
    def __init__(self, session: Session, kv: redis.Redis | None) -> None:
        self.session = session
        self.kv = kv

    def collect(self) -> Iterator[Metric]:
        s = self.session
        jobs = GaugeMetricFamily("secops_jobs", "Jobs by kind and status",
                                 labels=["kind", "status"])
        for kind, status, count in s.execute(
            select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status)
        ):
            jobs.add_metric([kind, status], float(count))
        yield jobs
        yield self._durations()
        alerts = GaugeMetricFamily("secops_alerts", "Alerts by severity and status",
                                   labels=["severity", "status"])
        for severity, status, count in s.execute(
            select(Alert.severity, Alert.status, func.count())
            .group_by(Alert.severity, Alert.status)
        ):
            alerts.add_metric([severity, status], float(count))
        yield alerts
        failures = s.scalar(select(func.count()).select_from(SecurityEvent)
                            .where(SecurityEvent.kind == "auth.failure")) or 0
        auth = CounterMetricFamily("secops_auth_failures", "Failed authentications (stored events)")
        auth.add_metric([], float(failures))
        yield auth
        yield from certificate_gauges(s)
        yield from self._redis_metrics()

    def _durations(self) -> Metric:
        since = utcnow() - DURATION_WINDOW
        per_kind: dict[str, list[float]] = defaultdict(list)
        rows = self.session.execute(
            select(Job.kind, Job.started_at, Job.finished_at)
            .where(Job.finished_at >= since, Job.started_at.is_not(None))
            .limit(MAX_DURATION_ROWS)
        )
        for kind, started, finished in rows:
            if started is None or finished is None:
                continue
            per_kind[kind].append(max(0.0, (finished - started).total_seconds()))
        family = HistogramMetricFamily(
            "secops_job_duration_seconds",
            f"Run time of jobs finished in the last {int(DURATION_WINDOW.total_seconds())} s",
            labels=["kind"])
        for kind, values in sorted(per_kind.items()):
            buckets = [(str(b), float(sum(1 for v in values if v <= b))) for b in DURATION_BUCKETS]
            buckets.append(("+Inf", float(len(values))))
            family.add_metric([kind], buckets, sum_value=sum(values))
        return family

    def _redis_metrics(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("secops_queue_depth", "Messages waiting per queue",
                                  labels=["queue"])
        limited = CounterMetricFamily("secops_rate_limited_requests",
                                      "Requests refused by the rate limiter", labels=["class"])
        sampled = CounterMetricFamily("secops_anomaly_lines_sampled_out",
                                      "Log lines anomaly ingestion sampled out under overload")
        up = GaugeMetricFamily("secops_redis_up", "Whether Redis answered this scrape")
        ok = self.kv is not None
        if self.kv is not None:
            try:
                pipe = self.kv.pipeline()
                for queue in QUEUES:
                    pipe.llen(queue)
                classes = RATE_CLASSES
                for route_class in classes:
                    pipe.get(RATE_LIMITED_PREFIX + route_class)
                pipe.get(ANOMALY_SAMPLED_KEY)
                values = pipe.execute()
                for queue, length in zip(QUEUES, values[: len(QUEUES)], strict=True):
                    depth.add_metric([queue], float(length))
                for route_class, value in zip(classes, values[len(QUEUES):-1], strict=True):
                    limited.add_metric([route_class], float(int(value or 0)))
                sampled.add_metric([], float(int(values[-1] or 0)))
            except REDIS_ERRORS:
                ok = False
        up.add_metric([], 1.0 if ok else 0.0)
        yield depth
        yield limited
        yield sampled
        yield up


def render(*, session: Session, kv: redis.Redis | None) -> bytes:
    """The Prometheus text exposition of every SecOps metric."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(session, kv))
    return generate_latest(registry)
