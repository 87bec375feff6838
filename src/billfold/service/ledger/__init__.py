"""The ledger's use cases: grant, spend, adjust, hold, capture, release, clawback, sweep,
balances.

    commands.py      the commands and their results
    idempotency.py   the envelope around every write: claim the key, or replay the first result
    movement.py      each operation inside a caller's transaction (fulfilment and reversals use it)
    expiry.py        what time does: expired grants, lapsed holds, the sweep, balances as of now
    batch.py         a batch of spends, holds, captures and releases decided in one transaction

:class:`Ledger` is the door for callers that move value on its own (the API's spend and hold
routes, the library, manual grants). Spends, holds, captures and releases go through the write
combiner (``batch_max`` > 0): concurrent ones share a transaction. Everything else runs one
operation per unit of work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from billfold.domain import errors
from billfold.domain import ledger as rules
from billfold.service.combining import Combiner, CombinerStats
from billfold.service.ledger import batch, expiry, movement
from billfold.service.ledger.commands import (
    MAX_HOLD_TTL,
    Adjust,
    AdjustmentResult,
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
from billfold.service.observe import NullObserver, Observer
from billfold.service.ports import Clock, UnitOfWorkFactory

__all__ = [
    "MAX_HOLD_TTL",
    "Adjust",
    "AdjustmentResult",
    "Capture",
    "Clawback",
    "ClawbackResult",
    "CombinerStats",
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

_OPERATIONS: dict[type, str] = {
    Spend: "spend",
    Hold: "hold",
    Capture: "capture",
    Release: "release",
}
R = TypeVar("R", bound=LedgerResult)


class Ledger:
    """The ledger's operations over a unit-of-work factory and a clock."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        *,
        units: frozenset[str] | None = None,
        batch_max: int = 256,
        writers: int = 2,
        observer: Observer | None = None,
        low: Mapping[str, int] | None = None,
    ) -> None:
        self._uow = uow_factory
        self.observer: Observer = observer or NullObserver()
        self._clock = clock
        self.units = units
        self.low = low
        self.combiner = (
            Combiner[batch.BatchCommand, batch.BatchResult](
                self._write_batch,
                self._write_single,
                max_batch=batch_max,
                writers=writers,
                name="ledger writes",
            )
            if batch_max > 0
            else None
        )

    def grant(self, cmd: Grant) -> GrantResult:
        return self._write(movement.grant, cmd)

    def spend(self, cmd: Spend) -> SpendResult:
        result = self._combined(cmd)
        assert isinstance(result, SpendResult)
        return result

    def hold(self, cmd: Hold) -> HoldResult:
        result = self._combined(cmd)
        assert isinstance(result, HoldResult)
        return result

    def capture(self, cmd: Capture) -> HoldResult:
        result = self._combined(cmd)
        assert isinstance(result, HoldResult)
        return result

    def release(self, cmd: Release) -> HoldResult:
        result = self._combined(cmd)
        assert isinstance(result, HoldResult)
        return result

    async def spend_async(self, cmd: Spend) -> SpendResult:
        """``spend`` for a caller on an event loop (the HTTP routes): the loop is not blocked
        while the combiner writes."""
        result = await self._combined_async(cmd)
        assert isinstance(result, SpendResult)
        return result

    async def hold_async(self, cmd: Hold) -> HoldResult:
        result = await self._combined_async(cmd)
        assert isinstance(result, HoldResult)
        return result

    async def capture_async(self, cmd: Capture) -> HoldResult:
        result = await self._combined_async(cmd)
        assert isinstance(result, HoldResult)
        return result

    async def release_async(self, cmd: Release) -> HoldResult:
        result = await self._combined_async(cmd)
        assert isinstance(result, HoldResult)
        return result

    def combiner_stats(self) -> CombinerStats | None:
        return self.combiner.stats() if self.combiner else None

    def close(self) -> None:
        if self.combiner is not None:
            self.combiner.close()

    def _combined(self, cmd: batch.BatchCommand) -> batch.BatchResult:
        try:
            combiner = self.combiner
            result = self._write_single(cmd) if combiner is None else combiner.submit(cmd)
        except errors.BillfoldError as exc:
            self._observe_refusal(cmd, exc)
            raise
        self.observer.ledger_write(_OPERATIONS[type(cmd)], result.unit, "ok")
        return result

    async def _combined_async(self, cmd: batch.BatchCommand) -> batch.BatchResult:
        try:
            combiner = self.combiner
            if combiner is None:
                result = await asyncio.to_thread(self._write_single, cmd)
            else:
                result = await combiner.submit_async(cmd)
        except errors.BillfoldError as exc:
            self._observe_refusal(cmd, exc)
            raise
        self.observer.ledger_write(_OPERATIONS[type(cmd)], result.unit, "ok")
        return result

    def _observe_refusal(self, cmd: batch.BatchCommand, exc: errors.BillfoldError) -> None:
        if isinstance(exc, errors.InsufficientBalance):
            self.observer.ledger_write(_OPERATIONS[type(cmd)], exc.unit, "insufficient")
            return
        unit = getattr(cmd, "unit", None)
        known = unit if self.units is not None and unit in self.units else "other"
        self.observer.ledger_write(_OPERATIONS[type(cmd)], known, "refused")

    def _write_single(self, cmd: batch.BatchCommand) -> batch.BatchResult:
        match cmd:
            case Spend():
                return self._write(movement.spend, cmd)
            case Hold():
                return self._write(movement.hold, cmd)
            case Capture():
                return self._write(movement.capture, cmd)
            case Release():
                return self._write(movement.release, cmd)

    def _write_batch(
        self, commands: Sequence[batch.BatchCommand], committing: Callable[[], None]
    ) -> list[batch.Outcome]:
        return batch.run_batch(
            self._uow,
            commands,
            self._clock(),
            units=self.units,
            low=self.low,
            committing=committing,
        )

    def clawback(self, cmd: Clawback) -> ClawbackResult:
        return self._write(movement.clawback, cmd)

    def adjust(self, cmd: Adjust) -> AdjustmentResult:
        """An operator's negative adjustment (one transaction of its own, kind ``adjustment``);
        InsufficientBalance when the available balance is short: it never records debt."""
        return self._write(movement.adjust, cmd)

    def _write(self, operation: Callable[..., R], cmd: C) -> R:
        now = self._clock()
        with self._uow() as uow:
            result = operation(uow.ledger, cmd, now, units=self.units, low=self.low)
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
                grants, value, holds = expiry.sweep_balance(
                    uow.ledger, account_id, unit, now, low=self.low
                )
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
