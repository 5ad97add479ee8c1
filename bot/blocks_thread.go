package bot

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/reins-oss/reins/incidents"
)

// choiceLabels are the checklist answers as buttons and as recorded answers.
var choiceLabels = map[string]string{
	incidents.ChoiceNoImpact:      ":white_check_mark: No impact",
	incidents.ChoiceImpactFound:   ":red_circle: Impact found",
	incidents.ChoiceUnknown:       ":grey_question: Unknown",
	incidents.ChoiceNotApplicable: ":heavy_minus_sign: Not applicable",
}

// RenderChecklistItem renders one checklist item of the thread: the question,
// what to check, who to ask, where to look, and either the four answer
// buttons or the answer given with buttons to change it.
func RenderChecklistItem(v *incidents.ChecklistItemView) ([]slack.Block, string) {
	if v == nil || v.Incident == nil || v.Item == nil {
		return []slack.Block{section("Checklist item unavailable.")}, "Checklist item unavailable."
	}
	it := v.Item
	pos := ""
	if v.Total > 0 {
		pos = fmt.Sprintf("*Item %d of %d* · ", it.Position, v.Total)
	}
	blocks := []slack.Block{section(pos + EscapeLimit(it.Question, 2000))}
	var ctx []string
	if it.Check != "" {
		ctx = append(ctx, "*Check:* "+EscapeLimit(it.Check, 1000))
	}
	if it.Owner != "" {
		ctx = append(ctx, "*Owner:* "+Mention(it.Owner))
	}
	if it.Link != "" {
		ctx = append(ctx, "*Where:* "+Link(it.Link, "open"))
	}
	if len(ctx) > 0 {
		blocks = append(blocks, contextBlock(ctx...))
	}
	value := fmt.Sprintf("%d|%s", v.Incident.ID, it.Key)
	fallback := EscapeLimit(PlainText(fmt.Sprintf("Checklist item %d of %d: %s", it.Position, v.Total, it.Question)), 300)
	if it.Choice == "" {
		blocks = append(blocks, slack.NewActionBlock("checklist_answer", checklistButtons(value, true)...))
		return blocks, fallback
	}
	answer := orDefault(choiceLabels[it.Choice], Escape(it.Choice))
	line := "*" + answer + "*"
	if it.AnsweredBy != nil {
		line += " — " + actorText(*it.AnsweredBy)
	}
	if it.AnsweredAt != nil {
		line += " at " + clock(*it.AnsweredAt)
	}
	blocks = append(blocks, section(line))
	if it.Details != "" {
		blocks = append(blocks, section(quote(EscapeLimit(it.Details, 2500))))
	}
	blocks = append(blocks, contextBlock("Change answer:"),
		slack.NewActionBlock("checklist_change", checklistButtons(value, false)...))
	return blocks, fallback + " (answered)"
}

func checklistButtons(value string, styled bool) []slack.BlockElement {
	noImpact := button(ActionChecklistNoImpact, value, choiceLabels[incidents.ChoiceNoImpact])
	impact := button(ActionChecklistImpactFound, value, choiceLabels[incidents.ChoiceImpactFound])
	if styled {
		noImpact.WithStyle(slack.StylePrimary)
		impact.WithStyle(slack.StyleDanger)
	}
	return []slack.BlockElement{noImpact, impact,
		button(ActionChecklistUnknown, value, choiceLabels[incidents.ChoiceUnknown]),
		button(ActionChecklistNotApplicable, value, choiceLabels[incidents.ChoiceNotApplicable]),
	}
}

// RenderPostmortemQuestion renders one question of the postmortem thread
// with its hint, the answer so far, and a button to answer or edit it.
func RenderPostmortemQuestion(v *incidents.PostmortemQuestionView) ([]slack.Block, string) {
	if v == nil || v.Incident == nil {
		return []slack.Block{section("Postmortem question unavailable.")}, "Postmortem question unavailable."
	}
	pos := ""
	if v.Total > 0 {
		pos = fmt.Sprintf("*Question %d of %d* · ", v.Position, v.Total)
	}
	label := "Answer"
	if v.Answer != nil {
		label = "Edit answer"
	}
	btn := button(ActionPostmortemAnswer, fmt.Sprintf("%d|%s", v.Incident.ID, v.Key), label)
	if v.Answer == nil {
		btn.WithStyle(slack.StylePrimary)
	}
	q := slack.NewSectionBlock(mrkdwn(TruncateEscaped(pos+EscapeLimit(v.Question, 2000), MaxSectionText)), nil, slack.NewAccessory(btn))
	blocks := []slack.Block{q}
	if v.Hint != "" {
		blocks = append(blocks, contextBlock(EscapeLimit(v.Hint, 1000)))
	}
	if a := v.Answer; a != nil {
		text := strings.TrimSpace(a.Text)
		if text == "" {
			text = "(empty)"
		}
		blocks = append(blocks, section(quote(EscapeLimit(text, 2900))),
			contextBlock("Answered by "+actorText(a.Actor)+" at "+clock(a.At)))
	}
	fallback := EscapeLimit(PlainText(fmt.Sprintf("Postmortem question %d of %d: %s", v.Position, v.Total, v.Question)), 300)
	return blocks, fallback
}

