"""The customer portal: ``POST /v1/billing_portal/sessions`` and what the customer does on its page.

A session's ``url`` is the simulator's hosted page (``/portal/{id}``, see ``portal_page``), where
the customer sees its subscriptions and can switch plan, cancel, keep a canceled plan, and change
the card its invoices are charged to; each action goes through the same code as the API (so the
same events follow, with ``request.id`` null, as for Stripe's own portal):

- switching plan is ``items[0][price]`` with ``SimulatorConfig.portal_proration_behavior``;
  the plans offered are the active recurring prices in the subscription's currency;
- canceling sets ``cancel_at`` to the current period's end (Stripe's portal uses ``cancel_at``,
  not ``cancel_at_period_end``), with the feedback the customer picked;
- keeping the plan clears ``cancel_at``;
- a new card (one of the test tokens) becomes the customer's invoice default and the default of
  its live subscriptions.
"""

from __future__ import annotations

from billfold.simulator import catalog, errors, objects, subscriptions
from billfold.simulator.forms import Params
from billfold.simulator.objects import Obj
from billfold.simulator.service import DASHBOARD, Origin, Simulator

KIND = "billing_portal.session"
CONFIGURATION = "bpc_simulator_default"
FEEDBACK = (
    "customer_service",
    "low_quality",
    "missing_features",
    "other",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
)


def create_session(sim: Simulator, params: Params, *, base_url: str, origin: Origin) -> Obj:
    params.reject_unknown(
        ["configuration", "customer", "expand", "flow_data", "locale", "on_behalf_of", "return_url"]
    )
    if "flow_data" in params:
        raise errors.unsupported("portal flows (flow_data)", param="flow_data")
    customer = sim.get("customer", params.required_str("customer"), param="customer")
    configuration = params.text("configuration") or CONFIGURATION
    if configuration != CONFIGURATION:
        raise errors.resource_missing(
            "billing_portal.configuration", configuration, param="configuration"
        )
    session_id = objects.new_id("bps_1")
    with sim.for_customer(customer["id"]):
        session = objects.build(
            KIND,
            configuration=configuration,
            created=sim.now(),
            customer=customer["id"],
            id=session_id,
            locale=params.text("locale"),
            return_url=params.text("return_url"),
            url=f"{base_url}/portal/{session_id}",
        )
        sim.put(session)
        sim.emit("billing_portal.session.created", session, origin=origin)
    return session


def live_subscriptions(sim: Simulator, customer_id: str) -> list[Obj]:
    return [
        subscription
        for subscription in sim.newest_first("subscription")
        if subscription["customer"] == customer_id
        and subscription["status"] not in subscriptions.ENDED
    ]


def plans_for(sim: Simulator, subscription: Obj) -> list[Obj]:
    """The prices a subscription may switch to: active, recurring, in its currency."""
    current = subscription["items"]["data"][0]["price"]["id"]
    return [
        price
        for price in sim.state.collection("price").values()
        if price["active"]
        and price["type"] == "recurring"
        and price["currency"] == subscription["currency"]
        and price["id"] != current
    ]


def _own(sim: Simulator, session: Obj, subscription_id: str) -> Obj:
    subscription = sim.get("subscription", subscription_id, param="subscription")
    if subscription["customer"] != session["customer"]:
        raise errors.resource_missing("subscription", subscription_id, param="subscription")
    return subscription


def switch_plan(sim: Simulator, session: Obj, subscription_id: str, price_id: str) -> Obj:
    subscription = _own(sim, session, subscription_id)
    if price_id not in {p["id"] for p in plans_for(sim, subscription)}:
        raise errors.invalid("That plan is not available for this subscription.", param="price")
    item = subscription["items"]["data"][0]
    params = Params(
        {
            "items": [{"id": item["id"], "price": price_id}],
            "proration_behavior": sim.config.portal_proration_behavior,
        }
    )
    return subscriptions.update(sim, subscription_id, params, origin=DASHBOARD)


def cancel(sim: Simulator, session: Obj, subscription_id: str, feedback: str | None) -> Obj:
    subscription = _own(sim, session, subscription_id)
    _, end = subscriptions.current_period(subscription)
    values: dict[str, object] = {"cancel_at": str(end)}
    if feedback:
        if feedback not in FEEDBACK:
            raise errors.invalid("Pick one of the reasons offered.", param="feedback")
        values["cancellation_details"] = {"feedback": feedback}
    return subscriptions.update(sim, subscription_id, Params(values), origin=DASHBOARD)


def keep(sim: Simulator, session: Obj, subscription_id: str) -> Obj:
    _own(sim, session, subscription_id)
    return subscriptions.update(sim, subscription_id, Params({"cancel_at": ""}), origin=DASHBOARD)


def change_card(sim: Simulator, session: Obj, token: str) -> Obj:
    customer_id = session["customer"]
    customer = catalog.update_customer(
        sim,
        customer_id,
        Params({"invoice_settings": {"default_payment_method": token}}),
        origin=DASHBOARD,
    )
    method = customer["invoice_settings"]["default_payment_method"]
    for subscription in live_subscriptions(sim, customer_id):
        if subscription["default_payment_method"] not in (None, method):
            subscriptions.update(
                sim,
                subscription["id"],
                Params({"default_payment_method": method}),
                origin=DASHBOARD,
            )
    return customer
