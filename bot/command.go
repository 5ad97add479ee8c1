package bot

import (
	"strings"
)

// Verbs of `/agent` (docs/architecture.md, Slack commands); verbs in
// verbs.go says how each is read and run.
const (
	VerbKill       = "kill"
	VerbResume     = "resume"
	VerbRestrict   = "restrict"
	VerbThrottle   = "throttle"
	VerbStatus     = "status"
	VerbWho        = "who"
	VerbDeclare    = "declare"
	VerbChecklist  = "checklist"
	VerbResolve    = "resolve"
	VerbPostmortem = "postmortem"
	VerbSession    = "session"
	VerbHelp       = "help"
)

// Command is one parsed `/agent` invocation. Parsing never fails: input it
// cannot read becomes VerbHelp (or the verb it named) with Err saying why.
type Command struct {
	Verb     string
	Agent    string   // kill, resume, who, declare; optional for status
	Sessions []string // kill, resume, restrict, throttle: empty means the whole agent
	Allow    []string // restrict: the tool globs still allowed
	Rate     int      // throttle: model calls per minute
	// Text is the free text after the arguments: the reason of kill and
	// resume, the summary of declare, the note of resolve. Untrusted.
	Text string
	// Err, when set, is shown to the user together with the usage of Verb.
	Err string
}

// slackEntities undoes the escaping Slack applies to command text, so a
// reason reads as typed; renderers escape it again on the way out.
var slackEntities = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

// ParseCommand reads the text Slack sends after `/agent`.
func ParseCommand(text string) Command {
	words := strings.Fields(slackEntities.Replace(text))
	if len(words) == 0 {
		return Command{Verb: VerbHelp}
	}
	v, ok := verbNamed(words[0])
	if !ok {
		return Command{Verb: VerbHelp, Err: "Unknown command `" + clip(words[0], 40) + "`."}
	}
	c := Command{Verb: v.name}
	if v.parse != nil {
		v.parse(&c, words[1:])
	}
	return c
}

// parseSessions takes the leading "session ID" / "sessions A,B" groups off
// args and returns the sessions and what follows them.
func parseSessions(args []string) (sessions, rest []string, errText string) {
	seen := map[string]bool{}
	for len(args) > 0 && isSessionKeyword(args[0]) {
		kw := args[0]
		args = args[1:]
		// "sessions a, b" arrives as "a," and "b": a trailing comma means the
		// list goes on in the next word.
		n := 0
		for len(args) > 0 {
			word := args[0]
			args = args[1:]
			for _, s := range strings.Split(word, ",") {
				if s == "" {
					continue
				}
				n++
				if !seen[s] {
					seen[s] = true
					sessions = append(sessions, s)
				}
			}
			if !strings.HasSuffix(word, ",") {
				break
			}
		}
		if n == 0 {
			return sessions, nil, "Name the session after `" + clip(kw, 20) + "`."
		}
	}
	return sessions, args, ""
}

func isSessionKeyword(w string) bool {
	switch strings.ToLower(w) {
	case "session", "sessions", "--session":
		return true
	}
	return false
}

// clip shortens s to at most n runes, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
