"""``GET /v1/catalog``: what is for sale."""

from __future__ import annotations

from fastapi import APIRouter

from billfold.entrypoints.http import presenters
from billfold.entrypoints.http.deps import ServicesDep
from billfold.schemas import CatalogResponse

router = APIRouter(prefix="/v1", tags=["catalog"])


@router.get("/catalog", response_model=CatalogResponse)
def get_catalog(services: ServicesDep) -> CatalogResponse:
    """What is for sale: units, packages and plans. Public: a pricing page needs no login."""
    return presenters.catalog(services.catalog)
