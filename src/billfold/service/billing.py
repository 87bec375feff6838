"""Subscriptions and entitlements, for callers: what an account may do now, what it subscribes to,
and the changes it may ask for (change plan, cancel, the customer portal, a sync from Stripe).

Calls to Stripe happen between transactions; what Stripe answers is applied through the same
guarded path as the webhooks (a re-fetch is what Stripe says now), so a change made here and its
events arriving later converge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from billfold.domain import catalog as cat
from billfold.domain import entitlements as ent
from billfold.domain import errors
from billfold.domain import facts as f
from billfold.domain import ledger as rules
from billfold.domain.records import Page
from billfold.domain.subscriptions import TERMINAL, NeedsPrices, SubscriptionRecord
from billfold.service.ports import Clock, StripeSubscriptions, UnitOfWorkFactory
from billfold.service.subscriptions import SubscriptionBook
from billfold.service.views import Views, page

Proration = Literal["create_prorations", "always_invoice", "none"]
PRORATIONS: tuple[str, ...] = ("create_prorations", "always_invoice", "none")
INVOICES_PER_SYNC = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckRequest:
    account_id: str
    feature: str | None = None
    limit: str | None = None
    usage: int | None = None
    unit: str | None = None
    amount: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangePlan:
    account_id: str
    plan: str
    proration: Proration = "create_prorations"


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancel:
    account_id: str
    at_period_end: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One thing a sync changed."""

    account_id: str
    subscription_id: str
    what: str


