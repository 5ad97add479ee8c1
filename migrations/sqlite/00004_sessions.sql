-- The session record (SPEC §10): the steps of agents' sessions as they arrive
-- over OTLP or are pulled from Langfuse, and each session's running totals.
-- postgres/00004_sessions.sql holds the same tables and columns; times are
-- TEXT and booleans INTEGER 0/1 as in 00001.

-- +goose Up

-- One row per session, its totals kept up to date by every write of steps
-- so the summary, the page and the guard never sum thousands of steps.
-- steps counts every step ever received; stored_steps those kept after the
-- step cap dropped middle steps.
CREATE TABLE sessions (
    id             TEXT    PRIMARY KEY,
    agent          TEXT    NOT NULL,
    steps          INTEGER NOT NULL DEFAULT 0,
    stored_steps   INTEGER NOT NULL DEFAULT 0,
    tool_calls     INTEGER NOT NULL DEFAULT 0,
    errors         INTEGER NOT NULL DEFAULT 0,
    input_tokens   INTEGER NOT NULL DEFAULT 0,
    output_tokens  INTEGER NOT NULL DEFAULT 0,
    cost           REAL    NOT NULL DEFAULT 0,
    unpriced_steps INTEGER NOT NULL DEFAULT 0,
    first_at       TEXT    NOT NULL,
    last_at        TEXT    NOT NULL
);

-- Retention and "sessions of an agent since" both walk an agent's sessions by time.
CREATE INDEX sessions_agent_last ON sessions (agent, last_at);

-- One row per span. The primary key is what makes a retried export (the
-- same span twice) a no-op.
CREATE TABLE session_steps (
    session_id    TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    span_id       TEXT    NOT NULL,
    trace_id      TEXT    NOT NULL DEFAULT '',
    parent_id     TEXT    NOT NULL DEFAULT '',
    agent         TEXT    NOT NULL,
    started_at    TEXT    NOT NULL,
    duration_us   INTEGER NOT NULL DEFAULT 0,
    kind          TEXT    NOT NULL DEFAULT '',
    name          TEXT    NOT NULL DEFAULT '',
    tool          TEXT    NOT NULL DEFAULT '',
    model         TEXT    NOT NULL DEFAULT '',
    input_tokens  INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost          REAL    NOT NULL DEFAULT 0,
    priced        INTEGER NOT NULL DEFAULT 0 CHECK (priced IN (0, 1)),
    error         INTEGER NOT NULL DEFAULT 0 CHECK (error IN (0, 1)),
    error_type    TEXT    NOT NULL DEFAULT '',
    system        TEXT    NOT NULL DEFAULT '',
    content       TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (session_id, span_id)
);
-- No index on time: a session's steps are read through the primary key's
-- session prefix and sorted (at most max_steps rows), and every index is one
-- more write for each of the many steps that arrive.
