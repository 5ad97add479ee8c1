package bot

import (
	"path"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseCommand(t *testing.T) {
	tests := map[string]struct {
		text string
		want Command
	}{
		"EmptyIsHelp":         {"", Command{Verb: VerbHelp}},
		"Help":                {"help", Command{Verb: VerbHelp}},
		"HelpIgnoresRest":     {"help kill", Command{Verb: VerbHelp}},
		"ErrUnknownVerb":      {"explode support-bot", Command{Verb: VerbHelp, Err: "Unknown command `explode`."}},
		"KillAll":             {"kill support-bot", Command{Verb: VerbKill, Agent: "support-bot"}},
		"KillCaseInsensitive": {"KILL support-bot", Command{Verb: VerbKill, Agent: "support-bot"}},
		"HaltAlias":           {"halt support-bot", Command{Verb: VerbKill, Agent: "support-bot"}},
		"KillReason":          {"kill support-bot looping on refunds", Command{Verb: VerbKill, Agent: "support-bot", Text: "looping on refunds"}},
		"KillSession": {"kill support-bot session s-8812 looping on refunds",
			Command{Verb: VerbKill, Agent: "support-bot", Sessions: []string{"s-8812"}, Text: "looping on refunds"}},
		"KillSessionsRepeated": {"kill support-bot session s-1 session s-2",
			Command{Verb: VerbKill, Agent: "support-bot", Sessions: []string{"s-1", "s-2"}}},
		"KillSessionsComma": {"kill support-bot sessions s-1,s-2 spend",
			Command{Verb: VerbKill, Agent: "support-bot", Sessions: []string{"s-1", "s-2"}, Text: "spend"}},
		"KillSessionsCommaSpace": {"kill support-bot sessions s-1, s-2 spend",
			Command{Verb: VerbKill, Agent: "support-bot", Sessions: []string{"s-1", "s-2"}, Text: "spend"}},
		"KillSessionsDeduped": {"kill bot sessions s-1,s-1 session s-1",
			Command{Verb: VerbKill, Agent: "bot", Sessions: []string{"s-1"}}},
		"KillExtraSpaces": {"  kill\tsupport-bot   session  s-1 \n too   many  ",
			Command{Verb: VerbKill, Agent: "support-bot", Sessions: []string{"s-1"}, Text: "too many"}},
		"KillReasonMentioningSession": {"kill bot it opened a session for everyone",
			Command{Verb: VerbKill, Agent: "bot", Text: "it opened a session for everyone"}},
		"ErrKillNoAgent":      {"kill", Command{Verb: VerbKill, Err: "Name the agent to kill."}},
		"ErrKillSessionNoID":  {"kill bot session", Command{Verb: VerbKill, Agent: "bot", Err: "Name the session after `session`."}},
		"ErrKillSessionComma": {"kill bot sessions ,", Command{Verb: VerbKill, Agent: "bot", Err: "Name the session after `sessions`."}},
		"Resume":              {"resume support-bot", Command{Verb: VerbResume, Agent: "support-bot"}},
		"RestrictSession": {"restrict support-bot session s-1 allow salesforce.read,zendesk.* refunds outside policy",
			Command{Verb: VerbRestrict, Agent: "support-bot", Sessions: []string{"s-1"}, Allow: []string{"salesforce.read", "zendesk.*"}, Text: "refunds outside policy"}},
		"RestrictAgentCommaSpace": {"restrict support-bot allow salesforce.read, zendesk.* , kb.read",
			Command{Verb: VerbRestrict, Agent: "support-bot", Allow: []string{"salesforce.read", "zendesk.*", "kb.read"}}},
		"ErrRestrictNoAllow": {"restrict support-bot session s-1 salesforce.read",
			Command{Verb: VerbRestrict, Agent: "support-bot", Sessions: []string{"s-1"}, Err: "Say which tools stay allowed: `allow GLOBS`, e.g. `allow salesforce.read,zendesk.*`."}},
		"ErrRestrictEmptyAllow": {"restrict bot allow ,", Command{Verb: VerbRestrict, Agent: "bot", Err: "List at least one tool after `allow`, e.g. `allow salesforce.read`."}},
		"ErrRestrictBadGlob":    {"restrict bot allow a[", Command{Verb: VerbRestrict, Agent: "bot", Err: "`a[` is not a tool name or glob (letters, digits, . _ - : / and * ? [ ])."}},
		"Throttle":              {"throttle support-bot 6/min burning tokens", Command{Verb: VerbThrottle, Agent: "support-bot", Rate: 6, Text: "burning tokens"}},
		"ThrottleSession": {"throttle support-bot session s-9 12/min",
			Command{Verb: VerbThrottle, Agent: "support-bot", Sessions: []string{"s-9"}, Rate: 12}},
		"ErrThrottleNoRate":   {"throttle bot", Command{Verb: VerbThrottle, Agent: "bot", Err: "Give the rate as model calls per minute, e.g. `6/min`."}},
		"ErrThrottleZero":     {"throttle bot 0/min", Command{Verb: VerbThrottle, Agent: "bot", Err: "`0/min` is not a rate: write model calls per minute, e.g. `6/min` (1 to 100000)."}},
		"ErrThrottleNotARate": {"throttle bot fast", Command{Verb: VerbThrottle, Agent: "bot", Err: "`fast` is not a rate: write model calls per minute, e.g. `6/min` (1 to 100000)."}},
		"ResumeSession": {"resume support-bot session s-8812",
			Command{Verb: VerbResume, Agent: "support-bot", Sessions: []string{"s-8812"}}},
		"ErrResumeNoAgent": {"resume", Command{Verb: VerbResume, Err: "Name the agent to resume."}},
		"StatusAll":        {"status", Command{Verb: VerbStatus}},
		"StatusAgent":      {"status support-bot", Command{Verb: VerbStatus, Agent: "support-bot"}},
		"ErrStatusTwo":     {"status a b", Command{Verb: VerbStatus, Agent: "a", Err: "`status` takes at most one agent."}},
		"Who":              {"who support-bot", Command{Verb: VerbWho, Agent: "support-bot"}},
		"ErrWhoNoAgent":    {"who", Command{Verb: VerbWho, Err: "Name the agent."}},
		"ErrWhoTwo":        {"who a b", Command{Verb: VerbWho, Agent: "a", Text: "b", Err: "`who` takes one agent."}},
		"Declare": {"declare support-bot Refunds issued twice",
			Command{Verb: VerbDeclare, Agent: "support-bot", Text: "Refunds issued twice"}},
		"DeclareNoSummary":  {"declare support-bot", Command{Verb: VerbDeclare, Agent: "support-bot"}},
		"ErrDeclareNothing": {"declare", Command{Verb: VerbDeclare, Err: "Name the agent."}},
		"Checklist":         {"checklist", Command{Verb: VerbChecklist}},
		"ErrChecklistArgs":  {"checklist now", Command{Verb: VerbChecklist, Err: "`checklist` takes no arguments."}},
		"Resolve":           {"resolve", Command{Verb: VerbResolve}},
		"ResolveNote":       {"resolve rolled back the prompt", Command{Verb: VerbResolve, Text: "rolled back the prompt"}},
		"Postmortem":        {"postmortem", Command{Verb: VerbPostmortem}},
		"SlackEntitiesUndone": {"kill bot refunds &gt; 1000 &amp; &lt;script&gt; &amp;lt;",
			Command{Verb: VerbKill, Agent: "bot", Text: "refunds > 1000 & <script> &lt;"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := ParseCommand(tc.text); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseCommand(%q)\n got %#v\nwant %#v", tc.text, got, tc.want)
			}
		})
	}
}

