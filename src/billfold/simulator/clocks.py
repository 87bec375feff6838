"""Test clocks (``/v1/test_helpers/test_clocks``): simulated time for the customers attached to them.

A customer created with ``test_clock`` lives at that clock's ``frozen_time``: its subscriptions,
invoices and their events carry that time (several events often share a second, as on Stripe).

``POST .../{id}/advance {frozen_time}`` must move the clock forward, by at most two intervals of
the shortest live subscription on it (Stripe's rule). It answers at once with the clock
``advancing`` (``test_helpers.test_clock.advancing``); ``SimulatorConfig.clock_advance_seconds``
later the simulator walks through everything the new time brings, in time order, each step at its
own moment: trial-will-end notices, trial ends, scheduled cancellations, renewals (the chain in
``subscriptions``), payment retries on the dunning schedule, incomplete subscriptions expiring,
pending updates expiring, ``pause_collection`` lifting. Then the clock is ``ready`` at the target
time (``test_helpers.test_clock.ready``). ``POST /_sim/flush`` waits for every advancing clock to be
ready before it waits for the deliveries, so a test advances, flushes, and reads what happened.

Deleting a clock deletes the customers attached to it, with their subscriptions, invoices,
invoice items and payment methods (charges, payment intents and events stay, as history).
"""

from __future__ import annotations

from billfold.simulator import errors, objects, subscriptions
from billfold.simulator.forms import Params
from billfold.simulator.objects import Obj
from billfold.simulator.service import CLOCK, Origin, Simulator

DAY = 24 * 60 * 60
MAX_STEPS = 100_000
JOB = "advance_clock"


def _customers(sim: Simulator, clock_id: str) -> set[str]:
    return {
        customer_id
        for customer_id, customer in sim.state.collection("customer").items()
        if customer.get("test_clock") == clock_id
    }


def create(sim: Simulator, params: Params, *, origin: Origin) -> Obj:
    params.reject_unknown(["expand", "frozen_time", "name"])
    frozen_time = params.integer("frozen_time", required=True)
    assert frozen_time is not None
    created = int(sim.clock())
    clock = objects.build(
        CLOCK,
        created=created,
        deletes_after=created + 30 * DAY,
        frozen_time=frozen_time,
        id=objects.new_id("clock_1"),
        name=params.text("name"),
        status="ready",
        status_details={},
    )
    sim.put(clock)
    with sim.at(frozen_time):
        sim.emit("test_helpers.test_clock.created", clock, origin=origin)
    return clock


def latest_allowed(sim: Simulator, clock: Obj) -> tuple[int, str] | None:
    """How far the clock may go in one advance, and why: two intervals of the shortest live
    subscription of its customers (None: no limit)."""
    customers = _customers(sim, clock["id"])
    best: tuple[int, str] | None = None
    for subscription in sim.state.collection("subscription").values():
        if subscription["customer"] not in customers or subscription["status"] in (
            subscriptions.ENDED
        ):
            continue
        interval, count = subscriptions.recurring(subscription["items"]["data"][0]["price"])
        limit = subscriptions.add_interval(int(clock["frozen_time"]), interval, 2 * count)
        label = f"{count} {interval}" + ("s" if count != 1 else "")
        if best is None or limit < best[0]:
            best = (limit, label)
    return best


def advance(sim: Simulator, clock_id: str, params: Params, *, origin: Origin) -> Obj:
    params.reject_unknown(["expand", "frozen_time"])
    clock = sim.get(CLOCK, clock_id)
    target = params.integer("frozen_time", required=True)
    assert target is not None
    if clock["status"] == "advancing":
        raise errors.invalid(
            "This test clock is already advancing; wait until its status is ready.",
            param="test_clock",
        )
    frozen = int(clock["frozen_time"])
    if target <= frozen:
        raise errors.invalid(
            f"The test clock can only move forward: frozen_time must be after its current "
            f"frozen_time ({frozen}).",
            param="frozen_time",
        )
    allowed = latest_allowed(sim, clock)
    if allowed is not None and target > allowed[0]:
        raise errors.invalid(
            "Cannot advance the test clock more than two intervals of the shortest subscription "
            f"on it ({allowed[1]}) at a time: frozen_time may be at most {allowed[0]}.",
            param="frozen_time",
        )
    clock.update(
        {"status": "advancing", "status_details": {"advancing": {"target_frozen_time": target}}}
    )
    with sim.at(frozen):
        sim.emit("test_helpers.test_clock.advancing", clock, origin=origin)
    sim.schedule(JOB, clock_id, sim.clock() + sim.config.clock_advance_seconds)
    return clock


