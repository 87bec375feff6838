"""ledger batches: what a batch reads, in one call, and what it writes, in another (PostgreSQL)

A ledger batch went to the server as five statements in a pipeline for its reads and one of nine
data-modifying CTEs plus the commit for its writes: about 40 µs of the driver's Python per
statement, in the one process that decides every batch. Now each side is one call, sent with its
values as literals in one round trip (with ``BEGIN`` before the reads, ``COMMIT`` after the
writes). No rule of the ledger is in either function: the batch decides in Python as before;
they only lock and read, and write the rows they are given.

``billfold_batch_read(positions, hold_ids, keys, now)``, in order, as the statements it replaces:

1. the batch's planner settings, for the rest of its transaction (its writes too): generic plans,
   no hash or merge joins, no sequential scans. A batch reads and writes a few hundred rows at
   most, each by its key: nested loops over the indexes are always the plan, whatever the
   statistics of a young database say;
2. the balance rows, locked in (account, unit) order (``FOR UPDATE``; the order every batch
   takes, so two never deadlock);
3. under those locks (each statement of a volatile function takes a new snapshot, so they see
   whatever a transaction the locks waited for committed): the holds named and those lapsed on
   these balances, each with its allocations in order; the live grants of each balance, by the
   index; the transactions already holding one of the keys.

``billfold_batch_write(transactions, balances, grants, holds, lines, allocations, grant_updates,
balance_updates, closed_holds, expected)``: one JSON document of rows each (``[]`` when none),
written in that order, each statement after the last (so an update finds a row the same batch
inserted: a hold made and closed, a new grant held). The transactions go first, ``ON CONFLICT DO
NOTHING``: when fewer than ``expected`` went in, a key was taken meanwhile by another
transaction, and the call fails (``unique_violation`` on the key's constraint) before anything
else is written; the batch is then made one request at a time.

SQLite has no functions: its batches read and write in process, statement by statement.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 10:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

HOLD_COLUMNS = "id, account_id, unit, amount, captured, status, expires_at, reason, created"
# Each hold of ``h`` with its allocations in order, into ``v_holds`` (both arms below).
HOLDS_AS_JSON = """SELECT json_agg(json_build_array(
                h.id, h.account_id, h.unit, h.amount, h.captured, h.status, h.expires_at,
                h.reason, h.created,
                (SELECT json_agg(json_build_array(a.grant_id, a.amount) ORDER BY a.seq)
                 FROM hold_allocations AS a WHERE a.hold_id = h.id)))
            INTO v_holds"""

BATCH_READ = f"""
CREATE OR REPLACE FUNCTION billfold_batch_read(
    p_positions json, p_holds json, p_keys json, p_now bigint
) RETURNS json LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    v_balances json;
    v_holds json;
    v_grants json;
    v_keys json;
BEGIN
    PERFORM set_config('plan_cache_mode', 'force_generic_plan', true),
        set_config('enable_hashjoin', 'off', true),
        set_config('enable_mergejoin', 'off', true),
        set_config('enable_seqscan', 'off', true);

    SELECT json_agg(json_build_array(
            b.account_id, b.unit, b.available, b.held, b.debt, b.low_balance, b.low_alert))
        INTO v_balances
        FROM (SELECT account_id, unit, available, held, debt, low_balance, low_alert
              FROM balances
              WHERE (account_id, unit) IN (
                  SELECT a, u FROM json_to_recordset(p_positions) AS p(a varchar, u varchar))
              ORDER BY account_id, unit
              FOR UPDATE) AS b;

    IF json_array_length(p_holds) > 0 THEN
        -- Two arms joined by UNION, not OR: each takes its own index (the primary key; the
        -- (account_id, unit, status) index), where an OR across them read every row.
        {HOLDS_AS_JSON}
            FROM (SELECT {HOLD_COLUMNS} FROM holds
                  WHERE id = ANY(ARRAY(SELECT json_array_elements_text(p_holds)))
                  UNION
                  SELECT {HOLD_COLUMNS} FROM holds
                  WHERE status = 'active' AND expires_at <= p_now
                    AND (account_id, unit) IN (
                        SELECT a, u FROM json_to_recordset(p_positions) AS p(a varchar, u varchar))
                 ) AS h;
    ELSE
        {HOLDS_AS_JSON}
            FROM holds AS h
            WHERE h.status = 'active' AND h.expires_at <= p_now
              AND (h.account_id, h.unit) IN (
                  SELECT a, u FROM json_to_recordset(p_positions) AS p(a varchar, u varchar));
    END IF;

    -- Each balance's live grants by the index (``OFFSET 0`` keeps the planner from flattening
    -- the lateral subquery into a join that reads every live grant).
    SELECT json_agg(json_build_array(
            g.id, g.account_id, g.unit, g.remaining, g.held, g.priority, g.expires_at, g.origin))
        INTO v_grants
        FROM json_to_recordset(p_positions) AS p(a varchar, u varchar)
        CROSS JOIN LATERAL (
            SELECT * FROM grants
            WHERE account_id = p.a AND unit = p.u AND remaining > 0 OFFSET 0) AS g;

    IF json_array_length(p_keys) > 0 THEN
        SELECT json_agg(json_build_array(
                t.idempotency_key, t.id, t.kind, t.request_hash, t.result))
            INTO v_keys
            FROM ledger_transactions AS t
            WHERE t.idempotency_key = ANY(ARRAY(SELECT json_array_elements_text(p_keys)));
    END IF;

    RETURN json_build_array(v_balances, v_holds, v_grants, v_keys);
