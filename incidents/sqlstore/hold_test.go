package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/incidents/sqlstore"
)

// TestHoldStore: bindings keep their first session, held spans are bounded,
// claimed once, joined when bound later, expired by age; refusals add up
// per minute.
func TestHoldStore(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		now := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
		held := func(trace, span string) sessions.Step {
			st := step("", 1, now, "get_order")
			st.TraceID, st.SpanID = trace, span
			return st
		}
		if err := s.BindTraces(ctx, []sessions.TraceBinding{{Agent: "support-bot", TraceID: "t1", Session: "s-1"}}, now); err != nil {
			t.Fatal(err)
		}
		if err := s.BindTraces(ctx, []sessions.TraceBinding{{Agent: "support-bot", TraceID: "t1", Session: "s-other"}}, now); err != nil {
			t.Fatal(err)
		}
		got, err := s.TraceSessions(ctx, []sessions.TraceKey{{Agent: "support-bot", TraceID: "t1"}, {Agent: "support-bot", TraceID: "t2"},
			{Agent: "other-bot", TraceID: "t1"}})
		if err != nil || len(got) != 1 || got[sessions.TraceKey{Agent: "support-bot", TraceID: "t1"}] != "s-1" {
			t.Fatalf("TraceSessions = %v, %v: want only t1 → s-1", got, err)
		}
		// Three fit of four: the bound is 3 spans.
		n, err := s.HoldSteps(ctx, []sessions.Step{held("t2", "a"), held("t2", "b"), held("t3", "c"), held("t3", "d")}, now, 3, 1<<20)
		if err != nil || n != 3 {
			t.Fatalf("HoldSteps = %d, %v: want 3 kept", n, err)
		}
		if spans, bytes, err := s.HeldStats(ctx); err != nil || spans != 3 || bytes <= 0 {
			t.Fatalf("HeldStats = %d, %d, %v", spans, bytes, err)
		}
		// A byte bound of 1 keeps nothing more.
		if n, _ := s.HoldSteps(ctx, []sessions.Step{held("t4", "e")}, now, 100, 1); n != 0 {
			t.Fatalf("held %d over the byte bound", n)
		}
		claimed, err := s.ClaimHeld(ctx, []sessions.TraceKey{{Agent: "support-bot", TraceID: "t2"}})
		if err != nil || len(claimed) != 2 || claimed[0].Tool != "get_order" || claimed[0].Session != "" {
			t.Fatalf("ClaimHeld = %+v, %v", claimed, err)
		}
		if again, _ := s.ClaimHeld(ctx, []sessions.TraceKey{{Agent: "support-bot", TraceID: "t2"}}); len(again) != 0 {
			t.Fatalf("claimed twice: %+v", again)
		}
		// t3 is bound later: the sweep joins it.
		if err := s.BindTraces(ctx, []sessions.TraceBinding{{Agent: "support-bot", TraceID: "t3", Session: "s-3"}}, now); err != nil {
			t.Fatal(err)
		}
		bound, err := s.ClaimBound(ctx, 100)
		if err != nil || len(bound) != 1 || bound[0].Session != "s-3" || bound[0].SpanID != "c" {
			t.Fatalf("ClaimBound = %+v, %v", bound, err)
		}
		if n, _ := s.HoldSteps(ctx, []sessions.Step{held("t5", "f")}, now, 10, 1<<20); n != 1 {
			t.Fatal("not held")
		}
		// An exporter's batch: more rows than one INSERT takes.
		var big []sessions.Step
		for i := range 450 {
			big = append(big, held("t6", fmt.Sprintf("big-%03d", i)))
		}
		if n, err := s.HoldSteps(ctx, big, now, 10_000, 1<<30); err != nil || n != 450 {
			t.Fatalf("HoldSteps(450) = %d, %v", n, err)
		}
		if got, err := s.ClaimHeld(ctx, []sessions.TraceKey{{Agent: "support-bot", TraceID: "t6"}}); err != nil || len(got) != 450 {
			t.Fatalf("ClaimHeld(450) = %d, %v", len(got), err)
		}
		if old, _ := s.ExpireHeld(ctx, now, 100); len(old) != 0 {
			t.Fatalf("expired a span held at the cut-off: %+v", old)
		}
		old, err := s.ExpireHeld(ctx, now.Add(time.Second), 100)
		if err != nil || len(old) != 1 || old[0].SpanID != "f" {
			t.Fatalf("ExpireHeld = %+v, %v", old, err)
		}
		if err := s.ForgetTraces(ctx, now.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.TraceSessions(ctx, []sessions.TraceKey{{Agent: "support-bot", TraceID: "t1"}}); len(got) != 0 {
			t.Fatalf("binding kept after ForgetTraces: %v", got)
		}
		rs := []sessions.Refusal{{At: now, Reason: sessions.RefusedUnknownAgent, Agent: "mystery-bot", Session: "s-9", Spans: 3},
			{At: now.Add(10 * time.Second), Reason: sessions.RefusedUnknownAgent, Agent: "mystery-bot", Session: "s-9", Spans: 4},
			{At: now, Reason: sessions.RefusedNoSession, Agent: "support-bot", Spans: 2}}
		if err := s.AddRefusals(ctx, rs); err != nil {
			t.Fatal(err)
		}
		all, err := s.FindRefusals(ctx, now.Add(-time.Hour), "", 10)
		if err != nil || len(all) != 2 {
			t.Fatalf("FindRefusals = %+v, %v", all, err)
		}
		one, err := s.FindRefusals(ctx, now.Add(-time.Hour), "s-9", 10)
		if err != nil || len(one) != 1 || one[0].Spans != 7 || one[0].Agent != "mystery-bot" || !one[0].At.Equal(now) {
			t.Fatalf("FindRefusals(s-9) = %+v, %v: want 7 spans in one minute", one, err)
		}
		if err := s.DeleteRefusals(ctx, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if left, _ := s.FindRefusals(ctx, now.Add(-time.Hour), "", 10); len(left) != 0 {
			t.Fatalf("refusals kept: %+v", left)
		}
	})
}

