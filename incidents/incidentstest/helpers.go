package incidentstest

import (
	"context"
	"testing"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
)

// The helpers below are shared by the tests of incidents and its use-case
// packages, which set up incidents the same way.

// Ingest ingests alerts through env's intake and fails the test on an error.
func Ingest(t testing.TB, env *Env, alerts ...incidents.Alert) incidents.IngestResult {
	t.Helper()
	res, err := env.Intake.Ingest(context.Background(), alerts)
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	return res
}

// EventKinds returns the kinds of incident id's timeline events, oldest first.
func EventKinds(t testing.TB, env *Env, id int64) []incidents.EventKind {
	t.Helper()
	events, err := env.Service.Timeline(context.Background(), id)
	if err != nil {
		t.Fatalf("Timeline(%d): %v", id, err)
	}
	var kinds []incidents.EventKind
	for _, e := range events {
		kinds = append(kinds, e.Kind)
	}
	return kinds
}

// OutboxKeys returns the keys of the outbox items of a kind ("" for all).
func OutboxKeys(env *Env, kind string) []string {
	var keys []string
	for _, it := range env.Store.OutboxItems() {
		if kind == "" || it.Kind == kind {
			keys = append(keys, it.Key)
		}
	}
	return keys
}

// FindIncident reads incident id and fails the test on an error.
func FindIncident(t testing.TB, env *Env, id int64) *incidents.Incident {
	t.Helper()
	inc, err := env.Service.FindIncident(context.Background(), id)
	if err != nil {
		t.Fatalf("FindIncident(%d): %v", id, err)
	}
	return inc
}

// WithFingerprint sets an alert's fingerprint (and a title naming it) and,
// when given, its sessions.
func WithFingerprint(fp string, sessions ...string) func(*incidents.Alert) {
	return func(a *incidents.Alert) {
		a.Fingerprint, a.Title = fp, "Alert "+fp
		if sessions != nil {
			a.Sessions = sessions
		}
	}
}

// Resolved makes an alert a recovery.
func Resolved(a *incidents.Alert) { a.Status = incidents.AlertResolved }

// Drain delivers a lane until a pass finishes nothing.
// Drain delivers everything due on lane; the chat lane includes the summary
// refreshes of outbox.LaneRefresh, delivered after it as the workers would.
func Drain(t testing.TB, env *Env, lane string) {
	t.Helper()
	lanes := []string{lane}
	if lane == outbox.LaneChat {
		lanes = append(lanes, outbox.LaneRefresh)
	}
	for range 100 {
		total := 0
		for _, l := range lanes {
			n, err := env.Service.Outbox().DeliverDue(context.Background(), l)
			if err != nil {
				t.Fatalf("DeliverDue(%s): %v", l, err)
			}
			total += n
		}
		if total == 0 {
			return
		}
	}
	t.Fatalf("DeliverDue(%s) never went idle", lane)
}

// OpenIncident ingests the example support-bot alert naming two sessions
// and delivers everything it queued, so the incident has its channel.
func OpenIncident(t testing.TB, env *Env) *incidents.Incident {
	t.Helper()
	Ingest(t, env, Alert(func(a *incidents.Alert) { a.Sessions = []string{"s-8812", "s-8813"} }))
	Drain(t, env, outbox.LaneChat)
	Drain(t, env, outbox.LaneUrgent)
	return FindIncident(t, env, 1)
}

// Resolve resolves incident id as U02BOB with note and fails the test on an error.
func Resolve(t testing.TB, env *Env, id int64, note string) *incidents.Incident {
	t.Helper()
	bob := incidents.Actor{Kind: incidents.ActorSlack, ID: "U02BOB"}
	inc, err := env.Aftermath.Resolve(context.Background(), bob, id, note)
	if err != nil {
		t.Fatalf("Resolve(%d): %v", id, err)
	}
	return inc
}

// CallsSince returns the Chat calls of one method made after the first n calls.
func CallsSince(env *Env, n int, method string) []ChatCall {
	var out []ChatCall
	for _, c := range env.Chat.Calls()[n:] {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Audit returns the actions of the audit log, newest first.
func Audit(t testing.TB, env *Env) []string {
	t.Helper()
	entries, err := env.Store.FindAudit(context.Background(), "", 0)
	if err != nil {
		t.Fatalf("FindAudit: %v", err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Action)
	}
	return out
}

// HaltCmd is a halt of support-bot by actor, changed by each mod in turn.
func HaltCmd(actor incidents.Actor, mods ...func(*incidents.HaltCommand)) incidents.HaltCommand {
	c := incidents.HaltCommand{Action: incidents.ActionHalt, Agent: "support-bot", Reason: "looping on refunds", Actor: actor}
	for _, m := range mods {
		m(&c)
	}
	return c
}
