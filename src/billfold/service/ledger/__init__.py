"""The ledger's use cases: grant, spend, hold, capture, release, clawback, sweep, balances.

    commands.py      the commands and their results
    idempotency.py   the envelope around every write: claim the key, or replay the first result
    movement.py      each operation inside a caller's transaction (fulfilment and reversals use it)
    expiry.py        what time does: expired grants, lapsed holds, the sweep, balances as of now

:class:`Ledger` runs one operation per unit of work, for callers that move value on its own (the
API's spend and hold routes, the library, manual grants).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from billfold.domain import ledger as rules
from billfold.service.ledger import expiry, movement
from billfold.service.ledger.commands import (
    MAX_HOLD_TTL,
    Capture,
    Clawback,
    ClawbackResult,
    Grant,
    GrantResult,
    Hold,
    HoldResult,
    LedgerCommand,
    LedgerResult,
    Release,
    Spend,
    SpendResult,
    SweepResult,
)
from billfold.service.ports import Clock, UnitOfWorkFactory

__all__ = [
    "MAX_HOLD_TTL",
    "Capture",
    "Clawback",
    "ClawbackResult",
    "Grant",
    "GrantResult",
    "Hold",
    "HoldResult",
    "Ledger",
    "Release",
    "Spend",
    "SpendResult",
    "SweepResult",
]

C = TypeVar("C", bound=LedgerCommand)
R = TypeVar("R", bound=LedgerResult)


class Ledger:
    """The ledger's operations over a unit-of-work factory and a clock."""

    def __init__(
        self, uow_factory: UnitOfWorkFactory, clock: Clock, *, units: frozenset[str] | None = None
    ) -> None:
        self._uow = uow_factory
        self._clock = clock
        self.units = units

    def grant(self, cmd: Grant) -> GrantResult:
        return self._write(movement.grant, cmd)

    def spend(self, cmd: Spend) -> SpendResult:
        return self._write(movement.spend, cmd)

    def hold(self, cmd: Hold) -> HoldResult:
        return self._write(movement.hold, cmd)

    def capture(self, cmd: Capture) -> HoldResult:
        return self._write(movement.capture, cmd)

    def release(self, cmd: Release) -> HoldResult:
        return self._write(movement.release, cmd)

    def clawback(self, cmd: Clawback) -> ClawbackResult:
        return self._write(movement.clawback, cmd)

    def _write(self, operation: Callable[..., R], cmd: C) -> R:
        now = self._clock()
        with self._uow() as uow:
            result = operation(uow.ledger, cmd, now, units=self.units)
            uow.commit()
        return result

    def sweep(self, *, limit: int = 500) -> SweepResult:
        """Write the expiry of every grant and hold whose time has come (a batch at most), one
        balance per transaction."""
        now = self._clock()
        with self._uow() as uow:
            positions = uow.ledger.expired_grant_positions(now, limit)
            lapsed = uow.ledger.lapsed_holds(None, now, limit)
        todo = sorted(set(positions) | {(h.account_id, h.unit) for h in lapsed})
        grants_expired = amount = holds_expired = 0
        for account_id, unit in todo:
            with self._uow() as uow:
                grants, value, holds = expiry.sweep_balance(uow.ledger, account_id, unit, now)
                uow.commit()
            grants_expired += grants
            amount += value
            holds_expired += holds
        return SweepResult(
            grants_expired=grants_expired, amount_expired=amount, holds_expired=holds_expired
        )

    def balances(self, account_id: str) -> dict[str, rules.BalanceView]:
        """What the account can spend now, per unit, counting expiry the sweep has not written."""
        now = self._clock()
        with self._uow() as uow:
            return expiry.balance_views(uow.ledger, account_id, now)
