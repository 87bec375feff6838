"""Accounts: the application's details about its customers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from billfold.domain import catalog as cat
from billfold.domain import errors
from billfold.domain import ledger as rules
from billfold.domain.records import AccountRecord
from billfold.service.ports import Clock, UnitOfWorkFactory

CUSTOMER_UNIQUE = "uq_accounts_stripe_customer_id"
UPDATABLE = frozenset({"email", "stripe_customer_id", "metadata", "low_balance"})


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateAccount:
    """Create or update an account. Only the fields in ``values`` change (``email``,
    ``stripe_customer_id``, ``metadata``); None clears one; ``metadata`` replaces the whole map."""

    account_id: str
    values: Mapping[str, Any]


class Accounts:
    def __init__(self, uow_factory: UnitOfWorkFactory, catalog: cat.Catalog, clock: Clock) -> None:
        self._uow = uow_factory
        self.catalog = catalog
        self._clock = clock

    def update(self, cmd: UpdateAccount) -> AccountRecord:
        rules.check_account_id(cmd.account_id)
        unknown = set(cmd.values) - UPDATABLE
        if unknown:
            raise errors.ValidationError(f"cannot update {', '.join(sorted(unknown))}.")
        values = dict(cmd.values)
        thresholds = self._thresholds(values.pop("low_balance", None))
        if "metadata" in values:
            values["metadata"] = dict(values["metadata"] or {})
        customer = values.get("stripe_customer_id")
        now = self._clock()
        try:
            with self._uow() as uow:
                if customer is not None:
                    linked = uow.accounts.by_stripe_customer(customer)
                    if linked is not None and linked.id != cmd.account_id:
                        raise _customer_taken(customer)
                uow.accounts.upsert(cmd.account_id, now=now, **values)
                for unit, threshold in sorted(thresholds.items()):
                    # The threshold lives on the balance row, read with the lock a spend takes
                    # anyway: a spend costs nothing more for it.
                    uow.ledger.ensure_locked_balance(cmd.account_id, unit)
                    uow.ledger.set_low_balance(cmd.account_id, unit, threshold)
                record = uow.accounts.get(cmd.account_id)
                uow.commit()
        except errors.ConstraintViolation as exc:
            # Two requests linking the same customer at once: the UNIQUE constraint decided.
            if exc.constraint != CUSTOMER_UNIQUE:
                raise
            raise _customer_taken(customer) from exc
        assert record is not None
        return record

    def _thresholds(self, value: object) -> dict[str, int | None]:
        """``low_balance``: {unit: threshold or null (back to the catalog's)}."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise errors.ValidationError(
                "low_balance must map units to thresholds.", param="low_balance"
            )
        found: dict[str, int | None] = {}
        for unit, threshold in value.items():
            self.catalog.unit(unit)  # UnknownUnit
            if threshold is not None and (
                isinstance(threshold, bool)
                or not isinstance(threshold, int)
                or not 0 <= threshold <= cat.MAX_LOW_BALANCE
            ):
                raise errors.ValidationError(
                    "a low_balance threshold is a non-negative integer or null.",
                    param="low_balance",
                )
            found[unit] = threshold
        return found


def _customer_taken(customer: object) -> errors.Conflict:
    return errors.Conflict(
        f"Stripe customer {customer} is already linked to another account.",
        param="stripe_customer_id",
    )
