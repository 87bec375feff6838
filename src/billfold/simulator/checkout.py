"""Checkout sessions: creating them from API parameters, and what paying on the hosted page does.

open --pay--------> complete, paid      (+ checkout.session.completed)
open --decline----> open                (+ payment_intent.payment_failed; the payer may retry)
open --pay later--> complete, unpaid    (+ checkout.session.completed)
                      --settle--> paid  (+ checkout.session.async_payment_succeeded)
                      --settle--> unpaid(+ checkout.session.async_payment_failed)
open --expire-----> expired             (+ checkout.session.expired)

In ``mode=subscription`` paying makes the subscription and its first invoice (``subscriptions``);
with ``subscription_data[trial_period_days]`` or ``[trial_end]`` the subscription starts trialing,
its first invoice is $0, the session's totals are 0 and it completes ``no_payment_required``.
"""

from __future__ import annotations

import copy

from billfold.simulator import catalog, errors, forms, objects, payments, subscriptions
from billfold.simulator.forms import Params
from billfold.simulator.objects import Obj
from billfold.simulator.service import DASHBOARD, Origin, Simulator, created_filter
from billfold.simulator.state import Settlement

SESSION_PARAMS = (
    "allow_promotion_codes",
    "automatic_tax",
    "billing_address_collection",
    "cancel_url",
    "client_reference_id",
    "consent_collection",
    "currency",
    "custom_fields",
    "custom_text",
    "customer",
    "customer_creation",
    "customer_email",
    "customer_update",
    "discounts",
    "expand",
    "expires_at",
    "invoice_creation",
    "line_items",
    "locale",
    "metadata",
    "mode",
    "payment_intent_data",
    "payment_method_collection",
    "payment_method_types",
    "phone_number_collection",
    "submit_type",
    "subscription_data",
    "success_url",
    "tax_id_collection",
    "ui_mode",
)
LINE_ITEM_PARAMS = (
    "adjustable_quantity",
    "dynamic_tax_rates",
    "price",
    "price_data",
    "quantity",
    "tax_rates",
)
OUTCOMES = ("succeeded", "failed")
SESSION_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"
MIN_LIFETIME = 30 * 60
MAX_LIFETIME = 24 * 60 * 60


