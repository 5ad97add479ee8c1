package migrations_test

import (
	"context"
	"os"
	"testing"

	"github.com/reins-oss/reins/migrations"
	"github.com/reins-oss/reins/migrations/dbtest"
)

// 00008 keys sessions by (agent, id) and keeps the data of a database
// migrated to 00007: totals, steps (a step naming another agent than its
// session's becomes the session's), arrival taken from the span's start, and
// a second agent may then have a session of the same ID.
func TestSessionIdentityMigratesExistingData(t *testing.T) {
	for _, d := range []migrations.Dialect{migrations.SQLite, migrations.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			if d == migrations.Postgres && os.Getenv("REINS_TEST_POSTGRES_URL") == "" {
				t.Skip("REINS_TEST_POSTGRES_URL not set")
			}
			ctx := context.Background()
			db := dbtest.MigratedOnly(t, d, func(v int64) bool { return v <= 7 })
			at := "2026-12-06T14:00:00Z"
			for _, q := range []struct {
				sql  string
				args []any
			}{
				{`INSERT INTO sessions (id, agent, steps, stored_steps, input_tokens, first_at, last_at) VALUES ('s-1', 'alpha', 2, 2, 30, ?, ?)`, []any{at, at}},
				{`INSERT INTO session_steps (session_id, span_id, agent, started_at, input_tokens) VALUES ('s-1', 'a', 'alpha', ?, 10)`, []any{at}},
				{`INSERT INTO session_steps (session_id, span_id, agent, started_at, input_tokens) VALUES ('s-1', 'b', 'beta', ?, 20)`, []any{at}},
			} {
				if _, err := db.ExecContext(ctx, db.Rebind(q.sql), q.args...); err != nil {
					t.Fatalf("%s: %v", q.sql, err)
				}
			}
			// Up to 00016: 00017 stores new steps as chunks and refuses
			// rows, and this test is of the rows' keys.
			dbtest.MigrateOnly(t, db, d, func(v int64) bool { return v <= 16 })
			var steps []struct {
				Agent    string `db:"agent"`
				Span     string `db:"span_id"`
				Received string `db:"received_at"`
				Started  string `db:"started_at"`
			}
			if err := db.SelectContext(ctx, &steps, `SELECT agent, span_id, CAST(received_at AS TEXT) AS received_at,
				CAST(started_at AS TEXT) AS started_at FROM session_steps ORDER BY span_id`); err != nil {
				t.Fatal(err)
			}
			if len(steps) != 2 || steps[0].Agent != "alpha" || steps[1].Agent != "alpha" ||
				steps[0].Received != steps[0].Started || steps[0].Received == "" {
				t.Errorf("steps after 00008: %+v, want both alpha's, received_at = started_at", steps)
			}
			// Beta may now have a session s-1 of its own, with a step of the same span ID.
			for _, q := range []string{
				`INSERT INTO sessions (id, agent, first_at, last_at) VALUES ('s-1', 'beta', ?, ?)`,
				`INSERT INTO session_steps (session_id, span_id, agent, started_at, received_at) VALUES ('s-1', 'a', 'beta', ?, ?)`,
			} {
				if _, err := db.ExecContext(ctx, db.Rebind(q), at, at); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			// And a step cannot name a session its agent does not have.
			if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO session_steps (session_id, span_id, agent, started_at, received_at)
				VALUES ('s-1', 'c', 'gamma', ?, ?)`), at, at); err == nil {
				t.Error("a step of gamma's session s-1, which does not exist, was stored")
			}
			var n int
			if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM sessions WHERE id = 's-1'`); err != nil || n != 2 {
				t.Errorf("sessions s-1: %d (%v), want alpha's and beta's", n, err)
			}
		})
	}
}
