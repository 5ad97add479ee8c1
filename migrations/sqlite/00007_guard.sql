-- The guard (docs/architecture.md, guard): SLA breaches, and what a session
-- step carries for the SLAs that judge steps after a restart.
-- postgres/00005_guard.sql holds the same tables and columns; times are
-- TEXT and booleans INTEGER 0/1 as in 00001. Forward-only.

-- +goose Up

-- One row per breach: an SLA of an agent crossed by one session. The unique
-- key makes each breach happen once, across restarts and replicas. outcome
-- is '' from the moment the breach is recorded until it has been acted on,
-- so a crash in between is re-driven at start.
CREATE TABLE guard_breaches (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    agent       TEXT    NOT NULL,
    sla         TEXT    NOT NULL,
    metric      TEXT    NOT NULL,
    session_id  TEXT    NOT NULL,
    value       REAL    NOT NULL,
    threshold   REAL    NOT NULL,
    detail      TEXT    NOT NULL DEFAULT '',
    step_id     TEXT    NOT NULL,
    step_n      INTEGER NOT NULL DEFAULT 0,
    action      TEXT    NOT NULL,
    dry_run     INTEGER NOT NULL DEFAULT 0 CHECK (dry_run IN (0, 1)),
    outcome     TEXT    NOT NULL DEFAULT '',
    incident_id INTEGER NOT NULL DEFAULT 0,
    at          TEXT    NOT NULL,
    UNIQUE (agent, sla, session_id)
);
-- Status and `reins agents` read an agent's breaches of the last 24 h.
CREATE INDEX guard_breaches_agent_at ON guard_breaches (agent, at);
CREATE INDEX guard_breaches_session ON guard_breaches (session_id);

-- The loop SLA compares a hash of a tool call's arguments (never the
-- arguments) and score SLAs a numeric attribute: both kept with the step so
-- a session's state is rebuilt from its stored steps after a restart.
ALTER TABLE session_steps ADD COLUMN args_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE session_steps ADD COLUMN scores TEXT NOT NULL DEFAULT '';
