package bot

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/reins-oss/reins/incidents"
)

// snoozeFor is how long the Snooze button silences checklist reminders.
const snoozeFor = time.Hour

// checklistChoices maps the checklist buttons to answers.
var checklistChoices = map[string]string{
	ActionChecklistNoImpact:      incidents.ChoiceNoImpact,
	ActionChecklistImpactFound:   incidents.ChoiceImpactFound,
	ActionChecklistUnknown:       incidents.ChoiceUnknown,
	ActionChecklistNotApplicable: incidents.ChoiceNotApplicable,
}

// interaction acknowledges a button click or modal submission and starts its
// work. A non-nil result is the immediate answer (modal validation errors).
func (h *Handler) interaction(ic slack.InteractionCallback) any {
	switch ic.Type {
	case slack.InteractionTypeBlockActions:
		for _, a := range ic.ActionCallback.BlockActions {
			h.blockAction(ic, *a)
		}
	case slack.InteractionTypeViewSubmission:
		return h.viewSubmission(ic)
	}
	return nil
}

func (h *Handler) blockAction(ic slack.InteractionCallback, a slack.BlockAction) {
	c := caller{actor: slackActor(ic.User.ID, userName(ic.User)), channelID: channelOf(ic),
		responseURL: ic.ResponseURL, viaChannel: true}
	id, rest := splitValue(a.Value)
	switch a.ActionID {
	case ActionConfirmHalt:
		h.spawnHalt("confirm halt", func(ctx context.Context) { h.confirmHalt(ctx, c, a.Value) })
	case ActionCancelHalt:
		h.spawn("cancel halt", func(ctx context.Context) { h.cancelHalt(ctx, c, a.Value) })
	case ActionHaltAgent:
		cmd := incidents.HaltCommand{Action: incidents.ActionHalt, Agent: rest, Actor: c.actor, IncidentID: id}
		if text := h.refuseNow(context.Background(), cmd); text != "" {
			h.spawn("halt refused", func(ctx context.Context) { h.reply(ctx, c, textBlocks(text), text) })
			return
		}
		h.spawnHalt("halt agent button", func(ctx context.Context) { h.requestHalt(ctx, c, cmd) })
	case ActionHaltSession:
		h.spawnHalt("halt session modal", func(ctx context.Context) {
			inc, err := h.svc.FindIncident(ctx, id)
			if err != nil {
				h.failed(ctx, c, "find incident for halt session", err)
				return
			}
			h.openView(ctx, c, ic.TriggerID, HaltSessionModal(id, rest, inc.Sessions))
		})
	case ActionApproveResume:
		agent, sessions, _ := strings.Cut(rest, " ")
		cmd := incidents.HaltCommand{Action: incidents.ActionResume, Agent: agent, Actor: c.actor, IncidentID: id}
		if sessions != "" {
			cmd.Sessions = strings.Split(sessions, ",")
		}
		if text := h.refuseNow(context.Background(), cmd); text != "" {
			h.spawn("resume refused", func(ctx context.Context) { h.reply(ctx, c, textBlocks(text), text) })
			return
		}
		h.spawnHalt("approve resume button", func(ctx context.Context) { h.requestHalt(ctx, c, cmd) })
	case ActionStartChecklist:
		h.spawn("start checklist", func(ctx context.Context) {
			if _, err := h.svc.StartChecklist(ctx, c.actor, id); err != nil {
				h.failed(ctx, c, "start checklist", err)
			}
		})
	case ActionChecklistImpactFound:
		// Details are asked in a modal; the answer is saved on submission.
		question := clip(ic.Message.Text, 150)
		h.spawn("impact modal", func(ctx context.Context) {
			h.openView(ctx, c, ic.TriggerID, ImpactModal(id, rest, question))
		})
	case ActionChecklistNoImpact, ActionChecklistUnknown, ActionChecklistNotApplicable:
		choice := checklistChoices[a.ActionID]
		h.spawn("answer checklist", func(ctx context.Context) {
			if _, err := h.svc.AnswerChecklist(ctx, c.actor, id, rest, choice, ""); err != nil {
				h.failed(ctx, c, "answer checklist", err)
			}
		})
	case ActionPostmortemAnswer:
		question := clip(ic.Message.Text, 150)
		h.spawn("postmortem modal", func(ctx context.Context) {
			h.openView(ctx, c, ic.TriggerID, PostmortemModal(id, rest, question, ""))
		})
	case ActionSnoozeReminders, ActionStopReminders:
		h.spawn("reminders", func(ctx context.Context) { h.reminders(ctx, c, a.ActionID, id) })
	}
}

