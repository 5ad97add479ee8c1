package sqlstore_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/incidents/sqlstore"
	"github.com/reins-oss/reins/ownership"
)

func step(session string, n int, at time.Time, tool string) sessions.Step {
	st := sessions.Step{Session: session, Agent: "support-bot", SpanID: fmt.Sprintf("span-%04d", n),
		Start: at.Add(time.Duration(n) * time.Second), Duration: 100 * time.Millisecond, Kind: sessions.KindChat,
		Model: "gpt-4.1", InputTokens: 100, OutputTokens: 10}
	if tool != "" {
		st.Kind, st.Tool, st.Model, st.InputTokens, st.OutputTokens = sessions.KindTool, tool, "", 0, 0
	}
	return st
}

func registry() *ownership.Holder {
	return ownership.NewHolder(&ownership.Registry{
		Agents: map[string]*ownership.Agent{"support-bot": {Name: "support-bot",
			Sessions: ownership.SessionSettings{Retention: 7 * 24 * time.Hour, MaxSteps: 20}}},
		Pricing: map[string]ownership.Price{"gpt-4.1": {Input: 2, Output: 8}},
	})
}

func TestWriteStepsIdempotentTotals(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		at := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
		batch := []sessions.Step{step("s-1", 1, at, ""), step("s-1", 2, at, "salesforce.get"), step("s-1", 2, at, "salesforce.get")}
		if _, err := s.WriteSteps(ctx, batch); err != nil {
			t.Fatal(err)
		}
		got, err := s.WriteSteps(ctx, append(batch, step("s-1", 3, at, "")))
		if err != nil {
			t.Fatal(err)
		}
		want := sessions.Totals{Session: "s-1", Agent: "support-bot", Steps: 3, Stored: 3, ToolCalls: 1,
			InputTokens: 200, OutputTokens: 20, Unpriced: 2, First: at.Add(time.Second), Last: at.Add(3*time.Second + 100*time.Millisecond)}
		if len(got) != 1 || got[0] != want {
			t.Errorf("totals after a repeated batch:\n got %+v\nwant %+v", got, want)
		}
		rec, err := s.FindSession(ctx, "support-bot", "s-1")
		if err != nil || len(rec.Steps) != 3 || rec.Totals != want {
			t.Errorf("record: %+v, %v", rec, err)
		}
		if _, err := s.FindSession(ctx, "support-bot", "s-none"); err != sessions.ErrNotFound {
			t.Errorf("unknown session: %v, want ErrNotFound", err)
		}
	})
}

func TestStepCapKeepsEdgesAndToolCalls(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		svc := sessions.New(s, registry(), nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		at := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
		var steps []sessions.Step
		for n := 1; n <= 40; n++ {
			tool := ""
			if n%10 == 5 {
				tool = "salesforce.update"
			}
			steps = append(steps, step("s-big", n, at, tool))
		}
		if _, err := svc.Record(ctx, steps); err != nil {
			t.Fatal(err)
		}
		rec, err := s.FindSession(ctx, "support-bot", "s-big")
		if err != nil {
			t.Fatal(err)
		}
		if rec.Totals.Steps != 40 || rec.Totals.Stored != int64(len(rec.Steps)) || len(rec.Steps) > 20 {
			t.Fatalf("after the cap of 20: totals %d steps, %d stored, %d rows", rec.Totals.Steps, rec.Totals.Stored, len(rec.Steps))
		}
		tools := 0
		for _, st := range rec.Steps {
			if st.Tool != "" {
				tools++
			}
		}
		if tools != 4 || rec.Steps[0].SpanID != "span-0001" || rec.Steps[len(rec.Steps)-1].SpanID != "span-0040" {
			t.Errorf("kept %d tool calls (want 4), first %s, last %s", tools, rec.Steps[0].SpanID, rec.Steps[len(rec.Steps)-1].SpanID)
		}
	})
}

func TestRetentionKeepsSessionsAnIncidentNames(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		svc := sessions.New(s, registry(), nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		now := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
		old := now.Add(-8 * 24 * time.Hour)
		for _, st := range []sessions.Step{step("s-old", 1, old, ""), step("s-named", 1, old, ""), step("s-new", 1, now.Add(-time.Hour), "")} {
			if _, err := s.WriteSteps(ctx, []sessions.Step{st}); err != nil {
				t.Fatal(err)
			}
		}
		inc := open(t, s, "support-bot", "")
		inc.Sessions = []string{"s-named"}
		if err := s.UpdateIncident(ctx, inc); err != nil {
			t.Fatal(err)
		}
		n, err := svc.EnforceRetention(ctx, now)
		if err != nil || n != 1 {
			t.Fatalf("retention removed %d (%v), want 1", n, err)
		}
		for id, kept := range map[string]bool{"s-old": false, "s-named": true, "s-new": true} {
			_, err := s.FindSession(ctx, "support-bot", id)
			if (err == nil) != kept {
				t.Errorf("%s: kept = %v, want %v", id, err == nil, kept)
			}
		}
		if n, _ := svc.EnforceRetention(ctx, now); n != 0 {
			t.Errorf("second run removed %d, want 0", n)
		}
	})
}

