package aftermath_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/aftermath"
	"github.com/reins-oss/reins/incidents/incidentstest"
)

var updateMarkdown = flag.Bool("update", false, "rewrite incidents/aftermath/testdata/golden/*.md from RenderMarkdown")

// hostile is untrusted text that tries every way to break the document.
const hostile = "Spend | 12x *bold* _it_ `code` <!channel> <@U0EVIL> [click](javascript:alert(1))\n# not a heading\n---\n> quote\n1. list\n\\ backslash ~strike~ ![img](http://x)"

func hostilePostmortem() *incidents.Postmortem {
	e := incidentstest.Epoch
	at := func(d time.Duration) *time.Time { t := e.Add(d); return &t }
	span := func(d time.Duration) *incidents.Span { s := incidents.Span(d); return &s }
	long := strings.Repeat("The agent | refunded *again* `and` <!here> again.\n", 100)[:5000]
	return &incidents.Postmortem{
		ID: 42, Agent: "support-bot", Team: "support-ai", Title: hostile, Severity: "critical", Status: "resolved",
		Source: "generic", ResolvedBy: "<@U0EVIL>",
		Times: incidents.PostmortemTimes{Detected: e.Add(-time.Minute), Opened: e, Paged: at(30 * time.Second),
			Halted: at(2 * time.Minute), Resolved: at(time.Hour)},
		Durations: incidents.PostmortemDurations{Detect: span(time.Minute), Page: span(30 * time.Second),
			Halt: span(2 * time.Minute), Resolve: span(time.Hour)},
		Detection: []incidents.DetectedAlert{{Source: "generic", Title: hostile, Summary: "- " + hostile, Severity: "critical",
			Status: "firing", StartsAt: e.Add(-time.Minute), Count: 3, Values: map[string]any{"a|b": "<!channel>", "n": 1.5}}},
		SLAs:     []incidents.SLACheck{{Metric: "tokens|per", Limit: "max 1", Observed: "2\n3"}},
		Sessions: []incidents.Link{{Text: "s-1 | x", URL: "https://t.example.com/s/(1) x"}, {Text: "[s-2]", URL: "javascript:alert(1)"}},
		Timeline: []incidents.TimelineEntry{{At: e, Kind: incidents.EventAlertFired, Actor: "system:reins", Text: "Alert fired: " + hostile}},
		Halts: []incidents.PostmortemHalt{{Action: "halt", Sessions: []string{"s|1"}, Adapter: "webhook", Actor: "eve | admin",
			Reason: "loop\nloop", Result: "failed", Error: "500 | upstream", RequestedAt: e}},
		BlastRadius: []incidents.BlastAnswer{{Key: "blast:x", Position: 1, Question: hostile, Check: "a|b", Owner: "<!subteam^S1>",
			Link: "https://x.example.com/a?b=c|d", Choice: incidents.ChoiceImpactFound, Details: long, AnsweredBy: "x|y", AnsweredAt: at(time.Minute)}},
		Answers: []incidents.QuestionAnswer{
			{Key: "summary", Text: hostile}, {Key: "root_cause", Text: long},
			{Key: "went_well", Text: "    indented code?\n\n\n+ plus\n=== setext"},
		},
		ActionItems: incidents.ParseActionItems("a|b: fix *it* (due 2026-03-09)\n<!channel>: ping"),
		Links: incidents.PostmortemLinks{SlackChannel: "https://slack.com/app_redirect?channel=C1", SlackChannelName: "inc-42|x",
			PagerDutyKey: "reins-42`", Runbook: "not a url | *"},
		GeneratedAt: e.Add(2 * time.Hour),
	}
}

func TestRenderMarkdownGolden(t *testing.T) {
	minimal := incidentstest.NewEnv(func(d *incidents.Deps, c *incidents.Config) { d.Chat, d.Pager = nil, nil })
	if _, _, err := minimal.Intake.Declare(ctx, lead, "orphan-agent", "Declared by hand"); err != nil {
		t.Fatal(err)
	}
	minimalPM, err := minimal.Aftermath.Postmortem(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	fullPM, err := fullIncident(t).Aftermath.Postmortem(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pm   *incidents.Postmortem
	}{
		{"full", fullPM},
		{"hostile", hostilePostmortem()},
		{"minimal", minimalPM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := aftermath.RenderMarkdown(tt.pm)
			checkMarkdown(t, got)
			path := filepath.Join("testdata", "golden", tt.name+".md")
			if *updateMarkdown {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run go test ./incidents -run TestRenderMarkdownGolden -update): %v", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s; rerun with -update if the change is intended\n--- got ---\n%s", tt.name, path, got)
			}
		})
	}
}

