package incidents

import (
	"context"
	"time"

	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/ownership"
)

// Queries is everything the domain reads and writes: one role per group of
// tables. The store implements it both on the database and inside a
// transaction (Store.InTx), so a use case composes its writes and commits
// them together; a function that needs one role names that role.
//
// Lookups of one thing return an *Error with code ENOTFOUND when it is absent.
type Queries interface {
	IncidentStore
	AlertStore
	TimelineStore
	outbox.Store
	HaltStore
	ResumeApprovalStore
	ChecklistStore
	PostmortemStore
	AuditStore
	Idempotency
}

// IncidentStore reads and writes incidents.
type IncidentStore interface {
	// OpenIncident inserts inc as the open incident collecting alerts for
	// (inc.Agent, inc.GroupKey), or, when one exists, loads it into inc.
	// Enforced by a unique partial index, so concurrent callers get one incident.
	OpenIncident(ctx context.Context, inc *Incident) (created bool, err error)
	// InsertIncidents is OpenIncident for a caller that just found no open
	// incident for each of incs' agent and group key (no two alike): it
	// inserts each, in the order given, or leaves it and reports false when
	// one is open after all.
	InsertIncidents(ctx context.Context, incs []*Incident) (created []bool, err error)
	// StopGrouping makes an open incident stop collecting new alerts (it stays
	// open); the next alert for its agent opens a new incident.
	StopGrouping(ctx context.Context, id int64) error
	FindIncident(ctx context.Context, id int64) (*Incident, error)
	FindIncidentByChannel(ctx context.Context, channelID string) (*Incident, error)
	FindIncidentByPagerKey(ctx context.Context, dedupKey string) (*Incident, error)
	FindIncidents(ctx context.Context, f IncidentFilter) ([]*Incident, error)
	// FindGroupingIncidents returns the open incidents that collect alerts
	// for each of agents (GroupKey "", still grouping), at most one an agent,
	// in any order: what OpenIncident would load for them, in one query.
	FindGroupingIncidents(ctx context.Context, agents []string) ([]*Incident, error)
	// UpdateIncident writes every mutable field of inc and bumps Version.
	UpdateIncident(ctx context.Context, inc *Incident) error
	// WriteIntake ends an intake, in as few statements as the store can:
	// for each of incs whose stored Version is still its Version, it writes
	// what intake changes (Sessions, Links, Severity, LastAlertAt, and the
	// PagerDutyKey it sets on opening) and bumps the version, a write that
	// needs no read to lock the row first; then it appends events in their
	// order (their IDs not filled in) and queues items as EnqueueOutbox
	// does. It reports which incidents it wrote; one that changed meanwhile
	// is left as it is.
	WriteIntake(ctx context.Context, incs []*Incident, events []*Event, items []*outbox.Item) (written []bool, err error)
}

// AlertStore records the alerts of incidents.
type AlertStore interface {
	// RecordAlerts inserts each of alerts in turn (its IncidentID set; an
	// alert may come twice) or, when the incident already has its
	// fingerprint, updates status, times, summary and count, in as few
	// statements as the store can. It returns the status each alert had
	// before ("" when new), so the caller can tell a new alert, a repeat and
	// a status change apart.
	RecordAlerts(ctx context.Context, alerts []*Alert) (previousStatus []string, err error)
	// RecordRepeats is RecordAlerts' fast path for pure repeats, many in one
	// statement. An alert is recorded when the open, grouping incident of
	// its Agent (GroupKey "") already holds its Fingerprint with the same
	// status, title, summary, severity, sessions and links (nothing for
	// intake to merge), and that incident's LastAlertAt is at or after the
	// Repeat's FreshSince: the alert is then updated as RecordAlerts would
	// (count, times, labels, previous status = status) and its ID,
	// IncidentID and Count are filled in. Others change nothing. It reports
	// which were recorded; no two alerts may share Agent and Fingerprint.
	RecordRepeats(ctx context.Context, reps []Repeat) (recorded []bool, err error)
	FindAlerts(ctx context.Context, incidentID int64) ([]*Alert, error)
}

// TimelineStore keeps each incident's timeline.
type TimelineStore interface {
	AppendEvent(ctx context.Context, e *Event) error
	FindEvents(ctx context.Context, incidentID int64) ([]*Event, error)
}

// HaltStore records halts and the kill flags they set.
type HaltStore interface {
	CreateHalt(ctx context.Context, h *Halt) error
	UpdateHalt(ctx context.Context, h *Halt) error
	// FindHalts returns halts, newest first; agent "" means all, incidentID 0 all.
	FindHalts(ctx context.Context, agent string, incidentID int64) ([]*Halt, error)
	// SetKillFlag upserts the flag for (Agent, Session).
	SetKillFlag(ctx context.Context, f KillFlag) error
	KillFlags(ctx context.Context) ([]KillFlag, error)
	RecordDrill(ctx context.Context, d *DrillResult) error
	// LastDrills returns the newest drill per agent.
	LastDrills(ctx context.Context) (map[string]*DrillResult, error)
}

