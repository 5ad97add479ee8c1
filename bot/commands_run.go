package bot

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

// runCommand does the work of a parsed `/agent` command, after the ack.
func (h *Handler) runCommand(ctx context.Context, c caller, cmd Command) {
	if v, ok := verbNamed(cmd.Verb); ok && v.run != nil {
		v.run(h, ctx, c, cmd)
		return
	}
	blocks, text := helpReply(cmd)
	h.reply(ctx, c, blocks, text)
}

// haltCommand is the halt or resume a parsed `/agent kill` or `resume` asks for.
func haltCommand(cmd Command, actor incidents.Actor) incidents.HaltCommand {
	action := incidents.ActionHalt
	switch cmd.Verb {
	case VerbResume:
		action = incidents.ActionResume
	case VerbRestrict:
		action = incidents.ActionRestrict
	case VerbThrottle:
		action = incidents.ActionThrottle
	}
	return incidents.HaltCommand{Action: action, Agent: cmd.Agent, Sessions: cmd.Sessions, Reason: cmd.Text,
		Allow: cmd.Allow, Rate: cmd.Rate, Actor: actor}
}

// requestHalt is the kill (and resume) flow shared by `/agent kill`, the Halt
// agent button and the Halt session modal: authority first; a refusal names
// who does hold it; an allowed halt asks for a confirmation click unless the
// agent opted out with `confirm: false`.
func (h *Handler) requestHalt(ctx context.Context, c caller, cmd incidents.HaltCommand) {
	dec, agent, err := h.svc.CheckAuthority(ctx, cmd.Actor, cmd.Agent, cmd.Action)
	if err != nil {
		h.failed(ctx, c, "check kill authority", err)
		return
	}
	if !dec.Allowed {
		text := refusal(dec, cmd)
		h.log.Info("halt refused", "agent", cmd.Agent, "action", cmd.Action, "user", cmd.Actor.ID)
		h.reply(ctx, c, textBlocks(text), text)
		return
	}
	if agent != nil {
		cmd.Agent = agent.Name
	}
	if incidents.IsContainAction(cmd.Action) && (agent == nil || agent.Halt.Confirm) {
		token, err := h.saveConfirmation(ctx, cmd, c.channelID)
		if err != nil {
			h.failed(ctx, c, "save halt confirmation", err)
			return
		}
		blocks, text := RenderConfirmContain(cmd, token)
		h.reply(ctx, c, blocks, text)
		return
	}
	text := h.runHalt(ctx, cmd)
	h.reply(ctx, c, textBlocks(text), text)
}

// runHalt performs cmd and says how it went. A halt that failed or could not
// be verified is reported as not done: people must not stop looking.
func (h *Handler) runHalt(ctx context.Context, cmd incidents.HaltCommand) string {
	halt, err := h.svc.Halt(ctx, cmd)
	if err != nil {
		h.log.Error("halt", "agent", cmd.Agent, "action", cmd.Action, "user", cmd.Actor.ID, "err", err)
	}
	return haltResult(cmd, halt, err)
}

func haltResult(cmd incidents.HaltCommand, halt *incidents.Halt, err error) string {
	agent, scope := "*"+Escape(cmd.Agent)+"*", scopeText(cmd.Sessions)
	verb, done := "halted", "Halted"
	switch cmd.Action {
	case incidents.ActionResume:
		verb, done = "resumed", "Resumed"
	case incidents.ActionRestrict:
		verb, done = "restricted", "Restricted"
		scope += " to " + Escape(strings.Join(cmd.Allow, ", "))
	case incidents.ActionThrottle:
		verb, done = "throttled", "Throttled"
		scope += fmt.Sprintf(" to %d/min", cmd.Rate)
	}
	switch {
	case halt != nil && halt.Status == incidents.HaltVerified:
		took := ""
		if d := halt.TimeToHalt(); d > 0 {
			took = " in " + formatDuration(d)
		}
		return fmt.Sprintf(":white_check_mark: %s %s (%s), verified%s.", done, agent, scope, took)
	case err != nil && incidents.ErrorCode(err) == incidents.EFORBIDDEN:
		return ":no_entry: " + userError(err)
	case halt != nil && halt.Status == incidents.HaltFailed:
		why := halt.Error
		if why == "" && err != nil {
			why = incidents.ErrorMessage(err)
		}
		text := fmt.Sprintf(":x: %s was NOT %s (%s): %s.", agent, verb, scope, Escape(strings.TrimSuffix(why, ".")))
		if incidents.IsContainAction(cmd.Action) {
			text += " Whoever holds kill authority has been re-paged. Try again, or run `reins kill` on the host."
		}
		return text
	case err != nil:
		return fmt.Sprintf(":x: %s was NOT %s (%s). %s", agent, verb, scope, userError(err))
	default:
		return fmt.Sprintf(":warning: %s was NOT verified as %s (%s): treat it as still running and check `/agent status %s`.",
			agent, verb, scope, Escape(cmd.Agent))
	}
}