def create_session(sim: Simulator, params: Params, *, base_url: str, origin: Origin) -> Obj:
    params.reject_unknown(SESSION_PARAMS)
    mode = params.choice("mode", ["payment", "setup", "subscription"], required=True) or ""
    if mode == "setup":
        raise errors.invalid("The simulator does not support mode=setup.", param="mode")
    ui_mode = params.choice("ui_mode", ["hosted", "embedded", "custom"])
    if ui_mode not in (None, "hosted"):
        raise errors.invalid("The simulator supports ui_mode=hosted only.", param="ui_mode")
    line_items = params.items("line_items")
    if not line_items:
        raise errors.parameter_missing("line_items")
    customer = params.text("customer")
    customer_email = params.text("customer_email")
    if customer is not None and customer_email is not None:
        raise errors.invalid(
            "You may only specify one of these parameters: customer, customer_email.",
            param="customer_email",
        )
    if customer is not None:
        sim.get("customer", customer, param="customer")
    now = sim.now()
    expires_at = params.integer("expires_at")
    if expires_at is None:
        expires_at = now + sim.config.session_lifetime_seconds
    elif not now + MIN_LIFETIME <= expires_at <= now + MAX_LIFETIME:
        raise errors.invalid(
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from now.",
            param="expires_at",
        )
    items = [_line_item(sim, item, mode=mode) for item in line_items]
    currencies = {item["currency"] for item in items}
    if len(currencies) > 1:
        raise errors.invalid(
            "All line items must use the same currency.", param="line_items[0][price]"
        )
    intervals = {
        (item["price"]["recurring"]["interval"], item["price"]["recurring"]["interval_count"])
        for item in items
        if item["price"]["recurring"]
    }
    if len(intervals) > 1:
        raise errors.invalid(
            "All recurring prices of a subscription must have the same interval.",
            param="line_items",
        )
    intent_data = params.nested("payment_intent_data")
    subscription_data = params.nested("subscription_data")
    if intent_data is not None and mode != "payment":
        raise errors.invalid(
            "You can only pass `payment_intent_data` in `payment` mode.",
            param="payment_intent_data",
        )
    if subscription_data is not None and mode != "subscription":
        raise errors.invalid(
            "You can only pass `subscription_data` in `subscription` mode.",
            param="subscription_data",
        )
    if intent_data is not None:
        intent_data.reject_unknown(
            [
                "capture_method",
                "description",
                "metadata",
                "receipt_email",
                "setup_future_usage",
                "statement_descriptor",
                "statement_descriptor_suffix",
            ]
        )
    trial: dict[str, object] = {}
    if subscription_data is not None:
        subscription_data.reject_unknown(
            ["description", "metadata", "trial_end", "trial_period_days", "trial_settings"]
        )
        trial = _trial(subscription_data, now)
    client_reference_id = params.text("client_reference_id")
    if client_reference_id is not None and len(client_reference_id) > 200:
        raise errors.invalid(
            "client_reference_id must be at most 200 characters.", param="client_reference_id"
        )
    total = 0 if trial else sum(item["amount_total"] for item in items)
    session_id = objects.new_id("cs_test_a1", 56)
    session = objects.build(
        "checkout.session",
        allow_promotion_codes=params.boolean("allow_promotion_codes"),
        amount_subtotal=0 if trial else sum(item["amount_subtotal"] for item in items),
        amount_total=total,
        billing_address_collection=params.text("billing_address_collection"),
        cancel_url=params.text("cancel_url"),
        client_reference_id=client_reference_id,
        created=now,
        currency=items[0]["currency"],
        customer=customer,
        customer_creation=params.choice("customer_creation", ["always", "if_required"])
        or (None if mode == "subscription" or customer else "if_required"),
        customer_email=customer_email,
        expires_at=expires_at,
        id=session_id,
        locale=params.text("locale"),
        metadata=forms.apply_metadata({}, params.metadata()),
        mode=mode,
        payment_method_collection="always" if mode == "subscription" else "if_required",
        payment_method_types=params.strings("payment_method_types") or ["card"],
        payment_status="unpaid",
        status="open",
        submit_type=params.text("submit_type"),
        success_url=params.text("success_url"),
        url=f"{base_url}/pay/{session_id}",
    )
    if mode == "subscription":
        session["invoice_creation"] = None  # subscriptions always make invoices
    sim.put(session)
    sim.state.line_items[session_id] = items
    sim.state.session_extras[session_id] = {
        "payment_intent_metadata": forms.apply_metadata(
            {}, intent_data.metadata() if intent_data else None
        ),
        "payment_intent_description": intent_data.text("description") if intent_data else None,
        "subscription_metadata": forms.apply_metadata(
            {}, subscription_data.metadata() if subscription_data else None
        ),
        "subscription_description": (
            subscription_data.text("description") if subscription_data else None
        ),
        **trial,
    }
    return session


def _trial(subscription_data: Params, now: int) -> dict[str, object]:
    """What ``subscription_data`` says about a trial, as the session's extras keep it."""
    days = subscription_data.integer("trial_period_days", minimum=1)
    end = subscription_data.integer("trial_end")
    if days is not None and end is not None:
        raise errors.invalid(
            "You may only specify one of these parameters: trial_end, trial_period_days.",
            param="subscription_data[trial_end]",
        )
    if end is not None and end < now + 2 * 24 * 60 * 60:
        raise errors.invalid(
            "subscription_data[trial_end] must be at least 48 hours in the future.",
            param="subscription_data[trial_end]",
        )
    trial: dict[str, object] = {}
    if days is not None:
        trial["trial_period_days"] = days
    if end is not None:
        trial["trial_end"] = end
    settings = subscription_data.nested("trial_settings")
    if settings is not None:
        settings.reject_unknown(["end_behavior"])
        behavior = settings.nested("end_behavior", required=True)
        assert behavior is not None
        behavior.reject_unknown(["missing_payment_method"])
        trial["missing_payment_method"] = behavior.choice(
            "missing_payment_method", subscriptions.MISSING_PAYMENT_METHOD, required=True
        )
    return trial


