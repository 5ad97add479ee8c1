package bot

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/reins-oss/reins/incidents"
	sessionrec "github.com/reins-oss/reins/incidents/sessions"
)

var severityEmoji = map[string]string{
	incidents.SeverityCritical: ":fire:",
	incidents.SeverityError:    ":red_circle:",
	incidents.SeverityWarning:  ":warning:",
	incidents.SeverityInfo:     ":information_source:",
}

// RenderSummary renders the pinned incident summary: what fired, whose agent
// it is, the sessions, who may halt it, halts so far, checklist progress and
// the buttons to act. An unowned incident says so and offers no halt buttons.
func RenderSummary(v *incidents.SummaryView) ([]slack.Block, string) {
	if v == nil || v.Incident == nil {
		return []slack.Block{section("Incident details are unavailable.")}, "Incident details are unavailable."
	}
	inc := v.Incident
	title := fmt.Sprintf("#%d %s: %s", inc.ID, inc.Agent, inc.Title)
	blocks := []slack.Block{header(title), summaryStatus(v), whatFired(v)}
	if v.Collects != "" {
		blocks = append(blocks, section(collectorText(v)))
	} else if v.Agent == nil {
		blocks = append(blocks, section(":grey_question: *Unowned agent.* `"+EscapeLimit(PlainText(inc.Agent), 100)+
			"` is not in reins.yaml: there is no owner, no kill authority and no halt adapter. "+
			"Add it to the config, then `/agent declare` a new incident."))
	} else {
		blocks = append(blocks, ownerSection(v), killSection(v))
	}
	if s := sessionsSection(inc.Agent, v.Sessions, v.Totals, v.Outside, v.PublicURL); s != nil {
		blocks = append(blocks, s)
	}
	if s := linksSection(v); s != nil {
		blocks = append(blocks, s)
	}
	if s := haltsSection(v.Halts); s != nil {
		blocks = append(blocks, s)
	}
	blocks = append(blocks, slack.NewActionBlock("summary_actions", summaryButtons(v)...))
	blocks = append(blocks, contextBlock(fmt.Sprintf("Incident #%d · opened %s · source %s",
		inc.ID, stamp(inc.CreatedAt), EscapeLimit(PlainText(orDefault(inc.Source, "unknown")), 50))))
	fallback := EscapeLimit(PlainText(fmt.Sprintf("%s (%s, %s)", title, orDefault(inc.Severity, "unknown severity"), inc.Status)), 300)
	return capBlocks(blocks), fallback
}

func summaryStatus(v *incidents.SummaryView) slack.Block {
	inc := v.Incident
	status := ":red_circle: Open"
	if inc.Status == incidents.StatusResolved {
		status = ":white_check_mark: Resolved"
		if inc.ResolvedAt != nil {
			status += " at " + clock(*inc.ResolvedAt)
		}
	}
	if inc.AckedAt != nil {
		status += "\nAcknowledged " + clock(*inc.AckedAt)
		if inc.AckedBy != "" {
			status += " by " + EscapeLimit(PlainText(inc.AckedBy), 100)
		}
	}
	sev := strings.TrimSpace(severityEmoji[inc.Severity] + " " + EscapeLimit(PlainText(orDefault(inc.Severity, "unknown")), 30))
	progress := "not started"
	if v.Total > 0 {
		progress = fmt.Sprintf("%d of %d answered", v.Answered, v.Total)
	}
	fields := []*slack.TextBlockObject{
		mrkdwn("*Status*\n" + status),
		mrkdwn("*Severity*\n" + sev),
		mrkdwn("*Agent*\n" + EscapeLimit(PlainText(inc.Agent), 200)),
		mrkdwn("*Blast-radius checklist*\n" + progress),
	}
	return slack.NewSectionBlock(nil, fields, nil)
}

