package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/bot"
	"github.com/reins-oss/reins/bot/slackfake"
)

// outageFailures is how Slack failed in the outage this test replays: 5xx
// from its edge and 429 with Retry-After, in turn.
var outageFailures = []slackfake.Failure{
	{Status: http.StatusInternalServerError},
	{Status: http.StatusTooManyRequests, RetryAfter: 2},
	{Status: http.StatusBadGateway},
	{Status: http.StatusTooManyRequests, RetryAfter: 2},
	{Status: http.StatusServiceUnavailable},
}

// slackOutageLength is the outage the test replays: 60 s (issue 30), or
// REINS_TEST_SLACK_OUTAGE (a Go duration, e.g. 10m for the ten minutes of
// issue 28; CI's 12-minute budget for the package does not allow that).
func slackOutageLength(t *testing.T) time.Duration {
	v := os.Getenv("REINS_TEST_SLACK_OUTAGE")
	if v == "" {
		return time.Minute
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 20*time.Second {
		t.Fatalf("REINS_TEST_SLACK_OUTAGE=%q: want a duration of at least 20s", v)
	}
	return d
}

// stormBody is one Alertmanager notification with n firing alerts of agent,
// each its own alert (name and session), numbered from first.
func stormBody(t *testing.T, agent string, first, n int) []byte {
	t.Helper()
	alerts := make([]map[string]any, 0, n)
	for i := first; i < first+n; i++ {
		alerts = append(alerts, map[string]any{
			"status": "firing",
			"labels": map[string]string{"alertname": fmt.Sprintf("Storm%d", i), "agent": agent, "severity": "warning",
				"session_id": fmt.Sprintf("s-storm-%d", i)},
			"annotations": map[string]string{"summary": fmt.Sprintf("storm alert %d on %s", i, agent)},
			"startsAt":    time.Now().UTC().Format(time.RFC3339),
			"endsAt":      "0001-01-01T00:00:00Z",
		})
	}
	b, err := json.Marshal(map[string]any{"version": "4", "status": "firing", "receiver": "reins",
		"groupKey": "{}:{agent=\"" + agent + "\"}", "alerts": alerts})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// memory is the heap in use after a GC and the process's resident set.
func memory() (heap, rss uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				rss = kb << 10
			}
		}
	}
	return ms.HeapAlloc, rss
}

// Slack fails every call (5xx and 429 with Retry-After, in turn) for a
// minute while an alert opens a new incident, an alert storm arrives, the
// agent is killed over the API, another agent is killed, a guard breach
// halts a session, and a responder answers a checklist item. Pages, halts
// and kill flags go out at once; reins probes Slack at a steady rate, says
// so in /readyz?verbose=1, doctor and /metrics; once Slack answers, the
// new channel exists within 5 s and everything that waited is delivered
// within 15 s, once, in order per channel, with memory back where it was.
// Issues 30 and 28 (item 4); REINS_TEST_SLACK_OUTAGE=10m replays ten
// minutes.
func TestSlackOutageCatchUp(t *testing.T) {
	outage := slackOutageLength(t)
	for _, store := range []struct {
		name string
		pg   bool
	}{{"SQLite", false}, {"PostgreSQL", true}} {
		t.Run(store.name, func(t *testing.T) {
			t.Parallel()
			slackOutage(t, store.pg, outage)
		})
	}
}

