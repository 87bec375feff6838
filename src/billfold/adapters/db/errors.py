"""Database errors into billfold's, at the boundary, keeping the name of the violated constraint.

PostgreSQL names the constraint in the error's diagnostics; SQLite names a CHECK constraint in its
message and a UNIQUE one only by its columns (``UNIQUE constraint failed: accounts.email``), which
are mapped back to the constraint's name through the schema. Either way the caller gets
``ConstraintViolation(constraint="uq_accounts_stripe_customer_id")``, never a driver message to
parse.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import sqlalchemy as sa

from billfold.adapters.db import tables as t
from billfold.domain import errors

_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (?P<columns>[\w., ]+)")
_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (?P<name>\w+)")
_SQLITE_TRIGGER = re.compile(r"^(?P<name>ledger_\w+): ")
INVARIANT_CONSTRAINTS = ("not_overdrawn", "ledger_lines_balanced")
"""Constraints that carry a ledger invariant: refusing a write by them is an InvariantViolation."""


def _unique_names() -> dict[tuple[str, frozenset[str]], str]:
    """(table, its columns) -> the UNIQUE (or primary key) constraint's name."""
    found: dict[tuple[str, frozenset[str]], str] = {}
    for table in t.metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, sa.UniqueConstraint | sa.PrimaryKeyConstraint):
                columns = frozenset(c.name for c in constraint.columns)
                found[(table.name, columns)] = str(constraint.name)
    return found


_UNIQUE = _unique_names()


def constraint_name(exc: sa.exc.DBAPIError) -> str:
    """The name of the violated constraint, or the driver's message when it names none."""
    diag = getattr(exc.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return str(name)
    message = str(exc.orig)
    unique = _SQLITE_UNIQUE.search(message)
    if unique:
        pairs = [part.strip().split(".", 1) for part in unique["columns"].split(",")]
        if all(len(pair) == 2 for pair in pairs) and len({table for table, _ in pairs}) == 1:
            table = pairs[0][0]
            key = (table, frozenset(column for _, column in pairs))
            if key in _UNIQUE:
                return _UNIQUE[key]
    check = _SQLITE_CHECK.search(message)
    if check:
        return check["name"]
    trigger = _SQLITE_TRIGGER.search(message)  # RAISE(ABORT, 'ledger_append_only: ...')
    if trigger:
        return trigger["name"]
    return message


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Foreign database errors become billfold errors, keeping the constraint name."""
    try:
        yield
    except sa.exc.IntegrityError as exc:
        name = constraint_name(exc)
        if "not_overdrawn" in name:
            raise errors.InvariantViolation(
                f"the database refused a write that would overdraw a balance ({name})."
            ) from exc
        if name in INVARIANT_CONSTRAINTS:
            said = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else name
            raise errors.InvariantViolation(f"the database refused it ({name}): {said}") from exc
        raise errors.ConstraintViolation(
            f"the database refused a write: {name}", constraint=name
        ) from exc
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        if getattr(exc.orig, "sqlstate", None) in ("40P01", "40001"):
            raise errors.Contention(
                "Concurrent transactions conflicted; the request can be made again."
            ) from exc
        if _is_overflow(exc):
            raise errors.ValidationError("amount is out of range for a 64-bit integer.") from exc
        raise errors.StorageUnavailable(
            "The database cannot be reached or refused the operation; try again later."
        ) from exc
    except sa.exc.DataError as exc:
        raise errors.ValidationError("a value is out of range for the database.") from exc
    except OverflowError as exc:
        raise errors.ValidationError("a number is out of range for a 64-bit integer.") from exc
    except sa.exc.TimeoutError as exc:
        raise errors.StorageUnavailable("No database connection became free in time.") from exc
    except sa.exc.NoResultFound as exc:
        raise errors.NotFound("The row to change is not there.") from exc


def _is_overflow(exc: sa.exc.DBAPIError) -> bool:
    return "out of range" in str(exc.orig).lower() or "too big" in str(exc.orig).lower()