func whatFired(v *incidents.SummaryView) slack.Block {
	lines := []string{"*What fired*"}
	if a := v.Latest; a != nil {
		line := "*" + EscapeLimit(PlainText(orDefault(a.Title, "alert")), 300) + "*"
		if a.Source != "" {
			line += " from " + EscapeLimit(PlainText(a.Source), 50)
		}
		lines = append(lines, line)
		if a.Summary != "" && a.Summary != a.Title {
			lines = append(lines, quote(EscapeLimit(a.Summary, maxAlertSummary)))
		}
		if a.Status == incidents.AlertResolved {
			rec := ":white_check_mark: Alert recovered"
			if a.EndsAt != nil {
				rec += " at " + clock(*a.EndsAt)
			}
			lines = append(lines, rec)
		}
	} else {
		lines = append(lines, EscapeLimit(v.Incident.Title, 300))
	}
	counts := fmt.Sprintf("%d firing · %d recovered", v.Firing, v.Resolved)
	if v.Firing == 0 && v.Resolved > 0 {
		counts += " · all alerts recovered"
	}
	lines = append(lines, counts)
	return section(strings.Join(lines, "\n"))
}

func ownerSection(v *incidents.SummaryView) slack.Block {
	a := v.Agent
	var lines []string
	if a.Description != "" {
		lines = append(lines, EscapeLimit(a.Description, 500))
	}
	team := "*Owner team:* " + EscapeLimit(PlainText(orDefault(a.Team, "none")), 100)
	if v.Team != nil && v.Team.SlackChannel != "" {
		team += " (#" + EscapeLimit(PlainText(v.Team.SlackChannel), 80) + ")"
	}
	lines = append(lines, team)
	if len(a.RACI.Responsible) > 0 {
		lines = append(lines, "*Responsible:* "+mentions(a.RACI.Responsible, 10))
	}
	return section(strings.Join(lines, "\n"))
}

func mentions(people []string, limit int) string {
	var out []string
	for i, p := range people {
		if i == limit {
			break
		}
		out = append(out, Mention(p))
	}
	return strings.Join(more(out, len(people)), ", ")
}

func killSection(v *incidents.SummaryView) slack.Block {
	holders := "nobody can be resolved right now: check `kill_authority` in reins.yaml, or use `reins kill` on the reins host"
	if len(v.KillHolders) > 0 {
		holders = mentions(v.KillHolders, maxSummaryHolders)
	}
	return section("*Kill authority:* " + holders)
}

// sessionsSection links each session to its trace and, with a public URL, to
// its waterfall in the web view (the incident's agent's session of that
// ID), with the totals reins recorded for it.
func sessionsSection(agent string, sessions []incidents.Link, totals map[string]sessionrec.Totals, outside []string, publicURL string) slack.Block {
	if len(sessions) == 0 {
		return nil
	}
	var lines []string
	for i, s := range sessions {
		if i == maxSummarySessions {
			break
		}
		line := "• " + Link(s.URL, orDefault(s.Text, s.URL))
		if publicURL != "" {
			line += " · " + Link(strings.TrimRight(publicURL, "/")+"/sessions/"+url.PathEscape(s.Text)+"?agent="+url.QueryEscape(agent), "waterfall")
		}
		if t, ok := totals[s.Text]; ok {
			line += "\n    " + Escape(sessionrec.FormatTotals(t))
		}
		lines = append(lines, line)
	}
	lines = more(lines, len(sessions))
	if len(outside) > 0 {
		lines = append(lines, ":warning: Tool calls outside the declared blast radius: "+EscapeLimit(strings.Join(outside, ", "), 500))
	}
	return section("*Sessions (" + strconv.Itoa(len(sessions)) + ")*\n" + strings.Join(lines, "\n"))
}

func linksSection(v *incidents.SummaryView) slack.Block {
	var links []string
	if v.PublicURL != "" {
		base := strings.TrimRight(v.PublicURL, "/")
		links = append(links, Link(fmt.Sprintf("%s/incidents/%d", base, v.Incident.ID), "Incident page"))
		if v.Agent != nil {
			links = append(links, Link(base+"/agents/"+url.PathEscape(v.Agent.Name), "Agent page"))
		}
	}
	if v.Agent != nil && SafeURL(v.Agent.Runbook) != "" {
		links = append(links, Link(v.Agent.Runbook, "Runbook"))
	}
	n := 0
	for _, l := range v.Incident.Links {
		if SafeURL(l.URL) == "" {
			continue
		}
		n++
		if n <= maxSummaryLinks {
			links = append(links, Link(l.URL, orDefault(l.Text, "link")))
		}
	}
	if n > maxSummaryLinks {
		links = append(links, fmt.Sprintf("+%d more", n-maxSummaryLinks))
	}
	if len(links) == 0 {
		return nil
	}
	return section("*Links:* " + strings.Join(links, " · "))
}