// confirmHalt runs a confirmed halt exactly once, on whichever replica the
// click reaches: the store hands the confirmation to one click only.
func (h *Handler) confirmHalt(ctx context.Context, c caller, token string) {
	p, asker, used, ok, err := h.findConfirmation(ctx, token)
	switch {
	case err != nil:
		h.failed(ctx, c, "find halt confirmation", err)
		return
	case !ok:
		h.replace(ctx, c, "This confirmation has expired or was already used. Run `/agent kill …` again if the agent still needs halting.")
		return
	case asker != c.actor.ID:
		text := fmt.Sprintf("Only <@%s>, who asked for this halt, can confirm it.", asker)
		h.reply(ctx, caller{actor: c.actor, responseURL: c.responseURL}, textBlocks(text), text)
		return
	case used:
		h.replace(ctx, c, alreadyUsed(p))
		return
	}
	taken, err := h.state.TakeConfirmation(ctx, token, c.actor.ID, h.now())
	if err != nil {
		h.failed(ctx, c, "take halt confirmation", err)
		return
	}
	if !taken {
		h.replace(ctx, c, alreadyUsed(p)) // a concurrent click, here or on another replica, took it
		return
	}
	cmd := p.command()
	h.replace(ctx, c, fmt.Sprintf(":hourglass_flowing_sand: Halting *%s* (%s)…", Escape(cmd.Agent), scopeText(cmd.Sessions)))
	h.replace(ctx, c, h.runHalt(ctx, cmd))
}

func alreadyUsed(p pendingHalt) string {
	return fmt.Sprintf("This confirmation was already used: the halt of *%s* ran once. See `/agent status %s`.",
		Escape(p.Agent), Escape(p.Agent))
}

func (h *Handler) cancelHalt(ctx context.Context, c caller, token string) {
	p, asker, used, ok, err := h.findConfirmation(ctx, token)
	if err != nil {
		h.failed(ctx, c, "find halt confirmation", err)
		return
	}
	if !ok || used || asker != c.actor.ID {
		h.replace(ctx, c, "This confirmation has expired or was already used.")
		return
	}
	if taken, err := h.state.TakeConfirmation(ctx, token, c.actor.ID, h.now()); err != nil {
		h.failed(ctx, c, "cancel halt confirmation", err)
	} else if taken {
		h.replace(ctx, c, fmt.Sprintf("Cancelled: *%s* was not halted.", Escape(p.Agent)))
	} else {
		h.replace(ctx, c, alreadyUsed(p))
	}
}

// replace swaps the message the button was on (the ephemeral confirmation)
// for text, so its buttons cannot be clicked again.
func (h *Handler) replace(ctx context.Context, c caller, text string) {
	if c.responseURL == "" {
		h.reply(ctx, c, textBlocks(text), text)
		return
	}
	if err := h.respond(ctx, c.responseURL, textBlocks(text), text, true, true); err != nil {
		h.log.Warn("replace confirmation", "user", c.actor.ID, "err", err)
	}
}

func (h *Handler) reminders(ctx context.Context, c caller, action string, incidentID int64) {
	var err error
	text := fmt.Sprintf("Checklist reminders for incident #%d are snoozed for an hour.", incidentID)
	if action == ActionSnoozeReminders {
		err = h.svc.SnoozeReminders(ctx, c.actor, incidentID, snoozeFor)
	} else {
		err = h.svc.StopReminders(ctx, c.actor, incidentID)
		text = fmt.Sprintf("Checklist reminders for incident #%d are stopped.", incidentID)
	}
	if err != nil {
		h.failed(ctx, c, "reminders", err)
		return
	}
	h.reply(ctx, c, textBlocks(text), text)
}

// openView opens a modal. The trigger_id dies 3 s after the click, so this is
// the first Web API call of its job.
func (h *Handler) openView(ctx context.Context, c caller, triggerID string, v slack.ModalViewRequest) {
	err := errNoWebAPI
	if h.chat != nil {
		err = h.chat.OpenView(ctx, triggerID, v)
	}
	if err != nil {
		h.log.Warn("open modal", "callback", v.CallbackID, "user", c.actor.ID, "err", err)
		text := ":warning: Could not open the form (Slack allows 3 seconds). Click the button again."
		h.reply(ctx, c, textBlocks(text), text)
	}
}

