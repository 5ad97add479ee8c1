package main

import (
	"context"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/reins-oss/reins/incidents/incidentstest"
)

// Issue 25: idempotency keys are pruned by a scheduled job once they are a
// week old (incidents.IdempotencyKeep), on both stores; younger ones stay.
func TestScheduledJobPrunesIdempotencyKeys(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			clock := incidentstest.NewClock(time.Now().UTC())
			e := startTestMain(t, testOptions{Postgres: db == "postgres", Setup: func(m *Main) { m.Clock = clock }})
			ctx := context.Background()
			remember := func(key string) {
				t.Helper()
				if first, err := e.Main.Service.Remember(ctx, key); err != nil || !first {
					t.Fatalf("Remember(%s) = %v, %v; want a first sighting", key, first, err)
				}
			}
			remember("pagerduty:webhook:old")
			clock.Advance(6 * 24 * time.Hour)
			remember("slack:event:recent")
			clock.Advance(24*time.Hour + time.Minute)

			var job cron.Job
			for _, en := range e.Main.cron.Entries() {
				if s, ok := en.Schedule.(cron.ConstantDelaySchedule); ok && s.Delay == 6*time.Hour {
					job = en.Job
				}
			}
			if job == nil {
				t.Fatal("no job scheduled every 6h")
			}
			job.Run()

			var keys []string
			if err := e.Main.DB.SelectContext(ctx, &keys, `SELECT key FROM idempotency_keys ORDER BY key`); err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 || keys[0] != "slack:event:recent" {
				t.Fatalf("after the prune job the keys are %q, want only the 6-day-old one", keys)
			}
		})
	}
}
