"""Prometheus metrics: the service layer's ``Metrics`` observer, with prometheus-client.

Every name starts with ``billfold_``; no label carries an account id. Counters and histograms are
kept per process; under ``billfold serve --workers N`` (and ``billfold worker`` processes on the
same host) they go through prometheus-client's multiprocess mode: each process writes its values
to files in ``PROMETHEUS_MULTIPROC_DIR`` and a scrape, answered by any process, sums them all.
``billfold serve`` makes that directory (or uses the one set) and removes what it made on exit.
Gauges that describe the database (backlog, oldest waiting event, worker heartbeat) are read at
scrape time and added as they are, so every process answers the same.

    billfold_events_received_total{type,result}          verified deliveries: stored / duplicate
    billfold_events_processed_total{type,outcome}        processed, ignored, failed, dead, deferred
    billfold_event_processing_seconds{type}              histogram: store and process (webhook), or
                                                         process (worker), to the commit
    billfold_payment_to_credit_seconds                   histogram: Stripe's event ``created`` to
                                                         the ledger commit, payment events
    billfold_ledger_writes_total{operation,unit,outcome} spend / hold / capture / release:
                                                         ok, insufficient (402), refused
    billfold_insufficient_balance_total{unit}            the 402s, by unit
    billfold_http_request_seconds{method,route,status}   histogram, by route template
    billfold_inbox_backlog{status}                       scrape-time: received, failed, dead
    billfold_inbox_oldest_waiting_seconds                scrape-time: age of the oldest event
                                                         not yet processed (0: none)
    billfold_worker_last_heartbeat_seconds               scrape-time: seconds since a worker last
                                                         reported (absent: never)
    billfold_notifications_delivered_total{type}         outbox notifications delivered (every
                                                         endpoint that wants one has it)
    billfold_notifications_retried_total{type}           failed delivery attempts, another one
                                                         scheduled
    billfold_notifications_dead_total{type}              notifications whose last attempt failed

A new metric: a hook on ``billfold.service.observe.Observer`` and its counter here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from billfold.service.observe import Gauge

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CREDIT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 86400.0)


def multiprocess_dir() -> str | None:
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and os.path.isdir(path) else None


class _Scraped(Collector):
    def __init__(self, gauges: Sequence[Gauge]) -> None:
        self.gauges = gauges

    def collect(self) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily] = {}
        for gauge in self.gauges:
            family = families.get(gauge.name)
            if family is None:
                family = GaugeMetricFamily(
                    gauge.name, gauge.help, labels=[k for k, _ in gauge.labels]
                )
                families[gauge.name] = family
            family.add_metric([v for _, v in gauge.labels], gauge.value)
        yield from families.values()


class PrometheusMetrics:
    """One per ``Services``: its own registry (several may live in one process: tests)."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir()
        if self.multiprocess is not None and values.ValueClass is values.MutexValue:
            # prometheus-client chose its value class at import, before the directory was set.
            values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._received = Counter(
            "billfold_events_received",
            "Verified Stripe webhook deliveries, by event type: stored, or a duplicate.",
            ["type", "result"],
            registry=r,
        )
        self._processed = Counter(
            "billfold_events_processed",
            "Events whose processing ended, by type and outcome "
            "(processed, ignored, failed, dead; deferred: left for the worker).",
            ["type", "outcome"],
            registry=r,
        )
        self._duration = Histogram(
            "billfold_event_processing_seconds",
            "Time to store and process a webhook (or to process a claimed event) to its commit.",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._credit = Histogram(
            "billfold_payment_to_credit_seconds",
            "From Stripe's event created time to the ledger commit, for payment events.",
            buckets=CREDIT_BUCKETS,
            registry=r,
        )
        self._writes = Counter(
            "billfold_ledger_writes",
            "Spends, holds, captures and releases answered, by unit and outcome "
            "(ok, insufficient: 402, refused).",
            ["operation", "unit", "outcome"],
            registry=r,
        )
        self._insufficient = Counter(
            "billfold_insufficient_balance",
            "Requests answered 402 insufficient_balance, by unit.",
            ["unit"],
            registry=r,
        )
        self._http = Histogram(
            "billfold_http_request_seconds",
            "HTTP request latency by method, route template and status.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._notifications = {
            outcome: Counter(
                f"billfold_notifications_{outcome}",
                help_,
                ["type"],
                registry=r,
            )
            for outcome, help_ in (
                (
                    "delivered",
                    "Notifications delivered to every endpoint that wants them, by type.",
                ),
                (
                    "retried",
                    "Failed notification delivery attempts with a retry scheduled, by type.",
                ),
                ("dead", "Notifications dead after the last attempt of the schedule, by type."),
            )
        }
        # Labelled children, cached: ``labels()`` costs more than the increment itself.
        self._children: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            with self._lock:
                child = metric.labels(*labels)
                self._children[key] = child
        return child

    # --- the Observer port ---

    def event_received(self, event_type: str, *, duplicate: bool) -> None:
        self._child(self._received, event_type, "duplicate" if duplicate else "stored").inc()

    def event_processed(self, event_type: str, outcome: str, seconds: float) -> None:
        self._child(self._processed, event_type, outcome).inc()
        self._child(self._duration, event_type).observe(seconds)

    def payment_credited(self, seconds: float) -> None:
        self._credit.observe(seconds)

    def ledger_write(self, operation: str, unit: str, outcome: str) -> None:
        self._child(self._writes, operation, unit, outcome).inc()
        if outcome == "insufficient":
            self._child(self._insufficient, unit).inc()

    def notification_finished(self, notification_type: str, outcome: str) -> None:
        counter = self._notifications.get(outcome)
        if counter is not None:
            self._child(counter, notification_type).inc()

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self._child(self._http, method, route, str(status)).observe(seconds)

    # --- a scrape ---

    def render(self, gauges: Sequence[Gauge]) -> tuple[bytes, str]:
        registry = CollectorRegistry()
        if self.multiprocess is not None:
            multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
                registry, path=self.multiprocess
            )
        else:
            registry.register(_Own(self.registry))
        registry.register(_Scraped(gauges))
        return generate_latest(registry), CONTENT_TYPE_LATEST


class _Own(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()
