package bot

import (
	"fmt"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// Block and action IDs of modal inputs. The interaction handler reads a
// submitted value as view.State.Values[Block…][Input…].
const (
	// ImpactModal: what was affected (required), how many (optional).
	BlockImpactWhat  = "impact_what"
	InputImpactWhat  = "what"
	BlockImpactCount = "impact_count"
	InputImpactCount = "count"
	// PostmortemModal: the answer.
	BlockPostmortem = "pm_answer"
	InputPostmortem = "answer"
	// HaltSessionModal: the session is a static select (SelectedOption.Value)
	// when the incident knows at most 100 sessions, else a text input (Value);
	// both use these IDs. The reason is optional.
	BlockHaltSession = "halt_session"
	InputHaltSession = "session"
	BlockHaltReason  = "halt_reason"
	InputHaltReason  = "reason"
)

// maxInputText is the most a multiline input accepts (Slack allows 3,000).
const maxInputText = 3000

func modal(callbackID, metadata, title, submit string, blocks ...slack.Block) slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      callbackID,
		PrivateMetadata: metadata,
		Title:           plain(PlainLimit(title, MaxModalTitle)),
		Submit:          plain(PlainLimit(submit, MaxModalTitle)),
		Close:           plain("Cancel"),
		Blocks:          slack.Blocks{BlockSet: blocks},
	}
}

func textInput(blockID, actionID, label, placeholder string, multiline bool) (*slack.InputBlock, *slack.PlainTextInputBlockElement) {
	el := slack.NewPlainTextInputBlockElement(plain(PlainLimit(placeholder, MaxPlaceholder)), actionID)
	el.Multiline = multiline
	el.MaxLength = maxInputText
	return slack.NewInputBlock(blockID, plain(PlainLimit(label, MaxInputLabel)), nil, el), el
}

// ImpactModal asks what an "Impact found" answer found. Its private metadata
// is "<incidentID>|<itemKey>", like the button that opens it.
func ImpactModal(incidentID int64, itemKey, question string) slack.ModalViewRequest {
	what, _ := textInput(BlockImpactWhat, InputImpactWhat, "What was affected?",
		"Records changed, messages sent, users who saw wrong output…", true)
	count, _ := textInput(BlockImpactCount, InputImpactCount, "How many records, messages or users?",
		"e.g. 42 records, 3 customers", false)
	count.Optional = true
	count.Hint = plain("Leave empty if not known yet.")
	return modal(CallbackImpactModal, fmt.Sprintf("%d|%s", incidentID, itemKey), "Impact found", "Save",
		section("*"+EscapeLimit(question, 2900)+"*"), what, count)
}

// PostmortemModal asks for (or edits) one postmortem answer, prefilled with
// current. Private metadata: "<incidentID>|<key>".
func PostmortemModal(incidentID int64, key, question, current string) slack.ModalViewRequest {
	in, el := textInput(BlockPostmortem, InputPostmortem, "Your answer", "Write as much as helps the next responder.", true)
	if utf8.RuneCountInString(current) > maxInputText {
		current = string([]rune(current)[:maxInputText])
	}
	el.InitialValue = current
	return modal(CallbackPostmortemModal, fmt.Sprintf("%d|%s", incidentID, key), "Postmortem", "Save",
		section("*"+EscapeLimit(question, 2900)+"*"), in)
}

// HaltSessionModal asks which session of agent to halt, and why. Private
// metadata: "<incidentID>|<agent>", like the Halt session button.
func HaltSessionModal(incidentID int64, agent string, sessions []string) slack.ModalViewRequest {
	var session slack.Block
	if opts := sessionOptions(sessions); opts != nil {
		sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Pick a session"), InputHaltSession, opts...)
		session = slack.NewInputBlock(BlockHaltSession, plain("Session"), nil, sel)
	} else {
		in, el := textInput(BlockHaltSession, InputHaltSession, "Session ID", "s-8812", false)
		el.MaxLength = 255
		session = in
	}
	reason, _ := textInput(BlockHaltReason, InputHaltReason, "Reason", "Looping on refunds", true)
	reason.Optional = true
	reason.Hint = plain("Recorded on the timeline and in the audit log.")
	intro := section("Halt one session of *" + EscapeLimit(PlainText(agent), 100) + "*. Its other sessions keep running.")
	return modal(CallbackHaltSession, fmt.Sprintf("%d|%s", incidentID, agent), "Halt a session", "Halt session",
		intro, session, reason)
}

// sessionOptions returns select options for sessions, or nil when a select
// cannot offer them all (none, more than 100, or an ID too long for a value).
func sessionOptions(sessions []string) []*slack.OptionBlockObject {
	if len(sessions) == 0 || len(sessions) > MaxSelectOptions {
		return nil
	}
	opts := make([]*slack.OptionBlockObject, 0, len(sessions))
	for _, s := range sessions {
		if s == "" || utf8.RuneCountInString(s) > MaxOptionValue {
			return nil
		}
		opts = append(opts, slack.NewOptionBlockObject(s, plain(PlainLimit(s, MaxButtonText)), nil))
	}
	return opts
}
