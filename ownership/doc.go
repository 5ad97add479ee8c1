package ownership

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// AgentDoc is an agent's ownership entry as served by GET /api/v1/agents:
// everything configured except secrets. Environment variable names are left
// out too: they say nothing a reader needs and hint at where secrets live.
type AgentDoc struct {
	Name          string         `json:"name"`
	Description   string         `json:"description,omitempty"`
	Team          string         `json:"team"`
	Runbook       string         `json:"runbook,omitempty"`
	RACI          RACIDoc        `json:"raci"`
	KillAuthority AuthorityDoc   `json:"kill_authority"`
	Halt          HaltDoc        `json:"halt"`
	SessionLink   string         `json:"session_link,omitempty"`
	Aliases       []string       `json:"aliases"`
	BlastRadius   []BlastItemDoc `json:"blast_radius"`
	SLAs          []SLADoc       `json:"slas"`
	Escalation    EscalationDoc  `json:"escalation"`
	Drill         string         `json:"drill,omitempty"`
}

// RACIDoc is the raci: section; every list is present, possibly empty.
type RACIDoc struct {
	Responsible []string `json:"responsible"`
	Accountable []string `json:"accountable"`
	Consulted   []string `json:"consulted"`
	Informed    []string `json:"informed"`
}

// AuthorityDoc is kill_authority as configured, not resolved to people.
type AuthorityDoc struct {
	Users      []string `json:"users"`
	Usergroups []string `json:"usergroups"`
	OnCall     string   `json:"on_call,omitempty"`
}

// HaltDoc is the halt adapter and its non-secret settings. It is served as
// one JSON object: {"adapter": …, "confirm": …} and then each setting by its
// key ("url", "project", …).
type HaltDoc struct {
	Adapter string
	Confirm bool
	// Settings leave out every *_env setting (an env var name) and *_file
	// one (a local path); a url (or *_url) has no credentials or query.
	Settings map[string]string
}

// MarshalJSON writes the adapter, confirm, then the settings sorted by key.
func (d HaltDoc) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"adapter":`)
	if err := writeJSON(&b, d.Adapter); err != nil {
		return nil, err
	}
	b.WriteString(`,"confirm":`)
	if err := writeJSON(&b, d.Confirm); err != nil {
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(d.Settings)) {
		b.WriteByte(',')
		if err := writeJSON(&b, k); err != nil {
			return nil, err
		}
		b.WriteByte(':')
		if err := writeJSON(&b, d.Settings[k]); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeJSON(b *bytes.Buffer, v any) error {
	data, err := json.Marshal(v)
	b.Write(data)
	return err
}

// haltDoc is h without what Public must not show.
func haltDoc(h HaltSpec) HaltDoc {
	d := HaltDoc{Adapter: h.Adapter, Confirm: h.Confirm, Settings: map[string]string{}}
	for k, v := range h.Settings {
		switch {
		case v == "", strings.HasSuffix(k, "_env"), strings.HasSuffix(k, "_file"):
		case k == "url", strings.HasSuffix(k, "_url"):
			d.Settings[k] = publicURL(v)
		default:
			d.Settings[k] = v
		}
	}
	return d
}

// BlastItemDoc is one blast_radius entry.
type BlastItemDoc struct {
	System string   `json:"system"`
	Access []string `json:"access"`
	Owner  string   `json:"owner,omitempty"`
	Check  string   `json:"check,omitempty"`
	Link   string   `json:"link,omitempty"`
}

// SLADoc is one behavioural SLA.
type SLADoc struct {
	Name      string   `json:"name"`
	Metric    string   `json:"metric"`
	Max       *float64 `json:"max,omitempty"`
	Min       *float64 `json:"min,omitempty"`
	Allow     []string `json:"allow,omitempty"`
	Count     int      `json:"count,omitempty"`
	Steps     int      `json:"steps,omitempty"`
	Attribute string   `json:"attribute,omitempty"`
	Window    string   `json:"window,omitempty"` // Go duration; absent: the whole session
	OnBreach  string   `json:"on_breach"`
	Fallback  string   `json:"fallback"`
	DryRun    bool     `json:"dry_run"`
}

// EscalationDoc is the escalation: section with its defaults filled in.
type EscalationDoc struct {
	AutoHaltAfter         string   `json:"auto_halt_after,omitempty"` // Go duration; absent: no dead-man
	Severities            []string `json:"severities"`
	MaxAutoHaltsPerMinute int      `json:"max_auto_halts_per_minute"`
	Overflow              string   `json:"overflow"`
}

// Public returns the agent's entry safe to serve: no secrets, no env var names.
func (a *Agent) Public() AgentDoc {
	d := AgentDoc{
		Name:        a.Name,
		Description: a.Description,
		Team:        a.Team,
		Runbook:     a.Runbook,
		RACI: RACIDoc{
			Responsible: list(a.RACI.Responsible),
			Accountable: list(a.RACI.Accountable),
			Consulted:   list(a.RACI.Consulted),
			Informed:    list(a.RACI.Informed),
		},
		KillAuthority: AuthorityDoc{
			Users:      list(a.KillAuthority.Users),
			Usergroups: list(a.KillAuthority.Usergroups),
			OnCall:     a.KillAuthority.OnCall,
		},
		Halt:        haltDoc(a.Halt),
		SessionLink: a.Sessions.Link,
		Aliases:     list(a.Aliases),
		BlastRadius: make([]BlastItemDoc, 0, len(a.BlastRadius)),
		SLAs:        make([]SLADoc, 0, len(a.SLAs)),
		Drill:       a.Drill,
	}
	for _, b := range a.BlastRadius {
		d.BlastRadius = append(d.BlastRadius, BlastItemDoc{System: b.System, Access: list(b.Access), Owner: b.Owner, Check: b.Check, Link: b.Link})
	}
	for _, s := range a.SLAs {
		d.SLAs = append(d.SLAs, SLADoc{Name: s.Name, Metric: s.Metric, Max: copyNum(s.Max), Min: copyNum(s.Min), Allow: list(s.Allow),
			Count: s.Count, Steps: s.Steps, Attribute: s.Attribute, Window: span(s.Window), OnBreach: s.OnBreach,
			Fallback: s.Fallback, DryRun: s.DryRun})
	}
	d.Escalation = EscalationDoc{AutoHaltAfter: span(a.Escalation.AutoHaltAfter), Severities: list(a.Escalation.Severities),
		MaxAutoHaltsPerMinute: a.Escalation.MaxAutoHaltsPerMinute, Overflow: a.Escalation.Overflow}
	return d
}

// Docs returns every agent's public entry, sorted by name.
func (r *Registry) Docs() []AgentDoc {
	if r == nil {
		return []AgentDoc{}
	}
	docs := make([]AgentDoc, 0, len(r.Agents))
	for _, name := range r.Names() {
		docs = append(docs, r.Agents[name].Public())
	}
	return docs
}

// list copies s so a caller cannot change the registry through a doc, and
// never returns nil: API clients get [] rather than null.
func list(s []string) []string {
	return append(make([]string, 0, len(s)), s...)
}

// publicURL drops user info, query and fragment: a control endpoint is not a
// secret, but a token pasted into its query string would be.
func publicURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.User, u.RawQuery, u.Fragment, u.ForceQuery = nil, "", "", false
	return strings.TrimSuffix(u.String(), "?")
}

// span renders a duration for the API, "" for 0 (not set).
func span(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func copyNum(f *float64) *float64 {
	if f == nil {
		return nil
	}
	v := *f
	return &v
}
