"""Payment methods: Stripe's test tokens, attached to customers, and what charging them does.

Stripe's test payment methods are tokens: attaching ``pm_card_visa`` to a customer makes a new
``pm_...`` card attached to that customer (``payment_method.attached``). The simulator knows these:

| token                                     | card        | attaching        | charging             |
|-------------------------------------------|-------------|------------------|----------------------|
| ``pm_card_visa`` (``_debit``), ``_mastercard``, ``_amex`` | as named | succeeds | succeeds      |
| ``pm_card_chargeCustomerFail``            | Visa 0341   | succeeds         | declined             |
| ``pm_card_chargeDeclined``                | Visa 0002   | declined (402)   | declined             |
| ``pm_card_chargeDeclinedInsufficientFunds`` | Visa 9995 | declined (402)   | insufficient funds   |
| ``pm_card_refundFail``                    | Visa 5126   | succeeds         | succeeds; its refunds fail later |

So the SDK way to make a renewal fail is to attach ``pm_card_chargeCustomerFail`` and make it the
customer's ``invoice_settings.default_payment_method`` (``pm_card_visa`` to recover). The control
route ``/_sim/customers/{id}/fail_next_payment`` declines a customer's next payments whatever the
card (``fail_next_payment``). A test token given directly as a ``default_payment_method`` is
attached on the fly (Stripe wants it attached first; the simulator is lenient with its own tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

from billfold.simulator import errors, forms, objects
from billfold.simulator.forms import Params
from billfold.simulator.objects import Obj
from billfold.simulator.service import Origin, Simulator


@dataclass(frozen=True, slots=True)
class TestCard:
    brand: str
    last4: str
    attach_decline: str | None = None
    charge_decline: str | None = None
    refunds_fail: bool = False


TEST_CARDS: dict[str, TestCard] = {
    "pm_card_visa": TestCard("visa", "4242"),
    "pm_card_visa_debit": TestCard("visa", "5556"),
    "pm_card_mastercard": TestCard("mastercard", "4444"),
    "pm_card_amex": TestCard("amex", "8431"),
    "pm_card_chargeCustomerFail": TestCard("visa", "0341", charge_decline="generic_decline"),
    "pm_card_chargeDeclined": TestCard(
        "visa", "0002", attach_decline="generic_decline", charge_decline="generic_decline"
    ),
    "pm_card_chargeDeclinedInsufficientFunds": TestCard(
        "visa", "9995", attach_decline="insufficient_funds", charge_decline="insufficient_funds"
    ),
    "pm_card_refundFail": TestCard("visa", "5126", refunds_fail=True),
}
DECLINE_CODES = ("generic_decline", "insufficient_funds", "lost_card", "expired_card")


def is_token(reference: str) -> bool:
    return reference in TEST_CARDS


def _card_for(sim: Simulator, method: Obj) -> TestCard:
    return TEST_CARDS[sim.peek(method["id"]).get("token", "pm_card_visa")]


def from_token(sim: Simulator, token: str, *, param: str, keep: bool = True) -> Obj:
    """A new (unattached) card payment method made from a test token (``keep``: stored)."""
    card = TEST_CARDS.get(token)
    if card is None:
        raise errors.resource_missing("payment_method", token, param=param)
    method = objects.build(
        "payment_method",
        card=objects.card(card.brand, card.last4),
        created=sim.now(),
        id=objects.new_id("pm_1"),
        type="card",
    )
    if keep:
        sim.put(method)
        sim.state.notes(method["id"])["token"] = token
    return method


def attach(
    sim: Simulator, reference: str, customer_id: str, *, origin: Origin, param: str = "id"
) -> Obj:
    """Attach a payment method (or a fresh copy of a test token) to a customer."""
    customer = sim.get("customer", customer_id, param="customer")
    token = TEST_CARDS.get(reference)
    if token is not None and token.attach_decline is not None:
        raise errors.card_declined("Your card was declined.", decline_code=token.attach_decline)
    if token is not None:
        method = from_token(sim, reference, param=param)
    else:
        method = sim.get("payment_method", reference, param=None if param == "id" else param)
        if method["customer"] == customer["id"]:
            return method
        if method["customer"] is not None:
            raise errors.invalid(
                "The payment method you provided has already been attached to a customer.",
                param=param,
            )
    method["customer"] = customer["id"]
    method["billing_details"]["email"] = customer["email"]
    method["billing_details"]["name"] = customer["name"]
    sim.emit("payment_method.attached", method, origin=origin)
    return method


def detach(sim: Simulator, method_id: str, *, origin: Origin) -> Obj:
    method = sim.get("payment_method", method_id)
    if method["customer"] is None:
        raise errors.invalid(
            f"The payment method {method_id} is not attached to a customer.", param="payment_method"
        )
    customer = sim.state.collection("customer").get(method["customer"])
    if customer and customer["invoice_settings"]["default_payment_method"] == method_id:
        customer["invoice_settings"]["default_payment_method"] = None
    method["customer"] = None
    sim.emit("payment_method.detached", method, origin=origin)
    return method


def resolve(
    sim: Simulator,
    reference: str,
    customer_id: str,
    *,
    origin: Origin,
    param: str,
    attached: dict[str, str] | None = None,
) -> str:
    """A payment method id for ``customer_id``'s defaults: an attached one, the one a token in
    ``attached`` (token -> id) became earlier in the same request, or a test token attached on
    the fly."""
    if attached and reference in attached:
        return attached[reference]
    if is_token(reference):
        return str(attach(sim, reference, customer_id, origin=origin, param=param)["id"])
    method = sim.state.collection("payment_method").get(reference)
    if method is None or method["customer"] != customer_id:
        raise errors.invalid(
            f"The customer does not have a payment method with the ID {reference}. The payment "
            "method must be attached to the customer.",
            param=param,
            code="resource_missing",
        )
    return reference


def charging_method(sim: Simulator, customer: Obj, *preferred: str | None) -> Obj | None:
    """The payment method an invoice is charged to: the first of ``preferred`` (the invoice's,
    the subscription's default) that is set, else the customer's invoice default."""
    for reference in (*preferred, customer["invoice_settings"]["default_payment_method"]):
        if reference:
            found = sim.state.collection("payment_method").get(reference)
            if found is not None:
                return found
    return None


def decline_for(sim: Simulator, customer_id: str, method: Obj) -> str | None:
    """Why the next charge of ``method`` for ``customer_id`` is declined (None: approved). A
    forced failure from ``fail_next_payment`` is used up by this charge."""
    forced = sim.state.notes(customer_id)
    if forced.get("fail_next_payments", 0) > 0:
        forced["fail_next_payments"] -= 1
        return str(forced.get("decline_code") or "generic_decline")
    return _card_for(sim, method).charge_decline


def refunds_fail(sim: Simulator, method_id: str | None) -> bool:
    if method_id is None:
        return False
    method = sim.state.collection("payment_method").get(method_id)
    return method is not None and _card_for(sim, method).refunds_fail


def fail_next_payment(sim: Simulator, customer_id: str, *, count: int, decline_code: str) -> Obj:
    """Decline the next ``count`` charges of a customer, whatever the card."""
    sim.get("customer", customer_id)
    if count < 0:
        raise errors.invalid("count must not be negative", param="count")
    if decline_code not in DECLINE_CODES:
        raise errors.invalid(
            f"decline_code must be one of {', '.join(DECLINE_CODES)}", param="decline_code"
        )
    forced = sim.state.notes(customer_id)
    forced["fail_next_payments"] = count
    forced["decline_code"] = decline_code
    return {"customer": customer_id, "fail_next_payments": count, "decline_code": decline_code}


def list_for_customer(sim: Simulator, customer_id: str, params: Params, url: str) -> Obj:
    params.reject_unknown(
        ["customer", "ending_before", "expand", "limit", "starting_after", "type"]
    )
    sim.get("customer", customer_id, param="customer")
    kind = params.choice("type", ["card"])

    def keep(method: Obj) -> bool:
        return method["customer"] == customer_id and (kind is None or method["type"] == kind)

    return sim.page(
        sim.newest_first("payment_method"), params, url, keep=keep, cursor_kind="payment_method"
    )


def attach_route(sim: Simulator, reference: str, params: Params, *, origin: Origin) -> Obj:
    params.reject_unknown(["customer", "expand"])
    customer_id = params.required_str("customer")
    with sim.for_customer(customer_id):
        return attach(sim, reference, customer_id, origin=origin)


def retrieve(sim: Simulator, reference: str, params: Params) -> Obj:
    params.reject_unknown(["expand"])
    if is_token(reference):  # Stripe answers a fresh card each time; nothing is kept
        return from_token(sim, reference, param="id", keep=False)
    found: Obj = sim.get("payment_method", reference)
    return found


def update(sim: Simulator, method_id: str, params: Params, *, origin: Origin) -> Obj:
    params.reject_unknown(["expand", "metadata"])
    method = sim.get("payment_method", method_id)
    merged = forms.apply_metadata(method["metadata"], params.metadata())
    if merged != method["metadata"]:
        previous = {"metadata": method["metadata"]}
        method["metadata"] = merged
        sim.emit("payment_method.updated", method, origin=origin, previous=previous)
    return method
