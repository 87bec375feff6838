"""Fixtures of the examples' tests: Stripe's stand-in and ``billfold serve`` (``example_support``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from example_support import (
    API_KEY,
    Simulator,
    billfold_env,
    billfold_serve,
    free_port,
    stripe_simulator,
)


@dataclass(frozen=True)
class Billing:
    """billfold serve and the simulator, wired together."""

    url: str
    simulator: Simulator
    api_key: str = API_KEY


@dataclass(frozen=True)
class Stand:
    """Stripe's stand-in, running, and the port billfold will take (its webhook goes there)."""

    simulator: Simulator
    port: int


@pytest.fixture(scope="module")
def webhook_path() -> str:
    """Where the application under test receives Stripe's webhook (billfold's route by default;
    a test module overrides it)."""
    return "/webhooks/stripe"


@pytest.fixture(scope="module")
def stripe_stand_in(webhook_path: str) -> Iterator[Stand]:
    port = free_port()
    with stripe_simulator(f"http://127.0.0.1:{port}{webhook_path}") as sim:
        yield Stand(sim, port)


@pytest.fixture(scope="module")
def billing_service(
    tmp_path_factory: pytest.TempPathFactory, stripe_stand_in: Stand
) -> Iterator[Callable[[Path], Billing]]:
    """``start(catalog)``: billfold serve (SQLite) with that catalog, beside the simulator; one
    per test module (its tests use their own accounts)."""
    tmp_path = tmp_path_factory.mktemp("billfold")
    with contextlib.ExitStack() as stack:

        def start(catalog: Path) -> Billing:
            sim = stripe_stand_in.simulator
            env = billfold_env(tmp_path / "billfold.db", catalog, sim.url)
            url = stack.enter_context(billfold_serve(stripe_stand_in.port, env))
            return Billing(url=url, simulator=sim)

        yield start