func haltsSection(halts []*incidents.Halt) slack.Block {
	if len(halts) == 0 {
		return nil
	}
	var lines []string
	for i, h := range halts {
		if i == maxSummaryHalts {
			break
		}
		lines = append(lines, haltLine(h))
	}
	return section("*Halts*\n" + strings.Join(more(lines, len(halts)), "\n"))
}

func haltLine(h *incidents.Halt) string {
	verb, icon := "Halt", ":octagonal_sign:"
	switch h.Action {
	case incidents.ActionResume:
		verb, icon = "Resume", ":arrow_forward:"
	case incidents.ActionRestrict:
		verb, icon = "Restrict (to "+EscapeLimit(PlainText(strings.Join(h.Allow, ", ")), 200)+")", ":construction:"
	case incidents.ActionThrottle:
		verb, icon = fmt.Sprintf("Throttle (to %d/min)", h.Rate), ":turtle:"
	}
	scope := "all sessions"
	if len(h.Sessions) > 0 {
		scope = "session " + EscapeLimit(PlainText(strings.Join(h.Sessions, ", ")), 200)
	}
	line := fmt.Sprintf("%s %s of %s via %s by %s at %s: ", icon, verb, scope,
		EscapeLimit(PlainText(orDefault(h.Adapter, "unknown adapter")), 40), actorText(h.Actor), clock(h.RequestedAt))
	switch h.Status {
	case incidents.HaltVerified:
		line += "*verified*"
		if d := h.TimeToHalt(); d > 0 {
			line += fmt.Sprintf(" (took %s)", d.Round(100*time.Millisecond))
		}
	case incidents.HaltFailed:
		line = strings.Replace(line, icon, ":x:", 1) + "*failed*"
		if h.Error != "" {
			line += " — " + EscapeLimit(PlainText(h.Error), 300)
		}
	default:
		line += "_in progress_"
	}
	return line
}

func summaryButtons(v *incidents.SummaryView) []slack.BlockElement {
	inc := v.Incident
	var out []slack.BlockElement
	if v.Agent != nil && inc.Status != incidents.StatusResolved {
		value := fmt.Sprintf("%d|%s", inc.ID, v.Agent.Name)
		out = append(out,
			button(ActionHaltAgent, value, "Halt agent").WithStyle(slack.StyleDanger),
			button(ActionHaltSession, value, "Halt session"))
	}
	label := "Start blast-radius checklist"
	if v.Total > 0 {
		label = "Resume blast-radius checklist"
	}
	return append(out, button(ActionStartChecklist, strconv.FormatInt(inc.ID, 10), label).WithStyle(slack.StylePrimary))
}

// collectorText explains an incident that collects several agents' alerts:
// the unrouted one (agents not in reins.yaml) or the overflow of a storm.
func collectorText(v *incidents.SummaryView) string {
	seen := make([]string, 0, len(v.SeenAgents))
	for _, name := range v.SeenAgents {
		seen = append(seen, "`"+EscapeLimit(PlainText(name), 100)+"`")
	}
	list := strings.Join(seen, ", ")
	if list == "" {
		list = "none yet"
	}
	if v.Collects == "overflow" {
		return ":ocean: *Alert storm overflow.* This source opened more new incidents in a minute than " +
			"`alerts.max_new_incidents_per_minute` allows, so further alerts joined this one incident. " +
			"Agents seen: " + list + ". Each agent's next alert after the storm opens its own incident."
	}
	return ":grey_question: *Unrouted alerts.* These alerts name agents reins.yaml does not have, so nobody owns them " +
		"and nothing can be halted. Agent label values seen: " + list + ". " +
		"Add this agent to reins.yaml (or as an `aliases:` entry of an existing agent); its next alerts then open its own incident."
}