// RenderConfirmHalt asks the caller to confirm a halt. The token names the
// pending command held by the interaction handler; it is not cut to fit, so
// keep it under Slack's 2,000-character value limit.
func RenderConfirmHalt(agent string, sessions []string, reason string, incidentID int64, token string) ([]slack.Block, string) {
	return RenderConfirmContain(incidents.HaltCommand{Action: incidents.ActionHalt, Agent: agent, Sessions: sessions,
		Reason: reason, IncidentID: incidentID}, token)
}

// RenderConfirmContain asks for the one confirmation click of a halt, a
// restriction or a throttle, saying what the target may still do.
func RenderConfirmContain(cmd incidents.HaltCommand, token string) ([]slack.Block, string) {
	agent, sessions, reason, incidentID := cmd.Agent, cmd.Sessions, cmd.Reason, cmd.IncidentID
	name := PlainLimit(agent, 40)
	scope := "all sessions"
	if len(sessions) == 1 {
		scope = "session " + PlainLimit(sessions[0], 100)
	} else if len(sessions) > 1 {
		scope = PlainLimit(fmt.Sprintf("%d sessions: %s", len(sessions), strings.Join(sessions, ", ")), 150)
	}
	verb, does := "Halt", "stops "+Escape(scope)+" now"
	switch cmd.Action {
	case incidents.ActionRestrict:
		verb, does = "Restrict", "lets "+Escape(scope)+" call only "+EscapeLimit(strings.Join(cmd.Allow, ", "), 500)+" from now"
	case incidents.ActionThrottle:
		verb, does = "Throttle", fmt.Sprintf("lets %s make at most %d model calls a minute from now", Escape(scope), cmd.Rate)
	}
	lines := []string{":warning: *" + verb + " " + Escape(name) + "?* This " + does + " through its halt adapter."}
	if reason != "" {
		lines = append(lines, "*Reason:* "+EscapeLimit(reason, 1000))
	}
	if incidentID > 0 {
		lines = append(lines, fmt.Sprintf("*Incident:* #%d", incidentID))
	}
	dialogText := "Stop " + scope + " of " + name + " now."
	if verb != "Halt" {
		dialogText = verb + " " + scope + " of " + name + " now."
	}
	if reason != "" {
		dialogText += " Reason: " + PlainText(reason)
	}
	confirm := slack.NewConfirmationBlockObject(
		plain(PlainLimit(verb+" "+name+"?", MaxConfirmTitle)),
		plain(Truncate(dialogText, MaxConfirmText)),
		plain(verb+" now"), plain("Cancel")).WithStyle(slack.StyleDanger)
	halt := button(ActionConfirmHalt, token, verb+" "+name).WithStyle(slack.StyleDanger).WithConfirm(confirm)
	blocks := []slack.Block{
		section(strings.Join(lines, "\n")),
		slack.NewActionBlock("halt_confirm", halt, button(ActionCancelHalt, token, "Cancel")),
	}
	return blocks, Escape("Confirm: " + strings.ToLower(verb) + " " + name + " (" + scope + ")?")
}

// RenderReminder renders a nudge about a stalled checklist or an overdue
// postmortem, with buttons to snooze or stop the nudges.
func RenderReminder(incidentID int64, text string) ([]slack.Block, string) {
	blocks := []slack.Block{section(":alarm_clock: " + EscapeLimit(text, 2900)), reminderActions(incidentID)}
	return blocks, EscapeLimit(PlainText(text), 300)
}

// reminderActions are the Snooze 1 h and Stop reminders buttons.
func reminderActions(incidentID int64) slack.Block {
	value := strconv.FormatInt(incidentID, 10)
	return slack.NewActionBlock("reminder_actions",
		button(ActionSnoozeReminders, value, "Snooze 1 h"),
		button(ActionStopReminders, value, "Stop reminders"))
}