func TestParseCommandClipsUnknownVerb(t *testing.T) {
	got := ParseCommand(strings.Repeat("é", 500))
	if got.Verb != VerbHelp || utf8.RuneCountInString(got.Err) > 80 || !utf8.ValidString(got.Err) {
		t.Fatalf("ParseCommand(long word) = %+v, want help with a short, valid note", got)
	}
}

// knownVerbs is every verb of the registry (help included), so a verb added
// there is known here too.
var knownVerbs = func() map[string]bool {
	m := map[string]bool{}
	for _, v := range verbs {
		m[v.name] = true
	}
	return m
}()

func FuzzParseCommand(f *testing.F) {
	for _, seed := range []string{
		"", "help", "kill support-bot", "kill support-bot session s-8812 looping on refunds",
		"kill bot sessions a, b,c reason", "resume bot session s-1", "status", "status bot",
		"who bot", "declare bot Token spend 12x", "checklist", "resolve fixed", "postmortem",
		"kill bot session", "kill bot sessions ,,,", "KILL\tbot\nsession\u00a0x", "<@U123> kill",
		"kill <!channel> &amp; &lt;", "\xff\xfe kill", "sessions sessions sessions",
		"restrict support-bot session s-1 allow salesforce.read,zendesk.* refunds", "restrict bot allow a, b ,c",
		"restrict bot allow", "restrict bot allow [", "throttle support-bot 6/min", "throttle bot session s-1 12/m why",
		"throttle bot 0/min", "throttle bot 007/min", "throttle bot 99999999/min", "slow bot 1/minute",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c := ParseCommand(text)
		if !knownVerbs[c.Verb] {
			t.Fatalf("ParseCommand(%q).Verb = %q, not a verb", text, c.Verb)
		}
		needsAgent := c.Verb == VerbKill || c.Verb == VerbResume || c.Verb == VerbWho || c.Verb == VerbDeclare ||
			c.Verb == VerbRestrict || c.Verb == VerbThrottle
		if needsAgent && c.Err == "" && c.Agent == "" {
			t.Fatalf("ParseCommand(%q) = %+v: %s without agent and without error", text, c, c.Verb)
		}
		seen := map[string]bool{}
		split := ", \t\n"
		if c.Verb == VerbSession {
			split = " \t\n" // `/agent session ID` takes the one ID as typed
		}
		for _, s := range c.Sessions {
			if s == "" || strings.ContainsAny(s, split) || seen[s] {
				t.Fatalf("ParseCommand(%q).Sessions = %q: empty, split badly or repeated", text, c.Sessions)
			}
			seen[s] = true
		}
		checkRung(t, text, c)
		if c.Agent != "" && strings.ContainsAny(c.Agent, " \t\n") {
			t.Fatalf("ParseCommand(%q).Agent = %q holds spaces", text, c.Agent)
		}
		if utf8.ValidString(text) && !utf8.ValidString(c.Err) {
			t.Fatalf("ParseCommand(%q).Err = %q is not valid UTF-8", text, c.Err)
		}
		if again := ParseCommand(text); !reflect.DeepEqual(again, c) {
			t.Fatalf("ParseCommand(%q) is not deterministic", text)
		}
	})
}

