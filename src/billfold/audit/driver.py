"""``billfold audit``: drive purchases, renewals, refunds and disputes through the Stripe simulator
under chaos delivery, then prove that money in equals credits out.

    run(AuditOptions(...), progress) -> AuditResult

1. **Target**: billfold at ``url`` (with its simulator at ``<url>/stripe``, as ``billfold dev``
   serves it), or a ``billfold serve`` the audit starts on ``database_url`` (default: a new SQLite
   file) with a simulator of its own, whose delivery is as bad as Stripe's may be (duplicates,
   shuffled bursts, delays, first attempts dropped), and which ``kill`` ends with SIGKILL at random
   moments and starts again.
2. **Drive**: N purchases of the catalog's fixed-price packages (checkout through billfold's API,
   paid on the simulator, the success page called for some), refunds (full, partial, two
   partials) through the official SDK, disputes opened and later closed won or lost; subscriptions
   to the paid plans on Stripe test clocks, renewed by advancing the clocks, and some of their
   invoices refunded or disputed too.
3. **Settle**: every delivery made, the inbox drained, a reconciliation against Stripe's events,
   ``verify`` over the whole database.
4. **Audit**: each payment against its order, per package and per plan (:mod:`.report`).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from billfold.adapters.catalog_toml import load_catalog
from billfold.adapters.db import audit_figures
from billfold.adapters.db.engine import redact
from billfold.adapters.stripe.testmode import TestModeStripe
from billfold.audit import servers
from billfold.audit.report import Booked, Comparison, Payment, compare
from billfold.bootstrap import Services, build, schema_only
from billfold.domain import catalog as cat
from billfold.domain import errors
from billfold.settings import load_settings
from billfold.simulator import ChaosSettings, RetryPolicy, SimulatorConfig, create_simulator_app

DAY = 86_400
Progress = Callable[[str, int, int], None]


_T = TypeVar("_T")


class AuditError(errors.BillfoldError):
    """The audit could not drive billfold or Stripe."""


class _Unanswered(AuditError):
    """A request went out and its answer never came (the connection broke): it may or may not
    have been made."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditOptions:
    purchases: int = 200
    refund_share: float = 0.2
    dispute_share: float = 0.1
    renewals: int = 6
    subscriptions: int | None = None
    """Subscriptions the renewals are spread over (default: one per three renewals, up to 20)."""
    chaos: bool = True
    kill: bool = False
    concurrency: int = 8
    seed: int | None = None
    fulfil_share: float = 0.3
    """Purchases whose success page is called too, racing the webhook."""
    # where billfold is
    database_url: str | None = None
    url: str | None = None
    api_key: str | None = None
    admin_token: str | None = None
    stripe_key: str | None = None
    stripe_api_base: str | None = None
    catalog: Path | None = None
    server_processes: int = 1
    # how long things take
    chaos_delay_seconds: float = 0.2
    kill_every_seconds: tuple[float, float] = (1.0, 4.0)
    settle_timeout_seconds: float = 600.0
    workdir: Path | None = None

    def __post_init__(self) -> None:
        if self.purchases < 0 or self.renewals < 0:
            raise errors.ConfigurationError("--purchases and --renewals must not be negative")
        for name in ("refund_share", "dispute_share", "fulfil_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise errors.ConfigurationError(f"--{name.replace('_', '-')} must be in [0, 1]")
        if self.concurrency < 1:
            raise errors.ConfigurationError("--concurrency must be at least 1")
        if self.url is not None:
            if self.kill:
                raise errors.ConfigurationError(
                    "--kill needs a billfold the audit starts itself: leave out --url"
                )
            missing = [
                flag
                for flag, value in (
                    ("--api-key", self.api_key),
                    ("--admin-token", self.admin_token),
                    ("--stripe-key", self.stripe_key),
                    ("--database-url", self.database_url),
                )
                if not value
            ]
            if missing:
                raise errors.ConfigurationError(
                    f"auditing a running billfold (--url) needs {', '.join(missing)} (the "
                    "database to verify and read the books from, Stripe's test key for refunds)"
                )


@dataclass(slots=True, kw_only=True)
class AuditResult:
    run_id: str
    database: str
    options: AuditOptions
    comparison: Comparison
    verify: list[str]
    reconciliation: dict[str, int]
    events: dict[str, int]
    deliveries: dict[str, int]
    kills: int
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)
    workdir: str | None = None

    @property
    def clean(self) -> bool:
        return (
            not self.comparison.problems
            and not self.verify
            and all(self.events.get(s, 0) == 0 for s in ("received", "failed", "dead"))
            and not self.reconciliation.get("failed_run", 0)
            and not self.reconciliation.get("drift_open", 0)
        )

    def to_json(self) -> dict[str, Any]:
        o = self.options
        totals: dict[str, dict[str, int]] = {}
        for group in self.comparison.groups:
            for unit, line in group.units.items():
                t = totals.setdefault(
                    unit, {"granted": 0, "clawed_back": 0, "difference": 0, "held": 0}
                )
                t["granted"] += line.granted_actual
                t["clawed_back"] += line.clawed_actual
                t["held"] += line.held_actual
                t["difference"] += abs(line.differences[0]) + abs(line.differences[1])
        return {
            "clean": self.clean,
            "run_id": self.run_id,
            "database": self.database,
            "options": {
                "purchases": o.purchases,
                "refund_share": o.refund_share,
                "dispute_share": o.dispute_share,
                "renewals": o.renewals,
                "chaos": o.chaos,
                "kill": o.kill,
                "concurrency": o.concurrency,
                "seed": o.seed,
            },
            "payments": sum(g.payments for g in self.comparison.groups),
            "groups": [g.to_json() for g in self.comparison.groups],
            "totals": totals,
            "drift": self.comparison.drift,
            "problems": [p.to_json() for p in self.comparison.problems[:200]],
            "verify": self.verify,
            "reconciliation": self.reconciliation,
            "events": self.events,
            "deliveries": self.deliveries,
            "kills": self.kills,
            "seconds": round(self.seconds, 1),
            "phases": {k: round(v, 1) for k, v in self.phases.items()},
            "workdir": self.workdir,
        }


