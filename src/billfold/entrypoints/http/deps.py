"""FastAPI dependencies: the services, the caller, pagination parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Query, Request
from starlette.concurrency import run_in_threadpool

from billfold.bootstrap import Services
from billfold.entrypoints.http.auth import Authenticator, Principal

# The dependencies are coroutines: a plain function would be run in the thread pool, a hop
# between threads for each one on every request, for work that takes microseconds.


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_services(request: Request) -> Services:
    return services_of(request)


async def get_principal(request: Request) -> Principal:
    authenticator: Authenticator = request.app.state.authenticator
    if authenticator.may_fetch_keys:  # a JWKS fetch is network I/O: never on the loop
        return await run_in_threadpool(authenticator.authenticate, request)
    return authenticator.authenticate(request)


ServicesDep = Annotated[Services, Depends(get_services)]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size, 1 to 100.")]
StartingAfter = Annotated[
    str | None,
    Query(max_length=255, description="Cursor: the id of the last object of the previous page."),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retry safely: the same key and body answer the first answer again.",
    ),
]
