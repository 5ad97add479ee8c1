package incidents

import (
	"encoding/json"
	"strings"
	"time"
)

// Incident statuses.
const (
	StatusOpen     = "open"
	StatusResolved = "resolved"
)

// Severities, in the vocabulary of PagerDuty Events v2.
const (
	SeverityCritical = "critical"
	SeverityError    = "error"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Incident is one agent misbehaving, however many alerts say so.
type Incident struct {
	ID       int64  // also the number users see: #inc-42-…
	Agent    string // canonical agent name, or the name the alert used when Unowned
	Unowned  bool   // the agent is not in the registry
	GroupKey string // incidents group per (Agent, GroupKey); "" for the agent as a whole
	Title    string
	Severity string
	Status   string
	Source   string   // alert source that opened it, or "manual"
	Sessions []string // every session any of its alerts named, in first-seen order
	Links    []Link   // links from alerts (runbook_url, generatorURL, …)

	SlackChannelID   string
	SlackChannelName string
	SummaryTS        string // ts of the pinned summary message
	ChecklistTS      string // ts of the checklist thread's parent message
	PostmortemTS     string // ts of the postmortem thread's parent message

	PagerDutyKey string // dedup_key used for Events v2 (stable per incident)
	PagedAt      *time.Time
	AckedAt      *time.Time
	AckedBy      string

	CreatedAt   time.Time // when the first alert arrived (time of detection)
	StartedAt   time.Time // when the first alert started firing (startsAt), <= CreatedAt
	LastAlertAt time.Time
	ResolvedAt  *time.Time
	ResolvedBy  string
	Version     int64 // bumped by every update, for optimistic checks
}

// Link is a labelled URL.
type Link struct {
	Text string `json:"text"`
	URL  string `json:"url"`
}

// Alert statuses.
const (
	AlertFiring   = "firing"
	AlertResolved = "resolved"
)

// Alert is one normalised alert from any source.
type Alert struct {
	ID          int64
	IncidentID  int64
	Source      string // alertmanager | grafana | datadog | generic | langfuse
	Fingerprint string // stable per alert within its source (dedup)
	Agent       string // the name as found in the alert (may be an alias)
	Status      string // firing | resolved
	Title       string // short: alertname or summary
	Summary     string // longer text, untrusted
	Severity    string
	Sessions    []string
	Links       []Link
	Labels      map[string]string
	Annotations map[string]string
	Details     json.RawMessage // source-specific values (SLA metric values)
	StartsAt    time.Time
	EndsAt      *time.Time
	ReceivedAt  time.Time
	Count       int // how many times it was received
	// Route, when set, is the agent name of the incident the alert goes to
	// instead of its agent's own (UnroutedName, OverflowName). Intake sets
	// it; it is not stored.
	Route string
	// Test marks a test alert (`reins test-alert`): it opens an incident of
	// its own, titled as a test, and never joins a real one. Not stored:
	// the incident's group key says it.
	Test bool
}

// Repeat is an alert that may be a pure repeat, for Queries.RecordRepeats.
type Repeat struct {
	Alert *Alert
	// FreshSince is the oldest LastAlertAt its incident may have for the
	// repeat to skip it: older, and the full path must refresh it.
	FreshSince time.Time
}

// Actor is who did something: a Slack user, an API caller, the CLI's OS user,
// or reins itself.
type Actor struct {
	Kind string `json:"kind"` // slack | api | cli | pagerduty | system
	ID   string `json:"id"`   // Slack user ID, API actor name, OS user name
	Name string `json:"name,omitempty"`
}

// Actor kinds.
const (
	ActorSlack     = "slack"
	ActorAPI       = "api"
	ActorCLI       = "cli"
	ActorWeb       = "web" // a person signed in to the web view: ID is the Slack user ID or the proxy's user
	ActorPagerDuty = "pagerduty"
	ActorSystem    = "system"
	// ActorPolicy is reins acting on an SLA or the dead-man, ID "<agent>/<sla>".
	ActorPolicy = "policy"
)

// System is reins acting on its own.
var System = Actor{Kind: ActorSystem, ID: "reins"}

// String renders the actor for timelines: "<@U01>" is left to the renderer,
// here it is "slack:U01".
func (a Actor) String() string { return a.Kind + ":" + a.ID }

// EventKind is the type of a timeline event.
type EventKind string

// Timeline event kinds. Data holds a kind-specific JSON object.
const (
	EventIncidentOpened    EventKind = "incident_opened"
	EventAlertFired        EventKind = "alert_fired"
	EventAlertResolved     EventKind = "alert_resolved"
	EventChannelCreated    EventKind = "channel_created"
	EventPaged             EventKind = "paged"
	EventPageFailed        EventKind = "page_failed"
	EventAcknowledged      EventKind = "acknowledged"
	EventHaltRequested     EventKind = "halt_requested"
	EventHaltVerified      EventKind = "halt_verified"
	EventHaltFailed        EventKind = "halt_failed"
	EventHaltRefused       EventKind = "halt_refused"
	EventRestricted        EventKind = "restricted" // a verified restrict
	EventThrottled         EventKind = "throttled"  // a verified throttle
	EventResumed           EventKind = "resumed"
	EventResumeFailed      EventKind = "resume_failed"
	EventChecklistStarted  EventKind = "checklist_started"
	EventChecklistAnswered EventKind = "checklist_answered"
	EventReminderSnoozed   EventKind = "reminder_snoozed"
	EventRemindersStopped  EventKind = "reminders_stopped"
	EventResolved          EventKind = "resolved"
	EventPostmortemAnswer  EventKind = "postmortem_answered"
	EventPostmortemPosted  EventKind = "postmortem_posted"
	EventDeliveryFailed    EventKind = "delivery_failed"
	EventNote              EventKind = "note"
	// EventAutoHalt is an automatic halt that did not run as asked: a dry
	// run, a fallback to an alert, the rate limit, or an already halted target.
	EventAutoHalt EventKind = "auto_halt"
	// EventResumeApproved is one approval of the resume gate that did not
	// yet make enough to resume.
	EventResumeApproved EventKind = "resume_approved"
	// EventEscalated marks an incident the dead-man acted on (once).
	EventEscalated EventKind = "escalated"
)

// Event is one entry of an incident's timeline.
type Event struct {
	ID         int64
	IncidentID int64
	At         time.Time
	Kind       EventKind
	Actor      Actor
	Text       string          // one line for humans, untrusted parts included verbatim
	Data       json.RawMessage // kind-specific details
}

// Halt actions and states.
const (
	ActionHalt   = "halt"
	ActionResume = "resume"

	HaltRequested = "requested" // recorded, adapter not yet answered
	HaltVerified  = "verified"  // adapter accepted and read-back confirmed
	HaltFailed    = "failed"    // adapter failed, timed out, or read-back disagreed
)

// Halt is one halt or resume of an agent or some of its sessions.
type Halt struct {
	ID         int64
	IncidentID int64
	Agent      string
	Action     string   // halt | restrict | throttle | resume
	Sessions   []string // empty: the whole agent
	Allow      []string // restrict: the tool globs still allowed
	Rate       int      // throttle: model calls per minute
	// ProbationUntil is set on a rung the resume gate applied instead of a
	// resume: the target returns to running then, unless it breaches first.
	ProbationUntil *time.Time
	Reason         string
	Actor          Actor
	Adapter        string
	Status         string
	Attempts       int
	Error          string // last failure, user-safe
	RequestedAt    time.Time
	FinishedAt     *time.Time
}

// TimeToHalt is this halt's own time, from request to verified, zero if
// not verified; an incident's time to halt runs from its first alert
// (PostmortemDurations.Halt).
func (h *Halt) TimeToHalt() time.Duration {
	if h.Status != HaltVerified || h.FinishedAt == nil {
		return 0
	}
	return h.FinishedAt.Sub(h.RequestedAt)
}

// AuditEntry is one security-relevant action, successful or refused.
type AuditEntry struct {
	ID      int64
	At      time.Time
	Actor   Actor
	Action  string // kill | resume | kill_refused | resume_refused | drill | config_reload …
	Agent   string
	Allowed bool
	Detail  string
}

// IncidentFilter selects incidents. Zero values match everything.
type IncidentFilter struct {
	Agent  string
	Status string // open | resolved | ""
	Limit  int    // 0: 100
	Offset int
}

// TestTitlePrefix starts the title of every incident a test alert opens, so
// the test shows as one wherever the title goes: the channel name, the page
// summary, the web view, the CLI.
const TestTitlePrefix = "TEST (not a real incident): "

// TestGroupPrefix starts the group key of a test incident: it collects only
// its own test alert, never a real alert, halt or declaration of its agent
// (those go to the agent's incident of group key "").
const TestGroupPrefix = "test:"

// IsTest says whether inc was opened by a test alert.
func (inc *Incident) IsTest() bool { return strings.HasPrefix(inc.GroupKey, TestGroupPrefix) }

// Incidents that collect alerts no agent's incident takes are named like an
// agent, with a prefix no agent name can have (agent names hold no ':').
const (
	// unroutedPrefix + source: alerts whose agent is not in reins.yaml. One
	// incident per source and group window, however many unknown names a
	// storm carries, paged once (to PAGERDUTY_ROUTING_KEY).
	unroutedPrefix = "unrouted:"
	// overflowPrefix + source: alerts that would have opened an incident
	// after the source opened alerts.max_new_incidents_per_minute of them in
	// the last minute.
	overflowPrefix = "overflow:"
)

// UnroutedName is the agent name of the incident collecting source's alerts
// for agents reins.yaml does not name.
func UnroutedName(source string) string { return unroutedPrefix + source }

// OverflowName is the agent name of the incident collecting source's alerts
// beyond its cap of new incidents a minute.
func OverflowName(source string) string { return overflowPrefix + source }

// Collector says what kind of collecting incident an incident's agent name
// stands for: "unrouted" or "overflow", with the source, or "" for an
// incident of one agent.
func Collector(agent string) (kind, source string) {
	if s, ok := strings.CutPrefix(agent, unroutedPrefix); ok {
		return "unrouted", s
	}
	if s, ok := strings.CutPrefix(agent, overflowPrefix); ok {
		return "overflow", s
	}
	return "", ""
}
