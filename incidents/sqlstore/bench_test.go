package sqlstore_test

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/incidents/sqlstore"
	"github.com/reins-oss/reins/migrations"
	"github.com/reins-oss/reins/migrations/dbtest"
)

// BenchmarkIngestShape measures the per-alert write pattern of ingest: open
// (or find) the incident, record the alert, append the timeline event and
// queue a side effect, in one transaction. "serial" is one sender, "32x" is
// 32 concurrent senders (an alert storm). The Baseline variants are a bare
// single-row insert per transaction, the floor to compare with.
//
//	REINS_TEST_POSTGRES_URL=… go test -run '^$' -bench IngestShape ./incidents/sqlstore/
func BenchmarkIngestShape(b *testing.B) {
	stores := []struct {
		name string
		open func(testing.TB) *sqlx.DB
		d    migrations.Dialect
	}{
		{"sqlite", dbtest.SQLite, migrations.SQLite},
		{"postgres", dbtest.Postgres, migrations.Postgres},
	}
	for _, st := range stores {
		for _, par := range []int{1, 32} {
			name := "serial"
			if par > 1 {
				name = fmt.Sprintf("%dx", par)
			}
			b.Run(st.name+"/"+name, func(b *testing.B) {
				s := sqlstore.New(st.open(b), st.d)
				var n atomic.Int64
				run(b, par, func() error { return ingestOne(s, n.Add(1)) })
			})
			b.Run(st.name+"/Baseline-"+name, func(b *testing.B) {
				db := st.open(b)
				s := sqlstore.New(db, st.d)
				var n atomic.Int64
				run(b, par, func() error {
					return s.InTx(ctx, func(q incidents.Queries) error {
						return q.AppendAudit(ctx, &incidents.AuditEntry{At: t0, Action: "bench", Agent: fmt.Sprint(n.Add(1))})
					})
				})
			})
		}
	}
}

// run calls op b.N times from par goroutines.
func run(b *testing.B, par int, op func() error) {
	b.ReportAllocs()
	b.ResetTimer()
	if par == 1 {
		for b.Loop() {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	// RunParallel starts parallelism × GOMAXPROCS goroutines.
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((par + procs - 1) / procs)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// ingestOne is what ingest writes for one alert: every alert of the storm
// joins the incident the first one opened, each with its own fingerprint
// (the heavier case: every alert is an insert, not an update).
func ingestOne(s *sqlstore.Store, n int64) error {
	return s.InTx(ctx, func(q incidents.Queries) error {
		inc := &incidents.Incident{Agent: "support-bot", Title: "storm", Severity: incidents.SeverityCritical,
			Source: "alertmanager", CreatedAt: t0}
		if _, err := q.OpenIncident(ctx, inc); err != nil {
			return err
		}
		a := &incidents.Alert{IncidentID: inc.ID, Source: "alertmanager", Fingerprint: fmt.Sprint(n),
			Status: incidents.AlertFiring, Title: "TokenSpike", ReceivedAt: t0, StartsAt: t0}
		if _, err := recordAlert(q, a); err != nil {
			return err
		}
		if err := q.AppendEvent(ctx, &incidents.Event{IncidentID: inc.ID, At: t0, Kind: incidents.EventAlertFired,
			Actor: incidents.System, Text: "TokenSpike fired"}); err != nil {
			return err
		}
		_, err := q.EnqueueOutbox(ctx, &outbox.Item{IncidentID: inc.ID, Lane: outbox.LaneChat,
			Kind: "update_summary", Key: fmt.Sprintf("summary:%d:%d", inc.ID, n), CreatedAt: t0})
		return err
	})
}

// BenchmarkFirstRequest marks distinct Slack request keys from 10 and 200
// concurrent callers, as slash-command acks do (issue 25: the ack path).
//
//	REINS_TEST_POSTGRES_URL=… go test -run '^$' -bench FirstRequest ./incidents/sqlstore/
func BenchmarkFirstRequest(b *testing.B) {
	for _, st := range []struct {
		name string
		open func(testing.TB) *sqlx.DB
		d    migrations.Dialect
	}{{"sqlite", dbtest.SQLite, migrations.SQLite}, {"postgres", dbtest.Postgres, migrations.Postgres}} {
		for _, par := range []int{10, 200} {
			b.Run(fmt.Sprintf("%s/c%d", st.name, par), func(b *testing.B) {
				s := sqlstore.New(st.open(b), st.d)
				var n atomic.Int64
				run(b, par, func() error {
					first, err := s.FirstRequest(ctx, fmt.Sprintf("slack:v0:%d", n.Add(1)), t0.Add(6*time.Minute))
					if err == nil && !first {
						err = fmt.Errorf("a new key was not first")
					}
					return err
				})
			})
		}
	}
}
