-- A session belongs to its agent (issue 23): its identity is (agent, session
-- ID), so two agents that happen to use the same ID have two sessions, each
-- recorded and judged, and no agent can squat on another's session ID.
-- And arrival time decides: a step keeps when reins received it, which is
-- what the guard's windows and a session's first and last seen count.
-- postgres/00008_session_identity.sql holds the same change; SQLite cannot
-- change a primary key, so both tables are rebuilt and copied. Forward-only.

-- +goose Up

CREATE TABLE sessions_new (
    id             TEXT    NOT NULL,
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
    last_at        TEXT    NOT NULL,
    PRIMARY KEY (agent, id)
);
INSERT INTO sessions_new (id, agent, steps, stored_steps, tool_calls, errors, input_tokens, output_tokens,
    cost, unpriced_steps, first_at, last_at)
SELECT id, agent, steps, stored_steps, tool_calls, errors, input_tokens, output_tokens,
    cost, unpriced_steps, first_at, last_at FROM sessions;

-- received_at: when reins received the step. Steps stored before this
-- migration only have the agent's clock: it stands in for their arrival.
-- Sessions' first_at and last_at are from now on arrival times; existing
-- ones keep the span times they had (the best reins knows).
CREATE TABLE session_steps_new (
    session_id    TEXT    NOT NULL,
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
    args_hash     TEXT    NOT NULL DEFAULT '',
    scores        TEXT    NOT NULL DEFAULT '',
    received_at   TEXT    NOT NULL,
    PRIMARY KEY (agent, session_id, span_id),
    FOREIGN KEY (agent, session_id) REFERENCES sessions_new (agent, id) ON DELETE CASCADE
);
-- Steps written before sessions.Service refused a second agent's spans may
-- name another agent than their session's; their totals were counted into
-- that session, so they become its agent's.
INSERT INTO session_steps_new (session_id, span_id, trace_id, parent_id, agent, started_at, duration_us, kind,
    name, tool, model, input_tokens, output_tokens, cost, priced, error, error_type, system, content,
    args_hash, scores, received_at)
SELECT st.session_id, st.span_id, st.trace_id, st.parent_id, s.agent, st.started_at, st.duration_us, st.kind,
    st.name, st.tool, st.model, st.input_tokens, st.output_tokens, st.cost, st.priced, st.error, st.error_type,
    st.system, st.content, st.args_hash, st.scores, st.started_at
  FROM session_steps st JOIN sessions s ON s.id = st.session_id;

-- The old steps go first: they reference the old sessions. Renaming
-- sessions_new rewrites session_steps_new's reference to it.
DROP TABLE session_steps;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;
ALTER TABLE session_steps_new RENAME TO session_steps;

-- Retention and "sessions of an agent since" both walk an agent's sessions by time.
CREATE INDEX sessions_agent_last ON sessions (agent, last_at);
-- "Which agents have a session with this ID": a person naming a session
-- without its agent is asked to choose when more than one has.
CREATE INDEX sessions_id ON sessions (id);

-- A session's breaches are read by (agent, session).
DROP INDEX guard_breaches_session;
CREATE INDEX guard_breaches_session ON guard_breaches (agent, session_id);
