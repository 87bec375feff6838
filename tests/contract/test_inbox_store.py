"""The event inbox: the event id is the gate; statuses, attempts, leases and the worker's queue."""

from __future__ import annotations

import pytest

from billfold.domain import errors
from billfold.domain.records import EventAttempt, EventRecord, EventStatus, TimeRange
from billfold.service.ports import UnitOfWork
from tests.contract.backends import T0, Backend, attempt, disagrees, inbound


def stored(backend: Backend, event_id: str) -> EventRecord:
    with backend.uow() as uow:
        record = uow.inbox.get(event_id)
    assert record is not None, event_id
    return record


def receive(
    backend: Backend, event_id: str, *, now: int = T0, lease: tuple[str, int] | None = None
) -> None:
    with backend.uow() as uow:
        assert uow.inbox.insert(inbound(event_id), now=now, lease=lease)
        uow.commit()


def set_status(uow: UnitOfWork, event_id: str, status: EventStatus, now: int = T0) -> None:
    """Put an event in ``status`` the way the service does."""
    if status in ("processed", "ignored"):
        assert uow.inbox.finish(
            event_id, status=status, outcome="done", now=now, from_statuses=("received",)
        )
    elif status in ("failed", "dead"):
        uow.inbox.fail(
            event_id,
            error="boom",
            now=now,
            next_attempt_at=None if status == "dead" else now + 10,
            dead=status == "dead",
        )


def test_given_a_new_event_then_it_is_stored_verbatim_and_received(backend: Backend) -> None:
    event = inbound("evt_1", payload='{"id": "evt_1",  "x": "é"}', created=T0 - 5)
    with backend.uow() as uow:
        assert uow.inbox.insert(event, now=T0, lease=("inline:1", T0 + 60)) is True
        uow.commit()
    assert stored(backend, "evt_1") == EventRecord(
        id="evt_1",
        type="checkout.session.completed",
        livemode=False,
        api_version="2025-03-31.basil",
        stripe_created=T0 - 5,
        object_id="cs_test_1",
        payload='{"id": "evt_1",  "x": "é"}',
        status="received",
        attempts=0,
        last_error=None,
        outcome=None,
        received_at=T0,
        processed_at=None,
        next_attempt_at=T0,
        lease_owner="inline:1",
        lease_expires_at=T0 + 60,
    )


def test_given_an_event_already_in_the_inbox_then_insert_stores_nothing(backend: Backend) -> None:
    receive(backend, "evt_1")
    with backend.uow() as uow:
        again = uow.inbox.insert(
            inbound("evt_1", type_="charge.refunded", payload="{}"), now=T0 + 9, lease=None
        )
        uow.commit()
    record = stored(backend, "evt_1")
    assert again is False
    assert (record.type, record.received_at, record.payload) == (
        "checkout.session.completed",
        T0,
        '{"id": "evt"}',
    )


def test_given_an_event_then_get_leaves_the_payload_out_when_asked_and_lock_reads_it_all(
    backend: Backend,
) -> None:
    receive(backend, "evt_1")
    with backend.uow() as uow:
        bare = uow.inbox.get("evt_1", with_payload=False)
        locked = uow.inbox.lock("evt_1")
        missing = (uow.inbox.get("evt_x"), uow.inbox.lock("evt_x"))
    assert bare is not None
    assert locked is not None
    assert bare.payload is None
    assert locked.payload == '{"id": "evt"}'
    assert missing == (None, None)


def test_given_a_batch_of_events_then_insert_many_stores_the_new_ones_and_names_them(
    backend: Backend,
) -> None:
    receive(backend, "evt_old")
    with backend.uow() as uow:
        stored_now = uow.inbox.insert_many(
            [inbound("evt_1", payload='{"id": "evt_1"}'), inbound("evt_old"), inbound("evt_2")],
            now=T0 + 3,
        )
        assert uow.inbox.insert_many([], now=T0) == set()
        uow.commit()
    assert stored_now == {"evt_1", "evt_2"}
    first = stored(backend, "evt_1")
    assert (first.status, first.payload, first.received_at, first.lease_owner) == (
        "received",
        '{"id": "evt_1"}',
        T0 + 3,
        None,
    )
    assert stored(backend, "evt_old").received_at == T0


