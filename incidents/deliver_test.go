package incidents_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/outbox"
)

func outboxItem(t *testing.T, env *incidentstest.Env, key string) outbox.Item {
	t.Helper()
	for _, it := range env.Store.OutboxItems() {
		if it.Key == key {
			return it
		}
	}
	t.Fatalf("no outbox item %q", key)
	return outbox.Item{}
}

func TestDeliverOpening(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert())
	incidentstest.Drain(t, env, outbox.LaneChat)
	incidentstest.Drain(t, env, outbox.LaneUrgent)

	wantMethods := []string{"CreateChannel", "PostSummary", "SetTopic", "Invite", "Bookmark", "Bookmark", "Post"}
	if got := env.Chat.Methods(); !slices.Equal(got, wantMethods) {
		t.Fatalf("Slack calls: got %v, want %v", got, wantMethods)
	}
	inc := incidentstest.FindIncident(t, env, 1)
	if inc.SlackChannelID != "C001" || inc.SlackChannelName != "inc-1-support-bot-token-spend-12x-baseline" {
		t.Errorf("channel: got %s %s", inc.SlackChannelID, inc.SlackChannelName)
	}
	if inc.SummaryTS == "" || inc.PagedAt == nil {
		t.Errorf("got SummaryTS %q PagedAt %v, want both set", inc.SummaryTS, inc.PagedAt)
	}

	sum := env.Chat.CallsTo("PostSummary")[0].Summary
	if sum.Agent == nil || sum.Team == nil || sum.Firing != 1 || sum.Latest == nil {
		t.Errorf("summary view: got %+v, want agent, team, one firing alert", sum)
	}
	wantSessions := []incidents.Link{{Text: "s-8812", URL: "https://langfuse.example.com/sessions/s-8812"}}
	if !slices.Equal(sum.Sessions, wantSessions) || !slices.Equal(sum.KillHolders, []string{"U01ALICE", "U02BOB"}) {
		t.Errorf("summary sessions %v holders %v", sum.Sessions, sum.KillHolders)
	}
	invite := env.Chat.CallsTo("Invite")[0].People
	if want := []string{"U01ALICE", "alice@example.com", "U02BOB", "S0ONCALL"}; !slices.Equal(invite, want) {
		t.Errorf("invited %v, want %v", invite, want)
	}
	announce := env.Chat.CallsTo("Post")[0].Message
	if announce.Channel != "support-ai" || !strings.Contains(announce.Title, "Incident #1 opened for support-bot") {
		t.Errorf("announcement: got %+v", announce)
	}

	pages := env.Pager.Pages()
	if len(pages) != 1 {
		t.Fatalf("pages: got %d, want 1", len(pages))
	}
	p := pages[0]
	if p.Action != "trigger" || p.RoutingKey != "rk-support-bot" || p.DedupKey != "reins-1" ||
		p.Summary != "[reins #1] support-bot: Token spend 12x baseline" || p.Severity != "critical" || p.Source != "reins" {
		t.Errorf("page: got %+v", p)
	}
	wantLinks := []string{"https://reins.example.com/incidents/1", "https://reins.example.com/incidents/1/slack",
		"https://langfuse.example.com/sessions/s-8812", "https://grafana.example.com/d/tok", "https://wiki.example.com/agents/support-bot"}
	var gotLinks []string
	for _, l := range p.Links {
		gotLinks = append(gotLinks, l.URL)
	}
	if !slices.Equal(gotLinks, wantLinks) {
		t.Errorf("page links: got %v, want %v", gotLinks, wantLinks)
	}
	want := []incidents.EventKind{incidents.EventIncidentOpened, incidents.EventAlertFired,
		incidents.EventChannelCreated, incidents.EventPaged}
	if got := incidentstest.EventKinds(t, env, 1); !slices.Equal(got, want) {
		t.Errorf("timeline: got %v, want %v", got, want)
	}
}

func TestDeliverPageDoesNotWaitForSlack(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert())
	incidentstest.Drain(t, env, outbox.LaneUrgent)
	pages := env.Pager.Pages()
	if len(pages) != 1 || len(env.Chat.Calls()) != 0 {
		t.Fatalf("got %d pages and %d Slack calls, want the page alone", len(pages), len(env.Chat.Calls()))
	}
	if _, ok := pages[0].Details["channel"]; ok {
		t.Errorf("page details name a channel before one exists: %v", pages[0].Details)
	}
}

