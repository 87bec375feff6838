"""The catalog: the bundled example, lookups, amount checks, one-line errors for every mistake."""

from __future__ import annotations

import json
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billfold.adapters import catalog_toml
from billfold.domain import catalog as cat
from billfold.domain import errors
from billfold.entrypoints.http import presenters

EXAMPLE = catalog_toml.load_catalog(None)

MINIMAL = """
[units.credits]

[packages.starter]
title = "Starter Pack"
currency = "usd"
price = 499
grants = [{ unit = "credits", amount = 500 }]
"""


def parse(text: str) -> cat.Catalog:
    return catalog_toml.parse_catalog(textwrap.dedent(text), source="catalog.toml")


def error_of(text: str) -> str:
    with pytest.raises(errors.CatalogError) as caught:
        parse(text)
    message = caught.value.message
    assert len(message.splitlines()) == 1
    assert message.startswith("catalog.toml: ")
    return message


# -- the bundled example ---------------------------------------------------------------------------


def test_the_bundled_example_has_the_credit_packs_of_the_design() -> None:
    starter, popular, professional = (
        EXAMPLE.package(pid) for pid in ("starter", "popular", "professional")
    )

    assert (starter.price, starter.currency, starter.title) == (499, "usd", "Starter Pack")
    assert starter.grants_for(499) == (
        cat.ResolvedGrant(
            unit="credits", amount=500, priority=0, expires_in_days=None, kind="purchase"
        ),
    )
    assert popular.price == 1499
    assert [g.amount for g in popular.grants] == [1500]
    assert professional.price == 2999
    assert professional.grants == (
        cat.GrantSpec(unit="credits", amount=3500),
        cat.GrantSpec(unit="credits", amount=500, priority=10, expires_in_days=90, kind="bonus"),
    )


def test_the_bundled_example_has_a_budget_top_up_into_the_usd_wallet() -> None:
    budget = EXAMPLE.package("budget")

    assert budget.price is None
    assert budget.custom_amount == cat.CustomAmount(min=500, max=100_000)
    assert EXAMPLE.unit("usd") == cat.Unit(name="usd", decimals=2)
    assert budget.grants_for(2500) == (
        cat.ResolvedGrant(
            unit="usd", amount=2500, priority=0, expires_in_days=None, kind="purchase"
        ),
    )


def test_the_bundled_example_has_free_pro_and_elite_plans() -> None:
    free, pro, elite = (EXAMPLE.plan(pid) for pid in ("free", "pro", "elite"))

    assert EXAMPLE.default_plan() == free
    assert free.features["auto_trading"] is False
    assert free.limits["max_positions"] == 5
    assert EXAMPLE.plan_for_price(None, pro.lookup_key) == pro
    assert (pro.price, pro.currency, pro.interval) == (1900, "usd", "month")
    assert pro.features["auto_trading"] is True
    assert pro.limits["max_positions"] == 50
    assert pro.allowance == (
        cat.GrantSpec(unit="credits", amount=1000, kind="allowance", rollover=200),
    )
    assert pro.grace_period_days == 3
    assert EXAMPLE.refund_policy_for(pro) == "debt"
    assert EXAMPLE.plan_for_price(None, "billfold_plan_elite") == elite
    assert EXAMPLE.plan_rank(free) < EXAMPLE.plan_rank(pro) < EXAMPLE.plan_rank(elite)
    assert EXAMPLE.refund_policy_for(elite) == "floor"


def test_the_bundled_example_survives_a_round_trip_through_toml() -> None:
    assert parse(catalog_toml.dumps_catalog(EXAMPLE)) == EXAMPLE


