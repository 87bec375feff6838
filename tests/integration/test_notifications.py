"""Notifications to the application: the outbox on SQLite and PostgreSQL.

Written in the transaction of the change (a rollback sends nothing), signed per Standard Webhooks
(checked with the independent ``standardwebhooks`` package), retried on Svix's schedule, dead and
redeliverable; the low-balance alert fires on crossing below and re-arms on a grant, single spends
and batched spends alike.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import standardwebhooks
from sqlalchemy.engine import Engine

from billfold.adapters import notify
from billfold.adapters.catalog_toml import parse_catalog
from billfold.adapters.db.uow import SqlUnitOfWork
from billfold.adapters.metrics import PrometheusMetrics
from billfold.domain import errors
from billfold.domain.notifications import RETRY_DELAYS, EndpointRecord
from billfold.service import ledger as L
from billfold.service.accounts import Accounts, UpdateAccount
from billfold.service.ledger import batch, movement
from billfold.service.notifications import Notifications
from tests.conftest import FakeClock

UNIT = "credits"


class Receiver:
    """The application's endpoint, in-process (httpx's MockTransport): records each request and
    answers with ``status``."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.status = 200

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return httpx.Response(self.status)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


def outbox_on(
    engine: Engine,
    clock: FakeClock,
    receiver: Receiver,
    *,
    endpoints: tuple[EndpointRecord, ...] | None = None,
) -> Notifications:
    sender = notify.HttpSender(transport=httpx.MockTransport(receiver))
    return Notifications(
        lambda: SqlUnitOfWork(engine),
        clock,
        sender,
        static=endpoints
        if endpoints is not None
        else (
            EndpointRecord(id="env_0", url="http://app.test/hooks", secrets=(SECRET_A,), created=0),
        ),
        new_secret=notify.new_secret,
        threads=1,
    )


SECRET_A = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SECRET_B = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


def ledger_on(engine: Engine, clock: FakeClock, *, batch_max: int = 0) -> L.Ledger:
    return L.Ledger(
        lambda: SqlUnitOfWork(engine),
        clock,
        units=frozenset({UNIT, "tokens"}),
        batch_max=batch_max,
        writers=1,
        low={UNIT: 100},
    )


def notes(engine: Engine, type_: str | None = None) -> list[Any]:
    with SqlUnitOfWork(engine) as uow:
        rows = uow.notifications.list(
            status=None, type_=type_, account_id=None, limit=100, starting_after=None
        )
    return list(reversed(rows))  # oldest first


def grant(ledger: L.Ledger, key: str, amount: int, account: str = "user_1") -> None:
    ledger.grant(L.Grant(key=key, account_id=account, unit=UNIT, amount=amount))


def spend(ledger: L.Ledger, key: str, amount: int, account: str = "user_1") -> None:
    ledger.spend(L.Spend(key=key, account_id=account, unit=UNIT, amount=amount))


def alerts(engine: Engine) -> list[tuple[str, int]]:
    return [
        (n.type, n.data["balance"])
        for n in notes(engine)
        if n.type in ("balance.low", "balance.restored")
    ]


# --- the low-balance alert -----------------------------------------------------------------------


def test_given_a_threshold_of_100_then_low_fires_once_on_crossing_and_a_grant_restores_it(
    engine: Engine, clock: FakeClock
) -> None:
    ledger = ledger_on(engine, clock)
    grant(ledger, "g1", 150)  # a new account's first grant: no balance.restored
    assert alerts(engine) == []
    spend(ledger, "s1", 50)  # 100: at the threshold is not below it
    assert alerts(engine) == []
    spend(ledger, "s2", 1)  # 99: crossed
    spend(ledger, "s3", 9)  # 90: already low, nothing more
    assert alerts(engine) == [("balance.low", 99)]
    grant(ledger, "g2", 5)  # 95: still below
    assert alerts(engine) == [("balance.low", 99)]
    grant(ledger, "g3", 5)  # 100: at least the threshold again
    spend(ledger, "s4", 1)  # 99: re-armed, so it fires again
    assert alerts(engine) == [
        ("balance.low", 99),
        ("balance.restored", 100),
        ("balance.low", 99),
    ]
    low = notes(engine, "balance.low")[0]
    assert low.data == {
        "account_id": "user_1",
        "unit": UNIT,
        "balance": 99,
        "previous_balance": 100,
        "threshold": 100,
        "transaction_id": low.data["transaction_id"],
    }
    assert low.data["transaction_id"].startswith("txn_")