def _line_item(sim: Simulator, params: Params, *, mode: str) -> Obj:
    params.reject_unknown(LINE_ITEM_PARAMS)
    price_id = params.text("price")
    price_data = params.nested("price_data")
    if price_id is not None and price_data is not None:
        raise errors.invalid(
            "You may only specify one of these parameters: price, price_data.",
            param=params.name("price"),
        )
    if price_id is not None:
        price = sim.get("price", price_id, param=params.name("price"))
        if not price["active"]:
            raise errors.invalid(
                "The price specified is inactive. This field only accepts active prices.",
                param=params.name("price"),
            )
    elif price_data is not None:
        price = catalog.create_price(sim, price_data, origin=None, inline=True)
    else:
        raise errors.parameter_missing(params.name("price"))
    if mode == "payment" and price["type"] == "recurring":
        raise errors.invalid(
            "You specified `payment` mode but passed a recurring price. Either switch to "
            "`subscription` mode or use only one-time prices.",
            param=params.name("price"),
        )
    if mode == "subscription" and price["type"] != "recurring":
        raise errors.invalid(
            "The simulator supports only recurring prices in `subscription` mode.",
            param=params.name("price"),
        )
    quantity = params.integer("quantity", required=True, minimum=1)
    assert quantity is not None
    amount = price["unit_amount"] * quantity
    product = sim.get("product", price["product"])
    return objects.build(
        "item",
        amount_subtotal=amount,
        amount_total=amount,
        currency=price["currency"],
        description=product["name"],
        id=objects.new_id("li_1"),
        price=copy.deepcopy(price),
        quantity=quantity,
    )


def get_session(sim: Simulator, session_id: str) -> Obj:
    """A session, expired first if its time ran out while nobody looked."""
    session = sim.get("checkout.session", session_id)
    if session["status"] == "open" and sim.now() >= session["expires_at"]:
        expire(sim, session_id, origin=DASHBOARD)
    return session


def list_sessions(sim: Simulator, params: Params) -> Obj:
    params.reject_unknown(
        [
            "created",
            "customer",
            "ending_before",
            "expand",
            "limit",
            "payment_intent",
            "starting_after",
            "status",
            "subscription",
        ]
    )
    filters = {
        field: params.text(field)
        for field in ("customer", "payment_intent", "status", "subscription")
    }
    created = created_filter(params)

    def keep(session: Obj) -> bool:
        return created(session) and all(
            value is None or session[field] == value for field, value in filters.items()
        )

    return sim.page(
        sim.newest_first("checkout.session"),
        params,
        "/v1/checkout/sessions",
        keep=keep,
        cursor_kind="checkout.session",
    )


def line_items_page(sim: Simulator, session_id: str, params: Params) -> Obj:
    params.reject_unknown(["ending_before", "expand", "limit", "starting_after"])
    get_session(sim, session_id)
    return sim.page(
        sim.state.line_items.get(session_id, []),
        params,
        f"/v1/checkout/sessions/{session_id}/line_items",
        cursor_kind="item",
    )


def expire(sim: Simulator, session_id: str, *, origin: Origin) -> Obj:
    session = sim.get("checkout.session", session_id)
    if session["status"] != "open":
        raise errors.invalid(
            f'Only Checkout Sessions with a status in ["open"] can be expired. This session '
            f'has a status of "{session["status"]}".',
            param="session",
        )
    session["status"] = "expired"
    session["url"] = None
    if session["payment_intent"] is not None:
        intent = sim.get("payment_intent", session["payment_intent"])
        payments.cancel_intent(sim, intent, reason="abandoned", origin=origin)
    sim.emit("checkout.session.expired", session, origin=origin)
    return session


def _open_session(sim: Simulator, session_id: str) -> Obj:
    session = get_session(sim, session_id)
    if session["status"] != "open":
        raise errors.invalid(
            f"This Checkout Session is no longer active (its status is {session['status']}).",
            param="session",
        )
    return session


def _payer(sim: Simulator, session: Obj, email: str | None) -> str:
    if email:
        return email
    if session["customer_email"]:
        return str(session["customer_email"])
    if session["customer"]:
        customer = sim.get("customer", session["customer"])
        if customer["email"]:
            return str(customer["email"])
    return "customer@example.com"


def _intent(sim: Simulator, session: Obj) -> Obj:
    """The session's payment intent, created at its first payment attempt, as Stripe does."""
    if session["payment_intent"] is not None:
        return sim.get("payment_intent", session["payment_intent"])
    extras = sim.state.session_extras.get(session["id"], {})
    intent = payments.create_intent(
        sim,
        amount=session["amount_total"],
        currency=session["currency"],
        customer=session["customer"],
        metadata=extras.get("payment_intent_metadata", {}),
        description=extras.get("payment_intent_description"),
    )
    session["payment_intent"] = intent["id"]
    return intent


def _paying_intent(sim: Simulator, session: Obj, email: str, name: str | None) -> Obj:
    """The intent a payment-mode payment goes through, with the customer Checkout creates when
    the session asked for ``customer_creation=always``."""
    intent = _intent(sim, session)
    if session["customer"] is None and session["customer_creation"] == "always":
        customer = catalog.new_customer(sim, email=email, name=name, origin=DASHBOARD)
        session["customer"] = intent["customer"] = customer["id"]
    return intent


