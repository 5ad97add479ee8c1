package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/reins-oss/reins/migrations"
	"github.com/reins-oss/reins/migrations/dbtest"
)

// A batch of marks whose statement committed and then failed (SQLite's
// INSERT … RETURNING cut short after its first step, a connection lost
// before the answer) leaves each call unsure whether its key is its own:
// none may be answered as a replay, which drops a request without a word.
// They fail instead, and their users are told to try again.
func TestMarksOfABatchCommittedThenFailedAreNotReplays(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB, d migrations.Dialect) {
		s := New(db, d)
		ctx := context.Background()
		if first, err := s.FirstRequest(ctx, "replayed", time.Now().Add(time.Minute)); !first || err != nil {
			t.Fatalf("FirstRequest = %v, %v", first, err)
		}
		committedThenFailed := func(ctx context.Context, calls []*markCall) error {
			if err := s.insertMarks(ctx, calls); err != nil || len(calls) == 1 {
				return err
			}
			return errors.New("connection reset after commit")
		}
		var batch []*markCall
		for i := range 4 {
			batch = append(batch, &markCall{ctx: ctx, key: fmt.Sprintf("once-%d", i), expires: time.Now().Add(time.Minute)})
		}
		batch = append(batch, &markCall{ctx: ctx, key: "replayed", expires: time.Now().Add(time.Minute)})
		writeMarksWith(batch, committedThenFailed)
		for _, c := range batch {
			if c.err == nil && !c.first {
				t.Errorf("mark %s after a batch that committed and failed: answered as a replay, want an error", c.key)
			}
		}
		// Alone and unshared, a replay is still a replay.
		if first, err := s.FirstRequest(ctx, "replayed", time.Now().Add(time.Minute)); first || err != nil {
			t.Fatalf("replay alone: FirstRequest = %v, %v; want false, nil", first, err)
		}
	})
}

// A batch's statement lives until the last of its callers' deadlines (an
// ack's refusal waits 2 s at most, a command's work 10 s), at most
// markBatchWait, whichever caller leads it.
func TestMarkBatchRunsUntilItsLastCallersDeadline(t *testing.T) {
	call := func(within time.Duration) *markCall {
		ctx, cancel := context.WithTimeout(context.Background(), within)
		t.Cleanup(cancel)
		return &markCall{ctx: ctx, key: fmt.Sprint(within)}
	}
	for _, tc := range []struct {
		name  string
		batch []*markCall
		want  time.Duration
	}{
		{"the leader's is the earliest", []*markCall{call(2 * time.Second), call(3 * time.Second)}, 3 * time.Second},
		{"the leader's is the latest", []*markCall{call(3 * time.Second), call(2 * time.Second)}, 3 * time.Second},
		{"beyond markBatchWait", []*markCall{call(2 * time.Second), call(10 * time.Second)}, markBatchWait},
		{"one without a deadline", []*markCall{call(2 * time.Second), {ctx: context.Background(), key: "none"}}, markBatchWait},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got time.Duration
			writeMarksWith(tc.batch, func(ctx context.Context, calls []*markCall) error {
				if len(calls) > 1 {
					d, _ := ctx.Deadline()
					got = time.Until(d)
				}
				return nil
			})
			if got > tc.want || got < tc.want-time.Second {
				t.Fatalf("the batch's statement may run %v, want %v", got, tc.want)
			}
		})
	}
}