def test_given_a_new_account_granted_below_its_threshold_then_no_alert_at_all(
    engine: Engine, clock: FakeClock
) -> None:
    ledger = ledger_on(engine, clock)
    grant(ledger, "g1", 50)  # never was at or above 100: nothing crossed
    spend(ledger, "s1", 10)
    grant(ledger, "g2", 100)  # 140: never alerted, so nothing is restored
    assert alerts(engine) == []


def test_given_spends_that_cross_nothing_then_the_outbox_gets_no_row(
    engine: Engine, clock: FakeClock
) -> None:
    ledger = ledger_on(engine, clock)
    grant(ledger, "g1", 1_000)
    before = len(notes(engine))
    for n in range(5):
        spend(ledger, f"s{n}", 10)
    assert len(notes(engine)) == before


def test_given_batched_spends_then_the_crossing_is_written_in_the_batch_once(
    engine: Engine, clock: FakeClock
) -> None:
    ledger = ledger_on(engine, clock)
    grant(ledger, "g1", 150)
    grant(ledger, "g2", 150, account="user_2")
    commands: list[batch.BatchCommand] = [
        L.Spend(key="b1", account_id="user_1", unit=UNIT, amount=40),  # 110
        L.Spend(key="b2", account_id="user_1", unit=UNIT, amount=20),  # 90: crossed
        L.Spend(key="b3", account_id="user_1", unit=UNIT, amount=5),  # 85
        L.Spend(key="b4", account_id="user_2", unit=UNIT, amount=500),  # 402: undone
        L.Spend(key="b5", account_id="user_2", unit=UNIT, amount=10),  # 140
    ]
    outcomes = batch.run_batch(
        lambda: SqlUnitOfWork(engine), commands, clock(), units=ledger.units, low=ledger.low
    )
    assert isinstance(outcomes[3], errors.InsufficientBalance)
    assert alerts(engine) == [("balance.low", 90)]
    with SqlUnitOfWork(engine) as uow:
        row = uow.ledger.lock_balance("user_1", UNIT)
    assert row is not None
    assert row.low_alert
    grant(ledger, "g3", 50)
    assert alerts(engine) == [("balance.low", 90), ("balance.restored", 135)]


def test_given_a_failed_request_in_a_batch_then_its_alert_is_undone(
    engine: Engine, clock: FakeClock
) -> None:
    ledger = ledger_on(engine, clock)
    grant(ledger, "g1", 150)
    commands: list[batch.BatchCommand] = [
        L.Spend(key="k1", account_id="user_1", unit=UNIT, amount=60),  # 90: crossed
        L.Spend(key="k1", account_id="user_1", unit=UNIT, amount=61),  # reused key: refused
    ]
    outcomes = batch.run_batch(
        lambda: SqlUnitOfWork(engine), commands, clock(), units=ledger.units, low=ledger.low
    )
    assert isinstance(outcomes[1], errors.BillfoldError)
    assert alerts(engine) == [("balance.low", 90)]


def test_given_the_combiner_under_concurrent_spends_then_one_low_alert(
    engine: Engine, clock: FakeClock
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    ledger = ledger_on(engine, clock, batch_max=64)
    grant(ledger, "g1", 200)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: spend(ledger, f"c{n}", 5), range(30)))  # 200 -> 50
    assert [a for a, _ in alerts(engine)] == ["balance.low"]


def test_given_an_account_threshold_then_it_overrides_the_catalog(
    engine: Engine, clock: FakeClock
) -> None:
    catalog = parse_catalog(
        "[units.credits]\nlow_balance = 100\n[units.tokens]\n"
        '[packages.p]\ntitle = "P"\nprice = 100\ncurrency = "usd"\n'
        'grants = [{ unit = "credits", amount = 1 }]\n'
    )
    ledger = ledger_on(engine, clock)
    accounts = Accounts(lambda: SqlUnitOfWork(engine), catalog, clock)
    grant(ledger, "g1", 1_000)
    accounts.update(UpdateAccount(account_id="user_1", values={"low_balance": {UNIT: 500}}))
    spend(ledger, "s1", 400)  # 600
    spend(ledger, "s2", 200)  # 400: below the account's 500
    assert alerts(engine) == [("balance.low", 400)]
    with pytest.raises(errors.UnknownUnit):
        accounts.update(UpdateAccount(account_id="user_1", values={"low_balance": {"gold": 1}}))