def test_a_catalog_file_is_loaded_from_a_path_or_a_string(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(MINIMAL, encoding="utf-8")

    assert catalog_toml.load_catalog(path) == catalog_toml.load_catalog(str(path)) == parse(MINIMAL)


# -- lookups ---------------------------------------------------------------------------------------

PRICED = """
[units.credits]
[units.usd]
decimals = 2
[units.eur]
decimals = 2

[packages.starter]
title = "Starter Pack"
currency = "usd"
price = 499
stripe_price_id = "price_starter"
grants = [{ unit = "credits", amount = 500 }]

[packages.budget]
title = "Budget"
currency = "usd"
custom_amount = { min = 500, max = 100000 }
grants = [{ unit = "usd", amount = "paid" }]

[packages.budget_eur]
title = "Budget EUR"
currency = "eur"
custom_amount = { min = 100, max = 1000 }
grants = [{ unit = "eur", amount = "paid" }]

[plans.pro]
stripe_price_ids = ["price_pro_monthly", "price_pro_yearly"]
"""


def test_packages_and_plans_are_found_by_their_stripe_price() -> None:
    catalog = parse(PRICED)

    assert catalog.package_for_price("price_starter") == catalog.package("starter")
    assert catalog.plan_for_price("price_pro_yearly") == catalog.plan("pro")
    assert catalog.package_for_price("price_pro_yearly") is None
    assert catalog.plan_for_price("price_starter") is None
    assert catalog.package_for_price("price_unknown") is None


def test_the_custom_amount_package_is_found_by_currency_in_any_case() -> None:
    catalog = parse(PRICED)

    assert catalog.custom_package_for_currency("USD") == catalog.package("budget")
    assert catalog.custom_package_for_currency("eur") == catalog.package("budget_eur")
    assert catalog.custom_package_for_currency("jpy") is None


def test_unknown_names_raise_the_documented_errors() -> None:
    with pytest.raises(errors.UnknownUnit):
        EXAMPLE.unit("gems")
    with pytest.raises(errors.UnknownPackage):
        EXAMPLE.package("mega")
    with pytest.raises(errors.ValidationError):
        EXAMPLE.plan("platinum")


def test_a_catalog_without_plans_has_no_default_plan() -> None:
    assert parse(MINIMAL).default_plan() is None


def test_the_catalog_wide_refund_policy_applies_unless_overridden() -> None:
    catalog = parse(
        MINIMAL
        + """
        [packages.other]
        title = "Other"
        currency = "usd"
        price = 100
        refund_policy = "floor"
        grants = [{ unit = "credits", amount = 1 }]

        [policy]
        refund = "debt"
        """.replace("\n        ", "\n")
    )

    assert catalog.refund_policy == "debt"
    assert catalog.refund_policy_for(catalog.package("starter")) == "debt"
    assert catalog.refund_policy_for(catalog.package("other")) == "floor"


# -- amounts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("package_id", "amount", "currency", "matches"),
    [
        ("starter", 499, "usd", True),
        ("starter", 499, "USD", True),
        ("starter", 498, "usd", False),
        ("starter", 500, "usd", False),
        ("starter", 499, "eur", False),
        ("starter", 0, "usd", False),
        ("budget", 500, "usd", True),
        ("budget", 100_000, "usd", True),
        ("budget", 4321, "Usd", True),
        ("budget", 499, "usd", False),
        ("budget", 100_001, "usd", False),
        ("budget", 2500, "eur", False),
    ],
)
def test_a_payment_matches_a_package_only_in_its_amount_and_currency(
    package_id: str, amount: int, currency: str, matches: bool
) -> None:
    catalog = parse(PRICED)

    assert catalog.package(package_id).amount_matches(amount, currency) is matches


@pytest.mark.parametrize("amount", [True, 499.0, "499", None])
def test_an_amount_that_is_not_an_integer_never_matches(amount: Any) -> None:
    starter = EXAMPLE.package("starter")

    assert not starter.amount_matches(amount, "usd")


def test_paid_grants_resolve_to_the_amount_paid_and_fixed_grants_do_not_depend_on_it() -> None:
    professional = EXAMPLE.package("professional")

    assert [g.amount for g in professional.grants_for(2999)] == [3500, 500]
    assert [g.amount for g in professional.grants_for(0)] == [3500, 500]
    assert [g.amount for g in EXAMPLE.package("budget").grants_for(777)] == [777]


@pytest.mark.parametrize("amount", [-1, True, 1.5])
def test_grants_for_rejects_an_amount_that_is_not_a_non_negative_integer(amount: Any) -> None:
    with pytest.raises(errors.ValidationError):
        EXAMPLE.package("starter").grants_for(amount)


def test_grants_for_refuses_to_grant_a_paid_amount_of_nothing() -> None:
    with pytest.raises(errors.ValidationError, match="nothing was paid"):
        EXAMPLE.package("budget").grants_for(0)