// ResumeApprovalStore keeps the resume gate's approvals (docs/containment.md).
type ResumeApprovalStore interface {
	// AddResumeApproval records a; false (and no error) when that person
	// already approved lifting the same containment of the same target.
	AddResumeApproval(ctx context.Context, a *ResumeApproval) (bool, error)
	// ResumeApprovals returns the approvals of lifting containment haltID of
	// target not yet used by a resume, oldest first.
	ResumeApprovals(ctx context.Context, haltID int64, target string) ([]ResumeApproval, error)
	// UseResumeApprovals marks those approvals as used by resume resumedBy.
	UseResumeApprovals(ctx context.Context, haltID int64, target string, resumedBy int64) error
}

// ChecklistStore keeps the blast-radius checklists.
type ChecklistStore interface {
	// CreateChecklist stores c with its items; ECONFLICT if the incident has one.
	CreateChecklist(ctx context.Context, c *Checklist) error
	FindChecklist(ctx context.Context, incidentID int64) (*Checklist, error)
	// UpdateChecklist writes the reminder state and every item's answer and PostedTS.
	UpdateChecklist(ctx context.Context, c *Checklist) error
	// FindUnfinishedChecklists returns checklists of open incidents with
	// unanswered items, for the nudge job.
	FindUnfinishedChecklists(ctx context.Context) ([]*Checklist, error)
}

// PostmortemStore keeps the postmortem answers and the rendered document.
type PostmortemStore interface {
	// SavePostmortemAnswer upserts by (IncidentID, Key).
	SavePostmortemAnswer(ctx context.Context, a *PostmortemAnswer) error
	FindPostmortemAnswers(ctx context.Context, incidentID int64) ([]*PostmortemAnswer, error)
	// SavePostmortemDoc upserts by IncidentID.
	SavePostmortemDoc(ctx context.Context, d *PostmortemDoc) error
	FindPostmortemDoc(ctx context.Context, incidentID int64) (*PostmortemDoc, error)
}

// AuditStore keeps the audit log of who did what to which agent.
type AuditStore interface {
	AppendAudit(ctx context.Context, e *AuditEntry) error
	// FindAudit returns audit entries, newest first; agent "" means all.
	FindAudit(ctx context.Context, agent string, limit int) ([]*AuditEntry, error)
}

// Idempotency remembers what was handled already.
type Idempotency interface {
	// Remember records an idempotency key (Slack retry, PagerDuty webhook ID,
	// double click). It returns true the first time the key is seen.
	Remember(ctx context.Context, key string, at time.Time) (bool, error)
	// PruneIdempotencyKeys deletes the keys first seen before before and
	// returns how many went.
	PruneIdempotencyKeys(ctx context.Context, before time.Time) (int64, error)
}

// Store is the persistent store.
type Store interface {
	Queries
	// InTx runs fn in one transaction, committed when fn returns nil.
	InTx(ctx context.Context, fn func(q Queries) error) error
	// TryLock runs fn while holding the named cluster-wide lock (a PostgreSQL
	// advisory lock; a process-local lock on SQLite). ran is false, with no
	// error, when another holder has it: a normal outcome for jobs.
	TryLock(ctx context.Context, name string, fn func(ctx context.Context) error) (ran bool, err error)
	// Ping says whether the store is reachable and migrated.
	Ping(ctx context.Context) error
}

// Chat is what the domain needs from Slack. Every text field of the views is
// untrusted: the implementation escapes it and never lets it mention anyone.
type Chat interface {
	// CreateChannel creates a public (or private) channel, adding a short suffix
	// when the name is taken; it returns the ID and the name used.
	CreateChannel(ctx context.Context, name string, private bool) (id, created string, err error)
	SetTopic(ctx context.Context, channelID, topic string) error
	// Invite adds people (user IDs, user-group IDs, e-mails) to a channel;
	// those who cannot be resolved or are already in are skipped.
	Invite(ctx context.Context, channelID string, people []string) error
	Bookmark(ctx context.Context, channelID string, link Link) error
	// PostSummary posts (and pins) the incident summary, or updates it in place
	// when updateTS is set. It returns the message ts.
	PostSummary(ctx context.Context, channelID, updateTS string, v *SummaryView) (string, error)
	// Post posts a message, or updates m.UpdateTS. Channel may be an ID or a name.
	Post(ctx context.Context, m Message) (string, error)
	PostChecklistItem(ctx context.Context, channelID, threadTS, updateTS string, v *ChecklistItemView) (string, error)
	PostPostmortemQuestion(ctx context.Context, channelID, threadTS, updateTS string, v *PostmortemQuestionView) (string, error)
	UploadFile(ctx context.Context, channelID, threadTS, filename, title, content string) error
}