def full_chaos(seed: int | None, delay: float) -> ChaosSettings:
    """Stripe at its worst: half the events twice, every burst shuffled and stamped with one
    second, random delays, a fifth of the first attempts lost."""
    return ChaosSettings(
        duplicate_rate=0.5,
        delay_seconds=(0.0, delay),
        reorder=True,
        reorder_window_seconds=min(0.05, delay),
        drop_first_attempt_rate=0.2,
        same_second=True,
        seed=seed,
    )


# --- the plan: everything random is drawn up front, from the seed ----------------------------------


@dataclass(slots=True, kw_only=True)
class _Purchase:
    index: int
    payment: Payment
    package: cat.Package
    fulfil: bool


@dataclass(slots=True, kw_only=True)
class _Subscription:
    index: int
    account_id: str
    plan: cat.Plan
    renewals: int
    rng: random.Random
    fulfil: bool
    payments: list[Payment] = field(default_factory=list)


def _grants(specs: Sequence[cat.GrantSpec], paid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for spec in specs:
        amount = paid if spec.amount == cat.PAID else int(spec.amount)
        out[spec.unit] = out.get(spec.unit, 0) + amount
    return out


def _reversals(
    rng: random.Random, payment: Payment, refund_share: float, dispute_share: float
) -> None:
    price = payment.paid
    if price <= 0:
        return
    if rng.random() < refund_share:
        shape = rng.random()
        if shape < 0.4 or price < 2:
            payment.refunds = [price]
        elif shape < 0.7 and price >= 3:
            first = rng.randint(1, price - 2)
            payment.refunds = [first, rng.randint(1, price - 1 - first)]
        else:
            payment.refunds = [rng.randint(1, price - 1)]
    if rng.random() < dispute_share and payment.refunded < price:
        payment.dispute = price - payment.refunded
        payment.dispute_outcome = rng.choice(("won", "lost"))


# --- talking to billfold and the simulator --------------------------------------------------------


class _Http:
    """httpx with the retries a client of a server that may be killed needs."""

    RETRY_STATUS = frozenset({429, 500, 502, 503, 504})

    def __init__(self, *, patience: float) -> None:
        # Idle connections are dropped well before the servers' keep-alive timeout (uvicorn: 5 s),
        # so a request seldom goes out on a connection the server is closing (a request that
        # must not be made twice, such as paying, then asks Stripe before it is sent again:
        # ``_Driver._once``).
        self.client = httpx.Client(
            timeout=30.0,
            limits=httpx.Limits(
                max_connections=200, max_keepalive_connections=64, keepalive_expiry=1.0
            ),
        )
        self.patience = patience

    def close(self) -> None:
        self.client.close()

    def call(
        self, method: str, url: str, *, retry: bool = True, ok: Sequence[int] = (), **kw: Any
    ) -> httpx.Response:
        deadline = time.monotonic() + self.patience
        pause = 0.05
        while True:
            try:
                answer = self.client.request(method, url, **kw)
            except httpx.TransportError as exc:
                if not retry or time.monotonic() > deadline:
                    raise _Unanswered(f"{method} {url}: {type(exc).__name__}: {exc}") from None
            else:
                if answer.is_success or answer.status_code in ok:
                    return answer
                if not (retry and answer.status_code in self.RETRY_STATUS) or (
                    time.monotonic() > deadline
                ):
                    raise AuditError(
                        f"{method} {url} answered {answer.status_code}: {answer.text[:300]}"
                    )
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


@dataclass(slots=True, kw_only=True)
class _Target:
    billfold: str
    stripe_api_base: str
    api_key: str
    admin_token: str
    stripe_key: str
    database_url: str
    process: servers.BillfoldProcess | None = None
    workdir: Path | None = None


@contextlib.contextmanager
def _local_target(options: AuditOptions) -> Iterator[_Target]:
    """A simulator on a thread and ``billfold serve`` in a subprocess, on ``database_url``."""
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="billfold-audit-"))
    workdir.mkdir(parents=True, exist_ok=True)
    database_url = options.database_url or f"sqlite:///{workdir / 'billfold.db'}"
    api_key = f"bf_audit_{secrets.token_urlsafe(18)}"
    admin_token = f"bf_admin_audit_{secrets.token_urlsafe(18)}"
    webhook_secret = f"whsec_audit_{secrets.token_hex(16)}"
    stripe_key = f"sk_test_audit_{secrets.token_hex(12)}"
    billfold_port, sim_port = servers.free_port(), servers.free_port()
    chaos = (
        full_chaos(options.seed, options.chaos_delay_seconds) if options.chaos else ChaosSettings()
    )
    sim = servers.ServerThread(
        create_simulator_app(
            SimulatorConfig(
                public_base_url=f"http://127.0.0.1:{sim_port}",
                webhook_url=f"http://127.0.0.1:{billfold_port}/webhooks/stripe",
                webhook_secret=webhook_secret,
                api_keys=(stripe_key,),
                chaos=chaos,
                # Stripe retries for three days; the audit has minutes: a restart must fit.
                retry=RetryPolicy(base_seconds=0.1, max_seconds=2.0, max_attempts=15),
                delivery_concurrency=max(4, 2 * options.concurrency),
                async_settle_seconds=None,
                clock_advance_seconds=0.0,
            )
        ),
        sim_port,
    )
    migrate = schema_only(load_settings(database_url=database_url))
    try:
        migrate.upgrade()
    finally:
        migrate.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLFOLD_")}
    env.update(
        {
            "BILLFOLD_DATABASE_URL": database_url,
            "BILLFOLD_STRIPE_SECRET_KEY": stripe_key,
            "BILLFOLD_STRIPE_API_BASE": sim.url,
            "BILLFOLD_STRIPE_WEBHOOK_SECRETS": webhook_secret,
            "BILLFOLD_API_KEYS": api_key,
            "BILLFOLD_ADMIN_TOKEN": admin_token,
            "BILLFOLD_JWT_SECRET": secrets.token_urlsafe(32),
            "BILLFOLD_RATE_LIMIT_CHECKOUT_PER_MINUTE": "0",
            "BILLFOLD_WORKER_LEASE_SECONDS": "5",
            "BILLFOLD_WORKER_BACKOFF_BASE_SECONDS": "0.2",
            "BILLFOLD_WORKER_POLL_SECONDS": "0.1",
            "BILLFOLD_LOG_LEVEL": "warning",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if options.catalog is not None:
        env["BILLFOLD_CATALOG"] = str(options.catalog)
    process = servers.BillfoldProcess(
        env, billfold_port, workdir / "billfold.log", processes=options.server_processes
    )
    sim.start()
    try:
        process.start()
        try:
            yield _Target(
                billfold=process.url,
                stripe_api_base=sim.url,
                api_key=api_key,
                admin_token=admin_token,
                stripe_key=stripe_key,
                database_url=database_url,
                process=process,
                workdir=workdir,
            )
        finally:
            process.stop()
    finally:
        sim.stop()


@contextlib.contextmanager
def _remote_target(options: AuditOptions, http: _Http) -> Iterator[_Target]:
    """A running billfold (``billfold dev``'s layout: its simulator at ``<url>/stripe``); the
    simulator's chaos is set for the run and put back afterwards."""
    assert options.url
    assert options.api_key
    assert options.admin_token
    assert options.stripe_key
    assert options.database_url
    base = (options.stripe_api_base or f"{options.url.rstrip('/')}/stripe").rstrip("/")
    before = http.call("GET", f"{base}/_sim/chaos").json()
    if options.chaos:
        wanted = full_chaos(options.seed, options.chaos_delay_seconds).to_json()
        http.call("POST", f"{base}/_sim/chaos", json=wanted)
    try:
        yield _Target(
            billfold=options.url.rstrip("/"),
            stripe_api_base=base,
            api_key=options.api_key,
            admin_token=options.admin_token,
            stripe_key=options.stripe_key,
            database_url=options.database_url,
        )
    finally:
        if options.chaos:
            http.call("POST", f"{base}/_sim/chaos", json=before)


class _Driver:
    def __init__(
        self, target: _Target, http: _Http, stripe: TestModeStripe, prefix: str, progress: Progress
    ) -> None:
        self.t = target
        self.http = http
        self.stripe = stripe
        self.prefix = prefix
        self.progress = progress
        self.server = {"Authorization": f"Bearer {target.api_key}"}
        self.admin = {"Authorization": f"Bearer {target.admin_token}"}

    # billfold's API
    def checkout(self, account_id: str, key: str, *, package: str | None, plan: str | None) -> str:
        body: dict[str, Any] = {"account_id": account_id, "success_url": "https://audit.example/ok"}
        body["package" if package else "plan"] = package or plan
        answer = self.http.call(
            "POST",
            f"{self.t.billfold}/v1/checkout/sessions",
            json=body,
            headers={**self.server, "Idempotency-Key": key},
        )
        return str(answer.json()["id"])

    def fulfil(self, session_id: str) -> None:
        # The success page races the webhook; whatever it answers, the books must agree.
        self.http.call(
            "POST",
            f"{self.t.billfold}/v1/checkout/sessions/{session_id}/fulfill",
            headers=self.server,
            ok=(400, 404, 409),
        )

    # the card network (the simulator's control routes)
    SEND_ATTEMPTS = 5

    def _once(self, send: Callable[[], _T], made: Callable[[], tuple[bool, _T]]) -> _T:
        """``send()`` a request that must not be made twice (a payment, a dispute). When its
        answer is lost on the way (a connection reset), ``made()`` asks Stripe whether it was
        made (and with what result); only a request that was not is sent again."""
        for attempt in range(1, self.SEND_ATTEMPTS + 1):
            try:
                return send()
            except _Unanswered:
                if attempt == self.SEND_ATTEMPTS:
                    raise
            time.sleep(0.05 * 2**attempt)
            done, result = made()
            if done:
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    def pay(self, session_id: str, email: str) -> str | None:
        def send() -> str | None:
            answer = self.http.call(
                "POST",
                f"{self.t.stripe_api_base}/_sim/sessions/{session_id}/pay",
                json={"email": email},
                retry=False,
            )
            intent = answer.json()["session"].get("payment_intent")
            return intent if isinstance(intent, str) else None

        def made() -> tuple[bool, str | None]:
            status, intent = self.stripe.checkout_session(session_id)
            return status == "complete", intent

        return self._once(send, made)

    def open_dispute(self, payment: Payment) -> None:
        intent = payment.payment_intent
        assert intent is not None

        def send() -> str:
            answer = self.http.call(
                "POST",
                f"{self.t.stripe_api_base}/_sim/disputes",
                json={"payment_intent": intent, "amount": payment.dispute},
                retry=False,
            )
            return str(answer.json()["id"])

        def made() -> tuple[bool, str]:
            # The audit opens at most one dispute a payment.
            found = self.stripe.disputes(intent)
            return (True, found[0][0]) if found else (False, "")

        payment.dispute_id = self._once(send, made)

    def close_dispute(self, payment: Payment) -> None:
        dispute_id = payment.dispute_id
        assert dispute_id is not None

        def send() -> None:
            self.http.call(
                "POST",
                f"{self.t.stripe_api_base}/_sim/disputes/{dispute_id}/close",
                json={"status": payment.dispute_outcome},
                retry=False,
            )

        def made() -> tuple[bool, None]:
            return self.stripe.dispute_status(dispute_id) in ("won", "lost"), None

        self._once(send, made)

    def reverse(self, payment: Payment, key: str) -> None:
        if payment.payment_intent is None:
            raise AuditError(f"{payment.stripe_id} has no payment intent to refund or dispute")
        for n, amount in enumerate(payment.refunds):
            self.stripe.refund(payment.payment_intent, amount, key=f"{key}:refund:{n}")
        if payment.dispute:
            self.open_dispute(payment)

    # one purchase, one subscription
    def buy(self, purchase: _Purchase) -> None:
        p = purchase.payment
        key = f"{self.prefix}buy{purchase.index}"
        session_id = self.checkout(p.account_id, key, package=purchase.package.id, plan=None)
        p.stripe_id = session_id
        p.payment_intent = self.pay(session_id, f"{p.account_id}@audit.example")
        if purchase.fulfil:
            self.fulfil(session_id)
        self.reverse(p, key)

    def subscribe(self, sub: _Subscription, start: int, refund: float, dispute: float) -> None:
        key = f"{self.prefix}sub{sub.index}"
        clock = self.stripe.create_clock(start, f"billfold audit {key}")
        customer = self.stripe.create_customer(
            email=f"{sub.account_id}@audit.example", clock_id=clock, key=f"{key}:customer"
        )
        self.http.call(
            "PUT",
            f"{self.t.billfold}/v1/accounts/{sub.account_id}",
            json={"stripe_customer_id": customer},
            headers=self.server,
        )
        session_id = self.checkout(
            sub.account_id, f"{key}:checkout", package=None, plan=sub.plan.id
        )
        self.pay(session_id, f"{sub.account_id}@audit.example")
        if sub.fulfil:
            self.fulfil(session_id)
        for step in range(1, sub.renewals + 1):
            # 32 days a step: past one renewal each time (months are 28 to 31 days long).
            to = start + step * 32 * DAY
            self.stripe.advance_clock(clock, to)
            self._wait_clock(clock, to)
        subscription = self._subscription_of(session_id)
        for n, invoice in enumerate(self.stripe.paid_invoices(subscription)):
            payment = Payment(
                stripe_id=invoice.id,
                item_kind="plan",
                item=sub.plan.id,
                account_id=sub.account_id,
                paid=invoice.amount_paid,
                currency=invoice.currency,
                grants=_grants(sub.plan.allowance, invoice.amount_paid),
                payment_intent=invoice.payment_intent,
            )
            _reversals(sub.rng, payment, refund, dispute)
            self.reverse(payment, f"{key}:invoice{n}")
            sub.payments.append(payment)

    def _wait_clock(self, clock: str, to: int) -> None:
        deadline = time.monotonic() + 120
        while True:
            status, frozen = self.stripe.clock(clock)
            if status == "ready" and frozen == to:
                return
            if time.monotonic() > deadline:
                raise AuditError(f"test clock {clock} is still {status} after two minutes")
            time.sleep(0.02)

    def _subscription_of(self, session_id: str) -> str:
        answer = self.http.call(
            "GET",
            f"{self.t.stripe_api_base}/v1/checkout/sessions/{session_id}",
            headers={"Authorization": f"Bearer {self.t.stripe_key}"},
        )
        found = answer.json().get("subscription")
        if isinstance(found, dict):
            found = found.get("id")
        if not isinstance(found, str):
            raise AuditError(f"checkout session {session_id} made no subscription")
        return found

    # settling
    def inbox_waiting(self) -> int:
        """Events billfold has not finished with (received, or failed and due again)."""
        waiting = 0
        for status in ("received", "failed"):
            answer = self.http.call(
                "GET",
                f"{self.t.billfold}/v1/events",
                params={"status": status, "limit": 100},
                headers=self.admin,
            )
            waiting += len(answer.json()["data"])
        return waiting

    def flush(self, timeout: float) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while True:
            answer = self.http.call(
                "POST",
                f"{self.t.stripe_api_base}/_sim/flush",
                json={"timeout": 20},
                ok=(504,),
                timeout=60.0,
            )
            body = answer.json()
            if body.get("settled") or time.monotonic() > deadline:
                return {str(k): int(v) for k, v in body.get("counts", {}).items()}


def _reconcile(services: Services, since: int) -> dict[str, int]:
    """A reconciliation run over the audit's window (events taken in from Stripe's Events API,
    money checked against credits): its counts, and the drift it left open."""
    run = services.reconciliation.run(since=since, trigger="audit")
    found = sum(c.found for c in run.drift.values())
    healed = sum(c.healed for c in run.drift.values())
    return {
        "failed_run": int(run.status != "completed"),
        "events_imported": run.events_imported,
        "drift_found": found,
        "drift_healed": healed,
        "drift_open": run.open,
    }


def _pool(
    jobs: Sequence[Any],
    work: Callable[[Any], None],
    concurrency: int,
    progress: Progress,
    phase: str,
) -> None:
    progress(phase, 0, len(jobs))
    if not jobs:
        return
    done = 0
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="audit") as pool:
        futures = [pool.submit(work, job) for job in jobs]
        try:
            for future in as_completed(futures):
                future.result()
                done += 1
                progress(phase, done, len(jobs))
        except BaseException:
            for future in futures:
                future.cancel()
            raise


class _Killer:
    """SIGKILL the server at random moments and start it again, until stopped."""

    def __init__(
        self, process: servers.BillfoldProcess, rng: random.Random, every: tuple[float, float]
    ):
        self.process = process
        self.rng = rng
        self.every = every
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="audit-killer")

    def _run(self) -> None:
        try:
            while not self.stop_event.wait(self.rng.uniform(*self.every)):
                self.process.kill()
                self.process.start()
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join()
        if self.error is not None:
            raise AuditError(f"restarting billfold after a kill failed: {self.error}")


