"""Everything the simulator remembers, as plain JSON-able data, optionally kept in one file.

Objects are kept per kind in creation order (lists answer newest ``created`` first, the later-made
first among equals).
What Stripe knows about an object but does not show on it (a subscription's planned pending
update, which invoice a payment intent pays, how many payments of a customer must fail) lives in
``internal``, keyed by the object's id. Work that waits for real time (a delayed payment, a test
clock's advance, a refund that fails later) is a ``Job``. The file is rewritten whole, atomically,
after each change: this is a development tool, and a restarted dev server should find its
sessions, subscriptions, clocks, events and unfinished deliveries again. A file written before a
field existed loads with that field empty.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from billfold.simulator.objects import Obj

FORMAT = 1


@dataclass(slots=True, kw_only=True)
class Attempt:
    """One try at delivering an event: the receiver's status code, or why there was none."""

    at: float
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(slots=True, kw_only=True)
class Delivery:
    """One copy of one event on its way to the webhook URL (a duplicate is a second copy)."""

    id: str
    event_id: str
    event_type: str
    copy: int
    status: str = "pending"  # pending -> succeeded | failed (retries exhausted)
    attempts: list[Attempt] = field(default_factory=list)
    next_attempt_at: float | None = None
    created: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Delivery:
        attempts = [Attempt(**a) for a in data.get("attempts", [])]
        return cls(**{**data, "attempts": attempts})


@dataclass(slots=True, kw_only=True)
class Settlement:
    """A delayed payment waiting for its outcome; ``due_at`` None waits for the control route."""

    session_id: str
    outcome: str  # "succeeded" | "failed"
    due_at: float | None


@dataclass(slots=True, kw_only=True)
class Job:
    """Work due at a real time (``due_at``, seconds since the epoch): ``kind`` names the handler,
    ``ref`` the object it works on (a test clock's id, a refund's id)."""

    kind: str
    ref: str
    due_at: float

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.ref}"


@dataclass(slots=True, kw_only=True)
class State:
    objects: dict[str, dict[str, Obj]] = field(default_factory=dict)
    events: dict[str, Obj] = field(default_factory=dict)
    line_items: dict[str, list[Obj]] = field(default_factory=dict)
    # What a session was created with that Stripe keeps but does not show on the session.
    session_extras: dict[str, Obj] = field(default_factory=dict)
    settlements: dict[str, Settlement] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    idempotency: dict[str, Obj] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    internal: dict[str, Obj] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)

    def collection(self, kind: str) -> dict[str, Obj]:
        return self.objects.setdefault(kind, {})

    def notes(self, object_id: str) -> Obj:
        """What the simulator keeps about ``object_id`` beyond what the object shows."""
        return self.internal.setdefault(object_id, {})

    def next_number(self, name: str) -> int:
        self.counters[name] = self.counters.get(name, 0) + 1
        return self.counters[name]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "objects": self.objects,
            "events": list(self.events.values()),
            "line_items": self.line_items,
            "session_extras": self.session_extras,
            "settlements": [dataclasses.asdict(s) for s in self.settlements.values()],
            "deliveries": [d.to_json() for d in self.deliveries],
            "idempotency": self.idempotency,
            "counters": self.counters,
            "internal": self.internal,
            "jobs": [dataclasses.asdict(j) for j in self.jobs.values()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown simulator state format {data.get('format')!r}")
        settlements = [Settlement(**s) for s in data["settlements"]]
        jobs = [Job(**j) for j in data.get("jobs", [])]
        return cls(
            objects=data["objects"],
            events={e["id"]: e for e in data["events"]},
            line_items=data["line_items"],
            session_extras=data["session_extras"],
            settlements={s.session_id: s for s in settlements},
            deliveries=[Delivery.from_json(d) for d in data["deliveries"]],
            idempotency=data["idempotency"],
            counters=data["counters"],
            internal=data.get("internal", {}),
            jobs={j.key: j for j in jobs},
        )

    def save(self, path: Path) -> None:
        """Write atomically: a crash mid-write leaves the previous file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.to_json(), handle, separators=(",", ":"))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path | None) -> State:
        if path is None or not path.exists():
            return cls()
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
