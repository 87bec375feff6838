"""The simulator's core: its objects, the events it emits, its time, lists and expansion, and the
work that waits for real time.

Operations on particular resources live beside it (``checkout``, ``subscriptions``, ``invoices``,
``clocks``, ``payment_methods``, ``refunds``, ``disputes``, ``catalog``, ``portal``); they change
objects through this class and call ``emit`` for each event Stripe would send. Everything runs
inside one event loop, so there is no locking.

Time: ``now()`` is the wall clock, except inside ``at(t)`` (a test clock's frozen time while it
advances, or while a request works on a customer attached to a clock: ``for_customer``), so that
objects and events of a test clock carry its time, as Stripe's do.

Bursts: a request, a control action, a timer or one step of a test clock is one ``burst``; with
the ``same_second`` chaos setting every event of a burst carries the burst's first ``created``.

Jobs: work due at a real time (``schedule(kind, ref, due_at)``), persisted in the state and run
by the handler registered for its kind when its timer fires, also after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from billfold.simulator import errors, objects, versions
from billfold.simulator.config import SimulatorConfig
from billfold.simulator.delivery import Deliverer
from billfold.simulator.forms import Params
from billfold.simulator.objects import Obj
from billfold.simulator.state import Job, State

CLOCK = "test_helpers.test_clock"


@dataclass(frozen=True, slots=True)
class Origin:
    """What caused a change: an API request (its id and idempotency key) or the dashboard (None)."""

    request_id: str | None = None
    idempotency_key: str | None = None

    def as_event_request(self) -> Obj:
        return {"id": self.request_id, "idempotency_key": self.idempotency_key}


DASHBOARD = Origin()


JobHandler = Callable[["Simulator", str], None]


class Simulator:
    def __init__(
        self,
        config: SimulatorConfig,
        *,
        handlers: Mapping[str, JobHandler],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self.state = State.load(config.state_path)
        self.deliverer = Deliverer(
            config=config, state=self.state, on_change=self.save, clock=clock
        )
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        # What runs a job of each kind when its timer fires ("settle": a delayed payment, ...).
        self._handlers = dict(handlers)
        self._frozen: list[int] = []
        self._burst: list[int | None] = []

    # -- time and persistence --------------------------------------------------------------

    def now(self) -> int:
        """The time it is for what is being done: a test clock's, or the wall clock's."""
        if self._frozen:
            return self._frozen[-1]
        return int(self.clock())

    @contextlib.contextmanager
    def at(self, moment: int) -> Iterator[None]:
        """Work as if it were ``moment`` (a test clock's frozen time)."""
        self._frozen.append(moment)
        try:
            yield
        finally:
            self._frozen.pop()

    def clock_of(self, customer_id: str | None) -> Obj | None:
        """The test clock ``customer_id`` is attached to, if any."""
        if customer_id is None:
            return None
        customer = self.state.collection("customer").get(customer_id)
        if customer is None or customer.get("test_clock") is None:
            return None
        return self.state.collection(CLOCK).get(customer["test_clock"])

    def for_customer(self, customer_id: str | None) -> contextlib.AbstractContextManager[None]:
        """Work at the time of ``customer_id``'s test clock, when it has one."""
        found = self.clock_of(customer_id)
        if found is None:
            return contextlib.nullcontext()
        return self.at(int(found["frozen_time"]))

    @contextlib.contextmanager
    def burst(self) -> Iterator[None]:
        """Events emitted inside share one ``created`` when the ``same_second`` chaos is on."""
        self._burst.append(None)
        try:
            yield
        finally:
            self._burst.pop()

    def _created(self) -> int:
        now = self.now()
        if not self._burst or not self.deliverer.chaos.same_second:
            return now
        if self._burst[-1] is None:
            self._burst[-1] = now
        first = self._burst[-1]
        assert first is not None
        return first

    def save(self) -> None:
        if self.config.state_path is not None:
            self.state.save(self.config.state_path)

    def reset(self) -> None:
        """Forget all objects, events and deliveries (even pending ones); chaos as configured."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers = {}
        self._frozen = []
        fresh = State()
        for name in State.__dataclass_fields__:
            setattr(self.state, name, getattr(fresh, name))
        self.deliverer.reindex()
        self.deliverer.set_chaos(self.config.chaos)
        self.save()

    # -- background work: delivery worker and job timers -------------------------------------

    def ensure_background(self) -> None:
        """Start (or restart, in a new loop) the delivery worker and the job timers."""
        self.deliverer.ensure_running()
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        self._loop = loop
        self._timers = {}
        for settlement in self.state.settlements.values():
            if settlement.due_at is not None:
                self._arm(Job(kind="settle", ref=settlement.session_id, due_at=settlement.due_at))
        for job in self.state.jobs.values():
            self._arm(job)

    def schedule(self, kind: str, ref: str, due_at: float) -> None:
        """Run the ``kind`` handler on ``ref`` at the real time ``due_at`` (kept across restarts)."""
        if kind not in self._handlers:
            raise ValueError(f"no handler for jobs of kind {kind!r}")
        job = Job(kind=kind, ref=ref, due_at=due_at)
        self.state.jobs[job.key] = job
        self._arm(job)

    def unschedule(self, kind: str, ref: str) -> None:
        key = Job(kind=kind, ref=ref, due_at=0).key
        self.state.jobs.pop(key, None)
        handle = self._timers.pop(key, None)
        if handle is not None:
            handle.cancel()

    def arm_timer(self, session_id: str, due_at: float) -> None:
        """A delayed payment's settlement timer (its due time is kept on the settlement)."""
        self._arm(Job(kind="settle", ref=session_id, due_at=due_at))

    def cancel_timer(self, session_id: str) -> None:
        handle = self._timers.pop(Job(kind="settle", ref=session_id, due_at=0).key, None)
        if handle is not None:
            handle.cancel()

    def _arm(self, job: Job) -> None:
        handle = self._timers.pop(job.key, None)
        if handle is not None:
            handle.cancel()
        if self._loop is None:
            return  # armed by ensure_background once a loop runs
        delay = max(0.0, job.due_at - self.clock())
        self._timers[job.key] = self._loop.call_later(delay, self._fire, job.kind, job.ref)

    def _fire(self, kind: str, ref: str) -> None:
        key = Job(kind=kind, ref=ref, due_at=0).key
        self._timers.pop(key, None)
        self.state.jobs.pop(key, None)
        with self.burst():
            self._handlers[kind](self, ref)
        self.save()

    def pending_jobs(self, kind: str) -> list[Job]:
        return [job for job in self.state.jobs.values() if job.kind == kind]

    async def aclose(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers = {}
        self._loop = None
        await self.deliverer.aclose()

    # -- objects ---------------------------------------------------------------------------

    def put(self, obj: Obj) -> Obj:
        self.state.collection(obj["object"])[obj["id"]] = obj
        return obj

    def get(self, kind: str, object_id: str, *, param: str | None = None) -> Obj:
        found = self.state.collection(kind).get(object_id)
        if found is None:
            raise errors.resource_missing(kind, object_id, param=param)
        return found

    def find(self, object_id: str) -> Obj | None:
        """Any stored object by its id alone, as expansion needs."""
        for prefix, kind in objects.KINDS_BY_PREFIX.items():
            if object_id.startswith(prefix):
                if kind == "event":
                    return self.state.events.get(object_id)
                return self.state.collection(kind).get(object_id)
        return None

    def peek(self, object_id: str) -> Obj:
        """What the simulator keeps about ``object_id`` beyond the object (read only)."""
        return self.state.internal.get(object_id, {})

    def newest_first(self, kind: str) -> list[Obj]:
        return by_created(self.state.collection(kind).values())

    # -- events ----------------------------------------------------------------------------

    def emit(
        self,
        event_type: str,
        obj: Obj,
        *,
        origin: Origin = DASHBOARD,
        previous: Obj | None = None,
    ) -> Obj:
        """Record an event carrying a copy of ``obj`` as it is now, rendered in the configured API
        version, and queue its delivery."""
        version = self.config.api_version
        data: Obj = {"object": versions.render(obj, version, self)}
        if previous is not None:
            data["previous_attributes"] = versions.render_previous(obj, previous, version, self)
        event = objects.build(
            "event",
            api_version=version,
            created=self._created(),
            data=data,
            id=objects.new_id("evt_1"),
            pending_webhooks=1 if self.deliverer.enabled else 0,
            request=origin.as_event_request(),
            type=event_type,
        )
        self.state.events[event["id"]] = event
        self.deliverer.enqueue(event)
        return event

    def rerender(self, event: Obj, obj: Obj) -> None:
        """Show ``obj`` as it is now in an event emitted earlier in the same burst (Stripe renders
        the events of a request once the request is done). Only before its delivery starts."""
        event["data"]["object"] = versions.render(obj, event["api_version"], self)

    def event_view(self, event: Obj) -> Obj:
        """The event as the API shows it: ``pending_webhooks`` counts deliveries on their way."""
        view = copy.deepcopy(event)
        view["pending_webhooks"] = self.deliverer.pending_count(event["id"])
        return view

    # -- lists and expansion ---------------------------------------------------------------

    def page(
        self,
        items: list[Obj],
        params: Params,
        url: str,
        *,
        keep: Callable[[Obj], bool] = lambda _: True,
        cursor_kind: str = "object",
    ) -> Obj:
        """A Stripe list page of ``items`` (newest first) that ``keep`` accepts.

        Cursors are positions in the whole collection, as Stripe's are, so an object that the
        filters leave out still works as ``starting_after``.
        """
        limit = params.integer("limit")
        if limit is None:
            limit = 10
        if not 1 <= limit <= 100:
            raise errors.invalid(
                "This value must be greater than or equal to 1 and less than or equal to 100.",
                param="limit",
            )
        after = params.text("starting_after")
        before = params.text("ending_before")
        if after and before:
            raise errors.invalid(
                "You may only specify one of these parameters: ending_before, starting_after.",
                param="ending_before",
            )
        ids = [item["id"] for item in items]
        if after or before:
            cursor = after or before
            assert cursor is not None
            if cursor not in ids:
                raise errors.resource_missing(
                    cursor_kind, cursor, param="starting_after" if after else "ending_before"
                )
            position = ids.index(cursor)
        if before:
            kept = [item for item in items[:position] if keep(item)]
            data, has_more = kept[-limit:], len(kept) > limit
        else:
            # Filter only as far as one item past the page: paging through a collection of N
            # then costs about N filter calls in all, not N per page.
            rest = items[position + 1 :] if after else items
            kept = list(itertools.islice(filter(keep, rest), limit + 1))
            data, has_more = kept[:limit], len(kept) > limit
        return objects.list_object([copy.deepcopy(item) for item in data], url, has_more=has_more)

    def expand(self, obj: Obj, paths: Iterable[str]) -> Obj:
        """Replace ids by the objects they name, along each dotted ``expand[]`` path."""
        result = copy.deepcopy(obj)
        for path in paths:
            self._expand(result, path.split("."), path)
        return result

    def _expand(self, node: Obj, parts: list[str], path: str) -> None:
        head, rest = parts[0], parts[1:]
        if head == "data" and node.get("object") == "list":
            for item in node["data"]:
                if rest:
                    self._expand(item, rest, path)
            return
        if head == "line_items" and node.get("object") == "checkout.session":
            items = self.state.line_items.get(node["id"], [])
            url = f"/v1/checkout/sessions/{node['id']}/line_items"
            node["line_items"] = objects.list_object(
                copy.deepcopy(items[:10]), url, has_more=len(items) > 10
            )
        elif head not in node:
            raise errors.invalid(f"This property cannot be expanded ({path}).", param="expand")
        value = node[head]
        if isinstance(value, str):
            target = self.find(value)
            if target is None:
                raise errors.invalid(f"This property cannot be expanded ({path}).", param="expand")
            node[head] = value = copy.deepcopy(target)
        if rest and isinstance(value, dict):
            self._expand(value, rest, path)


def by_created(stored: Iterable[Obj]) -> list[Obj]:
    """Newest first, as Stripe lists: by ``created``, the later-made first among equals. (A test
    clock's objects carry its time, so creation order alone is not time order.)"""
    newest_made_first = list(reversed(list(stored)))
    return sorted(newest_made_first, key=lambda obj: -int(obj.get("created") or 0))


def created_filter(params: Params) -> Callable[[Obj], bool]:
    """Stripe's ``created`` filter: an exact timestamp or ``created[gt|gte|lt|lte]``."""
    if "created" not in params:
        return lambda _: True
    if isinstance(params.raw("created"), str):
        exact = params.integer("created")
        return lambda obj: obj["created"] == exact
    nested = params.nested("created")
    assert nested is not None
    nested.reject_unknown(["gt", "gte", "lt", "lte"])
    bounds = {op: nested.integer(op) for op in ("gt", "gte", "lt", "lte")}

    def keep(obj: Obj) -> bool:
        created: int = obj["created"]
        checks = (
            bounds["gt"] is None or created > bounds["gt"],
            bounds["gte"] is None or created >= bounds["gte"],
            bounds["lt"] is None or created < bounds["lt"],
            bounds["lte"] is None or created <= bounds["lte"],
        )
        return all(checks)

    return keep
