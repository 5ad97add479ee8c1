-- The guard's durable breach path (docs/architecture.md, guard): no breach
-- lost to a crash, none starved by the automatic-halt budget.
-- sqlite/00009_guard_queue.sql holds the same tables and columns. Forward-only.

-- +goose Up

-- A session whose steps were stored but not yet judged. The intake writes
-- the row in the transaction that stores the steps, and the guard deletes
-- it (up to the step count it judged) in the transaction that records what
-- it found: a crash in between leaves the row, and any replica judges the
-- session again from its stored steps. steps is the session's step count
-- when the row was last written, so a judgement of fewer steps does not
-- clear a later write's row.
CREATE TABLE guard_judgements (
    agent      TEXT        NOT NULL,
    session_id TEXT        NOT NULL,
    steps      BIGINT      NOT NULL,
    since      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (agent, session_id)
);
CREATE INDEX guard_judgements_since ON guard_judgements (since);

-- A breach whose outcome is '' is waiting to be acted on: the breach row is
-- its own outbox item. claimed_until leases it to one replica's worker (a
-- crash lets the lease run out and another takes it); due_at is when it may
-- be tried next: now for a new breach, when the agent's automatic-halt
-- budget frees for one that waits for it.
ALTER TABLE guard_breaches ADD COLUMN claimed_until TIMESTAMPTZ;
ALTER TABLE guard_breaches ADD COLUMN due_at TIMESTAMPTZ;
-- left_by is the person with kill authority who said to leave the session
-- running (/agent leave): its waiting breaches end with outcome 'left'.
ALTER TABLE guard_breaches ADD COLUMN left_by TEXT NOT NULL DEFAULT '';
CREATE INDEX guard_breaches_waiting ON guard_breaches (at, id) WHERE outcome = '';
