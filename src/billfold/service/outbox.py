"""The outbox: notifications written in the transaction of the change they report.

Use cases call :func:`emit` with the store of their unit of work (the ledger store writes the row,
so ledger operations that only hold a ``LedgerStore`` can emit too); :func:`watch_balance` applies
the low-balance rule to a balance change. The worker delivers what was committed
(:class:`billfold.service.notifications.Notifications`), so a change that rolls back sends nothing and
a committed one is delivered even if the process dies first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from billfold.domain import ids
from billfold.domain import notifications as rules
from billfold.service.ports import BalanceRow, NewNotification

Thresholds = Mapping[str, int] | None
"""The catalog's low-balance thresholds by unit."""


class Writer(Protocol):
    def add_notification(self, notification: NewNotification) -> None: ...


class AlertWriter(Writer, Protocol):
    def set_low_alert(self, account_id: str, unit: str, alert: bool) -> None: ...


def emit(
    store: Writer, type_: str, *, account_id: str | None, data: Mapping[str, Any], now: int
) -> NewNotification:
    """Write a notification of ``type_`` in the store's transaction; ``data`` gets the account."""
    assert type_ in rules.TYPES, type_
    body = {"account_id": account_id, **data}
    row = NewNotification(
        id=ids.new_id("msg"), type=type_, account_id=account_id, data=body, created=now
    )
    store.add_notification(row)
    return row


def threshold(row: BalanceRow, low: Thresholds) -> int | None:
    """The balance's threshold: the account's own, else the catalog's for its unit."""
    if row.low_balance is not None:
        return row.low_balance
    return low.get(row.unit) if low else None


def watch_balance(
    store: AlertWriter,
    before: BalanceRow,
    after: BalanceRow,
    now: int,
    *,
    low: Thresholds,
    granted: bool,
    transaction_id: str,
) -> BalanceRow:
    """Apply the low-balance rule to a change from ``before`` to ``after``; nothing is written
    unless the alert changes. Returns ``after`` with its alert as it now is."""
    limit = threshold(after, low)
    if limit is None:
        return after
    alert = rules.balance_alert(
        before=before.available,
        after=after.available,
        threshold=limit,
        alerted=before.low_alert,
        granted=granted,
    )
    if alert is None:
        return after
    state = alert == "balance.low"
    store.set_low_alert(after.account_id, after.unit, state)
    emit(
        store,
        alert,
        account_id=after.account_id,
        data={
            "unit": after.unit,
            "balance": after.available,
            "previous_balance": before.available,
            "threshold": limit,
            "transaction_id": transaction_id,
        },
        now=now,
    )
    return BalanceRow(
        account_id=after.account_id,
        unit=after.unit,
        available=after.available,
        held=after.held,
        debt=after.debt,
        low_balance=after.low_balance,
        low_alert=state,
    )


def reconciliation_drift(
    store: Writer,
    *,
    run_id: str,
    drift: Mapping[str, Mapping[str, int]],
    items: Sequence[Mapping[str, Any]],
    now: int,
) -> NewNotification | None:
    """``reconciliation.drift``, for a reconciliation run to write in the transaction that records
    it: ``drift`` is ``{class: {found, healed, open}}``, ``items`` the run's items (Stripe ids,
    billfold ids, amount in minor units, currency). Nothing is written when no drift is open."""
    if not any(counts.get("open", 0) for counts in drift.values()):
        return None
    return emit(
        store,
        "reconciliation.drift",
        account_id=None,
        data={
            "run_id": run_id,
            "drift": {name: dict(counts) for name, counts in drift.items()},
            "items": [dict(item) for item in items],
        },
        now=now,
    )
