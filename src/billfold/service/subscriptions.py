"""Subscriptions and invoices, inside the transaction that records the event: state facts move the
subscription's copy forward, money facts grant allowances, failed payments start the grace clock.

- ``apply_state``: a ``customer.subscription.*`` fact replaces the stored state only when it is
  newer (:func:`billfold.domain.subscriptions.compare`); same-second events that cannot be ordered
  answer ``NeedsSubscription``: the caller reads the subscription from Stripe and applies that.
- ``apply_invoice_paid``: a paid subscription invoice is an order (``invoice:<id>``, one payment
  whatever object announces it) whose grants are the plan's allowance per line
  (:mod:`billfold.domain.allowances`), keyed by invoice and line; a refund of its payment takes
  them back through the reversals. A paid one-off invoice naming ``billfold_package`` is fulfilled
  like a checkout. Invoices never write a subscription's status.
- ``apply_payment_failed``: the first failed payment of an invoice starts the grace clock, at
  Stripe's time of that failure; later failures of the same invoice do not restart it.
- ``notify_lapse``: no Stripe event says a grace period ended (entitlements are evaluated as of
  now), so the worker checks past_due subscriptions and writes ``entitlements.updated`` once per
  grace end, marked on the subscription in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from billfold.domain import allowances, errors
from billfold.domain import catalog as cat
from billfold.domain import facts as f
from billfold.domain import ledger as rules
from billfold.domain.entitlements import Entitlements, evaluate, grace_end
from billfold.domain.orders import NeedsLineItems, Payment, invoice_key
from billfold.domain.subscriptions import (
    NeedsInvoicePayments,
    NeedsPrices,
    NeedsSubscription,
    SubscriptionRecord,
    compare,
    state_of,
)
from billfold.service import outbox
from billfold.service.ledger import movement
from billfold.service.ledger.commands import Grant
from billfold.service.orders.fulfilment import Fulfilment
from billfold.service.ports import UnitOfWork

STATE_FIELDS = (
    "status",
    "plan",
    "item_id",
    "price_ids",
    "quantity",
    "current_period_start",
    "current_period_end",
    "cancel_at_period_end",
    "cancel_at",
    "canceled_at",
    "ended_at",
    "trial_start",
    "trial_end",
    "pause_behavior",
    "pause_resumes_at",
    "pending_update",
    "livemode",
)


class SubscriptionBook:
    def __init__(
        self, catalog: cat.Catalog, fulfilment: Fulfilment, *, units: frozenset[str] | None
    ) -> None:
        self.catalog = catalog
        self.low = catalog.low_balances()
        self.fulfilment = fulfilment
        self.units = units

    # --- state -----------------------------------------------------------------------------------

    def apply_state(
        self,
        uow: UnitOfWork,
        fact: f.SubscriptionFact,
        now: int,
        *,
        authoritative: bool = False,
    ) -> str | NeedsSubscription:
        """Move the copy forward if ``fact`` is newer. ``authoritative``: ``fact`` is what Stripe
        says now (a re-fetch), and replaces whatever is stored."""
        state = state_of(fact, self.catalog)
        row = uow.subscriptions.ensure_locked(state.subscription_id, now=now)
        order = compare(state, row)
        if authoritative and order in ("older", "undecided"):
            order = "newer"
        if order == "undecided":
            return NeedsSubscription(subscription_id=state.subscription_id)
        changes: dict[str, Any] = {}
        account = self._account(uow, state.metadata_account, row.account_id, state.customer_id)
        if account is not None and row.account_id is None:
            changes["account_id"] = account
        if state.customer_id is not None and row.customer_id is None:
            changes["customer_id"] = state.customer_id
        if order == "newer":
            values = asdict(state)
            changes |= {name: values[name] for name in STATE_FIELDS}
        if order in ("newer", "same") and state.event_created > row.state_created:
            # The same state, said later, is still the state as of that later time: an older
            # event delivered after it must not move the copy back.
            changes["state_created"] = state.event_created
        if isinstance(fact, f.SubscriptionNoted):
            changes["note"] = f"{fact.kind} at {fact.event_created}"
        account_id = row.account_id or changes.get("account_id")
        before = (
            evaluate(account_id, uow.subscriptions.of_account(account_id), self.catalog, now)
            if account_id and order == "newer"
            else None
        )
        if changes:
            row = uow.subscriptions.update(row.id, updated=now, **changes)
        if row.account_id and row.customer_id:
            uow.accounts.upsert(row.account_id, now=now)
            uow.accounts.link_customer(row.account_id, row.customer_id, now=now)
        if order == "newer" and row.account_id:
            self._notify_state(uow, row, before, now)
        if order == "newer":
            return f"subscription {row.id}: {row.status} on {row.plan or 'no plan'}"
        return f"subscription {row.id}: {order} state, kept what was stored"

    def link_checkout(self, uow: UnitOfWork, fact: f.CheckoutSessionFact, now: int) -> str:
        """A subscription checkout completed: link the account, its customer and subscription."""
        account = fact.metadata_account or fact.client_reference_id
        if account is None or not _valid(account):
            return "subscription checkout without an account to link"
        # The subscription's lock before the account's, as every subscription fact takes them:
        # the other order deadlocks with a state event applied at the same moment.
        row = (
            uow.subscriptions.ensure_locked(fact.subscription_id, now=now)
            if fact.subscription_id
            else None
        )
        uow.accounts.upsert(account, now=now)
        if fact.customer_id:
            uow.accounts.link_customer(account, fact.customer_id, now=now)
        if fact.customer_email:
            uow.accounts.fill_email(account, fact.customer_email, now=now)
        if row is not None:
            changes: dict[str, Any] = {}
            if row.account_id is None:
                changes["account_id"] = account
            if row.customer_id is None and fact.customer_id:
                changes["customer_id"] = fact.customer_id
            if changes:
                uow.subscriptions.update(row.id, updated=now, **changes)
        return f"account {account} linked to {fact.customer_id} and {fact.subscription_id}"

    # --- money -----------------------------------------------------------------------------------

    def apply_invoice_paid(
        self,
        uow: UnitOfWork,
        fact: f.InvoicePaid,
        event_id: str | None,
        now: int,
        *,
        payment_intents: Sequence[str] | None = None,
        refetched: bool = False,
        price_lookup_keys: Mapping[str, str | None] | None = None,
    ) -> str | NeedsSubscription | NeedsInvoicePayments | NeedsLineItems | NeedsPrices:
        """Grant a paid invoice's allowances (once, whatever announces it). ``refetched``: the
        subscription was just read from Stripe and applied, so it is not asked for again;
        ``price_lookup_keys``: the lookup keys of the lines' prices, read from Stripe."""
        if not fact.paid:
            return f"invoice {fact.invoice_id} is {fact.status}: nothing to grant yet"
        intents = tuple(payment_intents or fact.payment_intent_ids)
        if (
            not intents
            and not fact.payments_complete
            and fact.amount_paid > 0
            and payment_intents is None
        ):
            return NeedsInvoicePayments(invoice_id=fact.invoice_id)
        if fact.subscription_id is None:
            return self._one_off(uow, fact, intents, event_id, now)
        sub = uow.subscriptions.ensure_locked(fact.subscription_id, now=now)
        if sub.customer_id is None and fact.customer_id:
            sub = uow.subscriptions.update(sub.id, customer_id=fact.customer_id, updated=now)
        plans: dict[str, cat.Plan | None] = {}
        looked_up = price_lookup_keys or {}

        def lookup_key(line: f.InvoiceLineFact) -> str | None:
            return line.price_lookup_key or looked_up.get(line.price_id or "")

        unplaced = sorted(
            {
                ln.price_id
                for ln in fact.lines
                if ln.is_subscription
                and ln.price_id is not None
                and ln.price_id not in sub.price_ids
                and self.catalog.plan_for_price(ln.price_id, lookup_key(ln)) is None
            }
        )
        inline = any(plan.sells_inline for plan in self.catalog.plans)
        earlier = uow.orders.by_key(invoice_key(fact.invoice_id))
        if unplaced and price_lookup_keys is None and inline and not (earlier and earlier.is_final):
            # A price that is not the subscription's now may be a plan sold inline (the old
            # plan of an upgrade's credit line): only its lookup key, in Stripe, says which.
            return NeedsPrices(price_ids=tuple(unplaced))

        def plan_of(line: f.InvoiceLineFact) -> cat.Plan | None:
            found = self.catalog.plan_for_price(line.price_id, lookup_key(line))
            if (
                found is None
                and sub.plan is not None
                and (line.price_id or "") not in looked_up  # a price Stripe said sells no plan
                and (line.subscription_item_id == sub.item_id or line.price_id in sub.price_ids)
            ):
                found = _plan(self.catalog, sub.plan)
            plans[line.line_id] = found
            return found

        period = _period_length(sub)
        prorated = [ln for ln in fact.lines if ln.is_subscription and ln.proration]
        if prorated:
            # A proration is a share of the period it falls in: the subscription's copy must be
            # of that period (an upgrade invoice may come before the state that says so).
            ends = max(ln.period_end for ln in prorated)
            behind = sub.current_period_end is None or sub.current_period_end < ends
            if behind and not refetched:
                return NeedsSubscription(subscription_id=sub.id)
        grants, problem = allowances.for_invoice(fact, plan_of, period_length=period)
        unknown = [ln for ln in fact.lines if ln.is_subscription and plans.get(ln.line_id) is None]
        if unknown and sub.status is None:
            # Billfold has not seen this subscription: ask Stripe which prices sell what.
            return NeedsSubscription(subscription_id=sub.id)
        account = self._account(uow, fact.metadata_account, sub.account_id, fact.customer_id)
        account = account or self._by_email(uow, fact.customer_email)
        if account is not None and sub.account_id is None:
            sub = uow.subscriptions.update(sub.id, account_id=account, updated=now)
        payment = Payment(
            key=invoice_key(fact.invoice_id),
            kind="invoice",
            stripe_id=fact.invoice_id,
            paid=True,
            payment_intent_id=intents[0] if intents else None,
            amount=fact.amount_paid,
            currency=fact.currency,
            metadata_account=account,
            customer_id=fact.customer_id,
            customer_email=fact.customer_email,
            event_id=event_id,
        )
        order = self.fulfilment.ensure(uow, payment, now)
        for other in intents[1:]:
            if uow.payments.ensure_locked(other, now=now) is None:
                uow.payments.link(other, order.id)
        if sub.grace_invoice_id == fact.invoice_id and sub.past_due_since is not None:
            uow.subscriptions.update(sub.id, past_due_since=None, updated=now)
        if order.is_final:
            return f"invoice {fact.invoice_id} was granted already (order {order.id})"
        plan_id = next((g.plan for g in grants), sub.plan)
        if problem is not None or account is None or not _valid(account):
            reason = problem or "no account: the invoice names none, and no account is linked"
            uow.orders.update(
                order.id,
                status="needs_attention",
                status_reason=reason,
                plan=plan_id,
                account_id=account if account and _valid(account) else None,
                updated=now,
            )
            return f"invoice {fact.invoice_id} needs attention: {reason}"
        lapsed = [g for g in grants if g.expires_at is not None and g.expires_at <= now]
        for grant in grants:
            if grant in lapsed:
                continue  # paid for a period that is over: nothing of it can be spent any more
            movement.grant(
                uow.ledger,
                Grant(
                    key=grant.key,
                    account_id=account,
                    unit=grant.unit,
                    amount=grant.amount,
                    priority=grant.priority,
                    expires_at=grant.expires_at,
                    kind="allowance",
                    origin=order.id,
                    reason=f"{_title(self.catalog, grant.plan)} allowance",
                    source=rules.STRIPE,
                ),
                now,
                units=self.units,
                low=self.low,
            )
        if fact.customer_id:
            uow.accounts.link_customer(account, fact.customer_id, now=now)
        fulfilled = uow.orders.update(
            order.id,
            status="fulfilled",
            status_reason=None,
            account_id=account,
            plan=plan_id,
            fulfilled_at=now,
            updated=now,
        )
        self.fulfilment.reversals.settle(uow, fulfilled, now)
        granted = ", ".join(f"{g.amount} {g.unit}" for g in grants if g not in lapsed) or "nothing"
        late = f"; {len(lapsed)} allowance(s) for a period already over" if lapsed else ""
        return f"invoice {fact.invoice_id}: granted {granted} (order {order.id}){late}"

    def _one_off(
        self,
        uow: UnitOfWork,
        fact: f.InvoicePaid,
        intents: Sequence[str],
        event_id: str | None,
        now: int,
    ) -> str | NeedsLineItems:
        if not fact.metadata_package:
            return f"invoice {fact.invoice_id}: a one-off invoice without billfold_package"
        payment = Payment(
            key=invoice_key(fact.invoice_id),
            kind="invoice",
            stripe_id=fact.invoice_id,
            paid=True,
            payment_intent_id=intents[0] if intents else None,
            amount=fact.amount_paid,
            currency=fact.currency,
            metadata_account=fact.metadata_account,
            metadata_package=fact.metadata_package,
            customer_id=fact.customer_id,
            customer_email=fact.customer_email,
            event_id=event_id,
        )
        done = self.fulfilment.fulfil(uow, payment, now, line_items=())
        if isinstance(done, NeedsLineItems):  # pragma: no cover - an invoice has no line items
            return done
        return f"order {done.id} {done.status}"

    def apply_payment_failed(self, uow: UnitOfWork, fact: f.InvoicePaymentFailed, now: int) -> str:
        if fact.subscription_id is None:
            account = self._account(uow, fact.metadata_account, None, fact.customer_id)
            self._notify_failure(uow, fact, account, now)
            return f"invoice {fact.invoice_id}: a one-off invoice's payment failed"
        # The subscription's lock first: a payment of the same invoice takes it too, so the two
        # are ordered and the check below sees a payment committed before it.
        sub = uow.subscriptions.ensure_locked(fact.subscription_id, now=now)
        if uow.orders.by_key(invoice_key(fact.invoice_id)) is not None:
            # Delivered after the retry that paid it: the failure is over, no grace to start.
            return f"invoice {fact.invoice_id} is paid already: its earlier failure starts no grace"
        if sub.grace_invoice_id == fact.invoice_id and sub.past_due_since is not None:
            since = min(sub.past_due_since, fact.event_created)  # the first failure's time
        else:
            since = fact.event_created
        if sub.past_due_since == since and sub.grace_invoice_id == fact.invoice_id:
            return f"subscription {sub.id}: grace clock running since {since}"
        changes: dict[str, Any] = {"past_due_since": since, "grace_invoice_id": fact.invoice_id}
        if sub.customer_id is None and fact.customer_id:
            changes["customer_id"] = fact.customer_id
        account = self._account(uow, fact.metadata_account, sub.account_id, fact.customer_id)
        if account is not None and sub.account_id is None:
            changes["account_id"] = account
        sub = uow.subscriptions.update(sub.id, updated=now, **changes)
        self._notify_failure(uow, fact, sub.account_id, now)
        return f"subscription {sub.id}: payment failed, grace clock from {since}"

    # --- notifications ---------------------------------------------------------------------------

    def _notify_failure(
        self, uow: UnitOfWork, fact: f.InvoicePaymentFailed, account_id: str | None, now: int
    ) -> None:
        outbox.emit(
            uow.ledger,
            "payment.failed",
            account_id=account_id,
            data={
                "amount": fact.amount_due,
                "currency": fact.currency,
                "attempt_count": fact.attempt_count,
                "next_payment_attempt": fact.next_payment_attempt,
                "billing_reason": fact.billing_reason,
                "customer_email": fact.customer_email,
                "stripe": {
                    "invoice": fact.invoice_id,
                    "subscription": fact.subscription_id,
                    "customer": fact.customer_id,
                    "payment_intents": list(fact.payment_intent_ids),
                },
            },
            now=now,
        )

    def _notify_state(
        self, uow: UnitOfWork, row: SubscriptionRecord, before: Entitlements | None, now: int
    ) -> None:
        account_id = row.account_id
        assert account_id is not None
        outbox.emit(
            uow.ledger,
            "subscription.updated",
            account_id=account_id,
            data={
                "plan": row.plan,
                "status": row.status,
                "quantity": row.quantity,
                "current_period_start": row.current_period_start,
                "current_period_end": row.current_period_end,
                "cancel_at": row.cancel_at,
                "cancel_at_period_end": row.cancel_at_period_end,
                "ended_at": row.ended_at,
                "trial_end": row.trial_end,
                "stripe": {"subscription": row.id, "customer": row.customer_id},
            },
            now=now,
        )
        after = evaluate(account_id, uow.subscriptions.of_account(account_id), self.catalog, now)
        if before is not None and _same(before, after):
            return
        _notify_entitlements(uow, after, before, now, subscription_id=after.subscription_id)

    # --- time ------------------------------------------------------------------------------------

    def notify_lapse(self, uow: UnitOfWork, subscription_id: str, now: int) -> bool:
        """If the grace period of a ``past_due`` subscription is over and its lapse has not been
        told yet: mark it told (``grace_lapse_notified``, its grace end) and, when the account's
        entitlements changed with it (another subscription may still give the plan), write
        ``entitlements.updated`` (``reason: "grace_period_ended"``) in the same transaction.
        Under the subscription's lock: of two workers checking at once, the second sees the mark.
        Whether a notification was written."""
        sub = uow.subscriptions.ensure_locked(subscription_id, now=now)
        until = grace_end(sub, self.catalog)
        account_id = sub.account_id
        if until is None or until > now or sub.grace_lapse_notified == until or not account_id:
            return False
        uow.subscriptions.update(sub.id, grace_lapse_notified=until, updated=now)
        rows = uow.subscriptions.of_account(account_id)
        before = evaluate(account_id, rows, self.catalog, until - 1)
        after = evaluate(account_id, rows, self.catalog, now)
        if _same(before, after):
            return False
        _notify_entitlements(
            uow, after, before, now, subscription_id=sub.id, reason="grace_period_ended"
        )
        return True

    # --- helpers ---------------------------------------------------------------------------------

    def _account(
        self,
        uow: UnitOfWork,
        named: str | None,
        stored: str | None,
        customer_id: str | None,
    ) -> str | None:
        """The account: named in the metadata, else the one stored, else the customer's."""
        for candidate in (named, stored):
            if candidate and _valid(candidate):
                return candidate
        if customer_id:
            linked = uow.accounts.by_stripe_customer(customer_id)
            if linked is not None:
                return linked.id
        return None

    @staticmethod
    def _by_email(uow: UnitOfWork, email: str | None) -> str | None:
        if not email:
            return None
        found = uow.accounts.by_email(email)
        return found[0].id if len(found) == 1 else None


