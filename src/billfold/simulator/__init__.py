"""A stateful stand-in for the part of Stripe that billfold uses, served over HTTP.

The official ``stripe`` SDK talks to it unchanged (point ``api_base`` at it); its hosted checkout
page pays, declines or pays late; the events it emits are signed and delivered to a webhook URL,
with Stripe's retries and, when asked, its duplicates, delays and reordering.

    app = create_simulator_app(SimulatorConfig(webhook_url=..., webhook_secret="whsec_..."))

What it supports
----------------
API (``/v1``, form-encoded as the SDK sends it, idempotent POSTs, Stripe-shaped errors):

- catalog: products (create, retrieve, list), prices (one-time and ``recurring`` day/week/month/
  year with ``interval_count``; create, retrieve, list), customers (``test_clock``,
  ``payment_method``, ``invoice_settings.default_payment_method``, ``balance``; create, retrieve,
  update, list), payment methods (Stripe's test tokens ``pm_card_visa``,
  ``pm_card_chargeCustomerFail``, ...; attach, detach, retrieve, update, list per customer);
- checkout sessions (payment and subscription mode, trials via ``subscription_data``; create,
  retrieve, expire, list by status/customer/subscription/created, line items) and the hosted
  page ``/pay/{id}``;
- subscriptions: create, retrieve, list (customer, status, price, test_clock, created, current
  period), update (items with ``proration_behavior`` and ``payment_behavior`` including
  ``pending_if_incomplete``, ``cancel_at_period_end``, ``cancel_at``, ``pause_collection``,
  ``trial_end``, ``default_payment_method``, metadata), cancel (``prorate``, ``invoice_now``),
  pause and resume;
- invoices: create (one-off), retrieve, update, list (customer, subscription, status, created),
  delete a draft, lines, finalize, pay (``payment_method``, ``paid_out_of_band``), void,
  mark_uncollectible; invoice items (create, retrieve, list, delete); invoice payments;
- payment intents and charges (retrieve, list), refunds (create, retrieve, update, list),
  disputes (retrieve, list), events (retrieve, list);
- test clocks (create, retrieve, list, delete, advance) and billing portal sessions (create), with
  the hosted portal page ``/portal/{id}``.

Events and objects are rendered in ``SimulatorConfig.api_version`` (basil or later by default,
``"2024-06-20"`` for the old shapes); an API response follows its request's ``Stripe-Version``.
Time moves with test clocks: advancing one runs the renewals, retries (``DunningPolicy``), trial
ends and scheduled cancellations of its customers, each at its own moment. Control routes under
``/_sim`` (see ``control``) pay or decline sessions, settle delayed payments, open and close
disputes, fail refunds, force payment failures, renew a subscription without a clock, set chaos
(duplicates, delays, reordering, dropped first attempts, same-second timestamps), list
deliveries, and ``flush`` (wait for advancing clocks and pending deliveries). State can live in a
JSON file (``state_path``) and survives a restart.

Not simulated: taxes, discounts and coupons, metered usage, subscription schedules, multiple
currencies per customer, ``send_invoice`` subscriptions, Connect, 3-D Secure. Customers without
a test clock live on the wall clock: their subscriptions renew only through the control route.
"""

from billfold.simulator.app import create_simulator_app
from billfold.simulator.config import ChaosSettings, DunningPolicy, RetryPolicy, SimulatorConfig

__all__ = [
    "ChaosSettings",
    "DunningPolicy",
    "RetryPolicy",
    "SimulatorConfig",
    "create_simulator_app",
]
