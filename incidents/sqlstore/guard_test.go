package sqlstore_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents/guard"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/incidents/sqlstore"
)

func TestBreachesHappenOnce(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		b1 := guard.Breach{Agent: "support-bot", SLA: "tokens_per_session", Metric: "tokens_per_session", Session: "s1",
			Value: 210_000, Threshold: 200_000, Step: "span-37", StepN: 37, Action: "halt_session", At: t0}
		isNew, err := s.InsertBreach(ctx, &b1)
		if err != nil || !isNew || b1.ID == 0 {
			t.Fatalf("InsertBreach = %v, %v, ID %d", isNew, err, b1.ID)
		}
		again := b1
		again.ID, again.Value, again.At = 0, 300_000, t0.Add(time.Minute)
		if isNew, err := s.InsertBreach(ctx, &again); err != nil || isNew || again.ID != 0 {
			t.Fatalf("second breach of the same (agent, sla, session) = %v, %v, ID %d", isNew, err, again.ID)
		}
		b2 := guard.Breach{Agent: "support-bot", SLA: "loop", Metric: "loop", Session: "s1", Value: 5, Threshold: 5,
			Detail: "search.web", Step: "span-40", StepN: 40, Action: "alert", DryRun: true, At: t0.Add(2 * time.Minute)}
		b3 := guard.Breach{Agent: "sales-bot", SLA: "loop", Metric: "loop", Session: "s2", Value: 5, Threshold: 5,
			Step: "x", StepN: 2, Action: "alert", At: t0.Add(3 * time.Minute)}
		for _, b := range []*guard.Breach{&b2, &b3} {
			if _, err := s.InsertBreach(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		pending, err := s.PendingBreaches(ctx, 10)
		if err != nil || len(pending) != 3 || pending[0].ID != b1.ID {
			t.Fatalf("PendingBreaches = %+v, %v", pending, err)
		}
		if err := s.SetBreachOutcome(ctx, b1.ID, 4, "halt_session"); err != nil {
			t.Fatal(err)
		}
		b1.Outcome, b1.IncidentID = "halt_session", 4
		got, err := s.SessionBreaches(ctx, "support-bot", "s1")
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			got[i].At = got[i].At.UTC()
		}
		b1.Repeat, b2.Repeat = 1, 1 // a first breach reads back as repeat 1
		if want := []guard.Breach{b1, b2}; !reflect.DeepEqual(got, want) {
			t.Errorf("SessionBreaches =\n%+v\nwant\n%+v", got, want)
		}
		recent, err := s.FindBreaches(ctx, "support-bot", t0.Add(time.Minute), 0)
		if err != nil || len(recent) != 1 || recent[0].ID != b2.ID {
			t.Errorf("FindBreaches since = %+v, %v", recent, err)
		}
		all, err := s.FindBreaches(ctx, "", time.Time{}, 0)
		if err != nil || len(all) != 3 || all[0].ID != b3.ID {
			t.Errorf("FindBreaches all = %+v, %v", all, err)
		}
		// A ladder's repeat of the same session is a breach of its own.
		rep := again
		rep.Repeat = 2
		if isNew, err := s.InsertBreach(ctx, &rep); err != nil || !isNew || rep.ID == 0 {
			t.Fatalf("repeat 2 of (agent, sla, session) = %v, %v, ID %d", isNew, err, rep.ID)
		}
		got, err = s.SessionBreaches(ctx, "support-bot", "s1")
		if err != nil || len(got) != 3 || got[2].SLA != "tokens_per_session" || got[2].Repeat != 2 {
			t.Errorf("SessionBreaches with a repeat = %+v, %v", got, err)
		}
		if pending, _ := s.PendingBreaches(ctx, 10); len(pending) != 3 { // b2, b3 and the repeat
			t.Errorf("pending after an outcome = %+v", pending)
		}
	})
}

func TestStepsKeepArgsHashAndScores(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		steps := []sessions.Step{
			{Session: "g1", Agent: "support-bot", SpanID: "a", Start: t0, Kind: sessions.KindTool, Tool: "search.web",
				ArgsHash: "0123456789abcdef"},
			{Session: "g1", Agent: "support-bot", SpanID: "b", Start: t0.Add(time.Second), Kind: sessions.KindChat,
				Scores: map[string]float64{"eval.confidence": 0.42}},
		}
		if _, err := s.WriteSteps(ctx, steps); err != nil {
			t.Fatal(err)
		}
		rec, err := s.FindSession(ctx, "support-bot", "g1")
		if err != nil {
			t.Fatal(err)
		}
		if rec.Steps[0].ArgsHash != "0123456789abcdef" || rec.Steps[1].Scores["eval.confidence"] != 0.42 ||
			rec.Steps[0].Scores != nil {
			t.Errorf("steps read back = %+v", rec.Steps)
		}
	})
}
