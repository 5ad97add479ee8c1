package bot

import (
	"context"
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
