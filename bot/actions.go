package bot

// Block Kit action and callback IDs. Renderers put them on buttons and modals;
// the interaction handler dispatches on them. Values are small strings, never
// more than Slack's 2,000 characters.
const (
	// ActionHaltAgent (summary button) value: "<incidentID>|<agent>".
	ActionHaltAgent = "halt_agent"
	// ActionHaltSession (summary button) value: "<incidentID>|<agent>"; opens a
	// modal to pick the session and give a reason.
	ActionHaltSession = "halt_session"
	// ActionStartChecklist (summary button) value: "<incidentID>".
	ActionStartChecklist = "start_checklist"
	// ActionConfirmHalt (confirmation message) value: a token naming a pending
	// halt command held by the interaction handler (JSON of HaltCommand fields).
	ActionConfirmHalt = "confirm_halt"
	ActionCancelHalt  = "cancel_halt"
	// Checklist answers, value "<incidentID>|<itemKey>".
	ActionChecklistNoImpact      = "checklist_no_impact"
	ActionChecklistImpactFound   = "checklist_impact_found" // opens CallbackImpactModal
	ActionChecklistUnknown       = "checklist_unknown"
	ActionChecklistNotApplicable = "checklist_not_applicable"
	// ActionPostmortemAnswer value "<incidentID>|<questionKey>"; opens CallbackPostmortemModal.
	ActionPostmortemAnswer = "postmortem_answer"
	// Reminder buttons, value "<incidentID>".
	ActionSnoozeReminders = "reminders_snooze"
	ActionStopReminders   = "reminders_stop"
	// ActionApproveResume (resume gate message) value
	// "<incidentID>|<agent>[ <session>,<session>…]": the clicker approves
	// lifting the containment, as with /agent resume.
	ActionApproveResume = "approve_resume"

	// Modal callback IDs; private_metadata carries the same value as the button.
	CallbackImpactModal     = "checklist_impact_modal"
	CallbackPostmortemModal = "postmortem_modal"
	CallbackHaltSession     = "halt_session_modal"
)