def test_given_received_events_then_finish_many_from_received_records_each_outcome_from_it(
    backend: Backend,
) -> None:
    for event_id in ("evt_1", "evt_2", "evt_3"):
        receive(backend, event_id)
    with backend.uow() as uow:
        uow.inbox.fail("evt_3", error="boom", now=T0, next_attempt_at=T0 + 5, dead=False)
        uow.inbox.finish_many(
            [
                ("evt_1", "processed", "order ord_1 fulfilled"),
                ("evt_2", "ignored", None),
                ("evt_3", "processed", "not from failed"),
                ("evt_x", "processed", "no such event"),
            ],
            now=T0 + 7,
            from_statuses=("received",),
        )
        uow.inbox.finish_many([], now=T0 + 7, from_statuses=("received",))
        uow.commit()
    one, two, three = (stored(backend, f"evt_{i}") for i in (1, 2, 3))
    assert (one.status, one.outcome, one.processed_at, one.attempts) == (
        "processed",
        "order ord_1 fulfilled",
        T0 + 7,
        1,
    )
    assert (two.status, two.outcome, two.next_attempt_at) == ("ignored", None, None)
    assert (three.status, three.outcome) == ("failed", None)


def test_given_a_received_event_then_finish_records_the_outcome_once(backend: Backend) -> None:
    receive(backend, "evt_1", lease=("w", T0 + 60))
    with backend.uow() as uow:
        uow.inbox.fail("evt_1", error="boom", now=T0, next_attempt_at=T0 + 5, dead=False)
        first = uow.inbox.finish(
            "evt_1",
            status="processed",
            outcome="order fulfilled",
            now=T0 + 7,
            from_statuses=("received", "failed"),
        )
        second = uow.inbox.finish(
            "evt_1", status="ignored", outcome="late", now=T0 + 8, from_statuses=("received",)
        )
        none = uow.inbox.finish(
            "evt_1", status="ignored", outcome="x", now=T0 + 8, from_statuses=()
        )
        missing = uow.inbox.finish(
            "evt_x", status="ignored", outcome="x", now=T0, from_statuses=("received",)
        )
        uow.commit()
    record = stored(backend, "evt_1")
    assert (first, second, none, missing) == (True, False, False, False)
    assert (
        record.status,
        record.outcome,
        record.processed_at,
        record.attempts,
        record.last_error,
        record.next_attempt_at,
        record.lease_owner,
        record.lease_expires_at,
    ) == ("processed", "order fulfilled", T0 + 7, 2, None, None, None, None)


def test_given_an_unknown_status_then_the_check_refuses_it(backend: Backend) -> None:
    receive(backend, "evt_1")
    with pytest.raises(errors.ConstraintViolation) as refused:
        attempt(
            backend,
            lambda uow: uow.inbox.finish(
                "evt_1",
                status="lost",  # type: ignore[arg-type]  # what the CHECK is for
                outcome=None,
                now=T0,
                from_statuses=("received",),
            ),
        )
    assert refused.value.constraint == "ck_events_status_known"


@pytest.mark.parametrize("dead", [False, True])
def test_given_a_failure_then_fail_counts_the_attempt_and_drops_the_lease(
    backend: Backend, dead: bool
) -> None:
    receive(backend, "evt_1", lease=("w", T0 + 60))
    with backend.uow() as uow:
        uow.inbox.fail(
            "evt_1", error="RuntimeError: no", now=T0 + 1, next_attempt_at=T0 + 9, dead=dead
        )
        uow.commit()
    record = stored(backend, "evt_1")
    assert (
        record.status,
        record.attempts,
        record.last_error,
        record.next_attempt_at,
        record.processed_at,
        record.lease_owner,
        record.lease_expires_at,
    ) == ("dead" if dead else "failed", 1, "RuntimeError: no", T0 + 9, None, None, None)