def pay(sim: Simulator, session_id: str, *, email: str | None, name: str | None) -> Obj:
    """The payer pays by card and the payment succeeds."""
    session = _open_session(sim, session_id)
    email = _payer(sim, session, email)
    if session["mode"] == "subscription":
        return subscriptions.complete_checkout(sim, session, email=email, name=name)
    intent = _paying_intent(sim, session, email, name)
    payments.pay_by_card(sim, intent, approved=True, email=email, name=name)
    session.update(
        {
            "customer_details": objects.customer_details(email, name),
            "payment_status": "paid",
            "status": "complete",
            "url": None,
        }
    )
    sim.emit("checkout.session.completed", session)
    return session


def decline(sim: Simulator, session_id: str, *, email: str | None, name: str | None) -> Obj:
    """The payer's card is declined; the session stays open for another try. Returns the
    payment intent that carries the failed attempt."""
    session = _open_session(sim, session_id)
    email = _payer(sim, session, email)
    if session["mode"] == "subscription":
        # No subscription exists until a payment succeeds; the failed attempt stands alone.
        intent = payments.create_intent(
            sim,
            amount=session["amount_total"],
            currency=session["currency"],
            customer=session["customer"],
            metadata={},
        )
    else:
        intent = _intent(sim, session)
    payments.pay_by_card(sim, intent, approved=False, email=email, name=name)
    return intent


def pay_later(
    sim: Simulator,
    session_id: str,
    *,
    email: str | None,
    name: str | None,
    outcome: str = "succeeded",
    settle_after: float | None = None,
) -> Obj:
    """The payer picks a bank debit: complete but unpaid until it settles after ``settle_after``
    seconds (None: the configured delay; a negative number: only when asked)."""
    if outcome not in OUTCOMES:
        raise errors.invalid(f"outcome must be one of {', '.join(OUTCOMES)}", param="outcome")
    session = _open_session(sim, session_id)
    if session["mode"] != "payment":
        raise errors.invalid(
            "The simulator supports delayed payment methods in `payment` mode only.",
            param="mode",
        )
    email = _payer(sim, session, email)
    intent = _paying_intent(sim, session, email, name)
    payments.start_bank_debit(sim, intent, email=email, name=name)
    session.update(
        {
            "customer_details": objects.customer_details(email, name),
            "payment_method_types": ["card", "us_bank_account"],
            "payment_status": "unpaid",
            "status": "complete",
            "url": None,
        }
    )
    sim.emit("checkout.session.completed", session)
    delay = sim.config.async_settle_seconds if settle_after is None else settle_after
    due_at = None if delay is None or delay < 0 else sim.clock() + delay
    sim.state.settlements[session_id] = Settlement(
        session_id=session_id, outcome=outcome, due_at=due_at
    )
    if due_at is not None:
        sim.arm_timer(session_id, due_at)
    return session


def settle(sim: Simulator, session_id: str, outcome: str | None = None) -> Obj:
    """Settle a delayed payment now, as planned or with ``outcome``."""
    session = sim.get("checkout.session", session_id)
    settlement = sim.state.settlements.get(session_id)
    if settlement is None:
        raise errors.invalid(
            f"Checkout Session {session_id} has no delayed payment waiting to settle.",
            param="session",
        )
    if outcome is not None and outcome not in OUTCOMES:
        raise errors.invalid(f"outcome must be one of {', '.join(OUTCOMES)}", param="outcome")
    del sim.state.settlements[session_id]
    sim.cancel_timer(session_id)
    succeeded = (outcome or settlement.outcome) == "succeeded"
    intent = sim.get("payment_intent", session["payment_intent"])
    charge = sim.get("charge", intent["latest_charge"])
    payments.settle_bank_debit(sim, intent, charge, succeeded=succeeded)
    if succeeded:
        session["payment_status"] = "paid"
        sim.emit(
            "checkout.session.async_payment_succeeded",
            session,
            previous={"payment_status": "unpaid"},
        )
    else:
        sim.emit("checkout.session.async_payment_failed", session)
    return session


def settle_when_due(sim: Simulator, session_id: str) -> None:
    """The timer of a delayed payment fired."""
    if session_id in sim.state.settlements:
        settle(sim, session_id)
        sim.save()


def success_url(session: Obj) -> str | None:
    url = session["success_url"]
    if url is None:
        return None
    return str(url).replace(SESSION_PLACEHOLDER, session["id"])
