package incidents

import (
	"bufio"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Postmortem is everything known about an incident once it is over,
// assembled from stored data only, so it renders the same after a restart
// and after the agent left the config. The API and `reins postmortem
// --format json` serve it as JSON; RenderMarkdown turns it into the document.
type Postmortem struct {
	ID          int64  `json:"id"`
	Agent       string `json:"agent"`
	Unowned     bool   `json:"unowned"`
	Team        string `json:"team,omitempty"`
	Description string `json:"description,omitempty"`
	Title       string `json:"title"`
	Severity    string `json:"severity"`
	Status      string `json:"status"`
	Source      string `json:"source"`
	ResolvedBy  string `json:"resolved_by,omitempty"`

	Times       PostmortemTimes     `json:"times"`
	Durations   PostmortemDurations `json:"durations"`
	Detection   []DetectedAlert     `json:"detection"`
	SLAs        []SLACheck          `json:"slas"`
	Sessions    []Link              `json:"sessions"`
	Timeline    []TimelineEntry     `json:"timeline"`
	Halts       []PostmortemHalt    `json:"halts"`
	BlastRadius []BlastAnswer       `json:"blast_radius"`
	Answers     []QuestionAnswer    `json:"answers"`
	ActionItems []ActionItem        `json:"action_items"`
	Links       PostmortemLinks     `json:"links"`
	GeneratedAt time.Time           `json:"generated_at"`

	// Record is what the sessions' telemetry shows (docs/config.md, sessions).
	Record []SessionRecordDoc `json:"session_record"`
}

// PostmortemTimes are the moments of the incident, in UTC.
type PostmortemTimes struct {
	Detected     time.Time  `json:"detected"` // the first alert's startsAt, or when the incident opened
	Opened       time.Time  `json:"opened"`   // when reins opened the incident (first alert received)
	Paged        *time.Time `json:"paged,omitempty"`
	Acknowledged *time.Time `json:"acknowledged,omitempty"`
	Halted       *time.Time `json:"halted,omitempty"` // the first verified halt
	Resolved     *time.Time `json:"resolved,omitempty"`
}

// PostmortemDurations are the incident's intervals; nil when the later
// moment never came. Time to halt is reins' one definition of it: from the
// first alert (Times.Detected) to the first verified halt (Times.Halted).
// Detect runs from the first alert to the incident opening; page and
// resolve from the opening.
type PostmortemDurations struct {
	Detect  *Span `json:"time_to_detect,omitempty"`
	Page    *Span `json:"time_to_page,omitempty"`
	Halt    *Span `json:"time_to_halt,omitempty"`
	Resolve *Span `json:"time_to_resolve,omitempty"`
}

// Span is a duration, in JSON a number of seconds.
type Span time.Duration

// MarshalJSON writes the span in seconds.
func (d Span) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(time.Duration(d).Seconds(), 'f', -1, 64)), nil
}

// UnmarshalJSON reads a number of seconds.
func (d *Span) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("span: %w", err)
	}
	*d = Span(f * float64(time.Second))
	return nil
}

// String renders the span rounded to the second ("1m30s").
func (d Span) String() string { return time.Duration(d).Round(time.Second).String() }

// DetectedAlert is one alert of the incident: what fired.
type DetectedAlert struct {
	Source   string         `json:"source"`
	Title    string         `json:"title"`
	Summary  string         `json:"summary,omitempty"`
	Severity string         `json:"severity"`
	Status   string         `json:"status"`
	StartsAt time.Time      `json:"starts_at"`
	Count    int            `json:"count"`
	Sessions []string       `json:"sessions,omitempty"`
	Values   map[string]any `json:"values,omitempty"` // the alert's details (metric values)
}

// SLACheck is one behavioural SLA of the agent with the value an alert
// reported for its metric, if any.
type SLACheck struct {
	Name     string `json:"name,omitempty"` // the SLA's name, the sla label of its breach alerts
	Metric   string `json:"metric"`
	Limit    string `json:"limit"`              // "max 200000", "allow salesforce.read, …"
	Observed string `json:"observed,omitempty"` // as the alert reported it
}

// TimelineEntry is one stored event, in UTC.
type TimelineEntry struct {
	At    time.Time `json:"at"`
	Kind  EventKind `json:"kind"`
	Actor string    `json:"actor"`
	Text  string    `json:"text"`
}