// viewSubmission validates a modal at once (Slack shows errors next to the
// inputs) and does the work after the ack. A modal has no channel of its own:
// answers go to the incident's channel.
func (h *Handler) viewSubmission(ic slack.InteractionCallback) any {
	v := ic.View
	id, rest := splitValue(v.PrivateMetadata)
	actor := slackActor(ic.User.ID, userName(ic.User))
	switch v.CallbackID {
	case CallbackHaltSession:
		session := strings.TrimSpace(stateValue(v.State, BlockHaltSession, InputHaltSession))
		if session == "" {
			return slack.NewErrorsViewSubmissionResponse(map[string]string{BlockHaltSession: "Pick the session to halt."})
		}
		reason := strings.TrimSpace(stateValue(v.State, BlockHaltReason, InputHaltReason))
		cmd := incidents.HaltCommand{Action: incidents.ActionHalt, Agent: rest,
			Sessions: []string{session}, Reason: reason, Actor: actor, IncidentID: id}
		if text := h.refuseNow(context.Background(), cmd); text != "" {
			h.spawn("halt refused", func(ctx context.Context) {
				c := h.incidentCaller(ctx, actor, id)
				h.reply(ctx, c, textBlocks(text), text)
			})
			return nil
		}
		h.spawnHalt("halt session", func(ctx context.Context) {
			h.requestHalt(ctx, h.incidentCaller(ctx, actor, id), cmd)
		})
	case CallbackImpactModal:
		what := strings.TrimSpace(stateValue(v.State, BlockImpactWhat, InputImpactWhat))
		if what == "" {
			return slack.NewErrorsViewSubmissionResponse(map[string]string{BlockImpactWhat: "Say what was affected."})
		}
		details := what
		if n := strings.TrimSpace(stateValue(v.State, BlockImpactCount, InputImpactCount)); n != "" {
			details += "; " + n
		}
		h.spawn("answer impact", func(ctx context.Context) {
			if _, err := h.svc.AnswerChecklist(ctx, actor, id, rest, incidents.ChoiceImpactFound, details); err != nil {
				h.failed(ctx, h.incidentCaller(ctx, actor, id), "answer checklist impact", err)
			}
		})
	case CallbackPostmortemModal:
		text := strings.TrimSpace(stateValue(v.State, BlockPostmortem, InputPostmortem))
		if text == "" {
			return slack.NewErrorsViewSubmissionResponse(map[string]string{BlockPostmortem: "Write an answer, or close the form."})
		}
		h.spawn("answer postmortem", func(ctx context.Context) {
			if err := h.svc.AnswerPostmortem(ctx, actor, id, rest, text); err != nil {
				h.failed(ctx, h.incidentCaller(ctx, actor, id), "answer postmortem", err)
			}
		})
	}
	return nil
}

// incidentCaller addresses answers to actor in the incident's channel.
func (h *Handler) incidentCaller(ctx context.Context, actor incidents.Actor, incidentID int64) caller {
	c := caller{actor: actor, viaChannel: true}
	if inc, err := h.svc.FindIncident(ctx, incidentID); err == nil {
		c.channelID = inc.SlackChannelID
	} else {
		h.log.Warn("find incident for modal answer", "incident", incidentID, "err", err)
	}
	return c
}

// stateValue reads one input of a submitted modal, whatever its element type.
func stateValue(st *slack.ViewState, blockID, actionID string) string {
	if st == nil {
		return ""
	}
	a, ok := st.Values[blockID][actionID]
	if !ok {
		return ""
	}
	switch {
	case a.Value != "":
		return a.Value
	case a.SelectedOption.Value != "":
		return a.SelectedOption.Value
	}
	return ""
}

// splitValue reads a button value or private_metadata "<incidentID>|<rest>"
// (or a bare "<incidentID>"). A malformed ID reads as 0, which the service
// answers with ENOTFOUND.
func splitValue(v string) (int64, string) {
	idText, rest, _ := strings.Cut(v, "|")
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		return 0, rest
	}
	return id, rest
}

func channelOf(ic slack.InteractionCallback) string {
	if ic.Channel.ID != "" {
		return ic.Channel.ID
	}
	return ic.Container.ChannelID
}

func userName(u slack.User) string {
	if u.Name != "" {
		return u.Name
	}
	return u.Profile.DisplayName
}
