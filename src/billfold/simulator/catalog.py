"""Products, prices and customers: what checkout sessions, subscriptions and invoices refer to.

A customer may be attached to a test clock at creation (``test_clock``), then lives at that clock's
time; its ``invoice_settings.default_payment_method`` is what its invoices are charged to
(``payment_method`` on creation attaches one first, see ``payment_methods``); its ``balance`` is the
credit (negative) or debt that its next invoices use up.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from billfold.simulator import errors, forms, objects, payment_methods
from billfold.simulator.forms import Params
from billfold.simulator.objects import Obj
from billfold.simulator.service import Origin, Simulator, created_filter

INTERVALS = ("day", "week", "month", "year")
_CURRENCY = re.compile(r"^[a-z]{3}$")

PRICE_PARAMS = (
    "active",
    "billing_scheme",
    "currency",
    "expand",
    "lookup_key",
    "metadata",
    "nickname",
    "product",
    "product_data",
    "recurring",
    "tax_behavior",
    "transfer_lookup_key",
    "unit_amount",
    "unit_amount_decimal",
)
PRICE_DATA_PARAMS = (
    "currency",
    "product",
    "product_data",
    "recurring",
    "tax_behavior",
    "unit_amount",
    "unit_amount_decimal",
)
CUSTOMER_PARAMS = (
    "description",
    "email",
    "expand",
    "invoice_settings",
    "metadata",
    "name",
    "phone",
)
CUSTOMER_CREATE_PARAMS = (*CUSTOMER_PARAMS, "balance", "payment_method", "test_clock")


def currency(params: Params) -> str:
    value = params.required_str("currency").lower()
    if not _CURRENCY.match(value):
        raise errors.invalid(f"Invalid currency: {value}", param=params.name("currency"))
    return value


def unit_amount(params: Params) -> int:
    """Whole minor units, from ``unit_amount`` or an integral ``unit_amount_decimal``."""
    amount = params.integer("unit_amount", minimum=0)
    if amount is not None:
        return amount
    decimal_text = params.text("unit_amount_decimal")
    if decimal_text is None:
        raise errors.parameter_missing(params.name("unit_amount"))
    try:
        value = Decimal(decimal_text)
    except InvalidOperation:
        raise errors.invalid(
            f"Invalid decimal: {decimal_text}", param=params.name("unit_amount_decimal")
        ) from None
    if value != value.to_integral_value() or value < 0:
        raise errors.invalid(
            "The simulator supports whole, non-negative minor units only.",
            param=params.name("unit_amount_decimal"),
        )
    return int(value)


def recurring(params: Params) -> Obj | None:
    nested = params.nested("recurring")
    if nested is None:
        return None
    nested.reject_unknown(["interval", "interval_count", "usage_type", "trial_period_days"])
    interval = nested.choice("interval", INTERVALS, required=True)
    count = nested.integer("interval_count", minimum=1) or 1
    return {
        "interval": interval,
        "interval_count": count,
        "meter": None,
        "usage_type": "licensed",
        "trial_period_days": nested.integer("trial_period_days", minimum=0),
    }


def create_product(
    sim: Simulator, params: Params, *, origin: Origin | None, emit: bool = True
) -> Obj:
    params.reject_unknown(
        [
            "active",
            "description",
            "expand",
            "id",
            "images",
            "metadata",
            "name",
            "statement_descriptor",
            "tax_code",
            "unit_label",
        ]
    )
    now = sim.now()
    product = objects.build(
        "product",
        active=params.boolean("active") is not False,
        created=now,
        description=params.text("description"),
        id=params.text("id") or objects.new_id("prod_", 14),
        metadata=forms.apply_metadata({}, params.metadata()),
        name=params.required_str("name"),
        updated=now,
    )
    sim.put(product)
    if emit and origin is not None:
        sim.emit("product.created", product, origin=origin)
    return product


def create_price(
    sim: Simulator, params: Params, *, origin: Origin | None, inline: bool = False
) -> Obj:
    """A price from ``POST /v1/prices`` or, when ``inline``, from a line item's ``price_data``."""
    params.reject_unknown(PRICE_DATA_PARAMS if inline else PRICE_PARAMS)
    value = currency(params)
    amount = unit_amount(params)
    product_id = params.text("product")
    product_data = params.nested("product_data")
    if product_id is not None and product_data is not None:
        raise errors.invalid(
            "You may only specify one of these parameters: product, product_data.",
            param=params.name("product"),
        )
    if product_id is not None:
        sim.get("product", product_id, param=params.name("product"))
    elif product_data is not None:
        product_id = create_product(sim, product_data, origin=origin, emit=not inline)["id"]
    else:
        raise errors.parameter_missing(params.name("product_data" if inline else "product"))
    lookup_key = None if inline else params.text("lookup_key")
    if lookup_key is not None:
        for other in sim.state.collection("price").values():
            if other["lookup_key"] == lookup_key:
                if params.boolean("transfer_lookup_key"):
                    other["lookup_key"] = None
                else:
                    raise errors.invalid(
                        f"A price ({other['id']}) already uses that lookup key.",
                        param="lookup_key",
                    )
    repeat = recurring(params)
    price = objects.build(
        "price",
        # Prices made from price_data are not reusable; Stripe keeps them archived.
        active=False if inline else params.boolean("active") is not False,
        created=sim.now(),
        currency=value,
        id=objects.new_id("price_1"),
        lookup_key=lookup_key,
        metadata={} if inline else forms.apply_metadata({}, params.metadata()),
        nickname=None if inline else params.text("nickname"),
        product=product_id,
        recurring=repeat,
        tax_behavior=params.text("tax_behavior") or "unspecified",
        type="recurring" if repeat else "one_time",
        unit_amount=amount,
        unit_amount_decimal=str(amount),
    )
    sim.put(price)
    if not inline and origin is not None:
        sim.emit("price.created", price, origin=origin)
    return price