@dataclass(slots=True)
class SyncReport:
    accounts: int = 0
    subscriptions: int = 0
    changes: list[Change] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class Billing:
    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        catalog: cat.Catalog,
        views: Views,
        book: SubscriptionBook,
        stripe: StripeSubscriptions | None,
        clock: Clock,
    ) -> None:
        self._uow = uow_factory
        self.catalog = catalog
        self.views = views
        self.book = book
        self.stripe = stripe
        self._clock = clock

    # --- reads -----------------------------------------------------------------------------------

    def subscriptions(
        self, account_id: str, *, limit: int = 10, starting_after: str | None = None
    ) -> Page[SubscriptionRecord]:
        rules.check_account_id(account_id)
        with self._uow() as uow:
            rows = uow.subscriptions.of_account(account_id)
        if starting_after is not None:
            ids = [r.id for r in rows]
            if starting_after not in ids:
                raise errors.CursorNotFound(starting_after)
            rows = rows[ids.index(starting_after) + 1 :]
        return page(rows, limit)

    def list_all(
        self, *, status: str | None = None, limit: int = 10, starting_after: str | None = None
    ) -> Page[SubscriptionRecord]:
        """Every subscription (an operator's list), by id descending."""
        with self._uow() as uow:
            if starting_after is not None and uow.subscriptions.get(starting_after) is None:
                raise errors.CursorNotFound(starting_after)
            rows = uow.subscriptions.list(
                status=status, account_id=None, limit=limit + 1, starting_after=starting_after
            )
        return page(rows, limit)

    def entitlements(self, account_id: str) -> ent.Entitlements:
        """What the account may do now (an account billfold never saw has the default plan)."""
        rules.check_account_id(account_id)
        with self._uow() as uow:
            rows = uow.subscriptions.of_account(account_id)
        return ent.evaluate(account_id, rows, self.catalog, self._clock())

    def check(self, request: CheckRequest) -> ent.Check:
        entitlements = self.entitlements(request.account_id)
        available = None
        if request.unit is not None:
            self.catalog.unit(request.unit)  # UnknownUnit: a clear 400
            available = self.views.balances(request.account_id).available.get(request.unit, 0)
        known_features: dict[str, bool] = {}
        known_limits: dict[str, int | None] = {}
        for plan in self.catalog.plans:
            known_features.update(plan.features)
            known_limits.update(plan.limits)
        return ent.check(
            entitlements,
            feature=request.feature,
            limit=request.limit,
            usage=request.usage,
            unit=request.unit,
            amount=request.amount,
            available=available,
            known_features=known_features,
            known_limits=known_limits,
        )

    def subscription_plan(self, subscription: SubscriptionRecord) -> cat.Plan | None:
        try:
            return self.catalog.plan(subscription.plan) if subscription.plan else None
        except errors.UnknownPlan:
            return None

    def plan_price(self, plan: cat.Plan) -> str:
        """The Stripe price that sells ``plan`` (found or created by lookup key)."""
        return self._stripe().plan_price(plan)

    def apply_checkout(self, session: f.CheckoutSessionFact) -> None:
        """A completed subscription checkout: link account, customer and subscription, then apply
        the subscription's state and its first invoice as the webhooks would (the same keys:
        whichever comes first grants; the other finds it done)."""
        with self._uow() as uow:
            self.book.link_checkout(uow, session, self._clock())
            uow.commit()
        if session.subscription_id:
            state = self._stripe().retrieve_subscription(session.subscription_id)
            with self._uow() as uow:
                self.book.apply_state(uow, state, self._clock(), authoritative=True)
                uow.commit()
        if session.invoice_id:
            self._apply_invoice(self._stripe().retrieve_invoice(session.invoice_id))

    def _apply_invoice(self, invoice: f.InvoicePaid) -> str | None:
        """Apply a paid invoice read from Stripe; what it did, or None when it could not."""
        keys: dict[str, str | None] | None = None
        while True:
            with self._uow() as uow:
                done = self.book.apply_invoice_paid(
                    uow,
                    invoice,
                    None,
                    self._clock(),
                    payment_intents=invoice.payment_intent_ids,
                    refetched=True,
                    price_lookup_keys=keys,
                )
                if isinstance(done, str):
                    uow.commit()
                    return done
            if not isinstance(done, NeedsPrices) or keys is not None:
                return None
            # Outside the transaction (rolled back): which plans the lines' prices sell.
            keys = self._stripe().price_lookup_keys(done.price_ids)

    # --- time ------------------------------------------------------------------------------------

    def notify_grace_lapses(self, *, page_size: int = 500) -> int:
        """The worker's check: every ``past_due`` subscription whose grace period is over and
        whose lapse has not been told gets its ``entitlements.updated``, once (each in its own
        transaction, under the subscription's lock). How many were written."""
        now = self._clock()
        due: list[str] = []
        after: str | None = None
        with self._uow() as uow:
            while True:
                rows = uow.subscriptions.list(
                    status="past_due", account_id=None, limit=page_size, starting_after=after
                )
                for row in rows:
                    until = ent.grace_end(row, self.catalog)
                    if (
                        until is not None
                        and until <= now
                        and row.grace_lapse_notified != until
                        and row.account_id  # no account yet: nobody to tell
                    ):
                        due.append(row.id)
                if len(rows) < page_size:
                    break
                after = rows[-1].id
        written = 0
        for subscription_id in due:
            with self._uow() as uow:
                written += self.book.notify_lapse(uow, subscription_id, now)
                uow.commit()
        return written

    # --- changes through Stripe --------------------------------------------------------------------

    def change_plan(self, cmd: ChangePlan) -> SubscriptionRecord:
        plan = self.catalog.plan(cmd.plan)
        if plan.default:
            raise errors.ValidationError(
                f"{plan.id!r} is the default plan: cancel the subscription to move to it.",
                param="plan",
            )
        if cmd.proration not in PRORATIONS:
            raise errors.ValidationError(
                f"proration must be one of {', '.join(PRORATIONS)}.", param="proration"
            )
        current = self._current(cmd.account_id)
        if current.item_id is None:
            raise errors.Conflict(
                f"Subscription {current.id} has no item billfold can change; sync it first."
            )
        stripe = self._stripe()
        price = stripe.plan_price(plan)
        changed = stripe.change_plan(
            current.id, item_id=current.item_id, price_id=price, proration=cmd.proration
        )
        return self._apply(changed)

    def cancel(self, cmd: Cancel) -> SubscriptionRecord:
        current = self._current(cmd.account_id)
        return self._apply(self._stripe().cancel(current.id, at_period_end=cmd.at_period_end))

    def portal_url(self, account_id: str, return_url: str | None) -> str:
        rules.check_account_id(account_id)
        with self._uow() as uow:
            account = uow.accounts.get(account_id)
        if account is None or account.stripe_customer_id is None:
            raise errors.Conflict(
                f"Account {account_id} has no Stripe customer yet: it has bought nothing.",
                account_id=account_id,
            )
        return self._stripe().portal_url(account.stripe_customer_id, return_url=return_url)

    def _current(self, account_id: str) -> SubscriptionRecord:
        """The account's subscription a change applies to: the one giving its plan now, else the
        newest that has not ended."""
        rules.check_account_id(account_id)
        entitlements = self.entitlements(account_id)
        with self._uow() as uow:
            rows = uow.subscriptions.of_account(account_id)
        for row in rows:
            if row.id == entitlements.subscription_id and row.status not in TERMINAL:
                return row
        for row in rows:
            if row.status is not None and row.status not in TERMINAL:
                return row
        raise errors.NotFound(
            f"Account {account_id} has no subscription to change.", account_id=account_id
        )

    def _apply(self, fact: f.SubscriptionChanged) -> SubscriptionRecord:
        now = self._clock()
        with self._uow() as uow:
            self.book.apply_state(uow, fact, now, authoritative=True)
            row = uow.subscriptions.get(fact.subscription_id)
            uow.commit()
        assert row is not None
        return row

    # --- sync ------------------------------------------------------------------------------------

    def sync(self, account_id: str) -> SyncReport:
        """Re-read the account's subscriptions and latest paid invoices from Stripe and converge:
        what was missed is applied, with the webhooks' keys (nothing is granted twice)."""
        rules.check_account_id(account_id)
        with self._uow() as uow:
            account = uow.accounts.get(account_id)
            known = {r.customer_id for r in uow.subscriptions.of_account(account_id)}
        customers = {c for c in known if c}
        if account is not None and account.stripe_customer_id:
            customers.add(account.stripe_customer_id)
        report = SyncReport(accounts=1)
        for customer in sorted(customers):
            self._sync_customer(account_id, customer, report)
        return report

    def sync_all(self, progress: Callable[[int, int, str], None] | None = None) -> SyncReport:
        """Sync every account with a Stripe customer; ``progress(done, total, account_id)`` after
        each. One account's failure is reported and the others go on."""
        ids: list[str] = []
        while True:
            with self._uow() as uow:
                batch = uow.accounts.with_customers(
                    limit=500, starting_after=ids[-1] if ids else None
                )
            if not batch:
                break
            ids += [a.id for a in batch]
        report = SyncReport()
        for done, account_id in enumerate(ids, start=1):
            report.accounts += 1
            try:
                one = self.sync(account_id)
            except errors.BillfoldError as exc:
                report.failures.append(f"{account_id}: {exc.message}")
            else:
                report.subscriptions += one.subscriptions
                report.changes += one.changes
                report.failures += one.failures
            if progress is not None:
                progress(done, len(ids), account_id)
        return report

    def _sync_customer(self, account_id: str, customer_id: str, report: SyncReport) -> None:
        stripe = self._stripe()
        for fact in stripe.list_subscriptions(customer_id):
            report.subscriptions += 1
            now = self._clock()
            with self._uow() as uow:
                before = uow.subscriptions.get(fact.subscription_id)
                self.book.apply_state(uow, fact, now, authoritative=True)
                row = uow.subscriptions.get(fact.subscription_id)
                if row is not None and row.account_id is None:
                    row = uow.subscriptions.update(row.id, account_id=account_id, updated=now)
                uow.commit()
            if row is not None and (before is None or _state(before) != _state(row)):
                was = "unknown" if before is None or before.status is None else before.status
                report.changes.append(
                    Change(
                        account_id=account_id,
                        subscription_id=row.id,
                        what=f"state {was} -> {row.status} ({row.plan or 'no plan'})",
                    )
                )
            for invoice in stripe.list_paid_invoices(fact.subscription_id, limit=INVOICES_PER_SYNC):
                done = self._apply_invoice(invoice)
                if done is None:
                    report.failures.append(f"{invoice.invoice_id}: could not be applied")
                elif "granted already" not in done:
                    report.changes.append(
                        Change(
                            account_id=account_id, subscription_id=fact.subscription_id, what=done
                        )
                    )

    def _stripe(self) -> StripeSubscriptions:
        if self.stripe is None:
            raise errors.StripeUnavailable(
                "Stripe is not configured: set BILLFOLD_STRIPE_SECRET_KEY to manage subscriptions."
            )
        return self.stripe


def _state(row: SubscriptionRecord) -> tuple[object, ...]:
    return (
        row.status,
        row.plan,
        row.current_period_end,
        row.cancel_at_period_end,
        row.cancel_at,
        row.ended_at,
    )
