-- The web view (SPEC §12). Forward-only, like every migration here.

-- +goose Up
-- The incident list filters by status alone ("open first", "resolved"):
-- incidents_agent_status leads with the agent, so it needs its own index.
CREATE INDEX incidents_status ON incidents (status, id);

-- Keys reins makes itself and every replica must share, such as the one
-- signing web session cookies when REINS_WEB_SESSION_KEY is not set. The
-- first replica to insert wins; the others read its value.
CREATE TABLE web_keys (
    name       TEXT        PRIMARY KEY,
    value      TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
