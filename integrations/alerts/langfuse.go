package alerts

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents"
)

// langfuseMessage is a Langfuse alert ("monitor-alert") automation webhook.
type langfuseMessage struct {
	ID         string `json:"id"`
	Timestamp  string `json:"timestamp"`
	Type       string `json:"type"`
	APIVersion string `json:"apiVersion"`
	Payload    *struct {
		MonitorID string `json:"monitorId"`
		ProjectID string `json:"projectId"`
		Permalink string `json:"permalink"`
		Message   struct {
			Title string `json:"title"`
			Body  string `json:"body"`
		} `json:"message"`
		Severity      string `json:"severity"`
		Timestamp     string `json:"timestamp"`
		FromTimestamp string `json:"fromTimestamp"`
		ToTimestamp   string `json:"toTimestamp"`
		View          string `json:"view"`
		Window        string `json:"window"`
		// Filters is Langfuse's internal filter state: read leniently, as
		// its shape is not a documented contract.
		Filters json.RawMessage `json:"filters"`
	} `json:"payload"`
}

// langfuseFilter is one filter of the alert's query, as Langfuse's filter
// state: {"column","type","operator","value"} plus "key" for metadata filters.
type langfuseFilter struct {
	Column string          `json:"column"`
	Key    string          `json:"key"`
	Type   string          `json:"type"`
	Value  json.RawMessage `json:"value"`
}

// ParseLangfuse parses a Langfuse alert webhook. Langfuse alerts carry no
// labels, so reins reads them from the alert's filters: a metadata filter
// (key agent = support-bot), a filter on a column named like a label, or a
// tag filter holding "agent:support-bot". Failing that, the agent is the
// first bracketed word of the title ("[support-bot] token spend …"), after
// Langfuse's own "[OK]"-style severity marker. Severity OK, or a title
// starting "[OK]", resolves; the monitor ID is the fingerprint.
func ParseLangfuse(body []byte, _ http.Header, opts Options) ([]incidents.Alert, error) {
	opts = opts.withDefaults()
	var m langfuseMessage
	if err := decode(body, &m, false); err != nil {
		return nil, err
	}
	if m.Type != "monitor-alert" {
		return nil, incidents.Errorf(incidents.EINVALID, "type: want \"monitor-alert\" (a Langfuse alert automation), got %q", m.Type)
	}
	p := m.Payload
	if p == nil {
		return nil, incidents.Errorf(incidents.EINVALID, "payload: missing")
	}
	if p.MonitorID == "" {
		return nil, incidents.Errorf(incidents.EINVALID, "payload.monitorId: missing")
	}
	labels := langfuseLabels(p.Filters)
	agent, ok := findAgent(labels, opts)
	if !ok {
		agent, ok = titleAgent(p.Message.Title, opts)
	}
	if !ok {
		return nil, incidents.Errorf(incidents.EINVALID,
			"the Langfuse alert %q names no agent: filter it on metadata %s, or start its name with \"[agent-name]\"",
			p.Message.Title, strings.Join(opts.AgentLabels, " or "))
	}
	at, err := langfuseTime(m.Timestamp, p.Timestamp, p.FromTimestamp, p.ToTimestamp)
	if err != nil {
		return nil, err
	}
	if at.IsZero() {
		at = opts.Now
	}
	severity := strings.ToUpper(strings.TrimSpace(p.Severity))
	status := langfuseStatus(severity, p.Message.Title)
	a := incidents.Alert{
		Source:      SourceLangfuse,
		Fingerprint: "monitor-" + p.MonitorID,
		Agent:       agent,
		Status:      status,
		Title:       firstOf(strings.TrimSpace(severityMarker.ReplaceAllString(p.Message.Title, "")), "Langfuse alert "+p.MonitorID),
		Summary:     p.Message.Body,
		Severity:    langfuseSeverity(severity),
		Sessions:    findSessions(opts, labels),
		Labels:      labels,
		StartsAt:    at,
		ReceivedAt:  opts.Now,
		Count:       1,
	}
	if status == incidents.AlertResolved {
		a.EndsAt = &at
	}
	var links linkSet
	links.add("Langfuse alert", p.Permalink)
	a.Links = links.links
	a.Details = details(map[string]any{
		"event_id": m.ID, "monitor_id": p.MonitorID, "project_id": p.ProjectID, "severity": p.Severity,
		"window": p.Window, "view": p.View, "from": p.FromTimestamp, "to": p.ToTimestamp,
	})
	return []incidents.Alert{a}, nil
}

