"""What the notifications outbox and the metrics cost on the webhook and spend paths, in one run.

Three arms on the same database and process, interleaved (the order turns each round) so that a
noisy machine weighs on all alike: ``outbox`` (as shipped: a paid checkout writes
``credits.granted`` and ``order.fulfilled`` in its transaction; a spend reads its threshold from
the balance row it locks and writes nothing unless it crosses it; every webhook and spend counted
by the Prometheus observer), ``none`` (the outbox's writes replaced by no-ops) and ``nometrics``
(the outbox as shipped, the service layer's observers replaced by ``NullObserver``). There is no
setting that turns metrics or the outbox off: both are part of what billfold promises, so the
baselines are made here, in the benchmark's process only. The paths are called in-process (no
HTTP), so the per-request latency histogram of the HTTP middleware is not part of ``nometrics``'
saving.

    .venv/bin/python -m bench.outbox_cost --database-url sqlite:////tmp/outbox.db --n 300
    .venv/bin/python -m bench.outbox_cost --database-url postgresql://postgres@127.0.0.1/db
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tests.builders import stripe_events as se

from billfold.bootstrap import Services, build, schema_only
from billfold.service import outbox
from billfold.service.ledger import Grant, Spend
from billfold.service.observe import NullObserver
from billfold.settings import load_settings

SECRET = "whsec_bench_outbox"


ARMS = ("outbox", "none", "nometrics")


@contextmanager
def arm(name: str, services: Services) -> Iterator[None]:
    if name == "outbox":
        yield
        return
    if name == "nometrics":
        inbox, ledger, notifications = services.inbox, services.ledger, services.notifications
        saved = (inbox.observer, ledger.observer, notifications.observer)
        inbox.observer = ledger.observer = notifications.observer = NullObserver()
        try:
            yield
        finally:
            inbox.observer, ledger.observer, notifications.observer = saved
        return
    emit, watch = outbox.emit, outbox.watch_balance

    def no_emit(*args: Any, **kwargs: Any) -> Any:
        return None

    def no_watch(store: Any, before: Any, after: Any, *args: Any, **kwargs: Any) -> Any:
        return after

    outbox.emit, outbox.watch_balance = no_emit, no_watch  # type: ignore[assignment]
    try:
        yield
    finally:
        outbox.emit, outbox.watch_balance = emit, watch  # type: ignore[method-assign]


def webhooks(services: Services, n: int, tag: str) -> float:
    deliveries = []
    for i in range(n):
        event = se.checkout_session_completed(
            metadata={"billfold_account": f"wh_{tag}_{i}", "billfold_package": "starter"},
            amount_total=499,
        )
        body, headers = se.signed(event, SECRET)
        deliveries.append((body, headers["Stripe-Signature"]))
    started = time.perf_counter()
    for body, signature in deliveries:
        services.inbox.receive_webhook(body, signature)
    return (time.perf_counter() - started) / n


def spends(services: Services, n: int, tag: str) -> float:
    account = f"sp_{tag}"
    services.ledger.grant(Grant(key=f"g-{tag}", account_id=account, unit="credits", amount=10**9))
    started = time.perf_counter()
    for i in range(n):
        services.ledger.spend(
            Spend(key=f"s-{tag}-{i}", account_id=account, unit="credits", amount=1)
        )
    return (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    settings = load_settings(database_url=args.database_url, stripe_webhook_secrets=SECRET)
    maintenance = schema_only(settings)
    maintenance.upgrade()
    maintenance.close()
    services = build(settings)
    results: dict[tuple[str, str], list[float]] = {}
    paths: dict[str, Callable[[Services, int, str], float]] = {
        "webhook": webhooks,
        "spend": spends,
    }
    try:
        for r in range(args.rounds):
            for name in ARMS[r % len(ARMS) :] + ARMS[: r % len(ARMS)]:
                for path, run in paths.items():
                    with arm(name, services):
                        seconds = run(services, args.n, f"{name}{r}{time.time_ns()}")
                    results.setdefault((path, name), []).append(seconds)
    finally:
        services.close()
    for path in paths:
        shipped = statistics.median(results[(path, "outbox")])
        without = statistics.median(results[(path, "none")])
        unmetered = statistics.median(results[(path, "nometrics")])
        print(
            f"{path:8} shipped {shipped * 1000:7.3f} ms/op"
            f"   no outbox {without * 1000:7.3f} ms/op ({100 * (shipped / without - 1):+5.1f}%)"
            f"   no metrics {unmetered * 1000:7.3f} ms/op"
            f" ({100 * (shipped / unmetered - 1):+5.1f}%)"
        )


if __name__ == "__main__":
    main()
