"""Subscriptions and their invoices: a subscription checkout, renewals, updates and cancellation.

A subscription checkout makes a customer (unless the session had one), an active subscription, and
its first invoice, paid by card. ``renew`` rolls every item into the next period and bills it,
paid or failed (the subscription then goes ``past_due``); a subscription set to cancel at the
period end ends instead.
"""

from __future__ import annotations

import calendar
import copy
from datetime import UTC, datetime, timedelta

from billfold.simulator import catalog, errors, forms, objects, payments
from billfold.simulator.forms import Params
from billfold.simulator.objects import Obj
from billfold.simulator.service import DASHBOARD, Origin, Simulator, created_filter

RENEWAL_OUTCOMES = ("paid", "failed")
SUBSCRIPTION_STATUSES = (
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)


def period_end(start: int, interval: str, count: int) -> int:
    moment = datetime.fromtimestamp(start, UTC)
    if interval == "day":
        moment += timedelta(days=count)
    elif interval == "week":
        moment += timedelta(weeks=count)
    else:
        months = count * (12 if interval == "year" else 1)
        index = moment.month - 1 + months
        year, month = moment.year + index // 12, index % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        moment = moment.replace(year=year, month=month, day=day)
    return int(moment.timestamp())


def complete_subscription_checkout(
    sim: Simulator, session: Obj, *, email: str, name: str | None
) -> Obj:
    extras = sim.state.session_extras.get(session["id"], {})
    customer_id = session["customer"]
    if customer_id is None:
        customer_id = catalog.new_customer(sim, email=email, name=name, origin=DASHBOARD)["id"]
    now = sim.now()
    subscription_id = objects.new_id("sub_1")
    items = []
    for line in sim.state.line_items[session["id"]]:
        price = copy.deepcopy(line["price"])
        recurring = price["recurring"]
        items.append(
            objects.build(
                "subscription_item",
                created=now,
                current_period_end=period_end(
                    now, recurring["interval"], recurring["interval_count"]
                ),
                current_period_start=now,
                discounts=[],
                id=objects.new_id("si_", 14),
                metadata={},
                plan=objects.plan_from_price(price),
                price=price,
                quantity=line["quantity"],
                subscription=subscription_id,
                tax_rates=[],
            )
        )
    subscription = objects.build(
        "subscription",
        billing_cycle_anchor=now,
        created=now,
        currency=session["currency"],
        customer=customer_id,
        id=subscription_id,
        items=objects.list_object(items, f"/v1/subscription_items?subscription={subscription_id}"),
        latest_invoice=None,
        metadata=dict(extras.get("subscription_metadata", {})),
        start_date=now,
        status="active",
    )
    sim.put(subscription)
    sim.emit("customer.subscription.created", subscription)
    invoice = _bill(
        sim,
        subscription,
        reason="subscription_create",
        period=(now, now),
        email=email,
        name=name,
        approved=True,
    )
    session.update(
        {
            "customer": customer_id,
            "customer_details": objects.customer_details(email, name),
            "invoice": invoice["id"],
            "payment_status": "paid",
            "status": "complete",
            "subscription": subscription_id,
            "url": None,
        }
    )
    sim.emit("checkout.session.completed", session)
    return session


