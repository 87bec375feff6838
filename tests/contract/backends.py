"""What the contract tests share: the backend under test, known disagreements, and rows to write."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import pytest

from billfold.domain import ids
from billfold.domain.ledger import HoldStatus, Line
from billfold.domain.orders import OrderStatus
from billfold.domain.records import HoldRecord, InboundEvent
from billfold.service.ports import Auditor, NewGrant, NewOrder, UnitOfWork, UnitOfWorkFactory

MEMORY_URL: Final = "memory://"
T0: Final = 1_800_000_000
"""The time the tests start at (a Unix timestamp)."""


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    """``memory``, ``sqlite`` or ``postgres``."""
    uow: UnitOfWorkFactory
    auditor: Auditor

    def verify(self) -> list[str]:
        return self.auditor.verify()


def disagrees(*backends: str, reason: str) -> pytest.MarkDecorator:
    """A known disagreement of ``backends`` with the contract: a strict xfail there only."""
    return pytest.mark.disagrees(*backends, reason=reason)


# --- rows ----------------------------------------------------------------------------------------


def claim(
    uow: UnitOfWork,
    key: str | None = None,
    *,
    txn_id: str | None = None,
    kind: str = "grant",
    account_id: str | None = None,
    amount: int | None = None,
    created: int = T0,
) -> str:
    """Claim a fresh transaction (or ``key``); its id."""
    txn_id = txn_id or ids.new_id("txn")
    assert uow.ledger.claim_key(
        txn_id=txn_id,
        key=key or f"key-{txn_id}",
        request_hash="hash",
        kind=kind,
        account_id=account_id,
        unit=None,
        amount=amount,
        reason=None,
        created=created,
    )
    return txn_id


def moves(amount: int, source: str, target: str, unit: str = "credits") -> list[Line]:
    """Two lines moving ``amount`` from ``source`` to ``target``."""
    return [
        Line(account_id=source, unit=unit, amount=-amount),
        Line(account_id=target, unit=unit, amount=amount),
    ]


def new_grant(
    account_id: str,
    transaction_id: str,
    *,
    grant_id: str | None = None,
    unit: str = "credits",
    amount: int = 100,
    remaining: int | None = None,
    priority: int = 0,
    expires_at: int | None = None,
    origin: str | None = None,
    created: int = T0,
) -> NewGrant:
    return NewGrant(
        id=grant_id or ids.new_id("gr"),
        account_id=account_id,
        unit=unit,
        amount=amount,
        remaining=amount if remaining is None else remaining,
        priority=priority,
        expires_at=expires_at,
        kind="manual",
        origin=origin,
        reason="a test grant",
        transaction_id=transaction_id,
        created=created,
    )


def new_hold(
    account_id: str,
    *,
    hold_id: str | None = None,
    unit: str = "credits",
    amount: int = 10,
    status: HoldStatus = "active",
    expires_at: int = T0 + 60,
    created: int = T0,
) -> HoldRecord:
    return HoldRecord(
        id=hold_id or ids.new_id("hold"),
        account_id=account_id,
        unit=unit,
        amount=amount,
        captured=0,
        status=status,
        expires_at=expires_at,
        reason="a test hold",
        created=created,
    )


def new_order(
    *,
    key: str | None = None,
    order_id: str | None = None,
    payment_intent_id: str | None = None,
    status: OrderStatus = "pending",
    amount: int | None = 499,
    created: int = T0,
) -> NewOrder:
    order_id = order_id or ids.new_id("ord")
    return NewOrder(
        id=order_id,
        key=key or f"checkout:cs_{order_id}",
        kind="checkout",
        stripe_id=f"cs_{order_id}",
        payment_intent_id=payment_intent_id,
        amount=amount,
        currency="usd",
        customer_id="cus_1",
        customer_email="jenny@example.com",
        status=status,
        created=created,
        last_event_id="evt_first",
    )


def inbound(
    event_id: str | None = None,
    *,
    type_: str = "checkout.session.completed",
    created: int | None = T0,
    payload: str = '{"id": "evt"}',
) -> InboundEvent:
    return InboundEvent(
        id=event_id or ids.new_id("evt"),
        type=type_,
        livemode=False,
        api_version="2025-03-31.basil",
        created=created,
        object_id="cs_test_1",
        payload=payload,
    )


def attempt(backend: Backend, write: Callable[[UnitOfWork], object]) -> None:
    """Run ``write`` in a unit of work of its own and commit it (for ``pytest.raises``)."""
    with backend.uow() as uow:
        write(uow)
        uow.commit()
