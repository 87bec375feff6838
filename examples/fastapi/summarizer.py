"""A FastAPI application with billfold inside it (library mode): no billing service to run.

``billfold.Billfold`` works on billfold's own tables in the database ``BILLFOLD_DATABASE_URL``
names; the routes below spend credits, start checkouts and show balances in-process, and
billfold's Stripe webhook is mounted at ``/billing/webhooks/stripe``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from pydantic import BaseModel, Field

from billfold import Billfold
from billfold.domain import errors
from billfold.settings import Settings

COST_PER_SUMMARY = 25  # credits


class SummaryRequest(BaseModel):
    text: str = Field(min_length=1, max_length=20_000)


class SummaryResponse(BaseModel):
    summary: str
    credits_left: int


def current_user(x_user_id: Annotated[str, Header()]) -> str:
    """Stands in for the application's own authentication (a session, a JWT, ...)."""
    return x_user_id


User = Annotated[str, Depends(current_user)]


def create_app(settings: Settings | None = None) -> FastAPI:
    wallet = Billfold(settings)  # settings from the BILLFOLD_* environment by default

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        wallet.close()

    app = FastAPI(title="Summarizer", lifespan=lifespan)
    # Point Stripe's webhook at https://<this app>/billing/webhooks/stripe.
    app.mount("/billing", wallet.webhook_app())

    @app.get("/me/credits")
    def credits(user: User) -> dict[str, int]:
        return {"credits": wallet.balances(user)["credits"]}

    @app.post("/packs/{package}/checkout")
    def checkout(package: str, user: User, request: Request) -> dict[str, str]:
        try:
            session = wallet.create_checkout_session(
                user, package, success_url=str(request.url_for("checkout_done"))
            )
        except errors.UnknownPackage:
            raise HTTPException(404, "No such pack.") from None
        return {"id": session.id, "url": session.url}

    @app.get("/checkout/done", name="checkout_done")
    def done(session_id: str, user: User) -> dict[str, object]:
        # The success page: grants now if Stripe says it is paid (the webhook may have already;
        # either way the credits arrive once).
        fulfilment = wallet.fulfill_checkout(session_id)
        if fulfilment.account_id != user:
            raise HTTPException(404, "No such checkout.")
        return {"status": fulfilment.status, "credits": fulfilment.balances.get("credits", 0)}

    @app.post("/summaries")
    def summarize(
        body: SummaryRequest,
        user: User,
        idempotency_key: Annotated[str | None, Header()] = None,
    ) -> SummaryResponse:
        try:
            spent = wallet.spend(
                user,
                "credits",
                COST_PER_SUMMARY,
                reason="summary",
                idempotency_key=idempotency_key,
            )
        except errors.InsufficientBalance as short:
            raise HTTPException(
                402,
                f"A summary costs {COST_PER_SUMMARY} credits; you have {short.available}.",
            ) from None
        first = body.text.split(".")[0].strip()
        return SummaryResponse(summary=first[:200], credits_left=spent.balance)

    return app