def _bill(
    sim: Simulator,
    subscription: Obj,
    *,
    reason: str,
    period: tuple[int, int],
    email: str | None,
    name: str | None,
    approved: bool,
) -> Obj:
    """Invoice the subscription's current items, finalize, and charge the card."""
    customer = sim.get("customer", subscription["customer"])
    invoice_id = objects.new_id("in_1")
    lines = []
    for item in subscription["items"]["data"]:
        price = item["price"]
        amount = price["unit_amount"] * item["quantity"]
        product = sim.get("product", price["product"])
        line = objects.build(
            "line_item",
            amount=amount,
            currency=price["currency"],
            description=f"{item['quantity']} x {product['name']}",
            discount_amounts=[],
            discountable=True,
            discounts=[],
            id=objects.new_id("il_1"),
            invoice=invoice_id,
            metadata=dict(subscription["metadata"]),
            parent={
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": None,
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": subscription["id"],
                    "subscription_item": item["id"],
                },
                "type": "subscription_item_details",
            },
            period={"end": item["current_period_end"], "start": item["current_period_start"]},
            pricing={
                "price_details": {"price": price["id"], "product": price["product"]},
                "type": "price_details",
                "unit_amount_decimal": price["unit_amount_decimal"],
            },
            quantity=item["quantity"],
            subscription=subscription["id"],
            subtotal=amount,
        )
        lines.append(line)
    total = sum(line["amount"] for line in lines)
    now = sim.now()
    invoice = objects.build(
        "invoice",
        amount_due=total,
        amount_paid=0,
        amount_remaining=total,
        attempt_count=0,
        attempted=False,
        billing_reason=reason,
        created=now,
        currency=subscription["currency"],
        customer=customer["id"],
        customer_email=email or customer["email"],
        customer_name=name or customer["name"],
        due_date=None,
        effective_at=None,
        ending_balance=None,
        id=invoice_id,
        issuer={"type": "self"},
        lines=objects.list_object(lines, f"/v1/invoices/{invoice_id}/lines"),
        next_payment_attempt=None,
        parent={
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(subscription["metadata"]),
                "subscription": subscription["id"],
            },
            "type": "subscription_details",
        },
        period_end=period[1],
        period_start=period[0],
        status="draft",
        subtotal=total,
        subtotal_excluding_tax=total,
        total=total,
        total_excluding_tax=total,
    )
    sim.put(invoice)
    subscription["latest_invoice"] = invoice_id
    sim.emit("invoice.created", invoice)
    invoice.update(
        {
            "effective_at": now,
            "ending_balance": 0,
            "number": f"{customer['invoice_prefix']}-{sim.state.next_number('invoice'):04d}",
            "status": "open",
        }
    )
    invoice["status_transitions"]["finalized_at"] = now
    sim.emit("invoice.finalized", invoice)
    intent = payments.create_intent(
        sim,
        amount=total,
        currency=invoice["currency"],
        customer=customer["id"],
        metadata={},
        description="Subscription creation" if reason == "subscription_create" else None,
    )
    payments.pay_by_card(sim, intent, approved=approved, email=email, name=name)
    invoice.update({"attempt_count": 1, "attempted": True})
    if approved:
        invoice.update({"amount_paid": total, "amount_remaining": 0, "status": "paid"})
        invoice["status_transitions"]["paid_at"] = now
        sim.emit("invoice.paid", invoice)
        sim.emit("invoice.payment_succeeded", invoice)
    else:
        invoice["next_payment_attempt"] = now + 3 * 24 * 60 * 60
        sim.emit("invoice.payment_failed", invoice)
    return invoice


def renew(sim: Simulator, subscription_id: str, *, outcome: str) -> Obj:
    """The current period ends: bill the next one (or end a subscription set to cancel)."""
    if outcome not in RENEWAL_OUTCOMES:
        raise errors.invalid(
            f"outcome must be one of {', '.join(RENEWAL_OUTCOMES)}", param="outcome"
        )
    subscription = sim.get("subscription", subscription_id)
    if subscription["status"] not in ("active", "past_due", "trialing"):
        raise errors.invalid(
            f"A {subscription['status']} subscription cannot renew.", param="subscription"
        )
    items = subscription["items"]["data"]
    ending = (items[0]["current_period_start"], items[0]["current_period_end"])
    if subscription["cancel_at_period_end"]:
        return _end(sim, subscription, at=ending[1], reason="cancellation_requested")
    previous: Obj = {
        "items": copy.deepcopy(subscription["items"]),
        "latest_invoice": subscription["latest_invoice"],
    }
    for item in items:
        recurring = item["price"]["recurring"]
        start = item["current_period_end"]
        item["current_period_start"] = start
        item["current_period_end"] = period_end(
            start, recurring["interval"], recurring["interval_count"]
        )
    customer = sim.get("customer", subscription["customer"])
    invoice = _bill(
        sim,
        subscription,
        reason="subscription_cycle",
        period=ending,
        email=customer["email"],
        name=customer["name"],
        approved=outcome == "paid",
    )
    status = "active" if invoice["status"] == "paid" else "past_due"
    if status != subscription["status"]:
        previous["status"] = subscription["status"]
        subscription["status"] = status
    sim.emit("customer.subscription.updated", subscription, previous=previous)
    return subscription