def test_currency_decimals_follow_stripe() -> None:
    assert [cat.currency_decimals(c) for c in ("usd", "EUR", "jpy", "krw", "kwd")] == [
        2,
        2,
        0,
        0,
        3,
    ]


# -- the public view -------------------------------------------------------------------------------


def _keys(node: object) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in _keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _keys(v)}
    return set()


def test_the_public_catalog_is_json_with_prices_and_grants_but_no_internal_policies() -> None:
    public = presenters.catalog(EXAMPLE).model_dump(mode="json")

    assert json.loads(json.dumps(public)) == public
    assert "refund_policy" not in _keys(public)
    assert "priority" not in _keys(public)
    starter = next(p for p in public["packages"] if p["id"] == "starter")
    assert starter == {
        "id": "starter",
        "title": "Starter Pack",
        "currency": "usd",
        "price": 499,
        "custom_amount": None,
        "stripe_price_id": None,
        "grants": [{"unit": "credits", "amount": 500, "expires_in_days": None, "kind": "purchase"}],
    }
    budget = next(p for p in public["packages"] if p["id"] == "budget")
    assert budget["custom_amount"] == {"min": 500, "max": 100_000}
    assert budget["grants"][0]["amount"] == "paid"
    pro = next(p for p in public["plans"] if p["id"] == "pro")
    assert pro["stripe_price_ids"] == []
    assert (pro["price"], pro["currency"], pro["interval"], pro["rank"]) == (
        1900,
        "usd",
        "month",
        1,
    )
    assert pro["features"] == {"auto_trading": True, "priority_support": False}
    assert pro["limits"] == {"max_positions": 50}
    assert [u["name"] for u in public["units"]] == ["credits", "tokens", "usd"]


# -- mistakes, each in one line naming the file and the key ----------------------------------------


def _package(**lines: str) -> str:
    body = {
        "title": '"Starter Pack"',
        "currency": '"usd"',
        "price": "499",
        "grants": '[{ unit = "credits", amount = 500 }]',
    }
    body.update(lines)
    fields = "\n".join(f"{k} = {v}" for k, v in body.items() if v)
    return f"[units.credits]\n[units.usd]\ndecimals = 2\n\n[packages.starter]\n{fields}\n"


def _plans(*plans: str) -> str:
    return MINIMAL + "\n" + "\n".join(textwrap.dedent(p) for p in plans)


FREE = """
[plans.free]
default = true
features = { auto_trading = false }
limits = { max_positions = 5 }
"""