// langfuseTime checks the payload's times and returns when the alert was
// evaluated.
func langfuseTime(event, at, from, to string) (time.Time, error) {
	for _, f := range []struct{ name, v string }{{"timestamp", event}, {"payload.fromTimestamp", from}, {"payload.toTimestamp", to}} {
		if _, err := parseTime(f.name, f.v); err != nil {
			return time.Time{}, err
		}
	}
	return parseTime("payload.timestamp", firstOf(at, to, event))
}

// langfuseLabels reads label-like pairs out of the alert's filters; filters
// of another shape than expected are ignored, not refused.
func langfuseLabels(raw json.RawMessage) map[string]string {
	var filters []langfuseFilter
	if json.Unmarshal(raw, &filters) != nil {
		return nil
	}
	labels := map[string]string{}
	add := func(k, v string) {
		if k = strings.TrimSpace(k); k == "" || strings.TrimSpace(v) == "" {
			return
		}
		if old := labels[k]; old != "" {
			v = old + "," + v
		}
		labels[k] = v
	}
	for _, f := range filters {
		values := filterValues(f.Value)
		switch {
		case f.Key != "": // metadata filter: key = value
			for _, v := range values {
				add(f.Key, v)
			}
		case strings.EqualFold(f.Column, "tags"):
			for _, v := range values {
				if k, tv, ok := strings.Cut(v, ":"); ok {
					add(k, tv)
				}
			}
		default:
			for _, v := range values {
				add(f.Column, v)
			}
		}
	}
	if len(labels) == 0 {
		return nil
	}
	return labels
}

// filterValues reads a filter value: a string or a list of strings; numbers,
// dates and the like are not names and are ignored.
func filterValues(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return many
	}
	return nil
}

// severityMarker is Langfuse's own prefix on titles ("[OK] …", "[ALERT] …").
var severityMarker = regexp.MustCompile(`^(?i)\s*\[(ok|alert|warning|no_data|no data)\]\s*`)

// bracketed is the "[agent] …" naming convention for alerts.
var bracketed = regexp.MustCompile(`^\s*\[([^\[\]]+)\]`)

// titleAgent takes the agent from a title that starts "[agent]" (after the
// severity marker): resolved when it names a known agent, else as written.
func titleAgent(title string, opts Options) (string, bool) {
	rest := severityMarker.ReplaceAllString(title, "")
	match := bracketed.FindStringSubmatch(rest)
	if match == nil {
		return "", false
	}
	name := strings.TrimSpace(match[1])
	if canonical, ok := opts.resolve(name); ok {
		return canonical, true
	}
	return name, name != ""
}

// langfuseStatus: a recovery is severity OK, and is titled "[OK] …".
func langfuseStatus(severity, title string) string {
	if severity == "OK" || strings.HasPrefix(strings.ToUpper(strings.TrimSpace(title)), "[OK]") {
		return incidents.AlertResolved
	}
	return incidents.AlertFiring
}

// langfuseSeverity maps Langfuse's alert severities onto reins'. ALERT is the
// alert threshold, the one teams set to mean "act now".
func langfuseSeverity(s string) string {
	switch s {
	case "ALERT":
		return incidents.SeverityCritical
	case "WARNING", "NO_DATA":
		return incidents.SeverityWarning
	case "OK":
		return incidents.SeverityInfo
	default:
		return incidents.SeverityError
	}
}
