package sqlstore_test

import (
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents/guard"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/incidents/sqlstore"
)

// Steps of a judged agent mark their session in the transaction that
// stores them; a judgement clears the mark up to the steps it judged, with
// its breaches in the same transaction.
func TestJudgementMarksAndClears(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		step := func(span string, judged bool) sessions.Step {
			return sessions.Step{Session: "s1", Agent: "support-bot", SpanID: span, Kind: "chat", Start: t0, Judged: judged}
		}
		if _, err := s.WriteSteps(ctx, []sessions.Step{step("a", false)}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Unjudged(ctx, time.Now().Add(time.Hour), 10); len(got) != 0 {
			t.Fatalf("an agent without SLAs marked: %+v", got)
		}
		if _, err := s.WriteSteps(ctx, []sessions.Step{step("b", true), step("c", true)}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Unjudged(ctx, time.Now().Add(time.Hour), 10)
		if err != nil || len(got) != 1 || got[0] != (guard.Judged{Agent: "support-bot", Session: "s1", Steps: 3}) {
			t.Fatalf("Unjudged = %+v, %v", got, err)
		}
		if got, _ := s.Unjudged(ctx, time.Now().Add(-time.Hour), 10); len(got) != 0 {
			t.Fatalf("a fresh mark is stale: %+v", got)
		}
		// A judgement of fewer steps than stored leaves the mark.
		b := guard.Breach{Agent: "support-bot", SLA: "steps_per_session", Metric: "steps_per_session", Session: "s1",
			Value: 3, Threshold: 2, Step: "c", StepN: 3, Action: "halt_session", At: t0}
		breaches := []guard.Breach{b}
		if err := s.RecordJudgement(ctx, breaches, []guard.Judged{{Agent: "support-bot", Session: "s1", Steps: 2}}); err != nil {
			t.Fatal(err)
		}
		if breaches[0].ID == 0 {
			t.Fatal("new breach without an ID")
		}
		if got, _ := s.Unjudged(ctx, time.Now().Add(time.Hour), 10); len(got) != 1 {
			t.Fatalf("mark cleared by a judgement of fewer steps: %+v", got)
		}
		again := []guard.Breach{b}
		if err := s.RecordJudgement(ctx, again, []guard.Judged{{Agent: "support-bot", Session: "s1", Steps: 3}}); err != nil {
			t.Fatal(err)
		}
		if again[0].ID != 0 {
			t.Errorf("a repeated breach got ID %d", again[0].ID)
		}
		if got, _ := s.Unjudged(ctx, time.Now().Add(time.Hour), 10); len(got) != 0 {
			t.Fatalf("mark left after the judgement: %+v", got)
		}
	})
}

// Waiting breaches are claimed under a lease in crossing order, handed back
// to wait, and left on a person's word.
func TestWaitingBreachesAreClaimedDeferredAndLeft(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		var list []guard.Breach
		for i, id := range []string{"s1", "s2", "s3"} {
			list = append(list, guard.Breach{Agent: "support-bot", SLA: "steps_per_session", Metric: "steps_per_session",
				Session: id, Value: 3, Threshold: 2, Step: "x", StepN: 3, Action: "halt_session", At: t0.Add(time.Duration(i) * time.Second)})
		}
		if err := s.RecordJudgement(ctx, list, nil); err != nil {
			t.Fatal(err)
		}
		got, err := s.ClaimBreaches(ctx, t0.Add(time.Minute), 20*time.Second, 2)
		if err != nil || len(got) != 2 || got[0].Session != "s1" || got[1].Session != "s2" {
			t.Fatalf("ClaimBreaches = %+v, %v", got, err)
		}
		if more, _ := s.ClaimBreaches(ctx, t0.Add(time.Minute), 20*time.Second, 10); len(more) != 1 || more[0].Session != "s3" {
			t.Fatalf("second claim = %+v, want only s3 (the others are leased)", more)
		}
		due := t0.Add(2 * time.Minute)
		if err := s.DeferBreach(ctx, got[1].ID, 9, due); err != nil {
			t.Fatal(err)
		}
		if early, _ := s.ClaimBreaches(ctx, t0.Add(time.Minute+30*time.Second), 20*time.Second, 10); len(early) != 2 ||
			early[0].Session != "s1" || early[1].Session != "s3" {
			t.Fatalf("claim before due = %+v, want s1 and s3 whose leases ran out, not s2", early)
		}
		if late, _ := s.ClaimBreaches(ctx, due, 20*time.Second, 10); len(late) != 3 || late[1].Session != "s2" || late[1].IncidentID != 9 {
			t.Fatalf("claim at due = %+v, want s1, s2 (incident 9), s3", late)
		}
		waiting, err := s.WaitingBreaches(ctx, "support-bot", 10)
		if err != nil || len(waiting) != 3 || !waiting[1].Due.Equal(due) {
			t.Fatalf("WaitingBreaches = %+v, %v", waiting, err)
		}
		if n, err := s.LeaveSession(ctx, "support-bot", "s2", "slack:U01ALICE"); err != nil || n != 1 {
			t.Fatalf("LeaveSession = %d, %v", n, err)
		}
		if err := s.SetBreachOutcome(ctx, waiting[0].ID, 9, "halt_session"); err != nil {
			t.Fatal(err)
		}
		waiting, _ = s.WaitingBreaches(ctx, "support-bot", 10)
		if len(waiting) != 1 || waiting[0].Session != "s3" {
			t.Fatalf("waiting after = %+v, want s3 only", waiting)
		}
		left, _ := s.SessionBreaches(ctx, "support-bot", "s2")
		if left[0].Outcome != guard.OutcomeLeft {
			t.Errorf("s2 = %+v, want left", left[0])
		}
	})
}