PRO = """
[plans.pro]
stripe_price_ids = ["price_pro"]
features = { auto_trading = true }
limits = { max_positions = 50 }
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            _package(price="4.99"),
            "packages.starter.price: must be a positive integer in minor units of usd, got 4.99",
        ),
        (
            _package(price="0"),
            "packages.starter.price: must be a positive integer in minor units of usd, got 0",
        ),
        (
            _package(price='"499"'),
            'packages.starter.price: must be a positive integer in minor units of usd, got "499"',
        ),
        (
            _package(price="true"),
            "packages.starter.price: must be a positive integer in minor units of usd, got true",
        ),
        (
            _package(price="100000000"),
            "packages.starter.price: must be a positive integer in minor units of usd, "
            "got 100000000",
        ),
        (_package(title=""), "packages.starter.title: is required"),
        (_package(title='"  "'), 'packages.starter.title: must be a non-empty string, got "  "'),
        (
            _package(currency='"dollars"'),
            'packages.starter.currency: must be a lowercase ISO currency code such as "usd", '
            'got "dollars"',
        ),
        (
            _package(price=""),
            "packages.starter.price: is required (or custom_amount, for a top-up)",
        ),
        (
            _package(custom_amount="{ min = 1, max = 2 }"),
            "packages.starter.custom_amount: cannot be given together with price; choose one",
        ),
        (
            _package(price="", custom_amount="{ min = 10, max = 5 }"),
            "packages.starter.custom_amount.max: must not be less than min (10), got 5",
        ),
        (
            _package(price="", custom_amount="{ min = 10 }"),
            "packages.starter.custom_amount.max: is required",
        ),
        (
            _package(price="", custom_amount="{ min = 1, max = 5, step = 1 }"),
            "packages.starter.custom_amount.step: unknown key; expected one of: min, max",
        ),
        (
            _package(price="", custom_amount="{ min = 500, max = 1000 }"),
            'packages.starter.grants: a custom-amount package needs a grant with amount = "paid", '
            "or every customer would get the same whatever they paid",
        ),
        (_package(grants="[]"), "packages.starter.grants: must list at least one grant"),
        (
            _package(grants='{ unit = "credits" }'),
            "packages.starter.grants: must be an array, got a table",
        ),
        (
            _package(grants='["credits"]'),
            'packages.starter.grants[0]: must be a table, got "credits"',
        ),
        (
            _package(grants='[{ unit = "credit", amount = 5 }]'),
            'packages.starter.grants[0].unit: unknown unit "credit"; declared units: credits, usd',
        ),
        (
            _package(grants='[{ unit = "credits" }]'),
            "packages.starter.grants[0].amount: is required",
        ),
        (
            _package(
                grants='[{ unit = "credits", amount = 5 }, { unit = "credits", amount = -5 }]'
            ),
            "packages.starter.grants[1].amount: must be a positive integer of credits "
            '(at most 1000000000000000) or "paid", got -5',
        ),
        (
            _package(grants='[{ unit = "credits", amount = 5.5 }]'),
            "packages.starter.grants[0].amount: must be a positive integer of credits "
            '(at most 1000000000000000) or "paid", got 5.5',
        ),
        (
            _package(grants='[{ unit = "credits", amount = 5, expires_in_day = 3 }]'),
            "packages.starter.grants[0].expires_in_day: unknown key; did you mean expires_in_days?",
        ),
        (
            _package(grants='[{ unit = "credits", amount = 5, expires_in_days = 0 }]'),
            "packages.starter.grants[0].expires_in_days: must be a whole number of days "
            "from 1 to 36500, got 0",
        ),
        (
            _package(grants='[{ unit = "credits", amount = 5, priority = 1.5 }]'),
            "packages.starter.grants[0].priority: must be an integer from -1000000 to 1000000, "
            "got 1.5",
        ),
        (
            _package(grants='[{ unit = "credits", amount = 5, kind = "gift" }]'),
            'packages.starter.grants[0].kind: must be one of "purchase", "bonus", "allowance", '
            '"promotion", got "gift"',
        ),
        (
            _package(grants='[{ unit = "credits", amount = "paid" }]'),
            'packages.starter.grants[0].amount: "paid" on a fixed-price package can only credit '
            "the usd wallet; give the amount of credits instead",
        ),
        (
            _package(grants='[{ unit = "credits", amount = "all" }]'),
            "packages.starter.grants[0].amount: must be a positive integer of credits "
            '(at most 1000000000000000) or "paid", got "all"',
        ),
        (
            _package(stripe_price_id='"price 1"'),
            'packages.starter.stripe_price_id: must be a Stripe price id such as "price_123", '
            'got "price 1"',
        ),
        (
            _package(refund_policy='"never"'),
            'packages.starter.refund_policy: must be "debt" or "floor", got "never"',
        ),
        (_package(prize="499"), "packages.starter.prize: unknown key; did you mean price?"),
        (
            MINIMAL.replace("[packages.starter]", '[packages."starter pack"]'),
            'packages."starter pack": a package id must be letters, digits, _ and -, '
            "at most 64 characters",
        ),
        (
            MINIMAL + "[unit.tokens]\n",
            "unit: unknown key; did you mean units?",
        ),
        (
            MINIMAL + "[units.Tokens]\n",
            "units.Tokens: a unit name must be lowercase letters, digits and _, starting with "
            "a letter, at most 32 characters",
        ),
        (
            MINIMAL + "[units.tokens]\ndecimals = -1\n",
            "units.tokens.decimals: must be an integer from 0 to 18, got -1",
        ),
        (
            MINIMAL + "[units.tokens]\ndecimal = 2\n",
            "units.tokens.decimal: unknown key; did you mean decimals?",
        ),
        (
            MINIMAL + "[units.tokens]\nprecision = 2\n",
            "units.tokens.precision: unknown key; expected one of: decimals, low_balance",
        ),
        (
            "units.gems = 3\n" + MINIMAL.replace("[units.credits]\n", ""),
            "units.gems: must be a table, got 3",
        ),
        (
            MINIMAL + '[policy]\nrefund = "always"\n',
            'policy.refund: must be "debt" or "floor", got "always"',
        ),
        (MINIMAL + "[policy]\nrefunds = 1\n", "policy.refunds: unknown key; did you mean refund?"),
        ("packages = 3\n", "packages: must be a table of tables such as [packages.starter], got 3"),
        ("", "the catalog declares no packages and no plans"),
        ("[units.credits]\n", "the catalog declares no packages and no plans"),
        ("price = = 3", "is not valid TOML: Invalid value (at line 1, column 9)"),
        (
            _plans(FREE, FREE.replace("free", "basic")),
            "plans.basic.default: plans.free is already the default plan; only one may be",
        ),
        (
            _plans(
                FREE,
                PRO.replace("price_pro", "price_x"),
                PRO.replace("pro]", "max]").replace("price_pro", "price_x"),
            ),
            'plans.max.stripe_price_ids[0]: "price_x" is already the price of plans.pro; '
            "a Stripe price must buy exactly one thing",
        ),
        (
            _package(stripe_price_id='"price_pro"') + textwrap.dedent(PRO),
            'plans.pro.stripe_price_ids[0]: "price_pro" is already the price of packages.starter; '
            "a Stripe price must buy exactly one thing",
        ),
        (
            _plans(PRO.replace('["price_pro"]', "[]")),
            "plans.pro.stripe_price_ids: a plan other than the default needs a Stripe price id, "
            "or a price, currency and interval to sell it with",
        ),
        (
            _plans(PRO.replace('["price_pro"]', '"price_pro"')),
            'plans.pro.stripe_price_ids: must be an array, got "price_pro"',
        ),
        (
            _plans(FREE.replace("default = true", 'default = "yes"')),
            'plans.free.default: must be true or false, got "yes"',
        ),
        (
            _plans(FREE.replace("default = true", 'default = true\nstripe_price_ids = ["p"]')),
            "plans.free.stripe_price_ids: the default plan is what accounts without a "
            "subscription get; it cannot have Stripe prices",
        ),
        (
            _plans(FREE, PRO.replace("auto_trading", "auto_tradng")),
            'plans.pro.features: missing "auto_trading", which plans.free declares; '
            "every plan must declare the same features",
        ),
        (
            _plans(FREE, PRO.replace("max_positions = 50", "max_positions = 50, max_bots = 1")),
            "plans.pro.limits.max_bots: plans.free does not declare it; every plan must declare "
            "the same limits",
        ),
        (
            _plans(FREE.replace("auto_trading = false", "auto_trading = 0")),
            "plans.free.features.auto_trading: must be true or false, got 0",
        ),
        (
            _plans(FREE.replace("max_positions = 5", "max_positions = -5")),
            'plans.free.limits.max_positions: must be "unlimited" or an integer from 0 to '
            "1000000000000000, got -5",
        ),
        (
            _plans(PRO + 'allowance = [{ unit = "credits", amount = "paid" }]\n'),
            'plans.pro.allowance[0].unit: a "paid" allowance adds the amount paid to a money '
            "wallet; credits is not one (a unit named like a currency, with its decimals)",
        ),
        (
            _plans(PRO + 'allowance = [{ unit = "credits", amount = 5, expires_in_days = 30 }]\n'),
            "plans.pro.allowance[0].expires_in_days: an allowance expires at the end of the paid "
            "period; remove expires_in_days",
        ),
        (
            _plans(PRO + 'allowance = [{ unit = "tokens", amount = 5 }]\n'),
            'plans.pro.allowance[0].unit: unknown unit "tokens"; declared units: credits',
        ),
        (
            _plans(PRO + "grace_period_days = 400\n"),
            "plans.pro.grace_period_days: must be an integer from 0 to 365, got 400",
        ),
        (
            _plans(PRO + 'stripe_price_id = "price_pro"\n'),
            "plans.pro.stripe_price_id: unknown key; did you mean stripe_price_ids?",
        ),
        (
            _plans(FREE + 'allowance = [{ unit = "credits", amount = 5 }]\n'),
            "plans.free.allowance: an allowance is granted per paid invoice, and the default "
            "plan has none",
        ),
    ],
)
def test_every_mistake_is_one_line_naming_the_file_the_key_and_the_problem(
    text: str, message: str
) -> None:
    assert error_of(text) == f"catalog.toml: {message}"


PAID_CASES = """
[units.credits]
[units.usd]
decimals = {usd_decimals}
[units.eur]
decimals = 2

