"""The API subset, driven through the official SDK over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import stripe

if TYPE_CHECKING:
    from tests.simulator.conftest import MakeSim, Sim


def example(kind: str) -> dict[str, Any]:
    text = resources.files("billfold.simulator").joinpath("fixtures.json").read_text()
    data: dict[str, Any] = json.loads(text)["resources"][kind]
    return data


def assert_shaped_like(obj: stripe.StripeObject | dict[str, Any], kind: str) -> None:
    """Every field of Stripe's example object is present, so consumers meet the real shape."""
    data = obj.to_dict() if isinstance(obj, stripe.StripeObject) else obj
    missing = set(example(kind)) - set(data)
    assert not missing, f"{kind} lacks {sorted(missing)}"
    assert data["object"] == example(kind)["object"]


def test_a_created_session_has_stripes_shape_and_the_values_sent(sim: Sim) -> None:
    session = sim.session(
        client_reference_id="user_123",
        customer_email="jenny@example.com",
        payment_intent_data={"metadata": {"order": "42"}},
    )

    assert_shaped_like(session, "checkout.session")
    assert session.id.startswith("cs_test_")
    assert session.status == "open"
    assert session.payment_status == "unpaid"
    assert session.mode == "payment"
    assert session.amount_total == 499
    assert session.currency == "usd"
    assert session.client_reference_id == "user_123"
    assert session.customer_email == "jenny@example.com"
    assert session.metadata.to_dict() == {
        "billfold_account": "user_123",
        "billfold_package": "starter",
    }
    assert session.url == f"{sim.url}/pay/{session.id}"
    assert session.payment_intent is None
    assert session.expires_at > session.created


def test_retrieving_a_session_can_expand_its_line_items(sim: Sim) -> None:
    created = sim.session()

    session = sim.stripe.v1.checkout.sessions.retrieve(
        created.id, params={"expand": ["line_items"]}
    )

    assert session.id == created.id
    items = session.line_items
    assert items.object == "list"
    assert [item.description for item in items.data] == ["Starter Pack"]
    assert items.data[0].price.unit_amount == 499


def test_line_items_list_with_prices_and_pagination(sim: Sim) -> None:
    price = sim.stripe.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 1499,
            "product_data": {"name": "Pro Pack"},
            "lookup_key": "pro",
        }
    )
    session = sim.session(
        line_items=[
            {"price": price.id, "quantity": 2},
            {
                "quantity": 1,
                "price_data": {
                    "currency": "usd",
                    "unit_amount_decimal": "250",
                    "product_data": {"name": "Tip"},
                },
            },
        ]
    )

    first = sim.stripe.v1.checkout.sessions.line_items.list(session.id, params={"limit": 1})
    everything = list(first.auto_paging_iter())

    assert first.has_more is True
    assert first.url == f"/v1/checkout/sessions/{session.id}/line_items"
    assert [item.description for item in everything] == ["Pro Pack", "Tip"]
    assert [item.amount_total for item in everything] == [2998, 250]
    assert everything[0].price.id == price.id
    assert session.amount_total == 3248
    assert_shaped_like(everything[0], "item")


def test_prices_and_products_can_be_created_and_retrieved(sim: Sim) -> None:
    product = sim.stripe.v1.products.create(params={"name": "Credits"})
    price = sim.stripe.v1.prices.create(
        params={
            "currency": "eur",
            "unit_amount": 900,
            "product": product.id,
            "recurring": {"interval": "month"},
            "metadata": {"plan": "pro"},
        }
    )

    fetched = sim.stripe.v1.prices.retrieve(price.id)

    assert_shaped_like(fetched, "price")
    assert fetched.type == "recurring"
    assert fetched.recurring.interval == "month"
    assert fetched.product == product.id
    assert fetched.metadata.to_dict() == {"plan": "pro"}
    listed = sim.stripe.v1.prices.list(params={"lookup_keys": ["missing"]})
    assert listed.data == []


def test_an_unknown_price_is_stripes_resource_missing_error(sim: Sim) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sim.session(line_items=[{"price": "price_unknown", "quantity": 1}])

    assert caught.value.code == "resource_missing"
    assert caught.value.param == "line_items[0][price]"
    assert caught.value.http_status == 400
    assert "No such price: 'price_unknown'" in str(caught.value.user_message)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"mode": None}, "mode"),
        ({"line_items": None}, "line_items"),
        ({"line_items": [{"price_data": {"currency": "usd", "unit_amount": 5}}]}, None),
        (
            {"line_items": [{"price_data": {"currency": "usd", "product_data": {"name": "x"}}}]},
            None,
        ),
    ],
)
def test_missing_required_params_are_parameter_missing(
    sim: Sim, params: dict[str, Any], param: str | None
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sim.session(**params)

    assert caught.value.code == "parameter_missing"
    assert caught.value.http_status == 400
    if param is not None:
        assert caught.value.param == param


def test_unknown_params_are_refused_not_ignored(sim: Sim) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sim.session(bogus_param="x")

    assert caught.value.code == "parameter_unknown"
    assert caught.value.param == "bogus_param"


def test_bad_integers_and_recurring_prices_in_payment_mode_are_refused(sim: Sim) -> None:
    recurring = sim.stripe.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 100,
            "product_data": {"name": "Monthly"},
            "recurring": {"interval": "month"},
        }
    )
    one_time = sim.stripe.v1.prices.create(
        params={"currency": "usd", "unit_amount": 100, "product_data": {"name": "Once"}}
    )
    with pytest.raises(stripe.InvalidRequestError) as bad_integer:
        sim.session(line_items=[{"price": one_time.id, "quantity": "two"}])
    with pytest.raises(stripe.InvalidRequestError) as recurring_in_payment:
        sim.session(line_items=[{"price": recurring.id, "quantity": 1}])

    assert bad_integer.value.code == "parameter_invalid_integer"
    assert "recurring price" in str(recurring_in_payment.value.user_message)


