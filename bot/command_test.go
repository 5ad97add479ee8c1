package bot

import (
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

var knownVerbs = map[string]bool{VerbKill: true, VerbResume: true, VerbStatus: true, VerbWho: true,
	VerbDeclare: true, VerbChecklist: true, VerbResolve: true, VerbPostmortem: true, VerbHelp: true}

func FuzzParseCommand(f *testing.F) {
	for _, seed := range []string{
		"", "help", "kill support-bot", "kill support-bot session s-8812 looping on refunds",
		"kill bot sessions a, b,c reason", "resume bot session s-1", "status", "status bot",
		"who bot", "declare bot Token spend 12x", "checklist", "resolve fixed", "postmortem",
		"kill bot session", "kill bot sessions ,,,", "KILL\tbot\nsession\u00a0x", "<@U123> kill",
		"kill <!channel> &amp; &lt;", "\xff\xfe kill", "sessions sessions sessions",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c := ParseCommand(text)
		if !knownVerbs[c.Verb] {
			t.Fatalf("ParseCommand(%q).Verb = %q, not a verb", text, c.Verb)
		}
		needsAgent := c.Verb == VerbKill || c.Verb == VerbResume || c.Verb == VerbWho || c.Verb == VerbDeclare
		if needsAgent && c.Err == "" && c.Agent == "" {
			t.Fatalf("ParseCommand(%q) = %+v: %s without agent and without error", text, c, c.Verb)
		}
		seen := map[string]bool{}
		for _, s := range c.Sessions {
			if s == "" || strings.ContainsAny(s, ", \t\n") || seen[s] {
				t.Fatalf("ParseCommand(%q).Sessions = %q: empty, split badly or repeated", text, c.Sessions)
			}
			seen[s] = true
		}
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
