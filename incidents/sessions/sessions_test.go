package sessions_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/ownership"
)

var t0 = time.Date(2026, 12, 6, 14, 3, 22, 0, time.UTC)

var bot = &ownership.Agent{Name: "support-bot",
	BlastRadius: []ownership.BlastItem{{System: "Salesforce", Tools: []string{"salesforce.*"}}},
	SLAs:        []ownership.SLA{{Metric: "tool_scope", Allow: []string{"salesforce.*", "zendesk.*"}}},
	Sessions:    ownership.SessionSettings{ContentLimit: 8}}

func steps(n int, tool func(i int) string) []sessions.Step {
	var out []sessions.Step
	for i := range n {
		st := sessions.Step{Session: "s-1", Agent: "support-bot", SpanID: fmt.Sprintf("%04d", i), Kind: sessions.KindChat,
			Start: t0.Add(time.Duration(i) * time.Second), Duration: 100 * time.Millisecond}
		if t := tool(i); t != "" {
			st.Kind, st.Tool = sessions.KindTool, t
			st.System = bot.SystemOf(t)
		}
		out = append(out, st)
	}
	return out
}

func TestOverflowKeepsEdgesAndToolCalls(t *testing.T) {
	all := steps(100, func(i int) string {
		if i%20 == 10 {
			return "salesforce.update"
		}
		return ""
	})
	drop := sessions.Overflow(all, 20)
	if len(drop) != 80 {
		t.Fatalf("dropped %d steps, want 80 to keep 20", len(drop))
	}
	dropped := map[string]bool{}
	for _, id := range drop {
		dropped[id] = true
	}
	for _, id := range []string{"0000", "0006", "0099", "0092", "0010", "0050", "0090"} {
		if dropped[id] {
			t.Errorf("step %s dropped: the first and last steps and every tool call stay", id)
		}
	}
	if sessions.Overflow(all, 100) != nil {
		t.Errorf("a session within its cap lost steps")
	}
}

func TestTimelineSummarisesLongSessions(t *testing.T) {
	all := steps(60, func(i int) string {
		switch i {
		case 30:
			return "salesforce.update"
		case 40:
			return "sendgrid.send"
		}
		return ""
	})
	all[20].Error, all[20].ErrorType = true, "RateLimited"
	entries, omitted := sessions.Timeline(sessions.Record{Steps: all}, bot, 20)
	var got []string
	for _, e := range entries {
		got = append(got, fmt.Sprint(e.N))
	}
	if want := "1 2 3 21 31 41 58 59 60"; strings.Join(got, " ") != want || omitted != 60-9 {
		t.Errorf("kept steps %s (omitted %d), want %s", strings.Join(got, " "), omitted, want)
	}
	line := sessions.FormatEntry(entries[5])
	if !strings.Contains(line, "41. 14:04:02.000 execute_tool sendgrid.send") || !strings.Contains(line, sessions.FlagOutsideScope) ||
		!strings.Contains(line, sessions.FlagOutsideBlast) {
		t.Errorf("line = %q: want the number, time, tool and both flags", line)
	}
	if short, omitted := sessions.Timeline(sessions.Record{Steps: all[:10]}, bot, 20); len(short) != 10 || omitted != 0 {
		t.Errorf("a short session was summarised")
	}
}

func TestEnrichPricesAndStripsContent(t *testing.T) {
	reg := &ownership.Registry{Agents: map[string]*ownership.Agent{"support-bot": bot},
		Pricing: map[string]ownership.Price{"gpt-4.1": {Input: 2, Output: 8}}}
	st := sessions.Step{Agent: "support-bot", Model: "gpt-4.1-2025-04-14", InputTokens: 1_000_000, OutputTokens: 500_000, Content: "secret prompt"}
	sessions.Enrich(reg, &st)
	if st.Cost != 6 || !st.Priced || st.Content != "" {
		t.Errorf("step %+v: want 6 USD, priced, no content without capture_content", st)
	}
	st = sessions.Step{Agent: "support-bot", Model: "mystery", InputTokens: 10, Tool: "salesforce.get"}
	sessions.Enrich(reg, &st)
	if st.Priced || st.Cost != 0 || st.System != "Salesforce" {
		t.Errorf("step %+v: want no price and the Salesforce system", st)
	}
	var tot sessions.Totals
	tot.Add(st)
	if got := sessions.FormatCost(tot); got != "no price" {
		t.Errorf("cost of an unpriced session = %q", got)
	}
}

func TestValidID(t *testing.T) {
	for id, ok := range map[string]bool{"s-8812": true, "": false, "a\nb": false, strings.Repeat("x", 257): false, "séance": true} {
		if got := sessions.ValidID(id) == ""; got != ok {
			t.Errorf("ValidID(%q) ok = %v, want %v", id, got, ok)
		}
	}
}
