"""The outbox and the application's endpoints (``NotificationStore``): the same on memory, SQLite
and PostgreSQL. Written through the ledger store (as use cases do) or the notification store, read
back as written; claims lease the due ones oldest first; an attempt is recorded only by the lease's
owner; redelivery starts over; the admin's list filters and pages newest first."""

from __future__ import annotations

from typing import Any

import pytest

from billfold.domain import errors
from billfold.domain.notifications import EndpointRecord, NotificationRecord
from billfold.service.ports import NewNotification, NotificationAttempt
from tests.contract.backends import T0, Backend, attempt, disagrees

TOO_LONG = disagrees("sqlite", reason="SQLite does not enforce VARCHAR lengths")


def note(
    n: int,
    *,
    type_: str = "credits.granted",
    account_id: str | None = "user_1",
    created: int = T0,
    data: dict[str, Any] | None = None,
) -> NewNotification:
    return NewNotification(
        id=f"msg_{n:04d}",
        type=type_,
        account_id=account_id,
        data=data if data is not None else {"account_id": account_id, "amount": n},
        created=created,
    )


def add(backend: Backend, *rows: NewNotification) -> None:
    with backend.uow() as uow:
        for row in rows:
            uow.notifications.add(row)
        uow.commit()


def stored(backend: Backend, notification_id: str) -> NotificationRecord:
    with backend.uow() as uow:
        found = uow.notifications.get(notification_id)
    assert found is not None, notification_id
    return found


def claim(backend: Backend, owner: str, now: int, *, limit: int = 10, lease: int = 60) -> list[str]:
    with backend.uow() as uow:
        claimed = uow.notifications.claim(owner=owner, now=now, lease_seconds=lease, limit=limit)
        uow.commit()
    return claimed


def finish(
    backend: Backend,
    notification_id: str,
    owner: str,
    *,
    status: Any = "delivered",
    attempts: int = 1,
    next_attempt_at: int | None = None,
    last_error: str | None = None,
    delivered_to: tuple[str, ...] = ("ep_1",),
    now: int = T0 + 1,
) -> bool:
    with backend.uow() as uow:
        done = uow.notifications.finish(
            notification_id,
            owner=owner,
            status=status,
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            last_error=last_error,
            delivered_to=delivered_to,
            now=now,
        )
        uow.commit()
    return done


# --- writing and reading -------------------------------------------------------------------------


@pytest.mark.parametrize("through", ["ledger", "notifications"])
def test_given_a_notification_written_then_it_reads_back_pending_and_due_at_once(
    backend: Backend, through: str
) -> None:
    data = {
        "account_id": "user_1",
        "amount": 500,
        "nested": {"stripe": {"invoice": "in_1"}, "list": [1, "two", None]},
        "text": "é ✓",
        "none": None,
    }
    row = note(1, data=data)
    with backend.uow() as uow:
        if through == "ledger":
            uow.ledger.add_notification(row)
        else:
            uow.notifications.add(row)
        uow.commit()
    assert stored(backend, "msg_0001") == NotificationRecord(
        id="msg_0001",
        type="credits.granted",
        account_id="user_1",
        data=data,
        created=T0,
        status="pending",
        attempts=0,
        next_attempt_at=T0,
        last_error=None,
        delivered_to=(),
        updated=T0,
    )


def test_given_a_notification_without_an_account_then_it_reads_back_without_one(
    backend: Backend,
) -> None:
    add(backend, note(1, type_="reconciliation.drift", account_id=None, data={"run_id": "r"}))
    found = stored(backend, "msg_0001")
    assert (found.account_id, found.data) == (None, {"run_id": "r"})


def test_given_no_such_notification_then_the_readers_answer_none_and_writers_false(
    backend: Backend,
) -> None:
    with backend.uow() as uow:
        assert uow.notifications.get("msg_x") is None
        assert uow.notifications.redeliver("msg_x", now=T0) is False
        assert (
            uow.notifications.finish(
                "msg_x",
                owner="w",
                status="delivered",
                attempts=1,
                next_attempt_at=None,
                last_error=None,
                delivered_to=(),
                now=T0,
            )
            is False
        )


