"""Reconciliation with Stripe, for operators (admin token): start a run, list runs, read one."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from billfold.entrypoints.http import presenters
from billfold.entrypoints.http.access import AdminDep
from billfold.entrypoints.http.deps import Limit, ServicesDep, StartingAfter
from billfold.entrypoints.http.openapi import errors_of
from billfold.schemas import (
    ListResponse,
    ReconciliationRunCreated,
    ReconciliationRunRequest,
    ReconciliationRunResponse,
)

router = APIRouter(prefix="/v1", tags=["admin"])


@router.post(
    "/reconciliation/runs",
    status_code=202,
    response_model=ReconciliationRunCreated,
    responses=errors_of(400, 401, 403, 502),
)
async def start_run(
    services: ServicesDep, _admin: AdminDep, body: ReconciliationRunRequest | None = None
) -> ReconciliationRunCreated:
    """Start a reconciliation run; it goes on in the background (read it with GET). While
    another run is running, that run is answered: one runs at a time."""
    request = body or ReconciliationRunRequest()
    started = await run_in_threadpool(
        services.reconciliation.start_in_background,
        since=request.since,
        until=request.until,
        trigger="api",
    )
    return ReconciliationRunCreated(id=started.run.id, status=started.run.status)


@router.get(
    "/reconciliation/runs",
    response_model=ListResponse[ReconciliationRunResponse],
    responses=errors_of(400, 401, 403),
)
def list_runs(
    services: ServicesDep,
    _admin: AdminDep,
    limit: Limit = 10,
    starting_after: StartingAfter = None,
) -> ListResponse[ReconciliationRunResponse]:
    """Reconciliation runs, newest first."""
    page = services.reconciliation.list(limit=limit, starting_after=starting_after)
    return ListResponse(
        data=[presenters.reconciliation_run(r) for r in page.data], has_more=page.has_more
    )


@router.get(
    "/reconciliation/runs/{run_id}",
    response_model=ReconciliationRunResponse,
    responses=errors_of(401, 403, 404),
)
def get_run(run_id: str, services: ServicesDep, _admin: AdminDep) -> ReconciliationRunResponse:
    """One run: its window, the events it imported, drift per class and every item."""
    return presenters.reconciliation_run(services.reconciliation.get(run_id))