END
$fn$
"""


BATCH_WRITE = """
CREATE OR REPLACE FUNCTION billfold_batch_write(
    p_transactions json, p_balances json, p_grants json, p_holds json, p_lines json,
    p_allocations json, p_grant_updates json, p_balance_updates json, p_closed_holds json,
    p_expected int
) RETURNS int LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    v_inserted int := 0;
BEGIN
    IF json_array_length(p_transactions) > 0 THEN
        INSERT INTO ledger_transactions (id, idempotency_key, request_hash, kind, account_id,
                unit, amount, reason, created, result, line_count)
            SELECT i, k, h, d, a, u, m, r, c, x, n
            FROM json_to_recordset(p_transactions) AS v(i varchar, k varchar, h varchar,
                d varchar, a varchar, u varchar, m bigint, r text, c bigint, x json, n int)
            ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS v_inserted = ROW_COUNT;
    END IF;
    IF v_inserted <> p_expected THEN
        RAISE EXCEPTION 'another transaction took one of this batch''s idempotency keys'
            USING ERRCODE = 'unique_violation',
                CONSTRAINT = 'uq_ledger_transactions_idempotency_key';
    END IF;
    IF json_array_length(p_balances) > 0 THEN
        INSERT INTO balances (account_id, unit, available, held, debt, low_balance, low_alert)
            SELECT a, u, av, he, de, lo, al
            FROM json_to_recordset(p_balances) AS v(a varchar, u varchar, av bigint, he bigint,
                de bigint, lo bigint, al boolean);
    END IF;
    IF json_array_length(p_grants) > 0 THEN
        INSERT INTO grants (id, account_id, unit, amount, remaining, held, priority, expires_at,
                kind, origin, reason, transaction_id, created)
            SELECT i, a, u, m, r, 0, p, e, k, o, x, t, c
            FROM json_to_recordset(p_grants) AS v(i varchar, a varchar, u varchar, m bigint,
                r bigint, p int, e bigint, k varchar, o varchar, x text, t varchar, c bigint);
    END IF;
    IF json_array_length(p_holds) > 0 THEN
        INSERT INTO holds (id, account_id, unit, amount, captured, status, expires_at, reason,
                transaction_id, created)
            SELECT i, a, u, m, 0, 'active', e, r, t, c
            FROM json_to_recordset(p_holds) AS v(i varchar, a varchar, u varchar, m bigint,
                e bigint, r text, t varchar, c bigint);
    END IF;
    IF json_array_length(p_lines) > 0 THEN
        INSERT INTO ledger_lines (transaction_id, account_id, unit, amount, grant_id, hold_id)
            SELECT t, a, u, m, g, h
            FROM json_to_recordset(p_lines) AS v(t varchar, a varchar, u varchar, m bigint,
                g varchar, h varchar);
    END IF;
    IF json_array_length(p_allocations) > 0 THEN
        INSERT INTO hold_allocations (hold_id, grant_id, seq, amount)
            SELECT h, g, s, m
            FROM json_to_recordset(p_allocations) AS v(h varchar, g varchar, s int, m bigint);
    END IF;
    IF json_array_length(p_grant_updates) > 0 THEN
        UPDATE grants AS g SET remaining = v.r, held = v.h
            FROM json_to_recordset(p_grant_updates) AS v(i varchar, r bigint, h bigint)
            WHERE g.id = v.i;
    END IF;
    IF json_array_length(p_balance_updates) > 0 THEN
        UPDATE balances AS b SET available = v.av, held = v.he, debt = v.de
            FROM json_to_recordset(p_balance_updates) AS v(a varchar, u varchar, av bigint,
                he bigint, de bigint)
            WHERE b.account_id = v.a AND b.unit = v.u;
    END IF;
    IF json_array_length(p_closed_holds) > 0 THEN
        UPDATE holds AS h SET status = v.s, captured = v.c, closed_transaction_id = v.t
            FROM json_to_recordset(p_closed_holds) AS v(i varchar, s varchar, c bigint,
                t varchar)
            WHERE h.id = v.i AND h.status = 'active';
    END IF;
    RETURN v_inserted;
END
$fn$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(BATCH_READ)
        op.execute(BATCH_WRITE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS billfold_batch_write"
            "(json, json, json, json, json, json, json, json, json, int)"
        )
        op.execute("DROP FUNCTION IF EXISTS billfold_batch_read(json, json, json, bigint)")
