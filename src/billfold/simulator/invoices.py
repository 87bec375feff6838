"""Invoices, their lines, invoice items and invoice payments: drafts, finalization, payment attempts.

    draft --finalize--> open --paid--------------> paid           invoice.created, .finalized,
      |                  |                                        .paid + .payment_succeeded
      |                  |--attempt fails--> open (again)         invoice.payment_failed
      |                  |--void--> void                          invoice.voided
      |                  '--mark_uncollectible--> uncollectible   invoice.marked_uncollectible
      '--delete (one-off drafts)                                  (uncollectible is still payable)

Every line has a stable ``il_`` id and the service period it pays for (``period``): on a renewal
that is the new period, while ``period_start``/``period_end`` describe the one that ended, as
Stripe does. Finalizing uses up the customer's credit balance first (``starting_balance``,
``ending_balance``); an invoice whose total is negative (a downgrade's credit) adds to it. An
invoice with something to pay gets one PaymentIntent at finalization (its default
``invoice_payment``, under ``payments``); each attempt is a Charge on it. A failed attempt of an
invoice that retries by itself sets ``next_payment_attempt`` from the configured dunning schedule
(``SimulatorConfig.dunning``), null after the last one. What a payment means for a subscription
is decided in ``subscriptions``; this module knows invoices only.

One-off invoices (``billing_reason=manual``, ``parent`` null): ``POST /v1/invoiceitems`` then
``POST /v1/invoices`` (``pending_invoice_items_behavior=include``), or the invoice first and items
with ``invoice=``; then finalize and pay.
"""

from __future__ import annotations

import copy
from decimal import Decimal

from billfold.simulator import catalog, errors, forms, money, objects, payment_methods, payments
from billfold.simulator.forms import Params
from billfold.simulator.objects import Obj
from billfold.simulator.service import Origin, Simulator, created_filter

DAY = 24 * 60 * 60
STATUSES = ("draft", "open", "paid", "uncollectible", "void")
COLLECTION_METHODS = ("charge_automatically", "send_invoice")
ONE_OFF_ATTEMPT_DELAY = 60 * 60  # Stripe attempts an auto-advancing invoice about an hour later
TIMES = "\u00d7"  # the multiplication sign of Stripe's line descriptions: "1 x Pro"


def subscription_id(invoice: Obj) -> str | None:
    parent = invoice["parent"] or {}
    details = parent.get("subscription_details") or {}
    value = details.get("subscription")
    return str(value) if value else None


def unit_decimal(amount: int, quantity: int) -> str:
    """``unit_amount_decimal`` of a line: its amount per unit, exact (a decimal string)."""
    if quantity <= 0:
        return str(amount)
    value = (Decimal(amount) / Decimal(quantity)).quantize(Decimal("0.000000000001"))
    text = format(value.normalize(), "f")
    return text


# -- drafts and lines ----------------------------------------------------------------------