func slackOutage(t *testing.T, pg bool, outage time.Duration) {
	e := guardEnv(t, pg, `      - metric: tokens_per_session
        max: 200000
        on_breach: halt_session
`)
	ctx := context.Background()

	// Before the outage: incident 1 with its channel and the first
	// checklist item.
	e.webhook("alertmanager", fixture(t, "alertmanager/firing.json"))
	e.eventually("incident 1's channel and summary", func() bool {
		chs := incidentChannels(e.Slack)
		return len(chs) == 1 && len(e.Slack.Messages(chs[0].ID)) > 0
	})
	ch1 := incidentChannels(e.Slack)[0].ID
	e.slash(alice, ch1, "checklist")
	e.eventually("the first checklist item", func() bool { return len(threadItems(e.Slack, ch1)) == 1 })
	e.eventually("incident 1's outbox drained", func() bool {
		return e.metric(`reins_outbox_pending{lane="chat"}`) == 0 && e.metric(`reins_outbox_pending{lane="refresh"}`) == 0
	})
	heap0, rss0 := memory()

	start := time.Now()
	end := e.Slack.Outage(outage, outageFailures...)
	notDelayed := func(what string, cond func() bool) {
		t.Helper()
		began := time.Now()
		e.eventuallyWithin(5*time.Second, what+" during the Slack outage", cond)
		if took := time.Since(began); took > 2*time.Second {
			t.Errorf("%s took %v during the Slack outage, want at most 2 s", what, took)
		}
	}

	// A new agent's alert: its page goes at once.
	flagAlert := strings.NewReplacer("support-bot", "flag-bot", "3f6a9c2d1b7e4a05", "f1a9000000000001",
		"8c1d2e3f4a5b6c7d", "f1a9000000000002").Replace(string(fixture(t, "alertmanager/firing.json")))
	if status, body := e.webhook("alertmanager", []byte(flagAlert)); status != http.StatusOK {
		t.Fatalf("flag-bot alert: %d %s", status, body)
	}
	notDelayed("incident 2's page", func() bool { return e.PD.Triggers("reins-2") == 1 })

	// A kill over the API: the agent's webhook gets it at once.
	if status, body := e.api(http.MethodPost, "/agents/support-bot/halt",
		map[string]any{"sessions": []string{"s-8812"}, "reason": "looping on refunds", "actor": "ops-script"}); status != http.StatusOK {
		t.Fatalf("halt support-bot: %d %s", status, body)
	}
	notDelayed("the halt request for s-8812", func() bool { return len(haltsOf(e.Halt, "s-8812")) == 1 })

	// A checklist answer: Slack delivers clicks even when its Web API fails.
	item := threadItems(e.Slack, ch1)[0]
	if status, body := e.interact(click(e, alice, ch1, bot.ActionChecklistNoImpact,
		buttonValue(item.Blocks, bot.ActionChecklistNoImpact))); status != http.StatusOK {
		t.Fatalf("checklist answer: %d %s", status, body)
	}

	// An alert storm: support-bot's grows incident 1, unknown agents open
	// an unrouted incident, paged at once.
	for i := range 10 {
		e.webhook("alertmanager", stormBody(t, "support-bot", i*20, 20))
	}
	unknown := make([]string, 50)
	for i := range unknown {
		unknown[i] = fmt.Sprintf("storm-agent-%d", i)
	}
	e.webhook("alertmanager", alertmanagerBody(t, unknown...))
	notDelayed("the unrouted incident's page", func() bool { n, _ := e.triggers(); return n == 3 })

	// A second kill, of the agent polling its kill flag.
	if status, body := e.api(http.MethodPost, "/agents/flag-bot/halt",
		map[string]any{"reason": "storm", "actor": "ops-script"}); status != http.StatusOK {
		t.Fatalf("halt flag-bot: %d %s", status, body)
	}
	notDelayed("flag-bot's kill flag", func() bool {
		_, body := e.do(http.MethodGet, "/api/v1/agents/flag-bot/halted", nil, nil)
		return strings.Contains(string(body), `"halted":true`)
	})

	// A guard breach: the crossing session is halted at once.
	run := newAgentRun(t, e, "s-tok")
	for range 37 {
		run.chat(5_500)
	}
	notDelayed("the guard's halt of s-tok", func() bool { return len(haltsOf(e.Halt, "s-tok")) == 1 })
	t.Logf("all events sent %v into the outage", time.Since(start).Round(time.Millisecond))

	// During the outage: the readiness line, doctor and the metrics say so.
	time.Sleep(min(10*time.Second, time.Until(end)/2))
	line := readyzDegraded(t, e)["slack delivery"]
	if !strings.Contains(line, "Slack unreachable since ") || !strings.Contains(line, " deliveries waiting") {
		t.Errorf("/readyz?verbose=1 during the outage: no slack delivery line saying since when and how many wait: %q", line)
	}
	t.Logf("/readyz?verbose=1: %s", line)
	code, out, _ := cli(t, map[string]string{"REINS_DATABASE_URL": e.DBURL, "REINS_CONFIG": e.env["REINS_CONFIG"]}, "doctor")
	if code != 1 || !strings.Contains(out, "Slack unreachable since ") {
		t.Errorf("doctor during the outage: exit %d, want 1 with the Slack line:\n%s", code, out)
	}
	waiting := e.metric(`reins_outbox_pending{lane="chat"}`) + e.metric(`reins_outbox_pending{lane="refresh"}`)
	if waiting == 0 || e.metric(`reins_delivery_destination_unreachable{destination="slack"}`) != 1 {
		t.Errorf("/metrics during the outage: %v Slack items pending, unreachable %v; want the backlog and 1",
			waiting, e.metric(`reins_delivery_destination_unreachable{destination="slack"}`))
	}
	t.Logf("/metrics during the outage: %v Slack deliveries pending", waiting)

	time.Sleep(time.Until(end))
	heapOut, rssOut := memory()

	// Slack probed at a steady rate, not per item with ever longer waits.
	// Delivery's calls are counted; the kill-authority look-ups a summary
	// makes on the way (cached, answered from the last known answer while
	// Slack fails) are listed apart.
	var failed []time.Time
	lookups := 0
	byMethod := map[string]int{}
	for _, c := range e.Slack.Calls("") {
		if c.Error == "http_500" || c.Error == "http_502" || c.Error == "http_503" || c.Error == "ratelimited" {
			byMethod[c.Method]++
			if strings.HasPrefix(c.Method, "users.") || strings.HasPrefix(c.Method, "usergroups.") {
				lookups++
				continue
			}
			failed = append(failed, c.At)
		}
	}
	t.Logf("failed Slack calls by method: %v", byMethod)
	gap, last := time.Duration(0), start
	for _, at := range append(failed, end) {
		gap, last = max(gap, at.Sub(last)), at
	}
	t.Logf("Slack calls during the %v outage: %d by delivery (longest gap %v), %d kill-authority look-ups",
		outage, len(failed), gap.Round(time.Millisecond), lookups)
	if gap > 6*time.Second {
		t.Errorf("longest gap between Slack calls in the outage %v, want a probe at least every 6 s", gap)
	}
	if limit := int(outage/(2*time.Second)) + 30; len(failed) > limit {
		t.Errorf("%d Slack calls in %v of outage, want at most %d (one probe at a time, every 3 s or Retry-After)", len(failed), outage, limit)
	}

	// Slack is back: the new channel within 5 s, everything within 15 s.
	e.eventuallyWithin(time.Until(end.Add(5*time.Second)), "incident 2's channel within 5 s of Slack's return", func() bool {
		for _, c := range incidentChannels(e.Slack) {
			if strings.HasPrefix(c.Name, "inc-2-") {
				return true
			}
		}
		return false
	})
	t.Logf("incident 2's channel %v after Slack's return", time.Since(end).Round(time.Millisecond))
	e.eventuallyWithin(time.Until(end.Add(15*time.Second)), "every Slack delivery within 15 s of Slack's return", func() bool {
		return e.metric(`reins_outbox_pending{lane="chat"}`) == 0 && e.metric(`reins_outbox_pending{lane="refresh"}`) == 0
	})
	t.Logf("every Slack delivery done %v after Slack's return", time.Since(end).Round(time.Millisecond))

	// What waited is there: the halt notices, the next checklist item, the
	// new incidents' summaries.
	has := func(channel, text string) int {
		for i, m := range e.Slack.Messages(channel) {
			if strings.Contains(m.Text+string(m.Blocks), text) {
				return i
			}
		}
		return -1
	}
	halted, next := has(ch1, "s-8812"), -1
	if items := threadItems(e.Slack, ch1); len(items) == 2 {
		for i, m := range e.Slack.Messages(ch1) {
			if m.TS == items[1].TS {
				next = i
			}
		}
	}
	if halted < 0 || next < 0 || has(ch1, "s-tok") < 0 {
		t.Errorf("incident 1's channel lacks the halt notices (%d, s-tok %d) or the second checklist item (%d)",
			halted, has(ch1, "s-tok"), next)
	}
	if halted > next {
		t.Errorf("incident 1's channel shows the checklist's next item (%d) before the halt queued earlier (%d)", next, halted)
	}

	// Once each: one channel per incident, created once; no message twice.
	seen := map[string]bool{}
	for _, c := range incidentChannels(e.Slack) {
		prefix := c.Name[:strings.Index(c.Name[len("inc-"):], "-")+len("inc-")]
		if seen[prefix] {
			t.Errorf("a second channel %s for the incident of %s", c.Name, prefix)
		}
		seen[prefix] = true
		msgs := map[string]bool{}
		for _, m := range e.Slack.Messages(c.ID) {
			k := m.ThreadTS + "\x00" + m.Text + "\x00" + string(m.Blocks)
			if msgs[k] {
				t.Errorf("message posted twice in %s: %.200s", c.Name, m.Text)
			}
			msgs[k] = true
		}
	}
	if len(seen) != 3 {
		t.Errorf("%d incident channels, want 3 (support-bot, flag-bot, the unrouted storm)", len(seen))
	}
	created := 0
	for _, c := range e.Slack.Calls("conversations.create") {
		if c.Error == "" {
			created++
		}
	}
	if created != 3 {
		t.Errorf("%d channels created, want 3", created)
	}

	// In order: each incident's Slack items were done in the order queued,
	// and none was given up on.
	rows, err := e.Main.DB.QueryContext(ctx, `SELECT incident_id, id, state, done_at FROM outbox
		WHERE lane = 'chat' AND incident_id <> 0 ORDER BY incident_id, id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	prev := map[int64]string{}
	items := 0
	for rows.Next() {
		var inc, id int64
		var state string
		var done any
		if err := rows.Scan(&inc, &id, &state, &done); err != nil {
			t.Fatal(err)
		}
		items++
		at := fmt.Sprint(done)
		if tm, ok := done.(time.Time); ok {
			at = tm.UTC().Format("2006-01-02T15:04:05.000000Z")
		}
		if state != "done" {
			t.Errorf("outbox item %d of incident %d is %s", id, inc, state)
		}
		if at < prev[inc] {
			t.Errorf("outbox item %d of incident %d done at %s, before the item queued ahead of it (%s)", id, inc, at, prev[inc])
		}
		prev[inc] = at
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	heap1, rss1 := memory()
	t.Logf("memory: heap %d KiB before, %d KiB at the outage's end, %d KiB after catching up; RSS %d, %d, %d KiB (%d Slack items)",
		heap0>>10, heapOut>>10, heap1>>10, rss0>>10, rssOut>>10, rss1>>10, items)
	if heap1 > heap0+32<<20 || heapOut > heap0+32<<20 {
		t.Errorf("heap grew from %d KiB to %d KiB (outage end) and %d KiB (after): not flat", heap0>>10, heapOut>>10, heap1>>10)
	}
}