// refusal tells someone without kill authority who does hold it. The service
// has already written the attempt to the audit log.
func refusal(dec ownership.Decision, cmd incidents.HaltCommand) string {
	action := "halt"
	if cmd.Action != "" {
		action = cmd.Action
	}
	var b strings.Builder
	fmt.Fprintf(&b, ":no_entry: You may not %s *%s*", action, Escape(cmd.Agent))
	if dec.Reason != "" {
		fmt.Fprintf(&b, ": %s", Escape(strings.TrimSuffix(dec.Reason, ".")))
	}
	b.WriteString(".\n")
	if len(dec.Holders) > 0 {
		fmt.Fprintf(&b, "Kill authority is held now by %s: ask one of them.", mentions(dec.Holders, maxSummaryHolders))
	} else {
		b.WriteString("Nobody holds kill authority right now: check `kill_authority` for this agent in reins.yaml, or use `reins kill` on the host.")
	}
	if len(dec.Unavailable) > 0 {
		fmt.Fprintf(&b, "\n_Could not ask: %s._", Escape(strings.Join(dec.Unavailable, ", ")))
	}
	b.WriteString("\nThis attempt has been recorded in the audit log.")
	return b.String()
}

func (h *Handler) status(ctx context.Context, c caller, agent string) {
	list, err := h.sharedStatus(ctx, agent, c.asked)
	if err != nil {
		h.failed(ctx, c, "agent status", err)
		return
	}
	if len(list) == 0 {
		text := "No agents are configured: reins runs without a config file, or its `agents:` section is empty."
		h.reply(ctx, c, textBlocks(text), text)
		return
	}
	var blocks []slack.Block
	for i, st := range list {
		if i == MaxBlocks-1 {
			blocks = append(blocks, section(fmt.Sprintf("…and %d more agents: ask `/agent status AGENT`.", len(list)-i)))
			break
		}
		blocks = append(blocks, section(formatStatus(st, h.publicURL)))
		// The SLA lines are for one agent asked by name: for all agents the
		// message would outgrow Slack's limits.
		if agent != "" && h.slaStatus != nil && st.Agent != nil && len(st.Agent.SLAs) > 0 {
			text, err := h.slaStatus(ctx, st.Agent.Name)
			if err != nil {
				h.log.Warn("SLA status", "agent", st.Agent.Name, "err", err)
				text = "SLA status unavailable: " + err.Error()
			}
			if text != "" {
				blocks = append(blocks, section(Escape(text)))
			}
		}
	}
	h.reply(ctx, c, blocks, fmt.Sprintf("Status of %d agent(s)", len(list)))
}

// formatStatus links each open incident to its page in the web view.
func formatStatus(st incidents.AgentStatus, publicURL string) string {
	var b strings.Builder
	name := "?"
	if st.Agent != nil {
		name = st.Agent.Name
	}
	switch {
	case st.Halted:
		fmt.Fprintf(&b, ":red_circle: *%s*: halted (all sessions)", Escape(name))
	case !st.ContainmentOf("").IsRunning() || len(st.Sessions) > 0 || len(st.HaltedSessions) > 0:
		fmt.Fprintf(&b, ":large_orange_circle: *%s*: %s", Escape(name), Escape(st.StateLine()))
	default:
		fmt.Fprintf(&b, ":large_green_circle: *%s*: running", Escape(name))
	}
	if l := st.LastHalt; l != nil {
		fmt.Fprintf(&b, "\nLast %s: %s by %s at %s, %s", l.Action, scopeText(l.Sessions), actorText(l.Actor), stamp(l.RequestedAt), l.Status)
		if l.Error != "" {
			fmt.Fprintf(&b, " (%s)", Escape(l.Error))
		}
	}
	if len(st.OpenIncidents) == 0 {
		b.WriteString("\nNo open incident.")
	}
	for _, inc := range st.OpenIncidents {
		fmt.Fprintf(&b, "\nOpen: %s", incidentLink(inc))
		if publicURL != "" {
			b.WriteString(" · " + Link(fmt.Sprintf("%s/incidents/%d", strings.TrimRight(publicURL, "/"), inc.ID), "page"))
		}
	}
	b.WriteString("\n" + holdersLine(st.Holders, st.Unavailable))
	return b.String()
}

