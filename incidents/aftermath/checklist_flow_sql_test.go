package aftermath_test

import (
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/aftermath"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/incidents/sqlstore"
	"github.com/reins-oss/reins/migrations"
	"github.com/reins-oss/reins/migrations/dbtest"
)

// TestAftermathOnRealStores runs the checklist, a restart, the resolve, the
// postmortem and two nudging replicas on SQLite and PostgreSQL, where the
// in-memory store's serialised transactions cannot hide a lost update.
func TestAftermathOnRealStores(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB, d migrations.Dialect) {
		store := sqlstore.New(db, d)
		env := incidentstest.NewEnv(func(deps *incidents.Deps, c *incidents.Config) { deps.Store = store })
		svc := func() (*incidents.Service, *aftermath.Service, *aftermath.Reminders) {
			s := incidents.New(incidents.Deps{Store: store, Registry: env.Registry, Authority: env.Auth, Chat: env.Chat,
				Pager: env.Pager, Halter: env.Halter, Clock: env.Clock}, env.Config)
			return s, aftermath.New(s.Core), aftermath.NewReminders(s.Core)
		}
		incidentstest.Ingest(t, env, incidentstest.Alert(func(a *incidents.Alert) { a.Sessions = []string{"s-8812", "s-8813"} }))
		incidentstest.Drain(t, env, outbox.LaneChat)
		c := startChecklist(t, env, 1)
		if len(c.Items) != 14 {
			t.Fatalf("items: got %d, want 14", len(c.Items))
		}
		var wg sync.WaitGroup
		for i, it := range c.Items[:3] {
			actor := incidents.Actor{Kind: incidents.ActorSlack, ID: "U" + itoa(i)}
			wg.Go(func() {
				if _, err := env.Aftermath.AnswerChecklist(ctx, actor, 1, it.Key, incidents.ChoiceNoImpact, ""); err != nil {
					t.Errorf("AnswerChecklist(%s): %v", it.Key, err)
				}
			})
		}
		wg.Wait()
		incidentstest.Drain(t, env, outbox.LaneChat)

		env.Service, env.Aftermath, env.Reminders = svc() // a restart
		again := startChecklist(t, env, 1)
		if again.Answered() != 3 || again.Next().Key != c.Items[3].Key {
			t.Fatalf("after restart: %d answered, next %s; want 3 and %s", again.Answered(), again.Next().Key, c.Items[3].Key)
		}
		incidentstest.Drain(t, env, outbox.LaneChat)
		for key, n := range itemPosts(env) {
			if n != 1 {
				t.Errorf("item %s posted %d times, want once", key, n)
			}
		}

		env.Clock.Advance(time.Hour)
		_, _, other := svc()
		now := env.Clock.Now()
		counts := make([]int, 2)
		for i, s := range []*aftermath.Reminders{env.Reminders, other} {
			wg.Go(func() {
				n, err := s.NudgeStalledChecklists(ctx, now)
				if err != nil {
					t.Errorf("replica %d: %v", i, err)
				}
				counts[i] = n
			})
		}
		wg.Wait()
		if counts[0]+counts[1] != 1 {
			t.Errorf("replicas nudged %v, want one nudge in all", counts)
		}

		incidentstest.Resolve(t, env, 1, "rolled back")
		for _, q := range incidents.PostmortemQuestions() {
			answerPostmortem(t, env, 1, q.Key, "answer to "+q.Key)
		}
		incidentstest.Drain(t, env, outbox.LaneChat)
		pm, err := env.Aftermath.Postmortem(ctx, 1)
		if err != nil {
			t.Fatalf("Postmortem: %v", err)
		}
		if len(pm.Answers) != 6 || len(pm.BlastRadius) != 14 || pm.Times.Resolved == nil || pm.Links.SlackChannel == "" {
			t.Errorf("postmortem: %d answers, %d items, resolved %v, channel %q", len(pm.Answers), len(pm.BlastRadius),
				pm.Times.Resolved, pm.Links.SlackChannel)
		}
		checkMarkdown(t, aftermath.RenderMarkdown(pm))
		if n := len(env.Chat.CallsTo("UploadFile")); n != 1 {
			t.Errorf("uploads: got %d, want 1", n)
		}
		for key, n := range questionPosts(env) {
			if n != 1 {
				t.Errorf("question %s posted %d times, want once", key, n)
			}
		}
	})
}
