-- A session belongs to its agent (issue 23): its identity is (agent, session
-- ID), so two agents that happen to use the same ID have two sessions, each
-- recorded and judged, and no agent can squat on another's session ID.
-- And arrival time decides: a step keeps when reins received it, which is
-- what the guard's windows and a session's first and last seen count.
-- sqlite/00008_session_identity.sql holds the same change. Forward-only.

-- +goose Up

-- Steps written before sessions.Service refused a second agent's spans may
-- name another agent than their session's; their totals were counted into
-- that session, so they become its agent's.
UPDATE session_steps SET agent = s.agent FROM sessions s
 WHERE s.id = session_steps.session_id AND session_steps.agent <> s.agent;

ALTER TABLE session_steps DROP CONSTRAINT session_steps_session_id_fkey;
ALTER TABLE session_steps DROP CONSTRAINT session_steps_pkey;
ALTER TABLE sessions DROP CONSTRAINT sessions_pkey;
ALTER TABLE sessions ADD PRIMARY KEY (agent, id);
-- "Which agents have a session with this ID": a person naming a session
-- without its agent is asked to choose when more than one has.
CREATE INDEX sessions_id ON sessions (id);
ALTER TABLE session_steps ADD PRIMARY KEY (agent, session_id, span_id);
ALTER TABLE session_steps ADD CONSTRAINT session_steps_session_fkey
    FOREIGN KEY (agent, session_id) REFERENCES sessions (agent, id) ON DELETE CASCADE;

-- When reins received the step. Steps stored before this migration only
-- have the agent's clock: it stands in for their arrival. Sessions' first_at
-- and last_at are from now on arrival times; existing ones keep the span
-- times they had (the best reins knows), which retention then ages out.
ALTER TABLE session_steps ADD COLUMN received_at TIMESTAMPTZ;
UPDATE session_steps SET received_at = started_at;
ALTER TABLE session_steps ALTER COLUMN received_at SET NOT NULL;

-- A session's breaches are read by (agent, session).
DROP INDEX guard_breaches_session;
CREATE INDEX guard_breaches_session ON guard_breaches (agent, session_id);