def test_given_a_rolled_back_unit_of_work_then_nothing_of_it_is_kept(backend: Backend) -> None:
    add(backend, note(1))
    with backend.uow() as uow:
        uow.notifications.add(note(2))
        assert uow.notifications.claim(owner="w", now=T0, lease_seconds=60, limit=10)
        # leaving without commit rolls back the row and the lease
    with backend.uow() as uow:
        assert uow.notifications.get("msg_0002") is None
    assert claim(backend, "other", T0) == ["msg_0001"]


def test_given_a_notification_id_in_use_then_the_primary_key_refuses_it(backend: Backend) -> None:
    add(backend, note(1))
    with pytest.raises(errors.ConstraintViolation) as refused:
        attempt(backend, lambda uow: uow.notifications.add(note(1, type_="balance.low")))
    assert refused.value.constraint == "pk_notifications"
    assert stored(backend, "msg_0001").type == "credits.granted"


@TOO_LONG
def test_given_a_type_longer_than_its_column_then_the_write_is_refused(backend: Backend) -> None:
    with pytest.raises(errors.ValidationError):
        attempt(backend, lambda uow: uow.notifications.add(note(1, type_="x" * 65)))


# --- claims and attempts -------------------------------------------------------------------------


def test_given_due_and_later_notifications_then_a_claim_leases_the_due_oldest_first(
    backend: Backend,
) -> None:
    add(backend, note(3, created=T0), note(1, created=T0 + 2), note(2, created=T0 + 1))
    add(backend, note(9, created=T0 + 100))  # not due yet
    assert claim(backend, "a", T0 + 2, limit=2, lease=600) == ["msg_0002", "msg_0003"]  # T0, T0+1
    assert claim(backend, "b", T0 + 2, lease=600) == ["msg_0001"]  # the others are leased
    assert claim(backend, "b", T0 + 2) == []
    assert claim(backend, "c", T0 + 100) == ["msg_0009"]


def settle(backend: Backend, now: int, *, limit: int = 10) -> list[str]:
    with backend.uow() as uow:
        types = uow.notifications.settle_unrouted(now=now, limit=limit)
        uow.commit()
    return types


def test_given_no_endpoint_then_the_due_unleased_ones_are_settled_as_a_round_would(
    backend: Backend,
) -> None:
    """What a delivery round records when there is no endpoint (delivered, one attempt more,
    to no one new), for the due notifications no one holds, oldest first and at most ``limit``;
    the leased, the later and the finished are left as they are."""
    add(backend, note(1, created=T0), note(2, type_="balance.low", created=T0 + 1))
    add(backend, note(3, created=T0 + 2), note(4, created=T0 + 3), note(5, created=T0 + 500))
    assert claim(backend, "a", T0 + 2, limit=1, lease=60) == ["msg_0001"]  # leased: left alone
    failed = NotificationAttempt(
        id="msg_0003",
        status="pending",
        attempts=1,
        next_attempt_at=T0 + 9,
        last_error="ep_2: HTTP 503",
        delivered_to=("ep_1",),  # an endpoint since removed had it
    )
    claim(backend, "b", T0 + 2, limit=2, lease=60)  # msg_0002, msg_0003
    with backend.uow() as uow:
        uow.notifications.finish_many([failed], owner="b", now=T0 + 2)
        uow.commit()
    # msg_0002 is still leased by "b" until T0 + 62; msg_0003 is due again at T0 + 9.
    assert settle(backend, T0 + 10, limit=1) == ["credits.granted"]  # msg_0003, the oldest due
    assert settle(backend, T0 + 10) == ["credits.granted"]  # msg_0004
    assert settle(backend, T0 + 10) == []
    settled = stored(backend, "msg_0003")
    assert (settled.status, settled.attempts, settled.next_attempt_at) == ("delivered", 2, None)
    assert (settled.last_error, settled.delivered_to, settled.updated) == (
        None,
        ("ep_1",),
        T0 + 10,
    )
    assert stored(backend, "msg_0004").attempts == 1
    assert stored(backend, "msg_0001").status == "pending"  # "a"'s lease holds
    assert stored(backend, "msg_0005").status == "pending"  # not due
    assert sorted(settle(backend, T0 + 62)) == ["balance.low", "credits.granted"]  # leases over
    assert finish(backend, "msg_0001", "a") is False  # settled meanwhile: recorded once
    assert settle(backend, T0 + 500) == ["credits.granted"]
    assert settle(backend, T0 + 10_000) == []  # a settled one is never settled again