def run(options: AuditOptions, progress: Progress | None = None) -> AuditResult:
    """Drive, settle and audit; see the module's docstring."""
    report: Progress = progress or (lambda phase, done, total: None)
    started = time.monotonic()
    phases: dict[str, float] = {}
    rng = random.Random(options.seed)
    run_id = secrets.token_hex(4)
    prefix = f"audit-{run_id}-"
    catalog = load_catalog(options.catalog)
    packages = [p for p in catalog.packages if p.price is not None and p.custom_amount is None]
    plans = [p for p in catalog.plans if not p.default and p.price is not None]
    if options.purchases and not packages:
        raise errors.ConfigurationError("the catalog sells no fixed-price package to buy")
    if options.renewals and not plans:
        raise errors.ConfigurationError("the catalog has no paid plan with a price to renew")

    accounts = max(1, options.purchases // 3)
    purchases: list[_Purchase] = []
    for i in range(options.purchases):
        package = rng.choice(packages)
        price = int(package.price or 0)
        payment = Payment(
            stripe_id="",
            item_kind="package",
            item=package.id,
            account_id=f"{prefix}{rng.randrange(accounts):05d}",
            paid=price,
            currency=package.currency,
            grants=_grants(package.grants, price),
        )
        _reversals(rng, payment, options.refund_share, options.dispute_share)
        purchases.append(
            _Purchase(
                index=i,
                payment=payment,
                package=package,
                fulfil=rng.random() < options.fulfil_share,
            )
        )
    subscriptions: list[_Subscription] = []
    if options.renewals:
        count = options.subscriptions or max(1, min(20, math.ceil(options.renewals / 3)))
        count = min(count, options.renewals)
        for j in range(count):
            subscriptions.append(
                _Subscription(
                    index=j,
                    account_id=f"{prefix}s{j:03d}",
                    plan=plans[j % len(plans)],
                    renewals=options.renewals // count + (1 if j < options.renewals % count else 0),
                    rng=random.Random(rng.getrandbits(64)),
                    fulfil=rng.random() < 0.5,
                )
            )

    http = _Http(patience=120.0)
    with contextlib.ExitStack() as stack:
        stack.callback(http.close)
        target = stack.enter_context(
            _remote_target(options, http) if options.url else _local_target(options)
        )
        stripe = TestModeStripe(target.stripe_key, api_base=target.stripe_api_base)
        stack.callback(stripe.close)
        driver = _Driver(target, http, stripe, prefix, report)
        since = int(time.time()) - 60
        killer: _Killer | None = None
        if options.kill and target.process is not None:
            killer = _Killer(
                target.process, random.Random(rng.getrandbits(64)), options.kill_every_seconds
            )
            killer.start()
        try:
            mark = time.monotonic()
            _pool(purchases, driver.buy, options.concurrency, report, "purchases")
            phases["purchases"] = time.monotonic() - mark
            mark = time.monotonic()
            start = int(time.time())
            _pool(
                subscriptions,
                lambda s: driver.subscribe(s, start, options.refund_share, options.dispute_share),
                options.concurrency,
                report,
                "subscriptions",
            )
            phases["subscriptions"] = time.monotonic() - mark
            mark = time.monotonic()
            payments = [p.payment for p in purchases] + [
                p for s in subscriptions for p in s.payments
            ]
            disputed = [p for p in payments if p.dispute_id]
            _pool(disputed, driver.close_dispute, options.concurrency, report, "disputes closed")
            phases["disputes"] = time.monotonic() - mark
        finally:
            if killer is not None:
                killer.stop()
        mark = time.monotonic()
        report("delivering", 0, 1)
        deliveries = driver.flush(options.settle_timeout_seconds)
        report("draining", 0, 1)
        deadline = time.monotonic() + options.settle_timeout_seconds
        while driver.inbox_waiting() and time.monotonic() < deadline:
            time.sleep(0.2)
        phases["settle"] = time.monotonic() - mark

        mark = time.monotonic()
        report("reconciling", 0, 1)
        services = build(
            load_settings(
                database_url=target.database_url,
                stripe_secret_key=target.stripe_key,
                stripe_api_base=target.stripe_api_base,
                catalog=options.catalog,
            )
        )
        stack.callback(services.close)
        reconciliation = _reconcile(services, since)
        # An event the import could not process at once (contention with the server's own
        # worker) is retried by that worker like any other: wait for it too.
        deadline = time.monotonic() + options.settle_timeout_seconds
        while driver.inbox_waiting() and time.monotonic() < deadline:
            time.sleep(0.2)
        phases["reconcile"] = time.monotonic() - mark
        mark = time.monotonic()
        report("verifying", 0, 1)
        problems = services.maintenance.verify()
        books = audit_figures.read(services.infra.database.engine, prefix)
        comparison = compare(
            payments,
            [
                Booked(
                    order_id=o.id,
                    stripe_id=o.stripe_id,
                    account_id=o.account_id,
                    status=o.status,
                    amount=o.amount,
                    refunded_amount=o.refunded_amount,
                    disputed_amount=o.disputed_amount,
                    granted=o.granted,
                    clawed=o.clawed,
                    held=o.held,
                )
                for o in books.orders
            ],
            books.balances,
            books.stray_grants,
        )
        phases["audit"] = time.monotonic() - mark
        return AuditResult(
            run_id=run_id,
            database=redact(target.database_url),
            options=options,
            comparison=comparison,
            verify=problems,
            reconciliation=reconciliation,
            events=books.events,
            deliveries=deliveries,
            kills=target.process.kills if target.process else 0,
            seconds=time.monotonic() - started,
            phases=phases,
            workdir=str(target.workdir) if target.workdir else None,
        )
