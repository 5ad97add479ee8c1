package sqlstore_test

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/incidents/sqlstore"
	"github.com/reins-oss/reins/migrations"
	"github.com/reins-oss/reins/migrations/dbtest"
)

// spansOf returns the span IDs and numbers of a record's steps, in order.
func spansOf(rec sessions.Record) (ids []string, ns []int64) {
	for _, st := range rec.Steps {
		ids, ns = append(ids, st.SpanID), append(ns, st.N)
	}
	return ids, ns
}

// A session's steps are a chunk per write, and a span an earlier request
// stored is stored once whether the exporter retries the request as it was
// or a Collector re-batches it with new spans; the steps keep the numbers a
// row per span gave them (every span of a write is numbered, a repeat too).
func TestStepsOfAnEarlierRequestStoredOnce(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		at := time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)
		first := []sessions.Step{step("s-1", 1, at, ""), step("s-1", 2, at, "salesforce.get"), step("s-1", 3, at, "")}
		rebatched := []sessions.Step{step("s-1", 2, at, "salesforce.get"), step("s-1", 3, at, ""), step("s-1", 4, at, ""),
			step("s-1", 4, at, ""), step("s-1", 5, at, "")}
		for _, batch := range [][]sessions.Step{first, rebatched} {
			if _, err := s.WriteSteps(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := s.WriteSteps(ctx, rebatched); err != nil || len(got) != 0 {
			t.Fatalf("a retry of a stored request changed totals: %+v, %v", got, err)
		}
		rec, err := s.FindSession(ctx, "support-bot", "s-1")
		if err != nil {
			t.Fatal(err)
		}
		ids, ns := spansOf(rec)
		if !slices.Equal(ids, []string{"span-0001", "span-0002", "span-0003", "span-0004", "span-0005"}) ||
			!slices.Equal(ns, []int64{1, 2, 3, 6, 7}) || rec.Totals.Steps != 5 || rec.Totals.Stored != 5 || rec.Totals.ToolCalls != 1 {
			t.Errorf("record: spans %v numbered %v, totals %+v", ids, ns, rec.Totals)
		}
		notable, err := s.FindNotable(ctx, "support-bot", "s-1")
		if ids, ns := spansOf(notable); err != nil || !slices.Equal(ids, []string{"span-0002"}) || !slices.Equal(ns, []int64{2}) {
			t.Errorf("notable: %v %v, %v", ids, ns, err)
		}
		// The step cap's cut leaves the chunk's other steps as they were.
		if err := s.DeleteSteps(ctx, "support-bot", "s-1", []string{"span-0001", "span-0005", "span-none"}); err != nil {
			t.Fatal(err)
		}
		rec, err = s.FindSession(ctx, "support-bot", "s-1")
		if ids, ns := spansOf(rec); err != nil || !slices.Equal(ids, []string{"span-0002", "span-0003", "span-0004"}) ||
			!slices.Equal(ns, []int64{2, 3, 6}) || rec.Totals.Stored != 3 || rec.Totals.Steps != 5 {
			t.Errorf("after dropping two: spans %v numbered %v, totals %+v (%v)", ids, ns, rec.Totals, err)
		}
	})
}