def test_unknown_ids_are_404_resource_missing(sim: Sim) -> None:
    calls: list[Callable[[], object]] = [
        lambda: sim.stripe.v1.checkout.sessions.retrieve("cs_test_nope"),
        lambda: sim.stripe.v1.customers.retrieve("cus_nope"),
        lambda: sim.stripe.v1.payment_intents.retrieve("pi_nope"),
        lambda: sim.stripe.v1.charges.retrieve("ch_nope"),
        lambda: sim.stripe.v1.refunds.retrieve("re_nope"),
        lambda: sim.stripe.v1.events.retrieve("evt_nope"),
        lambda: sim.stripe.v1.prices.retrieve("price_nope"),
    ]
    for call in calls:
        with pytest.raises(stripe.InvalidRequestError) as caught:
            call()
        assert caught.value.http_status == 404
        assert caught.value.code == "resource_missing"


def test_a_missing_or_wrong_key_is_an_authentication_error(sim: Sim) -> None:
    wrong = sim.client_with_key("pk_test_a_publishable_key")
    with pytest.raises(stripe.AuthenticationError) as caught:
        wrong.v1.customers.list()
    no_key = sim.http.get(f"{sim.url}/v1/customers")

    assert caught.value.http_status == 401
    assert "Invalid API Key provided" in str(caught.value.user_message)
    assert no_key.status_code == 401
    assert no_key.json()["error"]["type"] == "invalid_request_error"
    assert "did not provide an API key" in no_key.json()["error"]["message"]


def test_only_the_configured_keys_are_accepted(make_sim: MakeSim) -> None:
    sim = make_sim(api_keys=("sk_test_only_this_one",))
    auth = {"Authorization": "Bearer sk_test_only_this_one"}

    refused = sim.http.get(f"{sim.url}/v1/customers", headers={"Authorization": "Bearer x"})
    accepted = sim.http.get(f"{sim.url}/v1/customers", headers=auth)
    basic = sim.http.get(f"{sim.url}/v1/customers", auth=("sk_test_only_this_one", ""))

    assert refused.status_code == 401
    assert accepted.status_code == 200
    assert basic.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nothing_here"),
        ("POST", "/v1/events"),
        ("DELETE", "/v1/customers"),
        ("GET", "/x"),
    ],
)
def test_unknown_urls_and_methods_answer_stripes_404(sim: Sim, method: str, path: str) -> None:
    response = sim.http.request(
        method, f"{sim.url}{path}", headers={"Authorization": "Bearer sk_test_abc"}
    )

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(f"Unrecognized request URL ({method}: {path})")


def test_the_sdk_raises_invalid_request_error_for_an_unknown_url(sim: Sim) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sim.stripe.raw_request("get", "/v1/nothing_here")

    assert caught.value.http_status == 404


def test_expiring_an_open_session_and_only_an_open_one(sim: Sim) -> None:
    session = sim.session()

    expired = sim.stripe.v1.checkout.sessions.expire(session.id)
    with pytest.raises(stripe.InvalidRequestError) as again:
        sim.stripe.v1.checkout.sessions.expire(session.id)

    assert expired.status == "expired"
    assert expired.url is None
    assert "can be expired" in str(again.value.user_message)
    sim.flush()
    event = sim.stripe.v1.events.list(params={"type": "checkout.session.expired"}).data[0]
    assert event.data.object.id == session.id
    assert event.request.id is not None
    assert event.request.idempotency_key is not None


def test_sessions_list_newest_first_with_filters_and_cursors(sim: Sim) -> None:
    customer = sim.stripe.v1.customers.create(params={"email": "jenny@example.com"})
    ids = [sim.session().id for _ in range(3)]
    with_customer = sim.session(customer=customer.id)

    page = sim.stripe.v1.checkout.sessions.list(params={"limit": 2})
    rest = sim.stripe.v1.checkout.sessions.list(
        params={"limit": 10, "starting_after": page.data[-1].id}
    )
    back = sim.stripe.v1.checkout.sessions.list(params={"ending_before": rest.data[0].id})
    filtered = sim.stripe.v1.checkout.sessions.list(params={"customer": customer.id})

    assert [s.id for s in page.data] == [with_customer.id, ids[2]]
    assert page.has_more is True
    assert [s.id for s in rest.data] == [ids[1], ids[0]]
    assert rest.has_more is False
    assert [s.id for s in back.data] == [with_customer.id, ids[2]]
    assert [s.id for s in filtered.data] == [with_customer.id]