// PostmortemHalt is one halt or resume and its outcome.
type PostmortemHalt struct {
	Action      string     `json:"action"`             // halt | restrict | throttle | resume
	Sessions    []string   `json:"sessions,omitempty"` // empty: the whole agent
	Allow       []string   `json:"allow,omitempty"`    // restrict: the tools still allowed
	Rate        int        `json:"rate,omitempty"`     // throttle: model calls per minute
	Probation   *time.Time `json:"probation_until,omitempty"`
	Adapter     string     `json:"adapter"`
	Actor       string     `json:"actor"`
	Reason      string     `json:"reason,omitempty"`
	Result      string     `json:"result"` // requested | verified | failed
	Error       string     `json:"error,omitempty"`
	RequestedAt time.Time  `json:"requested_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	// VerifiedAfter is how long this halt took, from its request to the
	// state read back; the incident's time to halt is Durations.Halt.
	VerifiedAfter *Span `json:"verified_after,omitempty"`
}

// BlastAnswer is one checklist item with its answer.
type BlastAnswer struct {
	Key        string     `json:"key"`
	Position   int        `json:"position"`
	Question   string     `json:"question"`
	Check      string     `json:"check,omitempty"`
	Owner      string     `json:"owner,omitempty"`
	Link       string     `json:"link,omitempty"`
	Choice     string     `json:"choice,omitempty"` // "" unanswered
	Details    string     `json:"details,omitempty"`
	AnsweredBy string     `json:"answered_by,omitempty"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
}

// QuestionAnswer is one answered postmortem question.
type QuestionAnswer struct {
	Key      string    `json:"key"`
	Question string    `json:"question"`
	Text     string    `json:"text"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
}

// ActionItem is one line of the action_items answer.
type ActionItem struct {
	Owner string `json:"owner,omitempty"`
	Text  string `json:"text"`
	Due   string `json:"due,omitempty"` // YYYY-MM-DD
}

// PostmortemLinks are where to look further.
type PostmortemLinks struct {
	SlackChannel     string `json:"slack_channel,omitempty"` // app_redirect URL
	SlackChannelName string `json:"slack_channel_name,omitempty"`
	PagerDutyKey     string `json:"pagerduty_dedup_key,omitempty"`
	Runbook          string `json:"runbook,omitempty"`
	Reins            string `json:"reins,omitempty"`
	Alerts           []Link `json:"alerts,omitempty"` // links the alerts carried
}

// Answer returns the text of one postmortem answer, "" when unanswered.
func (pm *Postmortem) Answer(key string) string {
	for _, a := range pm.Answers {
		if a.Key == key {
			return a.Text
		}
	}
	return ""
}

// actionLine is "owner: what (due YYYY-MM-DD)", every part but "what"
// optional, after an optional list marker.
var actionLine = regexp.MustCompile(`^(?:(?:[-*•+]|\d+[.)])\s+)?(?:\[[ xX]?\]\s+)?(?:([^:\s][^:]{0,79}?):\s+)?(.*?)\s*(?:\((?:due:?\s*)?(\d{4}-\d{2}-\d{2})\))?$`)

// ParseActionItems reads the action_items answer, one item per line.
func ParseActionItems(text string) []ActionItem {
	var out []ActionItem
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		m := actionLine.FindStringSubmatch(line)
		if m == nil || strings.TrimSpace(m[2]) == "" {
			out = append(out, ActionItem{Text: line})
			continue
		}
		out = append(out, ActionItem{Owner: strings.TrimSpace(m[1]), Text: strings.TrimSpace(m[2]), Due: m[3]})
	}
	return out
}

// Rung is the action with its parameters: "restrict to a, b", "throttle to
// 6/min", "halt"; a probation says until when.
func (h PostmortemHalt) Rung() string {
	out := h.Action + RungParams(&Halt{Action: h.Action, Allow: h.Allow, Rate: h.Rate})
	if h.Probation != nil {
		out += " (probation until " + h.Probation.UTC().Format("15:04:05") + ")"
	}
	return out
}

// RungParams is " to salesforce.read, zendesk.*" or " to 6/min" for the
// softer rungs, "" otherwise.
func RungParams(h *Halt) string {
	switch h.Action {
	case ActionRestrict:
		return " to " + strings.Join(h.Allow, ", ")
	case ActionThrottle:
		return fmt.Sprintf(" to %d/min", h.Rate)
	}
	return ""
}
