"""What the notifications outbox costs on the webhook and spend paths, measured in one run.

Two arms on the same database and process, interleaved (A B A B ...) so that a noisy machine
weighs on both alike: ``outbox`` (as shipped: a paid checkout writes ``credits.granted`` and
``order.fulfilled`` in its transaction; a spend reads its threshold from the balance row it locks
and writes nothing unless it crosses it) and ``none`` (the outbox's writes replaced by no-ops).

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
from billfold.settings import load_settings

SECRET = "whsec_bench_outbox"


@contextmanager
def arm(name: str) -> Iterator[None]:
    if name == "outbox":
        yield
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
            for name in ("outbox", "none") if r % 2 == 0 else ("none", "outbox"):
                for path, run in paths.items():
                    with arm(name):
                        seconds = run(services, args.n, f"{name}{r}{time.time_ns()}")
                    results.setdefault((path, name), []).append(seconds)
    finally:
        services.close()
    for path in paths:
        with_outbox = statistics.median(results[(path, "outbox")])
        without = statistics.median(results[(path, "none")])
        print(
            f"{path:8} outbox {with_outbox * 1000:7.3f} ms/op   none {without * 1000:7.3f} ms/op"
            f"   cost {100 * (with_outbox / without - 1):+6.1f}%"
        )


if __name__ == "__main__":
    main()