def test_given_a_lease_that_lapsed_then_another_claims_it_and_the_first_owner_cannot_finish(
    backend: Backend,
) -> None:
    add(backend, note(1))
    assert claim(backend, "a", T0, lease=30) == ["msg_0001"]
    assert claim(backend, "b", T0 + 29) == []
    assert claim(backend, "b", T0 + 30, lease=30) == ["msg_0001"]
    assert finish(backend, "msg_0001", "a") is False
    assert stored(backend, "msg_0001").status == "pending"
    assert finish(backend, "msg_0001", "b") is True
    assert finish(backend, "msg_0001", "b") is False  # recorded once
    assert stored(backend, "msg_0001").status == "delivered"


def test_given_a_failed_attempt_then_it_is_due_again_at_its_next_attempt(backend: Backend) -> None:
    add(backend, note(1))
    claim(backend, "a", T0)
    assert finish(
        backend,
        "msg_0001",
        "a",
        status="pending",
        next_attempt_at=T0 + 5,
        last_error="ep_2: HTTP 503",
        delivered_to=("ep_1",),
        now=T0 + 1,
    )
    found = stored(backend, "msg_0001")
    assert (found.status, found.attempts, found.next_attempt_at) == ("pending", 1, T0 + 5)
    assert (found.last_error, found.delivered_to, found.updated) == (
        "ep_2: HTTP 503",
        ("ep_1",),
        T0 + 1,
    )
    assert claim(backend, "b", T0 + 4) == []
    assert claim(backend, "b", T0 + 5) == ["msg_0001"]


def test_given_several_ids_then_get_many_reads_them_in_the_order_asked_without_unknown_ones(
    backend: Backend,
) -> None:
    add(backend, note(1), note(2), note(3))
    with backend.uow() as uow:
        found = uow.notifications.get_many(["msg_0003", "msg_x", "msg_0001"])
        assert uow.notifications.get_many([]) == []
    assert [n.id for n in found] == ["msg_0003", "msg_0001"]
    assert found[1] == stored(backend, "msg_0001")


def test_given_claimed_notifications_then_finish_many_records_each_attempt_where_leased(
    backend: Backend,
) -> None:
    add(backend, note(1), note(2), note(3))
    assert claim(backend, "a", T0, limit=2) == ["msg_0001", "msg_0002"]
    assert claim(backend, "b", T0) == ["msg_0003"]
    attempts = [
        NotificationAttempt(
            id="msg_0001",
            status="delivered",
            attempts=1,
            next_attempt_at=None,
            last_error=None,
            delivered_to=("ep_1", "ep_2"),
        ),
        NotificationAttempt(
            id="msg_0002",
            status="pending",
            attempts=1,
            next_attempt_at=T0 + 5,
            last_error="ep_2: HTTP 503",
            delivered_to=("ep_1",),
        ),
        NotificationAttempt(  # leased to b: a records nothing for it
            id="msg_0003",
            status="dead",
            attempts=9,
            next_attempt_at=None,
            last_error="no",
            delivered_to=(),
        ),
    ]
    with backend.uow() as uow:
        uow.notifications.finish_many(attempts, owner="a", now=T0 + 1)
        uow.notifications.finish_many([], owner="a", now=T0 + 1)
        uow.commit()
    first, second, third = (stored(backend, f"msg_000{i}") for i in (1, 2, 3))
    assert (first.status, first.attempts, first.delivered_to, first.updated) == (
        "delivered",
        1,
        ("ep_1", "ep_2"),
        T0 + 1,
    )
    assert (second.status, second.next_attempt_at, second.last_error) == (
        "pending",
        T0 + 5,
        "ep_2: HTTP 503",
    )
    assert (third.status, third.attempts) == ("pending", 0)
    assert claim(backend, "c", T0 + 5) == ["msg_0002"]  # its lease dropped, due again


@pytest.mark.parametrize("status", ["delivered", "dead"])
def test_given_a_finished_notification_then_it_is_never_claimed_until_redelivered(
    backend: Backend, status: str
) -> None:
    add(backend, note(1))
    claim(backend, "a", T0)
    assert finish(
        backend,
        "msg_0001",
        "a",
        status=status,
        attempts=8,
        last_error=None if status == "delivered" else "env_0: timed out",
        delivered_to=("ep_1",) if status == "delivered" else (),
    )
    assert claim(backend, "b", T0 + 10 * 86_400) == []
    with backend.uow() as uow:
        assert uow.notifications.redeliver("msg_0001", now=T0 + 50) is True
        uow.commit()
    found = stored(backend, "msg_0001")
    assert (found.status, found.attempts, found.next_attempt_at, found.delivered_to) == (
        "pending",
        0,
        T0 + 50,
        (),
    )
    assert found.updated == T0 + 50
    assert claim(backend, "b", T0 + 50) == ["msg_0001"]