// ourHeadings are the only lines of a postmortem that may start with '#'.
var ourHeadings = map[string]bool{
	"## Summary": true, "## Detection": true, "## Timeline (UTC)": true, "## Sessions": true, "## Blast radius": true,
	"## Containment": true, "## Root cause": true, "## What went well": true, "## What went poorly": true,
	"## Action items": true, "## Behavioural SLA changes": true, "## Links": true,
}

// checkMarkdown fails when untrusted text escaped its place: a table row
// with a different number of columns than its header, a heading or block
// the renderer did not write, a live Slack mention.
func checkMarkdown(t *testing.T, md string) {
	t.Helper()
	lines := strings.Split(md, "\n")
	cols := -1
	for i, line := range lines {
		switch {
		case strings.HasPrefix(line, "|"):
			n := unescapedPipes(line)
			if cols < 0 {
				cols = n
			} else if n != cols {
				t.Errorf("line %d: table row has %d pipes, header has %d: %q", i+1, n, cols, clipText(line))
			}
			continue
		case strings.HasPrefix(line, "# Postmortem: incident #") && i == 0:
		case strings.HasPrefix(line, "#"):
			if !ourHeadings[line] {
				t.Errorf("line %d: stray heading %q", i+1, clipText(line))
			}
		case strings.HasPrefix(line, "    ") || strings.HasPrefix(line, ">") || strings.HasPrefix(line, "```") ||
			strings.HasPrefix(line, "==="):
			t.Errorf("line %d: stray block %q", i+1, clipText(line))
		case line == "---" && !strings.HasPrefix(lines[min(i+2, len(lines)-1)], "_Generated by reins"):
			t.Errorf("line %d: stray rule", i+1)
		}
		cols = -1
	}
	for _, live := range []string{"<!channel>", "<!here>", "<@U", "<!subteam", "](javascript:"} {
		if unescapedAt(md, live) >= 0 {
			t.Errorf("the document holds %q unescaped", live)
		}
	}
}

// unescapedAt returns where token occurs with its first character not
// backslash-escaped, or -1.
func unescapedAt(md, token string) int {
	for from := 0; ; {
		i := strings.Index(md[from:], token)
		if i < 0 {
			return -1
		}
		i += from
		slashes := 0
		for j := i - 1; j >= 0 && md[j] == '\\'; j-- {
			slashes++
		}
		if slashes%2 == 0 {
			return i
		}
		from = i + 1
	}
}

func unescapedPipes(line string) int {
	n := 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case '|':
			n++
		}
	}
	return n
}

func clipText(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

func FuzzRenderMarkdown(f *testing.F) {
	f.Add(hostile, "12 refunds | 3 users", "owner: do *it* (due 2026-01-01)")
	f.Add("plain title", "", "")
	f.Add("```\n# x\n|a|b|\n", "\r\n\r\n- x\n", "a:\n:b\n1) x")
	f.Fuzz(func(t *testing.T, title, details, answer string) {
		pm := hostilePostmortem()
		pm.Title, pm.Detection[0].Title, pm.Detection[0].Summary = title, title, details
		pm.BlastRadius[0].Details, pm.BlastRadius[0].Question = details, title
		pm.Timeline[0].Text, pm.Halts[0].Reason = details, answer
		pm.Answers = []incidents.QuestionAnswer{{Key: "summary", Text: answer}, {Key: "root_cause", Text: details}}
		pm.ActionItems = incidents.ParseActionItems(answer)
		checkMarkdown(t, aftermath.RenderMarkdown(pm))
	})
}

// Time to halt has one definition: the headline and Containment say the
// same figure, from the first alert to the first verified halt.
func TestTimeToHaltOneDefinition(t *testing.T) {
	pm, err := fullIncident(t).Aftermath.Postmortem(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if pm.Durations.Halt == nil || pm.Times.Halted == nil ||
		time.Duration(*pm.Durations.Halt) != pm.Times.Halted.Sub(pm.Times.Detected) {
		t.Fatalf("time to halt %v, want first alert %v to first verified halt %v", pm.Durations.Halt, pm.Times.Detected, pm.Times.Halted)
	}
	md := aftermath.RenderMarkdown(pm)
	want := "Time to halt: " + pm.Durations.Halt.String() + ", from the first alert"
	if !strings.Contains(md, want) || !strings.Contains(md, aftermath.TimeToHaltDefinition) {
		t.Errorf("the postmortem does not say %q and define it:\n%s", want, md)
	}
	if strings.Contains(md, "| Time to halt | Reason |") {
		t.Errorf("Containment still has a per-halt column called time to halt:\n%s", md)
	}
}
