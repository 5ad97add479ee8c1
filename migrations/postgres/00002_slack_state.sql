-- Slack state that any replica must be able to read and finish (issue 13):
-- pending confirmations, the signatures of requests already handled, and
-- bursts of refused kills. sqlite/00002_slack_state.sql holds the same tables.
-- Every row carries its own expiry; the Slack handler prunes them.

-- +goose Up

-- A halt (or other action) waiting for its confirmation click. The token is
-- the button's value; payload is the action as the Slack side encoded it.
-- used_at is set by the one click that takes it (an UPDATE … WHERE used_at IS
-- NULL), and the row stays until it expires so a second click, on any
-- replica, is told "already used" rather than "expired".
CREATE TABLE slack_confirmations (
    token      TEXT        PRIMARY KEY,
    user_id    TEXT        NOT NULL,
    payload    TEXT        NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    used_by    TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX slack_confirmations_expires ON slack_confirmations (expires_at);

-- Slack requests already handled, keyed by a hash of their signature. A
-- signed request is good for Slack's 5-minute window, so a key is kept just
-- past it; the primary key makes "first time?" one atomic insert.
CREATE TABLE slack_requests (
    key        TEXT        PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX slack_requests_expires ON slack_requests (expires_at);

-- Refused kills are audited once per burst: the burst's key (who, what,
-- which agent) names its audit_log row, whose detail carries the count.
CREATE TABLE refusal_bursts (
    key      TEXT        PRIMARY KEY,
    audit_id BIGINT      NOT NULL REFERENCES audit_log (id) ON DELETE CASCADE,
    detail   TEXT        NOT NULL DEFAULT '',
    first_at TIMESTAMPTZ NOT NULL,
    last_at  TIMESTAMPTZ NOT NULL,
    attempts INTEGER     NOT NULL DEFAULT 1
);
CREATE INDEX refusal_bursts_last ON refusal_bursts (last_at);
