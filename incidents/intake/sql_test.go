package intake_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/sqlstore"
	"github.com/reins-oss/reins/migrations"
	"github.com/reins-oss/reins/migrations/dbtest"
)

// Concurrent intakes for one incident, while a worker records the incident's
// channel, lose nothing: every session lands and the channel stays.
func TestConcurrentIngestLosesNoUpdate(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB, d migrations.Dialect) {
		store := sqlstore.New(db, d)
		env := incidentstest.NewEnv(func(deps *incidents.Deps, c *incidents.Config) { deps.Store = store })
		incidentstest.Ingest(t, env, incidentstest.Alert(func(a *incidents.Alert) { a.Sessions = []string{"s-0"} }))

		const senders = 16
		var wg sync.WaitGroup
		for i := 1; i <= senders; i++ {
			wg.Go(func() {
				a := incidentstest.Alert(func(a *incidents.Alert) {
					a.Fingerprint = fmt.Sprintf("fp-%d", i)
					a.Sessions = []string{fmt.Sprintf("s-%d", i)}
				})
				if _, err := env.Intake.Ingest(ctx, []incidents.Alert{a}); err != nil {
					t.Errorf("ingest %d: %v", i, err)
				}
			})
		}
		wg.Go(func() {
			err := store.InTx(ctx, func(q incidents.Queries) error {
				inc, err := q.FindIncident(ctx, 1)
				if err != nil {
					return err
				}
				inc.SlackChannelID, inc.SlackChannelName = "C0INC1", "inc-1-support-bot"
				return q.UpdateIncident(ctx, inc)
			})
			if err != nil {
				t.Errorf("record channel: %v", err)
			}
		})
		wg.Wait()

		inc, err := store.FindIncident(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i <= senders; i++ {
			if s := fmt.Sprintf("s-%d", i); !slices.Contains(inc.Sessions, s) {
				t.Errorf("session %s lost; have %v", s, inc.Sessions)
			}
		}
		if inc.SlackChannelID != "C0INC1" {
			t.Errorf("channel lost: %q", inc.SlackChannelID)
		}
	})
}
