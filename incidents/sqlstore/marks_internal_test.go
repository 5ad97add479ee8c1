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