// Message styles.
const (
	StyleInfo    = "info"
	StyleSuccess = "success"
	StyleWarning = "warning"
	StyleDanger  = "danger"
)

// Message is a plain notice in a channel or thread.
type Message struct {
	Channel  string // ID or name
	ThreadTS string
	UpdateTS string
	Style    string
	Title    string   // bold first line
	Text     string   // body
	Fields   []Field  // label: value pairs
	Links    []Link   // shown as buttons or links
	Mention  []string // user or user-group IDs deliberately notified (owners, authority)
	// Reminder, when set, is the incident whose reminders this message is:
	// it carries Snooze 1 h and Stop reminders buttons.
	Reminder int64
	// Approve, when set, carries the resume gate's Approve button: another
	// holder of kill authority approves lifting this containment.
	Approve *ApproveResume
}

// ApproveResume names the containment an Approve resume button lifts.
type ApproveResume struct {
	IncidentID int64
	Agent      string
	Sessions   []string
}

// Field is a label and a value.
type Field struct{ Label, Value string }

// SummaryView is everything the incident summary shows.
type SummaryView struct {
	Incident    *Incident
	Agent       *ownership.Agent // nil when unowned
	Team        *ownership.Team  // nil when unknown
	KillHolders []string         // people holding kill authority now
	Firing      int              // alerts firing
	Resolved    int              // alerts recovered
	Latest      *Alert           // newest alert, for "what fired"
	Sessions    []Link           // each session with its trace link
	Halts       []*Halt          // newest first
	Answered    int              // checklist progress
	Total       int              // 0: no checklist yet
	PublicURL   string
	// Collects is "unrouted" or "overflow" for an incident collecting the
	// alerts of several agents (see Collector), with the agent label values
	// its alerts carried in SeenAgents (at most maxSeenAgents).
	Collects   string
	SeenAgents []string

	// Totals are the recorded totals of the sessions reins has a record
	// of, keyed by session ID; Outside the tools they called that match no
	// blast-radius entry ("tool (n calls)").
	Totals  map[string]sessions.Totals
	Outside []string
}

// ChecklistItemView is one checklist item as posted in the thread.
type ChecklistItemView struct {
	Incident *Incident
	Item     *ChecklistItem
	Total    int
}

// PostmortemQuestionView is one question of the postmortem thread.
type PostmortemQuestionView struct {
	Incident *Incident
	Key      string
	Question string
	Hint     string
	Position int
	Total    int
	Answer   *PostmortemAnswer // nil until answered
}

// Page is one PagerDuty Events v2 event.
type Page struct {
	Action     string // trigger | acknowledge | resolve
	RoutingKey string
	DedupKey   string
	Summary    string
	Severity   string
	Source     string
	Component  string
	Group      string
	Details    map[string]any
	Links      []Link
}

// Pager sends pages. Implemented by integrations/pagerduty.
type Pager interface {
	Send(ctx context.Context, p Page) error
}

// HaltRequest asks an adapter to halt or resume an agent or some sessions.
type HaltRequest struct {
	Agent      *ownership.Agent
	Action     string   // halt | restrict | throttle | resume
	Sessions   []string // empty: the whole agent
	Allow      []string // restrict: the tool globs still allowed
	Rate       int      // throttle: model calls per minute
	IncidentID int64
	HaltID     int64
	Reason     string
	Actor      Actor
}

// Halter halts agents through their configured adapter. Implemented by
// integrations/halt, which picks the adapter from Agent.Halt.Adapter.
type Halter interface {
	// Do performs the halt or resume. It must be safe to call again.
	Do(ctx context.Context, r HaltRequest) error
	// Verify reads back whether the requested state took effect.
	Verify(ctx context.Context, r HaltRequest) (bool, error)
	// Drill proves the path works (reachability, credentials) without halting.
	Drill(ctx context.Context, agent *ownership.Agent) error
	// SessionScoped says whether the agent's adapter can halt single
	// sessions; the others (feature flags, Deployments) stop the whole agent.
	SessionScoped(agent *ownership.Agent) bool
	// Supports says whether the agent's adapter can do action: every
	// adapter halts and resumes; restrict and throttle only where the
	// mechanism carries them. reins never sends an action it cannot do.
	Supports(agent *ownership.Agent, action string) bool
}

// Clock tells the time; tests inject their own.
type Clock interface{ Now() time.Time }

// SystemClock is the wall clock, in UTC.
type SystemClock struct{}

// Now returns the current UTC time.
func (SystemClock) Now() time.Time { return time.Now().UTC() }
