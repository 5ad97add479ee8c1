package incidents_test

import (
	"strings"
	"testing"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/outbox"
)

// Acknowledging without Slack or PagerDuty's button: the timeline names who,
// the page is acknowledged in PagerDuty, and a second ack is a conflict.
func TestAcknowledge(t *testing.T) {
	env := incidentstest.NewEnv()
	inc := incidentstest.OpenIncident(t, env)
	incidentstest.Drain(t, env, outbox.LaneUrgent)
	pagesBefore := len(env.Pager.Pages())

	got, err := env.Service.Acknowledge(ctx, bob, inc.ID)
	if err != nil || got.AckedAt == nil || got.AckedBy == "" {
		t.Fatalf("Acknowledge: %+v, %v", got, err)
	}
	events, _ := env.Service.Timeline(ctx, inc.ID)
	if last := events[len(events)-1]; last.Kind != incidents.EventAcknowledged || !strings.Contains(last.Text, "Acknowledged by") {
		t.Errorf("last event: %s %q", last.Kind, last.Text)
	}
	incidentstest.Drain(t, env, outbox.LaneUrgent)
	pages := env.Pager.Pages()[pagesBefore:]
	if len(pages) != 1 || pages[0].Action != "acknowledge" || pages[0].DedupKey != "reins-1" {
		t.Errorf("PagerDuty: got %+v, want one acknowledge of reins-1", pages)
	}
	if _, err := env.Service.Acknowledge(ctx, bob, inc.ID); incidents.ErrorCode(err) != incidents.ECONFLICT {
		t.Errorf("second Acknowledge: %v, want ECONFLICT", err)
	}
	incidentstest.Resolve(t, env, inc.ID, "")
	if _, err := env.Service.Acknowledge(ctx, bob, 99); incidents.ErrorCode(err) != incidents.ENOTFOUND {
		t.Errorf("Acknowledge(99): %v, want ENOTFOUND", err)
	}
}