def new_draft(
    sim: Simulator,
    *,
    customer: Obj,
    currency: str,
    billing_reason: str,
    period: tuple[int, int],
    subscription: Obj | None = None,
    metadata: dict[str, str] | None = None,
    description: str | None = None,
    auto_advance: bool = True,
    collection_method: str = "charge_automatically",
    days_until_due: int | None = None,
    default_payment_method: str | None = None,
) -> Obj:
    """A draft invoice without lines, stored but not announced (``announce`` emits it)."""
    invoice_id = objects.new_id("in_1")
    parent = None
    if subscription is not None:
        parent = {
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(subscription["metadata"]),
                "subscription": subscription["id"],
            },
            "type": "subscription_details",
        }
    invoice = objects.build(
        "invoice",
        amount_due=0,
        amount_overpaid=0,
        amount_paid=0,
        amount_remaining=0,
        attempt_count=0,
        attempted=False,
        auto_advance=auto_advance,
        automatic_tax={
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        billing_reason=billing_reason,
        collection_method=collection_method,
        created=sim.now(),
        currency=currency,
        customer=customer["id"],
        customer_email=customer["email"],
        customer_name=customer["name"],
        customer_shipping=None,
        default_payment_method=default_payment_method,
        description=description,
        due_date=None,
        effective_at=None,
        ending_balance=None,
        id=invoice_id,
        issuer={"type": "self"},
        lines=objects.list_object([], f"/v1/invoices/{invoice_id}/lines"),
        metadata=dict(metadata or {}),
        next_payment_attempt=None,
        number=None,
        parent=parent,
        payment_settings={
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        payments=objects.list_object([], f"/v1/invoices/{invoice_id}/payments"),
        period_end=period[1],
        period_start=period[0],
        starting_balance=0,
        status="draft",
        subtotal=0,
        subtotal_excluding_tax=0,
        test_clock=customer["test_clock"],
        total=0,
        total_excluding_tax=0,
    )
    sim.put(invoice)
    sim.state.notes(invoice_id)["days_until_due"] = days_until_due
    return invoice


def announce(sim: Simulator, invoice: Obj, *, origin: Origin) -> None:
    sim.emit("invoice.created", invoice, origin=origin)


def _line(
    invoice: Obj,
    *,
    amount: int,
    description: str,
    period: tuple[int, int],
    quantity: int,
    price: Obj | None,
    metadata: dict[str, str],
    subscription: str | None = None,
    subscription_item: str | None = None,
    invoice_item: str | None = None,
    proration: bool = False,
    unit_amount_decimal: str | None = None,
) -> Obj:
    details = {
        "invoice_item": invoice_item,
        "proration": proration,
        "proration_details": {"credited_items": None},
        "subscription": subscription,
    }
    if subscription_item is not None:
        parent: Obj = {
            "invoice_item_details": None,
            "subscription_item_details": {**details, "subscription_item": subscription_item},
            "type": "subscription_item_details",
        }
    else:
        parent = {
            "invoice_item_details": details,
            "subscription_item_details": None,
            "type": "invoice_item_details",
        }
    line = objects.build(
        "line_item",
        amount=amount,
        currency=invoice["currency"],
        description=description,
        discount_amounts=[],
        discountable=not proration,
        discounts=[],
        id=objects.new_id("il_1"),
        invoice=invoice["id"],
        metadata=dict(metadata),
        parent=parent,
        period={"end": period[1], "start": period[0]},
        pricing={
            "price_details": (
                {"price": price["id"], "product": price["product"]} if price is not None else None
            ),
            "type": "price_details",
            "unit_amount_decimal": unit_amount_decimal or unit_decimal(amount, quantity),
        },
        quantity=quantity,
        subscription=subscription,
        subtotal=amount,
    )
    invoice["lines"]["data"].append(line)
    _totals(invoice)
    return line


def item_description(sim: Simulator, price: Obj, quantity: int) -> str:
    """``1 x Pro (at $19.00 / month)`` (with Stripe's multiplication sign), as Stripe describes
    a subscription line."""
    product = sim.get("product", price["product"])
    recurring = price["recurring"] or {}
    every = recurring.get("interval", "")
    if recurring.get("interval_count", 1) != 1:
        every = f"{recurring['interval_count']} {every}s"
    unit = money.format_amount(price["unit_amount"], price["currency"])
    return f"{quantity} {TIMES} {product['name']} (at {unit} / {every})"


def add_subscription_line(
    sim: Simulator,
    invoice: Obj,
    subscription: Obj,
    item: Obj,
    *,
    period: tuple[int, int],
    trial: bool = False,
) -> Obj:
    """The line that bills ``item`` for ``period`` (a $0 line during a trial)."""
    price = item["price"]
    quantity = item["quantity"]
    if trial:
        product = sim.get("product", price["product"])
        amount, description = 0, f"Trial period for {product['name']}"
    else:
        amount = price["unit_amount"] * quantity
        description = item_description(sim, price, quantity)
    return _line(
        invoice,
        amount=amount,
        description=description,
        period=period,
        quantity=quantity,
        price=price,
        metadata=subscription["metadata"],
        subscription=subscription["id"],
        subscription_item=item["id"],
        unit_amount_decimal="0" if trial else price["unit_amount_decimal"],
    )


def add_item(sim: Simulator, invoice: Obj, item: Obj) -> Obj:
    """Put a pending invoice item on ``invoice`` as one of its lines."""
    if item["invoice"] is not None:
        raise errors.invalid(
            f"The invoice item {item['id']} is already on invoice {item['invoice']}.",
            param="invoice",
        )
    parent = item["parent"] or {}
    details = parent.get("subscription_details") or {}
    price_details = item["pricing"].get("price_details") or {}
    price = sim.state.collection("price").get(price_details.get("price") or "")
    item["invoice"] = invoice["id"]
    return _line(
        invoice,
        amount=item["amount"],
        description=item["description"] or "",
        period=(item["period"]["start"], item["period"]["end"]),
        quantity=item["quantity"],
        price=price,
        metadata=item["metadata"],
        subscription=details.get("subscription"),
        subscription_item=details.get("subscription_item"),
        invoice_item=item["id"],
        proration=item["proration"],
        unit_amount_decimal=item["pricing"]["unit_amount_decimal"],
    )


def _totals(invoice: Obj) -> None:
    total = sum(int(line["amount"]) for line in invoice["lines"]["data"])
    invoice.update(
        {
            "amount_due": max(total, 0),
            "amount_remaining": max(total, 0),
            "subtotal": total,
            "subtotal_excluding_tax": total,
            "total": total,
            "total_excluding_tax": total,
        }
    )


# -- invoice items -------------------------------------------------------------------------


def new_item(
    sim: Simulator,
    *,
    customer: Obj,
    amount: int,
    currency: str,
    description: str | None,
    period: tuple[int, int],
    origin: Origin,
    quantity: int = 1,
    price: Obj | None = None,
    metadata: dict[str, str] | None = None,
    subscription: str | None = None,
    subscription_item: str | None = None,
    proration: bool = False,
    unit_amount_decimal: str | None = None,
) -> Obj:
    """A pending invoice item (``invoiceitem.created``): a one-off charge or credit, or a
    proration waiting for the subscription's next invoice."""
    parent = None
    if subscription is not None:
        parent = {
            "subscription_details": {
                "subscription": subscription,
                "subscription_item": subscription_item,
            },
            "type": "subscription_details",
        }
    item = objects.build(
        "invoiceitem",
        amount=amount,
        currency=currency,
        customer=customer["id"],
        date=sim.now(),
        description=description,
        discountable=not proration,
        id=objects.new_id("ii_1"),
        invoice=None,
        metadata=dict(metadata or {}),
        net_amount=amount,
        parent=parent,
        period={"end": period[1], "start": period[0]},
        pricing={
            "price_details": (
                {"price": price["id"], "product": price["product"]} if price is not None else None
            ),
            "type": "price_details",
            "unit_amount_decimal": unit_amount_decimal or unit_decimal(amount, quantity),
        },
        proration=proration,
        quantity=quantity,
        test_clock=customer["test_clock"],
    )
    sim.put(item)
    sim.emit("invoiceitem.created", item, origin=origin)
    return item


def pending_items(sim: Simulator, customer_id: str, subscription: str | None) -> list[Obj]:
    """Pending invoice items of a customer: those of ``subscription``, or (None) those of no
    subscription, oldest first."""

    def of(item: Obj) -> str | None:
        details = (item["parent"] or {}).get("subscription_details") or {}
        value = details.get("subscription")
        return str(value) if value else None

    return [
        item
        for item in sim.state.collection("invoiceitem").values()
        if item["customer"] == customer_id and item["invoice"] is None and of(item) == subscription
    ]


# -- finalization, payment, and the other transitions -----------------------------------------


def finalize(sim: Simulator, invoice: Obj, *, origin: Origin, retries: bool) -> Obj:
    """draft -> open: use up the customer's balance, number it, make its PaymentIntent; an
    invoice with nothing left to pay is paid at once. ``retries``: a failed automatic attempt
    is retried on the dunning schedule."""
    if invoice["status"] != "draft":
        raise errors.invalid(
            f"This invoice is already finalized, you can't re-finalize a non-draft invoice. "
            f"(status: {invoice['status']})",
            param="invoice",
        )
    customer = sim.get("customer", invoice["customer"])
    now = sim.now()
    starting = int(customer["balance"])
    owed = starting + int(invoice["total"])
    customer["balance"] = min(owed, 0)
    number = customer.get("next_invoice_sequence") or 1
    customer["next_invoice_sequence"] = number + 1
    invoice.update(
        {
            "amount_due": max(owed, 0),
            "amount_remaining": max(owed, 0),
            "effective_at": now,
            "ending_balance": min(owed, 0),
            "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_simulator/{invoice['id']}",
            "invoice_pdf": f"https://pay.stripe.com/invoice/acct_simulator/{invoice['id']}/pdf",
            "number": f"{customer['invoice_prefix']}-{number:04d}",
            "starting_balance": starting,
            "status": "open",
        }
    )
    invoice["status_transitions"]["finalized_at"] = now
    extra = sim.state.notes(invoice["id"])
    extra["retries"] = retries
    if invoice["collection_method"] == "send_invoice":
        invoice["due_date"] = now + DAY * int(extra.get("days_until_due") or 30)
    sub_id = subscription_id(invoice)
    if sub_id is not None:
        subscription = sim.state.collection("subscription").get(sub_id)
        if subscription is not None:  # the metadata snapshot Stripe takes at finalization
            invoice["parent"]["subscription_details"]["metadata"] = dict(subscription["metadata"])
    if invoice["amount_due"] > 0:
        _payment_intent(sim, invoice, origin=origin)
        if invoice["auto_advance"] and invoice["collection_method"] == "charge_automatically":
            due = now if sub_id is not None else now + ONE_OFF_ATTEMPT_DELAY
            invoice["next_payment_attempt"] = due
    sim.emit("invoice.finalized", invoice, origin=origin)
    if invoice["amount_due"] == 0:
        _paid(sim, invoice, origin=origin)
    return invoice


def _payment_intent(sim: Simulator, invoice: Obj, *, origin: Origin) -> Obj:
    reason = invoice["billing_reason"]
    description = {
        "subscription_create": "Subscription creation",
        "subscription_cycle": "Subscription update",
        "subscription_update": "Subscription update",
    }.get(reason)
    intent = payments.create_intent(
        sim,
        amount=invoice["amount_due"],
        currency=invoice["currency"],
        customer=invoice["customer"],
        metadata={},
        description=description,
        origin=origin,
    )
    sim.state.notes(intent["id"])["invoice"] = invoice["id"]
    payment = objects.build(
        "invoice_payment",
        amount_requested=invoice["amount_due"],
        created=sim.now(),
        currency=invoice["currency"],
        id=objects.new_id("inpay_1"),
        invoice=invoice["id"],
        payment={"payment_intent": intent["id"], "type": "payment_intent"},
        status="open",
        status_transitions={"canceled_at": None, "paid_at": None},
    )
    sim.put(payment)
    _sync_payments(sim, invoice)
    return intent


def _own_payments(sim: Simulator, invoice: Obj) -> list[Obj]:
    return [
        payment
        for payment in sim.state.collection("invoice_payment").values()
        if payment["invoice"] == invoice["id"]
    ]


def _sync_payments(sim: Simulator, invoice: Obj) -> None:
    invoice["payments"]["data"] = [copy.deepcopy(p) for p in _own_payments(sim, invoice)]


def intent_of(sim: Simulator, invoice: Obj) -> Obj | None:
    for payment in _own_payments(sim, invoice):
        intent_id = payment["payment"].get("payment_intent")
        if intent_id:
            found: Obj = sim.get("payment_intent", intent_id)
            return found
    return None


def attempt(
    sim: Simulator,
    invoice: Obj,
    *,
    origin: Origin,
    method: Obj | None = None,
    preferred: str | None = None,
    approve: bool | None = None,
) -> bool:
    """One payment attempt: charge the invoice's PaymentIntent to ``method``, else to
    ``preferred`` (a subscription's default), the invoice's default or the customer's. True when
    paid; a failure emits ``invoice.payment_failed`` with the next scheduled attempt.
    ``approve=True`` skips the card's verdict (the card was just accepted on a hosted page)."""
    if invoice["status"] not in ("open", "uncollectible"):
        raise errors.invalid(
            f"Invoice {invoice['id']} is {invoice['status']}; only open or uncollectible invoices "
            "can be paid.",
            param="invoice",
        )
    customer = sim.get("customer", invoice["customer"])
    intent = intent_of(sim, invoice)
    assert intent is not None, "an open invoice with something to pay has a PaymentIntent"
    if method is None:
        method = payment_methods.charging_method(
            sim, customer, invoice["default_payment_method"], preferred
        )
    invoice["attempt_count"] += 1
    invoice["attempted"] = True
    approved = False
    if method is not None:
        decline = None if approve else payment_methods.decline_for(sim, customer["id"], method)
        approved = decline is None
        payments.pay_by_card(
            sim,
            intent,
            approved=approved,
            email=customer["email"],
            name=customer["name"],
            payment_method=method,
            decline_code=decline or "generic_decline",
        )
    if approved:
        _paid(sim, invoice, origin=origin)
        return True
    invoice["next_payment_attempt"] = _next_attempt(sim, invoice)
    sim.emit("invoice.payment_failed", invoice, origin=origin)
    return False


def _next_attempt(sim: Simulator, invoice: Obj) -> int | None:
    if not sim.peek(invoice["id"]).get("retries") or invoice["status"] != "open":
        return None
    policy = sim.config.dunning
    done = int(invoice["attempt_count"])
    if done >= policy.attempts:
        return None
    return sim.now() + DAY * policy.retry_after_days[done - 1]


def _paid(sim: Simulator, invoice: Obj, *, origin: Origin, out_of_band: bool = False) -> None:
    now = sim.now()
    invoice.update(
        {
            "amount_paid": invoice["amount_due"],
            "amount_remaining": 0,
            "next_payment_attempt": None,
            "status": "paid",
        }
    )
    invoice["status_transitions"]["paid_at"] = now
    paid = None
    for payment in _own_payments(sim, invoice):
        if out_of_band:
            payment["status"] = "canceled"
            payment["status_transitions"]["canceled_at"] = now
        else:
            payment.update({"amount_paid": payment["amount_requested"], "status": "paid"})
            payment["status_transitions"]["paid_at"] = now
            paid = payment
    _sync_payments(sim, invoice)
    if out_of_band:
        sim.state.notes(invoice["id"])["paid_out_of_band"] = True
    if paid is not None:
        sim.emit("invoice_payment.paid", paid, origin=origin)
    sim.emit("invoice.paid", invoice, origin=origin)
    if not out_of_band:
        sim.emit("invoice.payment_succeeded", invoice, origin=origin)


def pay_out_of_band(sim: Simulator, invoice: Obj, *, origin: Origin) -> None:
    intent = intent_of(sim, invoice)
    if intent is not None:
        payments.cancel_intent(sim, intent, reason="void_invoice", origin=origin)
    _paid(sim, invoice, origin=origin, out_of_band=True)


def void(sim: Simulator, invoice: Obj, *, origin: Origin) -> Obj:
    if invoice["status"] not in ("open", "uncollectible"):
        raise errors.invalid(
            f"You can only void an open or uncollectible invoice; this one is {invoice['status']}.",
            param="invoice",
        )
    now = sim.now()
    customer = sim.get("customer", invoice["customer"])
    # The credit this invoice used up goes back to the customer.
    customer["balance"] += int(invoice["starting_balance"]) - int(invoice["ending_balance"] or 0)
    invoice.update({"next_payment_attempt": None, "status": "void"})
    invoice["status_transitions"]["voided_at"] = now
    for payment in _own_payments(sim, invoice):
        if payment["status"] == "open":
            payment["status"] = "canceled"
            payment["status_transitions"]["canceled_at"] = now
    _sync_payments(sim, invoice)
    intent = intent_of(sim, invoice)
    if intent is not None:
        payments.cancel_intent(sim, intent, reason="void_invoice", origin=origin)
    sim.emit("invoice.voided", invoice, origin=origin)
    return invoice


def mark_uncollectible(sim: Simulator, invoice: Obj, *, origin: Origin) -> Obj:
    if invoice["status"] != "open":
        raise errors.invalid(
            f"You can only mark an open invoice uncollectible; this one is {invoice['status']}.",
            param="invoice",
        )
    invoice.update({"next_payment_attempt": None, "status": "uncollectible"})
    invoice["status_transitions"]["marked_uncollectible_at"] = sim.now()
    sim.emit("invoice.marked_uncollectible", invoice, origin=origin)
    return invoice


def stop_collecting(sim: Simulator, subscription_id_: str) -> None:
    """A subscription ended: its open invoices are no longer attempted by themselves."""
    for invoice in sim.state.collection("invoice").values():
        if subscription_id(invoice) == subscription_id_ and invoice["status"] == "open":
            invoice["next_payment_attempt"] = None
            invoice["auto_advance"] = False
            sim.state.notes(invoice["id"])["retries"] = False


# -- the API -------------------------------------------------------------------------------

INVOICE_PARAMS = (
    "auto_advance",
    "collection_method",
    "currency",
    "customer",
    "days_until_due",
    "default_payment_method",
    "description",
    "expand",
    "footer",
    "metadata",
    "pending_invoice_items_behavior",
)


def create_invoice(sim: Simulator, params: Params, *, origin: Origin) -> Obj:
    """``POST /v1/invoices``: a one-off draft (``billing_reason=manual``, no parent)."""
    if "subscription" in params:
        raise errors.unsupported("invoices created for a subscription", param="subscription")
    params.reject_unknown(INVOICE_PARAMS)
    customer = sim.get("customer", params.required_str("customer"), param="customer")
    with sim.for_customer(customer["id"]):
        behavior = params.choice("pending_invoice_items_behavior", ["exclude", "include"])
        method = params.choice("collection_method", COLLECTION_METHODS) or "charge_automatically"
        days = params.integer("days_until_due", minimum=0)
        if method == "send_invoice" and days is None:
            raise errors.invalid(
                "Missing required param: days_until_due (collection_method is send_invoice).",
                param="days_until_due",
            )
        pending = pending_items(sim, customer["id"], None) if behavior == "include" else []
        currency = params.text("currency") or (
            pending[0]["currency"] if pending else customer["currency"] or "usd"
        )
        default_method = params.text("default_payment_method")
        if default_method is not None:
            default_method = payment_methods.resolve(
                sim, default_method, customer["id"], origin=origin, param="default_payment_method"
            )
        now = sim.now()
        invoice = new_draft(
            sim,
            customer=customer,
            currency=currency.lower(),
            billing_reason="manual",
            period=(now, now),
            metadata=forms.apply_metadata({}, params.metadata()),
            description=params.text("description"),
            auto_advance=bool(params.boolean("auto_advance")),
            collection_method=method,
            days_until_due=days,
            default_payment_method=default_method,
        )
        for item in pending:
            if item["currency"] == invoice["currency"]:
                add_item(sim, invoice, item)
        announce(sim, invoice, origin=origin)
    return invoice


def update_invoice(sim: Simulator, invoice_id: str, params: Params, *, origin: Origin) -> Obj:
    params.reject_unknown(["auto_advance", "description", "expand", "metadata"])
    invoice = sim.get("invoice", invoice_id)
    with sim.for_customer(invoice["customer"]):
        previous: Obj = {}
        auto_advance = params.boolean("auto_advance")
        if auto_advance is not None and auto_advance != invoice["auto_advance"]:
            previous["auto_advance"] = invoice["auto_advance"]
            invoice["auto_advance"] = auto_advance
        if "description" in params:
            if invoice["status"] != "draft":
                raise errors.invalid(
                    "You can only update the description of a draft invoice.",
                    param="description",
                )
            previous["description"] = invoice["description"]
            invoice["description"] = params.text("description") or None
        merged = forms.apply_metadata(invoice["metadata"], params.metadata())
        if merged != invoice["metadata"]:
            previous["metadata"] = invoice["metadata"]
            invoice["metadata"] = merged
        if previous:
            sim.emit("invoice.updated", invoice, origin=origin, previous=previous)
    return invoice


def finalize_route(sim: Simulator, invoice_id: str, params: Params, *, origin: Origin) -> Obj:
    params.reject_unknown(["auto_advance", "expand"])
    invoice = sim.get("invoice", invoice_id)
    with sim.for_customer(invoice["customer"]):
        auto_advance = params.boolean("auto_advance")
        if auto_advance is not None:
            invoice["auto_advance"] = auto_advance
        retries = bool(invoice["auto_advance"]) and (
            invoice["collection_method"] == "charge_automatically"
        )
        return finalize(sim, invoice, origin=origin, retries=retries)


def void_route(sim: Simulator, invoice_id: str, params: Params, *, origin: Origin) -> Obj:
    params.reject_unknown(["expand"])
    invoice = sim.get("invoice", invoice_id)
    with sim.for_customer(invoice["customer"]):
        return void(sim, invoice, origin=origin)


def uncollectible_route(sim: Simulator, invoice_id: str, params: Params, *, origin: Origin) -> Obj:
    params.reject_unknown(["expand"])
    invoice = sim.get("invoice", invoice_id)
    with sim.for_customer(invoice["customer"]):
        return mark_uncollectible(sim, invoice, origin=origin)


def delete_draft(sim: Simulator, invoice_id: str, params: Params, *, origin: Origin) -> Obj:
    params.reject_unknown([])
    invoice = sim.get("invoice", invoice_id)
    if invoice["status"] != "draft":
        raise errors.invalid("You can only delete draft invoices.", param="invoice")
    if invoice["billing_reason"] != "manual":
        raise errors.invalid(
            "A subscription's draft invoice cannot be deleted; void it once finalized.",
            param="invoice",
        )
    for item in sim.state.collection("invoiceitem").values():
        if item["invoice"] == invoice_id:
            item["invoice"] = None
    del sim.state.collection("invoice")[invoice_id]
    sim.emit("invoice.deleted", invoice, origin=origin)
    return {"deleted": True, "id": invoice_id, "object": "invoice"}


def lines_page(sim: Simulator, invoice_id: str, params: Params) -> Obj:
    params.reject_unknown(["ending_before", "expand", "limit", "starting_after"])
    invoice = sim.get("invoice", invoice_id)
    return sim.page(
        invoice["lines"]["data"],
        params,
        f"/v1/invoices/{invoice_id}/lines",
        cursor_kind="line_item",
    )


def list_invoices(sim: Simulator, params: Params) -> Obj:
    params.reject_unknown(
        [
            "collection_method",
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
    status = params.choice("status", STATUSES)
    filters = {
        "collection_method": params.choice("collection_method", COLLECTION_METHODS),
        "customer": params.text("customer"),
        "status": status,
        "subscription": params.text("subscription"),
    }
    created = created_filter(params)

    def keep(invoice: Obj) -> bool:
        values = {
            "collection_method": invoice["collection_method"],
            "customer": invoice["customer"],
            "status": invoice["status"],
            "subscription": subscription_id(invoice),
        }
        return created(invoice) and all(
            wanted is None or values[field] == wanted for field, wanted in filters.items()
        )

    return sim.page(
        sim.newest_first("invoice"), params, "/v1/invoices", keep=keep, cursor_kind="invoice"
    )


ITEM_PARAMS = (
    "amount",
    "currency",
    "customer",
    "description",
    "discountable",
    "expand",
    "invoice",
    "metadata",
    "period",
    "price_data",
    "pricing",
    "quantity",
    "subscription",
    "unit_amount_decimal",
)


def create_item(sim: Simulator, params: Params, *, origin: Origin) -> Obj:
    """``POST /v1/invoiceitems``: a pending charge (or credit) for a customer's next invoice, or
    on the draft named by ``invoice``."""
    params.reject_unknown(ITEM_PARAMS)
    customer = sim.get("customer", params.required_str("customer"), param="customer")
    with sim.for_customer(customer["id"]):
        quantity = params.integer("quantity", minimum=1) or 1
        price = _item_price(sim, params)
        amount = params.integer("amount")
        if price is not None:
            if amount is not None:
                raise errors.invalid(
                    "You may only specify one of these parameters: amount, pricing[price].",
                    param="amount",
                )
            amount = int(price["unit_amount"]) * quantity
            currency = price["currency"]
        else:
            if amount is None:
                raise errors.parameter_missing("amount")
            currency = catalog.currency(params)
        invoice = None
        invoice_id = params.text("invoice")
        if invoice_id is not None:
            invoice = sim.get("invoice", invoice_id, param="invoice")
            if invoice["status"] != "draft" or invoice["customer"] != customer["id"]:
                raise errors.invalid(
                    "Invoice items can only be added to a draft invoice of the same customer.",
                    param="invoice",
                )
        subscription = params.text("subscription")
        if subscription is not None:
            sim.get("subscription", subscription, param="subscription")
        now = sim.now()
        period = (now, now)
        period_params = params.nested("period")
        if period_params is not None:
            period_params.reject_unknown(["end", "start"])
            start = period_params.integer("start", required=True)
            end = period_params.integer("end", required=True)
            assert start is not None
            assert end is not None
            period = (start, end)
        item = new_item(
            sim,
            customer=customer,
            amount=amount,
            currency=currency,
            description=params.text("description")
            or (sim.get("product", price["product"])["name"] if price else None),
            period=period,
            origin=origin,
            quantity=quantity,
            price=price,
            metadata=forms.apply_metadata({}, params.metadata()),
            subscription=subscription,
        )
        if invoice is not None:
            add_item(sim, invoice, item)
    return item


def _item_price(sim: Simulator, params: Params) -> Obj | None:
    pricing = params.nested("pricing")
    price_data = params.nested("price_data")
    if pricing is not None:
        pricing.reject_unknown(["price"])
        found: Obj = sim.get("price", pricing.required_str("price"), param="pricing[price]")
        return found
    if price_data is not None:
        price_data.reject_unknown(
            ["currency", "product", "tax_behavior", "unit_amount", "unit_amount_decimal"]
        )
        return catalog.create_price(sim, price_data, origin=None, inline=True)
    return None


def list_items(sim: Simulator, params: Params) -> Obj:
    params.reject_unknown(
        [
            "created",
            "customer",
            "ending_before",
            "expand",
            "invoice",
            "limit",
            "pending",
            "starting_after",
        ]
    )
    customer = params.text("customer")
    invoice = params.text("invoice")
    pending = params.boolean("pending")
    created = created_filter(params)

    def keep(item: Obj) -> bool:
        return (
            (customer is None or item["customer"] == customer)
            and (invoice is None or item["invoice"] == invoice)
            and (pending is None or (item["invoice"] is None) == pending)
            and created(item)
        )

    return sim.page(
        sim.newest_first("invoiceitem"),
        params,
        "/v1/invoiceitems",
        keep=keep,
        cursor_kind="invoiceitem",
    )


def delete_item(sim: Simulator, item_id: str, params: Params, *, origin: Origin) -> Obj:
    params.reject_unknown([])
    item = sim.get("invoiceitem", item_id)
    if item["invoice"] is not None:
        invoice = sim.get("invoice", item["invoice"])
        if invoice["status"] != "draft":
            raise errors.invalid(
                "This invoice item is on a finalized invoice and cannot be deleted.",
                param="invoiceitem",
            )
        invoice["lines"]["data"] = [
            line
            for line in invoice["lines"]["data"]
            if (line["parent"].get("invoice_item_details") or {}).get("invoice_item") != item_id
            and (line["parent"].get("subscription_item_details") or {}).get("invoice_item")
            != item_id
        ]
        _totals(invoice)
    del sim.state.collection("invoiceitem")[item_id]
    sim.emit("invoiceitem.deleted", item, origin=origin)
    return {"deleted": True, "id": item_id, "object": "invoiceitem"}


def list_payments(sim: Simulator, params: Params) -> Obj:
    params.reject_unknown(
        [
            "created",
            "ending_before",
            "expand",
            "invoice",
            "limit",
            "payment",
            "starting_after",
            "status",
        ]
    )
    invoice = params.text("invoice")
    status = params.choice("status", ["canceled", "open", "paid"])
    payment = params.nested("payment")
    intent = None
    if payment is not None:
        payment.reject_unknown(["payment_intent", "payment_record", "type"])
        intent = payment.text("payment_intent")
    created = created_filter(params)

    def keep(found: Obj) -> bool:
        return (
            (invoice is None or found["invoice"] == invoice)
            and (status is None or found["status"] == status)
            and (intent is None or found["payment"].get("payment_intent") == intent)
            and created(found)
        )

    return sim.page(
        sim.newest_first("invoice_payment"),
        params,
        "/v1/invoice_payments",
        keep=keep,
        cursor_kind="invoice_payment",
    )
