package incidents_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/outbox"
)

func TestPagerAcknowledged(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert())
	at := incidentstest.Epoch.Add(3 * time.Minute)

	if err := env.Service.PagerAcknowledged(ctx, "reins-1", "alice@example.com", at); err != nil {
		t.Fatalf("PagerAcknowledged: %v", err)
	}
	if err := env.Service.PagerAcknowledged(ctx, "reins-1", "bob@example.com", at.Add(time.Minute)); err != nil {
		t.Fatalf("second PagerAcknowledged: %v", err)
	}
	inc := incidentstest.FindIncident(t, env, 1)
	if inc.AckedAt == nil || !inc.AckedAt.Equal(at) || inc.AckedBy != "alice@example.com" {
		t.Errorf("got acked %v by %q, want the first acknowledgement", inc.AckedAt, inc.AckedBy)
	}
	kinds := incidentstest.EventKinds(t, env, 1)
	if n := len(slices.DeleteFunc(kinds, func(k incidents.EventKind) bool { return k != incidents.EventAcknowledged })); n != 1 {
		t.Errorf("acknowledged events: got %d, want 1", n)
	}
	incidentstest.Drain(t, env, outbox.LaneChat)
	var told bool
	for _, c := range env.Chat.CallsTo("Post") {
		told = told || (c.Channel == "C001" && strings.Contains(c.Message.Title, "acknowledged"))
	}
	if !told {
		t.Error("the channel was not told of the acknowledgement")
	}

	err := env.Service.PagerAcknowledged(ctx, "someone-elses-key", "x", at)
	if incidents.ErrorCode(err) != incidents.ENOTFOUND {
		t.Errorf("foreign key: got %v, want ENOTFOUND", err)
	}
}

func TestPagerResolvedKeepsIncidentOpen(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert())
	if err := env.Service.PagerResolved(ctx, "reins-1", "bob@example.com", incidentstest.Epoch); err != nil {
		t.Fatalf("PagerResolved: %v", err)
	}
	if got := incidentstest.FindIncident(t, env, 1).Status; got != incidents.StatusOpen {
		t.Errorf("status: got %q, want open", got)
	}
	events, _ := env.Service.Timeline(ctx, 1)
	last := events[len(events)-1]
	if last.Kind != incidents.EventNote || !strings.Contains(last.Text, "bob@example.com") {
		t.Errorf("last event: got %+v, want a note naming who resolved", last)
	}
	incidentstest.Drain(t, env, outbox.LaneChat)
	var told bool
	for _, c := range env.Chat.CallsTo("Post") {
		told = told || strings.Contains(c.Message.Text, "/agent resolve")
	}
	if !told {
		t.Error("the channel was not told the incident stays open")
	}
}