# --- every change that lowers a balance, the expiry sweep included -------------------------------


def expiring(ledger: L.Ledger, key: str, amount: int, expires_at: int) -> None:
    ledger.grant(
        L.Grant(key=key, account_id="user_1", unit=UNIT, amount=amount, expires_at=expires_at)
    )


def kinds_of(engine: Engine, transaction_id: str) -> list[str]:
    with SqlUnitOfWork(engine) as uow:
        rows = uow.ledger.list_transactions("user_1", limit=100, starting_after=None)
    return [r.kind for r in rows if r.id == transaction_id]


def test_given_lots_expiring_below_the_threshold_then_the_sweep_writes_balance_low_once(
    engine: Engine, clock: FakeClock
) -> None:
    ledger = ledger_on(engine, clock)
    grant(ledger, "g1", 95)  # forever
    expiring(ledger, "g2", 10, clock() + 100)  # 105: above the threshold of 100
    expiring(ledger, "g3", 10, clock() + 100)  # 115
    assert alerts(engine) == []
    clock.advance(100)
    swept = ledger.sweep()
    assert (swept.grants_expired, swept.amount_expired) == (2, 20)
    # Two expiry transactions (115 -> 105 -> 95): the second crossed, and carries the alert.
    [low] = notes(engine, "balance.low")
    assert (low.data["previous_balance"], low.data["balance"], low.data["threshold"]) == (
        105,
        95,
        100,
    )
    assert kinds_of(engine, low.data["transaction_id"]) == ["expire"]
    with SqlUnitOfWork(engine) as uow:
        row = uow.ledger.lock_balance("user_1", UNIT)
    assert row is not None
    assert (row.low_alert, row.available) == (True, 95)
    assert ledger.sweep().grants_expired == 0
    spend(ledger, "s1", 45)  # 50, already low: nothing more
    assert alerts(engine) == [("balance.low", 95)]
    grant(ledger, "g4", 50)  # 100: re-armed
    assert alerts(engine) == [("balance.low", 95), ("balance.restored", 100)]


def test_given_an_expiry_the_sweep_has_not_written_then_the_next_spend_reports_it_once(
    engine: Engine, clock: FakeClock
) -> None:
    ledger = ledger_on(engine, clock)
    grant(ledger, "g1", 80)
    expiring(ledger, "g2", 70, clock() + 10)  # 150
    clock.advance(10)
    spend(ledger, "s1", 5)  # settles the expiry first (150 -> 80: crossed), then 75
    [low] = notes(engine, "balance.low")
    assert (low.data["previous_balance"], low.data["balance"]) == (150, 80)
    assert kinds_of(engine, low.data["transaction_id"]) == ["expire"]
    assert alerts(engine) == [("balance.low", 80)]


def test_given_an_expiry_inside_a_batch_then_its_crossing_is_written_once(
    engine: Engine, clock: FakeClock
) -> None:
    ledger = ledger_on(engine, clock)
    grant(ledger, "g1", 80)
    expiring(ledger, "g2", 70, clock() + 10)
    clock.advance(10)
    commands: list[batch.BatchCommand] = [
        L.Spend(key="b1", account_id="user_1", unit=UNIT, amount=5),
        L.Spend(key="b2", account_id="user_1", unit=UNIT, amount=5),
    ]
    batch.run_batch(
        lambda: SqlUnitOfWork(engine), commands, clock(), units=ledger.units, low=ledger.low
    )
    assert alerts(engine) == [("balance.low", 80)]
    assert ledger.balances("user_1")[UNIT].available == 70


