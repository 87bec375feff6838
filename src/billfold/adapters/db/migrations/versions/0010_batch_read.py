"""ledger batches: everything a batch reads, in one call (PostgreSQL)

``billfold_batch_read(positions, hold_ids, keys, now)``: a ledger batch's reads in one round trip
and one statement from the client, where they were five statements in a pipeline (about 40 µs of
the driver's Python each, in the process that decides every batch). No rule of the ledger is in
it: it locks the balance rows, reads what is under those locks and hands it all back as one JSON
document; the batch decides in Python as before.

In order, as the statements it replaces:

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

SQLite has no functions: its batches read in process, statement by statement.

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
        SELECT json_agg(json_build_array(
                h.id, h.account_id, h.unit, h.amount, h.captured, h.status, h.expires_at,
                h.reason, h.created,
                (SELECT json_agg(json_build_array(a.grant_id, a.amount) ORDER BY a.seq)
                 FROM hold_allocations AS a WHERE a.hold_id = h.id)))
            INTO v_holds
            FROM (SELECT {HOLD_COLUMNS} FROM holds
                  WHERE id = ANY(ARRAY(SELECT json_array_elements_text(p_holds)))
                  UNION
                  SELECT {HOLD_COLUMNS} FROM holds
                  WHERE status = 'active' AND expires_at <= p_now
                    AND (account_id, unit) IN (
                        SELECT a, u FROM json_to_recordset(p_positions) AS p(a varchar, u varchar))
                 ) AS h;
    ELSE
        SELECT json_agg(json_build_array(
                h.id, h.account_id, h.unit, h.amount, h.captured, h.status, h.expires_at,
                h.reason, h.created,
                (SELECT json_agg(json_build_array(a.grant_id, a.amount) ORDER BY a.seq)
                 FROM hold_allocations AS a WHERE a.hold_id = h.id)))
            INTO v_holds
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


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(BATCH_READ)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS billfold_batch_read(json, json, json, bigint)")
