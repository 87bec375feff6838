"""``billfold dev``: billfold, the Stripe simulator, the demo shop and the admin view on one port.

    /                        the demo shop (``http.demo``)
    /admin/                  the admin view (``http.admin_ui``)
    /stripe/...              the Stripe simulator: the API the SDK calls, the hosted checkout page
                             (``/stripe/pay/{id}``) and the control routes (``/stripe/_sim/...``)
    /v1, /webhooks/stripe, /healthz, /docs
                             billfold's API, with the worker running in-process

Everything lives in a SQLite file (``--db``) and two small JSON files beside it: the demo
credentials (``.<db name>.json``) and the simulator's state (``.<db name>.stripe.json``), so a
second run picks up where the first left off: the same keys, balances, sessions and events.

One process and one event loop serve billfold and the simulator it calls. That cannot deadlock:
billfold calls Stripe (the SDK, synchronous) only from worker threads -- the checkout and fulfil
routes through ``run_in_threadpool``, the inbox worker in its own thread -- and the SDK reaches the
simulator over a real socket, which the event loop, never blocked, answers. The pages reach the
API in-process (``httpx.ASGITransport``), as awaits on the same loop.

Time: the demo account's Stripe customer lives on a test clock, which the shop's developer tools
advance (a day, a week, a month). billfold's own clock runs as far ahead of the wall clock as that
test clock does (``FollowTestClocks``), so a month later billfold grants the new allowance, lets
the old one expire and ends a grace period, as it would a real month later.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import uvicorn
from rich.console import Console, Group
from rich.text import Text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route

from billfold.bootstrap import build, local_receiver, wall_clock
from billfold.domain import errors
from billfold.entrypoints.http.app import create_app
from billfold.entrypoints.http.demo import DemoConfig, DemoShop
from billfold.entrypoints.http.demo.simulator_controls import SimulatorAccess
from billfold.settings import Settings, load_settings
from billfold.simulator import ChaosSettings, SimulatorConfig, clocks, create_simulator_app
from billfold.simulator.service import Simulator

DEMO_ACCOUNT = "demo_user"
TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")
# What --chaos does to webhook delivery: half the events twice, shuffled, some late, some lost once.
CHAOS = ChaosSettings(
    duplicate_rate=0.5,
    delay_seconds=(0.0, 0.5),
    reorder=True,
    reorder_window_seconds=0.3,
    drop_first_attempt_rate=0.2,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DevSecrets:
    """The demo credentials, generated once and kept beside the database."""

    api_key: str
    admin_token: str
    jwt_secret: str
    webhook_secret: str
    stripe_secret_key: str

    @classmethod
    def generate(cls) -> DevSecrets:
        return cls(
            api_key=f"bf_dev_{secrets.token_urlsafe(24)}",
            admin_token=f"bf_admin_dev_{secrets.token_urlsafe(24)}",
            jwt_secret=secrets.token_urlsafe(48),
            webhook_secret=f"whsec_dev_{secrets.token_hex(24)}",
            stripe_secret_key=f"sk_test_dev_{secrets.token_hex(16)}",
        )


def secrets_path(db: Path) -> Path:
    return db.parent / f".{db.stem}.json"


def simulator_state_path(db: Path) -> Path:
    return db.parent / f".{db.stem}.stripe.json"


def load_or_create_secrets(path: Path) -> tuple[DevSecrets, bool]:
    """The credentials stored at ``path``, or new ones written there (mode 0600)."""
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return DevSecrets(**{k: str(data[k]) for k in DevSecrets.__dataclass_fields__}), False
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise errors.ConfigurationError(
                f"{path} is not a billfold dev credentials file ({type(exc).__name__}); "
                "delete it to generate new credentials."
            ) from None
    found = DevSecrets.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(asdict(found), handle, indent=2)
        handle.write("\n")
    return found, True


@dataclass(frozen=True, slots=True, kw_only=True)
class DevSetup:
    """Everything ``billfold dev`` runs with, and where each credential came from."""

    settings: Settings
    public_url: str
    db_path: Path
    secrets_path: Path
    state_path: Path
    api_key: str
    admin_token: str
    jwt_secret: str
    webhook_secret: str
    stripe_secret_key: str
    from_environment: tuple[str, ...]
    notes: tuple[str, ...]
    created: bool


def public_url(host: str, port: int) -> str:
    """The address a browser on this machine uses for the server."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def prepare(db: Path, *, host: str = "127.0.0.1", port: int = 8000) -> DevSetup:
    """The settings of a dev server: ``BILLFOLD_*`` keys and tokens where set, demo ones otherwise.

    The database is always ``db`` (a SQLite file) and Stripe is always the simulator on this
    server: ``BILLFOLD_DATABASE_URL`` and ``BILLFOLD_STRIPE_API_BASE`` are ignored, and so is a
    live Stripe key, so a shell set up for production cannot point ``billfold dev`` at it.
    """
    db = db.expanduser().resolve()
    path = secrets_path(db)
    stored, created = load_or_create_secrets(path)
    url = public_url(host, port)
    notes: list[str] = []
    used: list[str] = []
    for name, why in (
        ("BILLFOLD_DATABASE_URL", f"billfold dev uses {db.name}"),
        ("BILLFOLD_STRIPE_API_BASE", "billfold dev talks to its own Stripe simulator"),
    ):
        if _env(name):
            notes.append(f"{name} is ignored: {why}.")
    overrides: dict[str, Any] = {
        "database_url": f"sqlite:///{db}",
        "stripe_api_base": f"{url}/stripe",
    }
    stripe_key = _env("BILLFOLD_STRIPE_SECRET_KEY")
    if stripe_key and stripe_key.startswith(TEST_KEY_PREFIXES):
        used.append("BILLFOLD_STRIPE_SECRET_KEY")
    else:
        if stripe_key:
            notes.append(
                "BILLFOLD_STRIPE_SECRET_KEY is not a test key (sk_test_...): ignored, billfold "
                "dev only talks to its simulator."
            )
        stripe_key = stored.stripe_secret_key
    overrides["stripe_secret_key"] = stripe_key
    for env_name, field, value in (
        ("BILLFOLD_API_KEYS", "api_keys", stored.api_key),
        ("BILLFOLD_ADMIN_TOKEN", "admin_token", stored.admin_token),
        ("BILLFOLD_JWT_SECRET", "jwt_secret", stored.jwt_secret),
        ("BILLFOLD_STRIPE_WEBHOOK_SECRETS", "stripe_webhook_secrets", stored.webhook_secret),
    ):
        if _env(env_name):
            used.append(env_name)
        else:
            overrides[field] = value
    settings = load_settings(**overrides)
    api_keys = settings.api_key_values
    webhook = settings.webhook_secrets
    if not api_keys or not webhook:
        raise errors.ConfigurationError(
            "BILLFOLD_API_KEYS and BILLFOLD_STRIPE_WEBHOOK_SECRETS must not be empty lists."
        )
    if not webhook[0].startswith("whsec_"):
        raise errors.ConfigurationError(
            "BILLFOLD_STRIPE_WEBHOOK_SECRETS: the simulator signs with the first secret, which "
            "must start with whsec_."
        )
    assert settings.admin_token is not None
    assert settings.jwt_secret is not None
    return DevSetup(
        settings=settings,
        public_url=url,
        db_path=db,
        secrets_path=path,
        state_path=simulator_state_path(db),
        api_key=api_keys[0],
        admin_token=settings.admin_token.get_secret_value(),
        jwt_secret=settings.jwt_secret.get_secret_value(),
        webhook_secret=webhook[0],
        stripe_secret_key=stripe_key,
        from_environment=tuple(used),
        notes=tuple(notes),
        created=created,
    )


