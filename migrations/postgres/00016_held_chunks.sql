-- Held spans as chunks (issue 24, "Speed"): the spans of one trace that one
-- request holds are one row, not a row each. A held span was written twice
-- (held, then claimed and stored as a step); as a row per span the hold cost
-- as much as the step itself, and a quarter of spans held made intake 0.53x
-- the floor on SQLite. sqlite/00016_held_chunks.sql holds the same table.
-- Forward-only.

-- +goose Up

-- One row per (agent, trace, request): steps is a JSON array of the mapped
-- steps (session empty), spans and bytes their count and size for the
-- telemetry.hold bounds. chunk_id is derived from the span IDs, so an
-- exporter retrying the same request holds nothing twice. Claimed (deleted
-- in the transaction that stores the steps) when the trace's binding
-- appears; refused as no_session after telemetry.hold.max_age.
CREATE TABLE held_chunks (
    agent    TEXT    NOT NULL,
    trace_id TEXT    NOT NULL,
    chunk_id TEXT    NOT NULL,
    steps    TEXT    NOT NULL,
    spans    BIGINT  NOT NULL,
    bytes    BIGINT  NOT NULL,
    held_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (agent, trace_id, chunk_id)
);
CREATE INDEX held_chunks_held_at ON held_chunks (held_at);

-- Spans held before this migration become chunks of one span each.
INSERT INTO held_chunks (agent, trace_id, chunk_id, steps, spans, bytes, held_at)
SELECT agent, trace_id, 'span:' || span_id, '[' || step || ']', 1, bytes, held_at FROM held_spans;

DROP TABLE held_spans;
