-- Sessions are a property of the trace (docs/telemetry.md): a span without a
-- session belongs to the session another span of its trace names, in the
-- same request or an earlier or later one, on any replica. And spans refused
-- at intake are remembered for reins doctor, /readyz, the agents page and
-- reins session. sqlite/00010_trace_sessions.sql holds the same tables.
-- Forward-only.

-- +goose Up

-- Which session an agent's trace belongs to: written when a span of the
-- trace names its session (the first one named wins), read to join the
-- trace's session-less spans. Kept a day after it was written.
CREATE TABLE trace_sessions (
    agent      TEXT        NOT NULL,
    trace_id   TEXT        NOT NULL,
    session_id TEXT        NOT NULL,
    bound_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (agent, trace_id)
);
CREATE INDEX trace_sessions_bound_at ON trace_sessions (bound_at);

-- Spans of a known agent waiting for their trace's session: the mapped step
-- as JSON (session empty), its size, and when it arrived. Claimed (deleted
-- and recorded) when the trace's binding appears; refused as no_session
-- after telemetry.hold.max_age. Bounded by telemetry.hold.max_spans and
-- max_bytes.
CREATE TABLE held_spans (
    agent    TEXT        NOT NULL,
    trace_id TEXT        NOT NULL,
    span_id  TEXT        NOT NULL,
    step     TEXT        NOT NULL,
    bytes    BIGINT      NOT NULL,
    held_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (agent, trace_id, span_id)
);
CREATE INDEX held_spans_held_at ON held_spans (held_at);

-- Spans refused at intake, added up per minute, reason, agent (or the
-- unknown service's name) and session (the session they named, '' for
-- none). Kept 7 days.
CREATE TABLE span_refusals (
    minute     TIMESTAMPTZ NOT NULL,
    reason     TEXT        NOT NULL,
    agent      TEXT        NOT NULL,
    session_id TEXT        NOT NULL DEFAULT '',
    spans      BIGINT      NOT NULL,
    PRIMARY KEY (minute, reason, agent, session_id)
);
CREATE INDEX span_refusals_session ON span_refusals (session_id);

-- One numbering of steps: a step's number in its session is the order reins
-- received it in (within a request, the order the spans started), kept with
-- the step so the alert, the page, Slack, the web view and the API show the
-- same number, even when a span that started earlier (the agent's root)
-- arrives later. 0: stored before this migration (numbered by position).
ALTER TABLE session_steps ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
-- The last number given in the session.
ALTER TABLE sessions ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;