def list_prices(sim: Simulator, params: Params) -> Obj:
    params.reject_unknown(
        [
            "active",
            "created",
            "currency",
            "ending_before",
            "expand",
            "limit",
            "lookup_keys",
            "product",
            "recurring",
            "starting_after",
            "type",
        ]
    )
    active = params.boolean("active")
    repeat = params.nested("recurring")
    interval = None
    if repeat is not None:
        repeat.reject_unknown(["interval", "meter", "usage_type"])
        interval = repeat.choice("interval", INTERVALS)
    created = created_filter(params)
    lookup_keys = params.strings("lookup_keys")
    product = params.text("product")
    kind = params.choice("type", ["one_time", "recurring"])
    wanted_currency = params.text("currency")

    def keep(price: Obj) -> bool:
        return (
            (active is None or price["active"] == active)
            and (not lookup_keys or price["lookup_key"] in lookup_keys)
            and (product is None or price["product"] == product)
            and (kind is None or price["type"] == kind)
            and (wanted_currency is None or price["currency"] == wanted_currency)
            and (interval is None or (price["recurring"] or {}).get("interval") == interval)
            and created(price)
        )

    return sim.page(sim.newest_first("price"), params, "/v1/prices", keep=keep, cursor_kind="price")


def create_customer(sim: Simulator, params: Params, *, origin: Origin) -> Obj:
    params.reject_unknown(CUSTOMER_CREATE_PARAMS)
    clock_id = params.text("test_clock")
    clock = None
    if clock_id is not None:
        clock = sim.get("test_helpers.test_clock", clock_id, param="test_clock")
    at = int(clock["frozen_time"]) if clock is not None else sim.now()
    with sim.at(at):
        customer = new_customer(
            sim,
            email=params.text("email"),
            name=params.text("name"),
            origin=origin,
            description=params.text("description"),
            phone=params.text("phone"),
            metadata=forms.apply_metadata({}, params.metadata()),
            test_clock=clock_id,
            balance=params.integer("balance") or 0,
        )
        attached: dict[str, str] = {}
        reference = params.text("payment_method")
        if reference is not None:
            method = payment_methods.attach(
                sim, reference, customer["id"], origin=origin, param="payment_method"
            )
            attached[reference] = method["id"]
        _invoice_settings(sim, customer, params, origin=origin, attached=attached)
    return customer


