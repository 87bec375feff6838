"""Subscriptions: started by checkout or the API, renewed, changed, paused, canceled and dunned.

Statuses and what moves them (each move is a ``customer.subscription.updated`` unless named):

    trialing --trial ends, paid-----------> active
             --trial ends, no card (pause)--> paused          (+ .paused)
    incomplete --first invoice paid--------> active
               --23 hours, unpaid-----------> incomplete_expired (its invoice voided)
    active --renewal payment fails---------> past_due --paid--> active
    past_due --last retry fails-----------> canceled (.deleted) | unpaid | past_due (dunning policy)
    active|past_due|trialing --pause-------> paused  (+ .paused) --resume--> active (+ .resumed)
    any live --cancel now / cancel_at reached / period end with cancel_at_period_end--> canceled
                                                                            (.deleted, ended_at)

A renewal (the period end passes on the subscription's test clock, or the control route renews it
now) runs the chain Stripe runs: ``customer.subscription.updated`` (the new period on the items)
-> ``invoice.created`` -> ``invoice.finalized`` -> ``invoice.paid`` + ``invoice.payment_succeeded``,
or ``invoice.payment_failed`` -> ``customer.subscription.updated`` (``past_due``) and retries on the
dunning schedule. ``pause_collection`` leaves the status alone and only changes what happens to
renewal invoices (left as drafts, marked uncollectible, or voided); ``resumes_at`` lifts it.

Changing items (``POST /v1/subscriptions/{id}`` with ``items``) prorates with integer arithmetic:
a credit for the unused time of the old price and a charge for the remaining time of the new one,
over the current period from ``proration_date`` (default now). ``create_prorations`` leaves them
as pending invoice items for the next renewal invoice; ``always_invoice`` bills them at once
(``billing_reason=subscription_update``); ``none`` makes none. A change of interval resets the
billing cycle anchor and bills the new period at once. With ``payment_behavior`` set to
``pending_if_incomplete`` an immediate invoice that is not paid leaves the change waiting as
``pending_update`` (applied when the invoice is paid: ``.pending_update_applied``; dropped 23
hours later: ``.pending_update_expired``); ``error_if_incomplete`` refuses it with a 402 and
changes nothing (no charge is recorded).

``customer.subscription.created`` carries the subscription as it is at the end of the request
that created it (``active`` when its first payment succeeded), as Stripe renders it. Renewal
invoices are finalized and attempted in the same moment they are created (Stripe waits about an
hour before it finalizes); a test sees the whole chain at the period boundary.
"""

from __future__ import annotations

import calendar
import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from billfold.simulator import catalog, errors, forms, invoices, money, objects, payment_methods
from billfold.simulator.forms import Params
from billfold.simulator.objects import Obj
from billfold.simulator.service import DASHBOARD, Origin, Simulator, created_filter