def simulator_config(
    setup: DevSetup, *, chaos: bool = False, settle_seconds: float = 2.0
) -> SimulatorConfig:
    return SimulatorConfig(
        public_base_url=f"{setup.public_url}/stripe",
        webhook_url=f"{setup.public_url}/webhooks/stripe",
        webhook_secret=setup.webhook_secret,
        api_keys=(setup.stripe_secret_key,),
        chaos=CHAOS if chaos else ChaosSettings(),
        async_settle_seconds=None if settle_seconds < 0 else settle_seconds,
        state_path=setup.state_path,
    )


def user_token(setup: DevSetup, account_id: str = DEMO_ACCOUNT, *, hours: int = 24) -> str:
    """A token for an end user, signed as the application would sign it (for curl)."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": account_id, "iat": now, "exp": now + hours * 3600}
    if setup.settings.jwt_audience:
        claims["aud"] = setup.settings.jwt_audience
    return jwt.encode(claims, setup.jwt_secret, algorithm="HS256")


def create_dev_app(
    setup: DevSetup, *, chaos: bool = False, settle_seconds: float = 2.0
) -> Starlette:
    """The one ASGI app of ``billfold dev``; its lifespan runs billfold's worker."""
    simulator_app = create_simulator_app(
        simulator_config(setup, chaos=chaos, settle_seconds=settle_seconds)
    )
    simulator = simulator_app.state.simulator
    # billfold's clock runs as far ahead as the simulator's test clocks: advance the demo's clock
    # a month, and what a month later looks like (expired allowances, an ended grace period) is
    # what billfold answers. Console sign-ins stay on the wall clock.
    # Notifications go to a receiver in the process: printed here, listed in the demo's panel
    # (and sent over HTTP to BILLFOLD_NOTIFY_URLS, if set).
    receiver = local_receiver(_print_notification)
    services = build(
        setup.settings,
        clock=FollowTestClocks(simulator),
        session_clock=wall_clock,
        notify_sender=receiver,
        notify_local=True,
    )
    links = (
        ("Admin view", "/admin/"),
        ("API docs", "/docs"),
        ("Webhook deliveries (simulator)", "/stripe/_sim/deliveries"),
    )
    # The API serves the operator console at /admin itself, as ``billfold serve`` does.
    api = create_app(
        services=services, run_worker=True, admin_links=(("Demo shop", "/"), *links[1:])
    )
    # The pages call the API in-process: no port to know, no socket, same checks as over HTTP.
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    shop = DemoShop(
        DemoConfig(
            api_base_url="http://billfold.internal",
            api_transport=transport,
            server_api_key=setup.api_key,
            jwt_secret=setup.jwt_secret,
            jwt_audience=setup.settings.jwt_audience,
            account_id=DEMO_ACCOUNT,
            links=links,
            # The test-clock tools reach the simulator in-process too, with its secret key.
            notifications=receiver.recent,
            simulator=SimulatorAccess(
                base_url="http://stripe.internal",
                secret_key=setup.stripe_secret_key,
                transport=httpx.ASGITransport(app=simulator_app),
            ),
        )
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            async with api.router.lifespan_context(api):
                # Deliveries left pending by the previous run go out now, not on the first request.
                simulator.ensure_background()
                yield
        finally:
            await shop.aclose()
            await simulator.aclose()
            services.close()

    def to(path: str) -> Route:
        async def redirect(request: Request) -> Response:
            return RedirectResponse(path, status_code=308)

        return Route(path.rstrip("/"), redirect)

    app = Starlette(
        routes=[
            *shop.routes(),
            to("/stripe/"),
            Mount("/stripe", app=simulator_app),
            Mount("/", app=api),
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.simulator = simulator
    return app


class FollowTestClocks:
    """billfold's clock under ``billfold dev``: the wall clock, moved on by as far as the
    simulator's furthest test clock runs ahead of the moment it was made (``clocks.lead``)."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

    def __call__(self) -> int:
        return wall_clock() + clocks.lead(self.simulator)


def _print_notification(message_id: str, payload: dict[str, Any]) -> None:
    data = payload.get("data", {})
    account = data.get("account_id") or "-"
    details = ", ".join(
        f"{k}={v}"
        for k, v in data.items()
        if k not in ("account_id", "stripe") and v is not None and not isinstance(v, dict | list)
    )
    Console(stderr=True).print(
        f"[bold magenta]notification[/] {payload.get('type')} for {account}: {details[:200]}",
        highlight=False,
    )


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is printed, so a busy port fails clearly."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise errors.ConfigurationError(
            f"Cannot listen on {host}:{port} ({exc.strerror}): is another billfold dev running? "
            "Pick another port with --port."
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def banner(setup: DevSetup, *, chaos: bool = False, settle_seconds: float = 2.0) -> Group:
    """What ``billfold dev`` prints: the URLs, the credentials, how to make a purchase.

    One line each, printed with soft wrapping, so that a token copied from a narrow terminal
    has no line break in it.
    """
    url = setup.public_url
    mode = "[bold red]chaos on[/]: webhooks duplicated, reordered, late" if chaos else "test mode"
    lines: list[Text | str] = [
        f"[bold magenta]billfold dev[/]  SQLite {setup.db_path.name} · Stripe simulator, {mode}",
        "",
    ]

    def row(label: str, value: str, style: str) -> None:
        lines.append(Text.assemble((f"  {label:<16}", "bold"), (value, style)))

    row("Shop", f"{url}/", "cyan")
    row("Admin", f"{url}/admin/", "cyan")
    row("API docs", f"{url}/docs  (schema: {url}/openapi.json)", "cyan")
    row("Simulator", f"{url}/stripe  (deliveries: {url}/stripe/_sim/deliveries)", "cyan")
    lines.append("")
    for label, env_name, value in (
        ("API key", "BILLFOLD_API_KEYS", setup.api_key),
        ("Admin token", "BILLFOLD_ADMIN_TOKEN", setup.admin_token),
        ("Webhook secret", "BILLFOLD_STRIPE_WEBHOOK_SECRETS", setup.webhook_secret),
    ):
        if env_name in setup.from_environment:
            row(label, f"from {env_name}", "dim")
        else:
            row(label, value, "green")
    row("User token", f"{user_token(setup)}  ({DEMO_ACCOUNT}, 24 h)", "green")
    origin = "generated now" if setup.created else "reused"
    row("", f"demo credentials {origin}, kept in {setup.secrets_path.name}", "dim")
    lines.append("")
    settle = (
        "when settled through /stripe/_sim" if settle_seconds < 0 else f"after {settle_seconds:g} s"
    )
    row(
        "Try it",
        f"open {url}/, press Buy on a pack and Pay on the checkout page (nothing is charged); "
        f"a delayed method settles {settle}. Subscribe to a plan, then move Stripe's test clock "
        "with the shop's developer tools (renewals, a failed payment, grace).",
        "",
    )
    for note in setup.notes:
        row("Note", note, "yellow")
    row("", "Ctrl+C stops; run it again to pick up where you left off.", "dim")
    return Group(*lines)


def serve(app: Starlette, sock: socket.socket) -> None:
    """Serve until Ctrl+C or SIGTERM, then stop cleanly: the worker, the simulator, the database."""
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)

    def _terminate(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # uvicorn handles the signal, shuts down gracefully, then raises it again for us: end quietly.
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