def _end(
    sim: Simulator, subscription: Obj, *, at: int, reason: str, origin: Origin = DASHBOARD
) -> Obj:
    subscription.update(
        {
            "canceled_at": subscription["canceled_at"] or sim.now(),
            "ended_at": at,
            "status": "canceled",
        }
    )
    subscription["cancellation_details"] = {"comment": None, "feedback": None, "reason": reason}
    sim.emit("customer.subscription.deleted", subscription, origin=origin)
    return subscription


def cancel(sim: Simulator, subscription_id: str, params: Params, *, origin: Origin) -> Obj:
    params.reject_unknown(["cancellation_details", "expand", "invoice_now", "prorate"])
    subscription = sim.get("subscription", subscription_id)
    if subscription["status"] == "canceled":
        raise errors.invalid(
            "A canceled subscription can only update its cancellation_details and metadata.",
            param="subscription",
        )
    subscription["canceled_at"] = sim.now()
    return _end(sim, subscription, at=sim.now(), reason="cancellation_requested", origin=origin)


def update(sim: Simulator, subscription_id: str, params: Params, *, origin: Origin) -> Obj:
    params.reject_unknown(["cancel_at_period_end", "expand", "metadata"])
    subscription = sim.get("subscription", subscription_id)
    previous: Obj = {}
    cancel_at_period_end = params.boolean("cancel_at_period_end")
    if cancel_at_period_end is not None:
        if subscription["status"] == "canceled":
            raise errors.invalid(
                "A canceled subscription can only update its cancellation_details and metadata.",
                param="cancel_at_period_end",
            )
        if cancel_at_period_end != subscription["cancel_at_period_end"]:
            previous.update(
                {
                    "cancel_at_period_end": subscription["cancel_at_period_end"],
                    "cancel_at": subscription["cancel_at"],
                    "canceled_at": subscription["canceled_at"],
                }
            )
            end = subscription["items"]["data"][0]["current_period_end"]
            subscription.update(
                {
                    "cancel_at_period_end": cancel_at_period_end,
                    "cancel_at": end if cancel_at_period_end else None,
                    "canceled_at": sim.now() if cancel_at_period_end else None,
                }
            )
    metadata = forms.apply_metadata(subscription["metadata"], params.metadata())
    if metadata != subscription["metadata"]:
        previous["metadata"] = subscription["metadata"]
        subscription["metadata"] = metadata
    if previous:
        sim.emit("customer.subscription.updated", subscription, origin=origin, previous=previous)
    return subscription


def list_subscriptions(sim: Simulator, params: Params) -> Obj:
    params.reject_unknown(
        [
            "created",
            "customer",
            "ending_before",
            "expand",
            "limit",
            "price",
            "starting_after",
            "status",
        ]
    )
    customer = params.text("customer")
    status = params.choice("status", SUBSCRIPTION_STATUSES)
    price = params.text("price")
    created = created_filter(params)

    def keep(subscription: Obj) -> bool:
        if status is None:
            status_ok = subscription["status"] != "canceled"  # Stripe's default hides them
        elif status == "ended":
            status_ok = subscription["status"] == "canceled"
        else:
            status_ok = status == "all" or subscription["status"] == status
        prices = {item["price"]["id"] for item in subscription["items"]["data"]}
        return (
            status_ok
            and (customer is None or subscription["customer"] == customer)
            and (price is None or price in prices)
            and created(subscription)
        )

    return sim.page(
        sim.newest_first("subscription"),
        params,
        "/v1/subscriptions",
        keep=keep,
        cursor_kind="subscription",
    )


def list_invoices(sim: Simulator, params: Params) -> Obj:
    params.reject_unknown(
        [
            "created",
            "customer",
            "ending_before",
            "expand",
            "limit",
            "starting_after",
            "status",
            "subscription",
        ]
    )
    filters = {field: params.text(field) for field in ("customer", "status", "subscription")}
    created = created_filter(params)

    def keep(invoice: Obj) -> bool:
        subscription = (invoice["parent"] or {}).get("subscription_details") or {}
        values = {
            "customer": invoice["customer"],
            "status": invoice["status"],
            "subscription": subscription.get("subscription"),
        }
        return created(invoice) and all(
            wanted is None or values[field] == wanted for field, wanted in filters.items()
        )

    return sim.page(
        sim.newest_first("invoice"), params, "/v1/invoices", keep=keep, cursor_kind="invoice"
    )