@pytest.mark.parametrize("status", ["processed", "ignored", "dead"])
def test_given_a_settled_or_dead_event_then_fail_changes_nothing(
    backend: Backend, status: EventStatus
) -> None:
    receive(backend, "evt_1")
    with backend.uow() as uow:
        set_status(uow, "evt_1", status)
        uow.commit()
    before = stored(backend, "evt_1")
    with backend.uow() as uow:
        uow.inbox.fail("evt_1", error="late", now=T0 + 5, next_attempt_at=T0 + 9, dead=False)
        uow.commit()
    assert stored(backend, "evt_1") == before


def test_given_an_event_that_needs_stripe_then_release_hands_it_to_the_worker(
    backend: Backend,
) -> None:
    receive(backend, "evt_1", lease=("inline:1", T0 + 60))
    receive(backend, "evt_2")
    with backend.uow() as uow:
        set_status(uow, "evt_2", "processed")
        uow.inbox.release("evt_1", now=T0 + 2, note="needs Stripe")
        uow.inbox.release("evt_2", now=T0 + 2, note="needs Stripe")
        uow.commit()
    one, two = stored(backend, "evt_1"), stored(backend, "evt_2")
    assert (
        one.status,
        one.lease_owner,
        one.lease_expires_at,
        one.next_attempt_at,
        one.outcome,
    ) == (
        "received",
        None,
        None,
        T0 + 2,
        "needs Stripe",
    )
    assert (two.status, two.outcome) == ("processed", "done")


def test_given_a_claimed_event_then_unlease_frees_only_its_owners_lease(backend: Backend) -> None:
    receive(backend, "evt_1")
    receive(backend, "evt_2")
    before = stored(backend, "evt_1")
    with backend.uow() as uow:
        claimed = uow.inbox.claim(owner="w1", now=T0 + 1, lease_seconds=60, limit=2)
        assert sorted(claimed) == ["evt_1", "evt_2"]
        assert uow.inbox.unlease("evt_1", owner="w2") is False
        assert uow.inbox.unlease("evt_1", owner="w1") is True
        assert uow.inbox.unlease("evt_missing", owner="w1") is False
        uow.commit()
    one, two = stored(backend, "evt_1"), stored(backend, "evt_2")
    assert (one.status, one.lease_owner, one.lease_expires_at) == ("received", None, None)
    assert (one.next_attempt_at, one.outcome, one.attempts) == (
        before.next_attempt_at,
        before.outcome,
        before.attempts,
    )
    assert (two.lease_owner, two.lease_expires_at) == ("w1", T0 + 61)
    with backend.uow() as uow:
        assert uow.inbox.claim(owner="w3", now=T0 + 2, lease_seconds=60, limit=5) == ["evt_1"]
        uow.commit()


def test_given_due_events_then_claim_leases_the_oldest_first(backend: Backend) -> None:
    receive(backend, "evt_c", now=T0 + 2)
    receive(backend, "evt_b", now=T0 + 1)
    receive(backend, "evt_a", now=T0 + 1)
    receive(backend, "evt_d", now=T0 + 3)
    with backend.uow() as uow:
        claimed = uow.inbox.claim(owner="worker-1", now=T0 + 10, lease_seconds=60, limit=3)
        uow.commit()
    assert sorted(claimed) == ["evt_a", "evt_b", "evt_c"]
    for event_id in claimed:
        record = stored(backend, event_id)
        assert (record.lease_owner, record.lease_expires_at) == ("worker-1", T0 + 70)
    assert stored(backend, "evt_d").lease_owner is None


