"""What an operator did from the console or the admin API: who, what, to which thing, and why.

Every state-changing operator action (a retry, a replay, a resolution, a manual grant or
adjustment, a redelivery) is recorded with the operator's name and a reason, and what came of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

ActionName: TypeAlias = Literal["retry", "replay", "resolve", "grant", "adjust", "redeliver"]
TargetType: TypeAlias = Literal["event", "order", "account", "notification"]
ACTION_NAMES: Final[tuple[ActionName, ...]] = (
    "retry",
    "replay",
    "resolve",
    "grant",
    "adjust",
    "redeliver",
)
TARGET_TYPES: Final[tuple[TargetType, ...]] = ("event", "order", "account", "notification")
MAX_ACTOR: Final = 200
MAX_REASON: Final = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorAction:
    id: str  # oa_…, time-ordered
    created: int
    actor: str
    action: ActionName
    target_type: TargetType
    target_id: str
    reason: str
    outcome: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRecord:
    """A console session as stored: when it ends, whether it was revoked, who opened it."""

    expires_at: int
    revoked_at: int | None
    operator: str | None = None
