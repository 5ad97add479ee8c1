package bot

import (
	"context"
	"path"
	"slices"
	"strconv"
	"strings"
)

// verb is one `/agent` subcommand: the words that name it, its usage line,
// how its arguments are read and what it does after the ack.
type verb struct {
	name  string
	words []string // what people type for it, lower case
	usage string
	// parse reads the words after the verb into c, setting c.Err when they
	// do not fit; nil ignores them.
	parse func(c *Command, args []string)
	// run does the work after the ack; nil answers with the usage (help).
	run func(h *Handler, ctx context.Context, c caller, cmd Command)
}

// verbs is the registry of `/agent` subcommands, in the order help lists
// them. Adding one is its file (constant, parse, run), its test, and one
// entry here (docs/architecture.md, where to change what).
var verbs = []verb{
	// "halt" is what the adapters and the summary buttons call a kill, so
	// people type it too.
	{VerbKill, []string{"kill", "halt", "stop"},
		"`/agent kill AGENT [session ID]… [reason…]`: halt an agent, or only the named sessions (kill authority only; asks for one confirmation click)",
		parseHaltArgs, runHaltCommand},
	{VerbResume, []string{"resume", "unhalt"},
		"`/agent resume AGENT [session ID]…`: lift a halt (kill authority only)",
		parseHaltArgs, runHaltCommand},
	{VerbRestrict, []string{"restrict"},
		"`/agent restrict AGENT [session ID]… allow GLOBS [reason…]`: let an agent, or only the named sessions, call just the tools matching GLOBS (comma-separated, e.g. `salesforce.read,zendesk.*`) (kill authority only; asks for one confirmation click)",
		parseRestrictArgs, runHaltCommand},
	{VerbThrottle, []string{"throttle", "slow"},
		"`/agent throttle AGENT [session ID]… N/min [reason…]`: allow at most N model calls a minute (kill authority only; asks for one confirmation click)",
		parseThrottleArgs, runHaltCommand},
	{VerbLeave, []string{"leave"},
		"`/agent leave AGENT SESSION`: leave a breaching session running: its breaches waiting to be halted are dropped from the queue, on the record (kill authority only)",
		parseLeaveArgs, (*Handler).leave},
	{VerbStatus, []string{"status"},
		"`/agent status [AGENT]`: halt state, open incidents, who holds kill authority now; for one agent, its SLAs",
		parseStatusArgs, func(h *Handler, ctx context.Context, c caller, cmd Command) { h.status(ctx, c, cmd.Agent) }},
	{VerbWho, []string{"who"},
		"`/agent who AGENT`: owner team, RACI, kill authority (resolved to people now), runbook",
		parseAgentArgs, func(h *Handler, ctx context.Context, c caller, cmd Command) { h.who(ctx, c, cmd.Agent) }},
	{VerbDeclare, []string{"declare"},
		"`/agent declare AGENT summary…`: open an incident by hand",
		parseAgentArgs, (*Handler).declare},
	{VerbChecklist, []string{"checklist"},
		"`/agent checklist`: in an incident channel, start or resume the blast-radius checklist",
		parseNoArgs, (*Handler).incidentCommand},
	{VerbResolve, []string{"resolve"},
		"`/agent resolve [note…]`: in an incident channel, resolve; the postmortem thread starts",
		func(c *Command, args []string) { c.Text = strings.Join(args, " ") }, (*Handler).incidentCommand},
	{VerbPostmortem, []string{"postmortem"},
		"`/agent postmortem`: in an incident channel, post the current postmortem",
		parseNoArgs, (*Handler).incidentCommand},
	{VerbSession, []string{"session", "timeline"},
		"`/agent session [AGENT] ID`: the session's timeline (in an incident channel: posted in the incident thread)",
		parseSessionArgs, func(h *Handler, ctx context.Context, c caller, cmd Command) {
			h.sessionTimeline(ctx, c, cmd.Agent, cmd.Sessions[0])
		}},
	{VerbHelp, []string{"help", "?"}, "`/agent help`: this list", nil, nil},
}

// verbNamed returns the verb a typed word names.
func verbNamed(word string) (verb, bool) {
	word = strings.ToLower(word)
	for _, v := range verbs {
		for _, w := range v.words {
			if w == word {
				return v, true
			}
		}
	}
	return verb{}, false
}

// usage is the usage line of the verb called name.
func usage(name string) string {
	for _, v := range verbs {
		if v.name == name {
			return v.usage
		}
	}
	return ""
}

func runHaltCommand(h *Handler, ctx context.Context, c caller, cmd Command) {
	h.requestHalt(ctx, c, haltCommand(cmd, c.actor))
}

