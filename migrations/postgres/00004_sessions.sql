-- The session record (SPEC §10): the steps of agents' sessions as they arrive
-- over OTLP or are pulled from Langfuse, and each session's running totals.
-- sqlite/00004_sessions.sql holds the same tables and columns.

-- +goose Up

-- One row per session, its totals kept up to date by every write of steps
-- so the summary, the page and the guard never sum thousands of steps.
-- steps counts every step ever received; stored_steps those kept after the
-- step cap dropped middle steps.
CREATE TABLE sessions (
    id             TEXT             PRIMARY KEY,
    agent          TEXT             NOT NULL,
    steps          BIGINT           NOT NULL DEFAULT 0,
    stored_steps   BIGINT           NOT NULL DEFAULT 0,
    tool_calls     BIGINT           NOT NULL DEFAULT 0,
    errors         BIGINT           NOT NULL DEFAULT 0,
    input_tokens   BIGINT           NOT NULL DEFAULT 0,
    output_tokens  BIGINT           NOT NULL DEFAULT 0,
    cost           DOUBLE PRECISION NOT NULL DEFAULT 0,
    unpriced_steps BIGINT           NOT NULL DEFAULT 0,
    first_at       TIMESTAMPTZ      NOT NULL,
    last_at        TIMESTAMPTZ      NOT NULL
);

-- Retention and "sessions of an agent since" both walk an agent's sessions by time.
CREATE INDEX sessions_agent_last ON sessions (agent, last_at);

-- One row per span. The primary key is what makes a retried export (the
-- same span twice) a no-op.
CREATE TABLE session_steps (
    session_id    TEXT             NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    span_id       TEXT             NOT NULL,
    trace_id      TEXT             NOT NULL DEFAULT '',
    parent_id     TEXT             NOT NULL DEFAULT '',
    agent         TEXT             NOT NULL,
    started_at    TIMESTAMPTZ      NOT NULL,
    duration_us   BIGINT           NOT NULL DEFAULT 0,
    kind          TEXT             NOT NULL DEFAULT '',
    name          TEXT             NOT NULL DEFAULT '',
    tool          TEXT             NOT NULL DEFAULT '',
    model         TEXT             NOT NULL DEFAULT '',
    input_tokens  BIGINT           NOT NULL DEFAULT 0,
    output_tokens BIGINT           NOT NULL DEFAULT 0,
    cost          DOUBLE PRECISION NOT NULL DEFAULT 0,
    priced        BOOLEAN          NOT NULL DEFAULT FALSE,
    error         BOOLEAN          NOT NULL DEFAULT FALSE,
    error_type    TEXT             NOT NULL DEFAULT '',
    system        TEXT             NOT NULL DEFAULT '',
    content       TEXT             NOT NULL DEFAULT '',
    PRIMARY KEY (session_id, span_id)
);
-- No index on time: a session's steps are read through the primary key's
-- session prefix and sorted (at most max_steps rows), and every index is one
-- more write for each of the many steps that arrive.
