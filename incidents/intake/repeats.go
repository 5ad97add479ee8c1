package intake

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/reins-oss/reins/incidents"
)

// tryRepeats records, in one RecordRepeats before any call's intake runs,
// every alert of the calls that may be a pure repeat: firing, its agent
// spelt as the registry spells it, its incident open, grouping and last
// alerted within a step of it (so the full path still refreshes
// LastAlertAt once a step and a continuous alert never outlives the group
// window), and nothing in it to merge into the incident. In a storm that is
// nearly all alerts, and one statement for a batch costs the store a
// fraction of one per alert. Only the first alert of the
// batch for its agent and fingerprint is tried, whatever its status, so no
// earlier alert of the batch can have changed the row a tried one is
// compared with; alerts for other keys can only add to an incident, never
// make a pure repeat of it untrue. Recording the tried ones first therefore
// ends as recording each in its turn would; the alerts not recorded take
// the full path in their turn. An alert this process has not received
// before is not tried: it is new, or the first since a restart or since
// another replica took it, and the statement would find nothing to update. It returns, per call and alert, the incident
// the alert was recorded in as a pure repeat, or 0.
func (s *Service) tryRepeats(ctx context.Context, q incidents.AlertStore, calls []*ingestCall, now time.Time) ([][]int64, error) {
	tries := make([][]int64, len(calls))
	var reps []incidents.Repeat
	var at [][2]int // call and alert index of each of reps
	seen := map[[2]string]bool{}
	for ci, c := range calls {
		tries[ci] = make([]int64, len(c.alerts))
		for i := range c.alerts {
			a := &c.alerts[i] // the call's own copy (see ingestGrouped)
			_, name := agentOf(c.reg, a)
			normaliseAlert(a, now)
			key := [2]string{name, a.Fingerprint}
			if seen[key] {
				continue
			}
			seen[key] = true
			if a.Status != incidents.AlertFiring || a.Agent != name || !s.receipts.seenBefore(key) {
				continue
			}
			reps = append(reps, incidents.Repeat{Alert: a, FreshSince: freshSince(now, groupWindow(c.reg), a.ReceivedAt)})
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
		if ok[k] {
			tries[at[k][0]][at[k][1]] = r.Alert.IncidentID
		}
	}
	return tries, nil
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

// maxReceipts bounds receiptMemo: past it, the memo starts afresh, and each
// alert pays one full-path receipt before it is tried as a repeat again.
const maxReceipts = 1 << 16

// receiptMemo remembers the alerts (agent, fingerprint) this process has
// received.
type receiptMemo struct {
	mu   sync.Mutex
	seen map[[2]string]bool
}

// seenBefore says whether key was received before, and remembers it.
func (m *receiptMemo) seenBefore(key [2]string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen[key] {
		return true
	}
	if m.seen == nil || len(m.seen) >= maxReceipts {
		m.seen = map[[2]string]bool{}
	}
	m.seen[key] = true
	return false
}
