"""Maintenance use cases: the schema's revision and upgrade, and the audit of every invariant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from billfold.service.ports import Auditor, Schema


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaState:
    before: str | None
    after: str | None
    head: str

    @property
    def current(self) -> bool:
        return self.after == self.head


class Maintenance:
    def __init__(
        self,
        *,
        schema: Schema,
        auditor: Auditor,
        where: str = "the database",
        closer: Callable[[], None] | None = None,
    ) -> None:
        self._schema = schema
        self._auditor = auditor
        self._closer = closer
        self.where = where
        """Which database, for messages: its URL without the password."""

    def schema(self) -> SchemaState:
        current = self._schema.current()
        return SchemaState(before=current, after=current, head=self._schema.head())

    def upgrade(self, revision: str = "head") -> SchemaState:
        before = self._schema.current()
        self._schema.upgrade(revision)
        return SchemaState(before=before, after=self._schema.current(), head=self._schema.head())

    def verify(self) -> list[str]:
        """Every violation of invariants 1, 2, 3 and 5, as readable lines; [] when sound."""
        return self._auditor.verify()

    def close(self) -> None:
        if self._closer is not None:
            self._closer()
