package incidents

import (
	"context"
	"fmt"
	"time"
)

// repeatTry is what a batch's RecordRepeats did with one alert.
type repeatTry struct {
	tried    bool  // it was in the statement, so the one-alert fast path is not worth a try
	incident int64 // recorded as a pure repeat in this incident; 0 when not
}

// tryRepeats records, in one RecordRepeats before any call's intake runs,
// every alert of the calls that may be a pure repeat (see intake.repeat):
// in a storm that is nearly all of them, and one statement for a batch
// costs the store a fraction of one per alert. Only the first alert of the
// batch for its agent and fingerprint is tried, whatever its status, so no
// earlier alert of the batch can have changed the row a tried one is
// compared with; alerts for other keys can only add to an incident, never
// make a pure repeat of it untrue. Recording the tried ones first therefore
// ends as recording each in its turn would. It returns, per call and alert,
// what happened.
func (s *Service) tryRepeats(ctx context.Context, q Queries, calls []*ingestCall, now time.Time) ([][]repeatTry, error) {
	tries := make([][]repeatTry, len(calls))
	var reps []Repeat
	var at [][2]int // call and alert index of each of reps
	seen := map[[2]string]bool{}
	for ci, c := range calls {
		tries[ci] = make([]repeatTry, len(c.alerts))
		for i := range c.alerts {
			a := &c.alerts[i] // the call's own copy (see ingestGrouped)
			_, name := agentOf(c.reg, a.Agent)
			normaliseAlert(a, now)
			key := [2]string{name, a.Fingerprint}
			if seen[key] {
				continue
			}
			seen[key] = true
			if a.Status != AlertFiring || a.Agent != name {
				continue
			}
			reps = append(reps, Repeat{Alert: a, FreshSince: freshSince(now, groupWindow(c.reg), a.ReceivedAt)})
			at = append(at, [2]int{ci, i})
		}
	}
	if len(reps) == 0 {
		return tries, nil
	}
	ok, err := q.RecordRepeats(ctx, reps)
	if err != nil {
		return nil, fmt.Errorf("record %d possible repeats: %w", len(reps), err)
	}
	for k, r := range reps {
		t := &tries[at[k][0]][at[k][1]]
		t.tried = true
		if ok[k] {
			t.incident = r.Alert.IncidentID
		}
	}
	return tries, nil
}

// repeat records a pure repeat, the bulk of a storm, in one statement
// instead of loading the incident and upserting the alert: it would add no
// event, no outbox row and nothing to the incident. It applies only while
// the incident's LastAlertAt is within a step of the alert, so the full
// path still refreshes LastAlertAt once a step and a continuous alert never
// outlives the group window. It stays out of incidents this call already
// holds, whose pending changes live in this call's copy until flush, and of
// alerts whose agent is spelt differently from the incident's.
func (in *intake) repeat(ctx context.Context, name string, a *Alert) (bool, error) {
	if _, held := in.open[name]; held || a.Agent != name {
		return false, nil
	}
	ok, err := in.q.RecordRepeats(ctx, []Repeat{{Alert: a, FreshSince: freshSince(in.now, in.window(), a.ReceivedAt)}})
	if err != nil {
		return false, fmt.Errorf("record repeat: %w", err)
	} else if !ok[0] {
		return false, nil
	}
	in.repeated(a.IncidentID, a.Fingerprint)
	return true, nil
}

// repeated counts a pure repeat recorded in incident id.
func (in *intake) repeated(id int64, fingerprint string) {
	in.remember(id, fingerprint)
	in.track(id)
	in.res.Repeated++
}

// freshSince is the oldest LastAlertAt an incident may have for an alert
// received at received to skip it as a pure repeat: within the group window
// of now, and within a step of the alert.
func freshSince(now time.Time, window time.Duration, received time.Time) time.Time {
	since := now.Add(-window)
	if step := received.Add(-lastAlertStep); step.After(since) {
		since = step
	}
	return since
}