def test_given_a_leased_notification_redelivered_then_its_lease_is_dropped(
    backend: Backend,
) -> None:
    add(backend, note(1))
    claim(backend, "a", T0, lease=600)
    with backend.uow() as uow:
        assert uow.notifications.redeliver("msg_0001", now=T0 + 1)
        uow.commit()
    assert finish(backend, "msg_0001", "a") is False  # the lease went with the redelivery
    assert claim(backend, "b", T0 + 1) == ["msg_0001"]


# --- the admin's list ----------------------------------------------------------------------------


def test_the_list_filters_by_status_type_and_account_and_pages_newest_first(
    backend: Backend,
) -> None:
    add(
        backend,
        note(1),
        note(2, type_="balance.low"),
        note(3, account_id="user_2"),
        note(4, type_="reconciliation.drift", account_id=None),
        note(5),
    )
    claim(backend, "a", T0, limit=1)
    finish(backend, "msg_0001", "a")

    def ids(**filters: Any) -> list[str]:
        values: dict[str, Any] = {
            "status": None,
            "type_": None,
            "account_id": None,
            "limit": 10,
            "starting_after": None,
        }
        with backend.uow() as uow:
            return [n.id for n in uow.notifications.list(**(values | filters))]

    assert ids() == ["msg_0005", "msg_0004", "msg_0003", "msg_0002", "msg_0001"]
    assert ids(limit=2) == ["msg_0005", "msg_0004"]
    assert ids(limit=2, starting_after="msg_0004") == ["msg_0003", "msg_0002"]
    assert ids(starting_after="msg_0001") == []
    assert ids(status="delivered") == ["msg_0001"]
    assert ids(status="pending", type_="credits.granted") == ["msg_0005", "msg_0003"]
    assert ids(account_id="user_1") == ["msg_0005", "msg_0002", "msg_0001"]
    assert ids(type_="credits.granted", account_id="user_2") == ["msg_0003"]
    assert ids(status="dead") == []


# --- endpoints -----------------------------------------------------------------------------------


def test_endpoints_read_back_oldest_first_and_their_secrets_rotate(backend: Backend) -> None:
    later = EndpointRecord(
        id="ep_a", url="https://b.test/hooks", secrets=("whsec_b",), types=(), created=T0 + 1
    )
    first = EndpointRecord(
        id="ep_b",
        url="https://a.test/hooks",
        secrets=("whsec_a",),
        types=("balance.low", "balance.restored"),
        created=T0,
    )
    with backend.uow() as uow:
        uow.notifications.add_endpoint(later)
        uow.notifications.add_endpoint(first)
        uow.commit()
    with backend.uow() as uow:
        assert uow.notifications.endpoints() == [first, later]
        assert uow.notifications.get_endpoint("ep_a") == later
        assert uow.notifications.get_endpoint("ep_x") is None
        uow.notifications.set_endpoint_secrets("ep_b", ("whsec_new", "whsec_a"))
        uow.notifications.set_endpoint_secrets("ep_x", ("whsec_none",))  # no such: nothing
        uow.commit()
    with backend.uow() as uow:
        found = uow.notifications.get_endpoint("ep_b")
        assert found is not None
        assert found.secrets == ("whsec_new", "whsec_a")
        assert found.types == ("balance.low", "balance.restored")
        assert [e.id for e in uow.notifications.endpoints()] == ["ep_b", "ep_a"]


def test_given_an_endpoint_id_in_use_then_the_primary_key_refuses_it(backend: Backend) -> None:
    endpoint = EndpointRecord(id="ep_1", url="https://a.test/", secrets=("whsec_a",), created=T0)
    attempt(backend, lambda uow: uow.notifications.add_endpoint(endpoint))
    with pytest.raises(errors.ConstraintViolation) as refused:
        attempt(backend, lambda uow: uow.notifications.add_endpoint(endpoint))
    assert refused.value.constraint == "pk_notification_endpoints"