def test_given_an_expiry_rolled_back_then_its_alert_is_rolled_back_with_it(
    engine: Engine, clock: FakeClock
) -> None:
    from billfold.service.ledger import expiry

    ledger = ledger_on(engine, clock)
    grant(ledger, "g1", 80)
    expiring(ledger, "g2", 70, clock() + 10)
    clock.advance(10)
    with SqlUnitOfWork(engine) as uow:
        expiry.sweep_balance(uow.ledger, "user_1", UNIT, clock(), low=ledger.low)
        assert [
            n.type
            for n in uow.notifications.list(
                status=None, type_="balance.low", account_id=None, limit=10, starting_after=None
            )
        ] == ["balance.low"]
        # leaving without commit rolls back the expiry and its notification together
    assert alerts(engine) == []
    ledger.sweep()
    assert alerts(engine) == [("balance.low", 80)]


def test_given_a_claw_back_of_lots_or_a_dispute_hold_then_the_crossing_is_reported(
    engine: Engine, clock: FakeClock
) -> None:
    from billfold.service.ledger import lots
    from billfold.service.ledger.commands import ClawLots, HoldLots

    ledger = ledger_on(engine, clock)
    ledger.grant(L.Grant(key="g1", account_id="user_1", unit=UNIT, amount=150, origin="ord_1"))
    ledger.grant(L.Grant(key="g2", account_id="user_2", unit=UNIT, amount=150, origin="ord_2"))
    with SqlUnitOfWork(engine) as uow:
        [lot1] = [g.grant_id for g in uow.ledger.lots("ord_1")]
        [lot2] = [g.grant_id for g in uow.ledger.lots("ord_2")]
        lots.claw_lots(
            uow.ledger,
            ClawLots(key="c1", account_id="user_1", unit=UNIT, wants=((lot1, 60),), policy="debt"),
            clock(),
            low=ledger.low,
        )
        lots.hold_lots(
            uow.ledger,
            HoldLots(key="h1", account_id="user_2", unit=UNIT, wants=((lot2, 70),), ttl_seconds=60),
            clock(),
            low=ledger.low,
        )
        uow.commit()
    lows = {n.account_id: n.data["balance"] for n in notes(engine, "balance.low")}
    assert lows == {"user_1": 90, "user_2": 80}
    with pytest.raises(errors.InsufficientBalance):
        spend(ledger, "s1", 81, account="user_2")  # held by the dispute
    assert len(notes(engine, "balance.low")) == 2


# --- the outbox ----------------------------------------------------------------------------------


