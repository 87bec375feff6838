"""The API's routes, one module per resource.

    catalog.py    GET /v1/catalog
    checkout.py   POST /v1/checkout/sessions, .../{id}/fulfill
    accounts.py   /v1/accounts/{id}: details, grants, transactions, manual grants
    subscriptions.py  entitlements, checks, subscriptions, plan changes, portal, sync
    spending.py   spends and holds
    events.py     the event inbox (admin)
    dashboard.py  the operator's dashboard figures (admin)
    orders.py     orders, and resolving those needing attention (admin)
    attention.py  the needs-attention queue, event replays, what operators did (admin)
    reconciliation.py  reconciliation runs with Stripe (admin)
    notifications.py  endpoints, the outbox and redelivery (admin); the OpenAPI ``webhooks``
    health.py     /healthz

Every route calls the service layer's door (``Services``) and presents what it answers; none opens a
transaction or reads a store.
"""

from __future__ import annotations

from fastapi import FastAPI

from billfold.entrypoints.http.routes import (
    accounts,
    attention,
    catalog,
    checkout,
    dashboard,
    events,
    health,
    notifications,
    orders,
    reconciliation,
    spending,
    subscriptions,
)

# Requests are matched against the routers in this order, route by route: the hottest (spends,
# holds, captures) come first. (Matching the spend route after five routers' routes was a quarter
# of a spend's time on the event loop.) No two routes share a method and path, so the order
# decides only how soon a request finds its route.
ROUTERS = (
    spending.router,
    health.router,
    catalog.router,
    checkout.router,
    accounts.router,
    subscriptions.router,
    events.router,
    dashboard.router,
    orders.router,
    attention.router,
    reconciliation.router,
    notifications.router,
)


def install(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
    notifications.install_webhooks(app)
