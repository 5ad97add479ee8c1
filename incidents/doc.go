// Package incidents is the domain of reins: incidents opened from alerts, their
// timeline, halts, blast-radius checklists and postmortems. It declares the ports
// it needs (Store, Chat, Pager, Halter, Clock) and knows nothing of Slack, HTTP,
// PagerDuty or SQL drivers.
package incidents
