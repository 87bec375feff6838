"""The operator's dashboard (admin token): webhooks, purchases, credits, revenue, latency, backlog."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from billfold import schemas as s
from billfold.entrypoints.http import presenters
from billfold.entrypoints.http.access import AdminDep
from billfold.entrypoints.http.deps import ServicesDep
from billfold.entrypoints.http.openapi import errors_of
from billfold.service import dashboard as dash

router = APIRouter(prefix="/v1", tags=["admin"])


@router.get("/dashboard", response_model=s.DashboardResponse, responses=errors_of(401, 403))
def get_dashboard(
    services: ServicesDep,
    _admin: AdminDep,
    days: Annotated[
        int, Query(ge=1, le=dash.MAX_DAYS, description="The window in days, 1 to 90.")
    ] = 7,
) -> s.DashboardResponse:
    """Figures of the last ``days`` days, per UTC day (and per hour over the last 24 hours)."""
    return presenters.dashboard(services.dashboard.figures(days))