def test_given_leases_and_backoff_then_claim_takes_only_what_is_due_and_unleased(
    backend: Backend,
) -> None:
    receive(backend, "evt_leased", lease=("inline:1", T0 + 60))
    receive(backend, "evt_lease_over", lease=("inline:2", T0 + 5))
    receive(backend, "evt_waiting")
    receive(backend, "evt_failed_due")
    receive(backend, "evt_done")
    receive(backend, "evt_dead")
    with backend.uow() as uow:
        uow.inbox.fail("evt_waiting", error="e", now=T0, next_attempt_at=T0 + 100, dead=False)
        uow.inbox.fail("evt_failed_due", error="e", now=T0, next_attempt_at=T0 + 10, dead=False)
        set_status(uow, "evt_done", "processed")
        set_status(uow, "evt_dead", "dead")
        uow.commit()
    with backend.uow() as uow:
        claimed = uow.inbox.claim(owner="w", now=T0 + 10, lease_seconds=30, limit=10)
        again = uow.inbox.claim(owner="w2", now=T0 + 10, lease_seconds=30, limit=10)
        later = uow.inbox.claim(owner="w3", now=T0 + 100, lease_seconds=30, limit=10)
        uow.commit()
    assert sorted(claimed) == ["evt_failed_due", "evt_lease_over"]
    assert again == []  # leased by the first claim
    # Later, every lease has ended (the first claim's too) and the backoff has passed.
    assert sorted(later) == ["evt_failed_due", "evt_lease_over", "evt_leased", "evt_waiting"]


def test_given_a_failed_or_dead_event_then_an_operator_retry_makes_it_due_now(
    backend: Backend,
) -> None:
    for event_id in ("evt_failed", "evt_dead", "evt_received", "evt_done"):
        receive(backend, event_id, lease=("w", T0 + 60))
    with backend.uow() as uow:
        set_status(uow, "evt_failed", "failed")
        set_status(uow, "evt_dead", "dead")
        set_status(uow, "evt_done", "ignored")
        answers = {
            e: uow.inbox.retry(e, now=T0 + 30)
            for e in ("evt_failed", "evt_dead", "evt_received", "evt_done", "evt_x")
        }
        uow.commit()
    assert answers == {
        "evt_failed": True,
        "evt_dead": True,
        "evt_received": True,
        "evt_done": False,
        "evt_x": False,
    }
    dead = stored(backend, "evt_dead")
    assert (dead.status, dead.next_attempt_at, dead.attempts, dead.last_error) == (
        "received",
        T0 + 30,
        1,
        "boom",
    )
    received = stored(backend, "evt_received")
    assert (received.lease_owner, received.lease_expires_at) == (None, None)
    assert stored(backend, "evt_done").status == "ignored"


def test_given_a_processed_event_then_reopen_makes_it_received_again(backend: Backend) -> None:
    receive(backend, "evt_1")
    with backend.uow() as uow:
        set_status(uow, "evt_1", "processed")
        uow.inbox.reopen("evt_1", now=T0 + 40)
        uow.inbox.reopen("evt_x", now=T0 + 40)
        uow.commit()
    record = stored(backend, "evt_1")
    assert (record.status, record.next_attempt_at, record.outcome, record.processed_at) == (
        "received",
        T0 + 40,
        "done",
        T0,
    )


def test_given_events_then_list_pages_newest_received_first_without_payloads(
    backend: Backend,
) -> None:
    # received_at ties are ordered by id, newest (largest) first.
    for event_id, at in [("evt_a", 1), ("evt_b", 3), ("evt_c", 2), ("evt_d", 2), ("evt_e", 2)]:
        receive(backend, event_id, now=T0 + at)
    with backend.uow() as uow:
        every = uow.inbox.list(status=None, type_=None, limit=10, starting_after=None)
        first = uow.inbox.list(status=None, type_=None, limit=2, starting_after=None)
        rest = uow.inbox.list(status=None, type_=None, limit=10, starting_after="evt_d")
        from_unknown = uow.inbox.list(status=None, type_=None, limit=10, starting_after="evt_x")
    order = ["evt_b", "evt_e", "evt_d", "evt_c", "evt_a"]
    assert [e.id for e in every] == order
    assert [e.id for e in first] == order[:2]
    assert [e.id for e in rest] == order[3:]
    assert [e.id for e in from_unknown] == order  # an unknown anchor pages from the start
    assert {e.payload for e in every} == {None}


