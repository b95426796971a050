"""Prometheus metrics at `/metrics`.

Counters and histograms are kept per process; `memberhub serve` runs several worker
processes, so it points PROMETHEUS_MULTIPROC_DIR at a folder in the data dir (emptied at
each start) where every process writes its own, and a scrape adds them up. Gauges that
describe shared state (the job queue, the job consumer's heartbeat) are read at scrape time.

The endpoint answers only to `Authorization: Bearer $MEMBERHUB_METRICS_TOKEN` when that is
set, and otherwise only to clients on this host (loopback).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from memberhub.core.metrics_folder import MULTIPROC_ENV

REQUESTS = Counter("memberhub_http_requests", "HTTP requests answered, by route pattern and status",
                   ["method", "route", "status"])
LATENCY = Histogram("memberhub_http_request_duration_seconds", "Time to answer, by route pattern",
                    ["method", "route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
EARNS = Counter("memberhub_earns", "Purchases recorded (each once, replays not counted)")
POINTS_EARNED = Counter("memberhub_points_earned", "Points booked by purchases")
CHECKOUTS = Counter("memberhub_checkouts", "Till checkouts completed")
DB_ERRORS = Counter("memberhub_database_errors", "Requests the database could not serve, by kind "
                    "(locked: gave up waiting for a lock; unavailable: down or unreachable)", ["kind"])

_LOCAL = frozenset({"127.0.0.1", "::1"})


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)


def earn_recorded(points: int) -> None:
    EARNS.inc()
    if points > 0:
        POINTS_EARNED.inc(points)


def checkout_completed() -> None:
    CHECKOUTS.inc()


def database_error(exc: BaseException) -> None:
    text = str(exc).lower()
    DB_ERRORS.labels("locked" if ("locked" in text or "lock timeout" in text or "deadlock" in text)
                     else "unavailable").inc()


class SharedStateCollector(Collector):
    """The job queue's depth and the consumer's last heartbeat, read when scraped."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from memberhub.core.health import consumer_heartbeat_age, jobs_pending

        pending = jobs_pending()
        if pending is not None:
            yield GaugeMetricFamily("memberhub_jobs_pending", "Jobs waiting in the queue", value=pending)
        age = consumer_heartbeat_age()
        if age is not None:
            yield GaugeMetricFamily("memberhub_jobs_consumer_heartbeat_age_seconds",
                                    "Seconds since a job consumer last ran its heartbeat job (it runs "
                                    "every minute: a growing age means jobs are not being taken)",
                                    value=age)


def _scrape() -> bytes:
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        for collector in (REQUESTS, LATENCY, EARNS, POINTS_EARNED, CHECKOUTS, DB_ERRORS):
            registry.register(collector)
    registry.register(SharedStateCollector())
    return generate_latest(registry)


def allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        given = request.META.get("HTTP_AUTHORIZATION", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    return request.META.get("REMOTE_ADDR") in _LOCAL


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        return HttpResponse("metrics are served to this host only, or with the metrics token\n",
                            status=403, content_type="text/plain; charset=utf-8")
    return HttpResponse(_scrape(), content_type=CONTENT_TYPE_LATEST)