def _invoice_settings(
    sim: Simulator,
    customer: Obj,
    params: Params,
    *,
    origin: Origin,
    attached: dict[str, str] | None = None,
) -> Obj:
    """Apply ``invoice_settings``; answer the old values of what changed."""
    settings = params.nested("invoice_settings")
    if settings is None:
        return {}
    settings.reject_unknown(
        ["custom_fields", "default_payment_method", "footer", "rendering_options"]
    )
    current = customer["invoice_settings"]
    before = dict(current)
    if "default_payment_method" in settings:
        reference = settings.text("default_payment_method") or None
        current["default_payment_method"] = (
            None
            if reference is None
            else payment_methods.resolve(
                sim,
                reference,
                customer["id"],
                origin=origin,
                param="invoice_settings[default_payment_method]",
                attached=attached,
            )
        )
    if "footer" in settings:
        current["footer"] = settings.text("footer") or None
    return {"invoice_settings": before} if before != current else {}


def new_customer(
    sim: Simulator,
    *,
    email: str | None,
    name: str | None,
    origin: Origin,
    description: str | None = None,
    phone: str | None = None,
    metadata: dict[str, str] | None = None,
    test_clock: str | None = None,
    balance: int = 0,
) -> Obj:
    customer = objects.build(
        "customer",
        balance=balance,
        created=sim.now(),
        description=description,
        email=email,
        id=objects.new_id("cus_", 14),
        invoice_prefix=objects.new_id("", 8).upper(),
        metadata=metadata or {},
        name=name,
        phone=phone,
        test_clock=test_clock,
    )
    sim.put(customer)
    sim.emit("customer.created", customer, origin=origin)
    return customer


def update_customer(sim: Simulator, customer_id: str, params: Params, *, origin: Origin) -> Obj:
    params.reject_unknown((*CUSTOMER_PARAMS, "balance"))
    customer = sim.get("customer", customer_id)
    with sim.for_customer(customer_id):
        previous: Obj = {}
        for field in ("description", "email", "name", "phone"):
            if field in params:
                value = params.text(field) or None
                if value != customer[field]:
                    previous[field] = customer[field]
                    customer[field] = value
        balance = params.integer("balance")
        if balance is not None and balance != customer["balance"]:
            previous["balance"] = customer["balance"]
            customer["balance"] = balance
        merged = forms.apply_metadata(customer["metadata"], params.metadata())
        if merged != customer["metadata"]:
            previous["metadata"] = customer["metadata"]
            customer["metadata"] = merged
        previous.update(_invoice_settings(sim, customer, params, origin=origin))
        if previous:
            sim.emit("customer.updated", customer, origin=origin, previous=previous)
    return customer


def list_customers(sim: Simulator, params: Params) -> Obj:
    params.reject_unknown(
        ["created", "email", "ending_before", "expand", "limit", "starting_after"]
    )
    email = params.text("email")
    created = created_filter(params)

    def keep(customer: Obj) -> bool:
        return (email is None or customer["email"] == email) and created(customer)

    return sim.page(
        sim.newest_first("customer"), params, "/v1/customers", keep=keep, cursor_kind="customer"
    )


def list_products(sim: Simulator, params: Params) -> Obj:
    params.reject_unknown(
        ["active", "created", "ending_before", "expand", "ids", "limit", "starting_after"]
    )
    active = params.boolean("active")
    ids = params.strings("ids")
    created = created_filter(params)

    def keep(product: Obj) -> bool:
        return (
            (active is None or product["active"] == active)
            and (not ids or product["id"] in ids)
            and created(product)
        )

    return sim.page(
        sim.newest_first("product"), params, "/v1/products", keep=keep, cursor_kind="product"
    )
