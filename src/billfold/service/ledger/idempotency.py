"""The idempotency envelope around every ledger write: claim the key, or replay the first result.

The insert of the key is the gate (``INSERT ... ON CONFLICT DO NOTHING`` on a UNIQUE column): the
request that inserts it writes its transaction; every other request with that key reads the stored
result and compares the hash of its command with the first one's.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, fields, is_dataclass, replace
from typing import Any, TypeVar

from billfold.domain import errors
from billfold.domain import ledger as rules
from billfold.domain.ledger import Line
from billfold.service.ledger.commands import LedgerCommand, LedgerResult
from billfold.service.ports import LedgerStore

R = TypeVar("R", bound=LedgerResult)


_FLAT: dict[type, tuple[str, ...]] = {}


def _fields(value: Any) -> dict[str, Any]:
    """``asdict`` for a dataclass whose fields are plain values (the same dict, without the deep
    copy); the general ``asdict`` otherwise."""
    kind = type(value)
    names = _FLAT.get(kind)
    if names is None:
        names = tuple(f.name for f in fields(value))
        flat = all(isinstance(getattr(value, n), str | int | bool | type(None)) for n in names)
        if not flat:
            return asdict(value)
        _FLAT[kind] = names
    data = {n: getattr(value, n) for n in names}
    if not all(isinstance(v, str | int | bool | type(None)) for v in data.values()):
        return asdict(value)
    return data


# ``json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)``, its encoder made once
# (``dumps`` with options makes one per call). The hashes stored with every key depend on it.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def request_hash(command: LedgerCommand) -> str:
    """The command without its key, hashed: what "the same request" means."""
    data = _fields(command)
    data.pop("key", None)
    data["__command__"] = type(command).__name__
    return hashlib.sha256(_CANONICAL.encode(data).encode()).hexdigest()


def claim(
    store: LedgerStore,
    *,
    kind: str,
    key: str,
    txn_id: str,
    digest: str,
    now: int,
    account_id: str | None,
    unit: str | None,
    amount: int | None,
    reason: str | None,
) -> bool:
    """Claim ``key`` for a new transaction ``txn_id``; False when the key was used before."""
    return store.claim_key(
        txn_id=txn_id,
        key=key,
        request_hash=digest,
        kind=kind,
        account_id=account_id,
        unit=unit,
        amount=amount,
        reason=reason,
        created=now,
    )


def replay(store: LedgerStore, key: str, digest: str, result_type: type[R]) -> R:
    """The first result for ``key`` (``replayed=True``), or IdempotencyConflict."""
    stored = store.transaction_by_key(key)
    if stored is None or stored.result is None:  # pragma: no cover - commits with its result
        raise errors.IdempotencyKeyInUse(
            "A request with this idempotency key is still in progress; retry shortly."
        )
    if stored.request_hash != digest:
        # The caller's key is not repeated: the ledger holds only its scoped digest, which
        # would mean nothing to the caller.
        raise errors.IdempotencyConflict(
            "This Idempotency-Key was already used with a different request (another body, "
            "account or route): use a new key for a new request."
        )
    data = dict(stored.result)
    data.pop("replayed", None)
    for name in ("draws", "takes", "allocations"):  # JSON stored the tuples as lists
        if name in data:
            data[name] = [tuple(d) for d in data[name]]
    return replace(result_type(**data), replayed=True)


def finish(
    store: LedgerStore, txn_id: str, kind: str, lines: Sequence[Line], result: LedgerResult
) -> None:
    """Write the transaction's lines (balanced, or refused) and its result."""
    # A clawback that finds nothing to take records its result and moves nothing.
    checked = rules.JournalEntry(kind=kind, lines=tuple(lines)).lines if lines else ()
    store.finish_transaction(txn_id, checked, recorded(result))


def recorded(result: LedgerResult) -> dict[str, Any]:
    """What is stored of a result: everything but ``replayed``."""
    data = {name: _plain(getattr(result, name)) for name in _names(type(result))}
    data.pop("replayed", None)
    return data


def _names(kind: type) -> tuple[str, ...]:
    names = _NAMES.get(kind)
    if names is None:
        names = _NAMES[kind] = tuple(f.name for f in fields(kind))
    return names


_NAMES: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """``asdict``'s conversion of one field, without its deep copies (results hold plain values,
    lists and tuples of them, and at times a dataclass)."""
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return copy.deepcopy(value)
