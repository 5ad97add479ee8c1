-- Delivery outages (docs/architecture.md, reliability rules): a destination
-- (Slack) failing every delivery, as the replicas holding its items back saw
-- it. Delivery itself keeps its circuit in memory per replica; this row is
-- what /readyz?verbose=1 and `reins doctor` (another process) report:
-- "Slack unreachable since 14:02, N deliveries waiting".
-- postgres/00015_delivery_outages.sql holds the same table; times are TEXT
-- as in 00001. Forward-only.

-- +goose Up

-- One row per failing destination. since is the first failure of the
-- outage and is kept while replicas go on failing; failed_at and
-- next_probe_at tell a live outage from a row left by a replica that died
-- before Slack answered again. The first replica Slack answers deletes it.
CREATE TABLE delivery_outages (
    destination   TEXT NOT NULL PRIMARY KEY,
    since         TEXT NOT NULL,
    failed_at     TEXT NOT NULL,
    next_probe_at TEXT NOT NULL,
    last_error    TEXT NOT NULL DEFAULT ''
);
