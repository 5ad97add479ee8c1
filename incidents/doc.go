// Package incidents is the domain of reins: incidents opened from alerts, their
// timeline, halts, blast-radius checklists and postmortems. It declares the ports
// it needs (Store, Chat, Pager, Halter, Clock) and knows nothing of Slack, HTTP,
// PagerDuty or SQL drivers.
//
// It is the core the use-case packages share, and the use cases not cut out
// yet. Core (core.go) is what every use case needs and none owns: the
// transaction retried on a conflict, the outbox item queued inside it, the
// timeline event, an incident opened by hand, the text helpers. They are
// exported so that a use case in its own package (incidents/intake,
// incidents/aftermath, incidents/halting) calls the same code, not a copy, and holds a *Core
// rather than the whole Service: what a use case may touch is then what Core
// and the ports offer, and the import-direction test keeps use cases from
// reaching into each other.
//
// The model's types stay here even where one use case fills them (the
// postmortem's, the collecting incidents' names, the test incident's mark):
// the views, the page and the halts read them, and a use case importing
// another to read a type is the coupling the cut removes.
//
// The outbox kinds stay declared beside their handlers (deliver_*.go, on
// the small types chatSteps and pageSteps): every use case queues them in
// its own transaction, the core's Opening among them, and the bury notice
// (describeKind) must know them all, so they are the core's; the handlers
// read what they deliver from the store and call no use case.
package incidents
