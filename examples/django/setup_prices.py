"""Create the three packs' prices at Stripe (or at billfold's simulator) and write a catalog that
names them: ``python setup_prices.py <stripe api base> <secret key>``."""

from __future__ import annotations

import sys
from pathlib import Path

import stripe

HERE = Path(__file__).parent
PACKS = {"price_500_credits": 499, "price_1500_credits": 1499, "price_3500_credits": 2999}


def main(api_base: str, secret_key: str) -> None:
    client = stripe.StripeClient(secret_key, base_addresses={"api": api_base})
    catalog = (HERE / "catalog.toml").read_text()
    for placeholder, cents in PACKS.items():
        price = client.v1.prices.create(
            params={"currency": "usd", "unit_amount": cents, "product_data": {"name": placeholder}}
        )
        catalog = catalog.replace(f'"{placeholder}"', f'"{price.id}"')
    (HERE / "catalog.local.toml").write_text(catalog)
    print(f"wrote {HERE / 'catalog.local.toml'}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