// Steps stored as rows before migration 00017 stay readable with the chunks
// written after it, count as stored for a retried span, and leave with the
// step cap and retention.
func TestStepRowsFromBeforeChunksStayReadable(t *testing.T) {
	for _, d := range []migrations.Dialect{migrations.SQLite, migrations.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			if d == migrations.Postgres && os.Getenv("REINS_TEST_POSTGRES_URL") == "" {
				t.Skip("REINS_TEST_POSTGRES_URL not set")
			}
			ctx := context.Background()
			db := dbtest.MigratedOnly(t, d, func(v int64) bool { return v <= 16 })
			at := time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)
			ts := func(n int) string {
				return at.Add(time.Duration(n) * time.Second).Format("2006-01-02T15:04:05.000000Z")
			}
			for _, q := range []struct {
				sql  string
				args []any
			}{
				{`INSERT INTO sessions (id, agent, steps, stored_steps, tool_calls, last_seq, first_at, last_at)
					VALUES ('s-1', 'support-bot', 2, 2, 1, 2, ?, ?)`, []any{ts(1), ts(2)}},
				{`INSERT INTO session_steps (session_id, span_id, agent, started_at, received_at, kind, name, seq, input_tokens)
					VALUES ('s-1', 'span-0001', 'support-bot', ?, ?, 'chat', 'chat', 1, 100)`, []any{ts(1), ts(1)}},
				{`INSERT INTO session_steps (session_id, span_id, agent, started_at, received_at, kind, name, tool, seq)
					VALUES ('s-1', 'span-0002', 'support-bot', ?, ?, 'execute_tool', 'execute_tool', 'salesforce.get', 2)`, []any{ts(2), ts(2)}},
			} {
				if _, err := db.ExecContext(ctx, db.Rebind(q.sql), q.args...); err != nil {
					t.Fatalf("%s: %v", q.sql, err)
				}
			}
			if _, err := migrations.Migrate(ctx, db, d); err != nil {
				t.Fatalf("migrate: %v", err)
			}
			s := sqlstore.New(db, d)
			rec, err := s.FindSession(ctx, "support-bot", "s-1")
			if ids, ns := spansOf(rec); err != nil || !slices.Equal(ids, []string{"span-0001", "span-0002"}) ||
				!slices.Equal(ns, []int64{1, 2}) || rec.Steps[0].InputTokens != 100 || rec.Steps[1].Tool != "salesforce.get" {
				t.Fatalf("rows after 00017: %+v, %v", rec.Steps, err)
			}
			// A retry of the stored tool call with a new step, which falls
			// between the two rows in time.
			newer := step("s-1", 3, at, "")
			newer.Start, newer.Error = at.Add(1500*time.Millisecond), true
			if _, err := s.WriteSteps(ctx, []sessions.Step{step("s-1", 2, at, "salesforce.get"), newer}); err != nil {
				t.Fatal(err)
			}
			rec, err = s.FindSession(ctx, "support-bot", "s-1")
			if ids, ns := spansOf(rec); err != nil || !slices.Equal(ids, []string{"span-0001", "span-0003", "span-0002"}) ||
				!slices.Equal(ns, []int64{1, 4, 2}) || rec.Totals.Steps != 3 || rec.Totals.Stored != 3 || rec.Totals.ToolCalls != 1 {
				t.Fatalf("rows and chunk: spans %v numbered %v, totals %+v (%v)", ids, ns, rec.Totals, err)
			}
			notable, err := s.FindNotable(ctx, "support-bot", "s-1")
			if ids, _ := spansOf(notable); err != nil || !slices.Equal(ids, []string{"span-0003", "span-0002"}) {
				t.Errorf("notable: %v, %v", ids, err)
			}
			if err := s.DeleteSteps(ctx, "support-bot", "s-1", []string{"span-0001", "span-0003"}); err != nil {
				t.Fatal(err)
			}
			rec, err = s.FindSession(ctx, "support-bot", "s-1")
			if ids, _ := spansOf(rec); err != nil || !slices.Equal(ids, []string{"span-0002"}) || rec.Totals.Stored != 1 {
				t.Errorf("after the step cap: %v, totals %+v (%v)", ids, rec.Totals, err)
			}
			if n, err := s.DeleteSessions(ctx, "support-bot", at.Add(time.Hour), nil); err != nil || n != 1 {
				t.Fatalf("retention removed %d (%v), want 1", n, err)
			}
			var left int
			if err := db.GetContext(ctx, &left, `SELECT (SELECT COUNT(*) FROM session_steps) + (SELECT COUNT(*) FROM step_chunks)`); err != nil || left != 0 {
				t.Errorf("%d rows and chunks left after retention (%v)", left, err)
			}
		})
	}
}

// A release before 00017 writes steps as rows; after it, such a write
// fails (its pod answers 503 and the exporter retries elsewhere) instead of
// storing a span a chunk holds twice.
func TestStepRowsRefusedAfterChunks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB, d migrations.Dialect) {
		ctx := context.Background()
		at := time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC).Format("2006-01-02T15:04:05.000000Z")
		if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO sessions (id, agent, first_at, last_at) VALUES ('s-1', 'support-bot', ?, ?)`),
			at, at); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO session_steps (session_id, span_id, agent, started_at, received_at)
			VALUES ('s-1', 'span-0001', 'support-bot', ?, ?)`), at, at); err == nil {
			t.Error("a step row was stored after migration 00017")
		}
	})
}
