"""Hot statements executed on the driver's own connection.

SQLAlchemy Core stays for the schema, migrations and the cold paths. On the hot paths (the write
combiner's batches) a statement is SQL text written once per dialect and run directly on the
DBAPI connection under the unit of work's ``Connection``, inside its transaction: no statement
compilation, no cache keys, no result proxies. On PostgreSQL psycopg prepares each statement on
the server (``prepare=True``), and statements that need no answer in between are sent together
in pipeline mode (one round trip for several); on SQLite, in process, the module's statement
cache does the preparing.

The ledger batches' two calls on PostgreSQL (``script``) go one level lower still: to libpq, through
psycopg's own binding of it (``psycopg.pq``), as one simple-query round trip whose values are
literals quoted by libpq (``PQescapeLiteral``). One call of a function needs no prepared plan (the
function's statements have theirs, kept by the server for the session), and ``BEGIN`` or ``COMMIT``
rides in the same round trip. psycopg reads the transaction's state from libpq, so it and
SQLAlchemy carry on as if they had sent it (a commit after ``COMMIT`` finds nothing to do).

Driver errors are handed back as SQLAlchemy's (``DBAPIError.instance``), so the unit of work
translates them to billfold's exactly as it does for Core statements.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import pq

PG_IDS = "ANY(ARRAY(SELECT json_array_elements_text(%s::json)))"
"""A list of ids as one JSON document, for ``col = {PG_IDS}``: one statement text whatever the
list's length, and the index used as for an array parameter."""


def marks(n: int) -> str:
    """``n`` of SQLite's placeholders, for ``IN (...)``."""
    return ", ".join("?" * n)


class Sent:
    """A statement sent; its rows (or the count of rows it changed) when asked for."""

    __slots__ = ("_cursor", "_raw", "_sql")

    def __init__(self, raw: Raw, cursor: Any, sql: str) -> None:
        self._raw = raw
        self._cursor = cursor
        self._sql = sql

    def rows(self) -> list[tuple[Any, ...]]:
        with self._raw.translated(self._sql):
            try:
                return list(self._cursor.fetchall())
            finally:
                self._cursor.close()

    def count(self) -> int:
        """Rows changed (on PostgreSQL in a pipeline: once the pipeline has ended)."""
        try:
            return int(self._cursor.rowcount)
        finally:
            self._cursor.close()


class Raw:
    """The driver connection under ``conn``, with its transaction begun."""

    __slots__ = ("_conn", "_dbapi", "_error", "pg")

    _DONE = frozenset({pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK})

    def __init__(self, conn: sa.Connection) -> None:
        if not conn.in_transaction():
            conn.begin()  # SQLite's BEGIN IMMEDIATE, PostgreSQL's transaction: as for Core
        self._conn = conn
        dbapi = conn.connection.driver_connection
        assert dbapi is not None
        self._dbapi: Any = dbapi
        self._error: type[Exception] = conn.dialect.loaded_dbapi.Error
        self.pg = conn.dialect.name == "postgresql"

    @contextmanager
    def translated(self, sql: str, params: Any = None) -> Iterator[None]:
        try:
            yield
        except self._error as exc:
            raise sa.exc.DBAPIError.instance(sql, params, exc, self._error) from exc

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        """Statements sent inside go to PostgreSQL together; their answers arrive when the first
        is read, or at the end of the block. (SQLite runs each at once.)"""
        if not self.pg:
            yield
            return
        with self.translated("(pipeline)"), self._dbapi.pipeline():
            yield

    def literal(self, text: str) -> bytes:
        """PostgreSQL: ``text`` as an SQL string literal, quoted by libpq."""
        pgconn = self._dbapi.pgconn
        return bytes(pq.Escaping(pgconn).escape_literal(text.encode(self._dbapi.info.encoding)))

    def script(self, sql: bytes, *, begin: bool = False) -> pq.abc.PGresult:
        """PostgreSQL: ``sql`` (one or more statements, values already literals) in one round
        trip through libpq (``PQexec``; the GIL is released while the server works); the last
        statement's result. ``begin``: ``BEGIN`` first when no transaction is open yet."""
        pgconn = self._dbapi.pgconn
        if begin and pgconn.transaction_status == pq.TransactionStatus.IDLE:
            sql = b"BEGIN; " + sql
        # Named by its first call, not quoted whole: the literals are the batch's data.
        with self.translated(sql.split(b"(", 1)[0].decode(errors="replace") + "(...)"):
            result: pq.abc.PGresult = pgconn.exec_(sql)
            if result.status not in self._DONE:
                raise psycopg.errors.error_from_result(result, encoding=self._dbapi.info.encoding)
        return result

    def send(self, sql: str, params: Sequence[Any] = (), *, prepare: bool = True) -> Sent:
        cursor = self._dbapi.cursor()
        with self.translated(sql, params):
            try:
                if self.pg:
                    cursor.execute(sql, params, prepare=prepare)
                else:
                    cursor.execute(sql, params)
            except BaseException:
                cursor.close()
                raise
        return Sent(self, cursor, sql)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.send(sql, params).rows()

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Execute once per row (SQLite: in process, no round trips); rows changed."""
        if not rows:
            return 0
        cursor = self._dbapi.cursor()
        try:
            with self.translated(sql, rows):
                cursor.executemany(sql, rows)
            return int(cursor.rowcount)
        finally:
            cursor.close()
