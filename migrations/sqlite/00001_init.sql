-- The first reins schema, SQLite flavour. postgres/00001_init.sql holds the
-- same tables and columns (a test keeps them in step); only the types differ:
--   * times are TEXT, always written by the store as UTC RFC 3339 with exactly
--     six fractional digits (2026-01-02T15:04:05.000000Z), so text order is
--     time order and comparisons such as next_attempt_at <= now work as text;
--     six digits because PostgreSQL keeps microseconds, so both stores
--     return the same times;
--   * booleans are INTEGER 0/1, CHECKed, since SQLite has no boolean type.
-- Forward-only: there is no Down section, a later migration fixes a mistake.
--
-- Conventions, and why:
--   * Lists and small objects (sessions, links, labels, details, actors) are
--     JSON in TEXT: the store only round-trips them, never queries inside, and
--     TEXT reads the same on both dialects.
--   * Absent strings are '' (NOT NULL DEFAULT ''), absent times are NULL: the
--     domain types use "" and nil the same way, so nothing is translated.
--   * incident_id 0 means "not about an incident" where the domain allows it
--     (outbox, halts, kill flags); those columns carry no foreign key.

-- +goose Up

CREATE TABLE incidents (
    -- AUTOINCREMENT: the ID is the number users see (#inc-42), so it is never
    -- reused, even after the newest row is deleted.
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    agent              TEXT        NOT NULL,
    unowned            INTEGER     NOT NULL DEFAULT 0 CHECK (unowned IN (0, 1)),
    group_key          TEXT        NOT NULL DEFAULT '',
    -- grouping is true while the incident collects new alerts for its agent
    -- and key; StopGrouping clears it so the next alert opens a new incident
    -- while this one stays open.
    grouping           INTEGER     NOT NULL DEFAULT 1 CHECK (grouping IN (0, 1)),
    title              TEXT        NOT NULL DEFAULT '',
    severity           TEXT        NOT NULL DEFAULT '',
    -- Statuses are CHECKed so a typo in code fails loudly instead of hiding
    -- an incident from every "open" query.
    status             TEXT        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    source             TEXT        NOT NULL DEFAULT '',
    sessions           TEXT        NOT NULL DEFAULT '[]',
    links              TEXT        NOT NULL DEFAULT '[]',
    slack_channel_id   TEXT        NOT NULL DEFAULT '',
    slack_channel_name TEXT        NOT NULL DEFAULT '',
    summary_ts         TEXT        NOT NULL DEFAULT '',
    checklist_ts       TEXT        NOT NULL DEFAULT '',
    postmortem_ts      TEXT        NOT NULL DEFAULT '',
    pagerduty_key      TEXT        NOT NULL DEFAULT '',
    paged_at           TEXT,
    acked_at           TEXT,
    acked_by           TEXT        NOT NULL DEFAULT '',
    created_at         TEXT        NOT NULL,
    started_at         TEXT        NOT NULL,
    last_alert_at      TEXT        NOT NULL,
    resolved_at        TEXT,
    resolved_by        TEXT        NOT NULL DEFAULT '',
    version            INTEGER     NOT NULL DEFAULT 1
);

-- One open incident collecting alerts per agent and grouping key: concurrent
-- alerts (several webhooks, several replicas) race on this index, so they all
-- land on one incident instead of opening one each. Resolved incidents and
-- those that stopped grouping are outside it, so history never blocks a new one.
CREATE UNIQUE INDEX incidents_open_group ON incidents (agent, group_key) WHERE status = 'open' AND grouping;
-- Slack interactions arrive with a channel ID, PagerDuty webhooks with the
-- dedup key: both are looked up on every such request.
CREATE INDEX incidents_channel ON incidents (slack_channel_id) WHERE slack_channel_id <> '';
CREATE INDEX incidents_pager_key ON incidents (pagerduty_key) WHERE pagerduty_key <> '';
-- Listing by agent and status, newest first (API, /agent status).
CREATE INDEX incidents_agent_status ON incidents (agent, status, id);

CREATE TABLE alerts (
    id             INTEGER PRIMARY KEY,
    incident_id    INTEGER     NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    source         TEXT        NOT NULL DEFAULT '',
    fingerprint    TEXT        NOT NULL,
    agent          TEXT        NOT NULL DEFAULT '',
    -- Only the two states every source is normalised to: a parser that
    -- leaks "ok" or "Recovered" fails here instead of counting as a change.
    status         TEXT        NOT NULL CHECK (status IN ('firing', 'resolved')),
    -- The status before the latest receipt, written by the same upsert that
    -- changes status, so RecordAlert learns "new, repeat or change" in one
    -- statement without a read-then-write race.
    previous_status TEXT       NOT NULL DEFAULT '' CHECK (previous_status IN ('', 'firing', 'resolved')),
    title          TEXT        NOT NULL DEFAULT '',
    summary        TEXT        NOT NULL DEFAULT '',
    severity       TEXT        NOT NULL DEFAULT '',
    sessions       TEXT        NOT NULL DEFAULT '[]',
    links          TEXT        NOT NULL DEFAULT '[]',
    labels         TEXT        NOT NULL DEFAULT '{}',
    annotations    TEXT        NOT NULL DEFAULT '{}',
    details        TEXT        NOT NULL DEFAULT '',
    starts_at      TEXT        NOT NULL,
    ends_at        TEXT,
    received_at    TEXT        NOT NULL,
    received_count INTEGER     NOT NULL DEFAULT 1,
    -- Monitoring re-sends the same alert on every repeat interval: it is one
    -- alert per incident, counted, not a new row each time.
    UNIQUE (incident_id, fingerprint)
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER     NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at          TEXT        NOT NULL,
    kind        TEXT        NOT NULL,
    actor       TEXT        NOT NULL DEFAULT '{}',
    text        TEXT        NOT NULL DEFAULT '',
    data        TEXT        NOT NULL DEFAULT ''
);
-- The timeline is always read per incident, in order.
CREATE INDEX events_incident ON events (incident_id, at, id);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    incident_id     INTEGER     NOT NULL DEFAULT 0,
    lane            TEXT        NOT NULL,
    kind            TEXT        NOT NULL,
    -- The idempotency key: enqueueing the same side effect twice (a retried
    -- transaction, a re-sent webhook) queues it once.
    key             TEXT        NOT NULL UNIQUE,
    payload         TEXT        NOT NULL DEFAULT '',
    -- Workers claim only 'pending'; any other word would strand an item.
    state           TEXT        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),
    attempts        INTEGER     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TEXT        NOT NULL,
    -- A claimed item is leased, not removed: if its worker dies the lease
    -- runs out and another worker claims it again.
    locked_until    TEXT,
    last_error      TEXT        NOT NULL DEFAULT '',
    created_at      TEXT        NOT NULL,
    done_at         TEXT
);
-- Claiming scans only pending items of a lane in due order; done and dead
-- items, the vast majority over time, stay out of the index.
CREATE INDEX outbox_claim ON outbox (lane, next_attempt_at, id) WHERE state = 'pending';
-- In-order delivery asks "is there an earlier pending item of this incident
-- and lane?" for every candidate.
CREATE INDEX outbox_order ON outbox (incident_id, lane, id) WHERE state = 'pending';

