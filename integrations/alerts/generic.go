package alerts

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/reins-oss/reins/incidents"
)

// genericMessage is reins' own webhook body (docs/api.md). It is decoded
// strictly: a misspelt field is refused rather than silently ignored.
type genericMessage struct {
	Agent    *string         `json:"agent"`
	Summary  *string         `json:"summary"`
	Severity string          `json:"severity"`
	Status   string          `json:"status"`
	Sessions []string        `json:"sessions"`
	DedupKey string          `json:"dedup_key"`
	Source   string          `json:"source"`
	Details  json.RawMessage `json:"details"`
	// Test: a test alert (`reins test-alert`) opens an incident of its own,
	// titled as a test, never joining the agent's real incident.
	Test bool `json:"test"`
}

// ParseGeneric parses reins' own JSON body. agent and summary are required;
// severity is critical|error|warning|info (default error); status is
// firing|resolved (default firing); the fingerprint is dedup_key, else a hash
// of agent and summary, so a script re-posting the same alert is a repeat.
func ParseGeneric(body []byte, _ http.Header, opts Options) ([]incidents.Alert, error) {
	opts = opts.withDefaults()
	var m genericMessage
	if err := decode(body, &m, true); err != nil {
		return nil, err
	}
	if m.Agent == nil || strings.TrimSpace(*m.Agent) == "" {
		return nil, incidents.Errorf(incidents.EINVALID, "agent: required, the agent's name or alias as in reins.yaml")
	}
	if m.Summary == nil || strings.TrimSpace(*m.Summary) == "" {
		return nil, incidents.Errorf(incidents.EINVALID, "summary: required, one line saying what is wrong")
	}
	name, summary := strings.TrimSpace(*m.Agent), strings.TrimSpace(*m.Summary)
	severity, status, err := genericEnums(m.Severity, m.Status)
	if err != nil {
		return nil, err
	}
	if len(m.Details) > 0 && m.Details[0] != '{' && string(m.Details) != "null" {
		return nil, incidents.Errorf(incidents.EINVALID, "details: want an object")
	}
	agent := name
	if canonical, ok := opts.resolve(name); ok {
		agent = canonical
	}
	labels := map[string]string{"agent": name}
	if m.Source != "" {
		labels["source"] = m.Source
	}
	a := incidents.Alert{
		Source:      SourceGeneric,
		Fingerprint: firstOf(strings.TrimSpace(m.DedupKey), hashOf(name, summary)),
		Agent:       agent,
		Status:      status,
		Title:       summary,
		Summary:     summary,
		Severity:    severity,
		Sessions:    uniqueTrimmed(m.Sessions),
		Labels:      labels,
		StartsAt:    opts.Now,
		ReceivedAt:  opts.Now,
		Count:       1,
		Test:        m.Test,
	}
	if string(m.Details) != "null" && len(m.Details) > 0 {
		a.Details = m.Details
	}
	if status == incidents.AlertResolved {
		end := opts.Now
		a.EndsAt = &end
	}
	return []incidents.Alert{a}, nil
}

// uniqueTrimmed trims each value and drops blanks and repeats, keeping order.
func uniqueTrimmed(vs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// genericEnums checks severity and status, filling their defaults.
func genericEnums(severity, status string) (string, string, error) {
	switch severity {
	case "":
		severity = incidents.SeverityError
	case incidents.SeverityCritical, incidents.SeverityError, incidents.SeverityWarning, incidents.SeverityInfo:
	default:
		return "", "", incidents.Errorf(incidents.EINVALID, "severity: want critical, error, warning or info, got %q", severity)
	}
	switch status {
	case "":
		status = incidents.AlertFiring
	case incidents.AlertFiring, incidents.AlertResolved:
	default:
		return "", "", incidents.Errorf(incidents.EINVALID, "status: want firing or resolved, got %q", status)
	}
	return severity, status, nil
}
