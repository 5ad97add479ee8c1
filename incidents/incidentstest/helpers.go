package incidentstest

import (
	"context"
	"testing"

	"github.com/reins-oss/reins/incidents"
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