func TestDeliverHonoursRetryAfter(t *testing.T) {
	env := incidentstest.NewEnv()
	calls := 0
	env.Chat.CreateChannelFunc = func(ctx context.Context, name string, private bool) (string, string, error) {
		calls++
		if calls == 1 {
			return "", "", &outbox.RetryAfterError{After: 90 * time.Second, Err: errors.New("ratelimited")}
		}
		return "C777", name, nil
	}
	incidentstest.Ingest(t, env, incidentstest.Alert())
	start := env.Clock.Now()
	incidentstest.Drain(t, env, outbox.LaneChat)

	it := outboxItem(t, env, "inc-1/create_channel")
	if it.Attempts != 1 || it.NextAttemptAt.Before(start.Add(90*time.Second)) {
		t.Fatalf("after a 429: attempts %d next %v, want 1 and >= %v", it.Attempts, it.NextAttemptAt, start.Add(90*time.Second))
	}
	env.Clock.Advance(89 * time.Second)
	incidentstest.Drain(t, env, outbox.LaneChat)
	if calls != 1 {
		t.Fatalf("CreateChannel called %d times before Retry-After passed, want 1", calls)
	}
	env.Clock.Set(it.NextAttemptAt)
	incidentstest.Drain(t, env, outbox.LaneChat)
	if got := incidentstest.FindIncident(t, env, 1).SlackChannelID; got != "C777" {
		t.Errorf("channel: got %q, want C777", got)
	}
}

func TestDeliverBuriesPermanentFailure(t *testing.T) {
	env := incidentstest.NewEnv()
	env.Pager.SendFunc = func(ctx context.Context, p incidents.Page) error {
		return outbox.Permanent(errors.New("invalid routing key"))
	}
	incidentstest.Ingest(t, env, incidentstest.Alert())
	incidentstest.Drain(t, env, outbox.LaneUrgent)

	it := outboxItem(t, env, "inc-1/page")
	if it.State != outbox.Dead || !strings.Contains(it.LastError, "invalid routing key") {
		t.Fatalf("page item: got state %q error %q, want dead", it.State, it.LastError)
	}
	if kinds := incidentstest.EventKinds(t, env, 1); !slices.Contains(kinds, incidents.EventPageFailed) {
		t.Errorf("timeline %v lacks page_failed", kinds)
	}
	incidentstest.Drain(t, env, outbox.LaneChat)
	var gov, inChannel bool
	for _, c := range env.Chat.CallsTo("Post") {
		gov = gov || (c.Channel == "agent-governance" && strings.Contains(c.Message.Title, "PagerDuty page"))
		inChannel = inChannel || (c.Channel == "C001" && strings.Contains(c.Message.Title, "may not have been paged"))
	}
	if !gov || !inChannel {
		t.Errorf("posts %+v: want the loss told in governance (%v) and the incident channel (%v)",
			env.Chat.CallsTo("Post"), gov, inChannel)
	}
}

func TestDeliverBuriesAfterAttempts(t *testing.T) {
	env := incidentstest.NewEnv(func(_ *incidents.Deps, c *incidents.Config) { c.DeliveryAttempts = 3 })
	env.Chat.SetTopicFunc = func(ctx context.Context, channelID, topic string) error { return errors.New("internal_error") }
	incidentstest.Ingest(t, env, incidentstest.Alert())
	for range 3 {
		incidentstest.Drain(t, env, outbox.LaneChat)
		env.Clock.Advance(10 * time.Minute)
	}
	it := outboxItem(t, env, "inc-1/set_topic")
	if it.State != outbox.Dead || it.Attempts != 3 {
		t.Fatalf("set_topic: got state %q after %d attempts, want dead after 3", it.State, it.Attempts)
	}
	if got := len(env.Chat.CallsTo("SetTopic")); got != 3 {
		t.Errorf("SetTopic calls: got %d, want 3", got)
	}
	if kinds := incidentstest.EventKinds(t, env, 1); !slices.Contains(kinds, incidents.EventDeliveryFailed) {
		t.Errorf("timeline %v lacks delivery_failed", kinds)
	}
	if got := outboxItem(t, env, "inc-1/invite").State; got != outbox.Done {
		t.Errorf("invite after the buried topic: got %q, want done", got)
	}
}