CREATE TABLE halts (
    id           INTEGER PRIMARY KEY,
    incident_id  INTEGER     NOT NULL DEFAULT 0,
    agent        TEXT        NOT NULL,
    -- Action and status drive time-to-halt and the agent's halted state:
    -- only the words the code knows.
    action       TEXT        NOT NULL CHECK (action IN ('halt', 'resume')),
    sessions     TEXT        NOT NULL DEFAULT '[]',
    reason       TEXT        NOT NULL DEFAULT '',
    actor        TEXT        NOT NULL DEFAULT '{}',
    adapter      TEXT        NOT NULL DEFAULT '',
    status       TEXT        NOT NULL CHECK (status IN ('requested', 'verified', 'failed')),
    attempts     INTEGER     NOT NULL DEFAULT 0,
    error        TEXT        NOT NULL DEFAULT '',
    requested_at TEXT        NOT NULL,
    finished_at  TEXT
);
CREATE INDEX halts_agent ON halts (agent, id);
CREATE INDEX halts_incident ON halts (incident_id, id);

-- reins' own kill flag, read by agents (flag adapter): one row per agent and
-- session ('' for the whole agent), so setting it twice is an update.
CREATE TABLE kill_flags (
    agent       TEXT        NOT NULL,
    session     TEXT        NOT NULL DEFAULT '',
    halted      INTEGER     NOT NULL CHECK (halted IN (0, 1)),
    reason      TEXT        NOT NULL DEFAULT '',
    actor       TEXT        NOT NULL DEFAULT '{}',
    incident_id INTEGER     NOT NULL DEFAULT 0,
    updated_at  TEXT        NOT NULL,
    PRIMARY KEY (agent, session)
);