def test_given_a_rollback_then_nothing_is_in_the_outbox_and_nothing_is_sent(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    with SqlUnitOfWork(engine) as uow:
        movement.grant(
            uow.ledger,
            L.Grant(key="rolled", account_id="user_1", unit=UNIT, amount=10),
            clock(),
            low={UNIT: 100},
        )
        # leaving without commit rolls back
    outbox = outbox_on(engine, clock, receiver)
    assert notes(engine) == []
    assert outbox.deliver_due("w").claimed == 0
    assert receiver.requests == []


def test_given_a_committed_grant_then_it_is_delivered_signed_per_standard_webhooks(
    engine: Engine, receiver: Receiver
) -> None:
    clock = FakeClock(int(time.time()))  # the verifier checks the timestamp against now
    ledger = ledger_on(engine, clock)
    grant(ledger, "g1", 250)
    outbox = outbox_on(engine, clock, receiver)
    report = outbox.deliver_due("w")
    assert (report.claimed, report.delivered) == (1, 1)
    [request] = receiver.requests
    # An independent implementation verifies it (and would raise on a bad signature).
    payload = standardwebhooks.Webhook(SECRET_A).verify(request.content, dict(request.headers))
    assert payload["type"] == "credits.granted"
    assert payload["data"]["account_id"] == "user_1"
    assert payload["data"]["amount"] == 250
    assert set(payload) == {"type", "timestamp", "data"}
    assert request.headers["webhook-id"].startswith("msg_")
    assert request.headers["webhook-timestamp"] == str(clock())
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(SECRET_B).verify(request.content, dict(request.headers))
    assert notes(engine)[0].status == "delivered"
    assert outbox.deliver_due("w").claimed == 0  # delivered once


def test_given_a_rotated_secret_then_both_secrets_verify(
    engine: Engine, receiver: Receiver
) -> None:
    clock = FakeClock(int(time.time()))  # the verifier checks the timestamp against now
    outbox = outbox_on(engine, clock, receiver, endpoints=())
    created = outbox.create_endpoint("http://app.test/in", types=["credits.granted"])
    assert created.secret.startswith("whsec_")
    rotated = outbox.rotate_secret(created.endpoint.id)
    assert rotated.endpoint.secrets == (rotated.secret, created.secret)
    grant(ledger_on(engine, clock), "g1", 10)
    outbox.deliver_due("w")
    [request] = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (created.secret, rotated.secret):
        standardwebhooks.Webhook(secret).verify(request.content, dict(request.headers))


def test_given_no_endpoint_at_all_then_a_round_records_them_delivered_to_no_one(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    """With no endpoint configured or registered, a round writes what it would write had it
    sent each notification to every endpoint (none), in one statement: delivered, one attempt,
    counted in the metrics; a round with an endpoint that wants none of them records the same."""
    metrics = PrometheusMetrics()
    outbox = outbox_on(engine, clock, receiver, endpoints=())
    outbox.observer = metrics
    for n in range(3):
        grant(ledger_on(engine, clock), f"g{n}", 10 + n, account=f"user_{n}")
    report = outbox.deliver_due("w", limit=2)
    assert (report.claimed, report.delivered, report.failed, report.dead) == (2, 2, 0, 0)
    assert outbox.deliver_due("w").delivered == 1
    assert outbox.deliver_due("w").claimed == 0
    rows = notes(engine)
    assert [(n.status, n.attempts, n.delivered_to, n.last_error) for n in rows] == [
        ("delivered", 1, (), None)
    ] * 3
    assert receiver.requests == []
    finished = metrics.registry.get_sample_value(
        "billfold_notifications_delivered_total", {"type": "credits.granted"}
    )
    assert finished == 3
    # The same record as a round that had an endpoint wanting none of them.
    other = outbox_on(engine, clock, receiver, endpoints=())
    other.create_endpoint("http://app.test/in", types=["balance.low"])
    grant(ledger_on(engine, clock), "g9", 10, account="user_9")
    assert other.deliver_due("w").delivered == 1
    assert [(n.status, n.attempts, n.delivered_to) for n in notes(engine)][-1] == (
        "delivered",
        1,
        (),
    )


def test_given_an_endpoint_that_wants_other_types_then_it_gets_none_of_these(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    outbox = outbox_on(engine, clock, receiver, endpoints=())
    outbox.create_endpoint("http://app.test/in", types=["balance.low"])
    grant(ledger_on(engine, clock), "g1", 10)
    assert outbox.deliver_due("w").delivered == 1  # nothing wanted it: done
    assert receiver.requests == []
    with pytest.raises(errors.ValidationError):
        outbox.create_endpoint("http://app.test/in", types=["no.such"])


def test_given_a_failing_endpoint_then_retries_follow_svix_schedule_then_dead_then_redelivered(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    receiver.status = 503
    grant(ledger_on(engine, clock), "g1", 10)
    outbox = outbox_on(engine, clock, receiver)
    ids = set()
    for attempt, delay in enumerate(RETRY_DELAYS):
        if delay:
            clock.advance(delay - 1)
            assert outbox.deliver_due("w").claimed == 0, f"attempt {attempt + 1} came early"
            clock.advance(1)
        report = outbox.deliver_due("w")
        assert report.claimed == 1, f"attempt {attempt + 1} did not come on time"
        ids.add(receiver.requests[-1].headers["webhook-id"])
    [row] = notes(engine)
    assert row.status == "dead"
    assert row.attempts == len(RETRY_DELAYS) == 8
    assert row.last_error == "env_0: HTTP 503"
    assert len(ids) == 1  # the same webhook-id on every retry
    clock.advance(10 * 86_400)
    assert outbox.deliver_due("w").claimed == 0  # dead stays dead
    receiver.status = 204
    outbox.redeliver(row.id)
    assert outbox.deliver_due("w").delivered == 1
    assert receiver.requests[-1].headers["webhook-id"] == row.id
    assert notes(engine)[0].status == "delivered"


def test_given_a_timeout_then_the_attempt_failed(engine: Engine, clock: FakeClock) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer in 15 s", request=request)

    sender = notify.HttpSender(transport=httpx.MockTransport(slow))
    outbox = Notifications(
        lambda: SqlUnitOfWork(engine),
        clock,
        sender,
        static=(EndpointRecord(id="env_0", url="http://app.test/x", secrets=(SECRET_A,)),),
        new_secret=notify.new_secret,
    )
    grant(ledger_on(engine, clock), "g1", 10)
    assert outbox.deliver_due("w").failed == 1
    [row] = notes(engine)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, clock() + 5)
    assert row.last_error == "env_0: timed out"


def test_given_two_endpoints_and_one_failing_then_the_retry_goes_only_to_that_one(
    engine: Engine, clock: FakeClock
) -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(500 if "bad" in str(request.url) else 200)

    outbox = Notifications(
        lambda: SqlUnitOfWork(engine),
        clock,
        notify.HttpSender(transport=httpx.MockTransport(answer)),
        static=(
            EndpointRecord(id="env_0", url="http://good.test/", secrets=(SECRET_A,)),
            EndpointRecord(id="env_1", url="http://bad.test/", secrets=(SECRET_B,)),
        ),
        new_secret=notify.new_secret,
    )
    grant(ledger_on(engine, clock), "g1", 10)
    outbox.deliver_due("w")
    clock.advance(5)
    outbox.deliver_due("w")
    assert seen == ["http://good.test/", "http://bad.test/", "http://bad.test/"]


def test_the_admin_list_pages_and_filters(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    ledger = ledger_on(engine, clock)
    grant(ledger, "g1", 150)
    grant(ledger, "g2", 10, account="user_2")
    spend(ledger, "s1", 60)
    outbox = outbox_on(engine, clock, receiver)
    first, more = outbox.page(limit=2)
    assert more
    assert len(first) == 2
    rest, more = outbox.page(limit=2, starting_after=first[-1].id)
    assert not more
    assert len(rest) == 1
    assert [n.type for n in (*first, *rest)] == [
        "balance.low",
        "credits.granted",
        "credits.granted",
    ]
    only, _ = outbox.page(type_="credits.granted", account_id="user_2")
    assert [n.data["amount"] for n in only] == [10]
    pending, _ = outbox.page(status="pending")
    assert len(pending) == 3
    with pytest.raises(errors.CursorNotFound):
        outbox.page(starting_after="msg_nothing")


def test_a_reconciliation_run_with_open_drift_writes_one_notification(
    engine: Engine, clock: FakeClock
) -> None:
    from billfold.service import outbox as ob

    with SqlUnitOfWork(engine) as uow:
        healed = {"paid_not_granted": {"found": 1, "healed": 1, "open": 0}}
        assert (
            ob.reconciliation_drift(uow.ledger, run_id="rec_1", drift=healed, items=[], now=clock())
            is None
        )
        item = {"class": "amount_mismatch", "stripe_ids": ["cs_1"], "amount": 499}
        ob.reconciliation_drift(
            uow.ledger,
            run_id="rec_2",
            drift={"amount_mismatch": {"found": 1, "healed": 0, "open": 1}},
            items=[item],
            now=clock(),
        )
        uow.commit()
    [row] = notes(engine)
    assert (row.type, row.account_id) == ("reconciliation.drift", None)
    assert row.data["run_id"] == "rec_2"
    assert row.data["items"] == [item]


def test_a_batchs_alert_commits_in_the_batchs_own_transaction(
    engine: Engine, clock: FakeClock
) -> None:
    """The outbox row of a crossing is written with the spend that crossed, in one transaction:
    on PostgreSQL the batch commits with its writes, so its notifications go before them, not in
    a transaction of their own after (a crash between would have lost the alert)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's batch commits once, at the unit of work's end")
    ledger = ledger_on(engine, clock)
    grant(ledger, "g1", 150)
    commands: list[batch.BatchCommand] = [
        L.Spend(key="x1", account_id="user_1", unit=UNIT, amount=60),  # 90: crossed
    ]
    outcomes = batch.run_batch(
        lambda: SqlUnitOfWork(engine), commands, clock(), units=ledger.units, low=ledger.low
    )
    assert isinstance(outcomes[0], L.SpendResult)
    with engine.connect() as conn:
        spent = conn.execute(
            sa.text("SELECT xmin::text FROM ledger_transactions WHERE id = :id"),
            {"id": outcomes[0].transaction_id},
        ).scalar_one()
        alerted = conn.execute(
            sa.text("SELECT xmin::text FROM notifications WHERE type = 'balance.low'")
        ).scalar_one()
    assert alerted == spent