func TestFindNotableTotalsAndAgentSessions(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		at := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
		failed := step("s-a", 3, at, "")
		failed.Error, failed.ErrorType = true, "RateLimited"
		for _, batch := range [][]sessions.Step{
			{step("s-a", 1, at, ""), step("s-a", 2, at, "salesforce.get"), failed},
			{step("s-b", 1, at.Add(time.Hour), "")},
		} {
			if _, err := s.WriteSteps(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		rec, err := s.FindNotable(ctx, "support-bot", "s-a")
		if err != nil || len(rec.Steps) != 2 || rec.Steps[0].Tool != "salesforce.get" || !rec.Steps[1].Error || rec.Totals.Steps != 3 {
			t.Errorf("notable steps of s-a: %+v, %v; want the tool call and the error, with totals of all 3", rec, err)
		}
		agents, err := s.SessionAgents(ctx, "s-a")
		if err != nil || !slices.Equal(agents, []string{"support-bot"}) {
			t.Errorf("agents of s-a: %v, %v; want support-bot", agents, err)
		}
		list, err := s.FindSessions(ctx, "support-bot", at.Add(30*time.Minute), 10)
		if err != nil || len(list) != 1 || list[0].Session != "s-b" {
			t.Errorf("sessions since: %+v, %v; want only s-b", list, err)
		}
	})
}

// Two agents using one session ID have two sessions: stored, counted, read,
// trimmed and deleted apart, even with the same span IDs.
func TestSessionsOfTwoAgentsWithOneID(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		at := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
		var batch []sessions.Step
		for _, agent := range []string{"alpha", "beta"} {
			for n := 1; n <= 2; n++ {
				st := step("victim-77", n, at, "")
				st.Agent, st.Received = agent, at.Add(time.Minute)
				if agent == "beta" {
					st.InputTokens = 1000
				}
				batch = append(batch, st)
			}
		}
		tots, err := s.WriteSteps(ctx, batch)
		if err != nil || len(tots) != 2 || tots[0].Agent != "alpha" || tots[0].InputTokens != 200 ||
			tots[1].Agent != "beta" || tots[1].InputTokens != 2000 {
			t.Fatalf("WriteSteps: %+v, %v; want alpha's 200 and beta's 2,000 tokens apart", tots, err)
		}
		if !tots[0].First.Equal(at.Add(time.Minute)) || !tots[0].Last.Equal(at.Add(time.Minute)) {
			t.Errorf("first/last %v/%v, want the arrival %v", tots[0].First, tots[0].Last, at.Add(time.Minute))
		}
		agents, err := s.SessionAgents(ctx, "victim-77")
		if err != nil || !slices.Equal(agents, []string{"alpha", "beta"}) {
			t.Errorf("SessionAgents = %v, %v", agents, err)
		}
		if err := s.DeleteSteps(ctx, "beta", "victim-77", []string{"span-0001"}); err != nil {
			t.Fatal(err)
		}
		a, _ := s.FindSession(ctx, "alpha", "victim-77")
		b, _ := s.FindSession(ctx, "beta", "victim-77")
		if len(a.Steps) != 2 || len(b.Steps) != 1 || b.Totals.Stored != 1 || a.Totals.Stored != 2 {
			t.Errorf("after trimming beta's: alpha %d steps (%d stored), beta %d (%d)", len(a.Steps), a.Totals.Stored,
				len(b.Steps), b.Totals.Stored)
		}
		if !a.Steps[0].Received.Equal(at.Add(time.Minute)) || !a.Steps[0].Start.Equal(at.Add(time.Second)) {
			t.Errorf("step times: received %v start %v", a.Steps[0].Received, a.Steps[0].Start)
		}
		n, err := s.DeleteSessions(ctx, "alpha", at.Add(time.Hour), nil)
		if err != nil || n != 1 {
			t.Fatalf("DeleteSessions(alpha) = %d, %v", n, err)
		}
		if _, err := s.FindSession(ctx, "beta", "victim-77"); err != nil {
			t.Errorf("beta's session went with alpha's: %v", err)
		}
	})
}

// TestWriteStepsRetryOfAFullBatch: an exporter's batch of 1,000 spans (one
// full INSERT) half of which were stored by an earlier request counts only
// the new half, numbered after the earlier ones; the steps handed in that
// were stored before are left as they were given.
func TestWriteStepsRetryOfAFullBatch(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
		batch := func(from int) []sessions.Step {
			out := make([]sessions.Step, 1000)
			for i := range out {
				out[i] = step("s-1", from+i, at, "")
			}
			return out
		}
		if _, err := s.WriteSteps(ctx, batch(0)); err != nil {
			t.Fatal(err)
		}
		second := batch(500)
		got, err := s.WriteSteps(ctx, second)
		if err != nil || len(got) != 1 || got[0].Steps != 1500 || got[0].Stored != 1500 || got[0].InputTokens != 150_000 {
			t.Fatalf("totals after an overlapping batch = %+v, %v: want 1,500 steps", got, err)
		}
		if second[0].N != 0 {
			t.Errorf("a step stored before was given number %d: it is not stored again", second[0].N)
		}
		if second[500].N <= 1000 || second[999].N-second[500].N != 499 {
			t.Errorf("new steps numbered %d…%d: want 500 numbers in order after the first batch's 1,000", second[500].N, second[999].N)
		}
	})
}