// TestParseCommandLinear guards against quadratic parsing: a signed request
// may carry up to 1 MiB of text.
func TestParseCommandLinear(t *testing.T) {
	text := "kill bot sessions " + strings.Repeat("s-1, s-2,", 100_000) + "s-3 reason"
	start := time.Now()
	c := ParseCommand(text)
	if len(c.Sessions) != 3 || c.Text != "reason" {
		t.Fatalf("ParseCommand(long list) = %d sessions, text %q; want 3 and \"reason\"", len(c.Sessions), c.Text)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("ParseCommand(1 MiB) took %s", d)
	}
}

// checkRung holds the rungs' grammar to its promises: a restriction read
// without error has globs (each valid, none repeated), a throttle a rate
// from 1 to 100000, and no other verb carries either.
func checkRung(t *testing.T, text string, c Command) {
	t.Helper()
	switch {
	case c.Verb == VerbRestrict && c.Err == "":
		if len(c.Allow) == 0 {
			t.Fatalf("ParseCommand(%q) = %+v: a restriction with no allowed tool", text, c)
		}
		seen := map[string]bool{}
		for _, g := range c.Allow {
			if _, err := path.Match(g, ""); err != nil || g == "" || strings.ContainsAny(g, ", \t\n") || seen[g] {
				t.Fatalf("ParseCommand(%q).Allow = %q: empty, invalid, split badly or repeated", text, c.Allow)
			}
			seen[g] = true
		}
	case c.Verb == VerbThrottle && c.Err == "":
		if c.Rate < 1 || c.Rate > maxThrottleRate {
			t.Fatalf("ParseCommand(%q).Rate = %d, want 1..%d", text, c.Rate, maxThrottleRate)
		}
	}
	if (c.Verb != VerbRestrict && len(c.Allow) > 0) || (c.Verb != VerbThrottle && c.Rate != 0) {
		t.Fatalf("ParseCommand(%q) = %+v: %s carries a rung parameter", text, c, c.Verb)
	}
}