[packages.topup]
title = "Top-up"
currency = "{currency}"
custom_amount = {{ min = 100, max = 1000 }}
grants = [{{ unit = "{unit}", amount = "paid" }}]

[packages.euro]
title = "Euro pack"
currency = "eur"
price = 100
grants = [{{ unit = "credits", amount = 1 }}]
"""


@pytest.mark.parametrize(
    ("currency", "unit", "usd_decimals", "problem"),
    [
        ("usd", "usd", 2, None),
        ("usd", "credits", 2, None),
        (
            "usd",
            "usd",
            0,
            "packages.topup.grants[0].unit: units.usd has decimals = 0, but usd is paid in "
            "minor units with 2 decimals",
        ),
        (
            "usd",
            "eur",
            2,
            'packages.topup.grants[0].unit: a "paid" grant cannot credit eur for a payment in usd',
        ),
        (
            "jpy",
            "usd",
            2,
            'packages.topup.grants[0].unit: a "paid" grant cannot credit usd for a payment in jpy',
        ),
    ],
)
def test_a_paid_grant_credits_only_what_the_payment_means(
    currency: str, unit: str, usd_decimals: int, problem: str | None
) -> None:
    text = PAID_CASES.format(currency=currency, unit=unit, usd_decimals=usd_decimals)

    if problem is None:
        assert parse(text).package("topup").custom_amount is not None
    else:
        assert error_of(text) == f"catalog.toml: {problem}"


def test_two_custom_amount_packages_in_one_currency_are_ambiguous() -> None:
    text = PRICED.replace('currency = "eur"', 'currency = "usd"').replace(
        '{ unit = "eur", amount = "paid" }', '{ unit = "usd", amount = "paid" }'
    )

    assert error_of(text) == (
        "catalog.toml: packages.budget_eur.custom_amount: packages.budget is already the "
        "custom-amount package for usd; a payment of any amount must resolve to one"
    )


def test_uppercase_currencies_are_read_as_lowercase() -> None:
    assert parse(_package(currency='"USD"')).package("starter").currency == "usd"


# -- files -----------------------------------------------------------------------------------------


def test_a_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"

    with pytest.raises(errors.CatalogError) as caught:
        catalog_toml.load_catalog(path)

    assert caught.value.message == f"{path}: catalog file not found"


def test_a_directory_is_not_a_catalog(tmp_path: Path) -> None:
    with pytest.raises(errors.CatalogError, match="is a directory"):
        catalog_toml.load_catalog(tmp_path)


def test_a_file_that_is_not_utf8_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[packages.caf\u00e9]\ntitle = "\u00e9"\n'.encode("latin-1"))

    with pytest.raises(errors.CatalogError) as caught:
        catalog_toml.load_catalog(path)

    assert caught.value.message == f"{path}: is not UTF-8 text"


def test_errors_name_the_file_as_given(tmp_path: Path) -> None:
    path = tmp_path / "shop.toml"
    path.write_text(_package(price="4.99"), encoding="utf-8")

    with pytest.raises(errors.CatalogError) as caught:
        catalog_toml.load_catalog(path)

    assert caught.value.message.startswith(f"{path}: packages.starter.price: ")
    assert caught.value.details["path"] == "packages.starter.price"


def test_quoted_keys_with_odd_characters_stay_on_one_line() -> None:
    message = error_of(MINIMAL.replace("[packages.starter]", '[packages."a\\nb"]'))

    assert 'packages."a\\nb": a package id must be' in message


# -- the domain values on their own ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "path"),
    [
        (lambda: cat.Unit(name="credits", decimals=True), "units.credits.decimals"),
        (lambda: cat.GrantSpec(unit="credits", amount=True), "amount"),
        (lambda: cat.GrantSpec(unit="credits", amount=1.0), "amount"),  # type: ignore[arg-type]
        (lambda: cat.GrantSpec(unit="credits", amount=1, priority=False), "priority"),
        (lambda: cat.GrantSpec(unit="credits", amount=1, expires_in_days=2.0), "expires_in_days"),  # type: ignore[arg-type]
        (lambda: cat.CustomAmount(min=0, max=10), "min"),
        (
            lambda: cat.Package(
                id="p",
                title="P",
                currency="usd",
                price=4.99,  # type: ignore[arg-type]
                grants=(cat.GrantSpec(unit="c", amount=1),),
            ),
            "packages.p.price",
        ),
        (
            lambda: cat.Package(id="p", title="P", currency="usd", price=1, grants=("x",)),  # type: ignore[arg-type]
            "packages.p.grants[0]",
        ),
        (lambda: cat.Plan(id="pro", stripe_price_ids=("a", "a")), "plans.pro.stripe_price_ids[1]"),
        (
            lambda: cat.Catalog(units=(cat.Unit(name="c"), cat.Unit(name="c"))),
            "units.c",
        ),
        (lambda: cat.Catalog(refund_policy="maybe"), "policy.refund"),  # type: ignore[arg-type]
    ],
)
def test_domain_values_check_their_invariants_when_built(build: Any, path: str) -> None:
    with pytest.raises(errors.CatalogError) as caught:
        build()

    assert caught.value.details["path"] == path
    assert caught.value.message.startswith(f"{path}: ")


def test_domain_values_are_immutable() -> None:
    plan = EXAMPLE.plan("pro")

    with pytest.raises(AttributeError):
        plan.grace_period_days = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        plan.features["auto_trading"] = False  # type: ignore[index]


def test_lists_given_from_python_are_frozen_into_tuples() -> None:
    package = cat.Package(
        id="p",
        title="P",
        currency="usd",
        price=1,
        grants=[cat.GrantSpec(unit="credits", amount=1)],  # type: ignore[arg-type]
    )

    assert package.grants == (cat.GrantSpec(unit="credits", amount=1),)
    assert hash(package) == hash(package)


# -- properties ------------------------------------------------------------------------------------

_names = st.from_regex(r"[a-z][a-z0-9_]{3,10}", fullmatch=True)
_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,12}", fullmatch=True)
_titles = st.text(
    alphabet=st.characters(min_codepoint=32, blacklist_categories=("Cs", "Cc")),
    min_size=1,
    max_size=40,
).filter(lambda t: t.strip() != "")
_price_ids = st.from_regex(r"price_[A-Za-z0-9]{1,10}", fullmatch=True)


@st.composite
def _grants(draw: st.DrawFn, units: list[str], kind: str = "purchase") -> cat.GrantSpec:
    return cat.GrantSpec(
        unit=draw(st.sampled_from(units)),
        amount=draw(st.integers(1, cat.MAX_GRANT_AMOUNT)),
        priority=draw(st.integers(-cat.MAX_PRIORITY, cat.MAX_PRIORITY)),
        expires_in_days=draw(st.none() | st.integers(1, cat.MAX_EXPIRES_IN_DAYS)),
        kind=draw(st.sampled_from(cat.GRANT_KINDS)),
    )


@st.composite
def catalogs(draw: st.DrawFn) -> cat.Catalog:
    names = draw(st.lists(_names, min_size=1, max_size=3, unique=True))
    units = [cat.Unit(name=n, decimals=draw(st.integers(0, 4))) for n in names]
    units.append(cat.Unit(name="usd", decimals=2))
    price_ids = iter(draw(st.lists(_price_ids, min_size=12, max_size=12, unique=True)))
    package_ids = draw(st.lists(_ids.filter(lambda i: i != "custom"), max_size=4, unique=True))
    packages = [
        cat.Package(
            id=pid,
            title=draw(_titles),
            currency=draw(st.sampled_from(["usd", "eur", "jpy"])),
            price=draw(st.integers(1, cat.MAX_PRICE)),
            stripe_price_id=next(price_ids) if draw(st.booleans()) else None,
            grants=tuple(draw(st.lists(_grants(names), min_size=1, max_size=3))),
            refund_policy=draw(st.sampled_from([None, "debt", "floor"])),
        )
        for pid in package_ids
    ]
    if draw(st.booleans()):
        low = draw(st.integers(1, 1000))
        packages.append(
            cat.Package(
                id="custom",
                title="Top-up",
                currency="usd",
                custom_amount=cat.CustomAmount(min=low, max=draw(st.integers(low, cat.MAX_PRICE))),
                grants=(cat.GrantSpec(unit=draw(st.sampled_from([*names, "usd"])), amount="paid"),),
            )
        )
    features = draw(st.lists(_names, max_size=3, unique=True))
    limits = draw(st.lists(_names, max_size=3, unique=True))
    plan_ids = draw(st.lists(_ids, max_size=3, unique=True))
    has_default = draw(st.booleans())
    plans = []
    for index, pid in enumerate(plan_ids):
        default = has_default and index == 0
        plans.append(
            cat.Plan(
                id=pid,
                title=draw(st.none() | _titles),
                default=default,
                stripe_price_ids=()
                if default
                else (next(price_ids), next(price_ids))[: draw(st.integers(1, 2))],
                features={f: draw(st.booleans()) for f in features},
                limits={n: draw(st.integers(0, cat.MAX_LIMIT)) for n in limits},
                allowance=()
                if default
                else tuple(
                    cat.GrantSpec(
                        unit=draw(st.sampled_from(names)),
                        amount=draw(st.integers(1, 10_000)),
                        kind="allowance",
                    )
                    for _ in range(draw(st.integers(0, 2)))
                ),
                grace_period_days=draw(st.integers(0, cat.MAX_GRACE_PERIOD_DAYS)),
                refund_policy=draw(st.sampled_from([None, "debt", "floor"])),
            )
        )
    return cat.Catalog(
        units=tuple(units),
        packages=tuple(packages),
        plans=tuple(plans),
        refund_policy=draw(st.sampled_from(["debt", "floor"])),
    )


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(catalog=catalogs())
def test_any_valid_catalog_round_trips_through_toml(catalog: cat.Catalog) -> None:
    if not catalog.packages and not catalog.plans:
        return
    text = catalog_toml.dumps_catalog(catalog)

    assert parse(text) == catalog
    assert json.loads(
        json.dumps(presenters.catalog(catalog).model_dump(mode="json"))
    ) == presenters.catalog(catalog).model_dump(mode="json")


_EXAMPLE_TEXT = catalog_toml.dumps_catalog(EXAMPLE)

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False),
    st.text(max_size=6),
    st.sampled_from(["paid", "usd", "credits", "debt", "price_pro_monthly"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(
        st.sampled_from(["unit", "amount", "min", "max", "x"]), st.integers(), max_size=2
    ),
)


def _leaves(node: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _leaves(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _leaves(value, (*prefix, index))
    return found


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_any_mutated_catalog_loads_or_fails_with_one_catalog_error_line(
    data: st.DataObject,
) -> None:
    document: Any = tomllib.loads(_EXAMPLE_TEXT)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_leaves(document)))
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent[path[-1]], dict):
            parent[path[-1]][data.draw(st.text(min_size=1, max_size=6))] = data.draw(_values)
        else:
            parent[path[-1]] = data.draw(_values)

    try:
        catalog_toml.catalog_from_mapping(document, source="catalog.toml")
    except errors.CatalogError as exc:
        message = exc.message
    else:
        return

    assert len(message.splitlines()) == 1
    assert message.startswith("catalog.toml: ")


def test_a_unit_may_name_a_low_balance_threshold_that_survives_a_round_trip() -> None:
    text = (
        "[units.credits]\nlow_balance = 100\n[units.tokens]\n"
        '[packages.p]\ntitle = "P"\nprice = 100\ncurrency = "usd"\n'
        'grants = [{ unit = "credits", amount = 1 }]\n'
    )
    catalog = catalog_toml.parse_catalog(text)
    assert catalog.low_balances() == {"credits": 100}
    assert catalog_toml.parse_catalog(catalog_toml.dumps_catalog(catalog)) == catalog
    with pytest.raises(errors.CatalogError, match=r"units.credits.low_balance: must be"):
        catalog_toml.parse_catalog(text.replace("low_balance = 100", "low_balance = -1"))
