// Package aftermath is the use cases after the halt: resolving an incident,
// its blast-radius checklist, its postmortem (the guided thread, the stored
// document, the Markdown) in Service, and the reminders of both, which the
// scheduled jobs run, in Reminders. Each holds only the *incidents.Core it
// shares with the other use cases; the postmortem's types stay in incidents, where the
// other use cases and the views read them.
//
// The outbox kinds of the checklist and postmortem threads are delivered by
// incidents (deliver_aftermath.go) with the rest of the Slack steps; the one
// handler here, the postmortem file, renders the Markdown that lives here.
package aftermath