// TestHeldSpansLeaveTheHoldWithTheirWrite: held spans are read without being
// taken (PeekHeld) and leave the hold only in the transaction that stores
// them as steps, so a write that fails leaves them held; an exporter's
// retry of a held request holds nothing twice; a span stored by two
// requests that read the same held chunk counts once.
func TestHeldSpansLeaveTheHoldWithTheirWrite(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
		var batch []sessions.Step
		for i := range 300 {
			st := step("", i, now, "")
			st.TraceID = "t1"
			if i%3 == 0 {
				st.TraceID = "t2"
			}
			batch = append(batch, st)
		}
		for range 2 { // the exporter retries the same request
			if n, err := s.HoldSteps(ctx, batch, now, 10_000, 1<<30); err != nil || n != 300 {
				t.Fatalf("HoldSteps = %d, %v: want 300 kept", n, err)
			}
		}
		if spans, _, err := s.HeldStats(ctx); err != nil || spans != 300 {
			t.Fatalf("HeldStats = %d spans, %v: want 300 (a retried request holds nothing twice)", spans, err)
		}
		t1 := []sessions.TraceKey{{Agent: "support-bot", TraceID: "t1"}}
		peeked, err := s.PeekHeld(ctx, t1)
		if err != nil || len(peeked) != 200 || peeked[0].HeldIn == "" || peeked[0].Session != "" {
			t.Fatalf("PeekHeld = %d steps (first %+v), %v: want t1's 200, naming their chunk", len(peeked), peeked[0], err)
		}
		for i := range peeked {
			peeked[i].Session = "s-1"
		}
		// A write that fails takes nothing out of the hold.
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.WriteSteps(cancelled, peeked); err == nil {
			t.Fatal("WriteSteps with a cancelled context succeeded")
		}
		if again, _ := s.PeekHeld(ctx, t1); len(again) != 200 {
			t.Fatalf("%d of t1's 200 spans held after a failed write", len(again))
		}
		// Two requests read the chunk and both store it: stored and counted once.
		second := append([]sessions.Step(nil), peeked...)
		totals, err := s.WriteSteps(ctx, peeked)
		if err != nil || len(totals) != 1 || totals[0].Steps != 200 {
			t.Fatalf("WriteSteps = %+v, %v: want one session of 200 steps", totals, err)
		}
		if _, err := s.WriteSteps(ctx, second); err != nil {
			t.Fatal(err)
		}
		rec, err := s.FindSession(ctx, "support-bot", "s-1")
		if err != nil || rec.Totals.Steps != 200 || len(rec.Steps) != 200 {
			t.Fatalf("session s-1 = %d steps (%d stored), %v: want 200", rec.Totals.Steps, len(rec.Steps), err)
		}
		if left, _ := s.PeekHeld(ctx, t1); len(left) != 0 {
			t.Fatalf("%d of t1's spans still held after they were stored", len(left))
		}
		if spans, _, err := s.HeldStats(ctx); err != nil || spans != 100 {
			t.Fatalf("HeldStats = %d spans, %v: want t2's 100 left", spans, err)
		}
	})
}
