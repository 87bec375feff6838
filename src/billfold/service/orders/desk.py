"""The operator's desk: resolve an order that needs attention, naming the account or package.

When the order's package is still unknown and the operator names none, the session's line items
are read from Stripe (outside any transaction) and the resolution decided again; without Stripe,
the answer says to name the package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from billfold.domain import errors
from billfold.domain.orders import LineItem, OrderRecord, Resolution
from billfold.service.orders.fulfilment import Fulfilment
from billfold.service.ports import Clock, StripeGateway, UnitOfWorkFactory


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolveOrder:
    order_id: str
    account_id: str | None = None
    package: str | None = None
    by: str = "admin"


class OrderDesk:
    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        fulfilment: Fulfilment,
        stripe: StripeGateway | None,
        clock: Clock,
    ) -> None:
        self._uow = uow_factory
        self.fulfilment = fulfilment
        self.stripe = stripe
        self._clock = clock

    def resolve(self, cmd: ResolveOrder) -> OrderRecord:
        """Fulfil an order in ``needs_attention`` (once, whoever else tries)."""
        resolution = Resolution(account_id=cmd.account_id, package=cmd.package, by=cmd.by)
        line_items: Sequence[LineItem] | None = None
        while True:
            with self._uow() as uow:
                done = self.fulfilment.resolve(
                    uow, cmd.order_id, resolution, self._clock(), line_items=line_items
                )
                if isinstance(done, OrderRecord):
                    uow.commit()
                    return done
            if line_items is not None or self.stripe is None:
                raise errors.OrderNotResolvable(
                    f"Order {cmd.order_id}'s package is unknown, and reading the session's line "
                    "items needs Stripe (BILLFOLD_STRIPE_SECRET_KEY is not set): name the "
                    "package to grant.",
                    order_id=cmd.order_id,
                )
            line_items = self.stripe.checkout_line_items(done.session_id)