-- Append-only record of security-relevant actions, refusals included.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      TEXT        NOT NULL,
    actor   TEXT        NOT NULL DEFAULT '{}',
    action  TEXT        NOT NULL,
    agent   TEXT        NOT NULL DEFAULT '',
    allowed INTEGER     NOT NULL CHECK (allowed IN (0, 1)),
    detail  TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at, id);
CREATE INDEX audit_log_agent ON audit_log (agent, at, id);

-- One checklist per incident (the key), resumed and never restarted.
CREATE TABLE checklists (
    incident_id       INTEGER     PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
    created_at        TEXT        NOT NULL,
    created_by        TEXT        NOT NULL DEFAULT '{}',
    last_activity_at  TEXT        NOT NULL,
    nudge_count       INTEGER     NOT NULL DEFAULT 0,
    last_nudged_at    TEXT,
    snoozed_until     TEXT,
    reminders_stopped INTEGER     NOT NULL DEFAULT 0 CHECK (reminders_stopped IN (0, 1))
);

CREATE TABLE checklist_items (
    incident_id INTEGER     NOT NULL REFERENCES checklists (incident_id) ON DELETE CASCADE,
    key         TEXT        NOT NULL,
    position    INTEGER     NOT NULL,
    question    TEXT        NOT NULL,
    check_text  TEXT        NOT NULL DEFAULT '',
    owner       TEXT        NOT NULL DEFAULT '',
    link        TEXT        NOT NULL DEFAULT '',
    posted_ts   TEXT        NOT NULL DEFAULT '',
    -- Only the four answers the buttons offer, or '' while unanswered.
    choice      TEXT        NOT NULL DEFAULT '' CHECK (choice IN ('', 'no_impact', 'impact_found', 'unknown', 'not_applicable')),
    details     TEXT        NOT NULL DEFAULT '',
    answered_by TEXT        NOT NULL DEFAULT '',
    answered_at TEXT,
    -- Button clicks name the item by key: a key must mean one item.
    PRIMARY KEY (incident_id, key)
);

-- One answer per question of an incident's postmortem; answering again
-- replaces it.
CREATE TABLE postmortem_answers (
    incident_id INTEGER     NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    key         TEXT        NOT NULL,
    text        TEXT        NOT NULL DEFAULT '',
    actor       TEXT        NOT NULL DEFAULT '{}',
    at          TEXT        NOT NULL,
    PRIMARY KEY (incident_id, key)
);

CREATE TABLE postmortem_docs (
    incident_id      INTEGER     PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
    markdown         TEXT        NOT NULL DEFAULT '',
    rendered_at      TEXT        NOT NULL,
    finished         INTEGER     NOT NULL DEFAULT 0 CHECK (finished IN (0, 1)),
    posted_ts        TEXT        NOT NULL DEFAULT '',
    remind_count     INTEGER     NOT NULL DEFAULT 0,
    last_reminded_at TEXT
);

CREATE TABLE drills (
    id      INTEGER PRIMARY KEY,
    agent   TEXT        NOT NULL,
    adapter TEXT        NOT NULL DEFAULT '',
    at      TEXT        NOT NULL,
    ok      INTEGER     NOT NULL CHECK (ok IN (0, 1)),
    error   TEXT        NOT NULL DEFAULT '',
    actor   TEXT        NOT NULL DEFAULT '{}'
);
-- "Newest drill per agent" for the drill report and /agent status.
CREATE INDEX drills_agent ON drills (agent, at, id);

-- Keys already acted on (Slack retries, PagerDuty webhook IDs, double clicks):
-- the primary key makes "first time?" one atomic insert.
CREATE TABLE idempotency_keys (
    key     TEXT        PRIMARY KEY,
    seen_at TEXT        NOT NULL
);
CREATE INDEX idempotency_keys_seen ON idempotency_keys (seen_at);