def run_advance(sim: Simulator, clock_id: str) -> None:
    """The advance of ``clock_id`` is due: do everything its new time brings, in order."""
    clock = sim.state.collection(CLOCK).get(clock_id)
    if clock is None or clock["status"] != "advancing":
        return
    target = int(clock["status_details"]["advancing"]["target_frozen_time"])
    for _ in range(MAX_STEPS):
        work = _next_work(sim, clock_id, target)
        if work is None:
            break
        at, _, action = work
        clock["frozen_time"] = max(int(clock["frozen_time"]), at)
        with sim.at(int(clock["frozen_time"])), sim.burst():
            action()
    else:  # pragma: no cover - a simulator bug, reported the way Stripe reports its own
        clock.update({"status": "internal_failure", "status_details": {}})
        with sim.at(int(clock["frozen_time"])):
            sim.emit("test_helpers.test_clock.internal_failure", clock)
        return
    clock.update({"frozen_time": target, "status": "ready", "status_details": {}})
    with sim.at(target), sim.burst():
        sim.emit("test_helpers.test_clock.ready", clock)


def _next_work(sim: Simulator, clock_id: str, target: int) -> subscriptions.Work | None:
    customers = _customers(sim, clock_id)
    candidates: list[subscriptions.Work] = []
    for subscription in list(sim.state.collection("subscription").values()):
        if subscription["customer"] in customers:
            candidates.extend(subscriptions.due_work(sim, subscription))
    for invoice in list(sim.state.collection("invoice").values()):
        if invoice["customer"] in customers:
            candidates.extend(subscriptions.retry_work(sim, invoice))
    due = [work for work in candidates if work[0] <= target]
    if not due:
        return None
    return min(due, key=lambda work: (work[0], work[1]))


def lead(sim: Simulator) -> int:
    """How far ahead of the wall clock the furthest test clock runs: its ``frozen_time`` less the
    moment it was created (0 when no clock is ahead). ``billfold dev`` moves billfold's own clock
    on by this much, so that what a month later looks like is what billfold answers."""
    found = list(sim.state.collection(CLOCK).values())
    return max([0, *(int(c["frozen_time"]) - int(c["created"]) for c in found)])


def advancing(sim: Simulator) -> bool:
    return any(c["status"] == "advancing" for c in sim.state.collection(CLOCK).values())


def delete(sim: Simulator, clock_id: str, params: Params, *, origin: Origin) -> Obj:
    params.reject_unknown([])
    clock = sim.get(CLOCK, clock_id)
    customers = _customers(sim, clock_id)
    sim.unschedule(JOB, clock_id)
    for kind in ("subscription", "invoice", "invoiceitem", "payment_method"):
        collection = sim.state.collection(kind)
        for object_id in [k for k, v in collection.items() if v.get("customer") in customers]:
            del collection[object_id]
    for customer_id in customers:
        del sim.state.collection("customer")[customer_id]
    del sim.state.collection(CLOCK)[clock_id]
    deleted = {"deleted": True, "id": clock_id, "object": CLOCK}
    with sim.at(int(clock["frozen_time"])):
        sim.emit("test_helpers.test_clock.deleted", deleted, origin=origin)
    return deleted


def list_clocks(sim: Simulator, params: Params) -> Obj:
    params.reject_unknown(["ending_before", "expand", "limit", "starting_after"])
    return sim.page(
        sim.newest_first(CLOCK), params, "/v1/test_helpers/test_clocks", cursor_kind=CLOCK
    )