def _period_length(sub: SubscriptionRecord) -> int | None:
    """The length of the subscription's current period (an upgrade's proration is a share of
    it); a period already moved on is the best estimate of the one before it."""
    if sub.current_period_start is None or sub.current_period_end is None:
        return None
    return sub.current_period_end - sub.current_period_start


def _valid(account: str) -> bool:
    try:
        rules.check_account_id(account)
    except errors.ValidationError:
        return False
    return True


def _plan(catalog: cat.Catalog, plan_id: str) -> cat.Plan | None:
    try:
        return catalog.plan(plan_id)
    except errors.UnknownPlan:
        return None


def _title(catalog: cat.Catalog, plan_id: str) -> str:
    plan = _plan(catalog, plan_id)
    return (plan.title or plan.id) if plan else plan_id


def _notify_entitlements(
    uow: UnitOfWork,
    after: Entitlements,
    before: Entitlements | None,
    now: int,
    *,
    subscription_id: str | None,
    reason: str | None = None,
) -> None:
    data: dict[str, Any] = {
        "plan": after.plan,
        "source": after.source,
        "status": after.status,
        "features": dict(after.features),
        "limits": dict(after.limits),
        "current_period_end": after.current_period_end,
        "grace_until": after.grace_until,
        "previous_plan": before.plan if before else None,
        "stripe": {"subscription": subscription_id},
    }
    if reason is not None:
        data["reason"] = reason
    outbox.emit(uow.ledger, "entitlements.updated", account_id=after.account_id, data=data, now=now)


def _same(a: Entitlements, b: Entitlements) -> bool:
    return (a.plan, a.source, a.features, a.limits) == (b.plan, b.source, b.features, b.limits)