func (h *Handler) who(ctx context.Context, c caller, agent string) {
	info, err := h.svc.Who(ctx, agent)
	if err != nil {
		h.failed(ctx, c, "agent who", err)
		return
	}
	text := formatWho(info)
	h.reply(ctx, c, textBlocks(text), text)
}

func formatWho(info *incidents.AgentInfo) string {
	a := info.Agent
	if a == nil {
		return "That agent has no ownership entry."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%s*", Escape(a.Name))
	if a.Description != "" {
		fmt.Fprintf(&b, ": %s", Escape(a.Description))
	}
	if t := info.Team; t != nil {
		fmt.Fprintf(&b, "\n*Team:* %s", Escape(t.Name))
		if t.SlackChannel != "" {
			fmt.Fprintf(&b, " (#%s)", Escape(t.SlackChannel))
		}
		if t.SlackUsergroup != "" {
			fmt.Fprintf(&b, " %s", Mention(t.SlackUsergroup))
		}
	} else if a.Team != "" {
		fmt.Fprintf(&b, "\n*Team:* %s", Escape(a.Team))
	}
	for _, role := range []struct {
		name   string
		people []string
	}{{"Responsible", a.RACI.Responsible}, {"Accountable", a.RACI.Accountable},
		{"Consulted", a.RACI.Consulted}, {"Informed", a.RACI.Informed}} {
		if len(role.people) > 0 {
			fmt.Fprintf(&b, "\n*%s:* %s", role.name, peopleOrChannels(role.people))
		}
	}
	b.WriteString("\n" + holdersLine(info.Holders, info.Unavailable))
	if a.Halt.Adapter != "" {
		fmt.Fprintf(&b, "\n*Halt:* %s adapter", Escape(a.Halt.Adapter))
		if !a.Halt.Confirm {
			b.WriteString(", no confirmation click")
		}
	}
	if a.Runbook != "" {
		fmt.Fprintf(&b, "\n*Runbook:* %s", Link(a.Runbook, ""))
	}
	if len(a.BlastRadius) > 0 {
		systems := make([]string, len(a.BlastRadius))
		for i, it := range a.BlastRadius {
			systems[i] = Escape(it.System)
		}
		fmt.Fprintf(&b, "\n*Can write to:* %s", strings.Join(systems, ", "))
	}
	return b.String()
}

func holdersLine(holders, unavailable []string) string {
	line := "*Kill authority now:* no one: `kill_authority` resolves to nobody right now"
	if len(holders) > 0 {
		line = "*Kill authority now:* " + mentions(holders, maxSummaryHolders)
	}
	if len(unavailable) > 0 {
		line += fmt.Sprintf(" _(could not ask: %s)_", Escape(strings.Join(unavailable, ", ")))
	}
	return line
}

func (h *Handler) declare(ctx context.Context, c caller, cmd Command) {
	title := cmd.Text
	if title == "" {
		title = "Declared by hand"
	}
	inc, created, err := h.svc.Declare(ctx, c.actor, cmd.Agent, title)
	if err != nil {
		h.failed(ctx, c, "declare incident", err)
		return
	}
	text := fmt.Sprintf(":rotating_light: %s declared %s.", actorText(c.actor), incidentLink(inc))
	if !created {
		text = fmt.Sprintf("*%s* already has an open incident: %s.", Escape(inc.Agent), incidentLink(inc))
		h.reply(ctx, c, textBlocks(text), text)
		return
	}
	if inc.SlackChannelID == "" {
		text += " Its channel is being created."
	}
	// A declared incident is news for the channel it was declared in.
	if err := h.respond(ctx, c.responseURL, textBlocks(text), text, false, false); err != nil {
		h.log.Warn("announce declared incident", "incident", inc.ID, "err", err)
	}
}

// incidentCommand runs the commands that act on the incident whose channel
// they were typed in.
func (h *Handler) incidentCommand(ctx context.Context, c caller, cmd Command) {
	inc, err := h.svc.IncidentByChannel(ctx, c.channelID)
	if incidents.ErrorCode(err) == incidents.ENOTFOUND {
		text := fmt.Sprintf("`/agent %s` works in an incident channel (`#inc-…`); this channel is not one.", cmd.Verb)
		h.reply(ctx, c, textBlocks(text), text)
		return
	} else if err != nil {
		h.failed(ctx, c, "find incident by channel", err)
		return
	}
	var text string
	switch cmd.Verb {
	case VerbChecklist:
		var cl *incidents.Checklist
		if cl, err = h.svc.StartChecklist(ctx, c.actor, inc.ID); err == nil {
			text = fmt.Sprintf("The blast-radius checklist is in the thread: %d of %d answered.", cl.Answered(), len(cl.Items))
		}
	case VerbResolve:
		var ok bool
		if ok, text, err = h.mayResolve(ctx, c.actor, inc); err == nil && !ok {
			h.log.Info("resolve refused", "incident", inc.ID, "user", c.actor.ID)
			h.reply(ctx, c, textBlocks(text), text)
			return
		}
		if err != nil {
			break
		}
		if _, err = h.svc.Resolve(ctx, c.actor, inc.ID, cmd.Text); err == nil {
			text = fmt.Sprintf("Incident #%d resolved. The postmortem questions follow in a thread.", inc.ID)
		}
	case VerbPostmortem:
		if err = h.svc.PostPostmortem(ctx, c.actor, inc.ID); err == nil {
			text = "The postmortem will appear in this channel in a moment."
		}
	}
	if err != nil {
		h.failed(ctx, c, cmd.Verb, err)
		return
	}
	h.reply(ctx, c, textBlocks(text), text)
}

// helpReply is the usage, led by what was wrong with cmd when something was.
func helpReply(cmd Command) ([]slack.Block, string) {
	if cmd.Err != "" && cmd.Verb != VerbHelp {
		text := fmt.Sprintf(":warning: %s\nUsage: %s", Escape(cmd.Err), usage(cmd.Verb))
		return textBlocks(text), text
	}
	var b strings.Builder
	if cmd.Err != "" {
		b.WriteString(":warning: " + Escape(cmd.Err) + "\n")
	}
	b.WriteString("*`/agent` commands*")
	for _, v := range verbs {
		b.WriteString("\n• " + v.usage)
	}
	b.WriteString("\nWhen Slack is down: `reins kill AGENT --reason TEXT` on the reins host.")
	return textBlocks(b.String()), b.String()
}

// textBlocks is mrkdwn text as section blocks, split to Slack's 3,000
// characters per section (at line ends where possible).
func textBlocks(text string) []slack.Block {
	var blocks []slack.Block
	for text != "" && len(blocks) < MaxBlocks {
		part := text
		if len(part) > MaxSectionText {
			cut := strings.LastIndexByte(text[:MaxSectionText], '\n')
			if cut <= 0 {
				cut = MaxSectionText
				for cut > 0 && !isRuneStart(text[cut]) {
					cut--
				}
			}
			part = text[:cut]
		}
		text = strings.TrimPrefix(text[len(part):], "\n")
		blocks = append(blocks, section(part))
	}
	return blocks
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// peopleOrChannels renders a RACI list: IDs as mentions, e-mails as text,
// and bare names (only `informed` has them) as channels.
func peopleOrChannels(people []string) string {
	out := make([]string, len(people))
	for i, p := range people {
		out[i] = Mention(p)
		if !strings.Contains(p, "@") && out[i] == Escape(p) {
			out[i] = "#" + out[i]
		}
	}
	return strings.Join(out, ", ")
}

func incidentLink(inc *incidents.Incident) string {
	text := fmt.Sprintf("incident #%d", inc.ID)
	if inc.Title != "" {
		text += " (" + Escape(clip(inc.Title, 150)) + ")"
	}
	if inc.SlackChannelID != "" {
		text += " in <#" + inc.SlackChannelID + ">"
	}
	return text
}

func scopeText(sessions []string) string {
	switch len(sessions) {
	case 0:
		return "all sessions"
	case 1:
		return "session " + Escape(sessions[0])
	}
	return "sessions " + Escape(strings.Join(sessions, ", "))
}

func formatDuration(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}
