-- A session's steps as chunks (issue 28, item 2): the steps of one session
-- that one write stores are one row (two: its tool calls and errors apart,
-- for the incident summary's read), not a row each. A row per span in
-- session_steps (23 columns, a primary key, a foreign key) was what bounded
-- intake at about a tenth of the decode ceiling.
-- postgres/00017_step_chunks.sql holds the same change. Forward-only.

-- +goose Up

-- chunk is the first step number the chunk was written with: unique in its
-- session, because a session's numbers are given out under its row's lock
-- and a chunk's steps are of one write. notable says every step is a tool
-- call or an error (sessions.Service.Notable reads only those), and none
-- otherwise. span_ids are the chunk's span IDs, each after its length as a
-- varint: a write reads them, under its session's lock, to skip a span an
-- earlier request stored (an exporter's retry, a Collector's re-batching).
-- body is the steps, encoded by incidents/sqlstore (step_codec.go). A step
-- the step cap drops is cut out of its chunk.
CREATE TABLE step_chunks (
    agent      TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    chunk      INTEGER NOT NULL,
    notable    INTEGER NOT NULL,
    steps      INTEGER NOT NULL,
    span_ids   BLOB    NOT NULL,
    body       BLOB    NOT NULL,
    PRIMARY KEY (agent, session_id, chunk),
    FOREIGN KEY (agent, session_id) REFERENCES sessions (agent, id) ON DELETE CASCADE
);

-- Steps stored before this migration stay rows in session_steps, read with
-- the chunks; step_rows marks the sessions that have some, so a write and a
-- read of any other session never look there.
ALTER TABLE sessions ADD COLUMN step_rows INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET step_rows = 1
 WHERE EXISTS (SELECT 1 FROM session_steps st WHERE st.agent = sessions.agent AND st.session_id = sessions.id);

-- A release before this one writes steps as rows and reads no chunks: a pod
-- of it still running during a rolling update (or a binary put back without
-- restoring the backup) would store a retried span twice and show sessions
-- without their newer steps. Its step writes fail instead, so it answers
-- /v1/traces with 503 and Retry-After, and the exporter's retry reaches a
-- pod of this release.
-- +goose StatementBegin
CREATE TRIGGER session_steps_before_chunks BEFORE INSERT ON session_steps
BEGIN
    SELECT RAISE(ABORT, 'session steps are stored in step_chunks since migration 00017: upgrade reins');
END;
-- +goose StatementEnd