def test_given_events_of_several_statuses_and_types_then_list_filters_by_both(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        for event_id, type_ in [
            ("evt_1", "charge.refunded"),
            ("evt_2", "charge.refunded"),
            ("evt_3", "checkout.session.completed"),
        ]:
            uow.inbox.insert(inbound(event_id, type_=type_), now=T0, lease=None)
        set_status(uow, "evt_2", "processed")
        uow.commit()
    with backend.uow() as uow:
        refunds = uow.inbox.list(
            status=None, type_="charge.refunded", limit=10, starting_after=None
        )
        received = uow.inbox.list(status="received", type_=None, limit=10, starting_after=None)
        both = uow.inbox.list(
            status="received", type_="charge.refunded", limit=10, starting_after=None
        )
    assert [e.id for e in refunds] == ["evt_2", "evt_1"]
    assert [e.id for e in received] == ["evt_3", "evt_1"]
    assert [e.id for e in both] == ["evt_1"]


def test_given_events_then_the_backlog_counts_those_waiting_per_status(backend: Backend) -> None:
    with backend.uow() as uow:
        assert uow.inbox.backlog() == {}
    for i in range(6):
        receive(backend, f"evt_{i}")
    with backend.uow() as uow:
        set_status(uow, "evt_0", "processed")
        set_status(uow, "evt_1", "ignored")
        set_status(uow, "evt_2", "failed")
        set_status(uow, "evt_3", "dead")
        set_status(uow, "evt_4", "dead")
        uow.commit()
    with backend.uow() as uow:
        assert uow.inbox.backlog() == {"received": 1, "failed": 1, "dead": 2}


@disagrees("sqlite", reason="SQLite does not enforce VARCHAR lengths")
def test_given_an_event_type_longer_than_its_column_then_refused(backend: Backend) -> None:
    too_long = inbound("evt_1", type_="x" * 129)
    with pytest.raises(errors.ValidationError):
        attempt(backend, lambda uow: uow.inbox.insert(too_long, now=T0, lease=None))


def test_the_oldest_waiting_event_is_the_earliest_received_or_failed(backend: Backend) -> None:
    with backend.uow() as uow:
        assert uow.inbox.oldest_waiting() is None
    receive(backend, "evt_done", now=T0)
    receive(backend, "evt_dead", now=T0 + 1)
    receive(backend, "evt_failed", now=T0 + 5)
    receive(backend, "evt_new", now=T0 + 9)
    with backend.uow() as uow:
        set_status(uow, "evt_done", "processed")
        set_status(uow, "evt_dead", "dead")
        set_status(uow, "evt_failed", "failed")
        uow.commit()
    with backend.uow() as uow:
        assert uow.inbox.oldest_waiting() == T0 + 5
    with backend.uow() as uow:
        set_status(uow, "evt_new", "processed")
        uow.commit()
    with backend.uow() as uow:
        assert uow.inbox.oldest_waiting() == T0 + 5


def test_heartbeats_keep_one_row_per_worker_and_the_latest_wins(backend: Backend) -> None:
    with backend.uow() as uow:
        assert uow.inbox.last_beat() is None
    with backend.uow() as uow:
        uow.inbox.beat("worker:a", now=T0)
        uow.inbox.beat("worker:b", now=T0 + 3)
        uow.commit()
    with backend.uow() as uow:
        uow.inbox.beat("worker:a", now=T0 + 7)  # again: updated, not a second row
        uow.commit()
    with backend.uow() as uow:
        assert uow.inbox.last_beat() == T0 + 7
    with backend.uow() as uow:
        uow.inbox.beat("worker:b", now=T0 + 90_000)  # a day later: worker:a is forgotten
        uow.commit()
    with backend.uow() as uow:
        assert uow.inbox.last_beat() == T0 + 90_000


def test_a_heartbeat_rolled_back_is_not_kept(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.inbox.beat("worker:a", now=T0)
    with backend.uow() as uow:
        assert uow.inbox.last_beat() is None


# --- the created filter and the attempt history ----------------------------------------------------


def test_given_events_then_list_bounds_their_stripe_created_time_or_else_their_receipt(
    backend: Backend,
) -> None:
    # evt_none carries no created time: it is placed at its receipt, T0 + 25.
    with backend.uow() as uow:
        for event_id, created in [("evt_10", T0 + 10), ("evt_20", T0 + 20), ("evt_30", T0 + 30)]:
            uow.inbox.insert(inbound(event_id, created=created), now=T0 + 100, lease=None)
        uow.inbox.insert(inbound("evt_none", created=None), now=T0 + 25, lease=None)
        set_status(uow, "evt_20", "processed")
        uow.commit()

    def listed(**bounds: int) -> list[str]:
        with backend.uow() as uow:
            rows = uow.inbox.list(
                status=None, type_=None, limit=10, starting_after=None, created=TimeRange(**bounds)
            )
        return sorted(e.id for e in rows)

    assert listed() == ["evt_10", "evt_20", "evt_30", "evt_none"]
    assert listed(gte=T0 + 20) == ["evt_20", "evt_30", "evt_none"]
    assert listed(gt=T0 + 20) == ["evt_30", "evt_none"]
    assert listed(lte=T0 + 20) == ["evt_10", "evt_20"]
    assert listed(lt=T0 + 20) == ["evt_10"]
    assert listed(gte=T0 + 20, lte=T0 + 25) == ["evt_20", "evt_none"]
    assert listed(gt=T0 + 30) == []
    with backend.uow() as uow:
        newest = uow.inbox.list(
            status="received",
            type_=None,
            limit=1,
            starting_after=None,
            created=TimeRange(lt=T0 + 31),
        )
        after = uow.inbox.list(
            status="received",
            type_=None,
            limit=5,
            starting_after=newest[0].id,
            created=TimeRange(lt=T0 + 31),
        )
    # With the status and paging: newest received first (ties by id), evt_20 is processed.
    assert [e.id for e in newest + after] == ["evt_30", "evt_10", "evt_none"]


def test_given_failures_then_each_is_in_the_attempt_history_with_its_error_and_worker(
    backend: Backend,
) -> None:
    receive(backend, "evt_1", lease=("worker:a", T0 + 60))
    with backend.uow() as uow:
        uow.inbox.fail(
            "evt_1", error="E1", now=T0 + 1, next_attempt_at=T0 + 9, dead=False, worker="worker:a"
        )
        uow.commit()
    with backend.uow() as uow:
        uow.inbox.fail("evt_1", error="E2", now=T0 + 9, next_attempt_at=None, dead=True)
        uow.inbox.fail("evt_1", error="late", now=T0 + 10, next_attempt_at=None, dead=True)
        uow.commit()
    with backend.uow() as uow:
        history = uow.inbox.attempt_history("evt_1")
        assert uow.inbox.attempt_history("evt_unknown") == []
    # The third fail found the event dead: it changed nothing and recorded nothing.
    assert history == [
        EventAttempt(
            event_id="evt_1", attempt=1, at=T0 + 1, outcome="failed", error="E1", worker="worker:a"
        ),
        EventAttempt(
            event_id="evt_1", attempt=2, at=T0 + 9, outcome="dead", error="E2", worker=None
        ),
    ]


def test_given_an_operators_retry_then_record_attempt_adds_the_latest_attempt(
    backend: Backend,
) -> None:
    receive(backend, "evt_1")
    with backend.uow() as uow:
        set_status(uow, "evt_1", "dead")
        uow.commit()
    with backend.uow() as uow:
        assert uow.inbox.retry("evt_1", now=T0 + 5)
        assert uow.inbox.finish(
            "evt_1", status="processed", outcome="ok", now=T0 + 5, from_statuses=("received",)
        )
        uow.inbox.record_attempt(
            "evt_1", outcome="processed", now=T0 + 5, error=None, worker="operator:ann"
        )
        uow.inbox.record_attempt(
            "evt_unknown", outcome="processed", now=T0 + 5, error=None, worker=None
        )
        uow.commit()
    with backend.uow() as uow:
        history = uow.inbox.attempt_history("evt_1")
    assert [(a.attempt, a.outcome, a.error, a.worker) for a in history] == [
        (1, "dead", "boom", None),
        (2, "processed", None, "operator:ann"),
    ]
    # The same attempt twice is refused by the primary key, and changes nothing.
    with pytest.raises(errors.ConstraintViolation) as refused:
        attempt(
            backend,
            lambda uow: uow.inbox.record_attempt(
                "evt_1", outcome="processed", now=T0 + 6, error=None, worker=None
            ),
        )
    assert refused.value.constraint == "pk_event_attempts"
    with backend.uow() as uow:
        assert len(uow.inbox.attempt_history("evt_1")) == 2


def test_an_attempt_rolled_back_is_not_kept(backend: Backend) -> None:
    receive(backend, "evt_1")
    with backend.uow() as uow:
        uow.inbox.fail("evt_1", error="E", now=T0, next_attempt_at=None, dead=False)
        # no commit
    with backend.uow() as uow:
        assert uow.inbox.attempt_history("evt_1") == []


def test_given_many_events_then_they_are_read_locked_released_and_finished_at_once(
    backend: Backend,
) -> None:
    events = [inbound(f"evt_{i}") for i in (3, 1, 2)]
    with backend.uow() as uow:
        assert uow.inbox.insert_many(events, now=T0) == {"evt_1", "evt_2", "evt_3"}
        uow.commit()
    with backend.uow() as uow:
        got = uow.inbox.get_many(["evt_2", "evt_none", "evt_1", "evt_2"])
        assert [e.id for e in got] == ["evt_2", "evt_1"]
        assert got[0].payload == events[2].payload
        locked = uow.inbox.lock_many(["evt_3", "evt_1", "evt_none"])
        assert [(e.id, e.status, e.payload) for e in locked] == [
            ("evt_1", "received", None),
            ("evt_3", "received", None),
        ]
        uow.inbox.release_many(["evt_1", "evt_2"], now=T0 + 1, note="for the worker")
        uow.inbox.release_many([], now=T0 + 1, note="nothing")
        uow.inbox.finish_many(
            [("evt_2", "processed", "done"), ("evt_3", "ignored", None)],
            now=T0 + 2,
            from_statuses=("received", "failed"),
        )
        uow.inbox.finish_many([], now=T0 + 2, from_statuses=("received",))
        uow.commit()
    with backend.uow() as uow:
        one, two, three = (uow.inbox.get(f"evt_{i}") for i in (1, 2, 3))
    assert one is not None
    assert two is not None
    assert three is not None
    assert (one.status, one.outcome, one.next_attempt_at) == ("received", "for the worker", T0 + 1)
    assert (two.status, two.outcome, two.processed_at, two.attempts) == (
        "processed",
        "done",
        T0 + 2,
        1,
    )
    assert (three.status, three.outcome) == ("ignored", None)
    with backend.uow() as uow:  # only from the statuses named
        uow.inbox.finish_many([("evt_2", "failed", "no")], now=T0 + 3, from_statuses=("received",))
        uow.commit()
    with backend.uow() as uow:
        again = uow.inbox.get("evt_2")
    assert again is not None
    assert again.status == "processed"