def test_a_session_for_an_unknown_customer_is_refused(sim: Sim) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sim.session(customer="cus_missing")

    assert caught.value.code == "resource_missing"
    assert caught.value.param == "customer"


def test_customers_create_update_list(sim: Sim) -> None:
    created = sim.stripe.v1.customers.create(
        params={"email": "a@example.com", "name": "Ann", "metadata": {"user": "u1"}}
    )
    sim.stripe.v1.customers.create(params={"email": "b@example.com"})
    updated = sim.stripe.v1.customers.update(
        created.id, params={"name": "Anna", "metadata": {"user": "", "tier": "pro"}}
    )

    found = sim.stripe.v1.customers.list(params={"email": "a@example.com"})

    assert_shaped_like(created, "customer")
    assert created.id.startswith("cus_")
    assert updated.name == "Anna"
    assert updated.metadata.to_dict() == {"tier": "pro"}
    assert [c.id for c in found.data] == [created.id]
    sim.flush()
    update_event = sim.stripe.v1.events.list(params={"type": "customer.updated"}).data[0]
    assert update_event.data.previous_attributes.name == "Ann"


def test_a_repeated_idempotency_key_replays_the_first_answer(sim: Sim) -> None:
    params = {"email": "same@example.com"}
    first = sim.stripe.v1.customers.create(params=params, options={"idempotency_key": "k-1"})
    second = sim.stripe.v1.customers.create(params=params, options={"idempotency_key": "k-1"})
    with pytest.raises(stripe.IdempotencyError):
        sim.stripe.v1.customers.create(
            params={"email": "other@example.com"}, options={"idempotency_key": "k-1"}
        )

    assert first.id == second.id
    assert len(sim.stripe.v1.customers.list().data) == 1


def test_form_posts_from_curl_style_clients_parse_too(sim: Sim) -> None:
    response = sim.http.post(
        f"{sim.url}/v1/checkout/sessions",
        auth=("sk_test_curl", ""),
        content=(
            "mode=payment&line_items[0][quantity]=3&line_items[0][price_data][currency]=usd"
            "&line_items[0][price_data][unit_amount]=100"
            "&line_items[0][price_data][product_data][name]=Token&expand[]=line_items"
            "&metadata[k]=v"
        ),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["amount_total"] == 300
    assert body["line_items"]["data"][0]["quantity"] == 3
    assert body["metadata"] == {"k": "v"}
    assert response.headers["request-id"].startswith("req_")


def test_responses_are_json_objects_not_html(sim: Sim) -> None:
    response = httpx.get(f"{sim.url}/v1/events", auth=("sk_test_x", ""))

    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["object"] == "list"


def test_every_object_in_a_billing_story_has_stripes_shape(sim: Sim) -> None:
    from tests.simulator.billing_support import DAY, FEB_1, customer, on_clock, price

    clock_id, customer_id, subscription = on_clock(sim, 1000)
    sim.control(f"customers/{customer_id}/fail_next_payment", {"count": 1})
    sim.advance(clock_id, FEB_1 + 4 * DAY)
    item = subscription["items"].data[0]
    sim.stripe.v1.subscriptions.update(
        subscription.id, params={"items": [{"id": item.id, "price": price(sim, 3000).id}]}
    )
    other = customer(sim).id
    sim.stripe.v1.invoice_items.create(params={"customer": other, "amount": 5, "currency": "usd"})
    invoice = sim.stripe.v1.invoices.create(
        params={"customer": other, "pending_invoice_items_behavior": "include"}
    )
    paid = sim.stripe.v1.invoices.pay(invoice.id)
    intent = paid.payments.data[0].payment.payment_intent
    sim.stripe.v1.refunds.create(params={"payment_intent": intent})
    sim.stripe.v1.billing_portal.sessions.create(params={"customer": other})
    sim.flush()

    kinds = set(
        json.loads(resources.files("billfold.simulator").joinpath("fixtures.json").read_text())[
            "resources"
        ]
    )
    seen = set()
    for event in sim.stripe.v1.events.list(params={"limit": 100}).auto_paging_iter():
        obj = event.data.object.to_dict()
        if obj["object"] in kinds:
            assert_shaped_like(obj, obj["object"])
            seen.add(obj["object"])
        for line in (obj.get("lines") or {}).get("data", []):
            assert_shaped_like(line, "line_item")
        for sub_item in (obj.get("items") or {}).get("data", []):
            assert_shaped_like(sub_item, "subscription_item")
    assert {
        "customer",
        "subscription",
        "invoice",
        "invoiceitem",
        "invoice_payment",
        "payment_method",
        "payment_intent",
        "charge",
        "refund",
        "test_helpers.test_clock",
        "billing_portal.session",
    } <= seen