DAY = 24 * 60 * 60
TRIAL_WILL_END_BEFORE = 3 * DAY
INCOMPLETE_WINDOW = 23 * 60 * 60
PENDING_UPDATE_WINDOW = 23 * 60 * 60
LIVE = ("active", "past_due", "trialing", "unpaid")
ENDED = ("canceled", "incomplete_expired")
STATUSES = (
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
PAYMENT_BEHAVIORS = (
    "allow_incomplete",
    "default_incomplete",
    "error_if_incomplete",
    "pending_if_incomplete",
)
PRORATION_BEHAVIORS = ("always_invoice", "create_prorations", "none")
MISSING_PAYMENT_METHOD = ("cancel", "create_invoice", "pause")
RENEWAL_OUTCOMES = ("paid", "failed")
NO_PAYMENT_METHOD = (
    "This customer has no attached payment source or default payment method. Please consider "
    "adding a default payment method."
)


# -- periods -------------------------------------------------------------------------------


def add_interval(start: int, interval: str, count: int) -> int:
    """``start`` plus ``count`` intervals; months clamp to the month's last day, as Stripe's do."""
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


period_end = add_interval  # the name the control route and older callers use


def boundary_after(anchor: int, interval: str, count: int, after: int) -> int:
    """The first period boundary counted from ``anchor`` that is later than ``after`` (counted
    from the anchor each time, so Jan 31 renews on Feb 28, then Mar 31)."""
    steps = 1
    boundary = add_interval(anchor, interval, count)
    while boundary <= after:
        steps += 1
        boundary = add_interval(anchor, interval, count * steps)
    return boundary


def recurring(price: Obj) -> tuple[str, int]:
    value = price["recurring"]
    return str(value["interval"]), int(value["interval_count"])


def current_period(subscription: Obj) -> tuple[int, int]:
    item = subscription["items"]["data"][0]
    return int(item["current_period_start"]), int(item["current_period_end"])


# -- starting a subscription ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    price: Obj
    quantity: int
    metadata: dict[str, str]


def _new_item(subscription_id: str, line: Line, *, start: int, end: int) -> Obj:
    price = copy.deepcopy(line.price)
    return objects.build(
        "subscription_item",
        created=start,
        current_period_end=end,
        current_period_start=start,
        discounts=[],
        id=objects.new_id("si_", 14),
        metadata=dict(line.metadata),
        plan=objects.plan_from_price(price),
        price=price,
        quantity=line.quantity,
        subscription=subscription_id,
        tax_rates=[],
    )


def start(
    sim: Simulator,
    *,
    customer: Obj,
    lines: list[Line],
    metadata: dict[str, str],
    origin: Origin,
    trial_end: int | None = None,
    default_payment_method: str | None = None,
    payment_behavior: str = "allow_incomplete",
    cancel_at: int | None = None,
    cancel_at_period_end: bool = False,
    missing_payment_method: str = "create_invoice",
    description: str | None = None,
    checkout_method: Obj | None = None,
) -> tuple[Obj, Obj]:
    """Create a subscription and its first invoice (a $0 one for a trial), paid if it can be."""
    now = sim.now()
    interval, count = recurring(lines[0].price)
    first_end = trial_end if trial_end is not None else add_interval(now, interval, count)
    sub_id = objects.new_id("sub_1")
    items = [_new_item(sub_id, line, start=now, end=first_end) for line in lines]
    subscription = objects.build(
        "subscription",
        automatic_tax={"disabled_reason": None, "enabled": False, "liability": None},
        billing_cycle_anchor=first_end if trial_end is not None else now,
        billing_mode={"flexible": None, "type": "classic"},
        created=now,
        currency=lines[0].price["currency"],
        customer=customer["id"],
        default_payment_method=default_payment_method,
        description=description,
        id=sub_id,
        items=objects.list_object(items, f"/v1/subscription_items?subscription={sub_id}"),
        latest_invoice=None,
        metadata=dict(metadata),
        payment_settings={
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        start_date=now,
        status="trialing" if trial_end is not None else "incomplete",
        test_clock=customer["test_clock"],
        trial_end=trial_end,
        trial_settings={"end_behavior": {"missing_payment_method": missing_payment_method}},
        trial_start=now if trial_end is not None else None,
    )
    if cancel_at_period_end:
        subscription.update(
            {"cancel_at": first_end, "cancel_at_period_end": True, "canceled_at": now}
        )
    elif cancel_at is not None:
        subscription.update({"cancel_at": cancel_at, "canceled_at": now})
    sim.put(subscription)
    created = sim.emit("customer.subscription.created", subscription, origin=origin)
    invoice = invoices.new_draft(
        sim,
        customer=customer,
        currency=subscription["currency"],
        billing_reason="subscription_create",
        period=(now, now),
        subscription=subscription,
    )
    for item in items:
        invoices.add_subscription_line(
            sim, invoice, subscription, item, period=(now, first_end), trial=trial_end is not None
        )
    subscription["latest_invoice"] = invoice["id"]
    invoices.announce(sim, invoice, origin=origin)
    invoices.finalize(sim, invoice, origin=origin, retries=False)
    if invoice["status"] == "paid":
        if subscription["status"] == "incomplete":
            subscription["status"] = "active"
    elif payment_behavior != "default_incomplete":
        paid = invoices.attempt(
            sim,
            invoice,
            origin=origin,
            method=checkout_method,
            preferred=default_payment_method,
            approve=True if checkout_method is not None else None,
        )
        if paid:
            subscription["status"] = "active"
    sim.rerender(created, subscription)
    if trial_end is not None and trial_end - now <= TRIAL_WILL_END_BEFORE:
        _trial_will_end(sim, subscription, origin=origin)
    return subscription, invoice


def _lines(sim: Simulator, params: Params, *, currency: str | None = None) -> list[Line]:
    item_params = params.items("items")
    if not item_params:
        raise errors.parameter_missing("items")
    lines = []
    for item in item_params:
        item.reject_unknown(["metadata", "plan", "price", "price_data", "quantity", "tax_rates"])
        price = _price(sim, item)
        quantity = item.integer("quantity", minimum=0)
        lines.append(
            Line(
                price=price,
                quantity=1 if quantity is None else quantity,
                metadata=forms.apply_metadata({}, item.metadata()),
            )
        )
    _check_same(lines, param="items", currency=currency)
    return lines


def _price(sim: Simulator, item: Params) -> Obj:
    price_id = item.text("price") or item.text("plan")
    price_data = item.nested("price_data")
    if price_id is not None and price_data is not None:
        raise errors.invalid(
            "You may only specify one of these parameters: price, price_data.",
            param=item.name("price"),
        )
    if price_data is not None:
        price = catalog.create_price(sim, price_data, origin=None, inline=True)
    elif price_id is not None:
        price = sim.get("price", price_id, param=item.name("price"))
    else:
        raise errors.parameter_missing(item.name("price"))
    if price["type"] != "recurring":
        raise errors.invalid(
            f"The price specified ({price['id']}) is not a recurring price; a subscription item "
            "needs one.",
            param=item.name("price"),
        )
    return price


def _check_same(lines: list[Line], *, param: str, currency: str | None = None) -> None:
    currencies = {line.price["currency"] for line in lines} | ({currency} if currency else set())
    intervals = {recurring(line.price) for line in lines}
    if len(currencies) > 1 or len(intervals) > 1:
        raise errors.invalid(
            "Currency and interval fields must match across all plans on this subscription. "
            f"Found mismatches in {'currency' if len(currencies) > 1 else 'interval'}.",
            param=param,
        )


def _trial_end_param(params: Params, now: int) -> int | None:
    days = params.integer("trial_period_days", minimum=0)
    raw = params.raw("trial_end")
    if days is not None and raw is not None:
        raise errors.invalid(
            "You may only specify one of these parameters: trial_end, trial_period_days.",
            param="trial_end",
        )
    if days:
        return now + days * DAY
    if raw is None or raw == "now":
        return None
    end = params.integer("trial_end")
    assert end is not None
    if end <= now:
        raise errors.invalid(
            "Invalid timestamp: must be an integer Unix timestamp in the future.",
            param="trial_end",
        )
    return end


def _missing_payment_method(params: Params) -> str:
    settings = params.nested("trial_settings")
    if settings is None:
        return "create_invoice"
    settings.reject_unknown(["end_behavior"])
    behavior = settings.nested("end_behavior", required=True)
    assert behavior is not None
    behavior.reject_unknown(["missing_payment_method"])
    return behavior.choice("missing_payment_method", MISSING_PAYMENT_METHOD) or "create_invoice"


CREATE_PARAMS = (
    "cancel_at",
    "cancel_at_period_end",
    "collection_method",
    "currency",
    "customer",
    "default_payment_method",
    "description",
    "expand",
    "items",
    "metadata",
    "off_session",
    "payment_behavior",
    "proration_behavior",
    "trial_end",
    "trial_period_days",
    "trial_settings",
)


def create(sim: Simulator, params: Params, *, origin: Origin) -> Obj:
    """``POST /v1/subscriptions``: a subscription for a customer, charged to its default card."""
    params.reject_unknown(CREATE_PARAMS)
    customer = sim.get("customer", params.required_str("customer"), param="customer")
    if params.choice("collection_method", ["charge_automatically", "send_invoice"]) not in (
        None,
        "charge_automatically",
    ):
        raise errors.unsupported("collection_method=send_invoice", param="collection_method")
    behavior = params.choice("payment_behavior", PAYMENT_BEHAVIORS) or "allow_incomplete"
    if behavior == "pending_if_incomplete":
        raise errors.invalid(
            "payment_behavior=pending_if_incomplete is only supported when updating a "
            "subscription.",
            param="payment_behavior",
        )
    with sim.for_customer(customer["id"]):
        now = sim.now()
        lines = _lines(sim, params, currency=params.text("currency"))
        trial_end = _trial_end_param(params, now)
        default_method = params.text("default_payment_method")
        if default_method:
            default_method = payment_methods.resolve(
                sim, default_method, customer["id"], origin=origin, param="default_payment_method"
            )
        cancel_at = _cancel_at(params, now, None)
        cancel_at_period_end = bool(params.boolean("cancel_at_period_end"))
        if cancel_at_period_end and cancel_at is not None:
            raise errors.invalid(
                "You may only specify one of these parameters: cancel_at, cancel_at_period_end.",
                param="cancel_at",
            )
        owed = 0
        if trial_end is None:
            owed = sum(int(line.price["unit_amount"]) * line.quantity for line in lines)
        if owed and behavior != "default_incomplete" and int(customer["balance"]) + owed > 0:
            method = payment_methods.charging_method(sim, customer, default_method)
            if method is None:
                raise errors.invalid(NO_PAYMENT_METHOD, param="default_payment_method")
            if behavior == "error_if_incomplete":
                decline = payment_methods.decline_for(sim, customer["id"], method)
                if decline is not None:
                    raise errors.card_declined("Your card was declined.", decline_code=decline)
        subscription, _ = start(
            sim,
            customer=customer,
            lines=lines,
            metadata=forms.apply_metadata({}, params.metadata()),
            origin=origin,
            trial_end=trial_end,
            default_payment_method=default_method,
            payment_behavior=behavior,
            cancel_at=cancel_at,
            cancel_at_period_end=cancel_at_period_end,
            missing_payment_method=_missing_payment_method(params),
            description=params.text("description"),
        )
    return subscription


def complete_checkout(sim: Simulator, session: Obj, *, email: str, name: str | None) -> Obj:
    """The payer paid a ``mode=subscription`` session: a customer (unless the session had one),
    the card attached to it, the subscription (trialing when asked) and its first invoice."""
    extras = sim.state.session_extras.get(session["id"], {})
    customer_id = session["customer"]
    if customer_id is None:
        customer_id = catalog.new_customer(sim, email=email, name=name, origin=DASHBOARD)["id"]
    customer = sim.get("customer", customer_id)
    with sim.for_customer(customer_id):
        now = sim.now()
        method = payment_methods.attach(sim, "pm_card_visa", customer_id, origin=DASHBOARD)
        method["billing_details"].update({"email": email, "name": name})
        trial_end = extras.get("trial_end")
        if trial_end is None and extras.get("trial_period_days"):
            trial_end = now + int(extras["trial_period_days"]) * DAY
        lines = [
            Line(price=line["price"], quantity=line["quantity"], metadata={})
            for line in sim.state.line_items[session["id"]]
        ]
        subscription, invoice = start(
            sim,
            customer=customer,
            lines=lines,
            metadata=dict(extras.get("subscription_metadata", {})),
            origin=DASHBOARD,
            trial_end=trial_end,
            default_payment_method=method["id"],
            missing_payment_method=extras.get("missing_payment_method", "create_invoice"),
            description=extras.get("subscription_description"),
            checkout_method=method,
        )
        session.update(
            {
                "customer": customer_id,
                "customer_details": objects.customer_details(email, name),
                "invoice": invoice["id"],
                "payment_status": "paid" if invoice["amount_paid"] > 0 else "no_payment_required",
                "status": "complete",
                "subscription": subscription["id"],
                "url": None,
            }
        )
        sim.emit("checkout.session.completed", session)
    return session


# -- what a payment means for a subscription -------------------------------------------------


def collect(
    sim: Simulator,
    invoice: Obj,
    *,
    origin: Origin,
    method: Obj | None = None,
) -> bool:
    """One payment attempt on ``invoice``, then what it means for its subscription."""
    subscription = _subscription_of(sim, invoice)
    preferred = subscription["default_payment_method"] if subscription else None
    paid = invoices.attempt(sim, invoice, origin=origin, method=method, preferred=preferred)
    if paid:
        after_paid(sim, invoice, origin=origin)
    else:
        _after_failure(sim, invoice, origin=origin)
    return paid


def _subscription_of(sim: Simulator, invoice: Obj) -> Obj | None:
    sub_id = invoices.subscription_id(invoice)
    if sub_id is None:
        return None
    return sim.state.collection("subscription").get(sub_id)


def after_paid(sim: Simulator, invoice: Obj, *, origin: Origin) -> None:
    """An invoice got paid: apply the update it carried, or bring its subscription back."""
    subscription = _subscription_of(sim, invoice)
    if subscription is None or subscription["status"] in ENDED:
        return
    if sim.peek(invoice["id"]).get("pending_update_of") == subscription["id"]:
        _apply_pending_update(sim, subscription, origin=origin)
        return
    recovering = ("incomplete", "past_due", "unpaid")
    if invoice["id"] == subscription["latest_invoice"] and subscription["status"] in recovering:
        previous = {"status": subscription["status"]}
        in_trial = subscription["trial_end"] is not None and subscription["trial_end"] > sim.now()
        subscription["status"] = "trialing" if in_trial else "active"
        sim.emit("customer.subscription.updated", subscription, origin=origin, previous=previous)


def _after_failure(sim: Simulator, invoice: Obj, *, origin: Origin) -> None:
    subscription = _subscription_of(sim, invoice)
    if subscription is None or subscription["status"] in ENDED:
        return
    if sim.peek(invoice["id"]).get("pending_update_of") == subscription["id"]:
        return  # the change waits; the subscription itself is in good standing
    if invoice["id"] == subscription["latest_invoice"] and subscription["status"] in (
        "active",
        "trialing",
    ):
        previous = {"status": subscription["status"]}
        subscription["status"] = "past_due"
        sim.emit("customer.subscription.updated", subscription, origin=origin, previous=previous)
    exhausted = (
        sim.peek(invoice["id"]).get("retries")
        and invoice["next_payment_attempt"] is None
        and invoice["status"] == "open"
    )
    if not exhausted:
        return
    policy = sim.config.dunning
    if policy.mark_uncollectible:
        invoices.mark_uncollectible(sim, invoice, origin=origin)
    if subscription["status"] != "past_due":
        return
    if policy.subscription_status == "canceled":
        _end(sim, subscription, at=sim.now(), reason="payment_failed", origin=origin)
    elif policy.subscription_status == "unpaid":
        subscription["status"] = "unpaid"
        sim.emit(
            "customer.subscription.updated",
            subscription,
            origin=origin,
            previous={"status": "past_due"},
        )


def pay_invoice(sim: Simulator, invoice_id: str, params: Params, *, origin: Origin) -> Obj:
    """``POST /v1/invoices/{id}/pay``: pay now (a draft is finalized first), or mark it paid
    outside Stripe; a declined card answers 402 after recording the failed attempt."""
    params.reject_unknown(["expand", "off_session", "paid_out_of_band", "payment_method"])
    invoice = sim.get("invoice", invoice_id)
    with sim.for_customer(invoice["customer"]):
        if invoice["status"] == "draft":
            retries = bool(invoice["auto_advance"]) and (
                invoice["collection_method"] == "charge_automatically"
            )
            invoices.finalize(sim, invoice, origin=origin, retries=retries)
            if invoice["status"] == "paid":
                after_paid(sim, invoice, origin=origin)
                return invoice
        if invoice["status"] == "paid":
            raise errors.invalid("Invoice is already paid.", param="invoice")
        if invoice["status"] not in ("open", "uncollectible"):
            raise errors.invalid(
                f"This invoice can no longer be paid; it is {invoice['status']}.", param="invoice"
            )
        if params.boolean("paid_out_of_band"):
            invoices.pay_out_of_band(sim, invoice, origin=origin)
            after_paid(sim, invoice, origin=origin)
            return invoice
        method = None
        reference = params.text("payment_method")
        if reference is not None:
            method_id = payment_methods.resolve(
                sim, reference, invoice["customer"], origin=origin, param="payment_method"
            )
            method = sim.get("payment_method", method_id)
        else:
            customer = sim.get("customer", invoice["customer"])
            subscription = _subscription_of(sim, invoice)
            preferred = subscription["default_payment_method"] if subscription else None
            if (
                payment_methods.charging_method(
                    sim, customer, invoice["default_payment_method"], preferred
                )
                is None
            ):
                raise errors.invalid(NO_PAYMENT_METHOD, param="payment_method")
        if not collect(sim, invoice, origin=origin, method=method):
            intent = invoices.intent_of(sim, invoice)
            error = (intent or {}).get("last_payment_error") or {}
            raise errors.card_declined(
                str(error.get("message") or "Your card was declined."),
                decline_code=str(error.get("decline_code") or "generic_decline"),
            )
    return invoice


# -- renewals, trials, scheduled ends --------------------------------------------------------


def renew(sim: Simulator, subscription: Obj, *, origin: Origin = DASHBOARD) -> Obj:
    """The current period ended: roll the items into the next one and bill it."""
    start_, end = current_period(subscription)
    previous: Obj = {
        "items": copy.deepcopy(subscription["items"]),
        "latest_invoice": subscription["latest_invoice"],
    }
    anchor = int(subscription["billing_cycle_anchor"])
    for item in subscription["items"]["data"]:
        interval, count = recurring(item["price"])
        item["current_period_start"] = end
        item["current_period_end"] = boundary_after(anchor, interval, count, end)
    invoice = _period_invoice(sim, subscription, reason="subscription_cycle", ended=(start_, end))
    sim.emit("customer.subscription.updated", subscription, origin=origin, previous=previous)
    invoices.announce(sim, invoice, origin=origin)
    _bill_period(sim, subscription, invoice, origin=origin)
    return subscription


def _period_invoice(
    sim: Simulator, subscription: Obj, *, reason: str, ended: tuple[int, int]
) -> Obj:
    """A draft for the items' (new) current period, with the subscription's pending items."""
    customer = sim.get("customer", subscription["customer"])
    invoice = invoices.new_draft(
        sim,
        customer=customer,
        currency=subscription["currency"],
        billing_reason=reason,
        period=ended,
        subscription=subscription,
    )
    for item in subscription["items"]["data"]:
        period = (int(item["current_period_start"]), int(item["current_period_end"]))
        invoices.add_subscription_line(sim, invoice, subscription, item, period=period)
    for pending in invoices.pending_items(sim, customer["id"], subscription["id"]):
        invoices.add_item(sim, invoice, pending)
    subscription["latest_invoice"] = invoice["id"]
    return invoice


def _bill_period(sim: Simulator, subscription: Obj, invoice: Obj, *, origin: Origin) -> None:
    """Finalize and collect a renewal invoice, unless the subscription says otherwise."""
    pause = subscription["pause_collection"]
    if subscription["status"] == "unpaid" or (pause and pause["behavior"] == "keep_as_draft"):
        return  # left as a draft, as Stripe leaves them
    invoices.finalize(sim, invoice, origin=origin, retries=True)
    if invoice["status"] == "paid":
        after_paid(sim, invoice, origin=origin)
    elif pause and pause["behavior"] == "mark_uncollectible":
        invoices.mark_uncollectible(sim, invoice, origin=origin)
    elif pause and pause["behavior"] == "void":
        invoices.void(sim, invoice, origin=origin)
    else:
        collect(sim, invoice, origin=origin)


def _trial_will_end(sim: Simulator, subscription: Obj, *, origin: Origin = DASHBOARD) -> None:
    extra = sim.state.notes(subscription["id"])
    if extra.get("trial_will_end_for") == subscription["trial_end"]:
        return
    extra["trial_will_end_for"] = subscription["trial_end"]
    sim.emit("customer.subscription.trial_will_end", subscription, origin=origin)


def end_trial(sim: Simulator, subscription: Obj, *, origin: Origin = DASHBOARD) -> Obj:
    """The trial is over: bill the first real period, or pause or cancel without a card."""
    now = sim.now()
    customer = sim.get("customer", subscription["customer"])
    method = payment_methods.charging_method(sim, customer, subscription["default_payment_method"])
    behavior = subscription["trial_settings"]["end_behavior"]["missing_payment_method"]
    previous: Obj = {"status": subscription["status"]}
    if subscription["trial_end"] != now:
        previous["trial_end"] = subscription["trial_end"]
        subscription["trial_end"] = now
    if method is None and behavior == "pause":
        subscription["status"] = "paused"
        sim.emit("customer.subscription.updated", subscription, origin=origin, previous=previous)
        sim.emit("customer.subscription.paused", subscription, origin=origin)
        return subscription
    if method is None and behavior == "cancel":
        return _end(sim, subscription, at=now, reason="cancellation_requested", origin=origin)
    trial = (int(subscription["trial_start"] or now), now)
    previous.update(
        {
            "billing_cycle_anchor": subscription["billing_cycle_anchor"],
            "items": copy.deepcopy(subscription["items"]),
            "latest_invoice": subscription["latest_invoice"],
        }
    )
    subscription["billing_cycle_anchor"] = now
    for item in subscription["items"]["data"]:
        interval, count = recurring(item["price"])
        item["current_period_start"] = now
        item["current_period_end"] = add_interval(now, interval, count)
    subscription["status"] = "active"
    invoice = _period_invoice(sim, subscription, reason="subscription_cycle", ended=trial)
    sim.emit("customer.subscription.updated", subscription, origin=origin, previous=previous)
    invoices.announce(sim, invoice, origin=origin)
    _bill_period(sim, subscription, invoice, origin=origin)
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
    details = subscription["cancellation_details"] or {"comment": None, "feedback": None}
    subscription["cancellation_details"] = {**details, "reason": reason}
    invoices.stop_collecting(sim, subscription["id"])
    sim.emit("customer.subscription.deleted", subscription, origin=origin)
    return subscription


def expire_incomplete(sim: Simulator, subscription: Obj, *, origin: Origin = DASHBOARD) -> None:
    """23 hours passed and the first invoice is still unpaid: a terminal status."""
    latest = sim.state.collection("invoice").get(subscription["latest_invoice"] or "")
    if latest is not None and latest["status"] == "open":
        invoices.void(sim, latest, origin=origin)
    subscription.update({"ended_at": sim.now(), "status": "incomplete_expired"})
    sim.emit(
        "customer.subscription.updated",
        subscription,
        origin=origin,
        previous={"ended_at": None, "status": "incomplete"},
    )


def lift_pause_collection(sim: Simulator, subscription: Obj, *, origin: Origin = DASHBOARD) -> None:
    previous = {"pause_collection": subscription["pause_collection"]}
    subscription["pause_collection"] = None
    sim.emit("customer.subscription.updated", subscription, origin=origin, previous=previous)


def expire_pending_update(sim: Simulator, subscription: Obj, *, origin: Origin = DASHBOARD) -> None:
    extra = sim.state.notes(subscription["id"])
    plan = extra.pop("pending_plan", None)
    subscription["pending_update"] = None
    if plan is not None:
        invoice = sim.state.collection("invoice").get(plan["invoice"])
        if invoice is not None and invoice["status"] == "open":
            invoices.void(sim, invoice, origin=origin)
    sim.emit("customer.subscription.pending_update_expired", subscription, origin=origin)


Work = tuple[int, int, Callable[[], object]]


def due_work(sim: Simulator, subscription: Obj) -> list[Work]:
    """What this subscription has to do at which times: ``(at, rank, action)``; at one time the
    lower rank goes first (a scheduled end before the renewal it replaces)."""
    status = subscription["status"]
    work: list[Work] = []
    if status in ENDED:
        return work
    if status == "incomplete":
        at = int(subscription["created"]) + INCOMPLETE_WINDOW
        work.append((at, 0, lambda: expire_incomplete(sim, subscription)))
        return work
    pending = subscription["pending_update"]
    if pending is not None:
        work.append(
            (int(pending["expires_at"]), 0, lambda: expire_pending_update(sim, subscription))
        )
    pause = subscription["pause_collection"]
    if pause and pause.get("resumes_at"):
        resumes = int(pause["resumes_at"])
        work.append((resumes, 1, lambda: lift_pause_collection(sim, subscription)))
    if status == "paused":
        return work
    if status == "trialing" and subscription["trial_end"] is not None:
        trial_end = int(subscription["trial_end"])
        if sim.peek(subscription["id"]).get("trial_will_end_for") != trial_end:
            at = max(trial_end - TRIAL_WILL_END_BEFORE, int(subscription["created"]))
            work.append((at, 2, lambda: _trial_will_end(sim, subscription)))
    if subscription["cancel_at"] is not None:
        at = int(subscription["cancel_at"])
        work.append(
            (at, 3, lambda: _end(sim, subscription, at=at, reason="cancellation_requested"))
        )
    _, end = current_period(subscription)
    if status == "trialing" and subscription["trial_end"] is not None:
        work.append((int(subscription["trial_end"]), 4, lambda: end_trial(sim, subscription)))
    else:
        work.append((end, 5, lambda: renew(sim, subscription)))
    return work


def retry_work(sim: Simulator, invoice: Obj) -> list[Work]:
    """An open invoice's next automatic payment attempt, if it has one."""
    attempt_at = invoice["next_payment_attempt"]
    if invoice["status"] != "open" or attempt_at is None or not invoice["auto_advance"]:
        return []
    return [(int(attempt_at), 6, lambda: collect(sim, invoice, origin=DASHBOARD))]


def renew_now(sim: Simulator, subscription_id: str, *, outcome: str) -> Obj:
    """The control route: end the current period now (a real-time subscription has no clock)."""
    if outcome not in RENEWAL_OUTCOMES:
        raise errors.invalid(
            f"outcome must be one of {', '.join(RENEWAL_OUTCOMES)}", param="outcome"
        )
    subscription = sim.get("subscription", subscription_id)
    if subscription["status"] not in ("active", "past_due", "trialing", "unpaid"):
        raise errors.invalid(
            f"A {subscription['status']} subscription cannot renew.", param="subscription"
        )
    with sim.for_customer(subscription["customer"]):
        _, end = current_period(subscription)
        cancel_at = subscription["cancel_at"]
        if cancel_at is not None and cancel_at <= end:
            return _end(sim, subscription, at=int(cancel_at), reason="cancellation_requested")
        if outcome == "failed":
            payment_methods.fail_next_payment(
                sim, subscription["customer"], count=1, decline_code="generic_decline"
            )
        if subscription["status"] == "trialing":
            return end_trial(sim, subscription)
        return renew(sim, subscription)


# -- changes ---------------------------------------------------------------------------------


def _live(subscription: Obj, param: str) -> None:
    if subscription["status"] in ENDED:
        raise errors.invalid(
            "A canceled subscription can only update its cancellation_details and metadata.",
            param=param,
        )


def _cancel_at(params: Params, now: int, period: tuple[int, int] | None) -> int | None:
    """``cancel_at``: a timestamp, ``min_period_end``/``max_period_end``, or "" (None here)."""
    raw = params.raw("cancel_at")
    if raw is None or raw == "":
        return None
    if raw in ("min_period_end", "max_period_end"):
        if period is None:
            raise errors.invalid(f"cancel_at={raw} needs a current period.", param="cancel_at")
        return period[1]
    value = params.integer("cancel_at")
    assert value is not None
    if value <= now:
        raise errors.invalid("cancel_at must be in the future.", param="cancel_at")
    return value


@dataclass(frozen=True, slots=True)
class _Proration:
    amount: int
    description: str
    item: Obj
    period: tuple[int, int]


def _proration_lines(
    sim: Simulator,
    subscription: Obj,
    changes: list[tuple[Obj | None, Obj | None]],
    *,
    at: int,
    period: tuple[int, int],
) -> list[_Proration]:
    """Credits for the unused time of what goes, charges for the remaining time of what comes."""
    start_, end = period
    lines: list[_Proration] = []
    for old, new in changes:
        for item, sign in ((old, -1), (new, 1)):
            if item is None:
                continue
            full = int(item["price"]["unit_amount"]) * int(item["quantity"])
            amount = sign * money.prorate(full, end - at, end - start_)
            if amount == 0:
                continue
            product = sim.get("product", item["price"]["product"])
            what = "Unused time on" if sign < 0 else "Remaining time on"
            lines.append(
                _Proration(
                    amount=amount,
                    description=f"{what} {item['quantity']} {invoices.TIMES} {product['name']} "
                    f"after {money.day(at)}",
                    item=item,
                    period=(at, end),
                )
            )
    return lines


def _proration_items(
    sim: Simulator, subscription: Obj, lines: list[_Proration], *, origin: Origin
) -> list[Obj]:
    customer = sim.get("customer", subscription["customer"])
    return [
        invoices.new_item(
            sim,
            customer=customer,
            amount=line.amount,
            currency=subscription["currency"],
            description=line.description,
            period=line.period,
            origin=origin,
            quantity=int(line.item["quantity"]),
            price=line.item["price"],
            metadata={},
            subscription=subscription["id"],
            subscription_item=line.item["id"],
            proration=True,
        )
        for line in lines
    ]


@dataclass(slots=True)
class _Plan:
    items: list[Obj]
    changes: list[tuple[Obj | None, Obj | None]]
    anchor: int | None  # a new billing cycle anchor when the interval changes


def _plan(sim: Simulator, subscription: Obj, params: Params, *, at: int) -> _Plan:
    current = subscription["items"]["data"]
    items = copy.deepcopy(current)
    changes: list[tuple[Obj | None, Obj | None]] = []
    for position, item_params in enumerate(params.items("items")):
        item_params.reject_unknown(
            ["clear_usage", "deleted", "id", "metadata", "plan", "price", "price_data", "quantity"]
        )
        item_id = item_params.text("id")
        if item_id is None:
            price = _price(sim, item_params)
            quantity = item_params.integer("quantity", minimum=0)
            line = Line(
                price=price,
                quantity=1 if quantity is None else quantity,
                metadata=forms.apply_metadata({}, item_params.metadata()),
            )
            start_, end = current_period(subscription)
            added = _new_item(subscription["id"], line, start=start_, end=end)
            added["created"] = at
            items.append(added)
            changes.append((None, added))
            continue
        found = next((i for i in items if i["id"] == item_id), None)
        if found is None:
            raise errors.invalid(
                f"No such subscription item: '{item_id}'",
                param=f"items[{position}][id]",
                code="resource_missing",
            )
        old = copy.deepcopy(found)
        if item_params.boolean("deleted"):
            items.remove(found)
            changes.append((old, None))
            continue
        if "price" in item_params or "price_data" in item_params or "plan" in item_params:
            price = _price(sim, item_params)
            found["price"] = copy.deepcopy(price)
            found["plan"] = objects.plan_from_price(price)
        quantity = item_params.integer("quantity", minimum=0)
        if quantity is not None:
            found["quantity"] = quantity
        found["metadata"] = forms.apply_metadata(found["metadata"], item_params.metadata())
        if (found["price"]["id"], found["quantity"]) != (old["price"]["id"], old["quantity"]):
            changes.append((old, found))
    if not items:
        raise errors.invalid(
            "A subscription must keep at least one item; cancel it instead.", param="items"
        )
    _check_same(
        [Line(price=i["price"], quantity=i["quantity"], metadata={}) for i in items],
        param="items",
        currency=subscription["currency"],
    )
    anchor = None
    if recurring(items[0]["price"]) != recurring(current[0]["price"]):
        anchor = at
        for item in items:
            interval, count = recurring(item["price"])
            item["current_period_start"] = at
            item["current_period_end"] = add_interval(at, interval, count)
    return _Plan(items=items, changes=changes, anchor=anchor)


def _apply_plan(subscription: Obj, plan: _Plan) -> None:
    subscription["items"]["data"] = plan.items
    if plan.anchor is not None:
        subscription["billing_cycle_anchor"] = plan.anchor


def _plan_to_json(plan: _Plan, invoice_id: str) -> Obj:
    """What a pending update will do once ``invoice_id`` is paid (kept in the state's notes)."""
    return {"items": copy.deepcopy(plan.items), "anchor": plan.anchor, "invoice": invoice_id}


def _apply_pending_update(sim: Simulator, subscription: Obj, *, origin: Origin) -> None:
    plan = sim.state.notes(subscription["id"]).pop("pending_plan", None)
    if plan is None:
        return
    previous = {
        "items": copy.deepcopy(subscription["items"]),
        "pending_update": subscription["pending_update"],
    }
    _apply_plan(subscription, _Plan(items=plan["items"], changes=[], anchor=plan["anchor"]))
    subscription["pending_update"] = None
    sim.emit("customer.subscription.updated", subscription, origin=origin, previous=previous)
    sim.emit("customer.subscription.pending_update_applied", subscription, origin=origin)


UPDATE_PARAMS = (
    "cancel_at",
    "cancel_at_period_end",
    "cancellation_details",
    "default_payment_method",
    "description",
    "expand",
    "items",
    "metadata",
    "off_session",
    "pause_collection",
    "payment_behavior",
    "proration_behavior",
    "proration_date",
    "trial_end",
)
PENDING_IF_INCOMPLETE_PARAMS = (
    "expand",
    "items",
    "off_session",
    "payment_behavior",
    "proration_behavior",
    "proration_date",
)


def update(sim: Simulator, subscription_id: str, params: Params, *, origin: Origin) -> Obj:
    """``POST /v1/subscriptions/{id}``."""
    params.reject_unknown(UPDATE_PARAMS)
    subscription = sim.get("subscription", subscription_id)
    with sim.for_customer(subscription["customer"]):
        return _update(sim, subscription, params, origin=origin)


def _update(sim: Simulator, subscription: Obj, params: Params, *, origin: Origin) -> Obj:
    now = sim.now()
    behavior = params.choice("payment_behavior", PAYMENT_BEHAVIORS) or "allow_incomplete"
    if behavior == "pending_if_incomplete":
        for key in params.names():
            if key not in PENDING_IF_INCOMPLETE_PARAMS:
                raise errors.invalid(
                    "When payment_behavior is pending_if_incomplete, you can only update "
                    f"{', '.join(PENDING_IF_INCOMPLETE_PARAMS)}; '{key}' is not one of them.",
                    param=key,
                )
    previous: Obj = {}
    metadata = forms.apply_metadata(subscription["metadata"], params.metadata())
    if metadata != subscription["metadata"]:
        previous["metadata"] = subscription["metadata"]
        subscription["metadata"] = metadata
    details = params.nested("cancellation_details")
    if details is not None:
        details.reject_unknown(["comment", "feedback"])
        current = subscription["cancellation_details"] or {
            "comment": None,
            "feedback": None,
            "reason": None,
        }
        updated = dict(current)
        if "comment" in details:
            updated["comment"] = details.text("comment") or None
        if "feedback" in details:
            updated["feedback"] = details.text("feedback") or None
        if updated != current:
            previous["cancellation_details"] = current
            subscription["cancellation_details"] = updated
    changes_status = [k for k in params.names() if k not in ("metadata", "cancellation_details")]
    if changes_status and changes_status != ["expand"]:
        _live(subscription, changes_status[0])
    if "description" in params:
        value = params.text("description") or None
        if value != subscription["description"]:
            previous["description"] = subscription["description"]
            subscription["description"] = value
    if "default_payment_method" in params:
        reference = params.text("default_payment_method") or None
        value = (
            payment_methods.resolve(
                sim,
                reference,
                subscription["customer"],
                origin=origin,
                param="default_payment_method",
            )
            if reference
            else None
        )
        if value != subscription["default_payment_method"]:
            previous["default_payment_method"] = subscription["default_payment_method"]
            subscription["default_payment_method"] = value
    _schedule_cancellation(subscription, params, now=now, previous=previous)
    if "pause_collection" in params:
        _pause_collection(subscription, params, now=now, previous=previous)
    trial_end_now = False
    if "trial_end" in params:
        trial_end_now = _trial_end_update(sim, subscription, params, now=now, previous=previous)
    if "items" in params:
        _change_items(
            sim, subscription, params, previous=previous, behavior=behavior, origin=origin
        )
    elif previous:
        sim.emit("customer.subscription.updated", subscription, origin=origin, previous=previous)
    if trial_end_now:
        end_trial(sim, subscription, origin=origin)
    return subscription


def _schedule_cancellation(subscription: Obj, params: Params, *, now: int, previous: Obj) -> None:
    at_period_end = params.boolean("cancel_at_period_end")
    if "cancel_at" not in params and at_period_end is None:
        return
    if at_period_end and params.raw("cancel_at") not in (None, ""):
        raise errors.invalid(
            "You may only specify one of these parameters: cancel_at, cancel_at_period_end.",
            param="cancel_at",
        )
    before = {
        "cancel_at": subscription["cancel_at"],
        "cancel_at_period_end": subscription["cancel_at_period_end"],
        "canceled_at": subscription["canceled_at"],
    }
    period = current_period(subscription)
    if at_period_end:
        subscription.update(
            {"cancel_at": period[1], "cancel_at_period_end": True, "canceled_at": now}
        )
    elif "cancel_at" in params:
        cancel_at = _cancel_at(params, now, period)
        subscription.update(
            {
                "cancel_at": cancel_at,
                "cancel_at_period_end": False,
                "canceled_at": now if cancel_at is not None else None,
            }
        )
    else:  # cancel_at_period_end=false: keep it going
        subscription.update({"cancel_at": None, "cancel_at_period_end": False, "canceled_at": None})
    if before["cancel_at"] == subscription["cancel_at"] and (
        before["cancel_at_period_end"] == subscription["cancel_at_period_end"]
    ):
        subscription["canceled_at"] = before["canceled_at"]  # nothing changed
        return
    previous.update(before)


def _pause_collection(subscription: Obj, params: Params, *, now: int, previous: Obj) -> None:
    value = None
    nested = params.nested("pause_collection")
    if nested is not None and nested.keys():
        nested.reject_unknown(["behavior", "resumes_at"])
        behavior = nested.choice(
            "behavior", ["keep_as_draft", "mark_uncollectible", "void"], required=True
        )
        resumes_at = nested.integer("resumes_at")
        if resumes_at is not None and resumes_at <= now:
            raise errors.invalid(
                "resumes_at must be in the future.", param="pause_collection[resumes_at]"
            )
        value = {"behavior": behavior, "resumes_at": resumes_at}
    if value != subscription["pause_collection"]:
        previous["pause_collection"] = subscription["pause_collection"]
        subscription["pause_collection"] = value


def _trial_end_update(
    sim: Simulator, subscription: Obj, params: Params, *, now: int, previous: Obj
) -> bool:
    """``trial_end``: "now" ends the trial (True: after the other changes), a time moves it."""
    if subscription["status"] != "trialing":
        raise errors.unsupported(
            "trial_end on a subscription that is not trialing", param="trial_end"
        )
    if params.raw("trial_end") == "now":
        return True
    end = params.integer("trial_end")
    assert end is not None
    if end <= now:
        raise errors.invalid(
            "Invalid timestamp: must be an integer Unix timestamp in the future.",
            param="trial_end",
        )
    previous.update(
        {
            "billing_cycle_anchor": subscription["billing_cycle_anchor"],
            "items": copy.deepcopy(subscription["items"]),
            "trial_end": subscription["trial_end"],
        }
    )
    subscription.update({"billing_cycle_anchor": end, "trial_end": end})
    for item in subscription["items"]["data"]:
        item["current_period_end"] = end
    return False


def _change_items(
    sim: Simulator,
    subscription: Obj,
    params: Params,
    *,
    previous: Obj,
    behavior: str,
    origin: Origin,
) -> None:
    if subscription["pending_update"] is not None:
        raise errors.invalid(
            "This subscription has a pending update; pay its invoice or wait until the update "
            "expires before changing its items again.",
            param="items",
        )
    if subscription["status"] not in ("active", "past_due", "trialing"):
        raise errors.unsupported(
            f"changing the items of a {subscription['status']} subscription", param="items"
        )
    now = sim.now()
    period = current_period(subscription)
    at = params.integer("proration_date")
    if at is None:
        at = now
    elif not period[0] <= at <= period[1]:
        raise errors.invalid(
            "proration_date must be within the subscription's current period.",
            param="proration_date",
        )
    proration = params.choice("proration_behavior", PRORATION_BEHAVIORS) or "create_prorations"
    if subscription["status"] == "trialing":
        proration = "none"  # nothing was paid for the trial, nothing to prorate
    plan = _plan(sim, subscription, params, at=at)
    if not plan.changes and plan.anchor is None:
        subscription["items"]["data"] = plan.items  # item metadata, at most
        if previous:
            sim.emit(
                "customer.subscription.updated", subscription, origin=origin, previous=previous
            )
        return
    if plan.anchor is not None and subscription["status"] == "trialing":
        raise errors.unsupported("changing the interval during a trial", param="items")
    lines: list[_Proration] = []
    if proration != "none":
        prorated = plan.changes
        if plan.anchor is not None:  # credit everything unused; the new period is billed whole
            prorated = [(old, None) for old in copy.deepcopy(subscription["items"]["data"])]
        lines = _proration_lines(sim, subscription, prorated, at=at, period=period)
    immediate = plan.anchor is not None or (proration == "always_invoice" and bool(lines))
    customer = sim.get("customer", subscription["customer"])
    if immediate and behavior == "error_if_incomplete":
        owed = sum(line.amount for line in lines) + int(customer["balance"])
        if plan.anchor is not None:
            owed += sum(int(i["price"]["unit_amount"]) * int(i["quantity"]) for i in plan.items)
        method = payment_methods.charging_method(
            sim, customer, subscription["default_payment_method"]
        )
        if owed > 0:
            decline = (
                "generic_decline"
                if method is None
                else payment_methods.decline_for(sim, customer["id"], method)
            )
            if decline is not None:
                raise errors.card_declined("Your card was declined.", decline_code=decline)
    if immediate and behavior == "pending_if_incomplete":
        _pending_if_incomplete(sim, subscription, plan, lines, at=at, origin=origin)
        if previous:
            sim.emit(
                "customer.subscription.updated", subscription, origin=origin, previous=previous
            )
        return
    previous["items"] = copy.deepcopy(subscription["items"])
    if plan.anchor is not None:
        previous["billing_cycle_anchor"] = subscription["billing_cycle_anchor"]
    _apply_plan(subscription, plan)
    _proration_items(sim, subscription, lines, origin=origin)
    if not immediate:
        sim.emit("customer.subscription.updated", subscription, origin=origin, previous=previous)
        return
    previous["latest_invoice"] = subscription["latest_invoice"]
    invoice = _update_invoice(sim, subscription, plan, at=at)
    sim.emit("customer.subscription.updated", subscription, origin=origin, previous=previous)
    invoices.announce(sim, invoice, origin=origin)
    invoices.finalize(sim, invoice, origin=origin, retries=True)
    if invoice["status"] == "paid":
        after_paid(sim, invoice, origin=origin)
    elif behavior != "default_incomplete":
        collect(sim, invoice, origin=origin)


def _update_invoice(sim: Simulator, subscription: Obj, plan: _Plan, *, at: int) -> Obj:
    """The invoice a change bills at once: its prorations and, after an interval change, the
    whole new period."""
    customer = sim.get("customer", subscription["customer"])
    invoice = invoices.new_draft(
        sim,
        customer=customer,
        currency=subscription["currency"],
        billing_reason="subscription_update",
        period=(at, at),
        subscription=subscription,
    )
    for pending in invoices.pending_items(sim, customer["id"], subscription["id"]):
        invoices.add_item(sim, invoice, pending)
    if plan.anchor is not None:
        for item in plan.items:
            period = (int(item["current_period_start"]), int(item["current_period_end"]))
            invoices.add_subscription_line(sim, invoice, subscription, item, period=period)
    subscription["latest_invoice"] = invoice["id"]
    return invoice


def _pending_if_incomplete(
    sim: Simulator,
    subscription: Obj,
    plan: _Plan,
    lines: list[_Proration],
    *,
    at: int,
    origin: Origin,
) -> None:
    """Bill the change first; apply it only once that invoice is paid."""
    made = _proration_items(sim, subscription, lines, origin=origin)
    customer = sim.get("customer", subscription["customer"])
    invoice = invoices.new_draft(
        sim,
        customer=customer,
        currency=subscription["currency"],
        billing_reason="subscription_update",
        period=(at, at),
        subscription=subscription,
    )
    for item in made:
        invoices.add_item(sim, invoice, item)
    if plan.anchor is not None:
        for item in plan.items:
            period = (int(item["current_period_start"]), int(item["current_period_end"]))
            invoices.add_subscription_line(sim, invoice, subscription, item, period=period)
    sim.state.notes(invoice["id"])["pending_update_of"] = subscription["id"]
    sim.state.notes(subscription["id"])["pending_plan"] = _plan_to_json(plan, invoice["id"])
    invoices.announce(sim, invoice, origin=origin)
    invoices.finalize(sim, invoice, origin=origin, retries=False)
    if invoice["status"] != "paid":
        invoices.attempt(
            sim, invoice, origin=origin, preferred=subscription["default_payment_method"]
        )
    if invoice["status"] == "paid":
        # Paid at once: the change applies as an ordinary update.
        sim.state.notes(subscription["id"]).pop("pending_plan", None)
        sim.state.notes(invoice["id"]).pop("pending_update_of", None)
        previous = {
            "items": copy.deepcopy(subscription["items"]),
            "latest_invoice": subscription["latest_invoice"],
        }
        _apply_plan(subscription, plan)
        subscription["latest_invoice"] = invoice["id"]
        sim.emit("customer.subscription.updated", subscription, origin=origin, previous=previous)
        return
    previous = {"latest_invoice": subscription["latest_invoice"], "pending_update": None}
    subscription["latest_invoice"] = invoice["id"]
    subscription["pending_update"] = {
        "billing_cycle_anchor": plan.anchor,
        "cancel_at_period_end": None,
        "discounts": None,
        "expires_at": at + PENDING_UPDATE_WINDOW,
        "metadata": None,
        "subscription_items": copy.deepcopy(plan.items),
        "trial_end": None,
        "trial_from_plan": None,
    }
    sim.emit("customer.subscription.updated", subscription, origin=origin, previous=previous)


def cancel(sim: Simulator, subscription_id: str, params: Params, *, origin: Origin) -> Obj:
    """``DELETE /v1/subscriptions/{id}``: end it now; ``prorate`` credits the unused time,
    ``invoice_now`` bills what is pending on a final invoice."""
    params.reject_unknown(["cancellation_details", "expand", "invoice_now", "prorate"])
    subscription = sim.get("subscription", subscription_id)
    if subscription["status"] in ENDED:
        raise errors.invalid(
            "A canceled subscription can only update its cancellation_details and metadata.",
            param="subscription",
        )
    with sim.for_customer(subscription["customer"]):
        now = sim.now()
        details = params.nested("cancellation_details")
        if details is not None:
            details.reject_unknown(["comment", "feedback"])
            subscription["cancellation_details"] = {
                "comment": details.text("comment"),
                "feedback": details.text("feedback"),
                "reason": None,
            }
        if params.boolean("prorate") and subscription["status"] in ("active", "past_due"):
            olds: list[tuple[Obj | None, Obj | None]] = [
                (item, None) for item in subscription["items"]["data"]
            ]
            lines = _proration_lines(
                sim, subscription, olds, at=now, period=current_period(subscription)
            )
            _proration_items(sim, subscription, lines, origin=origin)
        subscription["canceled_at"] = now
        _end(sim, subscription, at=now, reason="cancellation_requested", origin=origin)
        pending = invoices.pending_items(sim, subscription["customer"], subscription["id"])
        if params.boolean("invoice_now") and pending:
            customer = sim.get("customer", subscription["customer"])
            invoice = invoices.new_draft(
                sim,
                customer=customer,
                currency=subscription["currency"],
                billing_reason="subscription_update",
                period=(now, now),
                subscription=subscription,
            )
            for item in pending:
                invoices.add_item(sim, invoice, item)
            subscription["latest_invoice"] = invoice["id"]
            invoices.announce(sim, invoice, origin=origin)
            invoices.finalize(sim, invoice, origin=origin, retries=False)
            if invoice["status"] == "open":
                invoices.attempt(
                    sim, invoice, origin=origin, preferred=subscription["default_payment_method"]
                )
    return subscription


def pause(sim: Simulator, subscription_id: str, params: Params, *, origin: Origin) -> Obj:
    """``POST /v1/subscriptions/{id}/pause``: status ``paused`` until resumed; the unused time is
    credited (``bill_for[unused_time_from][type]``, default now) as a pending item or at once."""
    params.reject_unknown(["bill_for", "expand", "invoicing_behavior", "type"])
    params.choice("type", ["subscription"])
    invoicing = params.choice("invoicing_behavior", ["invoice", "pending_invoice_item"])
    unused_from = "now"
    bill_for = params.nested("bill_for")
    if bill_for is not None:
        bill_for.reject_unknown(["outstanding_usage_through", "unused_time_from"])
        unused = bill_for.nested("unused_time_from")
        if unused is not None:
            unused.reject_unknown(["type"])
            unused_from = (
                unused.choice("type", ["item_current_period_start", "none", "now"], required=True)
                or "now"
            )
    subscription = sim.get("subscription", subscription_id)
    if subscription["status"] not in ("active", "past_due", "trialing"):
        raise errors.invalid(
            f"A {subscription['status']} subscription cannot be paused.", param="subscription"
        )
    with sim.for_customer(subscription["customer"]):
        now = sim.now()
        period = current_period(subscription)
        lines: list[_Proration] = []
        if unused_from != "none" and subscription["status"] != "trialing":
            at = period[0] if unused_from == "item_current_period_start" else now
            olds: list[tuple[Obj | None, Obj | None]] = [
                (item, None) for item in subscription["items"]["data"]
            ]
            lines = _proration_lines(sim, subscription, olds, at=at, period=period)
        previous = {"status": subscription["status"]}
        subscription["status"] = "paused"
        sim.emit("customer.subscription.updated", subscription, origin=origin, previous=previous)
        sim.emit("customer.subscription.paused", subscription, origin=origin)
        _proration_items(sim, subscription, lines, origin=origin)
        if invoicing == "invoice" and lines:
            customer = sim.get("customer", subscription["customer"])
            invoice = invoices.new_draft(
                sim,
                customer=customer,
                currency=subscription["currency"],
                billing_reason="subscription_update",
                period=(now, now),
                subscription=subscription,
            )
            for item in invoices.pending_items(sim, customer["id"], subscription["id"]):
                invoices.add_item(sim, invoice, item)
            subscription["latest_invoice"] = invoice["id"]
            invoices.announce(sim, invoice, origin=origin)
            invoices.finalize(sim, invoice, origin=origin, retries=False)
    return subscription


def resume(sim: Simulator, subscription_id: str, params: Params, *, origin: Origin) -> Obj:
    """``POST /v1/subscriptions/{id}/resume``: back to ``active``. ``billing_cycle_anchor=now``
    (the default) starts a new period now and bills it; ``unchanged`` keeps the cycle and
    prorates the rest of the current period."""
    params.reject_unknown(
        [
            "billing_cycle_anchor",
            "expand",
            "payment_behavior",
            "proration_behavior",
            "proration_date",
        ]
    )
    anchor_choice = params.choice("billing_cycle_anchor", ["now", "unchanged"]) or "now"
    proration = params.choice("proration_behavior", PRORATION_BEHAVIORS) or "create_prorations"
    params.choice("payment_behavior", ["allow_incomplete", "error_if_incomplete"])
    subscription = sim.get("subscription", subscription_id)
    if subscription["status"] != "paused":
        raise errors.invalid(
            f"Only a paused subscription can be resumed; this one is {subscription['status']}.",
            param="subscription",
        )
    with sim.for_customer(subscription["customer"]):
        now = sim.now()
        previous: Obj = {
            "items": copy.deepcopy(subscription["items"]),
            "latest_invoice": subscription["latest_invoice"],
            "status": "paused",
        }
        subscription["status"] = "active"
        if anchor_choice == "now":
            previous["billing_cycle_anchor"] = subscription["billing_cycle_anchor"]
            subscription["billing_cycle_anchor"] = now
            ended = current_period(subscription)
            for item in subscription["items"]["data"]:
                interval, count = recurring(item["price"])
                item["current_period_start"] = now
                item["current_period_end"] = add_interval(now, interval, count)
            invoice = _period_invoice(sim, subscription, reason="subscription_cycle", ended=ended)
            sim.emit(
                "customer.subscription.updated", subscription, origin=origin, previous=previous
            )
            sim.emit("customer.subscription.resumed", subscription, origin=origin)
            invoices.announce(sim, invoice, origin=origin)
            _bill_period(sim, subscription, invoice, origin=origin)
            return subscription
        anchor = int(subscription["billing_cycle_anchor"])
        lines: list[_Proration] = []
        for item in subscription["items"]["data"]:
            interval, count = recurring(item["price"])
            end = boundary_after(anchor, interval, count, now)
            begin = anchor
            while add_interval(begin, interval, count) <= now:
                begin = add_interval(begin, interval, count)
            item["current_period_start"], item["current_period_end"] = begin, end
        if proration != "none":
            news: list[tuple[Obj | None, Obj | None]] = [
                (None, item) for item in subscription["items"]["data"]
            ]
            lines = _proration_lines(
                sim, subscription, news, at=now, period=current_period(subscription)
            )
        sim.emit("customer.subscription.updated", subscription, origin=origin, previous=previous)
        sim.emit("customer.subscription.resumed", subscription, origin=origin)
        _proration_items(sim, subscription, lines, origin=origin)
        if proration == "always_invoice" and lines:
            invoice = _update_invoice(
                sim, subscription, _Plan(items=[], changes=[], anchor=None), at=now
            )
            invoices.announce(sim, invoice, origin=origin)
            invoices.finalize(sim, invoice, origin=origin, retries=True)
            if invoice["status"] == "open":
                collect(sim, invoice, origin=origin)
    return subscription


# -- lists ---------------------------------------------------------------------------------


def _range(params: Params, name: str) -> Callable[[int], bool]:
    nested = params.nested(name)
    if nested is None:
        return lambda _: True
    nested.reject_unknown(["gt", "gte", "lt", "lte"])
    bounds = {op: nested.integer(op) for op in ("gt", "gte", "lt", "lte")}

    def check(value: int) -> bool:
        return (
            (bounds["gt"] is None or value > bounds["gt"])
            and (bounds["gte"] is None or value >= bounds["gte"])
            and (bounds["lt"] is None or value < bounds["lt"])
            and (bounds["lte"] is None or value <= bounds["lte"])
        )

    return check


def list_subscriptions(sim: Simulator, params: Params) -> Obj:
    params.reject_unknown(
        [
            "collection_method",
            "created",
            "current_period_end",
            "current_period_start",
            "customer",
            "ending_before",
            "expand",
            "limit",
            "plan",
            "price",
            "starting_after",
            "status",
            "test_clock",
        ]
    )
    customer = params.text("customer")
    status = params.choice("status", STATUSES)
    price = params.text("price") or params.text("plan")
    clock = params.text("test_clock")
    method = params.choice("collection_method", ["charge_automatically", "send_invoice"])
    created = created_filter(params)
    period_start = _range(params, "current_period_start")
    period_end_ = _range(params, "current_period_end")

    def keep(subscription: Obj) -> bool:
        if status is None:
            status_ok = subscription["status"] not in ENDED  # Stripe's default hides them
        elif status == "ended":
            status_ok = subscription["status"] in ENDED
        else:
            status_ok = status == "all" or subscription["status"] == status
        prices = {item["price"]["id"] for item in subscription["items"]["data"]}
        begin, end = current_period(subscription)
        return (
            status_ok
            and (customer is None or subscription["customer"] == customer)
            and (price is None or price in prices)
            and (clock is None or subscription["test_clock"] == clock)
            and (method is None or subscription["collection_method"] == method)
            and created(subscription)
            and period_start(begin)
            and period_end_(end)
        )

    return sim.page(
        sim.newest_first("subscription"),
        params,
        "/v1/subscriptions",
        keep=keep,
        cursor_kind="subscription",
    )
