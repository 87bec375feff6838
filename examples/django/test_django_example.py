"""The Django credit-pack site end to end: packs sold at Stripe prices (created here with the
stripe SDK, named in billfold's catalog), billfold serve beside the site with Stripe's webhook
pointed at it, the purchase audit, and ``manage.py balance``."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creditsite.settings")
os.environ["DJANGO_DB"] = ":memory:"  # the site's own tables: one connection, this thread
# In `make test` the browser tests run first in the same process, and Playwright's sync API keeps an
# event loop running in the main thread, which Django takes for an async context: this test is
# synchronous through and through.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import django

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from packs import billing as site_billing  # noqa: E402
from packs.models import Purchase  # noqa: E402

HERE = Path(__file__).parent
PACKS = {"price_500_credits": 499, "price_1500_credits": 1499, "price_3500_credits": 2999}


@pytest.fixture(scope="module")
def billing(
    billing_service: Callable[[Path], Any],
    stripe_stand_in: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Any]:
    # The prices exist at Stripe first; the catalog names them.
    sdk = stripe_stand_in.simulator.sdk()
    catalog = (HERE / "catalog.toml").read_text()
    for placeholder, cents in PACKS.items():
        price = sdk.v1.prices.create(
            params={"currency": "usd", "unit_amount": cents, "product_data": {"name": placeholder}}
        )
        catalog = catalog.replace(f'"{placeholder}"', f'"{price.id}"')
    path = tmp_path_factory.mktemp("catalog") / "catalog.toml"
    path.write_text(catalog)
    service = billing_service(path)
    with override_settings(BILLFOLD_URL=service.url, BILLFOLD_API_KEY=service.api_key):
        yield service


@pytest.fixture
def site() -> Iterator[None]:
    call_command("migrate", verbosity=0)
    yield
    Purchase.objects.all().delete()
    User.objects.all().delete()


def balance(page: str) -> int:
    found = re.search(r'id="balance">(\d+)<', page)
    assert found, page
    return int(found.group(1))


def test_buy_a_pack_by_price_id_audit_it_and_show_the_balance(billing: Any, site: None) -> None:
    ada = User.objects.create_user("ada", "ada@example.com", "lovelace")
    browser = Client()
    assert browser.get("/").status_code == 302  # sign in first
    assert browser.post("/login/", {"username": "ada", "password": "lovelace"}).status_code == 302
    shop = browser.get("/").content.decode()
    assert balance(shop) == 0
    price_ids = re.findall(r'name="price_id" value="([^"]+)"', shop)
    assert len(price_ids) == 3
    assert browser.post("/buy/", {"price_id": "price_unknown"}).status_code == 404

    bought = browser.post("/buy/", {"price_id": price_ids[1]})
    assert bought.status_code == 302
    session_id = bought["Location"].rsplit("/", 1)[-1]
    purchase = Purchase.objects.get(session_id=session_id)
    assert (purchase.user, purchase.package, purchase.credits) == (ada, "pack_1500", 1500)
    assert purchase.status == "pending"

    billing.simulator.pay(session_id)  # Stripe's webhook goes to billfold, not to this site
    paid = billing.simulator.sdk().v1.checkout.sessions.retrieve(session_id)
    assert (paid.payment_status, paid.amount_total) == ("paid", 1499)
    page = browser.get(f"/success/?session_id={session_id}").content.decode()
    assert balance(page) == 1500
    assert "1,500 credits added." in page
    assert balance(browser.get(f"/success/?session_id={session_id}").content.decode()) == 1500

    out = io.StringIO()
    call_command("balance", "ada", stdout=out)
    assert out.getvalue().strip() == "ada: 1,500 credits"
    with site_billing.client() as billfold:
        spent = billfold.spend(site_billing.account_id(ada), "credits", 200, reason="export")
    assert spent.balance == 1300
    out = io.StringIO()
    call_command("balance", "ada", stdout=out)
    assert out.getvalue().strip() == "ada: 1,300 credits"

    # The audit is for staff; it shows every purchase, pending ones checked with billfold.
    assert browser.get("/audit/").status_code == 302
    User.objects.create_user("ops", "ops@example.com", "secret", is_staff=True)
    staff = Client()
    staff.force_login(User.objects.get(username="ops"))
    second = browser.post("/buy/", {"price_id": price_ids[0]})["Location"].rsplit("/", 1)[-1]
    billing.simulator.pay(second)  # paid, but ada never came back to the success page
    out = io.StringIO()
    call_command("balance", "ada", stdout=out)
    assert out.getvalue().strip() == "ada: 1,800 credits"  # the webhook, at billfold, granted
    assert Purchase.objects.get(session_id=second).status == "pending"  # as the site knows it
    audit = staff.get("/audit/").content.decode()
    assert audit.count('class="purchase"') == 2
    assert audit.count("<td>fulfilled</td>") == 2
    assert Purchase.objects.get(session_id=second).status == "fulfilled"
    out = io.StringIO()
    call_command("balance", "ada", stdout=out)
    assert out.getvalue().strip() == "ada: 1,800 credits"  # the audit granted nothing more