func TestDeliverNoRoutingKeyIsBuried(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert(func(a *incidents.Alert) { a.Agent = "orphan-agent" }))
	incidentstest.Drain(t, env, outbox.LaneUrgent)
	it := outboxItem(t, env, "inc-1/page")
	if it.State != outbox.Dead || !strings.Contains(it.LastError, "PAGERDUTY_ROUTING_KEY") {
		t.Errorf("page: got state %q error %q, want dead naming PAGERDUTY_ROUTING_KEY", it.State, it.LastError)
	}
	if got := len(env.Pager.Pages()); got != 0 {
		t.Errorf("pages sent: got %d, want 0", got)
	}
}

func TestDeliverAfterCrashDeliversOnce(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert())
	// A worker claims the page and dies before sending or completing it.
	claimed, err := env.Store.ClaimOutbox(ctx, outbox.LaneUrgent, env.Clock.Now(), 30*time.Second, 10)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("ClaimOutbox: got %d items, %v", len(claimed), err)
	}
	incidentstest.Drain(t, env, outbox.LaneUrgent)
	if got := len(env.Pager.Pages()); got != 0 {
		t.Fatalf("pages while the lease holds: got %d, want 0", got)
	}
	env.Clock.Advance(31 * time.Second)
	incidentstest.Drain(t, env, outbox.LaneUrgent)
	env.Clock.Advance(time.Hour)
	incidentstest.Drain(t, env, outbox.LaneUrgent)
	if got := len(env.Pager.Pages()); got != 1 {
		t.Errorf("pages after the lease expired: got %d, want 1", got)
	}
}

func TestDeliverSummaryUpdateIsDebounced(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert())
	incidentstest.Drain(t, env, outbox.LaneChat)
	for i := range 20 {
		incidentstest.Ingest(t, env, incidentstest.Alert(incidentstest.WithFingerprint("fp-"+string(rune('a'+i)))))
	}
	incidentstest.Drain(t, env, outbox.LaneChat)
	if got := len(env.Chat.CallsTo("PostSummary")); got != 1 {
		t.Fatalf("summary posts before the debounce window ends: got %d, want 1", got)
	}
	env.Clock.Advance(5 * time.Second)
	incidentstest.Drain(t, env, outbox.LaneChat)
	calls := env.Chat.CallsTo("PostSummary")
	if len(calls) != 2 {
		t.Fatalf("summary posts: got %d, want 2", len(calls))
	}
	last := calls[1]
	if last.UpdateTS == "" || last.Summary.Firing != 21 {
		t.Errorf("update: got ts %q firing %d, want an in-place update showing 21 alerts", last.UpdateTS, last.Summary.Firing)
	}
}

func TestRunDeliveryIsKicked(t *testing.T) {
	env := incidentstest.NewEnv(func(_ *incidents.Deps, c *incidents.Config) { c.DefaultRoutingKey = "rk-default" })
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		env.Service.Outbox().Run(rctx, outbox.LaneUrgent, 2)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()
	// Without a kick, a page waits for the next poll, about 450 ms after
	// each intake here; the best of three tolerates a loaded machine.
	best := time.Hour
	for i := range 3 {
		time.Sleep(50 * time.Millisecond) // let the workers go idle
		start := time.Now()
		incidentstest.Ingest(t, env, incidentstest.Alert(func(a *incidents.Alert) { a.Agent = []string{"support-bot", "billing-agent", "orphan-agent"}[i] }))
		for len(env.Pager.Pages()) <= i {
			if time.Since(start) > 2*time.Second {
				t.Fatalf("page %d not sent within 2 s", i+1)
			}
			time.Sleep(time.Millisecond)
		}
		best = min(best, time.Since(start))
	}
	if best > 250*time.Millisecond {
		t.Errorf("intake to page took at best %v, want well under the 500 ms poll interval", best)
	}
}
