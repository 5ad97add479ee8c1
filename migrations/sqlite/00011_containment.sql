-- Containment rungs and the resume gate (issue 27, docs/containment.md).
-- A containment is a mode (running, throttled, restricted, halted) with its
-- parameters, per agent and per session; halts are its strongest rung.
-- postgres/00011_containment.sql holds the same change; SQLite cannot alter a
-- CHECK constraint, so halts is rebuilt and copied. Forward-only.

-- +goose Up

-- halts gains the softer rungs: restrict (allow: the tool globs still
-- allowed, a JSON array) and throttle (rate: model calls per minute).
-- probation_until is set on a rung reins applied instead of a resume (the
-- resume gate's probation): the target returns to running at that time
-- unless it breaches an SLA before.
CREATE TABLE halts_new (
    id              INTEGER PRIMARY KEY,
    incident_id     INTEGER     NOT NULL DEFAULT 0,
    agent           TEXT        NOT NULL,
    action          TEXT        NOT NULL CHECK (action IN ('halt', 'restrict', 'throttle', 'resume')),
    sessions        TEXT        NOT NULL DEFAULT '[]',
    allow           TEXT        NOT NULL DEFAULT '[]',
    rate            INTEGER     NOT NULL DEFAULT 0,
    probation_until TEXT,
    reason          TEXT        NOT NULL DEFAULT '',
    actor           TEXT        NOT NULL DEFAULT '{}',
    adapter         TEXT        NOT NULL DEFAULT '',
    status          TEXT        NOT NULL CHECK (status IN ('requested', 'verified', 'failed')),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    error           TEXT        NOT NULL DEFAULT '',
    requested_at    TEXT        NOT NULL,
    finished_at     TEXT
);
INSERT INTO halts_new (id, incident_id, agent, action, sessions, reason, actor, adapter, status, attempts,
    error, requested_at, finished_at)
SELECT id, incident_id, agent, action, sessions, reason, actor, adapter, status, attempts,
    error, requested_at, finished_at FROM halts;
DROP TABLE halts;
ALTER TABLE halts_new RENAME TO halts;
CREATE INDEX halts_agent ON halts (agent, id);
CREATE INDEX halts_incident ON halts (incident_id, id);

-- The kill flag carries the mode and its parameters; halted stays (true
-- exactly when mode is halted) for readers that know only halts. mode ''
-- is a flag written before this migration: it reads as halted says.
ALTER TABLE kill_flags ADD COLUMN mode TEXT NOT NULL DEFAULT ''
    CHECK (mode IN ('', 'running', 'throttled', 'restricted', 'halted'));
ALTER TABLE kill_flags ADD COLUMN allow TEXT NOT NULL DEFAULT '[]';
ALTER TABLE kill_flags ADD COLUMN rate INTEGER NOT NULL DEFAULT 0;

-- The resume gate: one row per approval of lifting the containment halt_id
-- (the verified halt, restrict or throttle being lifted) of an agent or a
-- session ('' for the whole agent). The approvals of distinct people
-- (actor_id) are counted; resumed_by is the resume they led to (0 while
-- still waiting), so a later containment needs approvals of its own.
CREATE TABLE resume_approvals (
    id          INTEGER PRIMARY KEY,
    agent       TEXT    NOT NULL,
    session     TEXT    NOT NULL DEFAULT '',
    halt_id     INTEGER NOT NULL,
    actor_id    TEXT    NOT NULL,
    actor       TEXT    NOT NULL DEFAULT '{}',
    approved_at TEXT    NOT NULL,
    resumed_by  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (halt_id, session, actor_id)
);
CREATE INDEX resume_approvals_agent ON resume_approvals (agent, session, halt_id);
