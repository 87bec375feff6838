"""The ``StripeLedger`` port in memory: what Stripe says was paid, refunded and disputed, as the
test sets it. Lists honour the window (``created`` in ``[since, until]``), as Stripe's do."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from billfold.domain import reconciliation as rc


@dataclass
class FakeStripeLedger:
    sessions: list[rc.StripeSession] = field(default_factory=list)
    invoices: list[rc.StripeInvoice] = field(default_factory=list)
    reversals: list[rc.StripeReversal] = field(default_factory=list)
    subscriptions: list[rc.StripeSubscriptionState] = field(default_factory=list)
    payments: dict[str, rc.StripePayment] = field(default_factory=dict)
    """By the id of the session, invoice or payment intent; missing: Stripe does not know it."""

    def paid_checkout_sessions(self, *, since: int, until: int) -> Iterator[rc.StripeSession]:
        return iter([s for s in self.sessions if since <= s.created <= until])

    def paid_invoices(self, *, since: int, until: int) -> Iterator[rc.StripeInvoice]:
        return iter([i for i in self.invoices if since <= i.created <= until])

    def refunds(self, *, since: int, until: int) -> Iterator[rc.StripeReversal]:
        return iter(
            [r for r in self.reversals if r.kind == "refund" and since <= r.created <= until]
        )

    def disputes(self, *, since: int, until: int) -> Iterator[rc.StripeReversal]:
        return iter(
            [r for r in self.reversals if r.kind == "dispute" and since <= r.created <= until]
        )

    def subscription_states(self) -> Iterator[rc.StripeSubscriptionState]:
        return iter(list(self.subscriptions))

    def payment(self, kind: str, stripe_id: str) -> rc.StripePayment | None:
        return self.payments.get(stripe_id)
