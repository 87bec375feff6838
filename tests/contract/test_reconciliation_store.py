"""Reconciliation runs, the events cursor, the run lease, and the reads a run checks billfold with:
the same on memory, SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

import pytest

from billfold.domain import errors, ids
from billfold.domain import reconciliation as rc
from billfold.service.ports import NewReversal
from tests.contract.backends import T0, Backend, inbound, new_order


def new_run(*, status: rc.RunStatus = "running", started: int = T0) -> rc.RunRecord:
    return rc.RunRecord(
        id=ids.new_id("rcn"),
        status=status,
        trigger="cli",
        since=started - 3 * 86_400,
        until=started,
        events_imported=0,
        items=(),
        error=None,
        started=started,
        finished=None,
    )


ITEM = rc.DriftItem(
    drift_class="paid_not_granted",
    stripe_ids=("cs_1", "pi_1"),
    billfold_ids=("ord_1",),
    amount=499,
    currency="usd",
    healed=False,
    note="checkout session cs_1 is paid; billfold has no order",
)


def test_given_a_run_when_finished_then_it_reads_back_with_its_items_and_counts(
    backend: Backend,
) -> None:
    run = new_run()
    with backend.uow() as uow:
        uow.reconciliation.insert_run(run)
        uow.commit()
    with backend.uow() as uow:
        assert uow.reconciliation.get_run(run.id) == run
        assert uow.reconciliation.running_runs() == [run]
        healed = replace(ITEM, drift_class="amount_mismatch", healed=True)
        uow.reconciliation.update_run(
            run.id,
            status="completed",
            events_imported=7,
            items=[ITEM, healed],
            error=None,
            finished=T0 + 5,
        )
        uow.commit()
    with backend.uow() as uow:
        done = uow.reconciliation.get_run(run.id)
        assert uow.reconciliation.running_runs() == []
        assert uow.reconciliation.get_run("rcn_missing") is None
    assert done is not None
    assert (done.status, done.events_imported, done.finished) == ("completed", 7, T0 + 5)
    assert done.items == (ITEM, healed)
    assert done.open == 1
    assert done.drift["paid_not_granted"] == rc.DriftCount(found=1, healed=0, open=1)
    assert done.drift["amount_mismatch"] == rc.DriftCount(found=1, healed=1, open=0)
    assert set(done.drift) == set(rc.DRIFT_CLASSES)


def test_runs_list_newest_first_and_page(backend: Backend) -> None:
    runs = [new_run(started=T0 + i) for i in range(5)]
    with backend.uow() as uow:
        for run in runs:
            uow.reconciliation.insert_run(run)
        uow.commit()
    with backend.uow() as uow:
        first = uow.reconciliation.list_runs(limit=2, starting_after=None)
        rest = uow.reconciliation.list_runs(limit=10, starting_after=first[-1].id)
    assert [r.id for r in first + rest] == [r.id for r in reversed(runs)]


def test_a_run_with_an_unknown_status_or_a_taken_id_is_refused(backend: Backend) -> None:
    run = new_run()
    with backend.uow() as uow:
        uow.reconciliation.insert_run(run)
        uow.commit()
    with pytest.raises(errors.ConstraintViolation), backend.uow() as uow:
        uow.reconciliation.insert_run(run)
    bad = replace(new_run(), status="paused")  # type: ignore[arg-type]
    with pytest.raises(errors.ConstraintViolation), backend.uow() as uow:
        uow.reconciliation.insert_run(bad)


def test_the_lease_is_free_until_given_and_only_its_run_renews_it(backend: Backend) -> None:
    with backend.uow() as uow:
        assert uow.reconciliation.lease() == rc.Lease(run_id=None, owner=None, until=0)
        uow.reconciliation.set_lease(run_id="rcn_1", owner="host:1", until=T0 + 60)
        uow.commit()
    with backend.uow() as uow:
        assert uow.reconciliation.lease() == rc.Lease(run_id="rcn_1", owner="host:1", until=T0 + 60)
        assert uow.reconciliation.renew_lease("rcn_2", until=T0 + 999) is False
        assert uow.reconciliation.renew_lease("rcn_1", until=T0 + 120) is True
        uow.commit()
    with backend.uow() as uow:
        assert uow.reconciliation.lease().until == T0 + 120
        uow.reconciliation.set_lease(run_id=None, owner=None, until=0)
        # Not committed: the lease stays where it was.
    with backend.uow() as uow:
        assert uow.reconciliation.lease().run_id == "rcn_1"


def test_the_events_cursor_only_moves_forward(backend: Backend) -> None:
    with backend.uow() as uow:
        assert uow.reconciliation.events_cursor() is None
        uow.reconciliation.advance_events_cursor(T0)
        uow.commit()
    with backend.uow() as uow:
        uow.reconciliation.advance_events_cursor(T0 - 50)
        assert uow.reconciliation.events_cursor() == T0
        uow.reconciliation.advance_events_cursor(T0 + 50)
        uow.commit()
    with backend.uow() as uow:
        assert uow.reconciliation.events_cursor() == T0 + 50


def test_granted_orders_in_a_window_by_id(backend: Backend) -> None:
    with backend.uow() as uow:
        inside = [
            uow.orders.ensure_locked(new_order(status="fulfilled", created=T0 + i))
            for i in range(3)
        ]
        refunded = uow.orders.ensure_locked(new_order(status="refunded", created=T0 + 5))
        uow.orders.ensure_locked(new_order(status="pending", created=T0 + 1))
        uow.orders.ensure_locked(new_order(status="fulfilled", created=T0 - 1))
        uow.orders.ensure_locked(new_order(status="fulfilled", created=T0 + 11))
        uow.commit()
    with backend.uow() as uow:
        first = uow.reconciliation.fulfilled_orders(
            since=T0, until=T0 + 10, limit=2, starting_after=None
        )
        rest = uow.reconciliation.fulfilled_orders(
            since=T0, until=T0 + 10, limit=10, starting_after=first[-1].id
        )
    assert [o.id for o in first + rest] == [o.id for o in [*inside, refunded]]


def test_a_payments_order_is_found_by_its_own_intent_or_through_the_payments_gate(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        own = uow.orders.ensure_locked(new_order(payment_intent_id="pi_own", status="fulfilled"))
        other = uow.orders.ensure_locked(new_order(status="fulfilled"))
        uow.payments.ensure_locked("pi_linked", now=T0)
        uow.payments.link("pi_linked", other.id)
        uow.payments.ensure_locked("pi_alone", now=T0)
        uow.commit()
    with backend.uow() as uow:
        store = uow.reconciliation
        assert store.order_of_payment("pi_own") == own
        assert store.order_of_payment("pi_linked") == other
        assert store.order_of_payment("pi_alone") is None
        assert store.order_of_payment("pi_unknown") is None


def test_a_reversal_is_found_by_its_key(backend: Backend) -> None:
    new = NewReversal(
        id="rev_1",
        key="refund:re_1",
        kind="refund",
        stripe_id="re_1",
        payment_intent_id="pi_1",
        charge_id="ch_1",
        amount=400,
        currency="usd",
        status="succeeded",
        reason=None,
        stripe_created=T0,
        created=T0,
    )
    with backend.uow() as uow:
        made, _ = uow.reversals.ensure_locked(new)
        uow.commit()
    with backend.uow() as uow:
        assert uow.reconciliation.reversal_by_key("refund:re_1") == made
        assert uow.reconciliation.reversal_by_key("refund:re_2") is None


def test_the_events_the_inbox_has_are_told_apart_in_one_read(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.inbox.insert(inbound("evt_kept"), now=T0, lease=None)
        uow.inbox.insert(inbound("evt_also"), now=T0, lease=None)
        uow.commit()
    with backend.uow() as uow:
        known = uow.reconciliation.known_events(["evt_kept", "evt_new", "evt_also"])
        assert known == {"evt_kept", "evt_also"}
        assert uow.reconciliation.known_events([]) == set()