// parseHaltArgs reads kill and resume: AGENT [session ID]… [reason…].
func parseHaltArgs(c *Command, args []string) {
	if len(args) == 0 {
		c.Err = "Name the agent to " + c.Verb + "."
		return
	}
	c.Agent = args[0]
	c.Sessions, args, c.Err = parseSessions(args[1:])
	c.Text = strings.Join(args, " ")
}

// parseAgentArgs reads who and declare: AGENT [text…]; who takes no text.
func parseAgentArgs(c *Command, args []string) {
	if len(args) == 0 {
		c.Err = "Name the agent."
		return
	}
	c.Agent = args[0]
	c.Text = strings.Join(args[1:], " ")
	if c.Verb == VerbWho && c.Text != "" {
		c.Err = "`who` takes one agent."
	}
}

func parseStatusArgs(c *Command, args []string) {
	if len(args) > 1 {
		c.Err = "`status` takes at most one agent."
	}
	if len(args) > 0 {
		c.Agent = args[0]
	}
}

// parseSessionArgs reads `ID` or `AGENT ID`: a session is its agent's, and
// two agents may use the same ID.
func parseSessionArgs(c *Command, args []string) {
	switch len(args) {
	case 1:
		c.Sessions = args
	case 2:
		c.Agent, c.Sessions = args[0], args[1:]
	default:
		c.Err = "Name one session: `/agent session ID`, or `/agent session AGENT ID` when two agents use the ID."
	}
}

func parseNoArgs(c *Command, args []string) {
	if len(args) > 0 {
		c.Err = "`" + c.Verb + "` takes no arguments."
	}
}

// parseRestrictArgs reads restrict: AGENT [session ID]… allow GLOBS [reason…].
// GLOBS is comma-separated; "a, b" (a space after the comma) reads as one list.
func parseRestrictArgs(c *Command, args []string) {
	if len(args) == 0 {
		c.Err = "Name the agent to restrict, then `allow` and the tools it may still call."
		return
	}
	c.Agent = args[0]
	if c.Sessions, args, c.Err = parseSessions(args[1:]); c.Err != "" {
		return
	}
	if len(args) == 0 || strings.ToLower(args[0]) != "allow" {
		c.Err = "Say which tools stay allowed: `allow GLOBS`, e.g. `allow salesforce.read,zendesk.*`."
		return
	}
	args = args[1:]
	for len(args) > 0 {
		word := args[0]
		args = args[1:]
		for _, g := range strings.Split(word, ",") {
			if g == "" {
				continue
			}
			if !validToolGlob(g) {
				c.Err = "`" + clip(g, 40) + "` is not a tool name or glob (letters, digits, . _ - : / and * ? [ ])."
				return
			}
			if !slices.Contains(c.Allow, g) {
				c.Allow = append(c.Allow, g)
			}
		}
		if !strings.HasSuffix(word, ",") && (len(args) == 0 || !strings.HasPrefix(args[0], ",")) {
			break
		}
	}
	if len(c.Allow) == 0 {
		c.Err = "List at least one tool after `allow`, e.g. `allow salesforce.read`."
		return
	}
	c.Text = strings.Join(args, " ")
}

// validToolGlob accepts what path.Match reads as a pattern of tool names.
func validToolGlob(g string) bool {
	if len(g) > 200 {
		return false
	}
	for _, r := range g {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("._-:/*?[]", r):
		default:
			return false
		}
	}
	_, err := path.Match(g, "")
	return err == nil
}

// maxThrottleRate bounds N in N/min: beyond it a throttle limits nothing.
const maxThrottleRate = 100000

// parseThrottleArgs reads throttle: AGENT [session ID]… N/min [reason…].
func parseThrottleArgs(c *Command, args []string) {
	if len(args) == 0 {
		c.Err = "Name the agent to throttle, then the rate, e.g. `6/min`."
		return
	}
	c.Agent = args[0]
	if c.Sessions, args, c.Err = parseSessions(args[1:]); c.Err != "" {
		return
	}
	if len(args) == 0 {
		c.Err = "Give the rate as model calls per minute, e.g. `6/min`."
		return
	}
	n, ok := parseRate(args[0])
	if !ok {
		c.Err = "`" + clip(args[0], 40) + "` is not a rate: write model calls per minute, e.g. `6/min` (1 to 100000)."
		return
	}
	c.Rate = n
	c.Text = strings.Join(args[1:], " ")
}

// parseRate reads "N/min" (also "N/m"), N from 1 to maxThrottleRate.
func parseRate(word string) (int, bool) {
	num, unit, ok := strings.Cut(strings.ToLower(word), "/")
	if !ok || (unit != "min" && unit != "m" && unit != "minute") || num == "" || len(num) > 6 {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > maxThrottleRate || strconv.Itoa(n) != num {
		return 0, false
	}
	return n, true
}
